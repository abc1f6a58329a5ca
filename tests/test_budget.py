"""Byte and row budgets on the readers of user and downloaded files (issue 25 item 2).

Each "bomb" runs in a subprocess whose address space is capped with
``resource.setrlimit(RLIMIT_AS)``: reading it whole would end in a ``MemoryError``
traceback (or, without the cap, in the kernel killing the process); the budgets must
turn it into a clear French refusal with exit status 2.

The zip layout of the ``--grid`` bomb is the one of INSEE's Filosofi 200 m files
(``Filosofi2019_carreaux_200m_csv.zip`` holds one CSV, columns ``idcar_200m``, ``ind``,
``men``…), see ``data_sources/filosofi.py``.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from data_sources import _budget
from data_sources.user_file import load_facility_file
from data_sources.user_file.read import MAX_IMPORT_ROWS
from diagnosis.errors import InputError

REPO = Path(__file__).resolve().parents[1]
#: Address-space cap of a bomb subprocess: Python with geopandas and GDAL loaded takes
#: about 0.5 GB of address space; a bomb read whole takes several GB.
LIMIT_BYTES = 1_500 * 2**20

_GRID_LINE = b"CRS3035RES200mN2880000E3380000;10.5;4;1;0.5\n"


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(PYTHONPATH=str(REPO), OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1",
               MKL_NUM_THREADS="1", MALLOC_ARENA_MAX="2", PYTHONWARNINGS="ignore")
    return env


def _limit() -> None:  # runs in the child, before exec
    resource.setrlimit(resource.RLIMIT_AS, (LIMIT_BYTES, LIMIT_BYTES))


def run_limited(*args: str, timeout_s: float = 240) -> subprocess.CompletedProcess[str]:
    """``python *args`` under the address-space cap; stdout and stderr captured."""
    return subprocess.run([sys.executable, *args], capture_output=True, text=True,
                          env=_env(), cwd=REPO, preexec_fn=_limit, timeout=timeout_s,
                          check=False)


def assert_french_refusal(proc: subprocess.CompletedProcess[str], *words: str) -> None:
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr and "MemoryError" not in proc.stderr, proc.stderr
    for word in words:
        assert word in proc.stderr, proc.stderr


@pytest.fixture(scope="module")
def grid_bomb(tmp_path_factory) -> Path:
    """A 0.7 MB zip whose CSV member holds 240 MB (under the size cap, ratio ~300)."""
    path = tmp_path_factory.mktemp("bomb") / "carreaux.zip"
    block = b"idcar_200m;ind;men;men_pauv;men_1ind\n" + _GRID_LINE * 20_000
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf, \
            zf.open("carreaux_200m_met.csv", "w", force_zip64=True) as member:
        for _ in range(240 * 2**20 // len(block)):
            member.write(block)
    return path


def test_grid_zip_bomb_is_refused_in_french_under_a_memory_limit(grid_bomb):
    assert grid_bomb.stat().st_size < 2 * 2**20
    proc = run_limited("-m", "diagnosis", "summary", "--territory", "44109",
                       "--grid", str(grid_bomb))
    assert_french_refusal(proc, "carreaux_200m_met.csv", "rapport", "refusée")


def test_zip_member_caps_in_process(grid_bomb):
    with zipfile.ZipFile(grid_bomb) as zf:
        with pytest.raises(InputError, match="compression ratio") as err:
            _budget.read_zip_member(zf, "carreaux_200m_met.csv", archive=grid_bomb.name)
        assert "au plus 100" in err.value.fr
        # a lower size cap refuses before any ratio is judged
        with pytest.raises(InputError, match="too large") as err:
            _budget.read_zip_member(zf, "carreaux_200m_met.csv", archive=grid_bomb.name,
                                    max_bytes=10 * 2**20, max_ratio=10_000)
        assert "trop volumineux (plus de 10 Mo)" in err.value.fr


def test_streaming_cap_holds_when_the_declared_size_lies(tmp_path):
    """A member whose directory entry under-declares its size is still stopped."""
    path = tmp_path / "a.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("a.csv", b"x;y\n" * (3 * 2**20))  # 12 MB, ratio ~1000
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("a.csv")
        real = info.file_size
        info.file_size = 100  # what a forged directory would say
        info.compress_size = info.compress_size  # unchanged: the bytes really read
        with pytest.raises(InputError):
            _budget.read_zip_member(zf, info, archive="a.zip")
        info.file_size = real
        assert len(_budget.read_zip_member(zf, info, archive="a.zip",
                                           max_ratio=10_000)) == real


def test_extract_removes_the_partial_file(tmp_path, grid_bomb):
    target = tmp_path / "out.csv"
    with zipfile.ZipFile(grid_bomb) as zf, pytest.raises(InputError):
        _budget.extract_zip_member(zf, "carreaux_200m_met.csv", target, archive="b.zip")
    assert not target.exists() and not target.with_name("out.csv.part").exists()


def test_a_real_sized_grid_zip_is_read(tmp_path):
    """A département's cells, normally compressed, pass the caps."""
    from data_sources.filosofi import read_filosofi_file

    path = tmp_path / "dep.zip"
    rows = [f"CRS3035RES200mN{2_880_000 + 200 * i}E3380000;{i % 50}.5;{i % 20};{i % 7};1"
            for i in range(30_000)]
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("c.csv", "idcar_200m;ind;men;men_pauv;men_1ind\n" + "\n".join(rows))
    assert len(read_filosofi_file(path)) == 30_000


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom"])
def test_facilities_device_is_refused_before_reading(device):
    if not Path(device).exists():
        pytest.skip(f"{device} is absent on this system")
    proc = run_limited("-m", "diagnosis", "summary", "--territory", "44109",
                       "--facilities", device)
    assert_french_refusal(proc, device, "périphérique", "pas un fichier ordinaire")


def test_fifo_and_folder_are_refused_without_blocking(tmp_path):
    fifo = tmp_path / "tube.csv"
    os.mkfifo(fifo)
    with pytest.raises(InputError) as err:  # opening a FIFO would block: never opened
        load_facility_file(fifo)
    assert "tube (FIFO)" in err.value.fr
    with pytest.raises(InputError) as err:
        load_facility_file(tmp_path)
    assert "est un dossier" in err.value.fr


def test_an_oversized_upload_is_refused_in_french():
    data = b"nom;type;lat;lon\n" + b"A;eaje;47.2;-1.5\n" * 10
    with pytest.raises(InputError) as err:
        _budget.check_size(data, name="gros.csv", max_bytes=100, what="fichier de structures")
    assert err.value.fr.startswith("fichier de structures « gros.csv » trop volumineux")


def _unnamed_rows(path: Path, n: int) -> Path:
    positions = [(47.20 + k * 0.01, -1.55 + k * 0.01) for k in range(5)]
    with path.open("w", encoding="utf-8") as fh:
        fh.write("nom;type;lat;lon\n")
        for i in range(n):
            lat, lon = positions[i % 5]
            fh.write(f";eaje;{lat};{lon}\n")
    return path


def test_rows_over_the_cap_are_refused_under_a_memory_limit(tmp_path):
    path = _unnamed_rows(tmp_path / "trop.csv", MAX_IMPORT_ROWS + 1)
    proc = run_limited("-c", "import sys; from diagnosis.errors import InputError\n"
                       "from data_sources.user_file import load_facility_file\n"
                       "try:\n    load_facility_file(sys.argv[1])\n"
                       "except InputError as e:\n    print(e.fr, file=sys.stderr); sys.exit(2)\n",
                       str(path))
    assert_french_refusal(proc, "trop.csv", "plus de 100\u202f000 lignes")


def test_a_capped_row_count_names_the_file():
    data = b"nom;type;lat;lon\n" + b"A;eaje;47.2;-1.5\n" * 11
    with pytest.raises(InputError) as err:
        from data_sources.user_file.read import read_table

        read_table(data, file_name="liste.csv", max_rows=10)
    assert "« liste.csv » refusé : plus de 10 lignes" in err.value.fr
    assert len(read_table(data, file_name="liste.csv", max_rows=11).frame) == 11


def test_geojson_feature_cap(tmp_path):
    import json

    feats = [{"type": "Feature", "properties": {"nom": f"C{i}", "type": "eaje"},
              "geometry": {"type": "Point", "coordinates": [-1.5, 47.2]}} for i in range(6)]
    data = json.dumps({"type": "FeatureCollection", "features": feats}).encode()
    from data_sources.user_file.read import read_table

    with pytest.raises(InputError) as err:
        read_table(data, file_name="c.geojson", max_rows=5)
    assert "plus de 5 objets" in err.value.fr


def test_hundred_thousand_unnamed_rows_on_five_positions_fit_in_memory(tmp_path):
    """The duplicate search stays lean: 100,000 rows sharing 5 positions are imported."""
    path = _unnamed_rows(tmp_path / "sans_nom.csv", MAX_IMPORT_ROWS)
    proc = run_limited("-c", "import sys\nfrom data_sources.user_file import load_facility_file\n"
                       "r = load_facility_file(sys.argv[1])\n"
                       "print(r.report.rows_read, len(r.facilities), len(r.report.rejected),"
                       " len(r.report.duplicates))\n", str(path))
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows_read, accepted, rejected, duplicates = (int(v) for v in proc.stdout.split())
    assert rows_read == MAX_IMPORT_ROWS == accepted + rejected
    assert duplicates >= accepted - 5  # every row after the first at each position


def test_a_line_of_millions_of_columns_is_refused_quickly_under_a_memory_limit(tmp_path):
    """Two million separators on the header line (18 MB): refused before any split.

    Before: the header's two million names were de-duplicated one by one (quadratic) and
    the run never ended.
    """
    path = tmp_path / "large.csv"
    path.write_text("nom;type;" + ";".join(f"c{i}" for i in range(2_000_000)) + "\n"
                    + "A;eaje;" + ";" * 2_000_000 + "\n", encoding="utf-8")
    proc = run_limited("-c", "import sys; from diagnosis.errors import InputError\n"
                       "from data_sources.user_file import load_facility_file\n"
                       "try:\n    load_facility_file(sys.argv[1])\n"
                       "except InputError as e:\n    print(e.fr, file=sys.stderr); sys.exit(2)\n",
                       str(path), timeout_s=120)
    assert_french_refusal(proc, "large.csv", "la ligne 1 compte plus de 500 colonnes")


def _national_grid_zip(tmp_path: Path, payload: bytes, *, name: str) -> Path:
    """A zip laid out like INSEE's ``Filosofi2019_carreaux_200m_gpkg.zip``: one ``.7z``
    holding ``carreaux_200m_met.gpkg`` (see ``data_sources/filosofi.py``)."""
    py7zr = pytest.importorskip("py7zr")
    seven = tmp_path / "Filosofi2019_carreaux_200m_gpkg.7z"
    with py7zr.SevenZipFile(seven, "w") as sz:
        sz.writestr(payload, "carreaux_200m_met.gpkg")
    out = tmp_path / name
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as zf:
        zf.write(seven, seven.name)
    seven.unlink()
    return out


def test_a_bomb_inside_the_inner_7z_is_stopped_in_french(tmp_path):
    """Issue 25.2: the .7z inside Filosofi's national zip was extracted uncapped. 64 MB of
    zeros pack into a few kB: refused on its ratio, nothing left behind."""
    from data_sources.filosofi import extract_filosofi_gpkg

    archive = _national_grid_zip(tmp_path, bytes(64 * 2**20), name="bomb.zip")
    assert archive.stat().st_size < 1 * 2**20
    with pytest.raises(InputError) as err:
        extract_filosofi_gpkg(archive)
    assert "refusée" in err.value.fr and "rapport" in err.value.fr, err.value.fr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bomb.zip"]


def test_an_inner_7z_member_over_the_size_cap_is_stopped(tmp_path):
    from data_sources.filosofi import extract_filosofi_gpkg

    archive = _national_grid_zip(tmp_path, os.urandom(3 * 2**20), name="big.zip")
    with pytest.raises(InputError) as err:
        extract_filosofi_gpkg(archive, max_extract_bytes=2 * 2**20)
    assert "trop volumineux" in err.value.fr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.zip"]


def test_a_genuine_inner_7z_grid_is_extracted_and_read(tmp_path):
    import geopandas as gpd
    from shapely.geometry import box

    from data_sources.filosofi import extract_filosofi_gpkg, read_filosofi_file

    cells = gpd.GeoDataFrame(
        {"idcar_200m": [f"CRS3035RES200mN2680000E35{i:02d}00" for i in range(0, 40, 2)],
         "ind": [float(i) for i in range(20)], "men": [1.0] * 20},
        geometry=[box(3_500_000 + 200 * i, 2_680_000, 3_500_200 + 200 * i, 2_680_200)
                  for i in range(20)], crs="EPSG:3035")
    gpkg = tmp_path / "cells.gpkg"
    cells.to_file(gpkg, driver="GPKG")
    archive = _national_grid_zip(tmp_path, gpkg.read_bytes(), name="grid.zip")
    gpkg.unlink()
    out = extract_filosofi_gpkg(archive)
    assert out.name.endswith("carreaux_200m_met.gpkg")
    assert len(read_filosofi_file(out)) == 20


def test_a_parquet_read_under_a_memory_cap_ends():
    """Under ``RLIMIT_AS`` pyarrow's jemalloc threads cannot start and a Parquet read
    waited for ever (the CLI hung before refusing ``/dev/zero``); importing Maillage
    switches pyarrow to the system allocator when the address space is capped."""
    code = ("import diagnosis, pandas as pd, pyarrow as pa; "
            "print(len(pd.read_parquet('data_sources/demo/cog2026_communes.parquet')), "
            "pa.default_memory_pool().backend_name)")
    proc = run_limited("-c", code, timeout_s=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows, backend = proc.stdout.split()
    assert int(rows) > 30_000 and backend == "system"
