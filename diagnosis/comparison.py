"""Comparing territories side by side (for the federation and for the report's context).

:func:`compare_territories` turns a list of :class:`~diagnosis.overview.Overview`
results into one tidy table, one row per territory, each row a pure function of that
territory's own diagnosis (:func:`comparison_row`). :func:`split_territory` lists the
EPCIs or communes of a territory from the COG tables, flagging EPCIs that straddle a
département border. :func:`build_comparison_chart` (Altair, for the app) and
:func:`render_comparison_chart` (matplotlib PNG, for the PDF) draw one indicator.

Columns of the comparison table
-------------------------------
``code``, ``name``, ``kind``, ``threshold_m``, ``n_communes`` (communes with loaded
data), ``n_communes_total`` (communes of the territory in the COG),
``n_communes_missing``, ``n_communes_births_known``, ``coverage_partial`` (computed:
some communes have no loaded data or no known births; figures cover only the others),
``coverage_note`` (French), ``births_2024``,
``births_mean_2016_2021``, ``population_2022``, ``under3_estimate`` (3 × births 2024,
an estimate), per analysed type ``t``: ``n_<t>`` (facilities in the territory; empty
when none is known and no source lists the type completely),
``places_<t>`` (known places, NaN when none known), ``births_within_<t>``,
``share_within_<t>`` (share of births 2024 of communes whose town hall is within the
threshold of a facility of the type, crow-fly; NaN when not known, a lower bound when
``offer_status_<t>`` is ``"partial"``), ``offer_status_<t>`` (``complete``,
``partial`` or ``unknown``: :func:`diagnosis.overview.facility_coverage`),
``communes_without_<t>``; then
``priority_score`` and ``cohort_capacity`` (NaN unless given through ``extras``) and the
rankings ``rank_births_2024`` (1 = most births), ``rank_share_within_<t>`` (1 = lowest
share: least served) and ``rank_priority_score`` (1 = highest score).

See Also
--------
guides/indicateurs.md : definition of every indicator.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from diagnosis.errors import InputError
from diagnosis.needs import dated_label, year_of
from diagnosis.overview import ANALYSED_TYPES, Overview
from diagnosis.schema import FACILITY_TYPES, Territory, facility_label, isin_codes
from diagnosis.settings import SPLITS
from diagnosis.territory import CogTables, resolve_territory

#: Columns filled from ``extras`` when other modules computed them (NaN otherwise).
EXTRA_COLUMNS: tuple[str, ...] = ("priority_score", "cohort_capacity")

#: French labels of the comparison metrics that are not per type.
METRIC_LABELS: dict[str, str] = {
    "births_2024": "Naissances 2024",
    "births_mean_2016_2021": "Naissances par an (moyenne 2016-2021)",
    "population_2022": "Population 2022",
    "under3_estimate": "Moins de 3 ans (estimation : 3 × naissances 2024)",
    "n_communes": "Communes avec données",
    "priority_score": "Score de priorité",
    "cohort_capacity": "Capacité en groupes de pairs",
    "coverage_partial": "Communes couvertes par les données",
    "births_year": "Année des naissances",
    "population_year": "Année de la population",
    "code": "Code",
    "name": "Territoire",
    "kind": "Type de territoire",
    "threshold_m": "Distance « à portée » (m, à vol d'oiseau)",
    "n_communes_total": "Communes du territoire",
    "n_communes_missing": "Communes sans données",
    "n_communes_births_known": "Communes aux naissances connues",
    "coverage_note": "Remarque sur les données",
}
#: French words of the territory kinds.
KIND_LABELS: dict[str, str] = {"commune": "commune", "epci": "intercommunalité",
                               "departement": "département", "region": "région",
                               "custom": "territoire sur mesure", "pays": "pays",
                               "france": "pays"}



def metric_label(metric: str, *, years: dict[str, int] | None = None) -> str:
    """French label of a comparison column (per-type columns included).

    ``years`` (:func:`diagnosis.needs.data_years`, or :func:`comparison_years`): the
    years of the INSEE figures, printed instead of the 2025 edition's.

    Examples
    --------
    >>> metric_label("share_within_eaje")
    'Part des naissances à portée : Crèches (EAJE)'
    >>> metric_label("births_2024"), metric_label("births_2024", years={"births_2024": 2022})
    ('Naissances 2024', 'Naissances 2022')
    """
    if metric in METRIC_LABELS:
        label = dated_label(metric, METRIC_LABELS[metric], years)
        if metric == "under3_estimate" and years:
            label = label.replace("naissances 2024",
                                  f"naissances {year_of(years, 'births_2024')}")
        return label
    prefixes = {
        "share_within_": "Part des naissances à portée : ",
        "births_within_": "Naissances à portée : ",
        "communes_without_": "Communes sans : ",
        "offer_status_": "Offre connue : ",
        "places_": "Places connues : ",
        "n_": "Nombre : ",
    }
    for prefix, text in prefixes.items():
        t = metric.removeprefix(prefix)
        if metric.startswith(prefix) and t in FACILITY_TYPES:
            return text + facility_label(t, plural=True)
    return metric


def french_comparison_table(df: pd.DataFrame) -> pd.DataFrame:
    """The comparison for a spreadsheet: French headers, values rounded to their meaning.

    Counts of births, people, places and communes to the unit; shares in % to the
    tenth; ``coverage_partial`` and ``offer_status_<t>`` in words; ranks headed « Rang : ».
    Unknown values stay empty (never 0, never ``False``).

    Examples
    --------
    >>> t = pd.DataFrame({"code": ["44"], "kind": ["departement"],
    ...                   "births_mean_2016_2021": [388.33333333333337],
    ...                   "share_within_eaje": [0.2407932], "coverage_partial": [False],
    ...                   "offer_status_eaje": ["partial"], "rank_births_2024": [1]})
    >>> french_comparison_table(t).iloc[0].astype(str).tolist()
    ['44', 'département', '388', '24.1', 'complètes', 'partielle', '1']
    """
    from diagnosis.overview import COVERAGE_LABELS

    out = pd.DataFrame(index=df.index)
    for col in df.columns:
        v = df[col]
        if col == "kind":
            out[col] = v.map(lambda k: KIND_LABELS.get(str(k), str(k)))
        elif col == "coverage_partial":
            out[col] = v.map({True: "partielles", False: "complètes"})
        elif col.startswith("offer_status_"):
            out[col] = v.map(lambda k: COVERAGE_LABELS.get(str(k), str(k)))
        elif col.startswith("share_within_") or col.startswith("share_"):
            out[col] = (100 * pd.to_numeric(v, errors="coerce")).round(1)
        elif col in ("priority_score",):
            out[col] = pd.to_numeric(v, errors="coerce").round(1)
        elif pd.api.types.is_bool_dtype(v):
            out[col] = v.map({True: "oui", False: "non"})
        elif pd.api.types.is_numeric_dtype(v):
            out[col] = pd.to_numeric(v, errors="coerce").round(0).astype("Int64")
        else:
            out[col] = v
    labels = {}
    years = comparison_years(df)
    for col in df.columns:
        if col.startswith("rank_"):
            labels[col] = "Rang : " + metric_label(col.removeprefix("rank_"), years=years)
        else:
            label = metric_label(col, years=years)
            labels[col] = label + (" (%)" if col.startswith("share_") else "")
    return out.rename(columns=labels)


def _departement_of(code_insee: str) -> str:
    return code_insee[:3] if code_insee.startswith("97") else code_insee[:2]


def comparison_row(overview: Overview, *,
                   extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """One row of the comparison table: figures of one territory's own diagnosis.

    Parameters
    ----------
    overview
        The territory's diagnosis (:func:`diagnosis.overview.compute_overview`).
    extra
        Optional figures computed elsewhere (``priority_score``, ``cohort_capacity``).

    Returns
    -------
    dict
        See the module's column list (rankings excluded: they need all rows).
    """
    s = overview.summary
    t = overview.territory
    missing = list(s.get("communes_missing", []))
    no_births = list(s.get("communes_births_unknown", []))
    deps = sorted({_departement_of(c) for c in missing})
    notes = []
    if missing:
        notes.append(f"{len(missing)} commune(s) sur {len(t.communes)} sans données chargées "
                     f"(département(s) {', '.join(deps)})")
    if no_births:
        notes.append(f"{len(no_births)} commune(s) sur {len(t.communes)} sans naissances "
                     f"connues ({', '.join(no_births[:5])}{' …' if len(no_births) > 5 else ''})")
    note = " ; ".join(notes) + " : chiffres partiels" if notes else ""

    def num(v: Any) -> float:
        return float("nan") if v is None else float(v)

    row: dict[str, Any] = {
        "code": t.code, "name": t.name, "kind": t.kind,
        "threshold_m": float(s["threshold_m"]),
        "n_communes": int(s["n_communes"]),
        "n_communes_total": len(t.communes),
        "n_communes_missing": int(s.get("n_communes_missing", len(missing))),
        "n_communes_births_known": int(s.get("n_communes_births_known", s["n_communes"])),
        "coverage_partial": bool(missing or no_births),
        "coverage_note": note,
        "births_2024": num(s.get("births_2024")),
        "births_mean_2016_2021": num(s.get("births_mean_2016_2021")),
        "population_2022": num(s.get("population_2022")),
        "under3_estimate": num(s.get("under3_estimate")),
        # the years of the INSEE figures of this territory (files of any edition)
        "births_year": year_of(s.get("data_years"), "births_2024"),
        "population_year": year_of(s.get("data_years"), "population_2022"),
    }
    for typ, fac in s["facilities"].items():
        w = s["births_within_threshold"][typ]
        status = str(w.get("status", fac.get("status", "unknown")))
        # a count of 0 is a fact only with a source listing the type completely
        row[f"n_{typ}"] = (int(fac["count"]) if fac["count"] or status == "complete"
                           else None)
        row[f"places_{typ}"] = num(fac["places_known"])
        row[f"births_within_{typ}"] = num(w["births"])
        row[f"share_within_{typ}"] = num(w["share"])
        row[f"offer_status_{typ}"] = status
        row[f"communes_without_{typ}"] = len(s["communes_without"][typ])
    for col in EXTRA_COLUMNS:
        row[col] = num((extra or {}).get(col))
    return row


def comparison_years(df: pd.DataFrame) -> dict[str, int] | None:
    """The years of a comparison's INSEE figures when every territory shares them.

    Examples
    --------
    >>> comparison_years(pd.DataFrame({"births_year": [2022, 2022],
    ...                                "population_year": [2021, 2021]}))["births_2024"]
    2022
    >>> comparison_years(pd.DataFrame({"births_year": [2022, 2024]})) is None
    True
    """
    out: dict[str, int] = {}
    for col, key in (("births_year", "births_2024"), ("population_year", "population_2022")):
        if col not in df:
            continue
        vals = pd.to_numeric(df[col], errors="coerce").dropna().unique()
        if len(vals) > 1:
            return None
        if len(vals):
            out[key] = int(vals[0])
    if not out:
        return None
    if "births_2024" in out:
        out["under3_estimate"] = out["births_2024"]
    if "population_2022" in out:
        out["density_per_km2"] = out["population_2022"]
    return out


def _rank(values: pd.Series, *, ascending: bool) -> pd.Series:
    return values.rank(method="min", ascending=ascending, na_option="keep").astype("Int64")


def compare_territories(
    overviews: Iterable[Overview],
    *,
    extras: Mapping[str, Mapping[str, Any]] | None = None,
) -> pd.DataFrame:
    """Compare territories: one row per diagnosis, with rankings.

    Parameters
    ----------
    overviews
        Diagnoses computed with the same threshold.
    extras
        Territory code -> ``{"priority_score": …, "cohort_capacity": …}`` when the
        gaps and cohorts analyses were run.

    Returns
    -------
    pandas.DataFrame
        Columns listed in the module docstring, rows in the input order.

    Raises
    ------
    InputError
        No overview, duplicated territory codes or different thresholds.
    """
    ovs = list(overviews)
    if not ovs:
        raise InputError("overviews is empty; give at least one territory's diagnosis")
    rows = [comparison_row(o, extra=(extras or {}).get(o.territory.code)) for o in ovs]
    df = pd.DataFrame(rows)
    dup = df["code"][df["code"].duplicated()].tolist()
    if dup:
        raise InputError(f"overviews holds territories {dup!r} twice; give each once")
    thresholds = sorted(set(df["threshold_m"]))
    if len(thresholds) > 1:
        raise InputError(
            f"overviews were computed with different thresholds {thresholds!r} m; compute "
            "them all with the same threshold_m to compare them"
        )
    types = [t for t in ANALYSED_TYPES if f"n_{t}" in df] + \
        [t for t in FACILITY_TYPES if t not in ANALYSED_TYPES and f"n_{t}" in df]
    for t in types:
        df[f"n_{t}"] = pd.to_numeric(df[f"n_{t}"], errors="coerce").astype("Int64")
        df[f"communes_without_{t}"] = df[f"communes_without_{t}"].fillna(0).astype(int)
    df["rank_births_2024"] = _rank(df["births_2024"], ascending=False)
    for t in types:
        df[f"rank_share_within_{t}"] = _rank(df[f"share_within_{t}"], ascending=True)
    df["rank_priority_score"] = _rank(df["priority_score"], ascending=False)
    return df


def split_territory(territory: Territory, cog: CogTables, *, by: str) -> list[Territory]:
    """The EPCIs or communes of a territory, each resolved as a full territory.

    Parameters
    ----------
    territory
        A département, an EPCI or a commune.
    cog
        COG tables (:func:`data_sources.cog.load_cog`).
    by
        ``"epci"``: the EPCIs of the territory's communes (an EPCI that straddles a
        département border is returned whole, with all its communes: its diagnosis then
        flags the communes without loaded data); ``"commune"``: its communes;
        ``"departement"``, ``"region"``: its départements or régions (the national view).

    Returns
    -------
    list of Territory
        Sorted by code.

    Raises
    ------
    InputError
        Unknown ``by``.
    """
    if by not in SPLITS:
        raise InputError(f"by={by!r} is not a split; use one of {list(SPLITS)}")
    if by == "commune":
        return [resolve_territory(c, cog) for c in sorted(territory.communes)]
    com = cog.communes
    rows = com.loc[com["kind"].eq("commune") & isin_codes(com["code"], territory.communes)]
    if by == "departement":
        return [resolve_territory(d, cog) for d in sorted(set(rows["dep_code"].astype(str)
                                                                  .tolist()))]
    if by == "region":
        codes = sorted(c for c in set(rows["region_code"].astype(str).tolist())
                       if c and c != "nan")
        return [resolve_territory(f"région {c}", cog) for c in codes]
    codes = sorted(c for c in set(rows["epci_code"].astype(str).tolist()) if c and c != "nan")
    return [resolve_territory(c, cog) for c in codes]


def _check_metric(df: pd.DataFrame, metric: str) -> None:
    if metric not in df.columns:
        numeric = [c for c in df.columns if pd.api.types.is_numeric_dtype(df[c])]
        raise InputError(f"metric={metric!r} is not a column of the comparison; use one of "
                         f"{numeric}")


#: d3-format's French locale (Vega-Lite ``config.locale.number``): "1 000", "2,5", "50 %",
#: where Vega's default is English ("1,000", "50%"). Thousands: narrow no-break space.
FRENCH_NUMBER_LOCALE: dict[str, Any] = {"decimal": ",", "thousands": "\u202f",
                                        "grouping": [3], "currency": ["", "\u00a0€"],
                                        "percent": "\u202f%"}


def build_comparison_chart(df: pd.DataFrame, *, metric: str = "births_2024",
                           highlight: str | None = None) -> Any:
    """Horizontal bar chart (Altair) of one metric, territories sorted by value.

    Bars of territories with partial data coverage are drawn lighter; the territory
    ``highlight`` (a code) in another colour. Returns an ``altair.Chart``.
    """
    import altair as alt

    _check_metric(df, metric)
    label = metric_label(metric)
    data = df.loc[:, ["code", "name", metric, "coverage_partial", "coverage_note"]].copy()
    data["statut"] = np.where(data["code"].eq(highlight or ""), "territoire étudié",
                              np.where(data["coverage_partial"], "couverture partielle",
                                       "couverture complète"))
    is_share = metric.startswith("share_within_")
    axis = alt.Axis(format=".0%") if is_share else alt.Axis(format=",.0f")
    return alt.Chart(data).mark_bar().encode(
        x=alt.X(f"{metric}:Q", title=label, axis=axis),
        y=alt.Y("name:N", sort="-x", title=None),
        color=alt.Color("statut:N", title="Statut", scale=alt.Scale(
            domain=["territoire étudié", "couverture complète", "couverture partielle"],
            range=["#D55E00", "#0072B2", "#9ECAE1"])),
        tooltip=[alt.Tooltip("name:N", title="Territoire"),
                 alt.Tooltip("code:N", title="Code"),
                 alt.Tooltip(f"{metric}:Q", title=label, format=".0%" if is_share else ",.0f"),
                 alt.Tooltip("coverage_note:N", title="Couverture")],
    ).properties(title=label, usermeta={"embedOptions": {"renderer": "svg"}}).configure(
        locale=alt.Locale(number=alt.NumberLocale(**FRENCH_NUMBER_LOCALE)))


def render_comparison_chart(df: pd.DataFrame, *, metric: str = "births_2024",
                            highlight: str | None = None, title: str | None = None,
                            attribution: str = "", fmt: str = "png") -> bytes:
    """Static horizontal bar chart (PNG, or JPEG with ``fmt="jpeg"``) of one metric."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    from diagnosis.static_maps import MAP_DPI, save_figure

    _check_metric(df, metric)
    data = df.sort_values(metric, ascending=True, na_position="first")
    n = len(data)
    # the maps' resolution: the chart is printed as wide as a map
    fig = Figure(figsize=(6.7, max(2.0, 0.8 + 0.22 * n)), dpi=MAP_DPI)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0.42, 0.12 if n > 6 else 0.2, 0.54, 0.78 if n > 6 else 0.65))
    values = pd.to_numeric(data[metric], errors="coerce").to_numpy(dtype=float)
    is_share = metric.startswith("share_within_")
    shown = values * 100 if is_share else values
    colors = ["#D55E00" if c == highlight else ("#9ECAE1" if p else "#0072B2")
              for c, p in zip(data["code"], data["coverage_partial"], strict=True)]
    hatches = ["///" if p else "" for p in data["coverage_partial"]]
    bars = ax.barh(range(n), np.nan_to_num(shown), color=colors)
    for bar, hatch in zip(bars, hatches, strict=True):
        bar.set_hatch(hatch)
    names = [str(x) if len(str(x)) <= 45 else str(x)[:44] + "…" for x in data["name"]]
    ax.set_yticks(range(n), labels=names, fontsize=6.5)
    ax.tick_params(axis="x", labelsize=6.5)
    ax.set_xlabel(metric_label(metric) + (" (%)" if is_share else ""), fontsize=7)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    for i, v in enumerate(shown):
        text = "n.d." if not np.isfinite(v) else (f"{v:.0f} %" if is_share
                                                  else f"{v:,.0f}".replace(",", "\u202f"))
        ax.text(np.nan_to_num(v), i, " " + text, va="center", fontsize=6)
    handles = [Patch(facecolor="#0072B2", label="couverture complète")]
    if data["coverage_partial"].any():
        handles.append(Patch(facecolor="#9ECAE1", hatch="///",
                             label="couverture partielle (communes sans données)"))
    if highlight is not None and data["code"].eq(highlight).any():
        handles.insert(0, Patch(facecolor="#D55E00", label="territoire étudié"))
    fig.legend(handles=handles, loc="lower right", fontsize=6, frameon=False, ncols=3)
    fig.suptitle(title or metric_label(metric), x=0.01, ha="left", fontsize=9,
                 fontweight="bold")
    if attribution:
        fig.text(0.01, 0.005, attribution[:200], fontsize=5, color="#333333")
    return save_figure(fig, fmt=fmt, dpi=MAP_DPI)


def comparison_records(df: pd.DataFrame) -> list[dict[str, Any]]:
    """The comparison as JSON-ready records (NaN → ``None``, numpy scalars → Python)."""
    out: list[dict[str, Any]] = []
    for rec in df.to_dict(orient="records"):
        clean: dict[str, Any] = {}
        for k, v in rec.items():
            if v is None or v is pd.NA or (isinstance(v, float) and not np.isfinite(v)):
                clean[str(k)] = None
            elif isinstance(v, np.generic):
                clean[str(k)] = v.item()
            else:
                clean[str(k)] = v
        out.append(clean)
    return out


def summary_columns(types: Sequence[str] = ("pmi", "eaje", "laep", "rpe")) -> list[str]:
    """A compact column selection for printed tables."""
    # the territory's communes; how many have data is the coverage column's (a commune
    # loaded without INSEE figures is not "with data")
    return ["code", "name", "n_communes_total", "births_2024", "under3_estimate",
            *[f"share_within_{t}" for t in types], "coverage_partial"]
