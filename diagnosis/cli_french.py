"""argparse in French: headings, usage and error messages of ``python -m diagnosis``.

argparse has no locale switch short of a gettext catalogue: its headings are set here,
and its error messages (the English templates of CPython's Lib/argparse.py, 3.11-3.13)
are translated by pattern; an unknown message is kept as it is rather than lost.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from collections.abc import Callable
from typing import Any, NoReturn

_ARGPARSE_FR: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern, re.DOTALL), french) for pattern, french in (
        (r"^argument (?P<arg>.+?): (?P<rest>.*)$", "argument {arg} : {rest}"),
        (r"^the following arguments are required: (?P<x>.*)$",
         "arguments obligatoires manquants : {x}"),
        (r"^invalid choice: (?P<v>.*?) \(choose from (?P<c>.*)\)$",
         "choix invalide : {v} (choisir parmi {c})"),
        (r"^unknown parser (?P<v>.*?) \(choices: (?P<c>.*)\)$",
         "commande inconnue : {v} (choisir parmi {c})"),
        (r"^invalid (?P<t>\w+) value: (?P<v>.*)$", "valeur invalide ({t}) : {v}"),
        (r"^expected one argument$", "une valeur attendue"),
        (r"^expected at most one argument$", "une valeur au plus attendue"),
        (r"^expected at least one argument$", "au moins une valeur attendue"),
        (r"^expected (?P<n>\d+) arguments?$", "{n} valeur(s) attendue(s)"),
        (r"^unrecognized arguments: (?P<x>.*)$", "arguments non reconnus : {x}"),
        (r"^ambiguous option: (?P<o>.*?) could match (?P<m>.*)$",
         "option ambiguë : {o} peut désigner {m}"),
        (r"^not allowed with argument (?P<x>.*)$", "incompatible avec l'argument {x}"),
        (r"^one of the arguments (?P<x>.*) is required$",
         "l'un de ces arguments est obligatoire : {x}"),
        (r"^ignored explicit argument (?P<x>.*)$", "valeur ignorée : {x}"),
        (r"^can't open '(?P<f>.*?)': (?P<e>.*)$", "impossible d'ouvrir « {f} » : {e}"),
    ))
_ARG_TYPES_FR = {"float": "nombre décimal", "int": "nombre entier"}


def french_argparse_message(message: str) -> str:
    """An argparse error message in French (kept unchanged when not recognised).

    Examples
    --------
    >>> french_argparse_message("the following arguments are required: --territory")
    'arguments obligatoires manquants : --territory'
    >>> french_argparse_message("argument --mode: invalid choice: 'car' (choose from "
    ...                         "'drive', 'walk', 'crow')")
    "argument --mode : choix invalide : 'car' (choisir parmi 'drive', 'walk', 'crow')"
    """
    for pattern, french in _ARGPARSE_FR:
        match = pattern.match(message)
        if match:
            parts = match.groupdict()
            if "rest" in parts:
                parts["rest"] = french_argparse_message(parts["rest"])
            if "t" in parts:
                parts["t"] = _ARG_TYPES_FR.get(parts["t"], parts["t"])
            return french.format(**parts)
    return message


class FrenchHelpFormatter(argparse.HelpFormatter):
    """argparse's help with a French usage heading (« utilisation : »)."""

    def add_usage(self, usage: str | None, actions: Any, groups: Any,
                  prefix: str | None = None) -> None:
        """Add the usage, headed « utilisation : » unless a prefix is given."""
        super().add_usage(usage, actions, groups,
                          prefix="utilisation : " if prefix is None else prefix)


class FrenchArgumentParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose help, usage and errors are in French.

    Sub-command parsers are of the same class (argparse creates them with the parent's
    class), so they are French too.
    """

    def __init__(self, prog: str | None = None, **kwargs: Any) -> None:
        add_help = bool(kwargs.pop("add_help", True))
        kwargs.setdefault("formatter_class", FrenchHelpFormatter)
        super().__init__(prog, add_help=False, **kwargs)
        self._positionals.title = "arguments positionnels"
        self._optionals.title = "options"
        if add_help:
            self.add_argument("-h", "--help", action="help", default=argparse.SUPPRESS,
                              help="afficher cette aide et quitter")

    def error(self, message: str) -> NoReturn:
        """Print the usage and the French message on stderr, exit with code 2."""
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog} : erreur : {french_argparse_message(message)}\n")




class FrenchRawDescriptionHelpFormatter(FrenchHelpFormatter,
                                        argparse.RawDescriptionHelpFormatter):
    """French usage heading; description and epilog printed as written."""


def _number_text(value: float) -> str:
    """A bound as a French reader writes it (``0,5``, ``240``)."""
    return f"{value:g}".replace(".", ",")


def int_at_least(low: int, *, high: int | None = None) -> Callable[[str], int]:
    """An argparse ``type``: a whole number in ``[low, high]``, refused in French.

    Examples
    --------
    >>> int_at_least(1)("3")
    3
    >>> int_at_least(1)("-3")
    Traceback (most recent call last):
    ...
    argparse.ArgumentTypeError: « -3 » : un nombre entier d'au moins 1 est attendu
    """
    def parse(text: str) -> int:
        value = int(text.strip())  # ValueError: argparse says « valeur invalide (nombre entier) »
        if value < low or (high is not None and value > high):
            bound = (f"entre {low} et {high}" if high is not None else f"d'au moins {low}")
            raise argparse.ArgumentTypeError(
                f"« {text} » : un nombre entier {bound} est attendu")
        return value

    parse.__name__ = "int"
    return parse


def float_between(low: float, high: float, *, low_open: bool = True,
                  unit: str = "") -> Callable[[str], float]:
    """An argparse ``type``: a finite number in ``]low, high]`` (``[low, high]``), in French.

    Examples
    --------
    >>> float_between(0, 240, unit="minutes")("20")
    20.0
    >>> float_between(0, 240)("1e9")
    Traceback (most recent call last):
    ...
    argparse.ArgumentTypeError: « 1e9 » : un nombre plus grand que 0 et au plus 240 est attendu
    """
    def parse(text: str) -> float:
        value = float(text.strip().replace(",", "."))  # ValueError: « valeur invalide »
        too_low = value <= low if low_open else value < low
        if not math.isfinite(value) or too_low or value > high:
            first = (f"plus grand que {_number_text(low)}" if low_open
                     else f"d'au moins {_number_text(low)}")
            raise argparse.ArgumentTypeError(
                f"« {text} » : un nombre {first} et au plus {_number_text(high)}"
                f"{' ' + unit if unit else ''} est attendu")
        return value

    parse.__name__ = "float"
    return parse


def non_empty(text: str) -> str:
    """An argparse ``type``: a value that is not empty or blank.

    Examples
    --------
    >>> non_empty("births=1")
    'births=1'
    >>> non_empty("  ")
    Traceback (most recent call last):
    ...
    argparse.ArgumentTypeError: valeur vide : donnez une valeur ou retirez l'option
    """
    if not text.strip():
        raise argparse.ArgumentTypeError("valeur vide : donnez une valeur ou retirez l'option")
    return text
