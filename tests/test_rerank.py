"""The decision re-ranker (ogad_core.scoring.rerank): behaviour a reviewer relies on."""

from __future__ import annotations

import numpy as np

from ogad_core.scoring.rerank import Reranker, gaussian_ranks, queue_ranks


def _contradicting_queue(n: int = 800, seed: int = 1):
    """(embeddings (n, 8), base (n,), group (n,)): the detector puts cluster B (group 1) on top
    of the queue and cluster A (group 0) below it; the rest (group 2) scores low."""
    rng = np.random.default_rng(seed)
    group = rng.choice(3, n, p=[0.1, 0.1, 0.8])
    centers = np.array([[5.0, 0.0, 0.0], [0.0, 5.0, 0.0], [0.0, 0.0, 0.0]])
    emb = np.hstack([centers[group] + rng.normal(0, 1, (n, 3)), rng.normal(0, 1, (n, 5))])
    base = np.choose(group, [2.0, 4.0, 0.0]) + rng.normal(0, 0.3, n)
    return emb.astype(np.float32), base, group


def test_decisions_against_the_static_order_swap_the_clusters():
    emb, base, group = _contradicting_queue()
    a, b = np.flatnonzero(group == 0), np.flatnonzero(group == 1)
    assert base[b].min() > base[a].max()  # static: every B before every A
    # the reviewer rejects the top of the queue (B) and confirms a few of A
    decided = np.r_[b[:5], a[:3]]
    bad = np.r_[np.zeros(5, bool), np.ones(3, bool)]
    reranker = Reranker(emb, base, n_components=4)
    after = reranker.scores(decided, bad)
    rest_a, rest_b = a[3:], b[5:]
    assert after[rest_a].min() > after[rest_b].max()  # every undecided A now before every B
    ranks = queue_ranks(after)
    assert ranks[rest_a].max() < ranks[rest_b].min()


def test_confirmations_of_one_cluster_keep_it_first():
    emb, base, group = _contradicting_queue()
    b, rest = np.flatnonzero(group == 1), np.flatnonzero(group == 2)
    decided = np.r_[b[:5], rest[np.argsort(-base[rest])[:5]]]
    bad = np.r_[np.ones(5, bool), np.zeros(5, bool)]
    after = Reranker(emb, base, n_components=4).scores(decided, bad)
    # agreeing with the detector: B stays above the unrelated low-scoring rest
    assert np.median(after[b[5:]]) > np.percentile(after[rest], 95)
    assert np.isfinite(after).all() and after.shape == base.shape


def test_too_few_decisions_give_the_static_order():
    emb, base, group = _contradicting_queue()
    reranker = Reranker(emb, base, min_each=3)
    b = np.flatnonzero(group == 1)
    two_rejected = reranker.scores(b[:5], np.r_[True, True, True, False, False])
    assert reranker.model is None
    assert np.array_equal(queue_ranks(two_rejected), queue_ranks(base))
    assert np.array_equal(two_rejected, gaussian_ranks(base))


def test_rerank_is_deterministic():
    emb, base, group = _contradicting_queue()
    a, b = np.flatnonzero(group == 0), np.flatnonzero(group == 1)
    decided = np.r_[b[:6], a[:4]]
    bad = np.r_[np.zeros(6, bool), np.ones(4, bool)]
    first = Reranker(emb, base).scores(decided, bad)
    again = Reranker(emb, base).scores(decided, bad)
    assert np.array_equal(first, again)
    shuffled = np.random.default_rng(0).permutation(len(decided))
    reordered = Reranker(emb, base).scores(decided[shuffled], bad[shuffled])
    assert np.array_equal(queue_ranks(reordered), queue_ranks(first))


def test_queue_ranks_puts_high_scores_first_nan_last_ties_in_row_order():
    ranks = queue_ranks(np.array([0.5, np.nan, 2.0, 0.5, -1.0]))
    assert ranks.tolist() == [2, 5, 1, 3, 4]
    assert queue_ranks(np.array([])).shape == (0,)
