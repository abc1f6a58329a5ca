"""French everywhere: every error path of the command line speaks French.

Each case runs ``python -m diagnosis`` (in-process, :func:`diagnosis.__main__.main`) with
a wrong input a user could give, and fails on any word from the list of English
leftovers issue 24 found (messages, internal keys), or on a traceback.
"""

from __future__ import annotations

import re

import pytest

from diagnosis.__main__ import main

#: English words and internal keys once shown to users (issue 24), matched as words.
ENGLISH_LEFTOVERS = (
    "must be", "cannot", "does not", "is not a", "no usable", "only one column",
    "matches no", "has no", "the folder", "closest", "expected", "got", "give", "use one of",
    "not found", "Traceback", "Error:", "None", "Press Enter", "Download as CSV",
    "Fullscreen", "Show/hide columns", "sage_femme", "maison_1000_jours", "demo_directory",
    "custom · code",
)
_PATTERN = re.compile("|".join(rf"(?<![\w-]){re.escape(w)}(?![\w-])" for w in
                               ENGLISH_LEFTOVERS))


def english_in(text: str) -> list[str]:
    """Leftover English words in ``text``.

    >>> english_in("erreur : --new 0 must be >= 1"), english_in("erreur : donnez 1")
    (['must be'], [])
    """
    return [m.group(0) for m in _PATTERN.finditer(text)]


@pytest.fixture
def files(tmp_path):
    one = tmp_path / "une_colonne.csv"
    one.write_text("nom\nCrèche A\n", encoding="utf-8")
    noloc = tmp_path / "sans_position.csv"
    noloc.write_text("nom;type\nCrèche A;crèche\n", encoding="utf-8")
    return {"one": str(one), "noloc": str(noloc), "missing": str(tmp_path / "absent.csv"),
            "badout": str(tmp_path / "pas_de_dossier" / "r.pdf"),
            "txt": str(tmp_path / "plan.txt")}


CASES = {
    "unknown code": ["summary", "--territory", "99999"],
    "unknown name": ["summary", "--territory", "Zzyzx-sur-Rien"],
    "unknown site": ["partners", "--territory", "200000438", "--site", "nope", "--mode",
                     "crow"],
    "zero minutes": ["access", "--territory", "200000438", "--max-minutes", "0"],
    "report folder": ["report", "--territory", "200000438", "--out", "{badout}"],
    "one column": ["summary", "--territory", "200000438", "--facilities", "{one}"],
    "no location": ["summary", "--territory", "200000438", "--facilities", "{noloc}"],
    "missing file": ["summary", "--territory", "200000438", "--facilities", "{missing}"],
    "plan new 0": ["plan", "--territory", "44", "--new", "0"],
    "plan out": ["plan", "--territory", "44", "--new", "1", "--out", "{txt}"],
    "export no output": ["export", "--territory", "200000438"],
    "no data": ["summary", "--territory", "13055"],
    "bad weights": ["access", "--territory", "200000438", "--weights", "births"],
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_cli_error_paths_speak_french(case, files, capsys):
    argv = [a.format(**files) for a in CASES[case]]
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse refusals
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.strip(), "an error must say something"
    assert english_in(err) == [], err


def test_cli_tables_name_territory_kinds_in_french(capsys):
    assert main(["summary", "--territory", "200000438"]) == 0
    out = capsys.readouterr().out
    assert "(intercommunalité 200000438)" in out
    assert not re.search(r"\b(epci|departement|custom)\b", out)
