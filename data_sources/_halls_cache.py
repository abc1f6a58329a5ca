"""The town-hall points of every commune of France, kept in the cache folder once computed.

:func:`data_sources.workspace.import_town_halls` checks and places an imported facility
file against the reference point of every commune of France. Most of them are columns of
the shipped geography, but a few communes have none and get a point inside their polygon,
which meant reading their département's polygons and reprojecting them on every import
(about 0.1 s of a command). The points are the same until the geography changes: they
are stored once as ``.npz`` (codes, longitudes, latitudes; no pickled objects) under the
cache folder, named after a hash of the geography file's bytes (two installs sharing a
cache folder share the file; a changed geography gets its own), and read back as the
very same numbers. A cache that cannot be read is computed again; one that cannot
be written costs the computation, nothing else.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from data_sources._cache_paths import cache_root

logger = logging.getLogger(__name__)

#: Bumped when the points are computed differently (older files are then ignored).
_VERSION = 1
_PREFIX = "town_halls-"


def _path(source: Path) -> Path:
    """The cache file of the points derived from ``source`` (a hash of its bytes in the name).

    The bytes, not the modification time: a copy or a checkout of the same geography
    finds the same points (6 MB hashed in about 5 ms).
    """
    digest = hashlib.blake2b(source.read_bytes(), digest_size=16).hexdigest()
    return cache_root() / "geography" / f"{_PREFIX}v{_VERSION}-{digest}.npz"


def read_points(source: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """``(codes, lon, lat)`` stored for ``source``, or ``None`` when absent or unreadable.

    Codes come back as Python text (object array), coordinates as float64 (NaN: the
    commune has no point).
    """
    try:
        with np.load(_path(source), allow_pickle=False) as data:
            codes, lon, lat = data["code"], data["lon"], data["lat"]
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile):
        return None
    if (codes.ndim != 1 or codes.dtype.kind != "U" or lon.shape != codes.shape
            or lat.shape != codes.shape or lon.dtype != np.float64 or lat.dtype != np.float64):
        return None
    return codes.astype(object), lon, lat


def write_points(source: Path, codes: np.ndarray, lon: np.ndarray, lat: np.ndarray) -> None:
    """Store the points of ``source`` atomically (best effort: a failure is only logged)."""
    try:
        path = _path(source)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                np.savez(fh, code=np.asarray(codes, dtype=str),
                         lon=np.asarray(lon, dtype=np.float64),
                         lat=np.asarray(lat, dtype=np.float64))
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
        for old in path.parent.glob(f"{_PREFIX}*.npz"):  # an older geography's points
            if old != path:
                old.unlink(missing_ok=True)
    except OSError as exc:
        logger.debug("town-hall points not cached (%s)", exc)
