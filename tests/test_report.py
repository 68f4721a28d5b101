"""``ogad report`` and the chart builders (ogad_core.reporting): the HTML file, its --out checks,
the issue types it shows, the charts' data; the training history the Run page draws."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ogad_core.cli import main
from ogad_core.reporting import charts
from ogad_core.reporting.report import figures, load_summary, report_html
from ogad_core.review.store import ReviewStore
from ogad_core.testing import make_run, write_evaluation


@pytest.fixture
def run(tmp_path: Path) -> Path:
    return make_run(tmp_path / "run", kind="image", n=60)


def _figure_titles(text: str) -> list[str]:
    blocks = re.findall(r'<script type="application/json" class="ogad-figure">(.*?)</script>', text)
    return [json.loads(b.replace("<\\/", "</"))["layout"]["title"]["text"] for b in blocks]


def test_the_report_holds_charts_tables_samples_and_configuration(
    run: Path, tmp_path: Path, capsys
) -> None:
    write_evaluation(run, retrain=True)
    ReviewStore(run).confirm(3, reviewer="r")
    out = tmp_path / "report.html"
    assert main(["report", str(run), "--out", str(out)]) == 0
    assert "opens offline" in capsys.readouterr().out
    text = out.read_text(encoding="utf-8")
    titles = _figure_titles(text)
    for want in (
        "Review progress",
        "Score distributions",
        "Class health",
        "Given x predicted",
        "Precision@k",
        "Trim and retrain",
        "Time per step",
    ):
        assert any(t.startswith(want) for t in titles), (want, titles)
    assert "Decisions by given class" in text and "Run configuration" in text
    assert text.count('<div class="sample">') == 24
    assert text.count("data:image/png;base64,") >= 20  # the top samples' thumbnails, inline
    assert not re.search(r'(src|href)="https?:', text)  # nothing to fetch
    assert "Issue types" not in text  # no issues.parquet in this run


def test_the_report_shows_issue_types_when_the_run_has_them(run: Path, tmp_path: Path) -> None:
    samples = pd.read_parquet(run / "samples.parquet")
    rng = np.random.default_rng(0)
    rows = []
    for issue in ("label", "duplicate"):
        score = rng.normal(size=len(samples))
        rank = (-score).argsort().argsort() + 1
        rows.append(
            pd.DataFrame(
                {
                    "sample_id": samples["sample_id"],
                    "issue": issue,
                    "score": score,
                    "rank": rank,
                    "flagged": rank <= 5,
                    "set_id": (rank <= 4) * 1 if issue == "duplicate" else None,
                }
            )
        )
    pd.concat(rows).to_parquet(run / "issues.parquet", index=False)
    summary = load_summary(run)
    text = report_html(summary)
    assert "Issue types (issues.parquet)" in text
    titles = " ".join(json.dumps(f.to_plotly_json()["layout"]) for f in figures(summary))
    assert "issue: duplicate" in titles and "issue: label" in titles


@pytest.mark.parametrize("where", ["manifest.json", "thumbs/x.html", "evidence", "folder"])
def test_out_refuses_the_runs_own_paths_and_non_regular_files(
    run: Path, tmp_path: Path, capsys, where: str
) -> None:
    out = tmp_path / "elsewhere" if where == "folder" else run / where
    if where == "folder":
        out.mkdir()
    before = (run / "manifest.json").read_bytes()
    assert main(["report", str(run), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--out" in err[0] and "Traceback" not in err[0]
    assert (run / "manifest.json").read_bytes() == before


def test_precision_at_k_and_progress_data_are_what_they_say() -> None:
    flipped = np.array([True, False, True, False, False, True])
    perfect = np.array([1, 4, 2, 5, 6, 3])  # the three flipped first
    data = charts.precision_at_k_data({"perfect": perfect}, flipped)
    at = dict(zip(data["k"], data["precision"], strict=True))
    assert at[1] == 1.0 and at[3] == 1.0 and at[6] == 0.5
    decisions = pd.DataFrame({"decision": ["confirmed"] * 8 + ["rejected"] * 12})
    progress = charts.progress_data(decisions, expected_bad=10, block=10)
    assert progress["reviews"].tolist() == [10, 20]
    assert progress["share_bad"].tolist() == [0.8, 0.0]
    assert progress["left"].tolist() == [2, 2]
    for left, step in ((0, 1), (2, 1), (41, 11)):  # the "left to find" axis: whole samples
        axis = charts.progress_figure(progress.assign(left=left), n_target=10).layout.yaxis2
        assert axis.dtick == step and axis.tickformat == ",d" and axis.range[0] == 0
        assert axis.range[1] >= max(left, 1)
    assert charts.threshold_at(np.array([3.0, 1.0, 2.0, np.nan]), 2) == 2.0


def test_compute_records_the_training_loss_per_epoch(digits_run: Path) -> None:
    from ogad_core.testing import DIGITS_CONFIG

    manifest = json.loads((digits_run / "manifest.json").read_text())
    epochs = manifest["steps"]["train"]["epochs"]
    assert [e["epoch"] for e in epochs] == list(range(1, DIGITS_CONFIG["epochs"] + 1))
    assert all(e["loss"] > 0 and e["seconds"] >= 0 for e in epochs)
    assert epochs[-1]["loss"] < epochs[0]["loss"]  # it trained


def test_grid_numbers_contrast_with_their_cells() -> None:
    """A light cell (the marker colours run from the grid's min to its max) gets dark text, a
    dark one white: on a two-class grid the off-diagonal counts stay readable."""
    from ogad_core.reporting.charts import given_pred_figure

    counts = pd.DataFrame([[5279, 1304], [1707, 3462]], index=[0, 1], columns=[0, 1])
    colors = given_pred_figure(counts).data[0].textfont.color
    assert list(colors) == ["white", "#222", "#222", "white"]


def test_out_refusals_suggest_an_html_file_name(run: Path, tmp_path: Path, capsys) -> None:
    """A refused `ogad report --out` suggests a report's file name, not the export's CSV."""
    for out in (tmp_path, run / "samples.parquet"):
        assert main(["report", str(run), "--out", str(out)]) == 2
        err = capsys.readouterr().err.strip()
        assert "report.html" in err and ".csv" not in err and "\n" not in err


def test_an_issue_type_that_scores_every_sample_alike_gets_no_chart() -> None:
    """Leakage without a held-out split scores every sample 0 and flags none: no distribution
    chart (it drew one bar); a type with spread scores or a flag keeps its chart."""
    from ogad_core.reporting.report import issue_distributions

    n = 20
    issues = pd.DataFrame(
        {
            "sample_id": np.tile(np.arange(n), 3),
            "issue": ["leakage"] * n + ["outlier"] * n + ["corrupt"] * n,
            "score": np.concatenate([np.zeros(n), np.linspace(0, 3, n), np.zeros(n)]),
            "flagged": np.r_[np.zeros(2 * n, bool), np.arange(n) == 3],
        }
    )
    found = issue_distributions(issues)
    assert sorted(found) == ["issue: corrupt", "issue: outlier"]
    assert found["issue: corrupt"][1] == 0.0 and found["issue: outlier"][1] is None
