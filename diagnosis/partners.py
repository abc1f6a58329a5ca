"""Partners of a Maison: nearby structures and the institutions of the maillage territorial.

- :func:`find_partners` lists the facilities within reach of a site (travel time or
  crow-fly distance), grouped by type, with their published contact details and source.
- :func:`institutional_partners` lists the institutions to meet (CAF, the Département's
  PMI service, maternités, ARS, perinatal network, EPCI, communes) as rows "à contacter":
  roles only, never invented contact details.
- :func:`export_partners_csv` writes either table for French Excel.

See Also
--------
guides/implantation.md : the partner checklist of the maillage territorial (in French).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
from shapely.geometry import Point
from shapely.geometry.base import BaseGeometry

from diagnosis.csvfile import french_csv_bytes
from diagnosis.errors import InputError
from diagnosis.schema import FACILITY_TYPES, USER_SITE_TYPE_LABEL
from diagnosis.settings import METRIC_CRS

#: Columns of :func:`find_partners`, in order.
PARTNER_COLUMNS: tuple[str, ...] = (
    "type", "type_label", "name", "address", "postcode", "code_insee", "phone", "email",
    "website", "minutes", "distance_m", "source", "source_date", "position_precision",
    "facility_id",
)
#: Columns of :func:`institutional_partners`, in order.
INSTITUTION_COLUMNS: tuple[str, ...] = (
    "role", "organisation", "description", "scope", "contact_status", "phone", "email",
    "website",
)
#: Status given to every institutional row: the user has to find and check the contact.
TO_CONTACT = "à contacter"

_USER_SITE_LABEL = USER_SITE_TYPE_LABEL


def find_partners(
    site: Any,
    facilities: gpd.GeoDataFrame,
    travel_minutes: Any = None,
    *,
    max_minutes: float | None = None,
    radius_m: float | None = None,
    types: Sequence[str] | None = None,
    site_crs: str = METRIC_CRS,
) -> pd.DataFrame:
    """List the structures within reach of a site, grouped by type.

    Parameters
    ----------
    site
        The site: a shapely Point in ``site_crs`` (EPSG:2154 by default), a one-row
        GeoDataFrame or GeoSeries with a CRS, or a row (pandas Series) with a
        ``geometry`` in ``site_crs``. A row with a ``facility_id`` is left out of its own
        partners.
    facilities
        Facility table (columns of :data:`diagnosis.schema.FACILITY_COLUMNS`, a CRS).
    travel_minutes
        Optional travel minutes from the site to each facility (one value per row of
        ``facilities``; a one-row matrix or a ``TravelTimes`` with one origin also
        works); ``np.inf`` when unreachable. Give ``max_minutes`` with it.
    max_minutes
        Keep facilities within this travel time (needs ``travel_minutes``).
    radius_m
        Keep facilities within this crow-fly distance (metres, EPSG:2154), when no
        travel times are given.
    types
        Facility types to keep (default: all).
    site_crs
        CRS of a bare Point or Series site.

    Returns
    -------
    pandas.DataFrame
        :data:`PARTNER_COLUMNS`, sorted by type (in the order of
        :data:`diagnosis.schema.FACILITY_TYPES`), then time or distance, then name.
        ``distance_m`` is always the crow-fly distance; ``minutes`` is NaN without travel
        times. Contact fields are those published by the source (empty when unknown).

    Raises
    ------
    InputError
        Neither or both of ``max_minutes`` / ``radius_m``, ``max_minutes`` without
        ``travel_minutes``, a misaligned ``travel_minutes``, an unknown type, a site
        without a point.

    Examples
    --------
    >>> f = gpd.GeoDataFrame({"facility_id": ["a", "b", "c"], "type": ["rpe", "pmi", "pmi"],
    ...     "name": ["RPE", "PMI proche", "PMI loin"]},
    ...     geometry=[Point(300_000, 6_700_000), Point(301_000, 6_700_000),
    ...               Point(320_000, 6_700_000)], crs=METRIC_CRS)
    >>> p = find_partners(Point(300_000, 6_700_000), f, radius_m=5_000)
    >>> p[["type", "name", "distance_m"]].values.tolist()
    [['pmi', 'PMI proche', 1000.0], ['rpe', 'RPE', 0.0]]

    See Also
    --------
    institutional_partners, export_partners_csv
    guides/implantation.md : the partner checklist.
    """
    if (max_minutes is None) == (radius_m is None):
        raise InputError(
            f"give exactly one of max_minutes (with travel_minutes) or radius_m; got "
            f"max_minutes={max_minutes!r}, radius_m={radius_m!r}"
        )
    if max_minutes is not None and travel_minutes is None:
        raise InputError("max_minutes needs travel_minutes (minutes from the site to each "
                         "facility); or use radius_m for crow-fly distances")
    limit = max_minutes if max_minutes is not None else radius_m
    name = "max_minutes" if max_minutes is not None else "radius_m"
    if isinstance(limit, bool) or not isinstance(limit, (int, float)) or not (
            math.isfinite(limit) and limit > 0):
        raise InputError(f"{name}={limit!r} must be a number > 0")
    if facilities.crs is None:
        raise InputError("facilities has no CRS; set one (EPSG:4326 expected)")
    if types is not None:
        bad = [t for t in types if t not in FACILITY_TYPES]
        if bad:
            raise InputError(f"types holds unknown facility types {bad!r}; use some of "
                             f"{list(FACILITY_TYPES)}")
    point, own_id = _site_point(site, site_crs)
    metric = facilities.to_crs(METRIC_CRS)
    dist = metric.geometry.distance(point).to_numpy(dtype=np.float64)
    minutes = np.full(len(facilities), np.nan)
    if travel_minutes is not None:
        raw = getattr(travel_minutes, "minutes", travel_minutes)
        arr = np.asarray(raw, dtype=np.float64)
        if arr.ndim == 2 and arr.shape[0] == 1:
            arr = arr[0]
        if arr.shape != (len(facilities),):
            raise InputError(
                f"travel_minutes has shape {np.shape(raw)!r}; give one time per facility "
                f"({len(facilities)}) in the row order of facilities"
            )
        minutes = np.where(np.isnan(arr), np.inf, arr)
    keep = (minutes <= limit) if max_minutes is not None else (dist <= limit)
    fac_types = _text(facilities, "type")
    if types is not None:
        keep &= np.isin(fac_types, list(types))
    ids = _text(facilities, "facility_id")
    if own_id:
        keep &= ids != own_id
    out = pd.DataFrame({
        "type": fac_types,
        "type_label": [_type_label(t) for t in fac_types],
        "name": _text(facilities, "name"),
        "address": _text(facilities, "address"),
        "postcode": _text(facilities, "postcode"),
        "code_insee": _text(facilities, "code_insee"),
        "phone": _text(facilities, "phone"),
        "email": _text(facilities, "email"),
        "website": _text(facilities, "website"),
        "minutes": np.where(np.isfinite(minutes), minutes, np.nan),
        "distance_m": np.round(dist, 1),
        "source": _text(facilities, "source"),
        "source_date": _text(facilities, "source_date"),
        "position_precision": _text(facilities, "position_precision"),
        "facility_id": ids,
    })[keep]
    order = {t: i for i, t in enumerate(FACILITY_TYPES)}
    out = out.assign(_o=out["type"].map(order).fillna(len(order)),
                     _d=out["minutes"].fillna(out["distance_m"]))
    out = out.sort_values(["_o", "_d", "name"], kind="stable").drop(columns=["_o", "_d"])
    return out.reset_index(drop=True)[list(PARTNER_COLUMNS)]


def _site_point(site: Any, site_crs: str) -> tuple[Point, str]:
    own_id = ""
    crs: Any = site_crs
    geom: Any = site
    if isinstance(site, (gpd.GeoDataFrame, gpd.GeoSeries)):
        if len(site) != 1:
            raise InputError(f"site has {len(site)} rows; give one site")
        if site.crs is None:
            raise InputError("site has no CRS; set one")
        if isinstance(site, gpd.GeoDataFrame) and "facility_id" in site.columns:
            own_id = str(site["facility_id"].iloc[0])
        geom = site.geometry.iloc[0] if isinstance(site, gpd.GeoDataFrame) else site.iloc[0]
        crs = site.crs
    elif isinstance(site, pd.Series):
        if "geometry" not in site.index:
            raise InputError("site row has no 'geometry'; give a point")
        own_id = str(site.get("facility_id", "") or "")
        geom = site["geometry"]
    if not isinstance(geom, BaseGeometry) or geom.is_empty or geom.geom_type != "Point":
        raise InputError(f"site must be a point; got {geom!r}")
    point = gpd.GeoSeries([geom], crs=crs).to_crs(METRIC_CRS).iloc[0]
    return point, own_id


def _text(df: pd.DataFrame, col: str) -> np.ndarray:
    if col not in df.columns:
        return np.full(len(df), "", dtype=object)
    return df[col].map(lambda v: "" if v is None or (isinstance(v, float) and math.isnan(v))
                       else str(v)).to_numpy(dtype=object)


def _type_label(t: str) -> str:
    if t == "user_site":
        return _USER_SITE_LABEL
    return FACILITY_TYPES.get(t, (t, t))[0]


def institutional_partners(
    territory_name: str,
    dep_code: str,
    communes: Sequence[str] | pd.DataFrame,
    epci_name: str | None = None,
    *,
    dep_name: str | None = None,
) -> pd.DataFrame:
    """List the institutions to meet for a Maison, as rows "à contacter".

    Parameters
    ----------
    territory_name
        Name of the territory of the project (shown in the ``scope`` column).
    dep_code
        Département code as text (``"44"``, ``"2A"``, ``"974"``).
    communes
        Names of the communes concerned, or a table with ``name`` (and ``code_insee``).
    epci_name
        Name of the EPCI (intercommunalité), if any.
    dep_name
        Name of the département, for the labels (default: "du département <code>").

    Returns
    -------
    pandas.DataFrame
        :data:`INSTITUTION_COLUMNS`: one row per institution (CAF, Département - PMI,
        maternités, ARS, perinatal network, EPCI) then one per commune;
        ``contact_status`` is :data:`TO_CONTACT`; phone, email and website are empty:
        find them in the official directories and check them.

    Raises
    ------
    InputError
        Empty territory name or a département code that is not one.

    Examples
    --------
    >>> t = institutional_partners("CC du Pays de Pontchâteau", "44",
    ...     ["Pontchâteau", "Crossac"], "CC du Pays de Pontchâteau",
    ...     dep_name="Loire-Atlantique")
    >>> print(t["organisation"].iloc[0])
    Caisse d'allocations familiales (CAF) de Loire-Atlantique
    >>> t["role"].tolist()[-2:]
    ['Commune', 'Commune']
    >>> sorted(set(t["contact_status"])), sorted(set(t["phone"]))
    (['à contacter'], [''])

    See Also
    --------
    find_partners
    guides/implantation.md : the partner checklist of the maillage territorial.
    """
    if not str(territory_name).strip():
        raise InputError("territory_name is empty; give the name of the territory")
    dep = str(dep_code).strip()
    if not (dep.isdigit() and len(dep) in (2, 3)) and dep not in ("2A", "2B"):
        raise InputError(f"dep_code={dep_code!r} is not a département code; use e.g. "
                         "'44', '2A' or '974' (as text)")
    of_dep = f"de {dep_name}" if dep_name else f"du département {dep}"
    scope = str(territory_name).strip()
    rows: list[dict[str, str]] = [
        {"role": "Financeur et partenaire parentalité",
         "organisation": f"Caisse d'allocations familiales (CAF) {of_dep}",
         "description": (
             "Cofinance le soutien à la parentalité (REAAP, LAEP, centres sociaux, "
             "espaces de vie sociale) et l'accueil du jeune enfant ; porte la convention "
             "territoriale globale (CTG) avec les collectivités ; connaît l'offre et les "
             "besoins de garde du territoire.")},
        {"role": "Protection maternelle et infantile",
         "organisation": f"Conseil départemental {of_dep} — service de PMI",
         "description": (
             "Consultations prénatales et infantiles, puéricultrices et sages-femmes de "
             "PMI, visites à domicile ; partenaire clé pour orienter les familles dès la "
             "grossesse et pour héberger ou co-animer des groupes.")},
        {"role": "Périnatalité",
         "organisation": "Maternité(s) du secteur",
         "description": (
             "Orientent les futurs parents (entretien prénatal précoce, préparation à la "
             "naissance, sortie de maternité) ; à identifier parmi les maternités où "
             "accouchent les familles du territoire.")},
        {"role": "Pilotage régional santé",
         "organisation": "Agence régionale de santé (ARS)",
         "description": (
             "Porte la politique des 1000 premiers jours en région ; se renseigner sur les "
             "appels à projets, le cahier des charges et les financements en cours.")},
        {"role": "Réseau de périnatalité",
         "organisation": "Dispositif spécifique régional en périnatalité (réseau de "
                         "santé en périnatalité)",
         "description": (
             "Coordonne les professionnels de la naissance (maternités, PMI, libéraux) et "
             "les parcours des familles vulnérables ; relais vers les sages-femmes et "
             "professionnels libéraux.")},
    ]
    if epci_name:
        rows.append({
            "role": "Intercommunalité",
            "organisation": str(epci_name),
            "description": (
                "Selon ses compétences (petite enfance, action sociale d'intérêt "
                "communautaire, relais petite enfance intercommunal) : locaux, "
                "cofinancement, lien avec la CTG.")})
    for name in _commune_names(communes):
        rows.append({
            "role": "Commune",
            "organisation": f"Mairie {_of(name)}",
            "description": (
                "Locaux possibles, CCAS, relais d'information auprès des familles, "
                "lien avec les structures petite enfance municipales.")})
    out = pd.DataFrame(rows)
    out["scope"] = scope
    out["contact_status"] = TO_CONTACT
    for col in ("phone", "email", "website"):
        out[col] = ""
    return out[list(INSTITUTION_COLUMNS)]


#: ``contact_status`` of an institution whose contacts come from a loaded directory.
FROM_DIRECTORY = "coordonnées de l'annuaire (à vérifier)"


def with_directory_contacts(institutions: pd.DataFrame,
                            facilities: pd.DataFrame) -> pd.DataFrame:
    """Institutions with the phone, email and website a loaded directory gives them.

    A town hall of the directory (type ``mairie``, e.g. the annuaire de l'administration)
    whose name is the institution's (« Mairie de Crossac ») gives its contacts; the
    institution's ``contact_status`` then says they come from the directory (to check).
    Others stay « à contacter » with empty contacts: never invented.

    Examples
    --------
    >>> inst = pd.DataFrame({"role": ["Commune", "Commune"],
    ...     "organisation": ["Mairie de Crossac", "Mairie de Besné"],
    ...     "phone": ["", ""], "email": ["", ""], "website": ["", ""],
    ...     "contact_status": [TO_CONTACT, TO_CONTACT]})
    >>> fac = pd.DataFrame({"type": ["mairie"], "name": ["Mairie de Crossac"],
    ...     "phone": ["02 40 01 02 85"], "email": [""], "website": ["https://x.fr"]})
    >>> out = with_directory_contacts(inst, fac)
    >>> out["phone"].tolist(), out["contact_status"].tolist()[1]
    (['02 40 01 02 85', ''], 'à contacter')
    """
    if not len(institutions) or not {"type", "name"} <= set(facilities.columns):
        return institutions
    if "role" not in institutions.columns:
        return institutions
    halls = facilities.loc[facilities["type"].eq("mairie")]
    halls = halls.loc[~halls["name"].duplicated(keep=False)].set_index("name")
    out = institutions.copy()
    communes = out["role"].eq("Commune").fillna(False).to_numpy(dtype=bool)
    names = out["organisation"].astype(str)
    found = np.zeros(len(out), dtype=bool)
    for col in ("phone", "email", "website"):
        if col not in halls.columns:
            continue
        values = [v.strip() if isinstance(v, str) else ""
                  for v in names.map(halls[col].to_dict()).tolist()]
        given = communes & np.array([bool(v) for v in values], dtype=bool)
        if given.any():
            out.loc[given, col] = [v for v, g in zip(values, given, strict=True) if g]
            found |= given
    if found.any():
        out.loc[found, "contact_status"] = FROM_DIRECTORY
    return out


def _of(name: str) -> str:
    """French "de" before a commune name, with elision and contraction.

    Examples
    --------
    >>> [_of(n) for n in ("Abbaretz", "Le Pellerin", "Les Sorinières", "La Baule", "Nantes")]
    ["d'Abbaretz", 'du Pellerin', 'des Sorinières', 'de La Baule', 'de Nantes']
    """
    if name.startswith("Le "):
        return "du " + name[3:]
    if name.startswith("Les "):
        return "des " + name[4:]
    if name[:1].upper() in "AEIOUYÉÈÊÎÏÔÛÀÂ":
        return "d'" + name
    return "de " + name


def _commune_names(communes: Sequence[str] | pd.DataFrame) -> list[str]:
    if isinstance(communes, pd.DataFrame):
        if "name" not in communes.columns:
            raise InputError(f"communes lacks a 'name' column; found {list(communes.columns)}")
        names = communes["name"].astype(str).tolist()
    elif isinstance(communes, str):
        names = [communes]
    else:
        names = [str(c) for c in communes]
    seen: dict[str, None] = {}
    for n in names:
        if n.strip():
            seen.setdefault(n.strip(), None)
    return list(seen)


def export_partners_csv(df: pd.DataFrame) -> bytes:
    """Return a partner table as CSV bytes for French Excel.

    UTF-8 with a byte-order mark (so Excel reads accents), ``;`` as separator and a
    decimal comma.

    Examples
    --------
    >>> import codecs
    >>> b = export_partners_csv(pd.DataFrame({"name": ["Crèche"], "distance_m": [1.5]}))
    >>> b.startswith(codecs.BOM_UTF8), b.decode("utf-8-sig").splitlines()
    (True, ['name;distance_m', 'Crèche;1,5'])

    See Also
    --------
    find_partners, institutional_partners
    """
    if not isinstance(df, pd.DataFrame):
        raise InputError(f"df must be a DataFrame; got {type(df).__name__}")
    return french_csv_bytes(df)
