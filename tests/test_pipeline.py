"""The compute pipeline end to end on small real data: files, reuse, resume, refusals."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from ogad_core._internal import captured_log
from ogad_core.errors import ModelError, RunDirError
from ogad_core.options import ComputeConfig
from ogad_core.pipeline import compute, score
from ogad_core.run.rundir import RunDir
from ogad_core.testing import DIGITS_CONFIG

CONFIG = DIGITS_CONFIG


def _quiet(config: ComputeConfig, run_dir: Path) -> tuple[dict, list[str]]:
    with captured_log() as lines:
        manifest = compute(config, run_dir, progress=False)
    return manifest, lines


def _digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_run_directory_follows_the_contract(digits_run: Path) -> None:
    rd = RunDir(digits_run)
    m = rd.read_manifest()
    assert m["schema_version"] == 1 and m["status"] == "complete"
    assert m["data"]["label_names"] == [str(i) for i in range(10)]
    assert m["params"] == "last" and m["dims"]["gradient"] == 10 * (128 + 1)
    assert set(m["fingerprints"]) >= {"data", "train", "gradients", "model_weights"}
    samples = rd.read_samples()
    for col in [
        "sample_id",
        "ref",
        "label",
        "label_name",
        "pred",
        "confidence",
        "loss",
        "is_flipped",
    ]:
        assert col in samples.columns
    assert samples["is_flipped"].sum() == 30
    assert (digits_run / samples["ref"].iloc[0]).is_file()
    g = np.load(rd.gradients_path)
    assert g.shape == (300, 1290) and g.dtype == np.float32
    scores = rd.read_scores()
    assert list(scores.columns[:3]) == ["sample_id", "iforest_score", "iforest_rank"]
    assert sorted(scores["l2_rank"]) == list(range(1, 301))
    top = scores.loc[scores["l2_rank"] == 1, "l2_score"].item()
    assert top == scores["l2_score"].max()
    np.testing.assert_allclose(scores["l2_score"], np.linalg.norm(g, axis=1), rtol=1e-5)
    xy = rd.read_map()
    assert list(xy.columns) == ["sample_id", "x", "y"] and len(xy) == 300
    assert (digits_run / "checkpoints" / "gradients_0.npy").is_file()


def test_same_inputs_reuse_everything(digits_run: Path, tmp_path: Path) -> None:
    run = tmp_path / "copy"
    shutil.copytree(digits_run, run)
    before = _digest(run)
    first = RunDir(run).read_manifest()["steps"]["train"]
    manifest, lines = _quiet(ComputeConfig(**CONFIG), run)
    assert "model: reusing the trained model" in lines
    assert "map: reusing the cached map" in lines
    train = manifest["steps"]["train"]
    # the step keeps the real training's time; this call's (loading) time is recorded apart
    assert train["reused"] is True and train["trained"] is True
    assert train["seconds"] == first["seconds"] and train["finished"] == first["finished"]
    assert train["reuse_seconds"] >= 0
    after = _digest(run)
    for name in ["gradients.npy", "model/final.pt", "map.parquet", "checkpoints/gradients_0.npy"]:
        assert before[name] == after[name]


def test_other_inputs_are_refused_without_damage(digits_run: Path, tmp_path: Path) -> None:
    run = tmp_path / "copy"
    shutil.copytree(digits_run, run)
    before = _digest(run)
    with pytest.raises(RunDirError, match=r"noise: 0\.1 -> 0\.2"):
        _quiet(ComputeConfig(**{**CONFIG, "noise": 0.2}), run)
    assert _digest(run) == before


def test_killed_gradient_step_resumes(digits_run: Path, tmp_path: Path) -> None:
    run = tmp_path / "copy"
    shutil.copytree(digits_run, run)
    expected = np.load(digits_run / "gradients.npy")
    # As if killed half-way: half the rows never written.
    done = np.load(run / "gradients.done.npy")
    done[150:] = False
    np.save(run / "gradients.done.npy", done)
    g = np.load(run / "gradients.npy", mmap_mode="r+")
    g[150:] = 0
    g.flush()
    del g
    _, lines = _quiet(ComputeConfig(**CONFIG), run)
    assert any("resuming, 150 of 300 rows left" in ln for ln in lines)
    np.testing.assert_allclose(np.load(run / "gradients.npy"), expected, rtol=1e-6)


def test_score_checkpoint_embedding_and_per_class(digits_run: Path, tmp_path: Path) -> None:
    run = tmp_path / "copy"
    shutil.copytree(digits_run, run)
    table = score(run, ["l2"], embedding="checkpoints")
    g0 = np.load(run / "checkpoints" / "gradients_0.npy")
    g1 = np.load(run / "gradients.npy")
    tracin = np.sqrt((g0**2).sum(1) + (g1**2).sum(1))
    np.testing.assert_allclose(table["l2_ckpt_score"], tracin, rtol=1e-5)
    assert "iforest_score" in table.columns  # earlier columns are kept
    per = score(run, ["iforest"], per_class=True)
    assert per["iforest_rank"].min() == 1


FACTORY = """
import torch
from torch import nn

def make(n_classes, input_shape):
    torch.manual_seed(0)
    c = input_shape[0]
    return nn.Sequential(nn.Flatten(), nn.Linear(c * input_shape[1] * input_shape[2], 32),
                         nn.ReLU(), nn.Linear(32, n_classes))

def broken():
    raise RuntimeError("no weights today")

def three_classes():
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 3))
"""


def test_user_model_with_checkpoint(tmp_path: Path) -> None:
    (tmp_path / "mymodel.py").write_text(FACTORY)
    import importlib.util

    spec = importlib.util.spec_from_file_location("mymodel_t", tmp_path / "mymodel.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model = module.make(10, (1, 8, 8))
    torch.save(model.state_dict(), tmp_path / "w.pt")
    config = ComputeConfig(
        data="digits",
        limit=120,
        model=f"{tmp_path / 'mymodel.py'}:make",
        checkpoint=str(tmp_path / "w.pt"),
        device="cpu",
        detectors=("l2",),
    )
    manifest, _ = _quiet(config, tmp_path / "run")
    assert manifest["steps"]["train"]["trained"] is False
    assert manifest["dims"]["gradient"] == 10 * 33
    samples = pd.read_parquet(tmp_path / "run" / "samples.parquet")
    with torch.no_grad():
        x = torch.as_tensor(np.stack([np.zeros((1, 8, 8), np.float32)]))
        assert model(x).shape == (1, 10)
    assert len(samples) == 120


@pytest.mark.parametrize(
    "factory, message",
    [
        ("broken", "the factory failed: RuntimeError: no weights today"),
        ("three_classes", "outputs 3 classes but the data has 10 labels"),
        ("missing", "has no callable 'missing'"),
    ],
)
def test_bad_user_models(tmp_path: Path, factory: str, message: str) -> None:
    (tmp_path / "mymodel.py").write_text(FACTORY)
    config = ComputeConfig(
        data="digits", limit=50, model=f"{tmp_path / 'mymodel.py'}:{factory}", device="cpu"
    )
    with pytest.raises(ModelError, match=message):
        _quiet(config, tmp_path / "run")


def test_manifest_is_json_with_status(digits_run: Path) -> None:
    m = json.loads((digits_run / "manifest.json").read_text())
    assert all(s["status"] == "done" for s in m["steps"].values())


def test_nan_weights_are_refused(tmp_path: Path) -> None:
    (tmp_path / "mymodel.py").write_text(FACTORY)
    import importlib.util

    spec = importlib.util.spec_from_file_location("mymodel_nan", tmp_path / "mymodel.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    state = module.make(10, (1, 8, 8)).state_dict()
    state["3.bias"][0] = float("nan")
    torch.save(state, tmp_path / "nan.pt")
    config = ComputeConfig(
        data="digits",
        limit=50,
        model=f"{tmp_path / 'mymodel.py'}:make",
        checkpoint=str(tmp_path / "nan.pt"),
        device="cpu",
    )
    with pytest.raises(ModelError, match="NaN or infinite outputs for 50 samples"):
        _quiet(config, tmp_path / "run")


def test_long_training_hints_at_checkpoint_gradients() -> None:
    from ogad_core.pipeline.model_step import long_training_hint

    config = ComputeConfig(data="mnist5k", noise=0.2)
    assert long_training_hint(config, "image", 12) is None  # the built-in recipe
    assert long_training_hint(config, "image", 29) is None
    hint = long_training_hint(ComputeConfig(data="mnist5k", epochs=30), "image", 30)
    assert hint and "--checkpoints" in hint and "--embedding checkpoints" in hint
    assert "trains 12)" in hint  # the built-in image recipe's epochs
    assert (
        long_training_hint(ComputeConfig(data="mnist5k", epochs=30, checkpoints=6), "image", 30)
        is None
    )  # already keeps checkpoints
    assert long_training_hint(ComputeConfig(data="moons", epochs=100), "tabular", 100) is None
    assert long_training_hint(ComputeConfig(data="moons", epochs=150), "tabular", 150)


def test_image_folder_runs_end_to_end_with_the_built_in_cnn(sample_data: Path, tmp_path) -> None:
    """Streamed image files (no encoder): model, predictions, gradients, scores, map."""
    folder = sample_data / "digits_folder"
    config = ComputeConfig(
        data=f"imagefolder:{folder}", image_size=16, epochs=1, detectors=("l2",), workers=0
    )
    manifest = compute(config, tmp_path / "run", progress=False)
    rd = RunDir(tmp_path / "run")
    samples = rd.read_samples()
    n = manifest["data"]["n_samples"]
    assert manifest["status"] == "complete" and n == len(samples) > 0
    assert all(Path(ref).is_file() for ref in samples["ref"])
    assert np.load(rd.gradients_path).shape == (n, manifest["dims"]["gradient"])
    assert len(rd.read_map()) == n
