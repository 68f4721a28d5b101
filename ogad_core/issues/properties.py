"""Per-sample input properties for the ``corrupt`` and ``duplicate`` issue types. Torch-free.

Images: computed from the pixels of the decode pass that makes the dashboard's thumbnails (user
files) or from the sample set's arrays, never from a second read of the files::

    content_hash  16 hex chars of the decoded pixels (exact duplicates)
    width, height the original size in pixels
    mean, std     brightness and contrast of the grayscale image in [0, 1]
    sharpness     std of the Laplacian / std of the image (low: blurry, high: noisy)
    decoded       False when the file could not be decoded
    error         why it could not be ("" when decoded)

and a (256,) float32 *signature*: the grayscale image at 16 x 16, the pixel space of near
duplicates and pixel outliers; and a (32, 32) uint8 *registration image* (the grayscale image
resized, bilinear): a candidate pair of near duplicates is verified by aligning the two
(ogad_core.issues.registration), which needs more pixels than the signature holds.
Texts: ``content_hash`` (lower-cased, whitespace collapsed), ``n_chars``, ``n_words``,
``letters`` (share of letters among the non-space characters).
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import numpy as np
import pandas as pd

SIGNATURE_PX = 16
SIGNATURE_DIM = SIGNATURE_PX * SIGNATURE_PX
REGISTRATION_PX = 32
IMAGE_COLUMNS = (
    "content_hash",
    "width",
    "height",
    "mean",
    "std",
    "sharpness",
    "decoded",
    "error",
)
TEXT_COLUMNS = ("content_hash", "n_chars", "n_words", "letters")
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
    return out, sig[0]


def undecodable_properties(error: str = "") -> tuple[dict[str, Any], np.ndarray]:
    """The row of a file that could not be decoded (``decoded`` False, NaN properties,
    ``error`` the reason)."""
    row: dict[str, Any] = dict.fromkeys(IMAGE_COLUMNS, np.nan)
    row.update(content_hash="", width=0, height=0, decoded=False, error=error)
    return row, np.full(SIGNATURE_DIM, np.nan, dtype=np.float32)


def registration_image(img: Any) -> np.ndarray:
    """(32, 32) uint8: a decoded PIL image, or an (H, W) grayscale array in [0, 1], in
    grayscale resized to REGISTRATION_PX a side (bilinear, antialiased when shrinking); zeros
    for None (a file that could not be decoded)."""
    from PIL import Image

    size = (REGISTRATION_PX, REGISTRATION_PX)
    if img is None:
        return np.zeros(size, dtype=np.uint8)
    if isinstance(img, np.ndarray):
        img = Image.fromarray(np.clip(np.rint(img * 255), 0, 255).astype(np.uint8))
    return np.asarray(img.convert("L").resize(size, Image.Resampling.BILINEAR), dtype=np.uint8)


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
