"""A sample flagged both ``corrupt`` and ``outlier`` has one primary type: it ranks in full in
that queue and after the other flags in the second one. Corrupt when its shape still resembles
the class it is filed under (a damaged member of the class), outlier when it resembles none."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ogad_core.issues.base import IssueContext
from ogad_core.issues.corrupt import CorruptIssue
from ogad_core.issues.outlier import OutlierIssue, resembles_its_label
from ogad_core.issues.properties import array_properties
from ogad_core.issues.table import fit_issue_types

N_CLEAN, N_DAMAGED, N_FOREIGN = 800, 12, 12


SHAPES = ["bar", "column", "cross", "box", "diagonal", "anti-diagonal", "x", "corner"]


def _shape(kind: int, rng: np.random.Generator) -> np.ndarray:
    """(28, 28) a jittered shape of :data:`SHAPES` on black, values in [0, 1]."""
    img = np.zeros((28, 28), dtype=np.float32)
    r, c = (int(v) for v in rng.integers(10, 18, 2))
    w = int(rng.integers(2, 4))
    diag = np.abs(np.subtract.outer(np.arange(28), np.arange(28)) - (r - 14)) < w
    if kind in (0, 2):
        img[r : r + w, 4:24] = 1.0
    if kind in (1, 2):
        img[4:24, c : c + w] = 1.0
    if kind == 3:
        img[6:22, 6:22], img[6 + w : 22 - w, 6 + w : 22 - w] = 1.0, 0.0
    if kind in (4, 6):
        img[diag] = 1.0
    if kind in (5, 6):
        img[diag[:, ::-1]] = 1.0
    if kind == 7:
        img[4 : 4 + w, 4:24], img[4:24, 4 : 4 + w] = 1.0, 1.0
    padded = np.pad(img, 1)  # a 3 x 3 box blur: soft strokes, as a pen's
    return sum(padded[i : i + 28, j : j + 28] for i in range(3) for j in range(3)) / 9.0


def _mix(seed: int = 0) -> tuple[IssueContext, np.ndarray, np.ndarray]:
    """Eight classes of shapes; ``damaged``: shapes of their own class with half the pixels
    replaced by noise; ``foreign``: bright blocky fields (photo-like) filed under random
    classes. The model's features put both off every class. Returns (context, damaged rows,
    foreign rows)."""
    rng = np.random.default_rng(seed)
    n = N_CLEAN + N_DAMAGED + N_FOREIGN
    labels = rng.integers(0, len(SHAPES), n)
    images = np.stack([_shape(int(y), rng) for y in labels])
    images = np.clip(images + rng.normal(0, 0.02, images.shape), 0, 1).astype(np.float32)
    damaged = np.arange(N_CLEAN, N_CLEAN + N_DAMAGED)
    foreign = np.arange(N_CLEAN + N_DAMAGED, n)
    for i in damaged:
        mask = rng.random((28, 28)) < 0.5
        images[i][mask] = rng.random(int(mask.sum()))
    for i in foreign:  # a smooth random field: a 4 x 4 grid upsampled
        field = np.kron(rng.random((4, 4)), np.ones((7, 7)))
        images[i] = 0.86 + 0.12 * field
    table, signatures = array_properties(images[:, None])
    centres = rng.normal(0, 3.0, (len(SHAPES), 16))
    feats = centres[labels] + rng.normal(size=(n, 16))
    feats[N_CLEAN:] = rng.normal(0, 3.0, (n - N_CLEAN, 16))  # off every class
    samples = pd.DataFrame({"sample_id": np.arange(n), "label": labels})
    ctx = IssueContext(
        samples=samples,
        label_names=SHAPES,
        features=np.abs(feats).astype(np.float32),
        inputs=table,
        signatures=signatures,
    )
    return ctx, damaged, foreign


def _top(scores: np.ndarray, k: int) -> np.ndarray:
    return np.argsort(-scores, kind="stable")[:k]


def test_the_shape_decides_which_queue_ranks_a_sample_in_full() -> None:
    """Both groups are flagged by some type; the outlier queue ranks the foreign inputs
    first, the corrupt queue the damaged ones (the former rule put every corrupt-flagged
    sample after the other outliers, and the bright fields' huge brightness z first in the
    corrupt queue). A corrupt-first sample is not flagged as an outlier and ranks last there
    (before, still flagged there, it took the outlier queue's top-K places)."""
    for seed in (0, 1):
        ctx, damaged, foreign = _mix(seed)
        # features and pixels: both groups far from every class in both (the construction)
        both = OutlierIssue(spaces=("features", "pixels"))
        corrupt, outlier = fit_issue_types(ctx, ["corrupt", both])
        assert isinstance(corrupt, CorruptIssue) and isinstance(outlier, OutlierIssue)
        for est in (corrupt, outlier):
            assert not est.flagged_[:N_CLEAN].any()
        assert corrupt.flagged_[damaged].all() and corrupt.flagged_[foreign].all()
        assert outlier.flagged_[foreign].mean() >= 0.8
        assert not outlier.flagged_[outlier.deferred_].any()  # corrupt first: not an outlier
        rest = outlier.scores_[~outlier.deferred_]
        assert (outlier.scores_[outlier.deferred_] < rest.min()).all()  # ranked last
        assert np.isin(_top(outlier.scores_, N_FOREIGN), foreign).mean() >= 0.8, seed
        assert np.isin(_top(corrupt.scores_, N_DAMAGED), damaged).mean() >= 0.8, seed
        ours = foreign[corrupt.deferred_[foreign]]  # outlier first
        theirs = damaged[outlier.deferred_[damaged]]  # corrupt first
        assert len(ours) >= 0.8 * N_FOREIGN and len(theirs) >= 0.8 * N_DAMAGED
        assert "outlier first" in corrupt.explain(int(ours[0]))
        assert "first" not in outlier.explain(int(ours[0]))
        assert "corrupt first" in outlier.explain(int(theirs[0]))


def test_a_corrupt_first_sample_ranks_last_below_the_threshold_too() -> None:
    """A damaged member of its class that the outlier score does not flag still ranks last
    there: in a queue with fewer flags than places it took the places after them (on the
    main mix's kept runs, near-black and noisy digits took 3-5 of the 50 outlier places a
    seed while drawn letters waited below them). Before, only a sample flagged by both types
    was ranked last."""
    for seed in (0, 1):
        ctx, damaged, foreign = _mix(seed)
        strict = OutlierIssue(spaces=("features", "pixels"), threshold=1e6)  # flags nothing
        corrupt, outlier = fit_issue_types(ctx, ["corrupt", strict])
        assert not outlier.flagged_.any() and corrupt.flagged_[damaged].all()
        theirs = damaged[outlier.last_[damaged]]
        assert len(theirs) >= 0.8 * N_DAMAGED, seed
        rest = outlier.scores_[~outlier.last_]
        assert (outlier.scores_[theirs] < rest.min()).all(), seed
        assert outlier.last_[foreign].mean() <= 0.2 and not corrupt.deferred_.any()
        top = _top(outlier.scores_, N_FOREIGN + N_DAMAGED)
        assert np.isin(foreign[~outlier.last_[foreign]], top).all(), seed
        assert not np.isin(theirs, top).any(), seed


def test_resemblance_is_the_label_plurality_among_shape_neighbours() -> None:
    ctx, damaged, foreign = _mix(1)
    rows = np.concatenate([damaged, foreign, np.arange(20)])
    resembles = resembles_its_label(ctx, rows)
    assert resembles is not None
    assert resembles[: len(damaged)].mean() >= 0.9
    assert resembles[len(damaged) + len(foreign) :].all()  # clean shapes: their class
    assert resembles[len(damaged) : len(damaged) + len(foreign)].mean() <= 0.5
    ctx.signatures = None
    assert resembles_its_label(ctx, rows) is None


def test_without_pixels_the_corrupt_type_comes_first() -> None:
    """Text has no pixel space: a sample flagged by both ranks after the other outliers, still
    flagged there (no shape says it is a damaged member of its class)."""
    ctx, damaged, foreign = _mix()
    ctx.signatures = None
    corrupt, outlier = fit_issue_types(ctx, ["corrupt", "outlier"])
    both = corrupt.flagged_ & outlier.flagged_
    assert both.any() and outlier.deferred_[both].all() and not corrupt.deferred_.any()
    assert not outlier.last_.any()
    assert outlier.explain(int(np.flatnonzero(both)[0])).endswith("(after the others here)")


def test_undecodable_images_leave_the_scores_finite() -> None:
    """An image without pixels (NaN signature) is measured in the spaces it has."""
    ctx, _, foreign = _mix()
    sig = np.array(ctx.signatures, copy=True)
    sig[:3] = np.nan
    ctx.signatures = sig
    est = OutlierIssue().fit(ctx)
    assert np.isfinite(est.scores_).all()
    assert set(_top(est.scores_, N_FOREIGN)) <= set(foreign) | set(range(N_CLEAN, len(sig)))


def test_file_damage_is_corrupt_first_and_an_undecodable_file_no_outlier() -> None:
    """A tiny image is the corrupt type's first whatever it looks like; an undecodable one
    (NaN pixels, ``decoded`` False) is not placed among the data at all: it scores 0 and, the
    corrupt type's first, ranks last."""
    ctx, _, foreign = _mix()
    table = ctx.inputs.copy()
    table.loc[foreign[0], ["width", "height"]] = 3  # a 3 x 3 file
    table.loc[foreign[1], "decoded"] = False
    sig = np.array(ctx.signatures, copy=True)
    sig[foreign[1]] = np.nan
    ctx.inputs, ctx.signatures = table, sig
    corrupt, outlier = fit_issue_types(ctx, ["corrupt", "outlier"])
    assert corrupt.flagged_[foreign[:2]].all()
    assert outlier.deferred_[foreign[0]] and not corrupt.deferred_[foreign[0]]
    assert outlier.last_[foreign[1]] and not outlier.flagged_[foreign[1]]  # 0, then last
    assert outlier.scores_[foreign[1]] < outlier.scores_[~outlier.last_].min()
