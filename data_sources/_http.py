"""The only module of Maillage that talks to the network.

By design (STYLE.md) every request, retry, cache write, size and deadline guard and
download goes through this module, so that no loader can bypass them. It is the public
face of the HTTP layer: loaders import ``data_sources._http`` only; the plumbing lives in
private siblings, one topic each:

- :mod:`data_sources._http_config`: defaults, limits and :class:`HttpConfig`;
- :mod:`data_sources._http_session`: the settings, the one cached session, cache writes
  (:func:`deferred_cache`);
- :mod:`data_sources._http_adapter`: rate limits, outbound policy, capped retries;
- :mod:`data_sources._http_cache`: the SQLite cache on disk (bounded waits, full disk);
- :mod:`data_sources._http_notes`: refresh, deadlines, update notes, data dates;
- :mod:`data_sources._http_download`: large files, streamed to the cache folder;
- here: the requests themselves (:func:`fetch_json`, :func:`fetch_text`,
  :func:`fetch_bytes`, :func:`post_multipart_text`, :func:`probe`).

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

Loaders call :func:`fetch_json`, :func:`fetch_text`, :func:`fetch_bytes`,
:func:`post_multipart_text` or :func:`stream_lines`. They detect an HTML error page where
JSON or CSV was expected, and when the body fails to parse (truncated transfer, corrupt
cache entry) they drop the cached copy and fetch once again before giving up with a
:class:`SourceError`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, cast

import requests
from urllib3.exceptions import HTTPError as Urllib3Error
from urllib3.exceptions import ProtocolError, ReadTimeoutError

from data_sources._http_adapter import CappedRetry, HostRateLimiter, build_retry, timed_out
from data_sources._http_cache import CacheWriteError, _explicit_write
from data_sources._http_config import (
    DEFAULT_BODY_DEADLINE_S,
    DEFAULT_EXPIRE_AFTER_S,
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_DOWNLOAD_BYTES,
    DEFAULT_MAX_RETRY_AFTER_S,
    DEFAULT_RATE_LIMITS,
    DEFAULT_SQLITE_TIMEOUT_S,
    DEFAULT_TIMEOUT_S,
    DISK_PROBE_BYTES,
    RETRY_STATUSES,
    USER_AGENT,
    HttpConfig,
    Params,
    default_cache_dir,
)
from data_sources._http_download import (
    DiskFullError,
    check_announced_size,
    check_not_html,
    download_file,
    download_path,
    forget_download,
    iter_file_lines,
    stream_lines,
)
from data_sources._http_notes import (
    UpdateNotes,
    _check_deadline,
    data_dates,
    deadline_left,
    motive_fr,
    note_data_date,
    note_fallback,
    note_partial,
    refresh_requested,
    refreshing,
    source_deadline,
    timeout_fr,
    update_notes,
)
from data_sources._http_session import (
    PendingWrites,
    _save,
    _save_revalidated,
    cache_note,
    configure,
    deferred_cache,
    get_config,
    get_session,
    reset,
    save_validated,
)
from data_sources._outbound import BlockedURLError, check_url
from diagnosis.errors import SourceError

logger = logging.getLogger(__name__)

__all__ = [
    "CacheWriteError",
    "CappedRetry",
    "DEFAULT_BODY_DEADLINE_S",
    "DEFAULT_EXPIRE_AFTER_S",
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_MAX_DOWNLOAD_BYTES",
    "DEFAULT_MAX_RETRY_AFTER_S",
    "DEFAULT_RATE_LIMITS",
    "DEFAULT_SQLITE_TIMEOUT_S",
    "DEFAULT_TIMEOUT_S",
    "DISK_PROBE_BYTES",
    "DiskFullError",
    "HostRateLimiter",
    "HttpConfig",
    "Params",
    "PendingWrites",
    "RETRY_STATUSES",
    "TruncatedError",
    "USER_AGENT",
    "UpdateNotes",
    "build_retry",
    "cache_note",
    "check_announced_size",
    "check_not_html",
    "configure",
    "data_dates",
    "deadline_left",
    "decode_text",
    "default_cache_dir",
    "deferred_cache",
    "download_file",
    "download_path",
    "encode_multipart",
    "fetch_bytes",
    "fetch_json",
    "fetch_text",
    "forget_download",
    "get_config",
    "get_session",
    "iter_file_lines",
    "motive_fr",
    "note_data_date",
    "note_fallback",
    "note_partial",
    "post_multipart_text",
    "probe",
    "refresh_requested",
    "refreshing",
    "reset",
    "save_validated",
    "source_deadline",
    "stream_lines",
    "update_notes",
]


class TruncatedError(ValueError):
    """A transfer ended before the whole body came (Content-Length, broken stream)."""


class HtmlAnswerError(ValueError):
    """An HTML page (a maintenance or error page) came where data was expected."""


def _past_deadline(kind: str) -> str:
    """``"deadline"`` when the source's overall deadline has passed, else ``kind``."""
    left = deadline_left()
    return "deadline" if left is not None and left <= 0 else kind


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
                    "service sent far more than expected, retry later or report it).",
                    kind="too_large", source=source, url=full)
            if time.monotonic() > limit:
                resp.close()
                raise SourceError(
                    f"{source}: {full} sent its answer too slowly ({size} bytes in "
                    f"{deadline_s:g} s, timeout); retry later.",
                    kind="timeout", source=source, url=full,
                    fr=timeout_fr(source, full, deadline_s, what="le délai de lecture"))
    except (ReadTimeoutError, TimeoutError) as exc:
        raise SourceError(
            f"{source}: no answer from {full} within the read timeout (timeout while "
            f"reading, {size} bytes received); retry later.",
            kind="timeout", source=source, url=full,
            fr=timeout_fr(source, full, get_config().timeout_s)) from exc
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
                          kind="offline", source=source, url=url,
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
            kind="unreachable", source=source, url=url,
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
    except requests.RequestException as exc:
        if timed_out(exc):
            raise SourceError(
                f"{source}: no answer from {full} within {cfg.timeout_s} s (timeout: {exc}); "
                "retry later, or work offline from the cache or the demo territory.",
                kind=_past_deadline("timeout"), source=source, url=full,
                fr=timeout_fr(source, full, cfg.timeout_s)) from exc
        if isinstance(exc, requests.exceptions.RetryError):
            raise SourceError(
                f"{source}: {full} kept failing after {cfg.max_retries} retries ({exc}); "
                "retry later, or work offline from the cache or the demo territory.",
                kind=_past_deadline("retries"), source=source, url=full) from exc
        raise SourceError(
            f"{source}: cannot reach {full} ({type(exc).__name__}: {exc}); check the internet "
            "connection, or work offline from the cache or the demo territory.",
            kind=_past_deadline("unreachable"), source=source, url=full) from exc
    from_cache = bool(getattr(resp, "from_cache", False))
    if offline and (not from_cache or resp.status_code == 504):
        raise SourceError(
            f"{source}: offline mode and no cached copy of {full}; connect to the internet "
            "once to fetch it, or use the demo territory.",
            kind="offline", source=source, url=full)
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
            f"{source}: HTTP {resp.status_code} from {full}: {snippet!r}; {hint}.",
            kind="http", status=int(resp.status_code), source=source, url=full)
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
        return _accept(resp, body, kind=kind, convert=convert, check=check)

    def fall_back(exc: Exception, error: SourceError) -> Any:
        """Serve the copy held before, if still good; else raise ``error``."""
        if kept is not None:
            try:
                value = accept(kept, kept.content or b"")
            except (ValueError, KeyError, TypeError):
                pass
            else:
                logger.warning("%s: %s; the copy cached on %s is used", source, error,
                               kept.created_at)
                note_data_date(kept.created_at)
                note_fallback(full, kept.created_at, error)
                return value
        raise error from exc

    for attempt in (1, 2):
        try:
            resp = _request(
                method, url, source=source, params=params, data=data, headers=headers,
                offline=off, force_refresh=refresh or attempt == 2, stream=True,
            )
        except SourceError as exc:  # no answer, an HTTP error: the copy held, said so
            if off or isinstance(exc, BlockedURLError):
                raise  # a refused address is never answered from a copy either
            return fall_back(exc, exc)
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
            if off:
                raise SourceError(
                    f"{source}: the cached copy of {full} is unusable ({exc}) and offline mode "
                    "forbids fetching it again; connect to the internet and retry.",
                    kind="offline", source=source, url=full) from exc
            if attempt == 2:
                return fall_back(exc, _unusable_twice(exc, source=source, full=full))
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


def _accept(resp: Any, body: bytes, *, kind: str, convert: Callable[[bytes], Any],
            check: Callable[[Any], object] | None) -> Any:
    """The value of a whole body, or ``ValueError``: an HTML page, a short body, ``check``."""
    if kind in {"json", "csv"} and _looks_like_html(resp, body):
        raise HtmlAnswerError(
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


def _unusable_twice(exc: Exception, *, source: str, full: str) -> SourceError:
    """The error of an answer refused twice: cut in transfer, an HTML page, or unusable."""
    if isinstance(exc, TruncatedError):
        return SourceError(
            f"{source}: {exc} from {full}, twice; the transfer was cut (the "
            "network or the service is unstable), retry later.",
            kind="truncated", source=source, url=full)
    return SourceError(
        f"{source}: unusable answer from {full} ({exc}), twice; the service may "
        "be down or its format changed; retry later or report it.",
        kind="html" if isinstance(exc, HtmlAnswerError) else "unusable",
        source=source, url=full)


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
