"""The command line ``python -m diagnosis``: commands, outputs, errors, French argparse.

The argparse messages translated are the English templates of CPython 3.11's
``Lib/argparse.py`` (the ``_()`` calls: "usage: ", "the following arguments are
required: %s", "invalid choice: %(value)r (choose from %(choices)s)", ...), read from the
installed interpreter.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from diagnosis.__main__ import main
from tests.conftest import REPO


def _json(capsys, *argv):
    assert main(list(argv)) == 0
    return json.loads(capsys.readouterr().out)


def test_summary_demo_epci(capsys):
    d = _json(capsys, "summary", "--territory", "200000438", "--format", "json")
    assert d["territory"]["code"] == "200000438"
    assert d["territory"]["name"].startswith("CC du Pays de Pontchâteau")
    assert d["n_communes"] == 9 and d["births_2024"] == 353
    assert d["facilities"]["mam"]["count"] == 1
    assert 0 <= d["births_within_threshold"]["mam"]["share"] <= 1
    assert {s["key"] for s in d["sources"]} >= {"insee_comparateur", "cog2026"}
    assert all(s["vintage"] for s in d["sources"])


def test_summary_departement_by_name(capsys):
    d = _json(capsys, "summary", "--territory", "loire-atlantique", "--format", "json")
    assert d["n_communes"] == 207 and d["births_2024"] == 14582
    assert d["facilities"]["maternite"]["count"] == 6


def test_summary_table_is_french(capsys):
    assert main(["summary", "--territory", "200000438"]) == 0
    out = capsys.readouterr().out
    assert "Naissances 2024 : 353" in out and "Sources" in out and "estimation" in out


@pytest.mark.parametrize("query, expected", [
    ("Pontchatau", "Pontchâteau (44)"),
    ("13055", "données ne sont pas"),
])
def test_summary_bad_territory_exits_2_with_message(capsys, query, expected):
    assert main(["summary", "--territory", query]) == 2
    assert expected in capsys.readouterr().err


def test_python_m_diagnosis_runs():
    out = subprocess.run([sys.executable, "-m", "diagnosis", "summary", "--territory", "44129",
                          "--format", "json"], cwd=REPO, capture_output=True, text=True,
                         check=True).stdout
    assert json.loads(out)["n_communes"] == 1


#: ``run()`` in a child process, after an exit handler and (``thread``) a thread that is
#: still working when the command ends; the handler and the thread each write a line.
_RUN_PROBE = """
import atexit, sys, threading, time
atexit.register(lambda: print("handler ran", file=sys.stderr, flush=True))
if sys.argv[1] == "thread":
    def late():
        time.sleep(0.5)
        print("thread finished", file=sys.stderr, flush=True)
    threading.Thread(target=late).start()
sys.argv = ["maillage", *sys.argv[2:]]
from diagnosis.__main__ import run
run()
"""


@pytest.mark.parametrize("thread", ["none", "thread"])
def test_run_ends_after_the_answer_with_its_status_and_exit_handlers(thread, capsys):
    """The command's whole output (a pipe, large enough to be buffered) and its status;
    the exit handlers run; a thread still working is waited for (the usual exit)."""
    assert main(["summary", "--territory", "44", "--format", "json"]) == 0
    expected = capsys.readouterr().out
    env = {**__import__("os").environ, "MAILLAGE_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-c", _RUN_PROBE, thread, "summary", "--territory",
                           "44", "--format", "json"], cwd=REPO, capture_output=True,
                          text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout == expected and len(expected) > 20_000
    assert "handler ran" in done.stderr
    assert ("thread finished" in done.stderr) == (thread == "thread")
    bad = subprocess.run([sys.executable, "-c", _RUN_PROBE, thread, "summary", "--territory",
                          "99999"], cwd=REPO, capture_output=True, text=True, env=env,
                         timeout=120)
    assert bad.returncode == 2 and "99999" in bad.stderr and "handler ran" in bad.stderr


def test_a_profiled_command_still_writes_its_profile(tmp_path):
    """Under a profiler (or a tracer: coverage) the command exits as usual, so the
    profiler writes its report."""
    out = tmp_path / "summary.prof"
    done = subprocess.run([sys.executable, "-m", "cProfile", "-o", str(out), "-m", "diagnosis",
                           "summary", "--territory", "44129"], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "Pontchâteau" in done.stdout and out.stat().st_size > 10_000


# --- access, site, partners ---------------------------------------------------------------


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """No network and an empty cache: drive/walk modes must fall back to crow-fly."""
    from data_sources import _http

    monkeypatch.setenv("MAILLAGE_OFFLINE", "1")
    monkeypatch.setenv("MAILLAGE_CACHE_DIR", str(tmp_path / "cache"))
    _http.reset()
    yield
    _http.reset()


def test_access_demo_epci_json(capsys, offline):
    d = _json(capsys, "access", "--territory", "200000438", "--max-minutes", "15",
              "--format", "json")
    assert d["territory"]["code"] == "200000438"
    assert d["params"]["engine"] == "crow_fly" and d["params"]["max_minutes"] == 15
    assert any("vol d'oiseau" in n for n in d["notes"])  # the estimate is labelled
    assert any("indisponible" in n for n in d["notes"])  # and says why no road graph
    assert len(d["communes"]) == 9 and [c["rank"] for c in d["communes"]][0] == 1
    first = d["communes"][0]
    total = sum(v for k, v in first.items() if k.startswith("contrib_"))
    assert total == pytest.approx(first["score"])
    mam = next(t for t in d["types"] if t["type"] == "mam")
    assert 0 <= mam["share_births_within"] <= 1 and mam["engine"] == "crow_fly"


def test_access_weights_change_the_ranking_and_bad_weights_exit_2(capsys, offline):
    d = _json(capsys, "access", "--territory", "200000438", "--mode", "crow", "--format",
              "json", "--weights", "births=1,poverty=0,single_parent=0,access=0")
    births = [c["births"] for c in d["communes"]]
    assert births == sorted(births, reverse=True)  # births alone: biggest commune first
    assert main(["access", "--territory", "200000438", "--weights", "births:1"]) == 2
    assert "--weights" in capsys.readouterr().err


def test_access_table_is_french(capsys, offline):
    assert main(["access", "--territory", "200000438", "--mode", "crow"]) == 0
    out = capsys.readouterr().out
    assert "Communes prioritaires" in out and "vol d'oiseau" in out


def test_access_on_a_road_graph_file_flags_points_far_from_it(capsys, offline):
    """The tiny hand-written graph lies far from Loire-Atlantique: every commune is flagged."""
    graph = REPO / "tests" / "data" / "osm" / "tiny_roads.osm"
    d = _json(capsys, "access", "--territory", "200000438", "--road-graph", str(graph),
              "--mode", "drive", "--format", "json")
    assert d["params"]["engine"] == "road_network"
    assert all(t["n_communes_beyond"] == 9 for t in d["types"])
    assert all(c["minutes_nearest"]["mam"] == "inf" for c in d["communes"])


def test_site_demo_epci_k1(capsys, offline):
    d = _json(capsys, "site", "--territory", "200000438", "--k", "1", "--format", "json")
    rec = [s for s in d["sites"] if s["status"] == "recommandé"]
    assert len(rec) == 1 and rec[0]["explanation"].startswith("Couvre ")
    assert d["summary"]["status"] == "optimal"
    assert d["cohorts"][0]["site_id"] == rec[0]["facility_id"]
    assert d["cohorts"][0]["groups_per_year"] > 0
    assert d["params"]["uptake_rate"] == 0.15 and d["params"]["engine"] == "crow_fly"


def test_site_scenarios_points_and_bad_input(capsys, offline):
    d = _json(capsys, "site", "--territory", "200000438", "--mode", "crow", "--k", "1",
              "--scenarios", "2", "--point=-2.0893,47.4381", "--format", "json")
    assert [s["scenario"] for s in d["scenarios"]] == ["1 site, 20 min", "2 sites, 20 min"]
    d = _json(capsys, "site", "--territory", "200000438", "--mode", "crow",
              "--scenario-minutes", "10", "--format", "json")
    assert [s["scenario"] for s in d["scenarios"]] == ["1 site, 20 min", "1 site, 10 min"]
    covered = [s["Naissances couvertes après"] for s in d["scenarios"]]
    assert covered[0] >= covered[1]  # a shorter reach never covers more
    for argv, msg in [
        (["--k", "999"], "larger than"),
        (["--point", "2.35,48.85"], "inside"),
        (["--point", "abc"], "longitude,latitude"),
        (["--host-types", "maternite"], "no candidate"),
    ]:
        assert main(["site", "--territory", "200000438", "--mode", "crow", *argv]) == 2
        assert msg in capsys.readouterr().err
    with pytest.raises(SystemExit) as out_of_range:  # refused by the parser, in French
        main(["site", "--territory", "200000438", "--uptake-rate", "1.5"])
    assert out_of_range.value.code == 2
    assert "argument --uptake-rate : « 1.5 »" in capsys.readouterr().err


def test_partners_json_and_csv(capsys, offline, tmp_path):
    d = _json(capsys, "partners", "--territory", "200000438", "--site",
              "annuaire_mairies:44129", "--format", "json", "--max-minutes", "15")
    assert d["site"]["name"] == "Mairie de Pontchâteau"
    assert d["partners"] and all(p["minutes"] <= 15 for p in d["partners"])
    assert "annuaire_mairies:44129" not in {p["facility_id"] for p in d["partners"]}
    assert any("CAF" in i["organisation"] for i in d["institutions"])
    out = tmp_path / "partenaires.csv"
    assert main(["partners", "--territory", "200000438", "--site", "Mairie de Pontchateau",
                 "--format", "csv", "--out", str(out)]) == 0
    text = out.read_bytes().decode("utf-8-sig")
    assert text.splitlines()[0].startswith("Groupe;Type;Nom;Adresse")
    assert "False" not in text and "demo_directory" not in text and "annuaire_mairies" not in text
    assert "institution" in text and "Mairie de Crossac" in text
    assert main(["partners", "--territory", "200000438", "--site", "nope"]) == 2
    assert "aucune structure chargée" in capsys.readouterr().err


def test_cli_runs_from_any_folder_and_as_maillage(tmp_path):
    """The README's install (``pip install -e .``) makes the CLI work outside the repo."""
    import os
    import shutil

    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, "-m", "diagnosis", "summary", "--territory",
                           "44129", "--format", "json"], capture_output=True, text=True,
                          cwd=tmp_path, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert '"code": "44129"' in proc.stdout
    exe = shutil.which("maillage")
    if exe is None:
        assert not os.environ.get("CI"), "the maillage command is not installed (pip install -e .)"
        pytest.skip("maillage is not installed here: run `pip install -e .`")
    proc = subprocess.run([exe, "summary", "--territory", "44129"], capture_output=True,
                          text=True, cwd=tmp_path, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "Pontchâteau" in proc.stdout


def test_cli_prints_import_warnings_and_rejections(tmp_path, capsys):
    """Issue 11.7: the CLI says briefly what an imported file lost, and why."""
    f = tmp_path / "structures.csv"
    f.write_text("nom;type;code_insee\nCrèche A;crèche;44129\nSans type;;44129\n",
                 encoding="utf-8")
    assert main(["summary", "--territory", "44129", "--facilities", str(f)]) == 0
    err = capsys.readouterr().err
    assert "structures.csv : 2 lignes lues = 1 acceptée" in err
    assert "type" in err.split("structures.csv", 1)[1]


# --- argparse in French (help, usage, errors) ------------------------------------------
# The English templates translated are those of CPython's Lib/argparse.py (3.11), the
# version installed here; an unknown message is kept as is (tested below).


def _argparse_exit(capsys, *argv):
    with pytest.raises(SystemExit) as exc:
        main(list(argv))
    out = capsys.readouterr()
    return exc.value.code, out.out, out.err


def test_help_is_french(capsys):
    code, out, _ = _argparse_exit(capsys, "--help")
    assert code == 0
    assert out.startswith("utilisation : python -m diagnosis")
    assert "afficher cette aide et quitter" in out and "commandes" in out
    assert "usage:" not in out and "show this help message" not in out
    code, out, _ = _argparse_exit(capsys, "site", "-h")
    assert code == 0 and "utilisation : python -m diagnosis site" in out
    assert "options:" in out and "positional arguments" not in out
    assert "nombre de nouveaux sites" in out


@pytest.mark.parametrize(("argv", "expected"), [
    (("partners", "--territory", "44"), "python -m diagnosis partners : erreur : arguments "
                                        "obligatoires manquants : --site"),
    ((), "python -m diagnosis : erreur : arguments obligatoires manquants : COMMANDE"),
    (("summary", "--territory", "44", "--format", "xml"),
     "argument --format : choix invalide : 'xml' (choisir parmi 'json', 'table')"),
    (("nope",), "argument COMMANDE : choix invalide : 'nope' (choisir parmi 'summary'"),
    (("site", "--territory", "44", "--k", "deux"),
     "argument --k : valeur invalide (nombre entier) : 'deux'"),
    (("access", "--territory", "44", "--max-minutes", "x"),
     "argument --max-minutes : valeur invalide (nombre décimal) : 'x'"),
    (("summary", "--territory"), "argument --territory : une valeur attendue"),
    (("summary", "--territory", "44", "--bogus"), "arguments non reconnus : --bogus"),
])
def test_argparse_errors_are_french(capsys, argv, expected):
    code, _, err = _argparse_exit(capsys, *argv)
    assert code == 2
    assert err.startswith("utilisation : python -m diagnosis")
    assert expected in err
    for english in ("usage:", "error:", "required", "invalid choice", "expected one",
                    "unrecognized"):
        assert english not in err


def test_unknown_argparse_message_is_kept():
    from diagnosis.__main__ import french_argparse_message

    assert french_argparse_message("something new") == "something new"
    assert french_argparse_message("argument -x: something new") == "argument -x : something new"


def test_a_missing_territory_is_said_in_french(capsys):
    assert main(["summary"]) == 2
    err = capsys.readouterr().err
    assert "indiquez le territoire : --territory CODE_OU_NOM" in err


# --- the command line's tables: rich markup, emoji codes, terminal sequences ----------
#: Markup rich would read ([/bold] alone stops the print), an emoji code, an ESC.
TERMINAL_HOSTILE = ("[/bold]", "[red]rouge[/red]", ":smile:", "\x1b[2J")


@pytest.fixture
def hostile_facility_file(tmp_path):
    """Structures of Pontchâteau whose names and addresses hold markup; so does the name."""
    bad = " ".join(TERMINAL_HOSTILE)
    path = tmp_path / "structures [red]x :smile:.csv"  # no « / » in a file name
    path.write_text(
        "nom;type;adresse;code_insee;latitude;longitude;places\n"
        f"Crèche {bad};multi-accueil;1 rue {bad};44129;47.4376;-2.0876;24\n"
        f"MAM {bad};mam;2 rue {bad};44129;47.4390;-2.0900;8\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("argv", [
    ["summary"],
    ["access", "--mode", "crow"],
    ["site", "--mode", "crow", "--k", "1", "--host-types", "eaje"],
    ["partners", "--site", "Mairie de Pontchateau", "--max-minutes", "15"],
], ids=lambda a: a[0])
def test_command_line_tables_print_data_as_text(argv, hostile_facility_file, capsys, offline):
    """Names from a user's file reach the tables, headings and notices as plain text (site
    and partners print the structures' names; every command names the file)."""
    code = main([argv[0], "--territory", "200000438", "--facilities",
                 str(hostile_facility_file), *argv[1:]])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "\x1b" not in out + err and "😄" not in out + err
    flat = "".join(out.split())
    if argv[0] in ("site", "partners"):
        assert "Crèche" in out
        for s in ("[/bold]", "[red]rouge[/red]", ":smile:", "?[2J"):
            assert s in flat, s
    assert "structures[red]x:smile:.csv" in "".join((out + err).split())
    if argv[0] == "summary":  # its « Import … » line
        assert "structures[red]x:smile:.csv" in flat
