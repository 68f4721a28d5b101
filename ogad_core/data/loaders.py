"""Data loaders: every spec becomes the same :class:`LoadedData`.

Specs (see ../shared/CONTRACT.md): ``mnist5k``, ``digits``, ``moons``, ``rotten-tomatoes``,
``imagefolder:PATH``, ``csv:PATH``. Sample sets come with a held-out test split (for retrain
evaluation); the user's own data is all "train" (the set being cleaned).

Torch-free, at import and at run time (:func:`class_folders` lists an ImageFolder). User
images are not decoded here: they become an :class:`~ogad_core.data.images.ImageFiles` (paths
+ file stats, read from the headers) that the engine decodes a batch at a time.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import numpy as np

from ogad_core._internal import write_with_atomic
from ogad_core.data.images import DEFAULT_MAX_PIXELS, ImageFiles, scan_images
from ogad_core.errors import ConfigError, DataError

Kind = Literal["image", "text", "tabular"]
SAMPLE_SETS = ("mnist5k", "digits", "moons", "rotten-tomatoes")
#: label strings read as "no label" (pandas' default missing-value markers, lower-cased)
MISSING_LABELS = frozenset(
    {"", "nan", "-nan", "na", "n/a", "<na>", "#n/a", "#n/a n/a", "#na", "null", "none"}
)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


@dataclass(frozen=True)
class SampleSet:
    """One split of a data set.

    Attributes:
        inputs: image (N, C, H, W) float32 in [0, 1]; tabular (N, F) float32; text: list of N str.
        labels: (N,) int64 given labels (after any injected noise).
        refs: N displayable references: an image path (relative to the run dir, or absolute)
            or the text itself or a short rendering of the features.
    """

    inputs: np.ndarray | list[str] | ImageFiles
    labels: np.ndarray
    refs: list[str]

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def subset(self, idx: np.ndarray) -> SampleSet:
        """Rows ``idx`` (int array) of this split."""
        inputs: np.ndarray | list[str] | ImageFiles
        if isinstance(self.inputs, list):
            inputs = [self.inputs[i] for i in idx]
        elif isinstance(self.inputs, ImageFiles):
            inputs = self.inputs.subset(idx)
        else:
            inputs = self.inputs[idx]
        return SampleSet(inputs=inputs, labels=self.labels[idx], refs=[self.refs[i] for i in idx])


@dataclass(frozen=True)
class LoadedData:
    """A loaded data spec: the split to clean (``train``), an optional ``test`` split, metadata.

    ``is_flipped`` / ``clean_labels`` are set when noise was injected (train split only).
    """

    spec: str
    kind: Kind
    label_names: list[str]
    train: SampleSet
    test: SampleSet | None = None
    data_roots: list[str] = field(default_factory=list)
    is_flipped: np.ndarray | None = None
    clean_labels: np.ndarray | None = None
    noise: dict | None = None

    @property
    def n_classes(self) -> int:
        return len(self.label_names)

    def fingerprint(self) -> str:
        """sha256 of the train inputs, given labels, refs and label names (hex, 16 chars)."""
        h = hashlib.sha256()
        h.update(self.kind.encode())
        h.update("\x1f".join(self.label_names).encode())
        _hash_split(h, self.train)
        if self.test is not None:
            _hash_split(h, self.test)
        return h.hexdigest()[:16]


def _hash_split(h: hashlib._Hash, split: SampleSet) -> None:
    if isinstance(split.inputs, list):
        for text in split.inputs:
            h.update(text.encode("utf-8", "surrogatepass"))
            h.update(b"\x1e")
    elif isinstance(split.inputs, ImageFiles):
        split.inputs.hash_into(h)
    else:
        h.update(np.ascontiguousarray(split.inputs).tobytes())
    h.update(np.ascontiguousarray(split.labels.astype(np.int64)).tobytes())
    h.update("\x1e".join(split.refs).encode("utf-8", "surrogatepass"))


# ---- helpers --------------------------------------------------------------------------------


def _stratified_split(labels: np.ndarray, n_test: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded stratified train/test index split (sorted indices)."""
    from sklearn.model_selection import train_test_split

    idx = np.arange(labels.shape[0])
    train_idx, test_idx = train_test_split(
        idx, test_size=n_test, random_state=seed, stratify=labels
    )
    return np.sort(train_idx), np.sort(test_idx)


def _check_finite(x: np.ndarray, what: str) -> None:
    if not np.isfinite(x).all():
        bad = int(np.flatnonzero(~np.isfinite(x.reshape(x.shape[0], -1)).all(axis=1))[0])
        raise DataError(f"{what} contains NaN or infinite values (first at sample {bad})")


def _png_holds(path: Path, pixels: np.ndarray) -> bool:
    """Whether ``path`` is a regular PNG file that decodes to ``pixels`` (H, W) uint8."""
    from PIL import Image

    try:
        if not path.is_file() or path.is_symlink():
            return False
        with Image.open(path) as img:
            return bool(np.array_equal(np.asarray(img), pixels))
    except (OSError, ValueError, SyntaxError):  # damaged, truncated, not an image
        return False


def write_pngs(images: np.ndarray, folder: Path, prefix: str) -> list[str]:
    """Write (N, H, W) uint8 images as PNGs named ``{prefix}_{i:05d}.png``: once, and again
    when a file is missing, damaged or holds other pixels (each is decoded and compared).

    Returns the N file paths.
    """
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, img in enumerate(images):
        path = folder / f"{prefix}_{i:05d}.png"
        if not _png_holds(path, img):
            picture = Image.fromarray(img)

            def save(tmp: Path, picture: Image.Image = picture) -> None:
                picture.save(tmp, format="PNG")

            write_with_atomic(path, save)
        paths.append(path)
    return [str(p) for p in paths]


def _image_sample_set(
    spec: str,
    images: np.ndarray,
    labels: np.ndarray,
    label_names: list[str],
    n_test: int,
    seed: int,
    run_dir: Path,
) -> LoadedData:
    """Split uint8 (N, H, W) images, write PNGs under ``run_dir/data/images``, build LoadedData."""
    train_idx, test_idx = _stratified_split(labels, n_test, seed=0)
    folder = run_dir / "data" / "images"
    out = {}
    for name, idx in (("train", train_idx), ("test", test_idx)):
        imgs = images[idx]
        paths = write_pngs(imgs, folder, f"{spec}_{name}")
        refs = [str(Path(p).relative_to(run_dir)) for p in paths]
        x = (imgs.astype(np.float32) / 255.0)[:, None, :, :]
        out[name] = SampleSet(inputs=x, labels=labels[idx].astype(np.int64), refs=refs)
    return LoadedData(
        spec=spec, kind="image", label_names=label_names, train=out["train"], test=out["test"]
    )


# ---- sample sets ----------------------------------------------------------------------------

#: the mnist5k digits: ``images`` uint8 (5000, 28, 28), ``labels`` uint8 (5000,)
MNIST5K_NPZ = Path(__file__).resolve().parent / "files" / "mnist5k.npz"


def load_mnist5k(run_dir: Path) -> LoadedData:
    """5,000 real MNIST digits shipped with ogad (``files/mnist5k.npz``, origin in
    sample_data/README.md): 4,000 train / 1,000 test (stratified)."""
    with np.load(MNIST5K_NPZ) as npz:
        images, labels = npz["images"], npz["labels"]
    return _image_sample_set(
        "mnist5k",
        images,
        labels.astype(np.int64),
        [str(d) for d in range(10)],
        n_test=1000,
        seed=0,
        run_dir=run_dir,
    )


def load_digits_set(run_dir: Path) -> LoadedData:
    """sklearn's 1,797 8x8 digits: 1,437 train / 360 test (stratified)."""
    from sklearn.datasets import load_digits

    d = load_digits()
    images = np.clip(np.round(d.images * (255.0 / 16.0)), 0, 255).astype(np.uint8)
    return _image_sample_set(
        "digits",
        images,
        d.target.astype(np.int64),
        [str(c) for c in d.target_names],
        n_test=360,
        seed=0,
        run_dir=run_dir,
    )


def load_moons(seed: int = 0) -> LoadedData:
    """sklearn's two half-moons, 250 train / 100 test, as in the paper's synthetic study."""
    from sklearn.datasets import make_moons

    x, y = make_moons(n_samples=350, noise=0.15, random_state=seed)
    x = x.astype(np.float32)
    y = y.astype(np.int64)

    def split(lo: int, hi: int) -> SampleSet:
        xs = x[lo:hi]
        refs = [f"x1={a:.3f}, x2={b:.3f}" for a, b in xs]
        return SampleSet(inputs=xs, labels=y[lo:hi], refs=refs)

    return LoadedData(
        spec="moons",
        kind="tabular",
        label_names=["moon 0", "moon 1"],
        train=split(0, 250),
        test=split(250, 350),
    )


# ---- the user's data ------------------------------------------------------------------------


def _outside_roots(allow_outside: Sequence[str | Path]) -> list[Path]:
    """The ``--allow-outside`` folders, resolved; each must exist."""
    roots = []
    for entry in allow_outside:
        root = Path(entry).expanduser()
        if not root.is_dir():
            raise ConfigError(f"`allow_outside` {entry}: not a folder")
        roots.append(root.resolve())
    return roots


def check_contained(
    refs: Sequence[tuple[str, Path]], root: Path, allow_outside: Sequence[str | Path], where: str
) -> None:
    """Refuse the first file that lies (after following links) outside ``root`` and every
    ``--allow-outside`` folder. ``refs``: (as written by the user, resolved path) pairs."""
    roots = [root.resolve(), *_outside_roots(allow_outside)]
    for written, resolved in refs:
        if not any(resolved.is_relative_to(r) for r in roots):
            raise DataError(
                f"{where}: {written} lies outside {root} (it resolves to {resolved}); "
                "move it under that folder or allow its folder with --allow-outside PATH"
            )


#: the file suffixes torchvision's ImageFolder takes (compared in lower case)
IMAGEFOLDER_SUFFIXES = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


@dataclass(frozen=True)
class ClassFolders:
    """An ImageFolder listing: class names (sorted) and ``(path, class index)`` samples."""

    classes: list[str]
    samples: list[tuple[str, int]]
    other_images: list[str] = field(default_factory=list)  # .gif & co: refused by the loader


def class_folders(root: Path, skip: Sequence[Path] = (), where: str = "") -> ClassFolders:
    """List ``root`` the way torchvision's ``ImageFolder(root, allow_empty=True)`` does, without
    torch: every sub-folder (links followed) is a class, sorted by name; its image files, found
    by suffix at any depth, walk order sorted, are the class's samples. Loops, unreadable
    folders and other image suffixes are refused, run directories skipped (``data.scan``)."""
    from ogad_core._internal import log
    from ogad_core.data.scan import check_listing, list_image_folder

    listing = list_image_folder(root, IMAGEFOLDER_SUFFIXES, skip=skip)
    check_listing(listing, root, where or f"imagefolder:{root}")
    for run in listing.runs_skipped:
        log.info(f"imagefolder: {run} holds an ogad run; not read as data")
    return ClassFolders(listing.classes, listing.samples, listing.other_images)


def _drop_empty_classes(folder: ClassFolders, root: Path) -> tuple[list[str], np.ndarray]:
    """(class names with images, labels (N,) renumbered); warns about the dropped ones."""
    from ogad_core._internal import log

    counts = np.bincount([t for _, t in folder.samples], minlength=len(folder.classes))
    empty = [c for c, n in zip(folder.classes, counts, strict=True) if n == 0]
    if empty:
        log.warning(
            f"imagefolder: {root}: class folder(s) without images dropped: {', '.join(empty)}"
        )
    keep = np.flatnonzero(counts > 0)
    new_index = np.full(len(folder.classes), -1, dtype=np.int64)
    new_index[keep] = np.arange(len(keep))
    labels = new_index[np.array([t for _, t in folder.samples], dtype=np.int64)]
    return [folder.classes[i] for i in keep], labels


def _check_suffixes(other: list[str], root: Path) -> None:
    from ogad_core.data.scan import check_suffixes

    check_suffixes(other, root, f"imagefolder:{root}")


#: sub-folders that make an image folder a train split and a held-out test split
SPLIT_FOLDERS = ("train", ("test", "val"))


def split_folders(root: Path) -> tuple[Path, Path] | None:
    """(train, test) when ``root`` holds ``train/`` and ``test/`` (or ``val/``) folders that
    themselves hold class sub-folders (torchvision's / ImageNet's layout), else None."""
    train = root / SPLIT_FOLDERS[0]
    tests = [root / name for name in SPLIT_FOLDERS[1] if (root / name).is_dir()]
    if not train.is_dir() or len(tests) != 1:
        return None
    if not all(any(p.is_dir() for p in d.iterdir()) for d in (train, tests[0])):
        return None
    return train, tests[0]


def load_imagefolder(
    path: Path,
    image_size: int,
    allow_outside: Sequence[str | Path] = (),
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    skip: Sequence[Path] = (),
) -> LoadedData:
    """One sub-folder per class, as torchvision's ImageFolder (classes sorted by folder name;
    listed by :func:`class_folders`, without torch); or ``train/`` and ``test/`` (or ``val/``)
    folders of class sub-folders: a training split and a held-out test split (``ogad evaluate
    --retrain`` needs one), the test's classes named as the training split's.

    Files (or class folders) that are links to places outside ``path`` are refused unless
    ``allow_outside`` names their folder; class folders without images are dropped.
    """
    root = Path(path).expanduser()
    if not root.exists():
        raise DataError(f"imagefolder: path not found: {root}")
    if not root.is_dir():
        raise DataError(f"imagefolder: not a folder: {root}")
    splits = split_folders(root)
    args = (root, image_size, allow_outside, max_pixels, skip)
    train_dir, test_dir = splits if splits else (root, None)
    class_names, train = _image_split(train_dir, *args)
    if len(class_names) < 2:
        raise DataError(
            f"imagefolder: {train_dir} has images in only one class ({class_names[0]})"
            "; at least two classes are needed"
        )
    test = None
    if test_dir is not None:
        test_names, test = _image_split(test_dir, *args)
        unknown = sorted(set(test_names) - set(class_names))
        if unknown:
            raise DataError(
                f"imagefolder: {test_dir} has classes the training split lacks: "
                f"{', '.join(unknown)}"
            )
        index = np.array([class_names.index(c) for c in test_names], dtype=np.int64)
        test = replace(test, labels=index[test.labels])
    return LoadedData(
        spec=f"imagefolder:{root.resolve()}",
        kind="image",
        label_names=class_names,
        train=train,
        test=test,
        data_roots=[str(root.resolve()), *map(str, _outside_roots(allow_outside))],
    )


def _image_split(
    folder_root: Path,
    root: Path,
    image_size: int,
    allow_outside: Sequence[str | Path],
    max_pixels: int,
    skip: Sequence[Path],
) -> tuple[list[str], SampleSet]:
    """(class names, the files of ``folder_root``'s class sub-folders as a SampleSet)."""
    try:
        folder = class_folders(folder_root, skip=skip)
    except OSError as err:
        raise DataError(f"imagefolder: {folder_root}: {err}") from None
    _check_suffixes(folder.other_images, folder_root)
    if not folder.classes:
        raise DataError(f"imagefolder: {folder_root} has no class sub-folders")
    if not folder.samples:
        raise DataError(f"imagefolder: {folder_root} has no images in its class sub-folders")
    class_names, labels = _drop_empty_classes(folder, folder_root)
    paths = [Path(p).resolve() for p, _ in folder.samples]
    written = [str(Path(p).relative_to(root)) for p, _ in folder.samples]
    check_contained(list(zip(written, paths, strict=True)), root, allow_outside, "imagefolder")
    x = scan_images(paths, image_size, f"imagefolder:{root}", max_pixels=max_pixels)
    return class_names, SampleSet(inputs=x, labels=labels, refs=[str(p) for p in paths])


#: what a CSV data set holds: said by the errors on a CSV without samples
CSV_LAYOUT = "the header text,label (or image,label), then one row per sample"


def _read_csv(path: Path):  # -> pd.DataFrame
    import pandas as pd

    if not path.is_file():
        what = "not a regular file (a folder, FIFO or device)" if path.exists() else "not found"
        raise DataError(f"csv: {path} is {what}" if path.exists() else f"csv: file {what}: {path}")
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
    except UnicodeDecodeError as err:
        raise DataError(
            f"csv: {path} is not valid UTF-8 ({err.reason} at byte {err.start})"
        ) from None
    except pd.errors.EmptyDataError:
        raise DataError(
            f"csv:{path}: no samples: the file has no header line and no rows; write {CSV_LAYOUT}"
        ) from None
    except pd.errors.ParserError as err:
        raise DataError(f"csv: cannot parse {path}: {str(err).splitlines()[0]}") from None


def labels_from_strings(values: Sequence[str], where: str) -> tuple[np.ndarray, list[str]]:
    """Map label strings to ints (label names sorted; numeric names sorted numerically)."""
    values = [str(v).strip() for v in values]
    for i, v in enumerate(values):
        if v.lower() in MISSING_LABELS:
            shown = f" ({v!r} reads as missing)" if v else ""
            raise DataError(f"{where}: row {i + 2} has no label{shown}")
    names = sorted(set(values))
    if all(_is_int(v) for v in names):
        names = sorted(names, key=int)
    if len(names) < 2:
        raise DataError(f"{where}: only one class ({names[0]!r}); at least two are needed")
    index = {n: i for i, n in enumerate(names)}
    return np.array([index[v] for v in values], dtype=np.int64), names


def _is_int(s: str) -> bool:
    try:
        int(s)
    except ValueError:
        return False
    return True


def load_csv(
    path: Path,
    image_size: int,
    allow_outside: Sequence[str | Path] = (),
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> LoadedData:
    """``text,label`` or ``image,label`` columns; image paths relative to the CSV's folder.

    Image paths that lie outside the CSV's folder (``../x.png``, absolute paths, links out)
    are refused unless ``allow_outside`` names their folder.
    """
    path = Path(path).expanduser().resolve()
    df = _read_csv(path)
    where = f"csv:{path}"
    cols = {c.strip().lower(): c for c in df.columns}
    if "label" not in cols:
        raise DataError(f"{where}: needs a 'label' column (has: {', '.join(df.columns)})")
    if "image" not in cols and "text" not in cols:
        raise DataError(
            f"{where}: needs an 'image' or a 'text' column (has: {', '.join(df.columns)})"
        )
    if len(df) == 0:
        header = ",".join(map(str, df.columns))
        raise DataError(
            f"{where}: no samples: only the header line ({header}); add one row per sample under it"
        )
    labels, names = labels_from_strings(df[cols["label"]].tolist(), where)
    if "image" in cols:
        rel = df[cols["image"]].tolist()
        for i, r in enumerate(rel):
            if not str(r).strip():
                raise DataError(f"{where}: row {i + 2} has an empty image path")
            if "\x00" in str(r):
                raise DataError(f"{where}: row {i + 2}'s image path holds a NUL byte: {r!r}")
        paths = [(path.parent / str(r).strip()).resolve() for r in rel]
        pairs = [
            (f"row {i + 2} ({str(r).strip()})", p)
            for i, (r, p) in enumerate(zip(rel, paths, strict=True))
        ]
        check_contained(pairs, path.parent, allow_outside, where)
        x = scan_images(paths, image_size, where, max_pixels=max_pixels)
        return LoadedData(
            spec=f"csv:{path}",
            kind="image",
            label_names=names,
            train=SampleSet(inputs=x, labels=labels, refs=[str(p) for p in paths]),
            data_roots=[str(path.parent), *map(str, _outside_roots(allow_outside))],
        )
    texts = [str(t) for t in df[cols["text"]].tolist()]
    empty = [i + 2 for i, t in enumerate(texts) if not t.strip()]
    if len(empty) == len(texts):
        raise DataError(f"{where}: every text is empty")
    if empty:
        raise DataError(
            f"{where}: {len(empty)} empty text(s), first at row {empty[0]}; remove or fill them"
        )
    return LoadedData(
        spec=f"csv:{path}",
        kind="text",
        label_names=names,
        train=SampleSet(inputs=texts, labels=labels, refs=list(texts)),
    )


# ---- dispatch -------------------------------------------------------------------------------


def load_data(
    spec: str,
    *,
    run_dir: Path,
    image_size: int = 32,
    limit: int | None = None,
    seed: int = 0,
    allow_outside: Sequence[str | Path] = (),
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> LoadedData:
    """Load a data spec (no noise). Sample-set images are written under ``run_dir/data``.

    Args:
        spec: ``mnist5k``, ``digits``, ``moons``, ``rotten-tomatoes``, ``imagefolder:PATH``,
            ``csv:PATH``, or any other registered source's (:mod:`ogad_core.data.sources`).
        image_size: side length user images are resized to.
        limit: keep a seeded subset of this many train samples (text sets; any set).
        allow_outside: folders outside the ImageFolder / CSV folder that images may lie in.
        max_pixels: user images larger than this (width x height) are refused (DataError).
    """
    from ogad_core.data.sources import LoadOptions, source_for  # its modules import this one

    source = source_for(spec)
    options = LoadOptions(Path(run_dir), image_size, limit, seed, allow_outside, max_pixels)
    data = source.load(spec, options)
    if source.subsets_itself:
        limit = None
    if limit is not None:
        data = subsample(data, limit, seed=seed)
    if isinstance(data.train.inputs, np.ndarray):
        _check_finite(data.train.inputs, spec)
    if len(data.train) < 2:
        raise DataError(f"{spec}: needs at least two samples, got {len(data.train)}")
    return data


def subsample(data: LoadedData, limit: int, *, seed: int) -> LoadedData:
    """A seeded subset of ``limit`` train samples (all when limit >= N)."""
    if limit < 2:
        raise ConfigError(f"`limit` must be >= 2, got {limit}")
    n = len(data.train)
    if limit >= n:
        return data
    idx = np.sort(np.random.default_rng(seed).choice(n, size=limit, replace=False))
    return replace(data, train=data.train.subset(idx))
