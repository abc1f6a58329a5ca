"""Resolve a territory (commune, EPCI, département) by code or by name.

Pure functions over the Code officiel géographique tables (:class:`CogTables`);
:func:`data_sources.cog.load_cog` loads the shipped COG 2026 tables.

See Also
--------
guides/diagnostic.md : the diagnosis step by step.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from dataclasses import dataclass

import pandas as pd

from diagnosis.errors import InputError
from diagnosis.schema import Territory

_DEP_RE = re.compile(r"^(?:\d{2}|2[AB]|97\d)$")
_COM_RE = re.compile(r"^(?:\d{5}|2[AB]\d{3})$")
_SIREN_RE = re.compile(r"^\d{9}$")
_WITH_DEP_RE = re.compile(r"^(?P<name>.+?)\s*\((?P<dep>\d{2,3}|2[AB])\)$")


@dataclass(frozen=True)
class CogTables:
    """The COG tables a resolution needs (all codes as text).

    Attributes
    ----------
    communes
        Columns ``code, name, kind, dep_code, region_code, epci_code, parent_code,
        former_codes, postcodes, population``; ``kind`` is ``commune`` (current),
        ``deleguee``, ``associee`` or ``arrondissement``; ``parent_code`` the current
        commune of the others.
    epci
        Columns ``code, name, kind, population``.
    departements
        Columns ``code, name, region_code``.
    """

    communes: pd.DataFrame
    epci: pd.DataFrame
    departements: pd.DataFrame


def normalize_name(text: str) -> str:
    """Return a name folded for matching: no accents, no case, no punctuation.

    Examples
    --------
    >>> normalize_name("Saint-Gildas-des-Bois")
    'saint gildas des bois'
    >>> normalize_name("  L'Île-d'Yeu ")
    'l ile d yeu'
    >>> normalize_name("St-Nazaire")
    'saint nazaire'
    """
    text = unicodedata.normalize("NFKD", str(text))
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).casefold()
    text = re.sub(r"[^0-9a-z]+", " ", text).strip()
    text = re.sub(r"\bste\b", "sainte", text)
    text = re.sub(r"\bst\b", "saint", text)
    return text


def resolve_territory(query: str, cog: CogTables) -> Territory:
    """Resolve a commune, an EPCI or a département from a code or a name.

    Parameters
    ----------
    query
        INSEE commune code (``"44129"``), EPCI SIREN (``"200000438"``), département
        code (``"44"``, ``"2A"``, ``"974"``) or a name, accent- and case-blind
        (``"pontchateau"``, ``"Loire-Atlantique"``, ``"Pays de Pontchâteau"``).
        A département in parentheses disambiguates a commune name: ``"Sainte-Marie (974)"``.
    cog
        The COG tables.

    Returns
    -------
    Territory

    Raises
    ------
    InputError
        Unknown code or name (the message lists the closest names), or an ambiguous
        name (the message lists the candidates with their codes).
    """
    q = str(query).strip()
    if not q:
        raise InputError("territory='' is empty; give a commune, EPCI or département code or name")
    upper = q.upper()
    if _DEP_RE.match(upper):
        return _departement(upper, cog)
    if _COM_RE.match(upper):
        return _commune(upper, cog)
    if _SIREN_RE.match(q):
        return _epci(q, cog)
    if q.isdigit():
        raise InputError(
            f"territory={query!r} is not a valid code: use a département code (2 or 3 "
            "characters), an INSEE commune code (5) or an EPCI SIREN (9)"
        )
    return _by_name(q, cog)


def _departement(code: str, cog: CogTables) -> Territory:
    row = cog.departements.loc[cog.departements["code"] == code]
    if row.empty:
        raise InputError(
            f"territory={code!r}: no département has this code in the COG 2026; "
            f"known codes go from {cog.departements['code'].min()} to "
            f"{cog.departements['code'].max()}"
        )
    com = cog.communes
    members = com.loc[(com["kind"] == "commune") & (com["dep_code"] == code), "code"]
    return Territory("departement", code, str(row["name"].iloc[0]),
                     tuple(sorted(members)), (code,))


def _commune(code: str, cog: CogTables) -> Territory:
    com = cog.communes
    row = com.loc[com["code"] == code]
    note = ""
    if row.empty:
        former = com.loc[(com["kind"] == "commune")
                         & com["former_codes"].str.split(" ").map(lambda cs: code in cs)]
        if former.empty:
            raise InputError(
                f"territory={code!r}: no commune has this INSEE code in the COG 2026; "
                "check the code (INSEE code, not the postcode)"
            )
        row = former.iloc[[0]]
        note = f"Le code {code} est un ancien code : commune actuelle {row['name'].iloc[0]}."
    current = row.loc[row["kind"] == "commune"]
    if current.empty:
        # commune déléguée / associée / arrondissement: the diagnosis runs on its parent.
        child = row.iloc[0]
        parent = com.loc[(com["code"] == child["parent_code"]) & (com["kind"] == "commune")]
        if parent.empty:
            raise InputError(f"territory={code!r}: {child['name']} has no current parent commune")
        kinds = {"deleguee": "une commune déléguée", "associee": "une commune associée",
                 "arrondissement": "un arrondissement municipal"}
        note = (f"{child['name']} ({code}) est {kinds.get(child['kind'], child['kind'])} "
                f"de {parent['name'].iloc[0]} : le diagnostic porte sur la commune entière.")
        current = parent
    r = current.iloc[0]
    return Territory("commune", str(r["code"]), str(r["name"]), (str(r["code"]),),
                     (str(r["dep_code"]),), note=note)


def _epci(siren: str, cog: CogTables) -> Territory:
    row = cog.epci.loc[cog.epci["code"] == siren]
    if row.empty:
        raise InputError(
            f"territory={siren!r}: no EPCI has this SIREN in the COG 2026; "
            "check the SIREN (9 digits) or search by name"
        )
    com = cog.communes
    members = com.loc[(com["kind"] == "commune") & (com["epci_code"] == siren)]
    deps = tuple(sorted(members["dep_code"].unique()))
    return Territory("epci", siren, str(row["name"].iloc[0]),
                     tuple(sorted(members["code"])), deps)


def _by_name(query: str, cog: CogTables) -> Territory:
    dep_filter = None
    m = _WITH_DEP_RE.match(query)
    if m:
        query, dep_filter = m.group("name"), m.group("dep").upper()
    key = normalize_name(query)
    com = cog.communes.loc[cog.communes["kind"].isin(["commune", "deleguee", "associee"])]
    if dep_filter:
        com = com.loc[com["dep_code"] == dep_filter]
    names = _name_index(cog, com)
    exact = names.loc[names["key"] == key]
    if exact.empty:
        tokens = key.split()
        contains = names.loc[names["key"].map(lambda k: all(t in k.split() for t in tokens))]
        exact = contains if len(contains) == 1 else exact
    if exact.empty:
        close = difflib.get_close_matches(key, names["key"].unique().tolist(), n=5, cutoff=0.6)
        hints = names.loc[names["key"].isin(close)].drop_duplicates("key")
        hint = "; ".join(f"{r.label} ({r.code})" for r in hints.itertuples()) or "none"
        raise InputError(
            f"territory={query!r} matches no commune, EPCI or département name; "
            f"closest names: {hint}"
        )
    # Prefer current communes over former ones of the same name, départements over EPCIs.
    rank = {"departement": 0, "epci": 1, "commune": 2, "deleguee": 3, "associee": 3}
    exact = exact.assign(_r=exact["kind"].map(rank)).sort_values(["_r", "code"])
    best = exact.loc[exact["_r"] == exact["_r"].iloc[0]]
    if len(best) > 1:
        cands = "; ".join(f"{r.label} ({r.code})" for r in best.head(10).itertuples())
        raise InputError(
            f"territory={query!r} is ambiguous: {cands}. Give the code, or the name with "
            "its département, e.g. 'Sainte-Marie (974)'"
        )
    hit = best.iloc[0]
    if hit["kind"] == "departement":
        return _departement(str(hit["code"]), cog)
    if hit["kind"] == "epci":
        return _epci(str(hit["code"]), cog)
    return _commune(str(hit["code"]), cog)


def _name_index(cog: CogTables, communes: pd.DataFrame) -> pd.DataFrame:
    com = pd.DataFrame({
        "code": communes["code"], "kind": communes["kind"],
        "label": communes["name"] + " (" + communes["dep_code"] + ")",
        "key": communes["key"] if "key" in communes else communes["name"].map(normalize_name),
    })
    epci = pd.DataFrame({
        "code": cog.epci["code"], "kind": "epci", "label": cog.epci["name"],
        "key": cog.epci["key"] if "key" in cog.epci else cog.epci["name"].map(normalize_name),
    })
    dep = pd.DataFrame({
        "code": cog.departements["code"], "kind": "departement",
        "label": cog.departements["name"], "key": cog.departements["name"].map(normalize_name),
    })
    return pd.concat([com, epci, dep], ignore_index=True)
