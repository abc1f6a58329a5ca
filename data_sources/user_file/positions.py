"""Coordinates of the imported rows: columns, CRS detection, checks and conversion."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyproj
from geopandas.array import TransformerFromCRS

from data_sources.user_file.read import RawTable
from data_sources.user_file.report import _Log, _plural, _rows_text
from diagnosis.settings import (
    FRANCE_METRO_BBOX,
    FRANCE_OVERSEAS_BBOXES,
    WGS84,
)

_CRS_LABELS = {"EPSG:4326": "WGS84 (EPSG:4326)", "EPSG:2154": "Lambert-93 (EPSG:2154)",
               "EPSG:27572": "Lambert II étendu (EPSG:27572)"}


def _in_france(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """True where (lon, lat) falls in metropolitan France or an overseas département."""
    ok = np.zeros(len(lon), dtype=bool)
    with np.errstate(invalid="ignore"):
        for x0, y0, x1, y1 in (FRANCE_METRO_BBOX, *FRANCE_OVERSEAS_BBOXES.values()):
            ok |= (lon >= x0) & (lon <= x1) & (lat >= y0) & (lat <= y1)
    return ok


def _transform(crs: str, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if crs == WGS84:
        return a.astype(float), b.astype(float)
    transformer = pyproj.Transformer.from_crs(crs, WGS84, always_xy=True)
    lon, lat = transformer.transform(a, b, errcheck=False)
    return np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)


def _is_geographic(crs: str) -> bool:
    try:
        return bool(pyproj.CRS.from_user_input(crs).is_geographic)
    except pyproj.exceptions.CRSError:
        return False


def locate_points(
    c1: np.ndarray, c2: np.ndarray, declared: Sequence[str] | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Turn raw coordinate pairs into WGS84 points in France, detecting CRS and swaps.

    Each row is tried in its declared CRS when it is projected; otherwise in WGS84 when
    both values look like degrees, else in Lambert-93 (EPSG:2154) then Lambert II étendu
    (EPSG:27572). A pair that falls in France only once swapped is swapped.

    Parameters
    ----------
    c1, c2
        Easting/longitude and northing/latitude as floats (NaN when missing).
    declared
        Per row, a CRS as text (``"EPSG:2154"``) or ``""`` when unknown.

    Returns
    -------
    lon, lat, crs, swapped
        WGS84 coordinates (NaN where not located), the CRS used per row (``""`` where not
        located) and whether the pair was swapped.

    Examples
    --------
    >>> lon, lat, crs, swapped = locate_points(np.array([47.2, 700000.0]),
    ...                                        np.array([-1.55, 6600000.0]))
    >>> lon.round(3).tolist(), lat.round(3).tolist(), crs.tolist(), swapped.tolist()
    ([-1.55, 3.0], [47.2, 46.5], ['EPSG:4326', 'EPSG:2154'], [True, False])
    """
    c1 = np.asarray(c1, dtype=float)
    c2 = np.asarray(c2, dtype=float)
    n = len(c1)
    decl = np.asarray(list(declared) if declared is not None else [""] * n, dtype=object)
    lon, lat = np.full(n, np.nan), np.full(n, np.nan)
    used = np.full(n, "", dtype=object)
    swapped = np.zeros(n, dtype=bool)
    todo = np.isfinite(c1) & np.isfinite(c2)
    projected = {d for d in set(decl[todo].tolist()) if d and not _is_geographic(d)}
    with np.errstate(invalid="ignore"):
        degrees = (np.abs(c1) <= 180) & (np.abs(c2) <= 180)
    trials: list[tuple[str, np.ndarray]] = [(d, decl == d) for d in sorted(projected)]
    free = ~np.isin(decl, list(projected)) if projected else np.ones(n, dtype=bool)
    trials += [(WGS84, free & degrees), ("EPSG:2154", free & ~degrees),
               ("EPSG:27572", free & ~degrees)]
    for crs, eligible in trials:
        for swap in (False, True):
            rows = todo & eligible
            if not rows.any():
                continue
            a, b = (c2[rows], c1[rows]) if swap else (c1[rows], c2[rows])
            x, y = _transform(crs, a, b)
            ok = _in_france(x, y)
            idx = np.flatnonzero(rows)[ok]
            lon[idx], lat[idx], used[idx], swapped[idx] = x[ok], y[ok], crs, swap
            todo[idx] = False
    return lon, lat, used, swapped


#: A number as most files write it (no sign but minus, no exponent, at most 15 integer
#: digits): read by arrow's parser, which gives the same double as pandas' for these.
_PLAIN_NUMBER = r"^-?[0-9]{1,15}(\.[0-9]+)?$"


def _plain_numbers(values: pd.Series) -> np.ndarray | None:
    """The numbers of a text column whose cells are all plain numbers or empty, else None.

    Examples
    --------
    >>> _plain_numbers(pd.Series(["47.2184", "", "-1", "007"], dtype="str")).tolist()
    [47.2184, nan, -1.0, 7.0]
    >>> _plain_numbers(pd.Series(["47,2", "1"], dtype="str")) is None
    True
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(values.dtype, pd.StringDtype) and values.dtype.storage == "pyarrow":
        cells = pa.array(values)  # pandas' own arrow text, not copied
    else:
        try:
            cells = pa.array(values.to_numpy(dtype=object), type=pa.string())
        except (pa.ArrowException, TypeError, ValueError):  # not all text
            return None
    if cells.null_count:
        return None
    empty = pc.equal(cells, "")
    if not pc.all(pc.or_(empty, pc.match_substring_regex(cells, _PLAIN_NUMBER))).as_py():
        return None
    numbers = pc.cast(pc.if_else(empty, pa.scalar(None, pa.string()), cells), pa.float64())
    return np.asarray(numbers.to_numpy(zero_copy_only=False), dtype=float)


def _to_float(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Parse numbers written with a decimal comma or point; also return the unreadable mask.

    ``"47,2184"`` and ``"47.2184"`` read 47.2184; ``"1 234,5"`` and ``"1.234,5"`` read
    1234.5; empty cells are NaN (not unreadable).
    """
    fast = _plain_numbers(values)
    if fast is not None:  # the common case, in one pass of arrow's parser
        return fast, np.zeros(len(fast), dtype=bool)
    plain = pd.to_numeric(values, errors="coerce").astype(float).to_numpy()
    if (np.isfinite(plain) | values.eq("").to_numpy()).all():  # common case: nothing to fix
        return plain, np.zeros(len(plain), dtype=bool)
    text = values.astype(str).str.replace(r"[\s\u00a0\u202f]", "", regex=True)
    both = text.str.contains(",") & text.str.contains(r"\.")
    comma_last = text.str.rfind(",") > text.str.rfind(".")
    text = text.mask(both & comma_last, text.str.replace(".", "", regex=False))
    text = text.mask(both & ~comma_last, text.str.replace(",", "", regex=False))
    text = text.str.replace(",", ".", regex=False)
    num = pd.to_numeric(text, errors="coerce").astype(float).to_numpy()
    unreadable = (text.ne("") & np.isnan(num)).to_numpy()
    return num, unreadable


def _declared_crs(values: pd.Series) -> tuple[list[str], list[int]]:
    """Per row, the CRS named by an EPSG column (``""`` when empty or unknown)."""
    out: list[str] = []
    bad: list[int] = []
    cache: dict[str, str] = {}
    for row, value in values.items():
        text = str(value).strip()
        if text not in cache:
            digits = re.search(r"\d{4,6}", text)
            crs = ""
            if digits:
                try:
                    crs = pyproj.CRS.from_epsg(int(digits.group())).to_string()
                except pyproj.exceptions.CRSError:
                    crs = ""
            cache[text] = crs
        if text and not cache[text]:
            bad.append(int(str(row)))
        out.append(cache[text])
    return out, bad


def _crs_summary(used: np.ndarray, declared: str) -> str:
    counts = pd.Series(used[used != ""], dtype=object).value_counts()
    if counts.empty:
        return declared
    return " + ".join(str(c) for c in counts.index)


def _parse_positions(
    raw: RawTable, columns: Mapping[str, str], col: Callable[[str], pd.Series], log: _Log,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Coordinates of every row: lon, lat, located mask, CRS used (rejects outside France)."""
    frame = raw.frame
    rows = np.asarray(frame.index, dtype=np.int64)
    n = len(rows)
    c1, c2 = np.full(n, np.nan), np.full(n, np.nan)
    unreadable = np.zeros(n, dtype=bool)
    origin = np.full(n, "", dtype=object)  # which pair of columns (or geometry) was read
    for kx, ky in (("x", "y"), ("lon", "lat")):  # lat/lon wins over x/y where both are given
        if kx in columns and ky in columns:
            a, bad_a = _to_float(col(kx))
            b, bad_b = _to_float(col(ky))
            has = np.isfinite(a) & np.isfinite(b)
            c1, c2 = np.where(has, a, c1), np.where(has, b, c2)
            unreadable |= (bad_a | bad_b) & ~has
            origin[has] = kx
    declared = [""] * n
    if "epsg" in columns:
        declared, bad = _declared_crs(col("epsg"))
        if bad:
            log.warnings.append(f"code EPSG non reconnu, CRS déduit des valeurs : "
                                f"{_rows_text(bad)}")
    if raw.geometry is not None:
        geom = raw.geometry
        present = (geom.notna() & ~geom.is_empty).to_numpy()
        not_point = present & (geom.geom_type != "Point").to_numpy()
        if not_point.any():
            kinds = sorted(set(geom[not_point].geom_type))
            geom = geom.copy()
            geom[not_point] = geom[not_point].representative_point()
            what = ("géométrie non ponctuelle remplacée",
                    "géométries non ponctuelles remplacées")
            log.warnings.append(
                f"{_plural(int(not_point.sum()), *what)} par un point intérieur "
                f"({', '.join(kinds)}) : {_rows_text(rows[not_point])}")
            log.note(rows[not_point], "géométrie remplacée par un point intérieur")
        gx = np.where(present, geom.x.where(present, np.nan).to_numpy(dtype=float), np.nan) \
            if present.any() else np.full(n, np.nan)
        gy = np.where(present, geom.y.where(present, np.nan).to_numpy(dtype=float), np.nan) \
            if present.any() else np.full(n, np.nan)
        c1, c2 = np.where(present, gx, c1), np.where(present, gy, c2)
        unreadable &= ~present
        origin[present] = "geometry"
        declared = [raw.crs if p else d for p, d in zip(present, declared, strict=True)]
    zero = (c1 == 0) & (c2 == 0)
    if zero.any():
        c1[zero] = c2[zero] = np.nan
        log.warnings.append(f"coordonnées (0, 0) traitées comme absentes : "
                            f"{_rows_text(rows[zero])}")
    if unreadable.any():
        log.warnings.append(f"coordonnées illisibles, traitées comme absentes : "
                            f"{_rows_text(rows[unreadable])}")
        log.note(rows[unreadable], "coordonnées illisibles ignorées")
    lon, lat, crs_used, swapped = locate_points(c1, c2, declared)
    given = np.isfinite(c1) & np.isfinite(c2)
    outside = given & (crs_used == "")
    log.outside = set(rows[outside].tolist())
    for i in np.flatnonzero(outside):
        if origin[i] == "geometry":
            shown = f"x={c1[i]}, y={c2[i]}"
        else:
            kx, ky = ("x", "y") if origin[i] == "x" else ("lon", "lat")
            shown = (f"{columns[kx]}={frame[columns[kx]].iloc[i]}, "
                     f"{columns[ky]}={frame[columns[ky]].iloc[i]}")
        log.reject([int(rows[i])], f"coordonnées hors de France ({shown})")
    if swapped.any():
        log.warnings.append(f"lat/lon inversées détectées {_rows_text(rows[swapped])} : corrigées")
        log.note(rows[swapped], "lat/lon inversées : corrigées")
    for crs in ("EPSG:2154", "EPSG:27572"):
        conv = crs_used == crs
        if conv.any() and raw.crs != crs:
            log.warnings.append(f"coordonnées en {_CRS_LABELS[crs]} converties en WGS84 "
                                f"({_plural(int(conv.sum()), 'ligne', 'lignes')})")
    return lon, lat, crs_used != "", crs_used


#: A point farther than this (metres) from the polygon of its declared commune is suspect
#: (the shipped polygons are generalised to about 250 m; a facility sits in its commune).
DECLARED_COMMUNE_TOLERANCE_M = 2_000.0
#: A point farther than this (metres) outside its declared commune, but within
#: :data:`DECLARED_COMMUNE_TOLERANCE_M`, is kept where it is and flagged « à vérifier »
#: (e.g. coded with a Paris code but placed in a neighbouring commune); twice the
#: generalisation of the shipped polygons.
DECLARED_COMMUNE_FLAG_M = 500.0


def _flag_near(dist: np.ndarray, rows: np.ndarray, declared: np.ndarray,
               current: np.ndarray, log: Any) -> None:
    """Flag the points kept although a little outside their declared commune."""
    near = (dist > DECLARED_COMMUNE_FLAG_M) & (dist <= DECLARED_COMMUNE_TOLERANCE_M)
    for j in np.flatnonzero(near):
        shown = declared[j] if declared[j] == current[j] else \
            f"{declared[j]} (commune {current[j]})"
        log.note([int(rows[j])],
                 f"position à {dist[j]:.0f} m hors de la commune déclarée {shown} : gardée "
                 "telle quelle ; à vérifier (code ou coordonnées)")
    if near.any():
        log.warnings.append(f"{int(near.sum())} position(s) à plus de "
                            f"{DECLARED_COMMUNE_FLAG_M:.0f} m hors de leur commune déclarée : "
                            "gardée(s), à vérifier")


def _current_codes(codes: list[str], cog: Any) -> tuple[list[str], set[str]]:
    """Each code's current commune (itself if unknown) and the set of those known.

    A current commune is itself (one set lookup); the COG's index of every code, former
    and delegated, is built only when another code is met.
    """
    from diagnosis.territory import current_commune

    com = cog.communes
    current = set(com["code"].to_numpy(dtype=object)[(com["kind"] == "commune").to_numpy()])
    current_of, known = [], set()
    for c in codes:
        own = c.strip().upper()
        hit = (own, "") if own in current else current_commune(c, cog)
        current_of.append(hit[0] if hit else c)
        if hit:
            known.add(hit[0])
    return current_of, known


def check_declared_communes(lon: np.ndarray, lat: np.ndarray, codes: pd.Series,
                            mask: np.ndarray, rows: np.ndarray, log: Any
                            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Check each point against the polygon of the commune its row declares.

    A point within :data:`DECLARED_COMMUNE_TOLERANCE_M` of its commune is kept. Otherwise
    the usual slips are tried: a lost minus sign on the longitude (``2.05`` for
    ``-2.05``, 300 km away in Loire-Atlantique), then swapped latitude/longitude; a fix
    that lands in the commune is applied and the row flagged with it (« à vérifier »);
    without one, the row is marked misplaced: the caller places it at its commune's town
    hall (commune precision, flagged with the distance) or rejects it. Never silently
    accepted.

    Parameters
    ----------
    lon, lat
        WGS84 coordinates of every row (modified copies are returned).
    codes
        Declared INSEE code of every row.
    mask
        Rows to check (coordinates from the file and a declared code).
    rows, log
        File row numbers and the import log (notes and rejections).

    Returns
    -------
    (numpy.ndarray, numpy.ndarray, numpy.ndarray)
        The longitudes and latitudes, fixed where a slip was found, and the rows still
        misplaced (far from their commune, no fix).
    """
    import shapely

    from data_sources.cog import load_cog
    from data_sources.national import load_national_communes
    from diagnosis.settings import METRIC_CRS

    lon, lat = lon.copy(), lat.copy()
    idx = np.flatnonzero(mask)
    # an arrondissement (Paris 75101…, Lyon, Marseille), a commune déléguée or a former
    # code is checked against its current commune's polygon, never skipped
    cog = load_cog()
    # each distinct code looked up once; rows point to their code by number
    code_of_row, distinct = pd.factorize(codes.iloc[idx].astype(str), sort=False)
    distinct_codes = [str(c) for c in distinct]
    current_of, known = _current_codes(distinct_codes, cog)
    none = np.zeros(lon.shape[0], dtype=bool)
    # a code the COG does not know has no polygon (flagged with the codes): not checked,
    # whatever its département (« 99999 » named no département to read)
    wanted = sorted(known)
    if not wanted:
        return lon, lat, none
    deps = sorted({c[:3] if c.startswith("97") else c[:2] for c in wanted})
    geo = load_national_communes(departements=deps)
    geo = geo.loc[geo["code_insee"].isin(wanted) & geo.geometry.notna()]
    if geo.empty:
        return lon, lat, none
    polys = dict(zip(geo["code_insee"], geo.to_crs(METRIC_CRS).geometry, strict=True))
    shapely.prepare(list(polys.values()))  # many points tested against each polygon
    # per distinct code, its current commune's polygon (None: no polygon, not checked)
    shape_of = np.array([polys.get(c) for c in current_of] + [None], dtype=object)[:-1]
    has_shape = np.array([c in polys for c in current_of], dtype=bool)
    # geopandas' cached transformer: the one its reprojections to Lambert-93 use
    to_metric = TransformerFromCRS(pyproj.CRS.from_user_input(WGS84),
                                   pyproj.CRS.from_user_input(METRIC_CRS), always_xy=True)

    def metres(x: np.ndarray, y: np.ndarray, which: np.ndarray) -> np.ndarray:
        # distance of each point to the polygon of its code (number ``which`` into
        # the distinct codes): 0 inside, computed only for the points outside, and 0
        # for a commune without a polygon
        mx, my = to_metric.transform(x, y, errcheck=False)
        mx, my = np.asarray(mx, dtype=float), np.asarray(my, dtype=float)
        shapes = shape_of[which]
        d = np.zeros(len(which), dtype=float)
        out = np.flatnonzero(has_shape[which])
        out = out[~shapely.intersects_xy(shapes[out], mx[out], my[out])]
        d[out] = shapely.distance(shapely.points(mx[out], my[out]), shapes[out])
        return d

    # each row's declared and current code, looked up by number (no list built per row)
    declared = np.array(distinct_codes, dtype=object)[code_of_row]
    code_list = np.array(current_of, dtype=object)[code_of_row]
    dist = metres(lon[idx], lat[idx], code_of_row)
    _flag_near(dist, rows[idx], declared, code_list, log)
    far = dist > DECLARED_COMMUNE_TOLERANCE_M
    if not far.any():
        return lon, lat, none
    bad = idx[far]
    bad_codes = [code_list[j] for j in np.flatnonzero(far)]
    fixes = (("signe moins perdu sur la longitude", -lon[bad], lat[bad]),
             ("latitude et longitude inversées", lat[bad], lon[bad]),
             ("signe moins perdu et coordonnées inversées", -lat[bad], lon[bad]))
    done = np.zeros(bad.size, dtype=bool)
    for label, x, y in fixes:
        ok = ~done & _in_france(x, y)
        if not ok.any():
            continue
        d2 = np.full(bad.size, np.inf)
        d2[ok] = metres(x[ok], y[ok], code_of_row[far][ok])
        good = ok & (d2 <= DECLARED_COMMUNE_TOLERANCE_M)
        for j in np.flatnonzero(good):
            i = bad[j]
            log.note([int(rows[i])],
                     f"position corrigée ({label}) : {lat[i]:.5f}, {lon[i]:.5f} → "
                     f"{y[j]:.5f}, {x[j]:.5f}, dans la commune déclarée {bad_codes[j]} ; à "
                     "vérifier")
            lon[i], lat[i] = x[j], y[j]
        done |= good
    misplaced = np.zeros(lon.shape[0], dtype=bool)
    for j in np.flatnonzero(~done):
        i = bad[j]
        km = dist[np.flatnonzero(far)[j]] / 1000
        misplaced[i] = True
        log.note([int(rows[i])],
                 f"coordonnées à {km:.0f} km de la commune déclarée {bad_codes[j]} : "
                 "placée à la mairie de cette commune (position approximative) ; à vérifier")
    if done.any():
        log.warnings.append(f"{int(done.sum())} position(s) corrigée(s) d'après la commune "
                            "déclarée (signe moins perdu ou lat/lon inversées) : à vérifier")
    if misplaced.any():
        log.warnings.append(f"{int(misplaced.sum())} position(s) loin de leur commune déclarée, "
                            "sans correction évidente : placée(s) à la mairie de la commune "
                            "(à défaut, rejetée(s)) ; à vérifier")
    return lon, lat, misplaced
