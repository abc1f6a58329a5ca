"""Analysis results laid out for a person: French tables, choices and input checks.

The app's pages show what :mod:`diagnosis.analyses` computes; the table shaping lives
here, as pure functions of a result, so that a page only lays out widgets and the
numbers stay those of the command line and the PDF. Column names are French labels;
numbers stay numbers (rounded), so the tables still sort.

See Also
--------
guides/accessibilite.md, guides/implantation.md : the methods, in French.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from diagnosis.accessibility import AccessIndicators
from diagnosis.cohorts import CohortPlan
from diagnosis.comparison import comparison_years, metric_label
from diagnosis.formatting import fr_percent
from diagnosis.gaps import (
    FACTOR_LABELS,
    MULTIPLIER_LABELS,
    PRIORITY_FACTORS,
    SCORE_LABEL,
    GapsResult,
    priority_weights,
)
from diagnosis.overview import Overview
from diagnosis.partners import INSTITUTION_COLUMNS
from diagnosis.pipeline import DiagnosisParams
from diagnosis.schema import FACILITY_TYPES, TRAVEL_MODE_LABELS, facility_label
from diagnosis.settings import METRIC_CRS, WGS84
from diagnosis.siting import HOST_TYPES, SitingResult

#: French labels of the siting objectives.
OBJECTIVE_LABELS: dict[str, str] = {
    "max_covering": "Couverture maximale (le plus de naissances à portée)",
    "p_median": "p-médiane (le moins de temps de trajet au total)",
}


def _round(values: Any, decimals: int) -> pd.Series:
    """Numbers rounded, infinities and text made NaN (shown empty in a table)."""
    s = pd.to_numeric(pd.Series(values), errors="coerce").astype("float64")
    return s.where(np.isfinite(s)).round(decimals)


# --------------------------------------------------------------------------------------
# Needs and gaps
# --------------------------------------------------------------------------------------


def priority_table(gaps: GapsResult, *, births_year: int | None = None) -> pd.DataFrame:
    """The communes ranked by need in families, each factor's multiplier and the score.

    The score is in births weighted by needs (:mod:`diagnosis.gaps`): births × the
    weighted mean of the factors' multipliers (1 = the territory's average). Each
    column says what it holds; estimated or missing factors are named on the row.

    Examples
    --------
    >>> g = GapsResult(layers={"priority": pd.DataFrame({
    ...     "rank": [2, 1], "name": ["B", "A"], "code_insee": ["2", "1"],
    ...     "births": [10.0, 40.0], "score": [9.0, 52.0],
    ...     **{f"factor_{k}": [0.9, 1.3] for k in PRIORITY_FACTORS},
    ...     "poverty_basis": ["poverty_rate"] * 2, "estimated_factors": ["", ""],
    ...     "missing_factors": ["", ""]})},
    ...     summary=pd.DataFrame(), params={"weights": {"births": 0.35, "poverty": 0.2,
    ...                                                 "single_parent": 0.15, "access": 0.3}})
    >>> t = priority_table(g)
    >>> t["Commune"].tolist(), t.columns[3], t.columns[-3]
    (['A', 'B'], 'Naissances 2024', 'Score (naissances pondérées par les besoins)')
    >>> priority_table(g, births_year=2022).columns[3]
    'Naissances 2022'

    """
    prio = gaps.layers["priority"]
    out = pd.DataFrame({
        "Rang": pd.to_numeric(prio["rank"]).astype("Int64").to_numpy(),
        "Commune": prio["name"].astype(str).to_numpy(),
        "Code INSEE": prio["code_insee"].astype(str).to_numpy(),
    })
    births_label = (MULTIPLIER_LABELS["births"] if births_year is None
                    else f"Naissances {births_year}")  # the year of the figures read
    out[births_label] = _round(prio["births"], 0).to_numpy()
    for k in PRIORITY_FACTORS[1:]:
        out[MULTIPLIER_LABELS[k]] = _round(prio[f"factor_{k}"], 2).to_numpy()
    out[SCORE_LABEL] = _round(prio["score"], 1).to_numpy()
    if "estimated_factors" in prio:
        out["Facteurs estimés"] = prio["estimated_factors"].fillna("").astype(str).to_numpy()
    if "missing_factors" in prio:
        out["Facteurs manquants"] = [
            ", ".join(FACTOR_LABELS.get(k, k).lower() for k in str(v).split(",") if k)
            for v in prio["missing_factors"].fillna("")]
    return out.sort_values("Rang", kind="stable", na_position="last").reset_index(drop=True)


def access_summary_table(access: AccessIndicators) -> pd.DataFrame:
    """Per facility type: facilities, births within reach and communes beyond reach."""
    s = access.summary
    return pd.DataFrame({
        "Type": s["label"].astype(str).to_numpy(),
        "Structures chargées (y c. hors territoire)": pd.to_numeric(s["n_facilities"]).to_numpy(),
        "Sans capacité connue": pd.to_numeric(s["n_facilities_without_capacity"]).to_numpy(),
        "Naissances à portée": _round(s["births_within"], 0).to_numpy(),
        "Part des naissances à portée (%)":
            _round(100 * pd.to_numeric(s["share_births_within"]), 1).to_numpy(),
        "Communes hors de portée": pd.to_numeric(s["n_communes_beyond"]).to_numpy(),
    })


def white_zone_table(gaps: GapsResult) -> pd.DataFrame:
    """Per facility type: communes and births in the zone blanche (beyond the threshold)."""
    s = gaps.summary
    return pd.DataFrame({
        "Type": s["label"].astype(str).to_numpy(),
        "Communes en zone blanche": pd.to_numeric(s["n_communes_white"]).to_numpy(),
        "Naissances en zone blanche": _round(s["births_white"], 0).to_numpy(),
        "Part des naissances (%)":
            _round(100 * pd.to_numeric(s["share_births_white"]), 1).to_numpy(),
    })


def facility_options(overview: Overview, *,
                     types: Sequence[str] | None = None) -> dict[str, str]:
    """The territory's facilities for a selectbox: ``facility_id`` -> ``"Name (type)"``.

    Town halls are left out unless ``types`` asks for them; sorted by type then name.
    """
    fac = overview.layers["facilities"]
    wanted = [t for t in FACILITY_TYPES if t != "mairie"] if types is None else list(types)
    sel = fac.loc[fac["type"].isin(wanted)]
    order = {t: i for i, t in enumerate(FACILITY_TYPES)}
    sel = sel.assign(_o=sel["type"].map(order)).sort_values(["_o", "name"], kind="stable")
    return {str(r.facility_id): f"{r.name} ({facility_label(str(r.type))})"
            for r in sel.itertuples()}


def host_options(overview: Overview, host_types: Sequence[str] = HOST_TYPES) -> dict[str, str]:
    """Facilities of the territory that may host a Maison (see :data:`HOST_TYPES`)."""
    return facility_options(overview, types=host_types)


# --------------------------------------------------------------------------------------
# Siting
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SiteChoice:
    """A site shown to the user (recommended, existing or proposed), with its position."""

    site_id: str
    name: str
    facility_type: str
    lon: float
    lat: float
    type_label: str = ""
    explanation: str = ""
    status: str = ""

    @property
    def key(self) -> tuple[str, str, float, float]:
        """(site_id, name, longitude, latitude): the app's cache key of a site."""
        return (self.site_id, self.name, self.lon, self.lat)


def recommended_sites(result: SitingResult) -> list[SiteChoice]:
    """The recommended sites of a scenario, in rank order."""
    sites = result.sites
    rec = sites.loc[sites["status"] == "recommandé"]
    if "rank" in rec:
        rec = rec.sort_values("rank", kind="stable")
    geom = rec.geometry.to_crs(WGS84) if rec.crs is not None else rec.geometry
    return [SiteChoice(site_id=str(r["facility_id"]), name=str(r["name"]),
                       facility_type=str(r["type"]), lon=float(g.x), lat=float(g.y),
                       type_label=str(r.get("type_label", "") or ""),
                       explanation=str(r.get("explanation", "") or ""),
                       status=str(r["status"]))
            for (_, r), g in zip(rec.iterrows(), geom, strict=True)]


def sites_table(result: SitingResult) -> pd.DataFrame:
    """Recommended then existing sites with what each one brings."""
    s = result.sites

    def col(name: str) -> Any:
        return s[name] if name in s else pd.Series(np.nan, index=s.index)

    return pd.DataFrame({
        "Rang": _round(col("rank"), 0).to_numpy(),
        "Statut": s["status"].astype(str).to_numpy(),
        "Site": s["name"].astype(str).to_numpy(),
        "Type": col("type_label").fillna("").astype(str).to_numpy(),
        "Naissances à portée": _round(col("births_covered"), 0).to_numpy(),
        "dont nouvellement à portée": _round(col("births_new"), 0).to_numpy(),
        "PMI la plus proche connue (min)": _round(col("minutes_nearest_pmi"), 0).to_numpy(),
        "Maternité la plus proche connue (min)": _round(col("minutes_nearest_maternite"),
                                                        0).to_numpy(),
        "Partenaires à portée": _round(col("partners_within"), 0).to_numpy(),
    })


def scenario_table(table: pd.DataFrame) -> pd.DataFrame:
    """The scenario comparison (:func:`diagnosis.siting.compare_scenarios`) as text.

    One column per scenario; numbers written the French way (one decimal at most),
    so the table displays the same whatever mix of text and numbers it holds.
    """
    def cell(v: Any) -> str:
        if isinstance(v, bool) or v is None:
            return "" if v is None else ("oui" if v else "non")
        if isinstance(v, int | np.integer | float | np.floating):
            return fr_value(v)
        return str(v)

    out = table.map(cell)
    out.index = table.index
    return out.reset_index()


def fr_value(value: Any, *, decimals: int = 1) -> str:
    r"""A number the French way, at most ``decimals`` decimals; ``—`` when missing or infinite.

    Examples
    --------
    >>> fr_value(1234.56), fr_value(2.0), fr_value(float("inf"))
    ('1\u202f234,6', '2', '—')
    """
    try:
        v = float(value)
    except (TypeError, ValueError):
        return str(value)
    if not math.isfinite(v):
        return "—"
    text = f"{v:,.{decimals}f}".replace(",", "\u202f").replace(".", ",")
    return text.rstrip("0").rstrip(",") if decimals else text


def cohort_table(plan: CohortPlan) -> pd.DataFrame:
    """The peer-group plan as a two-column table, values rounded (``—``: never)."""
    t = plan.to_frame()
    return pd.DataFrame({"Indicateur": t["Indicateur"],
                         "Valeur": [fr_value(v) for v in t["Valeur"]]})


def siting_input_problems(
    overview: Overview,
    *,
    k_values: Sequence[int],
    host_types: Sequence[str],
    user_points: Sequence[tuple[float, float]] = (),
) -> list[str]:
    """French messages for siting inputs that cannot work (empty list when fine).

    Checks what :func:`diagnosis.analyses.compute_siting` would refuse, in words a
    user understands: no host type, no candidate, more sites than candidates, proposed
    points (longitude, latitude) outside the territory.
    """
    problems: list[str] = []
    com = overview.layers["communes"]
    if user_points:
        area = com.to_crs(METRIC_CRS).union_all()
        pts = gpd.GeoSeries(gpd.points_from_xy([p[0] for p in user_points],
                                               [p[1] for p in user_points]),
                            crs=WGS84).to_crs(METRIC_CRS)
        for i, (pt, (lon, lat)) in enumerate(zip(pts, user_points, strict=True), start=1):
            if not area.covers(pt):
                problems.append(
                    f"Le site proposé n°{i} (longitude {lon:.5f}, latitude {lat:.5f}) est en "
                    f"dehors du territoire « {overview.territory.name} » : déplacez-le à "
                    "l'intérieur ou retirez-le.")
    fac = overview.layers["facilities"]
    n_free = int(fac["type"].isin(list(host_types)).sum()) + len(user_points)
    if not host_types and not user_points:
        problems.append("Aucun type de lieu d'accueil choisi : cochez au moins un type de "
                        "structure pouvant accueillir la Maison, ou ajoutez un site proposé.")
    elif n_free == 0:
        problems.append("Aucun lieu candidat : aucune structure du territoire n'est d'un des "
                        "types choisis. Élargissez les types de lieux d'accueil ou ajoutez un "
                        "site proposé sur la carte.")
    else:
        too_big = sorted({int(k) for k in k_values if int(k) > n_free})
        if too_big:
            problems.append(
                f"{too_big[-1]} nouveaux sites demandés, mais le territoire n'a que {n_free} "
                f"lieu{'x' if n_free > 1 else ''} candidat{'s' if n_free > 1 else ''} "
                "des types choisis : demandez au plus ce nombre de sites, élargissez les "
                "types de lieux d'accueil ou ajoutez des sites proposés.")
    return problems


# --------------------------------------------------------------------------------------
# Partners
# --------------------------------------------------------------------------------------


def partner_groups(near: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Partners within reach, one table per type (French type label -> table)."""
    groups: dict[str, pd.DataFrame] = {}
    for label, part in near.groupby("type_label", sort=False):
        groups[str(label)] = pd.DataFrame({
            "Structure": part["name"].astype(str).to_numpy(),
            "Adresse": (part["address"].astype(str) + " " + part["postcode"].astype(str))
            .str.strip().to_numpy(),
            "Temps (min)": _round(part["minutes"], 0).to_numpy(),
            "Distance (km)": _round(pd.to_numeric(part["distance_m"]) / 1000, 1).to_numpy(),
            "Téléphone": part["phone"].astype(str).to_numpy(),
            "Courriel": part["email"].astype(str).to_numpy(),
            "Site web": part["website"].astype(str).to_numpy(),
        })
    return groups


def institutions_table(institutions: pd.DataFrame | None) -> pd.DataFrame:
    """The institutions to meet, with French column names (empty table for None)."""
    if institutions is None:
        institutions = pd.DataFrame(columns=list(INSTITUTION_COLUMNS))
    names = {"role": "Rôle", "organisation": "Organisation", "description": "Pourquoi",
             "scope": "Périmètre", "contact_status": "Contact", "phone": "Téléphone",
             "email": "Courriel", "website": "Site web"}
    return institutions.loc[:, [c for c in names if c in institutions]].rename(columns=names)


def partners_export_frame(layers: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """Partners and institutions in one table for the CSV file (as the command line).

    A ``group`` column says ``structure à portée`` or ``institution``.
    """
    near = layers.get("near_site", pd.DataFrame())
    inst = layers.get("institutions", pd.DataFrame())
    both = pd.concat([near.assign(group="structure à portée"),
                      inst.rename(columns={"organisation": "name", "role": "type_label"})
                      .assign(group="institution")], ignore_index=True)
    return both[["group", *[c for c in both.columns if c != "group"]]]


#: French headers of the partners table (column code -> header); other columns are dropped.
PARTNER_HEADERS: dict[str, str] = {
    "group": "Groupe", "type_label": "Type", "name": "Nom", "address": "Adresse",
    "postcode": "Code postal", "code_insee": "Code commune", "phone": "Téléphone",
    "email": "Courriel", "website": "Site web", "minutes": "Temps de trajet (min)",
    "distance_m": "Distance (m)", "source_title": "Source", "source_date": "Date de la source",
    "position_precision": "Position", "description": "Rôle", "scope": "Périmètre",
    "contact_status": "Contact",
}


def french_partners_table(df: pd.DataFrame,
                          source_titles: Mapping[str, str] | None = None) -> pd.DataFrame:
    """The partners table for a spreadsheet: French headers, rounded values, words.

    Minutes to the tenth, metres to the metre, the position's precision in words, the
    source by its title when ``source_titles`` names it (never an internal key alone).

    Examples
    --------
    >>> t = pd.DataFrame({"group": ["structure à portée"], "type": ["mam"],
    ...                   "type_label": ["MAM"], "name": ["A"], "minutes": [19.849380],
    ...                   "distance_m": [9666.3], "source": ["demo_directory"],
    ...                   "position_precision": ["commune"]})
    >>> r = french_partners_table(t, {"demo_directory": "Annuaire partiel"}).iloc[0]
    >>> r.astype(str).tolist()[2:6]
    ['A', '19.8', '9666', 'Annuaire partiel']
    >>> r["Position"]
    'à la mairie de la commune (position approximative)'
    """
    from diagnosis.schema import PRECISIONS

    out = df.copy()
    if "minutes" in out:
        out["minutes"] = pd.to_numeric(out["minutes"], errors="coerce").round(1)
    if "distance_m" in out:
        out["distance_m"] = pd.to_numeric(out["distance_m"], errors="coerce").round(0) \
            .astype("Int64")
    if "position_precision" in out:
        out["position_precision"] = out["position_precision"].map(
            lambda v: PRECISIONS.get(str(v), "" if pd.isna(v) else str(v)))
    if "source" in out:
        titles = dict(source_titles or {})
        out["source_title"] = out["source"].map(
            lambda k: titles.get(str(k), "fichier importé" if str(k).startswith("user:")
                                 else "" if pd.isna(k) else str(k)))
    cols = [c for c in PARTNER_HEADERS if c in out.columns]
    return out.loc[:, cols].rename(columns=PARTNER_HEADERS)


# --------------------------------------------------------------------------------------
# Comparison
# --------------------------------------------------------------------------------------


def comparison_metrics(df: pd.DataFrame) -> dict[str, str]:
    """Numeric columns of a comparison worth charting -> French label (births first)."""
    skip = {"threshold_m", "n_communes_total", "n_communes_missing", "births_year",
            "population_year"}
    first = [c for c in ("births_2024", "under3_estimate") if c in df.columns]
    cols = [*first, *[c for c in df.columns if c not in first]]
    years = comparison_years(df)
    return {c: metric_label(c, years=years) for c in cols
            if c not in skip and not c.startswith("rank_")
            and pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c])
            and df[c].notna().any()}


def comparison_table(df: pd.DataFrame) -> pd.DataFrame:
    """The comparison with French column names, shares in % and coverage in words."""
    out = pd.DataFrame({"Territoire": df["name"].astype(str), "Code": df["code"].astype(str)})
    for col, label in comparison_metrics(df).items():
        values = pd.to_numeric(df[col], errors="coerce")
        if col.startswith("share_within_"):
            out[label + " (%)"] = _round(100 * values, 1).to_numpy()
        else:
            out[label] = _round(values, 1).to_numpy()
    if "coverage_partial" in df:
        out["Couverture des données"] = np.where(df["coverage_partial"].astype(bool),
                                                 "partielle", "complète")
    return out.reset_index(drop=True)


# --------------------------------------------------------------------------------------
# The study
# --------------------------------------------------------------------------------------


def study_table(params: DiagnosisParams, *, site_name: str | None) -> pd.DataFrame:
    """The options of a study in French, one row each (what the report will use).

    Examples
    --------
    >>> t = study_table(DiagnosisParams(territory="200000438", k=2), site_name="Mairie")
    >>> t.set_index("Paramètre").loc["Nouveaux sites (k)", "Valeur"]
    '2'
    """
    weights = priority_weights(dict(params.weights) if params.weights else None)
    types = ("tous les types chargés" if params.types is None else
             ", ".join(facility_label(t, plural=True) for t in params.types) or "aucun")
    points = "; ".join(f"n°{i} ({lon:.5f}, {lat:.5f})"
                       for i, (lon, lat) in enumerate(params.user_sites, start=1))
    rows = [
        ("Territoire", params.territory),
        ("Temps de trajet", TRAVEL_MODE_LABELS.get(params.mode, params.mode)),
        ("Temps maximal T", f"{params.max_minutes:g} min"),
        ("Poids du score de priorité", ", ".join(f"{FACTOR_LABELS[k].lower()} {fr_percent(v)}"
                                                 for k, v in weights.items())),
        ("Types de structures analysés", types),
        ("Nouveaux sites (k)", str(params.k)),
        ("Scénarios comparés", ", ".join(str(k) for k in params.k_values[1:]) or "aucun"),
        ("Objectif", OBJECTIVE_LABELS.get(params.objective, params.objective)),
        ("Lieux d'accueil possibles", ", ".join(facility_label(t, plural=True)
                                                for t in params.host_types) or "aucun"),
        ("Sites proposés", points or "aucun"),
        ("Site étudié", site_name or "aucun"),
        ("Participation aux groupes (hypothèse)",
         fr_percent(params.uptake_rate) if params.uptake_rate is not None else "non calculée"),
        ("Familles par groupe", str(params.group_size)),
        ("Fenêtre de naissance", f"{params.birth_window_months:g} mois"),
    ]
    return pd.DataFrame(rows, columns=["Paramètre", "Valeur"])
