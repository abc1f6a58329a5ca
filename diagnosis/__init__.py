"""Maillage analysis: territorial diagnosis for a Maison des 1000 premiers jours.

Pure functions over GeoDataFrames; no network, no Streamlit. Data comes from
:mod:`data_sources`; the command line is ``python -m diagnosis``.
"""

from __future__ import annotations

__version__ = "0.1.0"
