"""Folium maps of a diagnosis (no Streamlit here: the app only displays them).

:func:`build_overview_map` draws an :class:`~diagnosis.overview.Overview`: births per
commune (choropleth), the territory's outline, one layer per facility type with a fixed
colour (:data:`FACILITY_STYLES`), the nearest facilities outside the territory (paler),
the town halls (hidden by default), a French legend and the data sources' attribution.

Markers are canvas circle markers inside one GeoJSON layer per type, so a whole
département stays fast to build and to pan. Every data value shown in a popup or a
tooltip is HTML-escaped.

Offline: folium points the page at CDNs for Leaflet. :func:`set_asset_base_url` (called
once by the app) makes every ``build_*_map`` (decorated with ``@_map_builder``) load the
copies vendored in ``static/vendor/`` instead (:func:`use_local_assets`), so the communes
and markers draw with no internet; only the background tiles then stay blank.

Layout: one module a builder (``overview``, ``priority``, ``access``, ``siting``,
``partners``, ``draw``, ``plan``) over the shared machinery every builder uses: ``_common`` (styles,
escaping so that no text becomes template source, classes, legends, attribution, offline
assets), ``_layers`` (facility and commune layers) and ``_analysis`` (parts of the
analysis maps). The helpers re-exported under a private name serve the builders outside
this package (:mod:`diagnosis.federation`).

See Also
--------
guides/indicateurs.md : definition and source of every indicator.
"""

from __future__ import annotations

from diagnosis.maps._analysis import (
    ACCESS_COLORS,
    CATCHMENT_COLOR,
    NEUTRAL_COLOR,
    PRIORITY_COLORS,
    RECOMMENDED_COLOR,
    USER_SITE_COLOR,
    _analysis_legend,
    _analysis_map,
    _fill_layer,
    _finish,
)
from diagnosis.maps._common import (
    CHOROPLETH_COLORS,
    FACILITY_STYLES,
    LOCAL_ASSETS,
    MISSING_COLOR,
    _class_of,
    _esc,
    _map_builder,
    _palette,
    class_breaks,
    default_attribution,
    find_external_assets,
    neutralise_template_syntax,
    set_asset_base_url,
    split_layers,
    use_local_assets,
)
from diagnosis.maps.access import (
    access_classes,
    build_access_map,
)
from diagnosis.maps.draw import (
    DRAW_TEXTS_FR,
    build_draw_map,
)
from diagnosis.maps.modes import (
    build_mode_minutes_map,
)
from diagnosis.maps.overview import (
    build_overview_map,
)
from diagnosis.maps.partners import (
    build_partner_network_map,
)
from diagnosis.maps.plan import (
    build_plan_map,
)
from diagnosis.maps.priority import (
    build_priority_map,
)
from diagnosis.maps.siting import (
    build_siting_map,
)

__all__ = [
    "split_layers",
    "build_mode_minutes_map",
    "ACCESS_COLORS",
    "CATCHMENT_COLOR",
    "CHOROPLETH_COLORS",
    "DRAW_TEXTS_FR",
    "FACILITY_STYLES",
    "LOCAL_ASSETS",
    "MISSING_COLOR",
    "NEUTRAL_COLOR",
    "PRIORITY_COLORS",
    "RECOMMENDED_COLOR",
    "USER_SITE_COLOR",
    "_analysis_legend",
    "_analysis_map",
    "_class_of",
    "_esc",
    "_fill_layer",
    "_finish",
    "_map_builder",
    "_palette",
    "access_classes",
    "build_access_map",
    "build_draw_map",
    "build_overview_map",
    "build_partner_network_map",
    "build_plan_map",
    "build_priority_map",
    "build_siting_map",
    "class_breaks",
    "default_attribution",
    "find_external_assets",
    "neutralise_template_syntax",
    "set_asset_base_url",
    "use_local_assets",
]
