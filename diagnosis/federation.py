"""The federation's national view: territories of France side by side, and where to open next.

One national overview (every commune, crow-fly proximity of every facility type, see
:func:`diagnosis.overview.compute_overview`) is aggregated by département, région or
EPCI: each row equals that territory's own overview, since a commune's distance to the
nearest facility does not depend on the territory it is counted in. The ranking puts
first the territories where births lie farthest from any existing Maison (type
``maison_1000_jours``): where a new Maison would reach the most unserved births.

See Also
--------
guides/diagnostic.md : the steps of a diagnosis, the federation's view.
"""

from __future__ import annotations

from collections.abc import Mapping

import folium
import geopandas as gpd
import numpy as np
import pandas as pd

from diagnosis import maps
from diagnosis.errors import InputError
from diagnosis.formatting import fr_number, fr_percent
from diagnosis.needs import data_years, year_of
from diagnosis.overview import Overview
from diagnosis.schema import facility_label
from diagnosis.settings import FRANCE_METRO_BBOX, WGS84

MAISON = "maison_1000_jours"
#: Indicators of the national map and ranking (column -> French label).
RANK_METRIC: dict[str, str] = {
    "unserved_births": "Naissances sans Maison à portée",
    "births_2024": "Naissances 2024",
    "births_per_eaje": "Naissances par crèche (EAJE)",
    "share_beyond_pmi": "Part des naissances loin d'une PMI",
    "share_beyond_eaje": "Part des naissances loin d'une crèche",
}


def national_table(overview: Overview, groups: Mapping[str, str],
                   names: Mapping[str, str]) -> pd.DataFrame:
    """Aggregate a national overview's communes by territory.

    Parameters
    ----------
    overview
        The overview of all the communes (e.g. of ``--territory FR``).
    groups
        INSEE code -> territory code (département, région or EPCI SIREN).
    names
        Territory code -> name.

    Returns
    -------
    pandas.DataFrame
        One row per territory: ``code``, ``name``, ``n_communes``,
        ``n_communes_births_known`` and ``coverage`` (their share: 1 complete, 0 no
        data), ``births_2024`` (of the communes known; NaN when none is),
        ``population_2022``, per type ``n_<t>``, ``births_within_<t>``,
        ``share_within_<t>`` (of births whose town hall lies within the overview's
        threshold of a facility of the type), ``unserved_births`` (births beyond the
        threshold of every existing Maison; all births when none is loaded, which
        ``maisons_loaded`` says), ``births_per_eaje`` and ``share_beyond_<t>``.

    Examples
    --------
    >>> com = pd.DataFrame({"code_insee": ["1", "2", "3"], "births_2024": [10.0, 5.0, 1.0],
    ...                     "within_pmi": [True, False, True], "n_pmi": [1, 0, 0]})
    >>> ov = Overview.__new__(Overview)
    >>> object.__setattr__(ov, "layers", {"communes": com})
    >>> object.__setattr__(ov, "params", {"types": ("pmi",), "threshold_m": 5000.0})
    >>> t = national_table(ov, {"1": "A", "2": "A", "3": "B"}, {"A": "Aa", "B": "Bb"})
    >>> t[["code", "births_2024", "n_pmi", "share_within_pmi"]].values.tolist()
    [['A', 15.0, 1, 0.6666666666666666], ['B', 1.0, 0, 1.0]]
    >>> t["coverage"].tolist()
    [1.0, 1.0]
    """
    com = pd.DataFrame(overview.layers["communes"])
    com = com.assign(_group=com["code_insee"].astype(str).map(groups))
    com = com.loc[com["_group"].notna()]
    births = pd.to_numeric(com["births_2024"], errors="coerce")
    g = com.groupby("_group", sort=True)
    # coverage is computed from what was loaded, never assumed: a commune whose births
    # are unknown is counted apart, and a territory without any is unknown, not 0
    out = pd.DataFrame({"n_communes": g.size(),
                        "n_communes_births_known": births.notna().groupby(
                            com["_group"]).sum().astype(int),
                        "births_2024": births.groupby(com["_group"]).sum(min_count=1)})
    out["coverage"] = out["n_communes_births_known"] / out["n_communes"]
    if "population_2022" in com:
        out["population_2022"] = pd.to_numeric(com["population_2022"], errors="coerce") \
            .groupby(com["_group"]).sum(min_count=1)
    types = [t for t in overview.params.get("types", ()) if f"within_{t}" in com]
    for t in types:
        within = com[f"within_{t}"].astype(bool)
        out[f"n_{t}"] = pd.to_numeric(com[f"n_{t}"], errors="coerce").groupby(
            com["_group"]).sum().astype(int)
        out[f"births_within_{t}"] = (births * within).groupby(com["_group"]).sum(min_count=1)
        out[f"share_within_{t}"] = out[f"births_within_{t}"] / out["births_2024"].where(
            out["births_2024"] > 0)
        out[f"share_beyond_{t}"] = 1.0 - out[f"share_within_{t}"]
    has_maisons = MAISON in types and int(out.get(f"n_{MAISON}", pd.Series(0)).sum()) > 0
    out["maisons_loaded"] = has_maisons
    out["unserved_births"] = (out["births_2024"] - out[f"births_within_{MAISON}"].fillna(0)
                              if has_maisons else out["births_2024"])
    if "n_eaje" in out:
        out["births_per_eaje"] = out["births_2024"] / out["n_eaje"].where(out["n_eaje"] > 0)
    out = out.reset_index().rename(columns={"_group": "code"})
    out.insert(1, "name", [names.get(c, c) for c in out["code"]])
    # the year of the births read (INSEE files of any edition), for the labels
    out["births_year"] = year_of(data_years(com), "births_2024")
    return out


def _births_label(table: pd.DataFrame) -> str:
    years = pd.to_numeric(table.get("births_year", pd.Series(dtype=float)),
                          errors="coerce").dropna().unique()
    return f"Naissances {int(years[0])}" if len(years) == 1 else "Naissances 2024"


def rank_territories(table: pd.DataFrame, *, top: int | None = None) -> pd.DataFrame:
    """Territories where a new Maison would reach the most unserved births, French columns.

    Examples
    --------
    >>> t = pd.DataFrame({"code": ["A", "B"], "name": ["Aa", "Bb"], "n_communes": [2, 1],
    ...                   "births_2024": [15.0, 30.0], "unserved_births": [15.0, 30.0],
    ...                   "maisons_loaded": [False, False]})
    >>> rank_territories(t)["Territoire"].tolist()
    ['Bb', 'Aa']
    """
    if "unserved_births" not in table:
        raise InputError("table lacks 'unserved_births'; build it with national_table")
    if "n_communes_births_known" in table:  # only what is known is ranked
        table = table.loc[table["n_communes_births_known"] > 0]
    t = table.sort_values(["unserved_births", "births_2024"], ascending=False,
                          kind="stable").reset_index(drop=True)
    if top is not None:
        t = t.head(top)
    out = pd.DataFrame({
        "Rang": np.arange(1, len(t) + 1),
        "Code": t["code"], "Territoire": t["name"], "Communes": t["n_communes"],
        _births_label(t): t["births_2024"].round(0),
        "Naissances sans Maison à portée": t["unserved_births"].round(0),
    })
    if "n_communes_births_known" in t:
        out["Couverture des données"] = [
            "complète" if known == n else f"partielle : {fr_number(known)} commune(s) sur "
            f"{fr_number(n)}" for known, n in zip(t["n_communes_births_known"],
                                                   t["n_communes"], strict=True)]
    for typ in ("pmi", "eaje"):
        col = f"share_within_{typ}"
        if col in t:
            out[f"Part à portée : {facility_label(typ, plural=True)} (%)"] = \
                (100 * t[col]).round(1)
    if not bool(t["maisons_loaded"].any()):
        out["Remarque"] = "aucune Maison existante chargée : toutes les naissances comptées"
    return out


def territory_outlines(communes: gpd.GeoDataFrame, groups: Mapping[str, str]
                       ) -> gpd.GeoDataFrame:
    """Polygons of the territories (communes dissolved by ``groups``), EPSG:4326."""
    com = communes.loc[communes.geometry.notna()].assign(
        code=communes["code_insee"].astype(str).map(groups))
    com = com.loc[com["code"].notna()]
    return com[["code", "geometry"]].dissolve(by="code").reset_index().to_crs(WGS84)


@maps._map_builder
def build_federation_map(table: pd.DataFrame, outlines: gpd.GeoDataFrame, *,
                         metric: str = "unserved_births", tiles: str | None = None
                         ) -> folium.Map:
    """Map of France's territories coloured by ``metric`` (a key of :data:`RANK_METRIC`).

    Every text shown is escaped (:mod:`diagnosis.maps`), the legend is in French.
    """
    if metric not in RANK_METRIC or metric not in table:
        raise InputError(f"metric={metric!r} is not an indicator of the table; use one of "
                         f"{[m for m in RANK_METRIC if m in table]}")
    frame = outlines.merge(table, on="code", how="left")
    values = pd.to_numeric(frame[metric], errors="coerce").to_numpy(dtype=float)
    breaks = maps.class_breaks(values[np.isfinite(values)]) if np.isfinite(values).any() \
        else []
    colors = maps._palette(len(breaks) + 1)
    share = metric.startswith("share_")
    fills, tips = [], []
    births_label = _births_label(table)
    metric_label = births_label if metric == "births_2024" else RANK_METRIC[metric]
    for row, v in zip(frame.to_dict("records"), values, strict=True):
        k = maps._class_of(v, breaks) if np.isfinite(v) else -1
        fills.append(maps.MISSING_COLOR if k < 0 else colors[k])
        shown = fr_percent(v, decimals=1) if share else fr_number(v)
        tips.append(f"<b>{maps._esc(row.get('name'))}</b> ({maps._esc(row.get('code'))})<br>"
                    f"{maps._esc(metric_label)} : {maps._esc(shown)}<br>"
                    f"{births_label} : {maps._esc(fr_number(row.get('births_2024')))}"
                    + _coverage_tip(row))
    m, bounds = maps._analysis_map(frame, tiles)
    west, south, east, north = FRANCE_METRO_BBOX
    if bounds[0] < west or bounds[2] > east:  # outre-mer included: open on the mainland
        bounds = [west, south, east, north]
    maps._fill_layer(frame, fills, tips, metric_label).add_to(m)
    lows = [values[np.isfinite(values)].min() if np.isfinite(values).any() else np.nan,
            *breaks]
    items = [("swatch", c, f"à partir de {fr_percent(lo, decimals=0) if share else fr_number(lo)}")
             for c, lo in zip(colors, lows, strict=False)]
    items.append(("swatch", maps.MISSING_COLOR, "non connu"))
    legend = maps._analysis_legend(metric_label, items,
                                   notes=["Naissances « à portée » : mairie de la commune à "
                                          "la distance du diagnostic (à vol d'oiseau)."])
    return maps._finish(m, bounds, legend, "IGN, INSEE — Admin Express ; Insee")


def _coverage_tip(row: Mapping[str, object]) -> str:
    """The tooltip's coverage line of a territory whose births are not all known."""
    known, total = row.get("n_communes_births_known"), row.get("n_communes")
    if not isinstance(known, int | float | np.number) or not isinstance(
            total, int | float | np.number) or known == total or not np.isfinite(total):
        return ""
    return (f"<br>Données : {maps._esc(fr_number(known))} commune(s) sur "
            f"{maps._esc(fr_number(total))} (chiffres partiels)")


def groups_of(communes: pd.DataFrame, by: str) -> dict[str, str]:
    """INSEE code -> code of its département, région or EPCI (``by``)."""
    col = {"departement": "dep_code", "region": "region_code", "epci": "epci_code"}.get(by)
    if col is None:
        raise InputError(f"by={by!r} is not a national split; use departement, region or "
                         "epci")
    if col not in communes:
        raise InputError(f"communes lack {col!r}: they cannot be grouped by {by}")
    codes = communes[col].astype(str)
    ok = codes.ne("") & codes.ne("nan")
    return dict(zip(communes.loc[ok, "code_insee"].astype(str), codes[ok], strict=True))


