"""The ``label`` issue type: the neighbours' label vote beside the loss, and where the samples
another issue type explains rank."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ogad_core.issues.base import IssueContext
from ogad_core.issues.check import small_context
from ogad_core.issues.label import LabelIssue, neighbour_vote
from ogad_core.issues.queue import all_queue
from ogad_core.issues.table import fit_issue_types


def _hard_and_misfiled(n: int = 90) -> tuple[IssueContext, int, int]:
    """Sample ``misfiled`` is a class-0 sample filed as 1 that the model has fitted (loss 1.0,
    predicted 1); sample ``hard`` is a class-1 sample filed as 1 that the model gets wrong
    (loss 2.0, predicted 2). A few more clean samples the model gets wrong keep the model's
    error near the vote's."""
    ctx = small_context(n=n)
    misfiled, hard = 3, 4  # classes 0 and 1 (label = i % 3)
    labels = ctx.samples["label"].to_numpy().copy()
    pred = labels.copy()
    loss = ctx.scores["loss_score"].to_numpy().copy()
    labels[misfiled] = pred[misfiled] = 1
    loss[misfiled], loss[hard] = 1.0, 2.0
    pred[hard] = 2
    for i in (7, 8, 10):  # other clean samples the model gets wrong, with a low loss
        pred[i] = (labels[i] + 1) % 3
        loss[i] = 0.8
    ctx.samples["label"], ctx.samples["pred"], ctx.samples["loss"] = labels, pred, loss
    ctx.scores["loss_score"] = loss
    return ctx, misfiled, hard


def test_the_neighbours_vote_ranks_a_fitted_wrong_label_above_a_hard_clean_sample() -> None:
    ctx, misfiled, hard = _hard_and_misfiled()
    alone = LabelIssue(knn="off").fit(ctx)
    assert alone.scores_[hard] > alone.scores_[misfiled]  # the loss alone has it backwards
    est = LabelIssue().fit(ctx)  # auto: the vote is as accurate as the model here
    assert est.agree_ is not None and est.knn_error_ <= 1.25 * est.model_error_
    assert est.scores_[misfiled] > est.scores_[hard]
    assert int(np.argmax(est.scores_)) == misfiled
    line = est.explain(misfiled)
    assert "loss score 1; " in line and f"of its {est.knn_k_} nearest samples carry" in line


def test_a_vote_less_accurate_than_the_model_is_left_out() -> None:
    """Features that carry no class (shuffled across samples): the vote errs far more often
    than the model, so ``auto`` ranks by the loss alone; ``on`` forces the vote in."""
    ctx, misfiled, hard = _hard_and_misfiled()
    rng = np.random.default_rng(1)
    ctx.features = rng.permutation(np.asarray(ctx.features))
    est = LabelIssue().fit(ctx)
    assert est.knn_error_ > 1.25 * est.model_error_
    assert est.agree_ is None
    assert np.array_equal(est.scores_, LabelIssue(knn="off").fit(ctx).scores_)
    assert LabelIssue(knn="on").fit(ctx).agree_ is not None


def test_the_vote_counts_each_samples_neighbours_that_share_its_label() -> None:
    idx = np.array([[1, 2, 3], [0, 2, -1], [0, 1, 3], [0, 1, 2]])
    labels = np.array([0, 0, 1, 1])
    agree, error = neighbour_vote(idx, labels)
    np.testing.assert_allclose(agree, [1 / 3, 1 / 2, 1 / 3, 1 / 3])
    assert error == 0.75  # plurality labels 1, 0 (a tie: the lower), 0, 0


def test_samples_explained_elsewhere_rank_after_every_sample_the_model_predicts_otherwise() -> None:
    """A conflicting duplicate pair (0 / 1) with the highest losses is reviewed on its set's
    card: in the label queue it comes after all 15 samples the model predicts otherwise (more
    than the flags), in its own order, not right after the flags."""
    ctx = small_context()
    ctx.samples.loc[1, "label"] = 2
    loss = ctx.scores["loss_score"].to_numpy().copy()
    loss[[0, 1]] = [9.0, 8.0]
    wrong = np.arange(20, 35)
    loss[wrong] = np.linspace(3.0, 1.6, len(wrong))
    pred = ctx.samples["label"].to_numpy().copy()
    pred[wrong] = (pred[wrong] + 1) % 3
    ctx.samples["pred"], ctx.samples["loss"], ctx.scores["loss_score"] = pred, loss, loss
    fitted = {e.name: e for e in fit_issue_types(ctx, ["duplicate", LabelIssue(knn="off")])}
    label = fitted["label"]
    n_flag = int(label.flagged_.sum())
    assert n_flag < len(wrong)  # the target is smaller: "after the flags" would be too early
    order = list(np.argsort(-label.scores_, kind="stable"))
    assert set(order[: len(wrong)]) == set(wrong)
    assert order[len(wrong) : len(wrong) + 2] == [0, 1]
    assert not label.flagged_[[0, 1]].any()


def test_all_lists_the_label_flags_after_the_other_types() -> None:
    """Within a tier the types interleave by relative position; every label flag comes after
    the other types' flags, whatever its rank; a sample flagged by both is placed by the
    other type."""
    rows = [
        ("label", [0, 1, 2, 3]),
        ("duplicate", [10, 11, 2, 12]),
        ("corrupt", [20, 21]),
    ]
    parts = [
        pd.DataFrame(
            {"sample_id": ids, "issue": name, "rank": np.arange(1, len(ids) + 1), "flagged": True}
        )
        for name, ids in rows
    ]
    queue = all_queue(pd.concat(parts, ignore_index=True))
    assert list(queue["sample_id"]) == [10, 20, 11, 2, 21, 12, 0, 1, 3]
    assert list(queue["issue"].iloc[-3:]) == ["label"] * 3
    assert queue["position"].is_monotonic_increasing
