"""The argument parser of ``python -m diagnosis``: commands, options, ranges, help in French.

Split from :mod:`diagnosis.__main__` (which keeps the commands and their French printing);
building the parser imports no analysis library, so ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
from typing import Any

from diagnosis.cli_french import (
    FrenchArgumentParser,
    float_between,
    int_at_least,
    non_empty,
)
from diagnosis.cli_plan import add_plan_parser
from diagnosis.settings import DEFAULT_K, DEFAULT_OBJECTIVE, DEFAULT_THRESHOLD_M, SPLITS

#: Largest travel-time threshold accepted (minutes): beyond 4 hours, « à portée » means
#: nothing for a family's weekly visit.
MAX_MINUTES_LIMIT = 240.0

def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--territory", metavar="CODE_OR_NAME",
                   help="commune (code INSEE), EPCI (SIREN), département (code), région "
                        "(« région 52 »), nom, ou liste nommée « Nom=code,code,… » ; avec "
                        "--communes-file : le nom du territoire")
    p.add_argument("--communes-file", metavar="FILE",
                   help="territoire sur mesure : fichier des codes INSEE de ses communes (un "
                        "par ligne, ou un CSV avec une colonne de codes)")
    _add_data_files(p)

def _add_data_files(p: argparse.ArgumentParser) -> None:
    p.add_argument("--facilities", action="append", default=[], metavar="FILE",
                   help="fichier de structures à importer (CSV, GeoJSON, GeoPackage); répétable")
    p.add_argument("--iris", nargs=2, metavar=("CONTOURS", "RECENSEMENT"),
                   help="demande à l'IRIS : contours IRIS (IGN, GeoPackage ou GeoJSON) et base "
                        "INSEE du recensement par IRIS (CSV ou zip)")
    p.add_argument("--grid", metavar="FILE",
                   help="demande sur les carreaux de 200 m (INSEE Filosofi : GeoPackage, CSV "
                        "ou zip)")
    p.add_argument("--insee", action="append", default=[], metavar="FILE",
                   help="fichier INSEE du « comparateur de territoires » ou du « dossier "
                        "complet » (CSV, toute édition) ; répétable. Avec la géographie "
                        "livrée, diagnostic de tout territoire français sans internet")

def _add_threshold(p: argparse.ArgumentParser) -> None:
    p.add_argument("--threshold-m", type=float_between(0, 200_000, unit="mètres"),
                   default=DEFAULT_THRESHOLD_M,
                   help="distance à vol d'oiseau jugée « à portée » (mètres, défaut %(default)s)")

def _add_uptake(p: argparse.ArgumentParser) -> None:
    from diagnosis.settings import (
        DEFAULT_FACILITATORS_PER_MAISON,
        DEFAULT_GROUPS_PER_FACILITATOR,
        DEFAULT_UPTAKE_RATE,
    )

    p.add_argument("--uptake-rate", type=float_between(0, 1), default=DEFAULT_UPTAKE_RATE,
                   metavar="SHARE",
                   help="part des familles qui rejoindraient un groupe de pairs, dans ]0, 1] "
                        "(hypothèse ; défaut %(default)s)")
    p.add_argument("--facilitators", type=int_at_least(1, high=1_000),
                   default=DEFAULT_FACILITATORS_PER_MAISON,
                   metavar="N", help="facilitateurs formés de la Maison (défaut %(default)s)")
    p.add_argument("--groups-per-facilitator", type=int_at_least(1, high=100),
                   default=DEFAULT_GROUPS_PER_FACILITATOR, metavar="N",
                   help="groupes qu'un facilitateur anime en même temps (hypothèse ; défaut "
                        "%(default)s)")

def _add_no_analyses(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-analyses", action="store_true",
                   help="ne pas calculer accessibilité, manques, implantation, partenaires "
                        "et groupes de pairs")

def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m diagnosis``."""
    ap = FrenchArgumentParser(
        prog="python -m diagnosis",
        description="Maillage : diagnostic territorial pour une Maison des 1000 premiers jours.",
    )
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMANDE",
                            title="commandes")
    s = sub.add_parser("summary", help="besoins, offre et proximité d'un territoire")
    _add_common(s)
    _add_threshold(s)
    s.add_argument("--format", choices=("json", "table"), default="table")
    _add_analysis_parsers(sub)
    _add_deliverable_parsers(sub)
    add_plan_parser(sub)
    n = sub.add_parser("reseaux", help="horaires de transport en commun (GTFS) à télécharger "
                                       "pour le territoire (transport.data.gouv.fr)")
    _add_common(n)
    n.add_argument("--format", choices=("json", "table"), default="table")
    return ap

def _add_travel(p: argparse.ArgumentParser, *, default_mode: str) -> None:
    from diagnosis.settings import DEFAULT_DEPART

    p.set_defaults(car_mode=default_mode)
    p.add_argument("--mode", choices=("drive", "walk", "crow", "poussette", "transit"),
                   default=None,
                   help="temps de trajet : réseau routier OpenStreetMap en voiture (drive) ou "
                        "à pied (walk), estimation à vol d'oiseau (crow), à pied avec une "
                        "poussette sans escaliers (poussette, avec --osm-pbf) ou en "
                        "transports en commun à l'heure des groupes (transit, avec --gtfs et "
                        "--osm-pbf) ; sans réseau disponible, estimation à vol d'oiseau "
                        "signalée (défaut : walk si la plupart des habitants vivent dans des "
                        f"communes denses, sinon {default_mode})")
    p.add_argument("--road-graph", metavar="FILE",
                   help="réseau routier à utiliser : extrait OpenStreetMap (.osm) ou graphe "
                        "enregistré (.npz)")
    p.add_argument("--max-minutes", type=float_between(0, MAX_MINUTES_LIMIT, unit="minutes"),
                   default=None,
                   help="seuil de temps de trajet T (minutes ; défaut 15 à pied, 20 en "
                        "voiture)")
    p.add_argument("--gtfs", action="append", default=[], metavar="FICHIER.zip",
                   help="horaires GTFS d'un réseau de transport (répétable ; "
                        "transport.data.gouv.fr) pour --mode transit")
    p.add_argument("--osm-pbf", metavar="FICHIER.osm.pbf",
                   help="extrait OpenStreetMap des rues (.osm.pbf) pour --mode poussette ou "
                        "transit ; le rapport PDF en dessine aussi les routes principales "
                        "et l'eau sur ses cartes")
    p.add_argument("--depart", default=DEFAULT_DEPART, metavar="HH:MM",
                   help="heure de départ en transports en commun (défaut %(default)s)")
    p.add_argument("--date", metavar="AAAA-MM-JJ", dest="study_date",
                   help="jour étudié en transports en commun (défaut : le prochain mardi "
                        "hors vacances scolaires)")
    p.add_argument("--max-walk-minutes", type=float, default=None, metavar="MIN",
                   help="marche au plus jusqu'à un arrêt, avec une poussette (défaut 15)")
    p.add_argument("--max-transfers", type=int, default=None, metavar="N",
                   help="correspondances au plus (défaut 2)")

def _add_analysis_parsers(sub: Any) -> None:
    """Parsers of ``access``, ``site`` and ``partners``."""
    from diagnosis.settings import HOST_TYPES, OBJECTIVES

    a = sub.add_parser("access", help="temps d'accès aux services, zones blanches et "
                                      "communes prioritaires")
    _add_common(a)
    _add_travel(a, default_mode="drive")
    a.add_argument("--format", choices=("json", "table"), default="table")
    a.add_argument("--types", nargs="+", metavar="TYPE",
                   help="types de structures (défaut : tous ceux chargés, sauf mairie)")
    a.add_argument("--weights", type=non_empty, metavar="births=0.35,poverty=0.2,...",
                   help="poids du score de priorité (births, poverty, single_parent, access)")
    a.add_argument("--distributed", action="store_true",
                   help="réseau routier calculé département par département sur Dask "
                        "(grands territoires : région, France)")
    a.add_argument("--scheduler", metavar="tcp://HOTE:PORT",
                   help="avec --distributed : un cluster Dask existant (défaut : un "
                        "LocalCluster sur cette machine)")
    a.add_argument("--workers", type=int_at_least(1, high=1_024), metavar="N",
                   help="avec --distributed : nombre de workers du LocalCluster")
    a.add_argument("--top", type=int_at_least(1), default=15,
                   help="communes prioritaires affichées en tableau (défaut %(default)s)")

    st = sub.add_parser("site", help="où implanter la Maison : sites recommandés expliqués")
    _add_common(st)
    _add_travel(st, default_mode="drive")
    st.add_argument("--k", type=int_at_least(1, high=1_000), default=DEFAULT_K,
                    help="nombre de nouveaux sites (défaut %(default)s)")
    st.add_argument("--format", choices=("json", "table"), default="table")
    st.add_argument("--host-types", nargs="+", default=list(HOST_TYPES), metavar="TYPE",
                    help="types de lieux pouvant accueillir la Maison (défaut : "
                         + " ".join(HOST_TYPES) + ")")
    st.add_argument("--point", action="append", default=[], metavar="LON,LAT",
                    help="lieu proposé (longitude,latitude en degrés ; écrire --point=-2.09,47.44 "
                         "quand la longitude est négative) ; répétable")
    st.add_argument("--objective", choices=OBJECTIVES, default=DEFAULT_OBJECTIVE,
                    help="couverture maximale (défaut) ou p-médiane (temps total minimal)")
    st.add_argument("--scenarios", nargs="+", type=int_at_least(1, high=1_000), metavar="K",
                    help="comparer aussi ces nombres de sites (ex. 1 2 3)")
    st.add_argument("--scenario-minutes", nargs="+",
                    type=float_between(0, MAX_MINUTES_LIMIT, unit="minutes"), default=[],
                    metavar="T",
                    help="comparer aussi ces seuils de temps (minutes, ex. 15 30) : un "
                         "scénario par seuil et par nombre de sites")
    st.add_argument("--need-weights", type=non_empty, metavar="poverty=1,single_parent=1",
                    help="coefficients de la pauvreté et des familles monoparentales dans le "
                         "poids des besoins (0 pour laisser un facteur de côté ; défaut 1 et 1)")
    _add_uptake(st)

    pa = sub.add_parser("partners", help="partenaires à portée d'un site (maillage territorial)")
    _add_common(pa)
    _add_travel(pa, default_mode="drive")
    pa.add_argument("--site", required=True, metavar="SITE_ID",
                    help="identifiant (facility_id) ou nom exact du lieu étudié")
    pa.add_argument("--format", choices=("json", "csv", "table"), default="table")
    pa.add_argument("--out", metavar="FILE", help="écrire dans un fichier plutôt qu'à l'écran")

def _add_deliverable_parsers(sub: Any) -> None:
    """Parsers of ``report``, ``export``, ``compare`` and ``rerun``."""
    r = sub.add_parser("report", help="rapport PDF du diagnostic")
    _add_common(r)
    r.add_argument("--out", required=True, metavar="FILE.pdf", help="fichier PDF à écrire")
    r.add_argument("--author", default="", metavar="NAME", help="auteur, imprimé en couverture")
    r.add_argument("--site", metavar="SITE_ID",
                   help="lieu étudié pour la Maison : identifiant (facility_id) ou nom exact "
                        "d'une structure chargée")
    _add_threshold(r)
    _add_travel(r, default_mode="crow")
    _add_uptake(r)
    _add_no_analyses(r)
    r.add_argument("--no-comparison", action="store_true",
                   help="ne pas comparer le territoire à ses voisins")
    r.add_argument("--compare-modes", action="store_true",
                   help="comparer l'accès aux mêmes sites en voiture, à pied avec une "
                        "poussette et en transports en commun (avec --gtfs et --osm-pbf)")
    r.add_argument("--fond-de-carte", choices=("aucun", "osm"), default="aucun",
                   dest="fond_de_carte",
                   help="fond des cartes du rapport : « osm » télécharge quelques tuiles "
                        "OpenStreetMap (en ligne, mises en cache) ; défaut « aucun » (le "
                        "rapport reste reproductible hors ligne)")

    e = sub.add_parser("export", help="GeoPackage (QGIS), CSV (Excel) et fichier de diagnostic")
    _add_common(e)
    e.add_argument("--out", metavar="FILE.gpkg", help="GeoPackage à écrire (couches en français)")
    e.add_argument("--csv-dir", metavar="DIR", help="dossier où écrire un CSV par couche")
    e.add_argument("--diagnosis-file", metavar="FILE.json",
                   help="fichier de diagnostic (paramètres, sources, empreintes des fichiers) "
                        "pour le relancer avec `rerun`")
    _add_threshold(e)
    _add_travel(e, default_mode="crow")
    _add_uptake(e)
    _add_no_analyses(e)

    c = sub.add_parser("compare", help="comparer des territoires (une ligne par territoire)")
    which = c.add_mutually_exclusive_group(required=True)
    which.add_argument("--territory", metavar="CODE_OR_NAME",
                       help="territoire à découper (voir --by)")
    which.add_argument("--territories", nargs="+", metavar="CODE_OR_NAME",
                       help="liste de territoires à comparer")
    c.add_argument("--by", choices=SPLITS, default="epci",
                   help="découpage de --territory : ses EPCI ou ses communes (défaut epci)")
    _add_data_files(c)
    _add_threshold(c)
    c.add_argument("--format", choices=("table", "json", "csv"), default="table")
    c.add_argument("--out", metavar="FILE", help="écrire dans un fichier plutôt qu'à l'écran")

    rr = sub.add_parser("rerun", help="relancer un diagnostic enregistré et vérifier ses données")
    rr.add_argument("file", metavar="FILE.json", help="fichier écrit par export --diagnosis-file")
    rr.add_argument("--strict", action="store_true",
                    help="code de sortie 1 si les données ou les résultats ont changé")
