"""Project errors: messages name the argument, show the bad value and say what to do."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any


class MaillageError(Exception):
    """Base class of every error Maillage raises on purpose.

    Besides the message, an error may carry structured fields so that the app and the
    command line render it in French without parsing the text:

    Attributes
    ----------
    argument
        The option, argument, file or column at fault (``"max_minutes"``, ``"--site"``).
    value
        The bad value.
    hint
        What to do, or an example of a good value.
    candidates
        Accepted values, or the closest known ones.
    fr_message
        A French message for the user, when the raiser wrote one.

    Examples
    --------
    >>> e = InputError("k=0 must be >= 1", argument="k", value=0, hint="1")
    >>> e.argument, e.value, str(e)
    ('k', 0, 'k=0 must be >= 1')
    >>> e.fr
    'valeur invalide pour k : 0 (exemple : 1). Détail : k=0 must be >= 1'
    """

    def __init__(self, message: str = "", *, argument: str | None = None,
                 value: Any = None, hint: str | None = None,
                 candidates: Sequence[Any] | None = None, fr: str | None = None) -> None:
        super().__init__(message)
        self.argument = argument
        self.value = value
        self.hint = hint
        self.candidates = tuple(candidates) if candidates is not None else ()
        self.fr_message = fr

    @property
    def fr(self) -> str:
        """The message in French: the raiser's own, else built from the fields."""
        if self.fr_message:
            return self.fr_message
        if self.argument is None:
            return str(self)
        text = f"valeur invalide pour {self.argument} : {self.value!r}"
        if self.candidates:
            text += " ; valeurs possibles : " + ", ".join(str(c) for c in self.candidates[:10])
        if self.hint:
            text += f" (exemple : {self.hint})"
        return f"{text}. Détail : {self}"


class InputError(MaillageError, ValueError):
    """Bad input from the user or the caller (argument, file, row, field)."""


#: Short French motive of a failed source, by :attr:`SourceError.kind`.
SOURCE_FAILURES_FR: dict[str, str] = {
    "offline": "mode hors ligne et aucune copie locale",
    "unreachable": "service injoignable",
    "timeout": "délai de réponse dépassé",
    "retries": "le service refuse les requêtes (nouvelles tentatives épuisées)",
    "http": "réponse HTTP {status}",
    "too_large": "réponse trop volumineuse",
    "truncated": "transfert interrompu",
    "html": "page HTML reçue au lieu des données",
    "unusable": "réponse inutilisable",
    "deadline": "délai global dépassé",
    "disk": "disque plein ou quota atteint",
    "blocked": "adresse refusée",
    "token": "jeton d'accès manquant ou refusé",
}

#: What to do, by :attr:`SourceError.kind` (appended to the French message).
_SOURCE_HINTS_FR: dict[str, str] = {
    "offline": "connectez-vous à internet une fois pour la télécharger, ou travaillez sur "
               "la démonstration",
    "unreachable": "vérifiez la connexion à internet et réessayez plus tard",
    "timeout": "le service est lent : réessayez plus tard",
    "retries": "réessayez plus tard",
    "too_large": "le service a envoyé bien plus que prévu : signalez-le",
    "truncated": "la connexion ou le service est instable : réessayez plus tard",
    "html": "le service est peut-être en maintenance : réessayez plus tard",
    "unusable": "le service est peut-être en panne ou son format a changé : réessayez plus "
                "tard ou signalez-le",
    "deadline": "le service est trop lent : réessayez plus tard",
    "disk": "libérez de la place sur le disque puis réessayez",
    "token": "demandez un jeton d'accès au service et indiquez-le dans sa variable "
             "d'environnement",
}


class SourceError(MaillageError, RuntimeError):
    """A data source failed or returned something unusable.

    Besides the fields of :class:`MaillageError`, a source error says what failed, so
    that callers decide and render without reading the text:

    Attributes
    ----------
    kind
        A key of :data:`SOURCE_FAILURES_FR` (``"timeout"``, ``"http"``, ``"html"``…), or
        ``None`` for an error of another sort.
    source
        The source's key (``"caf_txcouv"``).
    url
        The address that failed.
    status
        The HTTP status, for ``kind="http"``.

    Examples
    --------
    >>> e = SourceError("caf: HTTP 503 from https://x", kind="http", status=503,
    ...                 source="caf", url="https://x")
    >>> e.motive_fr
    'réponse HTTP 503'
    >>> e.fr
    'caf : réponse HTTP 503 (https://x) ; réessayez plus tard'
    """

    def __init__(self, message: str = "", *, kind: str | None = None,
                 source: str | None = None, url: str | None = None,
                 status: int | None = None, **fields: Any) -> None:
        super().__init__(message, **fields)
        if kind is not None and kind not in SOURCE_FAILURES_FR:
            raise ValueError(f"unknown source failure kind {kind!r}")
        self.kind = kind
        self.source = source
        self.url = url
        self.status = status

    @property
    def motive_fr(self) -> str:
        """The short French motive (« réponse HTTP 503 »), « réponse inutilisable » if unknown."""
        if self.kind is None:
            return SOURCE_FAILURES_FR["unusable"]
        return SOURCE_FAILURES_FR[self.kind].format(status=self.status)

    @property
    def fr(self) -> str:
        """The French message: the raiser's own, else built from the kind."""
        if self.fr_message or self.kind is None:
            return super().fr
        where = f" ({self.url})" if self.url else ""
        who = f"{self.source} : " if self.source else ""
        hint = _SOURCE_HINTS_FR.get(self.kind, "réessayez plus tard")
        return f"{who}{self.motive_fr}{where} ; {hint}"


class MissingDataError(MaillageError, LookupError):
    """The territory resolves, but the data it needs is not loaded."""


def check_positive(value: object, name: str) -> float:
    """Return ``value`` as a finite float > 0, or raise :class:`InputError` naming ``name``.

    Examples
    --------
    >>> check_positive("20", "max_minutes")
    20.0
    >>> check_positive(0, "max_minutes")
    Traceback (most recent call last):
    ...
    diagnosis.errors.InputError: max_minutes must be a positive finite number; got 0
    """
    try:
        v = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a positive number; got {value!r}",
                         argument=name, value=value,
                         fr=f"{name} : « {value} » n'est pas un nombre ; donnez un nombre "
                            "strictement positif") from None
    if not math.isfinite(v) or v <= 0:
        raise InputError(f"{name} must be a positive finite number; got {value!r}",
                         argument=name, value=value,
                         fr=f"{name} : « {value} » ne convient pas ; donnez un nombre fini "
                            "strictement positif")
    return v


def _os_reason_fr(exc: OSError) -> str:
    """A French reason for the common operating-system errors, else the system's text."""
    import errno

    return {
        errno.ENOENT: "fichier ou dossier introuvable",
        errno.EACCES: "accès refusé",
        errno.EPERM: "opération non permise",
        errno.EISDIR: "c'est un dossier",
        errno.ENOTDIR: "un élément du chemin n'est pas un dossier",
        errno.ENOSPC: "plus de place sur le disque",
        errno.EROFS: "disque en lecture seule",
        errno.ECONNREFUSED: "connexion refusée",
        errno.ETIMEDOUT: "délai d'attente dépassé",
        errno.EHOSTUNREACH: "machine injoignable",
        errno.ENAMETOOLONG: "chemin trop long",
    }.get(exc.errno or 0, exc.strerror or str(exc) or type(exc).__name__)


def render_error(exc: BaseException) -> str:
    """The French text of an error shown to a user (both command lines and the app).

    This is the one renderer of user-facing errors. A project error gives its French
    message; operating-system errors, a lack of memory and an interruption are said in
    French; anything else is named as unexpected, with its own text kept (nothing lost).

    Examples
    --------
    >>> render_error(InputError("k=0", fr="k doit valoir au moins 1"))
    'k doit valoir au moins 1'
    >>> render_error(FileNotFoundError(2, "No such file or directory", "a.csv"))
    'fichier « a.csv » : fichier ou dossier introuvable'
    >>> render_error(MemoryError()).startswith("mémoire insuffisante")
    True
    >>> render_error(KeyError("x"))
    "erreur inattendue (KeyError) : 'x'"
    """
    if isinstance(exc, MaillageError):
        return exc.fr
    if isinstance(exc, MemoryError):
        return ("mémoire insuffisante pour cette opération : réduisez le territoire ou la "
                "taille des fichiers")
    if isinstance(exc, KeyboardInterrupt):
        return "interrompu à la demande de l'utilisateur"
    if isinstance(exc, TimeoutError) and not exc.errno:
        return f"délai d'attente dépassé{f' ({exc})' if str(exc) else ''}"
    if isinstance(exc, OSError):
        where = f"fichier « {exc.filename} » : " if exc.filename else ""
        return f"{where}{_os_reason_fr(exc)}"
    return f"erreur inattendue ({type(exc).__name__}) : {exc}"
