"""Exports for consultants: GeoPackage for QGIS, CSV for French Excel, a diagnosis file.

Layers (French names; French column labels and values rounded to their meaning in the
files, by :mod:`diagnosis.export_columns`; every column defined, with its unit, source and
year, in the ``dictionnaire`` table of every export):

===================================== ======================================================
``communes_indicateurs``              communes of the territory, needs and proximity per type
``structures_<type>``                 facilities of the territory, one layer per type
                                      (``structures_pmi``, ``structures_creches``…), written
                                      even when empty (none known is a finding)
``structures_voisines``               facilities outside the territory that are the nearest
                                      of their type for at least one commune
``accessibilite``, ``manques``,       results of the other analyses when they were run
``sites_recommandes``, ``partenaires``,
``groupes_de_pairs``, ``zones_de_desserte``
``dictionnaire``                      non-spatial: layer, column (label and code),
                                      definition, unit, source, year
``sources``                           non-spatial: sources with vintage, licence, attribution
``metadonnees``                       non-spatial: territory, parameters, CRS, date
===================================== ======================================================

CRS: the GeoPackage is written in **EPSG:4326** (WGS84), which QGIS reprojects on the
fly and which works for every French territory, overseas included; distances in the
tables are metres computed in EPSG:2154 (Lambert-93). CSV files are ``;``-separated,
UTF-8 with BOM, decimal comma (what French Excel opens directly); booleans are written
``oui``/``non``; points get ``lon``/``lat`` columns, polygons are left out (use the
GeoPackage).

Every file is written to a temporary file in the target folder, then renamed: an
interrupted export never leaves a half-written file.

A diagnosis file (JSON, :func:`build_diagnosis_record`) keeps the territory, the
parameters, the data ledger (sources with vintages, data files and imported files
with their SHA-256) and the summary, so the same diagnosis can be run again and checked
(``python -m diagnosis rerun FILE.json``, :func:`compare_ledgers`,
:func:`compare_summaries`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, cast

import geopandas as gpd
import numpy as np
import pandas as pd

from diagnosis.csvfile import french_csv_bytes
from diagnosis.errors import InputError, _os_reason_fr
from diagnosis.export_columns import column_spec, french_label, french_layer
from diagnosis.needs import data_years
from diagnosis.overview import Overview
from diagnosis.pipeline import Diagnosis
from diagnosis.presentation import study_table
from diagnosis.schema import (
    FACILITY_COLUMNS,
)
from diagnosis.settings import WGS84

#: CRS of the GeoPackage layers.
EXPORT_CRS = WGS84
#: Format name and version of the diagnosis file.
DIAGNOSIS_FORMAT = "maillage-diagnostic"
DIAGNOSIS_VERSION = 1

#: Layer name of each facility type.
TYPE_LAYERS: dict[str, str] = {
    "pmi": "structures_pmi",
    "eaje": "structures_creches",
    "mam": "structures_mam",
    "laep": "structures_laep",
    "rpe": "structures_rpe",
    "centre_social": "structures_centres_sociaux",
    "evs": "structures_evs",
    "maternite": "structures_maternites",
    "sage_femme": "structures_sages_femmes",
    "mairie": "structures_mairies",
    "maison_1000_jours": "structures_maisons_1000_jours",
}
#: Layer name of each optional result (argument of :func:`build_export_layers`).
OPTIONAL_LAYERS: dict[str, str] = {
    "access": "accessibilite",
    "gaps": "manques",
    "siting": "sites_recommandes",
    "partners": "partenaires",
    "cohorts": "groupes_de_pairs",
    "catchments": "zones_de_desserte",
}
_META_LAYERS = ("dictionnaire", "sources", "metadonnees")
#: French suffix of the tables of an optional result (its ``layers`` keys and attributes).
_KEY_NAMES: dict[str, str] = {
    "summary": "synthese", "table": "communes", "white_zones": "zones_blanches",
    "priority": "priorites", "sites": "", "demand": "demande", "scenarios": "scenarios",
    "institutions": "institutions", "near_site": "autour_du_site",
}

#: Columns of the ``sources`` table (codes; French labels in the files).
SOURCE_COLUMNS: tuple[str, ...] = ("key", "title", "vintage", "licence", "attribution", "url",
                                   "crs", "notes")
#: Columns of the ``dictionnaire`` table (already French).
DICTIONARY_COLUMNS: tuple[str, ...] = ("couche", "colonne", "code", "description", "unite",
                                       "source", "annee")
_DICTIONARY_DOC: dict[str, tuple[str, str]] = {
    "couche": ("Nom de la couche (GeoPackage) ou du fichier CSV", ""),
    "colonne": ("Nom de la colonne dans le fichier", ""),
    "code": ("Nom technique de la colonne (analyses, ligne de commande)", ""),
    "description": ("Définition en français", ""),
    "unite": ("Unité des valeurs", ""),
    "source": ("Source des valeurs", ""),
    "annee": ("Année ou période des valeurs", ""),
}


# --------------------------------------------------------------------------------------
# Column documentation
# --------------------------------------------------------------------------------------


def layers_data_years(layers: Mapping[str, pd.DataFrame]) -> dict[str, int]:
    """Years of the INSEE figures of an export, from its communes layer's year columns."""
    com = layers.get("communes_indicateurs")
    return data_years(com if com is not None else pd.DataFrame())


def column_dictionary(layers: Mapping[str, pd.DataFrame], *, year: str = "",
                      data_years: Mapping[str, int] | None = None) -> pd.DataFrame:
    """The ``dictionnaire`` table: one row per (layer, column) of ``layers`` and itself.

    ``colonne`` is the French label written in the files, ``code`` the analysis' name;
    point layers get the ``lon``/``lat`` columns of their CSV file. ``data_years``: the
    years of the INSEE figures (default: from the communes layer, see
    :func:`layers_data_years`), in labels, descriptions and the ``annee`` column.
    """
    years = dict(data_years) if data_years is not None else layers_data_years(layers)
    rows = []
    for name, df in layers.items():
        cols = [str(c) for c in df.columns]
        if isinstance(df, gpd.GeoDataFrame) and "facility_id" in cols or (
                isinstance(df, gpd.GeoDataFrame) and len(df)
                and set(df.geom_type.dropna()) == {"Point"}):
            cols = [*cols, "lon", "lat"]
        for col in cols:
            spec = column_spec(name, col, year=year, data_years=years)
            desc = spec.description + (" (CSV seulement)" if col in ("lon", "lat") else "")
            rows.append({"couche": name, "colonne": french_label(name, col, cols,
                                                                data_years=years),
                         "code": col, "description": desc, "unite": spec.unit,
                         "source": spec.source, "annee": spec.year})
    for col in DICTIONARY_COLUMNS:
        desc, unit = _DICTIONARY_DOC[col]
        rows.append({"couche": "dictionnaire", "colonne": col, "code": col,
                     "description": desc, "unite": unit, "source": "Maillage", "annee": ""})
    return pd.DataFrame(rows, columns=list(DICTIONARY_COLUMNS))


# --------------------------------------------------------------------------------------
# Layers
# --------------------------------------------------------------------------------------


def _finite(df: pd.DataFrame) -> pd.DataFrame:
    """Replace ±inf (no facility of a type) by NaN: empty in QGIS and Excel."""
    out = df.copy()
    for c in out.columns:
        if c != "geometry" and pd.api.types.is_float_dtype(out[c]):
            out[c] = out[c].replace([np.inf, -np.inf], np.nan)
    return out


def known_offer_columns(communes: gpd.GeoDataFrame,
                        summary: Mapping[str, Any]) -> gpd.GeoDataFrame:
    """Communes with ``n_<t>``/``within_<t>`` left empty where the offer is not known.

    A count of facilities of type ``t`` in a commune, or "no facility within reach", is a
    fact only when a source listing the type completely was loaded; otherwise a 0 or a
    ``False`` is not known and is left empty (NA), as in every other output
    (:func:`diagnosis.formatting.fr_known`). Known positives are kept.
    """
    out = communes.copy()
    for t, f in summary.get("facilities", {}).items():
        if f.get("status", "complete") == "complete":
            continue
        if f"n_{t}" in out:
            n = pd.to_numeric(out[f"n_{t}"], errors="coerce").astype("Int64")
            out[f"n_{t}"] = n.mask(n.eq(0))
        if f"within_{t}" in out:
            w = out[f"within_{t}"].astype("boolean")
            out[f"within_{t}"] = w.mask(~w.fillna(False))
    return out


def _facility_layer(fac: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    cols = [c for c in FACILITY_COLUMNS if c in fac] + \
        [c for c in ("notes", "source_url") if c in fac]
    return gpd.GeoDataFrame(fac.loc[:, cols].reset_index(drop=True), geometry="geometry",
                            crs=fac.crs).to_crs(EXPORT_CRS)


def result_frames(result: object) -> dict[str, pd.DataFrame]:
    """Tables held by an analysis result (``layers``, else ``table``/``summary``/…).

    A DataFrame is returned as itself (key ``""``); a plain mapping of scalars becomes a
    two-column table.
    """
    if isinstance(result, pd.DataFrame):
        return {"": result}
    to_frame = getattr(result, "to_frame", None)
    if callable(to_frame):
        frame = to_frame()
        if isinstance(frame, pd.DataFrame):
            return {"": frame}
    frames: dict[str, pd.DataFrame] = {}
    layers = getattr(result, "layers", None)
    if isinstance(layers, Mapping):
        frames.update({str(k): v for k, v in layers.items() if isinstance(v, pd.DataFrame)})
    for attr in ("summary", "table", "sites", "scenarios"):
        v = getattr(result, attr, None)
        if isinstance(v, pd.DataFrame) and attr not in frames:
            frames[attr] = v
        elif isinstance(v, Mapping) and attr == "summary":
            scalars = {k: x for k, x in v.items() if isinstance(x, str | int | float | bool)}
            if scalars:
                frames[attr] = pd.DataFrame({"indicateur": list(scalars),
                                             "valeur": list(scalars.values())})
    if isinstance(result, Mapping) and not frames:
        scalars = {k: x for k, x in result.items() if isinstance(x, str | int | float | bool)}
        frames[""] = pd.DataFrame({"indicateur": list(scalars), "valeur": list(scalars.values())})
    return frames


def _with_commune_geometry(df: pd.DataFrame, communes: gpd.GeoDataFrame) -> pd.DataFrame:
    """Give a non-spatial per-commune table the commune polygons (joined on code_insee)."""
    if isinstance(df, gpd.GeoDataFrame) or "code_insee" not in df.columns:
        return df
    geo = communes.loc[:, ["code_insee", "geometry"]].drop_duplicates("code_insee")
    if not df["code_insee"].astype(str).isin(set(geo["code_insee"])).all():
        return df
    merged = df.assign(code_insee=df["code_insee"].astype(str)).merge(geo, on="code_insee",
                                                                       how="left")
    return cast("pd.DataFrame", gpd.GeoDataFrame(merged, geometry="geometry", crs=communes.crs))


def build_export_layers(
    overview: Overview,
    *,
    access: Any = None,
    gaps: Any = None,
    siting: Any = None,
    partners: Any = None,
    cohorts: Any = None,
    catchments: Any = None,
    sources: Sequence[Mapping[str, Any]] | None = None,
    created: dt.datetime | None = None,
) -> dict[str, pd.DataFrame]:
    """All export layers of a diagnosis, named in French, ready for QGIS or Excel.

    Parameters
    ----------
    overview
        The diagnosis.
    access, gaps, siting, partners, cohorts, catchments
        Optional results of the other analyses (objects with ``layers``, or ``table`` /
        ``summary`` DataFrames); written when given, under the names of
        :data:`OPTIONAL_LAYERS`.
    sources
        Source records; default those of the overview's summary.
    created
        Date written in ``metadonnees`` (default: now).

    Returns
    -------
    dict
        Layer name -> GeoDataFrame (EPSG:4326) or DataFrame (non-spatial tables), with
        ``dictionnaire``, ``sources`` and ``metadonnees`` last.
    """
    layers: dict[str, pd.DataFrame] = {}
    com = overview.layers["communes"]
    layers["communes_indicateurs"] = _finite(
        known_offer_columns(com, overview.summary).to_crs(EXPORT_CRS).reset_index(drop=True))
    fac = overview.layers["facilities"]
    for typ, name in TYPE_LAYERS.items():
        layers[name] = _facility_layer(fac.loc[fac["type"].eq(typ)])
    layers["structures_voisines"] = _facility_layer(overview.layers["facilities_nearby"])
    optional = {"access": access, "gaps": gaps, "siting": siting, "partners": partners,
                "cohorts": cohorts, "catchments": catchments}
    for arg, result in optional.items():
        if result is None:
            continue
        for key, frame in result_frames(result).items():
            suffix = _KEY_NAMES.get(key, key)
            name = OPTIONAL_LAYERS[arg] + (f"_{suffix}" if suffix else "")
            frame = _with_commune_geometry(frame.reset_index(drop=True), com)
            if isinstance(frame, gpd.GeoDataFrame) and frame.crs is not None:
                frame = frame.to_crs(EXPORT_CRS)
            layers[name] = _finite(frame)
    src = list(overview.summary.get("sources", [])) if sources is None else list(sources)
    src_cols = list(SOURCE_COLUMNS)
    layers["sources"] = pd.DataFrame([{c: str(s.get(c, "")) for c in src_cols} for s in src],
                                     columns=src_cols)
    when = created or dt.datetime.now().replace(microsecond=0)
    t = overview.territory
    kinds = {"commune": "commune", "epci": "intercommunalité (EPCI)",
             "departement": "département"}
    meta = {
        "territoire": t.label,
        "type de territoire": kinds.get(t.kind, t.kind),
        "code du territoire": t.code,
        "communes": str(len(com)),
        "communes sans données": ", ".join(overview.summary.get("communes_missing", [])),
        "seuil de distance (m)": f"{overview.params['threshold_m']:g}",
        "méthode de distance": "à vol d'oiseau depuis la mairie, en Lambert-93 (EPSG:2154)",
        "système de coordonnées": EXPORT_CRS,
        "date": when.isoformat(),
        "outil": "Maillage",
    }
    layers["metadonnees"] = pd.DataFrame({"cle": list(meta), "valeur": list(meta.values())})
    layers["dictionnaire"] = column_dictionary(
        layers, year=str(when.year), data_years=overview.summary.get("data_years"))
    order = [k for k in layers if k not in _META_LAYERS] + list(_META_LAYERS)
    return {k: layers[k] for k in order}


# --------------------------------------------------------------------------------------
# Safe writing
# --------------------------------------------------------------------------------------


def check_writable(path: str | Path, *, option: str = "--out") -> Path:
    """Check that a file can be created at ``path`` (its folder exists and is writable).

    Raises
    ------
    InputError
        The folder is missing or not writable, or ``path`` is a folder; the message
        names the option and the path.
    """
    p = Path(path)
    if p.is_dir():
        raise InputError(f"{option} {str(p)!r} is a folder; give a file name inside it",
                         argument=option, value=str(p),
                         fr=f"{option} « {p} » est un dossier : donnez un nom de fichier")
    if p.exists() and not p.is_file():  # /dev/null, a FIFO, a socket: never replaced
        raise InputError(f"{option} {str(p)!r} is not a regular file; give a file name",
                         argument=option, value=str(p),
                         fr=f"{option} « {p} » n'est pas un fichier ordinaire (périphérique, "
                            "tube…) : Maillage ne le remplace pas ; donnez un nom de fichier")
    folder = p.parent if str(p.parent) else Path(".")
    if not folder.is_dir():
        raise InputError(f"{option} {str(p)!r}: the folder {str(folder)!r} does not exist; "
                         "create it or choose another path", argument=option, value=str(p),
                         fr=f"{option} « {p} » : le dossier « {folder} » n'existe pas ; "
                            "créez-le ou choisissez un autre chemin")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".check", dir=folder)
    except OSError as exc:
        raise InputError(f"{option} {str(p)!r}: cannot write in {str(folder)!r} "
                         f"({exc.strerror}); choose a writable folder", argument=option,
                         value=str(p),
                         fr=f"{option} « {p} » : impossible d'écrire dans « {folder} » "
                            f"({_os_reason_fr(exc)}) ; choisissez un dossier où vous pouvez "
                            "écrire") from None
    os.close(fd)
    os.unlink(tmp)
    if p.exists() and not os.access(p, os.W_OK):
        raise InputError(f"{option} {str(p)!r} exists and is read-only; remove it or choose "
                         "another name", argument=option, value=str(p),
                         fr=f"{option} « {p} » existe et est en lecture seule : supprimez-le "
                            "ou choisissez un autre nom")
    return p


@contextlib.contextmanager
def _atomic_path(path: Path, *, option: str) -> Any:
    """Yield a temporary path beside ``path``; rename it onto ``path`` on success."""
    check_writable(path, option=option)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}",
                               dir=path.parent if str(path.parent) else ".")
    os.close(fd)
    os.unlink(tmp)  # pyogrio wants to create the file itself
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_bytes_atomic(path: str | Path, data: bytes, *, option: str = "--out") -> Path:
    """Write ``data`` to ``path`` through a temporary file and a rename."""
    p = Path(path)
    try:
        with _atomic_path(p, option=option) as tmp:
            tmp.write_bytes(data)
    except OSError as exc:
        raise InputError(f"{option} {str(p)!r}: writing failed ({exc.strerror}); "
                         "check the free space and the permissions", argument=option,
                         value=str(p),
                         fr=f"{option} « {p} » : l'écriture a échoué ({exc.strerror}) ; "
                            "vérifiez la place libre et les droits. Le fichier précédent, "
                            "s'il existait, est intact.") from None
    return p


def _gpkg_frame(df: pd.DataFrame) -> pd.DataFrame:
    out = df.copy()
    for c in out.columns:
        if c == "geometry":
            continue
        if out[c].dtype == object or pd.api.types.is_string_dtype(out[c]):
            out[c] = out[c].map(lambda v: None if v is None or (isinstance(v, float)
                                                                and math.isnan(v)) else str(v))
    return out


def export_geopackage(layers: Mapping[str, pd.DataFrame], path: str | Path) -> Path:
    """Write the layers to one GeoPackage (atomic: temporary file then rename).

    Spatial layers keep their geometry type even when empty (``Point`` for facility
    layers); non-spatial tables are written as GeoPackage attribute tables.

    Returns
    -------
    pathlib.Path
        The file written.
    """
    import pyogrio
    import pyogrio.errors

    p = Path(path)
    if p.suffix.lower() != ".gpkg":
        raise InputError(f"--out {str(p)!r} must end with .gpkg (GeoPackage)")
    if not layers:
        raise InputError("layers is empty; nothing to export")
    try:
        with _atomic_path(p, option="--out") as tmp:
            years = layers_data_years(layers)
            for name, coded in layers.items():
                df = coded if name == "dictionnaire" else french_layer(name, coded,
                                                                       data_years=years)
                frame = _gpkg_frame(df)
                if isinstance(df, gpd.GeoDataFrame):
                    gtypes = set(df.geom_type.dropna())
                    gtype = gtypes.pop() if len(gtypes) == 1 else ("Point" if not gtypes
                                                                   else "Unknown")
                    if gtype == "Polygon":
                        gtype = "MultiPolygon"
                        geoms = gpd.GeoSeries([_to_multi(g) for g in df.geometry],
                                              index=frame.index, crs=df.crs)
                        frame = gpd.GeoDataFrame(frame.drop(columns=df.geometry.name),
                                                 geometry=geoms, crs=df.crs)
                    pyogrio.write_dataframe(frame, tmp, layer=name, driver="GPKG",
                                            geometry_type=gtype, promote_to_multi=None)
                else:
                    pyogrio.write_dataframe(frame, tmp, layer=name, driver="GPKG")
    except (OSError, pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError) as exc:
        raise InputError(f"--out {str(p)!r}: writing failed ({exc}); check the free space "
                         "and the permissions", argument="--out", value=str(p),
                         fr=f"--out « {p} » : l'écriture a échoué ({exc}) ; vérifiez la place "
                            "libre sur le disque et les droits. Le fichier précédent, s'il "
                            "existait, est intact.") from None
    return p


def _to_multi(geom: Any) -> Any:
    from shapely.geometry import MultiPolygon

    return MultiPolygon([geom]) if geom is not None and geom.geom_type == "Polygon" else geom


def csv_frame(df: pd.DataFrame) -> pd.DataFrame:
    """A layer as a CSV-ready table: points as lon/lat, polygons dropped, oui/non booleans."""
    out = pd.DataFrame(df.drop(columns="geometry")) if "geometry" in df.columns else df.copy()
    if isinstance(df, gpd.GeoDataFrame) and len(df) and "geometry" in df.columns:
        geom = df.geometry.to_crs(WGS84) if df.crs is not None else df.geometry
        if set(geom.geom_type.dropna()) == {"Point"}:
            out["lon"] = geom.x.round(6).to_numpy()
            out["lat"] = geom.y.round(6).to_numpy()
    elif isinstance(df, gpd.GeoDataFrame) and "geometry" in df.columns and \
            "facility_id" in df.columns:
        out["lon"] = pd.Series(dtype="float64")
        out["lat"] = pd.Series(dtype="float64")
    for c in out.columns:
        if pd.api.types.is_bool_dtype(out[c]):
            out[c] = out[c].map({True: "oui", False: "non"})
    return out


def export_csv_tables(layers: Mapping[str, pd.DataFrame], directory: str | Path) -> list[Path]:
    """Write one CSV per layer into ``directory`` (created if missing; atomic per file).

    ``;``-separated, UTF-8 with BOM, decimal comma: French Excel opens them directly.

    Returns
    -------
    list of pathlib.Path
        The files written, in layer order.
    """
    d = Path(directory)
    if d.exists() and not d.is_dir():
        raise InputError(f"--csv-dir {str(d)!r} is a file; give a folder", argument="--csv-dir",
                         value=str(d),
                         fr=f"--csv-dir « {d} » est un fichier : donnez un dossier")
    try:
        d.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"--csv-dir {str(d)!r}: cannot create the folder ({exc.strerror}); "
                         "choose a writable place", argument="--csv-dir", value=str(d),
                         fr=f"--csv-dir « {d} » : impossible de créer le dossier "
                            f"({_os_reason_fr(exc)}) ; choisissez un emplacement où vous "
                            "pouvez écrire") from None
    written = []
    years = layers_data_years(layers)
    for name, df in layers.items():
        frame = csv_frame(df)
        if name != "dictionnaire":
            frame = french_layer(name, frame, data_years=years)
        written.append(write_bytes_atomic(d / f"{name}.csv", french_csv_bytes(frame),
                                          option="--csv-dir"))
    return written


def read_csv_table(path: str | Path) -> pd.DataFrame:
    """Read back a CSV written by :func:`export_csv_tables` (codes stay text)."""
    text_cols = {"Code INSEE", "code", "EPCI (SIREN)", "Département", "Code postal",
                 "Identifiant dans la source", "Identifiant", "Téléphone", "Paramètre",
                 "Site suivant : identifiant", "Site : identifiant", "annee"}
    df = pd.read_csv(path, sep=";", decimal=",", encoding="utf-8-sig",
                     dtype={c: str for c in text_cols}, keep_default_na=False,
                     na_values=[""])
    for c in df.columns:
        if not pd.api.types.is_numeric_dtype(df[c]) and df[c].notna().any() and \
                set(df[c].dropna().unique()) <= {"oui", "non"}:
            df[c] = df[c].map({"oui": True, "non": False})
    return df


# --------------------------------------------------------------------------------------
# Diagnosis file (data ledger)
# --------------------------------------------------------------------------------------


def file_sha256(path: str | Path) -> str:
    """SHA-256 (hex) of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def json_ready(obj: Any) -> Any:
    """Make a value JSON-safe: NaN/inf → ``None``, numpy → Python, tuples → lists."""
    if isinstance(obj, float | np.floating):
        return float(obj) if math.isfinite(float(obj)) else None
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, Mapping):
        return {str(k): json_ready(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple | set):
        return [json_ready(v) for v in obj]
    return obj


def build_diagnosis_record(
    overview: Overview,
    *,
    query: str,
    sources: Sequence[Mapping[str, Any]],
    data_files: Mapping[str, str] = {},  # noqa: B006 - read-only default
    imports: Sequence[Mapping[str, Any]] = (),
    origin: str = "",
    created: dt.datetime | None = None,
) -> dict[str, Any]:
    """The diagnosis file: what was asked, with what data, and what came out.

    Parameters
    ----------
    overview
        The diagnosis.
    query
        The territory as the user typed it.
    sources
        Source records (with ``vintage``).
    data_files
        Base data files used (path relative to the project -> SHA-256).
    imports
        Imported facility files: ``file`` (path), ``name``, ``sha256`` and counts.
    origin
        Where the base data came from (``demo``, ``store``).
    created
        Timestamp (default: now).

    Returns
    -------
    dict
        JSON-ready record with ``format``, ``version``, ``created``, ``territory``,
        ``params``, ``ledger`` (``origin``, ``sources``, ``data_files``, ``imports``) and
        ``summary``.
    """
    t = overview.territory
    summary = {k: v for k, v in overview.summary.items() if k != "sources"}
    return cast("dict[str, Any]", json_ready({
        "format": DIAGNOSIS_FORMAT,
        "version": DIAGNOSIS_VERSION,
        "created": (created or dt.datetime.now().replace(microsecond=0)).isoformat(),
        "territory": {"query": query, "kind": t.kind, "code": t.code, "name": t.name},
        "params": {"threshold_m": overview.params["threshold_m"],
                   "types": list(overview.params["types"]),
                   "births_col": overview.params["births_col"]},
        "ledger": {
            "origin": origin,
            "sources": [{k: str(s.get(k, "")) for k in ("key", "title", "vintage", "licence",
                                                         "attribution")} for s in sources],
            "data_files": dict(data_files),
            "imports": [dict(i) for i in imports],
        },
        "summary": summary,
    }))


def write_diagnosis_file(record: Mapping[str, Any], path: str | Path) -> Path:
    """Write a diagnosis record as indented UTF-8 JSON (atomic)."""
    text = json.dumps(json_ready(record), ensure_ascii=False, indent=2) + "\n"
    return write_bytes_atomic(path, text.encode("utf-8"), option="--diagnosis-file")


#: Largest diagnosis file read (a national diagnosis file is a few MB).
_MAX_DIAGNOSIS_FILE_BYTES = 64 * 2**20


def read_diagnosis_file(path: str | Path) -> dict[str, Any]:
    """Read and check a diagnosis file.

    Raises
    ------
    InputError
        Missing file, not JSON, or not a Maillage diagnosis file of a known version.
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(f"diagnosis file {str(p)!r} not found; give the path of the JSON "
                         "written by `python -m diagnosis export --diagnosis-file`",
                         argument="FILE.json", value=str(p),
                         fr=f"fichier de diagnostic « {p} » introuvable (ou pas un fichier "
                            "ordinaire) : donnez le JSON écrit par « python -m diagnosis "
                            "export --diagnosis-file »")
    if p.stat().st_size > _MAX_DIAGNOSIS_FILE_BYTES:  # never read a huge file whole
        raise InputError(f"diagnosis file {str(p)!r} is too large", argument="FILE.json",
                         value=str(p),
                         fr=f"fichier de diagnostic « {p} » trop volumineux (plus de "
                            f"{_MAX_DIAGNOSIS_FILE_BYTES // 2**20} Mo) : ce n'est pas un "
                            "fichier écrit par « export --diagnosis-file »")
    try:
        rec = json.loads(p.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"diagnosis file {str(p)!r} is not valid UTF-8 JSON ({exc}); "
                         "write it again with `export --diagnosis-file`", argument="FILE.json",
                         value=str(p),
                         fr=f"fichier de diagnostic « {p} » illisible (pas du JSON UTF-8) : "
                            "écrivez-le de nouveau avec « export --diagnosis-file »") from None
    if not isinstance(rec, dict) or rec.get("format") != DIAGNOSIS_FORMAT:
        raise InputError(f"{str(p)!r} is not a Maillage diagnosis file (format="
                         f"{rec.get('format') if isinstance(rec, dict) else None!r}; expected "
                         f"{DIAGNOSIS_FORMAT!r})", argument="FILE.json", value=str(p),
                         fr=f"« {p} » n'est pas un fichier de diagnostic Maillage (écrit par "
                            "« export --diagnosis-file »)")
    if rec.get("version") != DIAGNOSIS_VERSION:
        raise InputError(f"{str(p)!r}: version={rec.get('version')!r} is not supported "
                         f"(expected {DIAGNOSIS_VERSION}); update Maillage",
                         argument="FILE.json", value=str(p),
                         fr=f"« {p} » : version {rec.get('version')!r} du fichier de diagnostic "
                            f"non prise en charge (attendue : {DIAGNOSIS_VERSION}) ; mettez "
                            "Maillage à jour")
    for key in ("territory", "params", "ledger", "summary"):
        if not isinstance(rec.get(key), dict):
            raise InputError(f"{str(p)!r}: the {key!r} part is missing or malformed",
                             argument="FILE.json", value=str(p),
                             fr=f"« {p} » : la partie « {key} » du fichier de diagnostic "
                                "manque ou est abîmée ; écrivez-le de nouveau")
    return rec


def compare_ledgers(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """French messages for every difference between two data ledgers (empty: same data)."""
    msgs: list[str] = []
    if old.get("origin") != new.get("origin"):
        msgs.append(f"Origine des données : {old.get('origin')!r} → {new.get('origin')!r}.")
    of, nf = dict(old.get("data_files", {})), dict(new.get("data_files", {}))
    for name in sorted(set(of) | set(nf)):
        if name not in nf:
            msgs.append(f"Fichier de données {name} absent aujourd'hui.")
        elif name not in of:
            msgs.append(f"Fichier de données {name} nouveau (absent du diagnostic d'origine).")
        elif of[name] != nf[name]:
            msgs.append(f"Fichier de données {name} modifié (empreinte SHA-256 différente).")
    oi = {i.get("file") or i.get("name"): i for i in old.get("imports", [])}
    ni = {i.get("file") or i.get("name"): i for i in new.get("imports", [])}
    for name in sorted(set(oi) | set(ni), key=str):
        if name not in ni:
            msgs.append(f"Fichier importé {name} absent aujourd'hui.")
        elif name not in oi:
            msgs.append(f"Fichier importé {name} nouveau.")
        elif oi[name].get("sha256") != ni[name].get("sha256"):
            msgs.append(f"Fichier importé {name} modifié depuis le diagnostic "
                        "(empreinte SHA-256 différente).")
    ov = {s.get("key"): s.get("vintage") for s in old.get("sources", [])}
    nv = {s.get("key"): s.get("vintage") for s in new.get("sources", [])}
    for key in sorted(set(ov) | set(nv), key=str):
        if ov.get(key) != nv.get(key):
            msgs.append(f"Source {key} : millésime {ov.get(key)!r} → {nv.get(key)!r}.")
    return msgs


def compare_summaries(old: Mapping[str, Any], new: Mapping[str, Any], *,
                      rel_tol: float = 1e-9, path: str = "") -> list[str]:
    """Differences between two diagnosis summaries, as ``"clé : ancien → nouveau"`` lines.

    Examples
    --------
    >>> compare_summaries({"a": 1.0, "b": {"c": [1, 2]}}, {"a": 1.0, "b": {"c": [1, 3]}})
    ['b.c : [1, 2] → [1, 3]']
    """
    out: list[str] = []
    keys = sorted(set(old) | set(new), key=str)
    for k in keys:
        name = f"{path}.{k}" if path else str(k)
        a, b = old.get(k), new.get(k)
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            out.extend(compare_summaries(a, b, rel_tol=rel_tol, path=name))
        elif isinstance(a, int | float) and isinstance(b, int | float) and \
                not isinstance(a, bool) and not isinstance(b, bool):
            if not math.isclose(a, b, rel_tol=rel_tol, abs_tol=1e-12):
                out.append(f"{name} : {a!r} → {b!r}")
        elif a != b:
            out.append(f"{name} : {a!r} → {b!r}")
    return out


def diagnosis_export_layers(diagnosis: Diagnosis, *,
                            created: dt.datetime | None = None) -> dict[str, pd.DataFrame]:
    """Every export layer of a :class:`~diagnosis.pipeline.Diagnosis` (one mapping).

    The GeoPackage and the CSV tables of the app and the command line both come from
    here, with the ``zones_de_desserte`` of the recommended sites; the ``metadonnees``
    layer also lists the study's parameters (:func:`diagnosis.presentation.study_table`),
    those the PDF states.
    """
    d = diagnosis
    acc = d.access
    catchments = d.catchments
    layers = build_export_layers(d.overview, access=acc.access if acc else None,
                                 gaps=acc.gaps if acc else None,
                                 siting=d.siting.main if d.siting else None,
                                 partners=d.partners, cohorts=d.cohorts,
                                 catchments=catchments if len(catchments) else None,
                                 sources=list(d.inputs.sources), created=created)
    study = study_table(d.params, site_name=d.site.name if d.site else None)
    layers["metadonnees"] = pd.concat(
        [layers["metadonnees"], pd.DataFrame({"cle": study["Paramètre"],
                                              "valeur": study["Valeur"]})],
        ignore_index=True)
    return layers
