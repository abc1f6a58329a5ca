"""Maillage analysis: territorial diagnosis for a Maison des 1000 premiers jours.

Pure functions over GeoDataFrames; no network, no Streamlit. Data comes from
:mod:`data_sources`; the command line is ``python -m diagnosis``.
"""

from __future__ import annotations

import os

__version__ = "0.1.0"


def _arrow_allocator_for_capped_memory() -> None:
    """Use the system allocator in pyarrow when the process's address space is capped.

    pyarrow's default allocator (jemalloc) reserves large regions of address space per
    thread; under ``ulimit -v`` (``RLIMIT_AS``, as some servers and our memory-limit
    tests set) its worker threads cannot start and the first Parquet read waits for ever.
    The system allocator has no such reservation. Must run before pyarrow is imported;
    a choice the user made (``ARROW_DEFAULT_MEMORY_POOL``) is kept.
    """
    try:
        import resource
    except ImportError:  # not a POSIX system
        return
    soft, _hard = resource.getrlimit(resource.RLIMIT_AS)
    if soft != resource.RLIM_INFINITY:
        os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")


_arrow_allocator_for_capped_memory()
