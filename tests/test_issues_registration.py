"""Near duplicates under small geometric transforms: a shifted, rotated or rescaled copy of a real
digit is verified by registration (ogad_core.issues.registration) and joins its source in a
duplicate set; two different handwritten digits of one class do not align as copies."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from PIL import Image, ImageFilter

from ogad_core.issues.base import IssueContext
from ogad_core.issues.duplicate import DuplicateIssue
from ogad_core.issues.inputs import _array_registration, inputs_recorded
from ogad_core.issues.properties import array_properties, registration_image
from ogad_core.issues.registration import aligned_correlation, neighbour_pairs

#: the duplicate type's default residual limit
LIMIT = DuplicateIssue().verify


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory) -> tuple[np.ndarray, np.ndarray]:
    """(600, 28, 28) uint8 real MNIST digits and their (600,) labels."""
    from ogad_core.data import load_data

    data = load_data("mnist5k", run_dir=tmp_path_factory.mktemp("mnist"), limit=600)
    x = np.rint(np.asarray(data.train.inputs)[:, 0] * 255).astype(np.uint8)
    return x, np.asarray(data.train.labels)


def _affine(img: np.ndarray, matrix: tuple[float, ...]) -> np.ndarray:
    pil = Image.fromarray(img)
    return np.asarray(pil.transform(pil.size, Image.AFFINE, matrix, Image.BILINEAR))


def _copies(img: np.ndarray) -> dict[str, np.ndarray]:
    """A 2-pixel shift, a 8-degree rotation and a 1.12 rescale of a (28, 28) uint8 digit."""
    s, c = 1.12, 14.0
    return {
        "shift": _affine(img, (1, 0, 2, 0, 1, -1)),
        "rotate": np.asarray(Image.fromarray(img).rotate(-8.0, Image.BILINEAR)),
        "rescale": _affine(img, (1 / s, 0, c - c / s, 0, 1 / s, c - c / s)),
    }


def _residual(a: np.ndarray, b: np.ndarray) -> float:
    images = np.stack([registration_image(a / 255.0), registration_image(b / 255.0)])
    return float(1.0 - aligned_correlation(images, np.array([[0, 1]]))[0])


def test_a_shifted_rotated_or_rescaled_copy_of_a_digit_aligns(digits) -> None:
    x, _ = digits
    for i in (0, 7, 42):
        for name, copy in _copies(x[i]).items():
            assert _residual(x[i], copy) < LIMIT, (i, name)
            assert _residual(copy, x[i]) < LIMIT, (i, name)  # either order


def test_the_closest_different_digits_of_one_class_do_not_align(digits) -> None:
    """Every "1" with its nearest other "1" in pixels (straight strokes: the hardest pairs,
    some 0.98 alike after alignment): none aligns as a copy."""
    x, y = digits
    ones = np.flatnonzero(y == 1)
    flat = x[ones].reshape(len(ones), -1).astype(np.float32)
    dist = np.linalg.norm(flat[:, None] - flat[None], axis=2)
    np.fill_diagonal(dist, np.inf)
    pairs = np.column_stack([ones, ones[dist.argmin(axis=1)]])
    images = _array_registration(x[:, None] / 255.0)
    residual = 1.0 - aligned_correlation(images, pairs)
    assert residual.min() > LIMIT, residual.min()


def _blurred(img: np.ndarray, radius: float) -> np.ndarray:
    """A (28, 28) uint8 digit under PIL's Gaussian blur of ``radius`` pixels."""
    return np.asarray(Image.fromarray(img).filter(ImageFilter.GaussianBlur(radius)))


def _blurred_residuals(x: np.ndarray, radius: float, blur_from: float | None) -> np.ndarray:
    """1 - NCC of each of (P, 28, 28) digits x and its copy blurred by ``radius``."""
    copies = np.stack([_blurred(img, radius) for img in x])
    images = _array_registration(np.concatenate([x, copies])[:, None] / 255.0)
    pairs = np.column_stack([np.arange(len(x)), len(x) + np.arange(len(x))])
    return 1.0 - aligned_correlation(images, pairs, blur_from=blur_from)


def test_a_blurred_copy_of_a_digit_aligns_once_its_source_is_blurred_alike(digits) -> None:
    """60 real digits and their copies under a Gaussian blur of 0.5 and 0.7 pixels (a softened
    re-export, a resized thumbnail): every copy aligns with sharpness matching, most blurred by
    0.7 do not without it (their residual is the blur); of those blurred by 1 pixel, most."""
    x, _ = digits
    x = x[:60]
    for radius in (0.5, 0.7):
        assert _blurred_residuals(x, radius, LIMIT).max() < LIMIT, radius
    assert np.mean(_blurred_residuals(x, 0.7, None) < LIMIT) < 0.5
    assert np.mean(_blurred_residuals(x, 1.0, LIMIT) < LIMIT) >= 0.75


def test_sharpness_matching_leaves_the_closest_different_digits_apart(digits) -> None:
    """The 600 digits with their 3 nearest in pixels (the hardest look-alikes, 1 - NCC from
    about 0.0022 after alignment) and every "1" with its nearest other "1": none aligns as a
    copy with sharpness matching either; the pairs already below the limit are unchanged."""
    x, y = digits
    flat = x.reshape(len(x), -1).astype(np.float32)
    dist = np.linalg.norm(flat[:, None] - flat[None], axis=2)
    np.fill_diagonal(dist, np.inf)
    ones = np.flatnonzero(y == 1)
    nearest_one = ones[dist[np.ix_(ones, ones)].argmin(axis=1)]
    nearest = np.argsort(dist, axis=1)[:, :3].ravel()
    rows = np.concatenate([np.repeat(np.arange(len(x)), 3), ones])
    pairs = np.column_stack([rows, np.concatenate([nearest, nearest_one])])
    images = _array_registration(x[:, None] / 255.0)
    matched = 1.0 - aligned_correlation(images, pairs, blur_from=LIMIT)
    plain = 1.0 - aligned_correlation(images, pairs)
    assert matched.min() > LIMIT, matched.min()
    assert np.all(matched <= plain)
    assert np.mean(matched < plain) < 0.1  # only the few of very unequal sharpness


def test_the_compiled_blur_is_scipys_gaussian_then_the_tent() -> None:
    """matched_blur's NCC is the best over its sigmas of scipy's Gaussian (truncated at 3
    sigma, edges repeated), then the tent, standardised, with the target."""
    from scipy.ndimage import gaussian_filter

    import ogad_core.issues.registration as reg

    rng = np.random.default_rng(0)
    aligned = np.zeros((5, 32, 32), np.float32)
    aligned[:, 6:26, 6:26] = rng.random((5, 20, 20))
    target = reg.standardise(reg.tent(rng.random((5, 32, 32)).astype(np.float32)))
    ratio = np.array([1.5, 2.0, 2.5, 4.0, 9.0])
    root = np.sqrt(np.log(ratio))[:, None] * np.array(reg.BLUR_SCALES)
    sigmas = np.clip(root, *reg.BLUR_LIMITS)

    def blurred(p: int, sigma: float) -> np.ndarray:
        image = gaussian_filter(aligned[p], sigma, mode="nearest", truncate=3)
        return reg.standardise(reg.tent(image[None]))[0]

    expected = [max(float(target[p] @ blurred(p, s)) for s in sigmas[p]) for p in range(5)]
    np.testing.assert_allclose(reg.matched_blur(target, aligned, ratio), expected, atol=1e-5)


def _context(x: np.ndarray, y: np.ndarray, registration: bool = True) -> IssueContext:
    table, signatures = array_properties(x[:, None] / 255.0)
    samples = pd.DataFrame({"sample_id": np.arange(len(x)), "label": y})
    return IssueContext(
        samples=samples,
        label_names=[str(i) for i in range(10)],
        inputs=table,
        signatures=signatures,
        registration=_array_registration(x[:, None] / 255.0) if registration else None,
    )


def test_transformed_copies_join_their_source_in_a_set(digits) -> None:
    """300 real digits with a shifted, a rotated and a rescaled copy of three of them (one
    under another label): each copy and its source form a set, nothing else is flagged; with
    verification off (the code before it) none of the three is found."""
    x, y = digits
    x, y = x[:300].copy(), y[:300].copy()
    sources = {"shift": 3, "rotate": 11, "rescale": 25}
    copies = [_copies(x[i])[name] for name, i in sources.items()]
    x = np.concatenate([x, np.stack(copies)])
    y = np.concatenate([y, [y[3], (y[11] + 1) % 10, y[25]]])
    est = DuplicateIssue().fit(_context(x, y))
    for k, i in enumerate(sources.values()):
        assert est.set_ids_[300 + k] == est.set_ids_[i] >= 0, (k, i)
    assert set(np.flatnonzero(est.flagged_)) == {3, 11, 25, 300, 301, 302}
    assert "labels differ" in est.explain(301) and "rotation" in est.explain(301)
    before = DuplicateIssue(verify=0).fit(_context(x, y))
    assert not before.flagged_[300:].any()


def test_a_blurred_copy_joins_its_source_in_a_set_and_leaks_from_the_held_out_split(
    digits,
) -> None:
    """300 real digits with a copy of two of them blurred by 0.7 pixels (one under another
    label): each copy and its source form a set and nothing else is flagged; a held-out file
    that is a training digit so blurred leaks it. Without sharpness matching (the code before
    it, a pair's residual 0.002-0.008) the copies are not verified."""
    from ogad_core.issues.holdout import Holdout
    from ogad_core.issues.leakage import LeakageIssue

    x, y = digits
    x, y = x[:300].copy(), y[:300].copy()
    x = np.concatenate([x, [_blurred(x[4], 0.7), _blurred(x[17], 0.7)]])
    y = np.concatenate([y, [y[4], (y[17] + 1) % 10]])
    est = DuplicateIssue().fit(_context(x, y))
    assert est.set_ids_[300] == est.set_ids_[4] >= 0
    assert est.set_ids_[301] == est.set_ids_[17] >= 0
    assert set(np.flatnonzero(est.flagged_)) == {4, 17, 300, 301}
    held = np.stack([_blurred(x[5], 0.7), digits[0][400]])  # a copy and another digit
    ctx = _context(x[:200], y[:200])
    table, signatures = array_properties(held[:, None] / 255.0)
    registration = _array_registration(held[:, None] / 255.0)
    ctx.holdout = Holdout("x", ["a.png", "b.png"], table, signatures, "f", registration)
    assert np.flatnonzero(LeakageIssue().fit(ctx).flagged_).tolist() == [5]


def test_a_run_recorded_without_registration_images_falls_back_or_re_records(
    digits, tmp_path: Path
) -> None:
    """Without registration images the duplicate type runs its other rules (no error); an
    image run whose inputs were recorded before registration.npy existed records them again."""
    from ogad_core.issues.inputs import record_inputs
    from ogad_core.run.rundir import RunDir

    x, y = digits
    ctx = _context(x[:100], y[:100], registration=False)
    est = DuplicateIssue().fit(ctx)
    assert est.scores_.shape == (100,) and np.isfinite(est.scores_).all()
    rd = RunDir(tmp_path)
    assert record_inputs(rd, x[:20, None] / 255.0)
    assert np.load(rd.registration_path).shape == (20, 32, 32)
    rd.registration_path.unlink()
    assert not inputs_recorded(rd, 20)
    assert record_inputs(rd, x[:20, None] / 255.0) and rd.registration_path.is_file()


def test_a_rotated_copy_in_the_held_out_split_is_a_leak(digits) -> None:
    """A held-out file that is a training digit rotated by 8 degrees leaks that digit; two
    other held-out digits do not; without verification (the code before it) nothing leaks."""
    from ogad_core.issues.holdout import Holdout
    from ogad_core.issues.leakage import LeakageIssue

    x, y = digits
    train, held = x[:200], np.stack([_copies(x[5])["rotate"], x[300], x[301]])
    ctx = _context(train, y[:200])
    table, signatures = array_properties(held[:, None] / 255.0)
    refs = ["a.png", "b.png", "c.png"]
    ctx.holdout = Holdout(
        "x", refs, table, signatures, "f", _array_registration(held[:, None] / 255.0)
    )
    est = LeakageIssue().fit(ctx)
    assert np.flatnonzero(est.flagged_).tolist() == [5]
    assert est.explain(5).startswith("near copy of held-out a.png")
    assert not LeakageIssue(verify=0).fit(ctx).flagged_.any()


def test_a_shifted_copy_is_found_in_the_fourier_magnitude_of_the_pixels(digits) -> None:
    """Among 300 real digits a 2-pixel shifted copy lies at an ordinary neighbour's distance
    in the 16 x 16 pixels, but its source is its nearest in their Fourier magnitude (the
    candidate space that keeps a shifted copy next to its source)."""
    x, y = digits
    x = np.concatenate([x[:300], _copies(x[3])["shift"][None]])
    ctx = _context(x, np.concatenate([y[:300], y[3:4]]))
    _, fourier = ctx.neighbours("pixels/fourier/unit", 1)
    assert fourier[300, 0] == 3
    _, pixels = ctx.neighbours("pixels", 5)
    assert 3 not in pixels[300, :5]


def _without_early_rejection(monkeypatch: pytest.MonkeyPatch) -> None:
    import ogad_core.issues.registration as reg

    monkeypatch.setattr(reg, "HALF_GATES", (-1.0,))
    monkeypatch.setattr(reg, "FULL_GATES", (-1.0,))


def _warped_pixels(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """A list that gathers the pixels (pairs x channels x pixels) every warp samples, in
    :func:`warp` and in the refinement's compiled loop."""
    import ogad_core.issues.registration as reg

    counted: list[int] = []
    inner, loop = reg.warp, reg._refine_loop()

    def counting(images: np.ndarray, theta: np.ndarray) -> np.ndarray:
        counted.append(int(np.prod(images.shape)))
        return inner(images, theta)

    def counting_loop(*args: Any) -> int:
        counted.append(int(loop(*args)))
        return counted[-1]

    monkeypatch.setattr(reg, "warp", counting)
    monkeypatch.setattr(reg, "_refine_loop", lambda: counting_loop)
    return counted


def test_early_rejection_never_rejects_a_transformed_copy(digits, monkeypatch) -> None:
    """150 real digits, each with a shifted, a rotated and a rescaled copy, in both orders
    (900 pairs): every pair that the full refinement aligns as a copy (98%; not, e.g., a thin
    straight "1" shifted along itself) keeps exactly its NCC with the early rejection, and no
    other pair becomes a copy."""
    x, _ = digits
    copies = [c for i in range(150) for c in _copies(x[i]).values()]
    images = _array_registration(np.concatenate([x[:150], np.stack(copies)])[:, None] / 255.0)
    source = np.repeat(np.arange(150), 3)
    pairs = np.concatenate([np.column_stack([source, 150 + np.arange(450)])] * 2)
    pairs[450:] = pairs[450:, ::-1]
    gated = aligned_correlation(images, pairs)
    _without_early_rejection(monkeypatch)
    full = aligned_correlation(images, pairs)
    aligned = 1.0 - full < LIMIT
    assert aligned.mean() > 0.97, aligned.mean()
    np.testing.assert_array_equal(gated[aligned], full[aligned])
    assert not (1.0 - gated[~aligned] < LIMIT).any()


def test_early_rejection_stops_look_alikes_before_the_full_refinement(digits, monkeypatch) -> None:
    """Each of 600 real digits with its 3 nearest others in pixels (look-alikes, none a copy):
    none aligns as a copy, and with the early rejection the refinement warps fewer pixels
    (58% of those without it on these hardest pairs; under 70% asked)."""
    x, _ = digits
    flat = x.reshape(len(x), -1).astype(np.float32)
    dist = np.linalg.norm(flat[:, None] - flat[None], axis=2)
    np.fill_diagonal(dist, np.inf)
    near = np.argsort(dist, axis=1)[:, :3]
    pairs = np.unique(
        np.sort(np.column_stack([np.repeat(np.arange(600), 3), near.ravel()])), axis=0
    )
    images = _array_registration(x[:, None] / 255.0)
    counted = _warped_pixels(monkeypatch)
    gated = aligned_correlation(images, pairs)
    with_rejection = sum(counted)
    _without_early_rejection(monkeypatch)
    counted.clear()
    ungated = aligned_correlation(images, pairs)
    assert (1.0 - gated).min() > LIMIT and (1.0 - ungated).min() > LIMIT
    assert with_rejection < 0.7 * sum(counted), (with_rejection, sum(counted))


def test_one_candidate_search_per_space_serves_both_rules(digits, monkeypatch) -> None:
    """Above REFERENCE_ROWS (here lowered to 100 rows) the near-duplicate rule (k = 5) and the
    verification's candidates (verify_k = 6) share one search a space: three searches (pixels,
    features, Fourier magnitude), not five (a second search of a million rows for one more
    neighbour cost as much as the first); the copies are still found."""
    import ogad_core.issues.base as base
    import ogad_core.space.knn as knn

    monkeypatch.setattr(base, "REFERENCE_ROWS", 100)
    monkeypatch.setattr(knn, "ANN_MIN_ROWS", 100)
    searched: list[int] = []
    search = base._knn_excluding_self

    def counted(z: np.ndarray, k: int, *args: Any) -> tuple:
        searched.append(k)
        return search(z, k, *args)

    monkeypatch.setattr(base, "_knn_excluding_self", counted)
    x, y = digits
    x, y = x[:300].copy(), y[:300].copy()
    x = np.concatenate([x, _copies(x[3])["shift"][None], _copies(x[11])["rotate"][None]])
    y = np.concatenate([y, [y[3], y[11]]])
    context = _context(x, y)
    context.features = context.space("pixels/standard")
    est = DuplicateIssue().fit(context)
    assert searched == [6, 6, 6]
    assert est.set_ids_[300] == est.set_ids_[3] >= 0 and est.set_ids_[301] == est.set_ids_[11]


def test_above_reference_rows_fewer_candidates_an_image_are_verified(digits, monkeypatch) -> None:
    """Above REFERENCE_ROWS images (here lowered to 100) the verification aligns each image
    with its LARGE_VERIFY_K nearest a space, not its verify_k = 6: fewer candidate pairs, the
    shifted and rotated copies (their sources among their nearest) still found; at or below
    (the default REFERENCE_ROWS), verify_k."""
    import ogad_core.issues.base as base
    import ogad_core.issues.duplicate as duplicate
    import ogad_core.space.knn as knn

    monkeypatch.setattr(base, "REFERENCE_ROWS", 100)
    monkeypatch.setattr(knn, "ANN_MIN_ROWS", 100)
    x, y = digits
    x, y = x[:300].copy(), y[:300].copy()
    x = np.concatenate([x, _copies(x[3])["shift"][None], _copies(x[11])["rotate"][None]])
    y = np.concatenate([y, [y[3], y[11]]])
    pairs = {}
    for rows in (100_000, 100):
        monkeypatch.setattr(duplicate, "REFERENCE_ROWS", rows)
        context = _context(x, y)
        context.features = context.space("pixels/standard")
        est = DuplicateIssue().fit(context)
        assert est.set_ids_[300] == est.set_ids_[3] >= 0 and est.set_ids_[301] == est.set_ids_[11]
        pairs[rows] = est.candidate_pairs_
    assert duplicate.LARGE_VERIFY_K < DuplicateIssue().verify_k
    assert pairs[100] < 0.8 * pairs[100_000], pairs


def test_candidate_searches_of_many_rows_use_an_inverted_file(digits, monkeypatch) -> None:
    """Above REFERENCE_ROWS (here lowered to 100 rows) each of the three candidate searches
    (pixels, features, Fourier magnitude: 16-d PCAs) is an inverted file (faiss IVF-Flat, a
    quarter of an HNSW graph's CPU time at 1,000,000 rows), no graph is built, and the
    shifted and rotated copies are still found while each search scans 4 of its 15 lists."""
    import ogad_core.issues.base as base
    import ogad_core.space.knn as knn

    monkeypatch.setattr(base, "REFERENCE_ROWS", 100)
    monkeypatch.setattr(knn, "ANN_MIN_ROWS", 100)
    monkeypatch.setattr(knn, "IVF_PROBE", 4)
    built: list[str] = []
    ivf, hnsw = base.ivf_index, knn.hnsw_index

    def inverted(z: np.ndarray, seed: int = 0) -> Any:
        built.append("ivf")
        index = ivf(z, seed)
        assert index.nlist == 15 and index.nprobe == 4  # 600 rows / 39 a list
        return index

    def graph(z: np.ndarray) -> Any:
        built.append("hnsw")
        return hnsw(z)

    monkeypatch.setattr(base, "ivf_index", inverted)
    monkeypatch.setattr(knn, "hnsw_index", graph)
    x, y = digits
    x = np.concatenate([x, _copies(x[3])["shift"][None], _copies(x[11])["rotate"][None]])
    y = np.concatenate([y, [y[3], y[11]]])
    context = _context(x, y)
    context.features = context.space("pixels/standard")
    est = DuplicateIssue().fit(context)
    assert built == ["ivf", "ivf", "ivf"]
    assert est.set_ids_[600] == est.set_ids_[3] >= 0 and est.set_ids_[601] == est.set_ids_[11]


def test_a_transform_that_diverges_stops_the_pair_as_no_copy(digits) -> None:
    """The compiled refinement runs in fast math, which assumes finite coordinates: a pair
    whose transform is not finite or far beyond any image (here given so from the start)
    stops with NCC -1 and is never sampled there; the other pairs of the batch align."""
    import ogad_core.issues.registration as reg

    x, _ = digits
    images = _array_registration(np.stack([x[0], _copies(x[0])["shift"]] * 3)[:, None] / 255.0)
    a, b = reg.half(images[0::2] / 255.0), reg.half(images[1::2] / 255.0)
    start = reg.start_transform(reg.coarse(a[:1], b[:1])[1])[0]  # the copy's coarse start
    theta = np.stack([start, [np.nan, 0.0, 0.0, 0.0], [1.0, 0.0, 1e9, 0.0]])
    score, _ = reg.refine(a, b, theta, reg.HALF_STEPS, reg.HALF_GATES)
    assert score[0] > 0.97, score
    np.testing.assert_array_equal(score[1:], [-1.0, -1.0])


def test_the_compiled_gauss_newton_step_is_the_normal_equations_step(digits) -> None:
    """One compiled step (scalar sums in fast math) moves the transform as numpy's solve of
    the normal equations of the warped image's Jacobian (a, s, tx, ty, gain, offset) does."""
    import ogad_core.issues.registration as reg

    x, _ = digits
    pairs = [(x[i], _copies(x[i])[kind]) for i in (0, 7, 42) for kind in ("rotate", "rescale")]
    images = _array_registration(np.stack([img for pair in pairs for img in pair])[:, None] / 255)
    a = reg.half(images[0::2] / 255.0)
    b = reg.half(images[1::2] / 255.0)
    start = np.tile([1.0, 0.0, 0.3, -0.2], (len(a), 1))
    _, moved = reg.refine(a, b, start, 1)
    r = a.shape[1]
    gy, gx = np.gradient(b.astype(np.float32), axis=(1, 2))
    warped = reg.warp(np.stack([b, gx, gy], axis=1).astype(np.float32), start).astype(np.float64)
    v, u = (np.mgrid[0:r, 0:r].reshape(2, -1) - (r - 1) / 2).astype(np.float32)
    for p in range(len(a)):
        image, wx, wy = warped[p]
        jac = np.column_stack([wx * u + wy * v, wy * u - wx * v, wx, wy, image, np.ones(r * r)])
        sol = np.linalg.solve(jac.T @ jac + 1e-6 * np.eye(6), jac.T @ a[p].ravel())
        np.testing.assert_allclose(moved[p], start[p] + sol[:4] / sol[4], atol=1e-5)


def test_each_image_is_prepared_once_whatever_the_batches(digits, monkeypatch) -> None:
    """Each image's half-resolution copy and sharpness are computed once per call, however
    many pairs and batches it is in (at scale a chunk of pairs held nearly as many images as
    pairs: half the verification's CPU went to preparing them again); a pair's NCC does not
    depend on the pairs beside it (up to the batched products' float32 rounding)."""
    import ogad_core.issues.registration as reg

    x, _ = digits
    images = _array_registration(x[:200, None] / 255.0)
    rng = np.random.default_rng(0)
    pairs = np.unique(np.sort(rng.integers(0, 200, (3000, 2)), axis=1), axis=0)
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    halved: list[int] = []
    half = reg.half

    def counted(batch: np.ndarray) -> np.ndarray:
        halved.append(len(batch))
        return half(batch)

    monkeypatch.setattr(reg, "half", counted)
    monkeypatch.setattr(reg, "BATCH", 64)
    together = reg.aligned_correlation(images, pairs)
    assert sum(halved) == 200, halved
    alone = np.array([reg.aligned_correlation(images, pair[None])[0] for pair in pairs[::97]])
    np.testing.assert_allclose(together[::97], alone, atol=1e-6)


def test_the_prepared_images_are_the_same_whatever_the_chunk(digits, monkeypatch) -> None:
    """Each image's half-resolution copy and sharpness do not depend on how many images are
    prepared at a time (CHUNK: small chunks, for the CPU's cache), bit for bit."""
    import ogad_core.issues.registration as reg

    x, _ = digits
    images = _array_registration(x[:300, None] / 255.0)
    monkeypatch.setattr(reg, "CHUNK", len(images))
    halves, sharp = reg.prepare(images)
    for chunk in (7, 64):
        monkeypatch.setattr(reg, "CHUNK", chunk)
        chunked = reg.prepare(images, workers=2)
        assert np.array_equal(chunked[0], halves) and np.array_equal(chunked[1], sharp)


def test_pairs_that_share_the_warped_image_get_what_each_pair_gets_alone(digits) -> None:
    """The coarse grid of consecutive pairs with the same image to warp (its warps made once)
    equals each pair's alone, bit for bit; the NCC of every pair does not depend on the order
    the pairs are given in (they are aligned ordered by the image warped)."""
    import ogad_core.issues.registration as reg

    x, _ = digits
    images = _array_registration(x[:60, None] / 255.0)
    halves, _ = reg.prepare(images)
    pairs = np.array([(i, j) for j in range(5) for i in range(10, 20)])
    score, found = reg.coarse(halves[pairs[:, 0]], halves[pairs[:, 1]])
    for p, (i, j) in enumerate(pairs):
        alone = reg.coarse(halves[[i]], halves[[j]])
        assert score[p] == alone[0][0] and np.array_equal(found[p], alone[1][0])
    rng = np.random.default_rng(3)
    given = np.unique(np.sort(rng.integers(0, 60, (400, 2)), axis=1), axis=0)
    given = given[given[:, 0] != given[:, 1]]
    shuffled = rng.permutation(len(given))
    ncc = reg.aligned_correlation(images, given)
    assert np.array_equal(reg.aligned_correlation(images, given[shuffled]), ncc[shuffled])


def test_the_ncc_is_the_same_whatever_the_number_of_threads(digits, monkeypatch) -> None:
    """The verification's batches and the images' preparation run on ``workers`` threads
    (distinct threads do align batches); every pair's NCC is the same bits with 1, 2 or 3
    threads (copies refined to full resolution, look-alikes and random pairs; the images
    prepared in chunks of another size with each count); 0 is this thread alone."""
    import threading

    import ogad_core.issues.registration as reg

    x, _ = digits
    copies = [c for i in range(40) for c in _copies(x[i]).values()]
    images = _array_registration(np.concatenate([x[:300], np.stack(copies)])[:, None] / 255.0)
    rng = np.random.default_rng(1)
    pairs = np.concatenate(
        [
            np.column_stack([np.repeat(np.arange(40), 3), 300 + np.arange(120)]),
            np.column_stack([np.arange(299), np.arange(1, 300)]),
            rng.integers(0, len(images), (600, 2)),
        ]
    )
    threads: set[int] = set()
    pools: list[int] = []
    align, pool = reg._align, reg.ThreadPoolExecutor

    def noted(*args: Any) -> np.ndarray:
        threads.add(threading.get_ident())
        return align(*args)

    def sized(size: int) -> Any:
        pools.append(size)
        return pool(size)

    monkeypatch.setattr(reg, "_align", noted)
    monkeypatch.setattr(reg, "ThreadPoolExecutor", sized)
    monkeypatch.setattr(reg, "BATCH", 32)
    monkeypatch.setattr(reg, "CHUNK", 96)
    one = reg.aligned_correlation(images, pairs, workers=1)
    assert threads == {threading.get_ident()} and pools == []
    for workers in (2, 3, 0):
        threads.clear()
        pools.clear()
        np.testing.assert_array_equal(reg.aligned_correlation(images, pairs, workers=workers), one)
        assert pools == ([workers] * 2 if workers else []), (workers, pools)  # prepare, align
        assert (len(threads) > 1) == (workers > 1), (workers, len(threads))
    assert (1.0 - one[:120] < LIMIT).mean() > 0.9  # the copies reached full resolution


def test_the_duplicate_type_finds_the_same_sets_with_one_or_two_threads(digits) -> None:
    """The duplicate type's scores, flags and sets on 300 digits with transformed copies are
    the same with ``workers`` 1 and 2 (``--workers``: the verification's threads)."""
    x, y = digits
    copies = [c for i in range(10) for c in _copies(x[i]).values()]
    x = np.concatenate([x[:300], np.stack(copies)])
    y = np.concatenate([y[:300], np.repeat(y[:10], 3)])
    fits = []
    for workers in (1, 2):
        context = _context(x, y)
        context.workers = workers
        fits.append(DuplicateIssue().fit(context))
    one, two = fits
    np.testing.assert_array_equal(one.scores_, two.scores_)
    np.testing.assert_array_equal(one.flagged_, two.flagged_)
    np.testing.assert_array_equal(one.set_ids_, two.set_ids_)
    assert one.flagged_[300:].mean() > 0.9


def test_the_compiled_gradients_are_numpys_exactly(digits) -> None:
    """The refinement's image and x, y gradients, stacked by a compiled loop (outside the GIL),
    are numpy.gradient's bit for bit (half- and full-resolution digits)."""
    from ogad_core.issues.registration_loops import gradient_loop

    x, _ = digits
    images = _array_registration(x[:50, None] / 255.0) / np.float32(255)
    for b in (images, np.ascontiguousarray(images[:, ::2, ::2])):
        channels = np.empty((len(b), 3, *b.shape[1:]), dtype=np.float32)
        gradient_loop(b, channels)
        gy, gx = np.gradient(b, axis=(1, 2))
        np.testing.assert_array_equal(channels, np.stack([b, gx, gy], axis=1))


def _coarse_by_hand(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(P, G, S, S) NCC of a (P, r, r) with b bilinearly warped by each GRID (angle, scale)
    about the centre (corners clamped) and rolled by each (dy, dx) of the shifts searched."""
    import ogad_core.issues.registration as reg

    p, r, _ = a.shape
    c = (r - 1) / 2
    yy, xx = np.mgrid[0:r, 0:r].astype(np.float64) - c
    shifts = np.r_[0 : reg.MAX_SHIFT + 1, -reg.MAX_SHIFT : 0]
    out = np.empty((p, len(reg.GRID), len(shifts), len(shifts)))
    for g, (angle, scale) in enumerate(reg.GRID):
        t = np.deg2rad(angle)
        ca, sa = np.cos(t) / scale, np.sin(t) / scale
        idx, w = reg._corners((ca * xx - sa * yy + c).ravel(), (sa * xx + ca * yy + c).ravel(), r)
        flat = b.reshape(p, -1).astype(np.float64)
        warped = (flat[:, idx] * w[None]).sum(axis=1).reshape(p, r, r)
        for iy, dy in enumerate(shifts):
            for ix, dx in enumerate(shifts):
                rolled = np.roll(a, (dy, dx), axis=(1, 2))
                out[:, g, iy, ix] = np.einsum(
                    "pm,pm->p", reg.standardise(rolled), reg.standardise(warped)
                )
    return out


def test_the_coarse_grid_is_the_best_warp_and_shift_correlated_by_hand(digits) -> None:
    """The compiled coarse search (every grid warp of b at every shift of a, one dot product
    each) returns the best NCC of all of them, computed here one warp and one np.roll at a
    time, and the warp and shift that reach it (the first of equals); for digits and their
    shifted, rotated and rescaled copies and for pairs of different digits."""
    import ogad_core.issues.registration as reg

    x, _ = digits
    copies = [c for i in range(20) for c in _copies(x[i]).values()]
    images = _array_registration(np.concatenate([x[:60], np.stack(copies)])[:, None] / 255.0)
    pairs = np.column_stack([np.repeat(np.arange(20), 3), 60 + np.arange(60)])
    pairs = np.concatenate([pairs, np.column_stack([np.arange(60), (np.arange(60) + 7) % 60])])
    halves = reg.half(images / 255.0)
    a, b = halves[pairs[:, 0]], halves[pairs[:, 1]]
    score, found = reg.coarse(a, b)
    by_hand = _coarse_by_hand(a, b)
    np.testing.assert_allclose(score, by_hand.reshape(len(a), -1).max(axis=1), atol=1e-5)
    shifts = list(np.r_[0 : reg.MAX_SHIFT + 1, -reg.MAX_SHIFT : 0])
    g = [reg.GRID.index((angle, scale)) for angle, scale in found[:, :2]]
    at = by_hand[np.arange(len(a)), g, [shifts.index(v) for v in found[:, 3]]]
    at = at[np.arange(len(a)), [shifts.index(v) for v in found[:, 2]]]
    np.testing.assert_allclose(at, score, atol=1e-5)
    assert (score[:60] > 0.87).all() and score[60:].min() < 0.8


def test_full_images_are_read_only_for_pairs_that_reach_full_resolution(
    digits, monkeypatch
) -> None:
    """The full-resolution images of a batch are read only for its pairs that pass the
    half-resolution refinement: none for pairs of different digits, two a copy otherwise."""
    import ogad_core.issues.registration as reg

    x, _ = digits
    x = np.stack([x[0], _copies(x[0])["rotate"], *x[1:9]])
    images = _array_registration(x[:, None] / 255.0)
    read: list[int] = []
    unit_range = reg._unit_range

    def counted(images: np.ndarray, rows: np.ndarray) -> np.ndarray:
        read.append(len(rows))
        return unit_range(images, rows)

    monkeypatch.setattr(reg, "_unit_range", counted)
    different = np.column_stack([np.arange(2, 9), np.arange(3, 10)])
    reg.aligned_correlation(images, different)
    prepared = sum(read)
    assert prepared == len(images), read  # each image's half image, once
    score = reg.aligned_correlation(images, np.concatenate([[[0, 1]], different]))
    assert 1.0 - score[0] < LIMIT
    assert sum(read) - 2 * prepared == 2, read


_CACHE_PROBE = """
import numpy as np
from ogad_core.issues import registration, registration_loops as loops
images = np.random.default_rng(0).integers(0, 255, (4, 32, 32)).astype(np.uint8)
images[1] = images[0]
registration.aligned_correlation(images, np.array([[0, 1], [2, 3]]))
loops_used = (loops.refine_loop, loops.warp_loop, loops.coarse_loop, loops.gradient_loop)
print(sum(sum(f.stats.cache_misses.values()) for f in loops_used))
"""


def test_a_new_process_loads_the_compiled_loops_from_the_cache() -> None:
    """The coarse grid, the refinement and the warp are compiled once, then loaded from numba's
    on-disk cache in every later process (compiled inside a function with its callees as closure
    variables, the refinement missed the cache in each new process: about 6 CPU s each)."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    run = [sys.executable, "-c", _CACHE_PROBE]
    subprocess.run(run, cwd=root, check=True, capture_output=True)  # compiles if not cached
    second = subprocess.run(run, cwd=root, check=True, capture_output=True, text=True)
    assert second.stdout.split()[-1] == "0", second.stdout


@pytest.mark.parametrize("many_rows", [False, True])
def test_each_candidate_space_is_built_once_a_fit(digits, monkeypatch, many_rows) -> None:
    """The near-duplicate rule and the verification share each space's candidates, and the
    space is built once for its search and its exact distances (the Fourier magnitude of the
    pixels was built twice, the pixels' and features' candidates re-ranked twice), with or
    without the PCA of many rows (here above 100 rows); the copies are still found."""
    import ogad_core.issues.base as base
    import ogad_core.space.knn as knn

    if many_rows:
        monkeypatch.setattr(base, "REFERENCE_ROWS", 100)
        monkeypatch.setattr(knn, "ANN_MIN_ROWS", 100)
    built: list[str] = []
    space, fourier = base.IssueContext.space, base.fourier_magnitude

    def counted_space(self: IssueContext, name: str) -> np.ndarray | None:
        built.append(name)
        return space(self, name)

    def counted_fourier(signatures: np.ndarray) -> np.ndarray:
        built.append("fourier")
        return fourier(signatures)

    monkeypatch.setattr(base.IssueContext, "space", counted_space)
    monkeypatch.setattr(base, "fourier_magnitude", counted_fourier)
    x, y = digits
    x = np.concatenate([x[:300], _copies(x[3])["shift"][None], _copies(x[11])["rotate"][None]])
    context = _context(x, np.concatenate([y[:300], [y[3], y[11]]]))
    context.features = np.asarray(space(context, "pixels/standard"))
    est = DuplicateIssue().fit(context)
    assert built.count("fourier") == 1, built
    for name in ("pixels", "features/unit", "pixels/fourier/unit"):
        assert built.count(name) == 1, (name, built)
    assert est.set_ids_[300] == est.set_ids_[3] >= 0 and est.set_ids_[301] == est.set_ids_[11]


def test_half_resolution_images_are_numpys_padded_tent_and_2x2_means_exactly() -> None:
    """The tent padded by slices and the 2 x 2 means summed in pairs give exactly (bit for
    bit) np.pad's edge padding and numpy's mean over the two axes, in float32 and float64:
    every NCC of the verification stays as it was."""
    import ogad_core.issues.registration as reg

    rng = np.random.default_rng(0)
    for dtype in (np.float32, np.float64):
        x = rng.random((500, 32, 32)).astype(dtype)
        pad = np.pad(x, ((0, 0), (1, 1), (1, 1)), mode="edge")
        rows = (pad[:, :-2] + 2 * pad[:, 1:-1] + pad[:, 2:]) / 4
        tent = (rows[:, :, :-2] + 2 * rows[:, :, 1:-1] + rows[:, :, 2:]) / 4
        np.testing.assert_array_equal(reg.tent(x), tent)
        means = tent.reshape(500, 16, 2, 16, 2).mean(axis=(2, 4))
        assert reg.half(x).dtype == means.dtype
        np.testing.assert_array_equal(reg.half(x), means)


@pytest.mark.parametrize("undirected", [True, False])
def test_neighbour_pairs_are_the_distinct_pairs_in_order(undirected: bool) -> None:
    """The candidate pairs of a neighbour index (-1: none) are its distinct (row, neighbour)
    pairs in lexicographic order, as numpy's unique of rows gives them; undirected: each pair
    once as (low, high) and none of a row with itself."""
    idx = np.random.default_rng(0).integers(-1, 40, (40, 6))
    rows = np.repeat(np.arange(40), 6)
    pairs = np.column_stack([rows, idx.ravel()])[idx.ravel() >= 0]
    if undirected:
        pairs = np.sort(pairs[pairs[:, 0] != pairs[:, 1]], axis=1)
    found = neighbour_pairs(idx, undirected=undirected)
    assert found.dtype == np.int64
    np.testing.assert_array_equal(found, np.unique(pairs, axis=0))
    assert neighbour_pairs(np.full((3, 2), -1), undirected=undirected).shape == (0, 2)
