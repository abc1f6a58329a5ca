"""Facility tables: build them from records, and merge what several sources saw.

The same crèche may come from FINESS, the BPE, OSM and a user file. :func:`merge_facilities`
makes it one row when the rows have the same ``type``, lie within ``max_distance_m`` of each
other (in EPSG:2154) and have similar normalised names (accents, case, punctuation and
common words ignored; :mod:`difflib`, or ``rapidfuzz`` when installed). A name whose words
are all in the other one is the same name (« MAIRIE » of the BPE and « Mairie -
Drefféac » of the annuaire, « CENTRE MEDICO-SOCIAL DE PONTCHATEAU » of FINESS and
« Centre médico-social - PMI de Pontchâteau »); « hôtel de ville » reads « mairie ». A row
placed only to its commune (``position_precision == "commune"``) merges with a row of the
same commune, type and (non-generic) name however far its commune point lies. The merged
row keeps every source's id and date (``source="finess+osm"``,
``source_id="finess:123|osm:node/4"``) and the best-placed position; a report says what
was merged and why (the names, the distance, the similarity).
"""

from __future__ import annotations

import difflib
import logging
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
from scipy.spatial import cKDTree
from shapely.geometry import Point

from diagnosis.errors import InputError
from diagnosis.schema import (
    FACILITY_COLUMNS,
    FACILITY_DTYPES,
    PRECISIONS,
    empty_facilities,
    validate_facilities,
)
from diagnosis.settings import DUPLICATE_DISTANCE_M, METRIC_CRS, WGS84

logger = logging.getLogger(__name__)

#: Default name similarity (0-1) above which two close facilities are the same.
DEFAULT_NAME_SIMILARITY = 0.6

#: Words ignored when comparing names (articles, generic facility words).
STOPWORDS = frozenset(
    "a au aux d de des du en et l la le les sur un une ".split()
    + "creche multi accueil halte garderie micro centre social maison".split()
    + "pmi relais petite enfance rpe laep lieu parents enfants enfant municipal".split()
    + "municipale association asso the".split()
)

MERGE_REPORT_COLUMNS = (
    "facility_id", "type", "merged_ids", "sources", "max_distance_m", "min_name_similarity",
    "names",
)
#: Phrases read as another word before comparing names.
SYNONYMS: tuple[tuple[str, str], ...] = ((r"\bhotel de ville\b", "mairie"),)


def facility_frame(records: Sequence[Mapping[str, Any]]) -> gpd.GeoDataFrame:
    """Build a facility table with :data:`~diagnosis.schema.FACILITY_COLUMNS` from dicts.

    Each record holds schema columns (missing text columns become ``""``, missing
    ``capacity`` NaN) plus ``lon`` and ``lat`` in WGS84. ``facility_id`` defaults to
    ``"<source>:<source_id>"``. The result is not validated (call
    :func:`diagnosis.schema.validate_facilities`).
    """
    if not records:
        return empty_facilities()
    rows = []
    for rec in records:
        row: dict[str, Any] = {}
        for col, dtype in FACILITY_DTYPES.items():
            value = rec.get(col)
            if dtype == "float64":
                row[col] = np.nan if value is None or value == "" else float(value)
            else:
                row[col] = "" if value is None else str(value).strip()
        if not row["facility_id"]:
            row["facility_id"] = f"{row['source']}:{row['source_id']}"
        lon, lat = rec.get("lon"), rec.get("lat")
        ok = lon is not None and lat is not None and np.isfinite([lon, lat]).all()
        row["geometry"] = Point(float(lon), float(lat)) if ok else None  # type: ignore[arg-type]
        rows.append(row)
    df = pd.DataFrame(rows, columns=list(FACILITY_COLUMNS))
    return gpd.GeoDataFrame(df, geometry="geometry", crs=WGS84)


def normalize_name(name: str) -> str:
    """Lower-case, strip accents and punctuation, drop stop words.

    Examples
    --------
    >>> normalize_name("Multi-accueil « Les Petits Loups » d'Herbignac")
    'petits loups herbignac'
    """
    text = unicodedata.normalize("NFKD", str(name)).encode("ascii", "ignore").decode()
    text = re.sub(r"[^a-z0-9]+", " ", text.lower().replace("'", " "))
    for pattern, word in SYNONYMS:
        text = re.sub(pattern, word, text)
    return " ".join(w for w in text.split() if w not in STOPWORDS)


def name_score(a: str, b: str) -> float:
    """Similarity of two names in [0, 1] after :func:`normalize_name`.

    Two names that become empty (only generic words) count as similar (1.0): position
    and type then decide. Uses ``rapidfuzz.fuzz.token_sort_ratio`` when installed, else
    :class:`difflib.SequenceMatcher` on sorted tokens.

    A name whose words all appear in the other one scores 1.0 (« MAIRIE » and « Mairie -
    Drefféac »: the commune's name added by one source).

    Examples
    --------
    >>> name_score("Crèche Les Lutins", "CRECHE LES LUTINS")
    1.0
    >>> name_score("MAIRIE", "Mairie - Drefféac"), name_score("Hôtel de ville", "MAIRIE")
    (1.0, 1.0)
    """
    na, nb = normalize_name(a), normalize_name(b)
    if not na or not nb:
        return 1.0 if na == nb else 0.0
    wa, wb = set(na.split()), set(nb.split())
    if wa <= wb or wb <= wa:
        return 1.0
    sa, sb = " ".join(sorted(na.split())), " ".join(sorted(nb.split()))
    try:
        from rapidfuzz import fuzz
    except ImportError:
        return difflib.SequenceMatcher(None, sa, sb).ratio()
    return float(fuzz.token_sort_ratio(sa, sb)) / 100.0


_PRECISION_RANK = {p: i for i, p in enumerate(PRECISIONS)}


def _commune_pairs(allf: pd.DataFrame) -> np.ndarray:
    """Pairs (i, j) of rows of one commune and type where one is placed to the commune only.

    Such a row sits on the commune's point, however far the facility: distance says
    nothing, so the pair is a candidate whenever both names are specific (not empty once
    generic words are removed); the name test decides.
    """
    out: list[tuple[int, int]] = []
    vague = allf["position_precision"].eq("commune").to_numpy()
    if not vague.any():
        return np.empty((0, 2), dtype=int)
    named = allf["name"].map(lambda n: bool(normalize_name(n))).to_numpy()
    for _, idx in allf.groupby(["code_insee", "type"]).indices.items():
        for a in idx:
            if not vague[a] or not named[a]:
                continue
            out.extend((int(min(a, b)), int(max(a, b))) for b in idx
                       if b != a and named[b] and not (vague[b] and b < a))
    return np.array(sorted(set(out)), dtype=int).reshape(-1, 2)


def merge_facilities(
    tables: Iterable[gpd.GeoDataFrame],
    *,
    max_distance_m: float = DUPLICATE_DISTANCE_M,
    name_similarity: float = DEFAULT_NAME_SIMILARITY,
) -> tuple[gpd.GeoDataFrame, pd.DataFrame]:
    """Merge facility tables, making one row of the same facility seen by several sources.

    Parameters
    ----------
    tables
        Facility tables (schema columns, any CRS); each is validated first.
    max_distance_m
        Two rows further apart than this (EPSG:2154 metres) are never merged.
    name_similarity
        Minimum :func:`name_score` for two close rows of the same type to merge.

    Returns
    -------
    merged : geopandas.GeoDataFrame
        Facility table (EPSG:4326); a merged row takes the name, address and position of
        its best-placed member, the first non-missing value of other fields, and joins
        ``source`` (``"finess+osm"``), ``source_id`` (``"finess:123|osm:node/4"``) and
        ``source_date``. Its ``facility_id`` is ``"merged:"`` + the member ids.
    report : pandas.DataFrame
        One row per merged group: :data:`MERGE_REPORT_COLUMNS`.

    Notes
    -----
    Rows placed only to the commune (``position_precision == "commune"``) all sit on the
    town hall, so distance says nothing about them: they merge only when their names are
    similar too, which the name test already requires.
    """
    if max_distance_m < 0:
        raise InputError(f"max_distance_m={max_distance_m!r} must be >= 0 metres")
    if not 0 <= name_similarity <= 1:
        raise InputError(f"name_similarity={name_similarity!r} must be within [0, 1]")
    parts = [validate_facilities(t, source=f"tables[{i}]") for i, t in enumerate(tables)]
    parts = [p for p in parts if not p.empty]
    if not parts:
        return empty_facilities(), pd.DataFrame(columns=list(MERGE_REPORT_COLUMNS))
    allf = pd.concat(parts, ignore_index=True)
    allf = gpd.GeoDataFrame(allf, geometry="geometry", crs=WGS84)
    metric = allf.to_crs(METRIC_CRS)
    xy = np.column_stack([metric.geometry.x.to_numpy(), metric.geometry.y.to_numpy()])
    tree = cKDTree(xy)
    pairs = tree.query_pairs(r=max_distance_m, output_type="ndarray")
    types = allf["type"].to_numpy()
    names = allf["name"].to_numpy()
    sources = allf["source"].to_numpy()
    pairs = np.vstack([pairs.reshape(-1, 2), _commune_pairs(allf)])
    candidates: list[tuple[float, float, int, int]] = []
    for i, j in pairs:
        if types[i] != types[j] or sources[i] == sources[j]:
            continue  # one source does not list the same facility twice: keep both
        sim = name_score(names[i], names[j])
        if sim >= name_similarity:
            dist = float(np.hypot(*(xy[i] - xy[j])))
            candidates.append((-sim, dist, int(i), int(j)))
    # Greedy union, best pairs first; a group never holds two rows of the same source.
    n = len(allf)
    parent = list(range(n))
    members: dict[int, set[str]] = {k: {str(sources[k])} for k in range(n)}
    sims: dict[tuple[int, int], float] = {}

    def find(k: int) -> int:
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    for neg_sim, _, i, j in sorted(candidates):
        ri, rj = find(i), find(j)
        if ri == rj or members[ri] & members[rj]:
            continue
        parent[rj] = ri
        members[ri] |= members.pop(rj)
        sims[(i, j)] = -neg_sim
    labels = np.array([find(k) for k in range(n)])
    rows = []
    report = []
    for idx in pd.Series(labels).groupby(labels).indices.values():
        if len(idx) == 1:
            rows.append(allf.iloc[idx[0]].to_dict())
            continue
        group = _best_placed_first(allf.iloc[idx])
        merged = _merged_row(group)
        rows.append(merged)
        pts = xy[idx]
        dmax = float(np.max(np.hypot(*(pts[:, None, :] - pts[None, :, :]).transpose(2, 0, 1))))
        in_group = {int(k) for k in idx}
        pair_sims = [s for (a, b), s in sims.items() if a in in_group and b in in_group]
        report.append({
            "facility_id": merged["facility_id"],
            "type": merged["type"],
            "merged_ids": "|".join(group["facility_id"]),
            "sources": merged["source"],
            "max_distance_m": round(dmax, 1),
            "min_name_similarity": round(min(pair_sims), 3) if pair_sims else np.nan,
            "names": " | ".join(f"{src} : {nm}" for src, nm in zip(
                group["source"], group["name"], strict=True)),
        })
    out = gpd.GeoDataFrame(pd.DataFrame(rows, columns=list(FACILITY_COLUMNS)),
                           geometry="geometry", crs=WGS84)
    out = validate_facilities(out, source="merge_facilities")
    rep = pd.DataFrame(report, columns=list(MERGE_REPORT_COLUMNS))
    logger.info("merge_facilities: %d rows in, %d out, %d merged groups", n, len(out), len(rep))
    return out, rep


def _best_placed_first(group: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """The rows of ``group`` by placement precision, best first (stable)."""
    rank = group["position_precision"].map(_PRECISION_RANK).fillna(len(PRECISIONS))
    return group.iloc[np.argsort(rank.to_numpy(), kind="stable")]


def _merged_row(group: gpd.GeoDataFrame) -> dict[str, Any]:
    """One row for a group of the same facility (best placed first): the first's, completed.

    Name, address and position come from the best-placed member, other fields from the
    first member that has them; ``source``, ``source_id``, ``source_date`` and
    ``facility_id`` join the members'.
    """
    merged: dict[str, Any] = group.iloc[0].to_dict()
    for col, dtype in FACILITY_DTYPES.items():
        if col in {"facility_id", "source", "source_id", "source_date"}:
            continue
        if dtype == "float64":
            vals = group[col].dropna()
            merged[col] = float(vals.iloc[0]) if len(vals) else np.nan
        elif not merged[col]:
            vals = [v for v in group[col] if v]
            merged[col] = vals[0] if vals else ""
    merged["source"] = "+".join(dict.fromkeys(group["source"]))
    merged["source_id"] = "|".join(f"{s}:{i}" for s, i in zip(group["source"],
                                                             group["source_id"], strict=True))
    merged["source_date"] = "|".join(
        f"{s}:{d}" for s, d in zip(group["source"], group["source_date"], strict=True) if d
    )
    merged["facility_id"] = "merged:" + "|".join(group["facility_id"])
    return merged
