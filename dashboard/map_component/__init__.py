"""The gradient map as a Streamlit components v2 element: a ``<canvas>`` drawn by ``map.js``.

HTML, CSS and JavaScript are read from this folder and registered inline: no build step, nothing
fetched from the internet, Streamlit serves them with the app. The component draws the payload of
:func:`dashboard.map_view.map_payload` (plus the current ``selection`` shape and ``picked`` sample
id, drawn back on the map, and on a zoomed raster map a sharper ``detail`` image of the view) and
reports the reviewer's box, lasso or clicked point as its ``selection`` state, read back by
:func:`dashboard.map_view.read_selection`, and a zoomed raster map's view as its ``view`` state.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from dashboard.inline_component import inline_component

COMPONENT_NAME = "ogad_gradient_map"
_gradient_map = inline_component(COMPONENT_NAME, Path(__file__).resolve().parent, "map")


def gradient_map(
    data: dict[str, Any], *, key: str, on_select: Callable[[], None]
) -> tuple[Any, Any]:
    """Draw the map; returns its (``selection``, ``view``) state: the reviewer's box, lasso or
    clicked point, and the zoomed view [x0, x1, y0, y1] of a raster map (None: none). The same
    values are in ``st.session_state[key]`` before the map is drawn."""
    result = _gradient_map(
        key=key,
        data=data,
        default={"selection": None, "view": None},
        on_selection_change=on_select,
        on_view_change=_ignore,
        width="stretch",
        height="content",
    )
    return result.get("selection"), result.get("view")


def _ignore() -> None:
    """A zoomed view needs no callback: the rerun it causes sends a sharper image."""
