"""Address geocoding of the Base Adresse Nationale through the IGN Géoplateforme.

``api-adresse.data.gouv.fr`` was retired on 31 January 2026 (datagouv/explore.data.gouv.fr
PR #213; BaseAdresseNationale/adresse.data.gouv.fr issues #2342, #2344): the same service
now answers at ``https://data.geopf.fr/geocodage`` with the same fields and result columns.
The source key stays ``ban`` (``python -m data_sources fetch --source ban``).

Maillage geocodes in batches only (the source's address, ``/search``, names the service):

- ``POST https://data.geopf.fr/geocodage/search/csv`` with a multipart form: ``data``
  (the CSV file), ``columns`` (repeated: columns joined into the query), ``citycode`` and
  ``postcode`` (names of filter columns). The answer is the CSV with added columns
  ``latitude``, ``longitude``, ``result_label``, ``result_score``, ``result_type``,
  ``result_citycode``… (and ``result_status``).

Limits of the Géoplateforme: 50 requests per second, and one CSV batch at a time per
client: batches run one after the other (a process-wide lock).

In Paris, Lyon and Marseille ``result_citycode`` is the *arrondissement* code (751xx,
6938x, 132xx): :func:`commune_code` maps it to the commune (75056, 69123, 13055) before
checking that a match lies "in the commune".

Precision: ``housenumber`` → ``address``; ``street`` / ``locality`` → ``street``;
``municipality`` → ``commune``; a score below ``min_score`` → ``commune`` with a warning
(the point is kept only if it lies in the requested commune, else the town hall given by
the caller is used, else the row is rejected).
"""

from __future__ import annotations

import csv
import io
import logging
import threading
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from data_sources import _http
from data_sources.merge import facility_frame
from data_sources.registry import SourceInfo, register
from diagnosis.errors import InputError, SourceError
from diagnosis.schema import FACILITY_DTYPES, validate_facilities

logger = logging.getLogger(__name__)

#: Géoplateforme geocoder (successor of api-adresse.data.gouv.fr).
GEOCODER_URL = "https://data.geopf.fr/geocodage"
SEARCH_URL = f"{GEOCODER_URL}/search"
CSV_URL = f"{GEOCODER_URL}/search/csv"
#: Below this score the match is not trusted beyond the commune.
DEFAULT_MIN_SCORE = 0.5
RESULT_COLUMNS = ("latitude", "longitude", "result_score", "result_type", "result_citycode")
_TYPE_PRECISION = {
    "housenumber": "address",
    "street": "street",
    "locality": "street",
    "municipality": "commune",
}

BAN = register(SourceInfo(
    key="ban",
    title="Géocodage de la Géoplateforme (IGN, Base Adresse Nationale)",
    url=SEARCH_URL,
    licence="Licence Ouverte 2.0",
    attribution="IGN, Géoplateforme — service de géocodage (Base Adresse Nationale)",
    vintage="en continu",
    crs="EPSG:4326",
    columns=RESULT_COLUMNS,
))

_batch_lock = threading.Lock()
#: Arrondissement code ranges of the three cities, and their commune code.
_ARRONDISSEMENTS = (
    (75101, 75120, "75056"),  # Paris
    (69381, 69389, "69123"),  # Lyon
    (13201, 13216, "13055"),  # Marseille
)


_CITY_CODES = frozenset(city for _, _, city in _ARRONDISSEMENTS)


def commune_code(code: str) -> str:
    """Return the commune code of an INSEE code, mapping arrondissements to their city.

    Examples
    --------
    >>> commune_code("75115"), commune_code("69383"), commune_code("13208")
    ('75056', '69123', '13055')
    >>> commune_code("44129"), commune_code("2A004"), commune_code("")
    ('44129', '2A004', '')
    """
    text = str(code).strip()
    if text.isdigit() and len(text) == 5:
        n = int(text)
        for low, high, city in _ARRONDISSEMENTS:
            if low <= n <= high:
                return city
    return text


def precision_from_result(result_type: str, score: float, *, min_score: float) -> str:
    """Map a BAN result type and score to a position precision (``""`` if unusable).

    Examples
    --------
    >>> precision_from_result("housenumber", 0.92, min_score=0.5)
    'address'
    >>> precision_from_result("housenumber", 0.31, min_score=0.5)
    'commune'
    >>> precision_from_result("", float("nan"), min_score=0.5)
    ''
    """
    if not result_type or not np.isfinite(score):
        return ""
    if score < min_score:
        return "commune"
    return _TYPE_PRECISION.get(result_type, "commune")


# --- batch ---------------------------------------------------------------------------


def build_batch_csv(addresses: pd.DataFrame) -> bytes:
    """Write the request CSV (``rid;address;postcode;citycode``), UTF-8."""
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=";", lineterminator="\n")
    writer.writerow(["rid", "address", "postcode", "citycode"])
    for rid, row in addresses.iterrows():
        writer.writerow([rid, row.get("address", ""), row.get("postcode", ""),
                         row.get("citycode", "")])
    return buf.getvalue().encode("utf-8")


def parse_batch_csv(text: str, *, min_score: float = DEFAULT_MIN_SCORE) -> pd.DataFrame:
    """Parse the ``/search/csv`` answer into ``rid, lon, lat, score, type, citycode, precision``.

    ``citycode`` is the commune code: arrondissements of Paris, Lyon and Marseille are
    mapped to their city (:func:`commune_code`).

    Raises
    ------
    ValueError
        When the answer lacks the result columns (changed format or truncated body).
    """
    first = text.splitlines()[0] if text else ""
    sep = ";" if first.count(";") >= first.count(",") else ","
    df = pd.read_csv(io.StringIO(text), sep=sep, dtype=str, keep_default_na=False)
    missing = [c for c in ("rid", *RESULT_COLUMNS) if c not in df.columns]
    if missing:
        raise ValueError(f"geocoder CSV answer lacks columns {missing}; found {list(df.columns)}")
    out = pd.DataFrame({
        "rid": df["rid"],
        "lon": pd.to_numeric(df["longitude"], errors="coerce"),
        "lat": pd.to_numeric(df["latitude"], errors="coerce"),
        "score": pd.to_numeric(df["result_score"], errors="coerce"),
        "type": df["result_type"],
        "citycode": df["result_citycode"].map(commune_code),
    })
    out["precision"] = [
        precision_from_result(t, s, min_score=min_score)
        for t, s in zip(out["type"], out["score"].fillna(np.nan), strict=True)
    ]
    return out


def geocode_batch(
    addresses: pd.DataFrame,
    *,
    min_score: float = DEFAULT_MIN_SCORE,
    chunk_rows: int = 5000,
    offline: bool | None = None,
) -> pd.DataFrame:
    """Geocode many addresses with ``POST /search/csv`` (filtered by citycode/postcode).

    Batches are sent one at a time (the Géoplateforme allows one CSV batch per client).

    Parameters
    ----------
    addresses
        Columns ``address`` and optionally ``postcode`` and ``citycode``; its index
        identifies the rows in the result.

    Returns
    -------
    pandas.DataFrame
        Indexed like ``addresses``: ``lon, lat, score, type, citycode, precision``.
    """
    if "address" not in addresses.columns:
        raise InputError(
            f"addresses lacks column 'address'; found {list(addresses.columns)}"
        )
    frame = addresses.copy()
    for col in ("postcode", "citycode"):
        if col not in frame.columns:
            frame[col] = ""
    frame.index = frame.index.map(str)
    parts = []
    for start in range(0, len(frame), chunk_rows):
        chunk = frame.iloc[start:start + chunk_rows]
        body = build_batch_csv(chunk)
        fields = [("columns", "address"), ("postcode", "postcode"), ("citycode", "citycode")]
        with _batch_lock:
            text = _http.post_multipart_text(
                CSV_URL, source=BAN.key, fields=fields,
                files=[("data", "adresses.csv", body, "text/csv")], offline=offline,
                check=lambda t: parse_batch_csv(t, min_score=min_score),
            )
        parts.append(parse_batch_csv(text, min_score=min_score))
    if not parts:
        return pd.DataFrame(columns=["lon", "lat", "score", "type", "citycode", "precision"])
    res = pd.concat(parts, ignore_index=True).set_index("rid")
    return res.reindex(frame.index)


def place_facilities(
    rows: pd.DataFrame,
    *,
    town_halls: gpd.GeoDataFrame | None = None,
    min_score: float = DEFAULT_MIN_SCORE,
    offline: bool | None = None,
) -> gpd.GeoDataFrame:
    """Place address-only facility rows (schema columns without geometry) by geocoding.

    Rows whose match is poor are placed to the commune: at the BAN point when it lies in
    the row's commune, else at the town hall of ``town_halls`` (``code_insee`` + point),
    else they are rejected and listed in ``attrs["rejected"]`` (never placed elsewhere).

    Returns
    -------
    geopandas.GeoDataFrame
        Validated facility table; ``attrs["warnings"]`` lists the rows placed to the commune.
    """
    if rows.empty:
        return validate_facilities(facility_frame([]), source=BAN.key)
    missing = [c for c in FACILITY_DTYPES if c not in rows.columns and c != "facility_id"]
    if missing:
        raise InputError(f"rows lack facility columns {missing}; found {list(rows.columns)}")
    frame = rows.reset_index(drop=True)
    query = pd.DataFrame({
        "address": frame["address"].fillna(""),
        "postcode": frame["postcode"].fillna(""),
        # the geocoder knows Paris, Lyon and Marseille addresses by arrondissement: a
        # filter on the city's code would match nothing, the postcode filters instead
        "citycode": frame["code_insee"].fillna("").map(
            lambda c: "" if str(c) in _CITY_CODES else c),
    })
    try:
        res = geocode_batch(query, min_score=min_score, offline=offline)
    except SourceError:
        raise
    halls: dict[str, tuple[float, float]] = {}
    if town_halls is not None and not town_halls.empty:
        th = town_halls.to_crs("EPSG:4326")
        halls = {str(c): (g.x, g.y) for c, g in zip(th["code_insee"], th.geometry, strict=True)}
    records: list[dict[str, Any]] = []
    rejected: list[dict[str, Any]] = []
    warnings: list[str] = []
    for i, row in frame.iterrows():
        r = res.loc[str(i)]
        rec: dict[str, Any] = {str(k): v for k, v in row.items()}
        prec = r["precision"]
        in_commune = not row["code_insee"] or r["citycode"] == commune_code(row["code_insee"])
        if prec in {"address", "street"} and in_commune:
            rec.update(lon=r["lon"], lat=r["lat"], position_precision=prec)
        elif prec and in_commune:
            rec.update(lon=r["lon"], lat=r["lat"], position_precision="commune")
            warnings.append(f"{row['source']}:{row['source_id']} placé à la commune "
                            f"(score {r['score']:.2f})")
        elif row["code_insee"] in halls:
            lon, lat = halls[row["code_insee"]]
            rec.update(lon=lon, lat=lat, position_precision="commune")
            warnings.append(f"{row['source']}:{row['source_id']} placé à la mairie")
        else:
            rejected.append(rec)
            continue
        records.append(rec)
    out = validate_facilities(facility_frame(records), source=BAN.key)
    out.attrs["rejected"] = pd.DataFrame(rejected)
    out.attrs["warnings"] = warnings
    for w in warnings:
        logger.warning("ban: %s", w)
    return out
