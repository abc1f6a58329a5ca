"""GTFS loader: parse, times, interpolation, study date, catalogue of the national access point.

Real feeds (``../shared/data/test-only/transit``): Porto Alegre EPTC (blank
non-timepoint times), Rennes STAR 2016 (a complete French feed, times past 24:00),
Zheleznogorsk (small). The catalogue payload ``tests/data/gtfs/tdg_datasets.json``
follows the ``/api/datasets`` answer as built by ``transform_dataset`` /
``transform_resource`` / ``covered_area`` in etalab/transport-site
(apps/transport/lib/transport_web/api/controllers/datasets_controller.ex): dataset keys
``id``, ``title``, ``resources`` (``format``, ``url``, ``start_calendar_validity``,
``end_calendar_validity``), ``covered_area`` of type ``aom`` / ``cities`` / ``region`` /
``country``.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import re
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import responses

from data_sources.gtfs import (
    feeds_for_territory,
    folder_name,
    normalise_times,
    parse_catalogue,
    parse_gtfs_zip,
    prepare_feed,
    read_gtfs,
    services_on,
    write_engine_feed,
)
from diagnosis.errors import InputError, SourceError
from tests.conftest import require_shared

DATA = Path(__file__).parent / "data" / "gtfs"
TUESDAY = dt.date(2026, 3, 3)


def make_zip(files: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, text in files.items():
            z.writestr(name, text)
    return buf.getvalue()


BASE = {
    "agency.txt": "agency_id,agency_name,agency_url,agency_timezone\n1,Réseau Test,"
                  "http://x,Europe/Paris\n",
    "stops.txt": "stop_id,stop_name,stop_lat,stop_lon\nA,Gare,47.0,-1.5\nB,Mairie,47.01,-1.5\n"
                 "C,École,47.02,-1.5\n",
    "routes.txt": "route_id,agency_id,route_short_name,route_type\nL1,1,1,3\n",
    "trips.txt": "route_id,service_id,trip_id\nL1,S,t1\n",
    "stop_times.txt": "trip_id,arrival_time,departure_time,stop_id,stop_sequence\n"
                      "t1,9:40:00,9:40:00,A,1\nt1,,,B,2\nt1,10:00:00,10:00:00,C,3\n",
}
CAL_2016 = ("service_id,monday,tuesday,wednesday,thursday,friday,saturday,sunday,start_date,"
            "end_date\nS,1,1,1,1,1,0,0,20160101,20161231\n")


def feed(**override: str):
    files = {**BASE, **override}
    return parse_gtfs_zip(make_zip(files), name="Réseau Test", source="test.zip")


def test_expired_feed_is_refused_in_french():
    f = feed(**{"calendar.txt": CAL_2016})
    with pytest.raises(SourceError) as err:
        prepare_feed(f, TUESDAY)
    msg = str(err.value)
    assert "le réseau Réseau Test n'a pas d'horaires pour le mardi 3 mars 2026" in msg
    assert "du 01/01/2016 au 31/12/2016" in msg


def test_calendar_dates_only_feed_is_accepted():
    f = feed(**{"calendar_dates.txt": "service_id,date,exception_type\nS,20260303,1\n"})
    assert "calendar.txt" not in f.tables
    p = prepare_feed(f, TUESDAY)
    assert p.trips["trip_id"].tolist() == ["t1"]
    with pytest.raises(SourceError, match="mercredi 4 mars 2026"):
        prepare_feed(f, dt.date(2026, 3, 4))


def test_removed_day_wins_over_calendar():
    cal = CAL_2016.replace("20160101,20161231", "20260101,20261231")
    f = feed(**{"calendar.txt": cal,
                "calendar_dates.txt": "service_id,date,exception_type\nS,20260303,2\n"})
    assert services_on(f, TUESDAY) == set()
    assert services_on(f, dt.date(2026, 3, 10)) == {"S"}


def test_blank_time_interpolated_by_distance_and_h_mm_ss_normalised():
    st = pd.DataFrame({"trip_id": ["t"] * 4, "stop_id": list("abcd"),
                       "stop_sequence": ["1", "2", "3", "4"],
                       "arrival_time": ["9:00:00", "", "", "09:30:00"],
                       "departure_time": ["9:00:00", "", "", "09:30:00"],
                       "shape_dist_traveled": ["0", "1000", "1500", "3000"]})
    out, n, notes = normalise_times(st)
    # 1000 m of 3000 m -> 10 min, 1500 m -> 15 min after 9:00
    assert out["arrival_s"].tolist() == [32400.0, 33000.0, 33300.0, 34200.0]
    assert n == 2 and notes == []


def test_trip_with_blank_end_or_unreadable_time_is_rejected_and_counted():
    st = pd.DataFrame({"trip_id": ["t", "t", "u", "u"], "stop_id": list("abab"),
                       "stop_sequence": ["1", "2", "1", "2"],
                       "arrival_time": ["9:00:00", "", "9h00", "9:10:00"],
                       "departure_time": ["9:00:00", "", "9h00", "9:10:00"]})
    out, n, notes = normalise_times(st)
    assert out.empty and n == 0
    assert any("illisible" in x and "ligne" in x and "'u'" in x for x in notes)
    assert any("premier ou au dernier arrêt" in x for x in notes)


def test_times_past_midnight_are_kept_and_written_back():
    cal = CAL_2016.replace("20160101,20161231", "20260101,20261231")
    f = feed(**{"calendar.txt": cal, "stop_times.txt":
                "trip_id,arrival_time,departure_time,stop_id,stop_sequence\n"
                "t1,23:50:00,23:50:00,A,1\nt1,24:20:00,24:20:00,C,2\n"})
    p = prepare_feed(f, TUESDAY)
    assert p.stop_times["arrival_s"].max() == 24 * 3600 + 20 * 60


def test_engine_feed_has_one_calendar_for_the_study_day(tmp_path):
    cal = CAL_2016.replace("20160101,20161231", "20260101,20261231")
    p = prepare_feed(feed(**{"calendar.txt": cal}), TUESDAY)
    out = write_engine_feed(p, tmp_path / "f")
    st = pd.read_csv(out / "stop_times.txt", dtype=str)
    assert st["arrival_time"].tolist() == ["09:40:00", "09:50:00", "10:00:00"]
    cal_out = pd.read_csv(out / "calendar.txt", dtype=str)
    assert cal_out[["start_date", "end_date"]].iloc[0].tolist() == ["20260303", "20260303"]
    assert set(pd.read_csv(out / "trips.txt", dtype=str)["service_id"]) == {"study_day"}


def test_frequencies_expanded_into_trips():
    cal = CAL_2016.replace("20160101,20161231", "20260101,20261231")
    f = feed(**{"calendar.txt": cal, "frequencies.txt":
                "trip_id,start_time,end_time,headway_secs\nt1,07:00:00,08:00:00,900\n"})
    p = prepare_feed(f, TUESDAY)
    assert p.n_frequency_trips == 4  # 7:00, 7:15, 7:30, 7:45
    first = p.stop_times.groupby("trip_id")["departure_s"].min().sort_values()
    assert first.tolist() == [25200.0, 26100.0, 27000.0, 27900.0]


def test_missing_file_named_in_french():
    files = {k: v for k, v in BASE.items() if k != "stop_times.txt"}
    with pytest.raises(InputError, match="stop_times.txt"):
        parse_gtfs_zip(make_zip(files), name="X", source="x.zip")
    with pytest.raises(InputError, match="calendar.txt ou calendar_dates.txt"):
        parse_gtfs_zip(make_zip(BASE), name="X", source="x.zip")
    with pytest.raises(InputError, match="zip"):
        parse_gtfs_zip(b"not a zip", name="X", source="x.zip")


def test_hostile_network_name_stays_text():
    name = "../../etc/<script>alert(1)</script>{{7*7}}"
    f = parse_gtfs_zip(make_zip({**BASE, "calendar.txt": CAL_2016}), name=name, source="x")
    with pytest.raises(SourceError) as err:
        prepare_feed(f, TUESDAY)
    assert name in str(err.value)  # verbatim, never evaluated
    assert "/" not in folder_name(f) and "<" not in folder_name(f)


# --- the national access point ---------------------------------------------------------


def test_catalogue_parsed_and_matched_to_territory():
    payload = json.loads((DATA / "tdg_datasets.json").read_text(encoding="utf-8"))
    cat = parse_catalogue(payload)
    assert [c.title for c in cat] == ["Réseau urbain STAR", "Lignes de Vitré", "BreizhGo"]
    star = cat[0]
    assert star.start == dt.date(2026, 1, 5) and star.end == dt.date(2026, 7, 5)
    assert star.covered_type == "aom" and star.aom_siren == "243500139"
    vitre = cat[1]
    assert vitre.cities == ("35360", "35051")
    mine = feeds_for_territory(cat, ["35238"], aom_sirens=["243500139"],
                               region_names=["Bretagne"])
    assert [c.title for c in mine] == ["Réseau urbain STAR", "BreizhGo"]
    assert [c.title for c in feeds_for_territory(cat, ["35051"])] == ["Lignes de Vitré"]
    assert parse_catalogue({"unexpected": "shape"}) == []


# --- real feeds ---------------------------------------------------------------------


def test_porto_alegre_loaded_after_interpolation():
    path = require_shared("test-only/transit/porto-alegre/poa_eptc.zip")
    p = prepare_feed(read_gtfs(path), dt.date(2019, 4, 16))
    assert p.n_interpolated > 50_000  # most stops of EPTC are not timepoints
    st = p.stop_times
    assert np.isfinite(st["arrival_s"]).all()
    d = st.groupby("trip_id")["arrival_s"].diff().dropna()
    assert (d >= 0).all()  # never back in time along a trip
    assert any("interpolé" in n for n in p.notices)


def test_rennes_2016_parsed():
    path = require_shared("test-only/transit/rennes/star_rennes_GTFS-20160419.zip")
    f = read_gtfs(path)
    start, end = f.validity
    assert start is not None and end is not None and start <= dt.date(2016, 5, 10) <= end
    p = prepare_feed(f, dt.date(2016, 5, 10))
    assert len(p.trips) > 1_000 and len(p.stops) > 500
    assert p.stop_times["arrival_s"].max() > 24 * 3600  # night buses past midnight kept
    with pytest.raises(SourceError, match="n'a pas d'horaires pour le mardi 3 mars 2026"):
        prepare_feed(f, TUESDAY)


# --- the national access point through the HTTP layer (recorded answers) -------------


@responses.activate
def test_catalogue_fetched_cached_and_aom_of_a_commune(http_sandbox):
    from data_sources import _http
    from data_sources.gtfs import API_URL, fetch_aom_siren, fetch_catalogue

    payload = (DATA / "tdg_datasets.json").read_text(encoding="utf-8")
    responses.add(responses.GET, f"{API_URL}/datasets", body=payload,
                  content_type="application/json")
    # /api/aoms/:insee answers the AOM fields of AomController.by_insee
    responses.add(responses.GET, f"{API_URL}/aoms/35238", json={
        "nom": "Rennes Métropole", "insee_commune_principale": "35238",
        "departement": "35", "forme_juridique": "Métropole", "siren": "243500139"})
    cat = parse_catalogue(fetch_catalogue())
    sirens = [fetch_aom_siren("35238")]
    assert [c.title for c in feeds_for_territory(cat, ["35238"], aom_sirens=sirens)] == [
        "Réseau urbain STAR"]
    _http.configure(offline=True)
    n = len(responses.calls)
    assert len(parse_catalogue(fetch_catalogue())) == 3  # served from the cache
    assert len(responses.calls) == n


@responses.activate
def test_catalogue_html_error_page_is_a_french_source_error(http_sandbox):
    from data_sources.gtfs import API_URL, fetch_catalogue

    responses.add(responses.GET, f"{API_URL}/datasets", body="<html>maintenance</html>",
                  content_type="text/html", status=200)
    with pytest.raises(SourceError):
        fetch_catalogue()


@responses.activate
def test_cli_reseaux_lists_the_feeds_covering_the_territory(http_sandbox, capsys):
    from data_sources.gtfs import API_URL
    from diagnosis.__main__ import main

    payload = json.loads((DATA / "tdg_datasets.json").read_text(encoding="utf-8"))
    # the demo EPCI (Pontchâteau) added to the cities a dataset covers
    payload[1]["covered_area"]["cities"].append({"name": "Pontchâteau", "insee": "44129"})
    responses.add(responses.GET, f"{API_URL}/datasets", json=payload)
    responses.add(responses.GET, re.compile(rf"{re.escape(API_URL)}/aoms/\d+"),
                  json={"error": "No corresponding AOM found"}, status=404)
    assert main(["reseaux", "--territory", "200000438", "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [f["reseau"] for f in out["feeds"]] == ["Lignes de Vitré"]
    assert out["feeds"][0]["debut"] == "2025-09-01"
