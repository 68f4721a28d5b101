"""Pretrained image encoders (``--encoder torchvision:NAME``), the image twin of the text path:
features computed once per run with the weights' own preprocessing, cached (resumable) like the
text embeddings, and a linear head trained on them (closed-form last-layer gradients).

Weights are never downloaded: they come from ```weights` FILE`` or the local torch hub cache,
``torch.hub.get_dir()/checkpoints/<file name of the weights' URL>`` (where
``torchvision.models.NAME(weights=...)`` would have saved them). Also the user's preprocessing for
``--model`` runs (``--transform module:callable`` or a torchvision weights name).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ogad_core._internal import import_callable, log, one_line
from ogad_core.data.images import ImageFiles
from ogad_core.engine.datasets import (
    BatchDataset,
    ImageBatches,
    Transform,
    batch_loader,
    iterate,
    row_batches,
)
from ogad_core.engine.executors import Executor, ExecutorRun, Write, with_total
from ogad_core.engine.gradients import autocast, on_cpu
from ogad_core.engine.models import last_linear, resolve_device
from ogad_core.errors import ConfigError, ModelError
from ogad_core.run.store import finished_rows, row_store

#: the encoders tested here; any torchvision classification model name works the same way
KNOWN_ENCODERS = ("resnet18", "resnet50", "convnext_tiny", "vit_b_16")
#: the last block of each family (trained by ``finetune="last-block"``), by parameter prefix
LAST_BLOCK = {"resnet": "layer4.", "convnext": "features.7.", "vit": "encoder.layers."}


@dataclass(frozen=True)
class EncoderSpec:
    """A parsed ``torchvision:NAME[:WEIGHTS]`` spec; ``weights`` is the enum member."""

    name: str
    weights: Any

    @property
    def ident(self) -> str:
        return f"torchvision:{self.name}:{self.weights.name}"

    @property
    def hub_file(self) -> Path:
        """Where the torch hub cache keeps these weights."""
        return Path(torch.hub.get_dir()) / "checkpoints" / Path(self.weights.url).name

    def transforms(self) -> Transform:
        return self.weights.transforms()


def parse_encoder(spec: str) -> EncoderSpec:
    """``torchvision:NAME`` (the weights' DEFAULT) or ``torchvision:NAME:WEIGHTS``."""
    from torchvision import models

    kind, _, rest = str(spec).partition(":")
    if kind != "torchvision" or not rest:
        raise ConfigError(
            f"image encoder must be torchvision:NAME (e.g. torchvision:resnet18), got {spec!r}"
        )
    name, _, weights_name = rest.partition(":")
    try:
        enum = models.get_model_weights(name)
    except (ValueError, KeyError):
        raise ConfigError(
            f"encoder {spec}: torchvision has no model {name!r} (e.g. {', '.join(KNOWN_ENCODERS)})"
        ) from None
    try:
        weights = enum[weights_name] if weights_name else enum.DEFAULT
    except KeyError:
        choices = ", ".join(w.name for w in enum)
        raise ConfigError(f"encoder {spec}: no weights {weights_name!r} ({choices})") from None
    return EncoderSpec(name=name, weights=weights)


def weights_file(spec: EncoderSpec, weights: str | Path | None) -> Path:
    """The weights file to load: ``weights`` if given, else the hub cache's; ModelError naming
    where to put it when missing."""
    if weights is not None:
        path = Path(weights).expanduser()
        if not path.is_file():
            raise ModelError(f"`weights`: file not found: {path}")
        return path.resolve()
    path = spec.hub_file
    if not path.is_file():
        raise ModelError(
            f"`encoder` {spec.ident}: weights not found at {path}; nothing is downloaded at run "
            f"time: put {spec.weights.url} there, or pass `weights` FILE"
        )
    return path


def file_digest(path: Path) -> str:
    """sha256 of a file's content (16 hex), read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(2**20), b""):
            h.update(chunk)
    return h.hexdigest()[:16]


def load_backbone(spec: EncoderSpec, path: Path) -> tuple[nn.Module, int]:
    """The encoder with its classifier replaced by identity: (module, feature dim E)."""
    from torchvision import models

    model = models.get_model(spec.name, weights=None)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise ModelError(f"`weights` {path}: cannot load: {one_line(err)}") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ModelError(f"`weights` {path}: expected a state_dict, got {type(state).__name__}")
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        raise ModelError(f"`weights` {path} does not fit {spec.name}: {one_line(err)}") from None
    name, head = last_linear(model)
    _set_module(model, name, nn.Identity())
    return model.eval(), int(head.in_features)


def _set_module(model: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, new)


def feature_key(spec: EncoderSpec, weights_digest: str, files: ImageFiles) -> str:
    """Cache key of a feature matrix: encoder, weights content, the files' fingerprint."""
    h = hashlib.sha256(f"{spec.ident}\x1f{weights_digest}\x1f".encode())
    files.hash_into(h)
    return h.hexdigest()[:16]


def encode_images(
    files: ImageFiles,
    encoder: str,
    *,
    weights: str | Path | None = None,
    device: str = "cpu",
    batch_size: int = 64,
    workers: int | None = None,
    cache_dir: Path | None = None,
    precision: str = "fp32",
    progress: bool = True,
    executor: Executor | None = None,
) -> np.ndarray:
    """(N, E) float32 features of ``files`` from a pretrained torchvision encoder.

    Each file is decoded (RGB) and preprocessed with the weights' own transforms by DataLoader
    workers. With ``cache_dir`` the matrix is kept as ``<cache_dir>/<key>.npy``: a later call
    with the same encoder, weights and files never loads the encoder, and an interrupted one
    resumes at the first batch not done. ``executor``: this process (default) or Ray
    (:mod:`ogad_core.engine.executors`).
    """
    return encoder_pass(
        files,
        encoder,
        weights=weights,
        device=device,
        batch_size=batch_size,
        workers=workers,
        cache_dir=cache_dir,
        precision=precision,
        progress=progress,
        executor=executor,
    ).features


@dataclass
class EncoderPass:
    """What :func:`encoder_pass` did: the features, their cache key, and the run (None when a
    finished cache was reused)."""

    features: np.ndarray
    key: str
    run: ExecutorRun | None


def encoder_pass(
    files: ImageFiles,
    encoder: str,
    *,
    weights: str | Path | None = None,
    device: str = "cpu",
    batch_size: int = 64,
    workers: int | None = None,
    cache_dir: Path | None = None,
    precision: str = "fp32",
    progress: bool = True,
    executor: Executor | None = None,
) -> EncoderPass:
    """:func:`encode_images`, also saying what it did (the encoder step records it)."""
    spec = parse_encoder(encoder)
    path = weights_file(spec, weights)
    n = len(files)
    key = feature_key(spec, file_digest(path), files)
    cached = None if cache_dir is None else Path(cache_dir) / f"{key}.npy"
    if (
        cached is not None
        and (done := finished_rows(cached, n_rows=n, fingerprint=key)) is not None
    ):
        log.info("encoder: reusing cached %s features", spec.ident)
        return EncoderPass(np.array(done, dtype=np.float32), key, None)
    backbone, dim = load_backbone(spec, path)
    task = ImageEncodeTask(
        backbone, encoder_batches(files, spec), batch_size, device, workers, precision
    )
    autocast(resolve_device(device), precision)  # validates precision before any work
    store = row_store(cached, n_rows=n, n_cols=dim, fingerprint=key)
    run = with_total(executor, n, progress).map_rows(task, store, desc="encoding images")
    return EncoderPass(np.array(store.array(), dtype=np.float32), key, run)


@dataclass
class ImageEncodeTask:
    """A backbone's features of image files, as a row task (:mod:`ogad_core.engine.executors`):
    ``run(rows, write)`` writes (B, E) float32 per batch.

    What the device offers (each ``None``: on CUDA only): ``channels_last`` memory format for
    the backbone and batches; ``decode_on_device``: DataLoader workers only read the JPEG files'
    bytes and ``torchvision.io.decode_jpeg`` decodes each batch on the device, where the
    weights' transforms (resize, crop, normalise) run too (used when every file is a JPEG).
    ``precision`` ``bf16`` / ``fp16``: autocast of the forward pass; features stored float32.
    """

    backbone: nn.Module
    batches: ImageBatches
    batch_size: int = 64
    device: str = "cpu"
    workers: int | None = None
    precision: str = "fp32"
    channels_last: bool | None = None
    decode_on_device: bool | None = None

    def order(self, pending: np.ndarray) -> np.ndarray:
        return pending

    def for_worker(self, device: str) -> ImageEncodeTask:
        return replace(self, backbone=on_cpu(self.backbone), device=device, workers=0)

    def run(self, rows: np.ndarray, write: Write) -> None:
        dev = resolve_device(self.device)
        last = dev.type == "cuda" if self.channels_last is None else self.channels_last
        fmt = torch.channels_last if last else torch.contiguous_format
        model = self.backbone.to(dev).to(memory_format=fmt).eval()
        with torch.inference_mode():
            for batch_rows, x in self._inputs(rows, dev):
                with autocast(dev, self.precision):
                    feats = model(x.contiguous(memory_format=fmt))
                write(batch_rows, feats.float().cpu().numpy())

    def _inputs(
        self, rows: np.ndarray, dev: torch.device
    ) -> Iterator[tuple[np.ndarray, torch.Tensor]]:
        """(rows, (B, 3, H, W) preprocessed on ``dev``) per batch, decoded by the workers (PIL)
        or, with ``decode_on_device``, on the device from the files' bytes."""
        groups = row_batches(rows, self.batch_size)
        on_device = dev.type == "cuda" if self.decode_on_device is None else self.decode_on_device
        if on_device and all_jpeg(self.batches.files):
            loader = batch_loader(FileBytes(self.batches.files), groups, workers=self.workers)
            for batch_rows, (data, lengths) in zip(groups, loader, strict=True):
                yield batch_rows, decode_jpegs(data, lengths, dev, self.batches.transform)
            return
        for batch_rows, x, _ in iterate(self.batches, groups, device=dev, workers=self.workers):
            yield batch_rows, x


JPEG_SUFFIXES = (".jpg", ".jpeg", ".jpe", ".jfif")


def all_jpeg(files: ImageFiles) -> bool:
    """Whether every file is a JPEG (by suffix; the header scan read their format)."""
    return all(str(p).lower().endswith(JPEG_SUFFIXES) for p in files.paths)


class FileBytes(BatchDataset):
    """The files' raw bytes, read by DataLoader workers: ``x`` (total,) uint8 (the files one
    after another), ``y`` (B,) int64 their lengths."""

    decodes_files = True  # reading is I/O the workers overlap

    def __init__(self, files: ImageFiles) -> None:
        self.files = files

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        from torchvision.io import read_file

        blobs = [read_file(str(self.files.paths[int(i)])) for i in rows]
        return torch.cat(blobs), torch.tensor([len(b) for b in blobs], dtype=torch.int64)


def decode_jpegs(
    data: torch.Tensor, lengths: torch.Tensor, dev: torch.device, transform: Any
) -> torch.Tensor:
    """JPEG bytes (total,) uint8 split by ``lengths`` (B,) -> (B, 3, H, W) float32 on ``dev``:
    decoded there (EXIF orientation applied, RGB), then ``transform`` (the weights' resize,
    crop and normalisation, which take uint8 tensors) on the device."""
    from torchvision.io import ImageReadMode, decode_jpeg

    blobs = list(torch.split(data, lengths.tolist()))
    images = decode_jpeg(blobs, mode=ImageReadMode.RGB, device=dev, apply_exif_orientation=True)
    return torch.stack([transform(img) for img in images])


def encoder_batches(files: ImageFiles, spec: EncoderSpec | str, labels: Any = None) -> ImageBatches:
    """The files as RGB images through the weights' transforms (labels default to zeros)."""
    spec = parse_encoder(spec) if isinstance(spec, str) else spec
    tf = spec.transforms()
    size = getattr(tf, "resize_size", None)
    draft = int(size[0]) if size else None
    rgb = replace(files, channels=3)
    y = np.zeros(len(files), dtype=np.int64) if labels is None else labels
    return ImageBatches(rgb, y, transform=tf, draft=draft)


def is_image_encoder(encoder: str | None) -> bool:
    """True for a ``torchvision:...`` encoder spec (else a text encoder or none)."""
    return bool(encoder) and str(encoder).startswith("torchvision:")


def weights_digest(encoder: str, weights: str | Path | None) -> str:
    """The content digest of the weights an encoder spec would load (for fingerprints)."""
    spec = parse_encoder(encoder)
    return file_digest(weights_file(spec, weights))


# ---- fine-tuning the last block -----------------------------------------------------------


class EncoderClassifier(nn.Module):
    """A pretrained backbone (frozen but for its last block) and a linear head.

    ``forward(x (B, 3, H, W) preprocessed) -> logits (B, C)``.
    """

    def __init__(self, backbone: nn.Module, dim: int, n_classes: int, block_prefix: str):
        super().__init__()
        self.backbone = backbone
        self.head = nn.Linear(dim, n_classes)
        for name, p in self.backbone.named_parameters():
            p.requires_grad_(name.startswith(block_prefix))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))


def last_block_prefix(spec: EncoderSpec, backbone: nn.Module) -> str:
    """The parameter prefix of the backbone's last block; ConfigError where none is known."""
    family = next((f for f in LAST_BLOCK if spec.name.startswith(f)), None)
    if family is None:
        raise ConfigError(
            f"fine-tuning the last block is supported for {', '.join(LAST_BLOCK)} encoders, "
            f"not {spec.name}"
        )
    prefix = LAST_BLOCK[family]
    if family == "vit":  # the last of encoder.layers.encoder_layer_0 ... _11
        layers = [n for n, _ in backbone.get_submodule("encoder.layers").named_children()]
        prefix = f"{prefix}{layers[-1]}."
    return prefix


def build_encoder_classifier(
    encoder: str, *, weights: str | Path | None, n_classes: int, seed: int = 0
) -> tuple[EncoderClassifier, Transform]:
    """The backbone with a trainable last block and head, and its input transform."""
    spec = parse_encoder(encoder)
    backbone, dim = load_backbone(spec, weights_file(spec, weights))
    prefix = last_block_prefix(spec, backbone)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = EncoderClassifier(backbone, dim, n_classes, prefix)
    return model, spec.transforms()


# ---- the user's preprocessing (--transform) ------------------------------------------------


def load_transform(spec: str) -> Transform:
    """``--transform``: ``torchvision:NAME[:WEIGHTS]``, a weights name such as
    ``ResNet50_Weights.IMAGENET1K_V2`` (their own preprocessing), or ``module:callable`` (a
    callable PIL image -> (C, H, W) tensor; module may be a dotted name or a .py file)."""
    text = str(spec).strip()
    if not text:
        raise ConfigError("`transform` is empty")
    if text.startswith("torchvision:"):
        return parse_encoder(text).transforms()
    if "_Weights." in text and ":" not in text:
        from torchvision import models

        try:
            return models.get_weight(text).transforms()
        except (ValueError, KeyError, AttributeError):
            raise ConfigError(f"`transform`: torchvision has no weights {text!r}") from None
    return _import_callable(text)


def _import_callable(spec: str) -> Transform:
    if ":" not in spec:
        raise ConfigError(
            f"`transform` must be module:callable or a torchvision weights name, got {spec!r}"
        )
    return import_callable(spec, what="`transform`", error=ConfigError)
