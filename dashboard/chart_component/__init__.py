"""A plotly figure as a Streamlit components v2 element (``chart.js``), drawn with the partial
plotly.js bundle vendored in :mod:`ogad_core.reporting` (1.2 MB, instead of the 4.8 MB
bundle ``st.plotly_chart`` makes the browser load), served by the dashboard's own server.

The bundle's folder is registered with Streamlit's component registry as the asset folder of
:data:`BUNDLE_COMPONENT`, so the server answers ``/_stcore/bidi-components/ogad.plotly/
plotly-basic.min.js`` (the route Streamlit serves component files on); nothing is fetched from
the internet. A click on a point with ``customdata`` sends the trigger ``click``, read back from
the element's result (:func:`plotly_chart`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import streamlit as st

from dashboard.inline_component import inline_component
from ogad_core.reporting.report import PLOTLY_DIR, PLOTLY_JS

COMPONENT_NAME = "ogad_chart"
CLICK = "click"  # the trigger's name
PRELOAD_KEY = "ogad_plotly_preload"  # chart.css hides the element of this key
BUNDLE_COMPONENT = "ogad.plotly"  # the registered name whose asset folder is PLOTLY_DIR
_chart = inline_component(
    COMPONENT_NAME,
    Path(__file__).resolve().parent,
    "chart",
    isolate_styles=False,  # plotly.js puts its styles in the page's <head>: no shadow root
)


def serve_bundle() -> None:
    """Register PLOTLY_DIR as the asset folder of BUNDLE_COMPONENT with the running server's
    component registry (once per server; nothing to do without a server, as in AppTest)."""
    from streamlit.runtime import Runtime

    if not Runtime.exists():
        return
    registry = Runtime.instance().bidi_component_registry
    if registry.get_component_path(BUNDLE_COMPONENT) is not None:
        return
    from streamlit.components.v2.manifest_scanner import ComponentConfig, ComponentManifest

    project, name = BUNDLE_COMPONENT.split(".")
    manifest = ComponentManifest(
        name=project, version="0", components=[ComponentConfig(name=name, asset_dir=".")]
    )
    registry.register_from_manifest(manifest, PLOTLY_DIR)


def bundle_path(base_url_path: str = "") -> str:
    """The address path the page loads plotly.js from, under the server's base URL path."""
    base = base_url_path.strip("/")
    prefix = f"/{base}" if base else ""
    return f"{prefix}/_stcore/bidi-components/{BUNDLE_COMPONENT}/{PLOTLY_JS.name}"


def preload_plotly() -> None:
    """Start loading plotly.js early: a hidden chart element without a figure (its CSS hides
    it), drawn in the sidebar, which the browser renders before the page. The components' code
    is then among the first the browser requests, and plotly.js loads while the page's other
    elements load theirs, instead of after them (a browser opens six connections to the
    server and queues the rest)."""
    serve_bundle()
    _chart(
        key=PRELOAD_KEY,
        data={"src": bundle_path(str(st.get_option("server.baseUrlPath") or "")), "preload": True},
        width="stretch",
        height="content",
    )


def plotly_chart(figure_json: str, *, key: str, clickable: bool = False) -> Any:
    """Draw one figure (plotly JSON text); returns the customdata of the point just clicked
    (only when ``clickable``; None otherwise and on every later rerun)."""
    serve_bundle()
    result = _chart(
        key=key,
        data={
            "figure": figure_json,
            "src": bundle_path(str(st.get_option("server.baseUrlPath") or "")),
            "clickable": clickable,
        },
        on_click_change=_ignore,
        width="stretch",
        height="content",
    )
    return result.get(CLICK) if clickable else None


def _ignore() -> None:
    """A click needs no callback: the script reads it from the result in the rerun it causes."""
