"""The shape of a damaged image with its damage taken out: the corrupt / outlier primary rule's
second look (:func:`ogad_core.issues.outlier.resembles_its_label`).

A sample flagged both ``corrupt`` and ``outlier`` is the corrupt type's first when its shape
resembles the class it is filed under. Damage dominates a digit's standardised pixels, so the
plain vote calls the damaged digit foreign (measured on the kept runs: on the held-out mix 9 of
21 striped and 13 of 21 occluded digits; on the fresh mix every flagged negative, 4 of 21
motion-blurred and 1-2 noisy digits, which took 21, 4 and 2 of the 150 outlier places of three
seeds). Here the damage the corrupt type found is taken out before the vote, each step a rule
about a kind of damage, applied in this order:

- ``inverted`` (a flat frame at the other end of the image's range from the data's): the
  image is inverted back (a bright photo crop has no flat frame and is not);
- ``noisy`` (pixel noise, or a Laplacian sharpness far above the data's): a 3 x 3 median on
  the sample and on the reference images alike (noise goes, a stroke stays);
- ``motion blur``: the reference images are blurred as the sample is -- a line of the length
  its softest direction's largest step says (a blur of length L caps it at 1 / L), along that
  direction;
- ``periodic`` (lines at a 2-4 px period): a 3-pixel median across the lines (the image's
  row or column direction whose spectrum peaks at those periods), on the sample and on the
  reference images alike: a 1-pixel line is removed, a wider stroke kept;
- ``occluded`` (a flat square of a non-background value): the flat pixels, grown by 2 px, are
  left out of the comparison (a masked distance, each side standardised over what is left).

The vote is then the same: the label is the strict plurality among the k nearest reference
images (16 x 16, from the run's 32 x 32 registration images). An image without such damage is
not looked at again; an image made another way still resembles no class once the damage is
taken out (a filled shape is flat too; a noisy chart, a negated shape, a raster crop soft in one
direction: on the nine kept image runs no outlier of any kind changed its primary type). With
the three new steps the fresh mix's outlier top 50 held 1-2 damaged digits a seed (was 9-10).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from ogad_core.issues.corrupt import edge_steps
from ogad_core.issues.properties import FLAT_TOL, SCAN_PERIOD

#: corrupt properties whose damage is taken out before the second vote
UNDAMAGED_PARTS = ("inverted", "noisy", "motion blur", "periodic", "occluded")
#: reference images compared in the second vote (a seeded subsample above it: a cheap check)
DAMAGE_REFERENCE = 20_000
#: pixels a flat patch's mask grows by (the patch's rim and the resampling's blur)
MASK_GROW = 2


def normalised(images: np.ndarray) -> np.ndarray:
    """(n, side, side) float32 in [0, 1] of (n, side, side) uint8 grayscale images, each
    rescaled from its own darkest to its brightest value."""
    X = np.asarray(images, dtype=np.float32)
    low, high = X.min(axis=(1, 2), keepdims=True), X.max(axis=(1, 2), keepdims=True)
    return (X - low) / np.maximum(high - low, 1.0)


def line_axis(image: np.ndarray) -> int:
    """The axis (0: rows, 1: columns) along which the (side, side) image's profile has the
    stronger spectral peak at a period of 2 to SCAN_PERIOD px (the lines' direction)."""
    side = image.shape[0]
    low = -(-side // SCAN_PERIOD)
    centred = image - image.mean()
    peaks = [np.abs(np.fft.rfft(centred.sum(axis=1 - a)))[low:].max() for a in (0, 1)]
    return int(np.argmax(peaks))


def without_lines(images: np.ndarray, axis: int) -> np.ndarray:
    """(n, side, side) images with a 3-pixel median across lines along ``axis`` (0: lines are
    rows): a 1-pixel line at a 2-4 px period goes, a wider stroke stays."""
    size = (1, 3, 1) if axis == 0 else (1, 1, 3)
    return ndimage.median_filter(images, size=size, mode="nearest")


def flat_mask(image: np.ndarray) -> np.ndarray:
    """(side, side) bool: the (side, side) image's flat pixels (3 x 3 span at most FLAT_TOL) of
    a value other than its background (the median), grown by MASK_GROW px."""
    span = ndimage.maximum_filter(image, 3) - ndimage.minimum_filter(image, 3)
    flat = (span <= FLAT_TOL) & (np.abs(image - np.median(image)) > FLAT_TOL)
    return ndimage.binary_dilation(flat, iterations=MASK_GROW) if flat.any() else flat


def halved(images: np.ndarray) -> np.ndarray:
    """(n, (side / 2) ** 2) means of 2 x 2 pixels of (n, side, side) images (side even)."""
    n, side = images.shape[0], images.shape[1]
    return images.reshape(n, side // 2, 2, side // 2, 2).mean(axis=(2, 4)).reshape(n, -1)


def masked_neighbours(query: np.ndarray, keep: np.ndarray, ref: np.ndarray, k: int) -> np.ndarray:
    """(k,) indices of the k nearest of (R, d) ``ref`` rows to the (d,) ``query`` over the
    (d,) bool ``keep`` pixels, each row standardised over those pixels."""
    w = keep.astype(np.float32)
    count = max(float(w.sum()), 1.0)

    def standard(V: np.ndarray) -> np.ndarray:
        centred = (V - (V * w).sum(axis=-1, keepdims=True) / count) * w
        scale = np.sqrt((centred**2).sum(axis=-1, keepdims=True) / count)
        return centred / np.maximum(scale, 1e-3)

    dist = ((standard(ref) - standard(query[None])) ** 2).sum(axis=1)
    return np.argsort(dist, kind="stable")[:k]


def denoised(images: np.ndarray) -> np.ndarray:
    """(n, side, side) images through a 3 x 3 median filter: pixel noise goes, strokes stay."""
    return ndimage.median_filter(images, size=(1, 3, 3), mode="nearest")


def blur_of(registration: np.ndarray) -> tuple[int, int]:
    """(direction, length) of the motion blur of one (side, side) uint8 image: its softest
    direction (:func:`~ogad_core.issues.corrupt.edge_steps`' order: columns, rows, two
    diagonals) and 1 / that direction's largest step (a blur of length L caps it at 1 / L),
    from 2 to half the side."""
    steps = edge_steps(registration[None])[0]
    direction = int(np.argmin(steps))
    length = int(
        np.clip(round(1.0 / max(float(steps[direction]), 1e-3)), 2, len(registration) // 2)
    )
    return direction, length


def smeared(images: np.ndarray, direction: int, length: int) -> np.ndarray:
    """(n, side, side) images averaged over ``length`` pixels along ``direction`` (as
    :func:`blur_of` reads it): a motion blur, applied to the reference images."""
    kernel = {
        0: np.ones((length, 1)),
        1: np.ones((1, length)),
        2: np.eye(length),
        3: np.fliplr(np.eye(length)),
    }[direction] / length
    return ndimage.convolve(images, kernel[None].astype(np.float32), mode="nearest")


Step = tuple[str, int, int]


def reference_after(ref_images: np.ndarray, steps: tuple[Step, ...]) -> np.ndarray:
    """(R, side, side) normalised reference images with the damage ``steps`` of a sample
    applied to them too (a median, a motion blur, a median across lines), in order."""
    for name, a, b in steps:
        if name == "median":
            ref_images = denoised(ref_images)
        elif name == "smear":
            ref_images = smeared(ref_images, a, b)
        else:
            ref_images = without_lines(ref_images, a)
    return ref_images


def taken_out(
    image: np.ndarray, raw: np.ndarray, parts: set[str]
) -> tuple[np.ndarray, tuple[Step, ...]]:
    """The (1, side, side) normalised ``image`` (of the (side, side) uint8 ``raw``) with the
    damage of its flagged ``parts`` taken out, and the steps the reference takes alike:
    inverted back (inverted: its flat frame at the other end from the data's), a 3 x 3
    median (noisy, on both), the reference blurred as the sample (motion blur), a median
    across lines (periodic, on both)."""
    steps: list[Step] = []
    if "inverted" in parts:
        image = 1.0 - image
    if "noisy" in parts:
        image = denoised(image)
        steps.append(("median", 0, 0))
    if "motion blur" in parts:
        steps.append(("smear", *blur_of(raw)))
    if "periodic" in parts:
        axis = line_axis(image[0])
        image = without_lines(image, axis)
        steps.append(("lines", axis, 0))
    return image, tuple(steps)


def undamaged_votes(
    registration: np.ndarray,
    codes: np.ndarray,
    rows: np.ndarray,
    damage: dict[str, np.ndarray],
    reference: np.ndarray,
    k: int,
) -> np.ndarray:
    """(m,) bool for (m,) ``rows``: the label code (``codes``: (N,) ints) is the strict
    plurality among the k nearest ``reference`` rows once the row's damage
    (``damage``: part name -> (N,) bool, :data:`UNDAMAGED_PARTS`) is taken out; False for a
    row without such damage. ``registration``: (N, side, side) grayscale images."""
    out = np.zeros(len(rows), dtype=bool)
    todo = [j for j, i in enumerate(rows) if any(d[i] for d in damage.values())]
    if not todo or len(reference) == 0:
        return out
    ref_images = normalised(registration[reference])
    ref_codes = codes[reference]
    cleaned: dict[tuple[Step, ...], np.ndarray] = {}  # (R, d) halved reference, per steps
    for j in todo:
        i = int(rows[j])
        parts = {name for name, d in damage.items() if d[i]}
        image, steps = taken_out(normalised(registration[i : i + 1]), registration[i], parts)
        if steps not in cleaned:
            cleaned[steps] = halved(reference_after(ref_images, steps))
        keep = ~halved(flat_mask(image[0])[None].astype(np.float32))[0].astype(bool)
        if "occluded" not in parts:
            keep[:] = True
        found = ref_codes[masked_neighbours(halved(image)[0], keep, cleaned[steps], k)]
        out[j] = strict_plurality(found, int(codes[i]), int(codes.max()) + 1)
    return out


def strict_plurality(found: np.ndarray, own: int, n_codes: int) -> bool:
    """True when ``own`` is named more often than any other code among (k,) ``found``."""
    votes = np.bincount(found, minlength=n_codes)
    mine = votes[own]
    votes[own] = -1
    return bool(mine > votes.max())
