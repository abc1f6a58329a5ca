"""Turn a raw table into schema facilities and an import report."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from data_sources.user_file.columns import COLUMN_ALIASES, _fold, _map_unique
from data_sources.user_file.communes import (
    _codes_from_cog,
    _codes_from_polygons,
    _Cog,
    _cog_index,
    _parse_codes,
    _parse_postcodes,
    _point_table,
)
from data_sources.user_file.duplicates import find_duplicates
from data_sources.user_file.positions import (
    _crs_summary,
    _parse_positions,
    _to_float,
    check_declared_communes,
)
from data_sources.user_file.read import RawTable
from data_sources.user_file.report import ImportReport, _Log, _plural, _rows_text
from data_sources.user_file.types import _type_text, map_type
from diagnosis.errors import InputError
from diagnosis.schema import (
    FACILITY_TYPES,
    empty_facilities,
    facility_label,
    validate_facilities,
)
from diagnosis.settings import (
    DUPLICATE_DISTANCE_M,
    WGS84,
)

#: How a geocoder's result type or a quality column maps to ``position_precision``.
_PRECISION_VALUES: dict[str, str] = {
    "address": "address", "adresse": "address", "housenumber": "address", "numero": "address",
    "bonne": "address", "rooftop": "address",
    "street": "street", "rue": "street", "voie": "street", "locality": "street",
    "lieu_dit": "street", "acceptable": "street",
    "commune": "commune", "municipality": "commune", "mairie": "commune", "city": "commune",
    "mauvaise": "commune",
}
#: The leading apostrophe that keeps a formula-like cell as text (``'=1+1``, ``'@x``).
_FORMULA_GUARD = r"^'(?=[=+\-@])"


def _column_reader(frame: pd.DataFrame,
                   columns: Mapping[str, str]) -> Callable[[str], pd.Series]:
    """The cleaned text of a column key (empty when the file has none), each read once."""
    texts: dict[str, pd.Series] = {}

    def col(key: str) -> pd.Series:
        if key not in columns:
            return pd.Series([""] * len(frame), index=frame.index, dtype=object)
        if key not in texts:  # each column read once, however many steps use it
            values = frame[columns[key]].astype(str).str.strip()
            # "'=1+1": the apostrophe our CSV writers (and spreadsheets) put before a
            # formula-like text is not part of the value; every export adds it back
            guarded = values.str.startswith("'").to_numpy(dtype=bool)
            if guarded.any():  # the pattern only on the cells it can change
                values = values.copy()
                values[guarded] = values[guarded].str.replace(_FORMULA_GUARD, "", n=1,
                                                              regex=True)
            texts[key] = values
        return texts[key].copy()

    return col


def parse_facilities(
    raw: RawTable,
    columns: Mapping[str, str],
    *,
    file_name: str,
    default_type: str | None = None,
    town_halls: gpd.GeoDataFrame | None = None,
    communes: gpd.GeoDataFrame | None = None,
    cog: pd.DataFrame | None = None,
    source_date: str = "",
    insee_fallbacks: Sequence[str] = (),
    distance_m: float = DUPLICATE_DISTANCE_M,
) -> tuple[gpd.GeoDataFrame, ImportReport]:
    """Turn a raw table into schema facilities and an import report.

    Parameters
    ----------
    raw
        The table from :func:`read_table`.
    columns
        Column key -> file column, from :func:`detect_columns`.
    file_name
        Name of the file: ``source = "user:<file_name>"`` and
        ``facility_id = "user:<stem>:<id or row>"``.
    default_type, town_halls, communes, cog, source_date
        See :func:`load_facility_file` (``cog=None`` here means no COG lookups).
    insee_fallbacks
        Other commune-code columns read, in order, where ``columns["code_insee"]`` is
        empty (see :func:`insee_fallback_columns`).
    distance_m
        Two rows of the same type with the same name closer than this are duplicates.

    Returns
    -------
    facilities, report
        Facilities validated by :func:`diagnosis.schema.validate_facilities` (in file
        order) and the :class:`ImportReport`.

    Raises
    ------
    InputError
        No type column and no ``default_type``; an unknown ``default_type``; bad
        ``town_halls``/``communes``/``cog`` tables.
    """
    frame = raw.frame
    rows = np.asarray(frame.index, dtype=np.int64)
    n = len(rows)
    stem = Path(file_name).stem

    col = _column_reader(frame, columns)
    names = col("name")
    log = _Log()
    log.warnings.extend(raw.warnings)
    log.reject([r for r in raw.malformed], lambda r: raw.malformed[r])
    log.note(list(raw.notes), lambda r: raw.notes[r])

    types, subtypes = _parse_types(col("type"), col("subtype"), log, columns=columns,
                                   default_type=default_type, file_name=file_name,
                                   file_columns=list(frame.columns))
    names = _name_unnamed(names, types, log)

    # --- coordinates
    lon, lat, precise, crs_used = _parse_positions(raw, columns, col, log)

    # --- commune codes
    cog_index = _cog_index(cog) if cog is not None else None
    postcodes = _parse_postcodes(col("postcode"), col("address"), log)
    codes = _parse_codes(frame, columns, insee_fallbacks, log)
    if communes is not None and ((codes.to_numpy(dtype=object) == "") & precise).any():
        codes = _codes_from_polygons(codes, lon, lat,
                                     (codes.to_numpy(dtype=object) == "") & precise,
                                     communes, log)
    if cog_index is not None:
        codes = _codes_from_cog(codes, postcodes, col("commune"), col("address"), cog_index, log)
    missing_code = codes.to_numpy(dtype=object) == ""

    # --- positions checked against the declared commune (a lost minus sign, a swap…)
    declared = precise & ~missing_code & ~np.isin(rows, list(log.outside))
    if declared.any():
        lon, lat, misplaced = check_declared_communes(lon, lat, codes, declared, rows, log)
        if misplaced.any():  # placed at their commune's town hall below (or rejected)
            precise = precise & ~misplaced
            lon[misplaced] = lat[misplaced] = np.nan

    # --- placement at the town hall for rows without coordinates
    precision = _parse_precision(col("precision")) if "precision" in columns else \
        pd.Series(["address"] * n, index=frame.index, dtype=object)
    placed_hall = _place_at_town_halls(rows, codes, postcodes, lon, lat, todo=~precise,
                                       town_halls=town_halls, cog_index=cog_index, log=log)
    precision = precision.where(~placed_hall, "commune")
    log.reject(rows[precise & missing_code],
               "code commune absent ou invalide : ajoutez une colonne code_insee (ou code "
               "postal), ou fournissez les contours des communes")

    # --- other fields
    capacity = _parse_capacity(col("capacity"), log)
    ids = col("id")
    id_texts = ids.to_numpy(dtype=object)
    # the row number where the file gives no id (numbers written by numpy, not one by one)
    source_ids = pd.Series(np.where(id_texts == "", rows.astype(str).astype(object), id_texts),
                           index=frame.index, dtype=object)
    keep = ~np.isin(rows, np.fromiter(log.reasons, dtype=np.int64, count=len(log.reasons)))
    fields = {"type": types, "subtype": subtypes, "name": names, "address": col("address"),
              "postcode": postcodes, "code_insee": codes, "operator": col("operator"),
              "phone": col("phone"), "email": col("email"), "website": col("website"),
              "source_id": source_ids, "position_precision": precision}
    facilities = _kept_facilities(fields, capacity, lon, lat, rows, keep, stem=stem,
                                  file_name=file_name, source_date=source_date)
    kept_rows = rows[keep]
    duplicates = find_duplicates(facilities, rows=kept_rows,
                                 file_ids=id_texts[keep].tolist(),
                                 distance_m=distance_m)
    # each duplicate's position among the kept rows, found in one hashed lookup
    position = pd.Index(kept_rows).get_indexer(pd.Index(duplicates["row"], dtype=np.int64))
    facility_ids_kept = facilities["facility_id"].to_numpy(dtype=object)
    duplicate_ids = tuple(str(f) for f in facility_ids_kept[position].tolist())
    rejected, notes = _log_tables(names, log)
    crs_text = _crs_summary(crs_used[precise], raw.crs)
    report = ImportReport(
        file=file_name, rows_read=n, accepted=len(facilities), rejected=rejected,
        duplicates=duplicates, warnings=tuple(log.warnings), column_mapping=dict(columns),
        crs_detected=crs_text, encoding=raw.encoding, notes=notes,
        duplicate_ids=duplicate_ids,
    )
    return facilities, report


def _name_unnamed(names: pd.Series, types: pd.Series, log: _Log) -> pd.Series:
    """Name « <type> sans nom » the typed rows without a name (they are kept, and noted)."""
    unnamed = names.eq("") & types.ne("")
    if unnamed.any():  # keep the facility: a missing name does not make it disappear
        names = names.where(~unnamed, types.map(
            lambda t: f"{facility_label(t)} sans nom" if t else ""))
        log.warnings.append(f"nom absent, remplacé par « <type> sans nom » : "
                            f"{_rows_text(names.index[unnamed.to_numpy()])}")
        log.note(names.index[unnamed.to_numpy()], "nom absent dans le fichier")
    return names


def _kept_facilities(
    fields: Mapping[str, pd.Series], capacity: np.ndarray, lon: np.ndarray, lat: np.ndarray,
    rows: np.ndarray, keep: np.ndarray, *, stem: str, file_name: str, source_date: str,
) -> gpd.GeoDataFrame:
    """The accepted rows as validated schema facilities (ids ``user:<stem>:<id or row>``)."""
    facility_ids = _unique_ids(
        [f"user:{stem}:{s}" for s in fields["source_id"].to_numpy(dtype=object)[keep].tolist()],
        rows[keep].tolist())

    count = int(keep.sum())

    # text columns handed over as Python text (object dtype): the schema keeps them so,
    # and pandas would otherwise convert each to arrow text first
    def kept(key: str) -> pd.Series:
        return pd.Series(fields[key].to_numpy(dtype=object)[keep], dtype=object, copy=False)

    def same(text: str) -> pd.Series:
        return pd.Series(np.full(count, text, dtype=object), dtype=object, copy=False)

    table = pd.DataFrame({
        "facility_id": pd.Series(facility_ids, dtype=object),
        "type": kept("type"),
        "subtype": kept("subtype"),
        "name": kept("name"),
        "address": kept("address"),
        "postcode": kept("postcode"),
        "code_insee": kept("code_insee"),
        "capacity": capacity[keep],
        "operator": kept("operator"),
        "phone": kept("phone"),
        "email": kept("email"),
        "website": kept("website"),
        "source": same(f"user:{file_name}"),
        "source_id": kept("source_id"),
        "source_date": same(source_date),
        "position_precision": kept("position_precision"),
    })
    if not keep.any():
        return empty_facilities()
    gdf = gpd.GeoDataFrame(table, geometry=gpd.points_from_xy(lon[keep], lat[keep]), crs=WGS84)
    return validate_facilities(gdf, source=f"user:{file_name}")


def _place_at_town_halls(
    rows: np.ndarray, codes: pd.Series, postcodes: pd.Series, lon: np.ndarray,
    lat: np.ndarray, *, todo: np.ndarray, town_halls: gpd.GeoDataFrame | None,
    cog_index: _Cog | None, log: _Log,
) -> np.ndarray:
    """Place the ``todo`` rows (no usable coordinates) at their commune's town hall.

    Fills ``lon``/``lat`` in place, rejects the rows that cannot be placed (saying why)
    and notes the placed ones; returns the mask of the rows placed.
    """
    placed_hall = np.zeros(len(rows), dtype=bool)
    halls = _point_table(town_halls, arg="town_halls", points=True) if town_halls is not None \
        else None
    hall_xy: dict[str, tuple[float, float]] = {}
    if halls is not None:  # coordinates read in one call, not point by point
        xs = shapely.get_x(halls.geometry.to_numpy()).tolist()
        ys = shapely.get_y(halls.geometry.to_numpy()).tolist()
        hall_xy = dict(zip(halls["code_insee"].tolist(), zip(xs, ys, strict=True), strict=True))
    outside = np.isin(rows, list(log.outside))
    code_at = codes.to_numpy(dtype=object)  # read once, not cell by cell
    postcode_at = postcodes.to_numpy(dtype=object)
    for i in np.flatnonzero(todo & ~outside):
        row, code, postcode = int(rows[i]), code_at[i], postcode_at[i]
        if not code and postcode:
            log.reject([row], f"ni coordonnées ni code commune, et le code postal {postcode} ne "
                              "désigne pas une seule commune : ajoutez lat/lon ou le code INSEE")
        elif not code:
            log.reject([row], "ni coordonnées ni code commune : ajoutez lat/lon ou un code "
                              "INSEE de commune")
        elif cog_index is not None and code not in cog_index.known:
            log.reject([row], f"pas de coordonnées et code commune {code} inconnu : corrigez "
                              "le code ou ajoutez lat/lon")
        elif halls is None:
            log.reject([row], f"pas de coordonnées ; commune {code} connue mais aucune liste de "
                              "mairies fournie pour l'y placer")
        elif code not in hall_xy:
            log.reject([row], f"pas de coordonnées et commune {code} absente de la liste des "
                              "mairies")
        else:
            lon[i], lat[i] = hall_xy[code]
            placed_hall[i] = True
    hall_ok = [r for r in rows[placed_hall].tolist() if r not in log.reasons]
    if hall_ok:
        log.note(hall_ok, "placée à la mairie de sa commune (position approximative)")
        where = "ligne placée à la mairie de sa", "lignes placées à la mairie de leur"
        log.warnings.append(f"{_plural(len(hall_ok), *where)} commune (position approximative)")
    return placed_hall


def _log_tables(names: pd.Series, log: _Log) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The rejected rows and the noted (accepted) rows of the import, with their names."""
    rej_rows = sorted(log.reasons)
    rejected = pd.DataFrame({
        "row": pd.Series(rej_rows, dtype="int64"),
        "name": pd.Series(names.reindex(rej_rows).to_numpy(), dtype=object),
        "reason": pd.Series([" ; ".join(log.reasons[r]) for r in rej_rows], dtype=object),
    })
    note_rows = sorted(r for r in log.notes if r not in log.reasons)
    notes = pd.DataFrame({
        "row": pd.Series(note_rows, dtype="int64"),
        "name": pd.Series(names.reindex(note_rows).to_numpy(), dtype=object),
        "note": pd.Series([" ; ".join(log.notes[r]) for r in note_rows], dtype=object),
    })
    return rejected, notes


def _unique_ids(ids: list[str], rows: list[int]) -> list[str]:
    if len(set(ids)) == len(ids):  # the usual case: nothing to rename
        return ids
    seen: set[str] = set()
    out: list[str] = []
    for fid, row in zip(ids, rows, strict=True):
        if fid in seen:
            fid = f"{fid}:ligne{row}"
        seen.add(fid)
        out.append(fid)
    return out


def _parse_types(
    values: pd.Series, sub_values: pd.Series, log: _Log, *, columns: Mapping[str, str],
    default_type: str | None, file_name: str, file_columns: Sequence[str],
) -> tuple[pd.Series, pd.Series]:
    default: tuple[str, str] | None = None
    if default_type is not None:
        mapped = map_type(default_type)
        if mapped is None:
            raise InputError(f"default_type={default_type!r} is not a facility type; use one of "
                             f"{sorted(FACILITY_TYPES)} or a label such as 'micro-crèche'",
                             argument="type par défaut", value=default_type,
                             candidates=sorted(FACILITY_TYPES),
                             fr=f"type par défaut « {default_type} » inconnu : choisissez "
                                f"parmi {', '.join(sorted(FACILITY_TYPES))} ou un libellé "
                                "comme « micro-crèche »")
        default = mapped[0], mapped[1]
    if "type" not in columns and default is None:
        raise InputError(
            f"{file_name}: no type column found; columns found: {list(file_columns)}; "
            f"expected one of {list(COLUMN_ALIASES['type'][:6])}…; pass default_type='eaje' "
            f"(or another type among {sorted(FACILITY_TYPES)}) or mapping={{'type': '<column>'}}",
            argument="fichier de structures", value=file_name,
            fr=f"« {file_name} » : aucune colonne de type (crèche, PMI, RPE…) parmi les "
               f"colonnes {', '.join(map(str, list(file_columns)[:12]))} ; ajoutez une "
               "colonne « type » ou choisissez un type par défaut pour tout le fichier"
        )
    if "type" not in columns:
        assert default is not None
        log.warnings.append(f"pas de colonne de type : toutes les lignes reçoivent le type "
                            f"« {_type_text(*default)} »")
    # each distinct label mapped once; its rows found by number, not by comparing text
    label_of_row, labels = pd.factorize(values.to_numpy(dtype=object))
    type_out = pd.Series("", index=values.index, dtype=object)
    sub_out = pd.Series("", index=values.index, dtype=object)
    for k, value in enumerate(labels.tolist()):
        mapped = map_type(value)
        mask = label_of_row == k
        rows = values.index[mask]
        if mapped is not None:
            type_out[mask], sub_out[mask] = mapped[0], mapped[1]
            if mapped[2]:
                log.warnings.append(
                    f"type « {value} » ({_plural(len(rows), 'ligne', 'lignes')}) interprété "
                    f"comme {_type_text(mapped[0], mapped[1])}")
        elif default is not None:
            type_out[mask], sub_out[mask] = default
            if "type" in columns:
                what = f"type « {value} »" if value else "type vide"
                log.warnings.append(
                    f"{what} ({_plural(len(rows), 'ligne', 'lignes')}) remplacé par le type "
                    f"par défaut « {_type_text(*default)} »")
        elif value == "":
            log.reject(rows, "type manquant")
        else:
            log.reject(rows, f"type inconnu : {value!r} (types reconnus : crèche, multi-accueil, "
                             "micro-crèche, MAM, RPE, LAEP, PMI, centre social, EVS, maternité, "
                             "sage-femme, mairie, codes BPE D502…, FINESS 223)")
    # explicit subtypes
    is_eaje = type_out.eq("eaje")
    unknown_sub: list[int] = []
    for value in pd.unique(sub_values[sub_values.ne("")]):
        mask = sub_values.eq(value)
        mapped = map_type(value)
        eaje_mask = mask & is_eaje
        if mapped is not None and mapped[0] == "eaje" and mapped[1]:
            sub_out[eaje_mask] = mapped[1]
        elif eaje_mask.any() and not (mapped is not None and mapped[0] == "eaje"):
            unknown_sub += values.index[eaje_mask.to_numpy()].tolist()
        other = mask & ~is_eaje
        sub_out[other] = value  # free text for other types
    if unknown_sub:
        log.warnings.append(f"sous-type de crèche non reconnu, laissé tel que déduit du type : "
                            f"{_rows_text(unknown_sub)}")
    return type_out, sub_out


def _parse_precision(values: pd.Series) -> pd.Series:
    return _map_unique(values, lambda v: _PRECISION_VALUES.get(_fold(v), "address"))


def _parse_capacity(values: pd.Series, log: _Log) -> np.ndarray:
    # « 12 places »: the unit is dropped, the pattern run only on the cells naming it
    unit = values.str.contains("[pP][lL][aA][cC][eE]", regex=True).to_numpy(dtype=bool)
    if unit.any():
        values_read = values.copy()
        values_read[unit] = values[unit].str.replace(r"\s*places?\s*$", "", regex=True,
                                                     case=False)
    else:
        values_read = values
    num, unreadable = _to_float(values_read)
    rows = values.index
    if unreadable.any():
        log.warnings.append(f"capacité illisible laissée vide : {_rows_text(rows[unreadable])}")
        log.note(rows[unreadable], lambda r: f"capacité illisible ({values[r]!r}) laissée vide")
    with np.errstate(invalid="ignore"):
        zero_or_neg = num <= 0
    if zero_or_neg.any():
        log.warnings.append(f"capacité nulle ou négative considérée comme inconnue : "
                            f"{_rows_text(rows[zero_or_neg])}")
        log.note(rows[zero_or_neg], lambda r: f"capacité {values[r]!r} considérée comme inconnue")
        num = np.where(zero_or_neg, np.nan, num)
    return num
