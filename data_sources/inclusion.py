"""Parenting-related structures from the data·inclusion API.

data·inclusion is the national commons of social-inclusion structures and services (it
consolidates several producers). Verified in its public code (gip-inclusion/data-inclusion,
``api/src/data_inclusion/api``):

- base URL ``https://api.data.inclusion.gouv.fr`` (``config.BASE_URL``); routes
  ``/api/v1/structures`` and ``/api/v1/services``, **token required** in production
  (``TOKEN_ENABLED``; a Bearer token obtained through the form on data.gouv.fr
  *API data·inclusion*); set it with the ``MAILLAGE_DATA_INCLUSION_TOKEN`` environment
  variable or the ``token`` argument;
- query parameters ``code_departement``, ``code_commune``, ``sources``, ``page`` (from 1)
  and ``size`` (default 5,000, at most 10,000);
- pages are ``{"items": [...], "total": n, "page": p, "size": k, "pages": m}``;
- structure fields (schema v1): ``id``, ``source``, ``nom``, ``date_maj``, ``commune``,
  ``code_postal``, ``code_insee``, ``adresse``, ``complement_adresse``, ``longitude``,
  ``latitude``, ``telephone``, ``courriel``, ``site_web``, ``reseaux_porteurs`` (list); schema
  v0 had ``typologie`` (``CS`` centre social, ``CSC``, ``EVS``, ``MQ`` maison de quartier,
  ``AVIP`` crèche à vocation d'insertion professionnelle…): both are read.

Mapping to facility types (first rule that matches; names are compared accent- and
case-blind): names saying *lieu d'accueil enfants-parents* / LAEP → ``laep``; *relais
petite enfance* / RPE / RAM → ``rpe``; *protection maternelle* / PMI → ``pmi``; *maison des
1000 premiers jours* → ``maison_1000_jours``; typologie CS/CSC/MQ or réseau ``fcsf`` or a
name *centre social / socio-culturel* → ``centre_social``; typologie EVS or *espace de vie
sociale* → ``evs``; typologie AVIP, réseau ``creches-avip`` or a crèche-like name → ``eaje``.
Other structures are not relevant to a diagnosis of the first 1000 days and are dropped.
"""

from __future__ import annotations

import logging
import os
import re
import unicodedata
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

BASE_URL = "https://api.data.inclusion.gouv.fr/api/v1"
TOKEN_ENV = "MAILLAGE_DATA_INCLUSION_TOKEN"
PAGE_SIZE = 5000
REQUIRED_FIELDS = ("id", "nom", "latitude", "longitude", "code_insee")

#: (regex on the normalised name, (type, subtype)) — specific names first.
NAME_RULES: tuple[tuple[str, tuple[str, str]], ...] = (
    (r"lieu d accueil enfants? parents?|\blaep\b", ("laep", "")),
    (r"relais (petite enfance|assistant)|\brpe\b|\bram\b", ("rpe", "")),
    (r"protection maternelle|\bpmi\b", ("pmi", "")),
    (r"1000 premiers jours|mille premiers jours", ("maison_1000_jours", "")),
    (r"micro creche", ("eaje", "micro_creche")),
    (r"halte garderie", ("eaje", "halte_garderie")),
    (r"multi accueil", ("eaje", "multi_accueil")),
    (r"creche parentale", ("eaje", "creche_parentale")),
    (r"creche familiale", ("eaje", "creche_familiale")),
    (r"centre (social|socio ?culturel)", ("centre_social", "")),
    (r"espace de vie sociale|\bevs\b", ("evs", "")),
    (r"\bcreche\b", ("eaje", "")),
)
#: schema v0 ``typologie`` codes.
TYPOLOGIES: dict[str, tuple[str, str]] = {
    "CS": ("centre_social", ""),
    "CSC": ("centre_social", ""),
    "MQ": ("centre_social", "maison_de_quartier"),
    "EVS": ("evs", ""),
    "AVIP": ("eaje", ""),
}
#: schema v1 ``reseaux_porteurs`` values.
RESEAUX: dict[str, tuple[str, str]] = {
    "fcsf": ("centre_social", ""),
    "creches-avip": ("eaje", ""),
}

INCLUSION = register(SourceInfo(
    key="data_inclusion",
    title="data·inclusion — structures d'insertion et de soutien (API)",
    url=f"{BASE_URL}/structures",
    licence="Licence Ouverte 2.0 (selon les producteurs)",
    attribution="data·inclusion (GIP Plateforme de l'inclusion) et ses producteurs",
    vintage="en continu (champ date_maj)",
    crs=WGS84,
    columns=REQUIRED_FIELDS + ("source", "date_maj", "adresse", "typologie | reseaux_porteurs"),
    notes="Accès par jeton ; seules les structures liées à la parentalité sont gardées.",
))


def _plain(text: str) -> str:
    text = unicodedata.normalize("NFKD", str(text)).encode("ascii", "ignore").decode().lower()
    return re.sub(r"[^a-z0-9]+", " ", text).strip()


def classify(structure: Mapping[str, Any]) -> tuple[str, str] | None:
    """Return (type, subtype) for a structure, or ``None`` when not parenting-related.

    Examples
    --------
    >>> classify({"nom": "LAEP La Courte Échelle"})
    ('laep', '')
    >>> classify({"nom": "Association Les Amis", "typologie": "CS"})
    ('centre_social', '')
    >>> classify({"nom": "Mission locale"}) is None
    True
    """
    name = _plain(structure.get("nom") or "")
    for pattern, target in NAME_RULES[:4]:
        if re.search(pattern, name):
            return target
    typ = str(structure.get("typologie") or "").strip().upper()
    if typ in TYPOLOGIES:
        return TYPOLOGIES[typ]
    for reseau in structure.get("reseaux_porteurs") or []:
        if str(reseau) in RESEAUX:
            return RESEAUX[str(reseau)]
    for pattern, target in NAME_RULES[4:]:
        if re.search(pattern, name):
            return target
    return None


def _token(token: str | None) -> str:
    tok = token or os.environ.get(TOKEN_ENV, "").strip()
    if not tok:
        raise SourceError(
            f"{INCLUSION.key}: the data·inclusion API needs an access token; ask for one on "
            "data.gouv.fr (« API data·inclusion ») and set the environment variable "
            f"{TOKEN_ENV}, or skip this source."
        )
    return tok


def fetch_structures(
    *,
    dep_code: str,
    token: str | None = None,
    page_size: int = PAGE_SIZE,
    max_pages: int = 100,
    offline: bool | None = None,
    refresh: bool = False,
) -> list[dict[str, Any]]:
    """Fetch every structure of a département, page by page."""
    off = _http.get_config().offline if offline is None else offline
    headers = {} if off else {"Authorization": f"Bearer {_token(token)}"}
    items: list[dict[str, Any]] = []
    for page in range(1, max_pages + 1):
        doc = _http.fetch_json(
            f"{BASE_URL}/structures", source=INCLUSION.key,
            params={"code_departement": dep_code, "page": page, "size": page_size},
            headers=headers, offline=offline, refresh=refresh, check=_check_page,
        )
        items.extend(doc["items"])
        pages = doc.get("pages")
        if not doc["items"] or (isinstance(pages, int) and page >= pages):
            return items
    raise SourceError(
        f"{INCLUSION.key}: more than {max_pages} pages for dep_code={dep_code!r}; "
        "raise max_pages."
    )


def _check_page(doc: Any) -> None:
    if not isinstance(doc, dict) or not isinstance(doc.get("items"), list):
        raise ValueError("not a data·inclusion page (no 'items' list)")


def parse_structures(items: Iterable[Mapping[str, Any]]) -> tuple[gpd.GeoDataFrame, pd.DataFrame]:
    """Turn API structures into a facility table (relevant ones) and unplaced rows (pure).

    Raises
    ------
    SourceError
        When the items lack :data:`REQUIRED_FIELDS` (the message names them).
    """
    items = list(items)
    if items:
        fields = set().union(*(i.keys() for i in items))
        missing = [f for f in REQUIRED_FIELDS if f not in fields]
        if missing:
            raise SourceError(
                f"{INCLUSION.key}: structures lack fields {missing}; found {sorted(fields)}. "
                "The API changed: update data_sources/inclusion.py."
            )
    placed, unplaced = [], []
    for it in items:
        target = classify(it)
        if target is None:
            continue
        address = ", ".join(str(it.get(k) or "").strip()
                            for k in ("adresse", "complement_adresse") if it.get(k))
        rec: dict[str, Any] = {
            "type": target[0], "subtype": target[1],
            "name": str(it.get("nom") or "").strip(),
            "address": address,
            "postcode": str(it.get("code_postal") or ""),
            "code_insee": str(it.get("code_insee") or ""),
            "phone": str(it.get("telephone") or ""),
            "email": str(it.get("courriel") or ""),
            "website": str(it.get("site_web") or ""),
            "operator": str(it.get("source") or ""),
            "source": INCLUSION.key,
            "source_id": str(it["id"]),
            "source_date": str(it.get("date_maj") or ""),
        }
        lon, lat = it.get("longitude"), it.get("latitude")
        try:
            lonf, latf = float(lon), float(lat)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            lonf = latf = np.nan
        if np.isfinite([lonf, latf]).all():
            rec.update(lon=lonf, lat=latf,
                       position_precision="address" if address else "commune")
            placed.append(rec)
        else:
            unplaced.append(rec)
    return facility_frame(placed), pd.DataFrame(unplaced)


def load_inclusion(
    area: Territory,
    *,
    token: str | None = None,
    offline: bool | None = None,
    refresh: bool = False,
) -> gpd.GeoDataFrame:
    """Load the parenting-related data·inclusion structures of ``area``."""
    deps = area.departements or tuple(sorted({c[:3] if c.startswith("97") else c[:2]
                                              for c in area.communes}))
    items: list[dict[str, Any]] = []
    for dep in deps:
        items += fetch_structures(dep_code=dep, token=token, offline=offline, refresh=refresh)
    placed, unplaced = parse_structures(items)
    keep = set(area.communes)
    placed = placed[placed["code_insee"].isin(keep)]
    placed = placed.drop_duplicates("facility_id")
    out = validate_facilities(gpd.GeoDataFrame(placed, geometry="geometry", crs=WGS84),
                              source=INCLUSION.key)
    out.attrs["unplaced"] = unplaced[unplaced["code_insee"].isin(keep)] if len(unplaced) else (
        unplaced)
    return out
