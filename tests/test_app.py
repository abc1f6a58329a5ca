"""Tests of the Streamlit app's logic with ``streamlit.testing.v1.AppTest`` (no browser).

Expected figures come from the embedded demo tables (data_sources/demo), not from
constants. ``tests/data/app/structures_pontchateau.csv`` was written by hand: four rows in
Pontchâteau (44129): a multi-accueil with coordinates, a PMI and a LAEP without
coordinates (placed at the town hall; the LAEP's name is ``<script>alert(1)</script>``)
and a row without a type (rejected).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from data_sources import demo
from data_sources.cog import resolve

REPO = Path(__file__).resolve().parents[1]
APP = str(REPO / "app.py")
CSV = Path(__file__).resolve().parent / "data" / "app" / "structures_pontchateau.csv"
TIMEOUT = 90


def _births(codes: tuple[str, ...]) -> int:
    com = demo.load_demo_communes()
    return int(com.loc[com["code_insee"].isin(codes), "births_2024"].sum())


PICKER_LABELS = {"dep": "Département", "epci": "Intercommunalité (EPCI)", "commune": "Commune"}


def _picker(at: AppTest, level: str):
    """The sidebar's département, EPCI or commune list (its key changes with each choice)."""
    boxes = [b for b in at.sidebar.selectbox if b.label == PICKER_LABELS[level]]
    assert len(boxes) == 1, [b.label for b in at.sidebar.selectbox]
    return boxes[0]


def _metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def _int(text: str) -> int:
    return int(text.replace("\u202f", "").replace(" ", ""))


def _no_exception(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


@pytest.fixture
def app() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run(timeout=TIMEOUT)
    _no_exception(at)
    return at


def test_default_run_shows_demo_epci(app):
    epci = resolve("200000438")
    m = _metrics(app)
    assert _int(m["Communes"]) == len(epci.communes) == 9
    assert _int(m["Naissances 2024"]) == _births(epci.communes) == 353
    assert _int(m["Moins de 3 ans (estimation)"]) == 3 * _births(epci.communes)
    assert app.title[0].value == epci.name
    assert any("démonstration" in i.value for i in app.info)
    assert [s.value for s in app.selectbox] == ["44", "200000438", ""]
    assert len(app.dataframe) == 2  # offer per type, indicators per commune
    communes_table = app.dataframe[1].value
    assert len(communes_table) == 9 and "Naissances 2024 (domiciliées)" in communes_table


def test_threshold_slider_recomputes_the_offer_table(app):
    from data_sources.workspace import load_workspace
    from diagnosis.overview import compute_overview, offer_table

    ws = load_workspace("200000438")
    app.slider(key="threshold_km").set_value(12.5).run(timeout=TIMEOUT)
    _no_exception(app)
    expected = offer_table(compute_overview(ws.territory, ws.communes, ws.facilities,
                                            threshold_m=12_500, sources=ws.sources))
    shown = app.dataframe[0].value
    pd.testing.assert_frame_equal(shown.reset_index(drop=True), expected, check_dtype=False)
    default = offer_table(compute_overview(ws.territory, ws.communes, ws.facilities,
                                           sources=ws.sources))
    assert (expected["Naissances à portée"] > default["Naissances à portée"]).any()


def test_switch_territory_with_the_selectboxes(app):
    _picker(app, "commune").select("44129").run(timeout=TIMEOUT)
    _no_exception(app)
    m = _metrics(app)
    assert _int(m["Communes"]) == 1
    assert _int(m["Naissances 2024"]) == _births(("44129",))
    assert app.title[0].value == "Pontchâteau"

    _picker(app, "epci").select("").run(timeout=TIMEOUT)
    _no_exception(app)
    dep = resolve("44")
    assert _picker(app, "commune").value == ""
    assert _int(_metrics(app)["Communes"]) == len(dep.communes)
    assert _int(_metrics(app)["Naissances 2024"]) == _births(dep.communes)


def test_search_by_name_and_code(app):
    app.text_input(key="picker_search").input("saint gildas des bois").run(timeout=TIMEOUT)
    _no_exception(app)
    target = resolve("Saint-Gildas-des-Bois")
    assert _picker(app, "commune").value == target.code
    assert _int(_metrics(app)["Naissances 2024"]) == _births(target.communes)
    assert any("Territoire choisi" in s.value for s in app.success)

    app.text_input(key="picker_search").input("200000438").run(timeout=TIMEOUT)
    assert _picker(app, "epci").value == "200000438"
    assert _picker(app, "commune").value == ""


def test_a_list_whose_browser_state_is_lost_keeps_the_territory(app):
    """Issue 25.7: a selectbox whose state the browser lost comes back at its default
    index and sends that value. Before, the default was the first option, so the session
    moved to « 01 — Ain »; the default is now the session's own choice."""
    app.text_input(key="picker_search").input("saint gildas des bois").run(timeout=TIMEOUT)
    target = resolve("Saint-Gildas-des-Bois")
    chosen = [_picker(app, lv).value for lv in ("dep", "epci", "commune")]
    assert chosen[0] == "44" and chosen[1] == "200000438" and chosen[2] == target.code
    from app_pages import _cached

    raw = {"dep": list(_cached.departement_options()),
           "epci": ["", *_cached.epci_options("44")],
           "commune": ["", *_cached.commune_options("44", "200000438")]}
    for level in ("dep", "epci", "commune"):
        box = _picker(app, level)
        shown = box.options[box.proto.default]  # what a browser that lost the state shows
        (value,) = [v for v in raw[level] if box.format_func(v) == shown]
        box.set_value(value).run(timeout=TIMEOUT)  # and sends back
        _no_exception(app)
        assert [_picker(app, lv).value for lv in ("dep", "epci", "commune")] == chosen
        assert app.title[0].value == target.name
    assert _int(_metrics(app)["Naissances 2024"]) == _births(target.communes)


def test_unknown_territory_shows_closest_names(app):
    app.text_input(key="picker_search").input("Pontchatoe").run(timeout=TIMEOUT)
    _no_exception(app)
    errors = [e.value for e in app.error]
    assert len(errors) == 1
    assert "Pontchatoe" in errors[0] and "Pontchâteau" in errors[0]
    assert "Noms les plus proches" in errors[0]
    # the previous territory stays on screen
    assert _int(_metrics(app)["Communes"]) == 9


def test_ambiguous_name_asks_for_the_code(app):
    app.text_input(key="picker_search").input("Sainte-Marie").run(timeout=TIMEOUT)
    _no_exception(app)
    assert any("Plusieurs territoires" in e.value and "974" in e.value for e in app.error)


def test_territory_without_loaded_data_explains_what_is_missing(app):
    _picker(app, "dep").select("35").run(timeout=TIMEOUT)
    _no_exception(app)
    assert _picker(app, "epci").value == ""
    warnings = [w.value for w in app.warning]
    assert any("ne sont pas chargées" in w and "35" in w for w in warnings), warnings
    assert not app.metric


def test_upload_page_reports_and_feeds_the_diagnosis(app):
    epci = resolve("200000438")
    # the demo's directory lists PMI partially and places none here: not « 0 »
    assert _metrics(app)["Centres de PMI"] == "non connue"
    app.switch_page("app_pages/import_fichier.py").run(timeout=TIMEOUT)
    _no_exception(app)
    assert app.title[0].value == "Importer des structures"
    app.file_uploader(key="upload_files").set_value(
        (CSV.name, CSV.read_bytes(), "text/csv")).run(timeout=TIMEOUT)
    _no_exception(app)
    m = _metrics(app)
    rows = CSV.read_text(encoding="utf-8").strip().splitlines()[1:]
    assert _int(m["Lignes lues"]) == len(rows)
    assert _int(m["Rejetées"]) == sum(1 for r in rows if r.split(";")[1] == "")
    assert _int(m["Acceptées"]) == len(rows) - _int(m["Rejetées"])
    report = app.dataframe[0].value
    assert isinstance(report, pd.DataFrame)
    assert "type manquant" in " ".join(report["motif"])
    assert [name for name, _ in app.session_state["facility_files"]] == [CSV.name]

    app.switch_page("app_pages/territoire.py").run(timeout=TIMEOUT)
    _no_exception(app)
    m = _metrics(app)
    assert m["Centres de PMI"] == "≥\u00a01"  # the file's PMI: at least one
    assert _int(m["Communes"]) == len(epci.communes)
    assert any(CSV.name in s.value.replace("\\", "") for s in app.success)  # Markdown-escaped


def test_unreadable_upload_is_an_error_not_a_traceback(app):
    app.switch_page("app_pages/import_fichier.py").run(timeout=TIMEOUT)
    app.file_uploader(key="upload_files").set_value(
        ("vide.csv", b"", "text/csv")).run(timeout=TIMEOUT)
    _no_exception(app)
    assert any("vide.csv" in e.value.replace("\\", "") for e in app.error)
    assert app.session_state["facility_files"] == []
    app.switch_page("app_pages/territoire.py").run(timeout=TIMEOUT)
    _no_exception(app)
    assert _int(_metrics(app)["Communes"]) == 9


def test_sources_page_lists_sources_and_unplaced_rows(app):
    app.switch_page("app_pages/sources.py").run(timeout=TIMEOUT)
    _no_exception(app)
    text = " ".join(md.value for md in app.markdown)
    for title in ("Code officiel géographique 2026", "Admin Express", "comparateur"):
        assert title in text
    assert "Licence Ouverte 2.0" in text
    unplaced = demo.demo_manifest()["unplaced"]
    assert len(app.dataframe) == 1
    table = app.dataframe[0].value
    assert len(table) == len(unplaced)
    assert set(table["Nom"]) == {u["name"] for u in unplaced}


# --------------------------------------------------------------------------------------
# Analysis pages: the same numbers as diagnosis.analyses (the command line's wiring)
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo_analyses():
    from data_sources.workspace import load_travel, load_workspace
    from diagnosis.analyses import compute_access, compute_siting
    from diagnosis.overview import compute_overview

    ws = load_workspace("200000438")
    ov = compute_overview(ws.territory, ws.communes, ws.facilities, sources=ws.sources)
    # the app's travel: crow-fly by car with the model of the territory's density class
    travel = load_travel(ws, "crow")
    return {"ws": ws, "ov": ov, "travel": travel,
            "access": compute_access(ov, ws.facilities, max_minutes=20, travel=travel),
            "siting": compute_siting(ov, ws.facilities, k_values=[1, 2, 3], max_minutes=20,
                                     travel=travel)}


def _frame(at: AppTest, *columns: str) -> pd.DataFrame:
    """The first table shown that has all these columns (dataframes have no test key)."""
    for d in at.dataframe:
        if all(c in d.value.columns for c in columns):
            return d.value
    raise AssertionError(f"no table with columns {columns}: "
                         f"{[list(d.value.columns) for d in at.dataframe]}")


def _texts(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [i.value for i in at.info] + \
        [c.value for c in at.caption]
    return " ".join(parts).replace("\\", "")


def test_besoins_page_ranks_the_nine_communes(app, demo_analyses):
    app.switch_page("app_pages/besoins.py").run(timeout=TIMEOUT)
    _no_exception(app)
    assert app.title[0].value == "Besoins et lacunes"
    score = "Score (naissances pondérées par les besoins)"
    table = _frame(app, score)
    prio = demo_analyses["access"].gaps.layers["priority"]
    assert len(table) == 9
    assert table["Commune"].tolist() == prio.sort_values("rank")["name"].tolist()
    assert table[score].tolist() == prio.sort_values("rank")["score"].round(1).tolist()
    summary = _frame(app, "Part des naissances à portée (%)")
    assert summary["Type"].tolist() == demo_analyses["access"].access.summary["label"].tolist()
    assert "estimation à vol d'oiseau" in _texts(app)  # crow-fly label always visible

    # no weight at all: a French error, not a traceback
    for k in ("births", "poverty", "single_parent", "access"):
        app.slider(key=f"besoins_weight_{k}").set_value(0.0)
    app.run(timeout=TIMEOUT)
    _no_exception(app)
    assert any("tous les poids à zéro" in e.value for e in app.error)


def test_implantation_page_recommends_a_site(app, demo_analyses):
    app.switch_page("app_pages/implantation.py").run(timeout=TIMEOUT)
    _no_exception(app)
    main = demo_analyses["siting"].main
    name = main.sites.loc[main.sites["status"] == "recommandé", "name"].iloc[0]
    assert app.number_input(key="implantation_k").value == 1
    assert any(name in m.value.replace("\\", "") for m in app.markdown)
    assert _frame(app, "dont nouvellement à portée").loc[0, "Site"] == name
    scenarios = _frame(app, "Indicateur", "1 site, 20 min")
    assert list(scenarios.columns[1:]) == list(demo_analyses["siting"].table.columns)
    labels = {m.label: m.value for m in app.metric}
    assert "Groupes pouvant démarrer par an" in labels
    assert app.selectbox(key="implantation_cohort_site").value == ""  # the first recommended
    assert "hypothèse" in app.slider(key="implantation_uptake").label

    # the uptake slider changes the cohorts
    before = labels["Groupes pouvant démarrer par an"]
    app.slider(key="implantation_uptake").set_value(30).run(timeout=TIMEOUT)
    _no_exception(app)
    assert {m.label: m.value for m in app.metric}["Groupes pouvant démarrer par an"] != before


def test_implantation_bad_input_is_a_french_error(app):
    app.switch_page("app_pages/implantation.py").run(timeout=TIMEOUT)
    app.multiselect(key="implantation_hosts").set_value(["evs"])
    app.multiselect(key="implantation_scenarios").set_value([])
    app.number_input(key="implantation_k").set_value(3).run(timeout=TIMEOUT)
    _no_exception(app)
    assert any("n'a que 1 lieu candidat" in e.value for e in app.error)
    assert not app.dataframe  # no result shown

    app.number_input(key="implantation_k").set_value(1).run(timeout=TIMEOUT)
    _propose(app, -1.55, 47.21)  # Nantes: outside the EPCI
    _no_exception(app)
    assert any("en dehors du territoire" in e.value for e in app.error)
    app.button(key="implantation_remove_0").click().run(timeout=TIMEOUT)

    _propose(app, -2.12, 47.44)  # inside, near Pontchâteau
    app.number_input(key="implantation_k").set_value(2).run(timeout=TIMEOUT)
    _no_exception(app)
    assert not app.error
    sites = _frame(app, "dont nouvellement à portée")
    assert "Site proposé n°1" in sites["Site"].tolist()
    remove = app.button(key="implantation_remove_0")
    remove.click().run(timeout=TIMEOUT)
    assert app.session_state["study"].user_sites == ()


def _propose(at: AppTest, lon: float, lat: float) -> None:
    """Type a proposed site's longitude and latitude on « Implantation » and add it."""
    at.number_input(key="implantation_lon").set_value(lon)
    at.number_input(key="implantation_lat").set_value(lat).run(timeout=TIMEOUT)
    at.button(key="implantation_add_typed").click().run(timeout=TIMEOUT)


def test_partenaires_page_lists_partners_of_the_recommended_site(app, demo_analyses):
    app.switch_page("app_pages/implantation.py").run(timeout=TIMEOUT)
    app.switch_page("app_pages/partenaires.py").run(timeout=TIMEOUT)
    _no_exception(app)
    main = demo_analyses["siting"].main
    first = main.sites.loc[main.sites["status"] == "recommandé", "facility_id"].iloc[0]
    assert app.selectbox(key="partenaires_site").value == ""  # the first recommended
    assert app.session_state["study"].site is None
    tables = [d.value for d in app.dataframe if "Structure" in d.value.columns]
    assert tables and all(len(t) for t in tables)
    from diagnosis.analyses import compute_partners, find_site

    ws, ov = demo_analyses["ws"], demo_analyses["ov"]
    near = compute_partners(ov, ws.facilities, find_site(ws.facilities, first),
                            max_minutes=20, travel=demo_analyses["travel"]).layers["near_site"]
    assert sum(len(t) for t in tables) == len(near)
    # the siting page's count leaves town halls out
    assert int((near["type"] != "mairie").sum()) == int(
        main.sites.loc[main.sites["facility_id"] == first, "partners_within"].iloc[0])
    inst = _frame(app, "Organisation")
    assert "Caisse d'allocations familiales" in " ".join(inst["Organisation"])
    assert app.get("download_button")


def test_rapport_page_generates_pdf_exports_and_comparison(app):
    app.switch_page("app_pages/rapport.py").run(timeout=TIMEOUT)
    _no_exception(app)
    comparison = _frame(app, "Couverture des données")
    assert len(comparison) == 9 and "Naissances 2024" in comparison
    assert app.get("arrow_vega_lite_chart") or app.get("vega_lite_chart")
    app.text_input(key="rapport_author").input("Cabinet <Test>")
    app.button(key="rapport_generate").click().run(timeout=TIMEOUT)
    _no_exception(app)
    pdf = app.session_state["rapport_pdf"]["pdf"]
    assert pdf.startswith(b"%PDF")
    app.button(key="rapport_prepare_exports").click().run(timeout=TIMEOUT)
    _no_exception(app)
    assert len(app.get("download_button")) == 3  # PDF, GeoPackage, CSV


def test_cached_exports_are_geopackage_and_csv_zip():
    import io
    import zipfile

    from app_pages import _cached
    from diagnosis.pipeline import DiagnosisParams

    study = DiagnosisParams(territory="200000438", mode="crow", max_minutes=20.0)
    gpkg = _cached.geopackage("200000438", (), study, ())
    assert gpkg.startswith(b"SQLite format 3")
    names = zipfile.ZipFile(io.BytesIO(_cached.csv_zip("200000438", (), study,
                                                       ()))).namelist()
    assert "communes_indicateurs.csv" in names and "sources.csv" in names
    assert not list(REPO.glob("*.gpkg")) and not list(REPO.glob("maillage_*"))


@pytest.mark.parametrize("page", ["besoins", "implantation", "partenaires", "rapport",
                                  "sources"])
def test_every_page_explains_a_territory_without_data(app, page):
    """A territory outside the demo (Ille-et-Vilaine) never ends in a traceback."""
    _picker(app, "dep").select("35").run(timeout=TIMEOUT)
    app.switch_page(f"app_pages/{page}.py").run(timeout=TIMEOUT)
    _no_exception(app)
    shown = " ".join(m.value for m in [*app.warning, *app.error, *app.info])
    assert "35" in shown and ("chargées" in shown or "fetch" in shown), shown


HOSTILE_CSV = (
    "nom;type;adresse;code_insee;latitude;longitude\n"
    "Crèche {{ lipsum.__globals__.os.popen('id').read() }};crèche;{% endfor %};44129;"
    "47.4380;-2.0870\n"
    "LAEP {{ 'MAILLAGE' ~ 'PWNED' }};LAEP;{{;44129;47.4390;-2.0880\n"
    "Relais {# ;relais petite enfance;}};44129;47.4370;-2.0890\n"
)


def test_hostile_names_uploaded_render_as_text_on_every_map_page(app):
    """Security (issue 11.1): template syntax in an uploaded name runs nowhere and crashes
    no page; st_folium renders the whole map in the app, as the user's browser gets it."""
    app.switch_page("app_pages/import_fichier.py").run(timeout=TIMEOUT)
    app.file_uploader(key="upload_files").set_value(
        ("structures_hostiles.csv", HOSTILE_CSV.encode("utf-8"), "text/csv")).run(
        timeout=TIMEOUT)
    _no_exception(app)
    assert _int(_metrics(app)["Acceptées"]) == 3
    for page in ("territoire", "besoins", "implantation", "partenaires"):
        app.switch_page(f"app_pages/{page}.py").run(timeout=TIMEOUT)
        _no_exception(app)
        shown = " ".join(str(e.value) for e in app.markdown) + " ".join(
            str(e.value) for e in app.error)
        assert "MAILLAGEPWNED" not in shown and "uid=" not in shown
        import json

        for instance in app.get("component_instance"):  # the maps: frame and layers
            sent = json.loads(instance.proto.json_args)
            text = f"{sent.get('script')}{sent.get('feature_group')}{sent.get('layer_control')}"
            assert "L.map" in text and "MAILLAGEPWNED" not in text and "uid=" not in text


def _drome_files():
    """A comparateur-format file for Valence Romans Agglo and a facility list (see
    tests/test_any_territory.py for how they are made)."""
    from data_sources.national import load_national_communes
    from tests.test_any_territory import EPCI as DROME
    from tests.test_any_territory import _comparateur

    epci = resolve(DROME)
    codes = list(epci.communes)
    insee = _comparateur(codes).encode("cp1252")
    pts = load_national_communes(departements=["26"]).set_index("code_insee")
    rows = ["nom;type;code_insee;latitude;longitude"]
    for i, code in enumerate(codes[:8]):
        p = pts.loc[code]
        rows.append(f"Structure {i};{['pmi', 'crèche', 'relais petite enfance'][i % 3]};"
                    f"{code};{float(p['point_lat']) + 0.002:.6f};{float(p['point_lon']):.6f}")
    return DROME, insee, ("\n".join(rows) + "\n").encode("utf-8")


def test_a_non_44_territory_from_uploaded_insee_and_facility_files(app):
    """Issue 12: outside the demo every page says what to load and offers it; with the INSEE
    comparateur file and a facility list uploaded, every page diagnoses the territory."""
    drome, insee, facilities = _drome_files()
    app.text_input(key="picker_search").input(drome).run(timeout=TIMEOUT)
    _no_exception(app)
    assert any("--insee" in w.value or "comparateur" in w.value for w in app.warning)
    app.switch_page("app_pages/insee.py").run(timeout=TIMEOUT)
    app.file_uploader(key="upload_insee").set_value(
        ("comparateur_26.csv", insee, "text/csv")).run(timeout=TIMEOUT)
    _no_exception(app)
    assert any("fichier(s) INSEE pris en compte" in s.value for s in app.success)
    app.switch_page("app_pages/import_fichier.py").run(timeout=TIMEOUT)
    app.file_uploader(key="upload_files").set_value(
        ("structures_26.csv", facilities, "text/csv")).run(timeout=TIMEOUT)
    _no_exception(app)
    for page in ("territoire", "besoins", "implantation", "partenaires", "rapport"):
        app.switch_page(f"app_pages/{page}.py").run(timeout=TIMEOUT)
        _no_exception(app)
        assert not any("ne sont pas chargées" in w.value for w in app.warning), page
    app.switch_page("app_pages/territoire.py").run(timeout=TIMEOUT)
    assert _int(_metrics(app)["Communes"]) == len(resolve(drome).communes)


def test_national_view_ranks_territories(app):
    _, insee, facilities = _drome_files()
    app.switch_page("app_pages/insee.py").run(timeout=TIMEOUT)
    app.file_uploader(key="upload_insee").set_value(
        ("comparateur_26.csv", insee, "text/csv")).run(timeout=TIMEOUT)
    app.switch_page("app_pages/federation.py").run(timeout=600)
    _no_exception(app)
    ranking = next(d.value for d in app.dataframe if "Rang" in d.value.columns)
    assert ranking["Code"].iloc[0] == "26"  # the only département with births in the file
    assert "Naissances sans Maison à portée" in ranking.columns
    # issue 19: a file covering part of one département shows only what is known
    from tests.test_any_territory import EPCI

    drome, france = resolve("26"), resolve("FR")
    assert ranking["Code"].tolist() == ["26"]  # the others have no data: not ranked
    assert ranking.loc[0, "Communes"] == len(drome.communes)
    assert ranking.loc[0, "Couverture des données"] == \
        f"partielle : {len(resolve(EPCI).communes)} commune(s) sur {len(drome.communes)}"
    assert "None" not in ranking.astype(str).to_string()
    without = len(france.communes) - len(resolve(EPCI).communes)
    assert any(f"{without:,}".replace(",", "\u202f") + " commune(s) de France sans données"
               in c.value for c in app.caption), [c.value for c in app.caption]


def test_a_custom_list_of_communes_is_diagnosed_on_every_page(app):
    """Issue 12.3: a named list of communes chosen on « Territoire sur mesure »."""
    app.switch_page("app_pages/zone.py").run(timeout=TIMEOUT)
    _no_exception(app)
    app.text_input(key="zone_name").input("Deux communes")
    app.text_area(key="zone_codes").input("44129, 44154").run(timeout=TIMEOUT)
    app.button(key="zone_list").click().run(timeout=TIMEOUT)
    _no_exception(app)
    assert any("Deux communes" in s.value for s in app.success)
    app.switch_page("app_pages/territoire.py").run(timeout=TIMEOUT)
    _no_exception(app)
    assert _int(_metrics(app)["Communes"]) == 2
    assert _int(_metrics(app)["Naissances 2024"]) == _births(("44129", "44154"))


@pytest.mark.parametrize("page", ["territoire", "besoins", "implantation", "partenaires",
                                  "rapport"])
def test_select_boxes_have_french_placeholders(app, page):
    """Streamlit's own placeholder is "Choose an option" / "Choose options" (its utils.js)."""
    from app_pages import CHOOSE, CHOOSE_MANY

    app.switch_page(f"app_pages/{page}.py").run(timeout=TIMEOUT)
    _no_exception(app)
    boxes = [*app.selectbox, *app.multiselect]
    assert len(boxes) >= 3  # the sidebar's three, and the page's own
    assert all(b.proto.placeholder in (CHOOSE, CHOOSE_MANY) for b in boxes), \
        [(b.label, b.proto.placeholder) for b in boxes]


def test_maps_are_built_once_per_inputs(app, monkeypatch):
    """A rerun with the same inputs reuses the map; a new input builds it again."""
    from diagnosis import maps

    calls: list[int] = []
    original = maps.build_priority_map

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr("diagnosis.maps.build_priority_map", counting)
    app.switch_page("app_pages/besoins.py").run(timeout=TIMEOUT)
    _no_exception(app)
    first = len(calls)
    app.run(timeout=TIMEOUT)
    assert len(calls) == first  # same inputs: nothing rebuilt
    app.slider(key="besoins_minutes").set_value(23).run(timeout=TIMEOUT)
    _no_exception(app)
    assert len(calls) == first + 1


def test_computations_run_on_long_lived_compute_threads():
    """pyproj keeps each CRS per thread: the app computes on the same few threads (not on
    each rerun's new one); a computation that asks for a worker from a worker runs in place;
    an error reaches the caller."""
    import threading

    from app_pages._cached import WORKER_PREFIX, on_worker
    from diagnosis.errors import InputError

    first = on_worker(threading.current_thread)
    assert first is not threading.current_thread()
    assert first.name.startswith(WORKER_PREFIX)
    seen = {on_worker(threading.current_thread) for _ in range(20)}
    assert len(seen) <= 2 and all(t.is_alive() for t in seen)
    assert on_worker(on_worker, threading.current_thread) in seen

    def refuse() -> None:
        raise InputError("no", fr="non")

    with pytest.raises(InputError):
        on_worker(refuse)


def test_partners_kept_when_only_peer_group_assumptions_change(app, monkeypatch):
    """The participation rate changes the peer groups only: the partners' map is not
    rebuilt for it; a new travel time T rebuilds it."""
    from diagnosis import maps

    calls: list[int] = []
    original = maps.build_partner_network_map

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr("diagnosis.maps.build_partner_network_map", counting)
    app.switch_page("app_pages/partenaires.py").run(timeout=TIMEOUT)
    _no_exception(app)
    first = len(calls)
    app.switch_page("app_pages/implantation.py").run(timeout=TIMEOUT)
    uptake = app.slider(key="implantation_uptake")
    uptake.set_value(int(uptake.value) + 7).run(timeout=TIMEOUT)
    _no_exception(app)
    app.switch_page("app_pages/partenaires.py").run(timeout=TIMEOUT)
    _no_exception(app)
    assert len(calls) == first
    minutes = app.slider(key="partenaires_minutes")
    minutes.set_value(int(minutes.value) + 3).run(timeout=TIMEOUT)
    _no_exception(app)
    assert len(calls) == first + 1


def _without_ids(args: dict) -> dict:
    """A map's component arguments with folium's random element ids made equal."""
    import re

    return {k: re.sub(r"_[0-9a-f]{32}", "_ID", v) if isinstance(v, str) else v
            for k, v in args.items() if k != "on_change"}


@pytest.mark.parametrize("kind", ["overview", "priority", "access", "siting"])
def test_map_arguments_are_those_st_folium_gives(demo_analyses, kind):
    """The app's cheaper recording of a map (no whole-page render) sends what st_folium
    gives for the map's frame and its layers (``feature_group_to_add``): same Leaflet
    script, layers, header, links and component key."""
    import streamlit_folium

    from app_pages._cached import FOLIUM_COMPONENT, FRESH_GROUPS_JS, component_args
    from diagnosis import maps

    d = demo_analyses

    def build():
        if kind == "overview":
            return maps.build_overview_map(d["ov"])
        if kind == "priority":
            return maps.build_priority_map(d["access"].gaps)
        if kind == "access":
            return maps.build_access_map(d["access"].access, d["access"].gaps.layers["priority"],
                                         "pmi", facilities=d["ws"].facilities)
        return maps.build_siting_map(d["siting"].main, communes=d["ov"].layers["communes"])

    recorded: dict = {}
    fmap = build()
    groups, control = maps.split_layers(fmap)
    streamlit_folium._component_func = lambda **kw: recorded.update(kw)
    try:
        streamlit_folium.st_folium(fmap, key="m", height=500, use_container_width=True,
                                   returned_objects=["last_clicked"],
                                   feature_group_to_add=groups, layer_control=control)
    finally:
        streamlit_folium._component_func = FOLIUM_COMPONENT
    ours = component_args(build(), key="m", height=500, returned_objects=("last_clicked",))
    # the data, the legend and the fit are in the layers; the frame has none
    assert "L.map" in ours["script"] and "L.geoJson" not in ours["script"]
    assert "fitBounds" not in ours["script"] and "maillage-legend" not in ours["script"]
    assert all(s in ours["feature_group"] for s in ("L.geoJson", "maillage-legend",
                                                    "fitBounds"))
    assert "L.control.layers" in ours["layer_control"]
    assert ours["feature_group"].startswith(FRESH_GROUPS_JS)
    recorded["feature_group"] = f"{FRESH_GROUPS_JS}\n{recorded['feature_group']}"
    assert _without_ids(ours) == _without_ids(recorded)
    assert ours["key"] == recorded["key"]


def test_new_values_keep_the_map_frame_and_swap_its_layers(demo_analyses):
    """A new threshold, or another territory, gives the same frame (the component key: the
    browser keeps the map drawn) and new layers, fitted to the territory."""
    import re

    from app_pages._cached import component_args
    from diagnosis.analyses import compute_access
    from diagnosis.maps import build_priority_map

    d = demo_analyses
    other = compute_access(d["ov"], d["ws"].facilities, max_minutes=35, travel=d["travel"])
    first, second = (component_args(build_priority_map(a.gaps), key="m", height=500,
                                     returned_objects=()) for a in (d["access"], other))
    assert first["key"] == second["key"]
    assert _without_ids(first)["script"] == _without_ids(second)["script"]
    assert first["feature_group"] != second["feature_group"]
    # another territory (the whole département): the same frame, its own fit
    from data_sources.workspace import load_workspace
    from diagnosis.overview import compute_overview

    ws = load_workspace("44")
    dep = compute_access(compute_overview(ws.territory, ws.communes, ws.facilities,
                                          sources=ws.sources), ws.facilities, travel=d["travel"])
    third = component_args(build_priority_map(dep.gaps), key="m", height=500,
                           returned_objects=())
    assert third["key"] == first["key"]
    fits = [re.search(r"var bounds = (\[\[.*?\]\]);", a["feature_group"]).group(1)
            for a in (first, third)]
    assert fits[0] != fits[1]


def test_road_graph_unavailable_warning_is_french(app, monkeypatch, tmp_path):
    """Offline with no cached graph: the warning is French, osm's English detail folded."""
    from data_sources import _http

    monkeypatch.setenv("MAILLAGE_OFFLINE", "1")
    monkeypatch.setenv("MAILLAGE_CACHE_DIR", str(tmp_path / "cache"))
    _http.reset()
    try:
        app.switch_page("app_pages/besoins.py").run(timeout=TIMEOUT)
        app.selectbox(key="besoins_mode").set_value("walk").run(timeout=TIMEOUT)
        _no_exception(app)
        warnings = [w.value for w in app.warning]
        assert any(w.startswith("Réseau routier OpenStreetMap indisponible (hors ligne")
                   for w in warnings), warnings
        assert not any("offline" in w or "could not" in w for w in warnings), warnings
        assert any(e.label == "Détail technique" for e in app.expander)
    finally:
        _http.reset()


def test_travel_defaults_fit_the_territory(app):
    """Issue 13.3: walking 15 min where communes are dense (Nantes), car 20 min elsewhere;
    shown and changeable."""
    app.switch_page("app_pages/besoins.py").run(timeout=TIMEOUT)
    assert app.selectbox(key="besoins_mode").value == "crow"
    assert app.slider(key="besoins_minutes").value == 20
    app.text_input(key="picker_search").input("44109").run(timeout=TIMEOUT)
    app.switch_page("app_pages/besoins.py").run(timeout=TIMEOUT)
    _no_exception(app)
    assert app.selectbox(key="besoins_mode").value == "walk"
    assert app.slider(key="besoins_minutes").value == 15
    assert any("communes denses" in c.value for c in app.caption)


def _french_column(layer: str, name: str) -> str:
    from diagnosis.export_columns import french_layer

    return str(french_layer(layer, pd.DataFrame(columns=[name])).columns[0])


def _pdf_text(pdf: bytes) -> str:
    import io

    from pypdf import PdfReader

    return " ".join(" ".join(p.extract_text().split()) for p in PdfReader(io.BytesIO(pdf)).pages)


def test_one_study_k_weights_and_point_reach_the_pdf_and_geopackage(app, tmp_path):
    """Issue 19: k = 2, priority weights and a proposed point set on the pages are the
    study the report page states, and the PDF and the GeoPackage carry the same sites,
    weights and figures as the pages showed."""
    import pyogrio

    from diagnosis.formatting import fr_number, fr_percent
    from diagnosis.gaps import SCORE_LABEL, priority_weights

    # at 20 min by car (the rural model) one site reaches every commune and a second one
    # adds nothing, so is not recommended (issue 20): 10 min leaves room for two sites
    app.switch_page("app_pages/implantation.py").run(timeout=TIMEOUT)
    app.slider(key="implantation_minutes").set_value(10).run(timeout=TIMEOUT)
    app.switch_page("app_pages/besoins.py").run(timeout=TIMEOUT)
    app.slider(key="besoins_weight_births").set_value(0.6).run(timeout=TIMEOUT)
    app.slider(key="besoins_weight_access").set_value(0.1).run(timeout=TIMEOUT)
    _no_exception(app)
    page_priority = _frame(app, SCORE_LABEL)
    app.switch_page("app_pages/implantation.py").run(timeout=TIMEOUT)
    _propose(app, -2.12, 47.44)
    app.number_input(key="implantation_k").set_value(2).run(timeout=TIMEOUT)
    _no_exception(app)
    page_sites = _frame(app, "dont nouvellement à portée")
    page_rec = page_sites.loc[page_sites["Statut"] == "recommandé"]
    assert len(page_rec) == 2
    page_groups = {m.label: m.value for m in app.metric}["Groupes pouvant démarrer par an"]

    app.switch_page("app_pages/rapport.py").run(timeout=TIMEOUT)
    _no_exception(app)
    assert app.number_input(key="rapport_k").value == 2
    stated = _frame(app, "Paramètre", "Valeur").set_index("Paramètre")["Valeur"]
    weights = priority_weights({"births": 0.6, "poverty": 0.2, "single_parent": 0.15,
                                "access": 0.1})
    assert stated["Nouveaux sites (k)"] == "2"
    assert stated["Sites proposés"] == "n°1 (-2.12000, 47.44000)"
    assert f"naissances {fr_percent(weights['births'])}" in stated["Poids du score de priorité"]
    assert stated["Site étudié"] == page_rec.sort_values("Rang")["Site"].iloc[0]

    app.button(key="rapport_generate").click().run(timeout=TIMEOUT)
    app.button(key="rapport_prepare_exports").click().run(timeout=TIMEOUT)
    _no_exception(app)
    text = _pdf_text(app.session_state["rapport_pdf"]["pdf"])
    for name in page_rec["Site"]:
        assert name in text
    assert f"naissances {fr_number(100 * weights['births'])} %" in text
    assert f"éloignement des services {fr_number(100 * weights['access'])} %" in text

    gpkg = tmp_path / "study.gpkg"
    gpkg.write_bytes(app.session_state["rapport_exports"]["gpkg"])

    def column(layer: str, name: str) -> str:  # the GeoPackage's French column names
        return _french_column(layer, name)

    sites = pyogrio.read_dataframe(gpkg, layer="sites_recommandes")
    rec = sites.loc[sites[column("sites_recommandes", "status")] == "recommandé"].sort_values(
        column("sites_recommandes", "rank"))
    assert rec[column("sites_recommandes", "name")].tolist() == \
        page_rec.sort_values("Rang")["Site"].tolist()
    assert rec[column("sites_recommandes", "births_covered")].round().tolist() == \
        page_rec.sort_values("Rang")["Naissances à portée"].tolist()
    prio = pyogrio.read_dataframe(gpkg, layer="manques_priorites").set_index(
        column("manques_priorites", "name"))
    shown = page_priority.set_index("Commune")[SCORE_LABEL]
    assert prio.loc[shown.index, column("manques_priorites", "score")].round(1).tolist() == \
        shown.tolist()
    meta = pyogrio.read_dataframe(gpkg, layer="metadonnees")
    meta = meta.set_index(column("metadonnees", "cle"))[column("metadonnees", "valeur")]
    assert meta["Nouveaux sites (k)"] == "2"
    assert meta["Poids du score de priorité"] == stated["Poids du score de priorité"]
    groups = pyogrio.read_dataframe(gpkg, layer="groupes_de_pairs")
    assert len(groups) and page_groups


def test_an_imported_facility_chosen_as_studied_site_is_studied(app):
    """Issue 19: a facility of the user's file (id ``user:<file>:<id>``) chosen as the site
    studied is that facility in the report (not a bare point dropped for the first
    recommended site), and the Partenaires page studies it too."""
    from data_sources.workspace import load_workspace

    ws = load_workspace("200000438", facility_files=[(CSV.name, CSV.read_bytes())])
    imported = ws.facilities.loc[ws.facilities["source"].astype(str).str.startswith("user:")
                                 & ws.facilities["type"].eq("eaje")]
    (site_id,), (name,) = imported["facility_id"].tolist(), imported["name"].tolist()
    assert site_id.startswith("user:")

    app.switch_page("app_pages/import_fichier.py").run(timeout=TIMEOUT)
    app.file_uploader(key="upload_files").set_value(
        (CSV.name, CSV.read_bytes(), "text/csv")).run(timeout=TIMEOUT)
    app.switch_page("app_pages/rapport.py").run(timeout=TIMEOUT)
    _no_exception(app)
    app.selectbox(key="rapport_site").set_value(site_id).run(timeout=TIMEOUT)
    _no_exception(app)
    stated = _frame(app, "Paramètre", "Valeur").set_index("Paramètre")["Valeur"]
    assert stated["Site étudié"] == name
    app.button(key="rapport_generate").click().run(timeout=TIMEOUT)
    _no_exception(app)
    assert f"Site étudié : {name}" in _pdf_text(app.session_state["rapport_pdf"]["pdf"])

    app.switch_page("app_pages/partenaires.py").run(timeout=TIMEOUT)
    _no_exception(app)
    assert app.selectbox(key="partenaires_site").value == site_id


def test_import_page_reports_a_file_on_a_territory_from_insee_files(app):
    """Issue 19: on a territory loaded from INSEE files, « Importer des structures » reads
    the facility file with them and shows its report (rows read, accepted, rejected)."""
    drome, insee, facilities = _drome_files()
    app.text_input(key="picker_search").input(drome).run(timeout=TIMEOUT)
    app.switch_page("app_pages/insee.py").run(timeout=TIMEOUT)
    app.file_uploader(key="upload_insee").set_value(
        ("comparateur_26.csv", insee, "text/csv")).run(timeout=TIMEOUT)
    app.switch_page("app_pages/import_fichier.py").run(timeout=TIMEOUT)
    app.file_uploader(key="upload_files").set_value(
        ("structures_26.csv", facilities, "text/csv")).run(timeout=TIMEOUT)
    _no_exception(app)
    assert not any("Import impossible" in w.value for w in app.warning)
    rows = facilities.decode("utf-8").strip().splitlines()[1:]
    m = _metrics(app)
    assert _int(m["Lignes lues"]) == len(rows) == _int(m["Acceptées"])
    # the file name is shown as text: Markdown-escaped (structures\_26.csv) on the page
    assert "structures_26.csv" in [s.value.replace("\\", "") for s in app.subheader]
    assert "comparateur_26.csv" not in [s.value for s in app.subheader]  # not an import
    assert any("1 fichier(s) utilisé(s)" in s.value for s in app.success)


def test_a_site_box_value_that_is_no_site_id_means_the_first_recommended_site():
    """A rerun racing a change of the recommended sites can hand back the label of the
    box's first entry (« — le premier site recommandé : … — ») instead of an id: it means
    that site, never a site looked up by that name (the diagnosis found none and the page
    showed « Les sites n'ont pas pu être calculés »)."""
    from app_pages._study import site_choice

    choose = site_choice(["", "eaje:1", "user:1"])
    assert choose("eaje:1") == "eaje:1" and choose("user:1") == "user:1"
    assert choose("") is None and choose(None) is None
    assert choose("— le premier site recommandé : Le FIL – Espace de vie sociale —") is None
    assert choose("eaje:2") is None  # a site no longer offered


def test_a_page_settles_the_heap_after_its_first_run_only(monkeypatch):
    """Each page's first run in the process freezes what it left for good (gc.freeze),
    once: later runs of the page leave Python's collections alone."""
    from app_pages import _cached

    calls: list[int] = []
    monkeypatch.setattr(_cached, "settle_heap", lambda: calls.append(1))
    monkeypatch.setattr(_cached, "_SETTLED_PAGES", set())
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run(timeout=TIMEOUT)
    _no_exception(at)
    assert calls and _cached._SETTLED_PAGES == {""}  # the default page (and its data)
    first = len(calls)
    at.run(timeout=TIMEOUT)
    at.switch_page("app_pages/territoire.py").run(timeout=TIMEOUT)
    assert len(calls) == first
    at.switch_page("app_pages/sources.py").run(timeout=TIMEOUT)
    at.run(timeout=TIMEOUT)
    _no_exception(at)
    assert len(calls) == first + 1 and _cached._SETTLED_PAGES == {"", "sources"}
