"""Tests of diagnosis.distributed: one Dask task per département, merged like one machine.

Two synthetic départements side by side on one grid road network (1 km between nodes,
one minute per edge, two-way), built with ``road_graph_from_arrays``; each task gets
only its département's part of the grid plus a border buffer, as a real loader would
return a buffered OSM graph. The single-machine path on the whole grid is the oracle.

Dask APIs relied on (dask/distributed ``distributed/deploy/local.py``: ``LocalCluster(
n_workers, threads_per_worker, processes, dashboard_address)``; ``distributed/client.py``:
``Client.submit(..., key=, pure=)``, ``as_completed``): checked against the installed
2026.8.0.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import functools
import os
import sys
import threading
import time

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest

from diagnosis.accessibility import compute_access_indicators, compute_travel_times_by_type
from diagnosis.distributed import (
    compute_access_by_departement,
    compute_travel_times_by_departement,
    dask_client,
    departement_of,
    start_worker_server,
)
from diagnosis.errors import InputError
from diagnosis.travel import road_graph_from_arrays

pytest.importorskip("distributed")

X0, Y0 = 300_000.0, 6_650_000.0
NX, NY = 41, 21  # 40 km x 20 km; département 44 west of x0 + 20 km, 85 east of it
BORDER_M = 20_000.0


def grid_graph(x_min_m: float = -np.inf, x_max_m: float = np.inf):
    """The grid (or the part of it between two abscissas, relative to X0)."""
    ix, iy = np.meshgrid(np.arange(NX), np.arange(NY), indexing="ij")
    ix, iy = ix.ravel(), iy.ravel()
    keep = (ix * 1000.0 >= x_min_m) & (ix * 1000.0 <= x_max_m)
    pos = -np.ones(ix.size, dtype=np.int64)
    pos[keep] = np.arange(int(keep.sum()))
    node = (ix * NY + iy).reshape(NX, NY)
    tails, heads = [], []
    for a, b in ((node[:-1, :], node[1:, :]), (node[:, :-1], node[:, 1:])):
        tails += [a.ravel(), b.ravel()]
        heads += [b.ravel(), a.ravel()]
    t, h = np.concatenate(tails), np.concatenate(heads)
    ok = keep[t] & keep[h]
    return road_graph_from_arrays(pos[t[ok]], pos[h[ok]], np.full(int(ok.sum()), 60.0),
                                  X0 + ix[keep] * 1000.0, Y0 + iy[keep] * 1000.0,
                                  mode="drive", osm_ids=np.flatnonzero(keep))


def departement_graph(departement: str, *, buffer_m: float):
    """Loader: the département's half of the grid plus ``buffer_m`` beyond its border."""
    if departement == "44":
        return grid_graph(-np.inf, BORDER_M + buffer_m)
    if departement == "85":
        return grid_graph(BORDER_M - buffer_m, np.inf)
    raise InputError(f"no graph for département {departement!r}")


@pytest.fixture(scope="module")
def territory():
    rng = np.random.default_rng(15)
    n = 60
    x = np.r_[rng.uniform(0, 19_900, n // 2), rng.uniform(20_100, 40_000, n // 2)]
    x[0] = 19_500.0  # a 44 commune by the border, whose nearest PMI is in 85
    y = rng.uniform(0, 20_000, n)
    y[0] = 10_000.0
    codes = [f"44{i:03d}" for i in range(1, n // 2 + 1)] + \
        [f"85{i:03d}" for i in range(1, n // 2 + 1)]
    communes = gpd.GeoDataFrame(
        {"code_insee": codes, "name": codes,
         "births_2024": np.where(rng.random(n) < 0.1, np.nan, rng.integers(0, 80, n))},
        geometry=gpd.points_from_xy(X0 + x, Y0 + y), crs="EPSG:2154")
    m = 30
    fx = rng.uniform(0, 40_000, m)
    fy = rng.uniform(0, 20_000, m)
    types = np.where(np.arange(m) % 3 == 0, "pmi", "eaje")
    # No PMI in the west half except far away; one just across the border from commune 0.
    west = (types == "pmi") & (fx < 20_000)
    fx[west] = rng.uniform(0, 3_000, int(west.sum()))
    fx[0], fy[0], types[0] = 21_000.0, 10_000.0, "pmi"
    cap = np.where(types == "eaje", rng.integers(10, 60, m).astype(float), np.nan)
    cap[1] = np.nan  # an EAJE of unknown capacity
    facilities = gpd.GeoDataFrame({"type": types, "capacity": cap},
                                  geometry=gpd.points_from_xy(X0 + fx, Y0 + fy),
                                  crs="EPSG:2154").to_crs("EPSG:4326")
    return communes, facilities


@pytest.fixture(scope="module")
def client():
    with dask_client(n_workers=1, processes=False) as c:
        yield c


def test_departement_of_codes():
    assert [departement_of(c) for c in ("01001", "2B033", "97101", "44129")] == \
        ["01", "2B", "971", "44"]
    with pytest.raises(InputError, match="'4412'"):
        departement_of("4412")


def test_dask_path_equals_single_machine_on_two_departements(territory, client):
    communes, facilities = territory
    single_tt = compute_travel_times_by_type(communes, facilities, max_minutes=12,
                                             graph=grid_graph())
    single = compute_access_indicators(communes, facilities, single_tt, max_minutes=8)
    seen = []
    loader = functools.partial(departement_graph, buffer_m=13_000.0)
    dask_tt = compute_travel_times_by_departement(
        communes, facilities, loader, max_minutes=12, border_buffer_m=12_500.0,
        client=client, progress=lambda dep, done, total: seen.append((dep, done, total)))
    assert sorted(seen) == [("44", 1, 2), ("85", 2, 2)] or \
        sorted(seen) == [("44", 2, 2), ("85", 1, 2)]
    for ftype, tt in single_tt.items():
        other = dask_tt[ftype]
        assert other.shape == tt.shape and other.n_pairs_within == tt.n_pairs_within > 0
        assert (other.within != tt.within).nnz == 0
        np.testing.assert_array_equal(other.nearest_minutes, tt.nearest_minutes)
        assert other.n_beyond_cutoff == tt.n_beyond_cutoff
        assert other.n_disconnected == tt.n_disconnected == 0
        assert other.n_flagged_pairs == tt.n_flagged_pairs
    merged = compute_access_by_departement(
        communes, facilities, loader, max_minutes=8, routing_max_minutes=12,
        border_buffer_m=12_500.0, client=client)
    pd.testing.assert_frame_equal(merged.table, single.table)
    pd.testing.assert_frame_equal(merged.summary, single.summary)
    # The 44 commune by the border reaches the PMI across it in 2 minutes (1.5 km + snap).
    assert merged.table.loc[0, "minutes_nearest_pmi"] == 2.0
    assert merged.table.loc[0, "reachable_pmi"] >= 1


def test_largest_departement_runs_first(territory, client):
    # 85 keeps its 30 communes, 44 only 4: 85 has more routing to do, so with one worker
    # it is done first although 44 comes first in code order.
    communes, facilities = territory
    part = communes[communes["code_insee"].str.startswith("85")
                    | communes["code_insee"].isin(["44001", "44002", "44003", "44004"])]
    order: list[str] = []
    compute_travel_times_by_departement(
        part, facilities, functools.partial(departement_graph, buffer_m=13_000.0),
        max_minutes=12, border_buffer_m=12_500.0, client=client,
        progress=lambda dep, done, total: order.append(dep))
    assert order == ["85", "44"]


def test_local_worker_processes_keep_glibc_default_trimming(monkeypatch):
    # Dask's default sets MALLOC_TRIM_THRESHOLD_ in its worker processes; ours do not.
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)
    with dask_client(n_workers=1, processes=True) as c:
        env = c.run(os.environ.get, "MALLOC_TRIM_THRESHOLD_")
    assert list(env.values()) == [None]


def test_local_workers_fork_from_a_server_that_imported_the_routing():
    # Workers forked from one fork server (not spawned by this process, which re-imported
    # everything in every worker), with the task's modules already imported there; the
    # server outlives the cluster, so a second cluster forks from it again; no worker
    # process outlives its cluster.
    psutil = pytest.importorskip("psutil")
    before = dict(os.environ)
    assert start_worker_server() is True  # Linux has a fork server
    assert dict(os.environ) == before  # the workers' environment is the server's only
    seen = []
    for _ in range(2):
        with dask_client(n_workers=2, processes=True) as c:
            pids = c.run(os.getpid)
            parents = set(c.run(os.getppid).values())
            loaded = c.run(lambda: [m in sys.modules
                                    for m in ("diagnosis.distributed", "scipy.spatial")])
        assert len(pids) == 2 and len(parents) == 1 and os.getpid() not in parents
        assert all(flags == [True, True] for flags in loaded.values())
        for pid in pids.values():
            with contextlib.suppress(psutil.NoSuchProcess):
                assert psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
        seen.append(parents)
    assert seen[0] == seen[1]


def test_local_cluster_housekeeping_wakes_no_more_than_twice_a_second():
    # Dask's defaults woke each worker's event loop every 10 ms (statistical profiler)
    # and 20 ms (health tick), and each server of this process every 20 ms: 10 % of a
    # core, idle, taken from the routing on a machine whose cores all route.
    def intervals_ms(dask_worker=None, dask_scheduler=None):
        server = dask_worker or dask_scheduler
        return {k: pc.callback_time for k, pc in server.periodic_callbacks.items()}

    with dask_client(n_workers=1, processes=True) as c:
        (worker,) = c.run(intervals_ms).values()
        scheduler = c.run_on_scheduler(intervals_ms)
    assert "profile" not in worker and min(worker.values()) >= 500
    assert scheduler["tick"] >= 500 and scheduler["monitor"] >= 500


def _scheduler_view(dask_scheduler):
    """Tasks per state, and tasks processing per worker, as the scheduler sees them."""
    states = pd.Series([ts.state for ts in dask_scheduler.tasks.values()]).value_counts()
    return states.to_dict(), sorted(len(ws.processing)
                                    for ws in dask_scheduler.workers.values())


RELEASE_HELD_TASKS = threading.Event()


def held_grid_graph(departement: str):
    """Loader (on thread workers): the whole grid, once the test releases the tasks."""
    RELEASE_HELD_TASKS.wait()
    return grid_graph()


def test_local_cluster_hands_each_worker_one_task_at_a_time(territory):
    # Six départements on two one-thread workers: one task runs on each, four wait at
    # the scheduler in priority order. Before, the tasks were submitted one by one and
    # the first four were placed two per worker at once (Dask queues a group only once
    # it is larger than twice the threads; its worker-saturation 1.1 rounds up to two
    # tasks per one-thread worker): a big département then waited on a busy worker
    # while the other took the small ones, and the longest-first order was lost.
    communes, facilities = territory
    six = communes.assign(dep=[f"{c[:2]}{i % 3}" for i, c in
                               enumerate(communes["code_insee"])])
    with dask_client(n_workers=2, processes=False) as c, \
            concurrent.futures.ThreadPoolExecutor(1) as pool:
        running = pool.submit(compute_travel_times_by_departement, six, facilities,
                              held_grid_graph, max_minutes=12, departement_col="dep",
                              border_buffer_m=12_500.0, client=c)
        view = None
        for _ in range(1000):  # until the scheduler has placed all six
            view = c.run_on_scheduler(_scheduler_view)
            if (sum(view[0].values()) == 6 and "released" not in view[0]) or running.done():
                break
            time.sleep(0.01)
        RELEASE_HELD_TASKS.set()
        tt = running.result()
    assert view == ({"processing": 2, "queued": 4}, [1, 1])
    assert tt["pmi"].params["n_departements"] == 6


def test_without_a_border_buffer_the_next_departement_is_out_of_reach(territory, client):
    communes, facilities = territory
    loader = functools.partial(departement_graph, buffer_m=0.0)
    res = compute_access_by_departement(communes, facilities, loader, max_minutes=8,
                                        border_buffer_m=1.0, client=client)
    # No graph crosses the border: commune 0 loses the PMI 1.5 km away.
    assert res.table.loc[0, "minutes_nearest_pmi"] > 2.0


def test_default_local_cluster_and_loader_errors(territory):
    communes, facilities = territory
    sub = communes.iloc[[0, 1, 40]]
    tt = compute_travel_times_by_departement(
        sub, facilities, functools.partial(departement_graph, buffer_m=13_000.0),
        max_minutes=12, n_workers=1, processes=False, facility_types=["pmi"])
    assert set(tt) == {"pmi"} and tt["pmi"].shape == (3, int((facilities["type"] == "pmi").sum()))
    assert tt["pmi"].params["n_departements"] == 2

    def bad_loader(dep):
        return "not a graph"

    with pytest.raises(InputError, match="département '44'.*not a RoadGraph"):
        compute_travel_times_by_departement(sub.iloc[[0]], facilities, bad_loader,
                                            max_minutes=12, n_workers=1, processes=False)


@pytest.mark.parametrize("address", ["localhost:8786", "http://x:1", "tcp://"])
def test_bad_scheduler_address_is_named(territory, address):
    communes, facilities = territory
    with pytest.raises(InputError, match="scheduler_address"):
        compute_travel_times_by_departement(communes, facilities, departement_graph,
                                            max_minutes=12, scheduler_address=address)
