"""Commune codes and postcodes of the imported rows (COG, polygons, town halls)."""

from __future__ import annotations

import functools
import re
from collections.abc import Container, Mapping, Sequence
from dataclasses import dataclass
from typing import cast

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from data_sources.user_file.columns import _fold, _map_unique
from data_sources.user_file.report import _Log, _plural, _rows_text
from diagnosis.errors import InputError
from diagnosis.settings import (
    WGS84,
)

_INSEE_RE = re.compile(r"^(?:\d{5}|2[AB]\d{3})$")


_POSTCODE_RE = re.compile(r"^\d{5}$")


_POSTCODE_IN_TEXT_RE = re.compile(r"(?<!\d)(\d{5})(?!\d)")


def _insee(value: str) -> str:
    """Normalise a commune code: ``"44109.0"`` -> ``"44109"``, ``"1001"`` -> ``"01001"``."""
    text = re.sub(r"\s+", "", str(value)).upper()
    text = re.sub(r"\.0+$", "", text)
    if re.fullmatch(r"\d{4}", text):
        text = text.zfill(5)
    return text if _INSEE_RE.match(text) else ""


def _postcode(value: str) -> str:
    text = re.sub(r"\s+", "", str(value))
    text = re.sub(r"\.0+$", "", text)
    if re.fullmatch(r"\d{4}", text):
        text = text.zfill(5)
    return text if _POSTCODE_RE.match(text) else ""


@dataclass(frozen=True)
class _Cog:
    current: dict[str, str]               # code -> name of current communes
    former: dict[str, str]                # former (merged) code -> current code
    known: frozenset[str] = frozenset()   # every code of the table (arrondissements too)
    #: (code, postcodes) of each current commune, in table order: indexed by postcode
    #: (:attr:`by_postcode`) only when a row needs it
    postcodes_of: tuple[tuple[str, str], ...] = ()

    @functools.cached_property
    def by_postcode(self) -> dict[str, tuple[str, ...]]:
        """The current communes of each postcode, in table order."""
        found: dict[str, list[str]] = {}
        for code, postcodes in self.postcodes_of:
            for pc in postcodes.split():
                found.setdefault(pc, []).append(code)
        return {k: tuple(v) for k, v in found.items()}


_COG_CACHE: dict[int, tuple[pd.DataFrame, _Cog]] = {}


def _cog_index(cog: pd.DataFrame) -> _Cog:
    """Index a COG commune table (cached for the same table object)."""
    cached = _COG_CACHE.get(id(cog))
    if cached is not None and cached[0] is cog:
        return cached[1]
    index = _build_cog_index(cog)
    _COG_CACHE.clear()  # keep one table: the shipped COG, or the caller's
    _COG_CACHE[id(cog)] = (cog, index)
    return index


def _build_cog_index(cog: pd.DataFrame) -> _Cog:
    need = {"code", "name", "kind", "parent_code", "former_codes", "postcodes"}
    missing = need - set(cog.columns)
    if missing:
        raise InputError(f"cog lacks columns {sorted(missing)}; pass the communes table of "
                         "data_sources.cog.load_cog()")
    table = {c: _text_list(cog[c]) for c in need}
    records = list(zip(table["code"], table["name"], table["kind"], table["parent_code"],
                       table["former_codes"], table["postcodes"], strict=True))
    current = {code: name for code, name, kind, *_ in records if kind == "commune"}
    former: dict[str, str] = {}
    for code, _name, kind, parent, formers, _postcodes in records:
        if kind == "commune":
            if formers:
                for f in formers.split():
                    if f not in current:
                        former.setdefault(f, code)
        elif kind in ("deleguee", "associee") and parent and code not in current:
            former.setdefault(code, parent)
    known = frozenset(table["code"]) | frozenset(former)
    postcodes_of = tuple((code, postcodes) for code, _n, kind, _p, _f, postcodes in records
                         if kind == "commune")
    return _Cog(current, former, known, postcodes_of)


def _text_list(column: pd.Series) -> list[str]:
    """The cells of a column as text, ``""`` where missing (as ``astype(str)`` writes them).

    Examples
    --------
    >>> _text_list(pd.Series(["44109", None, float("nan"), 44.5], dtype=object))
    ['44109', '', '', '44.5']
    """
    cells = column.to_numpy(dtype=object)
    cells = np.where(pd.isna(cells), "", cells)
    if pd.api.types.infer_dtype(cells, skipna=False) == "string":  # text already: as is
        return cast("list[str]", cells.tolist())
    return [str(v) for v in cells.tolist()]


def _shipped_cog() -> pd.DataFrame | None:
    try:
        from data_sources.cog import load_cog
    except ImportError:  # pragma: no cover - the shipped COG module is part of the package
        return None
    return load_cog().communes


def _needs_cog(columns: Mapping[str, str]) -> bool:
    """The COG is needed to map former commune codes or to read postcodes."""
    return bool(columns.keys() & {"code_insee", "postcode", "address"})


def _commune_from_postcode(postcode: str, place: str, cog: _Cog) -> str:
    codes = cog.by_postcode.get(postcode, ())
    if len(codes) == 1:
        return codes[0]
    place = _fold(re.sub(r"\bcedex\b.*$", "", place, flags=re.IGNORECASE), " ")
    if not codes or not place:
        return ""
    named = [(len(_fold(cog.current[c], " ")), c) for c in codes
             if re.search(rf"\b{re.escape(_fold(cog.current[c], ' '))}\b", place)]
    return max(named)[1] if named else ""


def _point_table(gdf: gpd.GeoDataFrame, *, arg: str, points: bool) -> gpd.GeoDataFrame:
    """Check ``town_halls``/``communes``: a code column and geometries; return in WGS84."""
    code_col = "code_insee" if "code_insee" in gdf.columns else "code" if "code" in gdf.columns \
        else None
    if code_col is None or not isinstance(gdf, gpd.GeoDataFrame):
        raise InputError(f"{arg} must be a GeoDataFrame with a 'code_insee' column; got columns "
                         f"{list(gdf.columns)}")
    if gdf.crs is None:
        raise InputError(f"{arg} has no CRS; set one (e.g. gdf.set_crs('EPSG:4326'))")
    out = gdf.to_crs(WGS84)
    codes = out[code_col].to_numpy(dtype=object)
    # each code tested as Python text (an arrow regex over the 35,000 communes of France
    # cost 0.04-0.2 s per import); a code that is not clean goes through the normaliser
    if pd.api.types.infer_dtype(codes, skipna=False) == "string":  # text: one pass
        clean = np.fromiter(map(bool, map(_INSEE_RE.fullmatch, codes)), dtype=bool,
                            count=len(codes))
    else:  # numbers, gaps…
        codes = out[code_col].astype(str).to_numpy(dtype=object)
        clean = np.fromiter((isinstance(c, str) and _INSEE_RE.fullmatch(c) is not None
                             for c in codes), dtype=bool, count=len(codes))
    if not clean.all():
        codes[~clean] = [_insee(c) for c in codes[~clean]]
    out = gpd.GeoDataFrame({"code_insee": codes}, geometry=out.geometry.values, crs=WGS84)
    out = out[out["code_insee"].ne("") & out.geometry.notna() & ~out.geometry.is_empty]
    if points:
        out = out.copy()
        values = out.geometry.to_numpy()
        if not (shapely.get_type_id(values) == 0).all():  # a point is its own
            out["geometry"] = out.geometry.representative_point()
        out = out.drop_duplicates("code_insee")
    return out


def _parse_postcodes(values: pd.Series, addresses: pd.Series, log: _Log) -> pd.Series:
    out = _map_unique(values, _postcode)
    bad = values.ne("") & out.eq("")
    if bad.any():
        log.warnings.append(f"code postal illisible ignoré : {_rows_text(values.index[bad])}")
    from_addr = out.eq("") & addresses.ne("")
    if from_addr.any():
        found = addresses[from_addr].map(
            lambda a: (_POSTCODE_IN_TEXT_RE.findall(a) or [""])[-1]).astype(object)
        found = found[found.ne("")]
        if len(found):
            out.loc[found.index] = found
            log.warnings.append(f"code postal lu dans l'adresse pour "
                                f"{_plural(len(found), 'ligne', 'lignes')}")
    return out


def _parse_codes(
    frame: pd.DataFrame, columns: Mapping[str, str], fallbacks: Sequence[str], log: _Log,
) -> pd.Series:
    if "code_insee" not in columns and not fallbacks:
        return pd.Series([""] * len(frame), index=frame.index, dtype=object)
    primary = columns.get("code_insee")
    order = ([primary] if primary else []) + list(fallbacks)
    codes = _map_unique(frame[order[0]], _insee)
    bad = frame[order[0]].astype(str).str.strip().ne("") & codes.eq("")
    for other in order[1:]:
        empty = codes.eq("")
        if not empty.any():
            break
        alt = _map_unique(frame.loc[empty, other], _insee)
        alt = alt[alt.ne("")]
        if len(alt):
            codes.loc[alt.index] = alt
            log.warnings.append(f"code commune lu dans « {other} » pour "
                                f"{_plural(len(alt), 'ligne', 'lignes')} où "
                                f"« {order[0]} » est vide ou invalide")
    still_bad = bad & codes.eq("")
    if still_bad.any():
        log.warnings.append(f"code commune invalide ignoré : {_rows_text(frame.index[still_bad])}")
    return codes


def _codes_from_polygons(
    codes: pd.Series, lon: np.ndarray, lat: np.ndarray, mask: np.ndarray,
    communes: gpd.GeoDataFrame, log: _Log,
) -> pd.Series:
    polys = _point_table(communes, arg="communes", points=False)
    pts = gpd.GeoDataFrame(geometry=gpd.points_from_xy(lon[mask], lat[mask]), crs=WGS84,
                           index=codes.index[mask])
    joined = gpd.sjoin(pts, polys, how="inner", predicate="within")
    joined = joined[~joined.index.duplicated()]
    codes = codes.copy()
    codes.loc[joined.index] = joined["code_insee"].astype(str)
    if len(joined):
        log.warnings.append(f"code commune déduit de la position (contours des communes) pour "
                            f"{_plural(len(joined), 'ligne', 'lignes')}")
        log.note(joined.index, "code commune déduit de la position")
    return codes


def _in_keys(values: pd.Series, keys: Container[str]) -> np.ndarray:
    """Whether each value is among ``keys``, each distinct value looked up once.

    Examples
    --------
    >>> _in_keys(pd.Series(["44109", "", "44109", "99999"], dtype=object), {"44109": 1})
    array([ True, False,  True, False])
    """
    of_row, distinct = pd.factorize(values.to_numpy(dtype=object), use_na_sentinel=False)
    found = np.fromiter((v in keys for v in distinct), dtype=bool, count=len(distinct))
    return found[of_row]


def _codes_from_cog(
    codes: pd.Series, postcodes: pd.Series, commune_names: pd.Series, addresses: pd.Series,
    cog: _Cog, log: _Log,
) -> pd.Series:
    filled = codes.to_numpy(dtype=object) != ""
    old = filled & ~_in_keys(codes, cog.current) & _in_keys(codes, cog.former)
    replaced = {c: cog.former[c] for c in pd.unique(codes[old])}
    replaced_rows = [int(str(r)) for r in codes.index[old]]
    before = codes.copy()
    codes = codes.astype(object)  # a copy; the former codes replaced where they stand
    if old.any():
        codes[old] = [cog.former.get(c, c) for c in codes[old]]
    log.note(replaced_rows, lambda r: (
        f"code commune {before.loc[r]} (ancienne commune) remplacé par {codes.loc[r]} "
        f"({cog.current.get(codes.loc[r], '')})"))
    if replaced_rows:
        pairs = ", ".join(f"{a} → {b}" for a, b in list(replaced.items())[:5])
        log.warnings.append(
            f"code d'une ancienne commune remplacé par celui de la commune actuelle pour "
            f"{_plural(len(replaced_rows), 'ligne', 'lignes')} ({pairs})")
    unknown = (codes.to_numpy(dtype=object) != "") & ~_in_keys(codes, cog.known)
    if unknown.any():
        unknown_rows = [int(str(r)) for r in codes.index[unknown]]
        log.note(unknown_rows, lambda r: (
            f"code commune {codes.loc[r]} inconnu du code officiel géographique (ni commune "
            "actuelle ni ancienne) : vérifiez-le"))
        shown = ", ".join(pd.unique(codes[unknown])[:5])
        log.warnings.append(
            f"code commune inconnu ({shown}) : {_rows_text(unknown_rows)} ; vérifiez ces codes")
    deduced: list[int] = []
    for row in codes.index[(codes.to_numpy(dtype=object) == "")
                           & (postcodes.to_numpy(dtype=object) != "")]:
        pc = postcodes[row]
        place = commune_names[row] or addresses[row].split(pc, 1)[-1]
        code = _commune_from_postcode(pc, place, cog)
        if code:
            codes.loc[row] = code
            deduced.append(int(str(row)))
            log.note([int(str(row))], f"code commune {code} ({cog.current[code]}) déduit du code "
                                      f"postal {pc}")
    if deduced:
        log.warnings.append(f"code commune déduit du code postal pour "
                            f"{_plural(len(deduced), 'ligne', 'lignes')}")
    return codes
