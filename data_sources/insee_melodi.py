"""Commune statistics from the INSEE Melodi API (births, population, 0-2, income, families).

API (verified in the recorded answers of INSEE's own R package ``melodi``,
``tests/testthat/_vcr/*.yml``, and its ``R/get_data.R``): ``GET
https://api.insee.fr/melodi/data/{dataset}?GEO=…&<DIM>=<code>&maxResult=…`` answers::

    {"identifier": "DS_…", "title": {...},
     "observations": [{"dimensions": {"GEO": "2025-COM-44109", "FREQ": "A",
                                      "TIME_PERIOD": "2023", "POPREF_MEASURE": "PMUN"},
                       "attributes": {"OBS_STATUS": "A"},          # optional
                       "measures": {"OBS_VALUE_NIVEAU": {"value": 327734.0}}}],
     "paging": {"first": "…", "next": "…", "count": 3}}

The measure's name varies (``OBS_VALUE_NIVEAU``, ``OBS_VALUE_INDICE_DE_PRIX``…: the first one
is read); a secret value comes as an empty measure (``{}``); ``GEO`` may also come as
``COM-44109`` or a bare code with ``GEO_OBJECT``. Geography filters: ``GEO=COM-44109``,
``GEO=EPCI-200000438*COM`` (communes of an EPCI, seen in the recordings),
``GEO=DEP-44*COM``. Anonymous use is limited to 30 requests per minute (``_http`` spaces
calls to api.insee.fr). ``paging.next`` is followed when present.

Dimension codes (from stored third-party code reading the same datasets; **verify with a
live check**, ``pytest -m network``):

- births ``DS_ETAT_CIVIL_NAIS_COMMUNES``: ``EC_MEASURE=LVB`` (live births), yearly;
- population ``DS_RP_POPULATION_PRINC``: ``RP_MEASURE=POP``, ``SEX=_T``, ``AGE=_T``;
- children under 3, a **real census count** (``under3_census``), to use instead of the
  3 × births estimate: the sum of the single ages ``Y0``, ``Y1`` and ``Y2`` of
  ``DS_RP_TD_POPULATION_AGESEX_PRINC`` (``SEX=_T``). ``AGE=Y0T2`` does not exist in
  ``DS_RP_POPULATION_PRINC`` (its AGE codes are broad bands: the filter answers 200 with
  no observation); the code list ``CL_AGE`` (recorded in INSEE's R package ``melodi``,
  ``tests/testthat/_vcr/get_code_list_age_fr.yml``) holds ``Y0``, ``Y1``, ``Y2`` and
  ``Y_LT3`` (tried when the single ages are absent). The same answer also gives
  ``under3_count`` (series ``under3``, same request);
- Filosofi ``DS_FILOSOFI_CC``: ``FILOSOFI_MEASURE=MED_SL`` (median standard of living, €)
  and ``PR_MD60`` (poverty rate at 60 %, %);
- families ``DS_RP_FAMILLE_COMP``: ``TFN`` family type (``11`` father alone, ``12`` mother
  alone with children, ``22`` couple with children), ``NCH=_T``.

Years: census datasets now serve ``TIME_PERIOD`` 2023 (and 2012, 2017) and
``DS_FILOSOFI_CC`` the 2023 edition (new method, not comparable with 2021). Each series is
read at the **latest year it serves** and that year is carried as data.

Output of :func:`load_insee_needs`: one row per commune keyed by ``code_insee`` (str):

- one column per published year (``births_2019``…, ``population_2023``…);
- the needs columns of :data:`diagnosis.schema.NEEDS_COLUMNS`, kept under their historical
  names for compatibility (``births_2024``, ``population_2022``, ``median_income_2021``,
  ``poverty_rate_2021``, ``families_2022``, ``single_parent_families_2022``) but **filled
  from the latest year served** (see :data:`LATEST_COLUMNS`), with a ``*_year`` column
  saying which year it really is (``births_year``, ``population_year``, ``income_year``,
  ``poverty_year``, ``families_year``, ``single_parent_families_year``);
- ``under3_census`` and ``under3_census_year`` (census count of children under 3);
- ``births_mean_2016_2021``.

Secret (``CONF_STATUS=C``) or missing values are NaN, never 0. Evidence for the answer
shape: the recorded answers of cbobinec/melodi ``tests/fixtures/*.yml``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from data_sources import _http
from data_sources.registry import SourceInfo, register
from diagnosis.errors import InputError, SourceError
from diagnosis.schema import Territory

logger = logging.getLogger(__name__)

MELODI_URL = "https://api.insee.fr/melodi/data/{dataset}"
MAX_RESULT = 10_000
#: Observation statuses meaning "no value here" (K: counted in another commune).
EMPTY_STATUSES = frozenset({"K", "O", "M", "C"})


@dataclass(frozen=True)
class MelodiSeries:
    """One indicator read from a Melodi dataset.

    Attributes
    ----------
    name
        Output column prefix (``births`` gives ``births_2024``…).
    dataset
        Melodi dataset identifier.
    query
        Dimension filters sent to the API.
    select
        Dimension -> accepted codes when reading observations (rows summed over them).
    alternatives
        Other ``select`` sets tried in order when the first matches nothing.
    """

    name: str
    dataset: str
    query: Mapping[str, str] = field(default_factory=dict)
    select: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    alternatives: tuple[Mapping[str, tuple[str, ...]], ...] = ()


SERIES: dict[str, MelodiSeries] = {
    "births": MelodiSeries(
        "births", "DS_ETAT_CIVIL_NAIS_COMMUNES", {"EC_MEASURE": "LVB"},
        {"EC_MEASURE": ("LVB",)}, ({},),
    ),
    "population": MelodiSeries(
        "population", "DS_RP_POPULATION_PRINC",
        {"RP_MEASURE": "POP", "SEX": "_T", "AGE": "_T"},
        {"RP_MEASURE": ("POP",), "SEX": ("_T",), "AGE": ("_T",)},
    ),
    "under3_census": MelodiSeries(
        "under3_census", "DS_RP_TD_POPULATION_AGESEX_PRINC", {"SEX": "_T"},
        {"SEX": ("_T",), "AGE": ("Y0", "Y1", "Y2")},
        ({"SEX": ("_T",), "AGE": ("Y_LT3",)},),
    ),
    "under3": MelodiSeries(
        "under3_count", "DS_RP_TD_POPULATION_AGESEX_PRINC", {"SEX": "_T"},
        {"SEX": ("_T",), "AGE": ("Y0", "Y1", "Y2")},
        ({"SEX": ("_T",), "AGE": ("Y0T2",)},),
    ),
    "median_income": MelodiSeries(
        "median_income", "DS_FILOSOFI_CC", {"FILOSOFI_MEASURE": "MED_SL"},
        {"FILOSOFI_MEASURE": ("MED_SL",)},
    ),
    "poverty_rate": MelodiSeries(
        "poverty_rate", "DS_FILOSOFI_CC", {"FILOSOFI_MEASURE": "PR_MD60"},
        {"FILOSOFI_MEASURE": ("PR_MD60",)},
    ),
    "single_parent_families": MelodiSeries(
        "single_parent_families", "DS_RP_FAMILLE_COMP", {"NCH": "_T"},
        {"NCH": ("_T",), "TFN": ("11", "12")},
    ),
    "families": MelodiSeries(
        "families", "DS_RP_FAMILLE_COMP", {"NCH": "_T"},
        {"NCH": ("_T",), "TFN": ("11", "12", "22")},
    ),
}
#: Series loaded by default (the single-year age dataset is optional).
DEFAULT_SERIES = tuple(k for k in SERIES if k != "under3")
#: Needs column (historical name) → (series prefix, column holding the year it is from).
LATEST_COLUMNS: dict[str, tuple[str, str]] = {
    "births_2024": ("births", "births_year"),
    "population_2022": ("population", "population_year"),
    "median_income_2021": ("median_income", "income_year"),
    "poverty_rate_2021": ("poverty_rate", "poverty_year"),
    "families_2022": ("families", "families_year"),
    "single_parent_families_2022": ("single_parent_families", "single_parent_families_year"),
    "under3_census": ("under3_census", "under3_census_year"),
}

MELODI = register(SourceInfo(
    key="insee_melodi",
    title="INSEE — API Melodi (état civil, recensement, Filosofi)",
    url="https://api.insee.fr/melodi/data/",
    licence="Licence Ouverte 2.0",
    attribution="Source : Insee (API Melodi) — état civil, recensement de la population, Filosofi",
    vintage="dernières années publiées (TIME_PERIOD)",
    columns=("GEO", "TIME_PERIOD", "OBS_VALUE"),
    notes=("Valeurs sous secret statistique laissées vides (jamais 0). Chaque indicateur est "
           "lu à la dernière année publiée, indiquée dans les colonnes *_year ; Filosofi 2023 "
           "(nouvelle méthode) n'est pas comparable à Filosofi 2021."),
))


def geo_filter(area: Territory, *, vintage: str | None = None) -> str:
    """Return the Melodi ``GEO`` filter selecting the communes of ``area``.

    Examples
    --------
    >>> t = Territory("epci", "200000438", "CC Pontchâteau", ("44129",), ("44",))
    >>> geo_filter(t), geo_filter(t, vintage="2025")
    ('EPCI-200000438*COM', '2025-EPCI-200000438*COM')
    """
    prefix = f"{vintage}-" if vintage else ""
    if area.kind == "commune":
        return f"{prefix}COM-{area.code}"
    if area.kind == "epci":
        return f"{prefix}EPCI-{area.code}*COM"
    if area.kind == "departement":
        return f"{prefix}DEP-{area.code}*COM"
    raise InputError(f"area.kind={area.kind!r}; use 'commune', 'epci' or 'departement'")


# --- fetch -----------------------------------------------------------------------------


def _check_observations(doc: Any) -> None:
    if not isinstance(doc, dict) or not isinstance(doc.get("observations"), list):
        raise ValueError("not a Melodi answer (no 'observations' list)")


def fetch_melodi(
    dataset: str,
    *,
    geo: str,
    query: Mapping[str, str] | None = None,
    max_pages: int = 50,
    offline: bool | None = None,
    refresh: bool = False,
) -> list[dict[str, Any]]:
    """Fetch every observation of ``dataset`` for ``geo``, following ``paging.next``.

    The observations received are counted: when an answer's ``paging.count`` (the total
    with ``totalCount=true``, as read by INSEE's R package ``melodi``, ``R/get_data.R``;
    at most the page's size otherwise) exceeds what came, or when ``max_pages`` stops the
    loop, or when an empty page still points to a next one, what came is returned with a
    « partiel » note
    (:func:`data_sources._http.note_partial`), never as complete.
    """
    url: str | None = MELODI_URL.format(dataset=dataset)
    params: list[tuple[str, Any]] | None = [("GEO", geo), *dict(query or {}).items(),
                                            ("maxResult", MAX_RESULT)]
    obs: list[dict[str, Any]] = []
    total: int | None = None
    for _ in range(max_pages):
        assert url is not None
        doc = _http.fetch_json(url, source=MELODI.key, params=params, offline=offline,
                               refresh=refresh, check=_check_observations)
        obs.extend(doc["observations"])
        paging = doc.get("paging") or {}
        count = paging.get("count") if isinstance(paging, dict) else None
        if isinstance(count, int) and not isinstance(count, bool):
            total = max(total or 0, count)  # a page's count never exceeds what came
        nxt = paging.get("next")
        if not nxt or paging.get("isLast") is True:
            break
        if not doc["observations"]:
            _http.note_partial(f"Melodi {dataset} : page vide avant la fin ({len(obs)} "
                               "observation(s) reçue(s))")
            return obs
        url, params = str(nxt), None
    else:
        _http.note_partial(f"Melodi {dataset} : arrêt après {max_pages} pages "
                           f"({len(obs)} observation(s) reçue(s))")
        return obs
    if total is not None and len(obs) < total:
        _http.note_partial(f"Melodi {dataset} : {len(obs)} observation(s) reçue(s) sur "
                           f"{total} annoncée(s)")
    return obs


# --- parse -----------------------------------------------------------------------------

_GEO_RE = re.compile(r"^(?:(\d{4})-)?([A-Z][A-Z0-9]*)-(.+)$")


def _split_geo(value: str, geo_object: str = "") -> tuple[str, str]:
    m = _GEO_RE.match(value.strip())
    if m:
        return m.group(2), m.group(3)
    return geo_object or "COM", value.strip()


def _value(o: Mapping[str, Any]) -> float:
    if "OBS_VALUE" in o and not isinstance(o["OBS_VALUE"], dict):
        raw = o["OBS_VALUE"]
    else:
        measures = o.get("measures") or {}
        first: Any = next(iter(measures.values()), {}) if measures else {}
        raw = first.get("value") if isinstance(first, dict) else first
    try:
        val = float(str(raw).replace(",", ".")) if raw not in (None, "") else np.nan
    except ValueError:
        val = np.nan
    return val


def observations_to_long(observations: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """Flatten Melodi observations to ``geo_level, code, TIME_PERIOD, <dims>, value`` (pure).

    Statuses in :data:`EMPTY_STATUSES` (and a ``CONF_STATUS`` of ``C``) give NaN.
    """
    rows = []
    for o in observations:
        dims = dict(o.get("dimensions") or {})
        for k, v in o.items():  # flat CSV-like records
            if k not in {"dimensions", "measures", "attributes"} and not isinstance(v, dict):
                dims.setdefault(k, v)
        attrs = dict(o.get("attributes") or {})
        level, code = _split_geo(str(dims.get("GEO", "")), str(dims.get("GEO_OBJECT", "")))
        value = _value(o)
        status = str(attrs.get("OBS_STATUS", dims.get("OBS_STATUS", "")) or "").upper()
        conf = str(attrs.get("CONF_STATUS", dims.get("CONF_STATUS", "")) or "").upper()
        if status in EMPTY_STATUSES or conf == "C":
            value = np.nan
        row: dict[str, Any] = {
            k: str(v) for k, v in dims.items() if k not in {"GEO", "OBS_VALUE"}
        }
        row.update(geo_level=level, code_insee=code, value=value)
        rows.append(row)
    return pd.DataFrame(rows)


def parse_series(observations: Sequence[Mapping[str, Any]], series: MelodiSeries) -> pd.DataFrame:
    """Turn observations into a wide table ``code_insee, <name>_<year>…`` for one series.

    Raises
    ------
    SourceError
        When observations exist but lack a selected dimension, or none has the selected
        codes (changed codes): the message names the dimension and the codes found.
    """
    long = observations_to_long(observations)
    if long.empty:
        return pd.DataFrame({"code_insee": pd.Series([], dtype=object)})
    if "TIME_PERIOD" not in long.columns:
        raise SourceError(f"{MELODI.key}: {series.dataset} observations lack TIME_PERIOD.")
    long = long[long["geo_level"].eq("COM")]
    chosen = None
    problems = []
    for select in (series.select, *series.alternatives):
        missing = [d for d in select if d not in long.columns]
        if missing:
            problems.append(f"dimensions {missing} absent (found {sorted(long.columns)})")
            continue
        mask = pd.Series(True, index=long.index)
        for dim, codes in select.items():
            mask &= long[dim].isin(codes)
        if mask.any():
            chosen = (select, long[mask])
            break
        found = {d: sorted(long[d].unique().tolist())[:12] for d in select}
        problems.append(f"no observation with {dict(select)}; codes found {found}")
    if chosen is None:
        raise SourceError(
            f"{MELODI.key}: {series.dataset}: {'; '.join(problems)}. The dimension codes may "
            "have changed: update SERIES in data_sources/insee_melodi.py."
        )
    select, sub = chosen
    sub = sub.assign(year=sub["TIME_PERIOD"].str[:4])
    multi = [d for d, codes in select.items() if len(codes) > 1]
    if multi:
        # A sum over several codes is NaN if any part is missing (secret): never undercount.
        n_parts = int(np.prod([len(select[d]) for d in multi]))
        grouped = sub.groupby(["code_insee", "year"])["value"]
        wide_long = grouped.sum(min_count=1).where(grouped.count() == n_parts)
    else:
        wide_long = sub.groupby(["code_insee", "year"])["value"].first()
    wide = wide_long.unstack("year")
    wide.columns = [f"{series.name}_{y}" for y in wide.columns]
    return wide.reset_index()


def latest_year(wide: pd.DataFrame, prefix: str) -> int | None:
    """Return the latest year of ``<prefix>_<year>`` columns holding at least one value.

    Examples
    --------
    >>> df = pd.DataFrame({"population_2017": [1.0], "population_2023": [2.0],
    ...                    "population_2024": [np.nan]})
    >>> latest_year(df, "population"), latest_year(df, "births")
    (2023, None)
    """
    pattern = re.compile(rf"{re.escape(prefix)}_(\d{{4}})")
    years = [int(m.group(1)) for c in wide.columns if (m := pattern.fullmatch(str(c)))
             and pd.to_numeric(wide[c], errors="coerce").notna().any()]
    return max(years) if years else None


def finish_needs(wide: pd.DataFrame) -> pd.DataFrame:
    """Add the latest-year needs columns with their ``*_year``, and derived columns.

    See :data:`LATEST_COLUMNS`; also ``births_mean_2016_2021`` and, when the optional
    single-year series is loaded, ``under3_count``/``under3_year``.
    """
    out = wide.copy()
    latest = {col: (prefix, year_col, latest_year(wide, prefix))
              for col, (prefix, year_col) in LATEST_COLUMNS.items()}
    for col, (prefix, year_col, year) in latest.items():
        if year is None:
            continue
        out[col] = wide[f"{prefix}_{year}"]
        out[year_col] = float(year)
    births = [f"births_{y}" for y in range(2016, 2022)]
    if all(c in out.columns for c in births):
        out["births_mean_2016_2021"] = out[births].mean(axis=1, skipna=False)
    under3 = sorted(c for c in out.columns if re.fullmatch(r"under3_count_\d{4}", c))
    if under3:
        out["under3_count"] = out[under3[-1]]
        out["under3_year"] = int(under3[-1][-4:])
    for col in out.columns:
        if col != "code_insee":
            out[col] = pd.to_numeric(out[col], errors="coerce").astype("float64")
    return out


def validate_needs(df: pd.DataFrame) -> pd.DataFrame:
    """Check codes (5-character strings, unique) and values (finite or NaN, >= 0)."""
    if "code_insee" not in df.columns:
        raise SourceError(f"{MELODI.key}: table lacks column 'code_insee'; found {list(df)}")
    bad = ~df["code_insee"].astype(str).str.match(r"^(?:\d{5}|2[AB]\d{3})$")
    if bad.any():
        raise SourceError(
            f"{MELODI.key}: invalid commune codes {df.loc[bad, 'code_insee'].head().tolist()!r}"
        )
    if df["code_insee"].duplicated().any():
        raise SourceError(f"{MELODI.key}: duplicate commune codes in the needs table")
    num = df.drop(columns=["code_insee"]).select_dtypes("number")
    if (num < 0).any().any():
        cols = num.columns[(num < 0).any()].tolist()
        raise SourceError(f"{MELODI.key}: negative values in columns {cols}")
    return df.sort_values("code_insee").reset_index(drop=True)


def check_answered(part: pd.DataFrame, series: MelodiSeries, area: Territory) -> None:
    """Raise when ``part`` holds no value for any commune of ``area`` (French message).

    An empty but valid answer (``observations: []``, a filter on a code the dataset does
    not have, observations for other communes only) is a failure, never data: the
    message names the dataset, the filters and the number of communes asked.
    """
    cols = [c for c in part.columns if c != "code_insee"]
    mine = part.loc[part["code_insee"].isin(set(area.communes)), cols] if cols else part
    if cols and len(mine) and mine.notna().any().any():
        return
    filters = ", ".join(f"{k}={v}" for k, v in series.query.items()) or "aucun filtre"
    raise SourceError(
        f"{MELODI.key} : {series.dataset} ({filters}) : aucune observation pour les "
        f"{len(area.communes)} commune(s) de {area.label} (réponse vide ou codes changés) ; "
        "la série est laissée vide, jamais à zéro."
    )


def load_insee_needs(
    area: Territory,
    *,
    series: Iterable[str] = DEFAULT_SERIES,
    geo_vintage: str | None = None,
    errors: str = "raise",
    offline: bool | None = None,
    refresh: bool = False,
) -> pd.DataFrame:
    """Load the Melodi indicators of the communes of ``area`` into one wide table.

    Parameters
    ----------
    area
        Territory (commune, EPCI or département).
    series
        Keys of :data:`SERIES` to load.
    geo_vintage
        Geography vintage prefix of the ``GEO`` filter (``"2025"``); default none.
    errors
        ``"raise"``: the first failing series raises :class:`SourceError`;
        ``"collect"``: failing series are skipped and their messages stored in
        ``attrs["failures"]`` (one failing dataset never blocks the others). A series
        whose answer holds no value for any commune of ``area`` fails too
        (:func:`check_answered`).

    Returns
    -------
    pandas.DataFrame
        Keyed by ``code_insee`` (the communes of ``area``, even without data).
    """
    if errors not in {"raise", "collect"}:
        raise InputError(f"errors={errors!r}; use 'raise' or 'collect'")
    geo = geo_filter(area, vintage=geo_vintage)
    wide = pd.DataFrame({"code_insee": list(area.communes)})
    failures: dict[str, str] = {}
    kinds: dict[str, str | None] = {}
    cache: dict[tuple[str, tuple[tuple[str, str], ...]], list[dict[str, Any]]] = {}
    for key in series:
        if key not in SERIES:
            raise InputError(f"series contains {key!r}; known: {sorted(SERIES)}")
        s = SERIES[key]
        ckey = (s.dataset, tuple(sorted(s.query.items())))
        try:
            if ckey not in cache:
                cache[ckey] = fetch_melodi(s.dataset, geo=geo, query=s.query, offline=offline,
                                           refresh=refresh)
            part = parse_series(cache[ckey], s)
            check_answered(part, s, area)
        except SourceError as exc:
            if errors == "raise":
                raise
            failures[key] = str(exc)
            kinds[key] = exc.kind
            logger.warning("insee_melodi: %s", exc)
            continue
        wide = wide.merge(part, on="code_insee", how="left")
    out = validate_needs(finish_needs(wide))
    out.attrs["failures"] = failures
    out.attrs["failure_kinds"] = kinds  # SourceError.kind of each failed series
    return out
