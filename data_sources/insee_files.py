"""INSEE downloadable files: *comparateur de territoires* and *dossier complet* CSVs.

These are the files a consultant downloads from insee.fr for any territory; the
embedded demo is built from the same files. Parsing is pure (text in, table out):
``s`` (statistical secret) and empty cells stay missing (NaN), never 0.

:func:`read_insee_files` is the entry for files a user gives (any edition, alone or
together, whole or an extract, for a territory): columns are recognised by pattern
(:data:`INDICATORS`: ``P21_POP``/``P22_POP``/``P23_POP``, ``NAISD23``/``NAISD24``/
``NAISD25``, ``MED21``…), the newest year a file holds is used and carried as data
(``<column>_year``), while the output column names stay those of
:data:`diagnosis.schema.NEEDS_COLUMNS` for compatibility (``births_2024`` holds the
births of the file's newest year, ``births_2024_year`` says which). The derived
columns come from :func:`diagnosis.needs.compute_needs`.

:func:`parse_comparateur` and :func:`parse_dossier_complet` (both files of the same
edition) build the embedded demo (:mod:`data_sources.demo.build_demo`).

Formats checked against the shipped files of ``../shared/data/ship/loire-atlantique``
(comparateur 2025 edition, dossier complet subset) and public code reading INSEE bases
(``P21_POP0002`` … in the census population bases by commune and IRIS).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from diagnosis.errors import InputError

#: comparateur column -> needs column (and how to read it)
COMPARATEUR_COLUMNS = {
    "P22_POP": "population_2022",
    "SUPERF": "area_km2",
    "NAISD24": "births_2024",
    "NAIS1621": "births_2016_2021",
    "MED21": "median_income_2021",
    "TP6021": "poverty_rate_2021",
}
#: dossier complet column -> needs column
DOSSIER_COLUMNS = {
    "C22_FAMMONO": "single_parent_families_2022",
    "C22_COUPAENF": "couples_with_children_2022",
    "C22_MENFAM": "family_households_2022",
    "P22_POP0014": "population_0014_2022",
}


def decode_text(raw: bytes, *, file: str) -> str:
    """Decode INSEE CSV bytes: UTF-8 (with or without BOM), else cp1252 (older files)."""
    for enc in ("utf-8-sig", "cp1252"):
        try:
            return raw.decode(enc)
        except UnicodeDecodeError:
            continue
    raise InputError(f"{file}: neither UTF-8 nor cp1252; re-save the file as UTF-8")


def _read_insee_csv(text: str, *, file: str, wanted: dict[str, str]) -> pd.DataFrame:
    if not text.strip():
        raise InputError(f"{file}: the file is empty; download the CSV again from insee.fr")
    first = text.splitlines()[0]
    sep = ";" if first.count(";") >= first.count(",") else ","
    df = pd.read_csv(io.StringIO(text), sep=sep, dtype=str, keep_default_na=False)
    if "CODGEO" not in df.columns:
        raise InputError(
            f"{file}: no CODGEO column (found {list(df.columns)[:12]}…); expected an INSEE "
            "comparateur de territoires or dossier complet CSV, ';'-separated"
        )
    missing = [c for c in wanted if c not in df.columns]
    if missing:
        raise InputError(
            f"{file}: columns {missing} are missing (found {len(df.columns)} columns); "
            f"expected {list(wanted)} — check the edition of the file"
        )
    out = pd.DataFrame({"code_insee": df["CODGEO"].str.strip().str.zfill(5)})
    for src, dst in wanted.items():
        col = df[src].str.strip().str.replace(",", ".", regex=False)
        bad = ~col.isin(["", "s", "nd", "NA"]) & pd.to_numeric(col, errors="coerce").isna()
        if bad.any():
            i = int(bad.to_numpy().nonzero()[0][0])
            raise InputError(
                f"{file}: row {i + 2}, column {src!r} holds {df[src].iloc[i]!r}, not a number; "
                "expected a number, 's' (secret) or an empty cell"
            )
        out[dst] = pd.to_numeric(col, errors="coerce").astype("float64")
    dup = out["code_insee"].duplicated()
    if dup.any():
        raise InputError(f"{file}: CODGEO {out.loc[dup, 'code_insee'].iloc[0]!r} appears twice")
    return out


def parse_comparateur(text: str, *, file: str = "comparateur") -> pd.DataFrame:
    r"""Parse an INSEE *comparateur de territoires* CSV (``;``, decimal comma, ``s`` = secret).

    Examples
    --------
    >>> t = "CODGEO;P22_POP;SUPERF;NAISD24;NAIS1621;MED21;TP6021\n"
    >>> t += "44001;2052;61.76;23;130;20750;13,0\n44002;4121;14.58;29;315;24830;s"
    >>> parse_comparateur(t).poverty_rate_2021.tolist()
    [13.0, nan]
    """
    return _read_insee_csv(text, file=file, wanted=COMPARATEUR_COLUMNS)


def parse_dossier_complet(text: str, *, file: str = "dossier complet") -> pd.DataFrame:
    """Parse the INSEE *dossier complet* CSV (family columns of census 2022)."""
    return _read_insee_csv(text, file=file, wanted=DOSSIER_COLUMNS)


# --------------------------------------------------------------------------------------
# Files from the user: any edition, one or both kinds, for a territory
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Indicator:
    """An indicator recognised in INSEE files by the pattern of its column name.

    Attributes
    ----------
    column
        Output column (the historical name of :data:`diagnosis.schema.NEEDS_COLUMNS`
        or of the base columns of :func:`diagnosis.needs.compute_needs`).
    pattern
        Regular expression matched against the whole column name; group ``y`` is the
        two-digit year (group ``a`` the first year of a cumulated period).
    label
        French label, for notices and the list of missing indicators.
    additive
        Whether values of merged former communes add up (counts, areas); medians and
        rates do not, they stay missing for a merged commune.
    """

    column: str
    pattern: re.Pattern[str]
    label: str
    additive: bool = True


def _ind(column: str, pattern: str, label: str, *, additive: bool = True) -> Indicator:
    return Indicator(column, re.compile(pattern, re.IGNORECASE), label, additive)


#: Indicators read from INSEE files (comparateur de territoires, dossier complet, bases
#: of the census by age), in output order.
INDICATORS: tuple[Indicator, ...] = (
    _ind("population_2022", r"P(?P<y>\d\d)_POP", "population municipale"),
    _ind("births_2024", r"NAISD(?P<y>\d\d)", "naissances domiciliées de l'année"),
    _ind("births_2016_2021", r"NAIS(?P<a>\d\d)(?P<y>\d\d)",
         "naissances cumulées sur six ans"),
    _ind("area_km2", r"SUPERF", "superficie"),
    _ind("median_income_2021", r"MED(?P<y>\d\d)", "revenu disponible médian",
         additive=False),
    _ind("poverty_rate_2021", r"TP60(?P<y>\d\d)", "taux de pauvreté", additive=False),
    _ind("single_parent_families_2022", r"C(?P<y>\d\d)_FAMMONO", "familles monoparentales"),
    _ind("couples_with_children_2022", r"C(?P<y>\d\d)_COUPAENF",
         "couples avec enfant(s)"),
    _ind("family_households_2022", r"C(?P<y>\d\d)_MENFAM", "ménages avec famille"),
    _ind("population_0014_2022", r"P(?P<y>\d\d)_POP0014", "population de 0 à 14 ans"),
    _ind("under3_census", r"P(?P<y>\d\d)_POP0002",
         "enfants de moins de 3 ans (recensement)"),
)
#: Cells read as missing (statistical secret, not available), case-blind.
MISSING_CELLS = frozenset({"", "s", "nd", "n.d.", "nc", "na", "n/a", "secret", "-", "null"})
_CODGEO = re.compile(r"^(?:CODGEO|CODE_?GEO|CODE)$", re.IGNORECASE)
_COMMUNE_CODE = re.compile(r"^(?:\d{5}|2[AB]\d{3})$")


@dataclass(frozen=True)
class InseeImport:
    """What INSEE files gave for a territory.

    Attributes
    ----------
    communes
        One row per commune of the territory (``code_insee``, sorted), with a column
        per indicator of :data:`INDICATORS` (float64, NaN when missing: secret, not in
        the files, not combinable) and ``<column>_year`` (Int64: the year of the value
        used; no year column for ``area_km2``). A commune no file covers has a row of
        NaN and is listed in :attr:`communes_missing`.
    years
        Indicator column -> newest year found in the files (absent: no file has it).
    missing_indicators
        French labels of the indicators no file gives (the diagnosis runs without
        them, and says so).
    notices
        French notices: rows ignored (outside the territory, not a commune), former
        communes merged, files that disagree and which value wins, rescaled periods.
    files
        One line per file read: name, kind (``comparateur de territoires``,
        ``dossier complet`` or ``fichier INSEE``), indicators found with their column.
    communes_missing
        Codes of the territory's communes no file covers.
    communes_partial
        Current communes whose value of an indicator is the sum of the known parts
        only: code -> indicator column -> former codes whose part is missing (also in
        the French text column ``insee_partial`` of :attr:`communes`).
    editions
        Edition of each file read (:func:`file_edition`), ``None`` when unknown.
    rows_outside
        Rows ignored because their commune lies outside the territory (all files).
    """

    communes: pd.DataFrame
    years: dict[str, int]
    missing_indicators: tuple[str, ...]
    notices: tuple[str, ...]
    files: tuple[str, ...]
    communes_missing: tuple[str, ...] = ()
    rows_outside: int = 0
    columns_used: dict[str, dict[str, str]] = field(default_factory=dict)
    communes_partial: dict[str, dict[str, tuple[str, ...]]] = field(default_factory=dict)
    editions: tuple[int | None, ...] = ()


def looks_like_insee_file(columns: Sequence[str]) -> bool:
    """Whether a table's header is that of an INSEE comparateur / dossier complet file.

    A ``CODGEO`` column and at least one indicator of :data:`INDICATORS`, or at least
    three such indicators.

    Examples
    --------
    >>> looks_like_insee_file(["CODGEO", "P22_POP", "NAISD24", "MED21"])
    True
    >>> looks_like_insee_file(["nom", "adresse", "code_insee", "type"])
    False
    """
    names = [str(c).strip() for c in columns]
    hits = sum(any(ind.pattern.fullmatch(n) for ind in INDICATORS) for n in names)
    has_code = any(n.upper() == "CODGEO" for n in names)
    return (has_code and hits >= 1) or hits >= 3


def check_not_insee_file(columns: Sequence[str], *, file_name: str) -> None:
    """Refuse an INSEE file handed as a facility list, saying where it goes.

    For the facility importer (:mod:`data_sources.user_file`): call it on the header
    of a file given to ``--facilities`` or to the facility upload.

    Raises
    ------
    InputError
        When :func:`looks_like_insee_file` recognises the header.

    Examples
    --------
    >>> check_not_insee_file(["nom", "type", "adresse"], file_name="liste.csv")
    >>> try:
    ...     check_not_insee_file(["CODGEO", "P22_POP", "NAISD24"], file_name="base.csv")
    ... except InputError as exc:
    ...     print(str(exc)[:64])
    base.csv est un fichier INSEE (comparateur de territoires ou dos
    """
    if looks_like_insee_file(columns):
        raise InputError(
            f"{file_name} est un fichier INSEE (comparateur de territoires ou dossier "
            f"complet), pas une liste d'équipements : donnez-le avec --insee {file_name} "
            "(ou le dépôt « fichiers INSEE » de la page Territoire), et gardez --facilities "
            "pour la liste des lieux."
        )


def _name_and_bytes(source: object, i: int) -> tuple[str, bytes]:
    if isinstance(source, tuple) and len(source) == 2 and isinstance(source[1], bytes):
        return Path(str(source[0])).name or str(source[0]), source[1]
    if isinstance(source, bytes):
        return f"fichier INSEE n° {i + 1}", source
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.exists():
            raise InputError(
                f"{path} : fichier introuvable ; donnez le chemin du CSV téléchargé sur "
                "insee.fr (comparateur de territoires ou dossier complet)"
            )
        from data_sources._budget import read_file_capped

        # the file name only: no folder of the user's machine in any output
        return path.name, read_file_capped(path, what="fichier INSEE")
    raise InputError(
        f"paths_or_bytes[{i}]={type(source).__name__} : donnez un chemin, des octets ou "
        "un couple (nom, octets)"
    )


def _decode_fr(raw: bytes, *, file: str) -> str:
    for enc in ("utf-8-sig", "cp1252"):
        try:
            return raw.decode(enc)
        except UnicodeDecodeError:
            continue
    raise InputError(f"{file} : ni UTF-8 ni Windows-1252 ; enregistrez le fichier en UTF-8")


@dataclass
class _FileTable:
    name: str
    kind: str
    codes: list[str]
    lines: list[int]
    values: dict[str, np.ndarray]  # indicator column -> float values
    years: dict[str, int]
    used: dict[str, str]  # indicator column -> file column
    span: dict[str, int] = field(default_factory=dict)


def _read_user_file(name: str, raw: bytes) -> _FileTable:
    text = _decode_fr(raw, file=name)
    if not text.strip():
        raise InputError(f"{name} : le fichier est vide ; téléchargez de nouveau le CSV "
                         "sur insee.fr")
    # Some exports put title lines above the header: the header is the first line
    # holding CODGEO (within the first 20 lines).
    first_lines = text[:200_000].splitlines()[:20]
    head_at = next((i for i, ln in enumerate(first_lines)
                    if re.search(r"(?:^|[;,\t\"])CODGEO(?:[;,\t\"]|$)", ln, re.IGNORECASE)),
                   0)
    while head_at < len(first_lines) - 1 and not first_lines[head_at].strip():
        head_at += 1
    header_line = first_lines[head_at]
    sep = max((";", ",", "\t"), key=header_line.count)
    header = [h.strip() for h in next(csv.reader([header_line], delimiter=sep))]
    code_col = next((j for j, h in enumerate(header) if _CODGEO.match(h)), None)
    found: dict[str, tuple[int, int, int | None]] = {}  # column -> (index, year, start)
    for j, h in enumerate(header):
        for ind in INDICATORS:
            m = ind.pattern.fullmatch(h)
            if not m:
                continue
            year = 2000 + int(m.group("y")) if "y" in m.groupdict() else 0
            start = 2000 + int(m.group("a")) if "a" in m.groupdict() else None
            if ind.column not in found or year > found[ind.column][1]:
                found[ind.column] = (j, year, start)
    if not found:
        raise InputError(
            f"{name} : aucune colonne INSEE reconnue (en-tête : {', '.join(header[:10])}…) ; "
            "donnez le CSV du comparateur de territoires ou du dossier complet (colonnes "
            "CODGEO, P22_POP, NAISD24, MED21, C22_FAMMONO…)"
        )
    if code_col is None:
        raise InputError(
            f"{name} : pas de colonne CODGEO (code commune) ; le fichier a des colonnes "
            f"INSEE ({', '.join(header[j] for j, _, _ in found.values())}) mais aucune ne "
            "nomme la commune"
        )
    # Only the columns used are read (a whole dossier complet has ~2,000 columns).
    body_text = "\n".join(text.splitlines()[head_at:])
    wanted = sorted({code_col, *(j for j, _y, _s in found.values())})
    try:
        df = pd.read_csv(io.StringIO(body_text), sep=sep, dtype=str, keep_default_na=False,
                         usecols=wanted, skip_blank_lines=False, header=0,
                         names=list(range(len(header))), engine="c")
    except (ValueError, pd.errors.ParserError) as exc:
        raise InputError(f"{name} : CSV illisible ({exc}) ; téléchargez de nouveau le "
                         "fichier sur insee.fr") from exc
    df = df.fillna("")  # short rows
    df.index = df.index + head_at + 2  # file line numbers (header is line head_at + 1)
    df = df.loc[df.apply(lambda col: col.str.strip().ne("")).any(axis=1)]
    codes = df[code_col].str.strip().str.strip('"').str.upper().tolist()
    line_no = df.index.tolist()
    values: dict[str, np.ndarray] = {}
    for col, (j, _year, _start) in found.items():
        cells = df[j]
        v = (cells.str.strip().str.replace("\u00a0", "", regex=False)
             .str.replace("\u202f", "", regex=False).str.replace(" ", "", regex=False))
        missing = v.str.casefold().isin(MISSING_CELLS)
        v = v.where(v.str.contains(".", regex=False), v.str.replace(",", ".", regex=False))
        num = pd.to_numeric(v.where(~missing), errors="coerce")
        bad = num.isna() & ~missing
        if bad.any():
            line = bad.idxmax()
            raise InputError(
                f"{name} : ligne {line}, colonne {header[j]!r} : {cells[line]!r} n'est pas "
                "un nombre ; attendu un nombre, « s » (secret statistique) ou une case vide"
            )
        neg = num < 0
        if neg.any():
            line = neg.idxmax()
            raise InputError(
                f"{name} : ligne {line}, colonne {header[j]!r} : {cells[line]!r} est négatif"
            )
        values[col] = num.to_numpy(dtype="float64")
    codes = [c.zfill(5) if c.isdigit() and len(c) == 4 else c for c in codes]
    family = {"single_parent_families_2022", "couples_with_children_2022"}
    comp = {"births_2024", "median_income_2021", "poverty_rate_2021", "area_km2"}
    kind = ("dossier complet" if family & set(found) and comp & set(found) else
            "dossier complet (extrait)" if family & set(found) else
            "comparateur de territoires" if comp & set(found) else "fichier INSEE")
    span = {c: y - s + 1 for c, (_j, y, s) in found.items() if s is not None}
    return _FileTable(name=name, kind=kind, codes=codes, lines=line_no, values=values,
                      years={c: y for c, (_j, y, _s) in found.items() if y},
                      used={c: header[j] for c, (j, _y, _s) in found.items()}, span=span)


def _dep_of(code: str) -> str:
    return code[:3] if code.startswith("97") else code[:2]


def file_edition(years: dict[str, int]) -> int | None:
    """Edition of a comparateur / dossier complet file from the years of its columns.

    The file of edition N holds the census of N - 3 (``P22_POP`` in 2025) and the
    births of N - 1 (``NAISD24`` in 2025); ``None`` when neither is there.

    Examples
    --------
    >>> file_edition({"population_2022": 2021, "births_2024": 2022})
    2024
    >>> file_edition({"births_2024": 2024}), file_edition({}) is None
    (2025, True)
    """
    if years.get("population_2022"):
        return years["population_2022"] + 3
    if years.get("births_2024"):
        return years["births_2024"] + 1
    return None


def describe_partial(columns: dict[str, tuple[str, ...]], *,
                     names: pd.Series | dict[str, str] | None = None) -> str:
    """French text of what a partial commune lacks: indicator, then the parts missing.

    Examples
    --------
    >>> print(describe_partial({"births_2024": ("93059",)}, names={"93059": "Pierrefitte"}))
    naissances domiciliées de l'année sans Pierrefitte (93059)
    """
    labels = {ind.column: ind.label for ind in INDICATORS}
    get = (names.get if names is not None else (lambda c, d=None: d))
    out = []
    for col, parts in columns.items():
        who = ", ".join(f"{get(p, p)} ({p})" if get(p, None) else p for p in parts)
        out.append(f"{labels.get(col, col)} sans {who}")
    return " ; ".join(out)


def _combine_former_communes(
    frame: pd.DataFrame,
    table: _FileTable,
    *,
    names: pd.Series,
    arrondissements: set[str],
    reference_population: pd.Series,
) -> tuple[list[pd.DataFrame], list[str], dict[str, dict[str, tuple[str, ...]]]]:
    """Rows of former communes and arrondissements folded into their current commune.

    Two forms of a file exist for a commune merged since (or about when) its edition:

    - *merged totals on the new code*: the row of the current code already holds the
      whole commune, and the former commune's row is empty or holds a few
      indicators. The current code's row is used, the former rows are ignored (said).
      The file is taken to be in this form when the former rows have no population,
      or when the current row's population is nearer the COG 2026 legal population
      of the commune than the sum of all rows is;
    - *parts*: every former commune has its own row (an edition older than the
      merger). Counts are added; a part missing for an indicator does not blank the
      commune: the known parts are added and the missing parts are returned
      (code -> column -> former codes). Medians and rates do not add up: they stay
      missing unless only one row is known and it is the whole commune.
    """
    name = table.name
    notices: list[str] = []
    partial: dict[str, dict[str, tuple[str, ...]]] = {}
    own = frame["code_raw"] == frame["code_insee"]
    parts = frame.loc[~own]
    own_rows = frame.loc[own].set_index("code_insee")
    combined = [frame.loc[own & ~frame["code_insee"].isin(parts["code_insee"])]]
    cols = [ind for ind in INDICATORS if ind.column in table.values]
    pop_col = "population_2022" if "population_2022" in table.values else None
    for key, group in parts.groupby("code_insee"):
        cur = str(key)
        label = f"{names.get(cur, cur)} ({cur})"
        olds = ", ".join(group["code_raw"])
        has_own = cur in own_rows.index
        if has_own and group["code_raw"].isin(arrondissements).all():
            # Paris, Lyon, Marseille: the commune's row already holds its arrondissements
            notices.append(f"{name} : les lignes des arrondissements {olds} sont "
                           f"ignorées : le fichier a aussi la ligne de {label}.")
            combined.append(own_rows.loc[[cur]].reset_index())
            continue
        if has_own and _holds_merged_total(own_rows.loc[[cur]].iloc[0], group, pop_col,
                                           reference_population.get(cur)):
            combined.append(own_rows.loc[[cur]].reset_index())
            notices.append(
                f"{name} : le fichier donne déjà les chiffres de la commune actuelle "
                f"{label} (COG 2026) sur son code ; ligne(s) de l'ancienne commune {olds}, "
                "vide(s) ou partielle(s), ignorée(s).")
            continue
        rows = pd.concat([own_rows.loc[[cur]].reset_index(), group]) if has_own else group
        row: dict[str, object] = {"code_raw": cur, "code_insee": cur}
        lacking_by_col: dict[str, tuple[str, ...]] = {}
        for ind in cols:
            vals = rows[ind.column]
            known = vals.notna()
            if ind.additive and known.any():
                row[ind.column] = float(vals[known].sum())
                if not known.all():
                    lacking_by_col[ind.column] = tuple(rows.loc[~known.to_numpy(), "code_raw"])
            else:
                row[ind.column] = float("nan")
        combined.append(pd.DataFrame([row]))
        parts_text = ", ".join(rows["code_raw"])
        text = (f"{name} : {parts_text} regroupé(s) dans la commune actuelle {label} (COG "
                "2026) : effectifs additionnés ; revenu médian et taux de pauvreté laissés "
                "inconnus (ils ne s'additionnent pas)")
        if lacking_by_col:
            partial[cur] = lacking_by_col
            text += " ; somme des seules parties connues : " + describe_partial(
                lacking_by_col, names=names)
        notices.append(text + ".")
    return combined, notices, partial


def _holds_merged_total(own: pd.Series, parts: pd.DataFrame, pop_col: str | None,
                        reference: float | None) -> bool:
    """Whether the current code's row already holds the merged commune's totals."""
    if pop_col is None:
        known = parts.drop(columns=["code_raw", "code_insee"]).notna().to_numpy()
        return not known.any()
    own_pop = own.get(pop_col)
    part_pop = parts[pop_col]
    if pd.isna(own_pop):
        return False
    if part_pop.isna().all():
        return True
    if reference is None or pd.isna(reference) or reference <= 0:
        return False
    whole = float(own_pop) + float(part_pop.sum())
    return abs(float(own_pop) - reference) < abs(whole - reference)


def source_fields(imp: InseeImport) -> dict[str, str]:
    r"""Title, vintage and notes of the source record of the INSEE files a user gave.

    The edition and the years come from the files' columns (:func:`file_edition`),
    never from the 2025 edition the demo ships; files are named by their file name
    only (never a folder of the user's machine).

    Examples
    --------
    >>> b = b"CODGEO;P21_POP;NAISD22;MED20\n26362;64726;720;19960\n"
    >>> f = source_fields(read_insee_files([("/home/moi/c.csv", b)],
    ...                                    territory_codes=["26362"]))
    >>> f["title"]
    'INSEE, comparateur de territoires (édition 2024)'
    >>> f["vintage"]
    '2024 (naissances 2022, population 2021, Filosofi 2020)'
    >>> f["notes"]
    'Fichiers : c.csv'
    """
    editions = sorted({e for e in imp.editions if e})
    edition = (f"édition {editions[-1]}" if len(editions) == 1 else
               "éditions " + ", ".join(map(str, editions)) if editions else "édition inconnue")
    y = imp.years
    parts = [f"{label} {y[col]}" for col, label in (
        ("births_2024", "naissances"), ("population_2022", "population"),
        ("median_income_2021", "Filosofi"), ("single_parent_families_2022", "familles"))
        if col in y]
    if "median_income_2021" not in y and "poverty_rate_2021" in y:
        parts.append(f"Filosofi {y['poverty_rate_2021']}")
    vintage = (", ".join(map(str, editions)) or "inconnue") + (
        f" ({', '.join(parts)})" if parts else "")
    names = [f.split(" : ")[0] for f in imp.files]
    return {"title": f"INSEE, comparateur de territoires ({edition})", "vintage": vintage,
            "notes": "Fichiers : " + ", ".join(names)}


def read_insee_files(
    paths_or_bytes: Sequence[str | Path | bytes | tuple[str, bytes]],
    *,
    territory_codes: Collection[str],
    cog: object | None = None,
) -> InseeImport:
    r"""Read INSEE files a user gives, for the communes of a territory.

    Parameters
    ----------
    paths_or_bytes
        One or more files: paths, bytes, or ``(name, bytes)`` (an upload). Each is a
        *comparateur de territoires* CSV or a *dossier complet* CSV (whole or an
        extract), of any edition; ``;``, ``,`` or tab separated, UTF-8 or
        Windows-1252, decimal comma or point; ``s``, ``nd`` and empty cells are
        missing (NaN), never 0.
    territory_codes
        Current INSEE codes (COG 2026) of the territory's communes.
    cog
        :class:`diagnosis.territory.CogTables` used to map former communes to current
        ones (default: the shipped COG 2026, :func:`data_sources.cog.load_cog`).

    Returns
    -------
    InseeImport
        See :class:`InseeImport`. How values are combined:

        - the newest year wins: a file with ``P23_POP`` beats one with ``P22_POP``;
          at equal year the file given first wins where both have a value, and a
          notice names the files, the column and how many communes disagree; a
          commune the winning file leaves missing takes the other file's value
          (with its own year);
        - rows of former communes and of municipal arrondissements go to their
          current commune (:func:`_combine_former_communes`): where the file already
          holds the merged totals on the current code, they are used and the former
          rows (empty or partial) ignored; where it holds only the parts, counts
          (population, births, families, area) are added, a part missing for an
          indicator leaves the known parts' sum, listed in
          :attr:`InseeImport.communes_partial` and the column ``insee_partial``;
          medians and rates of parts stay missing (they do not add up); the rows of
          arrondissements are ignored when the file has the commune's row;
        - a cumulated birth count over another span than six years is rescaled to
          six years (the needs use ``births_2016_2021 / 6``), with a notice.

    Raises
    ------
    InputError
        A missing, empty or undecodable file; no recognisable INSEE column; no
        CODGEO column; a cell that is not a number (file, line, column named); a file
        with no commune of the territory (it names the file's départements); a code
        given twice in one file.

    Examples
    --------
    >>> comp = b"CODGEO;P22_POP;NAISD24;MED21;TP6021\n26362;64726;720;19960;s\n"
    >>> imp = read_insee_files([("c.csv", comp)], territory_codes=["26362", "26281"])
    >>> imp.communes[["code_insee", "births_2024", "births_2024_year"]].values.tolist()
    [['26281', nan, <NA>], ['26362', 720.0, 2024]]
    >>> imp.missing_indicators[:2]
    ('naissances cumulées sur six ans', 'superficie')
    """
    if isinstance(paths_or_bytes, (str, bytes, Path)) or not len(paths_or_bytes):
        raise InputError(
            "paths_or_bytes : donnez une liste d'un ou plusieurs fichiers INSEE "
            "(comparateur de territoires, dossier complet)"
        )
    territory = sorted({str(c).strip().upper() for c in territory_codes})
    if not territory:
        raise InputError("territory_codes est vide : résolvez d'abord le territoire")
    ctx = _communes_context(cog)
    tables = [_read_user_file(*_name_and_bytes(src, i)) for i, src in enumerate(paths_or_bytes)]
    notices: list[str] = []
    per_file: list[pd.DataFrame] = []
    partial_by_file: list[dict[str, dict[str, tuple[str, ...]]]] = []
    rows_outside = 0
    for t in tables:
        frame, file_partial, outside = _territory_rows(t, ctx, territory=territory,
                                                       notices=notices)
        rows_outside += outside
        partial_by_file.append(file_partial)
        per_file.append(frame)
    out = pd.DataFrame(index=pd.Index(territory, name="code_insee"))
    years: dict[str, int] = {}
    used: dict[str, dict[str, str]] = {}
    partial: dict[str, dict[str, tuple[str, ...]]] = {}
    for ind in INDICATORS:
        have = [(k, t) for k, t in enumerate(tables) if ind.column in t.values]
        if not have:
            out[ind.column] = np.nan
            if ind.column != "area_km2":
                out[ind.column + "_year"] = pd.Series(pd.NA, index=out.index, dtype="Int64")
            continue
        # newest year first; at equal year the file given first
        have.sort(key=lambda kt: (-kt[1].years.get(ind.column, 0), kt[0]))
        value, year = _combine_indicator(ind, have, per_file, partial_by_file, out.index,
                                         names=ctx.names, notices=notices, partial=partial)
        out[ind.column] = value.astype("float64")
        if ind.column != "area_km2":
            out[ind.column + "_year"] = year
        newest = have[0][1].years.get(ind.column)
        if newest:
            years[ind.column] = newest
        used[ind.column] = {t.name: t.used[ind.column] for _k, t in have}
    covered = set().union(*(set(f.index) for f in per_file))
    missing_communes = tuple(c for c in territory if c not in covered)
    if missing_communes:
        sample = ", ".join(f"{ctx.names.get(c, c)} ({c})" for c in missing_communes[:5])
        notices.append(f"{len(missing_communes)} commune(s) du territoire absente(s) des "
                       f"fichiers INSEE : {sample}{'…' if len(missing_communes) > 5 else ''} ; "
                       "leurs indicateurs restent inconnus.")
    out["insee_partial"] = pd.Series("", index=out.index, dtype=object)
    for code, cols in partial.items():
        out.loc[code, "insee_partial"] = describe_partial(cols, names=ctx.any_names)
    missing = tuple(ind.label for ind in INDICATORS
                    if not any(ind.column in t.values for t in tables))
    files = tuple(f"{t.name} : {t.kind} ({', '.join(t.used.values())})" for t in tables)
    return InseeImport(communes=out.reset_index(), years=years, missing_indicators=missing,
                       notices=tuple(notices), files=files, communes_missing=missing_communes,
                       rows_outside=rows_outside, columns_used=used, communes_partial=partial,
                       editions=tuple(file_edition(t.years) for t in tables))


@dataclass(frozen=True)
class _CommunesContext:
    """What the COG says about the communes, for mapping and naming a file's rows."""

    cog: object  # diagnosis.territory.CogTables (imported lazily)
    current_codes: frozenset[str]
    names: pd.Series  # current communes' names by code
    any_names: pd.Series  # current and former communes' names by code
    arrondissements: frozenset[str]
    reference_population: pd.Series


def _communes_context(cog: object | None) -> _CommunesContext:
    if cog is None:
        from data_sources.cog import load_cog

        cog = load_cog()
    from diagnosis.territory import CogTables

    if not isinstance(cog, CogTables):
        raise InputError(f"cog={type(cog).__name__} : attendu diagnosis.territory.CogTables")
    com = cog.communes
    names = com.loc[com["kind"] == "commune"].set_index("code")["name"]
    # names of former communes too (communes déléguées / associées), for the notices
    any_names = pd.concat([names, com.loc[com["kind"] != "commune"].drop_duplicates(
        "code").set_index("code")["name"]])
    ref_pop = (pd.to_numeric(com.loc[com["kind"] == "commune"].set_index("code")["population"],
                             errors="coerce")
               if "population" in com else pd.Series(dtype="float64"))
    return _CommunesContext(
        cog=cog, current_codes=frozenset(com.loc[com["kind"] == "commune", "code"].tolist()),
        names=names, any_names=any_names[~any_names.index.duplicated()],
        arrondissements=frozenset(com.loc[com["kind"] == "arrondissement", "code"]),
        reference_population=ref_pop)


def _current_codes(t: _FileTable, ctx: _CommunesContext, *, territory: Collection[str],
                   notices: list[str]) -> tuple[list[str | None], int]:
    """The territory's current commune of each row of ``t`` (``None``: ignored, noted).

    Returns the codes and the number of rows of communes outside the territory.
    """
    from diagnosis.territory import CogTables, current_commune

    assert isinstance(ctx.cog, CogTables)
    seen: dict[str, int] = {}
    for code, line in zip(t.codes, t.lines, strict=True):
        if code in seen and _COMMUNE_CODE.match(code):
            raise InputError(
                f"{t.name} : le code commune {code!r} apparaît deux fois (lignes "
                f"{seen[code]} et {line}) ; gardez une seule ligne par commune"
            )
        seen.setdefault(code, line)
    target: list[str | None] = []
    not_commune = unknown = outside = 0
    for code in t.codes:
        if not _COMMUNE_CODE.match(code):
            not_commune += 1
            target.append(None)
            continue
        cur = code if code in ctx.current_codes else None
        if cur is None:
            hit = current_commune(code, ctx.cog)
            cur = hit[0] if hit else None
            if cur is None:
                unknown += 1
                target.append(None)
                continue
        if cur not in territory:
            outside += 1
            target.append(None)
            continue
        target.append(cur)
    if not any(x is not None for x in target):
        deps = sorted({_dep_of(c) for c in t.codes if _COMMUNE_CODE.match(c)})
        tdeps = sorted({_dep_of(c) for c in territory})
        raise InputError(
            f"{t.name} : aucune commune du territoire dans ce fichier (il couvre le(s) "
            f"département(s) {', '.join(deps) or 'aucun'}, le territoire le(s) "
            f"département(s) {', '.join(tdeps)}) ; téléchargez le fichier du bon "
            "territoire sur insee.fr"
        )
    if outside:
        notices.append(f"{t.name} : {outside} ligne(s) de communes hors du territoire "
                       "ignorée(s).")
    if not_commune:
        notices.append(f"{t.name} : {not_commune} ligne(s) qui ne sont pas des communes "
                       "(totaux, autres niveaux) ignorée(s).")
    if unknown:
        notices.append(f"{t.name} : {unknown} ligne(s) de codes inconnus du COG 2026 "
                       "ignorée(s).")
    return target, outside


def _territory_rows(
    t: _FileTable, ctx: _CommunesContext, *, territory: Collection[str], notices: list[str],
) -> tuple[pd.DataFrame, dict[str, dict[str, tuple[str, ...]]], int]:
    """One file's values by current commune of the territory, former communes combined.

    Returns the frame (indexed by ``code_insee``), the partial sums by commune and
    indicator, and the number of rows outside the territory.
    """
    target, outside = _current_codes(t, ctx, territory=set(territory), notices=notices)
    frame = pd.DataFrame({"code_raw": t.codes, "code_insee": target, **t.values})
    frame = frame.loc[frame["code_insee"].notna()]
    combined, merge_notices, file_partial = _combine_former_communes(
        frame, t, names=ctx.any_names, arrondissements=set(ctx.arrondissements),
        reference_population=ctx.reference_population)
    notices += merge_notices
    frame = pd.concat(combined, ignore_index=True).drop(columns="code_raw")
    for col, n in t.span.items():
        if n != 6 and n > 0:
            frame[col] = frame[col] * 6.0 / n
            notices.append(f"{t.name} : {t.used[col]} couvre {n} ans ; ramené à six ans "
                           "pour la moyenne annuelle.")
    return frame.set_index("code_insee"), file_partial, outside


def _combine_indicator(
    ind: Indicator, have: Sequence[tuple[int, _FileTable]], per_file: Sequence[pd.DataFrame],
    partial_by_file: Sequence[dict[str, dict[str, tuple[str, ...]]]], index: pd.Index, *,
    names: pd.Series, notices: list[str], partial: dict[str, dict[str, tuple[str, ...]]],
) -> tuple[pd.Series, pd.Series]:
    """One indicator's values and years, from the files that hold it (best file first).

    A commune the first file leaves missing takes the next file's value; disagreements
    are noted; partial sums are recorded in ``partial``.
    """
    value = pd.Series(np.nan, index=index)
    year = pd.Series(pd.NA, index=index, dtype="Int64")
    for rank, (k, t) in enumerate(have):
        v = per_file[k][ind.column].reindex(index)
        y = t.years.get(ind.column)
        if rank:
            win = have[0][1]
            both = value.notna() & v.notna()
            differ = both & ((value - v).abs() > np.maximum(0.5, 0.001 * value.abs()))
            wy, ty = win.years.get(ind.column, 0), t.years.get(ind.column, 0)
            if differ.any():
                why = (f"plus récent ({wy} contre {ty})" if wy > ty else
                       "à millésime égal, le premier fichier donné l'emporte")
                ex = differ[differ].index[0]
                notices.append(
                    f"{ind.label} : {win.name} ({win.used[ind.column]}) et {t.name} "
                    f"({t.used[ind.column]}) diffèrent pour {int(differ.sum())} commune(s) "
                    f"(par exemple {names.get(ex, ex)} : {value[ex]:g} contre {v[ex]:g}) ; "
                    f"{win.name} l'emporte : {why}.")
        fill = value.isna() & v.notna()
        value[fill] = v[fill]
        parts = partial_by_file[k]
        if parts:  # the value used is the sum of known parts only (few communes have parts)
            filled = {str(c) for c in fill.index[fill.to_numpy(dtype=bool)].to_numpy(dtype=object)}
            for code, lacks in parts.items():
                lacking = lacks.get(ind.column)
                if lacking and code in filled:
                    partial.setdefault(code, {})[ind.column] = lacking
        if y:
            year[fill] = y
    return value, year
