"""The held-out mix (``--mix alt`` in ``bench_issues``): every kind of :mod:`.issue_mixes`
made from OTHER sources, to check that the issue types generalise beyond one recipe. The same
sizes per issue type (so the same K) and the same truth table, plus a ``variant`` column (the
transform or source of each injected sample).

Images (mnist5k's 4,000 train digits as an ImageFolder, :data:`ALT_IMAGE_KINDS`):
flipped labels to a confusable class (:data:`CONFUSABLE`); duplicates made by other transforms
(:data:`DUP_VARIANTS`: a 1-2 pixel shift, a 5-10 degree rotation, a 0.85-1.15 rescale, JPEG at
quality 30, a PNG re-save) under another label and under the same one; out-of-distribution
inputs from three other sources (PIL-drawn geometric shapes, glyphs of other scripts and math
symbols in DejaVu Sans, sklearn's 8x8 ``load_digits`` upscaled with its true label: a domain
shift); corrupted inputs of other kinds (salt-and-pepper, an occluding block, stripes, JPEG
at quality 1, over-exposed, a 3x3-pixel image, a truncated PNG that does not decode).

Text (Rotten Tomatoes as a CSV, :data:`ALT_TEXT_KINDS`): flipped labels (binary: the other
class); duplicated reviews with a small edit (case, punctuation, one word dropped) under the
other label; corrupt snippets of other kinds (one word repeated, markup only, digits only,
random bytes shown as Latin-1, one to three letters); out-of-domain sentences from three
other sources (the licence texts in /usr/share/common-licenses, Debian package descriptions in
/var/lib/dpkg/status, lines of Python code from the standard library's source).
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw, ImageFont

from benchmarks.issue_mixes import write_text_csv

#: kind -> (number injected, the issue type that should find it); per type the main mix's sizes
ALT_IMAGE_KINDS = {
    "flipped": (150, "label"),
    "dup_conflict": (40, "duplicate"),
    "dup_same": (20, "duplicate"),
    "ood_shape": (20, "outlier"),
    "ood_script": (15, "outlier"),
    "ood_digits8": (15, "outlier"),
    "corrupt_saltpepper": (8, "corrupt"),
    "corrupt_block": (7, "corrupt"),
    "corrupt_stripes": (7, "corrupt"),
    "corrupt_jpeg": (7, "corrupt"),
    "corrupt_bright": (7, "corrupt"),
    "corrupt_tiny": (7, "corrupt"),
    "corrupt_truncated": (7, "corrupt"),
}
ALT_TEXT_KINDS = {
    "flipped": (100, "label"),
    "dup_edit": (40, "duplicate"),
    "corrupt_repeat": (8, "corrupt"),
    "corrupt_markup": (8, "corrupt"),
    "corrupt_digits": (8, "corrupt"),
    "corrupt_bytes": (8, "corrupt"),
    "corrupt_short": (8, "corrupt"),
    "ood_license": (14, "outlier"),
    "ood_package": (13, "outlier"),
    "ood_code": (13, "outlier"),
}
#: a digit's most confusable other digit (class-conditional label noise)
CONFUSABLE = {0: 6, 1: 7, 2: 7, 3: 5, 4: 9, 5: 3, 6: 0, 7: 1, 8: 3, 9: 4}
DUP_VARIANTS = ("shift", "rotate", "rescale", "jpeg", "png")
FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
#: Greek, Cyrillic, Hebrew, Arabic, Armenian, Georgian letters and math symbols
SCRIPT_GLYPHS = "αβγδζξψωΩΣΦЖЩФЯДБЛאבגשתמابجسعԱՔՖაბდ∑∫∂√∇⊕∞≈"
#: two shapes of one kind and fill whose corners all lie this close (pixels) are one shape twice
MIN_SHAPE_MOVE = 3
SEED_OFFSET = 7919  # the alt mix draws other samples than the main one for the same seed


def _png(img: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    return buf.getvalue()


def _jpeg(img: np.ndarray, quality: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


# ---- images: duplicates ---------------------------------------------------------------------


def _affine(img: np.ndarray, matrix: tuple[float, ...]) -> np.ndarray:
    pil = Image.fromarray(img)
    return np.asarray(pil.transform(pil.size, Image.AFFINE, matrix, Image.BILINEAR))


def _shift(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    dx, dy = 0, 0
    while dx == 0 and dy == 0:
        dx, dy = (int(v) for v in rng.integers(-2, 3, 2))
    return _affine(img, (1, 0, dx, 0, 1, dy))


def _rotate(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    angle = float(rng.uniform(5, 10)) * (1 if rng.random() < 0.5 else -1)
    return np.asarray(Image.fromarray(img).rotate(angle, Image.BILINEAR))


def _rescale(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    s = float(rng.uniform(0.85, 0.92) if rng.random() < 0.5 else rng.uniform(1.08, 1.15))
    c = 14.0  # scale about the centre
    return _affine(img, (1 / s, 0, c - c / s, 0, 1 / s, c - c / s))


def duplicate_file(img: np.ndarray, variant: str, rng: np.random.Generator) -> tuple[bytes, str]:
    """(file bytes, suffix) of a copy of the (28, 28) uint8 ``img`` made by ``variant`` (one of
    :data:`DUP_VARIANTS`)."""
    if variant == "jpeg":
        return _jpeg(img, 30), ".jpg"
    if variant == "png":  # a re-save: other encoder settings, the same pixels
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format="PNG", compress_level=1)
        return buf.getvalue(), ".png"
    make = {"shift": _shift, "rotate": _rotate, "rescale": _rescale}[variant]
    return _png(make(img, rng)), ".png"


# ---- images: out-of-distribution ----------------------------------------------------------


def shapes(rng: np.random.Generator, n: int) -> list[np.ndarray]:
    """``n`` (28, 28) uint8 images of PIL-drawn geometric shapes (ellipse, rectangle, triangle,
    star, crossed lines), filled or outlined, of random size, place and grey level."""
    out = []
    for shape, tone, fill, (x0, y0, x1, y1) in shape_specs(rng, n):
        img = Image.new("L", (28, 28), 0)
        draw = ImageDraw.Draw(img)
        if shape == 0:
            draw.ellipse((x0, y0, x1, y1), fill=fill, outline=tone, width=2)
        elif shape == 1:
            draw.rectangle((x0, y0, x1, y1), fill=fill, outline=tone, width=2)
        elif shape == 2:
            draw.polygon([((x0 + x1) // 2, y0), (x0, y1), (x1, y1)], fill=fill, outline=tone)
        elif shape == 3:
            cx, cy, r = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2
            angles = np.linspace(-np.pi / 2, 3 * np.pi / 2, 11)[:-1]
            radii = np.where(np.arange(10) % 2, r * 0.45, r)
            pairs = zip(radii, angles, strict=True)
            pts = [(cx + q * np.cos(a), cy + q * np.sin(a)) for q, a in pairs]
            draw.polygon(pts, fill=fill or tone)
        else:
            draw.line((x0, y0, x1, y1), fill=tone, width=2)
            draw.line((x0, y1, x1, y0), fill=tone, width=2)
        out.append(np.asarray(img))
    return out


ShapeSpec = tuple[int, int, int | None, tuple[int, int, int, int]]


def shape_specs(rng: np.random.Generator, n: int) -> list[ShapeSpec]:
    """``n`` shapes to draw: (kind 0-4, grey level, fill level or None, corners x0 y0 x1 y1).
    No two of one kind and fill have every corner within :data:`MIN_SHAPE_MOVE` pixels (a
    brighter or darker copy of one shape is one input twice: a duplicate set)."""
    specs: list[ShapeSpec] = []
    while len(specs) < n:
        tone = int(rng.integers(140, 256))
        x0, y0 = (int(v) for v in rng.integers(1, 10, 2))
        x1, y1 = (int(v) for v in rng.integers(18, 27, 2))
        shape = int(rng.integers(5))
        fill = tone if rng.random() < 0.5 else None
        spec = (shape, tone, fill, (x0, y0, x1, y1))
        if not any(same_shape(spec, other) for other in specs):
            specs.append(spec)
    return specs


def same_shape(a: ShapeSpec, b: ShapeSpec) -> bool:
    """Whether two shape specs draw one shape (its grey level aside)."""
    filled_a, filled_b = (s[2] is not None or s[0] == 3 for s in (a, b))  # a star is filled
    moved = max(abs(p - q) for p, q in zip(a[3], b[3], strict=True))
    return a[0] == b[0] and filled_a == filled_b and moved <= MIN_SHAPE_MOVE


def script_glyphs(rng: np.random.Generator, n: int) -> list[np.ndarray]:
    """``n`` (28, 28) uint8 images of one glyph of another script or a math symbol
    (:data:`SCRIPT_GLYPHS`, DejaVu Sans), centred, slightly rotated; each glyph once (a glyph
    drawn twice at a close size and angle is a duplicate set, not two outliers)."""
    out = []
    for pick in rng.choice(len(SCRIPT_GLYPHS), size=n, replace=False):
        font = ImageFont.truetype(str(FONT), int(rng.integers(18, 24)))
        ch = SCRIPT_GLYPHS[int(pick)]
        img = Image.new("L", (28, 28), 0)
        ImageDraw.Draw(img).text((14, 14), ch, fill=255, font=font, anchor="mm")
        out.append(np.asarray(img.rotate(float(rng.uniform(-12, 12)), Image.BILINEAR)))
    return out


def small_digits(rng: np.random.Generator, n: int) -> tuple[list[np.ndarray], list[int]]:
    """``n`` of sklearn's 8x8 ``load_digits`` upscaled to (28, 28) uint8 (pixel blocks of 3,
    a 2-pixel border), and their true digits."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    pick = rng.choice(len(digits.images), size=n, replace=False)
    out = []
    for i in pick:
        small = np.clip(digits.images[i] * 16, 0, 255).astype(np.uint8)
        big = np.kron(small, np.ones((3, 3), dtype=np.uint8))
        out.append(np.pad(big, 2))
    return out, [int(digits.target[i]) for i in pick]


# ---- images: corrupt ----------------------------------------------------------------------


def _saltpepper(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    out = img.copy()
    mask = rng.random(img.shape) < 0.25
    out[mask] = np.where(rng.random(int(mask.sum())) < 0.5, 0, 255)
    return out


def _block(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    out = img.copy()
    y, x = (int(v) for v in rng.integers(4, 11, 2))
    out[y : y + 14, x : x + 14] = int(rng.choice([128, 255]))
    return out


def _stripes(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    out = img.copy()
    start = int(rng.integers(3))
    if rng.random() < 0.5:
        out[start::3, :] = 255
    else:
        out[:, start::3] = 255
    return out


def _bright(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return (img.astype(np.float32) * 0.2 + 200 + rng.integers(0, 4, img.shape)).astype(np.uint8)


def corrupt_file(img: np.ndarray, kind: str, rng: np.random.Generator) -> tuple[bytes, str]:
    """(file bytes, suffix) of the (28, 28) uint8 ``img`` corrupted as ``kind`` (a
    ``corrupt_*`` key of :data:`ALT_IMAGE_KINDS`)."""
    if kind == "corrupt_jpeg":
        return _jpeg(img, 1), ".jpg"
    if kind == "corrupt_tiny":
        return _png(np.asarray(Image.fromarray(img).resize((3, 3), Image.BILINEAR))), ".png"
    if kind == "corrupt_truncated":
        data = _png(img)
        return data[: len(data) * 2 // 5], ".png"
    make: dict[str, Callable[[np.ndarray, np.random.Generator], np.ndarray]] = {
        "corrupt_saltpepper": _saltpepper,
        "corrupt_block": _block,
        "corrupt_stripes": _stripes,
        "corrupt_bright": _bright,
    }
    return _png(make[kind](img, rng)), ".png"


# ---- images: the mix ----------------------------------------------------------------------


@dataclass(frozen=True)
class ImageRecipe:
    """What an image mix injects into mnist5k's 4,000 train digits.

    Attributes:
        kinds: kind -> (number injected, the issue type expected to find it).
        seed_offset: added to the seed (each mix draws other digits for the same seed).
        flip_labels: (images (N, 28, 28), labels (N,), flipped rows (m,)) -> their new labels.
        flip_variant: the flipped rows' variant in the truth table.
        dup_variants: the duplicates' transforms, used in turn.
        duplicate_file: (image, variant, rng) -> (file bytes, suffix) of a transformed copy.
        add_outliers: (rng, add) adds the out-of-distribution inputs.
        corrupt_file: (image, kind, rng) -> (file bytes, suffix) of a corrupted digit.
    """

    kinds: dict[str, tuple[int, str]]
    seed_offset: int
    flip_labels: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
    flip_variant: str
    dup_variants: tuple[str, ...]
    duplicate_file: Callable[[np.ndarray, str, np.random.Generator], tuple[bytes, str]]
    add_outliers: Callable[[np.random.Generator, Callable[..., None]], None]
    corrupt_file: Callable[[np.ndarray, str, np.random.Generator], tuple[bytes, str]]


def write_image_mix(root: Path, seed: int, recipe: ImageRecipe) -> pd.DataFrame:
    """Write mnist5k's 4,000 train digits plus ``recipe``'s kinds as an ImageFolder under
    ``root``; returns the truth table (path, label, clean_label, kind, expected, set_key,
    variant) in file order."""
    from benchmarks.issue_mixes import mnist5k_digits

    rng = np.random.default_rng(seed + recipe.seed_offset)
    x, y = mnist5k_digits()
    images = np.clip(np.asarray(x), 0, 255).astype(np.uint8).reshape(-1, 28, 28)
    labels = np.asarray(y, dtype=np.int64)
    keep = rng.permutation(len(images))[:4000]
    images, labels = images[keep], labels[keep]
    rows: list[dict] = []

    def add(data: bytes, suffix: str, label: int, clean: int, kind: str, **kw: object) -> None:
        rows.append(dict(data=data, suffix=suffix, label=int(label), clean=int(clean), kind=kind))
        rows[-1].update(set_key=kw.get("set_key", -1), variant=kw.get("variant", ""))

    pool = rng.permutation(len(images))
    n_flip = recipe.kinds["flipped"][0]
    flipped_to = recipe.flip_labels(images, labels, pool[:n_flip])
    flips = dict(zip(pool[:n_flip].tolist(), flipped_to.tolist(), strict=True))
    for i, (img, lab) in enumerate(zip(images, labels, strict=True)):
        if i in flips:
            add(_png(img), ".png", flips[i], lab, "flipped", variant=recipe.flip_variant)
        else:
            add(_png(img), ".png", lab, lab, "clean", set_key=i)
    cursor = n_flip
    for kind in ("dup_conflict", "dup_same"):
        for j in range(recipe.kinds[kind][0]):
            i = int(pool[cursor])
            cursor += 1
            variant = recipe.dup_variants[j % len(recipe.dup_variants)]
            data, suffix = recipe.duplicate_file(images[i], variant, rng)
            lab = int(labels[i])
            new = (lab + int(rng.integers(1, 10))) % 10 if kind == "dup_conflict" else lab
            rows[i].update(kind=kind + "_source", set_key=i)
            add(data, suffix, new, lab, kind, set_key=i, variant=variant)
    recipe.add_outliers(rng, add)
    for kind, (n, issue) in recipe.kinds.items():
        if issue != "corrupt":
            continue
        for _ in range(n):
            i = int(pool[cursor])
            cursor += 1
            data, suffix = recipe.corrupt_file(images[i], kind, rng)
            rows[i].update(kind=kind, data=data, suffix=suffix, variant=kind.split("_", 1)[1])
    return write_image_folder(root, rows, recipe.kinds)


def alt_image_mix(root: Path, seed: int) -> pd.DataFrame:
    """Write mnist5k's 4,000 train digits plus :data:`ALT_IMAGE_KINDS` as an ImageFolder under
    ``root``; returns the truth table (path, label, clean_label, kind, expected, set_key,
    variant) in file order."""
    return write_image_mix(root, seed, ALT_RECIPE)


def _confusable_labels(images: np.ndarray, labels: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """(m,) each row's most confusable other digit (:data:`CONFUSABLE`)."""
    return np.array([CONFUSABLE[int(labels[i])] for i in rows], dtype=np.int64)


def _add_outliers(rng: np.random.Generator, add: Callable[..., None]) -> None:
    """The three out-of-distribution sources: shapes and glyphs under random classes, the
    upscaled 8x8 digits under their true digit."""
    for img in shapes(rng, ALT_IMAGE_KINDS["ood_shape"][0]):
        add(_png(img), ".png", int(rng.integers(10)), -1, "ood_shape", variant="shape")
    for img in script_glyphs(rng, ALT_IMAGE_KINDS["ood_script"][0]):
        add(_png(img), ".png", int(rng.integers(10)), -1, "ood_script", variant="glyph")
    imgs, digits = small_digits(rng, ALT_IMAGE_KINDS["ood_digits8"][0])
    for img, digit in zip(imgs, digits, strict=True):
        add(_png(img), ".png", digit, digit, "ood_digits8", variant="load_digits")


ALT_RECIPE = ImageRecipe(
    kinds=ALT_IMAGE_KINDS,
    seed_offset=SEED_OFFSET,
    flip_labels=_confusable_labels,
    flip_variant="confusable",
    dup_variants=DUP_VARIANTS,
    duplicate_file=duplicate_file,
    add_outliers=_add_outliers,
    corrupt_file=corrupt_file,
)


def write_image_folder(
    root: Path, rows: list[dict], kinds: dict[str, tuple[int, str]]
) -> pd.DataFrame:
    """Write ``rows`` (encoded image bytes, suffix, label) as an ImageFolder under ``root``;
    the truth table: one row a file with its labels, kind, the issue type the kind is expected
    under (``kinds``), duplicate set key and variant."""
    out = []
    for j, r in enumerate(rows):
        folder = root / str(r["label"])
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"s{j:05d}{r['suffix']}"
        path.write_bytes(r["data"])
        out.append(
            dict(
                path=str(path.resolve()),
                label=r["label"],
                clean_label=r["clean"],
                kind=r["kind"],
                expected=kinds.get(r["kind"], (0, ""))[1],
                set_key=r["set_key"],
                variant=r["variant"],
            )
        )
    return pd.DataFrame(out)


# ---- text ---------------------------------------------------------------------------------

_PUNCT = re.compile(r"[^\w\s]")
_SENTENCE = re.compile(r"(?<=[.;:])\s+")


def edit_text(text: str, variant: str, rng: np.random.Generator) -> str:
    """A near copy of ``text``: ``case`` (upper or title case), ``punct`` (punctuation removed,
    or '!!' added when there is none) or ``drop`` (one word of 3+ letters dropped)."""
    if variant == "case":
        return text.upper() if rng.random() < 0.5 else text.title()
    if variant == "punct":
        stripped = _PUNCT.sub("", text)
        return stripped if stripped != text else text + " !!"
    words = text.split()
    long = [i for i, w in enumerate(words) if sum(c.isalpha() for c in w) >= 3]
    if len(words) < 3 or not long:
        return text + " ."
    drop = long[int(rng.integers(len(long)))]
    return " ".join(w for i, w in enumerate(words) if i != drop)


def _clean_sentence(s: str) -> str:
    return " ".join(s.split())


def _usable(s: str, lo: int = 7, hi: int = 30) -> bool:
    return lo <= len(s.split()) <= hi and s.isascii() and sum(c.isalpha() for c in s) > len(s) / 2


def license_sentences() -> list[str]:
    """Sentences of 7-30 words from the licence texts in /usr/share/common-licenses."""
    found = set()
    for path in sorted(Path("/usr/share/common-licenses").glob("*")):
        if path.is_file():
            text = path.read_text(encoding="utf-8", errors="replace")
            for para in text.split("\n\n"):
                for s in _SENTENCE.split(_clean_sentence(para)):
                    if _usable(s):
                        found.add(s)
    return sorted(found)


def package_descriptions(status: Path = Path("/var/lib/dpkg/status")) -> list[str]:
    """First sentences (7-30 words) of the long descriptions of the installed Debian
    packages."""
    found = set()
    for block in status.read_text(encoding="utf-8", errors="replace").split("\n\n"):
        lines = block.split("\n")
        at = next((i for i, line in enumerate(lines) if line.startswith("Description:")), None)
        if at is None:
            continue
        body = []
        for line in lines[at + 1 :]:
            if not line.startswith(" ") or line.strip() == ".":
                break
            body.append(line.strip())
        first = _SENTENCE.split(_clean_sentence(" ".join(body)))[0]
        if _usable(first):
            found.add(first)
    return sorted(found)


def code_lines() -> list[str]:
    """Lines of Python code (5+ tokens, no comments or docstrings) from a few standard
    library modules' source."""
    import argparse
    import csv as csv_module
    import inspect
    import json.decoder
    import textwrap

    found = set()
    for module in (argparse, csv_module, json.decoder, textwrap):
        for line in inspect.getsource(module).splitlines():
            s = line.strip()
            if len(s.split()) >= 5 and s.isascii() and not s.startswith(("#", '"', "'")):
                if any(c in s for c in "=()[]:") and len(s) <= 120:
                    found.add(s)
    return sorted(found)


def _draw(rng: np.random.Generator, pool: list[str], n: int) -> list[str]:
    return [pool[int(i)] for i in rng.choice(len(pool), size=n, replace=False)]


MARKUP = ["<div>", "</div>", "<br/>", "<p>", "</p>", "&nbsp;", "<span class=\"x\">", "</span>",
          "[b]", "[/b]", "[url=]", "[/url]", "<!-- -->", "{{ }}", "<td></td>", "&amp;"]  # fmt: skip


def corrupt_text(kind: str, rng: np.random.Generator, texts: list[str]) -> str:
    """One corrupt snippet of ``kind`` (a ``corrupt_*`` key of :data:`ALT_TEXT_KINDS`)."""
    if kind == "corrupt_repeat":
        words = [w for w in texts[int(rng.integers(len(texts)))].split() if w.isalpha()]
        word = words[int(rng.integers(len(words)))] if words else "good"
        return " ".join([word] * int(rng.integers(6, 21)))
    if kind == "corrupt_markup":
        return " ".join(MARKUP[int(i)] for i in rng.integers(0, len(MARKUP), rng.integers(3, 9)))
    if kind == "corrupt_digits":
        groups = rng.integers(1, 7, int(rng.integers(2, 7)))
        return " ".join("".join(str(d) for d in rng.integers(0, 10, int(g))) for g in groups)
    if kind == "corrupt_bytes":
        raw = bytes(int(b) for b in rng.integers(0xA1, 0x100, int(rng.integers(15, 50))))
        return raw.decode("latin-1")
    letters = "abcdefghijklmnopqrstuvwxyz"
    return "".join(letters[int(i)] for i in rng.integers(0, 26, int(rng.integers(1, 4))))


def flipped_text_rows(
    texts: list[str], labels: list[str], n_flip: int, rng: np.random.Generator
) -> tuple[list[dict], np.ndarray]:
    """(one truth row a review, clean; the first ``n_flip`` of a random order filed under the
    other class) and that order (n,), which the mix draws its other kinds' sources from."""
    names = sorted(set(labels))
    other = {a: b for a, b in zip(names, names[::-1], strict=True)}
    pool = rng.permutation(len(texts))
    rows = [
        dict(text=t, label=lab, kind="clean", set_key=-1, variant="")
        for t, lab in zip(texts, labels, strict=True)
    ]
    for i in pool[:n_flip]:
        rows[i].update(label=other[rows[i]["label"]], kind="flipped", variant="other class")
    return rows, pool


def alt_text_mix(path: Path, texts: list[str], labels: list[str], seed: int) -> pd.DataFrame:
    """Write a CSV (text,label) of the given reviews plus :data:`ALT_TEXT_KINDS`; returns the
    truth table (row order) with text, label, kind, expected, set_key, variant."""
    rng = np.random.default_rng(seed + SEED_OFFSET)
    names = sorted(set(labels))
    other = {a: b for a, b in zip(names, names[::-1], strict=True)}
    nf = ALT_TEXT_KINDS["flipped"][0]
    rows, pool = flipped_text_rows(texts, labels, nf, rng)
    variants = ("case", "punct", "drop")
    for j, i in enumerate(pool[nf : nf + ALT_TEXT_KINDS["dup_edit"][0]]):
        variant = variants[j % len(variants)]
        rows[i].update(kind="dup_edit_source", set_key=int(i))
        text = edit_text(rows[i]["text"], variant, rng)
        label = other[rows[i]["label"]]
        rows.append(dict(text=text, label=label, kind="dup_edit", set_key=int(i), variant=variant))
    for kind, (n, issue) in ALT_TEXT_KINDS.items():
        if issue == "corrupt":
            for _ in range(n):
                text = corrupt_text(kind, rng, texts)
                rows.append(dict(text=text, label=str(rng.choice(names)), kind=kind, set_key=-1))
                rows[-1]["variant"] = kind.split("_", 1)[1]
    sources = {"ood_license": license_sentences, "ood_package": package_descriptions}
    sources["ood_code"] = code_lines
    for kind, source in sources.items():
        for text in _draw(rng, source(), ALT_TEXT_KINDS[kind][0]):
            rows.append(dict(text=text, label=str(rng.choice(names)), kind=kind, set_key=-1))
            rows[-1]["variant"] = kind.split("_", 1)[1]
    table = write_text_csv(path, [rows[i] for i in rng.permutation(len(rows))], ALT_TEXT_KINDS)
    return table[["text", "label", "kind", "expected", "set_key", "variant"]]
