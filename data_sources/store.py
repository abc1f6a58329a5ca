"""The local store: data fetched for a territory, kept on disk with a freshness ledger.

``python -m data_sources fetch --territory CODE`` (:mod:`data_sources.fetch`) writes here;
:func:`data_sources.workspace.load_workspace` reads from here before falling back to the
embedded demo. One folder per territory under the store root::

    <root>/<kind>-<code>/            e.g. epci-200000438
        CURRENT                      name of the snapshot in use (replaced atomically)
        snap-<UTC stamp>-<random>/
            communes.parquet         GeoParquet, needs columns of diagnosis.schema
            facilities.parquet       GeoParquet, facility schema (all sources merged)
            sources/<key>.parquet    what each source gave (to merge again when one fails)
            ledger.json              territory, layers and one row per source

The root is ``$MAILLAGE_STORE_DIR``, else ``<user data dir>/maillage/store``
(``platformdirs``), never inside the installed package.

Writes are atomic: a new snapshot folder is filled completely, then ``CURRENT`` is
replaced by :func:`os.replace`; only then are snapshots older than the previous one
removed. A crash or an error while writing leaves the stored data as it was.

One writer at a time: :func:`store_lock` takes an exclusive lock on
``<root>/.<kind>-<code>.lock``
(``fcntl.flock``, released by the system when the process dies, so a killed fetch never
leaves a stale lock). :func:`data_sources.fetch.fetch_territory` holds it from reading
the previous snapshot to writing the new one; :func:`write_store` takes it when its caller
does not hold it. A second writer waits at most ``timeout_s`` (default
:data:`LOCK_TIMEOUT_S`, 5 s) and then gets a :class:`StoreBusyError` in French naming the
folder and the process holding the lock: it never deletes a snapshot another process is
writing. Under the lock, snapshot folders and ``CURRENT.*.tmp`` files left by a killed
write (neither current nor the previous snapshot) are removed before writing.

A refresh refused as « suspect » is kept apart, beside the snapshots
(``suspect/<key>.parquet`` and ``suspect/<key>.json``, :func:`write_suspect`), so that
``--accept-suspect`` takes exactly that answer, never one read again from a cache.

The ledger has one row per source (:class:`LedgerEntry`): source key, URL, vintage,
``fetched_at`` (UTC ISO time of the data held), ``attempted_at`` (last attempt), rows kept
and rejected, status (:data:`STATUSES`) and the French error message of a failure.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import json
import logging
import os
import re
import secrets
import shutil
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, cast

import geopandas as gpd
import pandas as pd
import pyarrow.parquet as pq

from diagnosis.errors import InputError, SourceError
from diagnosis.schema import NEEDS_COLUMNS, Territory, validate_facilities
from diagnosis.settings import WGS84

logger = logging.getLogger(__name__)

#: Environment variable naming the store root.
STORE_ENV = "MAILLAGE_STORE_DIR"
#: Bump when the snapshot layout changes (older snapshots are then refused).
STORE_FORMAT = 1
#: Status of a source in the ledger, with its French label.
STATUSES: dict[str, str] = {
    "ok": "à jour",
    "failed": "échec",
    "missing-offline": "hors ligne, sans copie",
    "skipped": "rien à faire",
    "suspect": "suspect, données précédentes gardées",
    "partial": "partiel",
    "timeout": "non terminée (délai global dépassé)",
}
#: Seconds a second writer waits for the lock of a territory before giving up.
LOCK_TIMEOUT_S = 5.0
_LOCK_NAME = ".lock"
_SNAPSHOT_RE = re.compile(r"^snap-[0-9TZ]+-[0-9a-f]+$")
_KEY_RE = re.compile(r"^[a-z0-9_]+$")


def default_store_dir() -> Path:
    """Return the store root: ``$MAILLAGE_STORE_DIR``, else the user data folder.

    Uses ``platformdirs`` (``~/.local/share/maillage/store`` on Linux), else
    ``~/.local/share/maillage/store``.
    """
    env = os.environ.get(STORE_ENV, "").strip()
    if env:
        return Path(env).expanduser()
    try:
        import platformdirs
    except ImportError:  # pragma: no cover - platformdirs ships with pip and requests-cache
        return Path.home() / ".local" / "share" / "maillage" / "store"
    return Path(platformdirs.user_data_dir("maillage")) / "store"


class StoreBusyError(SourceError):
    """Another process is writing the same territory of the store (the lock is held)."""


class StoreWriteError(SourceError):
    """The disk refused a store write (full disk, read-only folder…); nothing changed."""


_held_lock = threading.local()


def _held() -> dict[str, int]:
    if not hasattr(_held_lock, "paths"):
        _held_lock.paths = {}
    paths: dict[str, int] = _held_lock.paths
    return paths


def _try_lock(fd: int) -> bool:
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined]
        except OSError:
            return False
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _unlock(fd: int) -> None:
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        import msvcrt

        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)  # type: ignore[attr-defined]
        return
    fcntl.flock(fd, fcntl.LOCK_UN)


@contextlib.contextmanager
def store_lock(
    territory: Territory | str,
    *,
    root: str | Path | None = None,
    timeout_s: float = LOCK_TIMEOUT_S,
) -> Iterator[Path]:
    """Hold the write lock of a territory's store folder (one writer at a time).

    Re-entrant within a thread. The lock is an ``flock`` on ``<root>/.<kind>-<code>.lock``:
    the system drops it when the holding process dies.

    Parameters
    ----------
    territory
        Resolved territory, or a code or name to resolve.
    root
        Store root (default :func:`default_store_dir`).
    timeout_s
        Seconds to wait for another writer to finish (0: do not wait).

    Yields
    ------
    pathlib.Path
        The territory folder (created if needed).

    Raises
    ------
    StoreBusyError
        Another process still holds the lock after ``timeout_s`` seconds.
    """
    folder = store_path(territory, root=root)
    key = str(folder.absolute())
    held = _held()
    if key in held:
        held[key] += 1
        try:
            yield folder
        finally:
            held[key] -= 1
        return
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        key = str(folder.absolute())
        fd = os.open(folder.parent / f".{folder.name}{_LOCK_NAME}", os.O_RDWR | os.O_CREAT,
                     0o644)
    except OSError as exc:
        raise StoreWriteError(_write_error_fr(folder, exc)) from exc
    try:
        deadline = time.monotonic() + max(float(timeout_s), 0.0)
        while not _try_lock(fd):
            if time.monotonic() >= deadline:
                try:
                    holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip()
                except OSError:  # pragma: no cover - unreadable lock file
                    holder = ""
                who = f" (processus {holder})" if holder.isdigit() else ""
                raise StoreBusyError(
                    f"Stock local : une autre mise à jour de ce territoire est en cours"
                    f"{who} dans {str(folder)!r} ; attendez qu'elle se termine puis "
                    f"relancez (attente maximale : {timeout_s:g} s)."
                )
            time.sleep(0.05)
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        except OSError:  # pragma: no cover - the pid is informative only
            pass
        held[key] = 1
        try:
            yield folder
        finally:
            del held[key]
            _unlock(fd)
    finally:
        os.close(fd)


def _write_error_fr(where: Path, exc: OSError) -> str:
    reason = {
        errno.ENOSPC: "le disque est plein",
        errno.EDQUOT: "le quota de disque est dépassé",
        errno.EACCES: "l'écriture est refusée (droits)",
        errno.EROFS: "le disque est en lecture seule",
    }.get(exc.errno or 0, f"erreur système {exc.errno} : {exc.strerror or exc}")
    return (
        f"Stock local : impossible d'écrire dans {str(where)!r} ({reason}). Les données "
        "déjà enregistrées sont intactes ; libérez de la place ou choisissez un autre "
        f"dossier (variable {STORE_ENV}) puis relancez."
    )


def _territory(territory: Territory | str) -> Territory:
    if isinstance(territory, Territory):
        return territory
    from data_sources.cog import resolve

    return resolve(str(territory))


def store_path(territory: Territory | str, *, root: str | Path | None = None) -> Path:
    """Folder of a territory in the store (it may not exist yet).

    Parameters
    ----------
    territory
        Resolved territory, or a code or name to resolve.
    root
        Store root (default :func:`default_store_dir`).

    Returns
    -------
    pathlib.Path
        ``<root>/<kind>-<code>``, e.g. ``…/store/epci-200000438``.
    """
    t = _territory(territory)
    if not re.fullmatch(r"[0-9A-Za-z]+", t.code):
        raise InputError(f"territory.code={t.code!r} cannot name a store folder")
    base = Path(root).expanduser() if root is not None else default_store_dir()
    return base / f"{t.kind}-{t.code}"


def utc_now() -> str:
    """Current UTC time in ISO 8601, to the second (``2026-03-01T12:00:00Z``)."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class LedgerEntry:
    """One row of the freshness ledger.

    Attributes
    ----------
    source
        Registry key (``finess``, ``insee_melodi``…).
    title
        French title of the source.
    url
        Where the data came from.
    vintage
        Vintage of the data held (``"2024"``, FINESS extraction date…), empty if none.
    fetched_at
        UTC ISO time the data held in the store was fetched; empty when none is held.
    attempted_at
        UTC ISO time of the last attempt.
    status
        Outcome of the last attempt, a key of :data:`STATUSES`.
    rows_kept, rows_rejected
        Rows held in the store for this source, and rows dropped (no usable position…).
    rows_received
        Rows the last attempt gave when it was refused as ``"suspect"`` (far fewer rows
        than held, an empty series…: the held rows were kept); 0 otherwise.
    error
        French message of the last failure (empty unless ``status`` is ``"failed"``,
        ``"missing-offline"`` or ``"timeout"``).
    note
        French remark: partial data (some series failed), or why nothing was done.
    """

    source: str
    title: str
    url: str
    vintage: str = ""
    fetched_at: str = ""
    attempted_at: str = ""
    status: str = "ok"
    rows_kept: int = 0
    rows_rejected: int = 0
    error: str = ""
    note: str = ""
    rows_received: int = 0

    def __post_init__(self) -> None:
        """Check the status and the source key."""
        if self.status not in STATUSES:
            raise InputError(
                f"status={self.status!r} for source {self.source!r}; use one of {list(STATUSES)}"
            )
        if not _KEY_RE.match(self.source):
            raise InputError(f"source={self.source!r} is not a registry key")

    @property
    def has_data(self) -> bool:
        """Whether the store holds data of this source (this attempt's or an earlier one)."""
        return bool(self.fetched_at)

    @classmethod
    def from_dict(cls, row: Mapping[str, Any]) -> LedgerEntry:
        """Build an entry from a JSON row (unknown keys ignored)."""
        names = {f.name for f in fields(cls)}
        values = {k: v for k, v in row.items() if k in names}
        for k in ("rows_kept", "rows_rejected", "rows_received"):
            values[k] = int(values.get(k) or 0)
        return cls(**values)


#: Ledger columns in order (the fields of :class:`LedgerEntry`).
LEDGER_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(LedgerEntry))
#: French headers of the ledger table shown to users.
LEDGER_LABELS: dict[str, str] = {
    "title": "Source",
    "status": "État",
    "vintage": "Millésime",
    "fetched_at": "Données du (UTC)",
    "attempted_at": "Dernière tentative (UTC)",
    "rows_kept": "Lignes gardées",
    "rows_rejected": "Lignes rejetées",
    "rows_received": "Lignes reçues (suspect)",
    "error": "Motif de l'échec",
    "note": "Remarque",
    "url": "Adresse",
}


@dataclass(frozen=True)
class StoredTerritory:
    """What the store holds for one territory.

    Attributes
    ----------
    path
        The snapshot folder read.
    territory
        Kind, code and name of the territory, as written.
    written_at
        UTC ISO time of the write.
    communes
        Communes with the needs columns (GeoParquet), or ``None`` when not stored.
    facilities
        Facilities of all sources, merged, in the schema, or ``None`` when not stored.
    ledger
        One :class:`LedgerEntry` per source.
    source_layers
        What each source gave (key -> table), only when read with
        ``with_source_layers=True``.
    """

    path: Path
    territory: Mapping[str, str]
    written_at: str
    communes: gpd.GeoDataFrame | None
    facilities: gpd.GeoDataFrame | None
    ledger: tuple[LedgerEntry, ...]
    source_layers: Mapping[str, pd.DataFrame] = field(default_factory=dict)

    @property
    def has_data(self) -> bool:
        """Whether communes or facilities are stored."""
        return self.communes is not None or self.facilities is not None

    def entry(self, source: str) -> LedgerEntry | None:
        """The ledger row of ``source`` (``None`` when the source never ran)."""
        return next((e for e in self.ledger if e.source == source), None)


def _current_snapshot(folder: Path) -> Path | None:
    current = folder / "CURRENT"
    if not current.is_file():
        return None
    name = current.read_text(encoding="utf-8").strip()
    if not _SNAPSHOT_RE.match(name):
        raise SourceError(
            f"store: {str(current)!r} names {name!r}, not a snapshot; delete the folder "
            f"{str(folder)!r} and fetch again (python -m data_sources fetch)."
        )
    snap = folder / name
    if not snap.is_dir():
        raise SourceError(
            f"store: snapshot {str(snap)!r} named by CURRENT is missing; delete the folder "
            f"{str(folder)!r} and fetch again (python -m data_sources fetch)."
        )
    return snap


def _read_table(path: Path) -> pd.DataFrame:
    meta = pq.read_schema(path).metadata or {}
    if b"geo" in meta:
        return cast("pd.DataFrame", gpd.read_parquet(path))
    return pd.read_parquet(path)


def _check_communes(communes: gpd.GeoDataFrame, *, where: str) -> gpd.GeoDataFrame:
    missing = [c for c in (*NEEDS_COLUMNS, "geometry") if c not in communes.columns]
    if missing:
        raise InputError(
            f"{where}: communes lack columns {missing}; expected the needs columns of "
            "diagnosis.schema.NEEDS_COLUMNS and a geometry."
        )
    if communes.crs is None:
        raise InputError(f"{where}: communes have no CRS; EPSG:4326 expected.")
    bad = ~communes["code_insee"].astype(str).str.fullmatch(r"\d{5}|2[AB]\d{3}")
    if bad.any():
        codes = communes.loc[bad, "code_insee"].head().tolist()
        raise InputError(f"{where}: invalid code_insee values {codes!r}")
    out = communes.to_crs(WGS84) if not communes.crs.equals(WGS84) else communes.copy()
    out["code_insee"] = out["code_insee"].astype(str).astype(object)
    return out


def read_store(
    territory: Territory | str,
    *,
    root: str | Path | None = None,
    with_source_layers: bool = False,
) -> StoredTerritory | None:
    """Read what the store holds for a territory.

    Parameters
    ----------
    territory
        Resolved territory, or a code or name to resolve.
    root
        Store root (default :func:`default_store_dir`).
    with_source_layers
        Also read each source's own table (needed to merge again after a partial fetch).

    Returns
    -------
    StoredTerritory or None
        ``None`` when nothing was ever stored for the territory.

    Raises
    ------
    diagnosis.errors.SourceError
        The stored files are unreadable or of another format: the message names the
        folder and says to delete it and fetch again.
    """
    folder = store_path(territory, root=root)
    snap = _current_snapshot(folder)
    if snap is None:
        return None
    try:
        meta = json.loads((snap / "ledger.json").read_text(encoding="utf-8"))
        if not isinstance(meta, dict):
            raise ValueError(f"ledger.json holds a {type(meta).__name__}, not an object")
        if int(meta.get("format", 0)) != STORE_FORMAT:
            raise ValueError(f"format {meta.get('format')!r}, expected {STORE_FORMAT}")
        ledger = tuple(LedgerEntry.from_dict(r) for r in meta.get("sources", []))
        communes = facilities = None
        if (snap / "communes.parquet").is_file():
            communes = _check_communes(gpd.read_parquet(snap / "communes.parquet"),
                                       where=str(snap / "communes.parquet"))
        if (snap / "facilities.parquet").is_file():
            facilities = validate_facilities(gpd.read_parquet(snap / "facilities.parquet"),
                                             source=str(snap / "facilities.parquet"))
        layers: dict[str, pd.DataFrame] = {}
        if with_source_layers and (snap / "sources").is_dir():
            for p in sorted((snap / "sources").glob("*.parquet")):
                layers[p.stem] = _read_table(p)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise SourceError(
            f"store: {str(snap)!r} is unreadable ({type(exc).__name__}: {exc}); delete the "
            f"folder {str(folder)!r} and fetch again (python -m data_sources fetch)."
        ) from exc
    return StoredTerritory(
        path=snap, territory=dict(meta.get("territory", {})),
        written_at=str(meta.get("written_at", "")), communes=communes, facilities=facilities,
        ledger=ledger, source_layers=layers,
    )


def read_source_layer(stored: StoredTerritory, key: str) -> pd.DataFrame | None:
    """What source ``key`` gave in a stored snapshot (``None`` when it gave nothing).

    Raises
    ------
    SourceError
        The table exists but is unreadable (the message names the file).
    """
    if key in stored.source_layers:
        return stored.source_layers[key]
    path = stored.path / "sources" / f"{key}.parquet"
    if not path.is_file():
        return None
    try:
        return _read_table(path)
    except (OSError, ValueError) as exc:
        raise SourceError(f"store: {str(path)!r} is unreadable ({exc}); fetch the source "
                          "again (python -m data_sources fetch --source ...)") from exc


def _write_table(frame: pd.DataFrame, path: Path) -> None:
    out = frame.copy()
    out.attrs = {}  # attrs may hold tables (unplaced rows): not serialisable, not data
    out.to_parquet(path)


def write_store(
    territory: Territory,
    *,
    ledger: Iterable[LedgerEntry],
    communes: gpd.GeoDataFrame | None = None,
    facilities: gpd.GeoDataFrame | None = None,
    source_layers: Mapping[str, pd.DataFrame] | None = None,
    root: str | Path | None = None,
    lock_timeout_s: float = LOCK_TIMEOUT_S,
) -> Path:
    """Write a new snapshot of a territory atomically and make it the current one.

    Parameters
    ----------
    territory
        The resolved territory.
    ledger
        One entry per source.
    communes
        Communes with :data:`~diagnosis.schema.NEEDS_COLUMNS` and polygons (``None``:
        not stored, the demo or nothing is used instead).
    facilities
        Facilities in the schema (``None``: not stored).
    source_layers
        Each source's own table, by registry key.
    root
        Store root (default :func:`default_store_dir`).
    lock_timeout_s
        Seconds to wait when another process writes the same territory.

    Returns
    -------
    pathlib.Path
        The new snapshot folder.

    Raises
    ------
    diagnosis.errors.InputError
        A layer breaks the schema (nothing is written).
    StoreWriteError
        The disk refused the write (French message); the previous snapshot stays current.
    StoreBusyError
        Another process holds the lock of the territory.
    """
    entries = tuple(ledger)
    com = _check_communes(communes, where="write_store") if communes is not None else None
    fac = validate_facilities(facilities, source="write_store") if facilities is not None else None
    layers = dict(source_layers or {})
    for key in layers:
        if not _KEY_RE.match(key):
            raise InputError(f"source_layers has key {key!r}; use registry keys")
    with store_lock(territory, root=root, timeout_s=lock_timeout_s) as folder:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            snap = _write_snapshot(folder, territory, entries, com, fac, layers)
        except OSError as exc:
            raise StoreWriteError(_write_error_fr(folder, exc)) from exc
    logger.info("store: %s written (%s)", snap, territory.label)
    return snap


def _clean_leftovers(folder: Path, keep: set[str]) -> None:
    """Remove what a killed write left (call under the lock only)."""
    for t in folder.glob("CURRENT.*.tmp"):
        t.unlink(missing_ok=True)
    for old in folder.glob("snap-*"):
        if old.name not in keep and old.is_dir():
            shutil.rmtree(old, ignore_errors=True)


def _write_snapshot(
    folder: Path,
    territory: Territory,
    entries: tuple[LedgerEntry, ...],
    com: gpd.GeoDataFrame | None,
    fac: gpd.GeoDataFrame | None,
    layers: dict[str, pd.DataFrame],
) -> Path:
    previous = (folder / "CURRENT").read_text(encoding="utf-8").strip() if (
        folder / "CURRENT").is_file() else ""
    _clean_leftovers(folder, {previous})
    written_at = utc_now()
    stamp = written_at.replace("-", "").replace(":", "")
    snap = folder / f"snap-{stamp}-{secrets.token_hex(4)}"
    snap.mkdir()
    try:
        if com is not None:
            _write_table(com, snap / "communes.parquet")
        if fac is not None:
            _write_table(fac, snap / "facilities.parquet")
        if layers:
            (snap / "sources").mkdir()
            for key, table in layers.items():
                _write_table(table, snap / "sources" / f"{key}.parquet")
        meta = {
            "format": STORE_FORMAT,
            "territory": {"kind": territory.kind, "code": territory.code,
                          "name": territory.name},
            "written_at": written_at,
            "layers": {"communes": com is not None, "facilities": fac is not None,
                       "sources": sorted(layers)},
            "sources": [asdict(e) for e in entries],
        }
        with open(snap / "ledger.json", "w", encoding="utf-8") as fh:
            json.dump(meta, fh, ensure_ascii=False, indent=2)
            fh.flush()
            os.fsync(fh.fileno())
        tmp = folder / f"CURRENT.{secrets.token_hex(4)}.tmp"
        tmp.write_text(snap.name + "\n", encoding="utf-8")
        os.replace(tmp, folder / "CURRENT")
    except BaseException:
        shutil.rmtree(snap, ignore_errors=True)
        for t in folder.glob("CURRENT.*.tmp"):
            t.unlink(missing_ok=True)
        raise
    _clean_leftovers(folder, {snap.name, previous})
    return snap


def ledger_table(ledger: Iterable[LedgerEntry]) -> pd.DataFrame:
    """The ledger as a table with French headers (:data:`LEDGER_LABELS`) and statuses.

    Examples
    --------
    >>> e = LedgerEntry("bpe", "BPE", "https://insee.fr", vintage="2024", status="ok")
    >>> ledger_table([e])[["Source", "État", "Millésime"]].values.tolist()
    [['BPE', 'à jour', '2024']]
    """
    rows = [asdict(e) for e in ledger]
    df = pd.DataFrame(rows, columns=list(LEDGER_COLUMNS))
    df["status"] = df["status"].map(STATUSES)
    return df[list(LEDGER_LABELS)].rename(columns=LEDGER_LABELS)


# --- suspect answers, kept apart ------------------------------------------------------------


def _suspect_dir(territory: Territory | str, root: str | Path | None) -> Path:
    return store_path(territory, root=root) / "suspect"


def write_suspect(
    territory: Territory,
    key: str,
    layer: pd.DataFrame,
    *,
    meta: Mapping[str, Any],
    unplaced: pd.DataFrame | None = None,
    root: str | Path | None = None,
) -> Path:
    """Keep apart an answer refused as suspect, for ``--accept-suspect`` to take later.

    Parameters
    ----------
    territory
        The resolved territory (call it under :func:`store_lock`).
    key
        Registry key of the source.
    layer
        The refused table.
    meta
        JSON-serialisable facts (``received_at``, ``rows_received``, ``rows_held``,
        ``reason``, ``vintage``, ``data_date``…).
    unplaced
        Rows of the answer without a position (for the geocoder), if any.

    Returns
    -------
    pathlib.Path
        The table written (it replaces an older suspect answer of the same source).

    Raises
    ------
    StoreWriteError
        The disk refused the write (French message).
    """
    if not _KEY_RE.match(key):
        raise InputError(f"key={key!r} is not a registry key")
    folder = _suspect_dir(territory, root)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        token = secrets.token_hex(4)
        tmp_table = folder / f".{key}.{token}.parquet"
        _write_table(layer, tmp_table)
        if unplaced is not None and len(unplaced):
            tmp_unplaced = folder / f".{key}.{token}.unplaced.parquet"
            _write_table(unplaced, tmp_unplaced)
            os.replace(tmp_unplaced, folder / f"{key}.unplaced.parquet")
        else:
            (folder / f"{key}.unplaced.parquet").unlink(missing_ok=True)
        os.replace(tmp_table, folder / f"{key}.parquet")
        tmp_meta = folder / f".{key}.{token}.json"
        tmp_meta.write_text(json.dumps(dict(meta), ensure_ascii=False, indent=2),
                            encoding="utf-8")
        os.replace(tmp_meta, folder / f"{key}.json")
    except OSError as exc:
        for t in folder.glob(f".{key}.*"):
            t.unlink(missing_ok=True)
        raise StoreWriteError(_write_error_fr(folder, exc)) from exc
    return folder / f"{key}.parquet"


def read_suspect(
    territory: Territory | str, key: str, *, root: str | Path | None = None
) -> tuple[pd.DataFrame, pd.DataFrame | None, dict[str, Any]] | None:
    """The suspect answer of ``key`` kept apart: (table, unplaced rows, facts), or ``None``.

    Raises
    ------
    SourceError
        The files exist but cannot be read (the message names them).
    """
    folder = _suspect_dir(territory, root)
    table, facts = folder / f"{key}.parquet", folder / f"{key}.json"
    if not (table.is_file() and facts.is_file()):
        return None
    try:
        meta = json.loads(facts.read_text(encoding="utf-8"))
        layer = _read_table(table)
        extra = folder / f"{key}.unplaced.parquet"
        unplaced = _read_table(extra) if extra.is_file() else None
    except (OSError, ValueError) as exc:
        raise SourceError(
            f"store: the suspect answer {str(table)!r} is unreadable ({exc}); fetch the "
            "source again (python -m data_sources fetch --source ...)."
        ) from exc
    return layer, unplaced, dict(meta) if isinstance(meta, dict) else {}


def drop_suspect(territory: Territory | str, key: str, *, root: str | Path | None = None) -> None:
    """Forget the suspect answer of ``key`` kept apart (accepted, or superseded)."""
    folder = _suspect_dir(territory, root)
    for name in (f"{key}.json", f"{key}.parquet", f"{key}.unplaced.parquet"):
        (folder / name).unlink(missing_ok=True)
