"""Map a file's facility type labels to the schema types."""

from __future__ import annotations

import re
from collections.abc import Callable

from data_sources.user_file.columns import _fold
from diagnosis.schema import (
    EAJE_SUBTYPES,
    FACILITY_TYPES,
    facility_label,
)

#: Exact type values (folded) -> (type, subtype). Labels of the schema are added below.
_TYPE_EXACT: dict[str, tuple[str, str]] = {
    # INSEE BPE codes (see ship/nomenclatures/bpe_typequ_diagnostic_1000j.csv)
    "d502": ("eaje", ""), "d509": ("eaje", "micro_creche"), "d503": ("laep", ""),
    "d504": ("rpe", ""), "d506": ("centre_social", ""), "d107": ("maternite", ""),
    "d231": ("sage_femme", ""), "a129": ("mairie", ""),
    # FINESS categories (223 PMI; 230 consultation de protection infantile)
    "223": ("pmi", ""), "230": ("pmi", ""),
    # EAJE labels and abbreviations
    "creche": ("eaje", "creche_collective"), "creches": ("eaje", "creche_collective"),
    "ma": ("eaje", "multi_accueil"), "multiaccueil": ("eaje", "multi_accueil"),
    "multi_accueils": ("eaje", "multi_accueil"), "microcreche": ("eaje", "micro_creche"),
    "micro_creches": ("eaje", "micro_creche"), "hg": ("eaje", "halte_garderie"),
    "haltegarderie": ("eaje", "halte_garderie"), "halte_garderies": ("eaje", "halte_garderie"),
    "crechefami": ("eaje", "creche_familiale"), "creche_fami": ("eaje", "creche_familiale"),
    "service_d_accueil_familial": ("eaje", "creche_familiale"),
    "eaje_collectif": ("eaje", ""), "accueil_collectif": ("eaje", ""),
    "etablissement_d_accueil_du_jeune_enfant": ("eaje", ""),
    "etablissement_d_accueil_du_jeune_enfant_eaje": ("eaje", ""),
    # other types
    "maison_d_assistants_maternels": ("mam", ""), "maison_d_assistantes_maternelles": ("mam", ""),
    "maison_d_assistant_e_s_maternel_le_s": ("mam", ""),
    "relais": ("rpe", ""), "ram": ("rpe", ""), "relais_petite_enfance": ("rpe", ""),
    "relais_assistantes_maternelles": ("rpe", ""), "relais_assistants_maternels": ("rpe", ""),
    "relais_d_assistants_maternels": ("rpe", ""), "relais_d_assistantes_maternelles": ("rpe", ""),
    "relais_petite_enfance_rpe_ex_ram": ("rpe", ""),
    "centres_sociaux": ("centre_social", ""), "csc": ("centre_social", ""),
    "centre_socioculturel": ("centre_social", ""), "centre_socio_culturel": ("centre_social", ""),
    "espace_de_vie_sociale": ("evs", ""), "espaces_de_vie_sociale": ("evs", ""),
    "centre_de_pmi": ("pmi", ""), "centre_pmi": ("pmi", ""), "consultation_pmi": ("pmi", ""),
    "protection_maternelle_et_infantile": ("pmi", ""),
    "protection_maternelle_et_infantile_p_m_i": ("pmi", ""),
    "etablissement_consultation_protection_infantile": ("pmi", ""),
    "maternites": ("maternite", ""), "sages_femmes": ("sage_femme", ""),
    "lieu_d_accueil_enfants_parents": ("laep", ""), "lieu_d_accueil_enfant_parent": ("laep", ""),
    "lieux_d_accueil_enfants_parents": ("laep", ""),
    "hotel_de_ville": ("mairie", ""),
    "maison_des_1000_premiers_jours": ("maison_1000_jours", ""),
    "maison_1000_premiers_jours": ("maison_1000_jours", ""),
    "maison_des_1000_jours": ("maison_1000_jours", ""), "m1000j": ("maison_1000_jours", ""),
}


def _build_type_table() -> dict[str, tuple[str, str]]:
    table = dict(_TYPE_EXACT)
    for key, (one, many) in FACILITY_TYPES.items():
        for label in (key, one, many):
            table.setdefault(_fold(label), (key, ""))
    for key, label in EAJE_SUBTYPES.items():
        for text in (key, label):
            table.setdefault(_fold(text), ("eaje", key))
    return table


_TYPE_TABLE = _build_type_table()


#: Words that reveal a type in a free label (first match wins), for values not in the table.
_TYPE_RULES: tuple[tuple[Callable[[str, set[str]], bool], tuple[str, str]], ...] = (
    (lambda s, t: "1000" in t and ("jours" in t or "jour" in t), ("maison_1000_jours", "")),
    (lambda s, t: "micro" in s and "creche" in s, ("eaje", "micro_creche")),
    (lambda s, t: "multi_accueil" in s or "multiaccueil" in s, ("eaje", "multi_accueil")),
    (lambda s, t: "halte" in t, ("eaje", "halte_garderie")),
    (lambda s, t: "creche" in s and "famil" in s, ("eaje", "creche_familiale")),
    (lambda s, t: "creche" in s and "parental" in s, ("eaje", "creche_parentale")),
    (lambda s, t: "creche" in s, ("eaje", "creche_collective")),
    (lambda s, t: "jardin_d_enfant" in s or "eaje" in t or "jeune_enfant" in s, ("eaje", "")),
    (lambda s, t: "mam" in t or ("assistant" in s and "maternel" in s and "maison" in t),
     ("mam", "")),
    (lambda s, t: "relais" in t or bool(t & {"ram", "rpe"}), ("rpe", "")),
    (lambda s, t: "laep" in t or "accueil_enfant" in s, ("laep", "")),
    (lambda s, t: "centre_social" in s or "socioculturel" in s or "socio_culturel" in s,
     ("centre_social", "")),
    (lambda s, t: "evs" in t or "espace_de_vie_sociale" in s, ("evs", "")),
    (lambda s, t: "pmi" in t or "protection_maternelle" in s or "protection_infantile" in s,
     ("pmi", "")),
    (lambda s, t: "maternite" in t, ("maternite", "")),
    (lambda s, t: "sage_femme" in s or "sages_femmes" in s, ("sage_femme", "")),
    (lambda s, t: "mairie" in t or "hotel_de_ville" in s, ("mairie", "")),
)


def map_type(value: str) -> tuple[str, str, bool] | None:
    """Map a type label or code to ``(type, subtype, interpreted)``.

    ``interpreted`` is True when the value was read by its words rather than found in the
    table of known labels and codes (the import reports it).

    Parameters
    ----------
    value
        A label (``"Micro-crèche"``, ``"relais petite enfance"``), a schema key
        (``"eaje"``, ``"multi_accueil"``), an INSEE BPE code (``"D502"``) or a FINESS
        category (``"223"``).

    Returns
    -------
    tuple or None
        None when the value is empty or not recognised.

    Examples
    --------
    >>> map_type("Micro-crèche")
    ('eaje', 'micro_creche', False)
    >>> map_type("D504")
    ('rpe', '', False)
    >>> map_type("creche_personnel")
    ('eaje', 'creche_collective', True)
    >>> map_type("garage") is None
    True
    """
    s = _fold(value)
    if not s:
        return None
    if re.fullmatch(r"\d+_0+", s):  # "223.0" from a spreadsheet
        s = s.split("_")[0]
    if s in _TYPE_TABLE:
        t, sub = _TYPE_TABLE[s]
        return t, sub, False
    tokens = set(s.split("_"))
    for rule, (t, sub) in _TYPE_RULES:
        if rule(s, tokens):
            return t, sub, True
    return None


def _type_text(facility_type: str, subtype: str) -> str:
    label = facility_label(facility_type)
    if facility_type == "eaje" and subtype:
        return f"{label}, sous-type {EAJE_SUBTYPES[subtype]}"
    return label
