"""A refresh that never lies (issue 25 items 4 and 5, issue 21 item 1), against a local server.

A real HTTP server bound to 127.0.0.1 (``http.server`` in a thread) plays data.caf.fr,
the INSEE Melodi API and data·inclusion; the real loaders of ``data_sources.caf``,
``insee_melodi`` and ``inclusion`` are pointed at it and ``fetch_territory`` runs them into
a store in ``tmp_path``. No test reaches the internet.

Formats, as recorded or read by client code:

- data.caf.fr, Opendatasoft Explore v2.1 ``records``: ``{"total_count": n, "results":
  [...]}`` with ``annee``, ``numcom``/``nomcom``/``txcouv_com``, ``numepci``/``nomepci``/
  ``txcouv_epci``, ``numdep`` (as in tests/data/caf, see tests/test_caf.py); the error body
  of an ODSQL query error is ``{"error_code": "ODSQLError", "message": …}`` (Opendatasoft
  Explore API v2.1 documentation).
- Melodi: ``{"observations": [...], "paging": {"next": …}}`` (INSEE's R package
  ``melodi``, ``tests/testthat/_vcr``), an empty series is ``"observations": []``.
- data·inclusion: pages ``{"items": [...], "total": n, "page": p, "size": k, "pages": m}``
  (gip-inclusion/data-inclusion, ``api/src/data_inclusion/api``); its maintenance page
  is HTML with status 200.
- The faults: HTTP 503, ``429`` with ``Retry-After: 3600``, a transfer cut before its
  ``Content-Length``, a connection closed without answer, garbage, an empty 200.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from data_sources import _http, caf, fetch, finess, inclusion, insee_melodi, store
from data_sources.cog import resolve

EPCI = "200000438"
#: The FINESS sample of tests/test_finess.py (data.gouv.fr ``etalab-cs1100507`` layout).
INCLUSION_DATA = Path(__file__).parent / "data" / "inclusion"  # see tests/test_inclusion.py
FINESS_SAMPLE = (Path(__file__).parent / "data" / "finess"
                 / "etalab-cs1100507-stock-sample.csv").read_bytes()


def _rows(dataset: str, mode: str) -> list[dict]:
    if dataset.endswith("_hist") or (mode == "zero" and dataset == "txcouv_pe_com"):
        return []
    if dataset == "txcouv_pe_com":
        return [{"annee": y, "numcom": "44129", "nomcom": "Pontchâteau", "numdep": "44",
                 "txcouv_com": r} for y, r in ((2021, 51.5), (2022, 55.0))]
    return [{"annee": y, "numepci": EPCI, "nomepci": "CC du Pays de Pontchâteau",
             "numdep": "44", "txcouv_epci": r} for y, r in ((2021, 48.0), (2022, 50.5))]


def _melodi(dataset: str, mode: str, communes: tuple[str, ...]) -> list[dict]:
    """Observations in the recorded Melodi shape: births 2023-2024 and population 2022."""
    if dataset == "DS_ETAT_CIVIL_NAIS_COMMUNES":
        if mode == "births_empty":
            return []  # a valid answer with no observation
        codes = communes[:1] if mode == "births_one" else communes
        return [{"dimensions": {"GEO": f"2025-COM-{c}", "FREQ": "A", "TIME_PERIOD": str(y),
                                "EC_MEASURE": "LVB"},
                 "measures": {"OBS_VALUE_NIVEAU": {"value": 10.0 + i}}}
                for i, c in enumerate(codes) for y in (2023, 2024)]
    if dataset == "DS_RP_POPULATION_PRINC":
        return [{"dimensions": {"GEO": f"2025-COM-{c}", "FREQ": "A", "TIME_PERIOD": "2022",
                                "RP_MEASURE": "POP", "SEX": "_T", "AGE": "_T"},
                 "measures": {"OBS_VALUE_NIVEAU": {"value": 1000.0 + i}}}
                for i, c in enumerate(communes)]
    return []


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _send(self, status, body=b"", headers=None, *, length=None):
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def do_GET(self):
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        with self.server.lock:
            self.server.hits.append(url.path)
        mode = self.server.mode
        if mode == "429":
            self._send(429, b"slow down", {"Retry-After": "3600"})
            return
        if mode == "503":
            self._send(503, b"Service Unavailable", {"Content-Type": "text/plain"})
            return
        if mode == "html":
            self._send(200, b"<!DOCTYPE html><html><body>Maintenance en cours</body></html>",
                       {"Content-Type": "text/html"})
            return
        if mode == "garbage":
            self._send(200, b"\x00\x13{ceci n'est pas du JSON", {"Content-Type":
                                                               "application/json"})
            return
        if mode == "empty200":
            self._send(200, b"", {"Content-Type": "application/json"})
            return
        if mode == "json_error":
            self._send(200, json.dumps({"error_code": "ODSQLError", "message":
                                        "Query error"}).encode(),
                       {"Content-Type": "application/json"})
            return
        if mode == "closed":
            self.close_connection = True
            self.connection.shutdown(2)
            return
        parts = url.path.strip("/").split("/")
        if url.path == "/finess/dataset":
            base = f"http://127.0.0.1:{self.server.server_address[1]}"
            body = json.dumps({"resources": [{
                "title": "Extraction FINESS des établissements géolocalisés au 12/05/2026",
                "url": f"{base}/finess/etalab-cs1100507-stock-20260512-0337.csv",
                "filesize": len(FINESS_SAMPLE), "format": "csv"}]}).encode()
            self._send(200, body, {"Content-Type": "application/json"})
            return
        if url.path.endswith("etalab-cs1100507-stock-20260512-0337.csv"):
            if mode != "finess_cut":
                self._send(200, FINESS_SAMPLE, {"Content-Type": "text/csv"})
                return
            # cut at a line boundary, no Content-Length: the end of the stream is the end
            cut = b"".join(FINESS_SAMPLE.splitlines(keepends=True)[:10])
            self.send_response(200)
            self.send_header("Content-Type", "text/csv")
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(cut)
            self.wfile.flush()
            self.close_connection = True
            return
        if url.path in {"/api/v1/structures", "/api/v1/services"}:
            name = ("services_garde_denfants.json" if url.path.endswith("services")
                    else "structures_monenfant.json")
            doc = json.loads((INCLUSION_DATA / name).read_text(encoding="utf-8"))
            if mode == "inclusion_short" and url.path.endswith("structures"):
                page = int(query.get("page", ["1"])[0])
                doc = {**doc, "total": len(doc["items"]) + 3, "pages": 2,
                       "items": doc["items"] if page == 1 else []}
            self._send(200, json.dumps(doc).encode(), {"Content-Type": "application/json"})
            return
        if url.path.startswith("/melodi/data/"):
            body = json.dumps({"identifier": parts[-1], "paging": {},
                               "observations": _melodi(parts[-1], mode,
                                                       self.server.communes)}).encode()
            self._send(200, body, {"Content-Type": "application/json"})
            return
        if "records" in parts:
            dataset = parts[parts.index("records") - 1]
            rows = _rows(dataset, mode)
            offset = int(query.get("offset", ["0"])[0])
            limit = int(query.get("limit", ["100"])[0])
            total = len(rows)
            if mode == "short" and dataset == "txcouv_pe_com":
                total = 5  # announced, but the later pages never come
            body = json.dumps({"total_count": total,
                               "results": rows[offset:offset + limit]}).encode()
            if mode == "cut":
                self._send(200, body[: len(body) // 2], {"Content-Type": "application/json"},
                           length=len(body))
                self.close_connection = True
                return
            self._send(200, body, {"Content-Type": "application/json"})
            return
        self._send(404, b"no")


class _Server(ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        pass


@pytest.fixture
def server(monkeypatch, tmp_path):
    srv = _Server(("127.0.0.1", 0), _Handler)
    srv.hits, srv.mode, srv.lock = [], "good", threading.Lock()
    srv.communes = resolve(EPCI).communes
    srv.daemon_threads = True
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{srv.server_address[1]}"
    monkeypatch.setattr(caf, "BASE_URL", base + "/api/explore/v2.1/catalog/datasets")
    monkeypatch.setattr(caf, "PAGE_LIMIT", 2)
    monkeypatch.setattr(insee_melodi, "MELODI_URL", base + "/melodi/data/{dataset}")
    monkeypatch.setattr(inclusion, "BASE_URL", base + "/api/v1")
    monkeypatch.setattr(finess, "DATASET_API_URL", base + "/finess/dataset")
    monkeypatch.setenv(inclusion.TOKEN_ENV, "jeton-de-test")
    monkeypatch.setenv(store.STORE_ENV, str(tmp_path / "store"))
    _http.configure(cache_dir=tmp_path / "cache", offline=False, backoff_factor=0,
                    max_retries=1, rate_limits={}, timeout_s=(2.0, 3.0),
                    allow_hosts=("127.0.0.1",))
    yield srv
    _http.reset()
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def area():
    return resolve(EPCI)


def _caf(area, **kw):
    result = fetch.fetch_territory(area, sources=[caf.CAF.key], **kw)
    return result, {o.key: o for o in result.outcomes}[caf.CAF.key]


def _today_fr():
    return dt.datetime.now(dt.UTC).strftime("%d/%m/%Y")


def test_caf_total_count_zero_is_suspect_never_cached_and_a_plain_fetch_recovers(
        server, area):
    _, first = _caf(area)
    assert first.status == "ok" and first.rows_kept == 4
    server.mode = "zero"  # the commune dataset answers total_count 0, results []
    result, out = _caf(area, refresh=True)
    assert out.status == "suspect" and out.kept_previous and out.suspect_kept_apart
    assert "commune 2022 : 0 contre 1" in out.message
    assert f"--accept-suspect {caf.CAF.key}" in out.message
    assert out.rows_received == 2 and out.rows_kept == 4  # both counts
    held = store.read_store(area, with_source_layers=True)
    assert len(held.source_layers[caf.CAF.key]) == 4
    entry = held.entry(caf.CAF.key)
    assert entry.status == "suspect" and entry.rows_received == 2 and entry.rows_kept == 4
    # The service recovers: a plain fetch is served the good copy the cache still holds,
    # never the refused answer (before: « suspect » again, from the cache).
    server.mode = "good"
    hits = len(server.hits)
    _, again = _caf(area)
    assert again.status == "ok" and again.rows_kept == 4
    assert len(server.hits) == hits  # from the cache: the good copy
    assert store.read_suspect(area, caf.CAF.key) is None  # superseded


def test_accept_suspect_takes_only_the_answer_kept_apart(server, area):
    _caf(area)
    server.mode = "zero"
    _caf(area, refresh=True)
    server.mode = "html"  # the service is down now: nothing may be fetched or re-read
    hits = len(server.hits)
    _, out = _caf(area, accept_suspect=[caf.CAF.key])
    assert len(server.hits) == hits
    assert out.status == "ok" and out.rows_kept == 2
    assert "réponse suspecte du" in out.message and "acceptée" in out.message
    layer = store.read_store(area, with_source_layers=True).source_layers[caf.CAF.key]
    assert set(layer["level"]) == {"epci"}  # exactly the refused answer
    assert store.read_suspect(area, caf.CAF.key) is None  # spent
    # Nothing kept apart any more: --accept-suspect runs the source as usual, and the
    # maintenance page does not replace the data.
    _, later = _caf(area, accept_suspect=True, refresh=True)
    assert later.status == "suspect" and "copie du" in later.message
    assert len(store.read_store(area, with_source_layers=True)
               .source_layers[caf.CAF.key]) == 2


@pytest.mark.parametrize(("mode", "motive"), [
    ("html", "page HTML reçue au lieu des données"),
    ("503", "réponse HTTP 503"),
    ("garbage", "réponse inutilisable"),
    ("empty200", "réponse inutilisable"),
    ("json_error", "réponse inutilisable"),
    ("cut", "transfert interrompu"),
    ("closed", "service injoignable"),
])
def test_failed_refresh_says_which_copy_was_kept(server, area, mode, motive):
    _caf(area)
    server.mode = mode
    result, out = _caf(area, refresh=True)
    expected = f"copie du {_today_fr()} gardée : la mise à jour a échoué ({motive})"
    assert out.status == "suspect" and expected in out.message, out.message
    assert out.kept_previous and out.rows_kept == 4
    entry = store.read_store(area).entry(caf.CAF.key)
    assert entry.status == "suspect" and expected in entry.note
    assert store.ledger_table([entry])["État"].tolist() == [
        "suspect, données précédentes gardées"]


def test_inclusion_maintenance_page_keeps_the_copy_and_says_so(server, area):
    key = inclusion.INCLUSION.key
    first = {o.key: o for o in fetch.fetch_territory(area, sources=[key]).outcomes}[key]
    assert first.status == "ok" and first.rows_kept == 4, first.message
    server.mode = "html"  # data·inclusion's maintenance page, HTTP 200
    out = {o.key: o for o in fetch.fetch_territory(area, sources=[key],
                                                    refresh=True).outcomes}[key]
    assert out.status == "suspect" and out.rows_kept == 4
    assert (f"copie du {_today_fr()} gardée : la mise à jour a échoué (page HTML reçue au "
            "lieu des données)") in out.message


def test_inclusion_pages_short_of_their_total_are_partial(server, area):
    server.mode = "inclusion_short"  # total 7 announced, the second page comes back empty
    key = inclusion.INCLUSION.key
    out = {o.key: o for o in fetch.fetch_territory(area, sources=[key]).outcomes}[key]
    assert out.status == "partial", out.message
    assert "4 ligne(s) reçue(s) sur 7 annoncée(s)" in out.message


def test_first_answer_short_of_its_total_count_is_partial_and_not_cached(server, area):
    server.mode = "short"  # total_count 5, the second page comes back empty
    _, out = _caf(area)
    assert out.status == "partial" and out.rows_kept == 4
    assert "2 ligne(s) reçue(s) sur 5 annoncée(s) (page incomplète)" in out.message
    entry = store.read_store(area).entry(caf.CAF.key)
    assert entry.status == "partial"
    assert store.ledger_table([entry])["État"].tolist() == ["partiel"]
    # not cached: the next fetch asks the service again
    server.mode = "good"
    hits = len(server.hits)
    _, again = _caf(area)
    assert again.status == "ok" and len(server.hits) > hits


def test_finess_file_cut_at_a_line_boundary_is_partial_against_its_catalogue_size(
        server, area):
    server.mode = "finess_cut"  # no Content-Length: only data.gouv.fr's filesize tells
    result = fetch.fetch_territory(area, sources=[finess.FINESS.key])
    out = {o.key: o for o in result.outcomes}[finess.FINESS.key]
    assert out.status == "partial", out.message
    assert "annoncé(s) par le catalogue" in out.message
    assert str(len(FINESS_SAMPLE)) in out.message
    assert store.read_store(area).entry(finess.FINESS.key).status == "partial"
    # not kept as the downloaded copy: the next fetch downloads it again, whole
    server.mode = "good"
    again = {o.key: o for o in fetch.fetch_territory(area, sources=[finess.FINESS.key])
             .outcomes}[finess.FINESS.key]
    assert again.status == "ok", again.message


@pytest.mark.timeout(120)
def test_overall_deadline_ends_a_fetch_where_every_host_answers_429_for_an_hour(
        server, area):
    server.mode = "429"  # Retry-After: 3600 everywhere
    _http.configure(max_retries=4)
    keys = [insee_melodi.MELODI.key, caf.CAF.key, inclusion.INCLUSION.key]
    result = fetch.fetch_territory(area, sources=keys, deadline_s=1.5)
    out = {o.key: o for o in result.outcomes}
    assert [out[k].status for k in keys] == ["timeout"] * 3
    assert all("délai global de la mise à jour" in out[k].message for k in keys)
    assert "arrêtée avant la fin" in out[keys[0]].message
    assert "pas lancée" in out[keys[2]].message
    ledger = store.read_store(area)
    assert ledger is None or all(
        ledger.entry(k).status == "timeout" for k in keys if ledger.entry(k))
    assert len(server.hits) < 20  # a handful of calls, not an hour of retries


@pytest.mark.parametrize(("mode", "expected"), [
    ("births_empty", "naissances 2024 : 0 contre 9"),  # Melodi observations: []
    ("births_one", "naissances 2024 : 1 contre 9"),    # a series with fewer communes
])
def test_melodi_series_emptied_or_shrunk_is_suspect_and_the_held_values_stay(
        server, area, mode, expected):
    key = insee_melodi.MELODI.key
    first = {o.key: o for o in fetch.fetch_territory(area, sources=[key]).outcomes}[key]
    assert first.status == "ok", first.message
    server.mode = mode  # population still complete: only the births series is lost
    out = {o.key: o for o in fetch.fetch_territory(area, sources=[key],
                                                    refresh=True).outcomes}[key]
    assert out.status == "suspect" and expected in out.message, out.message
    assert out.rows_received == 9 and out.rows_kept == 9  # rows alone would not tell
    held = store.read_store(area, with_source_layers=True).source_layers[key]
    assert held["births_2024"].notna().sum() == 9
    kept = store.read_suspect(area, key)
    births = kept[0].get("births_2024") if kept is not None else None
    assert kept is not None and (0 if births is None else births.notna().sum()) == (
        0 if mode == "births_empty" else 1)


def test_cli_deadline_and_accept_suspect_reach_the_fetch(monkeypatch, capsys):
    from data_sources import __main__ as cli

    seen = {}

    def fake(territory, **kw):
        seen.update(kw)
        raise store.StoreBusyError("Stock local : une autre mise à jour est en cours")

    monkeypatch.setattr(cli, "fetch_territory", fake)
    monkeypatch.setattr(cli, "detect_offline", lambda **kw: False)
    assert cli.main(["fetch", "--territory", EPCI, "--deadline-min", "2",
                     "--accept-suspect", "caf_txcouv"]) == 3
    assert seen["deadline_s"] == 120 and seen["accept_suspect"] == ["caf_txcouv"]
    assert cli.main(["fetch", "--territory", EPCI, "--accept-suspect"]) == 3
    assert seen["accept_suspect"] is True
    assert seen["deadline_s"] == fetch.DEFAULT_FETCH_DEADLINE_S
    assert cli.main(["fetch", "--territory", EPCI, "--deadline-min", "0"]) == 2
    assert "délai global doit être un nombre de minutes positif" in capsys.readouterr().err


def test_cli_summary_of_a_refused_refresh(server, area, monkeypatch, capsys):
    from data_sources import __main__ as cli

    monkeypatch.setattr(cli, "detect_offline", lambda **kw: False)
    assert cli.main(["fetch", "--territory", EPCI, "--source", caf.CAF.key]) == 0
    server.mode = "zero"
    capsys.readouterr()
    assert cli.main(["fetch", "--territory", EPCI, "--source", caf.CAF.key,
                     "--refresh"]) == 0
    out = capsys.readouterr().out
    assert "1 source(s) suspecte(s), données enregistrées gardées" in out
    assert f"relancez avec --accept-suspect {caf.CAF.key}" in out
    assert "Aucune nouvelle réponse retenue" in out and "Aucune source n'a répondu" not in out
