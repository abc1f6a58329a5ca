"""Quartiers prioritaires de la politique de la ville (QPV), 2024 edition (ANCT).

Outlines: the ANCT's data.gouv.fr dataset « Quartiers prioritaires de la politique de la
ville (QPV) », combined GeoJSON of mainland France and overseas in WGS84
(``qp2024-france-hexagonale-outre-mer-wgs84-epsg4326.geojson``; the same file is
``GEOJSON/QP2024_France_Hexagonale_Outre_Mer_WGS84.geojson`` inside the dataset's zip, as
public client code reads it). Each feature has ``code_qp`` (``QN04405M``: ``QN``, the
département on 3 characters, a number, a letter), ``lib_qp`` and ``insee_com`` (the
commune, or several codes separated by ``,`` or ``;`` for a quartier across communes).

fetch (:func:`fetch_qpv`, through :mod:`data_sources._http`) -> parse (:func:`parse_qpv`,
pure) -> validate (:func:`validate_qpv`) -> cut to the territory (:func:`load_qpv`).

Offline fallback: :data:`COMMUNE_LIST`, the 2024 QPV listed per commune (ANCT, via
anct-carto/superposeur-V2), shipped with Maillage. It says which communes have a QPV,
not where the quartier lies: rows then have no geometry and ``basis`` is
``"liste communale"`` (« la commune compte un QPV »).
"""

from __future__ import annotations

import csv
import json
import logging
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import shapely
from shapely.geometry import shape

from data_sources.registry import SourceInfo, register
from diagnosis.errors import SourceError
from diagnosis.schema import Territory
from diagnosis.settings import WGS84

logger = logging.getLogger(__name__)

QPV_URL = ("https://static.data.gouv.fr/resources/quartiers-prioritaires-de-la-politique-de-"
           "la-ville-qpv/20250206-161839/qp2024-france-hexagonale-outre-mer-wgs84-epsg4326"
           ".geojson")
COMMUNE_LIST = Path(__file__).with_name("nomenclatures") / "qpv2024_communes.csv"
#: Columns of :func:`load_qpv`.
QPV_COLUMNS = ("code_qp", "lib_qp", "communes", "basis", "geometry")
#: ``basis`` values: outlines downloaded, or the shipped commune list (no outline).
BASIS_OUTLINES = "contours"
BASIS_LIST = "liste communale"

_CODE_RE = re.compile(r"^QN[0-9A-Z]{3}\d{2}[A-Z]?$")

QPV = register(SourceInfo(
    key="anct_qpv_2024",
    title="Quartiers prioritaires de la politique de la ville 2024 (ANCT)",
    url=QPV_URL,
    licence="Licence Ouverte 2.0",
    attribution="ANCT, quartiers prioritaires de la politique de la ville (décret 2023-1314)",
    vintage="2024 (géographie prioritaire en vigueur depuis le 1er janvier 2024)",
    crs=WGS84,
    columns=("code_qp", "lib_qp", "insee_com"),
    notes=("Contours des QPV ; hors ligne, la liste des QPV par commune livrée avec "
           "Maillage dit seulement qu'une commune compte un QPV."),
))


def fetch_qpv(*, url: str = QPV_URL, offline: bool | None = None,
              refresh: bool = False) -> Path:
    """Download the national GeoJSON to the cache (once) and return its path."""
    from data_sources import _http  # the HTTP layer only when a file is fetched

    return _http.download_file(url, source=QPV.key, offline=offline, refresh=refresh)


def _codes(value: Any) -> list[str]:
    """Commune codes of an ``insee_com`` field (``"44109"``, ``"02571, 02691"``…).

    Examples
    --------
    >>> _codes("02571, 02691"), _codes('="13055;13070"'), _codes(44109)
    (['02571', '02691'], ['13055', '13070'], ['44109'])
    """
    text = re.sub(r'[="]', "", str(value or ""))
    return [c.strip().zfill(5) for c in re.split(r"[,;\s]+", text) if c.strip()]


def parse_qpv(doc: Mapping[str, Any]) -> gpd.GeoDataFrame:
    """GeoJSON FeatureCollection -> QPV table (:data:`QPV_COLUMNS`, pure).

    Raises
    ------
    SourceError
        Not a FeatureCollection, or features without ``code_qp`` (names the keys found).
    """
    feats = doc.get("features") if isinstance(doc, Mapping) else None
    if not isinstance(feats, list):
        raise SourceError(f"{QPV.key}: not a GeoJSON FeatureCollection (no 'features' list)")
    rows = []
    for i, f in enumerate(feats):
        props = dict(f.get("properties") or {})
        lower = {str(k).lower(): v for k, v in props.items()}
        if "code_qp" not in lower:
            raise SourceError(f"{QPV.key}: feature {i} lacks 'code_qp'; found {sorted(props)}. "
                              "The ANCT changed the format: update data_sources/qpv.py.")
        geom = shape(f["geometry"]) if f.get("geometry") else None
        if geom is not None and not geom.is_valid:
            geom = shapely.make_valid(geom)
        rows.append({"code_qp": str(lower["code_qp"]).strip(),
                     "lib_qp": str(lower.get("lib_qp") or "").strip(),
                     "communes": ",".join(_codes(lower.get("insee_com"))),
                     "basis": BASIS_OUTLINES, "geometry": geom})
    return gpd.GeoDataFrame(pd.DataFrame(rows, columns=list(QPV_COLUMNS)),
                            geometry="geometry", crs=WGS84)


def validate_qpv(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Check codes (``QN…``, unique) and outlines; French-free English errors name rows."""
    bad = ~gdf["code_qp"].str.match(_CODE_RE)
    if bad.any():
        raise SourceError(f"{QPV.key}: unexpected QPV codes {gdf.loc[bad, 'code_qp'].head(3)!r}")
    dup = gdf["code_qp"].duplicated()
    if dup.any():
        raise SourceError(f"{QPV.key}: duplicate QPV codes {gdf.loc[dup, 'code_qp'].head(3)!r}")
    no_commune = gdf["communes"].eq("")
    if no_commune.any():
        raise SourceError(f"{QPV.key}: QPV without commune {gdf.loc[no_commune, 'code_qp']!r}")
    return gdf.sort_values("code_qp").reset_index(drop=True)


def read_commune_list(path: str | Path = COMMUNE_LIST) -> pd.DataFrame:
    """The shipped QPV list per commune: ``code_insee, code_qp, lib_qp`` (one row each)."""
    with Path(path).open(encoding="utf-8", newline="") as fh:
        rows = [{"code_insee": r["insee_com"].zfill(5), "code_qp": r["code_qp"],
                 "lib_qp": r["lib_qp"]} for r in csv.DictReader(fh, delimiter=";")]
    return pd.DataFrame(rows, columns=["code_insee", "code_qp", "lib_qp"])


def qpv_from_list(communes: Iterable[str], *, path: str | Path = COMMUNE_LIST
                  ) -> gpd.GeoDataFrame:
    """QPV of ``communes`` from the shipped list (no outline, ``basis`` "liste communale")."""
    wanted = {str(c) for c in communes}
    # one row per QPV (sorted by code): its first name in the list, its communes (read
    # row by row: the list is 1,700 rows, and every command on a territory reads it)
    found: dict[str, tuple[str, set[str]]] = {}
    with Path(path).open(encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh, delimiter=";")
        header = next(reader, [])
        missing = [c for c in ("insee_com", "code_qp", "lib_qp") if c not in header]
        if missing:
            raise SourceError(f"{path}: QPV list lacks columns {missing}; found {header}")
        i_com, i_qp, i_name = (header.index(c) for c in ("insee_com", "code_qp", "lib_qp"))
        width = max(i_com, i_qp, i_name) + 1
        for r in reader:
            if len(r) < width:
                raise SourceError(f"{path}: line {reader.line_num} has {len(r)} fields, "
                                  f"{len(header)} expected")
            code = r[i_com].zfill(5)
            if code in wanted:
                found.setdefault(r[i_qp], (r[i_name], set()))[1].add(code)
    rows = [{"code_qp": qp, "lib_qp": name, "communes": ",".join(sorted(coms)),
             "basis": BASIS_LIST, "geometry": None}
            for qp, (name, coms) in sorted(found.items())]
    return gpd.GeoDataFrame(pd.DataFrame(rows, columns=list(QPV_COLUMNS)),
                            geometry="geometry", crs=WGS84)


def clip_qpv(gdf: gpd.GeoDataFrame, communes: Iterable[str]) -> gpd.GeoDataFrame:
    """The QPV touching at least one of ``communes`` (by their ``insee_com`` codes)."""
    wanted = set(communes)
    keep = gdf["communes"].map(lambda s: bool(wanted & set(str(s).split(","))))
    return gdf[keep].reset_index(drop=True)


def load_qpv(area: Territory, *, fallback: bool = True, offline: bool | None = None,
             refresh: bool = False) -> gpd.GeoDataFrame:
    """QPV 2024 of the communes of ``area`` (outlines; the commune list as fallback).

    ``fallback=False`` raises the download's :class:`SourceError` instead of reading the
    shipped list (the fetch: a source that could not be read is a failure; the workspace
    reads the list itself when no outline was stored).

    Returns
    -------
    geopandas.GeoDataFrame
        :data:`QPV_COLUMNS` in EPSG:4326, possibly empty (no QPV: a known zero, since the
        national file was read). ``attrs["basis"]`` is ``"contours"`` or ``"liste
        communale"``, ``attrs["notes"]`` French remarks (why the list was used).
    """
    from data_sources import _http

    notes: list[str] = []
    try:
        path = fetch_qpv(offline=offline, refresh=refresh)
        _http.check_not_html(path, url=QPV_URL, source=QPV.key)
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as exc:
            _http.forget_download(QPV_URL)
            raise SourceError(f"{QPV.key}: {QPV_URL} is not JSON ({exc})") from exc
        out = clip_qpv(validate_qpv(parse_qpv(doc)), area.communes)
        basis = BASIS_OUTLINES
    except SourceError as exc:
        if not fallback:
            raise
        logger.warning("%s", exc)
        out = qpv_from_list(area.communes)
        basis = BASIS_LIST
        notes.append("contours des QPV indisponibles (" + str(exc)[:160] + ") : liste des QPV "
                     "par commune livrée avec Maillage utilisée (la commune compte un QPV, "
                     "sans son contour)")
    out.attrs["basis"] = basis
    out.attrs["notes"] = notes
    return out
