"""The review target: how many samples a reviewer should look at, from a noise-rate estimate.

The estimate is cleanlab's *confident joint* (Northcutt et al., "Confident Learning", JAIR 2021)
computed from the run's own predictions on its training samples, calibrated to the class counts
(``cleanlab.count.num_label_issues(..., estimation_method="off_diagonal_calibrated")``).
Confident learning needs each sample's predicted probabilities; a run stores two of them per
sample: ``confidence`` (the probability of the predicted class) and ``loss`` (so the probability
of the given label is ``exp(-loss)``). The rest of each row's mass is spread evenly over the
other classes; the per-class thresholds and the confident joint only ever look at a row's
largest probabilities, which are exact. On mnist5k and digits with 5-20% injected noise this
recovers the rate within 1.3 points (see docs/benchmarks.md, "Review session").

Where the samples table has no usable predictions (no ``pred`` / ``confidence`` / ``loss``), or
cleanlab cannot be imported, the estimate falls back to the detector's score distribution: a
two-component Gaussian mixture on the scores, whose upper component's weight is the rate. That
is a rough guide only (0.21-0.45 for injected rates 0.05-0.2 on mnist5k and digits), which the
note says. With a model that has memorised its training labels (it fits them better than
held-out data, see ``test_accuracy``) the confident joint sees few issues: the target is then
flagged as a lower bound. Torch-free.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ogad_core._internal import log
from ogad_core.errors import DataError

__all__ = [
    "KEEP_GOING_BLOCK",
    "KEEP_GOING_SHARE",
    "MIN_TARGET",
    "QueueLength",
    "ReviewTarget",
    "estimate_review_target",
    "pseudo_pred_probs",
    "queue_length",
    "rate_interval",
]

#: the target is never below this many samples (nor above the run's size)
MIN_TARGET = 10

#: past the estimate the queue keeps growing, KEEP_GOING_BLOCK cards ahead of the reviewer, while
#: at least KEEP_GOING_SHARE of the reviewer's last KEEP_GOING_BLOCK decisions confirm a flag
KEEP_GOING_BLOCK = 10
KEEP_GOING_SHARE = 0.5
_Z95 = 1.959964

CONFIDENT_JOINT = "confident_joint"
SCORE_MIXTURE = "score_mixture"


@dataclass(frozen=True)
class ReviewTarget:
    """How many samples to review, and why.

    Attributes:
        n_target: samples to review (the estimated number of label issues, at least
            ``MIN_TARGET`` and at most N).
        noise_rate: the estimated share of mislabeled samples in [0, 1].
        method: ``confident_joint`` or ``score_mixture``.
        note: one or two sentences for the reviewer: what was estimated from what.
        lower_bound: True when the model fits its given training labels better than it
            predicts held-out data (it has memorised labels), so the rate is too low.
        n_samples: N, the samples the rate was estimated on.
    """

    n_target: int
    noise_rate: float
    method: str
    note: str
    lower_bound: bool = False
    n_samples: int = 0

    @property
    def estimated(self) -> int:
        """The estimated number of mislabeled samples: the rate x N, rounded."""
        return round(self.noise_rate * self.n_samples)

    @property
    def at_minimum(self) -> bool:
        """Whether ``n_target`` is ``MIN_TARGET`` above the estimate (a clean or small run):
        then its 95% range lies below it, and the pages say so."""
        return math.ceil(self.noise_rate * self.n_samples) < self.n_target

    def describe(self, *, count: bool = True, more: str = "") -> str:
        """The target in words, as the dashboard's header and the HTML report say it:
        ``review target ≈ 120 (95% range 98–143)``, or where the target is its minimum above
        the estimate (:attr:`at_minimum`) ``review target 10, its minimum (estimate ≈ 2, 95%
        range 0–8)``. ``count=False`` leaves the target's number out (a tile that shows it
        beside: ``review target (95% range 98–143)``); ``more`` goes inside the brackets, after
        the range (``; estimated noise 6.7%, confident_joint``)."""
        low, high = self.interval
        spread = f"95% range {low:,}–{high:,}{more}"
        number = f" {self.n_target:,}" if count else ""
        if self.at_minimum:
            return f"review target{number}, its minimum (estimate ≈ {self.estimated:,}, {spread})"
        approx = f" ≈{number}" if count else ""
        return f"review target{approx} ({spread})"

    @property
    def interval(self) -> tuple[int, int]:
        """(low, high) samples: the 95% sampling interval of the estimated count (Wilson
        score interval on the rate over N samples). It covers only the sampling error: a model
        that fits wrong labels biases the estimate low, which :func:`queue_length` answers."""
        low, high = rate_interval(self.noise_rate, self.n_samples)
        return math.floor(low * self.n_samples), math.ceil(high * self.n_samples)


def rate_interval(rate: float, n: int, z: float = _Z95) -> tuple[float, float]:
    """The Wilson score interval of a share ``rate`` observed on ``n`` samples."""
    if n <= 0:
        return 0.0, 1.0
    p = min(max(float(rate), 0.0), 1.0)
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class QueueLength:
    """How long the review queue is, and why.

    Attributes:
        n: the queue length offered (the target, or more while decisions keep confirming).
        n_target: the estimate it started from.
        recent: the reviewer's latest decisions looked at (at most KEEP_GOING_BLOCK).
        recent_bad: of those, confirmed or relabeled.
        reason: one sentence for the reviewer.
    """

    n: int
    n_target: int
    recent: int
    recent_bad: int
    reason: str

    @property
    def extended(self) -> bool:
        return self.n > self.n_target


def queue_length(
    n_target: int,
    n_reviewed: int,
    recent_bad: np.ndarray,
    n_samples: int,
    *,
    block: int = KEEP_GOING_BLOCK,
    share: float = KEEP_GOING_SHARE,
    step: int = 1,
) -> QueueLength:
    """The queue length: the review target, extended while the evidence says go on.

    Once the reviewer is within ``block`` cards of the end of the queue, and at least ``share``
    of their last ``block`` decisions (``recent_bad``: (k,) bool, newest last; True =
    confirmed or relabeled) found a bad sample, the queue reaches ``block`` cards past what is
    reviewed; it stops growing when the recent decisions mostly reject. So an estimate that is
    too low (a model that fits wrong labels, a small run) never ends the review while the
    flags are still right. With ``step`` > 1 the queue grows ``step`` cards at a time (at least
    ``block`` ahead), so its length changes once per ``step`` decisions, not on every one.
    """
    last = np.asarray(recent_bad, dtype=bool)[-block:]
    bad, seen = int(last.sum()), len(last)
    near_end = n_reviewed + block > n_target
    keep_going = seen >= block and bad >= share * block
    if near_end and keep_going:
        past = max(0, n_reviewed + block - n_target)
        n = int(min(n_samples, n_target + -(-past // step) * step))
        ahead = f"{block} cards ahead" if step <= 1 else f"at least {block} cards ahead"
        reason = (
            f"past the estimate ({n_target:,}): {bad} of your last {seen} decisions confirmed a "
            f"flag, so the queue stays {ahead} while at least {share:.0%} of the last {block} do"
        )
        return QueueLength(n, n_target, seen, bad, reason)
    if near_end and seen >= block:
        reason = (
            f"the estimate ({n_target:,}) stands: {bad} of your last {seen} decisions confirmed a "
            f"flag (the queue grows while at least {share:.0%} do)"
        )
    else:
        reason = (
            f"the estimate ({n_target:,}); the queue grows past it while at least {share:.0%} of "
            f"your last {block} decisions confirm a flag"
        )
    return QueueLength(int(min(n_samples, n_target)), n_target, seen, bad, reason)


def pseudo_pred_probs(
    samples: pd.DataFrame, n_classes: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(labels (N,) int64, pred_probs (N, K) float64) rebuilt from pred, confidence and loss.

    Row i holds ``confidence`` at ``pred``, ``exp(-loss)`` at ``label`` (the same entry when
    they agree) and the remaining mass spread evenly over the other classes; rows sum to 1.
    With ``n_classes`` the class indices are kept (K = n_classes); without, classes are
    renumbered 0..K-1 over the classes that occur as a label or a prediction.
    """
    for col in ("label", "pred", "confidence", "loss"):
        if col not in samples.columns:
            raise DataError(f"the samples table has no {col!r} column")
    raw_labels = samples["label"].to_numpy(dtype=np.int64)
    raw_pred = samples["pred"].to_numpy(dtype=np.int64)
    n = len(raw_labels)
    if n_classes is None:
        classes, codes = np.unique(np.concatenate([raw_labels, raw_pred]), return_inverse=True)
        k, labels, pred = len(classes), codes[:n], codes[n:]
    else:
        k, labels, pred = int(n_classes), raw_labels, raw_pred
    conf = np.clip(samples["confidence"].to_numpy(dtype=np.float64), 0.0, 1.0)
    p_given = np.exp(-np.clip(samples["loss"].to_numpy(dtype=np.float64), 0.0, None))
    if not (np.isfinite(conf).all() and np.isfinite(p_given).all()):
        raise DataError("the samples table's confidence or loss has missing values")
    rows = np.arange(n)
    probs = np.zeros((n, k), dtype=np.float64)
    probs[rows, pred] = conf
    probs[rows, labels] = np.where(pred == labels, conf, p_given)
    free = probs == 0
    rest = np.clip(1.0 - probs.sum(axis=1), 0.0, None) / np.maximum(free.sum(axis=1), 1)
    probs += free * rest[:, None]
    probs /= probs.sum(axis=1, keepdims=True)
    return labels, probs


def _confident_joint_rate(samples: pd.DataFrame) -> float:
    """Share of label issues by cleanlab's calibrated confident joint (ImportError, DataError)."""
    from cleanlab.count import num_label_issues

    labels, probs = pseudo_pred_probs(samples)
    if probs.shape[1] < 2 or len(np.unique(labels)) < 2:
        raise DataError("the confident joint needs at least two given classes")
    n_issues = num_label_issues(labels, probs, estimation_method="off_diagonal_calibrated")
    return float(n_issues) / len(labels)


def _mixture_rate(scores: pd.DataFrame, detector: str) -> float:
    """Weight of the upper component of a 2-Gaussian mixture on the detector's scores."""
    from sklearn.mixture import GaussianMixture

    column = f"{detector}_score"
    if column not in scores.columns:
        raise DataError(f"the scores table has no {column!r} column")
    values = scores[column].to_numpy(dtype=np.float64)
    values = values[np.isfinite(values)]
    if len(values) < 4 or np.ptp(values) == 0:
        return 0.0
    center = np.median(values)
    spread = np.median(np.abs(values - center)) or np.std(values) or 1.0
    robust = np.clip((values - center) / spread, -50.0, 50.0)  # tame extreme tails
    mixture = GaussianMixture(2, random_state=0).fit(robust.reshape(-1, 1))
    upper = int(np.argmax(mixture.means_[:, 0]))
    return float(mixture.weights_[upper])


def _target(rate: float, n: int) -> int:
    return int(min(n, max(MIN_TARGET, math.ceil(rate * n))))


def _memorised(samples: pd.DataFrame, test_accuracy: float | None) -> str:
    """A warning sentence when the model fits its given labels better than held-out data."""
    if test_accuracy is None or "pred" not in samples.columns:
        return ""
    fit = float((samples["pred"].to_numpy() == samples["label"].to_numpy()).mean())
    if fit <= float(test_accuracy):
        return ""
    return (
        f" The model fits {fit:.0%} of the given labels but only {test_accuracy:.0%} of "
        "held-out samples: it has memorised labels, so this is a lower bound; keep reviewing "
        "past the target while flags still look wrong."
    )


def estimate_review_target(
    samples: pd.DataFrame,
    scores: pd.DataFrame | None,
    detector: str,
    *,
    test_accuracy: float | None = None,
) -> ReviewTarget:
    """The review target of a run: the estimated number of mislabeled samples.

    Args:
        samples: the run's samples table (label, pred, confidence, loss; N rows).
        scores: the run's scores table (``{detector}_score``); used only by the fallback.
        detector: the detector whose scores the fallback reads.
        test_accuracy: the model's held-out accuracy (manifest ``model.test_accuracy``), if
            known: a model that fits its training labels better than that has memorised some
            wrong ones, and the estimate is flagged as a lower bound.

    Returns:
        A :class:`ReviewTarget`; ``n_target`` is ``ceil(noise_rate * N)`` clipped to
        [``MIN_TARGET``, N].
    """
    n = len(samples)
    if n == 0:
        raise DataError("the samples table is empty")
    warning = _memorised(samples, test_accuracy)
    try:
        rate = _confident_joint_rate(samples)
    except (ImportError, DataError, ValueError) as err:
        log.info("review target: confident joint unavailable (%s); using the scores", err)
    else:
        return ReviewTarget(
            n_target=_target(rate, n),
            noise_rate=rate,
            method=CONFIDENT_JOINT,
            note=(
                f"About {rate:.1%} of the labels look wrong (confident learning on the model's "
                f"predictions): review the top {_target(rate, n):,} of {n:,}.{warning}"
            ),
            lower_bound=bool(warning),
            n_samples=n,
        )
    if scores is None:
        raise DataError("no predictions and no scores: cannot estimate a review target")
    rate = _mixture_rate(scores, detector)
    return ReviewTarget(
        n_target=_target(rate, n),
        noise_rate=rate,
        method=SCORE_MIXTURE,
        note=(
            f"About {rate:.1%} of the samples stand out in the {detector} scores (a two-part "
            f"mixture, a rough guide only): review the top {_target(rate, n):,} of "
            f"{n:,}.{warning}"
        ),
        lower_bound=bool(warning),
        n_samples=n,
    )
