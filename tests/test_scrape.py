"""Tests of data_sources.scrape and of ``python -m data_sources scrape``.

HTML pages in ``tests/data/scrape/``, all written by hand for these tests (no page was
copied), in the shapes real directory pages have:

- ``departement_pmi_jsonld.html``: a département's page of PMI consultations whose CMS
  publishes schema.org JSON-LD (``@graph`` of ``GovernmentOffice`` with ``PostalAddress``
  and ``GeoCoordinates``, a ``@type`` given as a list, an ``email`` with ``mailto:``), a
  broken JSON-LD block, the same centre repeated as an HTML card, a header/footer holding
  the département's own address (navigation must not become an entry), and a name that
  looks like a spreadsheet formula;
- ``interco_rpe_laep.html``: an intercommunality's "petite enfance" page: a table of RPE
  (name | address on one or two lines | phone and ``mailto:`` link), one of them outside
  the territory, and a ``<ul>`` of LAEP with the address inside a sentence
  (``- 2 rue de la Paix 44160 Pontchâteau - le mardi…``);
- ``federation_centres_sociaux.html``: a federation's list using schema.org microdata
  (``LocalBusiness`` with a nested ``PostalAddress`` and ``GeoCoordinates``), a classic
  hCard (``vcard``, ``fn org``, ``adr``…) and a microformats2 ``h-card``;
- ``federation_liste_senacs.html``: a federation's list of eight centres sociaux laid out
  like the SENACS observatory's public list (``senacs.fr/structure/csx``, read with the
  search tool: per structure the section titles « Informations sur la structure »,
  « Fiche identité », « Adresse », then the address paragraph, and **outside** it
  « Adresse mail contact : … » and « Site internet : www… » as plain text, the SIRET, an
  « Historique »), some e-mails as ``mailto:`` links, some sites as « Voir le site »
  links, one card whose only headings are section titles; the federation itself
  publishes the page (``og:site_name``, a schema.org ``NGO`` at the site's home page, and
  an intro block with its own address). Names, addresses and contacts are invented;
- ``captcha.html`` (reCAPTCHA form) and ``login.html`` (password form): pages that must
  not be read.

The Géoplateforme answer is the CSV shape of ``tests/data/ban/`` (see tests/test_ban.py).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pandas as pd
import pytest
import responses

from data_sources import _http, scrape
from data_sources.__main__ import main
from data_sources.cog import resolve
from data_sources.user_file import load_facility_file
from diagnosis.errors import InputError, SourceError

DATA = Path(__file__).parent / "data" / "scrape"
SITE = "https://www.cc-paysdepontchateau.example.fr"
PAGE = f"{SITE}/petite-enfance/relais-et-laep"
ROBOTS = f"{SITE}/robots.txt"
GEOCODER = "https://data.geopf.fr/geocodage/search/csv"
EPCI = resolve("200000438")


def page(name: str) -> str:
    return (DATA / name).read_text(encoding="utf-8")


pytestmark = pytest.mark.usefixtures("http_sandbox")


def fast() -> scrape.Politeness:
    return scrape.Politeness(delay_s=0)


def geocoder_answer(request) -> tuple[int, dict[str, str], str]:
    """Answer the batch geocoder for every row sent: scores invented, points a few hundred
    metres from the reference point of the commune sent (the shipped geography), as a
    real geocoder answers inside the commune."""
    from data_sources.national import load_national_communes

    ref = load_national_communes(departements=["44"]).set_index("code_insee")
    body = request.body.decode("utf-8")
    lines = body.split("filename=\"adresses.csv\"")[1].split("\r\n\r\n", 1)[1].split(
        "\r\n--")[0].strip().splitlines()
    out = ["rid;address;postcode;citycode;latitude;longitude;result_score;result_type;"
           "result_citycode;result_status"]
    for i, line in enumerate(lines[1:]):
        rid, address, postcode, citycode = line.split(";")
        lat = float(ref.loc[citycode, "point_lat"]) + i / 1000 if citycode in ref.index \
            else 47.40 + i / 100
        lon = float(ref.loc[citycode, "point_lon"]) if citycode in ref.index else -2.05
        out.append(f"{rid};{address};{postcode};{citycode};{lat:.4f};{lon:.4f};"
                   f"0.91;housenumber;{citycode};ok")
    return 200, {"Content-Type": "text/csv"}, "\n".join(out)


# --- extraction (pure) ---------------------------------------------------------------


def test_json_ld_entries_and_broken_block_skipped():
    entries = scrape.extract_entries(page("departement_pmi_jsonld.html"))
    names = [e["nom"] for e in entries]
    assert names == ["Centre médico-social de Pontchâteau - consultations PMI",
                     "Permanence PMI de Saint-Gildas-des-Bois",
                     '=HYPERLINK("http://evil.example")']  # card duplicate and nav dropped
    first = entries[0]
    assert (first["adresse"], first["code_postal"], first["commune"]) == (
        "12 rue des Écoles", "44160", "Pontchâteau")
    assert first["telephone"] == "02 40 00 00 11" and first["latitude"] == "47.4386"
    assert entries[1]["email"] == "pmi.stgildas@loire-atlantique.fr"
    assert {e["methode"] for e in entries} == {"json-ld"}


def test_table_and_list_entries():
    entries = scrape.extract_entries(page("interco_rpe_laep.html"), base_url=PAGE)
    got = {e["nom"]: (e["adresse"], e["code_postal"], e["commune"], e["telephone"],
                      e["methode"]) for e in entries}
    assert got == {
        "RPE de Pontchâteau": ("4 rue du Calvaire", "44160", "Pontchâteau", "02 40 45 00 01",
                               "tableau"),
        "RPE de Saint-Gildas-des-Bois": ("1 allée des Tilleuls", "44530",
                                         "Saint-Gildas-des-Bois", "02 40 45 00 02", "tableau"),
        "RPE antenne de Nantes (hors territoire)": ("8 boulevard Guist'hau", "44000", "Nantes",
                                                    "02 40 45 00 03", "tableau"),
        "LAEP La Courte Échelle": ("2 rue de la Paix", "44160", "Pontchâteau",
                                   "06 12 34 56 78", "liste"),
        "LAEP Les P'tits Pas": ("15 route de Redon", "44530", "Saint-Gildas-des-Bois", "",
                                "liste"),
    }
    rpe = next(e for e in entries if e["nom"] == "RPE de Pontchâteau")
    assert rpe["email"] == "rpe@cc-paysdepontchateau.fr"


def test_microdata_and_hcards():
    entries = scrape.extract_entries(page("federation_centres_sociaux.html"))
    got = {e["nom"]: e for e in entries}
    assert set(got) == {"Centre social Le Pont", "Espace de vie sociale La Fabrique",
                        "Centre socioculturel de Savenay"}
    pont = got["Centre social Le Pont"]
    assert pont["methode"] == "microdata" and pont["adresse"] == "7 rue de Nantes"
    assert (pont["latitude"], pont["longitude"]) == ("47.4390", "-2.0601")
    assert pont["telephone"] == "02 40 45 00 10"
    assert pont["site_web"] == "https://centresocial-lepont.example.org"
    fab = got["Espace de vie sociale La Fabrique"]
    assert fab["methode"] == "hcard" and fab["email"] == "evs.lafabrique@example.org"
    assert (fab["code_postal"], fab["commune"]) == ("44530", "Saint-Gildas-des-Bois")
    assert got["Centre socioculturel de Savenay"]["adresse"] == "3 rue du Château"


def test_contacts_outside_the_address_headings_and_the_page_owner():
    """Issue 21.4: 0 of 8 e-mails and sites were found on such a list; the section
    titles became names; the federation was listed as a centre social."""
    entries = scrape.extract_entries(page("federation_liste_senacs.html"),
                                     base_url="https://www.federation-csx44.example.fr/reseau")
    rows = pd.DataFrame(entries)
    assert len(rows) == 8
    assert not rows["nom"].str.contains("Fédération").any()
    assert not rows["nom"].map(scrape._is_generic).any()
    assert rows["nom"].iloc[7] == "Centre social Mosaïque"  # its first address line
    assert (rows["email"] != "").sum() == 8 and (rows["site_web"] != "").sum() == 8
    assert (rows["telephone"] != "").sum() == 8
    first = rows.set_index("nom").loc["CENTRE SOCIAL LE PONT DE PIERRE"]
    assert first["email"] == "accueil@cs-pontdepierre.example.fr"
    assert first["site_web"] == "https://www.cs-pontdepierre.example.fr"
    assert first["telephone"] == "02 40 11 22 01"
    fabrique = rows.set_index("nom").loc["ESPACE DE VIE SOCIALE LA FABRIQUE"]
    assert fabrique["site_web"] == "https://lafabrique-missillac.example.fr/"
    # each card keeps its own contacts (never the next card's)
    assert rows["email"].is_unique and rows["site_web"].is_unique


def test_page_organisation_names():
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(page("federation_liste_senacs.html"), "html.parser")
    assert scrape.page_organisation(soup, base_url="https://federation-csx44.example.fr/x") == {
        "federation des centres sociaux de loire atlantique"}
    # an organisation whose url is another site, or absent, is not the page's
    soup = BeautifulSoup(page("departement_pmi_jsonld.html"), "html.parser")
    assert scrape.page_organisation(soup, base_url="") == set()


@pytest.mark.parametrize(("name", "words"), [("captcha.html", "captcha"),
                                              ("login.html", "connexion")])
def test_captcha_and_login_are_refused(name, words):
    assert words in scrape.refusal_reason(200, page(name))
    assert scrape.refusal_reason(403, "") == "accès refusé (HTTP 403)"
    assert scrape.refusal_reason(200, page("interco_rpe_laep.html")) == ""


def test_csv_cells_are_neutralised():
    rows = pd.DataFrame([{c: "" for c in scrape.CSV_COLUMNS} | {
        "nom": "=1+1", "adresse": "@x", "telephone": "-3+cmd", "longitude": "-2.05"}])
    text = scrape.write_facility_csv(rows)
    assert "'=1+1;" in text and ";'@x;" in text and ";'-3+cmd;" in text
    assert ";-2.05;" in text  # a plain number is not a formula


# --- the scrape (recorded responses) -------------------------------------------------


@responses.activate
def test_scrape_geocodes_filters_and_writes_an_importable_file(tmp_path):
    responses.get(ROBOTS, body="User-agent: *\nDisallow: /admin/\n", content_type="text/plain")
    responses.get(PAGE, body=page("interco_rpe_laep.html"), content_type="text/html")
    responses.add_callback(responses.POST, GEOCODER, callback=geocoder_answer)
    result = scrape.scrape_directory(PAGE, facility_type="Relais petite enfance",
                                     territory=EPCI, politeness=fast())
    rows = result.rows
    assert result.dropped == 1  # the Nantes antenna
    assert set(rows["code_insee"]) == {"44129", "44161"}
    assert set(rows["type"]) == {"rpe"}
    assert rows["latitude"].astype(bool).all()
    assert set(rows["position_precision"]) == {"address"}
    assert set(rows["source_url"]) == {PAGE}
    assert set(rows["source_date"]) == {result.fetched_on}
    ua = {c.request.headers["User-Agent"] for c in responses.calls}
    assert ua == {_http.USER_AGENT}
    out = tmp_path / "rpe.csv"
    scrape.write_facility_csv(rows, out)
    imported = load_facility_file(out)
    fac = imported.facilities
    assert len(fac) == 4 and set(fac["type"]) == {"rpe"}
    assert set(fac["code_insee"]) == {"44129", "44161"}
    assert "RPE de Pontchâteau" in set(fac["name"])
    assert imported.report.rejected.empty


@responses.activate
def test_robots_disallow_stops_before_the_page():
    responses.get(ROBOTS, body="User-agent: *\nDisallow: /petite-enfance/\n",
                  content_type="text/plain")
    page_mock = responses.get(PAGE, body=page("interco_rpe_laep.html"),
                              content_type="text/html")
    with pytest.raises(SourceError, match="robots.txt .* interdit"):
        scrape.scrape_directory(PAGE, facility_type="rpe", politeness=fast())
    assert page_mock.call_count == 0


@responses.activate
def test_a_disallow_added_since_the_last_run_is_honoured():
    """robots.txt is re-read at each run (the HTTP cache kept it 30 days before)."""
    responses.get(ROBOTS, body="User-agent: *\nAllow: /\n", content_type="text/plain")
    page_mock = responses.get(PAGE, body=page("interco_rpe_laep.html"),
                              content_type="text/html")
    first = scrape.scrape_directory(PAGE, facility_type="rpe", geocode=False,
                                    politeness=fast())
    assert len(first.rows) == 5 and page_mock.call_count == 1
    responses.replace(responses.GET, ROBOTS, body="User-agent: *\nDisallow: /petite-enfance/\n",
                      content_type="text/plain")
    with pytest.raises(SourceError, match="robots.txt .* interdit"):
        scrape.scrape_directory(PAGE, facility_type="rpe", geocode=False, politeness=fast())
    assert page_mock.call_count == 1  # the page is not asked again
    # within one run, robots.txt is read once per site
    pol = fast()
    responses.replace(responses.GET, ROBOTS, body="User-agent: *\nAllow: /\n",
                      content_type="text/plain")
    robots_calls = sum(c.request.url == ROBOTS for c in responses.calls)
    for i in range(2):
        scrape.scrape_directory(f"{PAGE}?p={i}", facility_type="rpe", geocode=False,
                                politeness=pol)
    assert sum(c.request.url == ROBOTS for c in responses.calls) == robots_calls + 1


@responses.activate
@pytest.mark.parametrize(("robots", "delay_s", "spacing_s"), [
    ("User-agent: *\nCrawl-delay: 10\n", 2.0, 10.0),
    ("User-agent: *\nCrawl-delay: 1\n", 2.0, 2.0),  # never below --delay
    ("User-agent: Maillage\nRequest-rate: 1/30\n", 2.0, 30.0),
    ("User-agent: *\nAllow: /\n", 3.0, 3.0),
])
def test_crawl_delay_is_honoured_never_below_the_delay(monkeypatch, robots, delay_s,
                                                        spacing_s):
    responses.get(ROBOTS, body=robots, content_type="text/plain")
    responses.get(PAGE, body=page("interco_rpe_laep.html"), content_type="text/html")
    pol = scrape.Politeness(delay_s=delay_s)
    waits = []
    monkeypatch.setattr(pol._limiter, "wait", lambda host, rate: waits.append(rate))
    scrape.scrape_directory(PAGE, facility_type="rpe", geocode=False, politeness=pol)
    # robots.txt at --delay (not yet known), then the page at the site's pace
    assert waits == [pytest.approx(1 / delay_s), pytest.approx(1 / spacing_s)]
    assert pol.host_delay_s("www.cc-paysdepontchateau.example.fr") == spacing_s


@responses.activate
def test_robots_for_our_agent_and_missing_robots():
    responses.get(ROBOTS, body="User-agent: Maillage\nDisallow: /\n\nUser-agent: *\nAllow: /\n",
                  content_type="text/plain")
    with pytest.raises(SourceError, match="robots.txt"):
        scrape.scrape_directory(PAGE, facility_type="rpe", politeness=fast())
    other = "https://www.autre-interco.example.fr"
    responses.get(f"{other}/robots.txt", status=404)
    responses.get(f"{other}/rpe", body=page("interco_rpe_laep.html"), content_type="text/html")
    result = scrape.scrape_directory(f"{other}/rpe", facility_type="rpe", geocode=False,
                                     politeness=fast())
    assert len(result.rows) == 5


@responses.activate
def test_robots_unavailable_or_offline_stops():
    responses.get(ROBOTS, status=503)
    with pytest.raises(SourceError, match=r"robots.txt ne répond pas \(HTTP 503\)"):
        scrape.scrape_directory(PAGE, facility_type="rpe", politeness=fast())
    with pytest.raises(SourceError, match="hors ligne et aucune copie locale de la page"):
        scrape.scrape_directory("https://jamais-lu.example.fr/p", facility_type="rpe",
                                offline=True, politeness=fast())


@responses.activate
@pytest.mark.parametrize(("body", "status", "why"), [
    ("captcha.html", 200, "captcha"), ("login.html", 200, "connexion"), (None, 403, "403")])
def test_never_gets_around_a_captcha_or_a_login(body, status, why):
    responses.get(ROBOTS, status=404)
    responses.get(PAGE, body=page(body) if body else "", status=status,
                  content_type="text/html")
    with pytest.raises(SourceError, match=f"n'est pas lue : .*{why}.*ne contourne"):
        scrape.scrape_directory(PAGE, facility_type="rpe", politeness=fast())
    assert len(responses.calls) == 2  # robots.txt and the page, never a retry around it


def test_one_request_at_a_time_per_host_with_a_delay(monkeypatch):
    active, peak, waits = [0], [0], []

    class FakeResponse:
        status_code = 200
        content = page("interco_rpe_laep.html").encode()

    class FakeSession:
        def get(self, url, **kw):
            active[0] += 1
            peak[0] = max(peak[0], active[0])
            time.sleep(0.03)
            active[0] -= 1
            return FakeResponse()

    monkeypatch.setattr(_http, "get_session", lambda: FakeSession())
    pol = scrape.Politeness(delay_s=1.5)
    monkeypatch.setattr(pol._limiter, "wait", lambda host, rate: waits.append((host, rate)))
    threads = [threading.Thread(target=scrape.scrape_directory,
                                args=(f"{PAGE}?page={i}",),
                                kwargs={"facility_type": "rpe", "geocode": False,
                                        "politeness": pol}) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert peak[0] == 1
    host = "www.cc-paysdepontchateau.example.fr"
    assert waits == [(host, pytest.approx(1 / 1.5))] * 4  # robots.txt once, then 3 pages


@responses.activate
def test_offline_reads_the_cache_and_does_not_geocode():
    responses.get(ROBOTS, status=404)
    responses.get(PAGE, body=page("federation_centres_sociaux.html"), content_type="text/html")
    scrape.scrape_directory(PAGE, facility_type="centre_social", geocode=False,
                            politeness=fast())
    n = len(responses.calls)
    result = scrape.scrape_directory(PAGE, facility_type="centre_social", offline=True,
                                     politeness=fast())
    assert len(responses.calls) == n  # nothing asked to the network
    assert any("hors ligne" in note for note in result.notes)
    rows = result.rows.set_index("nom")
    assert rows.loc["Centre social Le Pont", "latitude"] == "47.4390"
    assert rows.loc["Centre social Le Pont", "position_precision"] == "address"
    assert rows.loc["Espace de vie sociale La Fabrique", "latitude"] == ""


def test_bad_type_and_url():
    with pytest.raises(InputError, match="type='piscine'"):
        scrape.scrape_directory(PAGE, facility_type="piscine", politeness=fast())
    with pytest.raises(InputError, match="http"):
        scrape.scrape_directory("ftp://example.fr/x", facility_type="rpe")


# --- command line --------------------------------------------------------------------


@responses.activate
def test_cli_scrape_writes_the_file(tmp_path, capsys):
    responses.get(ROBOTS, status=404)
    responses.get(PAGE, body=page("departement_pmi_jsonld.html"), content_type="text/html")
    responses.add_callback(responses.POST, GEOCODER, callback=geocoder_answer)
    out = tmp_path / "pmi.csv"
    code = main(["scrape", PAGE, "--type", "pmi", "--territory", "44", "--out", str(out),
                 "--delay", "0"])
    assert code == 0
    text = out.read_text(encoding="utf-8")
    assert text.startswith("nom;type;adresse;code_postal;commune;code_insee")
    assert "'=HYPERLINK" in text  # a formula-like name is neutralised
    err = capsys.readouterr()
    assert "3 structure(s) trouvée(s)" in err.err and "Fichier écrit" in err.out


@responses.activate
def test_cli_scrape_refused_page_and_bad_type(tmp_path, capsys):
    responses.get(ROBOTS, status=404)
    responses.get(PAGE, body=page("captcha.html"), content_type="text/html")
    assert main(["scrape", PAGE, "--type", "rpe", "--out", str(tmp_path / "x.csv"),
                 "--delay", "0"]) == 1
    assert "captcha" in capsys.readouterr().err
    assert not (tmp_path / "x.csv").exists()
    assert main(["scrape", PAGE, "--type", "piscine", "--delay", "0"]) == 2


@pytest.mark.network
def test_live_robots_of_a_public_site():
    """robots.txt of a real public site is read and honoured (no page is scraped)."""
    _http.reset()
    pol = scrape.Politeness(delay_s=1.0)
    robots = pol.robots("https://www.service-public.fr/", offline=False)
    assert isinstance(robots.can_fetch(_http.USER_AGENT, "https://www.service-public.fr/"), bool)


# --- the app's import page -----------------------------------------------------------


@responses.activate
def test_import_page_reads_a_directory_page():
    from streamlit.testing.v1 import AppTest

    from tests.conftest import REPO

    responses.get(ROBOTS, status=404)
    responses.get(PAGE, body=page("interco_rpe_laep.html"), content_type="text/html")
    responses.add_callback(responses.POST, GEOCODER, callback=geocoder_answer)
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=90)
    at.run(timeout=90)
    at.switch_page("app_pages/import_fichier.py").run(timeout=90)
    assert not at.exception
    at.text_input(key="scrape_url").set_value(PAGE)
    at.selectbox(key="scrape_type").set_value("rpe")
    at.button(key="scrape_run").click().run(timeout=90)
    assert not at.exception, [e.value for e in at.exception]
    files = at.session_state["facility_files"]
    assert len(files) == 1 and files[0][0].startswith("page_")
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Acceptées"] == "4"  # the Nantes antenna is outside the territory
    assert any("4 structure(s) trouvée(s)" in i.value.replace("\\", "") for i in at.info)


def test_card_contacts_are_data_never_code():
    html = """<html><body><div class="structure"><h3>=cmd|' /C calc'!A0</h3>
      <p>3 rue des Écoles<br>44160 Pontchâteau</p>
      <p>Adresse mail contact : <a href="mailto:x@ex.fr?subject=<script>">x@ex.fr</a></p>
      <p>Site internet : javascript:alert(1)</p></div></body></html>"""
    (entry,) = scrape.extract_entries(html, base_url="https://fed.example.fr/")
    assert entry["email"] == "x@ex.fr" and entry["site_web"] == ""
    text = scrape.write_facility_csv(pd.DataFrame([{**{c: "" for c in scrape.CSV_COLUMNS},
                                                    "nom": entry["nom"]}]))
    assert "\n'=cmd|" in text
