"""What the compute steps share: the run's config, directory, typed manifest and the objects one
step hands to the next (:class:`RunState`), and how a run is opened (continued or refused)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from ogad_core import __version__
from ogad_core._internal import utc_now
from ogad_core.errors import RunDirError
from ogad_core.options import ComputeConfig
from ogad_core.run.heal import DAMAGED_SUFFIX
from ogad_core.run.manifest import Manifest, StepRecord
from ogad_core.run.rundir import DATA_DIR, LOCK, MANIFEST, RunDir


@dataclass
class ModelInputs:
    """What the model consumes: train / test inputs (tensors or token ids) and labels."""

    x_train: Any
    y_train: Any
    x_test: Any = None
    y_test: Any = None
    truncated: Any = None  # (N,) bool, texts cut to the encoder's length (text runs only)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])


@dataclass
class RunState:
    """The state ``compute`` threads through its steps."""

    config: ComputeConfig
    rd: RunDir
    manifest: Manifest
    progress: bool = True
    device: Any = None  # torch.device
    data: Any = None  # ogad_core.data.LoadedData
    inputs: ModelInputs | None = None
    model: Any = None  # torch.nn.Module
    states: list[dict[str, Any]] = field(default_factory=list)  # state_dicts, last = final
    params: str = "last"
    full_dim: int = 0
    #: the training just run, one {"epoch", "loss", "seconds"} per epoch (for the Run page)
    train_history: list[dict[str, float]] = field(default_factory=list)

    def save(self) -> None:
        self.rd.save_manifest(self.manifest)

    def mark(self, step: str, fingerprint: str, started: float, **extra: Any) -> StepRecord:
        """Record ``step`` as done (with its time since ``started``) and save the manifest."""
        record = StepRecord(
            fingerprint=fingerprint,
            seconds=round(time.perf_counter() - started, 3),
            finished=utc_now(),
            extra=extra,
        )
        self.manifest.mark_done(step, record)
        self.save()
        return record


def open_run(config: ComputeConfig, rd: RunDir) -> Manifest:
    """The manifest to continue (same inputs) or a new one; refuses a different run."""
    if rd.has_manifest():
        return _continue_run(config, rd)
    _check_new_folder(rd)
    return Manifest(ogad_version=__version__, created=utc_now(), config=config.to_dict())


def _continue_run(config: ComputeConfig, rd: RunDir) -> Manifest:
    manifest = rd.load_manifest()
    old = ComputeConfig.from_dict(manifest.config or {"data": "?"}).identity()
    new = config.identity()
    diffs = [f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in new if old.get(k) != new[k]]
    if diffs:
        raise RunDirError(
            f"{rd.path} holds a run with other inputs ({'; '.join(diffs)}); "
            "use another run directory (or delete this one)"
        )
    manifest.config = config.to_dict()
    return manifest


def _check_new_folder(rd: RunDir) -> None:
    if rd.path.exists() and not rd.path.is_dir():
        raise RunDirError(f"run directory {rd.path} is a file, not a folder")
    fresh = {DATA_DIR, LOCK}  # sample images written earlier; the writers' lock
    rebuild = (rd.path / (MANIFEST + DAMAGED_SUFFIX)).is_file() and rd.holds_only_run_files()
    if rd.path.is_dir() and not rebuild and any(p.name not in fresh for p in rd.path.iterdir()):
        raise RunDirError(f"run directory {rd.path} is not empty and holds no ogad run")
    try:
        rd.path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise RunDirError(f"cannot create run directory {rd.path}: {err.strerror}") from None
