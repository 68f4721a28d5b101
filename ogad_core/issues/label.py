"""``label``: the given label looks wrong — the run's default detector's ranking, joined by a
kNN vote of the neighbours' given labels where that vote is as reliable as the model.

The model's loss misses a flipped label the model has fitted and over-ranks a hard clean sample
it gets wrong. A misfiled sample sits among its true class, a hard clean one among neighbours that
mostly share its label (SimiFeat, Zhu et al. 2022; cleanlab's kNN label quality). So when the
neighbours' plurality vote predicts the given labels about as well as the model (leave-one-out
error at most :data:`KNN_ERROR_RATIO` times the model's), the probability of the given label is
the mean of the model's ``exp(-loss)`` and the share of the k neighbours that carry the label, and
the score is its negative log. A weak neighbour space (sentence embeddings on Rotten Tomatoes:
error 0.34 against the model's 0.21) would only add noise: there the score is the loss alone.

Labels are seldom wrong at random: a 4 is misfiled as a 9, rarely as a 0. So among the samples
whose given label is not the first choice of that averaged distribution ``q`` (the model's
probabilities rebuilt from the run, with the neighbours' label shares where the vote joins), the
order is confident learning's class-conditional posterior (Northcutt et al. 2021): with ``T`` the
noise rates per pair of classes from cleanlab's confident joint of ``q`` (``T[j, i]`` = the
share of class i's samples filed as j), the probability that a sample filed as j is right is
``T[j, j] q_j / sum_i T[j, i] q_i``. A flipped digit whose true class is a common source of
misfiled j's ranks above a hard clean j that looks like a class j is never confused with.
Measured (docs/benchmarks.md, "Class-pair noise"; kept runs, seeds 0-2): the held-out mix's
confusable flips 0.84 -> 0.90 in the label top K, its flags 0.64 -> 0.80 of the flips, label
AUROC 0.9949 -> 0.9968; the main mix's random flips 0.918 -> 0.916, AUROC 0.9985 -> 0.9985. The
samples ``q`` assigns to their given class keep the order of ``-log q_y`` below them (ordering
them by the posterior too cost AUROC, 0.9985 -> 0.9957: a fitted flip in a pair with no
confident count scored as clean). With two classes there is no pair to tell apart
(:data:`MIN_PAIR_CLASSES`).

A review fixes a label with another class, so the order among them weighs, beside the chance
that the given label is wrong, the chance that the likeliest OTHER class is the true one (the
same posterior, ``T[j, i] q_i / sum_m T[j, m] q_m`` at its largest ``i != j``): their
geometric mean. A flipped digit has its true class; an input of no class -- a glyph of another
script the outlier type does not flag, a digit the model and its neighbours split between
several classes -- has a likely wrong label but no likely right one. The number flagged is
counted by the chance of a wrong label alone (the review target's estimate is of wrong
labels). Measured (quick harness on the kept runs, seeds 0-2): held-out flipped top K 0.898
-> 0.904 (139 / 132 / 133 -> 139 / 134 / 134), its flags 0.789 -> 0.791, AUROC 0.9963 ->
0.9964; main top K 0.931 (per seed unchanged), flags 0.878 (one swapped), AUROC 0.9988. The
second chance alone cost random flips on a weak model (tests: 0.831 -> 0.809).

An input that looks unlike the data has no right class among the labels, flagged as an outlier
or not. Among the samples ``q`` gives another class, those whose INPUT view (the outlier
type's input statistics; images only: a text run has no input view) is at least as far as the
outlier flag's z-score rank after the others ``q`` gives another class, in their own order,
still above every sample ``q`` assigns to its given class; the flags' number is unchanged. A
flipped digit is a digit written like the data whatever its label: its input view is typical.
Measured (docs/benchmarks.md, "Input-far samples in the label queue"; kept runs, seeds 0-2):
on the held-out mix 2-4 other-script glyphs and shapes a seed the outlier type does not flag,
given some digit, are that far (0-2 flipped digits a seed): flipped top K 0.889 -> 0.898; the
main mix's top K unchanged (0.931; one flipped digit that far swapped for another).

On text the model's probabilities are first averaged with a second view that reads the words
(:mod:`ogad_core.issues.lexical`: a bag-of-words model predicted out of fold; its errors are
partly independent of the encoder's). Measured (docs/benchmarks.md, "A lexical view of the text
labels"; kept runs, seeds 0-2): flipped top K 0.257 -> 0.293 (main) and 0.283 -> 0.317
(held-out), label AUROC 0.844 -> 0.851 and 0.823 -> 0.826, All precision 0.708 -> 0.723 and
0.691 -> 0.705; images untouched.
"""

from __future__ import annotations

import numpy as np

from ogad_core.errors import ConfigError, DataError
from ogad_core.issues.base import REFERENCE_ROWS, IssueContext, IssueType, default_k
from ogad_core.issues.duplicate import conflicting_sets
from ogad_core.issues.outlier import MODEL_VIEW
from ogad_core.options import DEFAULT_DETECTOR
from ogad_core.space.knn import ANN_MIN_ROWS

#: the kNN vote joins the loss where its error on the given labels is at most this times the
#: model's (measured: mnist5k digits 0.9-1.1, Rotten Tomatoes sentences 1.6)
KNN_ERROR_RATIO = 1.25
KNN_CHOICES = ("auto", "on", "off")
#: the class-pair posterior orders the doubted samples from this many classes up: with two, a
#: given label has one other class to come from, and the posterior only reweights one class's
#: errors against the other's (Rotten Tomatoes: flipped top-K 0.25 -> 0.24, AUROC 0.843 -> 0.841)
MIN_PAIR_CLASSES = 3
#: pseudo-count added to every off-diagonal pair of the confident joint (add-one smoothing):
#: with random flips the pairs' counts are few and mostly a weak model's own confusions
#: (tests/test_issues_label.py, mnist5k, logistic regression, 80 flips of 2,000, 4 seeds: random
#: flips' top-K 0.828 -> 0.809 without it, 0.831 with it; confusable flips 0.63 -> 0.80 / 0.78)
PAIR_PRIOR = 1.0


class LabelIssue(IssueType):
    """Label issues: the score of ``detector`` (default: the run's default detector) from
    scores.parquet, with the loss detector joined by the neighbours' label vote (see the module
    doc); flagged are the top ``review target`` samples (confident learning's estimate of the
    number of wrong labels, :mod:`ogad_core.scoring.target`).

    Args:
        detector: the detector whose scores rank the samples (None: the run's default).
        knn: ``auto`` (the vote joins the loss where it is about as reliable as the model),
            ``on`` or ``off``.
        pairs: order the samples assigned to another class by the class-pair noise posterior
            (see the module doc); False: by ``-log q_y`` alone.
    """

    name = "label"
    title = "Label issues"
    after = ("corrupt", "duplicate", "outlier")
    threshold_doc = (
        "the top n samples by the probability of the given label (the model's -- on text "
        "averaged with a bag-of-words model's, predicted out of fold -- averaged with "
        "the share of the k nearest samples that carry it where their vote is about as accurate "
        "as the model; those it gives another class first, likelier wrong where many samples "
        "of that class carry the same label: confident learning's class-pair noise, weighed "
        "with the chance that the likeliest other class is right; among them, an "
        "image whose input statistics are as far from the data as the outlier flag's "
        "z-score after the others: an input unlike the data has no right class), n = the "
        "review target (confident learning's estimate of the number of "
        "wrong labels) less the samples another issue type explains (corrupt, outlier, or in a "
        "duplicate set whose labels differ: reviewed there, and ranked after the samples the "
        "model predicts otherwise)"
    )

    def __init__(self, detector: str | None = None, knn: str = "auto", pairs: bool = True) -> None:
        self.detector = detector
        self.knn = knn
        self.pairs = pairs

    def fit(self, context: IssueContext) -> LabelIssue:
        from ogad_core.scoring.target import estimate_review_target

        if self.knn not in KNN_CHOICES:
            raise ConfigError(
                f"label issue type: knn must be one of {KNN_CHOICES}, got {self.knn!r}",
                param="issue_types",
            )
        detector = self.detector or context.detector or DEFAULT_DETECTOR
        values = _detector_scores(context, detector)
        target = estimate_review_target(
            context.samples, context.scores, detector, test_accuracy=context.test_accuracy
        )
        n_flag = min(int(target.n_target), len(values))
        self.agree_: np.ndarray | None = None
        self.lexical_: np.ndarray | None = None
        self.posterior_: np.ndarray | None = None
        self.input_far_ = np.zeros(len(values), dtype=bool)
        self._detector_scores = values
        self.deferred_ = explained_elsewhere(context)
        self.input_z_, self.input_bound_ = outlier_input_z(context)
        self.wrong_order_: np.ndarray | None = None  # set where the class pairs order
        if detector == "loss":
            values = self._given_label_score(context, values)
        self._pred = context.samples["pred"].to_numpy() if "pred" in context.samples else None
        self._labels = context.labels
        if self.deferred_.any():  # reviewed as corrupt / outlier / a conflicting duplicate set
            n_wrong = _n_predicted_otherwise(self._pred, context.labels, self.deferred_)
            values, n_flag = _after_the_flagged(
                values, self.deferred_, n_flag, n_wrong, self.wrong_order_
            )
        threshold = float(np.sort(values)[::-1][n_flag - 1]) if n_flag else np.inf
        self.detector_ = detector
        self._conf = context.samples.get("confidence")
        self._names = list(context.label_names)
        self._finish(values, threshold)
        # ties at the threshold may flag a few more than the target: keep exactly n_flag
        order = np.lexsort((np.arange(len(values)), -values))
        self.flagged_ = np.zeros(len(values), dtype=bool)
        self.flagged_[order[:n_flag]] = True
        return self

    def _given_label_score(self, context: IssueContext, loss: np.ndarray) -> np.ndarray:
        """(N,) the loss detector's label score: ``-log q_y`` (the loss itself without the
        vote), the samples ``q`` assigns to another class above it in the order of the
        class-pair posterior (module doc; sets ``agree_``, ``posterior_``, ``pair_counts_``)."""
        probs = _model_probs(context, loss) if self.pairs or self.knn != "off" else None
        if probs is None:
            return loss
        q, values = probs, loss
        if context.kind == "text" and "ref" in context.samples:  # the words' view (lexical.py)
            q = self._with_lexical(context, probs)
            values = -np.log(np.maximum(q[np.arange(len(q)), context.labels], 1e-12))
        if self.knn != "off":
            shares = self._vote_shares(context)
            if shares is not None:
                q = 0.5 * q + 0.5 * shares
                values = -np.log(np.maximum(q[np.arange(len(q)), context.labels], 1e-12))
        if not self.pairs or np.unique(context.labels).size < MIN_PAIR_CLASSES:
            return values
        return self._pair_ordered(q, context.labels, values)

    def _with_lexical(self, context: IssueContext, probs: np.ndarray) -> np.ndarray:
        """(N, K) the model's probabilities averaged with the lexical view's (out-of-fold
        bag-of-words probabilities, :mod:`ogad_core.issues.lexical`; sets ``lexical_``)."""
        from ogad_core.issues.lexical import LEXICAL_WEIGHT, lexical_probs

        texts = context.samples["ref"].astype(str).tolist()
        n_classes = len(context.label_names)
        self.lexical_ = lexical_probs(texts, context.labels, n_classes, seed=context.seed)
        return (1.0 - LEXICAL_WEIGHT) * probs + LEXICAL_WEIGHT * self.lexical_

    def _vote_shares(self, context: IssueContext) -> np.ndarray | None:
        """(N, K) each sample's neighbours' label shares when the vote is used, else None
        (sets ``agree_``, ``knn_k_``, ``knn_error_``, ``model_error_``)."""
        found = label_neighbours(context)
        if found is None:
            return None
        idx, _ = found
        labels = context.labels
        agree, knn_error = neighbour_vote(idx, labels)
        pred = context.samples["pred"].to_numpy() if "pred" in context.samples else None
        model_error = float(np.mean(pred != labels)) if pred is not None else np.nan
        self.knn_k_, self.knn_error_, self.model_error_ = idx.shape[1], knn_error, model_error
        reliable = knn_error <= KNN_ERROR_RATIO * model_error
        if self.knn == "auto" and not reliable:
            return None
        self.agree_ = agree
        return label_shares(idx, labels, len(context.label_names))

    def _pair_ordered(self, q: np.ndarray, labels: np.ndarray, values: np.ndarray) -> np.ndarray:
        """(N,) ``values`` with the samples whose largest ``q`` is another class moved above
        every other sample: log K + 1 + the class-pair posterior of their likeliest other
        class (the chance that the label is wrong AND that class is right; log K is the most
        ``-log q_y`` of a first choice can be; ties, as in a pair with no confident count,
        broken by ``values``); those whose input view is far (``input_far_``, not explained
        elsewhere) at log K + 0.5 + 0.4 x that posterior, between the two. Sets
        ``posterior_`` (of a wrong label), ``true_class_`` and ``relabel_`` (the likeliest
        other class and its posterior), ``pair_counts_``, ``doubted_``, ``input_far_``."""
        true_class, counts = true_class_posterior(labels, q, PAIR_PRIOR)
        rows = np.arange(len(labels))
        self.posterior_, self.pair_counts_ = 1.0 - true_class[rows, labels], counts
        others = true_class.copy()
        others[rows, labels] = -1.0
        self.true_class_ = others.argmax(axis=1)  # the likeliest other class
        self.relabel_ = others[rows, self.true_class_]  # ... and its posterior
        self.doubted_ = q.argmax(axis=1) != labels
        far = self.input_z_ >= self.input_bound_
        self.input_far_ = self.doubted_ & far & ~self.deferred_
        self.wrong_order_ = self._in_blocks(values, self.posterior_, q.shape[1])
        both = np.sqrt(self.posterior_ * self.relabel_)  # a label to fix, a class to give it
        return self._in_blocks(values, both, q.shape[1])

    def _in_blocks(self, values: np.ndarray, key: np.ndarray, n_classes: int) -> np.ndarray:
        """(N,) ``values`` with the doubted samples at log K + 1 + ``key`` (N,) in [0, 1], the
        input-far ones among them at log K + 0.5 + 0.4 ``key`` (ties broken by ``values``)."""
        tie_break = 1e-6 * values / (1.0 + np.abs(values))
        above = np.log(n_classes) + 1.0 + key + tie_break
        after = np.log(n_classes) + 0.5 + 0.4 * key + tie_break
        return np.where(self.doubted_, np.where(self.input_far_, after, above), values)

    def neighbour_spaces(self, context: IssueContext) -> set[str]:
        """The space of the neighbours' vote (:func:`label_space`), unless it is off."""
        return set() if self.knn == "off" else {label_space(context)}

    def explain(self, i: int) -> str:
        if self.deferred_[i]:
            return "left to the issue type that explains the sample (corrupt, outlier, duplicate)"
        base = f"label looks wrong ({self.detector_} score {self._detector_scores[i]:.3g}"
        if self.agree_ is not None:
            share = int(round(float(self.agree_[i]) * self.knn_k_))
            base += f"; {share} of its {self.knn_k_} nearest samples carry its label"
        base += ")"
        if self._pred is None:
            return base
        pred = int(self._pred[i])
        name = self._names[pred] if pred < len(self._names) else "?"
        conf = "" if self._conf is None else f" at {float(self._conf.iloc[i]):.0%}"
        return f"{base}: the model predicts {name}{conf}{self._pair_note(i, pred)}"

    def _pair_note(self, i: int, pred: int) -> str:
        """ "; n samples filed as <given> look like <pred>" from the confident joint, when the
        sample is ordered by the class-pair posterior."""
        if self.posterior_ is None or not self.doubted_[i]:
            return ""
        given = int(self._labels[i])
        if max(given, pred) >= len(self._names) or given == pred:
            return ""
        n = int(self.pair_counts_[given, pred])
        note = (
            f"; {n} sample{'' if n == 1 else 's'} filed as {self._names[given]} look"
            f"{'s' if n == 1 else ''} like {self._names[pred]}"
            f" (wrong-label posterior {float(self.posterior_[i]):.2f}; likeliest true class"
            f" {self._names[int(self.true_class_[i])]} at {float(self.relabel_[i]):.2f})"
        )
        if self.input_far_[i]:
            note += (
                f"; its input looks unlike the data (input z = {float(self.input_z_[i]):.1f}):"
                " ranked after the others the model gives another class"
            )
        return note


def _detector_scores(context: IssueContext, detector: str) -> np.ndarray:
    """(N,) finite scores of ``detector`` from scores.parquet (NaN / inf: the lowest finite)."""
    scores = context.scores
    column = f"{detector}_score"
    if scores is None or column not in scores.columns:
        raise DataError(f"the run has no {detector} scores; run `ogad score DIR` first")
    values = np.nan_to_num(scores[column].to_numpy(dtype=np.float64), nan=-np.inf)
    finite = np.isfinite(values)
    return np.where(finite, values, np.nanmin(values[finite]) if finite.any() else 0.0)


def label_neighbours(context: IssueContext) -> tuple[np.ndarray, np.ndarray] | None:
    """(N, k) indices and distances of each sample's nearest others in the model's space, rows
    scaled to unit length: the encoder's embeddings where the run has them, else the model's
    features (cached in the context: a larger k computed once serves); None without either.
    k = 1% of the rows searched (10 to 50); above ANN_MIN_ROWS rows in a 16-d PCA, above
    REFERENCE_ROWS among a seeded subsample of that many."""
    reference = min(context.n, REFERENCE_ROWS)
    name = label_space(context) + ("/pca" if context.n > ANN_MIN_ROWS else "")
    found = context.neighbours(name, default_k(reference), reference=reference)
    if found is None:
        return None
    dist, idx = found
    return idx, dist


def label_space(context: IssueContext) -> str:
    """The space of the label type's neighbours: the encoder's embeddings where the run has
    them, else the model's features, rows scaled to unit length."""
    space = "embeddings" if context.space("embeddings") is not None else "features"
    return f"{space}/unit"


def _model_probs(context: IssueContext, loss: np.ndarray) -> np.ndarray | None:
    """(N, K) the model's probabilities rebuilt from samples.parquet's ``pred`` and
    ``confidence`` (:func:`~ogad_core.scoring.target.pseudo_pred_probs`), the given label's
    ``exp(-loss)`` (``loss``: (N,) the loss detector's scores), or None without them."""
    from ogad_core.scoring.target import pseudo_pred_probs

    samples = context.samples
    if not {"pred", "confidence"} <= set(samples.columns):
        return None
    agree = samples["pred"].to_numpy() == samples["label"].to_numpy()
    p_given = np.exp(-np.maximum(loss, 0.0))
    conf = np.where(agree, p_given, samples["confidence"].to_numpy(dtype=np.float64))
    table = samples[["label", "pred"]].assign(confidence=conf, loss=np.maximum(loss, 0.0))
    try:
        return pseudo_pred_probs(table, len(context.label_names))[1]
    except DataError:
        return None


def label_shares(idx: np.ndarray, labels: np.ndarray, n_classes: int) -> np.ndarray:
    """(N, K) the share of each sample's neighbours (``idx``: (N, k), -1 = none) that carry
    each label."""
    valid = idx >= 0
    rows = np.arange(len(idx))
    out = np.zeros((len(idx), n_classes), dtype=np.float64)
    for j in range(idx.shape[1]):  # one neighbour a row per column: no repeated (row, class)
        out[rows, labels[np.maximum(idx[:, j], 0)]] += valid[:, j]
    return out / np.maximum(valid.sum(axis=1), 1)[:, None]


def true_class_posterior(
    labels: np.ndarray, q: np.ndarray, prior: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """(N, K) the probability of each true class given the filed label under class-conditional
    noise, and the (K, K) confident joint (rows: the given label, columns: the class ``q``
    confidently predicts; cleanlab's ``compute_confident_joint``). ``q``: (N, K) probabilities.

    ``T[j, i]`` = (confident_joint[j, i] + ``prior`` off the diagonal) / the column's sum (the
    share of class i filed as j); a sample filed as j is of class i with probability
    ``T[j, i] q_i / sum_m T[j, m] q_m``."""
    from cleanlab.count import compute_confident_joint

    k = q.shape[1]
    present = np.bincount(labels, minlength=k) > 0
    if present.sum() < 2:  # one class: no pair to estimate
        return np.eye(k)[labels], np.zeros((k, k), dtype=np.int64)
    joint = np.zeros((k, k), dtype=np.int64)
    sub = q[:, present] / np.maximum(q[:, present].sum(axis=1, keepdims=True), 1e-12)
    codes = np.cumsum(present) - 1
    joint[np.ix_(present, present)] = compute_confident_joint(codes[labels], sub)
    counts = joint + prior * (np.outer(present, present) & ~np.eye(k, dtype=bool))
    column = counts.sum(axis=0, keepdims=True)
    rates = np.where(column > 0, counts / np.maximum(column, 1e-12), np.eye(k))
    weighted = rates[labels] * q
    return np.clip(weighted / np.maximum(weighted.sum(axis=1, keepdims=True), 1e-300), 0, 1), joint


def neighbour_vote(idx: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, float]:
    """The (N,) share of each sample's neighbours (``idx``: (N, k), -1 = none) that carry its
    given label, and the share of samples whose neighbours' plurality label is not the given
    one (the vote's leave-one-out error)."""
    from scipy.stats import mode

    valid = idx >= 0
    neighbour_labels = np.where(valid, labels[np.maximum(idx, 0)], -1)
    same = (neighbour_labels == labels[:, None]) & valid
    agree = same.sum(axis=1) / np.maximum(valid.sum(axis=1), 1)
    plurality = mode(np.where(valid, neighbour_labels, labels.max() + 1), axis=1).mode
    return agree.astype(np.float64), float(np.mean(np.ravel(plurality) != labels))


def _n_predicted_otherwise(
    pred: np.ndarray | None, labels: np.ndarray, deferred: np.ndarray
) -> int:
    """How many samples not deferred the model predicts another class for (0 without pred)."""
    return 0 if pred is None else int(((pred != labels) & ~deferred).sum())


def _after_the_flagged(
    values: np.ndarray,
    deferred: np.ndarray,
    n_flag: int,
    n_wrong: int = 0,
    wrong_order: np.ndarray | None = None,
) -> tuple[np.ndarray, int]:
    """(N,) scores with the ``deferred`` samples that rank among the top max(flags, n_wrong) of
    the others moved just below them (in their own order; lower scores unchanged, so the
    ranking below is the detector's), and the number flagged less the deferred among the top
    ``n_flag`` by ``wrong_order`` (N,) (the likelihood of a wrong label, which the review
    target counts; default ``values``). ``n_wrong``: the samples the model predicts
    otherwise, each a better candidate for a label review than a sample another issue type
    explains."""
    counted = values if wrong_order is None else wrong_order
    top = np.lexsort((np.arange(len(values)), -counted))[:n_flag]
    n_flag -= int(deferred[top].sum())
    rest = np.sort(values[~deferred])[::-1]
    n_before = max(n_flag, n_wrong)
    if not n_before or not rest.size:
        return values, n_flag
    cap = float(np.nextafter(rest[min(n_before, rest.size) - 1], -np.inf))
    above = deferred & (values >= cap)
    if above.any():  # squeezed into [cap - 1e-9 * spread, cap), their order kept
        spread = float(values[above].max() - values[above].min()) or 1.0
        squeezed = cap - 1e-9 * abs(cap or 1.0) * (values[above].max() - values[above]) / spread
        values = values.copy()
        values[above] = np.minimum(squeezed, cap)
    return values, n_flag


def outlier_input_z(context: IssueContext) -> tuple[np.ndarray, float]:
    """(N,) the fitted outlier type's input-view z-score (the mean of its spaces outside the
    model's view: input statistics, pixels; -inf where it has none, as on text) and its flag
    threshold (inf without the outlier type)."""
    none = np.full(context.n, -np.inf)
    est = context.results.get("outlier")
    space_z = getattr(est, "space_z_", None)
    used = list(getattr(est, "spaces_used_", []))
    if est is None or space_z is None or len(space_z) != context.n:
        return none, np.inf
    bound = float(getattr(est, "threshold", np.inf))
    columns = [j for j, name in enumerate(used) if name not in MODEL_VIEW]
    if not columns:
        return none, bound
    z = np.asarray(space_z, dtype=np.float64)[:, columns]
    with np.errstate(invalid="ignore"):  # no value in the view: NaN -> -inf
        mean = np.where(np.isfinite(z), z, 0.0).sum(1) / np.isfinite(z).sum(1)
    return np.nan_to_num(mean, nan=-np.inf), bound


def explained_elsewhere(context: IssueContext) -> np.ndarray:
    """(N,) bool: samples another fitted issue type explains better than a wrong label: flagged
    corrupt or outlier (an unreadable or out-of-distribution input has no right class among the
    labels), or a member of a duplicate set whose given labels differ (the set's card decides
    which copy keeps which label)."""
    out = np.zeros(context.n, dtype=bool)
    for name in ("corrupt", "outlier"):
        est = context.results.get(name)
        if est is not None:
            out |= np.asarray(est.flagged_, dtype=bool)
    dup = context.results.get("duplicate")
    if dup is not None:
        out |= conflicting_sets(dup.set_ids_, context.labels) & np.asarray(dup.flagged_, dtype=bool)
    return out
