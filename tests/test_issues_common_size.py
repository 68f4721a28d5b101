"""Damage measured at one common size (the 32 x 32 registration images of the decode pass), on
real digits (mnist5k): motion blur along one axis (soft edges), pixelation (an image upscaled by
pixel blocks from a much smaller one) and, the other way round, a 2x upscaled copy that is no
blurrier than its source although its own pixels change more slowly."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from scipy import ndimage

from ogad_core.issues.base import IssueContext
from ogad_core.issues.corrupt import (
    ABSOLUTE,
    EMPTY_LINES,
    MOTION_RATIO,
    CorruptIssue,
    edge_steps,
    empty_line_share,
    frame_lines,
    noise_level,
)
from ogad_core.issues.properties import IMAGE_COLUMNS, image_properties, registration_image

N = 600


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray]:
    """(N, 28, 28) uint8 real digits and (N,) labels."""
    from ogad_core.data.loaders import MNIST5K_NPZ

    with np.load(MNIST5K_NPZ) as npz:
        return npz["images"][:N].reshape(-1, 28, 28).astype(np.uint8), npz["labels"][:N]


def _motion(image: np.ndarray, length: int, axis: int) -> np.ndarray:
    """(28, 28) uint8: ``image`` blurred by a box of ``length`` px along ``axis``."""
    blurred = ndimage.uniform_filter1d(image.astype(np.float32), length, axis=axis)
    return np.clip(np.rint(blurred), 0, 255).astype(np.uint8)


def _pixelated(image: np.ndarray, side: int) -> Image.Image:
    """``image`` box-downsampled to ``side`` px and upscaled back by pixel blocks."""
    small = Image.fromarray(image).resize((side, side), Image.Resampling.BOX)
    return small.resize((28, 28), Image.Resampling.NEAREST)


def _context(images: list[Image.Image], labels: np.ndarray) -> IssueContext:
    """The issue context of decoded images as the decode pass records them (properties of
    each file at its own size, 16 x 16 signatures, 32 x 32 registration images)."""
    rows, signatures = zip(*(image_properties(im, im.size) for im in images), strict=True)
    return IssueContext(
        samples=pd.DataFrame({"sample_id": np.arange(len(labels)), "label": labels}),
        label_names=[str(c) for c in range(10)],
        inputs=pd.DataFrame(list(rows), columns=list(IMAGE_COLUMNS)),
        signatures=np.stack(signatures),
        registration=np.stack([registration_image(im) for im in images]),
    )


def test_motion_blur_and_pixelation_are_corrupt_and_no_clean_digit_is(digits) -> None:
    """Motion blur of 7-11 px (horizontal or vertical) and digits pixelated to 6 x 6 keep
    brightness and contrast, and the whole-image sharpness stays within 4x of the median:
    they are flagged by their soft edges and their pixel blocks; no clean digit is, the 1s
    (upright strokes: little vertical detail of their own) included. (Not 1s blurred across
    their stroke: a blur longer than a stroke's width caps its steps at 1 / width, not 1 / L.)"""
    images, labels = digits
    picked = np.random.default_rng(0).permutation(np.flatnonzero(labels != 1))[:16]
    motion, pixelated = picked[:10], picked[10:]
    pil = [Image.fromarray(im) for im in images]
    for j, i in enumerate(motion):
        pil[i] = Image.fromarray(_motion(images[i], 7 + j % 5, axis=j % 2))
    for i in pixelated:
        pil[i] = _pixelated(images[i], 6)
    est = CorruptIssue().fit(_context(pil, labels))
    assert set(np.flatnonzero(est.flagged_)) == set(motion) | set(pixelated)
    assert all(est.explain(int(i)).startswith("motion blur input") for i in motion)
    assert all(est.explain(int(i)).startswith("pixelated input") for i in pixelated)
    assert (labels == 1).sum() >= 30  # upright 1s among the clean digits


def test_a_2x_upscaled_copy_is_not_blurry(digits) -> None:
    """A 56 x 56 bicubic copy changes half as fast per pixel as its 28 x 28 source (its
    Laplacian about 4x smaller): measured at the data's common size it is not blurry; the
    same digit Gaussian-blurred at its own size is."""
    images, labels = digits
    pil = [Image.fromarray(im) for im in images]
    picked = np.random.default_rng(1).permutation(N)
    upscaled, blurred = picked[:30], picked[30:33]
    for i in upscaled:
        pil[i] = pil[i].resize((56, 56), Image.Resampling.BICUBIC)
    for i in blurred:
        pil[i] = Image.fromarray(ndimage.gaussian_filter(images[i], 2.0))
    est = CorruptIssue().fit(_context(pil, labels))
    assert not est.flagged_[upscaled].any()
    assert est.flagged_[blurred].all()


def test_a_blur_of_length_l_caps_the_steps_along_it_at_about_one_over_l(digits) -> None:
    """edge_steps: sharp digits have a one-pixel step of at least a third of their range
    along every direction; a box blur of length 8 along either axis caps that axis's near
    1/8 and leaves a step across it at least twice as large; a Gaussian blur softens every
    direction alike (smooth content: not motion)."""
    images, _ = digits
    sharp = edge_steps(np.stack([registration_image(Image.fromarray(im)) for im in images]))
    assert np.quantile(sharp.min(axis=1), 0.01) > 1.0 / 3
    for axis in (0, 1):
        soft = [registration_image(Image.fromarray(_motion(im, 8, axis))) for im in images[:50]]
        steps = edge_steps(np.stack(soft))
        assert steps.min(axis=1).max() < ABSOLUTE["motion blur"]
        assert (steps.max(axis=1) >= MOTION_RATIO * steps.min(axis=1)).all()
    smooth = [ndimage.gaussian_filter(im.astype(np.float32), 2.5) for im in images[:50]]
    steps = edge_steps(
        np.stack([registration_image(Image.fromarray(im.astype(np.uint8))) for im in smooth])
    )
    assert (steps.max(axis=1) < MOTION_RATIO * steps.min(axis=1)).all()


def test_a_mild_pixel_block_upscale_is_not_pixelated(digits) -> None:
    """Digits upscaled by 2 x 2 pixel blocks (from 14 x 14) keep most of their detail: not
    flagged; from 6 x 6 they are."""
    images, labels = digits
    pil = [Image.fromarray(im) for im in images]
    mild, strong = np.arange(N - 10, N - 5), np.arange(N - 5, N)
    for i in mild:
        pil[i] = _pixelated(images[i], 14)
    for i in strong:
        pil[i] = _pixelated(images[i], 6)
    est = CorruptIssue().fit(_context(pil, labels))
    assert set(np.flatnonzero(est.flagged_)) == set(strong)


def test_a_run_without_registration_images_scores_neither(digits) -> None:
    """An older run (no registration.npy) has no common-size properties: they score 0."""
    images, labels = digits
    context = _context([Image.fromarray(im) for im in images[:100]], labels[:100])
    context.registration = None
    est = CorruptIssue().fit(context)
    assert (est.parts_[["motion blur", "pixelated"]].to_numpy() == 0).all()


def test_photo_crops_change_along_every_line_pixel_blocks_do_not(digits) -> None:
    """Crops of sklearn's sample photos (skies, walls: flat areas) change along nearly every
    row and column line; the same crops upscaled by pixel blocks from 6 x 6 leave most lines
    without a change, and are pixelated among digits."""
    from sklearn.datasets import load_sample_images

    rng = np.random.default_rng(2)
    crops = []
    for photo in load_sample_images().images:
        gray = Image.fromarray(photo).convert("L")
        for _ in range(10):
            x, y = (int(v) for v in rng.integers(0, 300, 2))
            crops.append(gray.crop((x, y, x + 100, y + 100)).resize((28, 28), Image.Resampling.BOX))
    blocky = [_pixelated(np.asarray(c), 6) for c in crops]
    assert empty_line_share(np.stack([registration_image(c) for c in crops])).max() < EMPTY_LINES
    assert empty_line_share(np.stack([registration_image(c) for c in blocky])).min() >= EMPTY_LINES


def test_a_pixelated_image_is_the_corrupt_types_first_a_motion_blurred_one_is_voted(digits) -> None:
    """Pixelation is the file's resolution (a tiny image upscaled by blocks, like "tiny"): the
    corrupt type's first whatever its pixels resemble; motion blur keeps the shape, so the
    primary vote (resembles its class or not) decides."""
    from ogad_core.issues.outlier import file_damage

    images, labels = digits
    pil = [Image.fromarray(im) for im in images]
    picked = np.random.default_rng(3).permutation(np.flatnonzero(labels != 1))[:10]
    motion, pixelated = picked[:5], picked[5:]
    for i in motion:
        pil[i] = Image.fromarray(_motion(images[i], 9, axis=0))
    for i in pixelated:
        pil[i] = _pixelated(images[i], 6)
    est = CorruptIssue().fit(_context(pil, labels))
    first = file_damage(est)
    assert first[pixelated].all() and not first[motion].any() and first.sum() == len(pixelated)


def _offframe(image: np.ndarray, shift: int, direction: int) -> np.ndarray:
    """(28, 28) uint8: ``image`` shifted ``shift`` px right, left, down or up (direction 0-3),
    the part that leaves the frame lost."""
    out = np.zeros_like(image)
    if direction == 0:
        out[:, shift:] = image[:, : 28 - shift]
    elif direction == 1:
        out[:, : 28 - shift] = image[:, shift:]
    elif direction == 2:
        out[shift:] = image[: 28 - shift]
    else:
        out[: 28 - shift] = image[shift:]
    return out


def _photo_crops(n: int, seed: int) -> list[Image.Image]:
    """n 28 x 28 grayscale crops of sklearn's sample photos (content up to every edge)."""
    from sklearn.datasets import load_sample_images

    rng = np.random.default_rng(seed)
    photos = [Image.fromarray(p).convert("L") for p in load_sample_images().images]
    crops = []
    for j in range(n):
        x, y = (int(v) for v in rng.integers(0, 300, 2))
        crop = photos[j % len(photos)].crop((x, y, x + 100, y + 100))
        crops.append(crop.resize((28, 28), Image.Resampling.BOX))
    return crops


@pytest.fixture(scope="module")
def framed_digits() -> tuple[np.ndarray, np.ndarray]:
    """(N, 28, 28) uint8 real digits drawn from all of mnist5k (1.5% of which touch the frame,
    most in one stretch) and (N,) labels."""
    from ogad_core.data.loaders import MNIST5K_NPZ

    with np.load(MNIST5K_NPZ) as npz:
        picked = np.sort(np.random.default_rng(7).permutation(len(npz["labels"]))[:N])
        return npz["images"][picked].reshape(-1, 28, 28).astype(np.uint8), npz["labels"][picked]


def test_digits_shifted_half_out_of_the_frame_are_cut_and_no_clean_digit_is(
    framed_digits,
) -> None:
    """Digits shifted 13-17 px of 28 (every direction) are cut by the frame; the clean digits,
    those that touch the frame included (a centred digit reaches past the middle), are not;
    nor is a photo crop among them (its content reaches several edges)."""
    images, labels = framed_digits
    touch, _ = frame_lines(np.stack([registration_image(Image.fromarray(im)) for im in images]))
    assert touch.any(axis=1).sum() >= 5  # clean digits on the frame
    pil = [Image.fromarray(im) for im in images]
    # not 1s: a narrow stroke shifted 16 px can leave a speck off the edge, no longer cut
    picked = np.random.default_rng(4).permutation(np.flatnonzero(labels != 1))[:15]
    shifted, photos = picked[:12], picked[12:]
    for j, i in enumerate(shifted):
        pil[i] = Image.fromarray(_offframe(images[i], 13 + j % 5, j % 4))
    for i, crop in zip(photos, _photo_crops(len(photos), 5), strict=True):
        pil[i] = crop
    est = CorruptIssue().fit(_context(pil, labels))
    cut = est.parts_["cut by the frame"].to_numpy() >= est.threshold_
    assert set(np.flatnonzero(cut)) == set(shifted)
    assert all(est.explain(int(i)).startswith("cut by the frame: ink on the") for i in shifted)
    assert not est.flagged_[np.setdiff1d(np.arange(N), picked)].any()


def test_no_photo_is_cut_by_the_frame_in_a_dataset_of_photos() -> None:
    """Photos' content reaches the frame: no edge is kept empty, so none is cut, also a crop
    whose far half is dark."""
    crops = _photo_crops(200, 6)
    crops[0] = Image.fromarray(_offframe(np.asarray(crops[0]), 16, 0))
    est = CorruptIssue().fit(_context(crops, np.arange(200) % 10))
    assert (est.parts_["cut by the frame"] == 0).all()


def test_a_digit_cut_by_the_frame_is_the_corrupt_types_first(digits) -> None:
    """Cut by the frame is the capture's (a bad crop): the corrupt type's first, whatever the
    half left in the image resembles."""
    from ogad_core.issues.outlier import file_damage

    images, labels = digits
    pil = [Image.fromarray(im) for im in images]
    shifted = np.arange(5)
    for j, i in enumerate(shifted):
        pil[i] = Image.fromarray(_offframe(images[i], 15, j % 4))
    first = file_damage(CorruptIssue().fit(_context(pil, labels)))
    assert set(np.flatnonzero(first)) == set(shifted)


def test_gaussian_noise_is_noisy_and_no_clean_digit_is(digits) -> None:
    """Digits with Gaussian noise of sigma 50-80 (clipped: half the background stays black)
    keep their sharpness within reach of clean digits' (the Laplacian also rises with strokes)
    but not their noise level: flagged noisy; no clean digit is; photo crops among digits have
    a noise level below the floor (an outlier's, not noise)."""
    images, labels = digits
    pil = [Image.fromarray(im) for im in images]
    rng = np.random.default_rng(8)
    noisy = rng.permutation(N)[:6]
    for j, i in enumerate(noisy):
        sigma = 50 + 6 * j
        pil[i] = Image.fromarray(
            np.clip(images[i] + rng.normal(0, sigma, (28, 28)), 0, 255).astype(np.uint8)
        )
    est = CorruptIssue().fit(_context(pil, labels))
    assert set(np.flatnonzero(est.flagged_)) == set(noisy)
    assert all(est.explain(int(i)).startswith("noisy input") for i in noisy)
    crops = np.stack([registration_image(c) for c in _photo_crops(30, 9)])
    assert noise_level(crops).max() < ABSOLUTE["noise level"]


def test_the_flat_share_is_made_once_for_the_corrupt_and_outlier_types(digits, monkeypatch) -> None:
    """The corrupt type's pixelation and the outlier type's input statistics read the same
    flat share of the registration images: one context makes it once (at 1,000,000 images
    about 10 CPU s each time), with the values of a call of its own."""
    from ogad_core.issues import features
    from ogad_core.issues.outlier import OutlierIssue

    images, labels = digits
    context = _context([Image.fromarray(im) for im in images[:100]], labels[:100])
    calls = []
    made = features.flat_share
    monkeypatch.setattr(features, "flat_share", lambda x: calls.append(len(x)) or made(x))
    context.results["corrupt"] = CorruptIssue().fit(context)
    OutlierIssue(spaces=("statistics",)).fit(context)
    assert calls == [100]
    np.testing.assert_array_equal(context.flat_share(), made(context.registration))
