"""The charts' plotly.js: the partial bundle vendored in ogad_core/reporting/plotly draws every
chart the dashboard and the report make, and the report packs that bundle (not the full one)."""

from __future__ import annotations

import base64
import gzip
import re
from pathlib import Path

import numpy as np
import pytest

from ogad_core.reporting import charts
from ogad_core.reporting.report import (
    PLOTLY_DIR,
    PLOTLY_JS,
    PLOTLY_TRACE_TYPES,
    figures,
    load_summary,
    report_html,
)
from ogad_core.review.store import ReviewStore
from ogad_core.testing import make_run, write_evaluation


@pytest.fixture
def run(tmp_path: Path) -> Path:
    run = make_run(tmp_path / "run", kind="image", n=60)
    write_evaluation(run, retrain=True)
    ReviewStore(run).confirm(3, reviewer="r")
    return run


def test_the_vendored_bundle_is_the_basic_partial_bundle_with_its_licence() -> None:
    head = PLOTLY_JS.read_text(encoding="utf-8")[:200]
    assert "plotly.js (basic - minified) v" in head
    assert (PLOTLY_DIR / "LICENSE").read_text(encoding="utf-8").startswith("MIT License")
    assert PLOTLY_JS.stat().st_size < 2_000_000  # the full bundle is 4.8 MB


def test_every_chart_uses_only_trace_types_the_bundle_draws(run: Path) -> None:
    summary = load_summary(run)
    made = figures(summary)
    assert len(made) >= 7
    for fig in made:
        kinds = {trace.type for trace in fig.data}
        assert kinds <= PLOTLY_TRACE_TYPES, (fig.layout.title.text, kinds)


def test_the_report_packs_the_vendored_bundle(run: Path) -> None:
    text = report_html(load_summary(run))
    packed = re.search(
        r'<script type="application/octet-stream" id="ogad-plotly">(.*?)</script>', text
    )
    assert packed is not None
    assert gzip.decompress(base64.b64decode(packed[1])) == PLOTLY_JS.read_bytes()
    assert len(text) < 1_000_000  # the full plotly.js alone packed to 1.9 MB


def test_score_histograms_label_powers_of_ten_only() -> None:
    values = np.random.default_rng(0).exponential(size=5000)
    fig = charts.scores_figure({"loss": (values, 2.0), "iforest": (values * 2, None)})
    log_axes = [ax for name, ax in fig.layout.to_plotly_json().items() if name.startswith("yaxis")]
    assert len(log_axes) == 2
    assert all(ax["type"] == "log" and ax["dtick"] == 1 for ax in log_axes)


def test_score_histograms_fill_a_grid_on_a_wide_page() -> None:
    values = np.random.default_rng(0).exponential(size=500)
    dists = {name: (values, 1.0) for name in ("loss", "l2", "l1", "lof", "iforest")}
    fig = charts.scores_figure(dists, cols=3)
    axes = fig.layout.to_plotly_json()
    x_domains = sorted({tuple(ax["domain"]) for n, ax in axes.items() if n.startswith("xaxis")})
    y_domains = sorted({tuple(ax["domain"]) for n, ax in axes.items() if n.startswith("yaxis")})
    assert len(x_domains) == 3 and len(y_domains) == 2  # 3 panels a row, 2 rows
    assert fig.layout.height == 170 * 2 + 90
    assert [a.text for a in fig.layout.annotations] == list(dists)
    assert len(charts.scores_figure(dists).layout.annotations) == 5  # one column by default
    assert charts.scores_figure(dists).layout.height == 170 * 5 + 90
