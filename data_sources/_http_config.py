"""Settings of the HTTP layer (:mod:`data_sources._http`): defaults, limits, the config."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from data_sources._outbound import (
    OutboundPolicy,
)

#: User agent sent with every request.
USER_AGENT = "Maillage/0.1 (+https://github.com/maillage/maillage) diagnostic territorial"
#: HTTP statuses retried with backoff.
RETRY_STATUSES = (429, 500, 502, 503, 504)
#: Requests per second allowed for each host (network calls only).
DEFAULT_RATE_LIMITS: dict[str, float] = {"api.insee.fr": 30 / 60}
#: Default (connect, read) timeout in seconds.
DEFAULT_TIMEOUT_S: tuple[float, float] = (10.0, 120.0)
#: How long a cached answer stays fresh (public statistics change yearly at most).
DEFAULT_EXPIRE_AFTER_S = 30 * 24 * 3600
#: Shorter freshness for catalogue listings that point to the newest files.
_URLS_EXPIRE_AFTER: dict[str | re.Pattern[str], int | float | str | None] = {
    "www.data.gouv.fr/api/1/datasets": 24 * 3600,
}

#: Longest ``Retry-After`` obeyed, in seconds (a server asking for an hour gets a minute).
DEFAULT_MAX_RETRY_AFTER_S = 60.0
#: Largest body read in memory (JSON, CSV answers).
DEFAULT_MAX_BODY_BYTES = 256 * 1024 * 1024
#: Largest file downloaded to the cache folder (FINESS, BPE…).
DEFAULT_MAX_DOWNLOAD_BYTES = 2 * 1024 * 1024 * 1024
#: Wall-clock limit to read one body, in seconds (a trickling server is cut).
DEFAULT_BODY_DEADLINE_S = 300.0
#: Longest wait for the SQLite lock of the HTTP cache, in seconds (then: no caching).
DEFAULT_SQLITE_TIMEOUT_S = 10.0
#: Bytes written (then deleted) in the cache folder to check that the disk takes writes.
DISK_PROBE_BYTES = 256 * 1024

Params = Mapping[str, Any] | list[tuple[str, Any]] | None


@dataclass(frozen=True)
class HttpConfig:
    """Settings of the HTTP layer (see :func:`configure`)."""

    cache_dir: Path
    offline: bool = False
    backoff_factor: float = 1.0
    max_retries: int = 4
    timeout_s: tuple[float, float] = DEFAULT_TIMEOUT_S
    rate_limits: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_RATE_LIMITS))
    expire_after_s: int = DEFAULT_EXPIRE_AFTER_S
    max_retry_after_s: float = DEFAULT_MAX_RETRY_AFTER_S
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_download_bytes: int = DEFAULT_MAX_DOWNLOAD_BYTES
    policy: OutboundPolicy = field(default_factory=OutboundPolicy)
    body_deadline_s: float = DEFAULT_BODY_DEADLINE_S
    sqlite_timeout_s: float = DEFAULT_SQLITE_TIMEOUT_S


def default_cache_dir() -> Path:
    """Return the cache folder: ``$MAILLAGE_CACHE_DIR``, else the user cache dir.

    Uses ``platformdirs`` when installed, else ``~/.cache/maillage/http``.
    """
    env = os.environ.get("MAILLAGE_CACHE_DIR", "").strip()
    if env:
        return Path(env).expanduser()
    try:
        import platformdirs
    except ImportError:  # pragma: no cover - platformdirs ships with pip and requests-cache
        return Path.home() / ".cache" / "maillage" / "http"
    return Path(platformdirs.user_cache_dir("maillage")) / "http"


def _env_offline() -> bool:
    return os.environ.get("MAILLAGE_OFFLINE", "").strip().lower() in {"1", "true", "yes", "oui"}
