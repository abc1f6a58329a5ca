"""INSEE downloadable files: *comparateur de territoires* and *dossier complet* CSVs.

These are the files a consultant downloads from insee.fr for any territory; the
embedded demo is built from the same files. Parsing is pure (text in, table out):
``s`` (statistical secret) and empty cells stay missing (NaN), never 0.

Read with :func:`load_insee_files`; the columns produced are the base columns of
:data:`diagnosis.schema.NEEDS_COLUMNS` (derived ones come from
:func:`diagnosis.needs.compute_needs`).
"""

from __future__ import annotations

import io
from pathlib import Path

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


def load_insee_files(comparateur: str | Path, dossier_complet: str | Path) -> pd.DataFrame:
    """Read both INSEE files from disk and join them on the commune code.

    Parameters
    ----------
    comparateur, dossier_complet
        Paths to the CSVs downloaded from insee.fr.

    Returns
    -------
    pandas.DataFrame
        One row per commune: ``code_insee`` plus the base need columns.
    """
    paths = {"comparateur": Path(comparateur), "dossier": Path(dossier_complet)}
    for p in paths.values():
        if not p.is_file():
            raise InputError(
                f"{p}: file not found; give the path of the CSV downloaded from insee.fr")
    comp_name, doss_name = str(comparateur), str(dossier_complet)
    comp = parse_comparateur(decode_text(paths["comparateur"].read_bytes(), file=comp_name),
                             file=comp_name)
    doss = parse_dossier_complet(decode_text(paths["dossier"].read_bytes(), file=doss_name),
                                 file=doss_name)
    only = set(comp["code_insee"]) ^ set(doss["code_insee"])
    if only:
        raise InputError(
            f"{comparateur} and {dossier_complet} cover different communes "
            f"(e.g. {sorted(only)[:5]}); download both files for the same territory"
        )
    return comp.merge(doss, on="code_insee", how="inner", validate="one_to_one")
