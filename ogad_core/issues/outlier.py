"""``outlier``: out-of-distribution and atypical inputs, by their distance from the classes.

Three views, each measured where it was found to work (docs/benchmarks.md "Issue types"): the
model's (its unit-length features and its unit-length last-layer gradients ``(p - onehot(y))
(x) h``, which add the direction of the residual: the squared Mahalanobis distance to the
nearest class mean under one shared within-class covariance, Lee et al. 2018; Ledoit-Wolf
shrinkage, :mod:`ogad_core.issues.mahalanobis`; the gradients read as unit rows chunk by chunk,
no (N, D) copy; and its doubt, ``1 - max softmax``, Hendrycks & Gimpel 2017: an input of no
class spreads the probability over several classes, where a flipped digit is sure of its true
one -- left out where the corrupt type flags the sample, as damage lowers the confidence in a
member of a class, and z-scored on a scale of at least :data:`DOUBT_SCALE`, so a model sure of
nearly every row does not fill the queue with its least sure ones; measured, docs/benchmarks.md
"The model's doubt, bounded": held-out other-script glyphs 0.44 -> 0.58 and fresh typeset
digits 0.17 -> 0.25 in the top K, no kind's mean lowered on the three mixes, and at 1,000,000
rows the planted outliers 0.75 -> 0.81), and the input's own: the per-image statistics of the
16 x 16 signature
(:func:`ogad_core.issues.features.signature_statistics`: framing and the edge-orientation
histogram's shape, not its direction (handwriting leans), each image rescaled to [0, 1], and
from the 32 x 32 registration images the share of equal mid-grey neighbours, the input's
effective resolution (an image upscaled by pixel blocks is flat inside each block), and how
much smaller its object (the larger side of its ink's box) is than the data's, on a scale of at
least 2 px (typeset digits among size-normalised handwriting; measured with the second vote of
:mod:`ogad_core.issues.undamaged`: fresh typeset digits 0.25 -> 0.63 and held-out glyphs of
other scripts 0.58 -> 0.67 in the top K, no kind's top K lowered on the three mixes), and
that deficit again, added to the space's z (:func:`ogad_core.issues.features.small_object_bonus`:
a column among the kNN's fourteen is diluted; measured, fresh typeset digits 0.63 -> 0.83 and
held-out glyphs 0.67 -> 0.78, no clean sample newly flagged on the three mixes); no
intensity distribution or sharpness, which damage changes: those stay the ``corrupt``
type's), where an image made another way -- drawn, typeset, upscaled from another
resolution, a photo -- differs from the data even when the model takes it for a class member;
there the mean distance to the k nearest samples (cleanlab Datalab's outlier score:
statistics are not Gaussian per class). An encoder's embeddings (text; pretrained image
encoders), not trained on these labels, replace the model's two spaces: the mean distance
to the k nearest samples of the BULK (the samples whose own first distance is not in its upper
tail: a group from one other source is each other's nearest, and among all
samples masks itself), in the encoder's LAST layer when the embeddings concatenate its layers
(the sentence embedding its training made semantic; the lower layers' means carry word
identity and syntax, and buried sentences from another domain). Standardised
pixels (``pixels``) remain an option: measured, the statistics space finds more on both mixes.
Each space's distance is a z-score of its log against its own upper tail
(:func:`ogad_core.issues.tail.upper_z`: the skewed tail of a distance does not inflate the
flags), and the z-scores are averaged per view, then the two views -- the model's (features and
gradients, or an encoder's embeddings) and the input's (statistics, pixels) -- weigh the same:
an atypical but clean digit is far in one space, an input from elsewhere in several; and an
input the model takes for a digit (an 8 x 8 digit upscaled by pixel blocks) is far in the
input's view alone, which two correlated model spaces out-voted two to one. The model's
features are scaled to unit length (an input far from the data has a small ``h``, so in raw
feature space it sits near the origin, among the low-confidence clean ones).

A sample the ``corrupt`` type flags too (when it runs) gets ONE primary type, where it ranks in
full: outlier first, it stays flagged in the corrupt queue after the other flags (the damage is
the input's own); corrupt first by its shape or its file, it is not flagged here and ranks last
(as the label type leaves what another type explains: a damaged member of a class is no input
from elsewhere, its distance measures the damage), so it takes no place of an outlier -- also
when its score here is below the threshold (in a queue with fewer flags than places it took
the places after them); a text (no shape to compare) flagged corrupt stays flagged here after
the other flags. Corrupt when the input still resembles its labelled class in shape (its label
is the strict plurality among its nearest neighbours in the standardised pixel space: a
damaged member of the class, as a digit half covered by noise; a negative, noise, a motion
blur, stripes or a block, which dominate those pixels, are taken out for a second vote:
:mod:`ogad_core.issues.undamaged`),
outlier when it does not (a photo crop or a drawn letter filed under some class). An input
with no shape to compare (undecodable, near-constant), one flagged for a property of the file
(tiny, odd aspect, pixelated; or its capture: cut by the frame), or without pixels (text), is
the corrupt type's first; an
undecodable file scores 0 here (the model saw a stand-in: there is no input to place among the
data) and ranks last, as does a text with no content to place (empty, under two words, one
word said over and over,
not one letter outside markup -- tags, entities, BBCode, template placeholders: the text's
near-constant input; on the held-out mix such snippets took 7-11 of the 40 places a seed ahead
of the sentences from elsewhere, markup-only ones up to 8 after the others), where a text
flagged for few letters or unknown words (a code line, a log line, another language: perhaps
from elsewhere) stays flagged
here after the others. A sample the ``duplicate`` type flags in a set with a member not flagged
here has its copy among the typical data: no input from elsewhere (a copy under another label
is far in the gradients, which carry the label; a transformed copy is atypical), so it is the
duplicate type's first, not flagged here and ranked last; a set of far members only (two
inputs from one other source) stays here.
"""

from __future__ import annotations

import re
import warnings

import numpy as np

from ogad_core.errors import ConfigError
from ogad_core.issues.base import REFERENCE_ROWS, IssueContext, IssueType, default_k
from ogad_core.issues.mahalanobis import class_mahalanobis, unit_directions
from ogad_core.issues.tail import after_the_others, last_of_all, upper_z
from ogad_core.issues.undamaged import DAMAGE_REFERENCE, UNDAMAGED_PARTS, undamaged_votes
from ogad_core.space.knn import ANN_MIN_ROWS

#: corrupt properties that leave no content to place among the data (undecodable,
#: near-constant; a text that is empty, under two words or one word said over and over; also a
#: flagged text without a letter outside markup, :func:`_wordless`) or that are the file's, not
#: its content's (tiny, odd aspect; pixelated: a tiny image upscaled by pixel blocks, whose
#: blocks, not its shape, set its pixels' distance; cut by the frame: a bad crop, the half of a
#: member left in the image resembles no class): such a sample is the corrupt type's first
#: and ranks last here (a text flagged for its letters or its words -- a code line, another
#: language -- may come from elsewhere: it stays flagged here, after the others)
CORRUPT_FIRST = (
    "undecodable",
    "near-constant",
    "tiny",
    "odd aspect",
    "pixelated",
    "cut by the frame",
    "empty",
    "very short",
    "repetitive",
)
SPACE_NAMES = {
    "features": "feature",
    "embeddings": "encoder",
    "gradients": "gradient",
    "pixels": "pixel",
    "statistics": "input statistics",
    "confidence": "doubt",
}
#: the model's view (trained on these labels, or an encoder's; with the model's doubt) and the
#: input's own: each view's spaces are averaged, then the views weigh the same
#: (``combine="views"``)
MODEL_VIEW = ("features", "gradients", "embeddings", "confidence")
#: the least scale of the doubt's z (in probability; the doubt's own upper-tail scale where
#: larger: 0.18-0.20 on the benchmark mixes): a model sure of nearly every row (the 1M
#: benchmark: median doubt 1.2e-5, 99.9th percentile 0.010) would read a row it gives 99% as
#: far (z in the hundreds, its outlier queue taken by its least sure rows); with it, a row the
#: model gives 90% scores a z of at most 1, and no z exceeds (1 - 1 / classes) / 0.1
DOUBT_SCALE = 0.1
#: spaces measured by the mean distance to the k nearest samples (the others: Mahalanobis to
#: the nearest class), and the neighbour space each reads
KNN_SPACES = {"embeddings": "embeddings/last/unit", "statistics": "pixels/stats"}
#: an encoder's embeddings are measured against the bulk: the samples whose first kNN distance
#: is below this upper-tail z (a normal's 95% point: 5% of a clean bulk left out), so that a
#: group from one other source is not its own neighbourhood (:func:`_past_the_group`)
BULK_Z = 1.645
#: markup that carries no text of its own: HTML / XML tags and comments, character entities,
#: BBCode tags, template placeholders (a text of nothing else is scraping residue, no content)
MARKUP = re.compile(
    r"<[A-Za-z/!][^<>]*>|&(?:[A-Za-z]+|#[0-9]+|#x[0-9A-Fa-f]+);|\[/?[A-Za-z]+(?:=[^\]]*)?\]"
    r"|\{\{.*?\}\}|\{%.*?%\}"
)


#: the size bonus from which the card names the smaller object (half a scale: 1.5 px beyond
#: the dead zone; a digit 2 px smaller than the data's reads 0.33 and is not called small)
CARD_SIZE_BONUS = 0.5


class OutlierIssue(IssueType):
    """Outliers.

    Args:
        spaces: spaces measured in (any of ``features``, ``gradients``, ``embeddings``,
            ``statistics``, ``pixels``, ``confidence``; the first three are compared in
            direction, rows scaled to unit length; ``pixels``: standardised 16 x 16
            signatures; ``confidence``: the model's doubt, ``1 - max softmax``, z-scored as is
            on a scale of at least :data:`DOUBT_SCALE`, beside the features or gradients only).
            With the encoder's embeddings, those
            replace the features, gradients and doubt; spaces a run lacks are skipped.
        combine: ``views`` (the mean of the two views' means: the model's spaces, the
            input's; far in both views: an atypical but clean input is far in one, an input
            from elsewhere in both, and an input the model takes for a class member is not
            out-voted by the model's second space), ``mean`` (of every space alike) or
            ``max`` (far in some space) of the spaces' z-scores.
        threshold: flagged at a combined upper-tail z-score
            (:func:`~ogad_core.issues.tail.upper_z`) of the log distance of at least this.
    """

    name = "outlier"
    title = "Outliers"
    after = ("corrupt", "duplicate")
    threshold_doc = (
        "Mahalanobis distance to the nearest class mean (shared Ledoit-Wolf covariance) in "
        "the model's unit-length features and last-layer gradients, with the model's doubt "
        "(1 - max softmax, on a scale of at least 0.1; not where the corrupt type flags the "
        "sample) (an encoder's embeddings "
        "instead: mean distance to the k nearest samples of the bulk, in its last layer), and mean "
        "distance to the k nearest samples in the images' input statistics (framing, "
        "edge-orientation histogram's shape, effective resolution and an object smaller than "
        "the data's; that size deficit beyond 1 px, on a scale of at least 3 px, also added "
        "to the space's z), each as a z-score of its "
        "log against the upper half of its own distribution, averaged per view (the model's "
        "spaces, the input's), the two views weighing the same; flagged at "
        "z >= 2.5 (at most about 0.6% of a clean bulk); a sample also flagged corrupt is "
        "flagged here when its shape resembles no class it is filed under, else it is corrupt "
        "first and ranks last here"
    )

    def __init__(
        self,
        spaces: tuple[str, ...] = (
            "features",
            "gradients",
            "confidence",
            "embeddings",
            "statistics",
        ),
        combine: str = "views",
        threshold: float = 2.5,
    ) -> None:
        self.spaces = spaces
        self.combine = combine
        self.threshold = threshold

    def fit(self, context: IssueContext) -> OutlierIssue:
        if self.combine not in ("views", "mean", "max"):
            raise ConfigError(f"outlier: combine must be views, mean or max, not {self.combine!r}")
        zs, used = [], []
        for space in self._spaces(context):
            dist = _distance(context, space)
            if dist is None:
                continue
            zs.append(_space_z(dist, space))
            used.append(space)
        self.spaces_used_ = used
        self.space_z_ = np.stack(zs, axis=1) if zs else np.zeros((context.n, 0))
        self._add_size_bonus(context, used)
        if not zs:
            self.deferred_ = np.zeros(context.n, dtype=bool)
            self.last_ = np.zeros(context.n, dtype=bool)
            self.copied_ = np.zeros(context.n, dtype=bool)
            self._finish(np.zeros(context.n), np.inf)
            return self
        scores = combine_spaces(self.space_z_, used, self.combine)
        scores[_undecoded(context)] = 0.0  # no input: nothing to place among the data
        self.copied_ = _copied(context, scores < self.threshold)
        scores = self._primary(context, scores)
        scores = last_of_all(scores, self.copied_ & ~self.last_, self.threshold)
        scores = last_of_all(scores, self.last_, self.threshold)  # the corrupt first below
        self._finish(scores, self.threshold)
        return self

    def _add_size_bonus(self, context: IssueContext, used: list[str]) -> None:
        """Add each image's (N,) small-object bonus to the statistics space's z in
        ``space_z_`` (N, spaces) when that space is used and the registration images exist;
        ``object_px_`` (N,) and ``median_px_`` keep the sizes for the card (None without)."""
        self.object_px_: np.ndarray | None = None
        self.median_px_ = 0.0
        sizes = context.object_sizes()  # None without one registration image a sample
        if "statistics" not in used or sizes is None:
            return
        from ogad_core.issues.features import small_object_bonus

        bonus = small_object_bonus(context.registration, size=sizes[:, 1])
        self.space_z_[:, used.index("statistics")] += bonus
        self.object_px_ = np.where(bonus >= CARD_SIZE_BONUS, sizes[:, 1], np.nan)
        self.median_px_ = float(np.median(sizes[:, 1]))

    def _smaller_object(self, i: int) -> str:
        """The card's words for a sample whose object is smaller than the data's (a size
        bonus of at least CARD_SIZE_BONUS), else ""."""
        if self.object_px_ is None or not np.isfinite(self.object_px_[i]):
            return ""
        px, median = self.object_px_[i], self.median_px_
        return f"a smaller object than this dataset's ({px:.0f} px a side against {median:.0f}); "

    def _primary(self, context: IssueContext, scores: np.ndarray) -> np.ndarray:
        """(N,) scores with the samples whose primary type is ``corrupt`` unflagged and ranked
        last when their shape or file says so (whatever their score here), else (no pixels to
        compare: text) still flagged after the other flags; the corrupt type defers the
        samples whose primary type is this one (flagged here, resembling no class)."""
        self.deferred_ = np.zeros(context.n, dtype=bool)
        self.last_ = np.zeros(context.n, dtype=bool)
        corrupt = context.results.get("corrupt")
        if corrupt is None:
            return scores
        flagged = np.asarray(corrupt.flagged_, dtype=bool)
        damage = file_damage(corrupt) | _wordless(context, flagged)  # corrupt first
        above = scores >= self.threshold
        ours, member = np.zeros_like(flagged), damage.copy()
        for part in (flagged & above & ~damage, flagged & ~above & ~damage):
            rows = np.flatnonzero(part)  # flagged here or not: one primary type each
            resembles = resembles_its_label(context, rows) if len(rows) else None
            if resembles is not None:
                ours[rows[~resembles]] = True
                member[rows[resembles]] = True  # a damaged member of its class: not an outlier
        ours &= above & ~self.copied_  # outlier first only where flagged here
        self.deferred_ = flagged & ~ours
        if hasattr(corrupt, "defer"):
            corrupt.defer(ours, "outlier")
        self.last_ = self.deferred_ & member  # below the threshold too: no outlier's place
        scores = after_the_others(scores, self.deferred_ & ~member, self.threshold)
        return last_of_all(scores, self.last_, self.threshold)

    def neighbour_spaces(self, context: IssueContext) -> set[str]:
        """The kNN spaces measured (:data:`KNN_SPACES`: the encoder's embeddings, the input
        statistics); the others are Mahalanobis distances."""
        return {KNN_SPACES[s] for s in self._spaces(context) if s in KNN_SPACES}

    def _spaces(self, context: IssueContext) -> list[str]:
        """The spaces measured: the encoder's embeddings replace the features and gradients;
        without features, the gradients alone."""
        spaces = list(self.spaces)
        if "embeddings" in spaces and context.space("embeddings") is not None:
            # the encoder's own geometry (the head's gradients on it: measured worse on text)
            spaces = [s for s in spaces if s not in ("features", "gradients", "confidence")]
        elif "features" in spaces and context.space("features") is None:
            spaces = [("gradients" if s == "features" else s) for s in spaces]
        if not {"features", "gradients"} & set(spaces):  # the doubt joins a model's distance
            spaces = [s for s in spaces if s != "confidence"]
        return list(dict.fromkeys(spaces))

    def explain(self, i: int) -> str:
        if not self.spaces_used_:
            return "no space to measure outliers in"
        names = [SPACE_NAMES.get(s, s) for s in self.spaces_used_]
        zs = ", ".join(  # a space left out for this sample (NaN: the doubt) is not shown
            f"{n} z = {z:.1f}"
            for n, z in zip(names, self.space_z_[i], strict=True)
            if np.isfinite(z)
        )
        # a kNN space (an encoder's embeddings, the input statistics) has no classes
        far_from = "every class" if set(self.spaces_used_) - set(KNN_SPACES) else "the data"
        line = f"{self._smaller_object(i)}far from {far_from} ({zs})"
        if self.copied_[i]:
            return f"{line}; in a duplicate set (its copy is in the data: ranked last here)"
        if not self.deferred_[i]:
            return line
        where = "ranked last" if self.last_[i] else "after the others" if self.flagged_[i] else ""
        return f"{line}; corrupt first ({where} here)" if where else f"{line}; corrupt first"


def combine_spaces(space_z: np.ndarray, spaces: list[str], combine: str) -> np.ndarray:
    """(N,) score from (N, S) per-space z-scores of the named ``spaces`` (NaN where a space
    has no value for a sample: it is left out): their ``max``, their ``mean``, or (``views``)
    the mean of the model's view (:data:`MODEL_VIEW` spaces) and the input's (the others),
    each the mean of its spaces; a view with no value for a sample leaves the other alone."""
    z = np.where(np.isfinite(space_z), space_z, np.nan)
    model = np.isin(spaces, MODEL_VIEW)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a sample with no value in a view
        if combine == "max":
            out = np.nanmax(z, axis=1)
        elif combine == "mean" or model.all() or not model.any():
            out = np.nanmean(z, axis=1)
        else:
            out = np.nanmean(
                np.column_stack([np.nanmean(z[:, model], 1), np.nanmean(z[:, ~model], 1)]), 1
            )
    return np.nan_to_num(out, nan=0.0)


def _distance(context: IssueContext, space: str) -> np.ndarray | None:
    """(N,) distance of each sample from the data in ``space`` (None when the run lacks it):
    the Mahalanobis distance to the nearest class for the model's own (trained) spaces and
    pixels; for an encoder's embeddings, not trained on these labels (classes are not one
    Gaussian each there: topics spread them), the mean distance to the k nearest samples
    (cleanlab's outlier score; above ANN_MIN_ROWS rows in a 16-d PCA, among a seeded
    REFERENCE_ROWS subsample)."""
    if space in KNN_SPACES:
        reference = min(context.n, REFERENCE_ROWS)
        name = KNN_SPACES[space] + ("/pca" if context.n > ANN_MIN_ROWS else "")
        found = context.neighbours(name, default_k(reference), reference=reference)
        if found is None:
            return None
        out = found[0].mean(axis=1).astype(np.float64)
        if space == "embeddings":  # a group from one source masks itself: measure past it
            out = _past_the_group(context, name, out, found[1], reference)
        pixels = context.signatures
        if space == "statistics" and pixels is not None:  # undecodable: no pixels to measure
            out[~np.isfinite(pixels).all(axis=1)] = np.nan
        return out
    if space == "confidence":
        return _doubt(context)
    if space == "gradients":  # rows scaled as read: no (N, D) copy of the gradients
        grads = context.gradients
        if grads is None or len(grads) != context.n or context.n < 3:
            return None
        rows = unit_directions(grads, seed=context.seed)  # a PCA of them when wide
        return class_mahalanobis(rows, context.labels, seed=context.seed)  # type: ignore[arg-type]
    matrix = context.space("pixels/standard" if space == "pixels" else f"{space}/unit")
    if matrix is None:
        return None
    finite = np.isfinite(matrix).all(axis=1)  # an undecodable image has no pixels
    if finite.all():
        return class_mahalanobis(matrix, context.labels, seed=context.seed)
    out = np.full(context.n, np.nan)
    if finite.sum() > 2:
        out[finite] = class_mahalanobis(matrix[finite], context.labels[finite], seed=context.seed)
    return out


def _space_z(dist: np.ndarray, space: str) -> np.ndarray:
    """(N,) upper-tail z-score of a space's (N,) distances: of their log; the doubt's (a
    probability) of the value itself, on a scale of at least :data:`DOUBT_SCALE`."""
    if space == "confidence":
        return upper_z(dist, min_scale=DOUBT_SCALE)
    return upper_z(np.log(np.maximum(dist, 1e-12)))


def _doubt(context: IssueContext) -> np.ndarray | None:
    """(N,) the model's doubt, ``1 - max softmax`` (Hendrycks & Gimpel 2017's baseline: an
    input of no class spreads the probability over several), from the run's ``confidence``
    column (the predicted class's probability); None without it. NaN (left out of the model's
    view) where the ``corrupt`` type flags the sample: damage (noise, blur, exposure) lowers
    the confidence of a member of a class, so the doubt is the damage's, not the input's."""
    conf = context.samples.get("confidence")
    if conf is None or len(conf) != context.n:
        return None
    doubt = 1.0 - np.clip(conf.to_numpy(dtype=np.float64), 0.0, 1.0)
    corrupt = context.results.get("corrupt")
    if corrupt is not None and len(corrupt.flagged_) == context.n:
        doubt[np.asarray(corrupt.flagged_, dtype=bool)] = np.nan
    return doubt


def _past_the_group(
    context: IssueContext, name: str, first: np.ndarray, nearest: np.ndarray, reference: int
) -> np.ndarray:
    """(N,) mean distance to the k nearest samples of the BULK in space ``name``: the
    reference samples whose ``first`` (N,) kNN distance is not in its upper tail (z below
    :data:`BULK_Z`). Sentences from one other source are each other's nearest: among all
    samples a group masks itself (k below its size), while its distance to the bulk is what
    sets it apart. Only the samples with one of their (N, k) ``nearest`` (the first search,
    among ``reference`` seeded rows) outside the bulk are searched again: for the others the
    k nearest of the bulk are the k nearest found. ``first`` where the bulk is too small."""
    rows = context.reference_rows(reference)
    in_bulk = np.zeros(context.n, dtype=bool)
    in_bulk[rows[upper_z(np.log(np.maximum(first, 1e-12)))[rows] < BULK_Z]] = True
    again = np.flatnonzero(~(in_bulk[np.maximum(nearest, 0)] & (nearest >= 0)).all(axis=1))
    k = nearest.shape[1]
    if not len(again) or in_bulk.sum() <= k + 1:
        return first
    found = context.neighbours_among(name, k, np.flatnonzero(in_bulk), again)
    if found is None:
        return first
    out = first.copy()
    out[again] = found[0].mean(axis=1)
    return out


def _copied(context: IssueContext, typical: np.ndarray) -> np.ndarray:
    """(N,) bool: samples the ``duplicate`` type flags in a set with a (N,) ``typical`` member
    (one not flagged here), when it runs. Such a sample's copy is a typical member of the
    data: no input from elsewhere. It is the duplicate type's first (its set's card shows
    both), not flagged here and ranked last, as a damaged member of a class is the corrupt
    type's (one primary type each). A copy under another label is far in the gradients, which
    carry the label, and a transformed copy (shifted, rotated, re-encoded) is atypical: on the
    held-out mix they took 1-5 of the outlier top 50 a seed. A set whose members are all far
    (two templated docstrings from another domain) stays here."""
    duplicate = context.results.get("duplicate")
    if duplicate is None or len(duplicate.flagged_) != context.n:
        return np.zeros(context.n, dtype=bool)
    sets = np.asarray(duplicate.set_ids_, dtype=np.int64)
    in_set = np.asarray(duplicate.flagged_, dtype=bool) & (sets >= 0)
    if not in_set.any():
        return in_set
    with_typical = np.zeros(int(sets.max()) + 1, dtype=bool)
    np.logical_or.at(with_typical, sets[in_set], typical[in_set])
    return in_set & with_typical[np.maximum(sets, 0)]


def _undecoded(context: IssueContext) -> np.ndarray:
    """(N,) bool: image files that could not be decoded (the model saw a stand-in)."""
    table = context.inputs
    if table is None or "decoded" not in table or len(table) != context.n:
        return np.zeros(context.n, dtype=bool)
    return ~table["decoded"].fillna(False).to_numpy(dtype=bool)


def _wordless(context: IssueContext, rows: np.ndarray) -> np.ndarray:
    """(N,) bool: of the (N,) bool ``rows``, the texts without a letter outside :data:`MARKUP`
    (digits, symbols, punctuation, tags alone: no word to place among the data, as an
    undecodable image has no pixels); False for images."""
    table = context.inputs
    out = np.zeros(context.n, dtype=bool)
    if table is None or "letters" not in table or len(table) != context.n:
        return out
    out[rows] = table["letters"].fillna(1.0).to_numpy(dtype=np.float64)[rows] <= 0.0
    texts = context.samples["ref"].astype(str).to_numpy()
    for i in np.flatnonzero(rows & ~out):
        out[i] = not any(c.isalpha() for c in MARKUP.sub(" ", texts[i]))
    return out


def file_damage(corrupt: IssueType) -> np.ndarray:
    """(N,) bool: flagged for a property of :data:`CORRUPT_FIRST` (no content to place, or
    the file's): corrupt first, whatever the content looks like."""
    parts = getattr(corrupt, "parts_", None)
    flagged = np.asarray(corrupt.flagged_, dtype=bool)
    columns = [c for c in CORRUPT_FIRST if parts is not None and c in parts.columns]
    if parts is None or not columns:
        return np.zeros_like(flagged)
    return flagged & (parts[columns].to_numpy() >= corrupt.threshold_).any(axis=1)


def resembles_its_label(context: IssueContext, rows: np.ndarray, k: int = 10) -> np.ndarray | None:
    """(m,) bool for (m,) ``rows``: the sample's label is the strict plurality among
    the labels of its k nearest samples in the standardised pixel space (an exact search among
    at most REFERENCE_ROWS others), the other ``rows`` left out (a group of inputs from one
    source would vote for each other); None without pixels."""
    from ogad_core.space.knn import flat_index, hnsw_search

    reference = np.setdiff1d(np.arange(context.n), rows)
    if len(reference) > REFERENCE_ROWS:  # a seeded subsample: an exact search stays cheap
        rng = np.random.default_rng(context.seed)
        reference = np.sort(rng.choice(reference, size=REFERENCE_ROWS, replace=False))
    if len(reference) == 0:
        return None
    # only the rows searched and searched among are standardised (not all N)
    matrix = context.space("pixels/standard", rows=np.concatenate([reference, rows]))
    if matrix is None:
        return None
    Z = np.nan_to_num(np.asarray(matrix, dtype=np.float32), nan=0.0)
    among, searched = Z[: len(reference)], Z[len(reference) :]
    found = hnsw_search(flat_index(among), searched, min(k, len(reference)))[1]
    codes = np.unique(np.asarray(context.labels), return_inverse=True)[1].reshape(-1)
    neighbours = codes[reference[np.maximum(found, 0)]]
    votes = np.stack([(neighbours == c).sum(axis=1) for c in range(int(codes.max()) + 1)], 1)
    own = votes[np.arange(len(rows)), codes[rows]]
    votes[np.arange(len(rows)), codes[rows]] = -1
    resembles = own > votes.max(axis=1)
    resembles[~resembles] = _vote_without_damage(context, rows[~resembles], reference, codes, k)
    return resembles


def _vote_without_damage(
    context: IssueContext, rows: np.ndarray, reference: np.ndarray, codes: np.ndarray, k: int
) -> np.ndarray:
    """(m,) bool for (m,) ``rows`` that resemble no class as they are: resemble their label
    once the damage the ``corrupt`` type found (a negative, noise, a motion blur, stripes, a
    block: they dominate the standardised pixels) is taken out
    (:mod:`ogad_core.issues.undamaged`; among at most DAMAGE_REFERENCE of the ``reference``
    rows); False where there is none to take out."""
    damage = _damage_to_take_out(context, rows)
    if damage is None or context.registration is None:
        return np.zeros(len(rows), dtype=bool)
    if len(reference) > DAMAGE_REFERENCE:
        rng = np.random.default_rng(context.seed)
        reference = np.sort(rng.choice(reference, size=DAMAGE_REFERENCE, replace=False))
    return undamaged_votes(context.registration, codes, rows, damage, reference, k)


def _damage_to_take_out(context: IssueContext, rows: np.ndarray) -> dict[str, np.ndarray] | None:
    """Part name -> (N,) bool: the samples the ``corrupt`` type flags for a damage
    :mod:`ogad_core.issues.undamaged` takes out; None when there is none among ``rows`` or no
    registration images to take it out of."""
    corrupt = context.results.get("corrupt")
    parts = getattr(corrupt, "parts_", None)
    registration = context.registration
    if corrupt is None or parts is None or not len(rows):
        return None
    if registration is None or len(registration) != context.n:
        return None
    damage = {
        name: parts[name].to_numpy() >= corrupt.threshold_
        for name in UNDAMAGED_PARTS
        if name in parts.columns
    }
    return damage if any(d[rows].any() for d in damage.values()) else None
