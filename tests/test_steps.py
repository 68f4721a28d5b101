"""Steps of one shape: ``compute`` is a list of steps over a typed state, each returning its
manifest record; ``ogad score`` and ``ogad map`` run the same steps standalone."""

from __future__ import annotations

import shutil
import typing
from pathlib import Path

import pytest

from ogad_core.errors import RunDirError
from ogad_core.options import ComputeConfig
from ogad_core.pipeline.score_step import (
    EvidenceStep,
    MapStep,
    ScoreStep,
    run_standalone,
)
from ogad_core.pipeline.state import RunFiles, RunState
from ogad_core.pipeline.workflow import steps
from ogad_core.run.manifest import STEP_ORDER, StepRecord
from ogad_core.run.rundir import RunDir
from ogad_core.testing import DIGITS_CONFIG


def _mentions_any(hint: object) -> bool:
    """Whether a type hint is ``Any`` or holds it anywhere (``dict[str, Any]``, unions...)."""
    return hint is typing.Any or any(_mentions_any(a) for a in typing.get_args(hint))


def _hints(cls: type) -> dict[str, object]:
    import numpy as np  # noqa: F401  (names the hints refer to)
    import torch  # noqa: F401
    from torch import nn  # noqa: F401

    from ogad_core.data.images import ImageFiles  # noqa: F401
    from ogad_core.data.loaders import LoadedData  # noqa: F401
    from ogad_core.engine.datasets import BatchDataset  # noqa: F401
    from ogad_core.engine.kinds import ModelInput, ModelInputs, StateDict  # noqa: F401

    namespace = {**vars(typing), **locals()}
    return typing.get_type_hints(
        cls, globalns=vars(__import__(cls.__module__, fromlist=["x"])), localns=namespace
    )


def test_the_state_has_no_any_field() -> None:
    from ogad_core.engine.kinds import ModelIdentity, ModelInputs, TrainJob

    for cls in (RunFiles, RunState, ModelInputs, TrainJob, ModelIdentity):
        hints = _hints(cls)
        assert hints and [k for k, h in hints.items() if _mentions_any(h)] == [], cls
    assert {"rd", "manifest", "config", "data", "inputs", "model", "states"} <= set(
        _hints(RunState)
    )
    assert set(_hints(ModelInputs)) == {"x_train", "y_train", "x_test", "y_test", "truncated"}


def test_the_any_check_can_fail() -> None:
    assert _mentions_any(dict[str, typing.Any]) and _mentions_any(typing.Any | None)
    assert not _mentions_any(dict[str, int])


def test_compute_is_the_list_of_steps_in_manifest_order() -> None:
    config = ComputeConfig(**DIGITS_CONFIG)
    listed = steps(config)
    names = [getattr(s, "name", getattr(s, "__name__", "")) for s in listed]
    assert names == [
        "data_step",
        "encode_step",
        "model_step",
        "predict_step",
        "gradient_step",
        "scores",
        "map",
        "evidence",
        "issues",
    ]
    assert len(STEP_ORDER) == 8  # evidence keeps its record in evidence/stamp.json


@pytest.fixture
def run(digits_run: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(digits_run, copy)
    return copy


def test_standalone_steps_reuse_and_return_their_records(run: Path) -> None:
    before = RunDir(run).load_manifest().steps["map"]
    (map_record, evidence) = run_standalone(run, "map", [MapStep(seed=0), EvidenceStep(seed=0)])
    assert isinstance(map_record, StepRecord) and map_record.fingerprint == before.fingerprint
    assert map_record.finished == before.finished  # reused, not recomputed
    assert evidence.fingerprint  # stamped from the gradients and samples
    (scores,) = run_standalone(run, "score", [ScoreStep(("l2",), seed=0)])
    manifest = RunDir(run).load_manifest()
    assert manifest.steps["scores"].fingerprint == scores.fingerprint
    assert "l2" in manifest.detectors


def test_a_standalone_step_checks_the_gradients_compute_just_wrote(run: Path) -> None:
    grads = RunDir(run).gradients_path
    raw = bytearray(grads.read_bytes())
    raw[-8:] = b"\x00\x00\xc0\x7f" * 2  # two NaN at the end of the last row
    grads.write_bytes(bytes(raw))
    with pytest.raises(RunDirError, match="NaN or infinite|checksum"):
        ScoreStep(("l2",))(RunFiles.reopen(RunDir(run)))
    fresh = RunFiles(rd=RunDir(run), manifest=RunDir(run).load_manifest(), fresh_gradients=True)
    assert ScoreStep(("loss",))(fresh).fingerprint  # loss needs no gradients: nothing read
