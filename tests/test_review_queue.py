"""The dashboard's data layer (dashboard.run_view) and dashboard.serve's checks, no browser."""

from __future__ import annotations

import base64
import io
import json
import re
import socket
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from dashboard.map_view import MapSelection, build_map, read_selection
from dashboard.raster import (
    PointIndex,
    categorical_rgba,
    continuous_rgba,
    map_extent,
    pixel_index,
    raster_shape,
)
from dashboard.run_view import (
    build_queue,
    load_card_image,
    load_run_view,
    page_of,
    parse_features,
    queue_rows,
    summary_tables,
    text_preview,
    with_decisions,
)
from dashboard.serve import HOST, serve, streamlit_command
from ogad_core.errors import ConfigError, RunDirError
from ogad_core.review.store import ReviewStore
from ogad_core.run.rundir import RunDir
from ogad_core.testing import MISSING_ID, make_run


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
    layer = build_map(view, color_by="score", detector=None)  # no coordinates: no points
    assert layer.n_points == layer.payload["n"] == 0 and not layer.raster


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


def _decoded(payload: dict, name: str, dtype: str) -> np.ndarray:
    """One per-point array of the map payload, decoded as the page decodes it."""
    return np.frombuffer(base64.b64decode(payload[name]), dtype=dtype)


def test_map_payload_holds_every_sample_in_every_colouring(run: Path) -> None:
    view = load_run_view(run)
    table = view.table.set_index("sample_id")
    status = pd.Series(["unreviewed"] * 50 + ["confirmed"] * 10)
    for color_by in ("score", "label", "pred", "status"):
        layer = build_map(view, color_by=color_by, detector="iforest", status=status)
        payload = json.loads(json.dumps(layer.payload))  # JSON all the way
        assert not layer.raster and payload["image"] is None and payload["n"] == 60
        sids = _decoded(payload, "sid", "<f8").astype(int)
        assert sorted(sids) == list(range(60)) and list(sids) == list(layer.drawn_ids)
        rows = table.loc[sids]
        assert np.allclose(_decoded(payload, "x", "<f4"), rows["x"], atol=1e-5)
        assert np.allclose(_decoded(payload, "y", "<f4"), rows["y"], atol=1e-5)
        assert list(_decoded(payload, "given", "<i4")) == list(rows["label"])
        assert list(_decoded(payload, "pred", "<i4")) == list(rows["pred"])
        assert np.allclose(_decoded(payload, "score", "<f4"), rows["iforest_score"], rtol=1e-6)
        code = _decoded(payload, "code", "<i4")
        legend = payload["legend"]
        if color_by == "score":
            assert legend["kind"] == "scale" and legend["title"] == "iforest score"
            assert np.allclose(_decoded(payload, "value", "<f4"), rows["iforest_score"])
            lo, hi = legend["range"]
            assert lo == pytest.approx(rows["iforest_score"].min())
            assert hi == pytest.approx(rows["iforest_score"].max())
            continue
        assert payload["value"] is None and legend["kind"] == "classes"
        if color_by == "status":
            assert legend["title"] == "review status" and payload["status_names"][1] == "confirmed"
            assert [e["count"] for e in legend["entries"]] == [50, 10, 0, 0]
            assert list(code) == [0 if s < 50 else 1 for s in sids]
        else:
            column = "label" if color_by == "label" else "pred"
            assert list(code) == list(rows[column])
            names = {e["name"] for e in legend["entries"]}
            assert names == {view.label_names[c] for c in set(rows[column])}
        colors = payload["colors"]
        assert all(re.fullmatch(r"#[0-9A-F]{6}", colors[c]) for c in set(code))


def test_map_draws_top_ranked_points_last(run: Path) -> None:
    view = load_run_view(run)
    layer = build_map(view, color_by="label", detector="l2")
    ranks = view.table.set_index("sample_id")["l2_rank"]
    top = list(ranks.sort_values().index[:10])  # 60 samples: the 10 best are outlined
    assert layer.n_top == layer.payload["n_top"] == 10
    assert sorted(layer.drawn_ids[-10:]) == sorted(top) and layer.drawn_ids[-1] == top[0]


def test_big_maps_are_a_raster_with_the_top_points(run: Path) -> None:
    view = load_run_view(run)
    status = pd.Series(["unreviewed"] * 60)
    status[int(view.table["iforest_rank"].to_numpy().argmax())] = "rejected"  # ranked last
    best = set(view.table.sort_values("iforest_rank")["sample_id"].iloc[:5])
    for color_by in ("score", "label", "pred", "status"):
        layer = build_map(
            view,
            color_by=color_by,
            detector="iforest",
            status=status,
            full_points_max=20,
            overlay_points=5,
        )
        assert layer.raster and layer.n_drawn == 60 and layer.payload["raster"]
        assert re.match(r"data:image/(webp|png);base64,", layer.payload["image"])
        reviewed = {int(status.index[status != "unreviewed"][0])}
        assert set(layer.drawn_ids) == best | (reviewed if color_by == "status" else set())
        assert layer.n_points == len(layer.drawn_ids) == layer.n_top  # at least 10 outlined
        assert set(layer.drawn_ids[-5:]) == best
        legend = layer.payload["legend"]
        assert legend["kind"] == "scale" or len(legend["entries"]) >= 3  # every class / status


def test_a_zoomed_raster_view_gets_its_own_sharper_image(run: Path) -> None:
    view = load_run_view(run)
    coords = view.table[["x", "y"]]
    layer = build_map(view, color_by="label", detector="iforest", full_points_max=20)
    x0, x1, y0, y1 = layer.payload["extent"]
    assert layer.detail is not None and layer.detail([x0, x1, y0, y1]) is None  # whole map
    mx, my = (x0 + x1) / 2, (y0 + y1) / 2
    wanted = [x0 - 100.0, mx, y0, my]  # the lower left quarter, reaching past the map's edge
    detail = layer.detail(wanted)
    assert detail is not None and detail["extent"] == [x0, mx, y0, my]
    assert layer.detail(wanted) is detail  # kept for the next rerun
    picture = Image.open(io.BytesIO(base64.b64decode(detail["image"].split(",", 1)[1])))
    assert max(picture.size) == 900  # the same pixels, now over a quarter of the map
    inside = int((coords["x"].between(x0, mx) & coords["y"].between(y0, my)).sum())
    lit = int((np.asarray(picture.convert("RGBA"))[..., 3] > 0).sum())
    assert 0 < lit <= inside
    for bad in (None, [x0, x1], [x0, "a", y0, y1], [x1 + 1, x1 + 2, y0, y1]):
        assert layer.detail(bad) is None
    small = build_map(view, color_by="label", detector="iforest")
    assert small.detail is None and small.payload["image"] is None


@pytest.mark.parametrize("full_points_max", [20, 20_000])
def test_map_selections_become_ids_from_the_coordinates(run: Path, full_points_max: int) -> None:
    view = load_run_view(run)
    coords = view.table[["sample_id", "x", "y"]]
    layer = build_map(view, color_by="pred", detector="iforest", full_points_max=full_points_max)
    inside = sorted(coords[coords["x"].between(-1, 6) & coords["y"].between(-2, 3)]["sample_id"])
    assert 0 < len(inside) < 60
    box = {"kind": "box", "x": [6.0, -1.0], "y": [-2.0, 3.0]}
    assert read_selection(box, layer) == MapSelection(
        inside, "box", {"kind": "box", "x": [6.0, -1.0], "y": [-2.0, 3.0]}
    )
    square = {"kind": "lasso", "x": [-1.0, 6.0, 6.0, -1.0], "y": [-2.0, -2.0, 3.0, 3.0]}
    picked = read_selection(square, layer)
    assert picked.kind == "lasso" and picked.ids == inside and picked.shape["x"] == square["x"]
    far = {"kind": "box", "x": [1e6, 1e6 + 1], "y": [0.0, 1.0]}
    assert read_selection(far, layer) == MapSelection([], "box", {**far})  # nothing inside
    assert read_selection({"kind": "click", "ids": [7]}, layer) == MapSelection([7], "click")
    for bad in (
        None,
        "box",
        {"kind": "click", "ids": [10_000]},  # not on the map
        {"kind": "click", "ids": "7"},
        {"kind": "box", "x": [1.0], "y": [0.0, 1.0]},
        {"kind": "box", "x": [0.0, float("nan")], "y": [0.0, 1.0]},
        {"kind": "box", "x": ["a", "b"], "y": [0.0, 1.0]},
        {"kind": "lasso", "x": [0.0, 1.0], "y": [0.0, 1.0]},
        {"kind": "circle", "x": [0.0, 1.0], "y": [0.0, 1.0]},
    ):
        assert read_selection(bad, layer) == MapSelection(None, None), bad


def test_point_in_polygon_matches_matplotlib() -> None:
    from matplotlib.path import Path as PolygonPath

    rng = np.random.default_rng(3)
    xs, ys = rng.normal(size=5000), rng.normal(size=5000)
    index = PointIndex.build(xs, ys, np.arange(5000) + 100)
    angles = np.sort(rng.uniform(0, 2 * np.pi, 40))
    radius = rng.uniform(0.5, 2.0, 40)  # a star-shaped, non-convex polygon
    px, py = radius * np.cos(angles), radius * np.sin(angles)
    expected = PolygonPath(np.column_stack([px, py])).contains_points(np.column_stack([xs, ys]))
    assert list(index.in_polygon(px, py)) == list(np.flatnonzero(expected) + 100)
    in_box = (xs >= -0.5) & (xs <= 1) & (ys >= 0) & (ys <= 0.7)
    assert list(index.in_box((1, -0.5), (0.7, 0))) == list(np.flatnonzero(in_box) + 100)


def test_raster_colours_pixels_by_their_points() -> None:
    extent = map_extent(np.array([0.0, 10.0]), np.array([0.0, 5.0]), pad=0.0)
    shape = raster_shape(extent, max_px=20)
    assert shape == (10, 20)  # square pixels: 0.5 map units each
    xs, ys = np.array([0.1, 0.2, 9.9]), np.array([4.9, 4.8, 0.1])
    pix = pixel_index(xs, ys, extent, shape)
    assert list(pix) == [0, 0, 9 * 20 + 19]
    rgba = categorical_rgba(pix, np.array([0, 1, 1]), ["#FF0000", "#0000FF"], shape)
    assert tuple(rgba[0, 0, :3]) == (128, 0, 128) and rgba[0, 0, 3] == 255  # 1 red + 1 blue
    assert rgba[9, 19, 3] < 255 and rgba[5, 5, 3] == 0  # one point fainter; empty clear
    lut = np.array([[0, 0, 0], [255, 255, 255]], dtype=float)
    rgba = continuous_rgba(pix, np.array([0.0, 1.0, 0.0]), lut, (0.0, 1.0), shape)
    assert tuple(rgba[0, 0, :3]) == (255, 255, 255)  # the pixel's highest value shows


def test_decisions_and_queue_at_scale_use_row_positions(tmp_path: Path) -> None:
    run = make_run(tmp_path / "big", n=3000, n_images=20)
    view = load_run_view(run)
    store = ReviewStore(run)
    order = view.table.sort_values("iforest_rank")["sample_id"].to_numpy()
    store.confirm(int(order[0]), reviewer="a")
    store.relabel(int(order[1]), 1 - min(1, int(view.table.loc[order[1], "label"])), reviewer="b")
    store.reject(int(order[2]), reviewer="a")
    table = with_decisions(view.table, store.current())
    old = view.table.merge(
        store.current()[["sample_id", "decision", "new_label", "reviewer"]], how="left"
    )
    assert list(table["status"].astype(str)) == list(old["decision"].fillna("unreviewed"))
    assert table["new_label"].equals(old["new_label"].astype("Int64"))
    assert list(table["reviewer"].astype(object).fillna("-")) == list(old["reviewer"].fillna("-"))
    queue = queue_rows(view, table, detector="iforest")
    assert len(queue) == 2997 and list(queue.sample_ids[:3]) == list(order[3:6])
    rows, page, n_pages = page_of(queue, 1, 12)
    assert (page, n_pages) == (1, 250) and list(rows["sample_id"]) == list(order[15:27])
    frame = build_queue(view, table, detector="iforest", classes=[1], top_k=500, min_score=1.0)
    expected = view.table.sort_values("iforest_rank").head(500)  # the queue, then its class
    expected = expected[expected["label"] == 1]
    expected = expected[(expected["iforest_score"] >= 1.0)]
    expected = expected[~expected["sample_id"].isin(order[:3])]
    assert list(frame["sample_id"]) == list(expected["sample_id"])
    one = queue_rows(view, table, detector="iforest", selected_ids=[int(order[0])])
    assert list(one.sample_ids) == [order[0]]  # one picked sample shows, reviewed or not
    by_loss = queue_rows(view, table, detector=None, show_reviewed=True)
    assert table["loss"].to_numpy()[by_loss.rows].tolist() == sorted(table["loss"], reverse=True)


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


def test_share_text_never_reads_as_nothing_or_done_when_it_is_not() -> None:
    from dashboard.filters import share_text

    assert [share_text(f) for f in (0.0, 1 / 397, 0.01, 0.374, 0.995, 1.0)] == [
        "0%",
        "<1%",
        "1%",
        "37%",
        ">99%",
        "100%",
    ]
