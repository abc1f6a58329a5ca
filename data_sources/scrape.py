"""A polite scraper for directory pages that have no API or file.

A département's list of PMI consultations, an intercommunality's page of RPE and LAEP, a
federation's list of centres sociaux: :func:`scrape_directory` reads one such page and
returns the entries it finds as rows of the facility import format, written by
:func:`write_facility_csv` for the user to review and import
(:func:`data_sources.user_file.load_facility_file`). Command line::

    python -m data_sources scrape URL --type TYPE [--territory X] [--out FILE]

Politeness (see :class:`Politeness`):

- robots.txt is read (``urllib.robotparser``) afresh at each run (kept for that run
  only: a ``Disallow`` added since the last run is honoured) and honoured for the
  project's user agent; a page it disallows is not fetched;
- one request at a time per host, spaced by ``delay_s`` (default 2 s), or by the
  robots.txt ``Crawl-delay`` (or ``Request-rate``) when it asks for more, never less;
- the project's session, cache and user agent (:mod:`data_sources._http`);
- a captcha, a login form or an HTTP 401/403 stops the scraper: it never tries to get
  around them (monenfant.fr's crèches come through data·inclusion, which has the right
  to collect them).

What is extracted, in this order (an entry found twice is kept once):

1. schema.org JSON-LD (``<script type="application/ld+json">``, ``@graph`` too) of the
   types :data:`SCHEMA_TYPES` (Place, GovernmentOffice, LocalBusiness, ChildCare…);
2. schema.org microdata (``itemscope`` + ``itemtype`` of the same types);
3. hCard microformats (``vcard`` / ``h-card``);
4. table rows and list items (and small blocks) holding a French address: a street
   with its number, a postcode and a commune. A block is read with its whole card (the
   largest element around it holding no other address), so the phone, the e-mail and
   the website next to the address paragraph (« Adresse mail contact : … », « Site
   internet : www… » as text or links) belong to it; section titles (« Informations
   pratiques », « Fiche identité »… :data:`GENERIC_HEADINGS`) are never names.

The organisation that publishes the page (a federation listing its centres:
``og:site_name``, its schema.org home-page organisation) is not listed as a structure.

Every row carries the page URL and the date of the visit as its source. When online,
rows without coordinates are geocoded through the Géoplateforme
(:func:`data_sources.ban.geocode_batch`); otherwise they stay without coordinates and
the import places them at the town hall of their commune (precision "commune").
Text from the page is data: it is written to CSV cells (formula-neutralised), never used
as template or code.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import logging
import re
import threading
import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib import robotparser
from urllib.parse import urljoin, urlsplit

import pandas as pd
from bs4 import BeautifulSoup, Tag

from data_sources import _http, _outbound
from data_sources._outbound import BlockedURLError
from data_sources.registry import SourceInfo, register
from diagnosis.errors import InputError, SourceError
from diagnosis.schema import FACILITY_TYPES, Territory

logger = logging.getLogger(__name__)

#: Columns of the CSV written (names the facility import recognises, plus the source).
CSV_COLUMNS = ("nom", "type", "adresse", "code_postal", "commune", "code_insee", "telephone",
               "email", "site_web", "latitude", "longitude", "position_precision",
               "source_url", "source_date", "methode")
#: schema.org types read from JSON-LD and microdata.
SCHEMA_TYPES = frozenset({
    "Place", "GovernmentOffice", "LocalBusiness", "ChildCare", "CivicStructure",
    "GovernmentBuilding", "MedicalClinic", "MedicalOrganization", "Preschool",
    "EducationalOrganization", "NGO", "Organization", "CityHall",
})
DEFAULT_DELAY_S = 2.0

SCRAPE = register(SourceInfo(
    key="scrape",
    title="Pages d'annuaire lues par Maillage (extraction à vérifier)",
    url="pages web citées ligne par ligne (colonne source_url)",
    licence="selon la page lue",
    attribution="Pages web publiques citées ligne par ligne",
    vintage="date de lecture de chaque page (colonne source_date)",
    notes="Extraction automatique d'une page publique : à relire avant l'import.",
))

_PHONE_RE = re.compile(r"(?<![\d+])(?:\+33\s?(?:\(0\)\s?)?|0)[1-9](?:[\s.\-]?\d{2}){4}(?!\d)")
_EMAIL_RE = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_STREET_WORDS = (
    r"rue|avenue|av\.?|boulevard|bd|place|pl\.?|all[ée]e|chemin|ch\.?|route|rte|impasse|imp\.?|"
    r"square|quai|cours|esplanade|rond[- ]point|lieu[- ]dit|parvis|passage|mail|promenade|"
    r"faubourg|sentier|r[ée]sidence|cit[ée]|hameau|zone|za|zi|zac|espace|centre|domaine|"
    r"lotissement|clos|villa|voie|carrefour|rocade|port"
)
_ADDRESS_RE = re.compile(
    rf"(?P<street>(?:\d{{1,4}}\s?(?:bis|ter|[a-d])?\s*,?\s+)?(?:{_STREET_WORDS})\b[^,\n;|]{{2,80}}?)"
    r"\s*[,\n;|–-]?\s*(?:(?:BP|CS)\s?\d+\s*[,\n]?\s*)?"
    r"(?P<postcode>(?<!\d)(?:[0-8]\d|9[0-8])\d{3}(?!\d))\s+"
    r"(?P<city>[A-ZÀ-Ýa-zà-ÿ][A-Za-zÀ-ÿ'’ -]{1,60}?)"
    r"(?=\s*(?:cedex\b|[\n,;|()]|tél|tel|t\s?:|$|\s{2}|\s*\d|\.)|\s+[-–]\s)",
    re.IGNORECASE,
)
_CAPTCHA_RE = re.compile(
    r"g-recaptcha|h-captcha|hcaptcha|cf-challenge|cf_chl_|challenge-platform|"
    r"turnstile|captcha", re.IGNORECASE)


def _plain(text: str) -> str:
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    return re.sub(r"[^a-z0-9]+", " ", text).strip()


def _clean(text: Any) -> str:
    return re.sub(r"\s+", " ", str(text or "")).strip(" \t\r\n,;:|–-")


def normalize_phone(text: str) -> str:
    """French phone number in national form (``02 40 00 00 00``), ``""`` if none.

    Examples
    --------
    >>> normalize_phone("Tél. : +33 (0)2 40.12.34.56"), normalize_phone("aucun")
    ('02 40 12 34 56', '')
    """
    m = _PHONE_RE.search(text or "")
    if not m:
        return ""
    digits = re.sub(r"\D", "", m.group(0))
    if digits.startswith("33"):
        digits = "0" + digits[2:]
        if digits.startswith("00"):
            digits = digits[1:]
    digits = digits[-10:]
    return " ".join(digits[i:i + 2] for i in range(0, 10, 2))


def csv_safe(text: Any) -> str:
    """A CSV cell that a spreadsheet never runs as a formula (plain numbers kept).

    Examples
    --------
    >>> csv_safe("=HYPERLINK(1)"), csv_safe("@cmd"), csv_safe("Crèche"), csv_safe("-2.05")
    ("'=HYPERLINK(1)", "'@cmd", 'Crèche', '-2.05')
    >>> csv_safe("-1+cmd")
    "'-1+cmd"
    """
    value = "" if text is None else str(text)
    if re.fullmatch(r"[+-]?\d+(?:\.\d+)?", value):
        return value
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def find_address(text: str) -> dict[str, str] | None:
    """The first French street address in a text: street, postcode and commune.

    Examples
    --------
    >>> find_address("Relais petite enfance, 3 place de l'Église 44530 Saint-Gildas-des-Bois")
    {'street': "3 place de l'Église", 'postcode': '44530', 'city': 'Saint-Gildas-des-Bois'}
    >>> find_address("Ouvert le mardi") is None
    True
    """
    m = _ADDRESS_RE.search(text or "")
    if not m:
        return None
    return {"street": _clean(m.group("street")), "postcode": m.group("postcode"),
            "city": _clean(m.group("city"))}


# --- politeness ------------------------------------------------------------------------


@dataclass
class Politeness:
    """One request at a time per host, spaced by ``delay_s``; robots.txt honoured.

    One instance is one run: robots.txt is read once per site by the instance (never
    from an earlier run's cache), and the site's ``Crawl-delay`` raises the spacing of
    its requests (never below ``delay_s``).
    """

    delay_s: float = DEFAULT_DELAY_S
    _host_delay_s: dict[str, float] = field(default_factory=dict)
    _locks: dict[str, threading.Lock] = field(default_factory=dict)
    _limiter: _http.HostRateLimiter = field(default_factory=_http.HostRateLimiter)
    _robots: dict[str, robotparser.RobotFileParser] = field(default_factory=dict)
    _guard: threading.Lock = field(default_factory=threading.Lock)
    _robots_lock: threading.Lock = field(default_factory=threading.Lock)

    def lock(self, host: str) -> threading.Lock:
        """The lock that serialises the requests to ``host``."""
        with self._guard:
            return self._locks.setdefault(host, threading.Lock())

    def host_delay_s(self, host: str) -> float:
        """Seconds between two requests to ``host``: ``delay_s`` or its Crawl-delay."""
        return max(self.delay_s, self._host_delay_s.get(host, 0.0))

    def wait(self, host: str) -> float:
        """Wait for the host's next slot; return the seconds waited."""
        delay = self.host_delay_s(host)
        return self._limiter.wait(host, 1.0 / delay if delay > 0 else None)

    def robots(self, url: str, *, offline: bool | None) -> robotparser.RobotFileParser:
        """The parsed robots.txt of ``url``'s site (fetched once, through the cache)."""
        parts = urlsplit(url)
        root = f"{parts.scheme}://{parts.netloc}"
        with self._robots_lock:
            if root not in self._robots:
                self._robots[root] = self._read_robots(root, offline=offline)
            return self._robots[root]

    def _read_robots(self, root: str, *, offline: bool | None) -> robotparser.RobotFileParser:
        parser = robotparser.RobotFileParser(root + "/robots.txt")
        status, text = _get(root + "/robots.txt", politeness=self, offline=offline, fresh=True)
        if status == 0:
            # offline without a stored robots.txt: no request reaches the site anyway, and
            # only a page stored earlier (when robots.txt allowed it) can be read
            parser.allow_all = True  # type: ignore[attr-defined]  # not in typeshed
            return parser
        if status >= 500:
            raise SourceError(f"{SCRAPE.key}: {root}/robots.txt ne répond pas (HTTP {status}) : "
                              "sans lui, Maillage ne lit pas le site ; réessayez plus tard.")
        if status in (401, 403):
            parser.disallow_all = True  # type: ignore[attr-defined]  # as robotparser does
        elif status >= 400:
            parser.allow_all = True  # type: ignore[attr-defined]  # no robots.txt: no rule
        else:
            parser.parse(text.splitlines())
            self._crawl_delay(urlsplit(root).hostname or "", parser)
        return parser

    def _crawl_delay(self, host: str, parser: robotparser.RobotFileParser) -> None:
        delays = []
        delay = parser.crawl_delay(_http.USER_AGENT)
        if delay is not None:
            delays.append(float(delay))
        rate = parser.request_rate(_http.USER_AGENT)
        if rate is not None and rate.requests > 0:
            delays.append(rate.seconds / rate.requests)
        if delays:
            self._host_delay_s[host] = max(delays)
            if max(delays) > self.delay_s:
                logger.info("scrape: %s asks for %.1f s between requests (Crawl-delay)", host,
                            max(delays))


def _get(url: str, *, politeness: Politeness, offline: bool | None,
         fresh: bool = False) -> tuple[int, str]:
    """GET through the project's cached session, one request at a time per host.

    ``fresh``: online, ask the site again rather than a cached copy (robots.txt). Returns
    ``(status, text)``; ``status`` 0 when nothing answered.
    """
    host = urlsplit(url).hostname or ""
    off = _http.get_config().offline if offline is None else offline
    session = _http.get_session()
    with politeness.lock(host):
        if not off:
            politeness.wait(host)
        try:
            extra = {"force_refresh": True} if fresh and not off else {}
            resp = session.get(url, timeout=_http.get_config().timeout_s, only_if_cached=off,
                               headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"},
                               **extra)
        except BlockedURLError:
            raise  # its own French reason (a redirect to a private address…)
        except Exception as exc:  # requests and urllib3 errors alike
            raise SourceError(
                f"{SCRAPE.key}: impossible de joindre {url} ({type(exc).__name__}) ; vérifiez "
                "la connexion ou l'adresse."
            ) from exc
    if off and resp.status_code == 504:
        return 0, ""
    if resp.status_code == 200 and resp.content:
        _http.save_validated(resp)  # read whole: kept for offline re-reads
    return resp.status_code, _http.decode_text(resp.content or b"")


# --- extraction ------------------------------------------------------------------------


def _types(value: Any) -> set[str]:
    items = value if isinstance(value, list) else [value]
    return {str(t).rsplit("/", 1)[-1] for t in items if t}


def _iter_jsonld(node: Any) -> Iterator[Mapping[str, Any]]:
    if isinstance(node, list):
        for n in node:
            yield from _iter_jsonld(n)
    elif isinstance(node, dict):
        if _types(node.get("@type")) & SCHEMA_TYPES:
            yield node
        for key in ("@graph", "itemListElement", "item", "hasPart", "subOrganization",
                    "department", "containsPlace", "location"):
            if key in node:
                yield from _iter_jsonld(node[key])


def _first(value: Any) -> Any:
    return value[0] if isinstance(value, list) and value else value


def _entry_from_schema(obj: Mapping[str, Any], method: str) -> dict[str, str]:
    addr = _first(obj.get("address"))
    street = postcode = city = ""
    if isinstance(addr, dict):
        street = _clean(addr.get("streetAddress"))
        postcode = _clean(addr.get("postalCode"))
        city = _clean(addr.get("addressLocality"))
    elif isinstance(addr, str):
        found = find_address(addr)
        if found:
            street, postcode, city = found["street"], found["postcode"], found["city"]
    geo = _first(obj.get("geo")) or {}
    lat = lon = ""
    if isinstance(geo, dict):
        lat = str(geo.get("latitude") or "").strip()
        lon = str(geo.get("longitude") or "").strip()
    return {"nom": _clean(_first(obj.get("name"))), "adresse": street, "code_postal": postcode,
            "commune": city, "telephone": normalize_phone(str(_first(obj.get("telephone")) or "")),
            "email": _clean(_first(obj.get("email"))).removeprefix("mailto:"),
            "site_web": _clean(_first(obj.get("url"))), "latitude": lat, "longitude": lon,
            "methode": method}


def extract_jsonld(soup: BeautifulSoup) -> list[dict[str, str]]:
    """Entries of the schema.org JSON-LD blocks of a page."""
    out = []
    for script in soup.find_all("script", attrs={"type": re.compile("ld\\+json", re.I)}):
        try:
            doc = json.loads(script.string or script.get_text() or "null")
        except ValueError:
            logger.warning("scrape: unreadable JSON-LD block skipped")
            continue
        out += [_entry_from_schema(o, "json-ld") for o in _iter_jsonld(doc)]
    return out


def _microdata(scope: Tag) -> dict[str, Any]:
    props: dict[str, Any] = {}
    for el in scope.find_all(None, {"itemprop": True}):
        owner = el.find_parent(attrs={"itemscope": True})
        if owner is not scope:
            continue
        value: Any
        if el.has_attr("itemscope"):
            value = _microdata(el)
        elif el.name == "meta":
            value = el.get("content", "")
        elif el.name in ("a", "link"):
            value = el.get("href", "") or el.get_text(" ")
        else:
            value = el.get("content") or el.get_text(" ")
        for name in str(el["itemprop"]).split():
            props.setdefault(name, value)
    return props


def extract_microdata(soup: BeautifulSoup) -> list[dict[str, str]]:
    """Entries of the schema.org microdata items of a page."""
    out = []
    for scope in soup.find_all(None, {"itemscope": True, "itemtype": True}):
        if not _types(str(scope["itemtype"]).split()) & SCHEMA_TYPES:
            continue
        if scope.find_parent(attrs={"itemprop": True, "itemscope": True}):
            continue  # nested item (e.g. the address of another item)
        props = _microdata(scope)
        if isinstance(props.get("email"), str):
            props["email"] = props["email"].removeprefix("mailto:")
        if isinstance(props.get("telephone"), str):
            props["telephone"] = props["telephone"].removeprefix("tel:")
        out.append(_entry_from_schema(props, "microdata"))
    return out


def _cls(el: Tag, *names: str) -> Tag | None:
    for n in names:
        hit = el.find(class_=n)
        if isinstance(hit, Tag):
            return hit
    return None


def _text(el: Tag | None) -> str:
    return _clean(el.get_text(" ")) if el is not None else ""


def _cls_raw(el: Tag, *names: str) -> str:
    hit = _cls(el, *names)
    return hit.get_text().strip() if hit is not None else ""


def extract_hcard(soup: BeautifulSoup) -> list[dict[str, str]]:
    """Entries of the hCard (``vcard``) and h-card microformats of a page."""
    out = []
    for card in soup.find_all(class_=re.compile(r"^(vcard|h-card)$")):
        tel = _cls(card, "tel", "p-tel")
        email = _cls(card, "email", "u-email")
        url = _cls(card, "url", "u-url")

        def href(el: Tag | None) -> str:
            return str(el.get("href", "")) if el is not None else ""

        out.append({
            "nom": _text(_cls(card, "fn", "org", "p-name", "p-org")),
            "adresse": _text(_cls(card, "street-address", "p-street-address")),
            "code_postal": _text(_cls(card, "postal-code", "p-postal-code")),
            "commune": _text(_cls(card, "locality", "p-locality")),
            "telephone": normalize_phone(href(tel).removeprefix("tel:") or _text(tel)),
            "email": (href(email).removeprefix("mailto:") or _text(email)),
            "site_web": href(url) or _text(url),
            "latitude": _cls_raw(card, "latitude", "p-latitude"),
            "longitude": _cls_raw(card, "longitude", "p-longitude"),
            "methode": "hcard",
        })
    return out


#: Section headings of a structure's card that are never its name (folded, see _plain).
GENERIC_HEADINGS = re.compile(
    r"^(?:informations?(?: pratiques?| utiles?| sur la structure| generales?)?|"
    r"fiche(?: identite| pratique)?|adresses?|coordonnees|contacts?|nous contacter|"
    r"nous (?:trouver|joindre|ecrire)|horaires?(?: d ouverture)?|acces|plan d acces|"
    r"telephone|courriel|e ?mail|mail|site(?: internet| web)?|historique|"
    r"en savoir plus|presentation|description|localisation|ou nous trouver|infos?"
    r"(?: pratiques?)?|mode de gestion|public(?:s)?(?: accueillis?)?|services?|"
    r"activites?|missions?|accueil)$")
_HEADINGS = ["h1", "h2", "h3", "h4", "h5", "h6", "strong", "b", "th", "dt"]
_URL_TEXT_RE = re.compile(r"(?<![@\w.])(?:https?://|www\.)[^\s<>\"',;]+", re.IGNORECASE)
_SITE_LABEL_RE = re.compile(r"site(?:\s+(?:internet|web))?\s*:?\s*", re.IGNORECASE)
_STOP_AT = frozenset({"body", "html", "main", "[document]"})


def _is_generic(text: str) -> bool:
    """Whether a heading is a section title (« Informations pratiques »), not a name.

    Examples
    --------
    >>> _is_generic("Informations pratiques :"), _is_generic("Centre social Le Pont")
    (True, False)
    """
    return bool(GENERIC_HEADINGS.match(_plain(text)))


def _address_count(el: Tag) -> int:
    return sum(1 for _ in _ADDRESS_RE.finditer(el.get_text("\n")))


def _structure_block(block: Tag) -> Tag:
    """The largest element around ``block`` that holds this one address and no other.

    A card of a list (name heading, address, e-mail, website in sibling paragraphs)
    is read whole, so contacts outside the address paragraph belong to their structure.
    """
    card = block
    while isinstance(card.parent, Tag) and card.parent.name not in _STOP_AT \
            and _address_count(card.parent) <= 1:
        card = card.parent
    return card


def _name_of(card: Tag, block: Tag) -> str:
    """The first heading of the card that is not a section title, else one before it."""
    for el in card.find_all(_HEADINGS):
        text = _text(el)
        if text and not _is_generic(text) and not find_address(text):
            return text
    for el in card.find_all_previous(_HEADINGS, limit=6):
        text = _text(el)
        if not text or _is_generic(text) or find_address(text):
            continue
        if el.find_parent(lambda t: t is card) is None and _address_count_between(el, card):
            break  # a heading of the previous structure
        return text
    return ""


def _address_count_between(heading: Tag, card: Tag) -> bool:
    """Whether another address sits between ``heading`` and ``card`` (another entry's)."""
    between = []
    for el in heading.find_all_next(string=True):
        if el.find_parent(lambda t: t is card) is not None:
            break
        between.append(str(el))
    return find_address("\n".join(between)) is not None


def _website(card: Tag, text: str, base_url: str, method: str) -> str:
    for a in card.find_all("a", href=True):
        h = str(a["href"])
        if h.startswith(("http://", "https://")) or (h.startswith("/") and method == "liste"):
            return urljoin(base_url, h)
    label = _SITE_LABEL_RE.search(text)
    found = _URL_TEXT_RE.search(text, label.end() if label else 0) or _URL_TEXT_RE.search(text)
    if not found:
        return ""
    url = found.group(0).rstrip(".)")
    return url if url.lower().startswith("http") else "https://" + url


def _block_entry(block: Tag, method: str, base_url: str) -> dict[str, str] | None:
    text = block.get_text("\n")
    addr = find_address(text)
    if addr is None:
        return None
    card = _structure_block(block) if method == "bloc" else block
    card_text = card.get_text("\n")
    name = _name_of(card, block) if method == "bloc" else ""
    if not name and method != "bloc":
        heading = block.find(_HEADINGS)
        name = _text(heading) if isinstance(heading, Tag) else ""
        if _is_generic(name):
            name = ""
    if not name or find_address(name):
        lines = [_clean(s) for s in text.split("\n") if _clean(s)]
        before = text[: text.find(addr["street"])] if addr["street"] in text else ""
        name = _clean(before.split("\n")[-1] if before.strip() else "") or (
            lines[0] if lines else "")
        if find_address(name) or addr["street"] in name:
            name = _clean(name.split(addr["street"])[0]) if addr["street"] in name else ""
    mail = card.find("a", href=re.compile(r"^mailto:", re.I))
    found_mail = _EMAIL_RE.search(card_text)
    email = str(mail["href"])[7:].split("?")[0] if isinstance(mail, Tag) else (
        found_mail.group(0) if found_mail else "")
    site = _website(card, card_text.replace(email, " ") if email else card_text, base_url,
                    method)
    return {"nom": name.rstrip(" :"), "adresse": addr["street"], "code_postal": addr["postcode"],
            "commune": addr["city"], "telephone": normalize_phone(card_text), "email": email,
            "site_web": site, "latitude": "", "longitude": "", "methode": method}


def extract_blocks(soup: BeautifulSoup, *, base_url: str = "") -> list[dict[str, str]]:
    """Entries of table rows, list items and small blocks that hold a French address."""
    out = []
    seen: set[int] = set()
    for tag, method in (("tr", "tableau"), ("li", "liste"), ("article", "bloc"),
                        ("section", "bloc"), ("div", "bloc"), ("p", "bloc")):
        for block in soup.find_all(tag):
            if any(id(p) in seen for p in block.parents):
                continue
            if tag in ("div", "section", "article", "p"):
                inner = block.find_all(["div", "section", "article", "p", "li", "tr"])
                if any(find_address(i.get_text("\n")) for i in inner):
                    continue  # a smaller block holds the address: use it instead
            entry = _block_entry(block, method, base_url)
            if entry is not None:
                seen.add(id(block))
                out.append(entry)
    return out


def page_organisation(soup: BeautifulSoup, *, base_url: str = "") -> set[str]:
    """Folded names of the organisation that publishes the page (never a structure).

    Read from ``og:site_name`` / ``application-name``, the schema.org ``WebSite`` and its
    ``publisher``, and any JSON-LD organisation whose ``url`` is the site's home page.
    """
    names: set[str] = set()
    for key in ("og:site_name", "application-name"):
        meta = soup.find("meta", attrs={"property": key}) or soup.find(
            "meta", attrs={"name": key})
        if isinstance(meta, Tag) and meta.get("content"):
            names.add(_plain(str(meta["content"])))
    home = urlsplit(base_url)
    for script in soup.find_all("script", attrs={"type": re.compile("ld\\+json", re.I)}):
        try:
            doc = json.loads(script.string or script.get_text() or "null")
        except ValueError:
            continue
        stack = [doc]
        while stack:
            node = stack.pop()
            if isinstance(node, list):
                stack.extend(node)
                continue
            if not isinstance(node, dict):
                continue
            stack.extend(v for k, v in node.items() if k in ("@graph", "publisher"))
            types = _types(node.get("@type"))
            url = urlsplit(str(_first(node.get("url")) or ""))
            own_home = bool(url.netloc) and url.path in ("", "/") and (
                url.netloc.removeprefix("www.") == home.netloc.removeprefix("www."))
            if "WebSite" in types and isinstance(node.get("publisher"), dict):
                names.add(_plain(str(_first(node["publisher"].get("name")) or "")))
            if own_home and types & SCHEMA_TYPES:
                names.add(_plain(str(_first(node.get("name")) or "")))
    names.discard("")
    return names


def extract_entries(html: str, *, base_url: str = "") -> list[dict[str, str]]:
    """Every entry of a page, structured data first, duplicates removed (pure).

    Two entries are the same when their folded name and postcode match (or, without a
    name, their address). The page's own organisation (:func:`page_organisation`) is
    not an entry.
    """
    soup = BeautifulSoup(html, "html.parser")
    own = page_organisation(soup, base_url=base_url)
    for tag in soup(["nav", "footer", "header", "form", "noscript", "style"]):
        tag.decompose()
    structured = extract_jsonld(soup) + extract_microdata(soup) + extract_hcard(soup)
    for tag in soup.find_all(None, {"itemscope": True}):
        if getattr(tag, "attrs", None) is None:
            continue  # inside an item already removed
        if _types(str(tag.get("itemtype", "")).split()) & SCHEMA_TYPES:
            tag.decompose()
    for tag in soup.find_all(class_=re.compile(r"^(vcard|h-card)$")):
        if getattr(tag, "attrs", None) is not None:
            tag.decompose()
    for tag in soup.find_all("script"):
        tag.decompose()
    found = structured + extract_blocks(soup, base_url=base_url)
    out: list[dict[str, str]] = []
    names: set[tuple[str, str]] = set()
    places: dict[tuple[str, str], set[str]] = {}
    for e in found:
        if not e["nom"] and not e["adresse"]:
            continue
        name, place = _plain(e["nom"]), (_plain(e["adresse"]), e["code_postal"])
        if name in own:
            logger.info("scrape: %r publishes the page: not listed as a structure", e["nom"])
            continue
        if name and (name, e["code_postal"]) in names:
            continue
        if place[0] and place in places and (not name or name in places[place]):
            continue  # the same entry seen by its structured data
        names.add((name, e["code_postal"]))
        places.setdefault(place, set()).add(name)
        out.append(e)
    return out


def refusal_reason(status: int, html: str) -> str:
    """Why a page must not be read (captcha, login, refused access), ``""`` if none."""
    if status in (401, 403):
        return f"accès refusé (HTTP {status})"
    if status == 429:
        return "trop de requêtes (HTTP 429) : le site demande d'attendre"
    if status == 0:
        return "hors ligne et aucune copie locale de la page"
    if status >= 400:
        return f"la page ne répond pas normalement (HTTP {status})"
    soup = BeautifulSoup(html, "html.parser")
    if _CAPTCHA_RE.search(" ".join(str(t) for t in soup.find_all(["form", "div", "iframe",
                                                                   "script"]))):
        return "la page demande un captcha"
    if soup.find("input", attrs={"type": "password"}):
        return "la page demande une connexion (mot de passe)"
    return ""


# --- the scrape ------------------------------------------------------------------------


@dataclass(frozen=True)
class ScrapeResult:
    """What a scrape found.

    Attributes
    ----------
    url, fetched_on
        The page and the day it was read (ISO date).
    rows
        One row per entry, columns :data:`CSV_COLUMNS`.
    dropped
        Entries left out because they lie outside the territory.
    notes
        French remarks (geocoding unavailable…).
    """

    url: str
    fetched_on: str
    rows: pd.DataFrame
    dropped: int = 0
    notes: tuple[str, ...] = ()


def _check_type(facility_type: str) -> str:
    if facility_type in FACILITY_TYPES:
        return facility_type
    from data_sources.user_file import map_type

    mapped = map_type(facility_type)
    if mapped is None:
        raise InputError(
            f"type={facility_type!r} n'est pas un type de structure connu ; types : "
            f"{', '.join(sorted(FACILITY_TYPES))}"
        )
    return mapped[0]


def _code_insee(postcode: str, city: str) -> str:
    from data_sources.cog import load_cog

    com = load_cog().communes
    com = com[com["kind"].eq("commune")]
    cand = com[com["postcodes"].astype(str).str.contains(postcode, regex=False)] if postcode else (
        com.iloc[0:0])
    if len(cand) == 1:
        return str(cand["code"].iloc[0])
    key = _plain(city).replace(" ", "-")
    named = cand[cand["key"].astype(str).str.replace(" ", "-") == key] if len(cand) else cand
    if len(named) == 1:
        return str(named["code"].iloc[0])
    named = com[com["key"].astype(str).str.replace(" ", "-") == key]
    return str(named["code"].iloc[0]) if len(named) == 1 else ""


def _precision(street: str) -> str:
    return ("address" if re.match(r"\s*\d", street) else "street") if street else "commune"


def scrape_directory(
    url: str,
    *,
    facility_type: str,
    territory: Territory | None = None,
    geocode: bool = True,
    delay_s: float = DEFAULT_DELAY_S,
    offline: bool | None = None,
    politeness: Politeness | None = None,
    today: dt.date | None = None,
) -> ScrapeResult:
    """Read one directory page and return its entries in the facility import format.

    Parameters
    ----------
    url
        The page (http or https).
    facility_type
        Type of every entry (schema key such as ``"rpe"`` or a label such as
        ``"Relais petite enfance"``).
    territory
        Keep only the entries of its communes (by postcode and commune name, or by the
        geocoder's commune).
    geocode
        Place the rows without coordinates with the Géoplateforme geocoder (skipped
        offline; then the import places them at their town hall).
    delay_s
        Pause between two requests to the same host.

    Raises
    ------
    InputError
        Bad URL or type.
    SourceError
        robots.txt forbids the page, a captcha or a login is required, or the page does
        not answer (French messages naming the URL).
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InputError(f"URL {url!r} : une adresse http(s) complète est attendue")
    ftype = _check_type(facility_type)
    _outbound.check_url(url, policy=_http.get_config().policy)  # before robots.txt
    pol = politeness or Politeness(delay_s=delay_s)
    robots = pol.robots(url, offline=offline)
    if not robots.can_fetch(_http.USER_AGENT, url):
        raise SourceError(f"{SCRAPE.key}: le fichier robots.txt de {parts.netloc} interdit la "
                          f"lecture de {url} : Maillage ne la lit pas.")
    status, html = _get(url, politeness=pol, offline=offline)
    reason = refusal_reason(status, html)
    if reason:
        raise SourceError(f"{SCRAPE.key}: {url} n'est pas lue : {reason}. Maillage ne "
                          "contourne ni captcha ni connexion ; copiez les informations à la "
                          "main ou demandez un fichier au producteur.")
    day = (today or dt.date.today()).isoformat()
    entries = extract_entries(html, base_url=url)
    rows = pd.DataFrame(entries, columns=[c for c in CSV_COLUMNS if c not in
                                          ("type", "code_insee", "position_precision",
                                           "source_url", "source_date")])
    rows["type"] = ftype
    rows["code_insee"] = [_code_insee(p, c) for p, c in zip(rows["code_postal"],
                                                             rows["commune"], strict=True)]
    has_xy = rows["latitude"].astype(bool) & rows["longitude"].astype(bool)
    rows["position_precision"] = [_precision(s) if xy else "" for s, xy in
                                  zip(rows["adresse"], has_xy, strict=True)]
    rows["source_url"] = url
    rows["source_date"] = day
    notes: list[str] = []
    off = _http.get_config().offline if offline is None else offline
    todo = rows.index[~has_xy & rows["adresse"].astype(bool)]
    if geocode and len(todo) and not off:
        from data_sources import ban

        query = pd.DataFrame({"address": rows.loc[todo, "adresse"] + " " +
                              rows.loc[todo, "code_postal"] + " " + rows.loc[todo, "commune"],
                              "postcode": rows.loc[todo, "code_postal"],
                              "citycode": rows.loc[todo, "code_insee"]})
        try:
            res = ban.geocode_batch(query)
        except SourceError as exc:
            logger.warning("%s", exc)
            notes.append("géocodage indisponible : les structures seront placées à la mairie "
                         "de leur commune à l'import")
        else:
            ok = res["precision"].isin(["address", "street"])
            for i in todo:
                r = res.loc[str(i)]
                if bool(ok.loc[str(i)]):
                    rows.loc[i, ["latitude", "longitude"]] = [f"{r['lat']:.6f}",
                                                              f"{r['lon']:.6f}"]
                    rows.loc[i, "position_precision"] = r["precision"]
                if not rows.loc[i, "code_insee"] and r["citycode"]:
                    rows.loc[i, "code_insee"] = r["citycode"]
    elif geocode and len(todo):
        notes.append("hors ligne : pas de géocodage, les structures seront placées à la "
                     "mairie de leur commune à l'import")
    dropped = 0
    if territory is not None:
        keep = rows["code_insee"].isin(set(territory.communes))
        dropped = int((~keep).sum())
        rows = rows[keep]
    return ScrapeResult(url, day, rows[list(CSV_COLUMNS)].reset_index(drop=True), dropped,
                        tuple(notes))


def write_facility_csv(rows: pd.DataFrame, path: str | Path | None = None) -> str:
    """Write rows as a ``;``-separated UTF-8 CSV (formula-neutralised); return the text."""
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=";", lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for rec in rows[list(CSV_COLUMNS)].itertuples(index=False):
        writer.writerow([csv_safe(v) for v in rec])
    text = buf.getvalue()
    if path is not None:
        Path(path).write_text(text, encoding="utf-8")
    return text


def iter_summary(result: ScrapeResult) -> Iterable[str]:
    """French lines summarising a scrape (for the command line)."""
    yield f"{len(result.rows)} structure(s) trouvée(s) sur {result.url} (lue le " \
          f"{result.fetched_on})."
    if result.dropped:
        yield f"{result.dropped} structure(s) hors du territoire écartée(s)."
    by = result.rows["methode"].value_counts().to_dict() if len(result.rows) else {}
    if by:
        yield "Méthodes : " + ", ".join(f"{k} {v}" for k, v in sorted(by.items()))
    placed = int(result.rows["latitude"].astype(bool).sum()) if len(result.rows) else 0
    yield f"{placed} avec une position, {len(result.rows) - placed} à placer à l'import."
    yield from result.notes
