"""Outbound-request policy: which addresses Maillage may fetch from (no SSRF).

The app can run on a server where project holders type URLs (« Lire une page
d'annuaire »). Without a policy the server would fetch any address for them, its own
loopback, the private network behind it or a cloud metadata endpoint included, and show
what it read. Every request of :mod:`data_sources._http` (loaders, downloads, the
scraper, redirects) goes through :func:`check_url` and through connections that check
the address they actually reached:

- only ``http`` and ``https``, on ports 80 and 443 by default;
- the host name is resolved and refused when **any** of its addresses is loopback,
  private, link-local, shared (CGNAT), multicast, reserved or unspecified, IPv4 and IPv6
  alike (IPv4-mapped IPv6 addresses are read as IPv4);
- the socket's peer address is checked again once connected, so a name that resolves
  to a public address for the check and to a private one for the connection (DNS
  rebinding) is refused too; redirects are sent through the same adapter and re-checked.

Tests that serve answers from a local server name their hosts in an explicit allow-list
(:func:`data_sources._http.configure` ``allow_hosts=("127.0.0.1",)``, or the environment
variable ``MAILLAGE_ALLOW_HOSTS``); nothing is allowed implicitly. Behind an HTTP proxy the
peer is the proxy, so only the name-level check applies.

Examples
--------
>>> policy = OutboundPolicy()
>>> refusal_reason("http://127.0.0.1/admin", policy=policy)
"l'adresse 127.0.0.1 est la machine elle-même (boucle locale)"
>>> refusal_reason("ftp://example.org/", policy=policy)
'seules les adresses http et https sont lues'
>>> refusal_reason("http://[::ffff:10.0.0.1]/", policy=policy)
"l'adresse 10.0.0.1 est une adresse d'un réseau privé"
>>> refusal_reason("http://192.0.2.1:8080/", policy=policy)
'le port 8080 n’est pas autorisé (seuls 80 et 443 le sont)'
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from diagnosis.errors import SourceError

#: Ports an outbound request may use unless the host is allow-listed.
DEFAULT_ALLOWED_PORTS: frozenset[int] = frozenset({80, 443})
#: Environment variable: comma-separated host names allowed whatever their address.
ALLOW_HOSTS_ENV = "MAILLAGE_ALLOW_HOSTS"

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class BlockedURLError(SourceError):
    """A URL the outbound policy refuses (scheme, port or a non-public address).

    ``reason`` is the French explanation shown to the user; ``url`` the refused URL.
    """

    def __init__(self, url: str, reason: str) -> None:
        message = (f"Adresse refusée : {url} — {reason}. Maillage ne lit que des pages "
                   "publiques d'internet (http ou https, ports 80 et 443).")
        super().__init__(message, kind="blocked", url=url, fr=message)
        self.reason = reason


@dataclass(frozen=True)
class OutboundPolicy:
    """Which URLs may be fetched.

    Parameters
    ----------
    allowed_ports
        Ports allowed for hosts outside ``allow_hosts``.
    allow_hosts
        Host names (lower case) allowed whatever their address and port: for tests with a
        local server, or an intranet mirror an administrator chooses on purpose.
    """

    allowed_ports: frozenset[int] = DEFAULT_ALLOWED_PORTS
    allow_hosts: frozenset[str] = field(default_factory=frozenset)

    def allows_host(self, host: str) -> bool:
        """Whether ``host`` is explicitly allow-listed."""
        return host.lower().strip("[]") in self.allow_hosts


def hosts_from_env() -> frozenset[str]:
    """Host names allow-listed by :data:`ALLOW_HOSTS_ENV` (empty when unset)."""
    raw = os.environ.get(ALLOW_HOSTS_ENV, "")
    return frozenset(h.strip().lower().strip("[]") for h in raw.split(",") if h.strip())


def address_refusal(ip: IPAddress) -> str | None:
    """French reason why ``ip`` may not be reached, or ``None`` for a public address.

    Examples
    --------
    >>> address_refusal(ipaddress.ip_address("169.254.169.254"))
    "l'adresse 169.254.169.254 est une adresse locale au lien (métadonnées d'hébergeur)"
    >>> address_refusal(ipaddress.ip_address("2a01:cb00::1")) is None
    True
    """
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    text = str(ip)
    if ip.is_loopback:
        return f"l'adresse {text} est la machine elle-même (boucle locale)"
    if ip.is_unspecified:
        return f"l'adresse {text} n'est pas une adresse de destination"
    if ip.is_link_local:
        return f"l'adresse {text} est une adresse locale au lien (métadonnées d'hébergeur)"
    if ip.is_multicast:
        return f"l'adresse {text} est une adresse de multidiffusion"
    if ip.is_private:
        return f"l'adresse {text} est une adresse d'un réseau privé"
    if ip.is_reserved or not ip.is_global:
        return f"l'adresse {text} est réservée, pas une adresse publique d'internet"
    return None


def _resolve(host: str, port: int) -> list[IPAddress]:
    """Addresses of ``host`` (a literal address is returned as is); empty if unresolved."""
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        # unresolved: no connection can be made either; the connection-level check
        # (GuardedHTTPConnection) still checks any address a later resolution returns
        return []
    out: list[IPAddress] = []
    for info in infos:
        addr = str(info[4][0]).split("%", 1)[0]  # drop an IPv6 zone id
        try:
            out.append(ipaddress.ip_address(addr))
        except ValueError:
            continue
    return out


def refusal_reason(url: str, *, policy: OutboundPolicy) -> str | None:
    """French reason why ``url`` may not be fetched under ``policy``, or ``None``."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "l'adresse est mal formée (port invalide)"
    if parts.scheme not in ("http", "https"):
        return "seules les adresses http et https sont lues"
    host = (parts.hostname or "").lower().rstrip(".")
    if not host:
        return "l'adresse ne nomme aucun serveur"
    if policy.allows_host(host):
        return None
    port = port if port is not None else (443 if parts.scheme == "https" else 80)
    if port not in policy.allowed_ports:
        ports = " et ".join(str(p) for p in sorted(policy.allowed_ports))
        return f"le port {port} n’est pas autorisé (seuls {ports} le sont)"
    if host == "localhost" or host.endswith(".localhost"):
        return f"le serveur {host} est la machine elle-même (boucle locale)"
    for ip in _resolve(host, port):
        reason = address_refusal(ip)
        if reason is not None:
            return reason
    return None


def check_url(url: str, *, policy: OutboundPolicy) -> None:
    """Raise :class:`BlockedURLError` when ``policy`` refuses ``url``."""
    reason = refusal_reason(url, policy=policy)
    if reason is not None:
        raise BlockedURLError(url, reason)


# --- connections that check the address they reached --------------------------------
# (the urllib3 connection classes live in data_sources._http_adapter: importing this
# module, as every command does through the HTTP settings, loads no urllib3)


def check_peer(conn: Any, sock: socket.socket, allow_hosts: Iterable[str]) -> None:
    """Refuse the non-public address a connection reached (unless its host is allowed).

    ``conn``: a urllib3 connection (its ``host`` and ``port``), once connected.
    """
    if conn.host.lower().strip("[]") in allow_hosts:
        return
    try:
        peer = sock.getpeername()[0]
        ip = ipaddress.ip_address(str(peer).split("%", 1)[0])
    except (OSError, ValueError, IndexError):
        return  # not an IP socket (a test double): the name-level check applied
    reason = address_refusal(ip)
    if reason is not None:
        sock.close()
        raise BlockedURLError(f"{conn.host}:{conn.port}", reason)
