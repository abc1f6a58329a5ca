"""Decode the bytes of a CSV file (UTF-16, UTF-8, Windows-1252)."""

from __future__ import annotations

from diagnosis.errors import InputError


def _decode(data: bytes, *, file_name: str) -> tuple[str, str]:
    """Decode CSV bytes: UTF-16 with BOM, UTF-8 (with or without BOM), then cp1252."""
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        try:
            return data.decode("utf-16"), "UTF-16"
        except UnicodeDecodeError as exc:
            raise InputError(f"{file_name!r}: starts like UTF-16 but cannot be decoded ({exc}); "
                             "re-save it as CSV UTF-8") from exc
    if data.startswith(b"\xef\xbb\xbf"):
        try:
            return data[3:].decode("utf-8"), "UTF-8 (BOM)"
        except UnicodeDecodeError as exc:
            raise InputError(f"{file_name!r}: has a UTF-8 mark but invalid UTF-8 bytes ({exc}); "
                             "re-save it as CSV UTF-8") from exc
    if data.startswith(b"PK\x03\x04"):
        raise InputError(f"{file_name!r} is a zip archive (an Excel .xlsx or .ods file?), not a "
                         "CSV text file; export the sheet as CSV (UTF-8, ';' separator)")
    if b"\x00" in data[:4096]:
        raise InputError(f"{file_name!r} holds binary data (NUL bytes), not CSV text; "
                         "export it as CSV (UTF-8, ';' separator)")
    try:
        return data.decode("utf-8"), "UTF-8"
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252"), "cp1252"
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{file_name!r}: cannot decode the text as UTF-8 or cp1252 (byte "
            f"{data[exc.start:exc.start + 1]!r} at offset {exc.start}); re-save the file as "
            "CSV UTF-8"
        ) from exc
