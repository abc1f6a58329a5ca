"""The HTTP cache on disk: SQLite with bounded waits, explicit writes, a full disk survived.

A refused write (full disk, lock held too long, read-only file) turns cache writes off
for the process; :func:`data_sources._http.cache_note` says so in French.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from requests_cache.backends.base import BaseCache
from requests_cache.backends.sqlite import SQLiteCache, SQLiteDict

from data_sources._http_config import DISK_PROBE_BYTES, HttpConfig
from data_sources._http_notes import _scoped, _state

logger = logging.getLogger(__name__)

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
    with _scoped("explicit_write", True, outside=False):
        yield


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
