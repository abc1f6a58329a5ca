"""Parenting-related structures from the data·inclusion API.

data·inclusion is the national commons of social-inclusion structures and services (it
consolidates several producers). Verified in its public code (gip-inclusion/data-inclusion,
``api/src/data_inclusion/api``):

- base URL ``https://api.data.inclusion.gouv.fr`` (``config.BASE_URL``); routes
  ``/api/v1/structures`` and ``/api/v1/services``, **token required** in production
  (``TOKEN_ENABLED``; a Bearer token obtained through the form on data.gouv.fr
  *API data·inclusion*); set it with the ``MAILLAGE_DATA_INCLUSION_TOKEN`` environment
  variable or the ``token`` argument;
- query parameters ``code_departement``, ``code_commune``, ``sources``, ``page`` (from 1)
  and ``size`` (default 5,000, at most 10,000); ``/services`` also takes ``thematiques``;
- pages are ``{"items": [...], "total": n, "page": p, "size": k, "pages": m}``;
- structure fields (schema v1): ``id``, ``source``, ``nom``, ``date_maj``, ``commune``,
  ``code_postal``, ``code_insee``, ``adresse``, ``complement_adresse``, ``longitude``,
  ``latitude``, ``telephone``, ``courriel``, ``site_web``, ``lien_source``,
  ``reseaux_porteurs`` (list). API v0 was dropped in April 2026 and with it the structure
  ``typologie``: it is not read any more.

The crèches of monenfant.fr (CNAF) come through data·inclusion, which has the right to
collect them (pipeline ``import_monenfant``, dbt model ``int_monenfant__structures``):
``source == "monenfant"``, ``reseaux_porteurs == ["caf"]``, ``lien_source`` =
``https://monenfant.fr/que-recherchez-vous/<nom>/<type de structure>/<id>`` (older rows:
``…/mode-d-accueil/<id>``); their services carry the thematique
``famille--garde-denfants``. They become ``eaje`` (subtype from the type in the link:
micro-crèche, multi-accueil, halte-garderie, crèche familiale or parentale) or ``mam``
(maison d'assistants maternels); a monenfant row whose link names no known type stays an
``eaje`` without subtype (the feed holds childcare structures only).

Mapping of the other structures (first rule that matches; names are compared accent- and
case-blind): *lieu d'accueil enfants-parents* / LAEP → ``laep``; *relais petite enfance* /
RPE / RAM → ``rpe``; *protection maternelle* / PMI → ``pmi``; *maison des 1000 premiers
jours* → ``maison_1000_jours``; réseau ``fcsf`` or *centre social / socio-culturel* →
``centre_social``; *espace de vie sociale* → ``evs``; réseau ``creches-avip``, a crèche-like
name or a service of thematique ``famille--garde-denfants`` → ``eaje``. Other structures
are not relevant to a diagnosis of the first 1000 days and are dropped.
"""

from __future__ import annotations

import logging
import os
import re
import unicodedata
from collections.abc import Iterable, Mapping
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from data_sources import _http
from data_sources.merge import facility_frame
from data_sources.registry import SourceInfo, register
from diagnosis.errors import InputError, SourceError
from diagnosis.schema import Territory, validate_facilities
from diagnosis.settings import WGS84

logger = logging.getLogger(__name__)

BASE_URL = "https://api.data.inclusion.gouv.fr/api/v1"
TOKEN_ENV = "MAILLAGE_DATA_INCLUSION_TOKEN"
PAGE_SIZE = 5000
MAX_PAGE_SIZE = 10_000
#: Thematique of childcare services (monenfant.fr crèches among others).
CHILDCARE_THEMATIQUE = "famille--garde-denfants"
MONENFANT = "monenfant"
REQUIRED_FIELDS = ("id", "nom", "latitude", "longitude", "code_insee")

#: (regex on the normalised name, (type, subtype)) — specific names first.
NAME_RULES: tuple[tuple[str, tuple[str, str]], ...] = (
    (r"lieu d accueil enfants? parents?|\blaep\b", ("laep", "")),
    (r"relais (petite enfance|assistant)|\brpe\b|\bram\b", ("rpe", "")),
    (r"protection maternelle|\bpmi\b", ("pmi", "")),
    (r"1000 premiers jours|mille premiers jours", ("maison_1000_jours", "")),
    (r"micro creche", ("eaje", "micro_creche")),
    (r"halte garderie", ("eaje", "halte_garderie")),
    (r"multi accueil", ("eaje", "multi_accueil")),
    (r"creche parentale", ("eaje", "creche_parentale")),
    (r"creche familiale", ("eaje", "creche_familiale")),
    (r"centre (social|socio ?culturel)", ("centre_social", "")),
    (r"espace de vie sociale|\bevs\b", ("evs", "")),
    (r"\bcreche\b", ("eaje", "")),
)
#: Structure types named in a monenfant.fr link (normalised), specific first.
MONENFANT_TYPES: tuple[tuple[str, tuple[str, str]], ...] = (
    (r"maisons? d assistant|\bmam\b", ("mam", "")),
    (r"micro creche", ("eaje", "micro_creche")),
    (r"multi accueil", ("eaje", "multi_accueil")),
    (r"halte garderie", ("eaje", "halte_garderie")),
    (r"creche familiale", ("eaje", "creche_familiale")),
    (r"creche parentale", ("eaje", "creche_parentale")),
    (r"creche|jardin d enfants|accueil collectif|etablissement d accueil|\beaje\b",
     ("eaje", "")),
)
#: schema v1 ``reseaux_porteurs`` values.
RESEAUX: dict[str, tuple[str, str]] = {
    "fcsf": ("centre_social", ""),
    "creches-avip": ("eaje", ""),
}

INCLUSION = register(SourceInfo(
    key="data_inclusion",
    title="data·inclusion — structures d'insertion et de soutien (API)",
    url=f"{BASE_URL}/structures",
    licence="Licence Ouverte 2.0 (selon les producteurs)",
    attribution="data·inclusion (GIP Plateforme de l'inclusion) et ses producteurs",
    vintage="en continu (champ date_maj)",
    crs=WGS84,
    columns=REQUIRED_FIELDS + ("source", "date_maj", "adresse", "reseaux_porteurs",
                               "lien_source"),
    notes=("Accès par jeton ; seules les structures liées à la parentalité sont gardées ; "
           "les crèches et MAM de monenfant.fr (CAF) arrivent par cette source."),
))


def _plain(text: str) -> str:
    text = unicodedata.normalize("NFKD", str(text)).encode("ascii", "ignore").decode().lower()
    return re.sub(r"[^a-z0-9]+", " ", text).strip()


def is_monenfant(structure: Mapping[str, Any]) -> bool:
    """Whether a structure is a monenfant.fr childcare structure (CNAF).

    Examples
    --------
    >>> is_monenfant({"source": "monenfant", "reseaux_porteurs": ["caf"]})
    True
    >>> is_monenfant({"source": "dora", "reseaux_porteurs": ["caf"],
    ...               "lien_source": "https://dora.inclusion.beta.gouv.fr/structures/x"})
    False
    """
    if str(structure.get("source") or "").strip().lower() == MONENFANT:
        return True
    reseaux = {str(r).lower() for r in structure.get("reseaux_porteurs") or []}
    return "caf" in reseaux and "monenfant.fr" in str(structure.get("lien_source") or "")


def monenfant_type(structure: Mapping[str, Any]) -> tuple[str, str]:
    """Type of a monenfant.fr structure, from the structure type named in its link.

    Examples
    --------
    >>> base = "https://monenfant.fr/que-recherchez-vous/"
    >>> monenfant_type({"lien_source": base + "les-lutins/micro-creche/123"})
    ('eaje', 'micro_creche')
    >>> monenfant_type({"lien_source": base + "a-petits-pas/maison-d-assistants-maternels/9"})
    ('mam', '')
    >>> monenfant_type({"lien_source": base + "mode-d-accueil/456", "nom": "Les Lutins"})
    ('eaje', '')
    """
    link = str(structure.get("lien_source") or "")
    parts = [p for p in link.split("que-recherchez-vous/", 1)[-1].split("/") if p]
    candidates = []
    if len(parts) >= 3:
        candidates.append(_plain(parts[-2]))  # <name>/<type>/<id>
    candidates.append(_plain(" ".join(parts[:-1]) if parts else ""))
    candidates.append(_plain(structure.get("nom") or ""))
    for text in candidates:
        for pattern, target in MONENFANT_TYPES:
            if re.search(pattern, text):
                return target
    return ("eaje", "")


def classify(
    structure: Mapping[str, Any], *, childcare: bool = False
) -> tuple[str, str] | None:
    """Return (type, subtype) for a structure, or ``None`` when not parenting-related.

    ``childcare``: the structure offers a service of thematique
    :data:`CHILDCARE_THEMATIQUE`.

    Examples
    --------
    >>> classify({"nom": "LAEP La Courte Échelle"})
    ('laep', '')
    >>> classify({"nom": "Association Les Amis", "reseaux_porteurs": ["fcsf"]})
    ('centre_social', '')
    >>> classify({"nom": "Mission locale"}) is None
    True
    >>> classify({"nom": "Les P'tits Loups", "source": "monenfant",
    ...           "lien_source": "https://monenfant.fr/que-recherchez-vous/x/creche/1"})
    ('eaje', '')
    """
    if is_monenfant(structure):
        return monenfant_type(structure)
    name = _plain(structure.get("nom") or "")
    for pattern, target in NAME_RULES[:4]:
        if re.search(pattern, name):
            return target
    for reseau in structure.get("reseaux_porteurs") or []:
        if str(reseau) in RESEAUX:
            return RESEAUX[str(reseau)]
    for pattern, target in NAME_RULES[4:]:
        if re.search(pattern, name):
            return target
    if childcare:
        for pattern, target in MONENFANT_TYPES:
            if re.search(pattern, name):
                return target
        return ("eaje", "")
    return None


def _token(token: str | None) -> str:
    tok = token or os.environ.get(TOKEN_ENV, "").strip()
    if not tok:
        raise SourceError(
            f"{INCLUSION.key}: the data·inclusion API needs an access token; ask for one on "
            "data.gouv.fr (« API data·inclusion ») and set the environment variable "
            f"{TOKEN_ENV}, or skip this source.",
            kind="token", source=INCLUSION.key)
    return tok


def fetch_structures(
    *,
    dep_code: str,
    token: str | None = None,
    page_size: int = PAGE_SIZE,
    max_pages: int = 100,
    offline: bool | None = None,
    refresh: bool = False,
) -> list[dict[str, Any]]:
    """Fetch every structure of a département, page by page (``/api/v1/structures``)."""
    return _fetch_pages("structures", {"code_departement": dep_code}, token=token,
                        page_size=page_size, max_pages=max_pages, offline=offline,
                        refresh=refresh)


def fetch_services(
    *,
    dep_code: str,
    thematique: str = CHILDCARE_THEMATIQUE,
    token: str | None = None,
    page_size: int = PAGE_SIZE,
    max_pages: int = 100,
    offline: bool | None = None,
    refresh: bool = False,
) -> list[dict[str, Any]]:
    """Fetch the services of a thematique in a département (``/api/v1/services``)."""
    return _fetch_pages("services", {"code_departement": dep_code, "thematiques": thematique},
                        token=token, page_size=page_size, max_pages=max_pages,
                        offline=offline, refresh=refresh)


def childcare_structure_ids(services: Iterable[Mapping[str, Any]]) -> set[str]:
    """Structure ids of services (both ``<id>`` and ``<source>--<id>`` forms).

    Examples
    --------
    >>> sorted(childcare_structure_ids([{"source": "monenfant", "structure_id": "12"}]))
    ['12', 'monenfant--12']
    """
    ids: set[str] = set()
    for s in services:
        sid = str(s.get("structure_id") or "").strip()
        if not sid:
            continue
        ids.add(sid)
        src = str(s.get("source") or "").strip()
        if src and not sid.startswith(f"{src}--"):
            ids.add(f"{src}--{sid}")
    return ids


def _fetch_pages(
    route: str,
    params: Mapping[str, str],
    *,
    token: str | None,
    page_size: int,
    max_pages: int,
    offline: bool | None,
    refresh: bool,
) -> list[dict[str, Any]]:
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise InputError(f"page_size={page_size!r}: the API accepts 1 to {MAX_PAGE_SIZE}")
    dep_code = params.get("code_departement", "")
    off = _http.get_config().offline if offline is None else offline
    headers = {} if off else {"Authorization": f"Bearer {_token(token)}"}
    items: list[dict[str, Any]] = []
    total: int | None = None
    for page in range(1, max_pages + 1):
        doc = _http.fetch_json(
            f"{BASE_URL}/{route}", source=INCLUSION.key,
            params={**params, "page": page, "size": page_size},
            headers=headers, offline=offline, refresh=refresh, check=_check_page,
        )
        items.extend(doc["items"])
        announced = doc.get("total")
        if isinstance(announced, int) and not isinstance(announced, bool):
            total = announced
        pages = doc.get("pages")
        if not doc["items"] or (isinstance(pages, int) and page >= pages) or (
                total is not None and len(items) >= total):
            break
    else:
        _http.note_partial(f"data·inclusion {route} ({dep_code}) : arrêt après {max_pages} "
                           f"pages, {len(items)} ligne(s) reçue(s)"
                           + (f" sur {total} annoncée(s)" if total is not None else ""))
        return items
    if total is not None and len(items) < total:  # rows received are counted, not pages
        _http.note_partial(f"data·inclusion {route} ({dep_code}) : {len(items)} ligne(s) "
                           f"reçue(s) sur {total} annoncée(s)")
    return items


def _check_page(doc: Any) -> None:
    if not isinstance(doc, dict) or not isinstance(doc.get("items"), list):
        raise ValueError("not a data·inclusion page (no 'items' list)")


def parse_structures(
    items: Iterable[Mapping[str, Any]], *, childcare_ids: Iterable[str] = ()
) -> tuple[gpd.GeoDataFrame, pd.DataFrame]:
    """Turn API structures into a facility table (relevant ones) and unplaced rows (pure).

    ``childcare_ids``: ids of structures offering a childcare service
    (:func:`childcare_structure_ids`).

    Raises
    ------
    SourceError
        When the items lack :data:`REQUIRED_FIELDS` (the message names them).
    """
    items = list(items)
    if items:
        fields = set().union(*(i.keys() for i in items))
        missing = [f for f in REQUIRED_FIELDS if f not in fields]
        if missing:
            raise SourceError(
                f"{INCLUSION.key}: structures lack fields {missing}; found {sorted(fields)}. "
                "The API changed: update data_sources/inclusion.py."
            )
    childcare = set(childcare_ids)
    placed, unplaced = [], []
    for it in items:
        target = classify(it, childcare=str(it.get("id")) in childcare)
        if target is None:
            continue
        address = ", ".join(str(it.get(k) or "").strip()
                            for k in ("adresse", "complement_adresse") if it.get(k))
        rec: dict[str, Any] = {
            "type": target[0], "subtype": target[1],
            "name": str(it.get("nom") or "").strip(),
            "address": address,
            "postcode": str(it.get("code_postal") or ""),
            "code_insee": str(it.get("code_insee") or ""),
            "phone": str(it.get("telephone") or ""),
            "email": str(it.get("courriel") or ""),
            "website": str(it.get("site_web") or ""),
            "operator": str(it.get("source") or ""),
            "source": INCLUSION.key,
            "source_id": str(it["id"]),
            "source_date": str(it.get("date_maj") or ""),
        }
        lon, lat = it.get("longitude"), it.get("latitude")
        try:
            lonf, latf = float(lon), float(lat)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            lonf = latf = np.nan
        if np.isfinite([lonf, latf]).all():
            rec.update(lon=lonf, lat=latf,
                       position_precision="address" if address else "commune")
            placed.append(rec)
        else:
            unplaced.append(rec)
    return facility_frame(placed), pd.DataFrame(unplaced)


def load_inclusion(
    area: Territory,
    *,
    token: str | None = None,
    offline: bool | None = None,
    refresh: bool = False,
) -> gpd.GeoDataFrame:
    """Load the parenting-related data·inclusion structures of ``area``."""
    deps = area.departements or tuple(sorted({c[:3] if c.startswith("97") else c[:2]
                                              for c in area.communes}))
    items: list[dict[str, Any]] = []
    services: list[dict[str, Any]] = []
    notes: list[str] = []
    for dep in deps:
        items += fetch_structures(dep_code=dep, token=token, offline=offline, refresh=refresh)
        try:
            services += fetch_services(dep_code=dep, token=token, offline=offline,
                                       refresh=refresh)
        except SourceError as exc:
            logger.warning("data_inclusion: childcare services unavailable (%s)", exc)
            notes.append("services de garde d'enfants indisponibles : seules les crèches "
                         "reconnues par leur nom ou par monenfant.fr sont gardées")
    placed, unplaced = parse_structures(items, childcare_ids=childcare_structure_ids(services))
    keep = set(area.communes)
    placed = placed[placed["code_insee"].isin(keep)]
    placed = placed.drop_duplicates("facility_id")
    out = validate_facilities(gpd.GeoDataFrame(placed, geometry="geometry", crs=WGS84),
                              source=INCLUSION.key)
    out.attrs["unplaced"] = unplaced[unplaced["code_insee"].isin(keep)] if len(unplaced) else (
        unplaced)
    out.attrs["notes"] = notes
    return out
