"""The rehearsal's own parts on a few photos (seconds): the synthetic photo set, scoring a run
against its truth, and splicing only its section into the docs. The rehearsal itself is a
benchmark (``python -m benchmarks.bench_rehearsal``), never run here."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from benchmarks.bench_rehearsal import TITLE, detection, splice_section
from benchmarks.synthetic_jpegs import make_dataset, read_truth


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.jpg"))}


def test_photos_are_deterministic_flipped_and_the_truth_lies_outside(tmp_path: Path) -> None:
    a = make_dataset(tmp_path / "a", 40, classes=4, flip=0.1, seed=3, progress=False)
    b = make_dataset(tmp_path / "b", 40, classes=4, flip=0.1, seed=3, progress=False, workers=1)
    assert _files(tmp_path / "a") == _files(tmp_path / "b")  # any number of workers
    assert int(a.flipped.sum()) == 4 and np.array_equal(a.given, b.given)
    assert np.bincount(a.true, minlength=4).tolist() == [10, 10, 10, 10]
    assert not list((tmp_path / "a" / "images").rglob("*.csv"))
    back = read_truth(tmp_path / "a" / "truth.csv")
    assert np.array_equal(back.true, a.true) and back.paths == a.paths
    for path, given in zip(a.paths, a.given, strict=True):
        assert Path(path).parent.name == f"class_{given:03d}"  # filed under the given class
        with Image.open(tmp_path / "a" / path) as im:
            assert all(128 <= side <= 256 for side in im.size) and im.mode == "RGB"
    other = make_dataset(tmp_path / "c", 40, classes=4, flip=0.1, seed=4, progress=False)
    assert not np.array_equal(other.given, a.given)


def test_an_interrupted_generation_is_finished_identically(tmp_path: Path) -> None:
    truth = make_dataset(tmp_path, 12, classes=3, flip=0.25, seed=0, progress=False)
    before = _files(tmp_path)
    (tmp_path / truth.paths[5]).unlink()
    make_dataset(tmp_path, 12, classes=3, flip=0.25, seed=0, progress=False)
    assert _files(tmp_path) == before


def _fake_run(root: Path, name: str, score: np.ndarray, flagged: list[int]) -> Path:
    """A run directory with just what :func:`detection` reads (refs as absolute paths), its
    predictions the true classes, ``score`` the default detector's."""
    run = root / name
    run.mkdir()
    truth = read_truth(root / "truth.csv")
    n = len(truth.paths)
    ids = np.arange(n)
    pd.DataFrame(
        {
            "sample_id": ids,
            "ref": [str(root / p) for p in truth.paths],
            "label": truth.given,
            "pred": truth.true,
        }
    ).to_parquet(run / "samples.parquet")
    pd.DataFrame({"sample_id": ids[::-1], "loss_score": score[::-1]}).to_parquet(
        run / "scores.parquet"
    )
    pd.DataFrame({"sample_id": ids, "issue": "label", "flagged": np.isin(ids, flagged)}).to_parquet(
        run / "issues.parquet"
    )
    (run / "manifest.json").write_text(json.dumps({"detectors": ["loss"]}))
    return run


def test_detection_scores_the_run_against_the_truth(tmp_path: Path) -> None:
    truth = make_dataset(tmp_path, 20, classes=4, flip=0.2, seed=1, progress=False, workers=1)
    flipped = np.flatnonzero(truth.flipped)
    score = truth.flipped.astype(float) + np.linspace(0, 0.5, 20)  # the flipped ones first
    fp = [int(i) for i in flipped[:2]] + [int(np.flatnonzero(~truth.flipped)[0])]
    d = detection(_fake_run(tmp_path, "run", score, flagged=fp), tmp_path / "truth.csv")
    assert d["n_flipped"] == 4 and d["auroc"] == 1.0 and d["recall_at_n_flipped"] == 1.0
    assert d["head_accuracy_true"] == 1.0 and d["head_accuracy_given"] == 0.8
    assert d["label_precision"] == 2 / 3 and d["label_recall"] == 0.5
    assert d["flagged"] == {"label": 3}
    d = detection(_fake_run(tmp_path, "reversed", -score, flagged=[]), tmp_path / "truth.csv")
    assert d["auroc"] == 0.0 and d["recall_at_n_flipped"] == 0.0 and "label_precision" not in d


def test_the_docs_splice_replaces_only_its_own_section(tmp_path: Path) -> None:
    page = tmp_path / "benchmarks.md"
    head = "# Benchmarks\n\n## First\n\nkept 2026-01-01\n"
    tail = "## Last\n\nalso kept\n"
    page.write_text(head + "\n" + TITLE + "\n\nold figures\n\n" + tail)
    splice_section(page, TITLE + "\n\nnew figures\n")
    assert page.read_text() == head + "\n" + TITLE + "\n\nnew figures\n\n" + tail
    splice_section(page, TITLE + "\n\nnew figures\n")  # idempotent
    assert page.read_text() == head + "\n" + TITLE + "\n\nnew figures\n\n" + tail
    plain = tmp_path / "plain.md"
    plain.write_text(head)
    splice_section(plain, TITLE + "\n\nfigures\n")
    assert plain.read_text() == head + "\n" + TITLE + "\n\nfigures\n"
