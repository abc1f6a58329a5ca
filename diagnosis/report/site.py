"""The site studied and the comparison with neighbouring territories."""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import pandas as pd

from diagnosis.analyses import Catchment, Site
from diagnosis.formatting import fr_known, fr_number, fr_out_of, fr_percent
from diagnosis.needs import year_of
from diagnosis.overview import Overview, origin_points
from diagnosis.report._base import IMAGE_FORMAT, _figure, _fr_km, _names, _section, _table
from diagnosis.schema import (
    FACILITY_TYPES,
    facility_label,
)
from diagnosis.settings import METRIC_CRS

if TYPE_CHECKING:
    from diagnosis.siting import SitingResult


def _site_part(site: Site, overview: Overview, siting: SitingResult | None, threshold_label: str,
               catchment: Catchment | None = None) -> dict[str, Any]:
    com = overview.layers["communes"]
    births_col = str(overview.params.get("births_col", "births_2024"))
    yb = year_of(overview.summary.get("data_years"), "births_2024")
    births = pd.to_numeric(com[births_col], errors="coerce").fillna(0).to_numpy()
    total = births.sum()
    names = _names(com)
    kind = facility_label(site.facility_type) if site.facility_type in FACILITY_TYPES \
        else site.facility_type
    paras = [f"{site.name} ({kind}, {names.get(site.code_insee, site.code_insee)} ; "
             f"identifiant {site.site_id})."]
    if catchment is not None:
        top = float(catchment.area["max_minutes"].iloc[0])
        label = str(catchment.area["label"].iloc[0])
        sel = catchment.communes
        own = sel["code_insee"].isin(overview.territory.communes)
        in_births = float(pd.to_numeric(sel.loc[own, births_col], errors="coerce").sum())
        paras.append(
            f"Zone desservie : {len(sel)} commune(s) ont leur mairie à {fr_number(top)} min ou "
            f"moins de ce site ({label}), dont {int(own.sum())} du territoire : "
            f"{fr_number(catchment.births_per_year)} naissances {yb} en tout, dont "
            f"{fr_number(in_births)} dans le territoire, soit "
            f"{fr_percent(in_births / total if total else None)} de ses naissances. Les "
            "groupes de pairs ci-dessous sont calculés sur cette même zone.")
        rows = [[str(r.get("name", r["code_insee"])), f"{fr_number(r['minutes'])} min",
                 fr_number(r.get(births_col))] for r in sel.to_dict("records")]
        table = _table(["Commune", "Temps de la mairie au site", f"Naissances {yb}"], rows,
                       numeric=[False, True, True], small=True, widths=[50, 25, 25])
    else:
        th = origin_points(com).to_crs(METRIC_CRS)
        pt = gpd.GeoSeries([site.geometry], crs="EPSG:4326").to_crs(METRIC_CRS).iloc[0]
        d = th.distance(pt).to_numpy()
        near = d <= float(overview.params["threshold_m"])
        paras.append(f"À vol d'oiseau, {int(near.sum())} commune(s) du territoire ont leur "
                     f"mairie à {threshold_label} ou moins de ce site : "
                     f"{fr_number(births[near].sum())} naissances {yb}, soit "
                     f"{fr_percent(births[near].sum() / total if total else None)} des "
                     "naissances du territoire (temps de trajet non calculés).")
        rows = [[names.get(c, c), _fr_km(float(x)), fr_number(b)] for c, x, b in
                sorted(zip(com["code_insee"], d, births, strict=True), key=lambda z: z[1])]
        table = _table(["Commune", "Distance de la mairie au site", f"Naissances {yb}"], rows,
                       numeric=[False, True, True], small=True, widths=[50, 25, 25])
    layers = getattr(siting, "layers", None)
    sites = layers.get("sites") if isinstance(layers, Mapping) else None
    if isinstance(sites, pd.DataFrame) and "facility_id" in sites:
        hit = sites.loc[sites["facility_id"].astype(str).eq(site.site_id)]
        if len(hit) and "status" in hit and hit["status"].iloc[0] == "recommandé":
            paras.append(f"Ce site fait partie des sites recommandés du scénario principal "
                         f"(rang {fr_number(hit['rank'].iloc[0])}) : voir ci-dessous.")
        else:
            paras.append("Ce site ne fait pas partie des sites recommandés du scénario "
                         "principal : comparez-le aux sites recommandés ci-dessous.")
    if siting is None:
        return _section(computed=False, name=site.name, reason=(
            "L'analyse d'implantation de ce site (temps de trajet, comparaison avec les autres "
            "sites possibles) n'a pas été calculée : seules les distances à vol d'oiseau "
            "ci-dessous sont données."), paragraphs=paras, tables=[table])
    return _section(computed=True, name=site.name, paragraphs=paras, tables=[table])


def _comparison_part(comparison: pd.DataFrame | None, overview: Overview,
                     attribution: str) -> dict[str, Any]:
    if comparison is None or len(comparison) == 0:
        return _section(computed=False, reason=(
            "La comparaison avec d'autres territoires n'a pas été demandée pour ce rapport "
            "(commande « compare » pour la produire)."))
    from diagnosis.comparison import render_comparison_chart

    code = overview.territory.code
    yb = year_of(overview.summary.get("data_years"), "births_2024")
    # (plural noun, feminine?) of each kind of territory: the adjectives agree with it
    kinds = {"epci": ("intercommunalités (EPCI)", True), "commune": ("communes", True),
             "departement": ("départements", False)}
    kind, fem = kinds.get(str(comparison["kind"].iloc[0]), ("territoires", False))
    near, each = ("voisines", "chacune") if fem else ("voisins", "chacun")
    if comparison["code"].eq(code).any():
        paras = [f"Le territoire (en orange) parmi {len(comparison) - 1} autres {kind} "
                 f"{near}, {each} avec son propre diagnostic, mêmes paramètres."]
    else:
        paras = [f"Les {len(comparison)} {kind} du territoire, {each} avec son propre "
                 "diagnostic, mêmes paramètres."]
    figures = []
    key_type = next((t for t in ("eaje", "pmi", "laep") if f"share_within_{t}" in comparison
                     and comparison[f"n_{t}"].sum() > 0), None)
    if key_type:
        figures.append(_figure(partial(
            render_comparison_chart, comparison, metric=f"share_within_{key_type}", highlight=code,
            attribution=attribution, fmt=IMAGE_FORMAT),
            f"Part des naissances {yb} à portée : {facility_label(key_type, plural=True)}."))
    types = [t for t in ("pmi", "eaje", "laep", "rpe") if f"share_within_{t}" in comparison]
    rows = []
    for r in comparison.sort_values("births_2024", ascending=False).to_dict("records"):
        rows.append([("▶ " if r["code"] == code else "") + str(r["name"]),
                     fr_number(r["n_communes"]), fr_number(r["births_2024"]),
                     *[fr_known(r[f"share_within_{t}"], percent=True, feminine=True,
                                status=str(r.get(f"offer_status_{t}", "unknown")))
                       for t in types],
                     ("partielle" + fr_out_of(int(r.get("n_communes_births_known",
                                                        r["n_communes"])),
                                              int(r.get("n_communes_total", r["n_communes"]))))
                     if r["coverage_partial"] else "complète"])
    table = _table(["Territoire", "Communes", f"Naissances {yb}",
                    *[f"À portée : {facility_label(t, plural=True)}" for t in types],
                    "Couverture"], rows, numeric=[False, True, True, *[True] * len(types), False],
                   small=True, widths=[100 - 10 * (3 + len(types)), 10, 10,
                                       *[10] * len(types), 10],
                   note=("Couverture partielle : des communes du territoire n'ont pas de "
                         "données chargées ou pas de naissances connues ; ses chiffres ne "
                         "portent que sur les autres. « ≥ » : au moins, d'après les structures "
                         "connues ; « non connue » : aucune source chargée ne recense le type "
                         "en entier et aucune structure connue n'est à portée."))
    return _section(computed=True, paragraphs=paras, figures=figures, tables=[table])
