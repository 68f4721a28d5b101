"""``corrupt``: inputs that carry little information or cannot be read.

Images (inputs.parquet, made in the thumbnails' decode pass): undecodable, near-constant, very
dark / bright, blurry / noisy, tiny, odd aspect, and damage that keeps brightness and contrast
in range: occluded (a large flat square of another value than the background), periodic
(scan lines, stripes: a peak at one row or column frequency of period 2-4 px), blocky (JPEG
blocking on the 8 x 8 grid) and over-compressed (the file's JPEG quality far below the data's).
From the 32 x 32 registration images of the same pass (every image at one common size, so a
larger file of the same content is not blurrier): noise (the median absolute finest diagonal
wavelet detail over 0.6745, Donoho and Johnstone's robust estimate of the noise's standard
deviation: a clean digit's background gives 0; it joins *noisy*, the Laplacian's sharpness,
which strokes raise too), motion blur (along one direction no
one-pixel step reaches a quarter of the image's range, across it one is twice the largest
along it; smooth content, soft every way, is not motion-blurred) and pixelated (most
neighbouring pixels at mid-grey equal, and the changes on few lines: an image upscaled by
pixel blocks from one about :data:`SIZE_FACTOR` times smaller; a photo's flat areas change
along every line) and cut by the frame (ink on one edge line only, where the data's images keep
that edge empty, and the far half of the image empty: content shifted half out of the image, a
bad crop; a centred digit that touches the frame reaches past the middle, a photo crop's
content several edges, and in a dataset of photos no edge is kept empty) and inverted (a flat
frame at the other end of the image's range from the data's: a negative; a bright photo
crop's frame is not flat, nor are the frames of a dataset of photos).
Texts: empty, very short (under two words, except a one-word sentence: "Shallow." is a
review, "Spider-Ma" or "zeu" a fragment), not language (few letters, or under 60% of its words
known: used by another text of the corpus or English-like, :mod:`~ogad_core.issues.wordlike`,
so that a short review of rare words in a small dataset is language), repetitive (one word said
over and over), cut off (ends mid-word, or a short text ends on an article, a preposition, a
conjunction or an auxiliary: cut on a word boundary) and out of order (words in no order of
language: :mod:`~ogad_core.issues.word_order`). Each property is a robust z-score
against the run's own data (so a dataset of dark X-rays is not all "dark"), sizes a log-ratio
to the median; a sample's score is its worst property's.

A type fitted after this one may take a flagged sample as its own first (:meth:`defer`: the
``outlier`` type takes an input whose shape resembles no class it is filed under, as a bright
photo crop among digits): it stays flagged here, ranked after the other flags.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from ogad_core.issues.base import IssueContext, IssueType, robust_z
from ogad_core.issues.tail import after_the_others
from ogad_core.issues.word_order import cut_off, order_scores

#: scores of properties that are a flag on their own (undecodable, empty, near-constant)
HARD = 100.0
#: a side this many times below the median (or an aspect this far from it) scores the threshold
SIZE_FACTOR = 4.0
#: dark / bright / low contrast must also be so in absolute terms (mean / std of pixels in
#: [0, 1]), so that a photo among sketches is left to ``outlier`` rather than called corrupt
#: blurry / noisy must also be this many times less / more sharp than the median image
BLUR_FACTOR, NOISE_FACTOR = 4.0, 2.0
ABSOLUTE = {
    "very dark": 0.15,
    "very bright": 0.85,
    "low contrast": 0.08,
    "few letters": 0.6,
    "not language": 0.6,
    "repetitive": 0.5,
    # a text's consecutive tokens less likely together than apart (mean PMI below 0):
    # Rotten Tomatoes' clean reviews 0.55 median, word salad -0.4 to -0.9
    "out of order": 0.0,
    "periodic": 0.1,
    "occluded": 0.1,
    "blocky": float(np.log(2.0)),
    # a blur of length L caps a one-pixel step at 1 / L of the range: a ramp of 4 px or more
    "motion blur": 1.0 / BLUR_FACTOR,
    # MNIST digits box-downsampled 4x and upscaled by pixel blocks: 0.48 median (10th pct
    # 0.43), 3.5x 0.36, 2x 0.09; clean digits of the three benchmark mixes at most 0.29
    "pixelated": 0.4,
    # noise level (in [0, 1]) of the 32 x 32 images: clean digits of the three benchmark mixes
    # at most 0.003, photo crops among them 0.02, 2-3 x 3 upscaled rasters 0.026; Gaussian noise
    # of sigma 80 / 255 0.058-0.078, salt-and-pepper 0.047-0.14
    "noise level": 0.03,
}
#: pixelated also needs this share of the row and column lines inside the content to carry
#: no change (pixel blocks 4x the pixel: 0.46-0.52; clean digits at most 0.30, photo crops
#: with flat areas 0.16)
EMPTY_LINES = 1.0 / 3.0
#: motion blur: the sharpest direction's largest step at least this many times the softest's
#: (motion-blurred digits 2.6-9.5; smooth crops and Gaussian-blurred digits, soft every way,
#: mostly 1.2-2.3; clean digits are never that soft: their softest step is at least 0.38)
MOTION_RATIO = 2.0
#: cut by the frame: ink is a pixel at least this share of the image's range from its median
#: (its background, an inverted digit's white included)
INK_SHARE = 0.25
#: cut by the frame only where the data keeps the frame empty: an edge line counts when at
#: least this share of the run's images have no ink on it (the digit mixes: 97-98% on every
#: edge; photos, whose content always reaches the frame, never)
EMPTY_EDGE_SHARE = 0.95
#: inverted: a frame is flat when FRAME_FLAT of its pixels lie within FRAME_TOL (of the image's
#: range) of their median (clean digits: 1.0; bright photo crops 0.45-0.89); only where the
#: data's frames are flat (a background of one value to be the negative of)
FRAME_FLAT, FRAME_TOL = 0.95, 0.1
#: the edge lines in the order of :func:`frame_lines`
EDGES = ("top", "bottom", "left", "right")
#: a JPEG whose quality is this many times below the data's median (JPEG_QUALITY when fewer than
#: half the images are JPEGs) scores the threshold, as a side :data:`SIZE_FACTOR` x below
JPEG_FACTOR, JPEG_QUALITY = 4.0, 75.0
#: a text needs this many words before its share of distinct words says anything
REPEAT_MIN_WORDS = 4
_PUNCT = ".,!?;:'\"()[]{}-–—…*/"
#: a one-word sentence: a word of letters (hyphens and apostrophes inside it) closed by a full
#: stop, exclamation or question mark -- a complete one-word review, not a fragment
_ONE_WORD_SENTENCE = re.compile(r"[^\W\d_]+(?:[-'’][^\W\d_]+)*[.!?…]+")
#: letters a one-word sentence needs ("Ok." is too little to say)
SENTENCE_MIN_LETTERS = 3


def one_word_sentences(texts: list[str]) -> np.ndarray:
    """(N,) bool: each text is one word of at least :data:`SENTENCE_MIN_LETTERS` letters closed
    by sentence punctuation ("Execrable.", "Kid-friendly.", "Exceptional!")."""
    return np.array(
        [
            bool(_ONE_WORD_SENTENCE.fullmatch(t.strip()))
            and sum(c.isalpha() for c in t) >= SENTENCE_MIN_LETTERS
            for t in texts
        ],
        dtype=bool,
    )


def distinct_word_share(texts: list[str]) -> np.ndarray:
    """(N,) share of distinct words among each text's words (punctuation stripped, lower case);
    1.0 for a text of fewer than :data:`REPEAT_MIN_WORDS` words."""
    share = np.ones(len(texts))
    for i, text in enumerate(texts):
        words = [w for w in (w.strip(_PUNCT) for w in text.lower().split()) if w]
        if len(words) >= REPEAT_MIN_WORDS:
            share[i] = len(set(words)) / len(words)
    return share


def known_word_share(tokens: list[set[str]], doc_freq: dict[str, int]) -> np.ndarray:
    """(N,) share of each text's distinct words (lower case, punctuation stripped) that another
    text of the corpus uses or that look like English words (:mod:`~ogad_core.issues.wordlike`:
    a rare word of a small corpus is still language); 0 for a text without words."""
    from ogad_core.issues.wordlike import english_words

    model = english_words()
    vocabulary = {w for toks in tokens for w in toks}
    wordlike = {w for w in vocabulary if model is not None and model.is_wordlike(w)}
    return np.array(
        [
            np.mean([doc_freq[w] > 1 or w in wordlike for w in toks]) if toks else 0.0
            for toks in tokens
        ]
    )


def _spread(values: np.ndarray) -> float:
    """1.4826 x the median absolute deviation of (n,) values (1.0 when zero)."""
    spread = 1.4826 * float(np.median(np.abs(values - np.median(values))))
    return spread if spread > 1e-12 else 1.0


def _blur(log_sharp: np.ndarray, side_ratio: np.ndarray, ok: np.ndarray) -> tuple[np.ndarray, ...]:
    """(N,) robust z and (N,) log ratio to the median of the (N,) log sharpness, a file larger
    than the data's median side (``side_ratio`` > 1) forgiven the sharpness its size costs
    (the Laplacian per pixel falls with the square of the scale: a 2x upscaled copy measured
    4.4x less sharp), so that a bigger file of the same content is not blurrier."""
    at_common_size = log_sharp + 2 * np.log(np.maximum(side_ratio, 1.0))
    ratio = at_common_size - np.median(at_common_size[ok]) if ok.any() else np.zeros(len(ok))
    return robust_z(at_common_size), ratio


def empty_line_share(registration: np.ndarray, tol: float = 0.02) -> np.ndarray:
    """(N,) the smaller over rows and columns of the share of each (N, side, side) image's
    lines between neighbouring pixels, from its first to its last line with a change, where
    the image changes by at most ``tol`` of its busiest line's total: inside pixel blocks it
    does not change at all, so most lines of an image upscaled by blocks are empty. Chunk by
    chunk, one compiled pass an image."""
    from ogad_core.issues.features import image_chunks
    from ogad_core.issues.property_loops import empty_lines_loop

    out = np.zeros(len(registration))
    for rows, chunk in image_chunks(registration):
        empty_lines_loop(chunk, tol, out[rows])
    return out


def edge_steps(registration: np.ndarray) -> np.ndarray:
    """(N, 4) the largest one-pixel step of each (N, side, side) uint8 image along its columns,
    rows and two diagonals, over its range (darkest to brightest): a blur of length L along a
    direction caps that direction's at about 1 / L (sharp digits 0.38-1.0 along every one,
    an upright 1 as well). Chunk by chunk, one compiled pass an image."""
    from ogad_core.issues.features import image_chunks
    from ogad_core.issues.property_loops import edge_steps_loop

    out = np.zeros((len(registration), 4))
    for rows, chunk in image_chunks(registration):
        edge_steps_loop(chunk, out[rows])
    return out


def noise_level(registration: np.ndarray) -> np.ndarray:
    """(N,) each (N, side, side) uint8 image's noise standard deviation in [0, 1]: the median
    absolute finest diagonal (Haar) wavelet detail over 0.6745 (Donoho and Johnstone's robust
    estimate: strokes and edges occupy few of the details, so the median reads the noise; a
    clean digit's flat background gives 0). Chunk by chunk."""
    from ogad_core.issues.features import CHUNK_ROWS

    out = np.zeros(len(registration))
    for start in range(0, len(registration), CHUNK_ROWS):
        X = np.asarray(registration[start : start + CHUNK_ROWS], dtype=np.float32) / 255.0
        detail = (X[:, 0::2, 0::2] - X[:, 0::2, 1::2] - X[:, 1::2, 0::2] + X[:, 1::2, 1::2]) / 2
        out[start : start + len(X)] = np.median(np.abs(detail), axis=(1, 2)) / 0.6745
    return out


def frame_lines(registration: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, 4) bool: ink on each (N, side, side) image's top, bottom, left and right edge line;
    (N, 4) int: the lines without ink counted in from the opposite edge (the far side's empty
    band). Ink: at least :data:`INK_SHARE` of the image's range from its median. Chunk by
    chunk, one compiled pass an image after the medians."""
    from ogad_core.issues.features import image_chunks
    from ogad_core.issues.property_loops import frame_lines_loop

    touch = np.zeros((len(registration), 4), dtype=bool)
    far_empty = np.zeros((len(registration), 4), dtype=np.int64)
    for rows, chunk in image_chunks(registration):
        background = np.median(chunk.reshape(len(chunk), -1), axis=1)  # uint8: 5x faster
        frame_lines_loop(chunk, background, INK_SHARE, touch[rows], far_empty[rows])
    return touch, far_empty


def frame_background(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(n,) median of each (n, side, side) image's outermost pixels (its background) and (n,)
    the share of them within FRAME_TOL of it (1: a flat frame, as a digit's); images in [0, 1]
    (each in its own range)."""
    frame = np.concatenate(
        [images[:, 0], images[:, -1], images[:, 1:-1, 0], images[:, 1:-1, -1]], axis=1
    )
    background = np.median(frame, axis=1)
    return background, (np.abs(frame - background[:, None]) <= FRAME_TOL).mean(axis=1)


def frames(registration: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`frame_background` of (N, side, side) uint8 images, each rescaled from its
    darkest to its brightest value. Chunk by chunk."""
    from ogad_core.issues.features import image_chunks
    from ogad_core.issues.undamaged import normalised

    parts = [frame_background(normalised(chunk)) for _, chunk in image_chunks(registration)]
    return np.concatenate([b for b, _ in parts]), np.concatenate([f for _, f in parts])


def _shade(value: float) -> str:
    """A background's value (in [0, 1] of its image's range) in words."""
    return "white" if value > 2 / 3 else "black" if value < 1 / 3 else "grey"


class CorruptIssue(IssueType):
    """Corrupt inputs.

    Args:
        threshold: flagged at a property z-score of at least this.
        constant_std: images whose pixel standard deviation (in [0, 1]) is below this are
            near-constant.
        min_words: texts with fewer words are very short (a two-word review is a review, and
            so is a one-word sentence: :func:`one_word_sentences`).
    """

    name = "corrupt"
    title = "Corrupt"
    threshold_doc = (
        "a property 5 robust standard deviations from the data's own (brightness below 0.15 or "
        "above 0.85, contrast below 0.08, sharpness 4x below (a larger file than the median "
        "forgiven its scale) or 2x above the median or a noise level of 0.03 (at 32 x 32: the "
        "median absolute finest wavelet detail / 0.6745), a flat "
        "patch of a tenth of the image, 10% of the power at one row or column frequency of "
        "period 2-4 px, "
        "twice the jumps on the 8 x 8 grid; at the common 32 x 32 size: no one-pixel step along "
        "one direction above a quarter of the range and one across it twice that, 40% of the "
        "pairs of neighbouring pixels at mid-grey equal and a third of the lines unchanged; "
        "cut by the frame: ink on one edge line only, one that 95% of the data's images keep "
        "empty, and the far half of the image empty; inverted: a flat frame at the other end "
        "of the image's range from the data's flat frames; "
        "letters "
        "of a text; distinct words below half of a text's; its words known -- used by another "
        "text or English-like by the encoder vocabulary's letter trigrams -- below 60%), a side "
        "or a JPEG quality 4x below the median, or "
        "undecodable / empty / near-constant (std < 0.02) / one word (not a one-word "
        "sentence: 'Shallow.') / a text cut mid-word or a text of at most 5 words ending on "
        "an article, preposition, conjunction or auxiliary ('It's all about'); "
        "letters count below 60% of the characters only; a text's words out of order: z >= 5 "
        "of minus its word pairs' information under a class bigram model of the run's texts"
    )

    def __init__(
        self, threshold: float = 5.0, constant_std: float = 0.02, min_words: int = 2
    ) -> None:
        self.threshold = threshold
        self.constant_std = constant_std
        self.min_words = min_words

    def fit(self, context: IssueContext) -> CorruptIssue:
        table = context.inputs
        self._mean: np.ndarray | None = None  # (N,) mean pixel of images (_image_parts)
        self._cut: tuple[np.ndarray, ...] | None = None  # (N,) each: _frame_cut's
        self._cut_words: list[str] = []  # (N,) text: "last -> the word it starts" or ""
        self._frames: tuple[np.ndarray, float] | None = None  # (N,) backgrounds, the data's
        self._side = 0
        if table is None:
            parts = pd.DataFrame(index=range(context.n))
        elif "sharpness" in table:
            parts = self._image_parts(table, context)
        else:
            parts = self._text_parts(table, context.samples["ref"].astype(str).tolist())
        self.parts_ = parts.fillna(0.0)
        errors = None if table is None else table.get("error")
        self._errors = None if errors is None else errors.fillna("").astype(str).to_numpy()
        scores = self.parts_.max(axis=1).to_numpy() if len(parts.columns) else np.zeros(context.n)
        self.deferred_ = np.zeros(context.n, dtype=bool)
        self.deferred_to_ = ""
        self._finish(np.maximum(scores, 0.0), self.threshold)
        return self

    def neighbour_spaces(self, context: IssueContext) -> set[str]:
        """None: the input properties only."""
        return set()

    def defer(self, rows: np.ndarray, to: str) -> None:
        """The flagged samples of (N,) bool ``rows`` are issue type ``to``'s first: still
        flagged here (the damage is the input's own), ranked after the other flags (their
        order kept)."""
        self.deferred_ = np.asarray(rows, dtype=bool) & self.flagged_
        self.deferred_to_ = to
        scores = after_the_others(self.scores_, self.deferred_, self.threshold_)
        self._finish(scores, self.threshold_)

    def _image_parts(self, t: pd.DataFrame, context: IssueContext) -> pd.DataFrame:
        ok = t["decoded"].to_numpy(dtype=bool)
        std = t["std"].to_numpy(dtype=np.float64)
        mean = t["mean"].to_numpy(dtype=np.float64)
        self._mean = mean  # the explanation names a near-constant image's brightness
        self._mean_median = float(np.median(mean[ok])) if ok.any() else 0.5
        mean_z = robust_z(mean)
        log_sharp = np.log(np.maximum(t["sharpness"].to_numpy(np.float64), 1e-3))
        sharp_z = robust_z(log_sharp)
        sharp_ratio = log_sharp - np.median(log_sharp[ok]) if ok.any() else np.zeros(len(t))
        width = t["width"].to_numpy(np.float64)
        height = t["height"].to_numpy(np.float64)
        side = np.minimum(width, height)
        aspect = np.log(np.maximum(width, 1) / np.maximum(height, 1))
        scale = self.threshold / np.log(SIZE_FACTOR)
        med_side = float(np.median(side[ok])) if ok.any() else 1.0
        blur_z, blur_ratio = _blur(log_sharp, side / med_side, ok)
        parts = pd.DataFrame(
            {
                "undecodable": np.where(ok, 0.0, HARD),
                "near-constant": np.where(std < self.constant_std, HARD, 0.0),
                "low contrast": np.where(
                    std < ABSOLUTE["low contrast"], -robust_z(np.log(np.maximum(std, 1e-3))), 0
                ),
                "very dark": np.where(mean < ABSOLUTE["very dark"], -mean_z, 0),
                "very bright": np.where(mean > ABSOLUTE["very bright"], mean_z, 0),
                "blurry": np.where(blur_ratio < -np.log(BLUR_FACTOR), -blur_z, 0.0),
                "noisy": np.where(sharp_ratio > np.log(NOISE_FACTOR), sharp_z, 0.0),
                "tiny": scale * np.log(med_side / np.maximum(side, 1.0)),
                "odd aspect": scale * np.abs(aspect - np.median(aspect[ok] if ok.any() else 0)),
                **self._damage_parts(t, ok),
                **self._common_size_parts(context, ok),
            }
        )
        parts["noisy"] = np.maximum(parts["noisy"], parts.pop("noise"))
        keep = ok[:, None] | (parts.columns == "undecodable")[None]
        return parts.where(np.broadcast_to(keep, parts.shape), 0.0)

    def _damage_parts(self, t: pd.DataFrame, ok: np.ndarray) -> dict[str, np.ndarray]:
        """Damage that keeps brightness and contrast in range (columns an older run's
        inputs.parquet may lack: those score 0)."""

        def column(name: str) -> np.ndarray:
            values = t[name] if name in t else pd.Series(np.nan, index=t.index)
            return pd.to_numeric(values, errors="coerce").to_numpy(np.float64)

        def beyond(name: str, part: str) -> np.ndarray:
            """robust z where the property reaches its absolute floor (the z's scale at
            least floor / threshold: a property most images lack has no spread of its own)."""
            v = column(name)
            finite = v[np.isfinite(v) & ok]
            if not finite.size:
                return np.zeros(len(v))
            med = float(np.median(finite))
            spread = 1.4826 * float(np.median(np.abs(finite - med)))
            z = (v - med) / max(spread, ABSOLUTE[part] / self.threshold)
            return np.where(v >= ABSOLUTE[part], np.nan_to_num(z), 0.0)

        quality = column("jpeg_quality")
        jpeg = np.isfinite(quality) & ok
        ref = float(np.median(quality[jpeg])) if jpeg.sum() * 2 >= ok.sum() > 0 else JPEG_QUALITY
        self._quality = (quality, ref)  # the explanation names them
        compressed = self.threshold * np.log(ref / np.maximum(quality, 1.0)) / np.log(JPEG_FACTOR)
        return {
            "occluded": beyond("flat_patch", "occluded"),
            "periodic": beyond("periodic", "periodic"),
            "blocky": beyond("blockiness", "blocky"),
            "over-compressed": np.where(jpeg, np.maximum(np.nan_to_num(compressed), 0.0), 0.0),
        }

    def _common_size_parts(self, context: IssueContext, ok: np.ndarray) -> dict[str, np.ndarray]:
        """Motion blur and pixelation, measured on the context's (N, 32, 32) registration
        images (every image at one size); 0 without them (an older run)."""
        registration, flat = context.registration, context.flat_share()
        if registration is None or flat is None or len(registration) != len(ok) or not ok.any():
            names = ("motion blur", "pixelated", "cut by the frame", "inverted", "noise")
            return {name: np.zeros(len(ok)) for name in names}
        steps = edge_steps(registration)
        softest, sharpest = steps.min(axis=1), steps.max(axis=1)
        log_edge = np.log(np.maximum(softest, 1e-3))
        edge_z = (log_edge - np.median(log_edge[ok])) / _spread(log_edge[ok])
        one_way = (softest < ABSOLUTE["motion blur"]) & (sharpest >= MOTION_RATIO * softest)
        motion = np.where(one_way, -edge_z, 0.0)
        med = float(np.median(flat[ok]))
        flat_z = (flat - med) / max(_spread(flat[ok]), ABSOLUTE["pixelated"] / self.threshold)
        blocks = (flat >= ABSOLUTE["pixelated"]) & (empty_line_share(registration) >= EMPTY_LINES)
        return {
            "motion blur": motion,
            "pixelated": np.where(blocks, flat_z, 0.0),
            "cut by the frame": self._frame_cut(registration, ok),
            "inverted": self._inverted(registration, ok),
            "noise": self._noise(registration, ok),
        }

    def _noise(self, registration: np.ndarray, ok: np.ndarray) -> np.ndarray:
        """(N,) robust z of the :func:`noise_level` against the data's (its scale at least
        the floor / threshold: clean digits have none), where it reaches its absolute floor;
        else 0. Joins ``noisy`` (the Laplacian's sharpness also rises with strokes: clean
        digits reach 4.6 of the 5 there)."""
        level = noise_level(registration)
        med = float(np.median(level[ok]))
        floor = ABSOLUTE["noise level"]
        spread = 1.4826 * float(np.median(np.abs(level[ok] - med)))
        z = (level - med) / max(spread, floor / self.threshold)
        return np.where(level >= floor, z, 0.0)

    def _inverted(self, registration: np.ndarray, ok: np.ndarray) -> np.ndarray:
        """(N,) the threshold x twice the distance of a flat frame's value (in the image's own
        range) from the data's, where it is over one half (the background at the other end:
        a negative, 2 x the threshold); 0 where the data's frames are not flat (photos). The
        second vote (:mod:`ogad_core.issues.undamaged`) inverts such an image back."""
        background, flat = frames(registration)
        if np.median(flat[ok]) < FRAME_FLAT:
            return np.zeros(len(ok))
        self._frames = (background, float(np.median(background[ok])))
        away = np.abs(background - self._frames[1])
        return np.where((flat >= FRAME_FLAT) & (away > 0.5), 2 * self.threshold * away, 0.0)

    def _frame_cut(self, registration: np.ndarray, ok: np.ndarray) -> np.ndarray:
        """(N,) the threshold x the far side's empty band over half the side, for each image
        with ink on one edge line only, one the data keeps empty (:data:`EMPTY_EDGE_SHARE`),
        whose far half has no ink: content shifted out through that edge (a digit that touches
        the frame, centred, reaches past the middle; a photo crop's content reaches several
        edges); else 0."""
        touch, far_empty = frame_lines(registration)
        kept_empty = (~touch[ok]).mean(axis=0)  # (4,) share of the data without ink there
        edge = touch.argmax(axis=1)
        rows = np.arange(len(ok))
        half = registration.shape[1] / 2
        cut = (touch.sum(axis=1) == 1) & (kept_empty[edge] >= EMPTY_EDGE_SHARE)
        cut &= far_empty[rows, edge] >= half
        self._cut = (edge, far_empty[rows, edge], kept_empty[edge])
        self._side = registration.shape[1]
        return np.where(cut, self.threshold * far_empty[rows, edge] / half, 0.0)

    def _text_parts(self, t: pd.DataFrame, texts: list[str]) -> pd.DataFrame:
        words = t["n_words"].to_numpy(dtype=np.float64)
        letters = t["letters"].to_numpy(dtype=np.float64)
        tokens = [{w.strip(_PUNCT) for w in x.lower().split()} - {""} for x in texts]
        distinct = distinct_word_share(texts)
        doc_freq: dict[str, int] = {}
        for toks in tokens:
            for w in toks:
                doc_freq[w] = doc_freq.get(w, 0) + 1
        known = known_word_share(tokens, doc_freq)
        mean_pmi, order = order_scores(texts)
        self._cut_words = cut_off(texts, doc_freq)  # the explanation names the cut word
        cut = np.array([bool(w) for w in self._cut_words], dtype=bool)
        chars = t["n_chars"].to_numpy(dtype=np.float64)
        empty = chars == 0
        # words in no order of language: only a text of language words (garble is "not
        # language" or "few letters", whatever order its strings come in)
        language = (known >= ABSOLUTE["not language"]) & (letters >= ABSOLUTE["few letters"])
        # a text under min_words words that is not a one-word sentence: flagged, and as short
        # as its characters are against the data's own lengths (a one-letter snippet first)
        short = ~empty & (words < self.min_words) & ~one_word_sentences(texts)
        shortness = np.maximum(
            self.threshold + self.min_words - words, -robust_z(np.log(np.maximum(chars, 1.0)))
        )
        return pd.DataFrame(
            {
                "empty": np.where(empty, HARD, 0.0),
                "very short": np.where(short, shortness, 0.0),
                "few letters": np.where(letters < ABSOLUTE["few letters"], -robust_z(letters), 0.0),
                "not language": self._not_language(known),
                "repetitive": np.where(distinct < ABSOLUTE["repetitive"], -robust_z(distinct), 0.0),
                "out of order": self._out_of_order(mean_pmi, order, language),
                "cut off": np.where(cut, self.threshold + 1.0, 0.0),
            }
        )

    def _out_of_order(
        self, mean_pmi: np.ndarray, order: np.ndarray, language: np.ndarray
    ) -> np.ndarray:
        """(N,) the robust z of each text's (N,) ``order`` score where its (N,) ``mean_pmi`` is
        below the floor and it is (N,) ``language`` (its words known, mostly letters), else 0
        (flagged at the threshold: word salad at z 3.7-6.8 on the
        benchmark mixes, their clean reviews at most 4.2; random draws of 3,000 Rotten Tomatoes
        reviews hold about one at z >= 5: title case, lyrics, a lower-case list)."""
        below = (mean_pmi < ABSOLUTE["out of order"]) & language
        z = np.where(below, np.nan_to_num(robust_z(order)), 0.0)
        z = np.maximum(z, 0.0)
        self._order_z = z  # the explanation names it
        return z

    def _not_language(self, known: np.ndarray) -> np.ndarray:
        """(N,) how far each text's (N,) ``known`` word share lies below the data's median,
        in robust standard deviations of at least (1 - floor) / threshold (most texts know
        every word: no spread of their own), where it is below the floor; else 0."""
        floor = ABSOLUTE["not language"]
        med = float(np.median(known)) if len(known) else 1.0
        spread = 1.4826 * float(np.median(np.abs(known - med))) if len(known) else 0.0
        z = (med - known) / max(spread, (1.0 - floor) / self.threshold)
        return np.where(known < floor, z, 0.0)

    def explain(self, i: int) -> str:
        line = self._explain(i)
        if self.deferred_[i]:
            return f"{line}; {self.deferred_to_} first (after the others here)"
        return line

    def _explain(self, i: int) -> str:
        row = self.parts_.iloc[i]
        if not len(row) or row.max() <= 0:
            return "no input property stands out"
        worst = str(row.idxmax())
        value = float(row.max())
        if row.get("inverted", 0.0) >= self.threshold and value < HARD:
            worst = "inverted"  # a negative, however bright (not a blank or unreadable file)
        brightness = self._brightness(i) if worst == "near-constant" else ""
        if brightness and self._mean is not None:
            mean, median = self._mean[i], self._mean_median
            return (
                f"{brightness}, near-constant input (brightness {mean:.2f}, the data's "
                f"{median:.2f})"
            )
        if value >= HARD:
            why = self._errors[i] if self._errors is not None and worst == "undecodable" else ""
            return f"{worst} input ({why})" if why else f"{worst} input"
        if worst == "out of order":
            z = float(self._order_z[i])
            return f"words out of order input (z = {z:.1f} against this dataset's word pairs)"
        if worst == "cut off" and self._cut_words:
            last, _, start_of = self._cut_words[i].partition(" -> ")
            if not start_of:
                return (
                    f'cut off after "{last}": a short text that ends on a word no sentence ends on'
                )
            return f'cut off mid-word: ends in "{last}", the start of "{start_of}" in other texts'
        if worst == "cut by the frame" and self._cut is not None:
            edge, far_empty, kept = (part[i] for part in self._cut)
            return (
                f"cut by the frame: ink on the {EDGES[edge]} edge, which {kept:.0%} of this "
                f"dataset's images keep empty, the far {far_empty} lines of "
                f"{self._side} empty (content shifted out of the image)"
            )
        if worst == "inverted" and self._frames is not None:
            background, data = self._frames
            return (
                f"inverted (a negative): its background is {_shade(background[i])}, this "
                f"dataset's {_shade(data)}"
            )
        if worst == "over-compressed":
            quality, ref = self._quality
            return f"{worst} input (JPEG quality {quality[i]:.0f}, the data's {ref:.0f})"
        return f"{worst} input (z = {value:.1f} against this dataset)"

    def _brightness(self, i: int) -> str:
        """ "very dark" / "very bright" when image ``i``'s mean pixel (in [0, 1]) is past that
        property's absolute bound and halfway from the data's median to black / white, else
        ''. A faint digit is near-constant because it is dark: the reviewer sees a dark image
        (its mean's robust z may stay below the threshold: MNIST's means spread widely)."""
        if self._mean is None or not np.isfinite(self._mean[i]):
            return ""
        mean, median = float(self._mean[i]), self._mean_median
        if mean < min(ABSOLUTE["very dark"], median / 2):
            return "very dark"
        return "very bright" if mean > max(ABSOLUTE["very bright"], (1 + median) / 2) else ""
