"""Existing Maisons des 1000 premiers jours: the shipped list and the federation's own file.

The shipped list ``maisons_1000j_connues.csv`` (15 Maisons or projects, one public page or
article per row) is a **labelled, non-exhaustive start**: about a hundred projects exist
in 2025, and the federation's own list comes from a user file
(:func:`load_federation_maisons`). Rows name a commune and a département, not a point:
each is placed at the town hall of its commune (``position_precision = "commune"``),
never pretending more. Nothing is lost: a row whose commune cannot be found is kept in
the report with its reason.

Four steps as every loader: :func:`read_known_maisons` (the packaged bytes, no network),
:func:`parse_known_maisons` (pure), :func:`place_maisons` (commune -> town hall) and
:func:`diagnosis.schema.validate_facilities`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from io import StringIO
from pathlib import Path
from typing import cast

import geopandas as gpd
import numpy as np
import pandas as pd

from data_sources.registry import SourceInfo, register
from diagnosis.errors import InputError
from diagnosis.schema import validate_facilities
from diagnosis.settings import WGS84
from diagnosis.territory import normalize_name

KNOWN_FILE = Path(__file__).resolve().parent / "maisons_1000j_connues.csv"
MAISON_TYPE = "maison_1000_jours"
#: Columns of the shipped list.
KNOWN_COLUMNS: tuple[str, ...] = ("nom", "commune", "departement", "adresse", "statut_date",
                                  "porteur", "source_url")
#: ``status`` of a Maison: open, or a project under way (announced, building).
STATUS_OPEN = "ouverte"
STATUS_PROJECT = "en projet"
_PROJECT_WORDS = re.compile(r"envisag|à venir|a venir|première pierre|premiere pierre|"
                            r"en projet|prévue|prevue", re.IGNORECASE)

KNOWN_MAISONS = register(SourceInfo(
    key="maisons_connues",
    title="Maisons des 1000 premiers jours connues (liste de départ, non exhaustive)",
    url="pages publiques et articles cités ligne par ligne (colonne source_url)",
    licence="faits tirés de pages publiques et d'articles ; compilation sous Licence "
            "Ouverte 2.0",
    attribution="Maillage, liste des Maisons connues compilée depuis des pages publiques",
    vintage="2023–2025 selon les lignes",
    columns=KNOWN_COLUMNS,
    notes="15 Maisons ou projets cités publiquement, placés à la mairie de leur commune. "
          "Liste non exhaustive (une centaine de projets existent en 2025) : donnez la "
          "liste de la fédération pour un plan juste.",
))


@dataclass(frozen=True)
class MaisonsLoad:
    """Existing Maisons placed, and the rows that could not be.

    Attributes
    ----------
    maisons
        Facility table (schema of :mod:`diagnosis.schema`, plus ``notes`` and
        ``source_url``), type ``maison_1000_jours``.
    rejected
        Rows not placed: ``row`` (1-based data row), ``nom``, ``reason`` (French).
    rows_read
        Data rows read: ``rows_read == len(maisons) + len(rejected)``.
    source
        Source key (``maisons_connues`` or ``user:<file>``).
    """

    maisons: gpd.GeoDataFrame
    rejected: pd.DataFrame
    rows_read: int
    source: str
    notes: tuple[str, ...] = field(default=())

    def summary_fr(self) -> str:
        """One French line: how many rows read, placed, rejected."""
        text = (f"{self.rows_read} ligne(s) lue(s), {len(self.maisons)} Maison(s) placée(s) "
                "à la mairie de leur commune")
        if len(self.rejected):
            text += f", {len(self.rejected)} non placée(s) : " + " ; ".join(
                f"ligne {r.row} ({r.nom}) : {r.reason}"
                for r in self.rejected.itertuples())
        return text


def read_known_maisons() -> str:
    """The shipped list's text (packaged with Maillage: no network)."""
    return KNOWN_FILE.read_text(encoding="utf-8")


def parse_known_maisons(text: str) -> pd.DataFrame:
    r"""Rows of the shipped list, as text, with ``row`` (1-based) and ``status``.

    ``status`` is :data:`STATUS_PROJECT` when ``statut_date`` says the Maison is
    announced or being built (« envisagée », « à venir », « première pierre »),
    :data:`STATUS_OPEN` otherwise.

    Examples
    --------
    >>> t = ("nom,commune,departement,adresse,statut_date,porteur,source_url\n"
    ...      "M,Nice,06,,ouverte en 2023,Dép.,https://x\n"
    ...      "N,Grasse,6,,envisagée (2023),Dép.,https://y\n")
    >>> parse_known_maisons(t)[["row", "departement", "status"]].values.tolist()
    [[1, '06', 'ouverte'], [2, '06', 'en projet']]
    """
    df = pd.read_csv(StringIO(text), dtype=str, keep_default_na=False)
    missing = [c for c in KNOWN_COLUMNS if c not in df.columns]
    if missing:
        raise InputError(f"list of Maisons lacks columns {missing}; found {list(df.columns)}",
                         argument="maisons_1000j_connues.csv", value=list(df.columns),
                         fr=f"la liste des Maisons n'a pas les colonnes {', '.join(missing)} "
                            f"(colonnes trouvées : {', '.join(map(str, df.columns))})")
    df = df.loc[:, list(KNOWN_COLUMNS)].apply(lambda s: s.str.strip())
    dep = df["departement"]
    df["departement"] = dep.where(~dep.str.fullmatch(r"\d"), "0" + dep)
    df.insert(0, "row", np.arange(1, len(df) + 1))
    df["status"] = np.where(df["statut_date"].str.contains(_PROJECT_WORDS), STATUS_PROJECT,
                            STATUS_OPEN)
    return cast("pd.DataFrame", df)


def place_maisons(rows: pd.DataFrame, communes: pd.DataFrame, *,
                  source: str = KNOWN_MAISONS.key) -> MaisonsLoad:
    """Place each Maison at the town hall of its commune (name + département).

    Parameters
    ----------
    rows
        Output of :func:`parse_known_maisons`.
    communes
        Communes with ``code_insee``, ``name``, ``dep_code`` and ``point_lon`` /
        ``point_lat`` (the reference point: town hall, else inside the commune), e.g.
        :func:`data_sources.national.load_national_communes`.
    source
        Source key written in each row.

    Returns
    -------
    MaisonsLoad
        A commune name found twice in the département, or not at all, rejects the row
        with its reason (nothing is dropped in silence).
    """
    com = pd.DataFrame(communes)
    key = com["name"].map(normalize_name) + "|" + com["dep_code"].astype(str)
    counts = key.value_counts()
    index = dict(zip(key, range(len(com)), strict=True))
    placed, rejected = [], []
    for rec in rows.to_dict("records"):
        r = {k: str(v) for k, v in rec.items()}
        row, nom, commune, dep = int(rec["row"]), r["nom"], r["commune"], r["departement"]
        k = f"{normalize_name(commune)}|{dep}"
        if not commune:
            rejected.append((row, nom, "commune non indiquée"))
            continue
        if k not in index:
            rejected.append((row, nom, f"commune « {commune} » introuvable dans le "
                                       f"département {dep}"))
            continue
        if counts[k] > 1:
            rejected.append((row, nom, f"plusieurs communes « {commune} » dans le "
                                       f"département {dep}"))
            continue
        c = com.iloc[index[k]]
        if not (np.isfinite(c["point_lon"]) and np.isfinite(c["point_lat"])):
            rejected.append((row, nom, f"commune « {commune} » sans point connu"))
            continue
        note = "; ".join(v for v in (r["statut_date"], r["porteur"]) if v)
        placed.append({
            "facility_id": f"{source}:{row}", "type": MAISON_TYPE, "subtype": "",
            "name": nom, "address": r["adresse"], "postcode": "",
            "code_insee": str(c["code_insee"]), "capacity": np.nan, "operator": r["porteur"],
            "phone": "", "email": "", "website": "", "source": source,
            "source_id": str(row), "source_date": _year(r["statut_date"]),
            "position_precision": "commune", "notes": f"{r['status']} ({note})",
            "source_url": r["source_url"],
            "geometry": gpd.points_from_xy([c["point_lon"]], [c["point_lat"]])[0],
        })
    gdf = gpd.GeoDataFrame(placed, geometry="geometry", crs=WGS84) if placed else \
        gpd.GeoDataFrame({"geometry": []}, geometry="geometry", crs=WGS84)
    if placed:
        gdf = validate_facilities(gdf, source=source)
    rej = pd.DataFrame(rejected, columns=["row", "nom", "reason"])
    return MaisonsLoad(gdf, rej, rows_read=len(rows), source=source)


def load_known_maisons(communes: pd.DataFrame | None = None) -> MaisonsLoad:
    """The shipped list of known Maisons, placed at their communes' town halls.

    ``communes`` defaults to the shipped national geography.
    """
    if communes is None:
        from data_sources.national import load_national_communes

        communes = load_national_communes()
    return place_maisons(parse_known_maisons(read_known_maisons()), communes)


def load_federation_maisons(path: str | Path | tuple[str, bytes],
                            communes: pd.DataFrame) -> MaisonsLoad:
    """The federation's own list of Maisons (CSV, GeoJSON or GeoPackage).

    A file with the shipped list's columns (``nom``, ``commune``, ``departement``…) is
    placed like it; any other facility file goes through the user-file importer
    (:func:`data_sources.user_file.load_facility_file`) with every row typed as a
    Maison, its import report kept (accepted, flagged, rejected rows).
    """
    name = path[0] if isinstance(path, tuple) else Path(path).name
    data = path[1] if isinstance(path, tuple) else Path(path).read_bytes()
    source = f"user:{name}"
    if name.lower().endswith(".csv"):
        text = _decode(data)
        head = text.splitlines()[0] if text else ""
        if all(c in head for c in ("nom", "commune", "departement")):
            out = place_maisons(parse_known_maisons(text), communes, source=source)
            return out
    from data_sources.user_file import load_facility_file
    from data_sources.workspace import town_halls

    com = gpd.GeoDataFrame(communes, geometry="geometry", crs=WGS84) \
        if not isinstance(communes, gpd.GeoDataFrame) else communes
    res = load_facility_file(data, name=name, default_type=MAISON_TYPE,
                             town_halls=town_halls(com))
    fac = res.facilities.loc[res.facilities["type"].eq(MAISON_TYPE)]
    other = len(res.facilities) - len(fac)
    rej = pd.DataFrame(
        [(int(r.get("row", 0) or 0), str(r.get("name", "")), str(r.get("reason", "")))
         for r in res.report.rejected.to_dict("records")],
        columns=["row", "nom", "reason"])
    notes: tuple[str, ...] = (res.report.summary_fr(),)
    if other:
        notes += (f"{other} ligne(s) d'un autre type que « Maison des 1000 premiers "
                  "jours » ignorée(s) pour le plan.",)
    return MaisonsLoad(fac.reset_index(drop=True), rej, rows_read=res.report.rows_read,
                       source=source, notes=notes)


def _decode(data: bytes) -> str:
    for enc in ("utf-8-sig", "cp1252"):
        try:
            return data.decode(enc)
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1")


def _year(text: str) -> str:
    """The last four-digit year in a status text, or ``""``.

    Examples
    --------
    >>> _year("inaugurée le 08/01/2024 ouverte le 09/01/2024"), _year("ouverte")
    ('2024', '')
    """
    years = re.findall(r"(?<!\d)(20\d\d)(?!\d)", text)
    return years[-1] if years else ""
