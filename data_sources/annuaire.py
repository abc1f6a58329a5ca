"""Local public services from the *annuaire de l'administration* (service-public.fr, DILA).

The annuaire lists PMI centres and CAF offices that FINESS misses, and gives the contact
details (address, position, phone, e-mail, website, opening hours) of the partners of a
Maison des 1000 premiers jours.

API: Opendatasoft Explore v2.1, dataset ``api-lannuaire-administration``, served on two
hosts: ``https://api-lannuaire.service-public.gouv.fr`` (the one recent client code calls)
and ``https://api-lannuaire.service-public.fr`` (older code). :func:`fetch_annuaire` tries
them in :data:`HOSTS` order, the host that answered last first, and falls back to the
other on an error, an HTML page or a missing cached copy. One export per département (no
paging limit)::

    GET /api/explore/v2.1/catalog/datasets/api-lannuaire-administration/exports/json
        ?where=startswith(code_insee_commune,"44")&select=…

answers a JSON list of records. Shapes verified in public code that calls this API
(records with ``id``, ``nom``, ``pivot``, ``code_insee_commune``, ``adresse``,
``telephone``, ``adresse_courriel``, ``site_internet``, ``plage_ouverture``,
``date_modification`` "18/12/2024 17:42:39"; the nested fields come either as lists or as
JSON serialised in a string):

- ``pivot``: ``[{"type_service_local": "mairie", "code_insee_commune": ["92050"]}]``;
  service types (the annuaire's own codes, as listed for example by
  okfnfr/dada-france-authorities): ``pmi`` centre de protection maternelle et infantile,
  ``caf`` caisse d'allocations familiales, ``mairie`` (``mairie_com`` overseas), ``cg``
  conseil départemental, ``ccas``, ``msa``, ``pif`` point info famille, ``cidf``,
  ``france_services`` (today's code, queried as ``pivot like "france_services"`` by
  recent client code; ``msap`` in older records, both kept), ``mission_locale``;
- ``adresse``: ``[{"type_adresse": "Adresse", "numero_voie": "1 place …", "complement1",
  "code_postal", "nom_commune", "latitude": "48.89", "longitude": "2.20"}]`` (strings);
- ``telephone`` / ``site_internet``: ``[{"valeur": …, "description"|"libelle": …}]``;
- ``plage_ouverture``: ``[{"nom_jour_debut": "Lundi", "nom_jour_fin": "Vendredi",
  "valeur_heure_debut_1": "09:00:00", "valeur_heure_fin_1": "12:00:00", …}]``.

Output: :func:`load_annuaire` gives the facilities of the schema it holds (``pmi`` and
``mairie``), :func:`load_annuaire_partners` a contact table of every service type of
:data:`PARTNER_TYPES` (CAF offices among them), with their opening hours.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from collections.abc import Iterable, Mapping
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from data_sources import _http
from data_sources.merge import facility_frame
from data_sources.registry import SourceInfo, register
from diagnosis.errors import SourceError
from diagnosis.schema import Territory, validate_facilities
from diagnosis.settings import WGS84

logger = logging.getLogger(__name__)

#: API hosts, in the order tried (the one in use today first).
HOSTS: tuple[str, ...] = ("https://api-lannuaire.service-public.gouv.fr",
                          "https://api-lannuaire.service-public.fr")
EXPORT_PATH = "/api/explore/v2.1/catalog/datasets/{dataset}/exports/json"
DATASET = "api-lannuaire-administration"
BASE_URL = f"{HOSTS[0]}/api/explore/v2.1"
EXPORT_URL = HOSTS[0] + EXPORT_PATH.format(dataset=DATASET)
#: The host that answered last (tried first next time); process memory only.
_answered: list[str] = []
SELECT = ("id", "nom", "pivot", "code_insee_commune", "adresse", "telephone",
          "adresse_courriel", "site_internet", "plage_ouverture", "date_modification",
          "url_service_public")
#: Service types that are facilities of the schema.
FACILITY_SERVICE_TYPES: dict[str, str] = {"pmi": "pmi", "mairie": "mairie",
                                          "mairie_com": "mairie"}
#: Service types kept as partners (contacts), with their French label.
PARTNER_TYPES: dict[str, str] = {
    "pmi": "Centre de PMI",
    "caf": "Caisse d'allocations familiales (CAF)",
    "mairie": "Mairie",
    "mairie_com": "Mairie",
    "cg": "Conseil départemental",
    "ccas": "Centre communal d'action sociale (CCAS)",
    "msa": "Mutualité sociale agricole (MSA)",
    "pif": "Point info famille",
    "cidf": "Centre d'information sur les droits des femmes et des familles (CIDFF)",
    "france_services": "France services",
    "msap": "France services",
    "mission_locale": "Mission locale",
}
PARTNER_COLUMNS = ("service_type", "service_label", "name", "address", "postcode",
                   "code_insee", "lon", "lat", "phone", "email", "website", "hours",
                   "source_id", "source_date", "url")

ANNUAIRE = register(SourceInfo(
    key="annuaire",
    title="Annuaire de l'administration (service-public.fr) : PMI, CAF, mairies",
    url=EXPORT_URL,
    licence="Licence Ouverte 2.0",
    attribution="DILA, Annuaire de l'administration — service-public.fr",
    vintage="en continu (champ date_modification)",
    crs=WGS84,
    columns=SELECT,
    notes=("Centres de PMI et mairies (structures) ; CAF, CCAS, MSA, points info famille, "
           "France services et conseil départemental comme partenaires."),
))


def _json_list(value: Any) -> list[Any]:
    """A nested annuaire field as a list (it may come as JSON inside a string).

    Examples
    --------
    >>> _json_list('[{"valeur": "01 02"}]'), _json_list(None), _json_list({"a": 1})
    ([{'valeur': '01 02'}], [], [{'a': 1}])
    """
    if value is None or value == "":
        return []
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return [value]
    if isinstance(value, dict):
        return [value]
    return list(value) if isinstance(value, list) else [value]


def service_types(record: Mapping[str, Any]) -> list[str]:
    """The ``type_service_local`` values of a record's ``pivot``.

    Examples
    --------
    >>> service_types({"pivot": '[{"type_service_local": "pmi"}]'})
    ['pmi']
    """
    out = []
    for p in _json_list(record.get("pivot")):
        if isinstance(p, dict) and p.get("type_service_local"):
            out.append(str(p["type_service_local"]).strip())
    return out


def _values(value: Any) -> list[str]:
    out = []
    for v in _json_list(value):
        text = str(v.get("valeur") or "") if isinstance(v, dict) else str(v or "")
        if text.strip():
            out.append(text.strip())
    return out


def _hhmm(text: Any) -> str:
    m = re.match(r"(\d{1,2}):(\d{2})", str(text or ""))
    return f"{int(m.group(1)):02d}h{m.group(2)}" if m else ""


def format_hours(value: Any) -> str:
    """Opening hours in French from ``plage_ouverture`` ("" when not published).

    Examples
    --------
    >>> format_hours([{"nom_jour_debut": "Lundi", "nom_jour_fin": "Vendredi",
    ...                "valeur_heure_debut_1": "09:00:00", "valeur_heure_fin_1": "12:00:00",
    ...                "valeur_heure_debut_2": "14:00:00", "valeur_heure_fin_2": "17:30:00"}])
    'Lundi au Vendredi : 09h00-12h00, 14h00-17h30'
    """
    parts = []
    for p in _json_list(value):
        if not isinstance(p, dict):
            continue
        first, last = str(p.get("nom_jour_debut") or ""), str(p.get("nom_jour_fin") or "")
        days = first if not last or last == first else f"{first} au {last}"
        ranges = []
        for i in range(1, 6):
            a, b = _hhmm(p.get(f"valeur_heure_debut_{i}")), _hhmm(p.get(f"valeur_heure_fin_{i}"))
            if a and b:
                ranges.append(f"{a}-{b}")
        text = f"{days} : {', '.join(ranges)}" if days and ranges else days or ", ".join(ranges)
        note = str(p.get("commentaire") or "").strip()
        if note:
            text = f"{text} ({note})" if text else note
        if text:
            parts.append(text)
    return " ; ".join(parts)


def _address(record: Mapping[str, Any]) -> dict[str, Any]:
    addresses = [a for a in _json_list(record.get("adresse")) if isinstance(a, dict)]
    physical = [a for a in addresses if str(a.get("type_adresse", "")).lower() == "adresse"]
    chosen = next((a for a in physical + addresses if a.get("latitude") and a.get("longitude")),
                  physical[0] if physical else (addresses[0] if addresses else {}))
    street = str(chosen.get("numero_voie") or "").strip()
    extra = [str(chosen.get(k) or "").strip() for k in ("complement1", "complement2")]
    try:
        lon, lat = float(chosen.get("longitude")), float(chosen.get("latitude"))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        lon = lat = np.nan
    if not (np.isfinite([lon, lat]).all() and -180 <= lon <= 180 and -90 <= lat <= 90):
        lon = lat = np.nan
    precision = ("address" if re.search(r"\d", street) else "street") if street else "commune"
    return {"address": ", ".join(s for s in (street, *extra) if s),
            "postcode": str(chosen.get("code_postal") or "").strip(),
            "lon": lon, "lat": lat, "precision": precision}


def _date(text: Any) -> str:
    m = re.match(r"(\d{2})/(\d{2})/(\d{4})", str(text or ""))
    if m:
        return f"{m.group(3)}-{m.group(2)}-{m.group(1)}"
    m = re.match(r"\d{4}-\d{2}-\d{2}", str(text or ""))
    return m.group(0) if m else ""


def fetch_annuaire(
    dep_code: str, *, offline: bool | None = None, refresh: bool = False
) -> list[dict[str, Any]]:
    """Export every record of a département (one request, JSON list)."""
    if not re.fullmatch(r"\d[\dAB]\d?", dep_code):
        raise SourceError(f"{ANNUAIRE.key}: dep_code={dep_code!r} is not a département code")
    params = {"where": f'startswith(code_insee_commune,"{dep_code}")',
              "select": ",".join(SELECT)}
    errors: list[SourceError] = []
    for host in host_order():
        url = host + EXPORT_PATH.format(dataset=DATASET)
        try:
            doc = _http.fetch_json(url, source=ANNUAIRE.key, params=params, offline=offline,
                                   refresh=refresh, check=_check_export)
        except SourceError as exc:
            logger.warning("annuaire: %s; trying the next host", exc)
            errors.append(exc)
            continue
        _answered[:] = [host]
        return list(doc)
    kinds = {e.kind for e in errors}  # every host failed: the same way, or not
    raise SourceError(" ; ".join(str(e) for e in errors),
                      kind=kinds.pop() if len(kinds) == 1 else None, source=ANNUAIRE.key,
                      url=errors[0].url if errors else None)


def host_order() -> list[str]:
    """The API hosts in the order to try: the one that answered last, then :data:`HOSTS`.

    Examples
    --------
    >>> host_order()[0] in HOSTS
    True
    """
    return list(dict.fromkeys([*_answered, *HOSTS]))


def _check_export(doc: Any) -> None:
    if not isinstance(doc, list):
        raise ValueError("not an Opendatasoft JSON export (a list of records was expected)")


def parse_partners(records: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """Turn annuaire records into the partner table :data:`PARTNER_COLUMNS` (pure).

    A record with several kept service types gives one row per type. Records without
    ``id`` or ``nom`` raise :class:`SourceError` naming the fields found.
    """
    rows = []
    for rec in records:
        types = [t for t in service_types(rec) if t in PARTNER_TYPES]
        if not types:
            continue
        missing = [f for f in ("id", "nom") if not rec.get(f)]
        if missing:
            raise SourceError(
                f"{ANNUAIRE.key}: a record lacks {missing}; found {sorted(rec)}. The API "
                "changed: update data_sources/annuaire.py."
            )
        place = _address(rec)
        emails = _values(rec.get("adresse_courriel"))
        for t in dict.fromkeys(types):
            rows.append({
                "service_type": t, "service_label": PARTNER_TYPES[t],
                "name": str(rec.get("nom") or "").strip(),
                "address": place["address"], "postcode": place["postcode"],
                "code_insee": str(rec.get("code_insee_commune") or "").strip(),
                "lon": place["lon"], "lat": place["lat"],
                "phone": (_values(rec.get("telephone")) or [""])[0],
                "email": emails[0] if emails else "",
                "website": (_values(rec.get("site_internet")) or [""])[0],
                "hours": format_hours(rec.get("plage_ouverture")),
                "source_id": str(rec["id"]),
                "source_date": _date(rec.get("date_modification")),
                "url": str(rec.get("url_service_public") or ""),
                "_precision": place["precision"],
            })
    df = pd.DataFrame(rows, columns=[*PARTNER_COLUMNS, "_precision"])
    df["lon"] = df["lon"].astype("float64")
    df["lat"] = df["lat"].astype("float64")
    return df


def parse_facilities(partners: pd.DataFrame) -> tuple[gpd.GeoDataFrame, pd.DataFrame]:
    """PMI centres and town halls of a partner table as facilities (placed, unplaced)."""
    placed, unplaced = [], []
    sub = partners[partners["service_type"].isin(FACILITY_SERVICE_TYPES)]
    for _, r in sub.iterrows():
        rec = {
            "type": FACILITY_SERVICE_TYPES[r["service_type"]], "subtype": "",
            "name": r["name"], "address": r["address"], "postcode": r["postcode"],
            "code_insee": r["code_insee"], "phone": r["phone"], "email": r["email"],
            "website": r["website"], "source": ANNUAIRE.key,
            "source_id": f"{r['source_id']}-{r['service_type']}",
            "source_date": r["source_date"],
        }
        if np.isfinite([r["lon"], r["lat"]]).all():
            rec.update(lon=r["lon"], lat=r["lat"], position_precision=r["_precision"])
            placed.append(rec)
        else:
            unplaced.append(rec)
    return facility_frame(placed), pd.DataFrame(unplaced)


def _deps(area: Territory) -> tuple[str, ...]:
    return area.departements or tuple(sorted({c[:3] if c.startswith("97") else c[:2]
                                              for c in area.communes}))


def load_annuaire_partners(
    area: Territory, *, offline: bool | None = None, refresh: bool = False
) -> pd.DataFrame:
    """Partner contacts (:data:`PARTNER_COLUMNS`) of the communes of ``area``."""
    records: list[dict[str, Any]] = []
    for dep in _deps(area):
        records += fetch_annuaire(dep, offline=offline, refresh=refresh)
    partners = parse_partners(records)
    keep = set(area.communes)
    return partners[partners["code_insee"].isin(keep)].reset_index(drop=True)


def load_annuaire(
    area: Territory, *, offline: bool | None = None, refresh: bool = False
) -> gpd.GeoDataFrame:
    """PMI centres and town halls of ``area`` from the annuaire (validated facilities).

    ``attrs["partners"]`` holds the whole partner table (CAF offices…, without the
    private ``_precision`` column), ``attrs["unplaced"]`` the facilities without a
    position, ``attrs["vintage"]`` the latest ``date_modification``.
    """
    partners = load_annuaire_partners(area, offline=offline, refresh=refresh)
    placed, unplaced = parse_facilities(partners)
    out = validate_facilities(gpd.GeoDataFrame(placed, geometry="geometry", crs=WGS84),
                              source=ANNUAIRE.key)
    dates = sorted(d for d in partners["source_date"] if d)
    out.attrs["partners"] = partners.drop(columns=["_precision"])
    out.attrs["unplaced"] = unplaced
    out.attrs["vintage"] = f"mise à jour jusqu'au {dates[-1]}" if dates else (
        f"consulté le {dt.date.today().isoformat()}")
    return out
