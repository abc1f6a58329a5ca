"""Shared by the whole-command benches: run one command as a user would, timed from outside."""

from __future__ import annotations

import compileall
import functools
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


@functools.cache
def compile_once() -> None:
    """Byte-compile the repository's packages once, as a user's installed copy is.

    With ``PYTHONDONTWRITEBYTECODE`` set (as in some sandboxes and CI) every command
    would recompile the modules it imports, about 0.5 s that no user pays after the
    first run.
    """
    for package in ("diagnosis", "data_sources", "app_pages"):
        compileall.compile_dir(REPO / package, quiet=1)


def run_timed(args: list[str], env: dict[str, str]) -> tuple[float, bytes]:
    """Wall seconds and standard output (bytes) of ``args`` run from the repository root.

    A failing command stops the bench with its exit status and the end of its errors.
    """
    compile_once()
    start = time.perf_counter()
    proc = subprocess.run(args, capture_output=True, env=env, cwd=REPO, check=False)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr.decode("utf-8", "replace")[-3000:])
        raise SystemExit(f"command failed (exit {proc.returncode}): {' '.join(args)}")
    return seconds, proc.stdout
