"""Large files: streamed, size- and time-bounded downloads to the cache folder, read by line.

A download is written beside its final path and renamed into place (never a half file);
inside :func:`data_sources._http.deferred_cache` it waits for its source's verdict; a full
cache folder sends it to a scratch folder for the run (:class:`DiskFullError`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import requests
from urllib3.exceptions import ProtocolError, ReadTimeoutError

from data_sources._http_adapter import timed_out
from data_sources._http_cache import _DISK_REASONS_FR, _cache_off, _turn_cache_off
from data_sources._http_notes import (
    _check_deadline,
    _state,
    note_data_date,
    note_fallback,
    note_partial,
    refresh_requested,
    timeout_fr,
)
from data_sources._http_session import PendingWrites, get_config, get_session
from data_sources._outbound import (
    BlockedURLError,
)
from diagnosis.errors import SourceError

logger = logging.getLogger(__name__)

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
            "internet once to fetch it, or use the demo territory.",
            kind="offline", source=source, url=url)
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
                raise SourceError(f"{source}: HTTP {resp.status_code} from {url}; retry later.",
                                  kind="http", status=int(resp.status_code), source=source,
                                  url=url)
            declared = resp.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > cfg.max_download_bytes:
                raise SourceError(
                    f"{source}: {url} announces {declared} bytes, more than the limit of "
                    f"{cfg.max_download_bytes}; refused, report it.",
                    kind="too_large", source=source, url=url)
            size = 0
            limit = time.monotonic() + deadline_s
            with tmp.open("wb") as fh:
                for chunk in _iter_raw(resp, chunk_bytes):
                    fh.write(chunk)
                    size += len(chunk)
                    if size > cfg.max_download_bytes:
                        raise SourceError(
                            f"{source}: download of {url} exceeds {cfg.max_download_bytes} "
                            "bytes; refused, report it.",
                            kind="too_large", source=source, url=url)
                    if time.monotonic() > limit:
                        raise SourceError(
                            f"{source}: {url} sends too slowly ({size} bytes in "
                            f"{deadline_s:g} s, timeout); retry later.",
                            kind="timeout", source=source, url=url,
                            fr=timeout_fr(source, url, deadline_s,
                                          what="le délai de téléchargement"))
            if declared.isdigit() and not resp.headers.get("Content-Encoding") and (
                int(declared) != size
            ):
                raise SourceError(
                    f"{source}: truncated download of {url}: {size} bytes received, "
                    f"{declared} announced; retry later.",
                    kind="truncated", source=source, url=url)
        with tmp.open("rb") as fh:
            head = fh.read(512).lstrip().lower()
        if head.startswith((b"<!doctype html", b"<html")) and not url.lower().endswith(
                (".html", ".htm")):
            raise SourceError(  # checked before the copy held is replaced
                f"{source}: an HTML page came back from {url} where a data file was "
                "expected; the service may be down, retry later.",
                kind="html", source=source, url=url)
        os.replace(tmp, path)
    except (ReadTimeoutError, TimeoutError) as exc:
        raise SourceError(
            f"{source}: no answer from {url} within {cfg.timeout_s} s while downloading "
            "(timeout); retry later.",
            kind="timeout", source=source, url=url,
            fr=timeout_fr(source, url, cfg.timeout_s)) from exc
    except (requests.exceptions.ChunkedEncodingError, ProtocolError) as exc:
        raise SourceError(
            f"{source}: truncated download of {url}: the transfer was cut ({exc}); retry later.",
            kind="truncated", source=source, url=url) from exc
    except requests.RequestException as exc:
        if timed_out(exc):
            raise SourceError(
                f"{source}: no answer from {url} within {cfg.timeout_s} s (timeout); retry "
                "later.", kind="timeout", source=source, url=url,
                fr=timeout_fr(source, url, cfg.timeout_s)) from exc
        raise SourceError(
            f"{source}: download of {url} failed ({type(exc).__name__}: {exc}); retry later, "
            "or work offline from the cache or the demo territory.",
            kind="unreachable", source=source, url=url) from exc
    except OSError as exc:
        kind = DiskFullError if exc.errno in _DISK_REASONS_FR else SourceError
        raise kind(
            f"{source}: cannot write the download of {url} to {str(path.parent)!r} "
            f"({exc.strerror or exc}); free some disk space and retry.",
            kind="disk", source=source, url=url) from exc
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
            "the service may be down, retry later.",
            kind="html", source=source, url=url)
