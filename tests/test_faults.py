"""Fault suite of the HTTP layer and the OSM loader, against a local misbehaving server.

A real HTTP server bound to 127.0.0.1 (``http.server`` in a thread) answers with the
faults of issue 11: ``Retry-After: 3600``, a body that trickles, a body far too large, a
transfer cut before its ``Content-Length``, a 200 HTML page in place of JSON, a slow
server against a per-source deadline, an Overpass that answers 429 for ever. Each test
checks the fault is bounded and reported as what it is (truncated, too slow, too large),
with the source and the URL named. No test reaches the internet.

Checked against the real APIs: urllib3 ``Retry.parse_retry_after`` / ``Retry.new``
(urllib3 ``src/urllib3/util/retry.py``), requests-cache ``CachedSession.send`` and its
``filter_fn`` (requests-cache ``requests_cache/session.py``), and osmnx
``_overpass._overpass_request``, which retries 429/504 recursively after 55 s and passes
``settings.requests_kwargs`` to ``requests.post`` (osmnx ``osmnx/_overpass.py``).
"""

from __future__ import annotations

import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from data_sources import _http, fetch, osm
from diagnosis.errors import SourceError


class _Handler(BaseHTTPRequestHandler):
    """Answers by path; counts the hits of each path on the server."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # quiet
        pass

    def _count(self):
        with self.server.lock:
            self.server.hits[self.path] = self.server.hits.get(self.path, 0) + 1
            return self.server.hits[self.path]

    def _send(self, status, body=b"", headers=None, *, length=None):
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def do_HEAD(self):
        self._count()
        self._send(200)

    def do_POST(self):
        n = self._count()
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path.startswith("/api/interpreter"):
            if n <= 10:  # an Overpass that stays busy for 10 answers
                self._send(429, b"rate_limited", {"Content-Type": "text/plain"})
            else:
                self._send(200, json.dumps({"elements": []}).encode(),
                           {"Content-Type": "application/json"})
            return
        self._send(404, b"no")

    def do_GET(self):
        n = self._count()
        path = self.path.split("?")[0]
        good = json.dumps({"ok": True, "rows": list(range(5))}).encode()
        if path == "/retry-after":
            if n == 1:
                self._send(429, b"slow down", {"Retry-After": "3600"})
            else:
                self._send(200, good, {"Content-Type": "application/json"})
        elif path == "/trickle":
            body = b'{"ok": true, "pad": "' + b"x" * 200 + b'"}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            try:
                for i in range(len(body)):
                    self.wfile.write(body[i:i + 1])
                    self.wfile.flush()
                    time.sleep(0.1)
            except (BrokenPipeError, ConnectionResetError):
                pass
        elif path in {"/huge", "/huge.csv"}:
            chunk = b"a;b;c\n" * 10000
            self.send_response(200)
            self.send_header("Content-Type", "text/csv")
            self.send_header("Content-Length", str(len(chunk) * 100))
            self.end_headers()
            try:
                for _ in range(100):
                    self.wfile.write(chunk)
            except (BrokenPipeError, ConnectionResetError):
                pass
        elif path in {"/cut", "/cut.csv"}:
            self._send(200, good[: len(good) // 2], {"Content-Type": "application/json"},
                       length=len(good))
            self.close_connection = True
        elif path == "/slow":
            time.sleep(1.5)
            self._send(200, good, {"Content-Type": "application/json"})
        elif path == "/flaky-html":
            if self.server.mode.get("html"):
                self._send(200, b"<html><body>Maintenance</body></html>",
                           {"Content-Type": "text/html"})
            else:
                self._send(200, good, {"Content-Type": "application/json"})
        elif path == "/file.csv":
            if self.server.mode.get("down"):
                self._send(503, b"down")
            else:
                self._send(200, f"a;b\n1;{n}\n".encode(), {"Content-Type": "text/csv"})
        elif path == "/good":
            self._send(200, good, {"Content-Type": "application/json"})
        elif path == "/etag":
            if self.headers.get("If-None-Match") == '"v1"':
                self._send(304, b"", {"ETag": '"v1"'})
            else:
                self._send(200, good, {"Content-Type": "application/json", "ETag": '"v1"'})
        else:
            self._send(404, b"no")


class _Server(ThreadingHTTPServer):
    def handle_error(self, request, client_address):  # a client that hung up: expected
        pass


@pytest.fixture
def server():
    srv = _Server(("127.0.0.1", 0), _Handler)
    srv.hits, srv.mode, srv.lock = {}, {}, threading.Lock()
    srv.daemon_threads = True
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    srv.base = f"http://127.0.0.1:{srv.server_address[1]}"
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture(autouse=True)
def http_sandbox(tmp_path):
    _http.configure(cache_dir=tmp_path / "cache", offline=False, backoff_factor=0,
                    max_retries=2, rate_limits={}, timeout_s=(2.0, 3.0),
                    allow_hosts=("127.0.0.1",))  # the local test server
    yield
    _http.reset()


def test_retry_after_is_capped(server):
    _http.configure(max_retry_after_s=0.2)
    start = time.monotonic()
    assert _http.fetch_json(server.base + "/retry-after", source="demo")["ok"] is True
    assert time.monotonic() - start < 3  # not 3600 s
    assert server.hits["/retry-after"] == 2


def test_retry_after_cap_default_is_a_minute():
    retry = _http.build_retry(_http.get_config())
    assert isinstance(retry, _http.CappedRetry)
    assert retry.parse_retry_after("3600") == 60.0
    assert retry.increment(method="GET", url="/x").max_retry_after_s == 60.0
    assert retry.read == 1  # a hung read is retried once, not max_retries times


def test_trickling_server_times_out(server):
    _http.configure(body_deadline_s=1.0, max_retries=0)
    start = time.monotonic()
    with pytest.raises(SourceError, match=r"demo: .*/trickle sent its answer too slowly"):
        _http.fetch_json(server.base + "/trickle", source="demo")
    assert time.monotonic() - start < 5  # the body would take 22 s


def test_trickling_download_times_out(server):
    _http.configure(body_deadline_s=1.0, max_retries=0)
    start = time.monotonic()
    with pytest.raises(SourceError, match="too slowly"):
        _http.download_file(server.base + "/trickle", source="demo")
    assert time.monotonic() - start < 5
    assert not list(_http.download_path(server.base + "/trickle").parent.glob("*.part*"))


def test_huge_body_is_refused_while_streaming(server):
    _http.configure(max_body_bytes=200_000)
    with pytest.raises(SourceError, match=r"exceeds 200000 bytes"):
        _http.fetch_text(server.base + "/huge.csv", source="demo")
    assert server.hits["/huge.csv"] == 1  # refused, not fetched twice


def test_huge_download_is_refused(server):
    _http.configure(max_download_bytes=200_000)
    with pytest.raises(SourceError, match=r"200000"):
        _http.download_file(server.base + "/huge", source="demo")
    assert not _http.download_path(server.base + "/huge").exists()


def test_truncated_transfer_is_retried_and_reported_as_truncated(server):
    with pytest.raises(SourceError) as info:
        _http.fetch_json(server.base + "/cut", source="finess")
    text = str(info.value)
    assert "truncated" in text and "/cut" in text and "internet" not in text
    assert server.hits["/cut"] == 2  # fetched once more before giving up
    status, message = fetch._reason_fr("finess", info.value)
    assert status == "failed" and "tronquée" in message
    assert "n'est pas une absence d'internet" in message


def test_truncated_download_is_reported_as_truncated(server):
    with pytest.raises(SourceError, match="truncated download"):
        _http.download_file(server.base + "/cut", source="demo")


def test_answer_is_cached_only_after_validation(server):
    url = server.base + "/good"
    seen = []

    def check(value):
        seen.append(_http.get_session().cache.contains(url=url))
        if len(seen) == 1:
            raise ValueError("rows missing")

    assert _http.fetch_json(url, source="demo", check=check)["ok"]
    assert seen == [False, False]  # not in the cache while it was being checked
    assert _http.get_session().cache.contains(url=url)  # kept once accepted
    assert server.hits["/good"] == 2


def test_rejected_answer_is_never_cached(server):
    url = server.base + "/good"

    def refuse(value):
        raise ValueError("wrong shape")

    with pytest.raises(SourceError, match="twice"):
        _http.fetch_json(url, source="demo", check=refuse)
    assert not _http.get_session().cache.contains(url=url)
    _http.configure(offline=True)
    with pytest.raises(SourceError, match="offline mode and no cached copy"):
        _http.fetch_json(url, source="demo")


def test_html_page_does_not_replace_a_stale_good_copy(server):
    url = server.base + "/flaky-html"
    assert _http.fetch_json(url, source="demo")["ok"]
    server.mode["html"] = True
    _http.configure(expire_after_s=1)  # the copy is now expired
    time.sleep(1.1)
    assert _http.fetch_json(url, source="demo", refresh=True)["ok"]  # the good copy
    assert server.hits["/flaky-html"] == 3  # two HTML answers refused
    _http.configure(offline=True)
    assert _http.fetch_json(url, source="demo")["ok"]  # still in the cache


def test_refreshing_fetches_each_url_again_once(server):
    url = server.base + "/good"
    _http.fetch_json(url, source="demo")
    _http.fetch_json(url, source="demo")
    assert server.hits["/good"] == 1
    with _http.refreshing():
        _http.fetch_json(url, source="demo")
        _http.fetch_json(url, source="demo")
    assert server.hits["/good"] == 2
    _http.fetch_json(url, source="demo")
    assert server.hits["/good"] == 2


def test_downloaded_file_expires_and_dates_the_data(server):
    url = server.base + "/file.csv"
    with _http.data_dates() as dates:
        path = _http.download_file(url, source="demo")
    assert path.read_text().endswith("1;1\n") and len(dates) == 1
    old = time.time() - 40 * 24 * 3600
    os.utime(path, (old, old))
    with _http.data_dates() as dates:
        _http.download_file(url, source="demo")
    assert path.read_text().endswith("1;2\n")  # expired: downloaded again
    assert dates[0] >= time.strftime("%Y-%m-%d", time.gmtime())
    os.utime(path, (old, old))
    server.mode["down"] = True
    with _http.data_dates() as dates:
        again = _http.download_file(url, source="demo")
    assert again == path and path.read_text().endswith("1;2\n")  # old copy, not an error
    assert dates[0].startswith(time.strftime("%Y-%m-%d", time.gmtime(old)))
    with _http.refreshing():
        server.mode["down"] = False
        _http.download_file(url, source="demo")
    n = server.hits["/file.csv"]
    assert n > 3 and path.read_text().endswith(f"1;{n}\n")  # fetched again


def test_source_deadline_bounds_every_call(server):
    start = time.monotonic()
    with _http.source_deadline(0.5, source="demo"):
        with pytest.raises(SourceError, match="demo"):
            _http.fetch_json(server.base + "/slow", source="demo")
        with pytest.raises(SourceError, match=r"overall deadline of 0.5 s"):
            _http.fetch_json(server.base + "/good", source="demo")
    assert time.monotonic() - start < 4  # not 3 × (read timeout + retries)
    assert "/good" not in server.hits


def test_osmnx_overpass_429_retries_are_bounded(server, monkeypatch, tmp_path):
    import osmnx as ox
    from shapely.geometry import box

    monkeypatch.setattr(ox.settings, "overpass_url", server.base + "/api")
    monkeypatch.setattr(ox.settings, "overpass_rate_limit", False)
    monkeypatch.setattr(ox.settings, "requests_kwargs", {})
    monkeypatch.setattr(ox._overpass.time, "sleep", lambda s: None)  # its 55 s pauses
    start = time.monotonic()
    with pytest.raises(SourceError, match=r"osm : Overpass a répondu HTTP 429"):
        osm._fetch_features(box(-2.10, 47.43, -2.08, 47.44), refresh=True)
    assert time.monotonic() - start < 10
    assert server.hits["/api/interpreter"] == osm.OVERPASS_MAX_RETRIES + 1


def test_osmnx_overpass_429_stops_at_the_source_deadline(server, monkeypatch):
    """An Overpass 429 with too little time left ends at once, not after osmnx's 55 s."""
    import osmnx as ox
    from shapely.geometry import box

    monkeypatch.setattr(ox.settings, "overpass_url", server.base + "/api")
    monkeypatch.setattr(ox.settings, "overpass_rate_limit", False)
    monkeypatch.setattr(ox.settings, "requests_kwargs", {})
    pauses = []
    monkeypatch.setattr(ox._overpass.time, "sleep", pauses.append)
    with _http.source_deadline(30, source="osm"), pytest.raises(SourceError) as info:
        osm._fetch_features(box(-2.10, 47.43, -2.08, 47.44), refresh=True)
    assert info.value.kind == "deadline" and "délai global" in str(info.value)
    assert server.hits["/api/interpreter"] == 1 and not [p for p in pauses if p >= 50]
    status, message = fetch._reason_fr("osm", info.value)
    assert status == "failed" and "délai global dépassé" in message


def test_html_page_does_not_replace_a_stale_downloaded_file(server, monkeypatch):
    url = server.base + "/file.csv"
    path = _http.download_file(url, source="demo")
    good = path.read_text()
    old = time.time() - 40 * 24 * 3600
    os.utime(path, (old, old))

    real = _Handler.do_GET

    def html(self):
        if self.path == "/file.csv":
            self._count()
            self._send(200, b"<!DOCTYPE html><html>Maintenance</html>",
                       {"Content-Type": "text/html"})
        else:
            real(self)

    monkeypatch.setattr(_Handler, "do_GET", html)
    assert _http.download_file(url, source="demo") == path
    assert path.read_text() == good  # the stale good copy, not the maintenance page
    with pytest.raises(SourceError, match="HTML page"), _http.refreshing():
        _http.download_file(url, source="demo")
    assert path.read_text() == good


def test_part_files_of_killed_downloads_are_cleaned(server):
    import subprocess
    import sys

    url = server.base + "/file.csv"
    target = _http.download_path(url)
    target.parent.mkdir(parents=True, exist_ok=True)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    left = target.with_name(target.name + f".part{int(dead.stdout)}")  # its process is gone
    left.write_bytes(b"a;b\n1;")
    alive = target.with_name(target.name + f".part{os.getppid()}")  # another live download
    alive.write_bytes(b"a;b\n")
    _http.download_file(url, source="demo")
    assert not left.exists() and alive.exists()
    alive.unlink()


# --- a full cache disk, a cache lock held too long (issue 25 item 3) ----------------------
# requests-cache 1.3 (requests_cache/backends/sqlite.py, SQLiteDict._acquire_sqlite_lock)
# loops on ``BEGIN IMMEDIATE`` without end and swallows the write's own error; on a full
# disk its ``__delitem__`` then fails with UnboundLocalError (reproduced on a full tmpfs).

_FULL_DISK_SCRIPT = r"""
import os, resource, signal, sys
from data_sources import _http
base, cache = sys.argv[1], sys.argv[2]
_http.configure(cache_dir=cache, offline=False, backoff_factor=0, max_retries=0,
                rate_limits={}, timeout_s=(2.0, 3.0), allow_hosts=("127.0.0.1",))
print("first", _http.fetch_json(base + "/good", source="demo")["ok"], flush=True)
_http.reset()
_http.configure(cache_dir=cache, offline=False, backoff_factor=0, max_retries=0,
                rate_limits={}, timeout_s=(2.0, 3.0), allow_hosts=("127.0.0.1",))
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))  # the disk takes nothing more
print("refresh", _http.fetch_json(base + "/good", source="demo", refresh=True)["ok"],
      flush=True)
print("new", _http.fetch_json(base + "/flaky-html", source="demo")["ok"], flush=True)
print("NOTE", _http.cache_note(), flush=True)
"""


@pytest.mark.timeout(120)
def test_full_cache_disk_goes_on_without_caching_and_says_so(server, tmp_path):
    import subprocess
    import sys

    _http.reset()
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    proc = subprocess.run(
        [sys.executable, "-c", _FULL_DISK_SCRIPT, server.base, str(tmp_path / "full")],
        capture_output=True, text=True, env=env, timeout=100)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    assert lines[:3] == ["first True", "refresh True", "new True"]
    note = lines[3]
    assert "Cache HTTP non écrit" in note and "sans garder les réponses en cache" in note
    assert "disque" in note and str(tmp_path / "full") in note


@pytest.mark.timeout(60)
def test_cache_lock_held_elsewhere_is_a_bounded_wait(server, tmp_path):
    import sqlite3

    _http.configure(sqlite_timeout_s=0.3)
    assert _http.fetch_json(server.base + "/good", source="demo")["ok"]  # cache made
    other = sqlite3.connect(tmp_path / "cache" / "http_cache.sqlite", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process writes and never finishes
    try:
        value = _http.fetch_json(server.base + "/flaky-html", source="demo")
    finally:
        other.rollback()
        other.close()
    assert value["ok"] is True  # the answer is served, not lost
    assert "verrouillé par un autre processus" in _http.cache_note()
    assert not _http.get_session().cache.contains(url=server.base + "/flaky-html")


def test_no_cache_note_when_the_disk_takes_writes(server):
    assert _http.fetch_json(server.base + "/good", source="demo")["ok"]
    assert _http.cache_note() == ""
    assert _http.get_session().cache.contains(url=server.base + "/good")


@pytest.mark.timeout(120)
def test_really_full_disk_when_a_small_filesystem_can_be_mounted(server, tmp_path):
    """The same on a real full tmpfs (needs the right to mount: skipped elsewhere)."""
    import subprocess

    mnt = tmp_path / "mnt"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mnt)],
                      capture_output=True).returncode != 0:
        pytest.skip("mounting a small tmpfs is not allowed here")
    try:
        _http.configure(cache_dir=mnt / "cache")
        assert _http.fetch_json(server.base + "/good", source="demo")["ok"]
        _http.reset()
        _http.configure(cache_dir=mnt / "cache", offline=False, backoff_factor=0,
                        max_retries=0, rate_limits={}, timeout_s=(2.0, 3.0),
                        allow_hosts=("127.0.0.1",))  # the local test server
        fd = os.open(mnt / "filler", os.O_WRONLY | os.O_CREAT)
        with pytest.raises(OSError):
            while True:
                os.write(fd, b"x" * 4096)
        os.close(fd)
        assert _http.fetch_json(server.base + "/good", source="demo", refresh=True)["ok"]
        assert "le disque est plein" in _http.cache_note()
    finally:
        _http.reset()
        subprocess.run(["umount", "-l", str(mnt)], check=False)  # lazy: a closed file may linger


def test_copy_confirmed_by_a_304_is_fresh_again(server):
    """Writes are explicit now: a revalidated copy must still get its new expiry."""
    url = server.base + "/etag"
    _http.configure(expire_after_s=1)
    assert _http.fetch_json(url, source="demo")["ok"]
    time.sleep(1.1)  # the copy expires
    _http.configure(expire_after_s=3600)
    with _http.data_dates():
        assert _http.fetch_json(url, source="demo")["ok"]  # 304: the copy is served
    assert server.hits["/etag"] == 2
    cached = _http.get_session().cache.get_response(
        _http._cache_key("GET", url, None, None, {"Accept": "application/json"}))
    assert cached is not None and not cached.is_expired
    hits = server.hits["/etag"]
    assert _http.fetch_json(url, source="demo")["ok"]
    assert server.hits["/etag"] == hits  # fresh: no request


def test_download_beside_a_full_cache_folder_goes_on_for_this_run(server, monkeypatch):
    """The cache folder refuses the file (ENOSPC): the run downloads it elsewhere, says so."""
    import errno

    from data_sources import _http_download

    real = _http_download._download
    cache = _http.get_config().cache_dir

    def full_cache(url, path, **kw):
        if cache in path.parents:
            raise _http.DiskFullError("demo: cannot write the download") from OSError(
                errno.ENOSPC, "No space left on device")
        return real(url, path, **kw)

    monkeypatch.setattr(_http_download, "_download", full_cache)  # where download_file looks
    url = server.base + "/file.csv"
    path = _http.download_file(url, source="demo")
    assert cache not in path.parents and path.read_text() == "a;b\n1;1\n"
    assert "le disque est plein" in _http.cache_note()
    assert _http.download_file(url, source="demo") == path  # reused in the run
    assert server.hits["/file.csv"] == 1


@pytest.mark.timeout(120)
def test_download_on_a_really_full_cache_disk(server, tmp_path):
    import subprocess

    mnt = tmp_path / "mnt"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mnt)],
                      capture_output=True).returncode != 0:
        pytest.skip("mounting a small tmpfs is not allowed here")
    try:
        _http.configure(cache_dir=mnt / "cache")
        (mnt / "cache").mkdir()
        fd = os.open(mnt / "filler", os.O_WRONLY | os.O_CREAT)
        with pytest.raises(OSError):
            while True:
                os.write(fd, b"x" * 4096)
        os.close(fd)
        path = _http.download_file(server.base + "/file.csv", source="demo")
        assert mnt not in path.parents and path.read_text().startswith("a;b\n")
        assert "le disque est plein" in _http.cache_note()
    finally:
        _http.reset()
        subprocess.run(["umount", "-l", str(mnt)], check=False)  # lazy: a closed file may linger


def test_deferred_download_keeps_its_suffix_and_waits_for_the_verdict(server):
    url = server.base + "/file.csv"
    final = _http.download_path(url)
    with _http.deferred_cache() as pending:
        path = _http.download_file(url, source="demo")
        assert path.suffix == ".csv" and path != final  # readers dispatch on the suffix
        assert not final.exists()
        pending.discard()  # judged suspect: nothing kept
    assert not final.exists() and not path.exists()
    with _http.deferred_cache() as pending:
        path = _http.download_file(url, source="demo")
        pending.commit()  # judged sound: kept as the cached copy
    assert final.read_text() == "a;b\n1;2\n" and not path.exists()
