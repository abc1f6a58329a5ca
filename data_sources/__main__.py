"""Command line of the data sources: ``python -m data_sources fetch`` and ``scrape``.

``python -m data_sources fetch --territory CODE [--source NAME ...] [--offline]`` fetches
the live sources of a territory into the local store (:mod:`data_sources.store`), shows
a progress bar per source, and ends with a table of the sources (ok / failed and why).

``python -m data_sources scrape URL --type TYPE [--territory X] [--out FILE]`` reads one
directory page politely (:mod:`data_sources.scrape`) and writes a facility file in the
import format, to review and import; exit status 0 when entries were found, 1 when
none (or the page may not be read), 2 on bad usage.

Exit status:

- ``0``: something useful stands for the territory: communes stored by this or an
  earlier fetch, or the embedded demo covers it (even when every source failed);
- ``1``: nothing usable for the territory (no stored communes, outside the demo);
- ``2``: bad usage (unknown territory or option);
- ``3``: the store could not be written: another fetch of the same territory is running
  (the second one waits 5 s at most, then stops), or the disk refused the write (the
  stored data stays intact).

``--refresh`` ignores the HTTP cache and the downloaded files of the selected sources.
A refresh that gives fewer than half the rows held for a source (or empties a series,
loses communes, or falls back to a cached copy) keeps the held rows and marks the source
« suspect »; the refused answer is kept apart and ``--accept-suspect [SOURCE ...]`` takes
exactly that answer. ``--deadline-min`` bounds the whole fetch (default 45 minutes): the
sources not finished then are « non terminée » in the ledger.
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
from collections.abc import Sequence
from typing import Any

from data_sources.fetch import (
    DEFAULT_FETCH_DEADLINE_S,
    LIVE_SOURCES,
    PROBE_URLS,
    FetchProgress,
    FetchResult,
    detect_offline,
    fetch_territory,
)
from data_sources.store import (
    STATUSES,
    STORE_ENV,
    StoreBusyError,
    StoreWriteError,
    default_store_dir,
)
from diagnosis.cli_french import (
    FrenchArgumentParser,
    FrenchRawDescriptionHelpFormatter,
    float_between,
    non_empty,
)
from diagnosis.errors import InputError, MaillageError, render_error

_EPILOG = f"""\
Sources : {', '.join(LIVE_SOURCES)}.

Le stock local est dans {default_store_dir()} (variable {STORE_ENV} pour le changer) ;
le cache HTTP suit MAILLAGE_CACHE_DIR. Une source en échec ne bloque pas les autres et
garde les données d'une mise à jour précédente.

Une réponse qui perd plus de la moitié des lignes déjà enregistrées d'une source (réponse
vide, tronquée, page de maintenance) est marquée « suspect » : les lignes enregistrées
sont gardées, sauf avec --accept-suspect.

Code de sortie : 0 quand des données utilisables existent pour le territoire (stock local
ou démo embarquée), 1 quand rien n'est utilisable, 2 en cas d'erreur d'usage, 3 quand le
stock n'a pas pu être écrit (autre mise à jour en cours, disque plein).
"""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (French help, usage and errors: :mod:`diagnosis.cli_french`)."""
    parser = FrenchArgumentParser(
        prog="python -m data_sources",
        description="Télécharger les données publiques d'un territoire dans le stock local.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMANDE",
                                title="commandes")
    fetch = sub.add_parser(
        "fetch", help="mettre à jour les données d'un territoire",
        description="Télécharger les sources en ligne d'un territoire (contours, INSEE, "
                    "FINESS, BPE, OpenStreetMap, CAF, data·inclusion, annuaire de "
                    "l'administration, géocodage de la Géoplateforme) et les enregistrer dans "
                    "le stock local. Sans connexion internet (vérifiée en quelques secondes "
                    "au départ), la mise à jour se fait depuis le cache.",
        epilog=_EPILOG, formatter_class=FrenchRawDescriptionHelpFormatter,
    )
    fetch.add_argument("--territory", required=True, metavar="CODE", type=non_empty,
                       help="code commune INSEE, SIREN d'EPCI, code de département ou nom")
    fetch.add_argument("--source", action="extend", nargs="+", choices=LIVE_SOURCES,
                       metavar="NOM", dest="sources",
                       help="ne mettre à jour que ces sources (répétable) ; par défaut "
                            "toutes : " + ", ".join(LIVE_SOURCES))
    fetch.add_argument("--offline", action="store_true",
                       help="hors ligne : n'utiliser que le cache HTTP local")
    fetch.add_argument("--refresh", action="store_true",
                       help="ignorer le cache HTTP et les fichiers déjà téléchargés des "
                            "sources choisies : tout télécharger à nouveau")
    fetch.add_argument("--accept-suspect", nargs="*", choices=LIVE_SOURCES, metavar="NOM",
                       default=None,
                       help="prendre la réponse refusée comme « suspecte » par une mise à "
                            "jour précédente et gardée à part (baisse réelle confirmée) : "
                            "celle-là exactement, jamais une copie du cache ; pour les "
                            "sources nommées, ou toutes si aucun nom")
    fetch.add_argument("--deadline-min", type=float, metavar="MINUTES",
                       default=DEFAULT_FETCH_DEADLINE_S / 60,
                       help="délai global de la mise à jour, en minutes (défaut "
                            f"{DEFAULT_FETCH_DEADLINE_S / 60:g}) : les sources non terminées "
                            "sont arrêtées proprement et gardent leurs données précédentes")
    scrape = sub.add_parser(
        "scrape", help="extraire les structures d'une page d'annuaire",
        description="Lire une page d'annuaire (liste de consultations de PMI, page RPE et "
                    "LAEP d'une intercommunalité, liste de centres sociaux…) et écrire un "
                    "fichier de structures au format d'import, à relire avant de l'importer. "
                    "Le robots.txt du site est respecté, une seule requête à la fois par "
                    "site, avec une pause ; captchas et connexions ne sont jamais contournés.",
    )
    scrape.add_argument("url", metavar="URL", help="adresse de la page (http ou https)")
    scrape.add_argument("--type", required=True, metavar="TYPE", dest="facility_type",
                        type=non_empty,
                        help="type des structures de la page (pmi, eaje, mam, laep, rpe, "
                             "centre_social, evs, maternite, sage_femme, mairie…)")
    scrape.add_argument("--territory", metavar="CODE", type=non_empty,
                        help="ne garder que les structures de ce territoire (commune, EPCI, "
                             "département)")
    scrape.add_argument("--out", metavar="FICHIER", type=non_empty,
                        help="fichier CSV écrit (par défaut structures_<site>_<date>.csv)")
    scrape.add_argument("--delay", type=float_between(0, 600, low_open=False, unit="secondes"),
                        default=2.0, metavar="SECONDES",
                        dest="delay_s", help="pause entre deux requêtes au même site (2 s)")
    scrape.add_argument("--offline", action="store_true",
                        help="hors ligne : page lue depuis le cache, sans géocodage")
    return parser


class _Bars:
    """One progress bar per source (rich) on a terminal, plain lines otherwise."""

    def __init__(self) -> None:
        from rich.console import Console

        self.console = Console(stderr=True, emoji=False)
        self.live = self.console.is_terminal
        self.tasks: dict[str, Any] = {}
        self.progress: Any = None
        if self.live:
            from rich.progress import (
                BarColumn,
                Progress,
                SpinnerColumn,
                TextColumn,
                TimeElapsedColumn,
            )

            self.progress = Progress(SpinnerColumn(), TextColumn("{task.description}"),
                                     BarColumn(), TimeElapsedColumn(), console=self.console)

    def __enter__(self) -> _Bars:
        if self.progress is not None:
            self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()

    def __call__(self, event: FetchProgress) -> None:
        head = f"[{event.index + 1}/{event.total}] {event.title}"
        if self.progress is not None:
            if event.outcome is None:
                self.tasks[event.key] = self.progress.add_task(head, total=1)
            else:
                mark = "ok" if event.outcome.ok else STATUSES[event.outcome.status]
                self.progress.update(self.tasks[event.key], completed=1,
                                     description=f"{head} : {mark}")
            return
        if event.outcome is None:
            print(f"{head}…", file=sys.stderr, flush=True)
        else:
            print(f"{head} : {STATUSES[event.outcome.status]}", file=sys.stderr, flush=True)


def print_summary(result: FetchResult) -> None:
    """The table of sources, the reasons of failures and what stays usable (stdout)."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console(emoji=False)
    if not console.is_terminal:
        console = Console(width=110, emoji=False)
    table = Table(title=f"Sources de {escape(result.territory.label)}")
    for col in ("Source", "État", "Lignes gardées", "Rejetées", "Millésime"):
        table.add_column(col, overflow="fold")
    for o in result.outcomes:
        table.add_row(o.key, STATUSES[o.status], str(o.rows_kept), str(o.rows_rejected),
                      escape(o.vintage or "—"))
    console.print(table)
    failed = result.failed
    if failed:
        print(f"\n{len(failed)} source(s) en échec :")
        for o in failed:
            print(f"  - {o.message}")
    suspect = result.suspect
    if suspect:
        print(f"\n{len(suspect)} source(s) suspecte(s), données enregistrées gardées :")
        for o in suspect:
            print(f"  - {o.title} : {o.message}")
    partial = result.partial
    if partial:
        print(f"\n{len(partial)} source(s) partielle(s), données reçues enregistrées :")
        for o in partial:
            print(f"  - {o.title} : {o.message}")
    if result.cache_note:
        print(f"\n{result.cache_note}")
    notes = [o for o in result.outcomes
             if not o.failed and o.status not in {"suspect", "partial"} and o.message]
    for o in notes:
        print(f"  Remarque, {o.title} : {o.message}")
    print()
    if result.snapshot is None:
        print("Rien n'a été enregistré : aucune source n'a répondu.")
    elif any(o.ok or o.status == "partial" for o in result.outcomes):
        print(f"Données enregistrées dans {result.snapshot.parent}.")
    elif result.suspect:
        print(f"Aucune nouvelle réponse retenue : les données déjà enregistrées dans "
              f"{result.snapshot.parent} sont conservées (registre mis à jour).")
    else:
        print(f"Aucune source n'a répondu : les données déjà enregistrées dans "
              f"{result.snapshot.parent} sont conservées (registre mis à jour).")
    if result.communes_stored:
        print("Le diagnostic de ce territoire utilisera le stock local.")
    elif result.demo_covers:
        print("La démo embarquée (Loire-Atlantique) reste utilisable pour ce territoire : "
              "le diagnostic s'appuie sur ses communes et ses besoins"
              + (", avec les structures téléchargées." if result.facilities_stored else "."))
    else:
        print("Aucune donnée utilisable pour ce territoire : sans les contours des communes et "
              "les données INSEE, le diagnostic n'est pas possible. Réessayez avec internet.")


def cmd_fetch(args: argparse.Namespace) -> int:
    """Run ``fetch``; see the module docstring for the exit status."""
    from data_sources.cog import resolve

    try:
        territory = resolve(args.territory)
    except InputError as exc:
        print(f"Territoire introuvable : « {args.territory} ». Détail : {render_error(exc)}",
              file=sys.stderr)
        return 2
    selected = args.sources or list(LIVE_SOURCES)
    offline = bool(args.offline)
    if not offline and detect_offline():
        hosts = ", ".join(u.removeprefix("https://") for u in PROBE_URLS)
        print(f"Pas de connexion internet : aucun de ces sites ne répond ({hosts}). La mise à "
              "jour se fait hors ligne, depuis le cache local.", file=sys.stderr)
        offline = True
    print(f"Mise à jour de {territory.label} : {len(selected)} source(s)"
          f"{' (hors ligne)' if offline else ''}.", file=sys.stderr)
    if not args.deadline_min > 0 or args.deadline_min != args.deadline_min:
        print(f"--deadline-min {args.deadline_min:g} : le délai global doit être un nombre "
              "de minutes positif.", file=sys.stderr)
        return 2
    accept: bool | list[str] = (False if args.accept_suspect is None
                                else (args.accept_suspect or True))
    try:
        with _Bars() as bars:
            result = fetch_territory(territory, sources=selected, offline=offline,
                                     progress=bars, refresh=args.refresh,
                                     accept_suspect=accept,
                                     deadline_s=args.deadline_min * 60)
    except (StoreBusyError, StoreWriteError) as exc:
        print(str(exc), file=sys.stderr)
        return 3
    print_summary(result)
    return 0 if result.usable else 1


def cmd_scrape(args: argparse.Namespace) -> int:
    """Run ``scrape``; see the module docstring for the exit status."""
    import datetime as dt
    from urllib.parse import urlsplit

    from data_sources import scrape
    from data_sources.cog import resolve
    from diagnosis.errors import SourceError
    from diagnosis.exports import check_writable, write_bytes_atomic

    territory = None
    if args.territory:
        try:
            territory = resolve(args.territory)
        except InputError as exc:
            print(f"Territoire introuvable : « {args.territory} ». Détail : {render_error(exc)}",
                  file=sys.stderr)
            return 2
    host = re.sub(r"[^A-Za-z0-9.-]+", "_", urlsplit(args.url).netloc)
    out = args.out or f"structures_{host}_{dt.date.today().isoformat()}.csv"
    try:  # before reading the page: a FIFO, a device or a folder is never written to
        check_writable(out, option="--out")
    except InputError as exc:
        print(render_error(exc), file=sys.stderr)
        return 2
    try:
        result = scrape.scrape_directory(args.url, facility_type=args.facility_type,
                                         territory=territory, delay_s=args.delay_s,
                                         offline=True if args.offline else None)
    except InputError as exc:
        print(f"Usage : {render_error(exc)}", file=sys.stderr)
        return 2
    except SourceError as exc:
        print(render_error(exc).removeprefix(f"{scrape.SCRAPE.key}: "), file=sys.stderr)
        return 1
    for line in scrape.iter_summary(result):
        print(line, file=sys.stderr)
    if result.rows.empty:
        print("Aucune structure trouvée : rien n'est écrit.", file=sys.stderr)
        return 1
    write_bytes_atomic(out, scrape.write_facility_csv(result.rows).encode("utf-8"),
                       option="--out")
    print(f"Fichier écrit : {out} ({len(result.rows)} ligne(s)). Relisez-le puis importez-le "
          "(page « Importer un fichier » de l'application).")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "fetch":
            return cmd_fetch(args)
        if args.command == "scrape":
            return cmd_scrape(args)
    except MaillageError as exc:  # every error in French, rendered once, no traceback
        print(f"erreur : {render_error(exc)}", file=sys.stderr)
        return 2
    except (OSError, MemoryError) as exc:
        print(f"erreur : {render_error(exc)}", file=sys.stderr)
        return 1
    parser.error(f"commande inconnue : {args.command}")  # pragma: no cover
    return 2  # pragma: no cover


if __name__ == "__main__":
    sys.exit(main())

