"""The only module of Maillage that talks to the network.

Why one module of about 1,200 lines: by design (STYLE.md) every request, retry, cache
write, size and deadline guard and download lives here, so that no loader can bypass
them.

One :class:`requests_cache.CachedSession` is built once (:func:`get_session`) with:

- a persistent SQLite cache in the user cache folder (``platformdirs``; override with
  the environment variable ``MAILLAGE_CACHE_DIR`` or :func:`configure`) that keeps good
  answers only (HTTP 200) and serves an expired copy when the network fails;
- urllib3 :class:`~urllib3.util.retry.Retry` with exponential backoff on 429, 500, 502,
  503 and 504, honouring ``Retry-After``;
- a (connect, read) timeout on every call and a user agent naming the project;
- per-host rate limits (``api.insee.fr``: 30 requests per minute, the documented
  anonymous quota of the Melodi API, see the R package ``melodi`` README), applied to
  network calls only (cache hits are free);
- an offline mode (:func:`configure` ``offline=True`` or ``MAILLAGE_OFFLINE=1``) that
  serves the cache only and raises :class:`~diagnosis.errors.SourceError` naming the
  source and the URL when a copy is missing.

Limits, so that no fetch waits or grows without bound:

- ``Retry-After`` is obeyed up to ``max_retry_after_s`` (60 s) only (:class:`CappedRetry`);
  a hung read is retried once at most;
- a body is read in pieces against a wall-clock deadline (``body_deadline_s``, 300 s): a
  server that trickles bytes ends in a timeout, not a wait without end;
- a body larger than ``max_body_bytes`` (256 MiB; downloaded files ``max_download_bytes``,
  2 GiB) is refused while it streams, before it fills the memory or the disk;
- :func:`source_deadline` gives one source an overall deadline shared by all its calls.

A transfer that ends before its ``Content-Length`` (or that the server breaks) is fetched
once more, then reported as *truncated*, not as a missing connection.

Validation before caching: a new answer is written to the HTTP cache only after it has
been read whole, parsed and accepted by the caller's ``check`` (:func:`_fetch`); an answer
that fails never reaches the cache. :func:`refreshing` makes every call of a block fetch
its URL again once (``python -m data_sources fetch --refresh``). Downloaded files expire
like cached answers (``expire_after_s``, by file age); :func:`data_dates` collects the
dates of the data served (cache entry or file date), for the ledger.

Outbound policy (:mod:`data_sources._outbound`): every request of the session, redirects
included, is checked before it leaves (http(s) only, ports 80 and 443, no loopback,
private, link-local or multicast address) and its connection is checked again on the
address it reached; tests with a local server allow-list its host (``allow_hosts``).

Loaders call :func:`fetch_json`, :func:`fetch_text`, :func:`fetch_bytes`, :func:`post_bytes`
or :func:`stream_lines`. They detect an HTML error page where JSON or CSV was expected, and
when the body fails to parse (truncated transfer, corrupt cache entry) they drop the cached
copy and fetch once again before giving up with a :class:`SourceError`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import hashlib
import json
import logging
import os
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

import requests
import requests_cache
from requests.adapters import HTTPAdapter
from requests_cache.backends.base import BaseCache
from requests_cache.backends.sqlite import SQLiteCache, SQLiteDict
from urllib3.exceptions import HTTPError as Urllib3Error
from urllib3.exceptions import MaxRetryError, ProtocolError, ReadTimeoutError
from urllib3.util.retry import Retry

from data_sources._outbound import (
    BlockedURLError,
    OutboundPolicy,
    check_url,
    guarded_pool_classes,
    hosts_from_env,
)
from diagnosis.errors import SourceError

logger = logging.getLogger(__name__)

#: User agent sent with every request.
USER_AGENT = "Maillage/0.1 (+https://github.com/maillage/maillage) diagnostic territorial"
#: HTTP statuses retried with backoff.
RETRY_STATUSES = (429, 500, 502, 503, 504)
#: Requests per second allowed for each host (network calls only).
DEFAULT_RATE_LIMITS: dict[str, float] = {"api.insee.fr": 30 / 60}
#: Default (connect, read) timeout in seconds.
DEFAULT_TIMEOUT_S: tuple[float, float] = (10.0, 120.0)
#: How long a cached answer stays fresh (public statistics change yearly at most).
DEFAULT_EXPIRE_AFTER_S = 30 * 24 * 3600
#: Shorter freshness for catalogue listings that point to the newest files.
_URLS_EXPIRE_AFTER: dict[str | re.Pattern[str], int | float | str | None] = {
    "www.data.gouv.fr/api/1/datasets": 24 * 3600,
}

#: Longest ``Retry-After`` obeyed, in seconds (a server asking for an hour gets a minute).
DEFAULT_MAX_RETRY_AFTER_S = 60.0
#: Largest body read in memory (JSON, CSV answers).
DEFAULT_MAX_BODY_BYTES = 256 * 1024 * 1024
#: Largest file downloaded to the cache folder (FINESS, BPE…).
DEFAULT_MAX_DOWNLOAD_BYTES = 2 * 1024 * 1024 * 1024
#: Wall-clock limit to read one body, in seconds (a trickling server is cut).
DEFAULT_BODY_DEADLINE_S = 300.0
#: Longest wait for the SQLite lock of the HTTP cache, in seconds (then: no caching).
DEFAULT_SQLITE_TIMEOUT_S = 10.0
#: Bytes written (then deleted) in the cache folder to check that the disk takes writes.
DISK_PROBE_BYTES = 256 * 1024

Params = Mapping[str, Any] | list[tuple[str, Any]] | None


class TruncatedError(ValueError):
    """A transfer ended before the whole body came (Content-Length, broken stream)."""


@dataclass(frozen=True)
class HttpConfig:
    """Settings of the HTTP layer (see :func:`configure`)."""

    cache_dir: Path
    offline: bool = False
    backoff_factor: float = 1.0
    max_retries: int = 4
    timeout_s: tuple[float, float] = DEFAULT_TIMEOUT_S
    rate_limits: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_RATE_LIMITS))
    expire_after_s: int = DEFAULT_EXPIRE_AFTER_S
    max_retry_after_s: float = DEFAULT_MAX_RETRY_AFTER_S
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_download_bytes: int = DEFAULT_MAX_DOWNLOAD_BYTES
    policy: OutboundPolicy = field(default_factory=OutboundPolicy)
    body_deadline_s: float = DEFAULT_BODY_DEADLINE_S
    sqlite_timeout_s: float = DEFAULT_SQLITE_TIMEOUT_S


def default_cache_dir() -> Path:
    """Return the cache folder: ``$MAILLAGE_CACHE_DIR``, else the user cache dir.

    Uses ``platformdirs`` when installed, else ``~/.cache/maillage/http``.
    """
    env = os.environ.get("MAILLAGE_CACHE_DIR", "").strip()
    if env:
        return Path(env).expanduser()
    try:
        import platformdirs
    except ImportError:  # pragma: no cover - platformdirs ships with pip and requests-cache
        return Path.home() / ".cache" / "maillage" / "http"
    return Path(platformdirs.user_cache_dir("maillage")) / "http"


def _env_offline() -> bool:
    return os.environ.get("MAILLAGE_OFFLINE", "").strip().lower() in {"1", "true", "yes", "oui"}


_lock = threading.RLock()
_config: HttpConfig | None = None
_session: requests_cache.CachedSession | None = None


def get_config() -> HttpConfig:
    """Return the current settings (built from the environment on first use)."""
    global _config
    with _lock:
        if _config is None:
            _config = HttpConfig(cache_dir=default_cache_dir(), offline=_env_offline(),
                                 policy=OutboundPolicy(allow_hosts=hosts_from_env()))
        return _config


def configure(
    *,
    cache_dir: str | Path | None = None,
    offline: bool | None = None,
    backoff_factor: float | None = None,
    max_retries: int | None = None,
    timeout_s: tuple[float, float] | None = None,
    rate_limits: Mapping[str, float] | None = None,
    expire_after_s: int | None = None,
    max_retry_after_s: float | None = None,
    max_body_bytes: int | None = None,
    max_download_bytes: int | None = None,
    body_deadline_s: float | None = None,
    sqlite_timeout_s: float | None = None,
    allow_hosts: tuple[str, ...] | frozenset[str] | None = None,
    allowed_ports: tuple[int, ...] | frozenset[int] | None = None,
) -> HttpConfig:
    """Change the settings of the HTTP layer; the session is rebuilt on next use.

    Parameters
    ----------
    cache_dir
        Folder of the HTTP cache and of downloaded files.
    offline
        Serve the cache only; a missing copy raises :class:`SourceError`.
    backoff_factor
        urllib3 backoff factor in seconds (0 in tests).
    max_retries
        Retries on connection errors and on :data:`RETRY_STATUSES`.
    timeout_s
        (connect, read) timeout in seconds for every call.
    rate_limits
        Requests per second per host name (an empty mapping disables limits).
    expire_after_s
        Freshness of cached answers and downloaded files in seconds.
    max_retry_after_s
        Longest ``Retry-After`` obeyed, in seconds.
    max_body_bytes, max_download_bytes
        Largest body read in memory / file downloaded; larger ones are refused.
    body_deadline_s
        Wall-clock limit to read one body, in seconds.
    sqlite_timeout_s
        Longest wait for the SQLite lock of the HTTP cache, in seconds; past it the
        answer is not cached (:func:`cache_note` says why).
    allow_hosts
        Host names allowed whatever their address and port (tests with a local server);
        replaces the list read from ``MAILLAGE_ALLOW_HOSTS``.
    allowed_ports
        Ports allowed for every other host (default 80 and 443).

    Returns
    -------
    HttpConfig
        The new settings.
    """
    global _config, _session
    with _lock:
        cfg = get_config()
        changes: dict[str, Any] = {}
        if cache_dir is not None:
            changes["cache_dir"] = Path(cache_dir).expanduser()
        if offline is not None:
            changes["offline"] = bool(offline)
        if backoff_factor is not None:
            if backoff_factor < 0:
                raise ValueError(f"backoff_factor={backoff_factor!r} must be >= 0")
            changes["backoff_factor"] = float(backoff_factor)
        if max_retries is not None:
            if max_retries < 0:
                raise ValueError(f"max_retries={max_retries!r} must be >= 0")
            changes["max_retries"] = int(max_retries)
        if timeout_s is not None:
            changes["timeout_s"] = (float(timeout_s[0]), float(timeout_s[1]))
        if rate_limits is not None:
            changes["rate_limits"] = {k: float(v) for k, v in rate_limits.items()}
        if expire_after_s is not None:
            changes["expire_after_s"] = int(expire_after_s)
        for name, value in (("max_retry_after_s", max_retry_after_s),
                            ("max_body_bytes", max_body_bytes),
                            ("max_download_bytes", max_download_bytes),
                            ("body_deadline_s", body_deadline_s),
                            ("sqlite_timeout_s", sqlite_timeout_s)):
            if value is not None:
                if value <= 0 and name != "max_retry_after_s":
                    raise ValueError(f"{name}={value!r} must be > 0")
                if value < 0:
                    raise ValueError(f"{name}={value!r} must be >= 0")
                changes[name] = type(getattr(cfg, name))(value)
        if allow_hosts is not None or allowed_ports is not None:
            policy = cfg.policy
            if allow_hosts is not None:
                policy = replace(policy, allow_hosts=frozenset(
                    h.lower().strip("[]") for h in allow_hosts))
            if allowed_ports is not None:
                policy = replace(policy, allowed_ports=frozenset(int(p) for p in allowed_ports))
            changes["policy"] = policy
        _config = replace(cfg, **changes)
        if _session is not None:
            _session.close()  # type: ignore[no-untyped-call]
        _session = None
        _cache_off.clear()
        _limiter.reset()
        return _config


def reset() -> None:
    """Forget the settings and the session (next use rebuilds them from the environment)."""
    global _config, _session
    with _lock:
        if _session is not None:
            _session.close()  # type: ignore[no-untyped-call]
        _session = None
        _config = None
        _cache_off.clear()
        _limiter.reset()


# --- rate limiting --------------------------------------------------------------------


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


def get_session() -> requests_cache.CachedSession:
    """Return the process-wide cached session, building it on first use."""
    global _session
    with _lock:
        if _session is not None:
            return _session
        cfg = get_config()
        session = requests_cache.CachedSession(
            backend=_open_cache(cfg),  # cfg.cache_dir / "http_cache.sqlite"
            expire_after=cfg.expire_after_s,
            urls_expire_after=dict(_URLS_EXPIRE_AFTER),
            allowable_codes=(200,),
            allowable_methods=("GET", "HEAD", "POST"),
            stale_if_error=False,  # a failed update falls back in _fetch, and says so
            filter_fn=_cache_filter,
        )
        adapter = _LimitedAdapter(rate_limits=cfg.rate_limits, policy=cfg.policy,
                                  max_retries=build_retry(cfg))
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        session.headers["User-Agent"] = USER_AGENT
        _session = session
        logger.debug("HTTP cache in %s (offline=%s)", cfg.cache_dir, cfg.offline)
        return session


def _cache_filter(response: requests.Response) -> bool:
    """requests-cache filter: keep every entry (no automatic delete on a new answer).

    Nothing is written automatically either (:class:`_GuardedCache` writes only what
    :func:`_save` asks for): a new answer reaches the cache once read whole and validated,
    and the copy held stays until then.
    """
    return True


# --- the cache on disk: bounded SQLite waits, full disk -----------------------------------


class CacheWriteError(OSError):
    """The HTTP cache refused a write (full disk, lock held too long, read-only file)."""


_DISK_REASONS_FR: dict[int, str] = {
    errno.ENOSPC: "le disque est plein",
    errno.EDQUOT: "le quota de disque est dépassé",
    errno.EFBIG: "le disque refuse l'écriture (taille de fichier permise atteinte)",
    errno.EROFS: "le disque est en lecture seule",
    errno.EACCES: "l'écriture est refusée (droits)",
    errno.EPERM: "l'écriture est refusée (droits)",
}
_SQLITE_REASONS_FR: dict[str, str] = {
    "SQLITE_FULL": "le disque est plein",
    "SQLITE_READONLY": "le cache est en lecture seule",
    "SQLITE_BUSY": "le cache est verrouillé par un autre processus",
    "SQLITE_LOCKED": "le cache est verrouillé par un autre processus",
    "SQLITE_CANTOPEN": "le fichier du cache ne peut pas être ouvert",
    "SQLITE_IOERR": "le disque refuse l'écriture (plein ou limité)",
}
_cache_off: dict[str, str] = {}  # "reason": French reason once cache writes are off


def _reason_fr(exc: BaseException) -> str:
    """French reason of a refused cache write."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, sqlite3.Error):
            name = str(getattr(seen, "sqlite_errorname", ""))
            for prefix, text in _SQLITE_REASONS_FR.items():
                if name.startswith(prefix):
                    return text
            if "full" in str(seen).lower():
                return "le disque est plein"
            if "locked" in str(seen).lower():
                return _SQLITE_REASONS_FR["SQLITE_BUSY"]
            return f"erreur SQLite : {seen}"
        if isinstance(seen, OSError) and seen.errno in _DISK_REASONS_FR:
            return _DISK_REASONS_FR[seen.errno]
        seen = seen.__cause__
    return f"{type(exc).__name__} : {exc}"


def _turn_cache_off(exc: BaseException) -> None:
    """Stop writing to the HTTP cache for this process, once, with a warning."""
    if "reason" in _cache_off:
        return
    reason = _reason_fr(exc)
    _cache_off["reason"] = reason
    logger.warning("HTTP cache: writes stopped (%s): %s", reason, exc)


def cache_note() -> str:
    """French note when the HTTP cache could not be written (empty when all is well).

    Examples
    --------
    >>> reset(); cache_note()
    ''
    """
    reason = _cache_off.get("reason")
    if not reason:
        return ""
    return (
        f"Cache HTTP non écrit ({reason}, dossier {str(get_config().cache_dir)!r}) : la "
        "mise à jour continue sans garder les réponses en cache ; libérez de la place (ou "
        "changez de dossier, variable MAILLAGE_CACHE_DIR) pour que les prochaines mises à "
        "jour et le mode hors ligne puissent s'en servir."
    )


class _BoundedSQLiteDict(SQLiteDict):
    """requests-cache's SQLite table with a bounded write lock.

    The library waits for ``BEGIN IMMEDIATE`` in a loop without end and swallows the
    errors of the write itself; on a full disk that loop spins or a delete fails with
    ``UnboundLocalError``. Here the wait stops after ``timeout_s`` and a failed write
    raises :class:`CacheWriteError`.
    """

    def __init__(self, *args: Any, timeout_s: float, **kwargs: Any) -> None:
        self.timeout_s = float(timeout_s)
        kwargs.setdefault("timeout", min(self.timeout_s, 2.0))  # sqlite3 busy wait, per try
        super().__init__(*args, **kwargs)

    @contextlib.contextmanager
    def _acquire_sqlite_lock(self) -> Iterator[None]:
        with self._lock:
            con = self._connection
            if con is None:  # pragma: no cover - connection() opens it first
                raise CacheWriteError("the SQLite connection of the HTTP cache is closed")
            deadline = time.monotonic() + self.timeout_s
            pause = 0.001
            while True:
                try:
                    con.execute("BEGIN IMMEDIATE")
                    break
                except sqlite3.OperationalError as exc:
                    if con.in_transaction:  # a transaction left open by a failed write
                        with contextlib.suppress(sqlite3.Error):
                            con.rollback()
                    if time.monotonic() >= deadline:
                        raise CacheWriteError(
                            f"HTTP cache {self.db_path}: no write lock within "
                            f"{self.timeout_s:g} s ({exc})") from exc
                    time.sleep(pause)
                    pause = min(pause * 2, 0.1)
            self._active_transaction = True
            try:
                yield
                con.commit()
            except sqlite3.Error as exc:
                with contextlib.suppress(sqlite3.Error):
                    con.rollback()
                raise CacheWriteError(f"HTTP cache {self.db_path}: write failed ({exc})") from exc
            finally:
                self._active_transaction = False


class _GuardedCache(SQLiteCache):
    """The SQLite cache of Maillage: bounded waits, explicit writes only, full disk survived.

    - writes happen only inside :func:`_explicit_write` (never on requests-cache's own
      initiative), so a new answer replaces the copy held only once validated;
    - a refused write (full disk, lock held past ``timeout_s``) turns writes off for the
      process (:func:`cache_note` says so in French) and the fetch goes on;
    - a read that fails on a locked or broken database is a cache miss.
    """

    def __init__(self, db_path: str, *, timeout_s: float) -> None:
        BaseCache.__init__(self, cache_name=db_path)
        self.responses = _BoundedSQLiteDict(db_path, table_name="responses",
                                            timeout_s=timeout_s)
        self.redirects = _BoundedSQLiteDict(db_path, table_name="redirects",
                                            lock=self.responses._lock, serializer=None,
                                            timeout_s=timeout_s)

    def save_response(self, response: Any, cache_key: str | None = None,
                      expires: dt.datetime | None = None) -> None:
        """Save only when asked by :func:`_save` and while writes are on."""
        if not getattr(_state, "explicit_write", False) or "reason" in _cache_off:
            return
        try:
            super().save_response(response, cache_key, expires)
        except (CacheWriteError, sqlite3.Error, OSError) as exc:
            _turn_cache_off(exc)

    def delete(self, *keys: str, **kwargs: Any) -> None:
        """Delete only when asked (a bad copy) and while writes are on."""
        if not getattr(_state, "explicit_write", False) or "reason" in _cache_off:
            return
        try:
            super().delete(*keys, **kwargs)
        except (CacheWriteError, sqlite3.Error, OSError, UnboundLocalError) as exc:
            _turn_cache_off(exc)

    def get_response(self, key: str, default: Any = None) -> Any:
        """A read that fails (locked past the timeout, broken file) is a miss."""
        try:
            return super().get_response(key, default)
        except (sqlite3.Error, OSError) as exc:
            logger.warning("HTTP cache: read of %s failed (%s); treated as missing", key, exc)
            return default


@contextlib.contextmanager
def _explicit_write() -> Iterator[None]:
    before = getattr(_state, "explicit_write", False)
    _state.explicit_write = True
    try:
        yield
    finally:
        _state.explicit_write = before


def _probe_disk(folder: Path) -> None:
    """Write then delete :data:`DISK_PROBE_BYTES` in ``folder``; raise ``OSError`` if refused."""
    folder.mkdir(parents=True, exist_ok=True)
    probe = folder / f".write-test-{os.getpid()}-{threading.get_ident()}"
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            block = b"\0" * 65536
            for _ in range(max(DISK_PROBE_BYTES // len(block), 1)):
                os.write(fd, block)
            os.fsync(fd)
        finally:
            os.close(fd)
    finally:
        with contextlib.suppress(OSError):
            probe.unlink()


def _open_cache(cfg: HttpConfig) -> BaseCache:
    """The cache backend: SQLite in the cache folder, read-only or in memory on a bad disk."""
    try:
        _probe_disk(cfg.cache_dir)
    except OSError as exc:
        _turn_cache_off(exc)
    try:
        return _GuardedCache(str(cfg.cache_dir / "http_cache"), timeout_s=cfg.sqlite_timeout_s)
    except (CacheWriteError, sqlite3.Error, OSError) as exc:
        _turn_cache_off(exc)
        logger.warning("HTTP cache: %s unusable (%s); answers are kept in memory only",
                       cfg.cache_dir, exc)
        return BaseCache(cache_name="memory")


def _expires_for(url: str) -> dt.datetime:
    cfg = get_config()
    seconds: float = cfg.expire_after_s
    for pattern, value in _URLS_EXPIRE_AFTER.items():
        if isinstance(pattern, str) and pattern in url and isinstance(value, int | float):
            seconds = value
    return dt.datetime.now(dt.UTC).replace(tzinfo=None) + dt.timedelta(seconds=seconds)


def save_validated(resp: requests.Response) -> None:
    """Keep an answer its caller read whole and checked (e.g. a directory page) in the cache.

    Answers are never cached automatically (:class:`_GuardedCache`): a caller that talks to
    the session itself saves what it validated with this.
    """
    if isinstance(resp, requests.Response):
        _save(resp)


def _write_entry(key: str, resp: Any, expires: dt.datetime | None) -> None:
    with _explicit_write():
        get_session().cache.save_response(resp, key, expires)


def _save_revalidated(resp: Any, key: str) -> None:
    """Keep a copy the server confirmed (HTTP 304) with a new expiry (deferred like _save)."""
    expires = _expires_for(getattr(resp, "url", "") or "")
    pending: PendingWrites | None = getattr(_state, "pending", None)
    if pending is not None:
        pending.entries.append((key, resp, expires))
        return
    _write_entry(key, resp, expires)


def _save(resp: requests.Response) -> None:
    """Write a validated network answer to the HTTP cache (deferred inside a fetch).

    Inside :func:`deferred_cache` the write waits until the caller judged the whole
    source (a suspect or partial answer is then never cached).
    """
    if getattr(resp, "from_cache", False) or resp.request is None:
        return
    key = get_session().cache.create_key(resp.request)
    expires = _expires_for(resp.url or "")
    pending: PendingWrites | None = getattr(_state, "pending", None)
    if pending is not None:
        pending.entries.append((key, resp, expires))
        return
    _write_entry(key, resp, expires)


# --- refresh, deadlines and data dates --------------------------------------------------

_state = threading.local()


@contextlib.contextmanager
def refreshing(active: bool = True) -> Iterator[None]:
    """Within the block, fetch each URL again once (cached answers and files ignored).

    Used by ``python -m data_sources fetch --refresh``: each URL is fetched from the
    network the first time it is asked for in the block, then served as usual.
    """
    before = getattr(_state, "refreshed", None)
    _state.refreshed = set() if active else None
    try:
        yield
    finally:
        _state.refreshed = before


def refresh_requested(key: str) -> bool:
    """Whether ``key`` (a URL, a cache file) must be fetched again now.

    True the first time ``key`` is asked for inside a :func:`refreshing` block.
    """
    done: set[str] | None = getattr(_state, "refreshed", None)
    if done is None or key in done:
        return False
    done.add(key)
    return True


@contextlib.contextmanager
def source_deadline(seconds: float, *, source: str) -> Iterator[None]:
    """Give every call of the block one overall deadline (``seconds`` from now).

    A call started after the deadline, or a body still streaming then, raises
    :class:`SourceError` naming the source.
    """
    before = getattr(_state, "deadline", None)
    _state.deadline = (time.monotonic() + float(seconds), float(seconds), source)
    try:
        yield
    finally:
        _state.deadline = before


def _check_deadline(source: str, full: str) -> float | None:
    """Seconds left before the source's deadline (``None``: no deadline)."""
    dl = getattr(_state, "deadline", None)
    if dl is None:
        return None
    left = dl[0] - time.monotonic()
    if left <= 0:
        raise SourceError(
            f"{source}: overall deadline of {dl[1]:g} s for {dl[2]} exceeded before {full} "
            "answered; the service is too slow, retry later."
        )
    return cast("float | None", left)


@dataclass
class PendingWrites:
    """Cache writes held back until a whole source is judged (:func:`deferred_cache`).

    Attributes
    ----------
    entries
        ``(cache key, answer, expiry)`` of the validated answers waiting.
    files
        ``(pending path, final path)`` of downloaded files waiting.
    """

    entries: list[tuple[str, Any, dt.datetime | None]] = field(default_factory=list)
    files: list[tuple[Path, Path]] = field(default_factory=list)
    done: bool = False

    def commit(self) -> None:
        """Write the answers to the cache and move the files into place."""
        if self.done:
            return
        self.done = True
        for key, resp, expires in self.entries:
            _write_entry(key, resp, expires)
        for pending, final in self.files:
            if pending.exists():
                try:
                    os.replace(pending, final)
                except OSError as exc:
                    logger.warning("could not keep the download %s: %s", final, exc)
                    pending.unlink(missing_ok=True)

    def discard(self) -> None:
        """Forget the answers (the copies held before stay in the cache) and the files."""
        if self.done:
            return
        self.done = True
        for pending, _final in self.files:
            pending.unlink(missing_ok=True)

    def pending_file(self, final: Path) -> Path | None:
        """The file downloaded in this block for ``final``, if any."""
        for pending, dest in self.files:
            if dest == final and pending.exists():
                return pending
        return None


@contextlib.contextmanager
def deferred_cache() -> Iterator[PendingWrites]:
    """Hold back the cache writes of the block until the caller commits or discards them.

    :mod:`data_sources.fetch` wraps each source in it: a source whose answer is judged
    suspect or partial as a whole (fewer rows than held, fewer communes than the territory,
    ``total_count`` not reached) leaves the cache as it was, so a later fetch never serves
    that answer from the cache. Files downloaded in the block wait beside their final path.
    The block's end discards what was neither committed nor discarded.
    """
    before = getattr(_state, "pending", None)
    pending = PendingWrites()
    _state.pending = pending
    try:
        yield pending
    finally:
        _state.pending = before
        pending.discard()  # no-op once committed


@dataclass
class UpdateNotes:
    """What an update did not get (:func:`update_notes`).

    Attributes
    ----------
    fallbacks
        ``(url, UTC ISO date of the copy kept, French motive)`` of each call whose update
        failed and that served the copy held before.
    partial
        French notes of answers that contradict their own metadata (``total_count`` not
        reached, a short page, a page cap).
    """

    fallbacks: list[tuple[str, str, str]] = field(default_factory=list)
    partial: list[str] = field(default_factory=list)


@contextlib.contextmanager
def update_notes() -> Iterator[UpdateNotes]:
    """Collect, for the block, the fallbacks to held copies and the partial answers."""
    before = getattr(_state, "notes", None)
    notes = UpdateNotes()
    _state.notes = notes
    try:
        yield notes
    finally:
        _state.notes = before


def _iso(when: dt.datetime | str | None) -> str:
    if isinstance(when, str):
        return when
    moment = when or dt.datetime.now(dt.UTC)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def motive_fr(exc: BaseException | str) -> str:
    """Short French motive of a failed update, from the English message of the layer.

    Examples
    --------
    >>> motive_fr("demo: HTTP 503 from https://x: 'down'; retry later.")
    'réponse HTTP 503'
    >>> motive_fr("an HTML page came back where JSON was expected")
    'page HTML reçue au lieu des données'
    """
    text = str(exc)
    low = text.lower()
    m = re.search(r"HTTP (\d{3})", text)
    if "html page" in low:
        return "page HTML reçue au lieu des données"
    if "truncated" in low:
        return "transfert interrompu"
    if "overall deadline" in low:
        return "délai global dépassé"
    if m:
        return f"réponse HTTP {m.group(1)}"
    if "timeout" in low or "too slowly" in low:
        return "délai de réponse dépassé"
    if "kept failing" in low:
        return "le service refuse les requêtes (nouvelles tentatives épuisées)"
    if "cannot reach" in low or "does not answer" in low:
        return "service injoignable"
    if "exceeds" in low:
        return "réponse trop volumineuse"
    return "réponse inutilisable"


def note_fallback(url: str, when: dt.datetime | str | None, exc: BaseException | str) -> None:
    """Record that an update of ``url`` failed and the copy of ``when`` was served."""
    notes: UpdateNotes | None = getattr(_state, "notes", None)
    if notes is not None:
        notes.fallbacks.append((url, _iso(when), motive_fr(exc)))


def note_partial(text_fr: str) -> None:
    """Record (French) that an answer contradicts its own metadata: it is partial.

    Paging loops call it when the rows received fall short of ``total_count``, when a
    page is short before the end, or when a page cap stops them.
    """
    logger.warning("partial answer: %s", text_fr)
    notes: UpdateNotes | None = getattr(_state, "notes", None)
    if notes is not None:
        notes.partial.append(text_fr)


def deadline_left() -> float | None:
    """Seconds left before the current source's deadline (``None``: no deadline)."""
    dl = getattr(_state, "deadline", None)
    return None if dl is None else dl[0] - time.monotonic()


@contextlib.contextmanager
def data_dates() -> Iterator[list[str]]:
    """Collect the UTC ISO dates of the data served in the block (oldest first on exit).

    A network answer is dated now, a cached one by its cache date, a downloaded file by
    its file date: :mod:`data_sources.fetch` writes the oldest to the ledger.
    """
    before = getattr(_state, "dates", None)
    dates: list[str] = []
    _state.dates = dates
    try:
        yield dates
    finally:
        dates.sort()
        _state.dates = before


def note_data_date(when: dt.datetime | str | None) -> None:
    """Record the date of data served (see :func:`data_dates`); ``None`` means now."""
    dates = getattr(_state, "dates", None)
    if dates is None:
        return
    if isinstance(when, str):
        dates.append(when)
        return
    moment = when or dt.datetime.now(dt.UTC)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    dates.append(moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))


def _read_body(resp: requests.Response, *, source: str, full: str, max_bytes: int,
               deadline_s: float) -> bytes:
    """Read a streamed body with a size cap and a wall-clock deadline."""
    if getattr(resp, "from_cache", False) or resp.raw is None:
        return resp.content or b""
    limit = time.monotonic() + deadline_s
    parts: list[bytes] = []
    size = 0
    raw = resp.raw
    try:
        while True:
            chunk = raw.read1(65536, decode_content=True) if hasattr(raw, "read1") else \
                raw.read(65536, decode_content=True)
            if not chunk:
                break
            parts.append(chunk)
            size += len(chunk)
            if size > max_bytes:
                resp.close()
                raise SourceError(
                    f"{source}: the answer of {full} exceeds {max_bytes} bytes; refused (the "
                    "service sent far more than expected, retry later or report it)."
                )
            if time.monotonic() > limit:
                resp.close()
                raise SourceError(
                    f"{source}: {full} sent its answer too slowly ({size} bytes in "
                    f"{deadline_s:g} s, timeout); retry later."
                )
    except (ReadTimeoutError, TimeoutError) as exc:
        raise SourceError(
            f"{source}: no answer from {full} within the read timeout (timeout while "
            f"reading, {size} bytes received); retry later."
        ) from exc
    except (ProtocolError, Urllib3Error, requests.exceptions.ChunkedEncodingError) as exc:
        raise TruncatedError(
            f"truncated transfer: the connection broke after {size} bytes ({exc})"
        ) from exc
    body = b"".join(parts)
    resp._content = body
    resp._content_consumed = True  # type: ignore[attr-defined]
    return body


# --- requests ------------------------------------------------------------------------


def probe(url: str, *, source: str, timeout_s: float = 10.0) -> None:
    """Check, fast and without the cache, that a host answers at all (any HTTP status).

    For the libraries that do their own HTTP (osmnx): a machine without internet must
    learn it in a moment, not after their own retry pauses.

    Raises
    ------
    SourceError
        Offline mode, or no answer (DNS, refused connection, timeout); the message names
        the source and the URL.
    """
    if get_config().offline:
        raise SourceError(f"{source}: Maillage is offline and {url} cannot be reached; "
                          "go online, or work from the cache or the demo territory",
                          fr=f"{source} : Maillage est hors ligne, {url} n'est pas joignable ; "
                             "connectez-vous, ou travaillez sur le cache ou la démonstration")
    check_url(url, policy=get_config().policy)
    try:
        requests.head(url, timeout=timeout_s, headers={"User-Agent": USER_AGENT},
                      allow_redirects=False)
    except requests.RequestException as exc:
        raise SourceError(
            f"{source}: {url} does not answer ({type(exc).__name__}); check the internet "
            "connection and retry later, or work from the cache or the demo territory",
            fr=f"{source} : {url} ne répond pas ; vérifiez la connexion à internet et "
               "réessayez plus tard, ou travaillez sur le cache ou la démonstration"
        ) from exc


def _describe(url: str, params: Params) -> str:
    if not params:
        return url
    req = requests.Request("GET", url, params=params).prepare()
    return req.url or url


def _request(
    method: str,
    url: str,
    *,
    source: str,
    params: Params = None,
    data: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    offline: bool,
    force_refresh: bool = False,
    stream: bool = False,
) -> requests.Response:
    cfg = get_config()
    session = get_session()
    full = _describe(url, params)
    left = _check_deadline(source, full)
    timeout = cfg.timeout_s if left is None else (min(cfg.timeout_s[0], left),
                                                  min(cfg.timeout_s[1], left))
    try:
        resp = session.request(
            method,
            url,
            params=params,
            data=data,
            headers=dict(headers or {}),
            timeout=timeout,
            only_if_cached=offline,
            force_refresh=force_refresh and not offline,
            stream=stream,
        )
    except requests.Timeout as exc:
        raise SourceError(
            f"{source}: no answer from {full} within {cfg.timeout_s} s (timeout: {exc}); "
            "retry later, or work offline from the cache or the demo territory."
        ) from exc
    except requests.exceptions.RetryError as exc:
        raise SourceError(
            f"{source}: {full} kept failing after {cfg.max_retries} retries ({exc}); "
            "retry later, or work offline from the cache or the demo territory."
        ) from exc
    except requests.RequestException as exc:
        raise SourceError(
            f"{source}: cannot reach {full} ({type(exc).__name__}: {exc}); check the internet "
            "connection, or work offline from the cache or the demo territory."
        ) from exc
    from_cache = bool(getattr(resp, "from_cache", False))
    if offline and (not from_cache or resp.status_code == 504):
        raise SourceError(
            f"{source}: offline mode and no cached copy of {full}; connect to the internet "
            "once to fetch it, or use the demo territory."
        )
    if resp.status_code != 200:
        try:
            snippet = _read_body(resp, source=source, full=full, max_bytes=4096,
                                 deadline_s=5)[:200].decode("utf-8", "replace")
        except (SourceError, ValueError):
            snippet = ""
        snippet = snippet.replace("\n", " ")
        hint = {
            401: "the service needs an access token",
            403: "access refused (token or quota)",
            404: "the resource does not exist (changed URL or identifier?)",
            429: "too many requests: wait a minute and retry",
        }.get(resp.status_code, "retry later")
        raise SourceError(
            f"{source}: HTTP {resp.status_code} from {full}: {snippet!r}; {hint}."
        )
    logger.debug("%s %s -> 200 (%s)", method, full, "cache" if from_cache else "network")
    return resp


def _forget(resp: requests.Response) -> None:
    """Delete the cached copy of ``resp`` (if any)."""
    try:
        with _explicit_write():
            get_session().cache.delete(requests=[resp.request])
    except Exception as exc:  # pragma: no cover - best effort on a broken cache
        logger.warning("could not delete a cached entry for %s: %s", resp.url, exc)


def _looks_like_html(resp: requests.Response, body: bytes) -> bool:
    ctype = resp.headers.get("Content-Type", "").lower()
    head = body[:512].lstrip().lower()
    return "text/html" in ctype or head.startswith((b"<!doctype html", b"<html", b"<"))


def _check_length(resp: requests.Response, body: bytes) -> None:
    declared = resp.headers.get("Content-Length")
    encoded = resp.headers.get("Content-Encoding", "").lower()
    if declared and declared.isdigit() and not encoded and int(declared) != len(body):
        raise TruncatedError(
            f"truncated transfer: {len(body)} bytes received, {declared} announced")


def decode_text(body: bytes, *, encodings: tuple[str, ...] = ("utf-8-sig", "cp1252")) -> str:
    """Decode bytes with the first encoding that works (UTF-8, then Windows-1252).

    Examples
    --------
    >>> decode_text("Crèche".encode("cp1252"))
    'Crèche'
    """
    last: UnicodeDecodeError | None = None
    for enc in encodings:
        try:
            return body.decode(enc)
        except UnicodeDecodeError as exc:
            last = exc
    raise ValueError(f"cannot decode the body with {encodings}: {last}")


def _cache_key(method: str, url: str, params: Params, data: bytes | None,
               headers: Mapping[str, str] | None) -> str:
    session = get_session()
    prepared = session.prepare_request(requests.Request(
        method, url, params=params, data=data, headers=dict(headers or {})))
    return str(session.cache.create_key(prepared))


def _fetch(
    method: str,
    url: str,
    *,
    source: str,
    kind: str,
    params: Params,
    data: bytes | None,
    headers: Mapping[str, str] | None,
    offline: bool | None,
    refresh: bool,
    convert: Callable[[bytes], Any],
    check: Callable[[Any], object] | None,
) -> Any:
    cfg = get_config()
    off = cfg.offline if offline is None else offline
    full = _describe(url, params)
    body_id = hashlib.sha1(data or b"").hexdigest()
    refresh = refresh_requested(f"{method} {full} {body_id}") or refresh
    key = _cache_key(method, url, params, data, headers)
    try:  # the copy held before this call: a bad new answer must not replace it
        kept = get_session().cache.get_response(key)
    except Exception:  # pragma: no cover - a broken cache entry
        kept = None

    def accept(resp: Any, body: bytes) -> Any:
        if kind in {"json", "csv"} and _looks_like_html(resp, body):
            raise ValueError(
                f"an HTML page came back where {kind.upper()} was expected "
                f"(Content-Type {resp.headers.get('Content-Type', '?')!r}, "
                f"starts with {body[:60]!r})"
            )
        if not getattr(resp, "from_cache", False):  # a 304 may merge "Content-Length: 0"
            _check_length(resp, body)
        value = convert(body)
        if check is not None:
            check(value)
        return value

    def fall_back(exc: Exception, message: str) -> Any:
        """Serve the copy held before, if still good; else raise ``message``."""
        if kept is not None:
            try:
                value = accept(kept, kept.content or b"")
            except (ValueError, KeyError, TypeError):
                pass
            else:
                logger.warning("%s: %s; the copy cached on %s is used", source, message,
                               kept.created_at)
                note_data_date(kept.created_at)
                note_fallback(full, kept.created_at, message)
                return value
        raise SourceError(message) from exc

    for attempt in (1, 2):
        try:
            resp = _request(
                method, url, source=source, params=params, data=data, headers=headers,
                offline=off, force_refresh=refresh or attempt == 2, stream=True,
            )
        except SourceError as exc:  # no answer, an HTTP error: the copy held, said so
            if off or isinstance(exc, BlockedURLError):
                raise  # a refused address is never answered from a copy either
            return fall_back(exc, str(exc))
        from_cache = bool(getattr(resp, "from_cache", False))
        left = _check_deadline(source, full)
        try:
            body = _read_body(resp, source=source, full=full, max_bytes=cfg.max_body_bytes,
                              deadline_s=min(cfg.body_deadline_s, left or cfg.body_deadline_s))
            value = accept(resp, body)
        except (ValueError, KeyError, TypeError) as exc:
            if from_cache:
                _forget(resp)
                if getattr(resp, "created_at", 0) == getattr(kept, "created_at", None):
                    kept = None
            truncated = isinstance(exc, TruncatedError)
            if off:
                raise SourceError(
                    f"{source}: the cached copy of {full} is unusable ({exc}) and offline mode "
                    "forbids fetching it again; connect to the internet and retry."
                ) from exc
            if attempt == 2:
                if truncated:
                    return fall_back(exc, (
                        f"{source}: {exc} from {full}, twice; the transfer was cut (the "
                        "network or the service is unstable), retry later."))
                return fall_back(exc, (
                    f"{source}: unusable answer from {full} ({exc}), twice; the service may "
                    "be down or its format changed; retry later or report it."))
            logger.warning("%s: unusable answer from %s (%s); fetching it again", source, full, exc)
            continue
        if from_cache:
            note_data_date(getattr(resp, "created_at", None))
            if getattr(resp, "revalidated", False):  # a 304: the copy is fresh again
                _save_revalidated(resp, key)
        else:
            _save(resp)
            note_data_date(None)
        return value
    raise AssertionError("unreachable")  # pragma: no cover


def fetch_json(
    url: str,
    *,
    source: str,
    params: Params = None,
    headers: Mapping[str, str] | None = None,
    offline: bool | None = None,
    refresh: bool = False,
    check: Callable[[Any], object] | None = None,
) -> Any:
    """GET a JSON document (cached), refetching once when it fails to parse or ``check``.

    Parameters
    ----------
    url
        Address without query string (pass ``params`` instead).
    source
        Registry key of the source, named in error messages.
    params
        Query parameters (mapping or list of pairs for repeated keys).
    headers
        Extra headers (e.g. ``Authorization``; never cached as part of the key).
    offline
        Override the configured offline mode for this call.
    refresh
        Ignore the cached copy and fetch again.
    check
        Called with the parsed value; raise ``ValueError`` to reject it (the cached copy
        is then dropped and the URL fetched once again).

    Returns
    -------
    Any
        The parsed JSON.

    Raises
    ------
    SourceError
        Timeout, unreachable host, HTTP error, HTML page, unusable body, or offline mode
        without a cached copy; the message names the source and the URL.
    """
    hdrs = {"Accept": "application/json", **dict(headers or {})}
    return _fetch(
        "GET", url, source=source, kind="json", params=params, data=None, headers=hdrs,
        offline=offline, refresh=refresh, convert=lambda b: json.loads(decode_text(b)),
        check=check,
    )


def fetch_text(
    url: str,
    *,
    source: str,
    params: Params = None,
    headers: Mapping[str, str] | None = None,
    offline: bool | None = None,
    refresh: bool = False,
    expect: str = "csv",
    check: Callable[[str], object] | None = None,
) -> str:
    """GET a text document (CSV by default), decoded UTF-8 then Windows-1252.

    ``expect="csv"`` rejects HTML pages; ``expect="text"`` accepts any text. See
    :func:`fetch_json` for the other parameters and the errors raised.
    """
    return cast("str", _fetch(
        "GET", url, source=source, kind=expect, params=params, data=None, headers=headers,
        offline=offline, refresh=refresh, convert=decode_text, check=check,
    ))


def fetch_bytes(
    url: str,
    *,
    source: str,
    params: Params = None,
    headers: Mapping[str, str] | None = None,
    offline: bool | None = None,
    refresh: bool = False,
    expect: str = "bytes",
    check: Callable[[bytes], object] | None = None,
) -> bytes:
    """GET raw bytes (cached); ``expect="json"`` or ``"csv"`` rejects HTML pages.

    See :func:`fetch_json` for the parameters and the errors raised.
    """
    return cast("bytes", _fetch(
        "GET", url, source=source, kind=expect, params=params, data=None, headers=headers,
        offline=offline, refresh=refresh, convert=bytes, check=check,
    ))


_BOUNDARY = "maillage-form-boundary-7c1f0e"


def encode_multipart(
    fields: list[tuple[str, str]], files: list[tuple[str, str, bytes, str]]
) -> tuple[bytes, str]:
    """Encode a multipart form with a fixed boundary, so identical posts share a cache key.

    Parameters
    ----------
    fields
        ``(name, value)`` pairs (a name may repeat, e.g. ``columns``).
    files
        ``(name, filename, content, content_type)`` tuples.

    Returns
    -------
    tuple of (bytes, str)
        The body and its ``Content-Type`` header.
    """
    parts: list[bytes] = []
    for name, value in fields:
        parts.append(
            f'--{_BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
            f"{value}\r\n".encode()
        )
    for name, filename, content, ctype in files:
        parts.append(
            f'--{_BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"; '
            f'filename="{filename}"\r\nContent-Type: {ctype}\r\n\r\n'.encode()
            + content + b"\r\n"
        )
    parts.append(f"--{_BOUNDARY}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={_BOUNDARY}"


def post_multipart_text(
    url: str,
    *,
    source: str,
    fields: list[tuple[str, str]],
    files: list[tuple[str, str, bytes, str]],
    offline: bool | None = None,
    refresh: bool = False,
    expect: str = "csv",
    check: Callable[[str], object] | None = None,
) -> str:
    """POST a multipart form (cached by body) and return the decoded text answer.

    Used by the BAN batch geocoder. See :func:`fetch_json` for the errors raised.
    """
    body, ctype = encode_multipart(fields, files)
    return cast("str", _fetch(
        "POST", url, source=source, kind=expect, params=None, data=body,
        headers={"Content-Type": ctype}, offline=offline, refresh=refresh,
        convert=decode_text, check=check,
    ))


# --- large files --------------------------------------------------------------------


def download_path(url: str) -> Path:
    """Return where :func:`download_file` stores ``url`` in the cache folder."""
    digest = hashlib.sha1(url.encode()).hexdigest()[:16]
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", urlsplit(url).path.rsplit("/", 1)[-1])[:80]
    return get_config().cache_dir / "files" / f"{digest}-{name or 'download'}"


def download_file(
    url: str,
    *,
    source: str,
    offline: bool | None = None,
    refresh: bool = False,
    chunk_bytes: int = 1 << 20,
) -> Path:
    """Download a large file to the cache folder atomically and return its path.

    The body is streamed to a temporary file, checked against ``Content-Length``
    (a truncated transfer raises :class:`SourceError`), against
    ``max_download_bytes`` and the body deadline, and renamed into place, so a crash
    never leaves a half file behind. In offline mode the stored copy is used.

    A stored copy older than ``expire_after_s`` is downloaded again when online; if that
    fails, the old copy is used (with a warning), as for cached answers.
    """
    cfg = get_config()
    off = cfg.offline if offline is None else offline
    path = download_path(url)
    pending: PendingWrites | None = getattr(_state, "pending", None)
    fresh = pending.pending_file(path) if pending is not None else None
    if fresh is not None:  # downloaded earlier in this block, not yet kept
        return fresh
    if ("reason" in _cache_off and _scratch_dirs and not path.exists()
            and (_scratch_dirs[0] / path.name).exists()):
        return _scratch_dirs[0] / path.name  # downloaded this run beside a full cache
    refresh = refresh_requested(f"FILE {url}") or refresh
    stale = False
    if path.exists():
        age_s = time.time() - path.stat().st_mtime
        stale = age_s > cfg.expire_after_s
        if off or not (refresh or stale):
            note_data_date(dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC))
            return path
    if off:
        raise SourceError(
            f"{source}: offline mode and no downloaded copy of {url}; connect to the "
            "internet once to fetch it, or use the demo territory."
        )
    target = path
    if pending is not None:  # kept only once the whole source is judged
        target = _pending_path(path, os.getpid())  # same suffix: readers go by it
        _clean_parts(path)
    try:
        try:
            _download(url, target, source=source, chunk_bytes=chunk_bytes)
        except DiskFullError as exc:  # the cache folder takes no more: elsewhere, this run
            _turn_cache_off(exc.__cause__ or exc)
            scratch = _scratch_path(path)
            logger.warning("%s: %s; downloading to %s for this run only", source, exc,
                           scratch)
            _download(url, scratch, source=source, chunk_bytes=chunk_bytes)
            note_data_date(None)
            return scratch
    except SourceError as exc:
        if stale and not refresh and path.exists() and not isinstance(exc, BlockedURLError):
            logger.warning("%s: %s; the expired copy %s is used", source, exc, path)
            when = dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC)
            note_data_date(when)
            note_fallback(url, when, exc)
            return path
        raise
    note_data_date(None)
    if pending is not None:
        pending.files.append((target, path))
    return target


class DiskFullError(SourceError):
    """The cache folder refused a download (full disk, quota, file size limit)."""


_scratch_dirs: list[Path] = []


def _scratch_path(path: Path) -> Path:
    """Where a download goes when the cache folder is full: the system temp folder.

    The folder is this process's own and is deleted when it ends; a second call for
    the same file in the run gets the same path (:func:`download_file` reuses it).
    """
    if not _scratch_dirs:
        import atexit
        import shutil
        import tempfile

        folder = Path(tempfile.mkdtemp(prefix="maillage-telechargements-"))
        _scratch_dirs.append(folder)
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return _scratch_dirs[0] / path.name


def _iter_raw(resp: requests.Response, chunk_bytes: int) -> Iterator[bytes]:
    """Yield what the socket gives (``read1``), so a slow body can be timed."""
    raw = resp.raw
    while True:
        chunk = raw.read1(chunk_bytes, decode_content=True)
        if not chunk:
            return
        yield chunk


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by another user
        return True
    return True


def _clean_parts(path: Path) -> None:
    """Delete the ``.part<pid>`` / ``.pending<pid>`` files killed downloads left by ``path``."""
    for part in path.parent.glob(path.name + ".part*"):
        pid = part.name.rsplit(".part", 1)[-1]
        if pid.isdigit() and int(pid) != os.getpid() and not _pid_alive(int(pid)):
            part.unlink(missing_ok=True)
    for part in path.parent.glob(_pending_path(path, "*").name):
        pid = part.name[len(path.stem) + len(".pending"):len(part.name) - len(path.suffix)]
        if pid.isdigit() and int(pid) != os.getpid() and not _pid_alive(int(pid)):
            part.unlink(missing_ok=True)


def _pending_path(path: Path, pid: int | str) -> Path:
    """``x.zip`` -> ``x.pending<pid>.zip``: a download waiting for its source's verdict."""
    return path.with_name(f"{path.stem}.pending{pid}{path.suffix}")


def _download(url: str, path: Path, *, source: str, chunk_bytes: int) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        kind = DiskFullError if exc.errno in _DISK_REASONS_FR else SourceError
        raise kind(f"{source}: cannot create {str(path.parent)!r} for the download of {url} "
                   f"({exc.strerror or exc}); free some disk space and retry.") from exc
    _clean_parts(path)
    tmp = path.with_name(path.name + f".part{os.getpid()}")
    session = get_session()
    cfg = get_config()
    left = _check_deadline(source, url)
    deadline_s = min(cfg.body_deadline_s, left) if left is not None else cfg.body_deadline_s
    timeout = cfg.timeout_s if left is None else (min(cfg.timeout_s[0], left),
                                                  min(cfg.timeout_s[1], left))
    try:
        with session.cache_disabled():
            resp = session.get(url, timeout=timeout, stream=True)
            if resp.status_code != 200:
                raise SourceError(f"{source}: HTTP {resp.status_code} from {url}; retry later.")
            declared = resp.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > cfg.max_download_bytes:
                raise SourceError(
                    f"{source}: {url} announces {declared} bytes, more than the limit of "
                    f"{cfg.max_download_bytes}; refused, report it."
                )
            size = 0
            limit = time.monotonic() + deadline_s
            with tmp.open("wb") as fh:
                for chunk in _iter_raw(resp, chunk_bytes):
                    fh.write(chunk)
                    size += len(chunk)
                    if size > cfg.max_download_bytes:
                        raise SourceError(
                            f"{source}: download of {url} exceeds {cfg.max_download_bytes} "
                            "bytes; refused, report it."
                        )
                    if time.monotonic() > limit:
                        raise SourceError(
                            f"{source}: {url} sends too slowly ({size} bytes in "
                            f"{deadline_s:g} s, timeout); retry later."
                        )
            if declared.isdigit() and not resp.headers.get("Content-Encoding") and (
                int(declared) != size
            ):
                raise SourceError(
                    f"{source}: truncated download of {url}: {size} bytes received, "
                    f"{declared} announced; retry later."
                )
        with tmp.open("rb") as fh:
            head = fh.read(512).lstrip().lower()
        if head.startswith((b"<!doctype html", b"<html")) and not url.lower().endswith(
                (".html", ".htm")):
            raise SourceError(  # checked before the copy held is replaced
                f"{source}: an HTML page came back from {url} where a data file was "
                "expected; the service may be down, retry later."
            )
        os.replace(tmp, path)
    except requests.Timeout as exc:
        raise SourceError(
            f"{source}: no answer from {url} within {cfg.timeout_s} s (timeout); retry later."
        ) from exc
    except (ReadTimeoutError, TimeoutError) as exc:
        raise SourceError(
            f"{source}: no answer from {url} within {cfg.timeout_s} s while downloading "
            "(timeout); retry later."
        ) from exc
    except (requests.exceptions.ChunkedEncodingError, ProtocolError) as exc:
        raise SourceError(
            f"{source}: truncated download of {url}: the transfer was cut ({exc}); retry later."
        ) from exc
    except requests.RequestException as exc:
        raise SourceError(
            f"{source}: download of {url} failed ({type(exc).__name__}: {exc}); retry later, "
            "or work offline from the cache or the demo territory."
        ) from exc
    except OSError as exc:
        kind = DiskFullError if exc.errno in _DISK_REASONS_FR else SourceError
        raise kind(
            f"{source}: cannot write the download of {url} to {str(path.parent)!r} "
            f"({exc.strerror or exc}); free some disk space and retry."
        ) from exc
    finally:
        if tmp.exists():
            tmp.unlink()
    logger.info("%s: downloaded %s (%d bytes)", source, url, path.stat().st_size)


def forget_download(url: str) -> None:
    """Delete the stored copy of a large file (e.g. after a parse failure)."""
    path = download_path(url)
    path.unlink(missing_ok=True)
    for part in path.parent.glob(_pending_path(path, "*").name):
        part.unlink(missing_ok=True)


def _decode_line(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace")


def iter_file_lines(path: Path) -> Iterator[str]:
    """Yield the lines of a file without their end of line, decoded line by line.

    Each line is decoded as UTF-8 and, if that fails, as Windows-1252: FINESS files
    were cp1252 before being UTF-8, and some mix both.
    """
    with path.open("rb") as fh:
        first = True
        for raw in fh:
            if first and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            first = False
            yield _decode_line(raw).rstrip("\r\n")


def stream_lines(
    url: str,
    *,
    source: str,
    offline: bool | None = None,
    refresh: bool = False,
    announced_bytes: int | None = None,
) -> Iterator[str]:
    """Download ``url`` (once, atomically) and yield its decoded lines one by one.

    Callers that find the content unusable should call :func:`forget_download` and
    call again with ``refresh=True`` (see :func:`data_sources.finess.fetch_finess`).
    ``announced_bytes`` is the size a catalogue gives for the file (data.gouv.fr's
    ``filesize``): a smaller file is noted partial (:func:`check_announced_size`).
    """
    path = download_file(url, source=source, offline=offline, refresh=refresh)
    check_not_html(path, url=url, source=source)
    check_announced_size(path, url=url, announced_bytes=announced_bytes)
    yield from iter_file_lines(path)


def check_announced_size(path: Path, *, url: str, announced_bytes: int | None) -> None:
    """Note « partiel » when a file is smaller than its catalogue announces.

    A transfer cut at a line boundary by a server that sent no ``Content-Length`` still
    parses; the size the catalogue records for the resource is the metadata it
    contradicts. A larger file (a newer edition under the same address) is not noted.
    """
    if not announced_bytes or announced_bytes <= 0:
        return
    size = path.stat().st_size
    if size < announced_bytes:
        note_partial(f"fichier {url} de {size} octet(s) reçu(s), {announced_bytes} annoncé(s) "
                     "par le catalogue (transfert coupé ?)")


def check_not_html(path: Path, *, url: str, source: str) -> None:
    """Raise :class:`SourceError` (and drop the copy) when a downloaded file is an HTML page."""
    with path.open("rb") as fh:
        head = fh.read(512).lstrip().lower()
    if head.startswith((b"<!doctype html", b"<html")):
        forget_download(url)
        raise SourceError(
            f"{source}: an HTML page came back from {url} where a data file was expected; "
            "the service may be down, retry later."
        )
