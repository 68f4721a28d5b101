"""A table as a Streamlit components v2 element (``table.js``): plain HTML, sortable by a click
on a column's header, drawn by the page itself.

The Summary's tables were ``st.dataframe`` grids, whose code the browser loads lazily on the
first grid of a visit: about 1.5 MB in some 25 requests, queued ahead of the charts (HTTP/1.1
gives a page six connections to the server). This element shares its loader with the charts'
(the components v2 code, loaded anyway), so the tables cost the visit nothing more to load. The
cells are formatted here (:func:`table_data`); the JavaScript sorts on the raw values.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dashboard.inline_component import inline_component

COMPONENT_NAME = "ogad_table"
PERCENT, BAR = "percent", "bar"  # formats besides printf ones ("%.4f"): 12.3%, and a bar
_table = inline_component(COMPONENT_NAME, Path(__file__).resolve().parent, "table")


def _value(v: Any) -> Any:
    """A cell as JSON: a number (None for NaN), else its text."""
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return None if math.isnan(v) else float(v)
    return None if v is None or v is pd.NA else str(v)


def _text(v: Any, fmt: str | None) -> str:
    """The cell as shown: '–' for a missing number, printf / percent formats, thousands
    separators for integers, four significant digits for other floats."""
    if v is None:
        return "–"
    if isinstance(v, str):
        return v
    if fmt in (PERCENT, BAR):
        return f"{v:.1%}"
    if fmt:
        return fmt % v
    return f"{v:,}" if isinstance(v, int) else f"{v:,.4g}"


def table_data(frame: pd.DataFrame, formats: dict[str, str] | None = None) -> dict[str, Any]:
    """The element's data of ``frame`` (its index left out): {"columns": [str], "bars":
    [column names drawn as bars], "values": rows of raw cells (numbers, text, None),
    "shown": the same rows as shown}."""
    formats = formats or {}
    columns = [str(c) for c in frame.columns]
    values = [[_value(v) for v in row] for row in frame.itertuples(index=False, name=None)]
    fmts = [formats.get(c) for c in columns]
    shown = [[_text(v, f) for v, f in zip(row, fmts, strict=True)] for row in values]
    bars = [c for c in columns if formats.get(c) == BAR]
    return {"columns": columns, "bars": bars, "values": values, "shown": shown}


def frame_table(
    frame: pd.DataFrame,
    *,
    key: str,
    formats: dict[str, str] | None = None,
    max_height: int = 420,
) -> None:
    """Draw ``frame`` (N rows x C columns; its index left out: reset it to show it) as a
    sortable HTML table, scrolling past ``max_height`` pixels. ``formats``: {column: printf
    format, PERCENT or BAR (a share drawn as a bar)}."""
    _table(
        key=key,
        data={**table_data(frame, formats), "maxHeight": int(max_height)},
        width="stretch",
        height="content",
    )
