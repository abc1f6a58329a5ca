"""A whole fetch of a territory on recorded responses of every source in today's formats.

Every answer is one of the payloads of the source tests, in the formats the sources
serve today (see the docstrings of tests/test_ban.py, test_bpe.py, test_insee_melodi.py,
test_inclusion.py, test_finess.py, test_caf.py, test_boundaries.py and
test_annuaire.py for where each shape was checked). OpenStreetMap goes through osmnx's
own HTTP and is replaced by an empty table. The fetch must store facilities of every
type these answers hold, each with the right precision, and needs with no empty column
that a source served, the year of each indicator carried as data.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest
import responses
from responses import matchers

from data_sources import _http, bpe, caf, fetch, filosofi, inclusion, iris, osm, qpv, store
from data_sources.cog import resolve
from data_sources.merge import facility_frame
from diagnosis.schema import validate_facilities

DATA = Path(__file__).parent / "data"
EPCI = resolve("200000438")
MELODI = "https://api.insee.fr/melodi/data/"
CAF = "https://data.caf.fr/api/explore/v2.1/catalog/datasets/"


def text(rel: str) -> str:
    return (DATA / rel).read_text(encoding="utf-8")


def js(rel: str):
    return json.loads(text(rel))


def zipped(body: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("BPE25.csv", body.encode("utf-8"))
    return buf.getvalue()


def iris_contours() -> dict:
    """WFS GeoJSON page of ``STATISTICALUNITS.IRIS:contours_iris`` (attributes of
    tests/data/iris/wfs_contours_iris_44.json): one IRIS « Z » per commune of the EPCI
    answer, its polygon the commune's, and one IRIS of Nantes (outside the territory)."""
    com = js("boundaries/geoapi_epci_200000438.geojson")["features"]
    other = js("iris/wfs_contours_iris_44.json")["features"][0]
    feats = [{"type": "Feature", "id": f"contours_iris.{i}", "geometry": f["geometry"],
              "properties": {"cleabs": f"IRIS_{i}", "code_insee": f["properties"]["code"],
                             "nom_commune": f["properties"]["nom"], "iris": "0000",
                             "code_iris": f["properties"]["code"] + "0000",
                             "nom_iris": f["properties"]["nom"], "type_iris": "Z"}}
             for i, f in enumerate(com)] + [other]
    return {"type": "FeatureCollection", "features": feats, "totalFeatures": len(feats),
            "numberMatched": len(feats), "numberReturned": len(feats)}


def iris_census_zip() -> bytes:
    """``base-ic-evol-struct-pop-2022_csv.zip`` in the 2022 layout (``P22_POP``,
    ``P22_POP0002``; header of tests/data/iris/ with the year 22), invented counts."""
    head = ("IRIS;REG;DEP;UU2020;COM;LIBCOM;TRIRIS;GRD_QUART;LIBIRIS;TYP_IRIS;MODIF_IRIS;"
            "LAB_IRIS;P22_POP;P22_POP0002;P22_POP0305")
    rows = ["441290000;52;44;44000;44129;Pontchâteau;ZZZZZZ;4412900;Pontchâteau;Z;00;5;"
            "11402.3;356.1;420.0",
            "441610000;52;44;44000;44161;Saint-Gildas-des-Bois;ZZZZZZ;4416100;"
            "Saint-Gildas-des-Bois;Z;00;5;3820.0;118.4;130.2",
            "441090101;52;44;44701;44109;Nantes;440011;4410901;Graslin;H;00;1;2843.6;61.2;70.0"]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("base-ic-evol-struct-pop-2022.CSV", "\n".join([head, *rows]).encode())
    return buf.getvalue()


def filosofi_2021_zip(tmp_path) -> bytes:
    """``Filosofi2021_carreaux_200m_gpkg.zip``: the GeoPackage ``carreaux_200m_met.gpkg``
    directly in the zip, geometry in EPSG:2154, the 2021 columns (``i_est_200``, no
    ``groupe``), three cells per commune near the centre of its (recorded) outline, one
    imputed."""
    import geopandas as gpd
    from shapely.geometry import box, shape

    rows = []
    for f in js("boundaries/geoapi_epci_200000438.geojson")["features"]:
        code = f["properties"]["code"]
        x, y = gpd.GeoSeries([shape(f["geometry"]).centroid], crs=4326).to_crs(3035
                                                                              ).iloc[0].coords[0]
        x0, y0 = int(x // 200 * 200), int(y // 200 * 200)
        for k in range(3):
            xs = x0 + 200 * k
            rows.append({"idcar_200m": f"CRS3035RES200mN{y0}E{xs}",
                         "idcar_1km": f"CRS3035RES1000mN{y0 // 1000 * 1000}E{xs // 1000 * 1000}",
                         "idcar_nat": "", "i_est_200": 1 if k == 2 else 0, "i_est_1km": 0,
                         "lcog_geo": code, "ind": 300.0 - 50 * k, "men": 120.0,
                         "men_pauv": 10.0, "men_fmp": 8.0, "ind_snv": 6.5e6,
                         "ind_0_3": 14.0 - 3 * k, "geometry": box(xs, y0, xs + 200, y0 + 200)})
    cells = gpd.GeoDataFrame(rows, geometry="geometry", crs=3035).to_crs(2154)
    gpkg = tmp_path / "carreaux_200m_met.gpkg"
    cells.to_file(gpkg, layer="carreaux_200m_met", driver="GPKG")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.write(gpkg, "carreaux_200m_met.gpkg")
    return buf.getvalue()


def qpv_geojson() -> dict:
    """``qp2024-france-hexagonale-outre-mer-wgs84-epsg4326.geojson`` (ANCT): ``code_qp``,
    ``lib_qp``, ``insee_com`` (several codes for a quartier across communes), as read by
    public client code; two quartiers of Loire-Atlantique listed in the shipped 2024 list
    (Saint-Nazaire; Nantes and Saint-Herblain), outlines drawn by hand."""
    def square(lon, lat):
        d = 0.004
        return {"type": "Polygon", "coordinates": [[[lon, lat], [lon + d, lat],
                                                    [lon + d, lat + d], [lon, lat + d],
                                                    [lon, lat]]]}
    return {"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": square(-2.22, 47.28),
         "properties": {"code_qp": "QN04401M", "lib_qp": "Quartier de Saint-Nazaire",
                        "insee_com": "44184"}},
        {"type": "Feature", "geometry": square(-1.62, 47.22),
         "properties": {"code_qp": "QN04405M", "lib_qp": "Quartier Nantes Saint-Herblain",
                        "insee_com": "44109, 44162"}},
    ]}


def geocoder(request):
    body = request.body.decode("utf-8")
    lines = body.split('filename="adresses.csv"')[1].split("\r\n\r\n", 1)[1].split(
        "\r\n--")[0].strip().splitlines()
    out = ["rid;address;postcode;citycode;latitude;longitude;result_score;result_type;"
           "result_citycode;result_status"]
    for line in lines[1:]:
        rid, address, postcode, citycode = line.split(";")
        out.append(f"{rid};{address};{postcode};{citycode};47.45;-2.05;0.62;street;"
                   f"{citycode};ok")
    return 200, {"Content-Type": "text/csv"}, "\n".join(out)


@pytest.fixture
def recorded(tmp_path, monkeypatch):
    monkeypatch.setenv(inclusion.TOKEN_ENV, "test-token")
    monkeypatch.setattr(caf, "PAGE_LIMIT", 2)  # the recorded commune rates come on 2 pages
    _http.configure(cache_dir=tmp_path / "cache", offline=False, backoff_factor=0,
                    max_retries=1, rate_limits={}, timeout_s=(1.0, 2.0))
    monkeypatch.setattr(osm, "load_osm_facilities", lambda poly, **kw: validate_facilities(
        facility_frame([]), source="osm"))
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        # boundaries (geo.api.gouv.fr)
        rsps.get("https://geo.api.gouv.fr/epcis/200000438/communes",
                 json=js("boundaries/geoapi_epci_200000438.geojson"))
        # Melodi, today's years
        births = MELODI + "DS_ETAT_CIVIL_NAIS_COMMUNES"
        rsps.get(births, json=js("melodi/births_page2.json"),
                 match=[matchers.query_param_matcher({"page": "2"}, strict_match=False)])
        rsps.get(births, json=js("melodi/births_page1.json"))
        rsps.get(MELODI + "DS_RP_POPULATION_PRINC", json=js("melodi/empty_y0t2.json"),
                 match=[matchers.query_param_matcher({"AGE": "Y0T2"}, strict_match=False)])
        rsps.get(MELODI + "DS_RP_POPULATION_PRINC", json=js("melodi/population_2023.json"))
        rsps.get(MELODI + "DS_RP_TD_POPULATION_AGESEX_PRINC",
                 json=js("melodi/agesex_2023.json"))
        rsps.get(MELODI + "DS_FILOSOFI_CC", json=js("melodi/filosofi_2023_med.json"),
                 match=[matchers.query_param_matcher({"FILOSOFI_MEASURE": "MED_SL"},
                                                     strict_match=False)])
        rsps.get(MELODI + "DS_FILOSOFI_CC", json=js("melodi/filosofi_2023_pov.json"))
        rsps.get(MELODI + "DS_RP_FAMILLE_COMP", json=js("melodi/famille_2023.json"))
        # FINESS, one PMI geocoded to its commune's centroid (ADMIN-EXPRESS, score ".")
        dataset = js("finess/dataset.json")
        rsps.get("https://www.data.gouv.fr/api/1/datasets/"
                 "finess-extraction-du-fichier-des-etablissements/", json=dataset)
        stock = text("finess/etalab-cs1100507-stock-sample.csv").replace(
            "440000029;321110.5;6725784.8;1,ATLASANTE,62,IGN,BD_ADRESSE,V2.2,LAMBERT_93",
            "440000029;321110.5;6725784.8;1,ATLASANTE,.,ADMIN-EXPRESS-2023,EPSG:2154 RGF93")
        rsps.get(dataset["resources"][2]["url"], body=stock.encode("utf-8"),
                 content_type="text/csv")
        # BPE: discovery, the edition's TYPEQU list, the quoted 2025 file
        rsps.get(bpe.BPE_DATASET_API, body=(DATA / "bpe/datagouv_dataset.json").read_bytes(),
                 content_type="application/json")
        rsps.get("https://www.insee.fr/fr/statistiques/8217537",
                 body=text("bpe/landing_8217537.html"), content_type="text/html")
        rsps.get("https://www.insee.fr/fr/statistiques/8217525",
                 body=text("bpe/subpage_8217525.html"), content_type="text/html")
        rsps.get("https://www.insee.fr/fr/metadonnees/source/fichier/TYPEQU_2025.csv",
                 body=text("bpe/TYPEQU_2025_sample.csv"), content_type="text/csv")
        rsps.get("https://www.insee.fr/fr/statistiques/fichier/8217525/BPE25.zip",
                 body=zipped(text("bpe/bpe25_quoted_sample.csv")),
                 content_type="application/zip")
        # CAF, current and _hist datasets
        rsps.get(CAF + "txcouv_pe_com/records", json=js("caf/txcouv_pe_com_page1.json"),
                 match=[matchers.query_param_matcher({"offset": "0"}, strict_match=False)])
        rsps.get(CAF + "txcouv_pe_com/records", json=js("caf/txcouv_pe_com_page2.json"))
        rsps.get(CAF + "txcouv_pe_epci/records", json=js("caf/txcouv_pe_epci.json"))
        rsps.get(CAF + "txcouv_pe_com_hist/records", json=js("caf/txcouv_pe_com_hist.json"))
        rsps.get(CAF + "txcouv_pe_epci_hist/records", json=js("caf/txcouv_pe_epci_hist.json"))
        # data·inclusion v1 with monenfant.fr crèches
        rsps.get(f"{inclusion.BASE_URL}/structures",
                 json=js("inclusion/structures_monenfant.json"))
        rsps.get(f"{inclusion.BASE_URL}/services",
                 json=js("inclusion/services_garde_denfants.json"))
        # annuaire de l'administration
        rsps.get("https://api-lannuaire.service-public.gouv.fr/api/explore/v2.1/catalog/datasets/"
                 "api-lannuaire-administration/exports/json", json=js("annuaire/export_44.json"))
        # IRIS contours (WFS), census by IRIS (RP 2022), Filosofi 2021 cells, QPV 2024
        rsps.get("https://data.geopf.fr/wfs/ows", json=iris_contours())
        rsps.get(iris.CENSUS_URL, body=iris_census_zip(), content_type="application/zip")
        rsps.get(filosofi.FILOSOFI_2021_URL, body=filosofi_2021_zip(tmp_path),
                 content_type="application/zip")
        rsps.get(qpv.QPV_URL, json=qpv_geojson())
        # Géoplateforme geocoder for the rows without a position
        rsps.add_callback(responses.POST, "https://data.geopf.fr/geocodage/search/csv",
                          callback=geocoder)
        yield tmp_path
    _http.reset()


def test_fetch_in_todays_formats_stores_every_type_with_its_precision(recorded):
    result = fetch.fetch_territory(EPCI, root=recorded / "store")
    status = {o.key: o.status for o in result.outcomes}
    # the recorded contours and births cover 2 of the 9 communes: « partial », said so
    partial = {k for k, s in status.items() if s == "partial"}
    assert partial <= {"geo_api_communes", "insee_melodi"}, result.outcomes
    assert all(s in ("ok", "partial") for k, s in status.items() if k != "ban"), result.outcomes
    assert status["ban"] == "ok"
    got = store.read_store(EPCI, root=recorded / "store")
    fac = got.facilities
    types = set(fac["type"])
    assert {"pmi", "eaje", "mam", "laep", "rpe", "sage_femme", "maternite", "mairie"} <= types
    by_id = fac.assign(sid=fac["facility_id"]).set_index("sid")
    # FINESS centroid -> commune; BPE random point in the commune (33) -> commune
    # (the FINESS PMI of Saint-Gildas, placed to its commune, is the annuaire's
    # « Permanence PMI de Saint-Gildas-des-Bois »: one row, the better position kept)
    finess_row = fac[fac["source_id"].str.contains("finess:440000029")]
    assert len(finess_row) == 1 and "annuaire:f3a7" in finess_row["source_id"].iloc[0]
    assert set(finess_row["position_precision"]) == {"street"}
    laep = fac[(fac["type"] == "laep") & fac["source"].str.contains("bpe")]
    assert set(laep["position_precision"]) == {"commune"}
    # monenfant.fr crèches and MAM arrive through data·inclusion
    assert {"eaje", "mam"} <= set(fac.loc[fac["source"].str.contains("data_inclusion"), "type"])
    assert not fac["name"].str.contains("_Z|_U").any()
    assert len(by_id) == len(fac)
    # needs: no column a source served is empty, each with its year
    com = got.communes
    for col in ("births_2024", "population_2022", "median_income_2021", "poverty_rate_2021",
                "families_2022", "single_parent_families_2022", "under3_census"):
        assert com[col].notna().any(), col
    row = com.set_index("code_insee").loc["44129"]
    assert row["population_year"] == 2023 and row["income_year"] == 2023
    assert row["under3_census"] == 356 and row["under3_census_year"] == 2023
    ledger = {e.source: e for e in got.ledger}
    assert "population 2023" in ledger["insee_melodi"].vintage
    assert ledger["annuaire"].vintage.startswith("mise à jour jusqu'au")
    # what was merged across sources is reported, with the names merged
    rep = result.merge_report
    assert rep is not None and "names" in rep.columns
    gildas = rep[rep["merged_ids"].str.contains("finess:440000029")]
    assert gildas["names"].str.contains("finess : PMI DE SAINT-GILDAS-DES-BOIS").all()


def test_fetch_brings_iris_cells_qpv_births_trend_and_caf_coverage_into_the_diagnosis(
        recorded):
    """Issue 21.5: a fetch of the demo EPCI from recorded payloads stores the IRIS, the
    200 m cells, the QPV, the births over ten years and the CAF rates, and the Diagnosis
    holds them with their years."""
    from data_sources.workspace import load_travel, load_workspace
    from diagnosis.pipeline import DiagnosisParams, run_diagnosis

    result = fetch.fetch_territory(EPCI, root=recorded / "store")
    status = {o.key: (o.status, o.message) for o in result.outcomes}
    for key in fetch.CONTEXT_SOURCES:
        assert status[key][0] == "ok", status[key]
    assert "2 carreau(x) sur 6 imputé(s)" in status[filosofi.FILOSOFI_2021.key][1]
    assert "aucun QPV dans le territoire" in status[qpv.QPV.key][1]
    got = store.read_store(EPCI, root=recorded / "store", with_source_layers=True)
    ledger = {e.source: e for e in got.ledger}
    assert ledger[iris.IRIS_CENSUS.key].vintage == "recensement 2022"
    assert ledger[filosofi.FILOSOFI_2021.key].vintage == "Filosofi 2021"
    assert ledger[qpv.QPV.key].vintage == "QPV 2024 (contours)"

    import os
    os.environ["MAILLAGE_STORE_DIR"] = str(recorded / "store")
    try:
        ws = load_workspace(EPCI)
    finally:
        del os.environ["MAILLAGE_STORE_DIR"]
    assert ws.origin == "store"
    assert sorted(ws.iris["code_iris"]) == ["441290000", "441610000"]
    assert ws.iris.set_index("code_iris").loc["441290000", "pop_0_2"] == pytest.approx(356.1)
    assert ws.grid is not None and len(ws.grid) == 6 and ws.grid["imputed"].sum() == 2
    assert ws.qpv is not None and ws.qpv.empty
    keys = {r["key"] for r in ws.sources}
    assert {iris.IRIS_CONTOURS.key, iris.IRIS_CENSUS.key, filosofi.FILOSOFI_2021.key,
            qpv.QPV.key} <= keys
    params = DiagnosisParams(mode="crow")
    diag = run_diagnosis(ws, params, travel=load_travel(ws, "crow"), parts=("overview",))
    ctx = diag.context
    assert ctx is not None
    # births over ten years (the recorded births run 2016-2024), trend per commune
    trend = ctx.births_trend
    served = sorted({int(o["dimensions"]["TIME_PERIOD"]) for name in ("births_page1.json",
                                                                      "births_page2.json")
                     for o in js(f"melodi/{name}")["observations"]})
    assert trend.years == tuple(served[-10:]) and trend.years[-1] == 2024
    pont = trend.by_commune.set_index("code_insee").loc["44129"]
    assert pont["births_2024"] == 117 and pont["trend"] in {"hausse", "baisse", "stable"}
    assert trend.territory["year"].tolist() == list(trend.years)
    # CAF coverage with its year
    caf_cov = ctx.caf_coverage
    assert caf_cov.year == 2023
    assert caf_cov.by_commune.set_index("code_insee").loc["44129", "rate"] == pytest.approx(60.1)
    # QPV: read from the outlines, none in the territory (a known zero)
    assert ctx.qpv.basis == "contours"
    assert ctx.qpv.statements_fr == ["Aucun quartier prioritaire de la politique de la "
                                     "ville (QPV 2024) dans le territoire."]
    # the demand below the commune comes from the fetched cells
    assert diag.demand is not None


def test_every_cli_command_runs_on_the_store_fetched_from_todays_formats(recorded):
    """Issue 10.6: every ``python -m diagnosis`` command, in a fresh process, on the store
    this fetch wrote from recorded responses (the source registry completes itself)."""
    import os
    import subprocess
    import sys

    from tests.conftest import REPO

    assert fetch.fetch_territory(EPCI, root=recorded / "store").usable
    env = dict(os.environ, MAILLAGE_STORE_DIR=str(recorded / "store"),
               MAILLAGE_CACHE_DIR=str(recorded / "cache"), MAILLAGE_OFFLINE="1")
    out = recorded / "out"
    out.mkdir()
    for args in (["summary", "--format", "json"],
                 ["access", "--mode", "crow", "--format", "json"],
                 ["site", "--mode", "crow", "--format", "json"],
                 ["partners", "--mode", "crow", "--format", "json", "--site",
                  "annuaire_mairies:44129"],
                 ["export", "--out", str(out / "d.gpkg"), "--csv-dir", str(out / "csv")],
                 ["report", "--out", str(out / "r.pdf"), "--no-comparison"]):
        proc = subprocess.run([sys.executable, "-m", "diagnosis", args[0], "--territory",
                               EPCI.code, *args[1:]], capture_output=True, text=True,
                              cwd=REPO, env=env, timeout=600)
        assert proc.returncode == 0, (args[0], proc.stderr[-2000:])
        assert "not registered" not in proc.stderr
    summary = json.loads(subprocess.run(
        [sys.executable, "-m", "diagnosis", "summary", "--territory", EPCI.code, "--format",
         "json"], capture_output=True, text=True, cwd=REPO, env=env, timeout=600).stdout)
    assert summary["facilities"]["pmi"]["count"] >= 1
    assert "recensement 2023" in summary["under3_estimate_label"]
