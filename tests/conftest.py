"""Shared test helpers: access to ../shared/data (beside the repository)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def require_shared(relative: str) -> Path:
    """Path of a file under ../shared/data; skip when absent locally, fail on CI."""
    path = SHARED_DATA / relative
    if not path.exists():
        msg = f"{path} is absent: real-data test needs ../shared/data beside the repository"
        if os.environ.get("CI"):
            pytest.fail(msg + " (CI is set: the shared data must be present)")
        pytest.skip(msg)
    return path
