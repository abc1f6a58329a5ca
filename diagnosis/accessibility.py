"""Accessibility of facilities from communes: nearest time, counts within reach, E2SFCA.

Why one module of about 850 lines: decay functions, E2SFCA on sparse pairs and the
indicators per commune (and their aggregation from sub-commune origins) are one
computation, read in that order.

A matrix core (numpy) and a thin GeoDataFrame front, after PySAL ``access``:

- :func:`compute_e2sfca` takes travel times (origins × facilities, minutes) as the
  sparse pairs within reach (a scipy.sparse matrix or a
  :class:`~diagnosis.travel.TravelTimes`) or a dense matrix, a demand vector and
  a supply vector, and returns the enhanced two-step floating catchment area score of
  every origin. It matches ``access.Access.enhanced_two_stage_fca`` (tested to 1e-9);
  work and memory follow the pairs within reach, not origins × facilities.
- :func:`minutes_to_nearest`, :func:`count_reachable` and :func:`births_within_share`
  are the simple per-origin indicators.
- :func:`compute_access_indicators` puts it all in one tidy table keyed by
  ``code_insee``, with a per-type summary.
- :func:`compute_travel_times_by_type` builds the sparse travel times it needs with a
  travel engine (:mod:`diagnosis.travel`): a road graph, or as the crow flies.

See Also
--------
guides/accessibilite.md : the method guide (in French).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, cast

import geopandas as gpd
import numpy as np
import pandas as pd
import scipy.sparse as sp

from diagnosis._pairs import (
    _as_minutes,
    _as_vector,
    _pairs_csr,
    _per_row,
)
from diagnosis.errors import InputError, check_positive
from diagnosis.schema import FACILITY_TYPES, facility_label
from diagnosis.settings import DEFAULT_MAX_MINUTES, METRIC_CRS
from diagnosis.travel import (
    DEFAULT_MAX_SNAP_M,
    DETOUR_FACTOR,
    RoadGraph,
    TravelEngine,
    TravelTimes,
    compute_travel_times,
    crow_fly_travel_times,
)

#: Below this many stored pairs, E2SFCA sums with a bincount and per-row sums rather
#: than sparse products (scipy's set-up, ~30 µs, costs more than the sums; measured
#: crossover 5,000-7,000 pairs).
_SMALL_PAIRS = 5_000

#: Above this many stored pairs, E2SFCA works by blocks of rows of about
#: ``_PAIRS_PER_BLOCK`` pairs (weights computed per block and per stage, never all held).
_BLOCKED_PAIRS = 12_000_000
_PAIRS_PER_BLOCK = 1 << 20

#: Times per block when step weights are looked up (2 MB of minutes: stays in cache).
_STEP_BLOCK = 1 << 18

#: E2SFCA drops the stored pairs past the decay's reach (weight 0) before weighting them
#: when at most this share of the pairs is within reach (measured at 2.2 M pairs: 29 %
#: within, the whole call takes 15 % less, 38 % within 7 % less; break-even near 42 %).
_DROP_SHARE = 0.4

#: From this many stored pairs on (measured crossover ~300,000), E2SFCA may drop them.
_DROP_MIN_PAIRS = 300_000

#: Stored pairs per block of rows when the pairs past the reach are dropped (2 MB of
#: minutes: the block stays in cache between its comparison and its two takes).
_DROP_BLOCK = 1 << 18

#: Weights of the original E2SFCA (Luo & Qi 2009) for three equal time bands.
LUO_QI_WEIGHTS: tuple[float, float, float] = (1.0, 0.68, 0.22)


# --------------------------------------------------------------------------------------
# Decay functions
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Decay:
    """A distance-decay weight: minutes -> weight, 0 beyond ``max_minutes``.

    Build it with :func:`step_decay` or :func:`gaussian_decay`; call it on an array of
    minutes.

    Attributes
    ----------
    kind
        ``"step"`` or ``"gaussian"``.
    max_minutes
        Weight is 0 above this.
    bounds, weights
        Step bands: weight ``weights[i]`` for minutes in ``(bounds[i-1], bounds[i]]``.
    sigma_minutes
        Width of the Gaussian.
    """

    kind: str
    max_minutes: float
    bounds: tuple[float, ...] = ()
    weights: tuple[float, ...] = ()
    sigma_minutes: float = float("nan")

    def __call__(self, minutes: Any) -> np.ndarray:
        """Weights of ``minutes`` (array-like)."""
        t = np.asarray(minutes, dtype=float)
        out = np.empty(t.shape)
        self._weigh(t.reshape(-1), out.reshape(-1))
        return out

    def _weigh(self, minutes: np.ndarray, out: np.ndarray) -> None:
        """Weights of the 1-D float ``minutes`` written into ``out`` (same length)."""
        if self.kind == "step":
            # By blocks of _STEP_BLOCK times (they stay in cache, and no temporary grows
            # with the input: at tens of millions of pairs, fresh pages cost more than
            # the comparisons). In each block, count the bounds at or above t (the first
            # comparison written straight into the count, the others added as bytes:
            # faster than a search for a few bands), then look the weight up with the
            # counts as indices; past the last bound, or NaN, the count is 0 and so is
            # the weight.
            size = min(minutes.size, _STEP_BLOCK)
            counts, buf = np.empty(size, dtype=np.uint8), np.empty(size, dtype=bool)
            for start in range(0, minutes.size, _STEP_BLOCK):
                part = minutes[start:start + _STEP_BLOCK]
                above, mask = counts[:part.size], buf[:part.size]
                np.less_equal(part, self.bounds[0], out=above.view(bool))
                for bound in self.bounds[1:]:
                    np.less_equal(part, bound, out=mask)
                    above += mask.view(np.uint8)
                # counts are 0..len(bounds): "clip" never clips, and unlike "raise" it
                # writes straight into ``out`` (numpy buffers ``out`` under "raise")
                self._table.take(above, out=out[start:start + part.size], mode="clip")
            return
        w = np.exp(-minutes * minutes / (2.0 * self.sigma_minutes**2))
        np.copyto(out, np.where(minutes <= self.max_minutes, w, 0.0))

    @property
    def reach_minutes(self) -> float:
        """Minutes beyond which the weight is 0: the last step bound, or ``max_minutes``.

        Examples
        --------
        >>> step_decay(30, steps={10: 1.0, 20: 0.5}).reach_minutes
        20.0
        >>> gaussian_decay(30).reach_minutes
        30.0
        """
        return self.bounds[-1] if self.kind == "step" else self.max_minutes

    @functools.cached_property
    def _table(self) -> np.ndarray:
        """Step weights by count of bounds at or above a time: ``[0, w_last, ..., w_first]``."""
        return np.append(0.0, np.asarray(self.weights, dtype=float)[::-1])

    @functools.cached_property
    def label(self) -> str:
        """French description, for reports.

        Examples
        --------
        >>> step_decay(30).label
        'paliers : ≤ 10 min × 1 ; ≤ 20 min × 0,68 ; ≤ 30 min × 0,22'
        >>> gaussian_decay(20).label
        'gaussienne : exp(-t² / (2 × 10²)), nulle au-delà de 20 min'
        """
        if self.kind == "step":
            parts = [f"≤ {_fr(b)} min × {_fr(w)}" for b, w in zip(self.bounds, self.weights,
                                                                   strict=True)]
            return "paliers : " + " ; ".join(parts)
        return (f"gaussienne : exp(-t² / (2 × {_fr(self.sigma_minutes)}²)), "
                f"nulle au-delà de {_fr(self.max_minutes)} min")


def step_decay(max_minutes: float, *, steps: Mapping[float, float] | None = None) -> Decay:
    """Step decay; by default the Luo & Qi (2009) bands on thirds of ``max_minutes``.

    Same rule as ``access.weights.step_fn``: the weight of ``t`` is the weight of the
    first band whose upper bound is ``>= t``; 0 beyond the last band.

    Parameters
    ----------
    max_minutes
        Catchment size. Default bands: ``max/3 -> 1``, ``2·max/3 -> 0.68``,
        ``max -> 0.22``.
    steps
        Custom bands ``{upper bound in minutes: weight}``; bounds must lie in
        ``(0, max_minutes]`` and weights in ``[0, 1]``.

    Returns
    -------
    Decay

    Examples
    --------
    >>> f = step_decay(30)
    >>> f([0, 10, 15, 20, 30, 31, np.inf, np.nan]).tolist()
    [1.0, 1.0, 0.68, 0.68, 0.22, 0.0, 0.0, 0.0]
    >>> step_decay(20, steps={20: 1.0})([5, 20, 20.5]).tolist()
    [1.0, 1.0, 0.0]
    """
    top = check_positive(max_minutes, "max_minutes")
    if steps is None:
        steps = {top / 3: LUO_QI_WEIGHTS[0], 2 * top / 3: LUO_QI_WEIGHTS[1],
                 top: LUO_QI_WEIGHTS[2]}
    if not steps:
        raise InputError("steps is empty; give at least one {upper_minutes: weight} band")
    items = sorted((float(k), float(v)) for k, v in steps.items())
    for bound, weight in items:
        if not (0 < bound <= top):
            raise InputError(
                f"steps bound {bound!r} is outside (0, max_minutes={top!r}]; "
                "bands must end within the catchment"
            )
        if not (0 <= weight <= 1):
            raise InputError(f"steps weight {weight!r} (band <= {bound!r} min) must be in [0, 1]")
    return Decay(kind="step", max_minutes=top, bounds=tuple(b for b, _ in items),
                 weights=tuple(w for _, w in items))


def gaussian_decay(max_minutes: float, *, sigma_minutes: float | None = None) -> Decay:
    """Gaussian decay ``exp(-t² / (2σ²))``, cut to 0 beyond ``max_minutes``.

    The same formula as ``access.weights.gaussian`` (no normalisation, weight 1 at 0).

    Parameters
    ----------
    max_minutes
        Catchment size.
    sigma_minutes
        Width σ; default ``max_minutes / 2`` (weight e⁻² ≈ 0.14 at the edge).

    Returns
    -------
    Decay

    Examples
    --------
    >>> f = gaussian_decay(30, sigma_minutes=10)
    >>> f([0, 10, 20, 40]).tolist()
    [1.0, 0.6065306597126334, 0.1353352832366127, 0.0]
    """
    top = check_positive(max_minutes, "max_minutes")
    sigma = top / 2 if sigma_minutes is None else check_positive(sigma_minutes, "sigma_minutes")
    return Decay(kind="gaussian", max_minutes=top, sigma_minutes=sigma)


# --------------------------------------------------------------------------------------
# Matrix core
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class E2SFCAResult:
    """Enhanced two-step floating catchment area scores.

    Attributes
    ----------
    access
        Per origin: ``A_i = Σ_j R_j · w(t_ij)`` over facilities within ``max_minutes``;
        0 when no facility with capacity is within reach.
    facility_ratio
        Per facility: ``R_j = S_j / Σ_i D_i · w(t_ij)`` (supply per weighted demand);
        NaN for facilities without capacity or without demand in their catchment.
    catchment_demand
        Per facility: ``Σ_i D_i · w(t_ij)`` (0 for excluded facilities).
    n_facilities_without_capacity
        Facilities whose supply is NaN (unknown): excluded, never counted as 0 places.
    n_facilities_without_demand
        Facilities with capacity but no weighted demand in reach: they serve no one
        in the territory and add nothing to any origin.
    n_origins_without_access
        Origins whose score is 0.
    params
        ``max_minutes``, decay description.
    """

    access: np.ndarray
    facility_ratio: np.ndarray
    catchment_demand: np.ndarray
    n_facilities_without_capacity: int
    n_facilities_without_demand: int
    n_origins_without_access: int
    params: Mapping[str, Any] = field(default_factory=dict)


def compute_e2sfca(
    travel_minutes: Any,
    demand: Any,
    supply: Any,
    *,
    max_minutes: float,
    decay: Decay | None = None,
) -> E2SFCAResult:
    """Enhanced two-step floating catchment area (E2SFCA) on travel-time pairs.

    Step 1: every facility ``j`` gets ``R_j = S_j / Σ_i D_i · w(t_ij)`` over origins
    with ``t_ij <= max_minutes``. Step 2: every origin gets ``A_i = Σ_j R_j · w(t_ij)``.
    The work and the memory are proportional to the pairs within ``max_minutes``.

    Parameters
    ----------
    travel_minutes
        ``(n_origins, n_facilities)`` minutes: a dense array (``np.inf`` = out of
        reach), a scipy.sparse matrix or array whose **stored** entries are the pairs
        within reach (absent = out of reach; a 0-minute pair must be a stored zero), or
        a :class:`~diagnosis.travel.TravelTimes` (its sparse ``within`` pairs).
    demand
        ``(n_origins,)`` demand (e.g. births), finite and >= 0.
    supply
        ``(n_facilities,)`` capacity (places), >= 0; NaN = unknown, excluded.
    max_minutes
        Catchment size.
    decay
        Weight of a time; default :func:`step_decay` ``(max_minutes)`` (Luo & Qi bands,
        the default of ``access``).

    Returns
    -------
    E2SFCAResult

    Raises
    ------
    InputError
        Mismatched shapes, NaN travel times, negative or missing demand, negative
        supply, non-positive ``max_minutes``.

    Examples
    --------
    Two villages of 10 and 30 births, one crèche of 20 places 5 minutes from both:

    >>> r = compute_e2sfca(np.array([[5.0], [5.0]]), [10, 30], [20.0], max_minutes=30)
    >>> r.access.tolist(), r.facility_ratio.tolist()
    ([0.5, 0.5], [0.5])

    The same pairs as a sparse matrix:

    >>> import scipy.sparse as sp
    >>> pairs = sp.csr_array((np.array([5.0, 5.0]), ([0, 1], [0, 0])), shape=(2, 1))
    >>> compute_e2sfca(pairs, [10, 30], [20.0], max_minutes=30).access.tolist()
    [0.5, 0.5]
    """
    top = check_positive(max_minutes, "max_minutes")
    pairs = _pairs_csr(travel_minutes, top)
    n, m = pairs.shape
    dem = _as_vector(demand, "demand", n)
    if not (dem >= 0).all():  # one pass: NaN or negative
        bad = np.flatnonzero(np.isnan(dem) | (dem < 0))[:5].tolist()
        raise InputError(
            f"demand must be >= 0 and known; rows {bad} hold {dem[bad].tolist()!r}. "
            "Drop those origins or fill their demand explicitly."
        )
    sup = _as_vector(supply, "supply", m)
    if (sup < 0).any():
        bad = np.flatnonzero(sup < 0)[:5].tolist()
        raise InputError(f"supply must be >= 0 (or NaN if unknown); rows {bad} hold "
                         f"{sup[bad].tolist()!r}")
    weight = step_decay(top) if decay is None else decay
    # Pairs past the decay's reach weigh 0: when most stored pairs are (the pipeline
    # routes to twice the catchment), drop them first. A TravelTimes whose cutoff is
    # within the reach holds none, so its pairs are not even compared.
    cutoff = travel_minutes.max_minutes if isinstance(travel_minutes, TravelTimes) else None
    weights = None
    nnz = int(pairs.indptr[-1])  # canonical: the stored pairs (scipy's nnz checks more)
    if _DROP_MIN_PAIRS < nnz <= _BLOCKED_PAIRS and (
            cutoff is None or cutoff > weight.reach_minutes):
        weights = _weights_within_reach(pairs, weight)

    # Weights once (0 beyond the catchment, so pairs past ``top`` add nothing), then two
    # products: catchment demand per facility, access per origin. Sparse matrix-vector
    # products for large instances; for small ones (a département's communes and one
    # type) scipy's object set-up costs more than the sums: a bincount and per-row sums.
    has_cap = ~np.isnan(sup)
    small = nnz <= _SMALL_PAIRS
    blocks = _row_blocks(pairs.indptr) if nnz > _BLOCKED_PAIRS else None
    if small:
        w = weight(pairs.data)
        per_row = pairs.indptr[1:] - pairs.indptr[:-1]
        catchment = np.bincount(pairs.indices, weights=w * np.repeat(dem, per_row), minlength=m)
    elif blocks is None:
        if weights is None:
            weights = sp.csr_array((weight(pairs.data), pairs.indices, pairs.indptr),
                                   shape=pairs.shape)
        catchment = np.asarray(weights.T @ dem, dtype=float)
    else:
        # tens of millions of pairs: by blocks of rows, each block's weights computed
        # in cache and used at once (twice: once per stage), never a weight per pair
        # held at once (its fresh pages would cost more than the arithmetic)
        catchment = np.zeros(m)
        for r0, r1 in blocks:
            catchment += _block_weights(pairs, r0, r1, weight).T @ dem[r0:r1]
    catchment[~has_cap] = 0.0
    served = has_cap & (catchment > 0)
    ratio = np.full(m, np.nan)
    np.divide(sup, catchment, out=ratio, where=served)
    ratio_or_zero = np.where(served, ratio, 0.0)
    if small:
        access = _per_row(np.add, w * ratio_or_zero[pairs.indices], pairs.indptr, empty=0.0)
    elif blocks is None:
        access = np.asarray(weights @ ratio_or_zero, dtype=float)
    else:
        access = np.empty(n)
        for r0, r1 in blocks:
            access[r0:r1] = _block_weights(pairs, r0, r1, weight) @ ratio_or_zero
    return E2SFCAResult(
        access=access,
        facility_ratio=ratio,
        catchment_demand=catchment,
        n_facilities_without_capacity=m - int(np.count_nonzero(has_cap)),
        n_facilities_without_demand=int(np.count_nonzero(has_cap) - np.count_nonzero(served)),
        n_origins_without_access=n - int(np.count_nonzero(access)),
        params={"max_minutes": top, "decay": weight.label},
    )


def _weights_within_reach(pairs: sp.csr_array, weight: Decay) -> sp.csr_array | None:
    """Weights of the pairs within the decay's reach, if the others are the majority.

    Returns ``None`` (weigh every pair) when the share within reach, estimated on 16
    runs of 256 pairs spread over the pairs, is above ``_DROP_SHARE``. Otherwise, by
    blocks of rows of about ``_DROP_BLOCK`` pairs, read once and kept in cache: one
    comparison, one ``flatnonzero``, the kept columns and minutes taken, the minutes
    weighed at once, the new rows' ends by a ``searchsorted`` of the old ones. The
    result is a canonical CSR (a subset of sorted rows) of the weights, 0-minute pairs
    kept.

    Examples
    --------
    >>> pairs = sp.csr_array((np.array([40.0, 5.0, 50.0, 45.0, 0.0, 55.0]),
    ...                       np.array([0, 1, 2, 0, 1, 2]), np.array([0, 3, 6])), shape=(2, 3))
    >>> kept = _weights_within_reach(pairs, step_decay(30))
    >>> kept.indptr.tolist(), kept.indices.tolist(), kept.data.tolist()
    ([0, 1, 2], [1, 1], [1.0, 1.0])
    >>> _weights_within_reach(pairs, step_decay(50)) is None  # most pairs within reach
    True
    """
    reach = weight.reach_minutes
    data, cols, ptr = pairs.data, pairs.indices, pairs.indptr
    # 16 runs of 256 pairs spread over the pairs (a strided sample would read them all)
    step = max(data.size // 16, 1)
    sample = data[np.add.outer(np.arange(0, data.size, step), np.arange(256)) % data.size]
    if np.count_nonzero(sample <= reach) > _DROP_SHARE * sample.size:
        return None
    blocks = _row_blocks(ptr, _DROP_BLOCK)
    starts = ptr[[r0 for r0, _ in blocks] + [blocks[-1][1]]].astype(np.int64)
    largest = int(np.diff(starts).max())
    mask, minutes = np.empty(largest, dtype=bool), np.empty(largest)
    weights, kept_cols = np.empty(data.size), np.empty(data.size, dtype=cols.dtype)
    new_ptr = np.zeros_like(ptr)  # same index dtype as the columns: no copy by scipy
    kept = 0
    for (r0, r1), s, e in zip(blocks, starts[:-1].tolist(), starts[1:].tolist(), strict=True):
        within = mask[:e - s]
        np.less_equal(data[s:e], reach, out=within)
        pos = np.flatnonzero(within)
        k = pos.size
        # positions are in range: "wrap" never wraps, and unlike "raise" it writes
        # straight into ``out`` (numpy buffers ``out`` under "raise")
        np.take(cols[s:e], pos, out=kept_cols[kept:kept + k], mode="wrap")
        np.take(data[s:e], pos, out=minutes[:k], mode="wrap")
        weight._weigh(minutes[:k], weights[kept:kept + k])
        new_ptr[r0 + 1:r1 + 1] = np.searchsorted(pos, ptr[r0 + 1:r1 + 1] - s) + kept
        kept += k
    # shrunk in place (no view of them is left): scipy copies a slice of a much larger
    # array, 12 bytes per kept pair
    weights.resize(kept, refcheck=False)
    kept_cols.resize(kept, refcheck=False)
    return sp.csr_array((weights, kept_cols, new_ptr), shape=pairs.shape)


def _row_blocks(indptr: np.ndarray, pairs_per_block: int | None = None
                ) -> list[tuple[int, int]]:
    """Consecutive row ranges of about ``pairs_per_block`` stored pairs each.

    Default ``_PAIRS_PER_BLOCK``; a row with more pairs is a block of its own.
    """
    per_block = _PAIRS_PER_BLOCK if pairs_per_block is None else pairs_per_block
    n = indptr.shape[0] - 1
    cuts = np.searchsorted(indptr, np.arange(0, int(indptr[-1]), per_block),
                           side="right") - 1
    edges = np.unique(np.concatenate([np.clip(cuts, 0, n), [n]])).tolist()
    if edges[0] != 0:
        edges.insert(0, 0)
    return [(a, b) for a, b in zip(edges[:-1], edges[1:], strict=True) if b > a]


def _block_weights(pairs: sp.csr_array, r0: int, r1: int, weight: Decay) -> sp.csr_array:
    """Weights of the pairs of rows ``r0:r1`` as a CSR array (those rows only)."""
    s, e = int(pairs.indptr[r0]), int(pairs.indptr[r1])
    return sp.csr_array((weight(pairs.data[s:e]), pairs.indices[s:e],
                         pairs.indptr[r0:r1 + 1] - s), shape=(r1 - r0, pairs.shape[1]))


def minutes_to_nearest(travel_minutes: Any) -> np.ndarray:
    """Minutes from each origin to its nearest facility (``np.inf`` if none in reach).

    A :class:`~diagnosis.travel.TravelTimes` gives its ``nearest_minutes`` (k-d
    tree or multi-source Dijkstra); a sparse matrix the smallest stored entry of each
    row; a dense array the row minimum.

    Examples
    --------
    >>> minutes_to_nearest(np.array([[12.0, 7.0], [np.inf, np.inf]])).tolist()
    [7.0, inf]
    >>> import scipy.sparse as sp
    >>> minutes_to_nearest(sp.csr_array((np.array([0.0]), ([1], [0])), shape=(2, 2))).tolist()
    [inf, 0.0]
    """
    if isinstance(travel_minutes, TravelTimes):
        return np.asarray(travel_minutes.nearest_minutes, dtype=float).copy()
    if sp.issparse(travel_minutes):
        csr = _pairs_csr(travel_minutes, np.inf, allow_empty_columns=True)
        return _per_row(np.minimum, csr.data, csr.indptr, empty=np.inf)
    minutes = _as_minutes(travel_minutes, allow_empty_columns=True)
    if minutes.shape[1] == 0:
        return np.full(minutes.shape[0], np.inf)
    return cast("np.ndarray", minutes.min(axis=1))


def count_reachable(travel_minutes: Any, *, max_minutes: float) -> np.ndarray:
    """Number of facilities within ``max_minutes`` of each origin.

    Counted on the pairs within reach for sparse inputs and
    :class:`~diagnosis.travel.TravelTimes`.

    Examples
    --------
    >>> count_reachable(np.array([[12.0, 7.0, 30.0], [np.inf, 20.0, 25.0]]),
    ...                 max_minutes=20).tolist()
    [2, 1]
    """
    top = check_positive(max_minutes, "max_minutes")
    if isinstance(travel_minutes, TravelTimes) or sp.issparse(travel_minutes):
        # on the stored pairs in place: no row index, no copy of the pairs
        csr = _pairs_csr(travel_minutes, top, allow_empty_columns=True)
        within = np.less_equal(csr.data, top).view(np.uint8)
        return _per_row(np.add, within, csr.indptr, empty=0, dtype=np.int64)
    minutes = _as_minutes(travel_minutes, allow_empty_columns=True)
    return cast("np.ndarray", (minutes <= top).sum(axis=1).astype(np.int64))


def births_within_share(nearest_minutes: Any, births: Any, *, max_minutes: float) -> float:
    """Share of births in origins whose nearest facility is within ``max_minutes``.

    Origins with unknown births (NaN) are left out of both sums. Returns NaN when no
    births are known.

    Examples
    --------
    >>> births_within_share([5.0, 25.0, np.inf], [30, 10, 60], max_minutes=20)
    0.3
    """
    near = np.asarray(nearest_minutes, dtype=float)
    b = _as_vector(births, "births", near.shape[0])
    top = check_positive(max_minutes, "max_minutes")
    known = ~np.isnan(b)
    total = float(b[known].sum())
    if total <= 0:
        return float("nan")
    return float(b[known & (near <= top)].sum()) / total


# --------------------------------------------------------------------------------------
# GeoDataFrame front
# --------------------------------------------------------------------------------------


def commune_points_xy(communes_gdf: gpd.GeoDataFrame) -> np.ndarray:
    """One point per commune in EPSG:2154 (its point, or a point inside its polygon).

    Polygons are represented by ``representative_point()`` (always inside the commune,
    not necessarily where people live): pass town-hall points when you have them.
    """
    if not isinstance(communes_gdf, gpd.GeoDataFrame) or communes_gdf.crs is None:
        raise InputError("communes_gdf must be a GeoDataFrame with a CRS (EPSG:4326 or 2154)")
    if len(communes_gdf) == 0:
        raise InputError("communes_gdf is empty; select at least one commune")
    geom = communes_gdf.geometry.to_crs(METRIC_CRS)
    if geom.isna().any() or geom.is_empty.any():
        rows = communes_gdf.index[(geom.isna() | geom.is_empty).to_numpy()][:5].tolist()
        raise InputError(f"communes_gdf rows {rows} have no geometry; add their outline or point")
    pts = geom.where(geom.geom_type == "Point", geom.representative_point())
    return np.column_stack([pts.x.to_numpy(), pts.y.to_numpy()])


def facility_points_xy(facilities_gdf: gpd.GeoDataFrame) -> np.ndarray:
    """Facility points in EPSG:2154, shape ``(n, 2)`` (may be empty)."""
    if len(facilities_gdf) == 0:
        return np.empty((0, 2))
    if facilities_gdf.crs is None:
        raise InputError("facilities_gdf has no CRS; set one (EPSG:4326 expected)")
    pts = facilities_gdf.geometry.to_crs(METRIC_CRS)
    return np.column_stack([pts.x.to_numpy(), pts.y.to_numpy()])


def compute_travel_times_by_type(
    communes_gdf: gpd.GeoDataFrame,
    facilities_gdf: gpd.GeoDataFrame,
    *,
    max_minutes: float,
    graph: RoadGraph | None = None,
    facility_types: Sequence[str] | None = None,
    mode: str | None = None,
    max_snap_m: float = DEFAULT_MAX_SNAP_M,
    speed_kmh: float | None = None,
    detour_factor: float = DETOUR_FACTOR,
    access_min: float = 0.0,
    engine: TravelEngine | None = None,
) -> dict[str, TravelTimes]:
    """Travel-time matrices from communes to the facilities of each type.

    Parameters
    ----------
    communes_gdf
        Communes (polygons or points), the rows of every matrix.
    facilities_gdf
        Facilities in the schema; the columns of type ``t`` are
        ``facilities_gdf[facilities_gdf["type"] == t]`` in table order.
    max_minutes
        Routing cutoff; use at least the accessibility threshold (a larger cutoff
        tells how far beyond the threshold the nearest facility is).
    graph
        Road graph; None gives crow-fly estimates (labelled ``engine="crow_fly"``).
    facility_types
        Types to compute; default: the types present in ``facilities_gdf``. Types with
        no facility are skipped (see :func:`compute_access_indicators`).
    mode
        Crow-fly mode (``"drive"``/``"walk"``); with a graph, the graph's mode is used.
    max_snap_m, speed_kmh, detour_factor, access_min
        Passed to :func:`~diagnosis.travel.compute_travel_times` or
        :func:`~diagnosis.travel.crow_fly_travel_times`.
    engine
        Any travel engine (:class:`~diagnosis.travel.TravelEngine`, e.g. a
        :class:`~diagnosis.travel.Travel`); when given, it computes every matrix and
        ``graph``, ``mode``, ``max_snap_m``, ``speed_kmh``, ``detour_factor`` and
        ``access_min`` are not used.

    Returns
    -------
    dict of str to TravelTimes
    """
    origins = commune_points_xy(communes_gdf)
    if "type" not in facilities_gdf.columns:
        raise InputError("facilities_gdf lacks the 'type' column; validate it with the schema")
    types = _types(facilities_gdf, facility_types)
    out: dict[str, TravelTimes] = {}
    for ftype in types:
        sub = facilities_gdf[facilities_gdf["type"] == ftype]
        if len(sub) == 0:
            continue
        dest = facility_points_xy(sub)
        if engine is not None:
            out[ftype] = engine.times(origins, dest, max_minutes=max_minutes)
        elif graph is None:
            out[ftype] = crow_fly_travel_times(origins, dest, detour_factor=detour_factor,
                                               speed_kmh=speed_kmh, mode=mode or "drive",
                                               max_minutes=max_minutes, access_min=access_min)
        else:
            out[ftype] = compute_travel_times(graph, origins, dest, max_minutes=max_minutes,
                                              max_snap_m=max_snap_m)
    return out


@dataclass(frozen=True, eq=False)
class AccessIndicators:
    """Accessibility of every commune to every facility type.

    Attributes
    ----------
    table
        One row per commune, keyed by ``code_insee`` (same order as the input), with
        ``births`` (the births column used), ``origin_snap_m``, ``origin_flagged`` and
        for each type ``t``: ``minutes_nearest_<t>`` (``inf`` beyond the routing cutoff
        or unreachable), ``reachable_<t>`` (facilities within ``max_minutes``) and
        ``e2sfca_<t>`` (places per weighted annual birth; NaN when no facility of the
        type has a known capacity).
    summary
        One row per type: engine, counts of facilities, of facilities without capacity
        or too far from the road network, births within reach and their share, pairs
        beyond the cutoff / disconnected / flagged.
    params
        ``max_minutes``, ``births_col``, decay, types (and ``demand_level``).
    origins
        With demand below the commune (IRIS, 200 m cells): the same indicators per origin
        (``origin_id``, ``code_insee``, ``level``…), from which ``table`` aggregates each
        commune; ``None`` when the communes are the origins.
    """

    table: pd.DataFrame
    summary: pd.DataFrame
    params: Mapping[str, Any] = field(default_factory=dict)
    origins: pd.DataFrame | None = None


def compute_access_indicators(
    communes_gdf: pd.DataFrame,
    facilities_gdf: gpd.GeoDataFrame,
    travel_times_by_type: Mapping[str, TravelTimes],
    *,
    births_col: str = "births_2024",
    max_minutes: float = DEFAULT_MAX_MINUTES,
    decay: Decay | None = None,
    facility_types: Sequence[str] | None = None,
) -> AccessIndicators:
    """Nearest time, facilities within reach and E2SFCA per commune and facility type.

    Parameters
    ----------
    communes_gdf
        Communes with ``code_insee`` and ``births_col`` (rows in the order of the
        travel-time matrices).
    facilities_gdf
        Facilities in the schema (``type``, ``capacity``); the columns of the matrix of
        type ``t`` are its rows of that type, in order.
    travel_times_by_type
        Type -> :class:`~diagnosis.travel.TravelTimes`, e.g. from
        :func:`compute_travel_times_by_type`, computed with a cutoff >= ``max_minutes``.
    births_col
        Demand column (annual births). Communes with unknown births get indicators but
        add no demand to the E2SFCA; they are counted in the summary.
    max_minutes
        Accessibility threshold.
    decay
        E2SFCA decay; default :func:`step_decay` ``(max_minutes)``.
    facility_types
        Types to report; default the keys of ``travel_times_by_type``. A listed type
        with no facility at all gets ``inf`` / 0 / NaN (a gap, not an error).

    Returns
    -------
    AccessIndicators

    Raises
    ------
    InputError
        Missing columns, a matrix whose shape does not match the communes and the
        facilities of its type, a matrix computed with a cutoff below ``max_minutes``.
    """
    for col in ("code_insee", births_col):
        if col not in communes_gdf.columns:
            raise InputError(
                f"communes_gdf lacks column {col!r}; found {list(communes_gdf.columns)}"
            )
    if len(communes_gdf) == 0:
        raise InputError("communes_gdf is empty; select at least one commune")
    for col in ("type", "capacity"):
        if col not in facilities_gdf.columns:
            raise InputError(f"facilities_gdf lacks column {col!r}; validate it with the schema")
    top = check_positive(max_minutes, "max_minutes")
    weight = step_decay(top) if decay is None else decay
    types = list(travel_times_by_type) if facility_types is None else list(facility_types)
    if not types:
        raise InputError("no facility type to report: travel_times_by_type is empty and "
                         "facility_types is not given")
    births = pd.to_numeric(communes_gdf[births_col], errors="coerce").to_numpy(dtype=float)
    n = births.shape[0]
    _check_matrices(types, facilities_gdf, travel_times_by_type, n_communes=n, max_minutes=top)
    births_known = ~np.isnan(births)
    demand = np.where(births_known, births, 0.0)

    table = pd.DataFrame({
        "code_insee": communes_gdf["code_insee"].astype(str).to_numpy(),
    })
    if "name" in communes_gdf.columns:
        table["name"] = communes_gdf["name"].to_numpy()
    table["births"] = births
    first = next((travel_times_by_type[t] for t in types if t in travel_times_by_type), None)
    table["origin_snap_m"] = first.origin_snap_m if first is not None else np.nan
    table["origin_flagged"] = first.origin_flagged if first is not None else False

    summary_rows = []
    for ftype in types:
        sub = facilities_gdf[facilities_gdf["type"] == ftype]
        capacity = pd.to_numeric(sub["capacity"], errors="coerce").to_numpy(dtype=float)
        got = _type_indicators(travel_times_by_type.get(ftype), capacity, demand,
                               n_communes=n, max_minutes=top, decay=weight)
        nearest = got.nearest
        table[f"minutes_nearest_{ftype}"] = nearest
        table[f"reachable_{ftype}"] = got.reachable
        table[f"e2sfca_{ftype}"] = got.e2sfca
        within = births_known & (nearest <= top)
        summary_rows.append({
            "type": ftype,
            "label": facility_label(ftype, plural=True),
            **got.counts,
            "n_facilities": int(len(sub)),
            "n_facilities_without_capacity": got.without_capacity,
            "n_facilities_without_demand": got.without_demand,
            "births_total": float(births[births_known].sum()),
            "births_within": float(births[within].sum()),
            "share_births_within": births_within_share(nearest, births, max_minutes=top),
            "n_communes_beyond": int((nearest > top).sum()),
            "n_communes_births_missing": int((~births_known).sum()),
        })
    return AccessIndicators(
        table=table,
        summary=pd.DataFrame(summary_rows),
        params={"max_minutes": top, "births_col": births_col, "decay": weight.label,
                "facility_types": tuple(types)},
    )


def _check_matrices(types: Sequence[str], facilities_gdf: gpd.GeoDataFrame,
                    travel_times_by_type: Mapping[str, TravelTimes], *, n_communes: int,
                    max_minutes: float) -> None:
    """Raise unless each type is known and its matrix fits the communes and facilities."""
    n, top = n_communes, max_minutes
    for ftype in types:
        if ftype not in FACILITY_TYPES:
            raise InputError(f"facility type {ftype!r} is unknown; use one of "
                             f"{sorted(FACILITY_TYPES)}")
        n_fac = int((facilities_gdf["type"] == ftype).sum())
        tt = travel_times_by_type.get(ftype)
        if tt is None and n_fac:
            raise InputError(
                f"travel_times_by_type has no matrix for type {ftype!r} although "
                f"facilities_gdf holds {n_fac} such facilities; compute it first"
            )
        if tt is not None and tt.shape != (n, n_fac):
            raise InputError(
                f"travel_times_by_type[{ftype!r}] has shape {tt.shape!r}; expected "
                f"({n} communes, {n_fac} facilities of type {ftype!r}). Compute it "
                "from the same communes and facilities, in the same order."
            )
        if tt is not None and tt.max_minutes is not None and tt.max_minutes < top:
            raise InputError(
                f"travel_times_by_type[{ftype!r}] was computed with a cutoff of "
                f"{tt.max_minutes!r} min, below max_minutes={top!r}; recompute it with "
                "a cutoff >= max_minutes"
            )


class _TypeAccess(NamedTuple):
    """Access to one facility type, per commune (arrays) and counted."""

    nearest: np.ndarray
    reachable: np.ndarray
    e2sfca: np.ndarray
    counts: dict[str, Any]  # engine, mode, flagged facilities and pairs
    without_capacity: int
    without_demand: int


def _type_indicators(
    tt: TravelTimes | None, capacity: np.ndarray, demand: np.ndarray, *, n_communes: int,
    max_minutes: float, decay: Decay,
) -> _TypeAccess:
    """Nearest minutes, facilities within reach and E2SFCA for one type.

    No matrix (no facility of the type): ``inf`` / 0 / NaN, a gap.
    """
    n, top = n_communes, max_minutes
    if tt is None:
        return _TypeAccess(np.full(n, np.inf), np.zeros(n, dtype=np.int64), np.full(n, np.nan), {
            "engine": "", "mode": "", "n_facilities_flagged": 0, "n_pairs_beyond_cutoff": 0,
            "n_pairs_disconnected": 0, "n_pairs_flagged": 0}, 0, 0)
    if len(capacity) and (~np.isnan(capacity)).any():
        res = compute_e2sfca(tt, demand, capacity, max_minutes=top, decay=decay)
        e2 = res.access
        n_no_cap, n_no_dem = res.n_facilities_without_capacity, res.n_facilities_without_demand
    else:
        e2 = np.full(n, np.nan)
        n_no_cap, n_no_dem = int(np.isnan(capacity).sum()), 0
    return _TypeAccess(minutes_to_nearest(tt), count_reachable(tt, max_minutes=top), e2, {
        "engine": tt.engine, "mode": tt.mode,
        "n_facilities_flagged": int(tt.destination_flagged.sum()),
        "n_pairs_beyond_cutoff": tt.n_beyond_cutoff,
        "n_pairs_disconnected": tt.n_disconnected,
        "n_pairs_flagged": tt.n_flagged_pairs}, n_no_cap, n_no_dem)


# --------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------


def _types(facilities_gdf: pd.DataFrame, facility_types: Sequence[str] | None) -> list[str]:
    if facility_types is None:
        present = set(facilities_gdf["type"].astype(str))
        return [t for t in FACILITY_TYPES if t in present]
    unknown = [t for t in facility_types if t not in FACILITY_TYPES]
    if unknown:
        raise InputError(f"facility_types={unknown!r} are unknown; use some of "
                         f"{sorted(FACILITY_TYPES)}")
    return list(facility_types)


def _fr(value: float) -> str:
    """Short French number: ``0.68 -> '0,68'``, ``10.0 -> '10'``."""
    return f"{value:.4g}".replace(".", ",")


def aggregate_to_communes(origins: pd.DataFrame, facility_types: Sequence[str], *,
                          max_minutes: float) -> pd.DataFrame:
    """Commune rows of an origin-level access table (demand below the commune).

    Per commune: ``births`` summed; for each type, ``minutes_nearest_<t>`` the
    births-weighted mean over its origins of the time to the nearest (capped at twice
    the routing cutoff, so one unreachable block does not make the commune infinite,
    and infinite only when every origin is), ``reachable_<t>`` the most reachable from
    one of its origins, ``e2sfca_<t>`` births-weighted, and ``share_within_<t>`` the
    share of its births within ``max_minutes`` (what sub-commune demand adds).

    Examples
    --------
    >>> o = pd.DataFrame({"code_insee": ["1", "1"], "births": [30.0, 10.0],
    ...                   "minutes_nearest_pmi": [5.0, 45.0], "reachable_pmi": [2, 0],
    ...                   "e2sfca_pmi": [0.5, 0.1]})
    >>> t = aggregate_to_communes(o, ["pmi"], max_minutes=20)
    >>> float(t["minutes_nearest_pmi"].iloc[0]), float(t["share_within_pmi"].iloc[0])
    (15.0, 0.75)
    """
    w = pd.to_numeric(origins["births"], errors="coerce").fillna(0.0)
    w = w.where(w.groupby(origins["code_insee"]).transform("sum") > 0, 1.0)
    g = origins.assign(_w=w)
    out = g.groupby("code_insee", sort=False).agg(
        births=("births", lambda v: v.sum(min_count=1)))
    if "name" in origins:
        out["name"] = g.groupby("code_insee", sort=False)["name"].first()
    cap = 4.0 * max_minutes
    for t in facility_types:
        m = pd.to_numeric(g[f"minutes_nearest_{t}"], errors="coerce")
        finite = np.isfinite(m)
        capped = m.where(finite, cap)
        mean = (capped * g["_w"]).groupby(g["code_insee"], sort=False).sum() / \
            g["_w"].groupby(g["code_insee"], sort=False).sum()
        any_finite = finite.groupby(g["code_insee"], sort=False).any()
        out[f"minutes_nearest_{t}"] = mean.where(any_finite, np.inf)
        out[f"reachable_{t}"] = g.groupby("code_insee", sort=False)[f"reachable_{t}"].max()
        e2 = pd.to_numeric(g[f"e2sfca_{t}"], errors="coerce")
        has = e2.notna()
        num = (e2.fillna(0) * g["_w"]).groupby(g["code_insee"], sort=False).sum()
        den = (g["_w"] * has).groupby(g["code_insee"], sort=False).sum()
        out[f"e2sfca_{t}"] = (num / den.where(den > 0)).astype(float)
        within = (m <= max_minutes) & finite
        b = pd.to_numeric(g["births"], errors="coerce")
        share = (b * within).groupby(g["code_insee"], sort=False).sum(min_count=1) / \
            b.groupby(g["code_insee"], sort=False).sum(min_count=1)
        out[f"share_within_{t}"] = share
    return out.reset_index()
