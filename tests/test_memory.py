"""Memory of one ``ogad compute``: a step's big matrices are freed when no later step reads them
(the features, model and weights before the file steps), and no step leaves a run matrix mapped
behind it. Behaviour (which objects are alive, which files are mapped), never sizes or times.
One small compute, watched at each step's start."""

from __future__ import annotations

import sys
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from ogad_core.options import ComputeConfig
from ogad_core.pipeline import workflow
from ogad_core.run.manifest import StepRecord
from ogad_core.testing import DIGITS_CONFIG

CONFIG = {**DIGITS_CONFIG, "checkpoints": 1, "detectors": ("l2", "loss")}
#: the steps watched, by their name in ``workflow`` (functions, or classes made per compute)
WATCHED = ("model_step", "predict_step", "gradient_step", "ScoreStep", "MapStep", "IssueStep")


def mapped_files(under: Path) -> list[str]:
    """The files under ``under`` this process has memory-mapped now (/proc/self/maps)."""
    root = str(under.resolve())
    maps = Path("/proc/self/maps").read_text(encoding="utf-8").splitlines()
    return sorted({line.split(maxsplit=5)[-1] for line in maps if root in line})


@dataclass
class Watch:
    """What the watched compute saw at each step's start."""

    run_dir: Path
    #: weak references to what the state steps made (taken after the gradient step)
    refs: dict[str, weakref.ref[Any]] = field(default_factory=dict)
    #: per step: which of ``refs`` were alive at its start
    alive: dict[str, dict[str, bool]] = field(default_factory=dict)
    #: per step: the run's files mapped at its start (and "end": after compute)
    mapped: dict[str, list[str]] = field(default_factory=dict)

    def step_starts(self, name: str) -> None:
        self.alive[name] = {k: ref() is not None for k, ref in self.refs.items()}
        self.mapped[name] = mapped_files(self.run_dir) if sys.platform == "linux" else []

    def wrap(self, name: str, step: Any) -> Any:
        def run(state: Any) -> StepRecord:
            self.step_starts(name)
            record = step(state)
            if name == "gradient_step":
                self.refs.update(
                    state=weakref.ref(state),
                    features=weakref.ref(state.inputs.x_train),
                    model=weakref.ref(state.model),
                )
            return record

        return run


@pytest.fixture(scope="module")
def watched(tmp_path_factory: pytest.TempPathFactory) -> Watch:
    """One compute on 300 digits with every watched step wrapped."""
    watch = Watch(tmp_path_factory.mktemp("memory") / "run")
    with pytest.MonkeyPatch.context() as mp:
        for name in WATCHED:
            step = getattr(workflow, name)
            if isinstance(step, type):  # a step class: wrap each instance the list makes
                mp.setattr(
                    workflow, name, lambda *a, n=name, s=step, **k: watch.wrap(n, s(*a, **k))
                )
            else:
                mp.setattr(workflow, name, watch.wrap(name, step))
        manifest = workflow.compute(ComputeConfig(**CONFIG), watch.run_dir, progress=False)
    watch.step_starts("end")
    assert manifest["status"] == "complete"
    assert list(watch.alive) == [*WATCHED, "end"]
    return watch


def test_the_file_steps_run_after_the_features_and_model_are_freed(watched: Watch) -> None:
    assert watched.alive["gradient_step"] == {}  # the references are taken after it
    for name in ("ScoreStep", "MapStep", "IssueStep", "end"):
        assert watched.alive[name] == {"state": False, "features": False, "model": False}, name


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc/self/maps")
def test_no_step_leaves_a_run_matrix_mapped(watched: Watch) -> None:
    assert {name: files for name, files in watched.mapped.items() if files} == {}
