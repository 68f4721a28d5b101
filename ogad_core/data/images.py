"""Image files as lazy references: a header scan (size, mode, pixel limit), decoding one file at
a time, and the dashboard's thumbnails. Torch-free (PIL + numpy).

User images (``imagefolder:`` / ``csv:``) are never decoded all at once: the loaders return an
:class:`ImageFiles` (paths + file stats), and the engine's datasets decode a batch at a time.

Fingerprint: a file counts as unchanged while its absolute path, byte size and modification time
(ns) are. Hashing the content would read every byte of a photo collection once more on each
``ogad compute`` (50,000 photos are many GB) only to confirm what ``stat`` already says; an edit
that keeps size and mtime (``touch -r`` after rewriting) is the one change it misses.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ogad_core._internal import worker_count, write_with_atomic
from ogad_core.errors import ConfigError, DataError
from ogad_core.options import DEFAULT_MAX_PIXELS  # defined once, with the option

GRAY_MODES = ("1", "L", "I", "I;16", "F")
THUMB_PX = 160


def check_max_pixels(max_pixels: int) -> int:
    if max_pixels < 1:
        raise ConfigError(f"max_pixels must be >= 1, got {max_pixels}")
    return int(max_pixels)


def _too_big(path: str, where: str, w: int, h: int, max_pixels: int) -> DataError:
    return DataError(
        f"{where}: image {path} is {w}x{h} = {w * h:,} pixels, more than `max_pixels` "
        f"{max_pixels:,}; raise `max_pixels` to read it"
    )


def _image_module(max_pixels: int):
    """PIL.Image with its own bomb check at ``max_pixels`` (ours runs first, naming the flag)."""
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = max(max_pixels, 1)
    warnings.simplefilter("ignore", Image.DecompressionBombWarning)
    return Image


class UndecodableImage(DataError):
    """A file that exists but cannot be decoded as an image (truncated, not an image)."""


def _header(path: str, where: str, max_pixels: int) -> tuple[int, int, int, bool]:
    """(byte size, mtime ns, pixels, grayscale) of one image file; DataError when missing or
    too large. A file that is not an image passes with 0 pixels (grayscale): it is decoded as
    a blank image, left out of training and flagged ``corrupt`` (see :meth:`ImageFiles.decode`)."""
    from PIL import UnidentifiedImageError

    image = _image_module(max_pixels)
    try:
        st = Path(path).stat()
        with image.open(path) as img:
            w, h = img.size
            gray = img.mode in GRAY_MODES or img.mode.startswith("I;16")
    except FileNotFoundError:
        raise DataError(f"{where}: image file not found: {path}") from None
    except image.DecompressionBombError:
        raise DataError(
            f"{where}: image {path} is larger than `max_pixels` {max_pixels:,}; "
            "raise `max_pixels` to read it"
        ) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        return int(st.st_size), int(st.st_mtime_ns), 0, True
    if w * h > max_pixels:
        raise _too_big(path, where, w, h, max_pixels)
    if w == 0 or h == 0:
        raise DataError(f"{where}: image {path} is empty ({w}x{h})")
    return int(st.st_size), int(st.st_mtime_ns), w * h, gray


@dataclass(frozen=True, eq=False)
class ImageFiles:
    """N image files, decoded on demand to (C, S, S) float32 in [0, 1].

    Attributes:
        paths: N absolute file paths.
        image_size: S, the side every image is resized to (built-in models).
        channels: 1 when every file is grayscale, else 3 (RGB).
        stats: (N, 2) int64 byte size and mtime (ns) at scan time (the fingerprint).
        max_pixels: the largest width x height decoded.
    """

    paths: tuple[str, ...]
    image_size: int
    channels: int
    stats: np.ndarray
    max_pixels: int = DEFAULT_MAX_PIXELS

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def sample_shape(self) -> tuple[int, int, int]:
        """One decoded sample's shape (C, S, S)."""
        return (self.channels, self.image_size, self.image_size)

    @property
    def shape(self) -> tuple[int, int, int, int]:
        """(N, C, S, S), as the decoded array would have (nothing is decoded)."""
        return (len(self), *self.sample_shape)

    def __getitem__(self, idx: slice | np.ndarray | Sequence[int]) -> ImageFiles:
        """Rows ``idx`` (a slice or int array) as another ImageFiles (nothing decoded)."""
        if isinstance(idx, slice):
            idx = np.arange(len(self))[idx]
        return self.subset(np.asarray(idx))

    def subset(self, idx: np.ndarray) -> ImageFiles:
        """Files ``idx`` (int array), same settings."""
        idx = np.asarray(idx, dtype=np.int64)
        return ImageFiles(
            paths=tuple(self.paths[i] for i in idx),
            image_size=self.image_size,
            channels=self.channels,
            stats=self.stats[idx],
            max_pixels=self.max_pixels,
        )

    def hash_into(self, h: Any) -> None:
        """Feed paths, sizes, mtimes, the decoded shape into a hashlib object (see module doc)."""
        h.update(f"images:{self.channels}x{self.image_size}\x1f".encode())
        h.update("\x1e".join(self.paths).encode("utf-8", "surrogatepass"))
        h.update(np.ascontiguousarray(self.stats, dtype=np.int64).tobytes())

    def open(self, i: int, *, draft: int | None = None):
        """Sample ``i`` as a loaded PIL image (RGB or L); see :func:`open_image`. A file that
        cannot be decoded gives a black S x S image (its sample is left out of training)."""
        try:
            return open_image(self.paths[i], self.channels, self.max_pixels, draft=draft)
        except UndecodableImage:
            from PIL import Image

            mode = "L" if self.channels == 1 else "RGB"
            return Image.new(mode, (self.image_size, self.image_size))

    def decode(self, i: int) -> np.ndarray:
        """Sample ``i``: (C, S, S) float32 in [0, 1]; zeros for a file that cannot be decoded
        (the data step flags it ``corrupt`` and the model step trains without it)."""
        try:
            return decode_image(self.paths[i], self.image_size, self.channels, self.max_pixels)
        except UndecodableImage:
            return np.zeros(self.sample_shape, dtype=np.float32)

    def __iter__(self) -> Iterator[str]:
        """The file paths, in sample order."""
        return iter(self.paths)

    def decode_rows(self, rows: Sequence[int] | np.ndarray) -> np.ndarray:
        """Samples ``rows``: (B, C, S, S) float32, decoded one file at a time."""
        out = np.empty((len(rows), *self.sample_shape), dtype=np.float32)
        for k, i in enumerate(rows):
            out[k] = self.decode(int(i))
        return out


def scan_images(
    paths: Sequence[Path | str],
    image_size: int,
    where: str,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> ImageFiles:
    """Read every file's header (never its pixels): stats, mode, the pixel limit.

    Grayscale (C = 1) when every file is, else RGB. Raises DataError naming the first bad file.
    """
    if image_size < 4:
        raise ConfigError(f"`image_size` must be >= 4, got {image_size}")
    max_pixels = check_max_pixels(max_pixels)
    names = [str(p) for p in paths]
    bad = next((n for n in names if "\x00" in n), None)
    if bad is not None:
        raise DataError(f"{where}: an image path holds a NUL byte: {bad!r}; fix the path")
    check_regular_files(names, where)
    with ThreadPoolExecutor(worker_count()) as pool:
        heads = list(pool.map(lambda p: _header(p, where, max_pixels), names))
    stats = np.array([(s, m) for s, m, _, _ in heads], dtype=np.int64).reshape(-1, 2)
    gray = all(g for *_, g in heads)
    return ImageFiles(
        paths=tuple(names),
        image_size=image_size,
        channels=1 if gray else 3,
        stats=stats,
        max_pixels=max_pixels,
    )


def check_regular_files(paths: Sequence[str], where: str) -> None:
    """Refuse, in one line naming them, paths that are not regular files (a FIFO, socket or
    device named ``*.png`` would hang or stream forever when opened). ``os.stat`` only: nothing
    is opened. Missing files are left to the header scan."""
    import os
    import stat

    odd: list[str] = []
    for path in paths:
        try:
            mode = os.stat(path).st_mode
        except (OSError, ValueError):  # missing, a loop, a NUL byte: reported by the scan
            continue
        if not stat.S_ISREG(mode):
            odd.append(f"{path} ({_file_kind(mode)})")
    if odd:
        more = f" and {len(odd) - 3} more" if len(odd) > 3 else ""
        raise DataError(
            f"{where}: {len(odd)} image path(s) are not regular files: "
            f"{', '.join(odd[:3])}{more}; remove them or replace them with image files"
        )


def _file_kind(mode: int) -> str:
    import stat

    for test, name in (
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def _scaled_to_8_bits(img: Any, source_format: str | None) -> Any:
    """16-bit and float images scaled (not clipped, as PIL's ``convert`` would) to mode L:
    16-bit by 65535 (255 for a non-PNG ``I`` image whose values fit 8 bits), float in 0..1 by 1,
    in 0..255 as it is, any other range min-max. NaN / inf become 0."""
    mode = img.mode
    if mode not in ("I", "F") and not mode.startswith("I;16"):
        return img
    from PIL import Image

    arr = np.nan_to_num(np.asarray(img, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    lo, hi = (float(arr.min()), float(arr.max())) if arr.size else (0.0, 0.0)
    if mode == "F" and lo >= 0 and hi <= 1.0:
        scale, offset = 255.0, 0.0
    elif mode == "F" and lo >= 0 and hi <= 255.0:
        scale, offset = 1.0, 0.0
    elif mode == "F" or lo < 0 or hi > 65535:
        scale, offset = 255.0 / (hi - lo or 1.0), lo
    elif mode == "I" and source_format != "PNG" and hi <= 255:
        scale, offset = 1.0, 0.0
    else:
        scale, offset = 255.0 / 65535.0, 0.0
    out = np.clip(np.rint((arr - offset) * scale), 0, 255).astype(np.uint8)
    return Image.fromarray(out, mode="L")


def open_image(path: str, channels: int, max_pixels: int, *, draft: int | None = None):
    """One image file as a loaded PIL image in mode L (channels 1) or RGB.

    ``draft``: a JPEG is decoded at the smallest DCT scale still >= this many pixels a side,
    so a multi-megapixel photo never occupies full-size memory when a small one is wanted.
    """
    from PIL import ImageOps, UnidentifiedImageError

    image = _image_module(max_pixels)
    mode = "L" if channels == 1 else "RGB"
    try:
        with image.open(path) as img:
            w, h = img.size
            if w * h > max_pixels:
                raise _too_big(path, "image", w, h, max_pixels)
            if draft is not None and img.format == "JPEG":
                img.draft(mode, (draft, draft))
            img.load()
            source_format = img.format
            shown = ImageOps.exif_transpose(img)  # as a viewer shows it (EXIF orientation)
            shown = _scaled_to_8_bits(shown, source_format)
            out = shown.convert(mode) if shown.mode != mode else shown.copy()
            out.info["original_size"] = (w, h)  # the file's size (the issue types read it)
            out.info["quantization"] = getattr(img, "quantization", None)  # a JPEG's tables
            return out
    except DataError:
        raise
    except FileNotFoundError:
        raise DataError(f"image file not found: {path}") from None
    except image.DecompressionBombError:
        raise DataError(
            f"image {path} is larger than `max_pixels` {max_pixels:,}; "
            "raise `max_pixels` to read it"
        ) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise UndecodableImage(f"cannot read image {path}: {err}") from None


def decode_image(path: str, image_size: int, channels: int, max_pixels: int) -> np.ndarray:
    """One file -> (C, S, S) float32 in [0, 1] (bilinear resize to S x S)."""
    from PIL import Image

    img = open_image(path, channels, max_pixels, draft=image_size)
    small = img.resize((image_size, image_size), Image.Resampling.BILINEAR, reducing_gap=3.0)
    arr = np.asarray(small, dtype=np.float32) / 255.0
    return arr[None] if channels == 1 else arr.transpose(2, 0, 1)


# ---- thumbnails for the dashboard -----------------------------------------------------------


def write_thumbnail(
    path: str,
    target: Path,
    *,
    size: int = THUMB_PX,
    max_pixels: int,
    inspect: Callable[[Any], Any] | None = None,
) -> Any:
    """A JPEG of ``path`` at most ``size`` px a side (kept when ``target`` exists).

    ``inspect``: called with the decoded PIL image (``info["original_size"]`` holds the file's
    (width, height)) in the same decode pass; its result is returned (else None). A file that
    cannot be decoded gives ``inspect(error)`` (the DataError saying why) when inspecting,
    else raises it."""
    if target.is_file() and inspect is None:
        return None
    from PIL import Image

    try:
        img = open_image(path, 3, max_pixels, draft=size)
    except DataError as err:
        if inspect is None:
            raise
        return inspect(err)
    result = inspect(img) if inspect is not None else None
    if not target.is_file():
        img.thumbnail((size, size), Image.Resampling.LANCZOS, reducing_gap=3.0)
        write_with_atomic(target, lambda tmp: img.save(tmp, format="JPEG", quality=90))
    return result


def write_thumbnails(
    files: ImageFiles,
    target_for: Callable[[str], Path],
    *,
    size: int = THUMB_PX,
    workers: int | None = None,
) -> int:
    """A thumbnail of every file at ``target_for(path)`` (``RunDir.thumbnail_path``), once.

    Threads (PIL releases the GIL while decoding); at most ``workers`` images open at a time.
    Returns the number written now.
    """
    return _thumbnail_pass(files, target_for, size, workers, None)[0]


def write_thumbnails_inspecting(
    files: ImageFiles,
    target_for: Callable[[str], Path],
    inspect: Callable[[Any], Any],
    *,
    size: int = THUMB_PX,
    workers: int | None = None,
) -> tuple[int, list[Any]]:
    """:func:`write_thumbnails`, decoding every file once and collecting ``inspect(image)``
    (see :func:`write_thumbnail`) in file order. Returns (thumbnails written now, results)."""
    return _thumbnail_pass(files, target_for, size, workers, inspect)


def _thumbnail_pass(
    files: ImageFiles,
    target_for: Callable[[str], Path],
    size: int,
    workers: int | None,
    inspect: Callable[[Any], Any] | None,
) -> tuple[int, list[Any]]:
    todo = [(p, Path(target_for(p))) for p in files.paths]
    for folder in {t.parent for _, t in todo}:
        folder.mkdir(parents=True, exist_ok=True)
    missing = sum(not t.is_file() for _, t in todo)
    if inspect is None:
        todo = [(p, t) for p, t in todo if not t.is_file()]
    if not todo:
        return 0, []
    n_threads = workers if workers is not None else worker_count()
    with ThreadPoolExecutor(max(1, n_threads)) as pool:
        results = list(
            pool.map(
                lambda pt: write_thumbnail(
                    pt[0], pt[1], size=size, max_pixels=files.max_pixels, inspect=inspect
                ),
                todo,
            )
        )
    return missing, results
