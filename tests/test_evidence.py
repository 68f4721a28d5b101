"""The review evidence: faiss neighbours, the evidence/ folder (reuse, staleness, read-only runs)
and the dashboard's use of it (torch-free, fast)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ogad_core.run.rundir import RunDir
from ogad_core.scoring import evidence as ev
from ogad_core.scoring.explain import Explainer
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


def test_evidence_matches_a_fresh_explainer_and_reranker(tmp_path: Path):
    run, grads, samples = evidence_run(tmp_path)
    built = ev.load_or_build(run.path)
    read = ev.read_evidence(run.evidence_dir, ev.input_stamp(run))
    assert built is not None and read is not None
    fresh = Explainer(grads, samples)
    again = read.explainer(samples)
    pd.testing.assert_frame_equal(read.table, fresh.evidence())
    ids = np.array([3, 17, 250])
    for a, b in zip(again.suggest(ids), fresh.suggest(ids), strict=True):
        np.testing.assert_array_equal(a, b)
    assert again.explain(17) == fresh.explain(17)
    np.testing.assert_array_equal(read.rerank_pca, pca_features(grads))
    decided, bad = np.array([1, 2, 3, 4, 5, 6]), np.array([True, True, True, False, False, False])
    base = samples["loss"].to_numpy()
    old = Reranker.with_evidence(grads, base, fresh).scores(decided, bad)
    new = Reranker.with_evidence(grads, base, again, pca=read.rerank_pca).scores(decided, bad)
    np.testing.assert_allclose(new, old)


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
    space = run.evidence_dir / "space.npy"
    np.save(space, np.zeros((400, 32), dtype=np.float32))  # another writer's or a stray file
    assert ev.read_evidence(run.evidence_dir, stamp) is None
    ev.load_or_build(run.path)
    (run.evidence_dir / ev.STAMP).write_text("{not json")
    assert ev.read_evidence(run.evidence_dir, stamp) is None


def test_a_read_only_run_still_gets_its_evidence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    run, grads, samples = evidence_run(tmp_path)

    def refuse(*args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Read-only file system")

    monkeypatch.setattr(ev, "write_table_atomic", refuse)  # root ignores chmod: refuse instead
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
    assert review_aids.explanation(shown, 5) == want
    review_aids.prefetch_why(shown, [5, 6])
    assert review_aids.cards_why(shown, [5])[5].suggested_label == want.suggested_label


def test_compute_writes_the_evidence_of_its_run(digits_run: Path):
    run = RunDir(digits_run)
    found = ev.read_evidence(run.evidence_dir, ev.input_stamp(run))
    assert found is not None and found.parts.space_name == "feature"  # last-layer gradients
    assert len(found.table) == len(run.read_samples())
