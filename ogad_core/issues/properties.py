"""Per-sample input properties for the ``corrupt`` and ``duplicate`` issue types. Torch-free.

Images: computed from the pixels of the decode pass that makes the dashboard's thumbnails (user
files) or from the sample set's arrays, never from a second read of the files::

    content_hash  16 hex chars of the decoded pixels (exact duplicates)
    width, height the original size in pixels
    mean, std     brightness and contrast of the grayscale image in [0, 1]
    sharpness     std of the Laplacian / std of the image (low: blurry, high: noisy)
    periodic      largest share of the image's power at one pure row or column frequency of
                  period 2 to 4 px (scan lines, interlacing, stripes over the content)
    flat_patch    share of the image in the largest square of flat pixels (3 x 3 neighbourhoods
                  constant) of a value other than the image's commonest (missing or occluded
                  content)
    blockiness    log ratio of the jumps across the 8 x 8 grid's lines to those across the
                  other lines, each jump above its neighbours' (JPEG blocking; NaN below
                  4 blocks a side or when the decoder scaled the grid)
    jpeg_quality  the JPEG quality its quantisation tables were made with (libjpeg's scale;
                  NaN for other formats)
    decoded       False when the file could not be decoded
    error         why it could not be ("" when decoded)

and a (256,) float32 *signature*: the grayscale image at 16 x 16, the pixel space of near
duplicates and pixel outliers. Texts: ``content_hash`` (lower-cased, whitespace collapsed),
``n_chars``, ``n_words``, ``letters`` (share of letters among the non-space characters).
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import numpy as np
import pandas as pd
from scipy import ndimage

SIGNATURE_PX = 16
SIGNATURE_DIM = SIGNATURE_PX * SIGNATURE_PX
IMAGE_COLUMNS = (
    "content_hash",
    "width",
    "height",
    "mean",
    "std",
    "sharpness",
    "periodic",
    "flat_patch",
    "blockiness",
    "jpeg_quality",
    "decoded",
    "error",
)
#: a pixel of a flat patch: its 3 x 3 neighbourhood spans at most this (two 8-bit levels)
FLAT_TOL = 2.0 / 255.0
#: the longest period (px) of a pixel-scale pattern (a striped texture's coarser one is content)
SCAN_PERIOD = 4
#: the JPEG block side, and the fewest blocks a side that say anything about a grid
JPEG_BLOCK, MIN_BLOCKS = 8, 4
TEXT_COLUMNS = ("content_hash", "n_chars", "n_words", "letters")
#: bumped when a property's definition changes: a run's inputs.parquet is then recorded again
PROPERTIES_VERSION = 3
_SPACES = re.compile(r"\s+")


def _hash(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=8).hexdigest()


def _laplacian(gray: np.ndarray) -> np.ndarray:
    """(..., H-2, W-2) 4-neighbour Laplacian of (..., H, W) images."""
    centre = gray[..., 1:-1, 1:-1]
    return (
        4 * centre
        - gray[..., :-2, 1:-1]
        - gray[..., 2:, 1:-1]
        - gray[..., 1:-1, :-2]
        - gray[..., 1:-1, 2:]
    )


def _signatures(gray: np.ndarray) -> np.ndarray:
    """(N, 256) float32: (N, H, W) grayscale images resampled to 16 x 16 (area means)."""
    n, h, w = gray.shape
    rows = np.linspace(0, h, SIGNATURE_PX + 1).astype(int)
    cols = np.linspace(0, w, SIGNATURE_PX + 1).astype(int)
    if h >= SIGNATURE_PX and w >= SIGNATURE_PX:
        out = np.add.reduceat(np.add.reduceat(gray, rows[:-1], axis=1), cols[:-1], axis=2)
        out = out / np.outer(np.diff(rows), np.diff(cols))[None]
    else:  # smaller than the signature: nearest pixel
        ri = np.minimum((np.arange(SIGNATURE_PX) * h) // SIGNATURE_PX, h - 1)
        ci = np.minimum((np.arange(SIGNATURE_PX) * w) // SIGNATURE_PX, w - 1)
        out = gray[:, ri][:, :, ci]
    return out.reshape(n, SIGNATURE_DIM).astype(np.float32)


def periodic_share(gray: np.ndarray) -> np.ndarray:
    """(N,) the largest share of each (N, H, W) image's power (its mean removed) at one pure
    row or column frequency of period 2 to :data:`SCAN_PERIOD` px: a pattern at the pixel
    scale (scan lines, interlacing, stripes over the content; a striped texture's coarser
    period is content); NaN below 16 px a side."""
    n, h, w = gray.shape
    if min(h, w) < 16:
        return np.full(n, np.nan)
    centred = gray - gray.mean(axis=(1, 2), keepdims=True)
    total = h * w * (centred**2).sum(axis=(1, 2)) + 1e-12  # the 2-D spectrum's power (Parseval)
    # the 2-D spectrum's column kx = 0 is the spectrum of the row sums (constant along a row)
    low_h, low_w = -(-h // SCAN_PERIOD), -(-w // SCAN_PERIOD)
    rows = np.abs(np.fft.rfft(centred.sum(axis=2), axis=1)[:, low_h : h // 2 + 1]) ** 2
    cols = np.abs(np.fft.rfft(centred.sum(axis=1), axis=1)[:, low_w : w // 2 + 1]) ** 2
    return np.maximum(rows.max(axis=1), cols.max(axis=1)) / total


def _span3(g: np.ndarray) -> np.ndarray:
    """(H-2, W-2) max - min of each full 3 x 3 neighbourhood of (H, W) ``g`` (separable)."""
    hi = np.maximum(np.maximum(g[:, :-2], g[:, 1:-1]), g[:, 2:])
    lo = np.minimum(np.minimum(g[:, :-2], g[:, 1:-1]), g[:, 2:])
    hi = np.maximum(np.maximum(hi[:-2], hi[1:-1]), hi[2:])
    lo = np.minimum(np.minimum(lo[:-2], lo[1:-1]), lo[2:])
    return hi - lo


def flat_patch_share(gray: np.ndarray) -> np.ndarray:
    """(N,) share of each (N, H, W) image in its largest square of flat pixels (a pixel's
    3 x 3 neighbourhood spans at most FLAT_TOL) of a value other than the image's commonest
    (its background): an occluding or missing block; NaN below 3 px a side."""
    n, h, w = gray.shape
    if min(h, w) < 3:
        return np.full(n, np.nan)
    out = np.zeros(n)
    for i, g in enumerate(gray):
        levels = np.rint(g * 255).astype(np.int64).clip(0, 255)
        background = np.bincount(levels.ravel(), minlength=256).argmax() / 255.0
        flat = np.zeros((h, w), dtype=bool)  # a full 3 x 3 neighbourhood only: not the rim
        flat[1:-1, 1:-1] = (_span3(g) <= FLAT_TOL) & (np.abs(g[1:-1, 1:-1] - background) > FLAT_TOL)
        if flat.any():  # chessboard distance to a pixel that is not flat: a square's half side
            reach = ndimage.distance_transform_cdt(flat, metric="chessboard").max()
            out[i] = (2 * int(reach) - 1 + 2) ** 2 / (h * w)  # + the 3 x 3 window's rim
    return out


def blockiness(gray: np.ndarray, block: int = JPEG_BLOCK) -> np.ndarray:
    """(N,) log ratio of the mean excess jump across the ``block``-px grid's lines to that
    across the other lines, both directions (a jump's excess: how far it exceeds both
    neighbouring jumps; a JPEG's flattened blocks meet in steps on the grid). NaN below
    MIN_BLOCKS blocks a side."""
    n, h, w = gray.shape
    if min(h, w) < block * MIN_BLOCKS:
        return np.full(n, np.nan)
    on, off = np.zeros(n), np.zeros(n)
    for arr in (gray, gray.transpose(0, 2, 1)):
        jump = np.abs(np.diff(arr, axis=2))  # (N, rows, cols - 1): across line c | c + 1
        excess = np.maximum(0, jump[..., 1:-1] - np.maximum(jump[..., :-2], jump[..., 2:]))
        grid = (np.arange(1, jump.shape[2] - 1) % block) == block - 1
        on += excess[..., grid].mean(axis=(1, 2))
        off += excess[..., ~grid].mean(axis=(1, 2))
    return np.log((on + 1e-3) / (off + 1e-3))


def array_properties(x: np.ndarray) -> tuple[pd.DataFrame, np.ndarray]:
    """Properties and signatures of (N, C, H, W) float images in [0, 1] (the sample sets).

    Returns (N rows of :data:`IMAGE_COLUMNS`, (N, 256) float32 signatures)."""
    x = np.asarray(x, dtype=np.float32)
    gray = x.mean(axis=1) if x.ndim == 4 else x
    std = gray.std(axis=(1, 2))
    lap = _laplacian(gray).std(axis=(1, 2)) if min(gray.shape[1:]) > 2 else np.zeros(len(gray))
    table = pd.DataFrame(
        {
            "content_hash": [_hash(np.ascontiguousarray(row).tobytes()) for row in x],
            "width": np.full(len(x), gray.shape[2], dtype=np.int64),
            "height": np.full(len(x), gray.shape[1], dtype=np.int64),
            "mean": gray.mean(axis=(1, 2)).astype(np.float64),
            "std": std.astype(np.float64),
            "sharpness": (lap / np.maximum(std, 1e-6)).astype(np.float64),
            "periodic": periodic_share(gray),
            "flat_patch": flat_patch_share(gray),
            "blockiness": blockiness(gray),
            "jpeg_quality": np.full(len(x), np.nan),
            "decoded": np.ones(len(x), dtype=bool),
            "error": [""] * len(x),
        }
    )
    return table, _signatures(gray)


def image_properties(img: Any, original_size: tuple[int, int]) -> tuple[dict[str, Any], np.ndarray]:
    """Properties (one row as a dict) and the (256,) signature of one decoded PIL image.

    ``img`` is the image as decoded (at most thumbnail-sized is enough; ``original_size`` is
    the file's (width, height))."""
    gray = np.asarray(img.convert("L"), dtype=np.float32) / 255.0
    row, sig = array_properties(gray[None, None])
    out: dict[str, Any] = {str(k): v for k, v in row.iloc[0].to_dict().items()}
    out["content_hash"] = _hash(img.tobytes())
    out["width"], out["height"] = int(original_size[0]), int(original_size[1])
    if tuple(img.size) != tuple(original_size):  # the decoder scaled the grid (JPEG draft)
        out["blockiness"] = np.nan
    out["jpeg_quality"] = jpeg_quality(img.info.get("quantization"))
    return out, sig[0]


#: libjpeg's luminance table at quality 50 (ITU T.81 Annex K), row by row as PIL gives it
_LUMA_50 = np.array(
    [16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
     14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
     18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
     49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99],
    dtype=np.float64,
)  # fmt: skip


def jpeg_quality(tables: Any) -> float:
    """The libjpeg quality (1-100) whose scaling of the standard luminance table is nearest
    the file's first quantisation table (PIL's ``quantization``: a dict of 64 values row by
    row); NaN without tables."""
    if not tables:
        return float("nan")
    table = np.asarray(tables[min(tables)], dtype=np.float64).ravel()
    if table.size != 64:
        return float("nan")
    q = np.arange(1, 101)
    scale = np.where(q < 50, 5000 / q, 200 - 2 * q)[:, None]
    made = np.clip(np.floor((_LUMA_50[None] * scale + 50) / 100), 1, 255)
    return float(q[np.abs(np.log(made) - np.log(table)[None]).sum(axis=1).argmin()])


def undecodable_properties(error: str = "") -> tuple[dict[str, Any], np.ndarray]:
    """The row of a file that could not be decoded (``decoded`` False, NaN properties,
    ``error`` the reason)."""
    row: dict[str, Any] = dict.fromkeys(IMAGE_COLUMNS, np.nan)
    row.update(content_hash="", width=0, height=0, decoded=False, error=error)
    return row, np.full(SIGNATURE_DIM, np.nan, dtype=np.float32)


def normalise_text(text: str) -> str:
    """Lower case, whitespace collapsed, stripped: exact text duplicates compare equal."""
    return _SPACES.sub(" ", str(text)).strip().lower()


def text_properties(texts: list[str]) -> pd.DataFrame:
    """N rows of :data:`TEXT_COLUMNS` for N texts."""
    norm = [normalise_text(t) for t in texts]
    letters = [sum(c.isalpha() for c in t) / max(1, sum(not c.isspace() for c in t)) for t in norm]
    return pd.DataFrame(
        {
            "content_hash": [_hash(t.encode("utf-8", "surrogatepass")) for t in norm],
            "n_chars": np.array([len(t) for t in norm], dtype=np.int64),
            "n_words": np.array([len(t.split()) for t in norm], dtype=np.int64),
            "letters": np.array(letters, dtype=np.float64),
        }
    )
