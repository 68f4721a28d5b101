"""The label type on text: the model's probabilities (a linear head on the real encoder's last
layer, fitted on the given labels, as a run's) averaged with the lexical view's (a bag-of-words
model predicted out of fold, :mod:`ogad_core.issues.lexical`). Real Rotten Tomatoes reviews (the
shipped 600-row sample), 60 labels flipped: the words rank the flipped reviews above the clean
ones better than the model alone."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from ogad_core.data.rotten_tomatoes import RT_SAMPLE_CSV
from ogad_core.issues.base import IssueContext
from ogad_core.issues.label import LabelIssue
from ogad_core.issues.lexical import lexical_probs

N_FLIP = 60
#: the last layer's width in the encoder's embeddings (all-MiniLM-L6-v2): the run's head reads it
LAST_LAYER = 384


@pytest.fixture(scope="module")
def reviews() -> tuple[list[str], np.ndarray, np.ndarray]:
    """The sample's texts, their true labels (fresh = 1) and (N, 384) last-layer embeddings."""
    from ogad_core.engine.text_encoder import encode_texts

    table = pd.read_csv(RT_SAMPLE_CSV)
    texts = table["text"].astype(str).tolist()
    true = (table["label"].astype(str) == "fresh").astype(int).to_numpy()
    embeddings = encode_texts(texts, encoder=None, progress=False)[:, -LAST_LAYER:]
    return texts, true, embeddings


def _flipped_run(reviews, seed: int, kind: str) -> tuple[IssueContext, np.ndarray]:  # type: ignore[no-untyped-def]
    """A run of ``kind`` with N_FLIP labels flipped and a linear head fitted on the given
    labels; (context, (N,) bool flipped)."""
    texts, true, embeddings = reviews
    flipped = np.zeros(len(texts), dtype=bool)
    flipped[np.random.default_rng(seed).permutation(len(texts))[:N_FLIP]] = True
    labels = np.where(flipped, 1 - true, true)
    probs = LogisticRegression(max_iter=1000).fit(embeddings, labels).predict_proba(embeddings)
    loss = -np.log(probs[np.arange(len(labels)), labels])
    samples = pd.DataFrame(
        {
            "sample_id": np.arange(len(texts)),
            "label": labels,
            "ref": texts,
            "pred": probs.argmax(axis=1),
            "confidence": probs.max(axis=1),
            "loss": loss,
        }
    )
    scores = pd.DataFrame({"loss_score": loss})
    ctx = IssueContext(samples=samples, label_names=["rotten", "fresh"], kind=kind, scores=scores)
    ctx.seed, ctx.embeddings = seed, embeddings
    return ctx, flipped


def test_the_words_rank_flipped_reviews_above_clean_ones_better_than_the_model_alone(
    reviews,  # type: ignore[no-untyped-def]
) -> None:
    """Label AUROC of the flipped reviews on each of four seeds: with the lexical view (a text
    run) above the model's loss alone (the same rows read as a run without text)."""
    for seed in range(4):
        ctx, flipped = _flipped_run(reviews, seed, "text")
        with_words = LabelIssue().fit(ctx)
        assert with_words.lexical_ is not None
        ctx_alone, _ = _flipped_run(reviews, seed, "tabular")
        alone = LabelIssue().fit(ctx_alone)
        assert alone.lexical_ is None
        assert roc_auc_score(flipped, with_words.scores_) > roc_auc_score(flipped, alone.scores_)


def test_the_lexical_view_is_out_of_fold_and_reads_the_words() -> None:
    """A text whose words occur only in itself gets no class from them (its own label unseen):
    probabilities near one half; a text sharing its words with one class's texts gets that
    class."""
    texts = ["good fine great"] * 20 + ["bad awful poor"] * 20 + ["zebra quokka"]
    labels = np.array([1] * 20 + [0] * 20 + [1])
    probs = lexical_probs(texts, labels, 2, seed=0)
    assert probs.shape == (41, 2) and np.allclose(probs.sum(axis=1), 1.0)
    assert (probs[:20, 1] > 0.8).all() and (probs[20:40, 0] > 0.8).all()
    assert abs(probs[40, 1] - 0.5) < 0.1


def test_a_class_rarer_than_the_folds_gets_probabilities_without_a_warning() -> None:
    """Two texts of a class in 52 (fewer than the five folds): each is scored by a model that
    never saw it, and nothing warns (a user's small class is no fault)."""
    texts = ["good film"] * 50 + ["bad movie", "bad film"]
    labels = np.array([0] * 50 + [1] * 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        probs = lexical_probs(texts, labels, 3, seed=0)
    assert probs.shape == (52, 3) and np.allclose(probs.sum(axis=1), 1.0)
    assert (probs[:, 2] == 0).all() and (probs[:50, 0] > 0.5).all()
