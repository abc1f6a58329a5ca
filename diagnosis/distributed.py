"""Road-network accessibility for many départements, one Dask task per département.

A road graph of all France does not fit on one machine; a département's graph with a
border buffer does. :func:`compute_travel_times_by_departement` splits the communes by
département, gives each task the facilities within ``border_buffer_m`` of the
département's communes (so that families near a border reach the next département's
services), loads the département's graph *on the worker* through a loader callable,
and merges the sparse pairs into the same ``{type: TravelTimes}`` mapping as
:func:`diagnosis.accessibility.compute_travel_times_by_type` on one machine: the
indicators (:func:`compute_access_by_departement`) are then computed once, on the whole
territory, so a facility serving two départements gets one E2SFCA ratio from all the
families in its catchment.

Results equal the single-machine path on the same inputs as long as the loader's graph
holds every road of the trips within the cutoff: a graph of the département buffered by
``border_buffer_m`` does (no trip within ``max_minutes`` leaves that disc).

The tasks run on ``dask.distributed``: a :class:`distributed.LocalCluster` by default,
an existing cluster with ``scheduler_address="tcp://HOST:PORT"``, or a ``client`` you
already hold. This module imports ``distributed`` only when it runs tasks.

See Also
--------
guides/accessibilite.md : the method guide (in French).
"""

from __future__ import annotations

import contextlib
import functools
import re
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
from scipy.spatial import cKDTree

from diagnosis.accessibility import (
    AccessIndicators,
    Decay,
    _types,
    commune_points_xy,
    compute_access_indicators,
    facility_points_xy,
)
from diagnosis.errors import InputError, SourceError, check_positive
from diagnosis.travel import (
    DEFAULT_MAX_SNAP_M,
    ENGINE_ROAD,
    RoadGraph,
    TravelTimes,
    compute_travel_times,
    pairs_to_csr,
    snap_points,
)

#: Highest road speed (km/h) used for the default border buffer: no trip of
#: ``max_minutes`` goes farther than ``max_minutes × 130 km/h`` as the crow flies.
BORDER_SPEED_KMH = 130.0

#: A loader returns the road graph of one département (with its border buffer).
GraphLoader = Callable[[str], RoadGraph]

#: A progress callback receives ``(departement, n_done, n_total)`` after each task.
ProgressCallback = Callable[[str, int, int], None]

_SCHEDULER_RE = re.compile(r"^(tcp|tls|inproc|ucx|ws|wss)://[^\s:/]+(:\d+)?(/.*)?$")


def departement_of(code_insee: str) -> str:
    """Département code of an INSEE commune code.

    Examples
    --------
    >>> departement_of("44129"), departement_of("2A004"), departement_of("97411")
    ('44', '2A', '974')
    """
    code = str(code_insee).strip()
    if len(code) != 5:
        raise InputError(f"code_insee {code_insee!r} is not a 5-character INSEE code")
    return code[:3] if code.startswith("97") else code[:2]


@dataclass(frozen=True)
class _TypePairs:
    """One département's result for one facility type (local origin rows, global cols)."""

    rows: np.ndarray
    cols: np.ndarray
    minutes: np.ndarray
    nearest: np.ndarray
    dest_cols: np.ndarray
    dest_snap_m: np.ndarray
    dest_flagged: np.ndarray
    n_disconnected: int


@dataclass(frozen=True)
class _TaskResult:
    departement: str
    origin_rows: np.ndarray
    origin_snap_m: np.ndarray
    origin_flagged: np.ndarray
    mode: str
    max_snap_m: float
    by_type: dict[str, _TypePairs]


def _departement_task(
    departement: str,
    graph_loader: GraphLoader,
    origin_rows: np.ndarray,
    origins_xy: np.ndarray,
    destinations: dict[str, tuple[np.ndarray, np.ndarray]],
    max_minutes: float,
    max_snap_m: float,
) -> _TaskResult:
    """Travel times of one département's communes on its own graph (runs on a worker)."""
    graph = graph_loader(departement)
    if not isinstance(graph, RoadGraph):
        raise InputError(
            f"graph_loader({departement!r}) returned {type(graph).__name__}, not a RoadGraph; "
            "build it with road_graph_from_networkx or road_graph_from_arrays"
        )
    snapped = snap_points(graph, origins_xy, max_snap_m=max_snap_m)
    by_type: dict[str, _TypePairs] = {}
    for ftype, (cols, xy) in destinations.items():
        if cols.size == 0:
            by_type[ftype] = _TypePairs(
                rows=np.empty(0, np.int64), cols=np.empty(0, np.int64), minutes=np.empty(0),
                nearest=np.full(origin_rows.size, np.inf), dest_cols=cols,
                dest_snap_m=np.empty(0), dest_flagged=np.zeros(0, bool), n_disconnected=0)
            continue
        tt = compute_travel_times(graph, origins_xy, xy, max_minutes=max_minutes,
                                  max_snap_m=max_snap_m)
        coo = tt.within.tocoo()
        by_type[ftype] = _TypePairs(
            rows=np.asarray(coo.row, np.int64), cols=cols[np.asarray(coo.col, np.int64)],
            minutes=np.asarray(coo.data, float), nearest=tt.nearest_minutes, dest_cols=cols,
            dest_snap_m=tt.destination_snap_m, dest_flagged=tt.destination_flagged,
            n_disconnected=tt.n_disconnected)
    return _TaskResult(departement=departement, origin_rows=origin_rows,
                       origin_snap_m=snapped.distance_m, origin_flagged=snapped.flagged,
                       mode=graph.mode, max_snap_m=snapped.max_snap_m, by_type=by_type)


def compute_travel_times_by_departement(
    communes_gdf: gpd.GeoDataFrame,
    facilities_gdf: gpd.GeoDataFrame,
    graph_loader: GraphLoader,
    *,
    max_minutes: float,
    departement_col: str | None = None,
    border_buffer_m: float | None = None,
    facility_types: Sequence[str] | None = None,
    max_snap_m: float = DEFAULT_MAX_SNAP_M,
    scheduler_address: str | None = None,
    n_workers: int | None = None,
    processes: bool = True,
    client: Any = None,
    progress: ProgressCallback | None = None,
) -> dict[str, TravelTimes]:
    """Road travel times from communes to facilities, one Dask task per département.

    Parameters
    ----------
    communes_gdf
        Communes (polygons or points) with ``code_insee``: the rows of every matrix.
    facilities_gdf
        Facilities in the schema (``type``); the columns of type ``t`` are its rows of
        that type in table order, as in
        :func:`~diagnosis.accessibility.compute_travel_times_by_type`.
    graph_loader
        ``graph_loader(departement) -> RoadGraph``: the département's road graph with a
        border of at least ``border_buffer_m``. It runs on the workers, so it must be
        picklable (a module-level function or a :func:`functools.partial` of one) when
        the workers are processes.
    max_minutes
        Routing cutoff.
    departement_col
        Column with the département of each commune; default: derived from
        ``code_insee`` (:func:`departement_of`).
    border_buffer_m
        Facilities within this distance of a commune of the département are routed to;
        default ``max_minutes × 130 km/h`` (:data:`BORDER_SPEED_KMH`), which no trip
        within the cutoff exceeds.
    facility_types
        Types to compute; default the types present in ``facilities_gdf``.
    max_snap_m
        Snap limit for communes and facilities.
    scheduler_address
        ``"tcp://HOST:PORT"`` of a running Dask scheduler; default a local cluster.
    n_workers, processes
        Size and kind of the local cluster (``processes=False``: threads in this
        process, for tests and small runs).
    client
        A ``distributed.Client`` to use as is (then the two options above are ignored).
    progress
        Called as ``progress(departement, n_done, n_total)`` when each task ends.

    Returns
    -------
    dict of str to TravelTimes
        Sparse pairs merged over all départements. ``destination_snap_m`` is NaN for
        a facility no département routed to (farther than ``border_buffer_m`` from
        every commune); its pairs count as beyond the cutoff.

    Raises
    ------
    InputError
        Missing columns, a bad ``scheduler_address``, non-positive distances, a loader
        that does not return a :class:`~diagnosis.travel.RoadGraph`.
    SourceError
        A task failed on a worker (the message names the département).
    ImportError
        ``dask[distributed]`` is not installed.
    """
    cutoff = check_positive(max_minutes, "max_minutes")
    buffer_m = (cutoff / 60.0 * BORDER_SPEED_KMH * 1000.0 if border_buffer_m is None
                else check_positive(border_buffer_m, "border_buffer_m"))
    if "code_insee" not in communes_gdf.columns:
        raise InputError(f"communes_gdf lacks column 'code_insee'; found "
                         f"{list(communes_gdf.columns)}")
    if "type" not in facilities_gdf.columns:
        raise InputError("facilities_gdf lacks the 'type' column; validate it with the schema")
    if departement_col is not None and departement_col not in communes_gdf.columns:
        raise InputError(f"departement_col={departement_col!r} is not a column of "
                         f"communes_gdf; found {list(communes_gdf.columns)}")
    if client is None and scheduler_address is None and processes:
        # the local workers' imports start now, while the tasks are prepared here
        start_worker_server(preload_modules=_module_of(graph_loader))
    origins = commune_points_xy(communes_gdf)
    deps = (communes_gdf[departement_col].astype(str).to_numpy() if departement_col
            else np.array([departement_of(c) for c in communes_gdf["code_insee"]]))
    types = _types(facilities_gdf, facility_types)
    fac_xy: dict[str, np.ndarray] = {}
    for ftype in types:
        sub = facilities_gdf[facilities_gdf["type"] == ftype]
        if len(sub):
            fac_xy[ftype] = facility_points_xy(sub)

    tasks = []
    for dep in sorted(set(deps.tolist())):
        rows = np.flatnonzero(deps == dep)
        tree = cKDTree(origins[rows])
        dests: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for ftype, xy in fac_xy.items():
            dist, _ = tree.query(xy, k=1, distance_upper_bound=buffer_m)
            cols = np.flatnonzero(np.isfinite(dist))
            dests[ftype] = (cols, xy[cols])
        tasks.append((dep, rows, origins[rows], dests))

    results = _run_tasks(tasks, graph_loader, cutoff, max_snap_m, progress=progress,
                         scheduler_address=scheduler_address, n_workers=n_workers,
                         processes=processes, client=client)
    return _merge(results, origins.shape[0], {t: xy.shape[0] for t, xy in fac_xy.items()},
                  cutoff, buffer_m)


def compute_access_by_departement(
    communes_gdf: gpd.GeoDataFrame,
    facilities_gdf: gpd.GeoDataFrame,
    graph_loader: GraphLoader,
    *,
    max_minutes: float,
    routing_max_minutes: float | None = None,
    births_col: str = "births_2024",
    decay: Decay | None = None,
    facility_types: Sequence[str] | None = None,
    **options: Any,
) -> AccessIndicators:
    """Accessibility indicators of many départements routed on Dask, merged as one table.

    The travel times come from :func:`compute_travel_times_by_departement` (``options``
    go there: ``departement_col``, ``border_buffer_m``, ``max_snap_m``,
    ``scheduler_address``, ``n_workers``, ``processes``, ``client``, ``progress``);
    the indicators from :func:`~diagnosis.accessibility.compute_access_indicators` on
    the whole territory, so the table is the one the single-machine path gives.

    Parameters
    ----------
    communes_gdf, facilities_gdf, graph_loader
        As in :func:`compute_travel_times_by_departement`; ``communes_gdf`` also holds
        ``births_col``.
    max_minutes
        Accessibility threshold.
    routing_max_minutes
        Routing cutoff (>= ``max_minutes``); default ``max_minutes``.
    births_col, decay, facility_types
        As in :func:`~diagnosis.accessibility.compute_access_indicators`.

    Returns
    -------
    AccessIndicators
    """
    top = check_positive(max_minutes, "max_minutes")
    cutoff = top if routing_max_minutes is None else check_positive(routing_max_minutes,
                                                                     "routing_max_minutes")
    tt = compute_travel_times_by_departement(communes_gdf, facilities_gdf, graph_loader,
                                             max_minutes=cutoff,
                                             facility_types=facility_types, **options)
    types = list(facility_types) if facility_types is not None else list(tt)
    return compute_access_indicators(communes_gdf, facilities_gdf, tt, births_col=births_col,
                                     max_minutes=top, decay=decay, facility_types=types)


# --------------------------------------------------------------------------------------
# Dask plumbing
# --------------------------------------------------------------------------------------


def _import_distributed() -> Any:
    try:
        import distributed
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "diagnosis.distributed needs dask.distributed: pip install 'dask[distributed]' "
            "(the version pinned in requirements.txt)"
        ) from exc
    return distributed


#: Dask settings of a local cluster that only runs tasks (see :func:`dask_client`).
_QUIET_HOUSEKEEPING = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "1s",
    "distributed.admin.system-monitor.interval": "2s",
    "distributed.worker.memory.monitor-interval": "500ms",
}

#: Modules every local worker process needs for a task; the fork server imports them once.
WORKER_MODULES = ("distributed", "diagnosis.distributed")


@contextlib.contextmanager
def dask_client(
    *, scheduler_address: str | None = None, n_workers: int | None = None,
    processes: bool = True, connect_timeout_s: float = 5.0,
    preload_modules: Sequence[str] = (),
) -> Iterator[Any]:
    """A ``distributed.Client`` on ``scheduler_address`` or on a new local cluster.

    The local cluster has ``n_workers`` workers of one thread each (default: one per
    core) and no dashboard; it is closed on exit. Its scheduler gives a worker one
    task at a time, so that tasks queued with priorities run in that order on
    whichever worker frees up first (Dask queues a group of tasks sent together when it
    has more than twice as many tasks as threads; a smaller one is placed at once, two
    per worker at most). Its worker processes are forked from a
    ``multiprocessing`` fork server (Dask's ``distributed.worker.multiprocessing-method``
    set to ``"forkserver"``; spawned where there is none, as on Windows) that imports
    :data:`WORKER_MODULES` and ``preload_modules`` once, while the scheduler starts in
    this process: the workers start with everything imported, and on close they exit
    without tearing an interpreter down. The fork server lives as long as this process,
    so a second cluster starts in a fraction of a second.

    Parameters
    ----------
    scheduler_address
        ``"tcp://HOST:PORT"`` of a running scheduler; then the other options are unused.
    n_workers, processes
        Size and kind of the local cluster (``processes=False``: threads of this process).
    connect_timeout_s
        How long to wait for the scheduler at ``scheduler_address``.
    preload_modules
        More modules for the fork server to import (the graph loader's), when it starts.

    Raises
    ------
    InputError
        ``scheduler_address`` is not like ``"tcp://HOST:PORT"``.
    SourceError
        No scheduler answers at ``scheduler_address`` within ``connect_timeout_s``.
    """
    distributed = _import_distributed()
    if scheduler_address is not None:
        if not _SCHEDULER_RE.match(str(scheduler_address)):
            raise InputError(
                f"scheduler_address={scheduler_address!r} is not a Dask scheduler address; "
                "give it as 'tcp://HOST:PORT' (e.g. 'tcp://10.0.0.5:8786')",
                argument="--scheduler", value=scheduler_address,
                fr=f"--scheduler « {scheduler_address} » n'est pas l'adresse d'un "
                   "ordonnanceur Dask : écrivez tcp://HOTE:PORT (par exemple "
                   "tcp://10.0.0.5:8786)")
        try:
            client = distributed.Client(scheduler_address, timeout=connect_timeout_s)
        except (OSError, TimeoutError) as exc:
            raise SourceError(
                f"no Dask scheduler answers at {scheduler_address} within "
                f"{connect_timeout_s:g} s ({exc})", argument="--scheduler",
                value=scheduler_address,
                fr=f"aucun ordonnanceur Dask ne répond à l'adresse {scheduler_address} "
                   f"(attente de {connect_timeout_s:g} s) : vérifiez que le cluster est "
                   "démarré et joignable, ou retirez --scheduler pour calculer sur cette "
                   "machine") from None
        with client:
            yield client
        return
    if n_workers is not None and (not isinstance(n_workers, int) or n_workers < 1):
        raise InputError(f"n_workers={n_workers!r} must be a whole number >= 1")
    import dask

    # No dashboard; its HTTP server (health routes) still starts: on a free port, so
    # that two clusters on one machine do not fight over 8787. Dask starts its worker
    # processes with MALLOC_TRIM_THRESHOLD_ set, which makes glibc hand every large
    # temporary array of the routing back to the system and page-fault it in again on
    # the next Dijkstra (3-10x the system time, about 6 % of a 480k-node task in
    # bench/distributed.py); these workers live for one run, so they keep glibc's default.
    # The start method is set for the cluster's whole life (a nanny restarting a dead
    # worker forks it from the same server). A worker is given one task at a time
    # (worker-saturation 1.0; Dask's 1.1 rounds up to two per one-thread worker): the
    # others wait at the scheduler in priority order, so each worker that frees up takes
    # the largest département left (longest-first) rather than one bound to it with the
    # first tasks, which only Dask's work stealing could then move (Dask queues a group
    # only when it has more than twice as many tasks as threads: fewer are placed at once).
    # Housekeeping for the dashboard no one opens, every 10-500 ms in each worker and
    # in this process (statistical profiler, event-loop health ticks, system monitor,
    # memory monitor), costs 5-10 % of a core while both cores route: sampled less often
    # (1 % of a core, measured idle), the memory limits still checked twice a second.
    # (no fork server on Windows: Dask's spawn there)
    fork_server = processes and start_worker_server(preload_modules=preload_modules)
    with dask.config.set(
            {"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None,
             "distributed.scheduler.worker-saturation": 1.0,
             "distributed.worker.multiprocessing-method":
                 "forkserver" if fork_server else "spawn",
             **_QUIET_HOUSEKEEPING}), \
            distributed.LocalCluster(n_workers=n_workers, threads_per_worker=1,
                                     processes=processes, dashboard_address=None,
                                     scheduler_kwargs={"dashboard_address": ":0"}) as cluster, \
            distributed.Client(cluster) as client:
        yield client


def start_worker_server(*, preload_modules: Sequence[str] = ()) -> bool:
    """Start the fork server of local Dask workers now; it imports in the background.

    :func:`dask_client` starts it (if not yet running) when it starts a local cluster
    of processes; a command that will start one may call this first, so that the
    workers' imports (:data:`WORKER_MODULES`, ``preload_modules``, the main script) run
    in their own process while the command loads its data. The server lives as long as
    this process; once it runs, later calls change nothing.

    The server gets the environment Dask gives its workers before they import numpy
    (``distributed.nanny.pre-spawn-environ``: one BLAS/OpenMP thread, Dask's hash
    seed), except ``MALLOC_TRIM_THRESHOLD_`` (see :func:`dask_client`); this process's
    own environment is left as it was.

    Returns
    -------
    bool
        False where there is no fork server (Windows): the workers are then spawned.
    """
    import multiprocessing
    import multiprocessing.forkserver
    import os

    import dask

    if "forkserver" not in multiprocessing.get_all_start_methods():
        return False
    _import_distributed()  # (its configuration defaults, read below)
    # "__main__": a script's top level runs once in the server rather than again in
    # every worker (as spawn does); a ``python -m`` module never runs there.
    multiprocessing.get_context("forkserver").set_forkserver_preload(
        list(dict.fromkeys(["__main__", *WORKER_MODULES, *preload_modules])))
    env = {**dask.config.get("distributed.nanny.pre-spawn-environ"), "PYTHONHASHSEED": "6640",
           "MALLOC_TRIM_THRESHOLD_": None}
    # as the nanny does before a spawn, a variable already set in the environment wins
    added = {k: str(v) for k, v in env.items() if v is not None and k not in os.environ}
    os.environ.update(added)
    try:
        multiprocessing.forkserver.ensure_running()  # spawns the server, does not wait
    finally:
        for key in added:
            del os.environ[key]
    return True


def _module_of(graph_loader: GraphLoader) -> tuple[str, ...]:
    """The module a worker imports to unpickle ``graph_loader`` (none for ``__main__``).

    >>> import functools, json
    >>> _module_of(functools.partial(json.dumps, indent=1))
    ('json',)
    """
    func = graph_loader
    while isinstance(func, functools.partial):
        func = func.func
    module = getattr(func, "__module__", None) or type(func).__module__
    return () if not module or module in ("__main__", "builtins") else (module,)


def _run_tasks(
    tasks: list[tuple[str, np.ndarray, np.ndarray, dict[str, tuple[np.ndarray, np.ndarray]]]],
    graph_loader: GraphLoader,
    cutoff: float,
    max_snap_m: float,
    *,
    progress: ProgressCallback | None,
    scheduler_address: str | None,
    n_workers: int | None,
    processes: bool,
    client: Any,
) -> list[_TaskResult]:
    """Submit one task per département and gather them as they finish."""
    distributed = _import_distributed()
    with contextlib.ExitStack() as stack:
        if client is None:
            client = stack.enter_context(dask_client(
                scheduler_address=scheduler_address, n_workers=n_workers,
                processes=processes, preload_modules=_module_of(graph_loader)))
        from dask.base import annotate
        from dask.delayed import delayed

        run = uuid.uuid4().hex[:8]
        # Largest départements first (Dask runs higher priorities first): the small ones
        # then fill the gaps, and no worker is left alone with a big one at the end. A
        # task runs one Dijkstra per point of the smaller side of each type. The tasks go
        # to the scheduler as one graph, each with its priority: one at a time, the first
        # ones would be placed on the workers before the scheduler saw the others.
        work = [sum(min(rows.size, cols.size) for cols, _ in dests.values())
                for _, rows, _, dests in tasks]
        graph = []
        for (dep, rows, xy, dests), priority in zip(tasks, work, strict=True):
            with annotate(priority=priority):
                graph.append(delayed(_departement_task, pure=False)(
                    dep, graph_loader, rows, xy, dests, cutoff, max_snap_m,
                    dask_key_name=f"maillage-departement-{dep}-{run}"))
        futures = dict(zip(client.compute(graph), (t[0] for t in tasks), strict=True))
        out = []
        for i, fut in enumerate(distributed.as_completed(list(futures)), start=1):
            dep = futures[fut]
            try:
                res = fut.result()
            except InputError as exc:
                raise InputError(f"département {dep!r}: {exc}") from exc
            except Exception as exc:  # a worker error of any kind: name the département
                raise SourceError(f"the task of département {dep!r} failed on a Dask "
                                  f"worker: {type(exc).__name__}: {exc}") from exc
            out.append(res)
            if progress is not None:
                progress(dep, i, len(tasks))
    out.sort(key=lambda r: r.departement)
    return out


def _merge(
    results: list[_TaskResult], n_origins: int, n_by_type: dict[str, int], cutoff: float,
    buffer_m: float,
) -> dict[str, TravelTimes]:
    """Merge per-département results into one sparse TravelTimes per type."""
    snap = np.full(n_origins, np.nan)
    flagged = np.zeros(n_origins, dtype=bool)
    mode = results[0].mode if results else "drive"
    max_snap = results[0].max_snap_m if results else DEFAULT_MAX_SNAP_M
    for res in results:
        snap[res.origin_rows] = res.origin_snap_m
        flagged[res.origin_rows] = res.origin_flagged
    ok_o = int((~flagged).sum())
    out: dict[str, TravelTimes] = {}
    for ftype, m in n_by_type.items():
        rows, cols, minutes = [], [], []
        nearest = np.full(n_origins, np.inf)
        d_snap = np.full(m, np.nan)
        d_flag = np.zeros(m, dtype=bool)
        n_disc = 0
        for res in results:
            part = res.by_type[ftype]
            rows.append(res.origin_rows[part.rows])
            cols.append(part.cols)
            minutes.append(part.minutes)
            nearest[res.origin_rows] = part.nearest
            first = np.isnan(d_snap[part.dest_cols])
            d_snap[part.dest_cols[first]] = part.dest_snap_m[first]
            d_flag[part.dest_cols] |= part.dest_flagged
            n_disc += part.n_disconnected
        within = pairs_to_csr(np.concatenate(rows) if rows else np.empty(0, np.int64),
                              np.concatenate(cols) if cols else np.empty(0, np.int64),
                              np.concatenate(minutes) if minutes else np.empty(0),
                              (n_origins, m))
        ok_d = int((~d_flag).sum())
        out[ftype] = TravelTimes(
            within=within,
            nearest_minutes=nearest,
            origin_snap_m=snap.copy(),
            destination_snap_m=d_snap,
            origin_flagged=flagged.copy(),
            destination_flagged=d_flag,
            n_beyond_cutoff=ok_o * ok_d - within.nnz - n_disc,
            n_disconnected=n_disc,
            n_flagged_pairs=n_origins * m - ok_o * ok_d,
            engine=ENGINE_ROAD,
            mode=mode,
            max_minutes=cutoff,
            params={"max_snap_m": max_snap, "direction": "by_departement",
                    "n_departements": len(results), "border_buffer_m": buffer_m},
        )
    return out
