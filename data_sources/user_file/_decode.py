"""Decode the bytes of a CSV file (UTF-16, UTF-8, Windows-1252, or UTF-8 mixed per line)."""

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
    """

    text: str
    encoding: str
    cp1252_lines: tuple[int, ...] = ()


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
        return Decoded(data.decode("cp1252"), "cp1252")  # strict: undefined bytes raise
    label = f"UTF-8 ({len(bad)} ligne{'s' if len(bad) > 1 else ''} en Windows-1252)"
    return Decoded("".join(out), label, tuple(bad))


def _decode(data: bytes, *, file_name: str) -> Decoded:
    """Decode CSV bytes: UTF-16 (with or without BOM), UTF-8 (BOM or not), cp1252, mixed."""
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        try:
            return Decoded(data.decode("utf-16"), "UTF-16")
        except UnicodeDecodeError as exc:
            raise InputError(f"{file_name!r}: starts like UTF-16 but cannot be decoded ({exc}); "
                             "re-save it as CSV UTF-8") from exc
    if data.startswith(b"\xef\xbb\xbf"):
        try:
            return Decoded(data[3:].decode("utf-8"), "UTF-8 (BOM)")
        except UnicodeDecodeError:
            mixed = decode_lines(data[3:])
            if mixed.cp1252_lines:
                return Decoded(mixed.text, mixed.encoding.replace("UTF-8", "UTF-8 (BOM)", 1),
                               mixed.cp1252_lines)
            raise InputError(f"{file_name!r}: has a UTF-8 mark but invalid UTF-8 bytes; "
                             "re-save it as CSV UTF-8") from None
    if data.startswith(b"PK\x03\x04"):
        raise InputError(f"{file_name!r} is a zip archive (an Excel .xlsx or .ods file?), not a "
                         "CSV text file; export the sheet as CSV (UTF-8, ';' separator)")
    if b"\x00" in data[:4096]:
        codec = _utf16_without_bom(data[:4096])
        if codec:
            try:
                return Decoded(data.decode(codec), "UTF-16 (sans BOM)")
            except UnicodeDecodeError:
                pass
        raise InputError(f"{file_name!r} holds binary data (NUL bytes), not CSV text; "
                         "export it as CSV (UTF-8, ';' separator)")
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
            "CSV UTF-8"
        ) from exc
