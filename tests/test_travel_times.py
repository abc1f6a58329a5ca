"""Tests of diagnosis.travel on hand-made graphs and against networkx.

Graphs are built here from arrays: a line, a directed triangle, two separate pieces,
a one-way dead end, and small random graphs whose shortest paths networkx gives
independently (oracle).
"""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
from pyproj import Transformer

from diagnosis.errors import InputError
from diagnosis.travel import (
    DETOUR_FACTOR,
    DRIVE_SPEED_KMH,
    ENGINE_CROW_FLY,
    ENGINE_ROAD,
    WALK_SPEED_KMH,
    compute_travel_times,
    crow_fly_travel_times,
    road_graph_from_arrays,
    road_graph_from_networkx,
    snap_points,
)


def line_graph(n: int = 4, *, minutes_per_edge: float = 1.0, two_way: bool = True):
    """Nodes 1 km apart on the x axis, ``minutes_per_edge`` per edge."""
    tail = list(range(n - 1))
    head = list(range(1, n))
    if two_way:
        tail, head = tail + head, head + tail
    secs = [60.0 * minutes_per_edge] * len(tail)
    x = np.arange(n) * 1000.0
    return road_graph_from_arrays(tail, head, secs, x, np.zeros(n), mode="drive")


def pts(*xs: float) -> np.ndarray:
    return np.array([[x, 0.0] for x in xs])


def random_graph(n: int, seed: int):
    """Random geometric directed graph (some one-way edges), and its networkx twin."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 10_000, n)
    y = rng.uniform(0, 10_000, n)
    tails, heads = [], []
    for i in range(n):
        d = np.hypot(x - x[i], y - y[i])
        for j in np.argsort(d)[1:4]:
            tails.append(i)
            heads.append(int(j))
            if rng.random() > 0.2:
                tails.append(int(j))
                heads.append(i)
    t = np.array(tails)
    h = np.array(heads)
    secs = np.hypot(x[t] - x[h], y[t] - y[h]) / rng.uniform(5, 20, t.size)
    g = road_graph_from_arrays(t, h, secs, x, y, mode="drive")
    nxg = nx.DiGraph()
    nxg.add_nodes_from(range(n))
    for a, b, s in zip(t, h, secs, strict=True):
        if a != b and (not nxg.has_edge(a, b) or nxg[a][b]["weight"] > s):
            nxg.add_edge(int(a), int(b), weight=float(s))
    return g, nxg, x, y


# --- graph building -------------------------------------------------------------------


def test_parallel_edges_keep_fastest_and_zero_time_edges_survive():
    g = road_graph_from_arrays([0, 0, 1, 1], [1, 1, 2, 2], [120.0, 60.0, 0.0, 30.0],
                               [0.0, 1000.0, 2000.0], [0.0, 0.0, 0.0], mode="drive")
    assert g.n_edges == 2
    tt = compute_travel_times(g, pts(0.0), pts(1000.0, 2000.0), max_minutes=10)
    assert tt.minutes.tolist() == [[1.0, 1.0]]  # 60 s, then a 0-second edge


def test_nodes_are_renumbered_spatially_and_results_do_not_depend_on_input_order():
    rng = np.random.default_rng(3)
    g, _, x, y = random_graph(300, seed=3)
    perm = rng.permutation(300)
    inv = np.argsort(perm)
    coo = g.travel_time_s.tocoo()
    # Same graph, nodes given in another order.
    g2 = road_graph_from_arrays(inv[coo.row], inv[coo.col], coo.data, g.x[perm], g.y[perm],
                                mode="drive", osm_ids=g.osm_ids[perm])
    assert np.array_equal(g2.osm_ids, g.osm_ids)
    origins = np.column_stack([x, y])[:40] + 5.0
    dest = np.column_stack([x, y])[100:110]
    a = compute_travel_times(g, origins, dest, max_minutes=60).minutes
    b = compute_travel_times(g2, origins, dest, max_minutes=60).minutes
    assert np.array_equal(a, b)
    # Consecutive nodes are close on the ground (Hilbert order), unlike random order.
    step = np.hypot(np.diff(g.x), np.diff(g.y)).mean()
    random_step = np.hypot(np.diff(x), np.diff(y)).mean()
    assert step < random_step / 3


def test_bad_edge_arrays_raise_naming_the_argument():
    with pytest.raises(InputError, match="travel_time_s"):
        road_graph_from_arrays([0], [1], [-5.0], [0.0, 1.0], [0.0, 0.0], mode="drive")
    with pytest.raises(InputError, match="tail/head"):
        road_graph_from_arrays([0], [7], [5.0], [0.0, 1.0], [0.0, 0.0], mode="drive")
    with pytest.raises(InputError, match="mode"):
        road_graph_from_arrays([0], [1], [5.0], [0.0, 1.0], [0.0, 0.0], mode="bike")


def test_from_networkx_projects_wgs84_and_keeps_fastest_parallel_edge():
    g = nx.MultiDiGraph(crs="EPSG:4326")
    g.add_node(11, x=-1.55, y=47.22)
    g.add_node(22, x=-1.54, y=47.22)
    g.add_edge(11, 22, travel_time=90.0)
    g.add_edge(11, 22, travel_time=45.0)
    g.add_edge(22, 11, travel_time=50.0)
    rg = road_graph_from_networkx(g, mode="drive")
    tr = Transformer.from_crs("EPSG:4326", "EPSG:2154", always_xy=True)
    ex, ey = tr.transform([-1.55, -1.54], [47.22, 47.22])
    order = [list(rg.osm_ids).index(11), list(rg.osm_ids).index(22)]
    np.testing.assert_allclose(rg.x[order], ex)
    np.testing.assert_allclose(rg.y[order], ey)
    m = rg.travel_time_s.toarray()
    assert m[order[0], order[1]] == 45.0
    assert m[order[1], order[0]] == 50.0


def test_from_networkx_without_travel_time_says_what_to_do():
    g = nx.MultiDiGraph(crs="EPSG:2154")
    g.add_node(1, x=0.0, y=0.0)
    g.add_node(2, x=10.0, y=0.0)
    g.add_edge(2, 1, travel_time=2.0)
    g.add_edge(1, 2, length=10.0)
    with pytest.raises(InputError, match="edge 1->2 has no 'travel_time'.*add_edge_travel_times"):
        road_graph_from_networkx(g, mode="drive")


def test_from_plain_digraph():
    g = nx.DiGraph(crs="EPSG:2154")
    g.add_node(7, x=0.0, y=0.0)
    g.add_node(3, x=100.0, y=0.0)
    g.add_edge(7, 3, travel_time=12.0)
    rg = road_graph_from_networkx(g, mode="walk")
    a, b = list(rg.osm_ids).index(7), list(rg.osm_ids).index(3)
    m = rg.travel_time_s.toarray()
    assert (m[a, b], m[b, a], rg.n_edges) == (12.0, 0.0, 1)


# --- travel times -----------------------------------------------------------------------


def test_line_times_by_hand_from_both_sides():
    g = line_graph(4)
    # More origins than destinations: searched from the destinations (reversed graph).
    tt = compute_travel_times(g, pts(0, 1000, 2000, 3000), pts(0, 3000), max_minutes=10)
    assert tt.params["direction"].startswith("destinations")
    assert tt.minutes.tolist() == [[0, 3], [1, 2], [2, 1], [3, 0]]
    # Fewer origins: searched from the origins.
    tt2 = compute_travel_times(g, pts(0, 3000), pts(0, 1000, 2000, 3000), max_minutes=10)
    assert tt2.params["direction"] == "origins_to_destinations"
    assert tt2.minutes.tolist() == [[0, 1, 2, 3], [3, 2, 1, 0]]
    assert tt.engine == ENGINE_ROAD and tt.mode == "drive"


def test_directed_graph_gives_time_from_origin_to_facility_on_both_paths():
    # One-way triangle 0 -> 1 -> 2 -> 0, 1, 2 and 4 minutes.
    g = road_graph_from_arrays([0, 1, 2], [1, 2, 0], [60.0, 120.0, 240.0],
                               [0.0, 1000.0, 500.0], [0.0, 0.0, 800.0], mode="drive")
    xy = np.column_stack([[0.0, 1000.0, 500.0], [0.0, 0.0, 800.0]])
    expected = np.array([[0, 1, 3], [6, 0, 2], [4, 5, 0]], dtype=float)
    full = compute_travel_times(g, xy, xy, max_minutes=60).minutes
    assert full.tolist() == expected.tolist()
    # Facility 2 only: reversed-graph path (3 origins > 1 destination).
    rev = compute_travel_times(g, xy, xy[[2]], max_minutes=60)
    assert rev.params["direction"].startswith("destinations")
    assert rev.minutes[:, 0].tolist() == expected[:, 2].tolist()
    # Origin 1 only: forward path.
    fwd = compute_travel_times(g, xy[[1]], xy, max_minutes=60)
    assert fwd.params["direction"] == "origins_to_destinations"
    assert fwd.minutes[0].tolist() == expected[1].tolist()


def test_cutoff_is_inclusive_and_beyond_is_inf_and_counted():
    g = line_graph(4)
    tt = compute_travel_times(g, pts(0), pts(1000, 2000, 3000), max_minutes=2)
    assert tt.minutes.tolist() == [[1.0, 2.0, np.inf]]
    assert tt.n_beyond_cutoff == 1
    assert tt.n_disconnected == 0 and tt.n_flagged_pairs == 0


def test_disconnected_pieces_give_inf_and_are_counted():
    # Two separate two-way edges: 0-1 and 2-3, the second 50 km away.
    g = road_graph_from_arrays([0, 1, 2, 3], [1, 0, 3, 2], [60.0] * 4,
                               [0.0, 1000.0, 50_000.0, 51_000.0], [0.0] * 4, mode="drive")
    tt = compute_travel_times(g, pts(0, 50_000), pts(1000, 51_000), max_minutes=600)
    assert tt.minutes.tolist() == [[1.0, np.inf], [np.inf, 1.0]]
    assert tt.n_disconnected == 2
    assert tt.n_beyond_cutoff == 0
    assert tt.summary()["n_pairs_disconnected"] == 2


def test_points_far_from_roads_are_flagged_not_snapped():
    g = line_graph(3)
    far = np.array([[1000.0, 5000.0]])  # 5 km north of the road
    tt = compute_travel_times(g, np.vstack([pts(0), far]), pts(2000), max_minutes=10,
                              max_snap_m=1000)
    assert tt.minutes.tolist() == [[2.0], [np.inf]]
    assert tt.origin_flagged.tolist() == [False, True]
    assert tt.origin_snap_m[1] == pytest.approx(5000.0)
    assert tt.n_flagged_pairs == 1 and tt.n_beyond_cutoff == 0
    # With a larger limit it is snapped (and the snap distance is reported).
    tt2 = compute_travel_times(g, far, pts(2000), max_minutes=10, max_snap_m=6000)
    assert tt2.minutes.tolist() == [[1.0]]
    # A flagged facility: the whole column is inf.
    tt3 = compute_travel_times(g, pts(0, 1000), far, max_minutes=10, max_snap_m=1000)
    assert np.isinf(tt3.minutes).all() and tt3.destination_flagged.tolist() == [True]


def test_snapping_prefers_the_main_component_over_a_one_way_trap():
    # Two-way line 0-1-2, plus node 3 reachable only by a one-way edge 2 -> 3 (a trap).
    g = road_graph_from_arrays([0, 1, 1, 2, 2], [1, 0, 2, 1, 3], [60.0] * 5,
                               [0.0, 1000.0, 2000.0, 2300.0], [0.0] * 4, mode="drive")
    s = snap_points(g, np.array([[2290.0, 0.0]]), max_snap_m=1000)
    assert g.osm_ids[s.node[0]] == 2  # not the trap node 3, 10 m away
    assert s.distance_m[0] == pytest.approx(290.0)
    # Too far from the main component: falls back to the nearest node, whatever it is.
    s2 = snap_points(g, np.array([[2290.0, 0.0]]), max_snap_m=100)
    assert g.osm_ids[s2.node[0]] == 3 and not s2.flagged[0]


def test_matches_networkx_on_random_directed_graphs():
    for seed in (1, 2):
        g, nxg, x, y = random_graph(250, seed=seed)
        rng = np.random.default_rng(seed)
        origins = np.column_stack([x, y])[rng.choice(250, 60, replace=False)]
        dest = np.column_stack([x, y])[rng.choice(250, 8, replace=False)]
        tt = compute_travel_times(g, origins, dest, max_minutes=15)
        # networkx from the nodes our snapping chose (osm_ids = input ids 0..n-1 here);
        # some points move to the main strongly connected component, so map them back.
        o_ids = g.osm_ids[snap_points(g, origins).node].tolist()
        d_ids = g.osm_ids[snap_points(g, dest).node].tolist()
        assert not tt.origin_flagged.any() and not tt.destination_flagged.any()
        for i, o in enumerate(o_ids):
            lengths = nx.single_source_dijkstra_path_length(nxg, o, cutoff=15 * 60.0)
            for j, d in enumerate(d_ids):
                expected = lengths.get(d, np.inf) / 60.0
                assert tt.minutes[i, j] == pytest.approx(expected, rel=1e-12, abs=0)


def test_nearest_minutes_equals_min_of_matrix():
    """The multi-source Dijkstra nearest agrees with the row minimum of the pairs."""
    g, _, x, y = random_graph(300, seed=5)
    rng = np.random.default_rng(5)
    origins = np.column_stack([x, y])[:50] + rng.normal(0, 20, (50, 2))
    for n_dest in (5, 12, 80):
        dest = np.column_stack([x, y])[rng.choice(300, n_dest)]
        tt = compute_travel_times(g, origins, dest, max_minutes=20)
        np.testing.assert_allclose(tt.nearest_minutes, tt.minutes.min(axis=1), rtol=1e-12)
        assert tt.engine == ENGINE_ROAD


def test_road_pairs_are_sparse_and_match_networkx_with_shared_nodes():
    """Only pairs within the cutoff are stored; points sharing a node all get them."""
    g, nxg, x, y = random_graph(200, seed=11)
    xy = np.column_stack([x, y])
    # Several origins and destinations on the same nodes (exercise the expansion).
    origins = xy[[0, 0, 3, 7, 7, 7, 50]]
    dest = xy[[3, 3, 0, 120, 199]]
    tt = compute_travel_times(g, origins, dest, max_minutes=4)
    dense = tt.minutes
    assert tt.n_pairs_within == int(np.isfinite(dense).sum()) < dense.size
    o_ids = g.osm_ids[snap_points(g, origins).node].tolist()
    d_ids = g.osm_ids[snap_points(g, dest).node].tolist()
    for i, o in enumerate(o_ids):
        lengths = nx.single_source_dijkstra_path_length(nxg, o, weight="weight")
        for j, d in enumerate(d_ids):
            ref = lengths.get(d, np.inf) / 60.0
            expected = ref if ref <= 4 else np.inf
            assert dense[i, j] == pytest.approx(expected, rel=1e-12, abs=0)
    # a 0-minute pair (same node) is a stored entry, not a missing one
    assert o_ids[2] == d_ids[0]
    assert dense[2, 0] == 0.0 and tt.within[2, 0] == 0.0 and tt.within.has_canonical_format
    assert tt.n_beyond_cutoff + tt.n_pairs_within == dense.size


# --- crow-fly -------------------------------------------------------------------------


def test_crow_fly_by_hand_with_documented_defaults():
    tt = crow_fly_travel_times(np.array([[0.0, 0.0]]), np.array([[3000.0, 4000.0]]))
    # 5 km x 1.3 = 6.5 km at 40 km/h = 9.75 min
    assert DETOUR_FACTOR == 1.3 and DRIVE_SPEED_KMH == 40.0
    assert tt.minutes[0, 0] == pytest.approx(5.0 * 1.3 / 40.0 * 60.0)
    assert tt.engine == ENGINE_CROW_FLY
    assert tt.params == {"speed_kmh": 40.0, "detour_factor": 1.3, "access_min": 0.0}
    with_access = crow_fly_travel_times(np.array([[0.0, 0.0], [3000.0, 4000.0]]),
                                        np.array([[3000.0, 4000.0]]), access_min=1.0,
                                        max_minutes=10.0)
    # 1 min of access + 9.75 min = 10.75 min, beyond the 10-min cutoff; at the facility: 0
    np.testing.assert_allclose(with_access.minutes[:, 0], [np.inf, 0.0])
    assert with_access.nearest_minutes[0] == np.inf
    assert "1 min d'accès" in with_access.label
    assert "vol d'oiseau" in tt.label and "40 km/h" in tt.label and "1,3" in tt.label
    walk = crow_fly_travel_times(np.array([[0.0, 0.0]]), np.array([[3000.0, 4000.0]]),
                                 mode="walk")
    assert walk.minutes[0, 0] == pytest.approx(5.0 * 1.3 / WALK_SPEED_KMH * 60.0)


def test_crow_fly_cutoff_and_nearest():
    o = np.array([[0.0, 0.0], [10_000.0, 0.0]])
    d = np.array([[1000.0, 0.0], [9000.0, 0.0]])
    tt = crow_fly_travel_times(o, d, speed_kmh=39.0, detour_factor=1.3, max_minutes=5)
    assert tt.minutes[0, 0] == pytest.approx(2.0)
    assert np.isinf(tt.minutes[0, 1]) and tt.n_beyond_cutoff == 2
    np.testing.assert_allclose(tt.nearest_minutes, [2.0, 2.0])
    assert tt.n_pairs_within == 2 and tt.within.nnz == 2
    unlimited = crow_fly_travel_times(o, d, speed_kmh=39.0)
    assert unlimited.n_pairs_within == 4 and unlimited.n_beyond_cutoff == 0
    np.testing.assert_allclose(unlimited.nearest_minutes, [2.0, 2.0])


def _dense_crow_fly(o, d, *, detour, speed, cutoff):
    """The former dense formula, kept here as the oracle of the sparse path."""
    dist = np.hypot(o[:, 0, None] - d[None, :, 0], o[:, 1, None] - d[None, :, 1])
    minutes = dist * detour / (speed * 1000.0 / 60.0)
    minutes[minutes > cutoff] = np.inf
    return minutes


@pytest.mark.parametrize("chunk_cells", [None, 1_000])
@pytest.mark.parametrize("mode", ["drive", "walk"])
def test_crow_fly_sparse_equals_dense_formula(mode, chunk_cells, monkeypatch):
    import diagnosis.travel.crowfly as tt_mod

    if chunk_cells is not None:  # origins in many small chunks, stacked row-wise
        monkeypatch.setattr(tt_mod, "_CHUNK_CELLS", chunk_cells)
    rng = np.random.default_rng(3)
    o = rng.uniform(0, 60_000, (400, 2))
    d = np.vstack([rng.uniform(0, 60_000, (150, 2)), o[:5]])  # 5 facilities at origins
    cutoff = 25.0 if mode == "drive" else 90.0
    speed = 40.0 if mode == "drive" else WALK_SPEED_KMH
    tt = crow_fly_travel_times(o, d, mode=mode, max_minutes=cutoff)
    ref = _dense_crow_fly(o, d, detour=DETOUR_FACTOR, speed=speed, cutoff=cutoff)
    np.testing.assert_array_equal(tt.minutes, ref)  # same formula, same floats
    np.testing.assert_array_equal(tt.nearest_minutes, ref.min(axis=1))
    assert tt.n_pairs_within == int(np.isfinite(ref).sum()) < ref.size / 4
    assert tt.n_beyond_cutoff == int(np.isinf(ref).sum())
    assert (tt.within[np.arange(5), 150 + np.arange(5)] == 0).all()  # stored zeros


# --- argument errors ---------------------------------------------------------------------


@pytest.mark.parametrize(("kwargs", "name"), [
    ({"max_minutes": -5}, "max_minutes"),
    ({"max_minutes": 0}, "max_minutes"),
    ({"max_minutes": 10, "max_snap_m": -1}, "max_snap_m"),
])
def test_bad_numbers_raise_naming_the_argument(kwargs, name):
    with pytest.raises(InputError, match=name):
        compute_travel_times(line_graph(3), pts(0), pts(1000), **kwargs)


def test_bad_points_raise_naming_the_argument():
    g = line_graph(3)
    with pytest.raises(InputError, match="origins_xy is empty"):
        compute_travel_times(g, np.empty((0, 2)), pts(0), max_minutes=10)
    with pytest.raises(InputError, match="destinations_xy.*shape"):
        compute_travel_times(g, pts(0), np.array([1.0, 2.0, 3.0]), max_minutes=10)
    with pytest.raises(InputError, match="origins_xy has a non-finite"):
        compute_travel_times(g, np.array([[np.nan, 0.0]]), pts(0), max_minutes=10)
    with pytest.raises(InputError, match="detour_factor"):
        crow_fly_travel_times(pts(0), pts(1), detour_factor=0.8)
    with pytest.raises(InputError, match="speed_kmh"):
        crow_fly_travel_times(pts(0), pts(1), speed_kmh=0)
