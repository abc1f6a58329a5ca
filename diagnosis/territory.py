"""Resolve a territory (commune, EPCI, département, région, custom list) by code or name.

Pure functions over the Code officiel géographique tables (:class:`CogTables`);
:func:`data_sources.cog.load_cog` loads the shipped COG 2026 tables.

A *custom* territory is a named list of communes (``"Plaine Commune=93066,93001"``,
see :func:`custom_territory`) or the communes an area drawn on a map intersects
(:func:`territory_from_polygon`): groupings that are not EPCIs (établissements
publics territoriaux, pays, cantons) work this way. How a query was resolved (a
former commune code, a commune déléguée, a duplicate) is never silent: it is said,
in French, in :attr:`~diagnosis.schema.Territory.note`, one notice per line
(:attr:`~diagnosis.schema.Territory.notices`).

See Also
--------
guides/diagnostic.md : the diagnosis step by step.
"""

from __future__ import annotations

import difflib
import hashlib
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import cast

import geopandas as gpd
import numpy as np
import pandas as pd
from shapely.geometry.base import BaseGeometry

from diagnosis.errors import InputError
from diagnosis.schema import Territory, isin_codes


class UnknownTerritoryError(InputError):
    """No commune, EPCI or département has this name.

    ``candidates`` holds the closest labels (``"Pontchâteau (44129)"``), possibly none.
    """


class AmbiguousTerritoryError(InputError):
    """Several territories of the same rank have this name; ``candidates`` holds them."""

_DEP_RE = re.compile(r"^(?:\d{2}|2[AB]|97\d)$")
_COM_RE = re.compile(r"^(?:\d{5}|2[AB]\d{3})$")
_SIREN_RE = re.compile(r"^\d{9}$")
_WITH_DEP_RE = re.compile(r"^(?P<name>.+?)\s*\((?P<dep>\d{2,3}|2[AB])\)$")
#: A région by code needs a prefix (région codes collide with département codes:
#: ``44`` is Grand Est and Loire-Atlantique): ``"région 52"``, ``"region:52"``, ``"REG52"``.
_REGION_RE = re.compile(r"^(?:r[ée]g(?:ion)?)\s*[:\-\s]?\s*(?P<code>\d{2})$", re.IGNORECASE)


@dataclass(frozen=True)
class CogTables:
    """The COG tables a resolution needs (all codes as text).

    Attributes
    ----------
    communes
        Columns ``code, name, kind, dep_code, region_code, epci_code, parent_code,
        former_codes, postcodes, population`` (and ``ept_code``: the établissement
        public territorial of the Métropole du Grand Paris, empty elsewhere); ``kind``
        is ``commune`` (current), ``deleguee``, ``associee`` or ``arrondissement``;
        ``parent_code`` the current commune of the others.
    epci
        Columns ``code, name, kind, population``; ``kind`` ``EPT`` for the 11
        établissements publics territoriaux, which resolve like EPCIs.
    departements
        Columns ``code, name, region_code`` (and ``communes``, the codes of its current
        communes separated by spaces, when the table lists them: the shipped one does).
    regions
        Columns ``code, name`` (``None``: régions do not resolve).
    """

    communes: pd.DataFrame
    epci: pd.DataFrame
    departements: pd.DataFrame
    regions: pd.DataFrame | None = None
    #: Lookups built from the tables on first use (see :func:`_code_index`).
    _cache: dict[str, object] = field(default_factory=dict, init=False, repr=False,
                                      compare=False)


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


_NOT_ALNUM_RE = re.compile(r"[^0-9a-z\x00]+")
_STE_RE = re.compile(r"\bste\b")
_ST_RE = re.compile(r"\bst\b")


def normalize_names(texts: Iterable[object]) -> list[str]:
    """:func:`normalize_name` of many names at once (same result, a few C passes).

    The names are joined with NUL (a character none of the steps changes or moves
    across), folded in one pass and split again; a name holding a NUL is folded alone.

    Examples
    --------
    >>> normalize_names(["Saint-Gildas-des-Bois", "  L'Île-d'Yeu ", "Ste-Luce", None])
    ['saint gildas des bois', 'l ile d yeu', 'sainte luce', 'none']
    """
    items = [str(t) for t in texts]
    if any("\x00" in t for t in items):
        return [normalize_name(t) for t in items]
    joined = unicodedata.normalize("NFKD", "\x00".join(items))
    marks = {ord(ch): None for ch in set(joined) if unicodedata.combining(ch)}
    joined = _NOT_ALNUM_RE.sub(" ", joined.translate(marks).casefold())
    joined = _ST_RE.sub("saint", _STE_RE.sub("sainte", joined))
    return [part.strip() for part in joined.split("\x00")] if items else []


def resolve_territory(query: str, cog: CogTables) -> Territory:
    """Resolve a commune, an EPCI, a département, a région or a custom list.

    Parameters
    ----------
    query
        INSEE commune code (``"44129"``), EPCI SIREN (``"200000438"``), département
        code (``"44"``, ``"2A"``, ``"974"``), région code with a prefix
        (``"région 52"``), or a name, accent- and case-blind (``"pontchateau"``,
        ``"Loire-Atlantique"``, ``"Pays de Pontchâteau"``, ``"Bretagne"``).
        A département in parentheses disambiguates a commune name: ``"Sainte-Marie (974)"``.
        ``"Name=code,code,…"`` is a custom territory (see :func:`custom_territory`).
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
        raise InputError("territoire vide : donnez le code ou le nom d'une commune, d'une "
                         "intercommunalité ou d'un département")
    if "=" in q:
        name, _, codes = q.partition("=")
        return custom_territory(name, re.split(r"[,;\s]+", codes), cog)
    if normalize_name(q) in {"fr", "france", "france entiere"}:
        return france(cog)
    region = _REGION_RE.match(q)
    if region:
        return _region(region.group("code"), cog)
    upper = q.upper()
    if _DEP_RE.match(upper):
        return _departement(upper, cog)
    if _COM_RE.match(upper):
        return _commune(upper, cog)
    if _SIREN_RE.match(q):
        return _epci(q, cog)
    if q.isdigit():
        raise InputError(
            f"territoire {query!r} : ce n'est pas un code valide ; donnez un code de "
            "département (2 ou 3 caractères), un code commune INSEE (5) ou un SIREN "
            "d'intercommunalité (9)"
        )
    return _by_name(q, cog)


def france(cog: CogTables) -> Territory:
    """All current communes of France (mainland and overseas départements): ``FR``.

    Examples
    --------
    >>> from data_sources.cog import load_cog
    >>> t = france(load_cog())
    >>> t.kind, t.code, len(t.departements)
    ('pays', 'FR', 101)
    """
    com = cog.communes
    dep = com["dep_code"].astype(str)
    # the 101 départements; the collectivités d'outre-mer (975, 977, 978, 98x) are not
    # départements and have no commune polygons in the shipped geography
    in_deps = (dep.str.len() == 2) | dep.isin(("971", "972", "973", "974", "976"))
    members = com.loc[com["kind"].eq("commune") & in_deps]
    deps = tuple(sorted(members["dep_code"].astype(str).unique()))
    return Territory("pays", "FR", "France", tuple(sorted(members["code"].tolist())), deps)


def _departement(code: str, cog: CogTables) -> Territory:
    row = cog.departements.loc[cog.departements["code"] == code]
    if row.empty:
        raise InputError(
            f"territoire {code!r} : aucun département n'a ce code dans le COG 2026 ; "
            f"les codes connus vont de {cog.departements['code'].min()} à "
            f"{cog.departements['code'].max()}"
        )
    if "communes" in row:  # the shipped table lists them: the communes table is not read
        codes = tuple(sorted(str(row["communes"].iloc[0]).split()))
    else:
        codes = tuple(sorted(cog.communes["code"].iloc[_members(cog, "dep_code", code)]
                             .tolist()))
    return Territory("departement", code, str(row["name"].iloc[0]), codes, (code,))


def _region(code: str, cog: CogTables) -> Territory:
    regions = cog.regions
    row = regions.loc[regions["code"] == code] if regions is not None else pd.DataFrame()
    if row.empty:
        known = ", ".join(sorted(regions["code"])) if regions is not None else "aucune"
        raise InputError(
            f"territory='région {code}' : aucune région n'a ce code dans le COG 2026 "
            f"(codes connus : {known})"
        )
    com = cog.communes
    members = com.loc[(com["kind"] == "commune") & (com["region_code"] == code)]
    deps = tuple(sorted(members["dep_code"].unique()))
    return Territory("region", code, str(row["name"].iloc[0]),
                     tuple(sorted(members["code"].tolist())), deps)


def _code_index(cog: CogTables) -> tuple[dict[str, list[int]], dict[str, int], set[str]]:
    """Row positions of each code, the row of each former code, the current codes.

    Built once per :class:`CogTables` (a dict lookup instead of a scan of the 38,845
    rows for every code): ``by_code[code]`` lists the rows holding ``code`` in table
    order; ``former[code]`` is the first current commune listing ``code`` among its
    ``former_codes``; ``current`` holds the codes of current communes.
    """
    hit = cog._cache.get("codes")
    if hit is None:
        com = cog.communes
        codes, kinds = com["code"].tolist(), com["kind"].tolist()
        by_code: dict[str, list[int]] = {}
        for i, c in enumerate(codes):
            by_code.setdefault(c, []).append(i)
        former: dict[str, int] = {}
        for i, (kind, cs) in enumerate(zip(kinds, com["former_codes"].tolist(), strict=True)):
            if kind == "commune" and isinstance(cs, str):
                for c in cs.split(" "):
                    former.setdefault(c, i)
        current = {c for c, k in zip(codes, kinds, strict=True) if k == "commune"}
        hit = cog._cache["codes"] = (by_code, former, current)
    return hit  # type: ignore[return-value]


def _members(cog: CogTables, column: str, value: str) -> list[int]:
    """Rows (in table order) of the current communes whose ``column`` is ``value``.

    The first question on a column scans it once (1 ms); a second one builds the index
    of all its values (15-20 ms), which the next ones read: ``compare --by epci`` asks
    for each EPCI, ``summary`` for one (a shipped département lists its communes in its
    row and asks nothing).
    """
    key = f"members:{column}"
    index = cog._cache.get(key)
    com = cog.communes
    if isinstance(index, dict):
        return cast("list[int]", index.get(value, []))
    current = com["kind"].eq("commune").to_numpy()
    if index is None:  # first question: a scan
        cog._cache[key] = "asked"
        return np.flatnonzero(current & com[column].eq(value).to_numpy()).tolist()
    rows: dict[str, list[int]] = {}
    for i, v in enumerate(com[column].tolist()):
        if current[i]:
            rows.setdefault(v, []).append(i)
    cog._cache[key] = rows
    return rows.get(value, [])


def _commune(code: str, cog: CogTables) -> Territory:
    com = cog.communes
    by_code, former, _ = _code_index(cog)
    row = com.iloc[by_code.get(code, [])]
    note = ""
    if row.empty:
        if code not in former:
            raise InputError(
                f"territoire {code!r} : aucune commune n'a ce code INSEE dans le COG "
                "2026 ; vérifiez le code (code INSEE, pas le code postal)"
            )
        row = com.iloc[[former[code]]]
        note = f"Le code {code} est un ancien code : commune actuelle {row['name'].iloc[0]}."
    current = row.loc[row["kind"] == "commune"]
    if current.empty:
        # commune déléguée / associée / arrondissement: the diagnosis runs on its parent.
        child = row.iloc[0]
        parent = com.iloc[by_code.get(child["parent_code"], [])]
        parent = parent.loc[parent["kind"] == "commune"]
        if parent.empty:
            raise InputError(f"territoire {code!r} : {child['name']} n'a pas de commune "
                             "actuelle de rattachement dans le COG 2026")
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
            f"territoire {siren!r} : aucune intercommunalité (EPCI, EPT du Grand Paris, "
            "Métropole de Lyon) n'a ce SIREN dans le COG 2026 ; vérifiez le SIREN "
            "(9 chiffres) ou cherchez par le nom"
        )
    com = cog.communes
    rows = set(_members(cog, "epci_code", siren))
    if "ept_code" in com:
        rows |= set(_members(cog, "ept_code", siren))
    members = com.iloc[sorted(rows)]
    deps = tuple(sorted(members["dep_code"].unique()))
    return Territory("epci", siren, str(row["name"].iloc[0]),
                     tuple(sorted(members["code"].tolist())), deps)


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
        labels = [f"{r.label} ({r.code})" for r in hints.itertuples()]
        hint = "; ".join(labels) or "aucun"
        fr = (f"aucun territoire ne s'appelle « {query} » ; noms les plus proches : "
              f"{', '.join(labels)}" if labels else
              f"aucun territoire ne correspond à « {query} » : essayez un code INSEE de "
              "commune (5 caractères), un SIREN d'EPCI (9 chiffres) ou un code de "
              "département")
        raise UnknownTerritoryError(
            f"territoire {query!r} : aucune commune, intercommunalité ou département ne "
            f"porte ce nom ; noms les plus proches : {hint}",
            argument="territoire", value=query, candidates=labels, fr=fr,
        )
    # Prefer current communes over former ones of the same name, départements over EPCIs.
    rank = {"departement": 0, "region": 0.5, "epci": 1, "commune": 2, "deleguee": 3,
            "associee": 3}
    exact = exact.assign(_r=exact["kind"].map(rank)).sort_values(["_r", "code"])
    best = exact.loc[exact["_r"] == exact["_r"].iloc[0]]
    if len(best) > 1:
        labels = [f"{r.label} ({r.code})" for r in best.head(10).itertuples()]
        raise AmbiguousTerritoryError(
            f"territoire {query!r} ambigu : {'; '.join(labels)}. Donnez le code, ou le nom "
            "avec son département, par exemple 'Sainte-Marie (974)'",
            argument="territoire", value=query, candidates=labels,
            hint="Sainte-Marie (974)",
            fr=(f"plusieurs territoires s'appellent « {query} » : {', '.join(labels)}. "
                "Précisez le code, ou le nom avec son département, par exemple "
                "« Sainte-Marie (974) »"),
        )
    hit = best.iloc[0]
    if hit["kind"] == "departement":
        return _departement(str(hit["code"]), cog)
    if hit["kind"] == "region":
        return _region(str(hit["code"]), cog)
    if hit["kind"] == "epci":
        return _epci(str(hit["code"]), cog)
    return _commune(str(hit["code"]), cog)


def _name_index(cog: CogTables, communes: pd.DataFrame) -> pd.DataFrame:
    com = pd.DataFrame({
        "code": communes["code"], "kind": communes["kind"],
        "label": communes["name"] + " (" + communes["dep_code"] + ")",
        "key": communes["key"] if "key" in communes else normalize_names(communes["name"]),
    })
    epci = pd.DataFrame({
        "code": cog.epci["code"], "kind": "epci", "label": cog.epci["name"],
        "key": cog.epci["key"] if "key" in cog.epci else normalize_names(cog.epci["name"]),
    })
    dep = pd.DataFrame({
        "code": cog.departements["code"], "kind": "departement",
        "label": cog.departements["name"], "key": cog.departements["name"].map(normalize_name),
    })
    frames = [com, epci, dep]
    if cog.regions is not None:
        frames.append(pd.DataFrame({
            "code": cog.regions["code"], "kind": "region",
            "label": "Région " + cog.regions["name"],
            "key": cog.regions["name"].map(normalize_name),
        }))
    return pd.concat(frames, ignore_index=True)


#: A custom territory wider than this (km, between its two farthest communes) gets a
#: warning: a Maison serves families within reach, not a région.
MAX_CUSTOM_WIDTH_KM = 200.0


def _sea_group(dep: str) -> str:
    if dep in ("2A", "2B"):
        return "la Corse"
    if dep.startswith("97"):
        return {"971": "la Guadeloupe", "972": "la Martinique", "973": "la Guyane",
                "974": "La Réunion", "976": "Mayotte"}.get(dep, f"l'outre-mer ({dep})")
    return "la France continentale"


def spread_notices(departements: Iterable[str], *,
                   points_xy_m: Iterable[tuple[float, float]] | None = None) -> list[str]:
    """French warnings for a custom territory across seas or too wide.

    Parameters
    ----------
    departements
        Département codes of its communes.
    points_xy_m
        Reference points of its communes in one metric CRS (Lambert-93), when known:
        the width is the largest distance between two of them.

    Returns
    -------
    list of str
        One warning per problem (empty when none).

    Examples
    --------
    >>> print(spread_notices(["974", "13", "2A"])[0][:88])
    Ce territoire réunit des communes séparées par la mer (la France continentale, la Corse,
    >>> print(spread_notices(["44"], points_xy_m=[(0, 0), (250_000, 0)])[0][:48])
    Ce territoire s'étend sur 250 km, plus de 200 km
    >>> spread_notices(["44", "49"], points_xy_m=[(0, 0), (50_000, 0)])
    []
    """
    out: list[str] = []
    deps = sorted({str(d) for d in departements},
                  key=lambda d: (d.startswith("97"), d in ("2A", "2B"), d))
    groups = list(dict.fromkeys(_sea_group(d) for d in deps))
    if len(groups) > 1:
        out.append("Ce territoire réunit des communes séparées par la mer ("
                   + ", ".join(groups) + ") : les distances, les temps de trajet, la "
                   "zone desservie et l'implantation n'ont pas de sens d'une rive à l'autre ; "
                   "faites un diagnostic par territoire d'un seul tenant.")
    pts = list(points_xy_m or [])
    if len(groups) == 1 and len(pts) > 1:
        import numpy as np
        from scipy.spatial import ConvexHull, QhullError
        from scipy.spatial.distance import pdist

        xy = np.asarray(pts, dtype="float64")
        xy = xy[np.isfinite(xy).all(axis=1)]
        try:
            hull = xy[ConvexHull(xy).vertices] if len(xy) > 3 else xy
        except QhullError:  # collinear points
            hull = xy
        width_km = float(pdist(hull).max()) / 1000 if len(hull) > 1 else 0.0
        if width_km > MAX_CUSTOM_WIDTH_KM:
            out.append(f"Ce territoire s'étend sur {width_km:.0f} km, plus de "
                       f"{MAX_CUSTOM_WIDTH_KM:.0f} km d'une commune à l'autre : une Maison "
                       "des 1000 premiers jours sert les familles à portée ; vérifiez la "
                       "liste des communes ou découpez le territoire.")
    return out


def custom_code(communes: Iterable[str]) -> str:
    """Stable code of a custom territory: the same communes give the same code.

    Examples
    --------
    >>> custom_code(["93066", "93001"]) == custom_code(["93001", "93066"])
    True
    >>> custom_code(["93001"])[:1]
    'c'
    """
    key = ",".join(sorted(set(communes)))
    return "c" + hashlib.sha256(key.encode("ascii")).hexdigest()[:12]


def current_commune(code: str, cog: CogTables) -> tuple[str, str] | None:
    """The current commune (code, notice) an INSEE code stands for, or ``None``.

    A current commune gives itself with an empty notice; a former code (merged
    commune), a commune déléguée / associée or a municipal arrondissement gives its
    current commune and a French notice saying so.

    Examples
    --------
    >>> com = pd.DataFrame({"code": ["44129", "44999"], "name": ["Pontchâteau", "Vieux"],
    ...     "kind": ["commune", "deleguee"], "dep_code": ["44", "44"],
    ...     "parent_code": ["", "44129"], "former_codes": ["44111", ""]})
    >>> cog = CogTables(com, pd.DataFrame(), pd.DataFrame())
    >>> current_commune("44129", cog)
    ('44129', '')
    >>> current_commune("44111", cog)[0], current_commune("44999", cog)[0]
    ('44129', '44129')
    >>> current_commune("44000", cog) is None
    True
    """
    code = str(code).strip().upper()
    if code in _code_index(cog)[2]:  # a current commune: one set lookup
        return code, ""
    try:
        t = _commune(code, cog)
    except InputError:
        return None
    return t.code, t.note


def custom_territory(name: str, codes: Iterable[str], cog: CogTables) -> Territory:
    """A custom territory: a named list of communes (kind ``"custom"``).

    Parameters
    ----------
    name
        Its name as the user gives it (``"Plaine Commune"``).
    codes
        INSEE commune codes. Former codes of merged communes, communes déléguées and
        municipal arrondissements are resolved to their current commune, each with a
        notice; a code given twice counts once (with a notice).
    cog
        The COG tables.

    Returns
    -------
    Territory
        ``kind="custom"``, ``code`` from :func:`custom_code` (the same communes give
        the same code, whatever their order or name), the notices in ``note``.

    Raises
    ------
    InputError
        An empty name or list, or codes that are no commune of the COG 2026 (all of
        them are named).

    Examples
    --------
    >>> com = pd.DataFrame({"code": ["93066", "93001"], "name": ["Saint-Denis", "Aubervilliers"],
    ...     "kind": ["commune", "commune"], "dep_code": ["93", "93"],
    ...     "parent_code": ["", ""], "former_codes": ["", ""]})
    >>> cog = CogTables(com, pd.DataFrame(), pd.DataFrame())
    >>> t = custom_territory("Plaine", ["93066", "93001"], cog)
    >>> t.kind, t.communes, t.departements
    ('custom', ('93001', '93066'), ('93',))
    """
    label = str(name).strip()
    if not label:
        raise InputError(
            "territoire personnalisé : le nom est vide ; écrivez "
            "\"Nom=code,code,…\", par exemple \"Plaine Commune=93066,93001\""
        )
    given = [str(c).strip().upper() for c in codes if str(c).strip()]
    if not given:
        raise InputError(
            f"territoire personnalisé {label!r} : aucune commune ; donnez des codes INSEE "
            "séparés par des virgules (\"Plaine Commune=93066,93001\")"
        )
    com = cog.communes
    names = com.loc[com["kind"] == "commune"].set_index("code")["name"]
    members: list[str] = []
    seen: set[str] = set()
    notices: list[str] = []
    unknown: list[str] = []
    for code in given:
        # one indexed lookup for a current commune; the COG table is searched only for a
        # former code, a commune déléguée or an arrondissement (linear in the codes given)
        if code in names.index:
            hit: tuple[str, str] | None = (code, "")
        else:
            hit = current_commune(code, cog) if _COM_RE.match(code) else None
        if hit is None:
            unknown.append(code)
            continue
        current, notice = hit
        if notice:
            notices.append(notice)
        if current in seen:
            notices.append(f"La commune {names.get(current, current)} ({current}) est "
                           "donnée plusieurs fois : elle compte une fois.")
            continue
        seen.add(current)
        members.append(current)
    if unknown:
        raise InputError(
            f"territoire personnalisé {label!r} : {len(unknown)} code(s) inconnu(s) du COG "
            f"2026 : {', '.join(unknown)}. Vérifiez les codes (code INSEE à 5 caractères, "
            "pas le code postal)."
        )
    ordered = tuple(sorted(members))
    listed = com.loc[(com["kind"] == "commune") & isin_codes(com["code"], ordered)]
    deps = tuple(sorted(set(listed["dep_code"].tolist())))
    notices += spread_notices(deps)
    return Territory("custom", custom_code(ordered), label, ordered, deps,
                     note="\n".join(notices))


def territory_from_polygon(
    polygon_wgs84: BaseGeometry,
    communes: gpd.GeoDataFrame,
    *,
    name: str = "Zone dessinée",
) -> Territory:
    """The custom territory of the communes an area (drawn on a map) intersects.

    Parameters
    ----------
    polygon_wgs84
        Polygon or multipolygon in EPSG:4326 (longitude, latitude).
    communes
        Communes with ``code_insee``, ``dep_code`` and polygons (any CRS), e.g.
        :func:`data_sources.national.load_national_communes`.
    name
        Name of the territory.

    Returns
    -------
    Territory
        Kind ``"custom"``: every commune whose polygon shares area with the drawn
        one (merely touching a border does not count). Its ``code`` is that of the
        equivalent list of communes (:func:`custom_code`).

    Raises
    ------
    InputError
        Not a polygon, an invalid polygon, or an area that covers no commune.

    Examples
    --------
    >>> import shapely
    >>> sq = [shapely.box(0, 0, 1, 1), shapely.box(1, 0, 2, 1)]
    >>> com = gpd.GeoDataFrame({"code_insee": ["01001", "01002"], "dep_code": ["01", "01"]},
    ...                        geometry=sq, crs="EPSG:4326")
    >>> territory_from_polygon(shapely.box(0.5, 0.2, 0.9, 0.8), com).communes
    ('01001',)
    """
    geom = polygon_wgs84
    if not isinstance(geom, BaseGeometry) or geom.geom_type not in {"Polygon", "MultiPolygon"}:
        raise InputError(
            f"polygon_wgs84={type(geom).__name__} : la zone dessinée doit être un polygone ; "
            "tracez une zone fermée sur la carte"
        )
    if geom.is_empty or not geom.is_valid:
        raise InputError(
            "polygon_wgs84 : la zone dessinée est vide ou se recoupe elle-même ; "
            "tracez-la de nouveau"
        )
    missing = [c for c in ("code_insee", "dep_code") if c not in communes.columns]
    if missing or communes.crs is None:
        raise InputError(
            f"communes : colonnes {missing} manquantes ou CRS absent ; passez les communes "
            "de data_sources.national.load_national_communes"
        )
    com = communes.loc[communes.geometry.notna()]
    com = com.to_crs("EPSG:4326") if not com.crs.equals("EPSG:4326") else com
    idx = com.sindex.query(geom, predicate="intersects")
    hit = com.iloc[idx]
    hit = hit.loc[~hit.geometry.touches(geom)]
    if hit.empty:
        raise InputError(
            "la zone dessinée ne recouvre aucune commune chargée ; tracez-la sur le territoire"
        )
    codes = tuple(sorted(hit["code_insee"].astype(str)))
    deps = tuple(sorted(set(hit["dep_code"].astype(str))))
    pts = hit.geometry.representative_point().to_crs("EPSG:2154")
    notes = spread_notices(deps, points_xy_m=zip(pts.x, pts.y, strict=True))
    return Territory("custom", custom_code(codes), str(name).strip() or "Zone dessinée",
                     codes, deps, note="\n".join(notes))
