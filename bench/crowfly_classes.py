"""Crow-fly car model against routed times on real OpenStreetMap graphs, by density class.

Reads OSM data of the shared test-only folder (never copied into the repository):
``test-only/osm/toulouse_compans_caffarelli.osm`` (dense urban) and boxes of
``test-only/transit/rhein-neckar/rnv.osm.pbf`` (Mannheim's centre: dense urban;
Heidelberg's western suburbs: intermediate; wine villages of the Palatinate north of Bad
Dürkheim: rural). Each area's drivable ways are written to an ``.osm`` file, read by
:func:`data_sources.osm.road_graph_from_osm_file` (osmnx) and routed node to node; the
errors of three models are printed by straight-line distance band:

- ``avant``: the single model shipped before (1 min + distance x 1.3 at 40 km/h);
- ``après``: the shipped default of the area's density class
  (:func:`diagnosis.travel.crowfly.class_crow_fly_model`, literature values);
- ``calibré``: :func:`diagnosis.travel.crowfly.calibrate_on_graph` on the area's graph
  (what a diagnosis does when a road graph is loaded).

Run: ``PYTHONPATH=. python bench/crowfly_classes.py`` (about a minute). Prints one
``RESULT`` line per class and model.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from xml.sax.saxutils import quoteattr

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from data_sources.osm import DRIVE_HIGHWAYS, road_graph_from_osm_file  # noqa: E402
from diagnosis.travel.crowfly import (  # noqa: E402
    CrowFlyModel,
    calibrate_on_graph,
    class_crow_fly_model,
    crow_fly_errors_by_band,
    routed_pairs,
)

SHARED = REPO.parent / "shared" / "data" / "test-only"
RNV = SHARED / "transit" / "rhein-neckar" / "rnv.osm.pbf"
TOULOUSE = SHARED / "osm" / "toulouse_compans_caffarelli.osm"

#: (class, name, (min lon, min lat, max lon, max lat)) of the Rhein-Neckar boxes.
AREAS = [
    ("dense", "Mannheim centre", (8.440, 49.470, 8.500, 49.500)),
    ("intermediate", "Heidelberg ouest (Eppelheim, Wieblingen)", (8.600, 49.385, 8.680, 49.430)),
    ("rural", "Pfalz viticole (Kirchheim, Obersülzen, Bissersheim)",
     (8.150, 49.560, 8.350, 49.600)),
]

BEFORE = CrowFlyModel("drive", 1.0, 1.3, 40.0)


def extract_box(pbf: Path, bbox: tuple[float, float, float, float], out: Path) -> int:
    """Write the drivable ways lying inside ``bbox`` (and their nodes) as OSM XML."""
    import osmium

    lon0, lat0, lon1, lat1 = bbox
    nodes: dict[int, tuple[float, float]] = {}
    ways: list[tuple[int, list[int], dict[str, str]]] = []

    class Reader(osmium.SimpleHandler):
        def node(self, n: object) -> None:
            loc = n.location  # type: ignore[attr-defined]
            if loc.valid() and lon0 <= loc.lon <= lon1 and lat0 <= loc.lat <= lat1:
                nodes[n.id] = (loc.lat, loc.lon)  # type: ignore[attr-defined]

        def way(self, w: object) -> None:
            tags = {t.k: t.v for t in w.tags}  # type: ignore[attr-defined]
            if tags.get("highway") not in DRIVE_HIGHWAYS:
                return
            refs = [r.ref for r in w.nodes]  # type: ignore[attr-defined]
            ways.append((w.id, refs, tags))  # type: ignore[attr-defined]

    Reader().apply_file(str(pbf))
    kept = [(i, [r for r in refs if r in nodes], tags) for i, refs, tags in ways]
    kept = [(i, refs, tags) for i, refs, tags in kept if len(refs) >= 2]
    used = {r for _, refs, _ in kept for r in refs}
    with out.open("w", encoding="utf-8") as f:
        f.write('<?xml version="1.0" encoding="UTF-8"?>\n<osm version="0.6">\n')
        for nid in sorted(used):
            lat, lon = nodes[nid]
            f.write(f' <node id="{nid}" lat="{lat:.7f}" lon="{lon:.7f}"/>\n')
        for wid, refs, tags in kept:
            f.write(f' <way id="{wid}">\n')
            f.writelines(f'  <nd ref="{r}"/>\n' for r in refs)
            f.writelines(f"  <tag k={quoteattr(k)} v={quoteattr(v)}/>\n"
                         for k, v in tags.items())
            f.write(" </way>\n")
        f.write("</osm>\n")
    return len(kept)


def report(cls: str, name: str, graph: object) -> None:
    d, t = routed_pairs(graph, max_nodes=500, min_distance_m=100.0,  # type: ignore[arg-type]
                        max_minutes=120.0, seed=1)
    cal = calibrate_on_graph(graph, max_nodes=500, min_distance_m=100.0,  # type: ignore[arg-type]
                             seed=2, detour=1.3)
    print(f"\n== {cls} : {name} — {len(d)} paires, {graph.n_nodes} nœuds ==")  # type: ignore[attr-defined]
    print(f"   calibré : {cal.model.label()} ({cal.model.minutes_per_km:.2f} min/km)")
    for label, model in (("avant", BEFORE), ("après", class_crow_fly_model("drive", cls)),
                         ("calibré", cal.model)):
        rows = crow_fly_errors_by_band(model, d, t, threshold_min=10.0)
        err = model.minutes(d) - t
        print(f"RESULT class={cls} model={label} mae_min={np.abs(err).mean():.2f} "
              f"bias_pct={100 * (err / t).mean():.1f} n={len(d)}")
        for r in rows:
            print(f"   {label:8s} {r['band']:>16s} n={r['n_pairs']:6d} "
                  f"EAM={r['mae_min']:5.2f} min  biais={r['bias_min']:+6.2f} min "
                  f"({r['bias_pct']:+6.1f} %)  accord ≤10 min={r['agree_pct']:5.1f} %")


def main() -> int:
    if not RNV.exists() or not TOULOUSE.exists():
        print(f"données absentes : {SHARED}")
        return 1
    report("dense", "Toulouse Compans-Caffarelli",
           road_graph_from_osm_file(TOULOUSE, mode="drive"))
    with tempfile.TemporaryDirectory() as tmp:
        for cls, name, bbox in AREAS:
            path = Path(tmp) / f"{cls}.osm"
            extract_box(RNV, bbox, path)
            report(cls, name, road_graph_from_osm_file(path, mode="drive"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
