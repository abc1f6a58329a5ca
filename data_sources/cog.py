"""The Code officiel géographique 2026, shipped compactly in the package.

Any French commune, EPCI, département or région resolves from these tables, whether or
not its data is loaded (communes, EPCI, départements: ``data_sources/demo/``; régions:
``data_sources/national/``). Custom territories (a named list of communes, a communes
file) resolve here too.
"""

from __future__ import annotations

import csv
import io
import re
import threading
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from data_sources._geoparquet import read_parquet_frame
from data_sources.national import ept_of_communes, load_ept
from diagnosis.errors import InputError
from diagnosis.schema import Territory, isin_codes
from diagnosis.territory import (
    CogTables,
    custom_territory,
    normalize_name,
    normalize_names,
    resolve_territory,
    spread_notices,
)

DEMO_DIR = Path(__file__).resolve().parent / "demo"
NATIONAL_DIR = Path(__file__).resolve().parent / "national"
#: Column names taken as the commune code in a communes file (normalised, see
#: :func:`diagnosis.territory.normalize_name`).
CODE_COLUMNS = ("code insee", "code_insee", "codgeo", "code commune", "code", "insee",
                "depcom", "com", "code commune insee")
_CODE_RE = re.compile(r"^(?:\d{5}|2[AB]\d{3})$", re.IGNORECASE)


@lru_cache(maxsize=1)
def load_cog() -> CogTables:
    """The shipped COG 2026 tables (communes, EPCI, départements, régions), once.

    The départements and régions are read at once; the communes and EPCI when first
    used (see :class:`_ShippedCog`).
    """
    return _ShippedCog()


class _ShippedCog(CogTables):
    """The shipped tables, the communes and EPCI read on first use.

    A département resolves from its row, which lists its current communes (built with
    the tables, checked against them by ``tests/test_cog.py``), so ``summary --territory
    44`` never reads the 37,600 communes (30-40 ms); any other use of ``communes`` or
    ``epci`` reads both, once, under a lock (the app's threads).
    """

    def __init__(self) -> None:
        reg_file = NATIONAL_DIR / "cog2026_regions.parquet"
        object.__setattr__(self, "departements",
                           read_parquet_frame(DEMO_DIR / "cog2026_departements.parquet"))
        object.__setattr__(self, "regions",
                           read_parquet_frame(reg_file) if reg_file.is_file() else None)
        object.__setattr__(self, "_cache", {})
        object.__setattr__(self, "_lock", threading.Lock())

    def __getattr__(self, name: str) -> Any:  # only for what is not read yet
        if name not in ("communes", "epci"):
            raise AttributeError(name)
        with self.__dict__["_lock"]:
            if name not in self.__dict__:
                communes, epci = _communes_and_epci()
                object.__setattr__(self, "communes", communes)
                object.__setattr__(self, "epci", epci)
        return self.__dict__[name]

    def __reduce__(self) -> tuple[Any, ...]:  # a lock does not pickle: read again there
        return (load_cog, ())


def _communes_and_epci() -> tuple[pd.DataFrame, pd.DataFrame]:
    """The communes (with their EPT) and the EPCI (with the 11 EPT) of the shipped COG."""
    com = read_parquet_frame(DEMO_DIR / "cog2026_communes.parquet")
    epci = read_parquet_frame(DEMO_DIR / "cog2026_epci.parquet")
    # The 11 EPT of the Métropole du Grand Paris resolve like EPCIs (by name and SIREN)
    # and are their communes' intercommunalité; the COG's EPCI list does not hold them.
    # (131 member communes: set by position, summed in Python; a map and a group-by over
    # the 37,590 rows cost 45 ms at a command's first call)
    ept = load_ept()
    member = ept_of_communes()["ept_code"]
    hit = (com["kind"].to_numpy() == "commune") & com["code"].isin(member.index).to_numpy()
    ept_code = np.full(len(com), "", dtype=object)
    ept_code[hit] = member.loc[com["code"][hit]].to_numpy()
    com["ept_code"] = ept_code
    pop: dict[str, float] = {}
    for code, people in zip(ept_code[hit], com["population"].to_numpy()[hit], strict=True):
        if people == people:  # a commune's population unknown (NaN) adds nothing
            pop[code] = pop.get(code, 0.0) + float(people)
    epci = pd.concat([epci, pd.DataFrame({
        "code": ept["code"], "name": ept["name"], "kind": "EPT",
        "population": ept["code"].map(pop).astype("float64")})], ignore_index=True)
    # the shipped tables hold their names' keys (folded when built); the EPT's are folded
    for df in (com, epci):
        todo = df["key"].isna() if "key" in df else pd.Series(True, index=df.index)
        if todo.any():
            df.loc[todo, "key"] = normalize_names(df.loc[todo, "name"])
    return com, epci


def resolve(query: str) -> Territory:
    """Resolve a commune, EPCI, département, région or ``"Name=code,…"`` list.

    See :func:`diagnosis.territory.resolve_territory`. A custom list also gets a
    warning when it is wider than
    :data:`~diagnosis.territory.MAX_CUSTOM_WIDTH_KM` (:func:`with_width_notice`).
    """
    return with_width_notice(resolve_territory(query, load_cog()))


def with_width_notice(territory: Territory) -> Territory:
    """A custom territory with a French warning when it is too wide (shipped geography).

    Across seas is already said by :func:`diagnosis.territory.custom_territory`; the
    width needs the communes' reference points, read from the national geography.
    """
    if territory.kind != "custom" or len(territory.departements) == 0:
        return territory
    from dataclasses import replace

    from data_sources.national import load_national_communes

    geo = load_national_communes(departements=list(territory.departements))
    geo = geo.loc[isin_codes(geo["code_insee"], territory.communes)]
    if len(geo) < 2:
        return territory
    import geopandas as gpd

    pts = gpd.GeoSeries(gpd.points_from_xy(geo["point_lon"], geo["point_lat"]),
                        crs="EPSG:4326").to_crs("EPSG:2154")
    notes = [n for n in spread_notices(territory.departements,
                                       points_xy_m=zip(pts.x, pts.y, strict=True))
             if n not in territory.notices]
    if not notes:
        return territory
    return replace(territory, note="\n".join([*territory.notices, *notes]))


def departement_name(code: str) -> str | None:
    """Name of a département from its code (``"44"`` -> ``"Loire-Atlantique"``), or None."""
    cog = load_cog()
    names = cog._cache.get("departement_names")
    if not isinstance(names, dict):  # built once per table (compare asks 200 times)
        dep = cog.departements
        names = cog._cache["departement_names"] = dict(zip(
            dep["code"].astype(str).tolist(), dep["name"].astype(str).tolist(), strict=True))
    found = names.get(str(code))
    return None if found is None else str(found)


def read_communes_file(source: str | Path | bytes, *, file: str | None = None) -> list[str]:
    """Read the commune codes of a communes file.

    Parameters
    ----------
    source
        A path, or the file's bytes (an upload). Either one code per line (blank
        lines and lines starting with ``#`` skipped), or a CSV (``;``, ``,`` or tab)
        whose header has a code column (:data:`CODE_COLUMNS`: ``code_insee``,
        ``CODGEO``, ``code``…). UTF-8 or Windows-1252.
    file
        Name used in messages (default: the path, or ``"fichier de communes"``).

    Returns
    -------
    list of str
        The codes in file order (upper case, a leading zero restored when a
        spreadsheet dropped it: ``1001`` -> ``"01001"``).

    Raises
    ------
    InputError
        Missing or empty file, no code column, or cells that are not commune codes
        (the message names the file, the line and the value).
    """
    if isinstance(source, bytes):
        raw, name = source, file or "fichier de communes"
    else:
        path = Path(source)
        name = file or str(path)
        if not path.exists():
            raise InputError(f"{name} : fichier introuvable ; donnez le chemin du fichier "
                             "de communes (un code INSEE par ligne, ou un CSV avec une "
                             "colonne code_insee)")
        from data_sources._budget import read_file_capped

        raw = read_file_capped(path, what="fichier de communes")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("cp1252")
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    if not lines:
        raise InputError(f"{name} : le fichier est vide ; mettez un code INSEE par ligne")
    head = lines[0]
    seps = [s for s in (";", ",", "\t") if s in head]
    first_cell = re.split(r"[;,\t]", head)[0].strip().strip('"')
    codes: list[tuple[int, str]] = []
    if seps and not _CODE_RE.match(_pad(first_cell)):
        sep = max(seps, key=head.count)
        rows = list(csv.reader(io.StringIO("\n".join(lines)), delimiter=sep))
        header = [normalize_name(h) for h in rows[0]]
        col = next((header.index(normalize_name(c)) for c in CODE_COLUMNS
                    if normalize_name(c) in header), None)
        if col is None:
            raise InputError(
                f"{name} : aucune colonne de code commune dans l'en-tête {rows[0]!r} ; "
                "nommez-la code_insee (ou CODGEO)"
            )
        codes = [(i + 2, r[col].strip() if col < len(r) else "") for i, r in
                 enumerate(rows[1:])]
    elif not seps and not _CODE_RE.match(_pad(first_cell)) and len(lines) > 1:
        # one column with a header line (e.g. "code_insee")
        codes = [(i + 2, ln.strip().strip('"')) for i, ln in enumerate(lines[1:])]
        if normalize_name(first_cell) not in {normalize_name(c) for c in CODE_COLUMNS}:
            codes = [(1, first_cell), *codes]
    else:
        codes = [(i + 1, re.split(r"[;,\t]", ln)[0].strip().strip('"'))
                 for i, ln in enumerate(lines)]
    out: list[str] = []
    for line, value in codes:
        code = _pad(value)
        if not _CODE_RE.match(code):
            raise InputError(
                f"{name} : ligne {line}, {value!r} n'est pas un code commune INSEE "
                "(5 caractères, par exemple 26362 ou 2A004)"
            )
        out.append(code.upper())
    return out


def _pad(value: str) -> str:
    v = value.strip().strip('"')
    return v.zfill(5) if v.isdigit() and len(v) == 4 else v


def territory_from_communes_file(
    source: str | Path | bytes, *, name: str | None = None, file: str | None = None
) -> Territory:
    """A custom territory from a communes file (see :func:`read_communes_file`).

    ``name`` defaults to the file name without its extension.
    """
    label = name or (Path(file or str(source)).stem if not isinstance(source, bytes)
                     else Path(file or "territoire").stem)
    return with_width_notice(custom_territory(label, read_communes_file(source, file=file),
                                              load_cog()))
