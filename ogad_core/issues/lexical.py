"""A second, lexical view of a text run's labels: the probabilities of a bag-of-words model (word
1-2-grams, TF-IDF, logistic regression) predicted out of fold, so no text is scored by a model
that saw its own label. The run's model reads the encoder's sentence embedding; this one reads
the words, so its errors are partly independent of the encoder's: a flipped review both views
call the other class is likelier flipped than one only the encoder doubts. The label type
averages the two (:data:`LEXICAL_WEIGHT`). Measured (docs/benchmarks.md, "A lexical view of the
text labels"; the six kept text runs): flipped top-K 0.26 -> 0.29 (main mix) and 0.28 -> 0.32
(held-out), label AUROC and All precision up on both.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

#: the lexical view's share of the averaged probabilities (the model's: 1 - this); measured
#: 0.3-0.5 all raise the flipped top-K on both text mixes, 0.3 keeps the held-out AUROC
LEXICAL_WEIGHT = 0.3
#: out-of-fold predictions from this many folds (each model fitted on the other 4/5)
LEXICAL_FOLDS = 5
#: inverse L2 strength of the logistic regression (sklearn's C; 1.0 scores the held-out
#: mix's flips with AUROC 0.73, this 0.76)
LEXICAL_C = 4.0
#: each fold's model is fitted on at most this many seeded rows of the other folds: the cost
#: above it is the TF-IDF and the predictions, linear in the texts (the whole view: 50,000
#: generated texts 4.5 CPU s, 200,000 13.0)
LEXICAL_TRAIN_ROWS = 20_000
#: hashed vocabulary size: memory bounded at any number of texts (words and word pairs)
LEXICAL_FEATURES = 2**20


def lexical_probs(
    texts: list[str], labels: np.ndarray, n_classes: int, seed: int = 0
) -> np.ndarray:
    """(N, K) each text's class probabilities from a bag-of-words logistic regression fitted on
    the other folds (at most :data:`LEXICAL_TRAIN_ROWS` of their rows; ``labels``: (N,) the
    given labels; a class a fold's training part lacks gets 0)."""
    from sklearn.model_selection import StratifiedKFold

    words = _tfidf(texts)
    out = np.zeros((len(labels), n_classes), dtype=np.float64)
    n_folds = min(LEXICAL_FOLDS, int(np.bincount(labels).max()))
    if n_folds < 2:
        out[np.arange(len(labels)), labels] = 1.0
        return out
    folds = StratifiedKFold(n_folds, shuffle=True, random_state=seed)
    rng = np.random.default_rng(seed)
    with warnings.catch_warnings():  # a class rarer than the folds is absent from some: fine
        warnings.filterwarnings("ignore", "The least populated class", UserWarning)
        splits = list(folds.split(np.zeros(len(labels)), labels))
    with threadpool_limits(1):  # vector-sized BLAS calls: more threads only wait (4x the CPU)
        for train, test in splits:
            if len(train) > LEXICAL_TRAIN_ROWS:
                train = np.sort(rng.choice(train, LEXICAL_TRAIN_ROWS, replace=False))
            out[test] = _fold_probs(words, labels, train, test, n_classes)
    return out


def _tfidf(texts: list[str]) -> Any:
    """(N, F) sparse TF-IDF of the texts' hashed word 1-2-grams (sublinear term frequency, rows
    of unit length; IDF from all texts: it reads no label), only the F <= LEXICAL_FEATURES
    columns some text uses (the optimiser's work is per column: 2-4x cheaper, the same fit)."""
    from sklearn.feature_extraction.text import HashingVectorizer, TfidfTransformer

    hashed = HashingVectorizer(
        ngram_range=(1, 2), n_features=LEXICAL_FEATURES, alternate_sign=False, norm=None
    ).transform(texts)
    words = TfidfTransformer(sublinear_tf=True).fit_transform(hashed).tocsc()
    used = np.flatnonzero(np.diff(words.indptr))  # the hashed columns some text uses
    return words[:, used].tocsr()


def _fold_probs(
    words: Any, labels: np.ndarray, train: np.ndarray, test: np.ndarray, n_classes: int
) -> np.ndarray:
    """(len(test), K) probabilities of a logistic regression fitted on the ``train`` rows of
    ``words`` ((N, F) sparse TF-IDF)."""
    from sklearn.linear_model import LogisticRegression

    out = np.zeros((len(test), n_classes), dtype=np.float64)
    classes = np.unique(labels[train])
    if classes.size < 2:
        out[:, classes[0]] = 1.0
        return out
    model = LogisticRegression(C=LEXICAL_C, max_iter=1000).fit(words[train], labels[train])
    out[:, model.classes_] = model.predict_proba(words[test])
    return out
