"""What one fetch records beside its answers: refresh, deadlines, update notes, data dates.

Thread-local state of :mod:`data_sources._http`: :func:`refreshing` blocks, the overall
deadline of a source (:func:`source_deadline`), the fallbacks and partial answers of an
update (:func:`update_notes`) and the dates of the data served (:func:`data_dates`), read
by :mod:`data_sources.fetch` for its verdicts and its ledger.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TypeVar, cast

from diagnosis.errors import SOURCE_FAILURES_FR, SourceError

logger = logging.getLogger(__name__)

_state = threading.local()

_T = TypeVar("_T")


@contextlib.contextmanager
def _scoped(name: str, value: _T, *, outside: object = None) -> Iterator[_T]:
    """Set ``name`` of this thread's state to ``value`` for the block, then restore it."""
    before = getattr(_state, name, outside)
    setattr(_state, name, value)
    try:
        yield value
    finally:
        setattr(_state, name, before)


@contextlib.contextmanager
def refreshing(active: bool = True) -> Iterator[None]:
    """Within the block, fetch each URL again once (cached answers and files ignored).

    Used by ``python -m data_sources fetch --refresh``: each URL is fetched from the
    network the first time it is asked for in the block, then served as usual.
    """
    with _scoped("refreshed", set() if active else None):
        yield


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
    with _scoped("deadline", (time.monotonic() + float(seconds), float(seconds), source)):
        yield


def _check_deadline(source: str, full: str) -> float | None:
    """Seconds left before the source's deadline (``None``: no deadline)."""
    dl = getattr(_state, "deadline", None)
    if dl is None:
        return None
    left = dl[0] - time.monotonic()
    if left <= 0:
        raise SourceError(
            f"{source}: overall deadline of {dl[1]:g} s for {dl[2]} exceeded before {full} "
            "answered; the service is too slow, retry later.",
            kind="deadline", source=source, url=full,
            fr=timeout_fr(source, full, dl[1], what="le délai global de la source"))
    return cast("float | None", left)




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
    with _scoped("notes", UpdateNotes()) as notes:
        yield notes


def _iso(when: dt.datetime | str | None) -> str:
    if isinstance(when, str):
        return when
    moment = when or dt.datetime.now(dt.UTC)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def timeout_fr(source: str, url: str, seconds: float | tuple[float, float], *,
               what: str = "le délai d'attente") -> str:
    """French message of a call cut by a timeout (the user's words for what happened).

    Examples
    --------
    >>> timeout_fr("caf", "https://x/a", (10.0, 120.0))
    "caf : https://x/a n'a pas répondu dans le délai d'attente (120 s) : délai dépassé ; \
réessayez plus tard, ou travaillez hors ligne sur le cache ou la démonstration"
    """
    limit = seconds[-1] if isinstance(seconds, tuple) else seconds
    return (f"{source} : {url} n'a pas répondu dans {what} ({limit:g} s) : délai dépassé ; "
            "réessayez plus tard, ou travaillez hors ligne sur le cache ou la démonstration")


def motive_fr(exc: BaseException) -> str:
    """Short French motive of a failed update, from the error's kind (never its text).

    Examples
    --------
    >>> motive_fr(SourceError("demo: HTTP 503 from https://x", kind="http", status=503))
    'réponse HTTP 503'
    >>> motive_fr(SourceError("an HTML page came back", kind="html"))
    'page HTML reçue au lieu des données'
    >>> motive_fr(KeyError("x"))
    'réponse inutilisable'
    """
    if isinstance(exc, SourceError):
        return exc.motive_fr
    return SOURCE_FAILURES_FR["unusable"]


def note_fallback(url: str, when: dt.datetime | str | None, exc: BaseException) -> None:
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
    dates: list[str] = []
    try:
        with _scoped("dates", dates):
            yield dates
    finally:
        dates.sort()


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
