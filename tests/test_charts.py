"""The charts' plotly.js: the partial bundle vendored in ogad_core/reporting/plotly draws every
chart the dashboard and the report make, and the report packs that bundle (not the full one)."""

from __future__ import annotations

import base64
import gzip
import re
from pathlib import Path

import numpy as np
import pandas as pd
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


# every figure the dashboard and the report draw, plus wide/long-label variants: drawn in
# Chromium at a laptop's chart width and a wide one, the margins plotly.js ends up with
DRAWN_MARGINS_JS = """async ([texts, width]) => {
  const out = [];
  for (const text of texts) {
    const root = document.createElement('div');
    root.style.width = `${width}px`;
    document.body.appendChild(root);
    const fig = JSON.parse(text);
    await Plotly.newPlot(root, fig.data, fig.layout);
    const s = root._fullLayout._size;
    out.push([fig.layout.title.text, [s.l, s.r, s.t, s.b], fig.layout.margin]);
    Plotly.purge(root);
    root.remove();
  }
  return out;
}"""


@pytest.mark.browser
def test_chart_margins_fit_their_labels_so_plotly_draws_each_chart_once(run: Path) -> None:
    """plotly.js draws a figure again when a label does not fit its margin (automargin): a
    third of a chart's drawing. The margins set here fit, so nothing grows: every chart of a
    run at the narrowest width the Summary draws a chart and at a wide one, and a grid of
    longer class names (its margins wider for them) on a wide page."""
    from playwright.sync_api import sync_playwright

    from ogad_core.testing import CHROMIUM, CHROMIUM_ARGS

    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing")
    made = figures(load_summary(run))
    values = np.random.default_rng(0).exponential(size=5000)
    made.append(charts.scores_figure({"loss": (values, 2.0), "l2": (values, None)}, cols=3))
    assert any(fig.layout.yaxis2.overlaying for fig in made)  # a right-hand axis is among them
    names = ["circle", "square", "a much longer name"]
    counts = pd.DataFrame(np.arange(9).reshape(3, 3) * 700, index=names, columns=names)
    long_names = charts.given_pred_figure(counts)
    grid = next(fig for fig in made if fig.layout.title.text.startswith("Given x predicted"))
    assert long_names.layout.margin.l > grid.layout.margin.l + 50
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.set_content("<html><body></body></html>")
            page.add_script_tag(path=str(PLOTLY_JS))
            drawn = [
                row
                for texts, width in (
                    ([fig.to_json(engine="json") for fig in made], charts.NARROW_PX),
                    ([fig.to_json(engine="json") for fig in [*made, long_names]], 1100),
                )
                for row in page.evaluate(DRAWN_MARGINS_JS, [texts, width])
            ]
        finally:
            browser.close()
    grown = [
        (title, size, m) for title, size, m in drawn if size != [m["l"], m["r"], m["t"], m["b"]]
    ]
    assert not grown, grown
