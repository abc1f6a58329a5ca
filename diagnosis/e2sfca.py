"""E2SFCA: the enhanced two-step floating catchment area, on sparse travel-time pairs.

:func:`compute_e2sfca` takes travel times (origins × facilities, minutes) as the sparse
pairs within reach (a scipy.sparse matrix or a :class:`~diagnosis.travel.TravelTimes`)
or a dense matrix, a demand vector and a supply vector, and returns the score of every
origin. It matches PySAL ``access.Access.enhanced_two_stage_fca`` (tested to 1e-9, and to
1e-12 by ``bench/e2sfca.py``); the work and the memory follow the pairs within reach,
not origins × facilities. The distance decays (:func:`step_decay`,
:func:`gaussian_decay`) weigh each time. :mod:`diagnosis.accessibility` puts the scores
in the per-commune indicators.

See Also
--------
guides/accessibilite.md : the method guide (in French).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from diagnosis._pairs import _as_vector, _pairs_csr, _per_row
from diagnosis.errors import InputError, check_positive
from diagnosis.travel.times import TravelTimes

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


def _fr(value: float) -> str:
    """Short French number: ``0.68 -> '0,68'``, ``10.0 -> '10'``."""
    return f"{value:.4g}".replace(".", ",")
