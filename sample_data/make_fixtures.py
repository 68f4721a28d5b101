"""Rebuild the small image fixtures in sample_data/ from sklearn's shipped digits.

    python sample_data/make_fixtures.py

Writes ``digits_folder/<class>/<i>.png`` (classes 0, 1, 7; 20 images each; 8x8 grayscale
upscaled to 16x16) and ``digits_images.csv`` (``image,label`` with paths relative to it).
Deterministic: the first 20 images of each class in ``load_digits()`` order.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.datasets import load_digits

HERE = Path(__file__).resolve().parent
CLASSES = (0, 1, 7)
PER_CLASS = 20


def main() -> None:
    digits = load_digits()
    folder = HERE / "digits_folder"
    rows = []
    for c in CLASSES:
        (folder / str(c)).mkdir(parents=True, exist_ok=True)
        idx = np.flatnonzero(digits.target == c)[:PER_CLASS]
        for i in idx:
            img = np.clip(np.round(digits.images[i] * 255 / 16), 0, 255).astype(np.uint8)
            path = folder / str(c) / f"{i:04d}.png"
            Image.fromarray(img).resize((16, 16), Image.Resampling.NEAREST).save(path)
            rows.append((path.relative_to(HERE).as_posix(), str(c)))
    with open(HERE / "digits_images.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["image", "label"])
        writer.writerows(rows)
    print(f"wrote {len(rows)} images under {folder} and digits_images.csv")


if __name__ == "__main__":
    main()
