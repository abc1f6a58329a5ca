"""Outbound-request policy (no server-side request forgery): data_sources._outbound.

Real HTTP servers bound to loopback addresses (``http.server`` in threads) play the
"internal page" an attacker would point the app at; each test asserts that the page was
never requested (its hit counter stays at 0), not only that an error was raised.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from data_sources import _http, _outbound, scrape
from data_sources._outbound import BlockedURLError, OutboundPolicy, refusal_reason
from diagnosis.errors import SourceError

POLICY = OutboundPolicy()


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):  # quiet
        pass

    def do_GET(self):  # noqa: N802 - http.server's name
        srv = self.server
        with srv.lock:
            srv.hits[self.path] = srv.hits.get(self.path, 0) + 1
        if self.path.startswith("/redirect"):
            self.send_response(302)
            self.send_header("Location", srv.redirect_to)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = (b'{"secret": "mot de passe interne"}' if self.path != "/robots.txt"
                else b"User-agent: *\nAllow: /\n")
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def _serve(host: str):
    srv = ThreadingHTTPServer((host, 0), _Handler)
    srv.hits, srv.lock, srv.redirect_to = {}, threading.Lock(), ""
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    srv.port = srv.server_address[1]
    srv.base = f"http://{host}:{srv.port}"
    return srv


@pytest.fixture
def internal():
    srv = _serve("127.0.0.1")
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def other_loopback():
    """A second "internal" server on 127.0.0.2 (Linux routes 127/8 to the loopback)."""
    try:
        srv = _serve("127.0.0.2")
    except OSError:
        pytest.skip("127.0.0.2 cannot be bound on this machine")
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture(autouse=True)
def sandbox(tmp_path):
    _http.configure(cache_dir=tmp_path / "cache", offline=False, backoff_factor=0,
                    max_retries=0, rate_limits={}, timeout_s=(2.0, 3.0), allow_hosts=())
    yield
    _http.reset()


# --- the rule, address by address ---------------------------------------------------


@pytest.mark.parametrize("url, word", [
    ("http://127.0.0.1/", "boucle locale"),
    ("http://127.8.9.10/admin", "boucle locale"),
    ("http://localhost/", "boucle locale"),
    ("http://LocalHost./", "boucle locale"),
    ("http://api.localhost/", "boucle locale"),
    ("http://[::1]/", "boucle locale"),
    ("http://10.0.0.8/", "réseau privé"),
    ("http://172.16.3.4/", "réseau privé"),
    ("http://192.168.1.1/", "réseau privé"),
    ("http://[fd12:3456::1]/", "réseau privé"),
    ("http://[::ffff:192.168.0.1]/", "réseau privé"),
    ("http://169.254.169.254/latest/meta-data/", "locale au lien"),
    ("http://[fe80::1]/", "locale au lien"),
    ("http://224.0.0.1/", "multidiffusion"),
    ("http://[ff02::1]/", "multidiffusion"),
    ("http://0.0.0.0/", "pas une adresse de destination"),
    ("http://100.64.0.1/", "réservée"),
    ("http://2130706433/", "boucle locale"),  # 127.0.0.1 written as an integer
    ("https://93.184.215.14:8443/", "port 8443"),
    ("http://93.184.215.14:22/", "port 22"),
    ("ftp://93.184.215.14/", "http et https"),
    ("file:///etc/passwd", "http et https"),
    ("gopher://127.0.0.1:70/", "http et https"),
    ("http:///nohost", "aucun serveur"),
])
def test_refused_addresses_say_why_in_french(url, word, monkeypatch):
    # integers as hosts are resolved by the system resolver (inet_aton), as a browser does
    real = socket.getaddrinfo
    monkeypatch.setattr(socket, "getaddrinfo", lambda h, *a, **k: (
        real("127.0.0.1", *a, **k) if h == "2130706433" else real(h, *a, **k)))
    reason = refusal_reason(url, policy=POLICY)
    assert reason is not None and word in reason, (url, reason)
    with pytest.raises(BlockedURLError, match="Adresse refusée"):
        _outbound.check_url(url, policy=POLICY)


@pytest.mark.parametrize("url", [
    "https://93.184.215.14/", "http://93.184.215.14:80/page", "https://[2a01:cb00::1]/",
])
def test_public_addresses_pass(url):
    assert refusal_reason(url, policy=POLICY) is None


def test_a_name_is_refused_when_any_of_its_addresses_is_private(monkeypatch):
    def fake(host, port, *a, **k):
        assert host == "intranet.exemple.fr"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.215.14", port)),
                (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.1.2.3", port))]

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    assert "réseau privé" in refusal_reason("https://intranet.exemple.fr/", policy=POLICY)


def test_allow_list_is_explicit_and_by_host():
    pol = OutboundPolicy(allow_hosts=frozenset({"127.0.0.1"}))
    assert refusal_reason("http://127.0.0.1:8765/x", policy=pol) is None
    assert refusal_reason("http://127.0.0.2:8765/x", policy=pol) is not None
    assert refusal_reason("http://localhost:8765/x", policy=pol) is not None


def test_allow_list_from_the_environment(monkeypatch):
    monkeypatch.setenv(_outbound.ALLOW_HOSTS_ENV, " 127.0.0.1 , [::1]")
    assert _outbound.hosts_from_env() == frozenset({"127.0.0.1", "::1"})
    _http.reset()
    assert _http.get_config().policy.allow_hosts == frozenset({"127.0.0.1", "::1"})


def test_address_refusal_of_every_private_range():
    for net in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"):
        first = ipaddress.ip_network(net).network_address + 1
        assert _outbound.address_refusal(first) is not None, net


# --- through the HTTP layer: nothing reaches the internal server ---------------------


def test_loaders_never_call_a_loopback_server(internal):
    _http.configure(allowed_ports=(80, 443, internal.port))  # the port alone is not enough
    with pytest.raises(BlockedURLError, match="boucle locale"):
        _http.fetch_json(internal.base + "/secret", source="demo")
    with pytest.raises(SourceError):
        _http.download_file(internal.base + "/secret.zip", source="demo")
    assert internal.hits == {}


def test_allow_listed_test_server_is_reached(internal):
    _http.configure(allow_hosts=("127.0.0.1",))
    assert _http.fetch_json(internal.base + "/ok", source="demo")["secret"]
    assert internal.hits == {"/ok": 1}


def test_a_redirect_to_an_internal_address_is_refused(internal, other_loopback):
    # the public-looking first hop is allow-listed; its redirect goes to a second
    # loopback address that is not: the redirect must be checked like the first URL
    _http.configure(allow_hosts=("127.0.0.1",), allowed_ports=(80, 443, other_loopback.port))
    internal.redirect_to = other_loopback.base + "/secret"
    with pytest.raises(BlockedURLError):
        _http.fetch_json(internal.base + "/redirect", source="demo")
    assert internal.hits == {"/redirect": 1}
    assert other_loopback.hits == {}


def test_dns_rebinding_is_caught_on_the_connection(internal, monkeypatch):
    # the name-level check sees a public address; the connection then resolves the same
    # name to the loopback (a rebinding DNS): the peer check refuses before any request
    real = socket.getaddrinfo
    monkeypatch.setattr(_outbound, "_resolve",
                        lambda host, port: [ipaddress.ip_address("93.184.215.14")])
    monkeypatch.setattr(socket, "getaddrinfo", lambda host, *a, **k: real(
        "127.0.0.1" if host == "rebind.exemple.fr" else host, *a, **k))
    _http.configure(allowed_ports=(80, 443, internal.port))
    with pytest.raises(BlockedURLError, match="boucle locale"):
        _http.fetch_json(f"http://rebind.exemple.fr:{internal.port}/secret", source="demo")
    assert internal.hits == {}


def test_probe_refuses_internal_addresses(internal):
    with pytest.raises(BlockedURLError):
        _http.probe(internal.base + "/", source="osm")
    assert internal.hits == {}


# --- the scraper and the app's page reader --------------------------------------------


@pytest.mark.parametrize("path", ["/annuaire", "/redirect"])
def test_scraper_refuses_internal_pages_before_robots(internal, path):
    _http.configure(allowed_ports=(80, 443, internal.port))
    with pytest.raises(BlockedURLError, match="Adresse refusée"):
        scrape.scrape_directory(internal.base + path, facility_type="rpe",
                                politeness=scrape.Politeness(delay_s=0), geocode=False)
    assert internal.hits == {}  # not even robots.txt


def test_scraper_refuses_a_private_address_without_any_connection(monkeypatch):
    def no_socket(*a, **k):
        raise AssertionError("no connection may be opened")

    monkeypatch.setattr(socket, "create_connection", no_socket)
    with pytest.raises(BlockedURLError, match="réseau privé"):
        scrape.scrape_directory("http://192.168.1.20/intranet", facility_type="rpe",
                                geocode=False)


def test_import_page_says_in_french_why_a_url_is_refused(internal):
    from streamlit.testing.v1 import AppTest

    from tests.conftest import REPO

    _http.configure(allowed_ports=(80, 443, internal.port))  # the address must refuse it
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=90)
    at.run(timeout=90)
    at.switch_page("app_pages/import_fichier.py").run(timeout=90)
    at.text_input(key="scrape_url").set_value(internal.base + "/annuaire")
    at.selectbox(key="scrape_type").set_value("rpe")
    at.button(key="scrape_run").click().run(timeout=90)
    assert not at.exception, [e.value for e in at.exception]
    shown = " ".join(str(e.value) for e in [*at.info, *at.warning, *at.error])
    assert "Adresse refusée" in shown and "boucle locale" in shown, shown
    assert "facility_files" not in at.session_state or not at.session_state["facility_files"]
    assert internal.hits == {}
