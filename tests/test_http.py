"""Tests of data_sources._http: cache, retries, offline mode, refetch, HTML pages, limits.

No network: every answer is a ``responses`` mock written inline in this file.
"""

from __future__ import annotations

import doctest
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
import responses

from data_sources import _http
from diagnosis.errors import SourceError, render_error

URL = "https://example.test/data.json"


@pytest.fixture(autouse=True)
def http_sandbox(tmp_path):
    _http.configure(cache_dir=tmp_path / "cache", offline=False, backoff_factor=0,
                    max_retries=2, rate_limits={}, timeout_s=(1.0, 2.0))
    yield
    _http.reset()


def test_doctests():
    from data_sources import (
        _http_adapter,
        _http_cache,
        _http_config,
        _http_download,
        _http_notes,
        _http_session,
    )

    for module in (_http, _http_adapter, _http_cache, _http_config, _http_download,
                   _http_notes, _http_session):
        assert doctest.testmod(module).failed == 0, module.__name__


@responses.activate
def test_good_answer_is_cached_and_served_offline():
    responses.get(URL, json={"a": 1})
    assert _http.fetch_json(URL, source="demo") == {"a": 1}
    assert _http.fetch_json(URL, source="demo") == {"a": 1}
    assert len(responses.calls) == 1  # second call from the cache
    _http.configure(offline=True)
    assert _http.fetch_json(URL, source="demo") == {"a": 1}
    assert len(responses.calls) == 1


@responses.activate
def test_user_agent_and_timeout_are_sent():
    seen = {}

    def callback(request):
        seen["ua"] = request.headers["User-Agent"]
        return (200, {}, "{}")

    responses.add_callback(responses.GET, URL, callback=callback)
    _http.fetch_json(URL, source="demo")
    assert seen["ua"].startswith("Maillage/0.1") and "diagnostic territorial" in seen["ua"]


def test_offline_without_copy_names_source_and_url():
    _http.configure(offline=True)
    with pytest.raises(SourceError, match=r"demo: offline mode .*example.test/data.json"):
        _http.fetch_json(URL, source="demo")


@responses.activate
def test_bad_answers_are_not_cached():
    responses.get(URL, status=404, body="missing")
    with pytest.raises(SourceError, match="HTTP 404"):
        _http.fetch_json(URL, source="demo")
    _http.configure(offline=True)
    with pytest.raises(SourceError, match="offline"):
        _http.fetch_json(URL, source="demo")


@responses.activate
def test_429_then_ok_is_retried():
    responses.get(URL, status=429, headers={"Retry-After": "0"})
    responses.get(URL, json={"ok": True})
    assert _http.fetch_json(URL, source="demo") == {"ok": True}
    assert len(responses.calls) == 2


def test_retry_policy_honours_retry_after_and_backoff():
    cfg = _http.configure(backoff_factor=0.5, max_retries=3)
    retry = _http.build_retry(cfg)
    assert retry.respect_retry_after_header is True
    assert set(_http.RETRY_STATUSES) <= set(retry.status_forcelist)
    assert retry.backoff_factor == 0.5 and retry.total == 3
    assert "POST" in retry.allowed_methods


@responses.activate
def test_persistent_500_raises_after_retries():
    responses.get(URL, status=500)
    with pytest.raises(SourceError, match=r"demo: HTTP 500 from https://example.test"):
        _http.fetch_json(URL, source="demo")
    assert len(responses.calls) == 3  # 1 + max_retries=2


class _StallingHandler(BaseHTTPRequestHandler):
    """Answers nothing (``/silent``) or headers then no body (``/no-body``) until released."""

    def log_message(self, *args):
        pass

    def do_GET(self):
        with self.server.lock:
            self.server.hits[self.path] = self.server.hits.get(self.path, 0) + 1
        if self.path == "/no-body":
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "100")
            self.end_headers()
            self.wfile.flush()
        self.server.release.wait(30)  # stalls far beyond the client's read timeout


@pytest.fixture
def stalling_server():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _StallingHandler)
    srv.hits, srv.lock, srv.release = {}, threading.Lock(), threading.Event()
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    _http.configure(allow_hosts=("127.0.0.1",), timeout_s=(1.0, 0.5))
    yield f"http://127.0.0.1:{srv.server_address[1]}", srv
    srv.release.set()
    srv.shutdown()
    srv.server_close()


@pytest.mark.timeout(20)  # the bound: a timeout that never fires fails here, not hangs
@pytest.mark.parametrize("path, attempts", [("/silent", 2), ("/no-body", 1)])
def test_a_stalled_server_ends_in_a_timeout_said_in_french(stalling_server, path, attempts):
    """A server that stalls (no answer, or a body that never comes) is cut by the timeout.

    A server that never answers is asked twice (a hung read is retried once, not
    1 + max_retries times); a body that stops coming is not asked again. The user reads
    a French message naming the source, the address and the limit.
    """
    base, srv = stalling_server
    with pytest.raises(SourceError) as info:
        _http.fetch_json(base + path, source="demo")
    assert "timeout" in str(info.value)
    text = render_error(info.value)
    assert text == info.value.fr and text.startswith(f"demo : {base}{path} n'a pas répondu")
    assert "(0.5 s) : délai dépassé" in text and "réessayez plus tard" in text
    assert srv.hits[path] == attempts
    assert not srv.release.is_set()  # cut by the client, not freed by the server


@pytest.mark.timeout(20)
def test_a_download_from_a_stalled_server_ends_in_a_timeout_said_in_french(stalling_server):
    base, srv = stalling_server
    with pytest.raises(SourceError) as info:
        _http.download_file(base + "/silent", source="demo")
    assert "timeout" in str(info.value) and "délai dépassé" in render_error(info.value)
    assert not _http.download_path(base + "/silent").exists()


@responses.activate
def test_connection_error_is_a_source_error():
    responses.get(URL, body=requests.exceptions.ConnectionError("no route"))
    with pytest.raises(SourceError, match=r"demo: cannot reach"):
        _http.fetch_json(URL, source="demo")


@responses.activate
def test_html_page_instead_of_json():
    responses.get(URL, body="<!DOCTYPE html><html>Maintenance</html>",
                  content_type="text/html")
    with pytest.raises(SourceError, match=r"demo: .*example.test/data.json.*HTML page"):
        _http.fetch_json(URL, source="demo")


@responses.activate
def test_truncated_json_is_refetched_once():
    responses.get(URL, body='{"features": [1, 2', content_type="application/json")
    responses.get(URL, json={"features": [1, 2, 3]})
    assert _http.fetch_json(URL, source="demo") == {"features": [1, 2, 3]}
    assert len(responses.calls) == 2
    # the good copy replaced the bad one in the cache
    _http.configure(offline=True)
    assert _http.fetch_json(URL, source="demo") == {"features": [1, 2, 3]}


@responses.activate
def test_corrupt_cached_entry_offline_says_so():
    responses.get(URL, json={"results": "not a list"})
    _http.fetch_json(URL, source="demo")  # cached as valid JSON
    _http.configure(offline=True)

    def check(doc):
        if not isinstance(doc["results"], list):
            raise ValueError("results is not a list")

    with pytest.raises(SourceError, match=r"cached copy .* unusable .*offline"):
        _http.fetch_json(URL, source="demo", check=check)


@responses.activate
def test_cp1252_text_is_decoded():
    responses.get("https://example.test/f.csv", body="nom;ville\nCrèche;Pontchâteau\n"
                  .encode("cp1252"), content_type="text/csv")
    text = _http.fetch_text("https://example.test/f.csv", source="demo")
    assert "Crèche;Pontchâteau" in text


@responses.activate
def test_post_multipart_is_cached_by_body():
    responses.post("https://example.test/csv/", body="a;b\n1;2\n", content_type="text/csv")
    args = dict(source="demo", fields=[("columns", "a")],
                files=[("data", "x.csv", b"a\n1\n", "text/csv")])
    assert _http.post_multipart_text("https://example.test/csv/", **args) == "a;b\n1;2\n"
    assert _http.post_multipart_text("https://example.test/csv/", **args) == "a;b\n1;2\n"
    assert len(responses.calls) == 1
    body = responses.calls[0].request.body
    assert b'name="columns"' in body and b'filename="x.csv"' in body


@responses.activate
def test_download_file_streams_and_checks_length(tmp_path):
    url = "https://example.test/big.csv"
    responses.get(url, body=b"l1\nl2\n", content_type="text/csv")
    lines = list(_http.stream_lines(url, source="demo"))
    assert lines == ["l1", "l2"]
    _http.configure(offline=True)
    assert list(_http.stream_lines(url, source="demo")) == ["l1", "l2"]


@responses.activate
def test_truncated_download_is_refused():
    url = "https://example.test/big2.csv"
    responses.get(url, body=b"only a part", headers={"Content-Length": "5000"},
                  auto_calculate_content_length=False)
    with pytest.raises(SourceError, match=r"demo: .*big2.csv"):
        _http.download_file(url, source="demo")
    assert not _http.download_path(url).exists()


def test_stream_lines_mixed_encodings(tmp_path):
    path = tmp_path / "mixed.csv"
    path.write_bytes("Crèche\n".encode() + "Pontchâteau\n".encode("cp1252"))
    assert list(_http.iter_file_lines(path)) == ["Crèche", "Pontchâteau"]


def test_rate_limiter_spaces_calls_per_host():
    now = [0.0]
    slept = []

    def sleep(s):
        slept.append(s)
        now[0] += s

    lim = _http.HostRateLimiter(clock=lambda: now[0], sleep=sleep)
    for _ in range(3):
        lim.wait("api.insee.fr", 30 / 60)
    lim.wait("other.host", 30 / 60)  # another host is not delayed
    assert slept == [pytest.approx(2.0), pytest.approx(2.0)]


def test_insee_rate_limit_is_30_per_minute():
    assert _http.DEFAULT_RATE_LIMITS["api.insee.fr"] * 60 == pytest.approx(30)


def test_configure_rejects_bad_values():
    with pytest.raises(ValueError, match="backoff_factor"):
        _http.configure(backoff_factor=-1)


def test_cache_dir_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("MAILLAGE_CACHE_DIR", str(tmp_path / "envcache"))
    assert _http.default_cache_dir() == tmp_path / "envcache"


@responses.activate
def test_json_body_with_bom():
    responses.get(URL, body=b"\xef\xbb\xbf" + json.dumps({"x": 1}).encode(),
                  content_type="application/json")
    assert _http.fetch_json(URL, source="demo") == {"x": 1}


def test_a_failure_is_told_from_its_kind_never_from_its_words():
    """Issue 19.6: no message parsed back with a regex. The HTTP layer's errors carry
    their kind, status, source and address; the motive and the ledger's status follow
    them even when the English text says something else."""
    from data_sources import fetch
    from data_sources._http import motive_fr

    misleading = SourceError("finess: HTTP 503 from https://x; offline mode and no cached copy",
                             kind="timeout", source="finess", url="https://x")
    assert motive_fr(misleading) == "délai de réponse dépassé"
    status, message = fetch._reason_fr("finess", misleading)
    assert status == "failed" and "délai de réponse dépassé (https://x)" in message
    offline = SourceError("whatever words", kind="offline", source="finess", url="https://y")
    assert fetch._reason_fr("finess", offline)[0] == "missing-offline"
    http = SourceError("x", kind="http", status=404, source="gtfs", url="https://z")
    assert http.fr == "gtfs : réponse HTTP 404 (https://z) ; réessayez plus tard"
    assert motive_fr(ValueError("HTTP 500")) == "réponse inutilisable"
    with pytest.raises(ValueError, match="unknown source failure kind"):
        SourceError("x", kind="HTTP 503")
