"""Childcare coverage rates of the CNAF (data.caf.fr, Opendatasoft Explore API v2.1).

The coverage rate (*taux de couverture*) is the number of formal childcare places per 100
children under 3. The CNAF publishes aggregates, not facility lists.

Verified shapes (Opendatasoft Explore v2.1 documentation, and stored third-party code that
reads these datasets):

- ``GET https://data.caf.fr/api/explore/v2.1/catalog/datasets/{id}/records`` with
  ``limit`` (at most 100), ``offset``, ``where``, ``refine``, ``order_by``; the answer is
  ``{"total_count": n, "results": [{field: value, …}]}``; ``offset + limit`` may not
  exceed 10,000 (then use ``/exports/csv``).
- ``txcouv_pe_com``: ``annee`` (int), ``numcom``, ``nomcom``, ``numdep``, global rate
  ``txcouv_com`` (and components ``txcouv_eaje_com``…); published only for communes of
  more than 10,000 inhabitants.
- ``txcouv_pe_epci``: ``annee``, ``numepci``, ``nomepci``, ``numdep``, ``txcouv_epci``; one
  row ``numepci="XX"`` (communes outside any EPCI) is a placeholder and is dropped.
- Earlier years are in the ``_hist`` twin datasets (``txcouv_pe_com_hist``,
  ``txcouv_pe_epci_hist``: the pair ``txcouv_pe_dep`` / ``txcouv_pe_dep_hist`` is read this
  way in stored third-party code), same fields; ``annee`` may come as a number or a string
  (``2019``, ``"2019"``, ``2019.0``). A year present in both keeps the current dataset's row.

- ``txcouv_pe_dep``: ``annee`` (int), ``numdep``, ``nomdep``, ``txcouv_dep`` (one row per
  département and year; twin ``txcouv_pe_dep_hist``); ``txcouv_pe_nat``: ``annee`` (an
  ISO *date*, ``"2023-01-01"``, where the others publish an int), ``national`` (the
  perimeter, « FRANCE ENTIERE HORS MAYOTTE »), ``txcouv_nat``: two rows, read whole
  (field names and the date-typed ``annee`` as documented in stored third-party code that
  reads the seven data.caf.fr datasets). These two reference levels are optional
  (:data:`REFERENCE_LEVELS`): a failure leaves them unknown with a note, never the
  commune and EPCI rates.

Output of :func:`load_coverage`: a tidy table ``level`` (``commune`` | ``arrondissement``
| ``epci`` | ``departement`` | ``france``), ``code`` (str; ``FR`` for France), ``name``,
``year`` (int), ``rate`` (float, places per 100 children under 3; NaN when not
published, never 0).

Paris, Lyon and Marseille: the commune dataset lists their municipal arrondissements
(``75101``…``75120``, ``69381``…``69389``, ``13201``…``13216``), which no commune filter
on ``75056``/``69123``/``13055`` matches. They are kept (level ``arrondissement``) and
:func:`aggregate_arrondissements` gives the commune its figure: the arrondissements' rates
weighted by their children under 3 when those are known, else no commune rate (unknown,
never an unweighted mean) and a French note giving the range of the arrondissements.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from data_sources import _http
from data_sources.registry import SourceInfo, register
from diagnosis.errors import InputError, SourceError
from diagnosis.schema import Territory

logger = logging.getLogger(__name__)

BASE_URL = "https://data.caf.fr/api/explore/v2.1/catalog/datasets"
PAGE_LIMIT = 100
MAX_OFFSET = 10_000
COVERAGE_COLUMNS = ("level", "code", "name", "year", "rate")

#: Suffix of the twin datasets holding the earlier years.
HIST_SUFFIX = "_hist"
#: level -> (dataset id, code field, name field, rate field)
DATASETS: dict[str, tuple[str, str, str, str]] = {
    "commune": ("txcouv_pe_com", "numcom", "nomcom", "txcouv_com"),
    "epci": ("txcouv_pe_epci", "numepci", "nomepci", "txcouv_epci"),
    "departement": ("txcouv_pe_dep", "numdep", "nomdep", "txcouv_dep"),
    "france": ("txcouv_pe_nat", "national", "national", "txcouv_nat"),
}
#: Levels a diagnosis compares its territory with: loaded when asked, optional (a
#: failure is a note, the territory's own rates are kept).
REFERENCE_LEVELS: tuple[str, ...] = ("departement", "france")
#: Every level, as the fetch of a territory loads them.
ALL_LEVELS: tuple[str, ...] = ("commune", "epci", *REFERENCE_LEVELS)

#: Communes with municipal arrondissements (Paris, Lyon, Marseille) and their codes.
PLM_ARRONDISSEMENTS: dict[str, tuple[str, ...]] = {
    "75056": tuple(f"751{i:02d}" for i in range(1, 21)),
    "69123": tuple(f"6938{i}" for i in range(1, 10)),
    "13055": tuple(f"132{i:02d}" for i in range(1, 17)),
}
#: Arrondissement code -> its commune.
COMMUNE_OF_ARRONDISSEMENT: dict[str, str] = {
    a: c for c, arms in PLM_ARRONDISSEMENTS.items() for a in arms}

CAF = register(SourceInfo(
    key="caf_txcouv",
    title="CNAF — taux de couverture de l'accueil du jeune enfant (commune, EPCI, "
          "département, France)",
    url="https://data.caf.fr/explore/dataset/txcouv_pe_com/",
    licence="Licence Ouverte 2.0",
    attribution="Cnaf, data.caf.fr — taux de couverture d'accueil du jeune enfant",
    vintage="dernière année publiée (champ annee)",
    columns=("annee", "numcom", "nomcom", "txcouv_com", "numepci", "nomepci", "txcouv_epci",
             "numdep", "nomdep", "txcouv_dep", "national", "txcouv_nat"),
    notes=(
        "Places pour 100 enfants de moins de 3 ans ; communes de plus de 10 000 habitants "
        "seulement ; un taux peut dépasser 100."
    ),
))


def fetch_records(
    dataset: str,
    *,
    where: str | None = None,
    refine: Iterable[str] = (),
    offline: bool | None = None,
    refresh: bool = False,
) -> list[dict[str, Any]]:
    """Fetch all records of a data.caf.fr dataset, 100 per page (``limit``/``offset``).

    The offset advances by the rows received, and the rows received are counted against
    ``total_count``: a short page before the end, or the API's 10,000-record stop, ends
    the loop with what came and a « partiel » note (:func:`data_sources._http.note_partial`),
    never silently.
    """
    rows: list[dict[str, Any]] = []
    offset = 0
    total: int | None = None
    while True:
        params: list[tuple[str, Any]] = [("limit", PAGE_LIMIT), ("offset", offset)]
        if where:
            params.append(("where", where))
        params.extend(("refine", r) for r in refine)
        doc = _http.fetch_json(
            f"{BASE_URL}/{dataset}/records", source=CAF.key, params=params, offline=offline,
            refresh=refresh, check=_check_records,
        )
        batch = doc["results"]
        rows.extend(batch)
        offset += len(batch)
        announced = doc.get("total_count")
        if isinstance(announced, int) and not isinstance(announced, bool):
            total = announced
        if total is None:  # no count announced: stop at the first short page
            if len(batch) < PAGE_LIMIT:
                break
            continue
        if len(rows) >= total:
            break
        what = f"{dataset} ({', '.join(refine) or where or 'tout'})"
        if not batch or len(batch) < PAGE_LIMIT:
            _http.note_partial(f"CAF {what} : {len(rows)} ligne(s) reçue(s) sur {total} "
                               "annoncée(s) (page incomplète)")
            break
        if offset + PAGE_LIMIT > MAX_OFFSET:
            _http.note_partial(f"CAF {what} : {len(rows)} ligne(s) reçue(s) sur {total} "
                               "annoncée(s) (l'API s'arrête à 10 000)")
            break
    return rows


def _check_records(doc: Any) -> None:
    if not isinstance(doc, dict) or not isinstance(doc.get("results"), list):
        raise ValueError("not an Opendatasoft records answer (no 'results' list)")


def parse_coverage(records: list[dict[str, Any]], *, level: str) -> pd.DataFrame:
    """Turn records of one level into the tidy coverage table (pure).

    Raises
    ------
    SourceError
        When records lack the expected fields (the message names them).
    """
    if level not in DATASETS:
        raise InputError(f"level={level!r}; use one of {sorted(DATASETS)}")
    dataset, code_f, name_f, rate_f = DATASETS[level]
    if not records:
        return pd.DataFrame(columns=list(COVERAGE_COLUMNS))
    fields = set().union(*(r.keys() for r in records))
    required = ("annee", rate_f) if level == "france" else ("annee", code_f, rate_f)
    missing = [f for f in required if f not in fields]
    if missing:
        raise SourceError(
            f"{CAF.key}: dataset {dataset!r} lacks fields {missing}; found {sorted(fields)}. "
            "The CNAF changed the format: update data_sources/caf.py."
        )
    out = []
    for r in records:
        code = "FR" if level == "france" else str(r.get(code_f) or "").strip()
        name = str(r.get(name_f) or ("France" if level == "france" else "")).strip()
        if not code or re.fullmatch(r"X+", code.upper()) or re.fullmatch(r"X+", name.upper()):
            continue  # placeholder row for communes outside any EPCI
        year_m = re.match(r"\s*(\d{4})(?:\.0+)?\b", str(r.get("annee") or ""))
        rate = r.get(rate_f)
        try:
            value = float(str(rate).replace(",", ".")) if rate not in (None, "") else np.nan
        except ValueError:
            value = np.nan
        if level == "commune" and code.isdigit():
            code = code.zfill(5)
        if level == "departement" and code.isdigit():
            code = code.zfill(2)
        out.append({"level": level, "code": code, "name": name,
                    "year": int(year_m.group(1)) if year_m else -1, "rate": value})
    df = pd.DataFrame(out, columns=list(COVERAGE_COLUMNS))
    df["year"] = df["year"].astype("int64")
    df["rate"] = df["rate"].astype("float64")
    return df


def validate_coverage(df: pd.DataFrame) -> pd.DataFrame:
    """Check years, rates (>= 0, may exceed 100) and duplicates."""
    if (df["year"] < 2000).any():
        raise SourceError(f"{CAF.key}: unreadable years {df.loc[df['year'] < 2000, 'year']!r}")
    if (df["rate"] < 0).any():
        raise SourceError(f"{CAF.key}: negative rates at codes {df.loc[df['rate'] < 0, 'code']}")
    dup = df.duplicated(["level", "code", "year"])
    if dup.any():
        raise SourceError(
            f"{CAF.key}: duplicate rows for {df.loc[dup, ['code', 'year']].head().values.tolist()}"
        )
    return df.sort_values(["level", "code", "year"]).reset_index(drop=True)


def load_coverage(
    area: Territory,
    *,
    levels: Iterable[str] = ("commune", "epci"),
    epci_codes: Iterable[str] = (),
    with_history: bool = True,
    children_under3: Mapping[str, float] | None = None,
    offline: bool | None = None,
    refresh: bool = False,
) -> pd.DataFrame:
    """Load the coverage rates of the communes (and EPCI) of ``area``, all published years.

    Parameters
    ----------
    area
        Territory; its départements select the records (``refine=numdep:…``), its
        communes and ``epci_codes`` (or ``area.code`` for an EPCI) filter them.
    levels
        Some of :data:`ALL_LEVELS` (``"commune"``, ``"epci"``, ``"departement"``:
        the territory's départements, ``"france"``). A reference level that fails is
        left out with a note in ``attrs["notes"]``.
    epci_codes
        SIREN of the EPCI to keep (default: the territory itself when it is an EPCI,
        else every EPCI of its départements).
    with_history
        Also read the ``_hist`` twin datasets (earlier years). When they fail, the current
        years are kept and ``attrs["notes"]`` says so.
    children_under3
        Children under 3 per arrondissement of Paris, Lyon, Marseille (e.g. from the IRIS
        census, :func:`data_sources.iris.children_by_arrondissement`): the weights of
        their commune's rate (:func:`aggregate_arrondissements`).
    """
    deps = area.departements or tuple(sorted({c[:3] if c.startswith("97") else c[:2]
                                              for c in area.communes}))
    frames = []
    notes: list[str] = []
    for level in levels:
        if level not in DATASETS:
            raise InputError(f"levels contains {level!r}; use {sorted(DATASETS)}")
        try:
            df = _load_level(area, level, deps, epci_codes=epci_codes,
                             with_history=with_history, notes=notes, offline=offline,
                             refresh=refresh)
        except SourceError as exc:
            if level not in REFERENCE_LEVELS:
                raise
            logger.warning("%s", exc)
            what = "du département" if level == "departement" else "de la France"
            notes.append(f"taux de couverture {what} ({DATASETS[level][0]}) non chargé : "
                         f"{getattr(exc, 'fr', '') or exc}")
            continue
        frames.append(df)
    out = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=list(COVERAGE_COLUMNS))
    out, plm_notes = aggregate_arrondissements(validate_coverage(out),
                                               children_under3=children_under3)
    out.attrs["notes"] = notes + plm_notes
    return out


def _load_level(area: Territory, level: str, deps: Iterable[str], *,
                epci_codes: Iterable[str], with_history: bool, notes: list[str],
                offline: bool | None, refresh: bool) -> pd.DataFrame:
    """One level's rows for the territory (current years, and the ``_hist`` twin)."""
    dataset = DATASETS[level][0]
    by_dep = level != "france"  # the national dataset is two rows, read whole
    records: list[dict[str, Any]] = []
    for dep in (deps if by_dep else [""]):
        records += fetch_records(dataset, refine=[f'numdep:"{dep}"'] if by_dep else [],
                                 offline=offline, refresh=refresh)
    df = parse_coverage(records, level=level)
    if with_history and level != "france":
        hist: list[dict[str, Any]] = []
        try:
            for dep in deps:
                hist += fetch_records(dataset + HIST_SUFFIX, refine=[f'numdep:"{dep}"'],
                                      offline=offline, refresh=refresh)
        except SourceError as exc:
            logger.warning("%s", exc)
            notes.append(f"années antérieures ({dataset}{HIST_SUFFIX}) indisponibles")
        else:
            old = parse_coverage(hist, level=level)
            old = old[~old.set_index(["code", "year"]).index.isin(
                df.set_index(["code", "year"]).index)]
            df = pd.concat([d for d in (df, old) if len(d)] or [df], ignore_index=True)
    if level == "commune":
        arm = df["code"].map(COMMUNE_OF_ARRONDISSEMENT)
        df = df[df["code"].isin(set(area.communes)) | arm.isin(set(area.communes))]
        df = df.assign(level=np.where(df["code"].isin(COMMUNE_OF_ARRONDISSEMENT),
                                      "arrondissement", "commune"))
    elif level == "epci":
        wanted = set(epci_codes) or ({area.code} if area.kind == "epci" else set())
        if wanted:
            df = df[df["code"].isin(wanted)]
    elif level == "departement":
        df = df[df["code"].isin(set(deps))]
    return df


def aggregate_arrondissements(
    coverage: pd.DataFrame, *, children_under3: Mapping[str, float] | None = None
) -> tuple[pd.DataFrame, list[str]]:
    """Give Paris, Lyon and Marseille a commune rate from their arrondissements' rows.

    Parameters
    ----------
    coverage
        Tidy coverage table (:data:`COVERAGE_COLUMNS`) holding ``arrondissement`` rows.
    children_under3
        Children under 3 per arrondissement code (the weights). Without a weight for
        every arrondissement of a year, the commune gets no rate that year (unknown,
        never an unweighted mean) and a note gives the arrondissements' range.

    Returns
    -------
    coverage : pandas.DataFrame
        The table with a ``commune`` row added per PLM commune and year that had none.
    notes : list of str
        French notes, one per commune and year left without a rate.

    Examples
    --------
    >>> cov = pd.DataFrame({"level": ["arrondissement"] * 2, "code": ["69381", "69382"],
    ...                     "name": ["LYON 1ER", "LYON 2E"], "year": [2023, 2023],
    ...                     "rate": [60.0, 80.0]})
    >>> out, notes = aggregate_arrondissements(cov, children_under3={"69381": 300.0,
    ...                                                              "69382": 100.0})
    >>> out.loc[out["level"] == "commune", ["code", "rate"]].values.tolist()
    [['69123', 65.0]]
    >>> aggregate_arrondissements(cov)[1][0][:60]
    'Lyon : taux de couverture CAF 2023 publié par arrondissement'
    """
    weights = dict(children_under3 or {})
    arms = coverage[coverage["level"].eq("arrondissement") & coverage["rate"].notna()]
    have = set(zip(coverage.loc[coverage["level"].eq("commune"), "code"],
                   coverage.loc[coverage["level"].eq("commune"), "year"], strict=True))
    rows, notes = [], []
    names = {"75056": "Paris", "69123": "Lyon", "13055": "Marseille"}
    for key, g in arms.groupby([arms["code"].map(COMMUNE_OF_ARRONDISSEMENT), "year"]):
        commune, year = str(key[0]), int(str(key[1]))
        if (commune, year) in have:
            continue
        w = g["code"].map(weights)
        if w.notna().all() and float(w.sum()) > 0:
            rate = float((g["rate"] * w).sum() / w.sum())
            rows.append({"level": "commune", "code": commune, "name": names[commune].upper(),
                         "year": year, "rate": rate})
            continue
        notes.append(
            f"{names[commune]} : taux de couverture CAF {year} publié par arrondissement "
            f"seulement ({len(g)} arrondissement(s), de {g['rate'].min():.1f} à "
            f"{g['rate'].max():.1f} places pour 100 enfants) ; sans le nombre d'enfants de "
            "chacun, pas de taux communal (non connu)."
        )
    if not rows:
        return coverage, notes
    out = pd.concat([coverage, pd.DataFrame(rows, columns=list(COVERAGE_COLUMNS))],
                    ignore_index=True)
    out["year"] = out["year"].astype("int64")
    return out.sort_values(["level", "code", "year"]).reset_index(drop=True), notes
