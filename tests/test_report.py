"""The PDF report: content, honesty about missing parts, escaping, command line.

Data: the embedded demo (EPCI 200000438, CC du Pays de Pontchâteau Saint-Gildas-des-Bois,
9 communes, 353 births in 2024). A PDF takes a few seconds: each one is rendered once per
module and shared by the tests.
"""

from __future__ import annotations

import datetime as dt
import io
import re
from dataclasses import dataclass

import pandas as pd
import pytest
from pypdf import PdfReader

from diagnosis import report as rp
from diagnosis.__main__ import main
from diagnosis.overview import compute_overview
from diagnosis.pipeline import DiagnosisParams, run_diagnosis
from diagnosis.report import synthesis
from diagnosis.travel import Travel

AUTHOR = "Jeanne <b>Martin</b> & Cie"


def _squash(text: str) -> str:
    """Text without whitespace: PDF extraction breaks lines anywhere."""
    return re.sub(r"\s+", "", text)


def _plain(text: str) -> str:
    """One line, no-break spaces (French typography) as plain spaces."""
    return re.sub(r"[\s\u00a0\u202f]+", " ", text)


@pytest.fixture(scope="module")
def ws():
    from data_sources.workspace import load_workspace

    return load_workspace("200000438")


@pytest.fixture(scope="module")
def overview(ws):
    return compute_overview(ws.territory, ws.communes, ws.facilities, sources=ws.sources)


@pytest.fixture(scope="module")
def bare_pdf(ws, overview):
    """The report with no optional result: every optional part must say so."""
    meta = rp.ReportMeta(author=AUTHOR, created=dt.date(2026, 1, 15),
                         sources=tuple(ws.sources), notices=tuple(ws.notices),
                         origin=ws.origin)
    return rp.html_to_pdf(rp.render_report_html(overview, meta=meta, context=ws.communes))


@pytest.fixture(scope="module")
def pages(bare_pdf):
    return [p.extract_text() for p in PdfReader(io.BytesIO(bare_pdf)).pages]


def test_pdf_bytes_and_page_count(bare_pdf, pages):
    assert bare_pdf.startswith(b"%PDF")
    assert rp.count_pdf_pages(bare_pdf) == len(pages)
    # synthesis, needs, offer, access, siting (+ flowing parts), method, annex
    assert 7 <= len(pages) <= 12


def test_first_page_holds_territory_date_author_and_parameters(pages):
    cover = _plain(pages[0])
    assert "CC du Pays de Pontchâteau St-Gildas-des-Bois" in cover
    assert "200000438" in cover and "15/01/2026" in cover
    # the author's markup is printed as text: it was escaped, not interpreted
    assert AUTHOR in cover
    assert "seuil de proximité : 5 km" in cover
    assert "Données de démonstration" in cover  # the workspace notices
    assert "Non calculé pour ce rapport" in cover  # no siting: the synthesis says so


def test_synthesis_fits_on_page_one(pages):
    synth = _plain(pages[0])
    assert "1. Synthèse" in synth and "Constats" in synth and "Et maintenant ?" in synth
    assert "2. Le territoire" not in synth and "2. Le territoire" in pages[1]
    assert _squash("353 naissances domiciliées en 2024") in _squash(synth)
    assert "≈ 1 059" in synth
    assert "ESTIMATION" in synth  # the under-3 figure is labelled as an estimate
    assert "en baisse de 9 %" in synth  # 353 births in 2024 against 388 a year in 2016-2021
    offer = _plain("".join(pages[1:4]))
    assert "Naissances à 5 km ou moins" in offer and "Offre connue" in offer


def test_every_page_has_attribution_and_number(ws, pages):
    n = len(pages)
    for i, text in enumerate(pages, start=1):
        flat = _squash(text)
        assert _squash(f"Page {i} / {n}") in flat, i
        assert _squash("IGN, INSEE — Admin Express") in flat, i


def test_sources_with_vintages_and_licences(ws, pages):
    text = _squash("".join(pages))
    for s in ws.sources:
        assert _squash(s["attribution"]) in text
        assert _squash(s["vintage"]) in text
    assert _squash("Licence Ouverte 2.0") in text


def test_missing_parts_say_non_calcule(pages):
    text = "\n".join(pages)
    # accessibility, gaps, siting, partners' selection, cohorts, comparison
    assert text.count("Non calculé.") >= 6
    cohorts = next(p for p in pages if "7. Groupes de pairs" in p)
    assert "Non calculé" in cohorts


def test_limits_and_precision(pages, overview):
    text = "\n".join(pages)
    limits = text[text.index("Limites de ce diagnostic"):]
    assert "vol d'oiseau" in limits and "estimés" in limits
    assert "Précision des positions" in limits
    approx = sum(f["at_commune_precision"] for f in overview.summary["facilities"].values())
    assert approx > 0 and _squash("dont placées à la mairie") in _squash(limits)


def test_directory_lists_facilities_with_contacts(pages, overview):
    text = "\n".join(pages)
    directory = text[text.index("Annexe A. Annuaire des structures connues"):]
    for name in overview.layers["facilities"]["name"]:
        assert _squash(name) in _squash(directory)
    assert "Mairies (communes, CCAS)" in directory


def test_method_annex_holds_the_guides_substance_without_code_paths(pages):
    text = "\n".join(pages)
    method = _squash(text[text.index("9. Méthode, sources et limites"):])
    for part in ("NAIS1621 / 6", "3 × NAISD24", "E2SFCA", "Church et ReVelle",
                 "loi de Little", "Lire les cartes"):
        assert _squash(part) in method, part
    assert ".md" not in text and ".py" not in text and "guides/" not in text


def test_html_escapes_every_value(overview):
    meta = rp.ReportMeta(author="<script>alert(1)</script>", notices=("a < b & c",))
    html = rp.render_report_html(overview, meta=meta)
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "a &lt; b &amp; c" in html
    assert html.count("data:image/jpeg;base64,") >= 3  # maps embedded, nothing fetched


@dataclass(frozen=True)
class _FakeCohorts:
    summary: pd.DataFrame
    params: dict


def test_optional_results_replace_non_calcule(overview):
    cohorts = _FakeCohorts(pd.DataFrame({"site": ["Le FIL"], "groups": [3]}),
                           {"families_per_group": 10})
    html = rp.render_report_html(overview, cohorts=cohorts)
    section = html[html.index('id="cohortes"'):html.index('id="comparaison"')]
    assert "Non calculé" not in section
    assert "Le FIL" in section and "families_per_group = 10" in section


def _diagnosis(ws, overview, **params):
    return run_diagnosis(ws, DiagnosisParams(territory=ws.territory.code, **params),
                         travel=Travel(), overview=overview)


def test_report_analyses_use_the_modules_present(ws, overview):
    an = _diagnosis(ws, overview)
    assert an.access is not None and an.siting is not None
    html = rp.render_diagnosis_html(an)
    access = html[html.index('id="accessibilite"'):html.index('id="implantation"')]
    siting = html[html.index('id="implantation"'):html.index('id="partenaires"')]
    assert "Non calculé" not in access and "Non calculé" not in siting
    assert "Score de priorité" in access and "Scénarios comparés" in siting
    assert "vol d&#39;oiseau" in access  # crow-fly estimates say so


def test_cohorts_follow_the_uptake_rate(ws, overview):
    assert _diagnosis(ws, overview, uptake_rate=None).cohorts is None
    an = _diagnosis(ws, overview, uptake_rate=0.2)
    # the cohorts count the births of the first recommended site's catchment
    assert an.catchment is not None
    assert an.cohorts.births_per_year == pytest.approx(an.catchment.births_per_year)
    assert an.cohorts.families_per_year == pytest.approx(an.catchment.births_per_year * 0.2)
    html = rp.render_report_html(overview, cohorts=an.cohorts, partners=an.partners)
    section = html[html.index('id="cohortes"'):html.index('id="comparaison"')]
    assert "Non calculé" not in section and "Groupes pouvant démarrer par an" in section
    assert "20\u00a0%" in section
    partners = html[html.index('id="partenaires"'):html.index('id="cohortes"')]
    assert "Institutions à rencontrer" in partners and "Mairie de Crossac" in partners


def test_fr_number_and_percent():
    assert rp.fr_number(14582) == "14\u202f582"
    assert rp.fr_number(None) == "—" and rp.fr_number(float("inf")) == "∞"
    assert rp.fr_percent(0.5) == "50\u00a0%"


# --- Command line -----------------------------------------------------------------------


def test_cli_report_with_site_comparison_and_import(tmp_path, capsys):
    csv = tmp_path / "structures.csv"
    csv.write_text("nom;type;code_insee;lat;lon\n"
                   "Crèche <i>Les Lutins</i> & Cie;crèche;44129;47.4381;-2.0893\n",
                   encoding="utf-8")
    out = tmp_path / "rapport.pdf"
    assert main(["report", "--territory", "200000438", "--out", str(out), "--author", "J. M.",
                 "--facilities", str(csv), "--site", "annuaire_mairies:44129"]) == 0
    printed = capsys.readouterr().out
    n = int(re.search(r"\((\d+) pages", printed).group(1))
    pdf = out.read_bytes()
    assert pdf.startswith(b"%PDF") and rp.count_pdf_pages(pdf) == n
    text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf)).pages)
    assert "Crèche <i>Les Lutins</i> & Cie" in text  # escaped, printed as typed
    assert "Site étudié : Mairie de Pontchâteau" in text
    assert "Partenaires à portée de « Mairie de Pontchâteau »" in _plain(text)
    assert "Fichier importé" in text or "structures.csv" in text
    comparison = text[text.index("8. Comparaison"):text.index("9. Méthode")]
    assert "Non calculé" not in comparison
    assert "CA Redon Agglomération" in comparison and "partielle" in comparison


def test_site_by_id_or_accent_blind_name(ws):
    from diagnosis.pipeline import DiagnosisParams, studied_site

    by_name = studied_site(ws, DiagnosisParams(site="mairie de pontchateau"), None)
    assert by_name.site_id == "annuaire_mairies:44129" and by_name.code_insee == "44129"
    assert studied_site(ws, DiagnosisParams(site="annuaire_mairies:44129"),
                        None).name == "Mairie de Pontchâteau"


def test_cli_report_unknown_site_lists_closest(tmp_path, capsys):
    assert main(["report", "--territory", "200000438", "--out", str(tmp_path / "x.pdf"),
                 "--site", "mairie:99999"]) == 2
    err = capsys.readouterr().err
    assert "--site « mairie:99999 »" in err and "aucune structure chargée" in err
    assert not (tmp_path / "x.pdf").exists()


@pytest.mark.parametrize("argv, expected", [
    (["--territory", "Pontchatau"], "Pontchâteau (44)"),  # unknown name: closest names
    (["--territory", "13055"], "données ne sont pas"),  # known territory, no data
])
def test_cli_report_bad_territory(tmp_path, capsys, argv, expected):
    out = tmp_path / "r.pdf"
    assert main(["report", *argv, "--out", str(out)]) == 2
    assert expected in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_cli_report_unwritable_output_fails_before_work(tmp_path, capsys):
    out = tmp_path / "absent" / "r.pdf"
    assert main(["report", "--territory", "200000438", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "--out" in err and "n'existe pas" in err
    assert not out.parent.exists()


def test_synthesis_says_aucune_only_with_a_covering_source(ws):
    """Unknown is not none: the demo covers no type fully; a FINESS record covers the PMI."""
    bare = compute_overview(ws.territory, ws.communes, ws.facilities, sources=ws.sources)
    text = " ".join(synthesis._synthesis(bare, access=None, gaps=None, siting=None, partners=None,
                                  cohorts=None, threshold_label="5 km")["findings"])
    assert "Aucune structure" not in text and "Offre non connue" in text
    assert "centres de PMI" in text  # among the types not known
    fac = ws.facilities.loc[ws.facilities["type"] != "pmi"]
    sources = [*ws.sources, {"key": "finess", "title": "FINESS", "covers": "pmi"}]
    covered = compute_overview(ws.territory, ws.communes, fac, sources=sources)
    findings = synthesis._synthesis(covered, access=None, gaps=None, siting=None, partners=None,
                             cohorts=None, threshold_label="5 km")["findings"]
    absent = next(f for f in findings if f.startswith("Aucune structure"))
    assert "centres de PMI" in absent
    unknown = next(f for f in findings if f.startswith("Offre non connue"))
    assert "centres de PMI" not in unknown


def test_synthesis_of_a_full_diagnosis_names_sites_partners_and_capacity(ws, overview):
    d = _diagnosis(ws, overview)
    syn = synthesis._synthesis(overview, access=d.access.access, gaps=d.access.gaps,
                        siting=d.siting.main, partners=d.partners, cohorts=d.cohorts,
                        threshold_label="5 km")
    assert 3 <= len(syn["findings"]) <= 5
    assert syn["sites"] and syn["sites"][0]["name"].startswith("Le FIL")
    assert any("Caisse d'allocations familiales" in c for c in syn["contacts"])
    assert any("02 40" in c for c in syn["contacts"])  # a phone from the town-hall directory
    text = " ".join(syn["findings"])
    # potential of the catchment against one Maison's capacity, both printed
    assert fr(d.cohorts.groups_per_year) in text and fr(d.cohorts.maison_groups_per_year) in text
    assert len(syn["cards"]) == 5


def fr(value):
    return rp.fr_short(value)
