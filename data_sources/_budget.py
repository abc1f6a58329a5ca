"""Byte budgets on every read of a user's or a downloaded file.

A file given on the command line or uploaded in the app is read through these helpers
and never whole without a bound:

- :func:`read_file_capped` refuses what is not a regular file (``/dev/zero``, a FIFO, a
  folder: reading them would never end or block) and reads at most ``max_bytes``;
- :func:`read_zip_member` and :func:`extract_zip_member` stream one member of a zip in
  chunks and stop as soon as it grows past its size cap or its compression ratio
  exceeds ``max_ratio`` (a "zip bomb": 2 MB holding 2 GB of CSV), whatever size the
  zip's directory declares.

Every refusal is an :class:`~diagnosis.errors.InputError` with a French message naming
the file and the limit, and saying what to do.
"""

from __future__ import annotations

import os
import stat
import zipfile
from pathlib import Path
from typing import IO

from diagnosis.errors import InputError, _os_reason_fr

#: Largest user file read into memory (a facility list, an INSEE file, a Filosofi CSV).
MAX_FILE_BYTES = 256 * 2**20
#: Largest zip member written to disk (a GeoPackage inside a zip).
MAX_EXTRACT_BYTES = 4 * 2**30
#: Largest ratio uncompressed / compressed of a zip member (real CSV and GeoPackage
#: files compress 3 to 20 times; a zip bomb, a thousand times and more).
MAX_ZIP_RATIO = 100.0
#: Below this many uncompressed bytes, the ratio is not judged (tiny, repetitive files).
_RATIO_FLOOR_BYTES = 1 * 2**20
_CHUNK = 1 * 2**20


def _mb(n: float) -> str:
    """Size in MB, French style.

    Examples
    --------
    >>> _mb(256 * 2**20)
    '256 Mo'
    >>> _mb(1.5 * 2**20)
    '1,5 Mo'
    """
    value = n / 2**20
    text = f"{value:.0f}" if value >= 10 or value == int(value) else f"{value:.1f}"
    return text.replace(".", ",") + " Mo"


def check_regular_file(path: str | Path, *, what: str = "fichier") -> Path:
    """Return ``path`` when it is an existing regular file, else raise in French.

    Devices (``/dev/zero``, ``/dev/stdin``), FIFOs, sockets and folders are refused
    before anything is opened: opening a FIFO blocks, reading ``/dev/zero`` never ends.
    Symbolic links are followed.

    Raises
    ------
    InputError
        The path does not exist, is a folder, or is not a regular file.
    """
    p = Path(path)
    try:
        mode = os.stat(p).st_mode
    except OSError as exc:
        raise InputError(
            f"cannot read {str(p)!r}: it is not a file ({exc.strerror})", argument=what,
            value=str(p),
            fr=f"{what} « {p} » illisible : {_os_reason_fr(exc)} ; vérifiez le chemin") from None
    if stat.S_ISDIR(mode):
        raise InputError(f"{str(p)!r} is a folder, not a file", argument=what, value=str(p),
                         fr=f"{what} « {p} » est un dossier : donnez le chemin d'un fichier")
    if not stat.S_ISREG(mode):
        kind = ("un tube (FIFO)" if stat.S_ISFIFO(mode) else
                "un périphérique" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else
                "une socket" if stat.S_ISSOCK(mode) else "un fichier spécial")
        raise InputError(f"{str(p)!r} is not a regular file", argument=what, value=str(p),
                         fr=f"{what} « {p} » est {kind}, pas un fichier ordinaire : Maillage "
                            "ne le lit pas ; donnez le chemin d'un fichier enregistré")
    return p


def not_a_file_fr(path: str | Path, *, what: str = "fichier") -> str:
    """Why ``path`` cannot be read as a file, in French (for a module's own refusal).

    Examples
    --------
    >>> not_a_file_fr("/nonexistent/x.osm", what="--road-graph")[:48]
    '--road-graph « /nonexistent/x.osm » illisible : '
    """
    try:
        check_regular_file(path, what=what)
    except InputError as exc:
        return exc.fr
    return f"{what} « {path} » illisible"


def read_file_capped(path: str | Path, *, max_bytes: int = MAX_FILE_BYTES,
                     what: str = "fichier") -> bytes:
    """Read a regular file, refusing it when it holds more than ``max_bytes``.

    The size is checked before reading and again while reading (a file that grows).

    Raises
    ------
    InputError
        Not a regular file (see :func:`check_regular_file`), unreadable, or too large.
    """
    p = check_regular_file(path, what=what)
    size = p.stat().st_size
    if size > max_bytes:
        raise _too_large(p.name, size, max_bytes, what=what)
    try:
        with p.open("rb") as fh:
            data = fh.read(max_bytes + 1)
    except OSError as exc:
        raise InputError(f"cannot read {str(p)!r}: {exc.strerror}", argument=what,
                         value=str(p),
                         fr=f"{what} « {p} » illisible : {_os_reason_fr(exc)}") from None
    if len(data) > max_bytes:
        raise _too_large(p.name, len(data), max_bytes, what=what)
    return data


def read_stream_capped(stream: IO[bytes], *, name: str, max_bytes: int = MAX_FILE_BYTES,
                       what: str = "fichier") -> bytes:
    """Read a binary stream (an upload) up to ``max_bytes``, refusing a larger one."""
    data = stream.read(max_bytes + 1)
    if isinstance(data, str):
        data = data.encode("utf-8")
    if len(data) > max_bytes:
        raise _too_large(name, len(data), max_bytes, what=what)
    return bytes(data)


def check_size(data: bytes | bytearray | memoryview, *, name: str,
               max_bytes: int = MAX_FILE_BYTES, what: str = "fichier") -> None:
    """Refuse bytes already in memory (an upload) that exceed ``max_bytes``."""
    if len(data) > max_bytes:
        raise _too_large(name, len(data), max_bytes, what=what)


def _too_large(name: str, size: int, max_bytes: int, *, what: str) -> InputError:
    return InputError(
        f"{name!r} is too large ({size} bytes > {max_bytes})", argument=what, value=name,
        fr=f"{what} « {name} » trop volumineux (plus de {_mb(max_bytes)}) : "
           "ne gardez que les lignes du territoire étudié, ou découpez-le en plusieurs fichiers")


def _member_info(zf: zipfile.ZipFile, member: str | zipfile.ZipInfo) -> zipfile.ZipInfo:
    return member if isinstance(member, zipfile.ZipInfo) else zf.getinfo(member)


def _check_declared(info: zipfile.ZipInfo, *, archive: str, max_bytes: int,
                    max_ratio: float) -> None:
    label = f"{archive}:{info.filename}"
    if info.file_size > max_bytes:
        raise _too_large(label, info.file_size, max_bytes, what="membre de l'archive")
    if info.file_size > _RATIO_FLOOR_BYTES and info.file_size > max_ratio * max(
            info.compress_size, 1):
        raise _bomb(label, info.file_size, info.compress_size, max_ratio)


def _bomb(label: str, out: int, packed: int, max_ratio: float) -> InputError:
    ratio = out / max(packed, 1)
    return InputError(
        f"{label!r}: compression ratio {ratio:.0f} exceeds {max_ratio:.0f} (zip bomb?)",
        argument="archive", value=label,
        fr=f"archive « {label} » refusée : {_mb(packed)} compressés deviennent plus de "
           f"{_mb(out)} (rapport {ratio:.0f}, au plus {max_ratio:.0f}) ; ce n'est pas un "
           "fichier de données ordinaire. Donnez le fichier décompressé, ou une archive "
           "téléchargée de nouveau depuis sa source")


def _stream_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, *, archive: str,
                   max_bytes: int, max_ratio: float, sink: IO[bytes]) -> int:
    """Copy one member to ``sink`` in chunks, enforcing the caps on what is really read."""
    _check_declared(info, archive=archive, max_bytes=max_bytes, max_ratio=max_ratio)
    label = f"{archive}:{info.filename}"
    total = 0
    try:
        with zf.open(info) as src:
            while True:
                chunk = src.read(_CHUNK)
                if not chunk:
                    break
                total += len(chunk)
                if total > max_bytes:
                    raise _too_large(label, total, max_bytes, what="membre de l'archive")
                if total > _RATIO_FLOOR_BYTES and total > max_ratio * max(info.compress_size, 1):
                    raise _bomb(label, total, info.compress_size, max_ratio)
                sink.write(chunk)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, NotImplementedError,
            RuntimeError) as exc:
        raise InputError(f"{label!r}: cannot decompress ({exc})", argument="archive",
                         value=label,
                         fr=f"archive « {label} » illisible ({exc}) : téléchargez-la de "
                            "nouveau ou donnez le fichier décompressé") from exc
    return total


def read_zip_member(zf: zipfile.ZipFile, member: str | zipfile.ZipInfo, *, archive: str,
                    max_bytes: int = MAX_FILE_BYTES,
                    max_ratio: float = MAX_ZIP_RATIO) -> bytes:
    """The bytes of one zip member, read in chunks under a size and a ratio cap.

    Parameters
    ----------
    zf
        The open archive.
    member
        Member name or info.
    archive
        The archive's name, shown in messages.
    max_bytes
        Largest uncompressed size accepted.
    max_ratio
        Largest uncompressed / compressed ratio accepted (beyond 1 MB read).

    Raises
    ------
    InputError
        The member is larger than ``max_bytes``, decompresses more than ``max_ratio``
        times its packed size, or cannot be decompressed.
    """
    import io

    info = _member_info(zf, member)
    buf = io.BytesIO()
    _stream_member(zf, info, archive=archive, max_bytes=max_bytes, max_ratio=max_ratio,
                   sink=buf)
    return buf.getvalue()


def extract_zip_member(zf: zipfile.ZipFile, member: str | zipfile.ZipInfo, target: Path, *,
                       archive: str, max_bytes: int = MAX_EXTRACT_BYTES,
                       max_ratio: float = MAX_ZIP_RATIO) -> Path:
    """Write one zip member to ``target`` under a size and a ratio cap (atomic).

    The member goes to ``target.part`` first, renamed onto ``target`` once complete; on a
    refusal the partial file is removed.
    """
    info = _member_info(zf, member)
    part = target.with_name(target.name + ".part")
    try:
        with part.open("wb") as sink:
            _stream_member(zf, info, archive=archive, max_bytes=max_bytes,
                           max_ratio=max_ratio, sink=sink)
        part.replace(target)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    return target


def extract_7z_member(seven: Path, member: str, target: Path, *, archive: str,
                      max_bytes: int = MAX_EXTRACT_BYTES,
                      max_ratio: float = MAX_ZIP_RATIO) -> Path:
    """Write one member of a 7z archive to ``target`` under a size and a ratio cap.

    The sizes the archive declares are checked first; the bytes really decompressed are
    counted as they are written (py7zr's writer factory), so a member that grows past
    ``max_bytes`` or ``max_ratio`` times the archive's own size is stopped at once. The
    member goes to ``target.part`` first and is renamed once complete.
    """
    import py7zr
    from py7zr.io import Py7zIO, WriterFactory

    label = f"{archive}:{member}"
    packed = seven.stat().st_size
    part = target.with_name(target.name + ".part")

    class _Capped(Py7zIO):
        def __init__(self, sink: IO[bytes]) -> None:
            self.sink, self.total = sink, 0

        def write(self, s: bytes | bytearray) -> int:
            self.total += len(s)
            if self.total > max_bytes:
                raise _too_large(label, self.total, max_bytes, what="membre de l'archive")
            if self.total > _RATIO_FLOOR_BYTES and self.total > max_ratio * max(packed, 1):
                raise _bomb(label, self.total, packed, max_ratio)
            return self.sink.write(s)

        def read(self, size: int | None = None) -> bytes:
            return b""

        def seek(self, offset: int, whence: int = 0) -> int:
            return self.sink.seek(offset, whence)

        def flush(self) -> None:
            self.sink.flush()

        def size(self) -> int:
            return self.total

    class _Factory(WriterFactory):
        def __init__(self, sink: IO[bytes]) -> None:
            self.sink = sink

        def create(self, filename: str) -> Py7zIO:
            return _Capped(self.sink)

    try:
        with py7zr.SevenZipFile(seven, mode="r") as sz:
            declared = {i.filename: i.uncompressed for i in sz.list()}
            if member not in declared:
                raise InputError(f"{archive}: no member {member!r}", argument="archive",
                                 value=archive, candidates=sorted(declared)[:10],
                                 fr=f"archive « {archive} » : pas de fichier « {member} »")
            size = int(declared[member] or 0)
            if size > max_bytes:
                raise _too_large(label, size, max_bytes, what="membre de l'archive")
            if size > _RATIO_FLOOR_BYTES and size > max_ratio * max(packed, 1):
                raise _bomb(label, size, packed, max_ratio)
            with part.open("wb") as sink:
                sz.extract(targets=[member], factory=_Factory(sink))
        part.replace(target)
    except InputError:
        part.unlink(missing_ok=True)
        raise
    except (py7zr.Bad7zFile, py7zr.DecompressionError, EOFError, ValueError) as exc:
        part.unlink(missing_ok=True)
        raise InputError(f"{label!r}: cannot decompress ({exc})", argument="archive",
                         value=label,
                         fr=f"archive « {label} » illisible ({exc}) : téléchargez-la de "
                            "nouveau ou donnez le fichier décompressé") from exc
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    return target
