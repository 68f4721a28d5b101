"""What the compute steps share: the run's config, directory, typed manifest and the objects one
step hands to the next (:class:`RunState`; the model's inputs are the model kind's
:class:`~ogad_core.engine.kinds.ModelInputs`), and how a run is opened (continued or refused).
No field is ``Any``."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ogad_core import __version__
from ogad_core._internal import utc_now
from ogad_core.engine.kinds import ModelInputs, StateDict
from ogad_core.errors import RunDirError
from ogad_core.options import ComputeConfig
from ogad_core.run.heal import DAMAGED_SUFFIX
from ogad_core.run.manifest import Manifest, StepRecord
from ogad_core.run.rundir import DATA_DIR, LOCK, MANIFEST, RunDir

if TYPE_CHECKING:
    import torch
    from torch import nn

    from ogad_core.data.loaders import LoadedData


@dataclass
class RunFiles:
    """What every step works on: the run directory and its typed manifest. The standalone
    steps (``ogad score``, ``ogad map``) get just this; ``compute`` passes a :class:`RunState`."""

    rd: RunDir
    manifest: Manifest
    #: the gradients were written and checked by this process (a standalone step verifies them)
    fresh_gradients: bool = False

    @classmethod
    def reopen(cls, rd: RunDir) -> RunFiles:
        """An existing run, for a standalone step (RunDirError without a manifest)."""
        return cls(rd=rd, manifest=rd.load_manifest())

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


@dataclass(kw_only=True)
class RunState(RunFiles):
    """What ``compute``'s steps share: the config, and what one step hands to the next. The
    fields without a default are set by the step that makes them (data, model, inputs)."""

    config: ComputeConfig
    progress: bool = True
    device: torch.device = field(init=False)
    data: LoadedData = field(init=False)
    inputs: ModelInputs = field(init=False)
    model: nn.Module = field(init=False)
    #: the model's state_dicts at each checkpoint, the last one the final model
    states: list[StateDict] = field(default_factory=list)
    params: str = "last"
    full_dim: int = 0
    #: the training just run, one {"epoch", "loss", "seconds"} per epoch (for the Run page)
    train_history: list[dict[str, float]] = field(default_factory=list)

    def files(self) -> RunFiles:
        """The run's files alone (same manifest), for the steps that need nothing else: the
        state's features, model and weights can then be freed."""
        return RunFiles(rd=self.rd, manifest=self.manifest, fresh_gradients=self.fresh_gradients)


#: a step of ``compute``: works on the run state, records its result in the manifest under a
#: fingerprint of its inputs (reusing it when unchanged) and returns that record
Step = Callable[[RunState], StepRecord]
#: a step that needs only the run's files (score, map, evidence): also runs standalone
FileStep = Callable[[RunFiles], StepRecord]


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
