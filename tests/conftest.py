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


@pytest.fixture(scope="session", autouse=True)
def _isolated_store(tmp_path_factory):
    """Point the local store at an empty folder: no test reads the user's real store.

    Set in ``os.environ`` so subprocesses (CLI tests) inherit it; tests that need a
    store of their own override it with ``monkeypatch.setenv``.
    """
    from data_sources.store import STORE_ENV

    before = os.environ.get(STORE_ENV)
    os.environ[STORE_ENV] = str(tmp_path_factory.mktemp("store"))
    yield
    if before is None:
        os.environ.pop(STORE_ENV, None)
    else:
        os.environ[STORE_ENV] = before


@pytest.fixture
def http_sandbox(tmp_path):
    """The HTTP layer of a loader test: its own cache in ``tmp_path``, online (the tests
    mock every answer with ``responses`` or a local server), no backoff, one retry,
    short timeouts; reset afterwards. Loader tests use it with
    ``pytestmark = pytest.mark.usefixtures("http_sandbox")``.
    """
    from data_sources import _http

    _http.configure(cache_dir=tmp_path / "cache", offline=False, backoff_factor=0,
                    max_retries=1, rate_limits={}, timeout_s=(1.0, 2.0))
    yield
    _http.reset()
