"""The territory's context: births over ten years, CAF coverage, quartiers prioritaires.

Three findings a diagnosis states with their year, computed once here (the PDF, the app
and the exports read them from :attr:`diagnosis.pipeline.Diagnosis.context`):

- :func:`compute_births_trend`: live births of each commune over the last ten years
  published (``births_<year>`` columns), the territory's total per year and the trend;
- :func:`compute_caf_coverage`: the CNAF childcare coverage rate of each commune (communes
  of 10,000+ inhabitants only) and of the EPCI, with its year;
- :func:`compute_qpv`: the quartiers prioritaires (QPV 2024) of the territory and the
  families living in them, counted from the 200 m cells (children aged 0-3 of the cells
  whose centre lies in a QPV) or the IRIS (children aged 0-2, by the share of the IRIS's
  area inside the QPV); with only the list of QPV per commune, « la commune compte un
  QPV », without a count.

Everything unknown stays unknown (NaN, ``None``), never 0: a commune whose births are
secret has no trend, a coverage rate not published is not a zero rate, a territory whose
QPV were not loaded is not a territory without QPV.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd

from diagnosis.errors import InputError
from diagnosis.schema import Territory
from diagnosis.settings import METRIC_CRS

#: Years of births read for the trend.
TREND_YEARS = 10
#: Years averaged at each end of the window (small communes have noisy yearly births).
TREND_ENDS = 3
#: A change within ± this share is « stable ».
STABLE_SHARE = 0.05

_BIRTHS_RE = re.compile(r"births_(\d{4})")


@dataclass(frozen=True)
class BirthsTrend:
    """Births per commune and year over the window, and their trend.

    Attributes
    ----------
    years
        The years of the window (at most :data:`TREND_YEARS`, latest published last).
    by_commune
        ``code_insee, name, births_<year>…, first_mean, last_mean, change_pct, trend``;
        ``trend`` is « hausse », « baisse », « stable » or « non connue ».
    territory
        ``year, births, communes_known, communes_total``; ``births`` is NaN for a year
        where a commune's figure is missing (never a partial sum shown as a total).
    change_pct
        Change of the territory's births between the first and last
        :data:`TREND_ENDS` years of the window (%), or ``None`` when unknown.
    trend
        The territory's trend (same words as per commune).
    """

    years: tuple[int, ...]
    by_commune: pd.DataFrame
    territory: pd.DataFrame
    change_pct: float | None
    trend: str

    @property
    def period_fr(self) -> str:
        """« 2015-2024 »."""
        return f"{self.years[0]}-{self.years[-1]}" if self.years else ""


@dataclass(frozen=True)
class CafCoverage:
    """CNAF childcare coverage rates (places per 100 children under 3), with their year.

    Attributes
    ----------
    year
        Year of the rates, or ``None`` when none was loaded.
    by_commune
        ``code_insee, name, rate`` (NaN: not published for that commune).
    epci_rate
        The rate of the territory's EPCI (first one of its communes), if known.
    departement_rate, france_rate
        The rates of the territory's (first) département and of France, if loaded.
    """

    year: int | None
    by_commune: pd.DataFrame
    epci_rate: float | None
    departement_rate: float | None = None
    france_rate: float | None = None


@dataclass(frozen=True)
class QpvSummary:
    """The quartiers prioritaires of the territory and the families living in them.

    Attributes
    ----------
    basis
        ``"contours"`` (outlines: counts possible), ``"liste communale"`` (which commune
        has a QPV, no outline) or ``"non chargé"`` (unknown).
    qpv
        ``code_qp, lib_qp, communes`` and, with outlines and cells or IRIS,
        ``population``, ``children`` (estimates).
    by_commune
        ``code_insee, name, qpv_count, qpv_names, children_in_qpv, children_share``.
    children_basis
        What ``children`` counts: « enfants de 0 à 3 ans (carreaux Filosofi) »,
        « enfants de 0 à 2 ans (IRIS, au prorata de la surface) » or ``""`` (no count).
    """

    basis: str
    qpv: pd.DataFrame
    by_commune: pd.DataFrame
    children_basis: str = ""

    @property
    def statements_fr(self) -> list[str]:
        """One French sentence per commune with a QPV (for the PDF and the app)."""
        if self.basis == "non chargé":
            return ["Quartiers prioritaires (QPV) non chargés : non connus."]
        rows = self.by_commune[self.by_commune["qpv_count"] > 0]
        if rows.empty:
            return ["Aucun quartier prioritaire de la politique de la ville (QPV 2024) dans "
                    "le territoire."]
        out = []
        for r in rows.to_dict("records"):
            text = f"{r['name']!s} compte {int(float(r['qpv_count']))} QPV ({r['qpv_names']!s})"
            kids, share = float(r["children_in_qpv"]), float(r["children_share"])
            if self.children_basis and np.isfinite(kids):
                text += f" : environ {kids:.0f} {self.children_basis} y vivent"
                if np.isfinite(share):
                    text += f" ({100 * share:.0f} % de ceux de la commune)"
            out.append(text + ".")
        return out


@dataclass(frozen=True)
class TerritoryContext:
    """Births trend, CAF coverage and QPV of a territory (each ``None`` when unknown)."""

    births_trend: BirthsTrend | None
    caf_coverage: CafCoverage | None
    qpv: QpvSummary | None
    notes: tuple[str, ...] = field(default=())


def _trend_word(change: float | None) -> str:
    """« hausse », « baisse », « stable » or « non connue ».

    Examples
    --------
    >>> _trend_word(0.12), _trend_word(-0.2), _trend_word(0.01), _trend_word(None)
    ('hausse', 'baisse', 'stable', 'non connue')
    """
    if change is None or not np.isfinite(change):
        return "non connue"
    if change > STABLE_SHARE:
        return "hausse"
    if change < -STABLE_SHARE:
        return "baisse"
    return "stable"


def compute_births_trend(communes: pd.DataFrame, *, years: int = TREND_YEARS
                         ) -> BirthsTrend | None:
    """Births of the last ``years`` published years per commune and for the territory.

    Parameters
    ----------
    communes
        The territory's communes with ``code_insee``, ``name`` and ``births_<year>``.
    years
        Length of the window (the latest years with at least one value).

    Returns
    -------
    BirthsTrend or None
        ``None`` when no ``births_<year>`` column holds a value.
    """
    if years < 2:
        raise InputError(f"years={years!r} must be at least 2", argument="years",
                         value=years)
    published = sorted(int(m.group(1)) for c in communes.columns
                       if (m := _BIRTHS_RE.fullmatch(str(c)))
                       and pd.to_numeric(communes[c], errors="coerce").notna().any())
    if not published:
        return None
    window = tuple(published[-years:])
    cols = [f"births_{y}" for y in window]
    values = communes[cols].apply(pd.to_numeric, errors="coerce").astype("float64")
    ends = min(TREND_ENDS, max(1, len(window) // 2))
    first = values[cols[:ends]].mean(axis=1, skipna=False)
    last = values[cols[-ends:]].mean(axis=1, skipna=False)
    change = (last - first) / first.where(first > 0)
    by_commune = pd.DataFrame({"code_insee": communes["code_insee"].astype(str).to_numpy(),
                               "name": communes.get("name", communes["code_insee"]).to_numpy()})
    for c in cols:
        by_commune[c] = values[c].to_numpy()
    by_commune["first_mean"] = first.to_numpy()
    by_commune["last_mean"] = last.to_numpy()
    by_commune["change_pct"] = (100 * change).to_numpy()
    by_commune["trend"] = [_trend_word(None if pd.isna(x) else float(x)) for x in change]
    known = values.notna().sum(axis=0)
    total = values.sum(axis=0, min_count=1).where(known == len(values))
    territory = pd.DataFrame({"year": list(window), "births": total.to_numpy(),
                              "communes_known": known.to_numpy().astype(int),
                              "communes_total": len(values)})
    t_first = territory["births"].iloc[:ends].mean(skipna=False)
    t_last = territory["births"].iloc[-ends:].mean(skipna=False)
    t_change = None if len(window) < 2 or not (
        np.isfinite(t_first) and np.isfinite(t_last) and t_first > 0) \
        else float((t_last - t_first) / t_first)
    if len(window) < 2:  # one year is not a trend
        by_commune["change_pct"] = np.nan
        by_commune["trend"] = "non connue"
    return BirthsTrend(window, by_commune.sort_values("code_insee").reset_index(drop=True),
                       territory, None if t_change is None else 100 * t_change,
                       _trend_word(t_change))


def compute_caf_coverage(communes: pd.DataFrame) -> CafCoverage | None:
    """The CAF coverage columns of the communes (``caf_coverage_*``) as one finding.

    ``None`` when the communes carry no CAF column (the source was not loaded).
    """
    if "caf_coverage_rate" not in communes.columns:
        return None
    communes = communes.sort_values("code_insee")  # « first »: the first département's
    nan = pd.Series(np.nan, index=communes.index)
    years = pd.to_numeric(communes.get("caf_coverage_year", nan), errors="coerce").dropna()
    rate = pd.to_numeric(communes["caf_coverage_rate"], errors="coerce")
    by_commune = pd.DataFrame({"code_insee": communes["code_insee"].astype(str).to_numpy(),
                               "name": communes.get("name", communes["code_insee"]).to_numpy(),
                               "rate": rate.to_numpy()})
    def first(col: str) -> float | None:
        values = pd.to_numeric(communes.get(col, nan), errors="coerce")
        return float(values.dropna().iloc[0]) if values.notna().any() else None

    return CafCoverage(int(years.max()) if len(years) else None,
                       by_commune.sort_values("code_insee").reset_index(drop=True),
                       first("caf_coverage_rate_epci"),
                       departement_rate=first("caf_coverage_rate_dep"),
                       france_rate=first("caf_coverage_rate_france"))


def _in_polygons(points: gpd.GeoSeries, polygons: gpd.GeoDataFrame) -> pd.Series:
    """For each point, the ``code_qp`` of the polygon holding it ("" if none)."""
    pts = gpd.GeoDataFrame(geometry=points.to_numpy(), crs=points.crs).to_crs(METRIC_CRS)
    polys = polygons[["code_qp", "geometry"]].to_crs(METRIC_CRS)
    hit = gpd.sjoin(pts, polys, how="left", predicate="within")
    hit = hit[~hit.index.duplicated(keep="first")]
    codes: pd.Series = hit["code_qp"].fillna("").reindex(range(len(pts)), fill_value="")
    return codes


def compute_qpv(
    communes: pd.DataFrame,
    qpv: gpd.GeoDataFrame | None,
    *,
    grid: gpd.GeoDataFrame | None = None,
    iris: gpd.GeoDataFrame | None = None,
) -> QpvSummary:
    """The QPV of the territory's communes and the young children living in them.

    Parameters
    ----------
    communes
        The territory's communes (``code_insee``, ``name``).
    qpv
        :func:`data_sources.qpv.load_qpv` output (``code_qp, lib_qp, communes, basis,
        geometry``), or ``None`` when not loaded.
    grid
        200 m cells (``ind``, ``ind_0_3``, ``code_insee``, polygons): the cells whose
        centre lies in a QPV count.
    iris
        IRIS (``pop_0_2``, ``population``, ``code_insee``, polygons): each counts by the
        share of its area inside a QPV (used without cells).
    """
    base = pd.DataFrame({"code_insee": communes["code_insee"].astype(str).to_numpy(),
                         "name": communes.get("name", communes["code_insee"]).to_numpy()})
    empty = base.assign(qpv_count=np.nan, qpv_names="", children_in_qpv=np.nan,
                        children_share=np.nan)
    if qpv is None:
        return QpvSummary("non chargé", pd.DataFrame(columns=["code_qp", "lib_qp",
                                                              "communes"]), empty)
    basis = str(qpv.attrs.get("basis") or (qpv["basis"].iloc[0] if len(qpv) else "contours"))
    table = pd.DataFrame(qpv[["code_qp", "lib_qp", "communes"]]).reset_index(drop=True)
    per: dict[str, list[tuple[str, str]]] = {}
    for r in table.itertuples(index=False):
        for c in str(r.communes).split(","):
            per.setdefault(c, []).append((str(r.code_qp), str(r.lib_qp)))
    out = base.copy()
    out["qpv_count"] = [float(len(per.get(c, []))) for c in out["code_insee"]]
    out["qpv_names"] = [", ".join(n or code for code, n in per.get(c, []))
                        for c in out["code_insee"]]
    out["children_in_qpv"] = np.nan
    out["children_share"] = np.nan
    children_basis = ""
    outlines = qpv[qpv.geometry.notna() & ~qpv.geometry.is_empty] if len(qpv) else qpv
    if basis == "contours" and len(outlines) and grid is not None and len(grid) \
            and "ind_0_3" in grid.columns:
        centres = grid.geometry.to_crs(METRIC_CRS).centroid
        code = _in_polygons(centres, outlines).to_numpy()
        kids = pd.to_numeric(grid["ind_0_3"], errors="coerce").to_numpy()
        pop = pd.to_numeric(grid["ind"], errors="coerce").to_numpy()
        com = grid["code_insee"].astype(str).to_numpy()
        children_basis = "enfants de 0 à 3 ans (carreaux Filosofi)"
        table["population"] = [float(np.nansum(pop[code == q])) for q in table["code_qp"]]
        table["children"] = [float(np.nansum(kids[code == q])) for q in table["code_qp"]]
        for i, c in enumerate(out["code_insee"]):
            mine = com == c
            if not mine.any():
                continue
            inside = float(np.nansum(kids[mine & (code != "")]))
            total = float(np.nansum(kids[mine]))
            out.loc[i, "children_in_qpv"] = inside
            out.loc[i, "children_share"] = inside / total if total > 0 else np.nan
    elif basis == "contours" and len(outlines) and iris is not None and len(iris) \
            and "pop_0_2" in iris.columns:
        ir = iris.to_crs(METRIC_CRS).reset_index(drop=True)
        polys = outlines[["code_qp", "geometry"]].to_crs(METRIC_CRS)
        parts = gpd.overlay(ir[["code_insee", "pop_0_2", "population", "geometry"]]
                            .assign(_area=ir.geometry.area, _row=range(len(ir))),
                            polys, how="intersection", keep_geom_type=True)
        share = parts.geometry.area / parts["_area"].where(parts["_area"] > 0)
        parts["children"] = pd.to_numeric(parts["pop_0_2"], errors="coerce") * share
        parts["pop"] = pd.to_numeric(parts["population"], errors="coerce") * share
        children_basis = "enfants de 0 à 2 ans (IRIS, au prorata de la surface)"
        table["population"] = table["code_qp"].map(parts.groupby("code_qp")["pop"].sum())
        table["children"] = table["code_qp"].map(parts.groupby("code_qp")["children"].sum())
        kids_by_com = pd.to_numeric(ir["pop_0_2"], errors="coerce").groupby(
            ir["code_insee"].astype(str)).sum(min_count=1)
        inside = parts.groupby(parts["code_insee"].astype(str))["children"].sum()
        for i, c in enumerate(out["code_insee"]):
            if c not in kids_by_com.index:
                continue
            n = float(inside.get(c, 0.0))
            total = float(kids_by_com[c])
            out.loc[i, "children_in_qpv"] = n
            out.loc[i, "children_share"] = n / total if total > 0 else np.nan
    return QpvSummary(basis, table, out.sort_values("code_insee").reset_index(drop=True),
                      children_basis)


def compute_context(
    territory: Territory,
    communes: pd.DataFrame,
    *,
    qpv: gpd.GeoDataFrame | None = None,
    grid: gpd.GeoDataFrame | None = None,
    iris: gpd.GeoDataFrame | None = None,
    years: int = TREND_YEARS,
) -> TerritoryContext:
    """Births trend, CAF coverage and QPV of ``territory`` (its own communes only)."""
    own = communes[communes["code_insee"].astype(str).isin(set(territory.communes))]
    notes: list[str] = []
    trend = compute_births_trend(own, years=years)
    if trend is None:
        notes.append("Naissances par année non chargées : tendance non connue.")
    caf = compute_caf_coverage(own)
    if caf is None:
        notes.append("Taux de couverture CAF non chargés : non connus.")
    q = compute_qpv(own, qpv, grid=_own(grid, territory.communes),
                    iris=_own(iris, territory.communes))
    if qpv is not None:
        notes.extend(str(n) for n in qpv.attrs.get("notes", ()))
    return TerritoryContext(trend, caf, q, tuple(notes))


def _own(layer: gpd.GeoDataFrame | None, codes: Iterable[str]) -> gpd.GeoDataFrame | None:
    if layer is None or "code_insee" not in layer.columns:
        return layer
    return layer[layer["code_insee"].astype(str).isin(set(codes))]
