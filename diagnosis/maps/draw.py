"""The drawing map: the user draws the study area (Leaflet.draw, in French)."""

from __future__ import annotations

import json
from typing import Any

import folium
import geopandas as gpd
from branca.element import MacroElement
from jinja2 import Template

from diagnosis.maps._analysis import _analysis_map, _fill_layer, _fit
from diagnosis.maps._common import _esc, _js_string, _map_builder
from diagnosis.settings import WGS84

#: French texts of the drawing tool (Leaflet.draw's ``L.drawLocal``, the parts shown).
DRAW_TEXTS_FR: dict[str, Any] = {
    "draw": {
        "toolbar": {
            "actions": {"title": "Annuler le dessin", "text": "Annuler"},
            "finish": {"title": "Terminer le dessin", "text": "Terminer"},
            "undo": {"title": "Effacer le dernier point", "text": "Effacer le dernier point"},
            "buttons": {"polygon": "Dessiner un polygone",
                        "rectangle": "Dessiner un rectangle"},
        },
        "handlers": {
            "polygon": {"tooltip": {"start": "Cliquez pour commencer la zone.",
                                    "cont": "Cliquez pour continuer la zone.",
                                    "end": "Cliquez sur le premier point pour fermer la "
                                           "zone."}},
            "polyline": {"error": "<strong>Erreur :</strong> les bords ne doivent pas se "
                                  "croiser !"},
            "rectangle": {"tooltip": {"start": "Cliquez et faites glisser pour dessiner."}},
            "simpleshape": {"tooltip": {"end": "Relâchez pour terminer."}},
        },
    },
    "edit": {
        "toolbar": {
            "actions": {"save": {"title": "Enregistrer", "text": "Enregistrer"},
                        "cancel": {"title": "Annuler", "text": "Annuler"},
                        "clearAll": {"title": "Tout effacer", "text": "Tout effacer"}},
            "buttons": {"edit": "Modifier", "editDisabled": "Rien à modifier",
                        "remove": "Effacer la zone", "removeDisabled": "Aucune zone à effacer"},
        },
        "handlers": {"remove": {"tooltip": {"text": "Cliquez sur la zone à effacer."}}},
    },
}


class _DrawLocal(MacroElement):
    """Put :data:`DRAW_TEXTS_FR` into Leaflet.draw's ``L.drawLocal`` (deep merge)."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        (function () {
            function merge(a, b) { for (var k in b) {
                if (typeof b[k] === "object" && a[k]) { merge(a[k], b[k]); } else { a[k] = b[k]; }
            } }
            if (window.L && L.drawLocal) { merge(L.drawLocal, {{ this.texts_js }}); }
        })();
        {% endmacro %}
        """
    )

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self._name = "MaillageDrawLocal"
        self.texts_js = _js_value(DRAW_TEXTS_FR)


def _js_value(value: Any) -> str:
    r"""A JSON value as JavaScript, safe inside a ``<script>`` and as Jinja source.

    The JSON travels as a string literal given to ``JSON.parse``: braces can then be
    escaped (``\u007b`` is only valid inside a string), as :func:`_js_string` does.

    Examples
    --------
    >>> print(_js_value({"a": "b"}))
    JSON.parse("\u007b\"a\": \"b\"\u007d")
    """
    return f"JSON.parse({_js_string(json.dumps(value, ensure_ascii=False))})"


@_map_builder
def build_draw_map(communes: gpd.GeoDataFrame, *, tiles: str | None = "OpenStreetMap"
                   ) -> folium.Map:
    """Map to draw a custom territory on: the communes' outlines and a drawing tool.

    The polygon or rectangle drawn is read back by the app (``st_folium``'s
    ``last_active_drawing``); :func:`diagnosis.territory.territory_from_polygon` turns it
    into the communes it covers. Leaflet.draw is vendored like Leaflet (offline).
    """
    from folium.plugins import Draw

    com = communes.to_crs(WGS84)
    m, bounds = _analysis_map(com, tiles)
    tips = [f"<b>{_esc(r.get('name'))}</b> ({_esc(r.get('code_insee'))})"
            for r in com.to_dict("records")]
    _fill_layer(com, ["#dadaeb"] * len(com), tips, "Communes").add_to(m)
    _DrawLocal().add_to(m)  # before the tool: its buttons read L.drawLocal when built
    Draw(export=False, position="topleft",  # type: ignore[no-untyped-call]
         draw_options={"polyline": False, "circle": False, "circlemarker": False,
                       "marker": False, "polygon": {"allowIntersection": False},
                       "rectangle": True},
         edit_options={"edit": False, "remove": True}).add_to(m)
    _fit(m, bounds)
    return m
