"""What a composition root loads for a territory, as the pipeline reads it.

:class:`DiagnosisInputs` is the contract between the loaders (the app's and the command
line's :class:`data_sources.workspace.Workspace`) and :mod:`diagnosis.pipeline`, which
never imports :mod:`data_sources`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

import geopandas as gpd

from diagnosis.schema import Territory


class ImportSummary(Protocol):
    """An import report of a user's file, as the pipeline and the report quote it."""

    def summary_fr(self) -> str:
        """One French sentence: rows read, accepted, flagged, rejected."""


class DiagnosisInputs(Protocol):
    """What a composition root loads for a territory (``Workspace`` has these fields)."""

    @property
    def territory(self) -> Territory:
        """The territory diagnosed."""

    @property
    def communes(self) -> gpd.GeoDataFrame:
        """The territory's communes and their neighbours, with needs and town halls."""

    @property
    def facilities(self) -> gpd.GeoDataFrame:
        """Every loaded facility (across the border too)."""

    @property
    def sources(self) -> Sequence[Mapping[str, str]]:
        """Source records (key, title, vintage, licence, attribution…)."""

    @property
    def notices(self) -> Sequence[str]:
        """French notices a user must see (demo data, partial coverage…)."""

    @property
    def imports(self) -> Sequence[ImportSummary]:
        """Import reports of the user's files (with ``summary_fr()``)."""

    @property
    def origin(self) -> str:
        """``"demo"`` or ``"store"``."""

    @property
    def dep_name(self) -> str | None:
        """Name of the territory's (first) département, for the institutions."""
