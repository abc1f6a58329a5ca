"""The transport of the HTTP session: per-host rate limits, outbound policy, capped retries."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import HTTPError as Urllib3Error
from urllib3.exceptions import MaxRetryError
from urllib3.exceptions import TimeoutError as Urllib3Timeout
from urllib3.util.retry import Retry

from data_sources._http_config import DEFAULT_MAX_RETRY_AFTER_S, RETRY_STATUSES, HttpConfig
from data_sources._http_notes import deadline_left
from data_sources._outbound import OutboundPolicy, check_peer, check_url

logger = logging.getLogger(__name__)


class _PeerChecked:
    """Mixin of a urllib3 connection: refuse a non-public peer address once connected."""

    allow_hosts: frozenset[str] = frozenset()

    def _new_conn(self) -> socket.socket:
        sock: socket.socket = super()._new_conn()  # type: ignore[misc]
        check_peer(self, sock, self.allow_hosts)
        return sock


class GuardedHTTPConnection(_PeerChecked, HTTPConnection):
    """urllib3 connection that refuses a non-public peer address once connected."""


class GuardedHTTPSConnection(_PeerChecked, HTTPSConnection):
    """urllib3 TLS connection that refuses a non-public peer address once connected."""


def guarded_pool_classes(allow_hosts: frozenset[str]) -> dict[str, Any]:
    """urllib3 pool classes by scheme whose connections check their peer address."""
    http_conn = type("GuardedHTTPConnection", (GuardedHTTPConnection,),
                     {"allow_hosts": allow_hosts})
    https_conn = type("GuardedHTTPSConnection", (GuardedHTTPSConnection,),
                      {"allow_hosts": allow_hosts})
    http_pool = type("GuardedHTTPConnectionPool", (HTTPConnectionPool,),
                     {"ConnectionCls": http_conn})
    https_pool = type("GuardedHTTPSConnectionPool", (HTTPSConnectionPool,),
                      {"ConnectionCls": https_conn})
    return {"http": http_pool, "https": https_pool}

class HostRateLimiter:
    """Space the requests to each host by ``1 / rate`` seconds (``time.monotonic``).

    Parameters
    ----------
    clock, sleep
        Injected for tests.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self._next: dict[str, float] = {}
        self._mutex = threading.Lock()

    def reset(self) -> None:
        """Forget the last call times."""
        with self._mutex:
            self._next.clear()

    def wait(self, host: str, rate_per_s: float | None) -> float:
        """Block until a request to ``host`` is allowed; return the seconds waited."""
        if not rate_per_s or rate_per_s <= 0:
            return 0.0
        interval = 1.0 / rate_per_s
        with self._mutex:
            now = self._clock()
            slot = max(now, self._next.get(host, now))
            self._next[host] = slot + interval
        delay = slot - now
        if delay > 0:
            logger.debug("rate limit: waiting %.2f s before calling %s", delay, host)
            self._sleep(delay)
        return max(delay, 0.0)


_limiter = HostRateLimiter()


class _LimitedAdapter(HTTPAdapter):
    """HTTP adapter of every network call: outbound policy, then per-host rate limit.

    Each request (redirects included: requests sends them through the same adapter) is
    checked by :func:`~data_sources._outbound.check_url`; its connections check the peer
    address they reached (:func:`~data_sources._outbound.guarded_pool_classes`).
    """

    def __init__(self, *, rate_limits: Mapping[str, float],
                 policy: OutboundPolicy | None = None, **kwargs: Any) -> None:
        self._rate_limits = dict(rate_limits)
        self._policy = policy or OutboundPolicy()
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        """Build urllib3's pool manager with connections that check their peer."""
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = guarded_pool_classes(
            self._policy.allow_hosts)

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> Any:
        check_url(request.url or "", policy=self._policy)
        host = urlsplit(request.url or "").hostname or ""
        _limiter.wait(host, self._rate_limits.get(host))
        return super().send(request, *args, **kwargs)


class CappedRetry(Retry):
    """urllib3 :class:`Retry` that obeys ``Retry-After`` up to :attr:`max_retry_after_s`.

    Examples
    --------
    >>> r = CappedRetry(total=1, max_retry_after_s=60)
    >>> r.parse_retry_after("3600")
    60.0
    >>> r.new(total=0).max_retry_after_s
    60.0
    """

    def __init__(self, *args: Any, max_retry_after_s: float = DEFAULT_MAX_RETRY_AFTER_S,
                 **kwargs: Any) -> None:
        self.max_retry_after_s = float(max_retry_after_s)
        super().__init__(*args, **kwargs)

    def new(self, **kw: Any) -> CappedRetry:
        """Copy with changes, keeping the cap (urllib3 calls it at every retry)."""
        out = super().new(**kw)
        out.max_retry_after_s = self.max_retry_after_s
        return out

    def parse_retry_after(self, retry_after: str) -> float:
        """Seconds to wait, capped at :attr:`max_retry_after_s` and the source's deadline."""
        wanted = super().parse_retry_after(retry_after)
        if wanted > self.max_retry_after_s:
            logger.warning("Retry-After %s s capped at %s s", wanted, self.max_retry_after_s)
        return _within_deadline(min(wanted, self.max_retry_after_s))

    def get_backoff_time(self) -> float:
        """Backoff pause, never past the source's deadline."""
        return _within_deadline(super().get_backoff_time())

    def increment(self, method: str | None = None, url: str | None = None,
                  *args: Any, **kwargs: Any) -> CappedRetry:
        """Count a retry; none once the source's deadline has passed (no wait without end)."""
        out = super().increment(method, url, *args, **kwargs)
        left = deadline_left()
        if left is not None and left <= 0:
            error = kwargs.get("error")
            raise MaxRetryError(kwargs.get("_pool"), url or "",  # type: ignore[arg-type]
                                error or Urllib3Error("overall deadline exceeded")) from error
        return out


def timed_out(exc: BaseException) -> bool:
    """Whether a failed request ran out of time (connect or read timeout).

    requests reports a read timeout met on the last retry as a ``ConnectionError``
    wrapping urllib3's ``MaxRetryError``: its ``reason`` says it was a timeout.
    """
    if isinstance(exc, requests.Timeout):
        return True
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, Urllib3Timeout)


def _within_deadline(wait_s: float) -> float:
    left = deadline_left()
    return wait_s if left is None else max(min(wait_s, left), 0.0)


def build_retry(cfg: HttpConfig) -> Retry:
    """Return the urllib3 retry policy for ``cfg`` (backoff, statuses, capped ``Retry-After``).

    A read timeout is retried once at most: a hung URL costs two timeouts, not five.
    """
    return CappedRetry(
        max_retry_after_s=cfg.max_retry_after_s,
        total=cfg.max_retries,
        connect=cfg.max_retries,
        read=min(cfg.max_retries, 1),
        status=cfg.max_retries,
        backoff_factor=cfg.backoff_factor,
        status_forcelist=RETRY_STATUSES,
        allowed_methods=frozenset({"GET", "HEAD", "POST"}),
        respect_retry_after_header=True,
        raise_on_status=False,
    )
