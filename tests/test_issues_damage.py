"""Image damage that keeps brightness and contrast in range, on real digits (mnist5k): an
occluding block, stripes every third row or column, JPEG blocking and a heavily compressed
JPEG file. Each property is recorded in the decode pass (inputs.parquet) and scored by the
``corrupt`` type against the run's own data; a run recorded before a property existed is
recorded again."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from ogad_core.issues.base import IssueContext
from ogad_core.issues.corrupt import CorruptIssue
from ogad_core.issues.inputs import inputs_recorded, record_inputs
from ogad_core.issues.outlier import resembles_its_label
from ogad_core.issues.properties import (
    IMAGE_COLUMNS,
    array_properties,
    blockiness,
    image_properties,
    jpeg_quality,
    registration_image,
)
from ogad_core.issues.undamaged import line_axis, normalised, without_lines
from ogad_core.run.rundir import RunDir

N = 600


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray]:
    """(N, 28, 28) float32 real digits in [0, 1] and (N,) labels."""
    from ogad_core.data.loaders import MNIST5K_NPZ

    with np.load(MNIST5K_NPZ) as npz:
        images = npz["images"][:N].reshape(-1, 28, 28).astype(np.float32) / 255.0
        return images, npz["labels"][:N]


def _context(images: np.ndarray, labels: np.ndarray) -> IssueContext:
    table, signatures = array_properties(images[:, None])
    return IssueContext(
        samples=pd.DataFrame({"sample_id": np.arange(len(labels)), "label": labels}),
        label_names=[str(c) for c in range(10)],
        inputs=table,
        signatures=signatures,
    )


def test_an_occluding_block_and_stripes_are_corrupt(digits) -> None:
    """A 14-pixel block (grey or white) and stripes every third row or column keep a digit's
    brightness and contrast in range: the old properties flagged none of them. Now they are
    flagged, named, and no clean digit is."""
    images, labels = digits
    block, stripes = np.arange(N - 10, N - 5), np.arange(N - 5, N)
    images = _damaged(images, np.random.default_rng(0), block, stripes)
    est = CorruptIssue().fit(_context(images, labels))
    assert set(np.flatnonzero(est.flagged_)) == set(block) | set(stripes)
    assert all(est.explain(int(i)).startswith("occluded input") for i in block)
    assert all(est.explain(int(i)).startswith("periodic input") for i in stripes)


def _damaged(images: np.ndarray, rng: np.random.Generator, block: np.ndarray, stripes: np.ndarray):
    """(N, 28, 28) copy of ``images`` with a 14-pixel block (grey or white) on the ``block``
    rows and white lines every third row or column on the ``stripes`` rows."""
    images = images.copy()
    for i in block:
        y, x = (int(v) for v in rng.integers(4, 11, 2))
        images[i, y : y + 14, x : x + 14] = [0.5, 1.0][i % 2]
    for j, i in enumerate(stripes):
        if j % 2:
            images[i, int(rng.integers(3)) :: 3, :] = 1.0
        else:
            images[i, :, int(rng.integers(3)) :: 3] = 1.0
    return images


def test_damaged_digits_resemble_their_class_once_the_damage_is_taken_out(digits) -> None:
    """The primary rule's shape vote: stripes or a block dominate a digit's standardised
    pixels, so the plain vote called most of these damaged digits foreign (outlier first: they
    took outlier places and ranked after the other corrupt flags). Voting again with the
    lines filtered out (a median across them) or the flat block left out, they resemble their
    class; filled drawn shapes (flat too, flagged occluded) mostly resemble none."""
    from benchmarks.issue_mixes_alt import shapes

    images, labels = digits
    rng = np.random.default_rng(1)
    block, stripes = np.arange(N - 60, N - 30), np.arange(N - 30, N)
    images = _damaged(images, rng, block, stripes)
    drawn = np.stack(shapes(rng, 60)).astype(np.float32) / 255.0
    images = np.concatenate([images, drawn])
    labels = np.concatenate([labels, rng.integers(0, 10, len(drawn))])
    ctx = _context(images, labels)
    ctx.registration = np.stack([registration_image(img) for img in images])
    ctx.results["corrupt"] = CorruptIssue().fit(ctx)
    foreign = np.arange(N, N + len(drawn))
    occluded_shapes = foreign[ctx.results["corrupt"].parts_["occluded"].to_numpy()[foreign] >= 5]
    assert len(occluded_shapes) >= 3
    # half of each kind asks (flagged as outliers too), the other half is among the reference
    # images the vote reads, as in a run: damaged alike, they are each other's neighbours
    rows = np.concatenate([block[::2], stripes[::2], occluded_shapes])
    now = resembles_its_label(ctx, rows)
    ctx.registration = None  # the plain vote alone
    plain = resembles_its_label(ctx, rows)
    assert now is not None and plain is not None
    blocks, lines, drawn_rows = slice(0, 15), slice(15, 30), slice(30, None)
    assert now[blocks].mean() >= 0.8 and now[blocks].mean() >= plain[blocks].mean() + 0.2
    assert now[lines].mean() >= 0.8 and now[lines].mean() >= plain[lines].mean()
    # a filled shape is no digit without its flat part: it resembles its (random) label about
    # as often as chance among the few digits its outline is near (0-0.33 a seed)
    assert now[drawn_rows].mean() <= 0.4 and now[drawn_rows].mean() <= now[blocks].mean() - 0.4


def test_inverted_noisy_and_motion_blurred_digits_resemble_their_class_undamaged() -> None:
    """The fresh mix's recipes on 2,000 real digits: a digit's negative (white background),
    Gaussian noise (sigma 80 / 255) and a motion blur of 7-11 px. The corrupt type flags each
    (inverted: a flat frame at the other end of the range from the data's; noisy; motion
    blur), and the second vote takes the damage out (inverts the negative back, a 3 x 3 median
    on sample and reference, the reference blurred as the sample): the plain vote called every
    negative and some blurred digits foreign (here 0 and 0.93 resembled), the second calls
    them members (1.0, 1.0: corrupt first, no outlier's place). Drawn shapes under the same
    noise or negated still mostly resemble no class (0.15 -> 0.18: chance)."""
    from benchmarks.issue_mixes_alt import shapes
    from benchmarks.issue_mixes_fresh import CORRUPT_PIXELS
    from ogad_core.data.loaders import MNIST5K_NPZ

    n = 2000
    with np.load(MNIST5K_NPZ) as npz:
        pixels, labels = npz["images"][:n].reshape(-1, 28, 28), npz["labels"][:n]
    rng = np.random.default_rng(3)
    named = {
        "corrupt_inverted": "inverted",
        "corrupt_gauss": "noisy",
        "corrupt_motion": "motion blur",
    }
    damaged = {kind: np.arange(n - 90 + 30 * j, n - 60 + 30 * j) for j, kind in enumerate(named)}
    for kind, rows in damaged.items():
        for i in rows:
            pixels[i] = CORRUPT_PIXELS[kind](pixels[i], rng)
    drawn = np.stack(shapes(rng, 40))
    drawn[::2] = CORRUPT_PIXELS["corrupt_gauss"](drawn[::2], rng)
    drawn[1::2] = 255 - drawn[1::2]
    pixels = np.concatenate([pixels, drawn]).astype(np.float32) / 255.0
    labels = np.concatenate([labels, rng.integers(0, 10, len(drawn))])
    ctx = _context(pixels, labels)
    ctx.registration = np.stack([registration_image(img) for img in pixels])
    corrupt = CorruptIssue().fit(ctx)
    ctx.results["corrupt"] = corrupt
    flagged = corrupt.parts_.to_numpy() >= corrupt.threshold_
    assert not flagged[: n - 90].any()  # no clean digit
    for kind, rows in damaged.items():  # each found by its part
        assert (corrupt.parts_[named[kind]].to_numpy()[rows] >= corrupt.threshold_).all()
    for i in damaged["corrupt_inverted"]:  # the card says what the reviewer sees
        line = corrupt.explain(int(i))
        assert line == "inverted (a negative): its background is white, this dataset's black"
    shapes_flagged = np.arange(n, n + len(drawn))[flagged[n:].any(axis=1)]
    assert len(shapes_flagged) >= 30
    # every damaged digit asks (on the fresh mix's runs all were flagged outlier too): no
    # negative among the reference images to vote for another
    rows = np.concatenate([*damaged.values(), shapes_flagged])
    now = resembles_its_label(ctx, rows)
    ctx.registration = None  # the plain vote alone
    plain = resembles_its_label(ctx, rows)
    assert now is not None and plain is not None
    inverted, noisy, blurred, drawn_rows = (
        slice(0, 30),
        slice(30, 60),
        slice(60, 90),
        slice(90, None),
    )
    assert plain[inverted].mean() <= 0.1 and now[inverted].mean() >= 0.8
    assert now[noisy].mean() >= 0.9 and now[noisy].mean() >= plain[noisy].mean()
    assert now[blurred].mean() >= 0.9 and now[blurred].mean() > plain[blurred].mean()
    assert now[drawn_rows].mean() <= 0.3


def test_a_bright_photo_crop_or_a_dataset_of_photos_is_not_inverted(digits) -> None:
    """Inverted needs a flat frame at the other end of the range from the data's flat frames:
    a bright crop of a photo among digits has no flat frame, and among photos (no flat frames
    of their own) nothing is inverted."""
    from benchmarks.issue_mixes import _photo_crops

    rng = np.random.default_rng(4)
    crops = np.stack(_photo_crops(rng, 40)).astype(np.float32) / 255.0
    bright = np.clip(crops * 0.4 + 0.6, 0, 1)  # washed towards white
    for images in (np.concatenate([digits[0][:200], bright]), np.concatenate([crops, 1 - crops])):
        ctx = _context(images, np.zeros(len(images), dtype=int))
        ctx.registration = np.stack([registration_image(img) for img in images])
        assert (CorruptIssue().fit(ctx).parts_["inverted"] == 0).all()


def test_lines_at_the_pixel_scale_are_filtered_out_across_their_direction(digits) -> None:
    """A median of 3 pixels across white lines every third row (or column) brings the digit
    back towards the same median of the clean digit (the vote compares both so filtered; its
    strokes are wider than a line); the lines' direction is read from the image."""
    images, _ = digits
    rng = np.random.default_rng(2)
    pick = np.arange(40)
    striped = _damaged(images[pick], rng, np.array([], dtype=int), pick)
    before, after = np.zeros(len(pick)), np.zeros(len(pick))
    for i in pick:
        damaged = normalised(registration_image(striped[i])[None])
        axis = line_axis(damaged[0])
        assert axis == (0 if i % 2 else 1)  # rows striped on odd rows (see _damaged)
        clean = without_lines(normalised(registration_image(images[i])[None]), axis)[0]
        before[i] = np.corrcoef(clean.ravel(), damaged[0].ravel())[0, 1]
        after[i] = np.corrcoef(clean.ravel(), without_lines(damaged, axis)[0].ravel())[0, 1]
    # the registration image's resampling spreads some lines over two pixels: not all of them
    # go, but each digit comes closer to itself (correlation 0.58 -> 0.77 on average)
    assert (after >= before + 0.1).all() and after.mean() >= 0.7


def test_striped_photos_of_a_class_are_not_periodic_damage() -> None:
    """The rehearsal's synthetic photos (benchmarks/synthetic_jpegs: every class striped, some
    stripes aligned with the rows or columns at a period of 8 or 20 px) carry their stripes as
    content: a pattern at the pixel scale (period 2-4 px) is damage, a coarser one is not (with
    periods up to n/4, 4% of these photos were flagged periodic)."""
    from benchmarks.synthetic_jpegs import render_photo

    rows, sigs = [], []
    for i in range(300):
        img = Image.fromarray(render_photo(i, i % 100, 0))
        row, sig = image_properties(img, img.size)
        rows.append(row)
        sigs.append(sig)
    table = pd.DataFrame(rows, columns=list(IMAGE_COLUMNS))
    ctx = IssueContext(
        samples=pd.DataFrame({"sample_id": np.arange(300), "label": np.arange(300) % 100}),
        label_names=[str(c) for c in range(100)],
        inputs=table,
        signatures=np.stack(sigs),
    )
    est = CorruptIssue().fit(ctx)
    assert not est.flagged_.any() and table["periodic"].max() < 0.05


def test_jpeg_blocking_is_measured_on_the_grid(digits) -> None:
    """Digits at 64 px saved as JPEG at quality 5 meet in steps on the 8 x 8 grid: they are
    flagged blocky among the same digits saved losslessly; images under 4 blocks a side are
    not measured (28 px: 3 grid lines a side say nothing)."""
    images, labels = digits
    big = np.stack(
        [
            np.asarray(Image.fromarray(np.uint8(g * 255)).resize((64, 64), Image.LANCZOS))
            for g in images[:200]
        ]
    )
    blocky = np.arange(195, 200)
    for i in blocky:
        buf = io.BytesIO()
        Image.fromarray(big[i]).save(buf, format="JPEG", quality=5)
        big[i] = np.asarray(Image.open(buf).convert("L"))
    values = blockiness(big.astype(np.float32) / 255.0)
    assert values[blocky].min() > np.log(2.0) and values[blocky].min() > values[:195].max()
    est = CorruptIssue().fit(_context(big.astype(np.float32) / 255.0, labels[:200]))
    assert list(np.flatnonzero(est.flagged_)) == list(blocky)
    assert all(est.explain(int(i)).startswith("blocky input") for i in blocky)
    assert np.isnan(blockiness(images[:3])).all()


def test_a_heavily_compressed_jpeg_file_is_corrupt(tmp_path: Path, digits) -> None:
    """The JPEG quality is read from the file's quantisation tables in the decode pass
    (libjpeg's scale); a file 4x below the data's (75 when most files are not JPEGs) is
    over-compressed, a quality-30 copy is not."""
    from ogad_core.data.images import open_image

    images, labels = digits
    rows, sigs = [], []
    for i, g in enumerate(images):
        quality = {0: 1, 1: 30}.get(i, None)
        path = tmp_path / f"{i}.{'jpg' if quality else 'png'}"
        Image.fromarray(np.uint8(g * 255)).save(path, **({"quality": quality} if quality else {}))
        img = open_image(str(path), 3, 10**8, draft=160)
        row, sig = image_properties(img, img.info["original_size"])
        rows.append(row)
        sigs.append(sig)
    table = pd.DataFrame(rows, columns=list(IMAGE_COLUMNS))
    assert table["jpeg_quality"][0] == 1 and table["jpeg_quality"][1] == 30
    assert table["jpeg_quality"][2:].isna().all()
    ctx = IssueContext(
        samples=pd.DataFrame({"sample_id": np.arange(len(labels)), "label": labels}),
        label_names=[str(c) for c in range(10)],
        inputs=table,
        signatures=np.stack(sigs),
    )
    est = CorruptIssue().fit(ctx)
    assert list(np.flatnonzero(est.flagged_)) == [0]
    assert est.explain(0) == "over-compressed input (JPEG quality 1, the data's 75)"
    assert np.isnan(jpeg_quality(None)) and np.isnan(jpeg_quality({0: [1, 2]}))


def test_a_run_recorded_before_a_property_existed_is_recorded_again(tmp_path: Path) -> None:
    """inputs.parquet without a column of today's properties (or of an older version of
    them) is not taken as recorded; the row count alone still says which rows could not be
    decoded; the corrupt type scores a table without the new columns as before."""
    rd = RunDir(tmp_path)
    rng = np.random.default_rng(0)
    images = (rng.random((30, 1, 28, 28)) > 0.8).astype(np.float32)
    assert record_inputs(rd, images)
    assert inputs_recorded(rd, 30) and not record_inputs(rd, images)
    old = pd.read_parquet(rd.inputs_path).drop(columns=["periodic", "flat_patch"])
    old.to_parquet(rd.inputs_path, index=False)
    assert not inputs_recorded(rd, 30) and inputs_recorded(rd, 30, complete=False)
    ctx = _context(images[:, 0], np.zeros(30, dtype=np.int64))
    ctx.inputs = old
    assert np.isfinite(CorruptIssue().fit(ctx).scores_).all()
    assert record_inputs(rd, images) and inputs_recorded(rd, 30)
    full = pd.read_parquet(rd.inputs_path)
    full.attrs = {}  # recorded by the first version of the properties
    full.to_parquet(rd.inputs_path, index=False)
    assert not inputs_recorded(rd, 30)
