"""The duplicate type's isolated-pair rule: a re-encoded copy lies past the 0.13 x median rule
but far closer to its source than to anything else (the held-out mix's JPEG copies)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ogad_core.issues.base import IssueContext
from ogad_core.issues.duplicate import DuplicateIssue


def _context(n: int = 400, seed: int = 0) -> tuple[IssueContext, float]:
    """Uniform random 256-d pixel signatures (no duplicates) and unrelated features; the median
    nearest-neighbour distance of the signatures."""
    rng = np.random.default_rng(seed)
    sig = rng.uniform(0, 1, size=(n, 256)).astype(np.float32)
    feats = rng.normal(size=(n, 16)).astype(np.float32)
    samples = pd.DataFrame({"sample_id": np.arange(n), "label": np.arange(n) % 4})
    d = np.linalg.norm(sig[:, None, :] - sig[None, :, :], axis=2)
    np.fill_diagonal(d, np.inf)
    median = float(np.median(d.min(axis=1)))
    ctx = IssueContext(
        samples=samples, label_names=list("abcd"), features=feats, signatures=sig, seed=seed
    )
    return ctx, median


def _near(v: np.ndarray, distance: float, rng: np.random.Generator) -> np.ndarray:
    step = rng.normal(size=v.shape)
    return (v + distance * step / np.linalg.norm(step)).astype(np.float32)


def test_an_isolated_pair_past_the_median_rule_is_a_duplicate_set() -> None:
    """A copy at 0.25 x the median distance of its source, with nothing else near: a set (the
    0.13 x median rule alone misses it). The same distance inside a group of three close
    samples, or two far inputs 0.6 x the median apart, are not."""
    ctx, median = _context()
    rng = np.random.default_rng(1)
    sig = ctx.signatures
    assert sig is not None
    sig[10] = _near(sig[5], 0.25 * median, rng)  # a re-encoded copy of 5
    sig[21] = _near(sig[20], 0.25 * median, rng)  # 20, 21, 22: three close, no pair isolated
    sig[22] = _near(sig[20], 0.3 * median, rng)
    far = sig[30] + 5.0
    sig[30], sig[31] = far, _near(far, 0.6 * median, rng)  # two far inputs near each other
    est = DuplicateIssue().fit(ctx)
    assert est.set_ids_[5] == est.set_ids_[10] == 5
    assert est.flagged_[[5, 10]].all() and est.flagged_.sum() == 2, np.flatnonzero(est.flagged_)
    assert "near duplicate" in est.explain(10)
    assert not DuplicateIssue(isolation=0).fit(ctx).flagged_.any()  # the median rule alone


def test_isolated_pairs_count_only_in_pixel_space() -> None:
    """The same isolated pair in the model's feature space only (two inputs the model maps
    together) is not a duplicate."""
    ctx, _ = _context()
    rng = np.random.default_rng(2)
    feats = ctx.features
    assert feats is not None
    unit = feats / np.linalg.norm(feats, axis=1, keepdims=True)
    d = np.linalg.norm(unit[:, None] - unit[None], axis=2)
    np.fill_diagonal(d, np.inf)
    feats[10] = _near(unit[5], 0.25 * float(np.median(d.min(axis=1))), rng)
    feats[5] = unit[5]
    assert not DuplicateIssue().fit(ctx).flagged_.any()
    assert (
        DuplicateIssue(isolation_spaces=("pixels", "features/unit"))
        .fit(ctx)
        .flagged_[[5, 10]]
        .all()
    )


def test_a_training_image_far_closer_to_a_held_out_file_than_to_any_other_leaks() -> None:
    """A held-out file at 0.25 x the median distance of a training image, nothing else near: a
    leak (the 0.13 x median rule alone misses it); another held-out file 0.6 x the median from
    a training image is not."""
    from ogad_core.issues.holdout import Holdout
    from ogad_core.issues.leakage import LeakageIssue

    ctx, median = _context()
    rng = np.random.default_rng(3)
    assert ctx.signatures is not None
    held = np.stack(
        [
            _near(ctx.signatures[7], 0.25 * median, rng),
            _near(ctx.signatures[8], 0.6 * median, rng),
            rng.uniform(0, 1, 256).astype(np.float32),
        ]
    )
    hashes = pd.DataFrame({"content_hash": ["h0", "h1", "h2"]})
    ctx.holdout = Holdout("x", ["a.png", "b.png", "c.png"], hashes, held, "f")
    est = LeakageIssue().fit(ctx)
    assert np.flatnonzero(est.flagged_).tolist() == [7]
    assert est.explain(7).startswith("near copy of held-out a.png")
    assert not LeakageIssue(isolation=0).fit(ctx).flagged_.any()


def test_an_isolated_pair_in_an_encoders_embeddings_is_a_duplicate_set() -> None:
    """Text: a review with a word dropped lies at about a quarter of the median distance of its
    source in the encoder's embeddings, with nothing else near: a set."""
    rng = np.random.default_rng(4)
    n = 300
    emb = rng.normal(size=(n, 32)).astype(np.float32)
    unit = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    d = np.linalg.norm(unit[:, None] - unit[None], axis=2)
    np.fill_diagonal(d, np.inf)
    emb[12] = _near(unit[3], 0.25 * float(np.median(d.min(axis=1))), rng)
    emb[3] = unit[3]
    samples = pd.DataFrame({"sample_id": np.arange(n), "label": np.arange(n) % 2})
    ctx = IssueContext(samples=samples, label_names=["neg", "pos"], kind="text", embeddings=emb)
    est = DuplicateIssue().fit(ctx)
    assert np.flatnonzero(est.flagged_).tolist() == [3, 12] and est.set_ids_[12] == 3
