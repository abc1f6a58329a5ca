"""The process-wide settings and cached session of the HTTP layer, and its cache writes.

:func:`get_config` / :func:`configure` / :func:`reset` hold the settings; :func:`get_session`
builds the one :class:`requests_cache.CachedSession` (adapter of
:mod:`data_sources._http_adapter`, backend of :mod:`data_sources._http_cache`). Validated
answers are written by :func:`_save`, at once or, inside :func:`deferred_cache`, once the
whole source is judged.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import requests
import requests_cache

from data_sources._http_adapter import _LimitedAdapter, _limiter, build_retry
from data_sources._http_cache import _cache_off, _explicit_write, _open_cache
from data_sources._http_config import (
    _URLS_EXPIRE_AFTER,
    USER_AGENT,
    HttpConfig,
    _env_offline,
    default_cache_dir,
)
from data_sources._http_notes import _scoped, _state
from data_sources._outbound import OutboundPolicy, hosts_from_env

logger = logging.getLogger(__name__)

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
    pending = PendingWrites()
    try:
        with _scoped("pending", pending):
            yield pending
    finally:
        pending.discard()  # no-op once committed
