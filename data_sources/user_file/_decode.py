"""Decode the bytes of a CSV file.

UTF-32 and UTF-16 (with or without a byte-order mark), UTF-8, Windows-1252, Mac Roman
(old Excel for Mac exports), or UTF-8 mixed per line with Windows-1252. Stray NUL bytes
in a text file are dropped and their lines flagged, rather than refusing the file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from diagnosis.errors import InputError

_LINE_RE = re.compile(rb"[^\r\n]*(?:\r\n|\n|\r)|[^\r\n]+\Z")


@dataclass(frozen=True)
class Decoded:
    """Text of a CSV file and how it was decoded.

    Attributes
    ----------
    text
        The decoded text.
    encoding
        Label shown in the report (``"UTF-8"``, ``"cp1252"``, ``"UTF-16 (sans BOM)"``…).
    cp1252_lines
        Physical lines (1 = first) decoded as Windows-1252 in a file that is otherwise
        UTF-8; their rows are flagged in the report.
    nul_lines
        Physical lines (1 = first) from which NUL bytes were dropped; flagged too.
    """

    text: str
    encoding: str
    cp1252_lines: tuple[int, ...] = ()
    nul_lines: tuple[int, ...] = ()

#: Letters of French words once lower-cased: the single-byte encoding that yields more of
#: them is the file's (Mac Roman "è" is byte 0x8F, undefined in Windows-1252).
_FRENCH_LETTERS = frozenset("àâäçéèêëîïôöùûüÿœæ")
#: Share of control bytes (other than tab and line breaks) above which a file is binary.
_NUL_SHARE_BINARY = 0.01


def _french_score(text: str) -> int:
    """Count of lower-case French accented letters (and ``œ``) in ``text``.

    Examples
    --------
    >>> _french_score("crèche à Nantes")
    2
    >>> _french_score("crËche ‡ Nantes")
    0
    """
    return sum(ch in _FRENCH_LETTERS for ch in text)


def _single_byte(data: bytes) -> Decoded | None:
    """Windows-1252 or Mac Roman, whichever reads more French letters; ``None`` if neither.

    Examples
    --------
    >>> _single_byte("crèche;Orléans".encode("mac_roman")).encoding
    'Mac Roman'
    >>> _single_byte("crèche;Orléans".encode("cp1252")).encoding
    'cp1252'
    """
    try:
        cp = data.decode("cp1252")
    except UnicodeDecodeError:
        cp = None
    mac = data.decode("mac_roman")  # every byte is defined
    if cp is not None and _french_score(cp) >= _french_score(mac):
        return Decoded(cp, "cp1252")
    if _french_score(mac) > 0:
        return Decoded(mac, "Mac Roman")
    return None


def _about(file_name: str) -> dict[str, str]:
    """The structured fields of an import error: the file at fault."""
    return {"argument": "fichier de structures", "value": file_name}


def _utf16_without_bom(head: bytes) -> str:
    r"""``"utf-16-le"``/``"utf-16-be"`` when NUL bytes alternate like UTF-16 text, else ``""``.

    Examples
    --------
    >>> _utf16_without_bom("nom;type".encode("utf-16-le"))
    'utf-16-le'
    >>> _utf16_without_bom(b"PK\x03\x04\x00\x00\x01")
    ''
    """
    even, odd = head[0::2], head[1::2]
    if len(head) < 4:
        return ""
    if odd.count(0) >= 0.3 * len(odd) and even.count(0) <= 0.05 * len(even):
        return "utf-16-le"
    if even.count(0) >= 0.3 * len(even) and odd.count(0) <= 0.05 * len(odd):
        return "utf-16-be"
    return ""


def _cp1252(raw: bytes) -> str:
    try:
        return raw.decode("cp1252")
    except UnicodeDecodeError:  # the 5 bytes cp1252 leaves undefined
        return raw.decode("latin-1")


def decode_lines(data: bytes) -> Decoded:
    r"""Decode text that fails as UTF-8: per line when other lines are real UTF-8.

    A file whose non-ASCII lines are all invalid UTF-8 is Windows-1252 as a whole; a
    UTF-8 file with a few Windows-1252 lines (rows pasted from another export) keeps its
    UTF-8 lines and decodes only the bad ones as Windows-1252, listed in
    ``cp1252_lines``.

    Raises
    ------
    UnicodeDecodeError
        A file that is not UTF-8 holds bytes undefined in Windows-1252.

    Examples
    --------
    >>> d = decode_lines("a;é\n".encode() + "b;è\n".encode("cp1252"))
    >>> d.text, d.cp1252_lines
    ('a;é\nb;è\n', (2,))
    >>> decode_lines("a;é\n".encode("cp1252")).encoding
    'cp1252'
    """
    lines = _LINE_RE.findall(data)
    good_non_ascii = 0
    out: list[str] = []
    bad: list[int] = []
    for i, raw in enumerate(lines, start=1):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            bad.append(i)
            out.append(_cp1252(raw))
            continue
        good_non_ascii += not raw.isascii()
        out.append(text)
    if not bad:
        return Decoded("".join(out), "UTF-8")
    if good_non_ascii == 0:
        single = _single_byte(data)
        if single is None:
            return Decoded(data.decode("cp1252"), "cp1252")  # strict: undefined bytes raise
        return single
    label = f"UTF-8 ({len(bad)} ligne{'s' if len(bad) > 1 else ''} en Windows-1252)"
    return Decoded("".join(out), label, tuple(bad))


def _utf32_without_bom(head: bytes) -> str:
    r"""``"utf-32-le"``/``"utf-32-be"`` when three NUL bytes of four frame each character.

    Examples
    --------
    >>> _utf32_without_bom("nom;type".encode("utf-32-le"))
    'utf-32-le'
    >>> _utf32_without_bom("nom;type".encode("utf-16-le"))
    ''
    """
    head = head[: len(head) // 4 * 4]
    if len(head) < 8:
        return ""
    lanes = [head[k::4] for k in range(4)]
    zero = [lane.count(0) / len(lane) for lane in lanes]
    if min(zero[1:]) >= 0.95 and zero[0] <= 0.05:
        return "utf-32-le"
    if min(zero[:3]) >= 0.95 and zero[3] <= 0.05:
        return "utf-32-be"
    return ""


def _drop_nul(data: bytes) -> tuple[bytes, tuple[int, ...]]:
    r"""``data`` without its NUL bytes, and the lines (1 = first) that held some.

    Examples
    --------
    >>> _drop_nul(b"a;b\n\x00c;d\nx;\x00y\n")
    (b'a;b\nc;d\nx;y\n', (2, 3))
    """
    lines = _LINE_RE.findall(data)
    hit = tuple(i for i, raw in enumerate(lines, start=1) if b"\x00" in raw)
    return data.replace(b"\x00", b""), hit


def _decode(data: bytes, *, file_name: str) -> Decoded:
    """Decode CSV bytes: UTF-32/UTF-16 (BOM or not), UTF-8 (BOM or not), cp1252, Mac Roman."""
    for bom, codec in ((b"\xff\xfe\x00\x00", "utf-32"), (b"\x00\x00\xfe\xff", "utf-32")):
        if data.startswith(bom):
            try:
                return Decoded(data.decode(codec), "UTF-32")
            except UnicodeDecodeError as exc:
                raise InputError(
                    f"{file_name!r}: starts like UTF-32 but cannot be decoded ({exc})",
                    **_about(file_name),
                    fr=f"« {file_name} » commence comme un texte UTF-32 mais ne se décode pas "
                       f"({exc.reason}, octet {exc.start}) : enregistrez-le en CSV UTF-8") from exc
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        try:
            return Decoded(data.decode("utf-16"), "UTF-16")
        except UnicodeDecodeError as exc:
            raise InputError(f"{file_name!r}: starts like UTF-16 but cannot be decoded ({exc}); "
                             "re-save it as CSV UTF-8", **_about(file_name),
                             fr=f"« {file_name} » commence comme un texte UTF-16 mais ne se "
                                f"décode pas (octet {exc.start}) : enregistrez-le en CSV "
                                "UTF-8") from exc
    if data.startswith(b"\xef\xbb\xbf"):
        try:
            return Decoded(data[3:].decode("utf-8"), "UTF-8 (BOM)")
        except UnicodeDecodeError:
            try:
                mixed = decode_lines(data[3:])
            except UnicodeDecodeError:  # bytes undefined in Windows-1252 too
                mixed = Decoded("", "")
            if mixed.cp1252_lines:
                return Decoded(mixed.text, mixed.encoding.replace("UTF-8", "UTF-8 (BOM)", 1),
                               mixed.cp1252_lines)
            raise InputError(f"{file_name!r}: has a UTF-8 mark but invalid UTF-8 bytes; "
                             "re-save it as CSV UTF-8", **_about(file_name),
                             fr=f"« {file_name} » est marqué UTF-8 mais contient des octets "
                                "invalides en UTF-8 : enregistrez-le de nouveau en CSV "
                                "UTF-8") from None
    if data.startswith(b"PK\x03\x04"):
        raise InputError(f"{file_name!r} is a zip archive (an Excel .xlsx or .ods file?), not a "
                         "CSV text file; export the sheet as CSV (UTF-8, ';' separator)",
                         **_about(file_name),
                         fr=f"« {file_name} » est une archive zip (un classeur Excel .xlsx ou "
                            ".ods ?), pas un texte CSV : exportez la feuille en CSV (UTF-8, "
                            "séparateur « ; »)")
    nul_lines: tuple[int, ...] = ()
    if b"\x00" in data:
        for detect, label in ((_utf32_without_bom, "UTF-32 (sans BOM)"),
                              (_utf16_without_bom, "UTF-16 (sans BOM)")):
            codec = detect(data[:4096])
            if codec:
                try:
                    return Decoded(data.decode(codec), label)
                except UnicodeDecodeError:
                    pass
        if data.startswith(b"\xd0\xcf\x11\xe0") or _binary_controls(data) or _nul_everywhere(data):
            raise InputError(f"{file_name!r} holds binary data (NUL bytes), not CSV text; "
                             "export it as CSV (UTF-8, ';' separator)",
                             **_about(file_name),
                             fr=f"« {file_name} » contient des données binaires (octets nuls), "
                                "pas du texte CSV : exportez-le en CSV (UTF-8, séparateur « ; »)")
        data, nul_lines = _drop_nul(data)
    decoded = _decode_text(data, file_name=file_name)
    if nul_lines:
        from dataclasses import replace

        decoded = replace(decoded, nul_lines=nul_lines)
    return decoded


def _nul_everywhere(data: bytes) -> bool:
    r"""Whether NUL bytes fill more than half of the lines (a binary file, not stray NULs).

    Examples
    --------
    >>> _nul_everywhere(b"a;b\n\x00c;d\nx;y\n")
    False
    >>> _nul_everywhere(b"\x00\x01\x00\n\x00\x00")
    True
    """
    lines = _LINE_RE.findall(data)
    return sum(b"\x00" in raw for raw in lines) > max(1, len(lines) // 2)


def _binary_controls(data: bytes) -> bool:
    r"""Whether ``data`` holds many control bytes other than NUL, tab and line breaks.

    Examples
    --------
    >>> _binary_controls(b"nom;type\n" * 10 + b"\x00")
    False
    >>> _binary_controls(bytes(range(1, 32)) * 10)
    True
    """
    controls = sum(data.count(bytes([b])) for b in range(1, 32) if b not in (9, 10, 13))
    return controls > _NUL_SHARE_BINARY * len(data)


def _decode_text(data: bytes, *, file_name: str) -> Decoded:
    """UTF-8, else per line / single-byte decoding (:func:`decode_lines`)."""
    try:
        return Decoded(data.decode("utf-8"), "UTF-8")
    except UnicodeDecodeError:
        pass
    try:
        return decode_lines(data)
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{file_name!r}: cannot decode the text as UTF-8 or cp1252 (byte "
            f"{data[exc.start:exc.start + 1]!r} at offset {exc.start}); re-save the file as "
            "CSV UTF-8", **_about(file_name),
            fr=f"« {file_name} » ne se lit ni en UTF-8, ni en Windows-1252, ni en Mac Roman "
               f"(octet {data[exc.start:exc.start + 1]!r} à la position {exc.start}) : "
               "enregistrez-le en CSV UTF-8"
        ) from exc
