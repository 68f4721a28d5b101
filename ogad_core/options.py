"""The compute configuration: a frozen dataclass validated on creation, saved in the manifest
and compared on reuse (a run directory never mixes two configurations)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, fields

from ogad_core.errors import ConfigError

DEFAULT_DETECTORS = ("iforest", "l2", "l1", "lof", "loss", "selfconf")
# Fields that change no stored result: a resumed run may differ in them.
RUNTIME_FIELDS = frozenset({"device", "batch_size", "detectors", "per_class", "progress"})


@dataclass(frozen=True)
class ComputeConfig:
    """Everything ``ogad compute`` needs. See ``ogad compute --help`` for each option."""

    data: str
    model: str | None = None
    checkpoint: str | None = None
    params: str = "last"
    proj_dim: int | None = None
    noise: float = 0.0
    noise_kind: str = "symmetric"
    seed: int = 0
    device: str = "auto"
    batch_size: int = 256
    checkpoints: int = 1
    epochs: int | None = None
    lr: float | None = None
    image_size: int = 32
    limit: int | None = None
    encoder: str | None = None
    finetune: str | None = None
    detectors: tuple[str, ...] = DEFAULT_DETECTORS
    per_class: bool = False

    def __post_init__(self) -> None:
        if not self.data or not isinstance(self.data, str):
            raise ConfigError("--data is required")
        if self.checkpoint and not self.model:
            raise ConfigError("--checkpoint needs --model module:factory")
        if self.proj_dim is not None and self.proj_dim < 1:
            raise ConfigError(f"--proj-dim must be >= 1, got {self.proj_dim}")
        if self.noise < 0 or self.noise != self.noise:
            raise ConfigError(f"--noise must be >= 0, got {self.noise}")
        if self.noise_kind not in ("symmetric", "asymmetric"):
            raise ConfigError(
                f"--noise-kind must be symmetric or asymmetric, got {self.noise_kind!r}"
            )
        if self.batch_size < 1:
            raise ConfigError(f"--batch-size must be >= 1, got {self.batch_size}")
        if self.checkpoints < 1:
            raise ConfigError(f"--checkpoints must be >= 1, got {self.checkpoints}")
        if self.epochs is not None and self.epochs < 1:
            raise ConfigError(f"--epochs must be >= 1, got {self.epochs}")
        if self.lr is not None and not self.lr > 0:
            raise ConfigError(f"--lr must be > 0, got {self.lr}")
        if self.image_size < 4:
            raise ConfigError(f"--image-size must be >= 4, got {self.image_size}")
        if self.limit is not None and self.limit < 2:
            raise ConfigError(f"--limit must be >= 2, got {self.limit}")
        if self.finetune not in (None, "lora"):
            raise ConfigError(f"--finetune must be lora, got {self.finetune!r}")
        if self.device not in ("auto", "cpu", "cuda") and not self.device.startswith("cuda:"):
            raise ConfigError(f"--device must be auto, cpu or cuda, got {self.device!r}")
        if not self.detectors:
            raise ConfigError("--detector needs at least one detector")
        if not self.params.strip():
            raise ConfigError("--params is empty; use last, all or parameter names")

    def identity(self) -> dict:
        """The fields that determine the stored results (JSON-safe)."""
        return {k: v for k, v in self.to_dict().items() if k not in RUNTIME_FIELDS}

    def to_dict(self) -> dict:
        d = asdict(self)
        d["detectors"] = list(self.detectors)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> ComputeConfig:
        names = {f.name for f in fields(cls)}
        kw = {k: v for k, v in d.items() if k in names}
        if "detectors" in kw:
            kw["detectors"] = tuple(kw["detectors"])
        return cls(**kw)


def fingerprint(*parts: object) -> str:
    """sha256 (16 hex chars) of the canonical JSON of ``parts``."""
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]
