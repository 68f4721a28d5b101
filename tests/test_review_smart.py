"""Review target, decision re-ranking, explanations and suggested labels (torch-free, fast)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ogad_core.errors import DataError
from ogad_core.scoring.explain import Explainer, last_layer_parts
from ogad_core.scoring.rerank import Reranker, gaussian_ranks, rerank_scores
from ogad_core.scoring.target import (
    MIN_TARGET,
    estimate_review_target,
    pseudo_pred_probs,
)


def planted_run(n: int = 1200, classes: int = 4, hidden: int = 16, noise: float = 0.15, seed=0):
    """(gradients (n, C*(H+1)) in the last-layer layout, samples with is_flipped / clean_label).

    Features are class blobs; the model is a fixed linear head that predicts the true class;
    a ``noise`` share of the given labels is flipped to another class.
    """
    rng = np.random.default_rng(seed)
    true = rng.integers(0, classes, n)
    centers = rng.normal(0, 3, (classes, hidden))
    h = centers[true] + rng.normal(0, 1, (n, hidden))
    logits = h @ centers.T / 3.0
    logits -= logits.max(axis=1, keepdims=True)
    p = np.exp(logits)
    p /= p.sum(axis=1, keepdims=True)
    flipped = rng.random(n) < noise
    label = true.copy()
    label[flipped] = (true[flipped] + rng.integers(1, classes, flipped.sum())) % classes
    dz = p - np.eye(classes)[label]
    grads = np.hstack([(dz[:, :, None] * h[:, None, :]).reshape(n, -1), dz]).astype(np.float32)
    samples = pd.DataFrame(
        {
            "sample_id": np.arange(n, dtype=np.int64),
            "label": label,
            "label_name": [f"c{c}" for c in label],
            "pred": p.argmax(axis=1),
            "confidence": p.max(axis=1),
            "loss": -np.log(p[np.arange(n), label]),
            "is_flipped": flipped,
            "clean_label": true,
        }
    )
    return grads, samples, p, h


# ---- review target ---------------------------------------------------------------------------


@pytest.mark.parametrize("noise", [0.05, 0.15, 0.3])
def test_target_recovers_planted_rate(noise):
    _, samples, _, _ = planted_run(n=2000, noise=noise, seed=1)
    target = estimate_review_target(samples, None, "loss")
    injected = samples["is_flipped"].mean()
    assert target.method == "confident_joint"
    assert abs(target.noise_rate - injected) < 0.03
    assert target.n_target == max(MIN_TARGET, int(np.ceil(target.noise_rate * len(samples))))
    assert f"{len(samples):,}" in target.note


def test_target_flags_a_memorising_model_as_a_lower_bound():
    _, samples, _, _ = planted_run(n=1000, noise=0.1, seed=2)
    fit = (samples["pred"] == samples["label"]).mean()
    honest = estimate_review_target(samples, None, "loss", test_accuracy=fit + 0.05)
    assert not honest.lower_bound and "memorised" not in honest.note
    memorised = samples.assign(pred=samples["label"])  # predicts every given label
    target = estimate_review_target(memorised, None, "loss", test_accuracy=0.7)
    assert target.lower_bound and "lower bound" in target.note
    assert target.noise_rate < 0.05  # what a memorising model's predictions can show


def test_target_falls_back_to_the_score_mixture():
    rng = np.random.default_rng(0)
    n, bad = 2000, 200
    scores = pd.DataFrame(
        {
            "sample_id": np.arange(n),
            "l2_score": np.r_[rng.normal(0, 1, n - bad), rng.normal(8, 1, bad)],
        }
    )
    samples = pd.DataFrame({"sample_id": np.arange(n), "label": np.zeros(n, dtype=int)})
    target = estimate_review_target(samples, scores, "l2")
    assert target.method == "score_mixture"
    assert abs(target.noise_rate - bad / n) < 0.02
    with pytest.raises(DataError, match="cannot estimate"):
        estimate_review_target(samples, None, "l2")


def test_pseudo_pred_probs_keep_the_two_known_probabilities():
    _, samples, p, _ = planted_run(n=300)
    labels, probs = pseudo_pred_probs(samples, n_classes=4)
    rows = np.arange(len(samples))
    assert np.allclose(probs.sum(axis=1), 1.0)
    assert np.allclose(probs[rows, samples["pred"]], p.max(axis=1), atol=1e-9)
    assert np.allclose(probs[rows, labels], p[rows, samples["label"]], atol=1e-9)


# ---- re-ranking ------------------------------------------------------------------------------


def _two_cluster_queue(n: int = 600, seed: int = 0):
    """Embeddings with two high-scoring clusters: A (bad) and B (good), and a low-scoring rest."""
    rng = np.random.default_rng(seed)
    group = rng.choice(3, n, p=[0.1, 0.1, 0.8])  # 0 = A, 1 = B, 2 = rest
    centers = np.array([[6.0, 0.0, 0.0], [0.0, 6.0, 0.0], [0.0, 0.0, 0.0]])
    emb = centers[group] + rng.normal(0, 1, (n, 3))
    emb = np.hstack([emb, rng.normal(0, 1, (n, 5))]).astype(np.float32)
    base = np.where(group < 2, 3.0, 0.0) + rng.normal(0, 1, n)
    return emb, base, group


def test_rerank_moves_planted_bad_neighbours_up():
    emb, base, group = _two_cluster_queue()
    reranker = Reranker(emb, base, n_components=4)
    a, b = np.flatnonzero(group == 0), np.flatnonzero(group == 1)
    decided = np.r_[a[:4], b[:4]]
    bad = np.r_[np.ones(4, bool), np.zeros(4, bool)]
    before = gaussian_ranks(base)
    after = reranker.scores(decided, bad)
    rest_a, rest_b = a[4:], b[4:]
    # before: the two clusters are mixed; after: every undecided A sample is above every B one
    assert before[rest_a].min() < before[rest_b].max()
    assert after[rest_a].min() > after[rest_b].max()
    assert reranker.model is not None


def test_rerank_keeps_the_detector_order_until_both_kinds_are_decided():
    emb, base, group = _two_cluster_queue()
    reranker = Reranker(emb, base, min_each=2)
    only_bad = reranker.scores(np.array([0, 1, 2]), np.array([True, True, True]))
    assert np.array_equal(np.argsort(-only_bad, kind="stable"), np.argsort(-base, kind="stable"))
    # a later decision about the same sample replaces the earlier one
    flip_flop = reranker.scores(np.array([0, 1, 0]), np.array([True, False, False]))
    assert reranker.model is None
    assert np.array_equal(flip_flop, gaussian_ranks(base))


def test_rerank_rejects_bad_input():
    emb, base, _ = _two_cluster_queue(n=50)
    with pytest.raises(DataError, match="unknown sample_id"):
        Reranker(emb, base).scores(np.array([999]), np.array([True]))
    with pytest.raises(DataError, match="must be"):
        Reranker(emb[:10], base)


def test_rerank_scores_function_matches_the_class_and_caches():
    emb, base, group = _two_cluster_queue()
    ids = np.r_[np.flatnonzero(group == 0)[:3], np.flatnonzero(group == 1)[:3]]
    bad = np.r_[np.ones(3, bool), np.zeros(3, bool)]
    direct = Reranker(emb, base).scores(ids, bad)
    first = rerank_scores(emb, base, ids, bad)
    second = rerank_scores(emb, base, ids, bad)
    assert np.allclose(first, direct) and np.allclose(second, direct)


def test_rerank_with_evidence_uses_the_explainer():
    grads, samples, _, _ = planted_run(n=400)
    explainer = Explainer(grads, samples)
    reranker = Reranker.with_evidence(grads, samples["loss"].to_numpy(), explainer)
    flipped = samples["is_flipped"].to_numpy()
    ids = np.r_[np.flatnonzero(flipped)[:5], np.flatnonzero(~flipped)[:5]]
    scores = reranker.scores(ids, flipped[ids])
    assert scores.shape == (len(samples),)
    assert np.isfinite(scores).all()
    assert reranker.features.shape[1] == 1 + 16 + 3  # rank, PCA, margin / agreement / loss
    via_function = rerank_scores(
        grads, samples["loss"].to_numpy(), ids, flipped[ids], explainer=explainer
    )
    assert np.allclose(via_function, scores)


# ---- explanations and suggestions -------------------------------------------------------------


def test_last_layer_parts_recover_probabilities_and_features():
    grads, samples, p, h = planted_run(n=300)
    parts = last_layer_parts(grads, samples["label"].to_numpy(), 4)
    assert parts is not None
    probs, feats = parts
    assert np.allclose(probs, p, atol=1e-5)
    assert np.allclose(feats, h, atol=1e-3 * np.abs(h).max())
    projected = grads @ np.random.default_rng(0).normal(size=(grads.shape[1], 24))
    assert last_layer_parts(projected, samples["label"].to_numpy(), 4) is None


def test_suggestions_recover_planted_true_labels():
    grads, samples, _, _ = planted_run(n=1200, noise=0.2)
    explainer = Explainer(grads, samples)
    labels, confidence = explainer.suggestions()
    flipped = samples["is_flipped"].to_numpy()
    clean = samples["clean_label"].to_numpy()
    assert explainer.space_name == "feature"
    assert (labels == clean)[flipped].mean() >= 0.9
    assert (labels == samples["label"].to_numpy())[~flipped].mean() >= 0.9
    assert ((confidence > 0) & (confidence <= 1)).all()
    page = np.array([5, 17, 3, 400])
    fresh = Explainer(grads, samples)  # nothing cached: the page's own neighbours
    page_labels, page_confidence = fresh.suggest(page)
    assert np.array_equal(page_labels, labels[page])
    assert np.allclose(page_confidence, confidence[page])


def test_suggestions_without_the_last_layer_layout():
    grads, samples, _, _ = planted_run(n=600, noise=0.15)
    projected = (grads @ np.random.default_rng(0).normal(size=(grads.shape[1], 32))).astype(
        np.float32
    )
    explainer = Explainer(projected, samples)
    labels, _ = explainer.suggestions()
    flipped = samples["is_flipped"].to_numpy()
    assert explainer.space_name == "gradient"
    assert (labels == samples["clean_label"].to_numpy())[flipped].mean() >= 0.8


def test_explanation_fields_are_consistent():
    grads, samples, p, _ = planted_run(n=500)
    scores = pd.DataFrame(
        {"sample_id": samples["sample_id"], "loss_score": samples["loss"]}
    ).assign(loss_rank=lambda t: t["loss_score"].rank(ascending=False, method="first"))
    shuffled = samples.sample(frac=1.0, random_state=0)  # any row order is accepted
    explainer = Explainer(grads, shuffled, scores, n_neighbors=7)
    labels, confidence = explainer.suggestions()
    for sid in np.flatnonzero(samples["is_flipped"].to_numpy())[:10]:
        ex = explainer.explain(int(sid))
        row = samples.loc[sid]
        assert (ex.sample_id, ex.given, ex.pred) == (sid, row["label"], row["pred"])
        assert ex.loss == pytest.approx(row["loss"])
        others = np.delete(p[sid], ex.given)
        assert ex.margin == pytest.approx(p[sid, ex.given] - others.max(), abs=1e-5)
        assert (ex.margin < 0) == (ex.pred != ex.given)
        assert 0 < ex.grad_norm_percentile <= 100
        assert len(ex.neighbours) == 7 and sid not in [s for s, _ in ex.neighbours]
        assert all(samples.loc[s, "label"] == label for s, label in ex.neighbours)
        assert (ex.suggested_label, ex.suggestion_confidence) == pytest.approx(
            (labels[sid], confidence[sid])
        )
        assert any("ranked #" in r and "by loss" in r for r in ex.reasons)
        assert explainer.name(ex.given) == f"c{ex.given}"
    with pytest.raises(DataError, match="unknown sample_id"):
        explainer.explain(10_000)


def test_grad_norm_percentile_is_within_the_given_class():
    grads, samples, _, _ = planted_run(n=400)
    explainer = Explainer(grads, samples)
    norms = np.linalg.norm(grads.astype(np.float64), axis=1)
    for label in range(4):
        rows = np.flatnonzero(samples["label"].to_numpy() == label)
        top = rows[np.argmax(norms[rows])]
        assert explainer.explain(int(top)).grad_norm_percentile == pytest.approx(100.0)


def test_explainer_needs_the_prediction_columns():
    grads, samples, _, _ = planted_run(n=50)
    with pytest.raises(DataError, match="'loss'"):
        Explainer(grads, samples.drop(columns=["loss"]))


def test_neighbour_search_paths_agree():
    grads, samples, _, _ = planted_run(n=700)
    explainer = Explainer(grads, samples, n_neighbors=5)
    rows = np.arange(300)  # more than one numpy block: the tree index
    many = explainer.neighbour_rows(rows)
    few = np.vstack([explainer.neighbour_rows(rows[i : i + 50]) for i in range(0, 300, 50)])
    assert many.shape == few.shape == (300, 5)
    assert (many == few).mean() > 0.99  # equal up to ties
    assert not (many == rows[:, None]).any()
