"""``check_issue_type``: does a class follow the issue-type contract? (as scikit-learn's
``check_estimator``). A plugin author runs it on their class before using it with
``ogad issues DIR --issue-type mypkg.module:MyIssue``."""

from __future__ import annotations

import re
from typing import cast

import numpy as np
import pandas as pd
from sklearn.base import clone

from ogad_core.issues.base import IssueContext, IssueType

_NAME = re.compile(r"^[a-z][a-z0-9_-]*$")


def small_context(n: int = 60, seed: int = 0) -> IssueContext:
    """A small image-like context: 3 classes, features, gradients, signatures, scores and
    input properties (one exact duplicate pair, one dark image, one far-away sample)."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 3
    feats = np.abs(rng.normal(0, 0.3, size=(n, 8))).astype(np.float32)  # ReLU-like features
    feats[np.arange(n), 2 * labels] += 3.0  # class c lives on dimensions 2c, 2c + 1
    feats[np.arange(n), 2 * labels + 1] += 3.0
    feats[1] = feats[0]
    feats[-1] = 0.1
    feats[-1, 6:] = 5.0  # a direction no class uses
    sig = rng.uniform(0, 1, size=(n, 256)).astype(np.float32)
    sig[1] = sig[0]
    loss = rng.exponential(0.1, size=n)
    samples = pd.DataFrame(
        {
            "sample_id": np.arange(n),
            "ref": [f"img_{i}.png" for i in range(n)],
            "label": labels,
            "pred": labels,
            "confidence": np.exp(-loss),
            "loss": loss,
        }
    )
    inputs = pd.DataFrame(
        {
            "sample_id": np.arange(n),
            "content_hash": [f"{i:016x}" for i in range(n)],
            "width": 28,
            "height": 28,
            "mean": rng.uniform(0.4, 0.6, n),
            "std": rng.uniform(0.2, 0.3, n),
            "sharpness": rng.uniform(1.0, 1.5, n),
            "decoded": True,
        }
    )
    hashes = inputs["content_hash"].to_numpy().copy()
    hashes[1] = hashes[0]
    inputs["content_hash"] = hashes
    inputs["mean"] = np.where(np.arange(n) == 2, 0.0, inputs["mean"])
    inputs["std"] = np.where(np.arange(n) == 2, 0.0, inputs["std"])
    scores = pd.DataFrame({"sample_id": np.arange(n), "loss_score": loss})
    return IssueContext(
        samples=samples,
        label_names=["a", "b", "c"],
        gradients=np.hstack([feats, loss[:, None]]).astype(np.float32),
        features=feats,
        inputs=inputs,
        signatures=sig,
        scores=scores,
        detector="loss",
        seed=seed,
    )


def check_issue_type(issue_type: type[IssueType] | IssueType) -> None:
    """Raise AssertionError naming the first broken rule of the issue-type contract
    (:mod:`ogad_core.issues.base`); returns None when ``issue_type`` follows it."""
    est = cast(IssueType, issue_type() if isinstance(issue_type, type) else issue_type)
    cls = type(est)
    assert isinstance(est, IssueType), f"{cls.__name__} must subclass IssueType"
    assert _NAME.match(est.name or ""), f"{cls.__name__}.name must be lower-case, got {est.name!r}"
    assert est.title and est.threshold_doc, f"{cls.__name__} needs a title and a threshold_doc"
    clone(est)  # parameters round-trip through get_params (sklearn's rule: store, never alter)
    ctx = small_context()
    before = ctx.samples.copy()
    fitted = est.fit(ctx)
    assert fitted is est, f"{cls.__name__}.fit must return self"
    _check_fitted(est, ctx.n)
    assert ctx.samples.equals(before), f"{cls.__name__}.fit must not change the context"
    again = clone(est).fit(small_context())
    assert np.array_equal(again.scores_, est.scores_), f"{cls.__name__} is not deterministic"
    for i in range(ctx.n):
        line = est.explain(i)
        assert isinstance(line, str) and line and "\n" not in line, (
            f"{cls.__name__}.explain({i}) must be one non-empty line"
        )


def _check_fitted(est: IssueType, n: int) -> None:
    name = type(est).__name__
    scores, flagged, sets = est.scores_, est.flagged_, est.set_ids_
    assert isinstance(scores, np.ndarray) and scores.shape == (n,), f"{name}.scores_ must be (N,)"
    assert np.isfinite(scores).all(), f"{name}.scores_ must be finite"
    assert flagged.shape == (n,) and flagged.dtype == bool, f"{name}.flagged_ must be (N,) bool"
    assert isinstance(est.threshold_, float), f"{name}.threshold_ must be a float"
    assert (scores[flagged] >= est.threshold_).all(), f"{name}: a flagged score is below threshold_"
    assert (scores[~flagged] <= est.threshold_).all(), f"{name}: an unflagged score is above it"
    assert sets.shape == (n,) and np.issubdtype(sets.dtype, np.integer), f"{name}.set_ids_"
    in_sets = sets >= 0
    assert (flagged[in_sets]).all(), f"{name}: a sample in a set must be flagged"
    if in_sets.any():
        counts = np.unique(sets[in_sets], return_counts=True)[1]
        assert (counts >= 2).all(), f"{name}: a set needs at least two samples"
