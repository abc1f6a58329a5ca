"""The federation's national plan: where new Maisons would reach the most families not served.

A maximal covering (:func:`diagnosis.siting.solve_max_covering`, HiGHS on the sparse
coverage matrix) opens ``new`` Maisons among host structures (PMI, crèches, RPE, centres
sociaux, LAEP, EVS, town halls — the shipped national geography gives one town hall per
commune, so every commune of France is a candidate) to cover the most births that no
existing Maison reaches; existing Maisons are fixed (open, not counted in ``new``).

Demand is one point per commune (its town hall, else a point inside it) weighted by its
births of the year (one birth ≈ one family entering the 1000 days). Travel times are the
sparse pairs within ``max_minutes`` only (k-d tree radius search or cutoff routing, see
:class:`diagnosis.analyses.Travel`): no origin x site matrix is ever dense. Distances are
computed in EPSG:2154 for mainland France and Corsica and in the local UTM of each
overseas département; no pair crosses a sea.

The answer for France orders its new Maisons by marginal gain (the families each adds
when opened in that order: the first columns of the curve), then extends the curve
greedily beyond ``new`` so that the point where one more Maison reaches fewer families
than a peer group needs (``min_families``) is visible. Each département also gets its own
answer: its best ``per_departement`` sites among its own structures for its own
families.

See Also
--------
guides/plan_national.md : the method in French, how to read the curve.
"""

from __future__ import annotations

import heapq
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
from scipy import sparse
from scipy.spatial import cKDTree

from diagnosis.errors import InputError
from diagnosis.formatting import fr_number
from diagnosis.schema import facility_label
from diagnosis.settings import (
    DEFAULT_GROUP_SIZE,
    DEFAULT_PER_DEPARTEMENT,
    DEFAULT_UPTAKE_RATE,
    METRIC_CRS,
    METRIC_CRS_OVERSEAS,
    WGS84,
)
from diagnosis.siting import HOST_TYPES, STATUS_LABELS, solve_max_covering
from diagnosis.travel import Travel

MAISON = "maison_1000_jours"
#: Time limit (seconds) given to HiGHS for the national covering.
DEFAULT_PLAN_TIME_LIMIT_S = 40.0
#: ``method="auto"`` solves the whole covering exactly up to this many coverage pairs.
PLAN_EXACT_MAX_PAIRS = 300_000
#: Candidates kept for the exact solve of a larger instance (best single gains first).
DEFAULT_POOL_SIZE = 1_000
#: Candidate kinds.
KIND_EXISTING = "existante"
KIND_CANDIDATE = "candidate"


@dataclass(frozen=True)
class NationalPlan:
    """A national plan: new Maisons for France and for each département, explained.

    Attributes
    ----------
    layers
        ``"sites"`` (GeoDataFrame, EPSG:4326): the new Maisons for France, in opening
        order: ``rank``, ``facility_id``, ``name``, ``type``, ``code_insee``,
        ``commune``, ``dep_code``, ``dep_name``, ``marginal_families``,
        ``cumulative_families``, ``n_communes``, ``explanation``.
        ``"existing"`` (GeoDataFrame): the existing Maisons, fixed, with ``families_within``
        (births within reach of that Maison).
        ``"departements"`` (DataFrame): one row per département: ``dep_code``,
        ``dep_name``, ``n_communes``, ``n_communes_unknown`` (births not known),
        ``births``, ``births_served_before``, ``n_existing``, ``n_new_national``,
        ``families_new_national``, ``own_sites`` (names of the département's own answer),
        ``own_families`` (families its own answer reaches).
        ``"departement_sites"`` (GeoDataFrame): each département's own answer, with
        ``dep_code``, ``rank`` and ``marginal_families``.
        ``"communes"`` (DataFrame): the demand points (``code_insee``, ``name``,
        ``dep_code``, ``births``, ``lon``, ``lat``, ``served_before``, ``served_after``).
        ``"curve"`` (DataFrame): ``k``, ``marginal_families``, ``cumulative_families``,
        ``share_served`` (of known births, existing Maisons included), ``part``
        (``"plan"`` for the chosen sites, ``"au-delà"`` for the greedy extension).
    summary
        Totals and the solver outcome (see :func:`compute_national_plan`).
    params
        The parameters.
    """

    layers: dict[str, Any]
    summary: dict[str, Any]
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def sites(self) -> gpd.GeoDataFrame:
        """The new Maisons for France, in opening order."""
        return self.layers["sites"]


def dep_of(code: str) -> str:
    """Département of an INSEE commune code.

    Examples
    --------
    >>> dep_of("44129"), dep_of("2A004"), dep_of("97411")
    ('44', '2A', '974')
    """
    code = str(code)
    return code[:3] if code.startswith("97") else code[:2]


def metric_crs_of(dep_code: str) -> str:
    """Metric CRS of a département: EPSG:2154, or the local UTM overseas.

    Examples
    --------
    >>> metric_crs_of("44"), metric_crs_of("974")
    ('EPSG:2154', 'EPSG:2975')
    """
    return METRIC_CRS_OVERSEAS.get(str(dep_code), METRIC_CRS)


def town_hall_candidates(communes: gpd.GeoDataFrame | pd.DataFrame) -> gpd.GeoDataFrame:
    """One candidate per commune whose town hall is known (``townhall_lon``/``_lat``).

    The shipped national geography gives every commune's town hall: a national candidate
    set (a Maison may sit in a mairie). Ids are ``mairie:<code_insee>``.

    Examples
    --------
    >>> c = pd.DataFrame({"code_insee": ["44129", "44003"], "name": ["Pontchâteau", "X"],
    ...                   "townhall_lon": [-2.09, np.nan], "townhall_lat": [47.43, np.nan]})
    >>> town_hall_candidates(c)[["facility_id", "name"]].values.tolist()
    [['mairie:44129', 'Mairie de Pontchâteau']]
    """
    if not {"townhall_lon", "townhall_lat"} <= set(communes.columns):
        return gpd.GeoDataFrame({"facility_id": [], "type": [], "name": [], "code_insee": []},
                                geometry=gpd.GeoSeries([], crs=WGS84), crs=WGS84)
    lon = pd.to_numeric(communes["townhall_lon"], errors="coerce")
    lat = pd.to_numeric(communes["townhall_lat"], errors="coerce")
    ok = (lon.notna() & lat.notna()).to_numpy()
    com = communes.loc[ok]
    return gpd.GeoDataFrame({
        "facility_id": "mairie:" + com["code_insee"].astype(str),
        "type": "mairie",
        "name": "Mairie de " + com["name"].astype(str),
        "code_insee": com["code_insee"].astype(str),
    }, geometry=gpd.points_from_xy(lon[ok], lat[ok]), crs=WGS84).reset_index(drop=True)


def plan_candidates(facilities: gpd.GeoDataFrame, communes: gpd.GeoDataFrame, *,
                    host_types: Sequence[str] = HOST_TYPES) -> gpd.GeoDataFrame:
    """Host structures of ``facilities`` plus the town halls of ``communes``.

    A commune whose town hall is already among the loaded facilities (type ``mairie``,
    same ``code_insee``) keeps the loaded one (it carries contacts and provenance).
    """
    bad = [t for t in host_types if t not in (*HOST_TYPES, "maternite", "mam", "sage_femme")]
    if bad:
        raise InputError(f"host_types={bad!r} are not host types; use some of "
                         f"{list(HOST_TYPES)}", argument="host_types", value=bad,
                         fr=f"types de lieux d'accueil inconnus : {', '.join(bad)} ; "
                            f"choisissez parmi {', '.join(HOST_TYPES)}")
    fac = facilities.loc[facilities["type"].isin(host_types),
                         ["facility_id", "type", "name", "code_insee", "geometry"]]
    fac = fac.to_crs(WGS84) if fac.crs is not None and not fac.crs.equals(WGS84) else fac
    parts = [pd.DataFrame(fac)]
    if "mairie" in host_types:
        halls = town_hall_candidates(communes)
        loaded = set(fac.loc[fac["type"].eq("mairie"), "code_insee"].astype(str))
        halls = halls.loc[~halls["code_insee"].isin(loaded)
                          & ~halls["facility_id"].isin(set(fac["facility_id"]))]
        parts.append(pd.DataFrame(halls))
    out = pd.concat(parts, ignore_index=True)
    return gpd.GeoDataFrame(out, geometry="geometry", crs=WGS84)


def compute_national_plan(
    communes: gpd.GeoDataFrame,
    candidates: gpd.GeoDataFrame,
    maisons: gpd.GeoDataFrame,
    *,
    new: int,
    max_minutes: float,
    travel: Travel | None = None,
    births_col: str = "births_2024",
    dep_names: Mapping[str, str] | None = None,
    per_departement: int = DEFAULT_PER_DEPARTEMENT,
    curve_max: int | None = None,
    min_families: float | None = None,
    method: str = "auto",
    time_limit_s: float = DEFAULT_PLAN_TIME_LIMIT_S,
    pool_size: int = DEFAULT_POOL_SIZE,
) -> NationalPlan:
    """Open ``new`` Maisons to reach the most families no existing Maison reaches.

    Parameters
    ----------
    communes
        Communes of the plan's territory: ``code_insee``, ``name``, ``dep_code``,
        ``births_col`` (NaN when not known: counted apart, never as 0) and a polygon or
        ``point_lon``/``point_lat``/``townhall_lon``/``townhall_lat``.
    candidates
        Candidate host sites (:func:`plan_candidates`): ``facility_id``, ``type``,
        ``name``, ``code_insee``, point geometry.
    maisons
        Existing Maisons (fixed): ``facility_id``, ``name``, ``code_insee``, points.
    new
        New Maisons for France (>= 1).
    max_minutes
        A family is reached when its commune's point is within this travel time.
    travel
        How times are computed (default: the crow-fly driving estimate).
    dep_names
        Département code -> name, for the tables.
    per_departement
        New sites of each département's own answer (>= 1).
    curve_max
        Length of the curve (default ``max(2 * new, new + 20)``).
    min_families
        Families per year below which one more Maison "stops paying" (default: one peer
        group a year, ``DEFAULT_GROUP_SIZE / DEFAULT_UPTAKE_RATE``).
    method, time_limit_s
        Passed to :func:`diagnosis.siting.solve_max_covering`. With ``"auto"``, an
        instance of at most :data:`PLAN_EXACT_MAX_PAIRS` pairs is solved exactly by
        HiGHS; a larger one (France: about 1.8 million pairs, whose linear relaxation
        alone takes HiGHS minutes here) by greedy + swap on every candidate, then
        exactly by HiGHS on the ``pool_size`` candidates with the largest single gain
        plus the greedy ones; the better answer is kept (``method`` says which).
    pool_size
        Candidates of that restricted exact solve.

    Returns
    -------
    NationalPlan
        ``summary`` holds ``births_total`` (known), ``n_communes``,
        ``n_communes_unknown``, ``births_served_before``, ``births_served_after``,
        ``share_before``, ``share_after`` (of known births), ``families_new``,
        ``n_existing``, ``n_candidates``, ``n_pairs``, ``status``, ``status_label``,
        ``gap``, ``method``, ``stop_paying_at`` (first rank whose marginal gain is below
        ``min_families``, None when none is), ``min_families``, ``travel_label``,
        ``runtime_s`` and ``notes`` (French).

    Raises
    ------
    InputError
        ``new`` or ``per_departement`` below 1, more new sites than candidates, no
        commune with known births, a bad threshold.
    """
    t0 = time.perf_counter()
    travel = travel or Travel(mode="drive")
    new = _whole(new, "new", "--new")
    per_departement = _whole(per_departement, "per_departement", "--per-departement")
    _check_minutes(max_minutes)
    min_families = float(DEFAULT_GROUP_SIZE / DEFAULT_UPTAKE_RATE if min_families is None
                         else min_families)
    dep_names = dict(dep_names or {})

    com = _demand(communes, births_col)
    if not np.isfinite(com["births"]).any():
        raise InputError("no commune has known births", argument=births_col,
                         fr="aucune commune n'a de naissances connues : donnez le fichier "
                            "INSEE du comparateur de territoires (naissances NAISDxx)")
    sites = _sites(maisons, candidates)
    n_existing = int((sites["kind"] == KIND_EXISTING).sum())
    n_free = len(sites) - n_existing
    if new > n_free:
        raise InputError(f"new={new} exceeds the {n_free} candidate sites",
                         argument="--new", value=new,
                         fr=f"--new {new} : seulement {n_free} lieux candidats (structures "
                            "d'accueil et mairies) ; demandez moins de nouvelles Maisons")
    a = _coverage(com, sites, travel, float(max_minutes))
    w = np.nan_to_num(com["births"].to_numpy(dtype=float), nan=0.0)
    fixed = np.flatnonzero(sites["kind"].to_numpy() == KIND_EXISTING)
    before = _covered_by(a, fixed)

    selected, status, gap, how = _solve(a, w, new, fixed, method=method,
                                        time_limit_s=time_limit_s, pool_size=pool_size)
    order, gains, newly = _order_by_gain(a, w, before, selected)
    useless = int((gains <= 0).sum())  # nothing left to reach: such a site is no answer
    order, gains, newly = order[gains > 0], gains[gains > 0], newly[:int((gains > 0).sum())]
    curve_max = max(2 * new, new + 20) if curve_max is None else max(int(curve_max), new)
    after, more_gains = _beyond_plan(a, w, before, newly, taken=(fixed, order),
                                     count=curve_max - new)
    known = float(w.sum())
    curve = _curve(gains, more_gains, served_before=float(w[before].sum()), known=known)
    below = np.flatnonzero(curve["marginal_families"].to_numpy() < min_families)
    stop_at = int(below[0]) + 1 if below.size else None

    site_xy = _points_metric(sites)
    existing_tree = _trees(site_xy, sites, fixed)
    table = _site_rows(sites, order, gains, newly, com, existing_tree, site_xy,
                       max_minutes=float(max_minutes), dep_names=dep_names)
    dep_table, dep_sites = _departements(com, sites, a, w, before, order, gains,
                                         per_departement=per_departement, dep_names=dep_names,
                                         existing_tree=existing_tree, site_xy=site_xy,
                                         max_minutes=float(max_minutes))
    existing = sites.loc[fixed].copy()
    existing["families_within"] = np.asarray(a[:, fixed].T @ w).ravel() if fixed.size else []
    existing = existing.drop(columns=["kind"]).reset_index(drop=True)

    unknown = int((~np.isfinite(com["births"])).sum())
    notes = _notes(n_new=int(order.size), useless=useless, unknown=unknown,
                   n_existing=n_existing)
    summary = {
        "n_communes": int(len(com)), "n_communes_unknown": unknown,
        "births_total": known,
        "births_served_before": float(w[before].sum()),
        "births_served_after": float(w[before].sum() + gains.sum()),
        "share_before": float(w[before].sum() / known) if known else math.nan,
        "share_after": float((w[before].sum() + gains.sum()) / known) if known else math.nan,
        "families_new": float(gains.sum()),
        "n_new": int(order.size), "n_existing": n_existing, "n_candidates": n_free,
        "n_pairs": int(a.nnz), "status": status,
        "status_label": ("optimum non prouvé sur l'ensemble des lieux"
                         if status == "heuristic" else STATUS_LABELS.get(status, status)),
        "gap": gap, "method": how,
        "stop_paying_at": stop_at, "min_families": min_families,
        "travel_label": travel.label, "runtime_s": time.perf_counter() - t0,
        "notes": notes,
    }
    params = {"new": new, "max_minutes": float(max_minutes), "mode": travel.mode,
              "engine": travel.engine, "births_col": births_col,
              "per_departement": per_departement, "curve_max": curve_max, "method": method,
              "time_limit_s": time_limit_s}
    layers = {"sites": table, "existing": existing, "departements": dep_table,
              "departement_sites": dep_sites, "curve": curve,
              "communes": _communes_served(com, before, after)}
    return NationalPlan(layers, summary, params)


def _beyond_plan(a: sparse.csc_matrix, w: np.ndarray, before: np.ndarray,
                 newly: Sequence[np.ndarray], *, taken: Sequence[np.ndarray],
                 count: int) -> tuple[np.ndarray, np.ndarray]:
    """Communes reached once the plan is open, and the gains of ``count`` more sites."""
    after = before.copy()
    for rows in newly:
        after[rows] = True
    free = np.ones(a.shape[1], dtype=bool)
    for columns in taken:  # the existing Maisons, the plan's sites
        free[columns] = False
    _more, more_gains, _ = _greedy_sequence(a, w, after, free, count)
    return after, more_gains


def _communes_served(com: gpd.GeoDataFrame, before: np.ndarray,
                     after: np.ndarray) -> pd.DataFrame:
    """Each commune, its births and whether a Maison reaches it before and after the plan."""
    return pd.DataFrame({
        "code_insee": com["code_insee"].to_numpy(), "name": com["name"].to_numpy(),
        "dep_code": com["dep_code"].to_numpy(), "births": com["births"].to_numpy(),
        "lon": com.geometry.x.to_numpy(), "lat": com.geometry.y.to_numpy(),
        "served_before": before, "served_after": after})


def _check_minutes(max_minutes: object) -> None:
    if not (isinstance(max_minutes, int | float) and math.isfinite(max_minutes)
            and max_minutes > 0):
        raise InputError(f"max_minutes={max_minutes!r} must be a positive number of minutes",
                         argument="--max-minutes", value=max_minutes,
                         fr=f"--max-minutes {max_minutes!r} : donnez un nombre de minutes "
                            "strictement positif, par exemple 30")


def _curve(gains: np.ndarray, more_gains: np.ndarray, *, served_before: float,
           known: float) -> pd.DataFrame:
    """Families reached by each more Maison: the plan's, then those beyond it."""
    all_gains = np.concatenate([gains, more_gains])
    return pd.DataFrame({
        "k": np.arange(1, all_gains.size + 1),
        "marginal_families": all_gains,
        "cumulative_families": np.cumsum(all_gains),
        "share_served": (served_before + np.cumsum(all_gains)) / known if known else np.nan,
        "part": ["plan"] * gains.size + ["au-delà"] * more_gains.size,
    })


def _notes(*, n_new: int, useless: int, unknown: int, n_existing: int) -> list[str]:
    """French notes of the plan: fewer sites than asked, unknown births, no Maison loaded."""
    notes = []
    if useless:
        notes.append(f"{n_new} nouvelle(s) Maison(s) seulement : au-delà, aucune famille "
                     "de plus ne serait à portée (toutes les naissances connues le sont déjà).")
    if unknown:
        notes.append(f"{unknown} commune(s) sans naissances connues : leurs familles ne sont "
                     "pas comptées (inconnues, pas zéro).")
    if not n_existing:
        notes.append("Aucune Maison existante chargée : toutes les naissances sont comptées "
                     "comme sans Maison à portée.")
    return notes


# --------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------
def _whole(value: Any, name: str, option: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise InputError(f"{name}={value!r} must be a whole number >= 1", argument=option,
                         value=value, fr=f"{option} {value!r} : donnez un nombre entier "
                                         "supérieur ou égal à 1")
    return int(value)


def _demand(communes: gpd.GeoDataFrame, births_col: str) -> gpd.GeoDataFrame:
    from diagnosis.overview import origin_points

    if births_col not in communes:
        raise InputError(f"communes lack {births_col!r}", argument=births_col,
                         fr="les communes n'ont pas de naissances : donnez le fichier INSEE du "
                            "comparateur de territoires")
    pts = origin_points(communes)
    ok = pts.notna() & ~pts.is_empty
    com = gpd.GeoDataFrame({
        "code_insee": communes["code_insee"].astype(str).to_numpy(),
        "name": communes["name"].astype(str).to_numpy() if "name" in communes
        else communes["code_insee"].astype(str).to_numpy(),
        "births": pd.to_numeric(communes[births_col], errors="coerce").to_numpy(dtype=float),
    }, geometry=pts.to_numpy(), crs=WGS84)
    com = com.loc[ok.to_numpy()].reset_index(drop=True)
    com["dep_code"] = (communes.loc[ok.to_numpy(), "dep_code"].astype(str).to_numpy()
                       if "dep_code" in communes else com["code_insee"].map(dep_of))
    # plain arrays for the explanations (one lookup per site, not per commune)
    com.attrs["names"] = dict(zip(com["code_insee"].tolist(), com["name"].tolist(),
                                  strict=True))
    com.attrs["name_list"] = com["name"].tolist()
    return com


def _sites(maisons: gpd.GeoDataFrame, candidates: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    cols = ["facility_id", "type", "name", "code_insee", "geometry"]
    parts = []
    for frame, kind in ((maisons, KIND_EXISTING), (candidates, KIND_CANDIDATE)):
        if frame is None or not len(frame):
            continue
        f = frame.to_crs(WGS84) if frame.crs is not None and not frame.crs.equals(WGS84) \
            else frame
        f = pd.DataFrame(f.loc[:, [c for c in cols if c in f.columns]]).copy()
        if "type" not in f:
            f["type"] = MAISON
        f["kind"] = kind
        parts.append(f)
    if not parts or not any((p["kind"] == KIND_CANDIDATE).any() for p in parts):
        raise InputError("no candidate site", argument="candidates",
                         fr="aucun lieu candidat : chargez des structures d'accueil ou la "
                            "géographie nationale (mairies)")
    out = gpd.GeoDataFrame(pd.concat(parts, ignore_index=True), geometry="geometry", crs=WGS84)
    out = out.loc[out.geometry.notna() & ~out.geometry.is_empty].reset_index(drop=True)
    out["code_insee"] = out["code_insee"].astype(str)
    out["dep_code"] = out["code_insee"].map(dep_of)
    return out


def _groups(deps: pd.Series) -> pd.Series:
    return deps.astype(str).map(metric_crs_of)


def _points_metric(frame: gpd.GeoDataFrame) -> np.ndarray:
    """x/y in the metric CRS of each row's département (EPSG:2154 or a local UTM)."""
    xy = np.full((len(frame), 2), np.nan)
    crs = _groups(frame["dep_code"])
    for c in crs.unique():
        idx = np.flatnonzero(crs.to_numpy() == c)
        pts = frame.geometry.iloc[idx].to_crs(c)
        xy[idx, 0], xy[idx, 1] = pts.x.to_numpy(), pts.y.to_numpy()
    return xy


def _coverage(com: gpd.GeoDataFrame, sites: gpd.GeoDataFrame, travel: Travel,
              max_minutes: float) -> sparse.csc_matrix:
    """Boolean communes x sites matrix of the pairs within ``max_minutes`` (sparse)."""
    o_xy, s_xy = _points_metric(com), _points_metric(sites)
    o_crs, s_crs = _groups(com["dep_code"]).to_numpy(), _groups(sites["dep_code"]).to_numpy()
    rows, cols = [], []
    for c in np.unique(o_crs):
        oi = np.flatnonzero(o_crs == c)
        si = np.flatnonzero(s_crs == c)
        if not oi.size or not si.size:
            continue
        eng = travel if c == METRIC_CRS else Travel(mode=travel.mode)  # graphs: mainland
        tt = eng.times(o_xy[oi], s_xy[si], max_minutes=max_minutes)
        coo = sparse.coo_array(tt.within)
        keep = coo.data <= max_minutes
        rows.append(oi[coo.row[keep]])
        cols.append(si[coo.col[keep]])
    r = np.concatenate(rows) if rows else np.zeros(0, np.int64)
    c_ = np.concatenate(cols) if cols else np.zeros(0, np.int64)
    mat = sparse.csc_matrix((np.ones(r.size, dtype=bool), (r, c_)),
                            shape=(len(com), len(sites)))
    mat.sum_duplicates()
    return mat


def _solve(a: sparse.csc_matrix, w: np.ndarray, k: int, fixed: np.ndarray, *, method: str,
           time_limit_s: float, pool_size: int) -> tuple[np.ndarray, str, float, str]:
    """Selected columns, status, gap and a French line saying how they were found."""
    if method != "auto" or a.nnz <= PLAN_EXACT_MAX_PAIRS:
        res = solve_max_covering(a, w, k, fixed=fixed, method=method,
                                 time_limit_s=time_limit_s)
        how = ("HiGHS, programme linéaire en nombres entiers sur tous les lieux candidats"
               if res.method == "exact" else "glouton puis échanges sur tous les lieux")
        return np.asarray(res.selected), res.status, res.gap, how
    greedy = solve_max_covering(a, w, k, fixed=fixed, method="greedy", n_starts=1)
    before = _covered_by(a, fixed)
    single = np.asarray(a.T @ np.where(before, 0.0, w)).ravel()
    single[fixed] = -np.inf
    top = np.lexsort((np.arange(single.size), -single))[:pool_size]
    cols = np.union1d(np.union1d(top, greedy.selected), fixed).astype(np.int64)
    sub = sparse.csc_matrix(a[:, cols])
    exact = solve_max_covering(sub, w, k, fixed=np.searchsorted(cols, fixed),
                               method="exact", time_limit_s=time_limit_s)
    pool = (f"HiGHS sur les {fr_number(cols.size - fixed.size)} lieux candidats au plus fort "
            "gain ; glouton puis échanges sur tous les lieux")
    if exact.objective > greedy.objective + 1e-9:
        return cols[np.asarray(exact.selected)], "heuristic", math.nan, pool
    return np.asarray(greedy.selected), "heuristic", math.nan, pool


def _covered_by(a: sparse.csc_matrix, cols: np.ndarray) -> np.ndarray:
    if not len(cols):
        return np.zeros(a.shape[0], dtype=bool)
    return np.asarray(a[:, np.asarray(cols, dtype=np.int64)].sum(axis=1)).ravel() > 0


# --------------------------------------------------------------------------------------
# Marginal gains
# --------------------------------------------------------------------------------------
def _order_by_gain(a: sparse.csc_matrix, w: np.ndarray, covered: np.ndarray,
                   selected: Sequence[int] | np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """Selected sites in opening order (largest marginal gain first), their gains, rows.

    Examples
    --------
    >>> a = sparse.csc_matrix(np.array([[1, 0], [1, 1], [0, 1]], dtype=bool))
    >>> o, g, _ = _order_by_gain(a, np.array([1.0, 5.0, 2.0]), np.zeros(3, bool), [0, 1])
    >>> o.tolist(), g.tolist()
    ([1, 0], [7.0, 1.0])
    """
    allowed = np.zeros(a.shape[1], dtype=bool)
    allowed[np.asarray(selected, dtype=np.int64)] = True
    return _greedy_sequence(a, w, covered, allowed, int(allowed.sum()))


def _greedy_sequence(a: sparse.csc_matrix, w: np.ndarray, covered: np.ndarray,
                     allowed: np.ndarray, steps: int
                     ) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """Lazy greedy over ``allowed`` columns: order, marginal gains, newly covered rows.

    Ties go to the lowest index; a stale gain is an upper bound (submodularity), so the
    gains come out non-increasing.
    """
    covered = covered.copy()
    indptr, indices = a.indptr, a.indices

    def gain(j: int) -> float:
        idx = indices[indptr[j]:indptr[j + 1]]
        return float(w[idx[~covered[idx]]].sum())

    heap = [(-gain(int(j)), int(j)) for j in np.flatnonzero(allowed)]
    heapq.heapify(heap)
    order: list[int] = []
    gains: list[float] = []
    rows: list[np.ndarray] = []
    while heap and len(order) < steps:
        _, j = heapq.heappop(heap)
        g = gain(j)
        if not heap or (-g, j) <= heap[0]:
            idx = indices[indptr[j]:indptr[j + 1]]
            fresh = idx[~covered[idx]]
            covered[fresh] = True
            order.append(j)
            gains.append(g)
            rows.append(fresh)
        else:
            heapq.heappush(heap, (-g, j))
    return np.asarray(order, dtype=np.int64), np.asarray(gains, dtype=float), rows


# --------------------------------------------------------------------------------------
# Tables and explanations
# --------------------------------------------------------------------------------------
def _trees(site_xy: np.ndarray, sites: gpd.GeoDataFrame,
           fixed: np.ndarray) -> dict[str, tuple[cKDTree, np.ndarray]]:
    """One k-d tree of existing Maisons per metric CRS."""
    out: dict[str, tuple[cKDTree, np.ndarray]] = {}
    if not fixed.size:
        return out
    crs = _groups(sites["dep_code"]).to_numpy()
    for c in np.unique(crs[fixed]):
        idx = fixed[crs[fixed] == c]
        out[c] = (cKDTree(site_xy[idx]), idx)
    return out


def _nearest_existing(j: int, sites: gpd.GeoDataFrame, site_xy: np.ndarray,
                      trees: Mapping[str, tuple[cKDTree, np.ndarray]],
                      names: Mapping[str, str] | None = None) -> str:
    c = metric_crs_of(sites["dep_code"].iat[j])
    if c not in trees:
        return "aucune Maison connue dans la même zone (métropole ou département d'outre-mer)"
    tree, idx = trees[c]
    d, k = tree.query(site_xy[j])
    m = sites.iloc[idx[int(k)]]
    where = (names or {}).get(str(m["code_insee"]), str(m["code_insee"]))
    return (f"Maison connue la plus proche : {m['name']} ({where}), à "
            f"{fr_number(d / 1000)} km à vol d'oiseau")


def _explain(j: int, gain: float, rows: np.ndarray, com: gpd.GeoDataFrame,
             sites: gpd.GeoDataFrame, site_xy: np.ndarray,
             trees: Mapping[str, tuple[cKDTree, np.ndarray]], *, max_minutes: float) -> str:
    s = sites.iloc[j]
    births = com["births"].to_numpy()[rows]
    names = com.attrs["name_list"]
    text = (f"{s['name']} ({facility_label(str(s['type']))}) : {fr_number(gain)} naissance(s) "
            f"par an sans Maison à portée seraient à moins de {fr_number(max_minutes)} min, "
            f"dans {len(rows)} commune(s)")
    if len(rows):
        big = int(np.nanargmax(np.nan_to_num(births, nan=-1.0)))
        text += (f", dont {names[int(rows[big])]} "
                 f"({fr_number(births[big])} naissances)")
    return text + ". " + _nearest_existing(j, sites, site_xy, trees,
                                           com.attrs.get("names")) + "."


def _site_rows(sites: gpd.GeoDataFrame, order: np.ndarray, gains: np.ndarray,
               newly: Sequence[np.ndarray], com: gpd.GeoDataFrame,
               trees: Mapping[str, tuple[cKDTree, np.ndarray]], site_xy: np.ndarray, *,
               max_minutes: float, dep_names: Mapping[str, str],
               rank_start: int = 1) -> gpd.GeoDataFrame:
    names = com.attrs["names"]
    chosen = sites.iloc[order]
    return gpd.GeoDataFrame({
        "rank": np.arange(rank_start, rank_start + order.size),
        "facility_id": chosen["facility_id"].to_numpy(),
        "name": chosen["name"].to_numpy(),
        "type": chosen["type"].to_numpy(),
        "code_insee": chosen["code_insee"].to_numpy(),
        "commune": [names.get(c, c) for c in chosen["code_insee"]],
        "dep_code": chosen["dep_code"].to_numpy(),
        "dep_name": [dep_names.get(d, d) for d in chosen["dep_code"]],
        "marginal_families": gains,
        "cumulative_families": np.cumsum(gains),
        "n_communes": [len(r) for r in newly],
        "explanation": [_explain(int(j), float(g), r, com, sites, site_xy, trees,
                                 max_minutes=max_minutes)
                        for j, g, r in zip(order, gains, newly, strict=True)],
    }, geometry=chosen.geometry.to_numpy(), crs=WGS84)


def _departements(com: gpd.GeoDataFrame, sites: gpd.GeoDataFrame, a: sparse.csc_matrix,
                  w: np.ndarray, before: np.ndarray, order: np.ndarray, gains: np.ndarray,
                  *, per_departement: int, dep_names: Mapping[str, str],
                  existing_tree: Mapping[str, tuple[cKDTree, np.ndarray]],
                  site_xy: np.ndarray, max_minutes: float
                  ) -> tuple[pd.DataFrame, gpd.GeoDataFrame]:
    """One row per département and each département's own answer (its sites only)."""
    deps = com["dep_code"].to_numpy()
    site_dep = sites["dep_code"].to_numpy()
    is_free = sites["kind"].to_numpy() == KIND_CANDIDATE
    nat_dep = pd.Series(gains, index=site_dep[order]).groupby(level=0)
    rows, answers = [], []
    a_csr = a.tocsr()
    for d in sorted(set(deps)):
        ri = np.flatnonzero(deps == d)
        births = com["births"].to_numpy()[ri]
        known = np.isfinite(births)
        ci = np.flatnonzero(is_free & (site_dep == d))
        own_names: list[str] = []
        own_total = 0.0
        if ci.size and np.isfinite(births).any():
            sub = sparse.csc_matrix(a_csr[ri][:, ci])
            wd = np.where(before[ri], 0.0, np.nan_to_num(births, nan=0.0))
            k = min(per_departement, ci.size)
            if wd.sum() > 0:
                res = solve_max_covering(sub, wd, k, method="auto", time_limit_s=10.0)
                o, g, newly = _order_by_gain(sub, wd, before[ri], res.selected)
                keep = g > 0
                o, g = o[keep], g[keep]
                newly = [ri[r] for r, k_ in zip(newly, keep, strict=True) if k_]
                if o.size:
                    part = _site_rows(sites, ci[o], g, newly, com, existing_tree, site_xy,
                                      max_minutes=max_minutes, dep_names=dep_names)
                    answers.append(part)
                    own_names = part["name"].tolist()
                    own_total = float(g.sum())
        n_new = int((site_dep[order] == d).sum())
        rows.append({
            "dep_code": d, "dep_name": dep_names.get(d, d), "n_communes": int(ri.size),
            "n_communes_unknown": int((~known).sum()),
            "births": float(np.nansum(births)) if known.any() else math.nan,
            "births_served_before": float(np.nansum(births[before[ri]]))
            if known.any() else math.nan,
            "n_existing": int(((sites["kind"] == KIND_EXISTING).to_numpy()
                               & (site_dep == d)).sum()),
            "n_new_national": n_new,
            "families_new_national": float(nat_dep.sum().get(d, 0.0)) if n_new else 0.0,
            "own_sites": " ; ".join(own_names),
            "own_families": own_total,
        })
    table = pd.DataFrame(rows)
    if answers:
        dep_sites = gpd.GeoDataFrame(pd.concat(answers, ignore_index=True), geometry="geometry",
                                     crs=WGS84)
    else:
        dep_sites = _site_rows(sites, np.zeros(0, np.int64), np.zeros(0), [], com, {},
                               site_xy, max_minutes=max_minutes, dep_names=dep_names)
    return table, dep_sites
