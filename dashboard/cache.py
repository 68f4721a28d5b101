"""Every ``st.cache_data`` / ``st.cache_resource`` of the dashboard lives here.

Cache keys include a stamp of the run's files (mtime, size) and the decision store's version, so
a recomputed run or a decision made in another browser session shows up on the next rerun.
Resources (shared, not copied) are treated as read-only by the pages.
"""

from __future__ import annotations

import base64
import io

import numpy as np
import pandas as pd
import streamlit as st

from dashboard.evaluation_view import EvaluationView, evaluation_stamp, load_evaluation_view
from dashboard.run_view import (
    RunView,
    load_card_image,
    load_run_view,
    queue_order,
    run_files_stamp,
    with_decisions,
)
from ogad_core.review.export import export_csv_text
from ogad_core.review.store import ReviewStore
from ogad_core.run.rundir import RunDir


@st.cache_resource(max_entries=4, show_spinner="Reading the run…")
def _run_view(run_path: str, stamp: tuple) -> RunView:
    view = load_run_view(run_path)
    queue_order(view, view.default_detector)  # sorted once here, not on the first click
    return view


def run_view(run_path: str) -> RunView:
    """The run's RunView (re-read when its files change); RunDirError when unusable."""
    return _run_view(run_path, run_files_stamp(run_path))


@st.cache_resource(max_entries=4, show_spinner=False)
def _review_store(run_path: str, stamp: tuple) -> ReviewStore:
    return ReviewStore(run_path)  # reads samples.parquet and the manifest, not the whole run


def review_store(run_path: str) -> ReviewStore:
    """The run's decision store (one per run and process; it opens a connection per call)."""
    return _review_store(run_path, run_files_stamp(run_path))


@st.cache_resource(max_entries=4, show_spinner=False)
def _table(run_path: str, stamp: tuple, version: int) -> pd.DataFrame:
    view = _run_view(run_path, stamp)
    store = _review_store(run_path, stamp)
    return with_decisions(view.table, store.current())


def table_with_decisions(run_path: str) -> tuple[pd.DataFrame, int]:
    """(the run table with status / new_label / reviewer columns, the store version it shows)."""
    stamp = run_files_stamp(run_path)
    version = _review_store(run_path, stamp).version()
    return _table(run_path, stamp, version), version


@st.cache_data(max_entries=2048, show_spinner=False)
def card_image_png(run_path: str, ref: str, size: int) -> tuple[bytes | None, str | None]:
    """(PNG bytes of the card image, None) or (None, why it cannot be shown)."""
    picture, problem = load_card_image(RunDir(run_path), ref, size=size)
    if picture is None:
        return None, problem
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue(), None


INLINE_IMAGE_BYTES = 48_000  # a card image up to this size is sent inside the card's HTML


def _encoded(picture, fmt: str) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, format=fmt, **({"quality": 85} if fmt == "JPEG" else {}))
    return buffer.getvalue()


@st.cache_resource(max_entries=2048, show_spinner=False)
def card_image_uri(run_path: str, ref: str, size: int) -> str | None:
    """The card image as a ``data:`` URI (PNG; JPEG for a photo whose PNG is large), or None
    when it cannot be shown or stays over INLINE_IMAGE_BYTES (then st.image serves it).

    Inline, the image costs no element and no request of its own: a card is one HTML element.
    Shared by all sessions (a str is immutable)."""
    picture, _ = load_card_image(RunDir(run_path), ref, size=size)
    if picture is None:
        return None
    data, mime = _encoded(picture, "PNG"), "image/png"
    if len(data) > INLINE_IMAGE_BYTES and picture.mode == "RGB":
        data, mime = _encoded(picture, "JPEG"), "image/jpeg"
    if len(data) > INLINE_IMAGE_BYTES:
        return None
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


@st.cache_resource(max_entries=2048, show_spinner=False)
def card_image_src(run_path: str, ref: str, size: int) -> tuple[str | None, str | None]:
    """(the card image as a ``data:`` URI, None) or (None, why it cannot be shown): for the
    cards, whose HTML has no media files: an image over INLINE_IMAGE_BYTES is sent as JPEG."""
    uri = card_image_uri(run_path, ref, size)
    if uri is not None:
        return uri, None
    picture, problem = load_card_image(RunDir(run_path), ref, size=size)
    if picture is None:
        return None, problem
    data = _encoded(picture.convert("RGB"), "JPEG")
    return f"data:image/jpeg;base64,{base64.b64encode(data).decode('ascii')}", None


@st.cache_resource(max_entries=6, show_spinner="Drawing the map…")
def map_layer(
    run_path: str,
    stamp: tuple,
    color_by: str,
    detector: str | None,
    version: int,
    first: tuple[int, ...] | None = None,
):
    """The drawn gradient map and its selection lookup (see dashboard.map_view.build_map);
    ``first``: the table rows of the queue's first cards as the reviewer sees them (outlined,
    drawn on top), None for the detector's order."""
    from dashboard.map_view import build_map

    view = _run_view(run_path, stamp)
    status = _table(run_path, stamp, version)["status"] if color_by == "status" else None
    rows = None if first is None else np.asarray(first, dtype=np.int64)
    return build_map(view, color_by=color_by, detector=detector, status=status, first=rows)


@st.cache_data(max_entries=8, show_spinner="Preparing the export…")
def export_text(
    run_path: str, stamp: tuple, version: int, only_kept: bool, detector: str | None
) -> str:
    """The export CSV text (identical to ``ogad export``) for this state of the run."""
    return export_csv_text(
        run_path,
        only_kept=only_kept,
        detector=detector,
        store=_review_store(run_path, stamp),
    )


@st.cache_resource(max_entries=4, show_spinner="Reading the evaluation…")
def _evaluation_view(run_path: str, stamp: tuple) -> EvaluationView | None:
    return load_evaluation_view(run_path)


def evaluation_view(run_path: str) -> EvaluationView | None:
    """The run's evaluation figures (None without known noise); re-read when evaluation.json,
    samples, scores or the manifest change."""
    return _evaluation_view(run_path, evaluation_stamp(run_path))
