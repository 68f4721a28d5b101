"""The review evidence: faiss neighbours, the evidence/ folder (reuse, staleness, read-only runs)
and the dashboard's use of it (torch-free, fast)."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ogad_core.run.rundir import RunDir
from ogad_core.scoring import evidence as ev
from ogad_core.scoring.explain import Explainer, Explanation
from ogad_core.scoring.rerank import Reranker, pca_features
from ogad_core.space import knn as neighbours
from tests.test_review_smart import planted_run


def brute_force(space: np.ndarray, rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(m, k) exact neighbours (float64 distances, self excluded) and their (m, k) distances."""
    X = space.astype(np.float64)
    dist = ((X[rows, None, :] - X[None, :, :]) ** 2).sum(axis=2)
    dist[np.arange(len(rows)), rows] = np.inf
    near = np.argsort(dist, axis=1, kind="stable")[:, :k]
    return near, np.take_along_axis(dist, near, axis=1)


def test_exact_faiss_neighbours_equal_brute_force_ties_aside():
    grads, samples, _, _ = planted_run(n=600)
    explainer = Explainer(grads, samples)
    rows = np.arange(600)
    found = explainer.neighbour_rows(rows)  # all rows at once: the bulk path (exact here)
    page = explainer.neighbour_rows(rows[:40])  # a page of cards
    want, want_dist = brute_force(explainer.space, rows, explainer.k)
    assert (found[:40] == page).all()
    assert not (found == rows[:, None]).any()
    X = explainer.space.astype(np.float64)
    got_dist = ((X[found] - X[rows, None, :]) ** 2).sum(axis=2)
    np.testing.assert_allclose(got_dist, want_dist, rtol=1e-4, atol=1e-6)  # same distances
    assert (found == want).all(axis=1).mean() > 0.98  # the same rows but for near ties


def test_hnsw_neighbours_above_the_threshold(monkeypatch: pytest.MonkeyPatch):
    grads, samples, _, _ = planted_run(n=1500)
    exact = Explainer(grads, samples).evidence()
    monkeypatch.setattr(neighbours, "ANN_MIN_ROWS", 100)
    approx = Explainer(grads, samples)
    rows = np.arange(1500)
    near = approx.neighbour_rows(rows)
    want, _ = brute_force(approx.space, rows, approx.k)
    recall = np.mean([len(set(a) & set(b)) for a, b in zip(near, want, strict=True)]) / approx.k
    assert recall > 0.9 and not (near == rows[:, None]).any()
    agree = (approx.evidence()["suggested_label"] == exact["suggested_label"]).mean()
    assert agree > 0.97


def test_duplicates_are_never_their_own_neighbour():
    Z = np.repeat(np.random.default_rng(0).normal(size=(5, 3)), 4, axis=0).astype(np.float32)
    rows = np.arange(20)
    for index in (neighbours.flat_index(Z), neighbours.hnsw_index(Z)):
        near = neighbours.knn_excluding_self(index, Z, rows, 3)
        assert near.shape == (20, 3) and not (near == rows[:, None]).any()
        assert (near // 4 == rows[:, None] // 4).all()  # its three copies, at distance 0


def evidence_run(tmp_path: Path, n: int = 400) -> tuple[RunDir, np.ndarray, pd.DataFrame]:
    grads, samples, _, _ = planted_run(n=n)
    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    np.save(run.gradients_path, grads)
    samples.to_parquet(run.samples_path)
    return run, grads, samples


def _same_explanation(a: Explanation, b: Explanation) -> None:
    """Equal, the floats to float32's precision (the stored evidence is float32)."""
    floats = ("loss", "margin", "grad_norm_percentile", "suggestion_confidence")
    assert replace(a, **dict.fromkeys(floats, 0.0)) == replace(b, **dict.fromkeys(floats, 0.0))
    for name in floats:
        assert getattr(a, name) == pytest.approx(getattr(b, name), rel=1e-6, abs=1e-6), name


def test_evidence_matches_a_fresh_explainer_and_reranker(tmp_path: Path):
    run, grads, samples = evidence_run(tmp_path)
    built = ev.load_or_build(run.path)
    read = ev.read_evidence(run.evidence_dir, ev.input_stamp(run))
    assert built is not None and read is not None
    fresh = Explainer(grads, samples)
    again = read.explainer(samples)
    pd.testing.assert_frame_equal(read.table, fresh.evidence(), rtol=1e-6)
    assert read.table["suggested_label"].equals(fresh.evidence()["suggested_label"])
    ids = np.arange(400)
    (labels, confidence), (want_labels, want_confidence) = again.suggest(ids), fresh.suggest(ids)
    np.testing.assert_array_equal(labels, want_labels)  # exact: computed before storing
    np.testing.assert_allclose(confidence, want_confidence, rtol=1e-6)
    for sample_id in (3, 17, 250):
        _same_explanation(again.explain(sample_id), fresh.explain(sample_id))
    assert read.rerank_pca.dtype == np.float32 and read.parts.probs.dtype == np.float32
    np.testing.assert_allclose(read.rerank_pca, pca_features(grads), rtol=1e-5, atol=1e-6)
    decided, bad = np.array([1, 2, 3, 4, 5, 6]), np.array([True, True, True, False, False, False])
    base = samples["loss"].to_numpy()
    old = Reranker.with_evidence(grads, base, fresh).scores(decided, bad)
    new = Reranker.with_evidence(grads, base, again, pca=read.rerank_pca).scores(decided, bad)
    np.testing.assert_allclose(new, old, rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(np.argsort(-new, kind="stable"), np.argsort(-old, kind="stable"))


def test_the_evidence_is_one_row_store_and_a_killed_build_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    from ogad_core.run.store import GradientStore

    run, grads, samples = evidence_run(tmp_path)
    monkeypatch.setattr(ev, "CHUNK_ROWS", 100)  # 4 chunks of the 400 rows
    searched: list[int] = []
    real_rows = Explainer.evidence_rows

    def killed_after_two(self: Explainer, rows: np.ndarray) -> dict:
        if len(searched) == 2:
            raise KeyboardInterrupt  # the process is killed during the third chunk
        searched.append(int(rows[0]))
        return real_rows(self, rows)

    monkeypatch.setattr(Explainer, "evidence_rows", killed_after_two)
    with pytest.raises(KeyboardInterrupt):
        ev.load_or_build(run.path)
    assert ev.read_evidence(run.evidence_dir, ev.input_stamp(run)) is None  # unfinished
    store = GradientStore.open_readonly(run.evidence_dir / ev.ROWS)
    assert store is not None and int(np.asarray(store.done).sum()) == 200

    searched.clear()
    monkeypatch.setattr(Explainer, "evidence_rows", real_rows)
    resumed = ev.load_or_build(run.path)
    assert resumed is not None
    fresh = Explainer(grads, samples)
    pd.testing.assert_frame_equal(resumed.table, fresh.evidence(), rtol=1e-6)
    read = ev.read_evidence(run.evidence_dir, ev.input_stamp(run))
    assert read is not None
    assert sorted(p.name for p in run.evidence_dir.iterdir()) == [
        "rows.done.npy",
        "rows.json",
        "rows.npy",
        "stamp.json",
    ]
    matrix = np.load(run.evidence_dir / ev.ROWS, mmap_mode="r")
    assert matrix.dtype == np.float32 and matrix.shape[0] == 400


def test_the_second_half_of_a_resumed_build_is_all_that_is_searched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    run, _, _ = evidence_run(tmp_path)
    monkeypatch.setattr(ev, "CHUNK_ROWS", 100)
    real_rows = Explainer.evidence_rows
    calls: list[int] = []

    def counted(self: Explainer, rows: np.ndarray) -> dict:
        if len(calls) == 2 and not getattr(counted, "resumed", False):
            raise KeyboardInterrupt
        calls.append(int(rows[0]))
        return real_rows(self, rows)

    monkeypatch.setattr(Explainer, "evidence_rows", counted)
    with pytest.raises(KeyboardInterrupt):
        ev.load_or_build(run.path)
    counted.resumed = True  # type: ignore[attr-defined]
    calls.clear()
    ev.load_or_build(run.path)
    assert calls == [200, 300]  # the chunks the killed build had written are not searched again


def test_an_old_format_folder_is_rebuilt_and_its_files_removed(tmp_path: Path):
    run, _, _ = evidence_run(tmp_path)
    run.evidence_dir.mkdir()
    for name in ev.OLD_FILES:
        (run.evidence_dir / name).write_bytes(b"old")
    stamp = {**(ev.input_stamp(run) or {}), "version": 1}
    (run.evidence_dir / ev.STAMP).write_text(json.dumps({"stamp": stamp, "files": {}}))
    assert ev.read_evidence(run.evidence_dir, ev.input_stamp(run)) is None
    assert ev.load_or_build(run.path) is not None
    assert not any((run.evidence_dir / name).exists() for name in ev.OLD_FILES)
    assert ev.read_evidence(run.evidence_dir, ev.input_stamp(run)) is not None


def test_evidence_is_reused_then_rebuilt_when_an_input_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    run, grads, samples = evidence_run(tmp_path)
    ev.load_or_build(run.path)
    stamp_file = run.evidence_dir / ev.STAMP
    written = stamp_file.stat().st_mtime_ns
    calls = []
    real_build = ev.build_evidence
    monkeypatch.setattr(
        ev, "build_evidence", lambda *a, **k: calls.append(1) or real_build(*a, **k)
    )
    ev.load_or_build(run.path)
    assert calls == [] and stamp_file.stat().st_mtime_ns == written  # reused

    changed = samples.copy()
    changed.loc[0, "label"] = (changed.loc[0, "label"] + 1) % 4
    changed.to_parquet(run.samples_path)
    assert ev.read_evidence(run.evidence_dir, ev.input_stamp(run)) is None  # stale: never used
    rebuilt = ev.load_or_build(run.path)
    assert calls == [1] and rebuilt is not None
    assert ev.read_evidence(run.evidence_dir, ev.input_stamp(run)) is not None

    np.save(run.gradients_path, grads * 2.0)
    assert ev.read_evidence(run.evidence_dir, ev.input_stamp(run)) is None


def test_a_damaged_or_replaced_file_is_never_used(tmp_path: Path):
    run, _, _ = evidence_run(tmp_path)
    ev.load_or_build(run.path)
    stamp = ev.input_stamp(run)
    rows = run.evidence_dir / ev.ROWS
    np.save(rows, np.zeros(np.load(rows, mmap_mode="r").shape, dtype=np.float32))  # a stray file
    assert ev.read_evidence(run.evidence_dir, stamp) is None
    ev.load_or_build(run.path)
    (run.evidence_dir / ev.STAMP).write_text("{not json")
    assert ev.read_evidence(run.evidence_dir, stamp) is None


def test_a_read_only_run_still_gets_its_evidence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    run, grads, samples = evidence_run(tmp_path)

    def refuse(*args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Read-only file system")

    monkeypatch.setattr(ev, "GradientStore", refuse)  # root ignores chmod: refuse instead
    if os.geteuid() != 0:
        run.path.chmod(0o555)
    try:
        found = ev.load_or_build(run.path)
    finally:
        run.path.chmod(0o755)
    assert found is not None and not (run.evidence_dir / ev.STAMP).exists()
    labels, _ = found.explainer(samples).suggest(np.array([0, 1, 2]))
    np.testing.assert_array_equal(labels, Explainer(grads, samples).suggest(np.array([0, 1, 2]))[0])


def test_ensure_evidence_writes_it_and_never_raises(tmp_path: Path):
    run, _, _ = evidence_run(tmp_path)
    ev.ensure_evidence(run.path)
    assert ev.read_evidence(run.evidence_dir, ev.input_stamp(run)) is not None
    run.gradients_path.unlink()
    ev.ensure_evidence(run.path)  # no gradients: nothing to do, nothing raised
    assert ev.input_stamp(run) is None


def test_the_dashboard_builds_a_big_run_in_the_background(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    from dashboard import review_aids
    from dashboard.context import Context
    from ogad_core.testing import make_run

    run = make_run(tmp_path / "run", kind="tabular", n=300)
    grads = np.random.default_rng(0).normal(size=(300, 6)).astype(np.float32)
    np.save(run / "gradients.npy", grads)
    monkeypatch.setattr(review_aids, "SYNC_ROWS", 10)  # every run is "big"
    path = str(run)
    build = review_aids._build(path)
    assert build is not None and build.thread is not None
    build.thread.join(timeout=120)
    shown = Context(path)  # what the pages pass down
    assert review_aids.evidence_ready(shown) and build.phase == 2
    assert (RunDir(run).evidence_dir / ev.STAMP).is_file()  # written once for the next process
    samples = pd.read_parquet(run / "samples.parquet")
    want = Explainer(grads, samples).explain(5)
    _same_explanation(review_aids.explanation(shown, 5), want)
    review_aids.prefetch_why(shown, [5, 6])
    assert review_aids.cards_why(shown, [5])[5].suggested_label == want.suggested_label


def test_compute_writes_the_evidence_of_its_run(digits_run: Path):
    run = RunDir(digits_run)
    found = ev.read_evidence(run.evidence_dir, ev.input_stamp(run))
    assert found is not None and found.parts.space_name == "feature"  # last-layer gradients
    assert len(found.table) == len(run.read_samples())
