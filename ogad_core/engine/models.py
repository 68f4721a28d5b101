"""Built-in models and loading of the user's model (``--model module:factory``)."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ogad_core._internal import import_callable
from ogad_core.errors import ModelError


class SmallCNN(nn.Module):
    """A small CNN for (N, C, H, W) images: two conv blocks, a hidden layer, a linear head.

    The last-layer gradient has n_classes * (hidden + 1) entries.
    """

    def __init__(self, *, in_channels: int, n_classes: int, hidden: int = 128) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 32, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2, ceil_mode=True),
            nn.Conv2d(32, 64, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2, ceil_mode=True),
            nn.AdaptiveAvgPool2d(4),
        )
        self.hidden = nn.Sequential(nn.Flatten(), nn.Linear(64 * 16, hidden), nn.ReLU())
        self.head = nn.Linear(hidden, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> logits (B, n_classes)."""
        return self.head(self.hidden(self.features(x)))


class MLP(nn.Module):
    """A ReLU MLP for (N, F) features; the paper's synthetic study uses two hidden layers."""

    def __init__(
        self, *, in_features: int, n_classes: int, hidden: tuple[int, ...] = (64, 64)
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = in_features
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(width, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, F) -> logits (B, n_classes)."""
        return self.head(self.body(x))


def builtin_model(kind: str, input_shape: tuple[int, ...], n_classes: int) -> nn.Module:
    """The built-in model for a data kind (SmallCNN for images, an MLP for tabular data), as
    its :class:`~ogad_core.engine.kinds.InputKind` builds it.

    Args:
        kind: a registered data kind (``image``, ``tabular``; text runs use the text head).
        input_shape: one sample's shape, (C, H, W) or (F,).
    """
    from ogad_core.engine.kinds import input_kind

    return input_kind(kind).builtin_model(input_shape, n_classes)


def load_factory(spec: str) -> Any:
    """Import ``module:factory`` (module may be a dotted name or a path to a .py file)."""
    return import_callable(spec, what="`model`", error=ModelError)


def build_user_model(
    spec: str, *, n_classes: int, input_shape: tuple[int, ...], checkpoint: Path | None
) -> nn.Module:
    """Call the user's factory (passing ``n_classes`` / ``input_shape`` if it accepts them)
    and load ``checkpoint`` (a state_dict, or a whole pickled module) when given."""
    factory = load_factory(spec)
    try:
        params: Mapping[str, inspect.Parameter] = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        params = {}
    kwargs = {}
    for name, value in (
        ("n_classes", n_classes),
        ("num_classes", n_classes),
        ("input_shape", input_shape),
    ):
        if name in params:
            kwargs[name] = value
    try:
        model = factory(**kwargs)
    except (Exception, SystemExit) as err:  # sys.exit() in a factory is a failure too
        raise ModelError(
            f"`model` {spec}: the factory failed: {type(err).__name__}: {err}"
        ) from None
    if not isinstance(model, nn.Module):
        raise ModelError(
            f"`model` {spec}: the factory returned {type(model).__name__}, not a torch.nn.Module"
        )
    if checkpoint is not None:
        load_checkpoint(model, Path(checkpoint))
    return model


def load_checkpoint(model: nn.Module, path: Path) -> None:
    """Load weights from ``path`` (a state_dict, {'state_dict': ...} or {'model': ...})."""
    path = Path(path).expanduser()
    if not path.is_file():
        what = "is not a regular file" if path.exists() else "file not found"
        raise ModelError(f"`checkpoint` {path}: {what}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise ModelError(f"`checkpoint` {path}: cannot load: {str(err).splitlines()[0]}") from None
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    elif isinstance(obj, dict) and "model" in obj and isinstance(obj["model"], dict):
        obj = obj["model"]
    if not isinstance(obj, dict):
        raise ModelError(f"`checkpoint` {path}: expected a state_dict, got {type(obj).__name__}")
    try:
        model.load_state_dict(obj)
    except RuntimeError as err:
        raise ModelError(
            f"`checkpoint` {path} does not fit the model: {str(err).splitlines()[0]}"
        ) from None


def last_linear(model: nn.Module) -> tuple[str, nn.Linear]:
    """The model's last ``nn.Linear`` in module order: (qualified name, module)."""
    found = [(name, m) for name, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not found:
        raise ModelError(f"{type(model).__name__} has no nn.Linear layer for params='last'")
    return found[-1]


def state_fingerprint(state: dict[str, torch.Tensor]) -> str:
    """sha256 over a state_dict's tensors (hex, 16 chars)."""
    import hashlib

    h = hashlib.sha256()
    for name, tensor in sorted(state.items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def resolve_device(device: str) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; ``cuda`` without CUDA is an error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ModelError("`device` cuda: CUDA is not available on this machine (use auto or cpu)")
    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise ModelError(f"`device` must be auto, cpu or cuda, got {device!r}")
    if device.startswith("cuda:"):
        index = device[len("cuda:") :]
        if not index.isdigit():
            raise ModelError(f"`device` {device!r}: the GPU index must be a number (cuda:0)")
        if not torch.cuda.is_available() or int(index) >= torch.cuda.device_count():
            raise ModelError(f"`device` {device}: no such CUDA device here (use auto or cpu)")
    return torch.device(device)
