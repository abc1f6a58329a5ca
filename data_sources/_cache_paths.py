"""Where Maillage's caches are, without importing the HTTP stack (requests, requests-cache).

A crow-fly run only needs to know whether a road graph is cached; importing the HTTP
layer to learn its folder cost 0.3-0.4 s of every such command.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from data_sources._http_config import _env_offline, default_cache_dir


def _loaded_config() -> Any:
    """The HTTP layer's settings when the layer is loaded in this process, else None."""
    for name in ("data_sources._http", "data_sources._http_session"):  # the public face first
        layer = sys.modules.get(name)
        if layer is not None and hasattr(layer, "get_config"):
            return layer.get_config()
    return None


def cache_root() -> Path:
    """The HTTP layer's cache folder.

    Its current setting once the layer is loaded, else the folder it would start with
    (``$MAILLAGE_CACHE_DIR`` or the user cache folder).
    """
    config = _loaded_config()
    if config is not None:  # configured in this process, perhaps elsewhere than the default
        return Path(config.cache_dir)
    return default_cache_dir()


def osm_cache_dir() -> Path:
    """Folder of Maillage's OpenStreetMap caches (road graphs, features, extracts)."""
    return cache_root() / "osm"


def road_graphs_dir() -> Path:
    """Folder of the cached road graphs (``<mode>-<key>.npz``)."""
    return osm_cache_dir() / "road_graphs"


def has_cached_road_graph(mode: str) -> bool:
    """Whether any road graph of ``mode`` is cached (no territory's outline needed)."""
    return any(road_graphs_dir().glob(f"{mode}-*.npz"))


def is_offline() -> bool:
    """Whether the HTTP layer is offline.

    Its current setting once the layer is loaded, else ``$MAILLAGE_OFFLINE`` (what it
    would start with).
    """
    config = _loaded_config()
    return bool(config.offline) if config is not None else _env_offline()
