"""INSEE Filosofi 2019 on the 200 m grid: individuals, young children, households.

Source: INSEE, *Revenus, pauvreté et niveau de vie en 2019 — données carroyées*,
``Filosofi2019_carreaux_200m_gpkg.zip`` (also ``…_csv.zip``). The zip holds one ``.7z``
archive with ``carreaux_200m_met.gpkg`` (mainland France), ``carreaux_200m_mart.gpkg``
(Martinique) and ``carreaux_200m_reun.gpkg`` (La Réunion). Columns (lower case in the
2019 edition): ``idcar_200m`` (``CRS3035RES200mN{y}E{x}``: CRS, resolution and the
south-west corner of the cell), ``idcar_1km``, ``idcar_nat``, ``i_est_200``,
``i_est_1km``, ``lcog_geo`` (the codes of the communes the cell touches, concatenated),
``ind`` (individuals), ``men`` (households), ``men_pauv`` (poor households),
``men_1ind``, ``men_5ind``, ``men_prop``, ``men_fmp`` (single-parent households),
``ind_snv`` (sum of standards of living), ``men_surf``, ``men_coll``, ``men_mais``,
``log_*``, ``ind_0_3`` (individuals aged 0 to 3), ``ind_4_5`` … ``ind_80p``, ``ind_inc``.
Values are estimates (cells are smoothed for confidentiality) and may be decimals.

Loader shape: fetch (the national zip, ~200 MB, through :mod:`data_sources._http`) ->
extract (needs the optional ``py7zr``) -> read (a GeoPackage, a CSV or a zip of either,
cut to the territory) -> parse (pure) -> validate. A user's own extract (a path) is read
the same way.
"""

from __future__ import annotations

import io
import logging
import re
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from data_sources import _http
from data_sources._budget import (
    MAX_EXTRACT_BYTES,
    check_regular_file,
    extract_7z_member,
    extract_zip_member,
    read_file_capped,
    read_zip_member,
)
from data_sources.registry import SourceInfo, register
from diagnosis.errors import InputError, SourceError
from diagnosis.settings import WGS84

logger = logging.getLogger(__name__)

FILOSOFI_URL = (
    "https://www.insee.fr/fr/statistiques/fichier/7655475/Filosofi2019_carreaux_200m_gpkg.zip"
)
#: The 2021 edition (published 2026-02-16, page insee.fr/fr/statistiques/8735162): a zip of
#: about 294 MB holding the GeoPackages directly (layers ``carreaux_200m_met``…, geometry
#: in EPSG:2154), 34 columns as in 2019 without ``groupe``: ``idcar_200m``, ``idcar_1km``,
#: ``idcar_nat``, ``i_est_200`` (1: values of an imputed cell, fewer than 11 households),
#: ``i_est_1km``, ``lcog_geo``, ``ind``, ``men``…, ``ind_0_3`` (still there), ``ind_4_5``…
#: (column list as loaded by public SQL and Python code reading the 2021 CSV twin
#: ``Filosofi2021_carreaux_200m_csv.zip``).
FILOSOFI_2021_URL = (
    "https://www.insee.fr/fr/statistiques/fichier/8735162/Filosofi2021_carreaux_200m_gpkg.zip"
)
#: Flag of imputed cells, kept when present (``imputed`` column, 1.0 / 0.0).
IMPUTED_COLUMN = "i_est_200"

#: GeoPackage of each territory inside the national archive.
GPKG_MEMBERS: dict[str, str] = {
    "met": "carreaux_200m_met.gpkg", "mart": "carreaux_200m_mart.gpkg",
    "reun": "carreaux_200m_reun.gpkg",
}

#: Count columns kept (individuals, young children, households, poverty, single parents).
COUNT_COLUMNS: tuple[str, ...] = ("ind", "ind_0_3", "men", "men_pauv", "men_fmp", "ind_snv")
#: Columns of :func:`parse_filosofi`.
FILOSOFI_COLUMNS: tuple[str, ...] = ("idcar_200m", "code_insee", "lcog_geo", *COUNT_COLUMNS,
                                     "imputed", "geometry")

FILOSOFI = register(SourceInfo(
    key="insee_filosofi_2019_200m",
    title="Données carroyées à 200 m, Filosofi 2019 (Insee)",
    url=FILOSOFI_URL,
    licence="Licence Ouverte 2.0",
    attribution="Insee, Fichier localisé social et fiscal (Filosofi) 2019, données carroyées",
    vintage="2019",
    crs="EPSG:3035",
    columns=("idcar_200m", "lcog_geo", "ind", "ind_0_3", "men", "men_pauv", "men_fmp"),
    notes="Valeurs lissées et estimées par carreau (secret statistique) ; les enfants de "
          "0 à 3 ans servent de clé de répartition des naissances, pas de comptage.",
))

FILOSOFI_2021 = register(SourceInfo(
    key="insee_filosofi_2021_200m",
    title="Données carroyées à 200 m, Filosofi 2021 (Insee)",
    url=FILOSOFI_2021_URL,
    licence="Licence Ouverte 2.0",
    attribution="Insee, Fichier localisé social et fiscal (Filosofi) 2021, données carroyées",
    vintage="2021",
    crs="EPSG:2154 (identifiants INSPIRE en EPSG:3035)",
    columns=("idcar_200m", "i_est_200", "lcog_geo", "ind", "ind_0_3", "men", "men_pauv",
             "men_fmp"),
    notes="Valeurs lissées et estimées par carreau (secret statistique ; i_est_200 = 1 pour "
          "un carreau imputé) ; les enfants de 0 à 3 ans servent de clé de répartition, pas "
          "de comptage.",
))

_ID_RE = re.compile(r"^CRS(\d{4,5})RES(\d+)mN(\d+)E(\d+)$")


# --- fetch and extract -----------------------------------------------------------------


def fetch_filosofi(*, url: str = FILOSOFI_URL, offline: bool | None = None,
                   refresh: bool = False) -> Path:
    """Download the national zip to the cache (once) and return its path."""
    key = FILOSOFI_2021.key if url == FILOSOFI_2021_URL else FILOSOFI.key
    return _http.download_file(url, source=key, offline=offline, refresh=refresh)


def extract_filosofi_gpkg(zip_path: str | Path, *, territory: str = "met",
                          max_extract_bytes: int = MAX_EXTRACT_BYTES) -> Path:
    """Extract one territory's GeoPackage from the national archive (zip holding a .7z).

    The GeoPackage is written once beside the zip and reused. Every step is capped (size
    and compression ratio, see :mod:`data_sources._budget`): a bomb hidden in the inner
    ``.7z`` is stopped, not written out.

    Raises
    ------
    ImportError
        ``py7zr`` is not installed (``pip install py7zr``).
    SourceError
        The archive does not hold the expected members.
    """
    if territory not in GPKG_MEMBERS:
        raise InputError(f"territory={territory!r} must be one of {sorted(GPKG_MEMBERS)}")
    zpath = Path(zip_path)
    target = zpath.with_name(f"{zpath.stem}-{GPKG_MEMBERS[territory]}")
    if target.is_file() and target.stat().st_size > 0:
        return target
    member = GPKG_MEMBERS[territory]
    tmp = target.with_name(target.name + ".part")
    with zipfile.ZipFile(zpath) as zf, tempfile.TemporaryDirectory(dir=zpath.parent) as work:
        names = zf.namelist()
        inner = [n for n in names if n.lower().endswith(".7z")]
        direct = [n for n in names if n.endswith(member)]
        if direct:
            extract_zip_member(zf, direct[0], tmp, archive=zpath.name,
                               max_bytes=max_extract_bytes)
        elif inner:
            py7zr = _py7zr()
            seven = extract_zip_member(zf, inner[0], Path(work) / Path(inner[0]).name,
                                       archive=zpath.name, max_bytes=max_extract_bytes)
            with py7zr.SevenZipFile(seven, mode="r") as sz:
                found = [n for n in sz.getnames() if n.endswith(member)]
            if not found:
                raise SourceError(f"{zpath.name}: the archive holds no {member}")
            extract_7z_member(seven, found[0], tmp, archive=f"{zpath.name}:{inner[0]}",
                              max_bytes=max_extract_bytes)
        else:
            raise SourceError(f"{zpath.name}: neither a .7z nor a GeoPackage inside "
                              f"({names[:5]!r})")
    tmp.replace(target)
    return target


def _py7zr() -> Any:
    try:
        import py7zr
    except ImportError as exc:  # optional heavy dependency
        raise ImportError(
            "Reading INSEE's Filosofi archive needs the py7zr package (the zip holds a .7z "
            "file): run `pip install py7zr`, or extract carreaux_200m_met.gpkg yourself and "
            "give its path."
        ) from exc
    return py7zr


# --- read and parse --------------------------------------------------------------------


def read_filosofi_file(path: str | Path, *,
                       area: gpd.GeoDataFrame | gpd.GeoSeries | None = None) -> pd.DataFrame:
    """Read cells from a GeoPackage, a CSV, or a zip holding one of them.

    ``area`` (polygons with a CRS) limits a GeoPackage read to the cells it touches
    (a spatial filter in the driver: the national file is not loaded whole).
    """
    p = check_regular_file(path, what="fichier de carreaux")
    suffix = p.suffix.lower()
    if suffix == ".zip":
        try:
            zf = zipfile.ZipFile(p)
        except (zipfile.BadZipFile, OSError) as exc:
            raise InputError(f"{p.name}: not a readable zip ({exc})", argument="--grid",
                             value=str(p),
                             fr=f"fichier de carreaux « {p.name} » : archive zip illisible "
                                f"({exc}) ; téléchargez-la de nouveau") from exc
        with zf:
            names = [n for n in zf.namelist() if n.lower().endswith((".csv", ".gpkg"))]
            if not names:
                raise SourceError(f"{p.name}: no CSV or GeoPackage inside "
                                  f"({zf.namelist()[:5]!r}); a .7z inside needs "
                                  "extract_filosofi_gpkg")
            label = f"{p.name}:{names[0]}"
            if names[0].lower().endswith(".csv"):
                return _read_csv_bytes(read_zip_member(zf, names[0], archive=p.name),
                                       file=label)
            inner = _http.get_config().cache_dir / "files" / f"{p.stem}-{Path(names[0]).name}"
            inner.parent.mkdir(parents=True, exist_ok=True)
            extract_zip_member(zf, names[0], inner, archive=p.name)
        p, suffix = inner, ".gpkg"
    if suffix == ".csv":
        return _read_csv_bytes(read_file_capped(p, what="fichier de carreaux"), file=p.name)
    mask = None
    if area is not None:
        if area.crs is None:
            raise InputError("area has no CRS: set it before cutting the grid")
        mask = gpd.GeoSeries([shapely.union_all(area.geometry.to_numpy())], crs=area.crs)
    try:
        return cast("pd.DataFrame", gpd.read_file(p, mask=mask))
    except Exception as exc:  # driver errors are of many kinds
        raise SourceError(f"{p.name}: cannot read it as a GeoPackage ({exc})",
                          fr=f"« {p.name} » : illisible comme GeoPackage ; vérifiez le "
                             "fichier (carreaux Filosofi de l'INSEE)") from exc


def _read_csv_bytes(data: bytes, *, file: str) -> pd.DataFrame:
    text = _http.decode_text(data, encodings=("utf-8-sig", "latin-1"))
    first = text.splitlines()[0] if text else ""
    sep = ";" if first.count(";") > first.count(",") else ","
    try:
        return pd.read_csv(io.StringIO(text), sep=sep, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise SourceError(f"{file}: not a readable CSV ({exc})") from exc


def cell_squares(ids: Sequence[str] | pd.Series) -> gpd.GeoSeries:
    """Square polygons of grid cells from their ids (``CRS3035RES200mN{y}E{x}``).

    Examples
    --------
    >>> s = cell_squares(["CRS3035RES200mN2882000E3778000"])
    >>> s.crs.to_epsg(), s.iloc[0].bounds
    (3035, (3778000.0, 2882000.0, 3778200.0, 2882200.0))
    """
    parsed = [(_ID_RE.match(str(i)), str(i)) for i in ids]
    bad = [i for m, i in parsed if m is None]
    if bad:
        raise SourceError(f"grid cell ids {bad[:3]!r} are not of the form "
                          "CRS3035RES200mN<y>E<x>")
    crs = {m.group(1) for m, _ in parsed if m}
    if len(crs) > 1:
        raise SourceError(f"grid cells mix several CRS {sorted(crs)!r}")
    arr = np.array([[int(m.group(4)), int(m.group(3)), int(m.group(2))]
                    for m, _ in parsed if m], dtype=np.float64).reshape(-1, 3)
    geoms = shapely.box(arr[:, 0], arr[:, 1], arr[:, 0] + arr[:, 2], arr[:, 1] + arr[:, 2])
    return gpd.GeoSeries(geoms, crs=f"EPSG:{crs.pop()}" if crs else "EPSG:3035")


def parse_filosofi(raw: pd.DataFrame, *, file: str = "Filosofi") -> gpd.GeoDataFrame:
    """Raw cells (GeoPackage or CSV columns) -> ``FILOSOFI_COLUMNS`` in WGS84.

    Pure. Column names are matched without regard to case. Cells without geometry (CSV)
    get their square from ``idcar_200m``. ``code_insee`` is the commune when
    ``lcog_geo`` names exactly one, else empty (the cell straddles communes).

    Examples
    --------
    >>> raw = pd.DataFrame({"idcar_200m": ["CRS3035RES200mN2681000E3448000"],
    ...                     "lcog_geo": ["44109"], "ind": ["52.5"], "ind_0_3": ["3.0"],
    ...                     "men": ["25"], "men_pauv": ["4.5"], "men_fmp": ["2"],
    ...                     "ind_snv": ["1100000"]})
    >>> g = parse_filosofi(raw)
    >>> g.loc[0, "code_insee"], float(g.loc[0, "ind_0_3"]), g.crs.to_epsg()
    ('44109', 3.0, 4326)
    """
    df = raw.copy()
    df.columns = [str(c).lower() for c in df.columns]
    need = ["idcar_200m", "lcog_geo", *COUNT_COLUMNS]
    missing = [c for c in need if c not in df.columns]
    if missing:
        raise SourceError(
            f"{file}: columns {missing!r} are missing; expected the Filosofi 2019 200 m "
            f"grid columns {need!r}, found {[c for c in df.columns][:12]!r}"
        )
    ids = df["idcar_200m"].astype(str).str.strip()
    if isinstance(raw, gpd.GeoDataFrame) and raw.crs is not None:
        geoms = gpd.GeoSeries(raw.geometry.to_numpy(), crs=raw.crs, index=df.index)
    else:
        geoms = cell_squares(ids)
        geoms.index = df.index
    lcog = df["lcog_geo"].fillna("").astype(str).str.strip()
    out = pd.DataFrame({
        "idcar_200m": ids,
        "code_insee": lcog.where(lcog.str.fullmatch(r"\d{5}|2[AB]\d{3}"), ""),
        "lcog_geo": lcog,
    }, index=df.index)
    for col in COUNT_COLUMNS:
        out[col] = _numbers(df[col], file=file, column=col)
    # imputed cells (fewer than 11 households) are flagged by i_est_200; NaN: not said
    out["imputed"] = (_numbers(df[IMPUTED_COLUMN], file=file, column=IMPUTED_COLUMN)
                      if IMPUTED_COLUMN in df.columns else float("nan"))
    gdf = gpd.GeoDataFrame(out, geometry=geoms.to_crs(WGS84).to_numpy(), crs=WGS84)
    return gdf.loc[:, list(FILOSOFI_COLUMNS)].reset_index(drop=True)


def validate_filosofi(gdf: gpd.GeoDataFrame, *, file: str) -> gpd.GeoDataFrame:
    """Check ids, duplicates and counts; messages name the cells."""
    dup = gdf["idcar_200m"].duplicated()
    if dup.any():
        raise SourceError(
            f"{file}: duplicate cells {gdf.loc[dup, 'idcar_200m'].head(3).tolist()!r}")
    for col in COUNT_COLUMNS:
        neg = gdf[col] < 0
        if neg.any():
            raise SourceError(f"{file}: negative {col} in cells "
                              f"{gdf.loc[neg, 'idcar_200m'].head(3).tolist()!r}")
    over = gdf["ind_0_3"] > gdf["ind"] + 1e-6
    if over.any():
        raise SourceError(f"{file}: more children aged 0-3 than individuals in cells "
                          f"{gdf.loc[over, 'idcar_200m'].head(3).tolist()!r}")
    return gdf


def clip_cells(cells: gpd.GeoDataFrame, area: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Keep the cells whose centre lies in ``area`` (polygons with a CRS)."""
    if area.crs is None:
        raise InputError("area has no CRS: set it before cutting the grid")
    shape = shapely.union_all(area.to_crs(WGS84).geometry.to_numpy())
    centres = cells.geometry.to_crs("EPSG:3035").centroid.to_crs(WGS84)
    return cells[centres.within(shape).to_numpy()].reset_index(drop=True)


def load_filosofi(
    area: gpd.GeoDataFrame,
    *,
    path: str | Path | None = None,
    territory: str = "met",
    url: str = FILOSOFI_2021_URL,
    offline: bool | None = None,
    refresh: bool = False,
) -> gpd.GeoDataFrame:
    """200 m cells of a territory (``FILOSOFI_COLUMNS``, WGS84).

    Parameters
    ----------
    area
        The territory's commune polygons (with a CRS): cells whose centre lies in them
        are kept.
    path
        A user's file (GeoPackage, CSV, or a zip of either); ``None``: INSEE's national
        archive at ``url`` (default the 2021 edition, ~294 MB), downloaded once to the
        cache and its GeoPackage extracted (a 2019 archive holding a .7z needs ``py7zr``).
    url
        The national archive (:data:`FILOSOFI_2021_URL`, or :data:`FILOSOFI_URL` for 2019).
    territory
        Which GeoPackage of the archive: ``"met"``, ``"mart"`` or ``"reun"``.
    offline, refresh
        Cache behaviour (see :mod:`data_sources._http`).
    """
    if path is None:
        src = extract_filosofi_gpkg(fetch_filosofi(url=url, offline=offline, refresh=refresh),
                                    territory=territory)
        name = FILOSOFI_2021.key if url == FILOSOFI_2021_URL else FILOSOFI.key
    else:
        src, name = Path(path), Path(path).name
    raw = read_filosofi_file(src, area=area)
    cells = validate_filosofi(parse_filosofi(raw, file=name), file=name)
    out = clip_cells(cells, area)
    if out.empty:
        raise SourceError(f"{name}: no 200 m cell in the territory; check the file covers it "
                          f"(territory={territory!r})")
    return out


def _numbers(values: pd.Series, *, file: str, column: str) -> pd.Series:
    if pd.api.types.is_numeric_dtype(values):
        return values.astype("float64")
    clean = values.astype(str).str.strip().str.replace(",", ".", regex=False)
    blank = clean.isin(["", "nan", "NA"])
    num = pd.to_numeric(clean.where(~blank), errors="coerce")
    bad = num.isna() & ~blank
    if bad.any():
        i: Any = bad.idxmax()
        raise SourceError(f"{file}: row {i}, column {column!r}: {values[i]!r} is not a number")
    return num.astype("float64")
