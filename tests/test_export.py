"""The cleaned-index export: columns, decisions → keep / final_label, detectors, atomic write."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from ogad_core.errors import ConfigError, RunDirError
from ogad_core.review.export import (
    EXPORT_COLUMNS,
    build_export_frame,
    export_csv,
    export_csv_text,
)
from ogad_core.review.store import ReviewStore
from ogad_core.testing import IMAGE_LABELS, make_run

N = 30


@pytest.fixture
def run(tmp_path: Path) -> Path:
    """A run with one decision of each kind: 2 confirmed, 3 rejected, 4 relabeled."""
    run = make_run(tmp_path / "run", n=N)
    store = ReviewStore(run)
    store.confirm(2, reviewer="alice")
    store.reject(3, reviewer="alice")
    store.relabel(4, (store._label_of[4] + 1) % 3, reviewer="bob")
    return run


def test_export_frame_maps_decisions_to_keep_and_final_label(run: Path) -> None:
    samples = pd.read_parquet(run / "samples.parquet").set_index("sample_id")
    scores = pd.read_parquet(run / "scores.parquet").set_index("sample_id")
    frame = build_export_frame(run)
    assert list(frame.columns) == EXPORT_COLUMNS
    assert list(frame["sample_id"]) == list(range(N))
    rows = frame.set_index("sample_id")
    assert rows.loc[2, "decision"] == "confirmed" and not rows.loc[2, "keep"]
    assert rows.loc[2, "final_label"] == rows.loc[2, "original_label"]
    assert rows.loc[3, "decision"] == "rejected" and rows.loc[3, "keep"]
    assert rows.loc[3, "final_label"] == IMAGE_LABELS[samples.loc[3, "label"]]
    new = IMAGE_LABELS[(samples.loc[4, "label"] + 1) % 3]
    assert (rows.loc[4, "decision"], rows.loc[4, "final_label"], rows.loc[4, "keep"]) == (
        "relabeled",
        new,
        True,
    )
    assert rows.loc[4, "original_label"] == samples.loc[4, "label_name"]
    others = rows.drop(index=[2, 3, 4])
    assert (others["decision"] == "unreviewed").all() and others["keep"].all()
    assert (others["final_label"] == others["original_label"]).all()
    assert list(rows["ref"]) == list(samples["ref"])
    # default detector: iforest
    assert rows["score"].tolist() == scores["iforest_score"].tolist()
    assert rows["rank"].tolist() == scores["iforest_rank"].tolist()
    l2 = build_export_frame(run, detector="l2").set_index("sample_id")
    assert l2["rank"].tolist() == scores["l2_rank"].tolist()


def test_export_csv_writes_the_contract_columns(run: Path, tmp_path: Path) -> None:
    out = tmp_path / "out" / "cleaned.csv"
    assert export_csv(run, out) == N
    text = out.read_text(encoding="utf-8")
    assert text.splitlines()[0] == ",".join(EXPORT_COLUMNS)
    assert text == export_csv_text(run)
    back = pd.read_csv(out)
    assert back["keep"].tolist() == [s != 2 for s in range(N)]
    assert text.splitlines()[3].endswith(",false")  # sample 2 (confirmed): keep = false
    assert back["decision"].value_counts().to_dict() == {
        "unreviewed": N - 3,
        "confirmed": 1,
        "rejected": 1,
        "relabeled": 1,
    }
    assert [p.name for p in out.parent.iterdir()] == ["cleaned.csv"]  # no temp file left


def test_only_kept_drops_confirmed_rows(run: Path, tmp_path: Path) -> None:
    out = tmp_path / "kept.csv"
    assert export_csv(run, out, only_kept=True) == N - 1
    back = pd.read_csv(out)
    assert 2 not in set(back["sample_id"]) and back["keep"].all()
    assert out.read_text(encoding="utf-8") == export_csv_text(run, only_kept=True)


def test_run_without_scores_exports_empty_score_and_rank(tmp_path: Path) -> None:
    run = make_run(tmp_path / "bare", n=12, with_scores=False, with_map=False)
    out = tmp_path / "bare.csv"
    assert export_csv(run, out) == 12
    lines = out.read_text(encoding="utf-8").splitlines()
    assert lines[1].endswith(",unreviewed,,,true")
    assert pd.read_csv(out)[["score", "rank"]].isna().all().all()


def test_bad_detector_output_and_run_dir_give_clear_errors(run: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown detector 'lof'; this run has: iforest, l2"):
        export_csv(run, tmp_path / "x.csv", detector="lof")
    with pytest.raises(ConfigError, match="is a folder"):
        export_csv(run, tmp_path)
    with pytest.raises(RunDirError, match="run directory not found"):
        export_csv(tmp_path / "nope", tmp_path / "x.csv")
    assert not (tmp_path / "x.csv").exists()


def test_export_replaces_an_existing_file_atomically(run: Path, tmp_path: Path) -> None:
    out = tmp_path / "cleaned.csv"
    out.write_text("old content\n", encoding="utf-8")
    export_csv(run, out)
    assert out.read_text(encoding="utf-8").startswith("sample_id,ref,")
