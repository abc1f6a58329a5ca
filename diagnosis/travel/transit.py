"""Public transport at the hour of the groups: walking with a pushchair + GTFS timetables.

The ``transit`` engine (:class:`TransitEngine`) answers "leaving home on the study date
at the departure hour, when does a parent with a pushchair arrive?": earliest arrival,
waiting at the stop included, with at most ``max_transfers`` transfers and at most
``max_walk_min`` minutes of walk to a stop. It returns the same
:class:`~diagnosis.travel.times.TravelTimes` as the road and crow-fly engines.

The router is `ferrobus <https://pypi.org/project/ferrobus/>`_ (RAPTOR in Rust, MIT /
Apache-2.0). What it does not do is handled here and in :mod:`data_sources.gtfs`:

- it ignores ``start_date``/``end_date``, needs ``calendar.txt``, reads only exact
  ``HH:MM:SS`` and ignores ``frequencies.txt``: the loader writes, for the study date
  only, a feed whose trips all run that day, with normalised times and expanded
  frequencies;
- it walks on steps at a fixed 1.4 m/s: the loader gives it the street network without
  ``highway=steps``, and the whole walking world (streets, stops, points) is scaled by
  ``1.4 / pushchair speed`` around the territory (:class:`WalkScale`), so that every
  walking leg it times (access, transfers, egress) takes the pushchair's time while the
  timetables stay as published. Rough and steep ways are not slowed in this engine (they
  are in the ``poussette`` engine).

See Also
--------
guides/transports.md : what to download, what the figures mean (in French).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from diagnosis.errors import InputError
from diagnosis.schema import ENGINE_TRANSIT
from diagnosis.study_calendar import french_date, french_hour
from diagnosis.travel._common import as_xy, fr_number
from diagnosis.travel.isochrones import reached_area
from diagnosis.travel.modes import POUSSETTE_SPEED_KMH
from diagnosis.travel.times import TravelTimes, pairs_to_csr

#: ferrobus's fixed walking speed (m/s).
FERROBUS_WALK_MS = 1.4
DEFAULT_MAX_WALK_MIN = 15.0
DEFAULT_MAX_TRANSFERS = 2


@dataclass(frozen=True)
class WalkScale:
    """Scaling of the walking world around a centre, so ferrobus walks at our speed.

    Points are projected on an azimuthal equidistant plane centred on
    ``(lon0, lat0)``, their distances to the centre multiplied by ``factor``, and
    projected back; every distance between two points of a territory is then
    multiplied by ``factor`` (to well under 0.1 % at 50 km from the centre).

    Examples
    --------
    >>> s = WalkScale(-1.68, 48.11, 1.4)
    >>> lon, lat = s.forward(np.array([-1.67]), np.array([48.11]))
    >>> back = s.inverse(lon, lat)
    >>> round(float(back[0][0]), 9), round(float(back[1][0]), 9)
    (-1.67, 48.11)
    """

    lon0: float
    lat0: float
    factor: float

    def _transformers(self) -> tuple[Any, Any]:
        from pyproj import Transformer

        aeqd = f"+proj=aeqd +lat_0={self.lat0} +lon_0={self.lon0} +datum=WGS84 +units=m"
        return (Transformer.from_crs("EPSG:4326", aeqd, always_xy=True),
                Transformer.from_crs(aeqd, "EPSG:4326", always_xy=True))

    def forward(self, lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Move WGS84 points into the scaled walking world."""
        to, back = self._transformers()
        x, y = to.transform(np.asarray(lon, float), np.asarray(lat, float))
        out = back.transform(np.asarray(x) * self.factor, np.asarray(y) * self.factor)
        return np.asarray(out[0]), np.asarray(out[1])

    def inverse(self, lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Bring scaled points back to WGS84."""
        to, back = self._transformers()
        x, y = to.transform(np.asarray(lon, float), np.asarray(lat, float))
        out = back.transform(np.asarray(x) / self.factor, np.asarray(y) / self.factor)
        return np.asarray(out[0]), np.asarray(out[1])


def walk_scale_for(lon0: float, lat0: float, *, walk_speed_kmh: float) -> WalkScale:
    """The :class:`WalkScale` that makes ferrobus walk at ``walk_speed_kmh``.

    Examples
    --------
    >>> walk_scale_for(0.0, 45.0, walk_speed_kmh=3.6).factor
    1.4
    """
    if not (math.isfinite(walk_speed_kmh) and walk_speed_kmh > 0):
        raise InputError(f"walk_speed_kmh={walk_speed_kmh!r} must be > 0",
                         argument="walk_speed_kmh", value=walk_speed_kmh)
    return WalkScale(float(lon0), float(lat0), round(FERROBUS_WALK_MS / (walk_speed_kmh / 3.6), 9))


def _ferrobus() -> Any:
    try:
        import ferrobus
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ImportError("the transit engine needs ferrobus: pip install ferrobus==0.2.1"
                          ) from exc
    return ferrobus


@dataclass(frozen=True, eq=False)
class TransitEngine:
    """Earliest arrivals by public transport from a departure time (see the module).

    Build it with :func:`build_transit_engine` (or ``data_sources.transit``).

    Attributes
    ----------
    model
        The ferrobus ``TransitModel`` (built on the scaled walking world).
    scale
        The :class:`WalkScale` the model was built with.
    day, depart_s
        Study date and departure (seconds since midnight).
    networks
        Names of the GTFS networks loaded.
    max_walk_min, max_transfers, walk_speed_kmh, max_nearest_stops
        Walk to a stop at most, transfers at most, pushchair speed, stops considered
        around each point.
    """

    model: Any
    scale: WalkScale
    day: dt.date
    depart_s: int
    networks: tuple[str, ...]
    max_walk_min: float = DEFAULT_MAX_WALK_MIN
    max_transfers: int = DEFAULT_MAX_TRANSFERS
    walk_speed_kmh: float = POUSSETTE_SPEED_KMH
    max_nearest_stops: int = 10
    notes: tuple[str, ...] = field(default=())

    @property
    def engine(self) -> str:
        """:data:`ENGINE_TRANSIT`."""
        return ENGINE_TRANSIT

    @property
    def mode(self) -> str:
        """``"transit"``."""
        return "transit"

    @property
    def label(self) -> str:
        """French description: networks, date, hour, walk and transfers."""
        nets = ", ".join(self.networks) or "aucun réseau"
        return (f"transports en commun ({nets}) le {french_date(self.day)}, départ à "
                f"{french_hour(self.depart_s)}, attente comprise ; à pied avec une poussette "
                f"à {fr_number(self.walk_speed_kmh)} km/h, {fr_number(self.max_walk_min)} min "
                f"au plus jusqu'à un arrêt, {self.max_transfers} correspondance(s) au plus")

    def _points(self, xy: np.ndarray) -> tuple[list[Any], np.ndarray]:
        """Router points of x/y (EPSG:2154); flagged where no street is near."""
        from pyproj import Transformer

        fb = _ferrobus()
        tr = Transformer.from_crs("EPSG:2154", "EPSG:4326", always_xy=True)
        lon, lat = tr.transform(xy[:, 0], xy[:, 1])
        slon, slat = self.scale.forward(np.asarray(lon), np.asarray(lat))
        walk_s = int(round(self.max_walk_min * 60))
        pts: list[Any] = []
        flagged = np.zeros(len(xy), dtype=bool)
        for i, (a, b) in enumerate(zip(slat, slon, strict=True)):
            try:
                pts.append(fb.create_transit_point(float(a), float(b), self.model, walk_s,
                                                   self.max_nearest_stops))
            except (ValueError, RuntimeError):
                pts.append(None)
                flagged[i] = True
        return pts, flagged

    def stops_within_walk(self, xy: np.ndarray) -> np.ndarray:
        """Whether each point (x/y EPSG:2154) has a stop within :attr:`max_walk_min`."""
        pts, flagged = self._points(as_xy(xy, "xy"))
        return np.array([p is not None and len(p.nearest_stops()) > 0 for p in pts])

    def times(self, origins_xy: np.ndarray, destinations_xy: np.ndarray, *,
              max_minutes: float) -> TravelTimes:
        """Minutes from each origin, leaving at :attr:`depart_s`, to each destination."""
        fb = _ferrobus()
        o_xy = as_xy(origins_xy, "origins_xy")
        d_xy = as_xy(destinations_xy, "destinations_xy")
        if not (isinstance(max_minutes, int | float) and max_minutes > 0):
            raise InputError(f"max_minutes={max_minutes!r} must be > 0",
                             argument="max_minutes", value=max_minutes)
        o_pts, o_flag = self._points(o_xy)
        d_pts, d_flag = self._points(d_xy)
        d_ok = np.flatnonzero(~d_flag)
        d_list = [d_pts[j] for j in d_ok]
        rows, cols, vals = [], [], []
        n_o, n_d = len(o_xy), len(d_xy)
        nearest = np.full(n_o, np.inf)
        limit_s = float(max_minutes) * 60.0
        for i, p in enumerate(o_pts):
            if p is None or not d_list:
                continue
            res = fb.find_routes_one_to_many(self.model, p, d_list, int(self.depart_s),
                                             int(self.max_transfers))
            secs = np.array([np.nan if r is None else float(r["travel_time_seconds"])
                             for r in res])
            ok = np.isfinite(secs) & (secs <= limit_s)
            if ok.any():
                rows.append(np.full(int(ok.sum()), i))
                cols.append(d_ok[ok])
                vals.append(secs[ok] / 60.0)
                nearest[i] = float(secs[ok].min()) / 60.0
        r = np.concatenate(rows) if rows else np.empty(0, np.int64)
        c = np.concatenate(cols) if cols else np.empty(0, np.int64)
        v = np.concatenate(vals) if vals else np.empty(0)
        within = pairs_to_csr(r, c, v, (n_o, n_d))
        n_flag = n_o * n_d - int((~o_flag).sum()) * int((~d_flag).sum())
        return TravelTimes(
            within=within, nearest_minutes=nearest,
            origin_snap_m=np.zeros(n_o), destination_snap_m=np.zeros(n_d),
            origin_flagged=o_flag, destination_flagged=d_flag,
            n_beyond_cutoff=n_o * n_d - n_flag - int(within.nnz), n_disconnected=0,
            n_flagged_pairs=n_flag, engine=ENGINE_TRANSIT, mode="transit",
            max_minutes=float(max_minutes),
            params={"date": self.day.isoformat(), "depart": french_hour(self.depart_s),
                    "networks": ", ".join(self.networks),
                    "max_walk_min": self.max_walk_min, "max_transfers": self.max_transfers,
                    "walk_speed_kmh": self.walk_speed_kmh})

    def isochrone(self, point_xy: tuple[float, float], *, max_minutes: float,
                  resolution_m: float) -> Any:
        """Area reached by transit within ``max_minutes``: a grid of points timed from it.

        Points every ``resolution_m`` (at least 200 m) within the distance a tram could
        cover in the time (25 km/h) are timed from ``point_xy``; the reached ones are
        widened by ``resolution_m`` and merged.
        """
        step = max(float(resolution_m), 200.0)
        reach = float(max_minutes) / 60.0 * 25_000.0
        g = np.arange(-reach, reach + step, step)
        gx, gy = np.meshgrid(g, g)
        inside = np.hypot(gx, gy) <= reach
        xy = np.column_stack([gx[inside] + point_xy[0], gy[inside] + point_xy[1]])
        tt = self.times(np.array([point_xy], dtype=float), xy, max_minutes=max_minutes)
        reached = np.zeros(len(xy), dtype=bool)
        reached[np.asarray(tt.within.indices)] = True
        return reached_area(xy[:, 0], xy[:, 1], reached, resolution_m=step)


def build_transit_engine(osm_pbf: str, gtfs_dirs: Sequence[str], *, scale: WalkScale,
                         day: dt.date, depart_s: int, networks: Sequence[str],
                         max_walk_min: float = DEFAULT_MAX_WALK_MIN,
                         max_transfers: int = DEFAULT_MAX_TRANSFERS,
                         walk_speed_kmh: float = POUSSETTE_SPEED_KMH,
                         notes: Sequence[str] = ()) -> TransitEngine:
    """Build the ferrobus model on prepared files (scaled street network and feeds).

    ``osm_pbf`` and ``gtfs_dirs`` come from ``data_sources.transit.prepare_transit``
    (streets without steps, feeds of the study date, both moved by ``scale``).
    """
    fb = _ferrobus()
    if not (isinstance(max_transfers, int) and 0 <= max_transfers <= 10):
        raise InputError(f"max_transfers={max_transfers!r} must be an integer from 0 to 10",
                         argument="max_transfers", value=max_transfers)
    if not (max_walk_min > 0):
        raise InputError(f"max_walk_min={max_walk_min!r} must be > 0",
                         argument="max_walk_min", value=max_walk_min)
    model = fb.create_transit_model(str(osm_pbf), [str(d) for d in gtfs_dirs], day,
                                    int(round(max_walk_min * 60)))
    return TransitEngine(model=model, scale=scale, day=day, depart_s=int(depart_s),
                         networks=tuple(networks), max_walk_min=float(max_walk_min),
                         max_transfers=max_transfers, walk_speed_kmh=walk_speed_kmh,
                         notes=tuple(notes))
