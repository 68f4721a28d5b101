"""The dashboard's data layer (dashboard.queue) and dashboard.serve's checks, no browser."""

from __future__ import annotations

import socket
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from dashboard.mapfig import build_map_figure
from dashboard.queue import (
    build_queue,
    ids_from_selection,
    load_card_image,
    load_run_view,
    page_of,
    parse_features,
    summary_tables,
    text_preview,
    with_decisions,
)
from dashboard.serve import HOST, serve, streamlit_command
from ogad_core.errors import ConfigError, RunDirError
from ogad_core.review.store import ReviewStore
from ogad_core.run.rundir import RunDir
from tests.run_fixture import MISSING_ID, make_run


@pytest.fixture
def run(tmp_path: Path) -> Path:
    return make_run(tmp_path / "run", n=60)


def test_queue_filters_and_pages(run: Path) -> None:
    view = load_run_view(run)
    store = ReviewStore(run)
    first = int(view.table.sort_values("iforest_rank")["sample_id"].iloc[0])
    store.confirm(first, reviewer="alice")
    table = with_decisions(view.table, store.current())
    queue = build_queue(view, table, detector="iforest")
    assert first not in set(queue["sample_id"]) and len(queue) == 59
    assert queue["iforest_rank"].is_monotonic_increasing
    shown = build_queue(view, table, detector="iforest", show_reviewed=True)
    assert int(shown["sample_id"].iloc[0]) == first
    top = build_queue(view, table, detector="l2", top_k=10, show_reviewed=True)
    assert list(top["l2_rank"]) == list(range(1, 11))
    crosses = build_queue(view, table, detector="iforest", classes=[2])
    assert (crosses["label"] == 2).all()
    high = build_queue(view, table, detector="iforest", min_score=2.0)
    assert (high["iforest_score"] >= 2.0).all() and len(high) < 59
    picked = build_queue(view, table, detector="iforest", selected_ids=[3, 5, 8])
    assert set(picked["sample_id"]) <= {3, 5, 8}
    rows, page, n_pages = page_of(queue, 99, 12)
    assert (page, n_pages, len(rows)) == (4, 5, 11)


def test_summary_counts_and_precision(run: Path) -> None:
    view = load_run_view(run)
    samples = view.table.set_index("sample_id")
    flipped = [int(i) for i in samples.index[samples["is_flipped"]]][:2]
    clean = int(samples.index[~samples["is_flipped"]][0])
    store = ReviewStore(run)
    for sid in [*flipped, clean]:
        store.confirm(sid, reviewer="alice")
    summary = summary_tables(view, with_decisions(view.table, store.current()))
    assert summary["counts"]["confirmed"] == 3 and summary["counts"]["unreviewed"] == 57
    assert summary["precision"]["confirmed"] == (2, 3)
    assert summary["n_flipped"] == int(samples["is_flipped"].sum())
    assert summary["by_class"]["total"].sum() == 60


def test_run_without_scores_is_ordered_by_loss(tmp_path: Path) -> None:
    run = make_run(tmp_path / "bare", n=20, with_scores=False, with_map=False)
    view = load_run_view(run)
    assert view.detectors == [] and not view.has_map and len(view.notes) == 2
    queue = build_queue(view, with_decisions(view.table, ReviewStore(run).current()), detector=None)
    assert queue["loss"].is_monotonic_decreasing
    figure = build_map_figure(view, color_by="score", detector=None)  # no coordinates: no points
    assert sum(len(t.x) for t in figure.data) == 0


def test_unusable_run_directories_raise_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(RunDirError, match="no run directory given"):
        load_run_view("")
    with pytest.raises(RunDirError, match="not an ogad run directory"):
        load_run_view(tmp_path)
    run = make_run(tmp_path / "r", n=10)
    (run / "samples.parquet").write_bytes(b"garbage")
    with pytest.raises(RunDirError, match="cannot read"):
        load_run_view(run)


def test_card_images_are_upscaled_and_confined_to_the_data_folders(
    run: Path, tmp_path: Path
) -> None:
    rundir = RunDir(run)
    picture, problem = load_card_image(rundir, "data/images/00000.png", size=160)
    assert problem is None and picture.size == (168, 168)  # 28 px × 6, nearest neighbour
    assert set(np.unique(np.asarray(picture))) <= set(
        np.unique(np.asarray(Image.open(run / "data/images/00000.png")))
    )
    outside = tmp_path / "secret.png"
    Image.new("L", (4, 4)).save(outside)
    for ref in (str(outside), "../secret.png", "/etc/passwd"):
        picture, problem = load_card_image(rundir, ref)
        assert picture is None and "outside the run's data folders" in problem
    samples = pd.read_parquet(run / "samples.parquet").set_index("sample_id")
    _, problem = load_card_image(rundir, samples.loc[MISSING_ID, "ref"])
    assert problem.startswith("image missing")


def test_text_and_feature_helpers() -> None:
    short, folded = text_preview("a short text")
    assert (short, folded) == ("a short text", False)
    preview, folded = text_preview("word " * 500, limit=100)
    assert folded and len(preview) <= 102 and preview.endswith("…")
    assert parse_features("x1=0.123, x2=-0.500") == {"x1": "0.123", "x2": "-0.500"}
    assert parse_features("a plain sentence, with a comma") is None


def test_map_selection_gives_sample_ids(run: Path) -> None:
    view = load_run_view(run)
    for color_by in ("score", "label", "pred", "status"):
        status = pd.Series(["unreviewed"] * 60)
        figure = build_map_figure(view, color_by=color_by, detector="iforest", status=status)
        assert {t.type for t in figure.data} == {"scattergl"}
        ids = np.concatenate(
            [np.asarray(t.customdata).reshape(len(t.x), -1)[:, 0] for t in figure.data]
        )
        assert sorted(ids.astype(int)) == list(range(60))
    selection = {"points": [{"customdata": 7}, {"customdata": [3, 0.5]}, {"x": 1}]}
    assert ids_from_selection(selection) == [3, 7]
    assert ids_from_selection({"points": []}) is None and ids_from_selection(None) is None


def test_serve_refuses_bad_ports_and_binds_localhost(run: Path) -> None:
    for port in (0, 70_000, True):
        with pytest.raises(ConfigError, match="--port must be"):
            serve(run, port=port)  # type: ignore[arg-type]
    with socket.socket() as busy:
        busy.bind((HOST, 0))
        busy.listen()
        with pytest.raises(ConfigError, match="already in use"):
            serve(run, port=busy.getsockname()[1])
    command = streamlit_command(8765)
    assert command[command.index("--server.address") + 1] == "127.0.0.1"
    assert command[command.index("--server.port") + 1] == "8765"
    assert command[command.index("--server.headless") + 1] == "true"
    assert command[command.index("--browser.gatherUsageStats") + 1] == "false"
