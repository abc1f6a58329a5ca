"""Text from a source or a user file never runs as template code (security, issue 11.1).

branca renders each map element's script and then feeds that output to Jinja again as
template source when the page is built (``Figure.render``, and ``st_folium`` in the app).
A facility or commune name such as ``{{ lipsum.__globals__.os.popen('id').read() }}``
used to run on the server, and ``{% endfor %}`` crashed the pages with a
TemplateSyntaxError. Each test below feeds hostile strings through one way data comes in
(a user's CSV through the importer, an OSM features table shaped as osmnx returns it,
commune names, a site name, the app's upload) and renders every map as folium and as
streamlit-folium do. The sentinel ``{{ 'MAILLAGE' ~ 'PWNED' }}`` would print
``MAILLAGEPWNED`` if Jinja evaluated it.

Fixtures are hand-made: three 2 km squares near Nantes (Lambert-93).
"""

from __future__ import annotations

import csv
import html as html_lib
import io
import re
from pathlib import Path

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import Point, box

from diagnosis import maps
from diagnosis.overview import compute_overview
from diagnosis.schema import FACILITY_DTYPES, Territory, validate_facilities
from diagnosis.settings import METRIC_CRS, WGS84

SENTINEL = "{{ 'MAILLAGE' ~ 'PWNED' }}"
EXECUTED = "MAILLAGEPWNED"
HOSTILE = (
    "Crèche {{ lipsum.__globals__.os.popen('id').read() }}",
    f"Relais {SENTINEL}",
    "LAEP {% endfor %}",
    "Centre {{ ouvert",
    "PMI {# commentaire",
    "Maison }} {%- raw %}",
    "{{ config.items() }}<script>alert(1)</script>",
)
X0, Y0 = 355_000.0, 6_690_000.0
TERRITORY = Territory("epci", "200000001", "CC de Test", ("44001", "44002"), ("44",))
SOURCES = ({"key": "test", "title": "Test {{ 7*7 }}", "vintage": "2025",
            "licence": "Licence Ouverte 2.0", "attribution": f"Source {SENTINEL}"},)


def _communes(name: str) -> gpd.GeoDataFrame:
    squares = [box(X0 + 2000 * i, Y0, X0 + 2000 * (i + 1), Y0 + 2000) for i in range(3)]
    gdf = gpd.GeoDataFrame({
        "code_insee": ["44001", "44002", "44003"],
        "name": [name, "Béta", "Gamma"],
        "births_2024": [10.0, 20.0, 40.0],
        "population_2022": [1000.0, 2000.0, 3000.0],
        "under3_estimate": [30.0, 60.0, 120.0],
    }, geometry=squares, crs=METRIC_CRS)
    halls = gpd.GeoSeries([Point(X0 + 1000 + 2000 * i, Y0 + 1000) for i in range(3)],
                          crs=METRIC_CRS).to_crs(WGS84)
    gdf["townhall_lon"] = halls.x.to_numpy()
    gdf["townhall_lat"] = halls.y.to_numpy()
    return gdf.to_crs(WGS84)


def _facilities(names: tuple[str, ...]) -> gpd.GeoDataFrame:
    kinds = ("pmi", "eaje", "rpe", "laep", "centre_social", "mairie", "eaje")
    rows = []
    for i, name in enumerate(names):
        row: dict[str, object] = {c: "" for c in FACILITY_DTYPES}
        row.update(facility_id=f"f{i}", type=kinds[i % len(kinds)], code_insee="44001",
                   capacity=np.nan, source="test", source_id=f"f{i}", name=name,
                   address=name, operator=name, phone=name, email=name, notes=name,
                   website="https://example.org/{{x}}", position_precision="address",
                   geometry=Point(X0 + 300 + 250 * i, Y0 + 500 + 150 * i))
        rows.append(row)
    gdf = gpd.GeoDataFrame(pd.DataFrame(rows), geometry="geometry", crs=METRIC_CRS)
    return validate_facilities(gdf.to_crs(WGS84), source="test")


def _render_everywhere(m: folium.Map) -> list[str]:
    """The page as folium renders it, and as streamlit-folium builds it for the app."""
    from streamlit_folium import generate_leaflet_string

    pages = [m.get_root().render()]
    m.render()
    pages.append(generate_leaflet_string(m))
    return pages


def _assert_inert(m: folium.Map) -> None:
    for page in _render_everywhere(m):
        assert EXECUTED not in page
        assert "uid=" not in page
        assert "{{" not in page and "{%" not in page and "{#" not in page


def _every_map(communes: gpd.GeoDataFrame, facilities: gpd.GeoDataFrame,
               site_name: str) -> list[folium.Map]:
    from diagnosis.analyses import (
        compute_access,
        compute_catchment,
        compute_partners,
        compute_siting,
        find_site,
    )

    ov = compute_overview(TERRITORY, communes, facilities, threshold_m=3000, sources=SOURCES)
    res = compute_access(ov, facilities, max_minutes=10)
    sc = compute_siting(ov, facilities, k_values=[1], max_minutes=10, host_types=["rpe", "pmi"],
                        need_weights={"poverty": 0, "single_parent": 0})
    site = find_site(facilities, str(facilities["facility_id"].iloc[1]))
    area = compute_catchment(site.geometry, max_minutes=10).assign(name=site_name)
    near = compute_partners(ov, facilities, site, max_minutes=10).layers["near_site"]
    return [
        maps.build_overview_map(ov, attribution=f"IGN {SENTINEL}"),
        maps.build_priority_map(res.gaps, catchment=area, catchment_label=site_name),
        maps.build_access_map(res.access, ov.layers["communes"], "pmi", facilities=facilities,
                              catchment=area, catchment_label=site_name),
        maps.build_siting_map(sc.main, communes=ov.layers["communes"], catchments=area,
                              user_points=[(-1.55, 47.2)]),
        maps.build_partner_network_map(site, near, facilities, catchment=area,
                                       attribution=SENTINEL),
    ]


@pytest.mark.parametrize("hostile", HOSTILE)
def test_hostile_names_in_every_map_stay_text(hostile):
    names = tuple(f"{hostile} {i}" for i in range(7))
    for m in _every_map(_communes(hostile), _facilities(names), hostile):
        _assert_inert(m)


def test_braces_are_still_shown_to_the_reader():
    m = maps.build_overview_map(
        compute_overview(TERRITORY, _communes("Alpha"), _facilities((f"Crèche {SENTINEL}",)),
                         threshold_m=3000, sources=SOURCES))
    page = m.get_root().render()
    page = re.sub(r"\\u([0-9a-fA-F]{4})", lambda c: chr(int(c.group(1), 16)), page)  # tojson
    shown = html_lib.unescape(page)
    assert f"Crèche {SENTINEL}" in shown  # what the browser displays, braces included


def test_hostile_names_from_a_user_csv_through_the_importer(tmp_path: Path):
    from data_sources.user_file import load_facility_file

    lines = ["nom;type;latitude;longitude;code_insee"]
    lines += [f"{h.replace(';', ',')};crèche;47.2{i};-1.55;44109" for i, h in enumerate(HOSTILE)]
    path = tmp_path / "structures_hostiles.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = load_facility_file(path)
    fac = result.facilities
    assert len(fac) == len(HOSTILE)
    assert set(fac["name"]) == {h.strip() for h in HOSTILE}  # kept as data, unchanged
    communes = _communes("Alpha")
    fac = fac.to_crs(WGS84)
    # Place them inside the fixture's communes (the importer kept positions; move for the map).
    pts = gpd.GeoSeries([Point(X0 + 300 + 200 * i, Y0 + 400) for i in range(len(fac))],
                        crs=METRIC_CRS).to_crs(WGS84)
    fac = fac.set_geometry(pts.to_numpy()).assign(code_insee="44001")
    ov = compute_overview(TERRITORY, communes, fac, threshold_m=3000, sources=SOURCES)
    _assert_inert(maps.build_overview_map(ov))


def test_hostile_names_from_osm_features():
    """OSM features as osmnx's ``features_from_polygon`` returns them (element, id index)."""
    from data_sources.osm import parse_osm_features

    pts = gpd.GeoSeries([Point(X0 + 400 + 300 * i, Y0 + 600) for i in range(3)],
                        crs=METRIC_CRS).to_crs(WGS84)
    raw = gpd.GeoDataFrame({
        "amenity": ["kindergarten", "social_centre", "childcare"],
        "name": [HOSTILE[0], HOSTILE[2], HOSTILE[1]],
        "addr:street": [HOSTILE[3], "", ""],
        "operator": [HOSTILE[4], "", ""],
    }, geometry=pts.to_numpy(), crs=WGS84,
        index=pd.MultiIndex.from_tuples([("node", 1), ("node", 2), ("node", 3)],
                                        names=["element", "id"]))
    fac = parse_osm_features(raw, communes=_communes("Alpha"))
    assert len(fac) >= 2
    assert HOSTILE[0] in set(fac["name"])
    ov = compute_overview(TERRITORY, _communes(SENTINEL), fac, threshold_m=3000,
                          sources=SOURCES)
    _assert_inert(maps.build_overview_map(ov))


def test_report_html_shows_hostile_names_as_text():
    """The PDF's HTML goes through Jinja with autoescape: names are variables, not source."""
    from diagnosis.report import render_report_html

    ov = compute_overview(TERRITORY, _communes(SENTINEL), _facilities(HOSTILE),
                          threshold_m=3000, sources=SOURCES)
    page = render_report_html(ov)
    assert EXECUTED not in page and "uid=" not in page
    assert "&#39;MAILLAGE&#39; ~ &#39;PWNED&#39;" in page or "'MAILLAGE' ~ 'PWNED'" in page


def test_pdf_maps_print_dollar_and_brace_names_as_text():
    """matplotlib would read ``$…$`` in a commune name as TeX (and fail on ``$\\frac$``)."""
    from diagnosis.static_maps import render_territory_map

    communes = _communes("Saint-$\\frac{1}$-sur-{{ Mer }}").to_crs(METRIC_CRS)
    png = render_territory_map(communes, title="Territoire", attribution="IGN $x$")
    assert png.startswith(b"\x89PNG")


def test_a_huge_name_is_cut_in_the_pdf_cells():
    """Issue 11.9: a 20,000-character name made the PDF 50 pages; cells show 300 at most."""
    from diagnosis.report import MAX_CELL_CHARS, render_report_html

    name = "Crèche " + "x" * 20_000
    ov = compute_overview(TERRITORY, _communes("Alpha"), _facilities((name,)),
                          threshold_m=3000, sources=SOURCES)
    page = render_report_html(ov)
    assert "x" * (MAX_CELL_CHARS + 10) not in page
    assert "Crèche xxx" in page


def test_special_files_are_never_replaced(tmp_path):
    """Issue 11.8: --out on a device or a FIFO is refused in French."""
    import os

    from diagnosis.__main__ import main

    fifo = tmp_path / "tube.pdf"
    os.mkfifo(fifo)
    assert main(["report", "--territory", "44129", "--out", str(fifo)]) == 2
    assert fifo.exists() and not fifo.is_file()


# ======================================================================================
# Outputs added since: the national plan, the minutes map of a mode, the report's
# contacts and sources, the scraper's contact fields. Each string below goes through
# every output; HTML must hold its escaped form (never the raw markup), the PDF its plain
# text, a CSV cell starting with = + - @ a leading apostrophe, Jinja nothing to run.
# ======================================================================================
LONG_NAME = "Crèche " + "x" * 20_000
BRIEF_HOSTILE = (
    "{{ 7*7 }}",
    "{% endfor %}",
    "<script>alert(1)</script>",
    "</script><img src=x onerror=alert(1)>",
    "=1+1",
    "+33 2",
    "@SUM(A1)",
    "$x^2$",
    "[red]rouge[/red]",  # rich markup (the command line's tables)
    LONG_NAME,
)
#: Raw markup that must never reach an HTML page unescaped.
RAW_MARKUP = ("<script>alert(1)</script>", "<img src=x onerror=alert(1)>", "</script><img")
FORMULA_START = ("=", "+", "-", "@")


def _decoded(page: str) -> str:
    """``page`` with JSON ``\\uXXXX`` escapes decoded: what JavaScript gets as strings."""
    return re.sub(r"\\u([0-9a-fA-F]{4})", lambda c: chr(int(c.group(1), 16)), page)


def _no_space(text: str) -> str:
    return re.sub(r"\s+", "", text)


def _assert_html_escaped(page: str, strings: tuple[str, ...] = BRIEF_HOSTILE) -> None:
    """No raw markup; each string shown as text (escaped form present)."""
    decoded = _decoded(page)
    for raw in RAW_MARKUP:
        assert raw not in decoded, raw
    assert EXECUTED not in decoded
    for s in strings:
        if s is LONG_NAME:
            continue
        escaped = html_lib.escape(s, quote=False)
        shown = html_lib.unescape(decoded)
        assert s in shown, s  # the reader sees the text
        if escaped != s:
            assert escaped in decoded or escaped.replace("{", "&#123;").replace(
                "}", "&#125;") in decoded, escaped


def _pdf_text(pdf: bytes) -> tuple[str, int]:
    import pypdf

    reader = pypdf.PdfReader(io.BytesIO(pdf))
    return "\n".join(p.extract_text() or "" for p in reader.pages), len(reader.pages)


def _csv_rows(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig")), delimiter=";"))


def _assert_csv_neutral(rows: list[list[str]]) -> None:
    for row in rows:
        for cell in row:
            if cell.startswith(FORMULA_START):
                assert re.fullmatch(r"-?\d+([,.]\d+)?", cell), cell  # only plain numbers


def _expected_cell(s: str) -> str:
    return "'" + s if s.startswith(FORMULA_START) else s


# --- the national plan ----------------------------------------------------------------
def _plan_inputs() -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """One cluster per hostile string, 40 km apart; an existing Maison beyond them."""
    n = len(BRIEF_HOSTILE)
    pts = gpd.GeoSeries([Point(X0 + 40_000 * i, Y0) for i in range(n + 1)],
                        crs=METRIC_CRS).to_crs(WGS84)
    codes = [f"44{i:03d}" for i in range(n + 1)]
    communes = gpd.GeoDataFrame({
        "code_insee": codes, "name": [*BRIEF_HOSTILE, "Ville d'une Maison"],
        "dep_code": "44", "births_2024": [100.0 - i for i in range(n)] + [5.0],
        "townhall_lon": pts.x, "townhall_lat": pts.y}, geometry=pts.to_numpy(), crs=WGS84)
    candidates = gpd.GeoDataFrame({
        "facility_id": [f"c{i}" for i in range(n)], "type": "pmi",
        "name": list(BRIEF_HOSTILE), "code_insee": codes[:n]},
        geometry=pts.to_numpy()[:n], crs=WGS84)
    maisons = gpd.GeoDataFrame({
        "facility_id": ["m1"], "type": "maison_1000_jours",
        "name": ["=1+1 {{ 7*7 }} <script>alert(1)</script>"], "code_insee": [codes[n]]},
        geometry=pts.to_numpy()[n:], crs=WGS84)
    return communes, candidates, maisons


@pytest.fixture(scope="module")
def hostile_plan():
    from diagnosis.plan import compute_national_plan

    communes, candidates, maisons = _plan_inputs()
    plan = compute_national_plan(communes, candidates, maisons, new=len(BRIEF_HOSTILE),
                                 max_minutes=10, dep_names={"44": "Loire-{{ 7*7 }}"})
    assert set(plan.sites["name"]) == set(BRIEF_HOSTILE)  # every string is a new Maison
    return plan


@pytest.mark.parametrize("table", ["plan_sites", "plan_departements",
                                   "plan_sites_departements", "plan_courbe"])
def test_plan_csv_cells_never_start_a_formula(hostile_plan, table):
    from diagnosis.plan_exports import plan_csv_bytes

    rows = _csv_rows(plan_csv_bytes(hostile_plan, table))
    _assert_csv_neutral(rows)
    header, body = rows[0], rows[1:]
    if table == "plan_sites":
        names = [r[header.index("Lieu d'accueil")] for r in body]
        assert sorted(names) == sorted(_expected_cell(s) for s in BRIEF_HOSTILE)
        why = [r[header.index("Pourquoi ce lieu")] for r in body]
        assert "'=1+1 (" in "".join(w[:8] for w in why)  # starts with the site's name
    if table == "plan_departements":
        assert body[0][header.index("Département")] == "Loire-{{ 7*7 }}"


def test_plan_csv_on_the_command_line_is_neutral(hostile_plan, capsys):
    from diagnosis.csvfile import french_csv_text
    from diagnosis.plan_exports import plan_tables

    text = french_csv_text(plan_tables(hostile_plan)["plan_sites"])
    rows = list(csv.reader(io.StringIO(text), delimiter=";"))
    _assert_csv_neutral(rows)
    assert {r[1] for r in rows[1:]} == {_expected_cell(s) for s in BRIEF_HOSTILE}


def test_plan_json_and_geopackage_keep_names_as_data(hostile_plan, tmp_path):
    import json

    from diagnosis.plan_exports import export_plan_geopackage, plan_record

    record = json.loads(json.dumps(plan_record(hostile_plan, "France {{ 7*7 }}"),
                                   ensure_ascii=False))
    assert {s["name"] for s in record["sites"]} == set(BRIEF_HOSTILE)
    path = export_plan_geopackage(hostile_plan, tmp_path / "plan.gpkg",
                                  sources=[{"title": "=1+1", "attribution": "<b>x</b>"}])
    sites = gpd.read_file(path, layer="plan_sites")
    assert set(sites["Lieu d'accueil"]) == set(BRIEF_HOSTILE)  # unchanged: data, not text
    existing = gpd.read_file(path, layer="maisons_existantes")
    assert existing["Maison"].tolist() == ["=1+1 {{ 7*7 }} <script>alert(1)</script>"]


def test_plan_html_escapes_every_name_and_cuts_a_huge_one(hostile_plan):
    from diagnosis.plan_exports import plan_html
    from diagnosis.report import MAX_CELL_CHARS

    page = plan_html(hostile_plan, territory="<b>France</b> {{ 7*7 }}",
                     notices=["</script><img src=x onerror=alert(1)>"])
    _assert_html_escaped(page)
    assert "&lt;b&gt;France&lt;/b&gt; {{ 7*7 }}" in page
    assert "x" * (MAX_CELL_CHARS + 10) not in page  # a 20,000-character name is cut
    assert "Crèche xxx" in page


def test_plan_pdf_prints_hostile_names_as_text(hostile_plan):
    from diagnosis.plan_exports import render_plan_pdf

    pdf = render_plan_pdf(hostile_plan, territory="France $x^2$",
                          notices=["<script>alert(1)</script>"])
    assert pdf.startswith(b"%PDF")
    text, pages = _pdf_text(pdf)
    flat = _no_space(text)
    for s in BRIEF_HOSTILE:
        if s is not LONG_NAME:
            assert _no_space(s) in flat, s
    assert "Crèchexxx" in flat
    assert pages <= 8  # the huge name does not spread over pages


def test_plan_table_on_the_command_line_prints_markup_as_text(hostile_plan, capsys):
    from diagnosis.cli_plan import _print_table

    _print_table(hostile_plan, "France [bold]x[/bold]")
    out = _no_space(capsys.readouterr().out)
    for s in ("[red]rouge[/red]", "<script>alert(1)</script>", "{{7*7}}", "=1+1", "$x^2$"):
        assert _no_space(s) in out, s
    assert "France[bold]x[/bold]" in out


# --- every map, the minutes map of a mode included --------------------------------------
def _mode_minutes_map(communes: gpd.GeoDataFrame, facilities: gpd.GeoDataFrame,
                      label: str) -> folium.Map:
    """Minutes by transit from a studied site; GTFS feed names reach the engine labels."""
    from diagnosis.analyses import find_site
    from diagnosis.travel.compare import ModeComparison

    site = find_site(facilities, str(facilities["facility_id"].iloc[1]))
    codes = communes["code_insee"].astype(str).tolist()
    minutes = pd.DataFrame({
        "code_insee": codes * 2, "name": communes["name"].tolist() * 2,
        "site_id": site.site_id, "mode": ["voiture"] * 3 + ["transports en commun"] * 3,
        "minutes": [4.0, 8.0, 12.0, 9.0, np.inf, 25.0]})
    modes = ModeComparison(pd.DataFrame(), 20.0, {"voiture": "Voiture",
                                                  "transports en commun": f"Réseau {label}"},
                           minutes)
    return maps.build_mode_minutes_map(communes, modes, site, mode="transports en commun",
                                       attribution=f"GTFS {label}")


MAP_NAMES = ("overview", "priority", "access", "siting", "partners", "mode_minutes")


@pytest.mark.parametrize("hostile", BRIEF_HOSTILE, ids=lambda s: s[:24])
def test_brief_strings_in_every_map_are_escaped(hostile):
    communes = _communes(hostile)
    facilities = _facilities(tuple(hostile for _ in range(7)))
    built = [*_every_map(communes, facilities, hostile),
             _mode_minutes_map(communes, facilities, hostile)]
    assert len(built) == len(MAP_NAMES)
    for name, m in zip(MAP_NAMES, built, strict=True):
        _assert_inert(m)
        for page in _render_everywhere(m):
            try:
                _assert_html_escaped(page, (hostile,))
            except AssertionError as exc:
                raise AssertionError(f"map {name}: {exc}") from exc


# --- the report: partners' contacts (annuaire, scraper), directory, sources -------------
def _contact_facilities() -> gpd.GeoDataFrame:
    """One structure per string, the string as its name, phone, e-mail and website."""
    kinds = ("pmi", "eaje", "rpe", "laep", "centre_social", "mairie")
    rows = []
    for i, s in enumerate(BRIEF_HOSTILE):
        row: dict[str, object] = {c: "" for c in FACILITY_DTYPES}
        row.update(facility_id=f"h{i}", type=kinds[i % len(kinds)], code_insee="44001",
                   capacity=np.nan, source=f"annuaire {s[:40]}", source_id=f"h{i}", name=s,
                   address=s, phone=s, email=s, website=s, position_precision="address",
                   geometry=Point(X0 + 300 + 150 * i, Y0 + 500 + 100 * i))
        rows.append(row)
    # the annuaire's town hall of Alpha: its contacts go to the institutions' table
    hall: dict[str, object] = {c: "" for c in FACILITY_DTYPES}
    hall.update(facility_id="hall", type="mairie", code_insee="44001", capacity=np.nan,
                source="annuaire", source_id="hall", name="Mairie d'Alpha",
                phone="</script><img src=x onerror=alert(1)>", email="=1+1 {{ 7*7 }}",
                website=LONG_NAME, position_precision="address",
                geometry=Point(X0 + 1000, Y0 + 1000))
    rows.append(hall)
    gdf = gpd.GeoDataFrame(pd.DataFrame(rows), geometry="geometry", crs=METRIC_CRS)
    return validate_facilities(gdf.to_crs(WGS84), source="test")


@pytest.fixture(scope="module")
def hostile_report_inputs():
    from diagnosis.analyses import compute_partners, find_site

    facilities = _contact_facilities()
    sources = tuple({"key": f"s{i}", "title": s, "vintage": "2025", "licence": s,
                     "attribution": s} for i, s in enumerate(BRIEF_HOSTILE))
    ov = compute_overview(TERRITORY, _communes("Alpha"), facilities, threshold_m=3000,
                          sources=sources)
    site = find_site(facilities, "h0")
    partners = compute_partners(ov, facilities, site, max_minutes=10)
    assert set(partners.layers["near_site"]["name"]) >= set(BRIEF_HOSTILE) - {"{{ 7*7 }}"}
    inst = partners.layers["institutions"].set_index("organisation")
    assert inst.at["Mairie d'Alpha", "email"] == "=1+1 {{ 7*7 }}"  # from the annuaire
    return ov, site, partners


def test_report_html_escapes_contacts_directory_and_sources(hostile_report_inputs):
    from diagnosis.report import MAX_CELL_CHARS, render_report_html

    ov, site, partners = hostile_report_inputs
    page = render_report_html(ov, partners=partners, site=site)
    _assert_html_escaped(page)
    assert "x" * (MAX_CELL_CHARS + 10) not in page  # huge name, e-mail, site: cut
    assert "Crèche xxx" in page


def test_report_pdf_prints_contacts_and_sources_as_text(hostile_report_inputs):
    from diagnosis.report import html_to_pdf, render_report_html

    ov, site, partners = hostile_report_inputs
    text, _ = _pdf_text(html_to_pdf(render_report_html(ov, partners=partners, site=site)))
    flat = _no_space(text)
    for s in BRIEF_HOSTILE:
        if s is not LONG_NAME:
            assert _no_space(s) in flat, s
    assert "Crèchexxx" in flat


# --- the report: births over ten years, CAF coverage, QPV (names from INSEE, CNAF, ANCT) --
def _hostile_context():
    from diagnosis.context import compute_context

    n = len(BRIEF_HOSTILE)
    codes = [f"44{i:03d}" for i in range(1, n + 1)]
    communes = pd.DataFrame({"code_insee": codes, "name": list(BRIEF_HOSTILE),
                             "caf_coverage_rate": [55.0] * n, "caf_coverage_rate_epci": 60.0,
                             "caf_coverage_year": 2023.0})
    for year in range(2015, 2025):
        communes[f"births_{year}"] = [10.0 + i + (year - 2015) for i in range(n)]
    qpv = gpd.GeoDataFrame({"code_qp": [f"QN044{i:03d}" for i in range(n)],
                            "lib_qp": list(BRIEF_HOSTILE), "communes": codes,
                            "basis": "liste communale"},
                           geometry=gpd.GeoSeries([None] * n, crs=WGS84), crs=WGS84)
    territory = Territory("epci", "200000001", "CC de Test", tuple(codes), ("44",))
    ctx = compute_context(territory, communes, qpv=qpv)
    assert ctx.qpv is not None and ctx.caf_coverage is not None
    return ctx


def test_report_context_part_escapes_commune_and_qpv_names():
    from diagnosis.report import MAX_CELL_CHARS, html_to_pdf, render_report_html

    ctx = _hostile_context()
    ov = compute_overview(TERRITORY, _communes("Alpha"), _facilities(("Crèche",)),
                          threshold_m=3000, sources=SOURCES)
    page = render_report_html(ov, territory_context=ctx)
    _assert_html_escaped(page)
    assert "x" * (MAX_CELL_CHARS + 10) not in page
    text, _ = _pdf_text(html_to_pdf(render_report_html(ov, territory_context=ctx)))
    flat = _no_space(text)
    for s in BRIEF_HOSTILE:
        if s is not LONG_NAME:
            assert _no_space(s) in flat, s


# --- the scraper's contact fields, through its CSV and the importer ----------------------
def test_scraped_contacts_are_neutral_in_the_csv_and_data_after_import(tmp_path: Path):
    """E-mail, website and phone of a directory page: inert cells, unchanged on import."""
    from data_sources import scrape
    from data_sources.user_file import load_facility_file
    from diagnosis.csvfile import french_csv_bytes
    from diagnosis.exports import csv_frame

    rows = []
    for i, s in enumerate(BRIEF_HOSTILE):
        row = {c: "" for c in scrape.CSV_COLUMNS}
        row.update(nom=s, type="pmi", adresse=s, code_postal="44160", commune="Pontchâteau",
                   code_insee="44129", telephone=s, email=s, site_web=s,
                   latitude=f"47.4{i}", longitude="-2.09", position_precision="address",
                   source_url="https://example.org/annuaire", source_date="2026-12-05",
                   methode="jsonld")
        rows.append(row)
    path = tmp_path / "annuaire_{{ 7*7 }}.csv"
    text = scrape.write_facility_csv(pd.DataFrame(rows), path)
    cells = list(csv.reader(io.StringIO(text), delimiter=";"))
    _assert_csv_neutral(cells)
    header = cells[0]
    for col in ("nom", "telephone", "email", "site_web", "adresse"):
        assert [r[header.index(col)] for r in cells[1:]] == [_expected_cell(s)
                                                              for s in BRIEF_HOSTILE]
    result = load_facility_file(path)
    fac = result.facilities
    assert result.report.accepted == len(BRIEF_HOSTILE) and result.report.rejected.empty
    for col in ("name", "email", "website", "address"):
        assert fac[col].tolist() == list(BRIEF_HOSTILE), col  # the guard is not data
    # written again (exports of the diagnosis): the guard comes back
    again = _csv_rows(french_csv_bytes(csv_frame(pd.DataFrame(fac.drop(columns="geometry")))))
    _assert_csv_neutral(again)
    # and shown on the map as text
    pts = gpd.GeoSeries([Point(X0 + 300 + 150 * i, Y0 + 500) for i in range(len(fac))],
                        crs=METRIC_CRS).to_crs(WGS84)
    fac = fac.set_geometry(pts.to_numpy()).assign(code_insee="44001")
    ov = compute_overview(TERRITORY, _communes("Alpha"), fac, threshold_m=3000,
                          sources=SOURCES)
    m = maps.build_overview_map(ov)
    _assert_inert(m)
    for page in _render_everywhere(m):
        _assert_html_escaped(page)


def test_federation_list_of_maisons_keeps_hostile_names_as_data(hostile_plan):
    """The federation's list (plan page upload, ``plan --maisons``) into the plan's notices."""
    from data_sources.maisons import load_federation_maisons
    from data_sources.national import load_national_communes
    from diagnosis.plan_exports import plan_html

    lines = ["nom,commune,departement,adresse,statut_date,porteur,source_url"]
    lines += [f'"{s}",Pontchâteau,44,,ouverte,"{s}",' for s in BRIEF_HOSTILE]
    lines += [f'"{s}","{s}",44,,ouverte,Asso,' for s in BRIEF_HOSTILE]  # commune not found
    res = load_federation_maisons(("fédération {{ 7*7 }}.csv", "\n".join(lines).encode()),
                                  load_national_communes(departements=["44"]))
    assert res.rows_read == 2 * len(BRIEF_HOSTILE)
    assert len(res.maisons) + len(res.rejected) == res.rows_read  # nothing lost
    assert res.maisons["name"].tolist() == list(BRIEF_HOSTILE)
    assert res.rejected["nom"].tolist() == list(BRIEF_HOSTILE)
    page = plan_html(hostile_plan, territory="France", notices=[res.summary_fr()])
    _assert_html_escaped(page)
    assert "x" * 310 not in page


def test_import_page_shows_a_hostile_file_name_as_text():
    """The heading of each imported file is Markdown: the file's name is escaped in it."""
    from streamlit.testing.v1 import AppTest

    from app_pages import md_escape
    from tests.conftest import REPO

    csv_file = Path(__file__).resolve().parent / "data" / "app" / "structures_pontchateau.csv"
    name = "$x^2$ [clic](javascript:alert(1)) <b>{{ 7*7 }}</b>.csv"
    app = AppTest.from_file(str(REPO / "app.py"), default_timeout=120)
    app.run(timeout=120)
    app.switch_page("app_pages/import_fichier.py").run(timeout=120)
    app.file_uploader(key="upload_files").set_value(
        (name, csv_file.read_bytes(), "text/csv")).run(timeout=120)
    assert not app.exception, [e.value for e in app.exception]
    headings = [h.value for h in app.subheader]
    assert md_escape(name) in headings and name not in headings


def test_report_mode_comparison_escapes_sites_communes_and_feed_names():
    """Car / pushchair / transit part: site and commune names, GTFS feed names in labels."""
    from diagnosis.report import MAX_CELL_CHARS, render_report_html
    from diagnosis.travel.compare import ModeComparison

    n = len(BRIEF_HOSTILE)
    table = pd.DataFrame({"site_id": [f"h{i}" for i in range(n)], "site": list(BRIEF_HOSTILE),
                          "mode": "transports en commun", "label": list(BRIEF_HOSTILE),
                          "births_within": 10.0, "share_births_within": 0.5,
                          "communes_within": 2, "communes_lost": list(BRIEF_HOSTILE)})
    modes = ModeComparison(table, 30.0, {"voiture": "Voiture",
                                         "transports en commun": " / ".join(BRIEF_HOSTILE)})
    ov = compute_overview(TERRITORY, _communes("Alpha"), _facilities(("Crèche",)),
                          threshold_m=3000, sources=SOURCES)
    page = render_report_html(ov, modes=modes)
    _assert_html_escaped(page)
    assert "x" * (MAX_CELL_CHARS + 10) not in page


def test_partner_csv_cells_never_start_a_formula(hostile_report_inputs):
    """Partners and institutions (annuaire contacts) as CSV for Excel (app and CLI)."""
    from diagnosis.partners import export_partners_csv
    from diagnosis.presentation import french_partners_table, partners_export_frame

    _, _, partners = hostile_report_inputs
    rows = _csv_rows(export_partners_csv(french_partners_table(
        partners_export_frame(partners.layers), {})))
    _assert_csv_neutral(rows)
    cells = {c for r in rows[1:] for c in r}
    assert {_expected_cell(s) for s in BRIEF_HOSTILE[1:]} <= cells  # [0] is the site
    assert "'=1+1 {{ 7*7 }}" in cells  # the town hall's e-mail from the annuaire


def test_plan_table_on_the_command_line_prints_no_terminal_sequence(hostile_plan, capsys):
    """An ESC in a name (terminal control sequence) is printed as « ? »."""
    from diagnosis.cli_plan import _print_table
    from diagnosis.plan import NationalPlan

    sites = hostile_plan.layers["sites"].copy()
    sites["name"] = [f"Crèche \x1b[2J\x1b]0;titre\x07 {i}" for i in range(len(sites))]
    sites["explanation"] = "Explication \x1b[31mrouge\x1b[0m"
    plan = NationalPlan({**hostile_plan.layers, "sites": sites}, hostile_plan.summary,
                        hostile_plan.params)
    _print_table(plan, "France \x1b[5m")
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out
    assert "?[2J" in _no_space(out) and "France?[5m" in _no_space(out)
