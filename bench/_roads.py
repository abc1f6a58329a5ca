"""Shared by the routing benches: seeded synthetic road-like networks of realistic size.

A perturbed square grid that looks like a rural / peri-urban road network: nodes about
``spacing_m`` apart (jittered by up to 30 %), local streets at 30-50 km/h (5 % one-way,
4 % removed), an arterial every 10 rows and columns at 80 km/h, and a diagonal in 5 % of
the cells. ``side = 317`` gives about 100,000 nodes, ``side = 708`` about 500,000, with
about three directed edges per node, as a simplified OSM drive graph has. Everything is
a function of ``seed``: two runs build the same network.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class RoadArrays:
    """Directed edges (``tail -> head``, node positions) and node coordinates (EPSG:2154)."""

    tail: np.ndarray
    head: np.ndarray
    length_m: np.ndarray
    speed_kph: np.ndarray
    arterial: np.ndarray
    oneway: np.ndarray
    x: np.ndarray
    y: np.ndarray

    @property
    def travel_time_s(self) -> np.ndarray:
        """Seconds per edge, as ``osmnx.add_edge_travel_times`` computes them."""
        return self.length_m / (self.speed_kph / 3.6)


def road_like_arrays(side: int, *, seed: int, spacing_m: float = 200.0,
                     x0_m: float = 300_000.0, y0_m: float = 6_700_000.0) -> RoadArrays:
    """Edges and nodes of a ``side x side`` road-like grid whose lower-left is near (x0, y0)."""
    rng = np.random.default_rng(seed)
    n = side * side
    gx, gy = np.meshgrid(np.arange(side), np.arange(side))
    x = gx.ravel() * spacing_m + rng.uniform(-0.3, 0.3, n) * spacing_m + x0_m
    y = gy.ravel() * spacing_m + rng.uniform(-0.3, 0.3, n) * spacing_m + y0_m
    idx = np.arange(n).reshape(side, side)
    tails, heads, speeds, arts, ones = [], [], [], [], []

    def add(a: np.ndarray, b: np.ndarray, arterial: np.ndarray) -> None:
        keep = rng.random(a.size) > 0.04
        a, b, arterial = a[keep], b[keep], arterial[keep]
        speed = np.where(arterial, 80.0, rng.uniform(30.0, 50.0, a.size))
        oneway = (rng.random(a.size) < 0.05) & ~arterial
        tails.extend([a, b[~oneway]])
        heads.extend([b, a[~oneway]])
        speeds.extend([speed, speed[~oneway]])
        arts.extend([arterial, arterial[~oneway]])
        ones.extend([oneway, oneway[~oneway]])

    add(idx[:, :-1].ravel(), idx[:, 1:].ravel(), (gy[:, :-1] % 10 == 0).ravel())
    add(idx[:-1, :].ravel(), idx[1:, :].ravel(), (gx[:-1, :] % 10 == 0).ravel())
    diag = rng.random((side - 1) * (side - 1)) < 0.05
    add(idx[:-1, :-1].ravel()[diag], idx[1:, 1:].ravel()[diag], np.zeros(diag.sum(), bool))
    t = np.concatenate(tails)
    h = np.concatenate(heads)
    return RoadArrays(tail=t, head=h, length_m=np.hypot(x[t] - x[h], y[t] - y[h]),
                      speed_kph=np.concatenate(speeds), arterial=np.concatenate(arts),
                      oneway=np.concatenate(ones), x=x, y=y)
