"""N synthetic photos as JPEGs in an ImageFolder, with 5% of them filed under a wrong class.

    python -m benchmarks.synthetic_jpegs --n 100000 --out DIR [--classes 100] [--flip 0.05]

Layout (the truth lies beside the ImageFolder, never inside it)::

    DIR/images/class_000/img_0000000.jpg ...   the ImageFolder, as a user would have it
    DIR/truth.csv                              path (relative to DIR), true, given, flipped

Each class is learnable from what a convolutional encoder sees: class ``c`` has a background
colour (one of 10 hues, ``c // 10``) and a stripe pattern (one of 10 orientation / frequency
pairs, ``c % 10``) in a second colour, plus a disc whose size depends on the class; every photo
jitters the colours, the stripes' phase and the disc's place, and adds Gaussian pixel noise. Sides
are drawn from 128-256 px (random aspect). Photo ``i`` depends only on ``(seed, i)``, so the set is
the same for any number of worker processes; the flipped labels are drawn from ``seed`` alone.
"""

from __future__ import annotations

import argparse
import csv
import io
import time
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

import numpy as np

__all__ = ["Truth", "draw_labels", "make_dataset", "render_photo", "read_truth"]

#: photos written per task handed to a worker
CHUNK = 500


@dataclass(frozen=True)
class Truth:
    """What was generated: (N,) true classes, given (possibly flipped) classes, relative paths."""

    true: np.ndarray
    given: np.ndarray
    paths: list[str]

    @property
    def flipped(self) -> np.ndarray:
        """(N,) bool: filed under a class other than its own."""
        return self.true != self.given


def draw_labels(n: int, classes: int, flip: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(N,) true classes (balanced, shuffled) and (N,) given classes with ``round(flip * N)``
    of them moved to a uniformly drawn other class."""
    rng = np.random.default_rng([seed, 0xF11B])
    true = rng.permutation(np.arange(n) % classes)
    given = true.copy()
    moved = rng.choice(n, size=int(round(flip * n)), replace=False)
    given[moved] = (true[moved] + rng.integers(1, classes, size=len(moved))) % classes
    return true, given


def _hue_rgb(h: float) -> np.ndarray:
    """(3,) an RGB colour in 0..255 for a hue in [0, 1) (full saturation, bright)."""
    k = (np.array([5.0, 3.0, 1.0]) + h * 6.0) % 6.0
    return 255.0 * (1.0 - np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0) * 0.8)


def render_photo(i: int, cls: int, seed: int) -> np.ndarray:
    """(H, W, 3) uint8 photo ``i`` of class ``cls``; H and W in 128..256."""
    rng = np.random.default_rng([seed, i])
    h, w = (int(v) for v in rng.integers(128, 257, size=2))
    hue, pattern = divmod(cls, 10)
    bg = _hue_rgb(hue / 10 + rng.normal(0, 0.01)) * rng.uniform(0.85, 1.0)
    fg = _hue_rgb(hue / 10 + 0.5 + rng.normal(0, 0.01)) * rng.uniform(0.3, 0.6)
    angle = np.pi * (pattern % 5) / 5 + rng.normal(0, 0.05)
    period = (8.0 if pattern < 5 else 20.0) * rng.uniform(0.9, 1.1)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    phase = rng.uniform(0, 2 * np.pi)
    wave = np.sin((x * np.cos(angle) + y * np.sin(angle)) * (2 * np.pi / period) + phase)
    mix = (wave > 0).astype(np.float32)[..., None]
    cy, cx = rng.uniform(0.3, 0.7) * h, rng.uniform(0.3, 0.7) * w
    radius = (0.12 + 0.02 * (cls % 7)) * min(h, w)
    disc = (((y - cy) ** 2 + (x - cx) ** 2) < radius**2)[..., None]
    img = bg * (1 - mix) + fg * mix
    img = np.where(disc, 255.0 - bg, img)
    img += rng.normal(0, 18, size=img.shape).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)


def _relative_path(i: int, given: int) -> str:
    return f"images/class_{given:03d}/img_{i:07d}.jpg"


def _write_chunk(args: tuple[Path, int, np.ndarray, np.ndarray, int, int]) -> int:
    """Worker: writes photos ``start ..`` of the chunk; returns how many it wrote."""
    from PIL import Image

    out, start, true, given, seed, quality = args
    for k, (t, g) in enumerate(zip(true, given, strict=True)):
        i = start + k
        path = out / _relative_path(i, int(g))
        if path.is_file():  # an interrupted generation resumes
            continue
        buf = io.BytesIO()
        Image.fromarray(render_photo(i, int(t), seed)).save(buf, "JPEG", quality=quality)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(buf.getvalue())
        tmp.rename(path)
    return len(true)


def _tasks(out: Path, truth: Truth, seed: int, quality: int) -> Iterator[tuple]:
    for start in range(0, len(truth.true), CHUNK):
        stop = start + CHUNK
        yield out, start, truth.true[start:stop], truth.given[start:stop], seed, quality


def make_dataset(
    out: Path,
    n: int,
    *,
    classes: int = 100,
    flip: float = 0.05,
    seed: int = 0,
    workers: int = 2,
    quality: int = 85,
    progress: bool = True,
) -> Truth:
    """Writes ``out/images/`` (the ImageFolder) and ``out/truth.csv``; returns the truth.

    Photos already on disk are kept (a rerun with the same arguments finishes an interrupted
    one)."""
    if classes < 2 or classes > 1000:
        raise ValueError(f"classes must be 2..1000, got {classes}")
    true, given = draw_labels(n, classes, flip, seed)
    truth = Truth(true, given, [_relative_path(i, int(g)) for i, g in enumerate(given)])
    for c in range(classes):
        (out / "images" / f"class_{c:03d}").mkdir(parents=True, exist_ok=True)
    t0, done = time.perf_counter(), 0
    with get_context("fork").Pool(workers) as pool:
        for k in pool.imap_unordered(_write_chunk, _tasks(out, truth, seed, quality)):
            done += k
            if progress and (done % 10_000 < CHUNK or done == n):
                rate = done / max(time.perf_counter() - t0, 1e-9)
                print(f"synthetic JPEGs: {done:,}/{n:,} ({rate:,.0f}/s)", flush=True)
    _write_truth(out / "truth.csv", truth)
    return truth


def _write_truth(path: Path, truth: Truth) -> None:
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "true", "given", "flipped"])
        for p, t, g in zip(truth.paths, truth.true, truth.given, strict=True):
            w.writerow([p, int(t), int(g), int(t != g)])
    tmp.rename(path)


def read_truth(path: Path) -> Truth:
    """The truth a :func:`make_dataset` wrote."""
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    true = np.array([int(r["true"]) for r in rows], dtype=np.int64)
    given = np.array([int(r["given"]) for r in rows], dtype=np.int64)
    return Truth(true, given, [r["path"] for r in rows])


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--classes", type=int, default=100)
    ap.add_argument("--flip", type=float, default=0.05)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=2)
    a = ap.parse_args(argv)
    t0 = time.perf_counter()
    truth = make_dataset(a.out, a.n, classes=a.classes, flip=a.flip, seed=a.seed, workers=a.workers)
    secs = time.perf_counter() - t0
    print(f"{a.n:,} JPEGs ({int(truth.flipped.sum()):,} flipped) in {secs:.0f} s -> {a.out}")


if __name__ == "__main__":
    main()
