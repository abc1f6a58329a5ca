"""Command-line validation of both CLIs (issue 25 item 8): ranges, outputs, French errors.

Every case is refused with exit status 2 and a French message on stderr, before any
computation; nothing in English (argparse's or Python's) reaches the user, and no
traceback. The cases are the ones an attacker's pass found accepted with exit 0
(``--top -3``, ``--max-minutes 1e9``, ``--weights ""``, ``report --out r.txt``) or
blocking (``scrape --out`` on a FIFO).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from data_sources.__main__ import main as ds_main
from diagnosis.__main__ import main as dg_main
from diagnosis.errors import InputError, SourceError, render_error

REPO = Path(__file__).resolve().parents[1]
ENGLISH = ("usage:", "error:", "Traceback", "invalid choice", "invalid int", "invalid float",
           "required", "must ", "expected",
           "is not", "cannot", "unrecognized")


def _run(main, capsys, *argv: str) -> tuple[int, str]:
    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse exits itself
        code = int(exc.code or 0)
    return code, capsys.readouterr().err


def _assert_french(err: str, *words: str) -> None:
    for english in ENGLISH:
        assert english not in err, err
    for word in words:
        assert word in err, err


T = ("--territory", "200000438")

DIAGNOSIS_CASES = [
    (("access", *T, "--top", "-3"), "« -3 » : un nombre entier d'au moins 1"),
    (("access", *T, "--top", "0"), "« 0 » : un nombre entier d'au moins 1"),
    (("access", *T, "--max-minutes", "1e9"), "au plus 240 minutes"),
    (("access", *T, "--max-minutes", "0"), "plus grand que 0"),
    (("access", *T, "--max-minutes", "nan"), "« nan »"),
    (("access", *T, "--max-minutes=-inf"), "« -inf »"),
    (("access", *T, "--weights", ""), "argument --weights : valeur vide"),
    (("site", *T, "--need-weights", " "), "argument --need-weights : valeur vide"),
    (("access", *T, "--workers", "0"), "argument --workers"),
    (("site", *T, "--k", "0"), "argument --k : « 0 »"),
    (("site", *T, "--k", "-1"), "argument --k : « -1 »"),
    (("site", *T, "--scenarios", "2", "0"), "argument --scenarios : « 0 »"),
    (("site", *T, "--scenario-minutes", "1e6"), "argument --scenario-minutes"),
    (("site", *T, "--uptake-rate", "0"), "argument --uptake-rate"),
    (("site", *T, "--uptake-rate", "1.5"), "argument --uptake-rate"),
    (("site", *T, "--facilitators", "-2"), "argument --facilitators"),
    (("site", *T, "--groups-per-facilitator", "0"), "argument --groups-per-facilitator"),
    (("summary", *T, "--threshold-m", "-5"), "argument --threshold-m"),
    (("summary", *T, "--threshold-m", "inf"), "argument --threshold-m"),
    (("report", *T, "--out", "r.txt"), "son nom doit finir par .pdf"),
    (("report", *T, "--out", "/dev/null"), "n'est pas un fichier ordinaire"),
    (("report", *T, "--out", "/nonexistent-folder/r.pdf"), "n'existe pas"),
    (("export", *T, "--out", "x.csv"), "son nom doit finir par .gpkg"),
    (("export", *T, "--diagnosis-file", "d.txt"), "son nom doit finir par .json"),
    (("export", *T, "--csv-dir", "/dev/null"), "n'est pas un dossier"),
    (("partners", *T, "--site", "x", "--out", "/dev/null"), "n'est pas un fichier ordinaire"),
    (("compare", "--territory", "44", "--out", "/dev/zero"), "n'est pas un fichier ordinaire"),
    (("partners", *T, "--site", "x", "--out", "."), "est un dossier"),
    (("summary", "--communes-file", "/dev/zero"), "est un périphérique"),
    (("summary", *T, "--facilities", "/dev/zero"), "est un périphérique"),
    (("summary", *T, "--grid", "/dev/zero"), "est un périphérique"),
    (("summary", *T, "--insee", "/dev/zero"), "est un périphérique"),
    (("summary", *T, "--iris", "/dev/zero", "/dev/zero"), "est un périphérique"),
    (("access", *T, "--road-graph", "/dev/zero"), "est un périphérique"),
    (("rerun", "/dev/zero"), "fichier de diagnostic « /dev/zero » introuvable"),
    (("rerun", str(Path(__file__))), "illisible (pas du JSON UTF-8)"),
    (("site", *T, "--point", "abc"), "--point « abc » : écrivez longitude,latitude"),
    (("site", *T, "--point=200,100"), "longitude entre -180 et 180"),
    (("export", *T), "indiquez au moins une sortie"),
]


@pytest.mark.parametrize(("argv", "expected"), DIAGNOSIS_CASES,
                         ids=[" ".join(a[2:] if a[1] == "--territory" else a[1:])
                              for a, _ in DIAGNOSIS_CASES])
def test_diagnosis_cli_refuses_in_french_before_computing(capsys, argv, expected):
    code, err = _run(dg_main, capsys, *argv)
    assert code == 2
    _assert_french(err, expected)


def test_fifo_out_is_refused_without_blocking(tmp_path, capsys):
    fifo = tmp_path / "tube.pdf"
    os.mkfifo(fifo)
    code, err = _run(dg_main, capsys, "report", *T, "--out", str(fifo))
    assert code == 2
    _assert_french(err, "n'est pas un fichier ordinaire")


DATA_SOURCES_CASES = [
    (("fetch",), "arguments obligatoires manquants : --territory"),
    (("fetch", "--territory", ""), "argument --territory : valeur vide"),
    (("fetch", "--territory", "44", "--source", "bogus"), "choix invalide : 'bogus'"),
    (("bogus",), "argument COMMANDE : choix invalide"),
    (("scrape", "--type", "eaje"), "arguments obligatoires manquants : URL"),
    (("scrape", "http://example.fr/", "--type", "eaje", "--delay", "-1"),
     "argument --delay : « -1 »"),
    (("scrape", "http://example.fr/", "--type", "eaje", "--delay", "x"),
     "argument --delay : valeur invalide (nombre décimal) : 'x'"),
    (("scrape", "http://example.fr/", "--type", "eaje", "--out", "/dev/null"),
     "n'est pas un fichier ordinaire"),
    (("scrape", "http://example.fr/", "--type", "eaje", "--out", "/"), "est un dossier"),
    (("scrape", "http://example.fr/", "--type", "eaje", "--out", "/nonexistent/x.csv"),
     "n'existe pas"),
    (("fetch", "--territory", "44", "--bogus"), "arguments non reconnus : --bogus"),
]


@pytest.mark.parametrize(("argv", "expected"), DATA_SOURCES_CASES,
                         ids=[" ".join(a) for a, _ in DATA_SOURCES_CASES])
def test_data_sources_cli_refuses_in_french(capsys, argv, expected):
    code, err = _run(ds_main, capsys, *argv)
    assert code == 2
    _assert_french(err, expected)


def test_data_sources_help_is_french(capsys):
    with pytest.raises(SystemExit):
        ds_main(["--help"])
    out = capsys.readouterr().out
    with pytest.raises(SystemExit):
        ds_main(["fetch", "--help"])
    out_fetch = capsys.readouterr().out
    for text in (out, out_fetch):
        assert text.startswith("utilisation : python -m data_sources")
        assert "usage:" not in text and "show this help message" not in text
    assert "afficher cette aide et quitter" in out_fetch and "options" in out_fetch


def test_scrape_out_on_a_fifo_does_not_block_nor_fetch(tmp_path, capsys, monkeypatch):
    from data_sources import scrape

    def no_fetch(*args, **kwargs):  # the output is refused before any request
        raise AssertionError("the page must not be read when --out cannot be written")

    monkeypatch.setattr(scrape, "scrape_directory", no_fetch)
    fifo = tmp_path / "tube.csv"
    os.mkfifo(fifo)
    code, err = _run(ds_main, capsys, "scrape", "http://example.fr/", "--type", "eaje",
                     "--out", str(fifo))
    assert code == 2
    _assert_french(err, "tube")
    assert "Fichier écrit" not in capsys.readouterr().out


def test_an_unreachable_scheduler_is_said_in_french():
    pytest.importorskip("distributed")
    from diagnosis.distributed import dask_client

    with pytest.raises(SourceError) as err, \
            dask_client(scheduler_address="tcp://127.0.0.1:9", connect_timeout_s=1):
        pass
    assert "aucun ordonnanceur Dask ne répond à l'adresse tcp://127.0.0.1:9" in err.value.fr
    with pytest.raises(InputError) as bad, dask_client(scheduler_address="127.0.0.1:9"):
        pass
    assert "tcp://HOTE:PORT" in bad.value.fr


def test_distributed_access_on_a_closed_port_has_no_traceback():
    pytest.importorskip("distributed")
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run(
        [sys.executable, "-m", "diagnosis", "access", *T, "--distributed",
         "--scheduler", "tcp://127.0.0.1:9"],
        capture_output=True, text=True, env=env, cwd=REPO, timeout=280, check=False)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and "OSError" not in proc.stderr
    assert "aucun ordonnanceur Dask ne répond" in proc.stderr


@pytest.mark.parametrize("exc", [
    FileNotFoundError(2, "No such file or directory", "a.csv"),
    PermissionError(13, "Permission denied", "/root/x"),
    OSError(28, "No space left on device"),
    MemoryError(),
    ConnectionRefusedError(111, "Connection refused"),
])
def test_render_error_is_french_for_system_errors(exc):
    text = render_error(exc)
    _assert_french(text)
    assert "No such" not in text and "denied" not in text and "space left" not in text
