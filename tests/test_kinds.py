"""Kinds as objects: a new data source, data kind or model kind is one module plus one
registration, and the pipeline then runs it with no other change.

The module here plays the plugin author's module: it defines a tiny ``npz:PATH`` source, a
``sequence`` data kind and two model kinds, registers each once, and runs ``compute``: a
``linear`` one with its own preprocessing (standardised features), its own training (a
closed-form least-squares fit) and its own fingerprint part, and a ``fixed`` one that loads
the weights it brings (never trained).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from ogad_core.data import LoadedData, SampleSet, load_data
from ogad_core.data.sources import (
    SOURCES,
    DataSource,
    LoadOptions,
    PrefixSource,
    register,
    unregister,
)
from ogad_core.engine.kinds import (
    INPUT_KINDS,
    MODEL_KINDS,
    BaseModelKind,
    ModelIdentity,
    ModelInputs,
    ModelKind,
    TrainJob,
    input_kind,
    model_kind_for,
    register_input_kind,
    register_model_kind,
)
from ogad_core.errors import ConfigError, DataError, ModelError
from ogad_core.options import ComputeConfig
from ogad_core.pipeline import build_model, compute, model_recipe

# ---- the plugin: one module, one registration each -------------------------------------------


class NpzSource(PrefixSource):
    """``npz:PATH``: arrays ``x`` (N, F), ``y`` (N,) int and an optional ``kind`` (tabular)."""

    prefix, usage = "npz", "npz:PATH"

    def load(self, spec: str, options: LoadOptions) -> LoadedData:
        with np.load(self.path(spec)) as f:
            x, y = f["x"].astype(np.float32), f["y"].astype(np.int64)
            kind = str(f["kind"]) if "kind" in f else "tabular"
        refs = [f"row {i}" for i in range(len(y))]
        names = [str(c) for c in range(int(y.max()) + 1)]
        train = SampleSet(inputs=x, labels=y, refs=refs)
        return LoadedData(spec=spec, kind=kind, label_names=names, train=train)  # type: ignore[arg-type]


class SequenceKind:
    """``sequence`` data: (N, T) float rows; the built-in model is an MLP on them."""

    name = "sequence"

    def recipe(self) -> Any:
        from ogad_core.engine.train import TrainRecipe

        return TrainRecipe(epochs=3, lr=1e-2, weight_decay=0.0, batch_size=16)

    def builtin_model(self, input_shape: tuple[int, ...], n_classes: int) -> Any:
        from ogad_core.engine.models import MLP

        return MLP(in_features=input_shape[0], n_classes=n_classes, hidden=(8,))

    def model_inputs(self, config: Any, data: LoadedData, rd: Any, device: Any, progress: bool):
        import torch

        return torch.as_tensor(data.train.inputs), None, None

    def encoder_pass(self, config: Any) -> None:
        return None  # no encoder: the rows are the features


class LinearModel(BaseModelKind):
    """A linear classifier on standardised features, fit in closed form (least squares on
    one-hot targets, ridge ``alpha``): every tabular run without ``--model``, while registered."""

    name = "linear"
    alpha = 1e-3
    #: how often train() ran (the test's window on reuse)
    trained = 0

    def matches(self, config: ComputeConfig, kind: str) -> bool:
        return kind == "tabular" and not config.model

    def preprocess(self, config, data, rd, device, progress) -> ModelInputs:
        import torch

        from ogad_core.engine.kinds import with_labels

        x = np.asarray(data.train.inputs, dtype=np.float32)
        x = (x - x.mean(axis=0)) / x.std(axis=0)
        return with_labels(data, torch.as_tensor(x))

    def recipe(self, config: ComputeConfig, kind: str) -> Any:
        from ogad_core.engine.train import TrainRecipe

        return TrainRecipe(epochs=1, lr=1.0, weight_decay=0.0, batch_size=32)

    def build(self, config: ComputeConfig, kind: str, input_shape, n_classes, train_inputs) -> Any:
        from torch import nn

        return nn.Linear(input_shape[0], n_classes)

    def identity(self, config: ComputeConfig) -> ModelIdentity:
        return ModelIdentity(super().identity(config).config, (f"ridge:{self.alpha}",))

    def train(self, model, inputs: ModelInputs, recipe, job: TrainJob) -> list[dict]:
        import torch

        type(self).trained += 1
        x = torch.cat([inputs.x_train, torch.ones(len(inputs.x_train), 1)], dim=1).double()
        y = torch.nn.functional.one_hot(inputs.y_train).double()
        w = torch.linalg.solve(x.T @ x + self.alpha * torch.eye(x.shape[1]), x.T @ y).T.float()
        model.load_state_dict({"weight": w[:, :-1], "bias": w[:, -1]})
        return [{k: v.detach().clone() for k, v in model.state_dict().items()}]


class FixedModel(BaseModelKind):
    """A linear model whose weights come with it (loaded, never trained): every tabular run
    with ``--epochs 7``, while registered (a plugin's own switch)."""

    name = "fixed"

    def matches(self, config: ComputeConfig, kind: str) -> bool:
        return kind == "tabular" and config.epochs == 7

    def build(self, config: ComputeConfig, kind: str, input_shape, n_classes, train_inputs) -> Any:
        import torch

        model = torch.nn.Linear(input_shape[0], n_classes)
        with torch.no_grad():
            model.weight.copy_(torch.tensor([[-1.0, 0, 0, 0], [1.0, 0, 0, 0]]))
            model.bias.zero_()
        return model

    def load(self, config: ComputeConfig, model) -> list[dict] | None:
        return [{k: v.detach().clone() for k, v in model.state_dict().items()}]

    def train(self, model, inputs, recipe, job) -> list[dict]:
        raise AssertionError("a model that brings its weights is never trained")


@pytest.fixture
def plugin() -> Iterator[None]:
    """Register the three kinds for one test, then take them out again."""
    register(NpzSource())
    register_input_kind(SequenceKind())
    register_model_kind(FixedModel(), before="builtin")
    register_model_kind(LinearModel(), before="builtin")
    LinearModel.trained = 0
    try:
        yield
    finally:
        unregister("npz")
        INPUT_KINDS.pop("sequence", None)
        MODEL_KINDS[:] = [k for k in MODEL_KINDS if k.name not in ("linear", "fixed")]


def _npz(path: Path, n: int = 80, kind: str | None = None) -> Path:
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], n // 2)
    x = rng.normal(size=(n, 4)) + 3.0 * y[:, None]
    arrays: dict[str, Any] = {"x": x, "y": y}
    if kind:
        arrays["kind"] = np.array(kind)
    np.savez(path, **arrays)
    return path


# ---- the registries ----------------------------------------------------------------------


def test_builtin_kinds_are_registered_once_each() -> None:
    assert [s.usage for s in SOURCES] == [
        "mnist5k",
        "digits",
        "moons",
        "rotten-tomatoes",
        "imagefolder:PATH",
        "csv:PATH",
    ]
    assert all(isinstance(s, DataSource) for s in SOURCES)
    assert all(isinstance(k, ModelKind) for k in MODEL_KINDS)
    assert set(INPUT_KINDS) == {"image", "text", "tabular"}
    assert [k.name for k in MODEL_KINDS] == [
        "lora",
        "user",
        "last-block",
        "features-head",
        "builtin",
    ]
    with pytest.raises(ConfigError, match="registered already"):
        register(SOURCES[0])
    with pytest.raises(ConfigError, match="not a DataSource"):
        register(object())  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("config", "kind", "expected"),
    [
        ({}, "image", "builtin"),
        ({}, "tabular", "builtin"),
        ({}, "text", "features-head"),
        ({"encoder": "torchvision:resnet18"}, "image", "features-head"),
        ({"encoder": "torchvision:resnet18", "finetune": "last-block"}, "image", "last-block"),
        ({"finetune": "lora"}, "text", "lora"),
        ({"model": "m.py:f"}, "image", "user"),
    ],
)
def test_each_run_finds_its_model_kind(config: dict, kind: str, expected: str) -> None:
    data = {"image": "mnist5k", "text": "rotten-tomatoes", "tabular": "digits"}[kind]
    full = ComputeConfig(**{"data": data, **config})
    assert model_kind_for(full, kind).name == expected


@pytest.mark.parametrize(
    ("config", "kind", "expected"),
    [
        ({}, "image", None),
        ({}, "tabular", None),
        ({}, "text", "texts"),
        ({"encoder": "torchvision:resnet18"}, "image", "images"),
        ({"encoder": "torchvision:resnet18", "finetune": "last-block"}, "image", None),
        ({"finetune": "lora"}, "text", None),
        ({"model": "m.py:f"}, "image", None),
        ({"model": "m.py:f"}, "text", "texts"),
        ({"model": "m.py:f", "encoder": "torchvision:resnet18"}, "image", "images"),
        ({"model": "m.py:f", "transform": "t.py:tf"}, "image", None),
        ({"model": "m.py:f", "transform": "t.py:tf"}, "text", "texts"),  # no files to transform
    ],
)
def test_the_model_kind_says_what_the_encoder_step_encodes(
    config: dict, kind: str, expected: str | None
) -> None:
    data = {"image": "mnist5k", "text": "rotten-tomatoes", "tabular": "digits"}[kind]
    full = ComputeConfig(**{"data": data, **config})
    assert model_kind_for(full, kind).encoder_pass(full, kind) == expected


def test_unknown_spec_and_kind_name_what_is_known(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"use one of mnist5k, .* imagefolder:PATH or csv:PATH"):
        load_data("npz:x.npz", run_dir=tmp_path)
    with pytest.raises(ConfigError, match="not a data spec"):
        ComputeConfig(data="npz:x.npz")  # accepted only while a source takes it
    with pytest.raises(ModelError, match="known: image, text, tabular"):
        input_kind("sequence")


# ---- a new source, data kind and model kind: one module, one registration each -------------


def test_a_new_source_and_model_kind_run_through_compute(plugin: None, tmp_path: Path) -> None:
    import torch

    spec = f"npz:{_npz(tmp_path / 'd.npz')}"
    data = load_data(spec, run_dir=tmp_path)
    assert data.kind == "tabular"
    config = ComputeConfig(data=spec, detectors=("l2", "loss"), device="cpu")
    assert type(build_model(config, "tabular", (4,), 2)).__name__ == "Linear"
    assert model_recipe(config, "tabular").epochs == 1
    manifest = compute(config, tmp_path / "run", progress=False)
    assert manifest["data"]["kind"] == "tabular" and manifest["model"]["class"] == "Linear"
    assert manifest["model"]["spec"] == "linear" and manifest["steps"]["train"]["trained"]
    assert manifest["dims"]["gradient"] == 2 * 5  # (weight 2x4 + bias 2)
    scores = pd.read_parquet(tmp_path / "run" / "scores.parquet")
    assert len(scores) == 80 and scores["l2_score"].notna().all()
    # trained through the kind (closed form, on the kind's standardised inputs)
    x = np.asarray(data.train.inputs, dtype=np.float64)
    x = np.c_[(x - x.mean(axis=0)) / x.std(axis=0), np.ones(len(x))]
    y = np.eye(2)[data.train.labels]
    expected = np.linalg.solve(x.T @ x + LinearModel.alpha * np.eye(5), x.T @ y).T
    final = torch.load(tmp_path / "run" / "model" / "final.pt", weights_only=True)
    got = np.c_[final["weight"].numpy(), final["bias"].numpy()]
    np.testing.assert_allclose(got, expected, atol=1e-4)
    assert LinearModel.trained == 1
    compute(config, tmp_path / "run", progress=False)  # reused under the same fingerprint
    assert LinearModel.trained == 1
    LinearModel.alpha = 1.0  # the kind's own fingerprint part changed: trained again
    try:
        again = compute(config, tmp_path / "run", progress=False)
    finally:
        LinearModel.alpha = 1e-3
    assert LinearModel.trained == 2 and again["steps"]["train"]["trained"]


def test_retraining_for_evaluation_trains_through_the_kind(plugin: None, tmp_path: Path) -> None:
    from ogad_core.evaluation.context import load_context, train_subset
    from ogad_core.run.rundir import RunDir

    spec = f"npz:{_npz(tmp_path / 'd.npz')}"
    config = ComputeConfig(data=spec, detectors=("loss",), device="cpu", noise=0.1)
    compute(config, tmp_path / "run", progress=False)
    rd = RunDir(tmp_path / "run")
    ctx = load_context(rd, rd.load_manifest(), need_test=False)
    before = LinearModel.trained
    keep = np.arange(0, 80, 2)
    model = train_subset(ctx, keep, ctx.y_train.numpy(), seed=0)
    assert LinearModel.trained == before + 1  # the kind's closed-form fit, not SGD
    x = np.asarray(ctx.x_train, dtype=np.float64)[keep]
    x = np.c_[x, np.ones(len(x))]
    y = np.eye(2)[ctx.y_train.numpy()[keep]]
    expected = np.linalg.solve(x.T @ x + LinearModel.alpha * np.eye(5), x.T @ y).T
    got = np.c_[model.weight.detach().numpy(), model.bias.detach().numpy()]
    np.testing.assert_allclose(got, expected, atol=1e-4)


def test_a_model_kind_that_loads_its_weights_is_never_trained(plugin: None, tmp_path: Path) -> None:
    spec = f"npz:{_npz(tmp_path / 'd.npz')}"
    config = ComputeConfig(data=spec, detectors=("loss",), device="cpu", epochs=7)
    manifest = compute(config, tmp_path / "run", progress=False)
    assert manifest["model"]["spec"] == "fixed" and not manifest["steps"]["train"]["trained"]
    assert not (tmp_path / "run" / "model" / "final.pt").exists()  # its weights are its own
    samples = pd.read_parquet(tmp_path / "run" / "samples.parquet")
    x0 = np.load(tmp_path / "d.npz")["x"][:, 0]
    np.testing.assert_array_equal(samples["pred"].to_numpy(), (x0 > 0).astype(int))


def test_a_new_data_kind_gets_its_inputs_and_builtin_model(plugin: None, tmp_path: Path) -> None:
    data = load_data(f"npz:{_npz(tmp_path / 's.npz', kind='sequence')}", run_dir=tmp_path)
    config = ComputeConfig(data="digits")
    from ogad_core.pipeline import model_inputs

    inputs = model_inputs(config, data, None, "cpu", False)  # type: ignore[arg-type]
    assert tuple(inputs.x_train.shape) == (80, 4) and inputs.x_test is None
    assert inputs.y_train.tolist() == data.train.labels.tolist()
    model = build_model(config, "sequence", inputs.input_shape, data.n_classes)
    assert type(model).__name__ == "MLP"
    assert model_recipe(config, "sequence").epochs == 3


# ---- the plugin author's check -------------------------------------------------------------


class WrongClasses(LinearModel):
    """Builds a model with one logit too many."""

    name = "wrong-classes"

    def build(self, config: ComputeConfig, kind: str, input_shape, n_classes, train_inputs) -> Any:
        from torch import nn

        return nn.Linear(input_shape[0], n_classes + 1)


class Restless(LinearModel):
    """Its identity changes each time it is asked (a fingerprint that never reuses)."""

    name = "restless"

    def identity(self, config: ComputeConfig) -> ModelIdentity:
        import time

        return ModelIdentity((time.perf_counter_ns(),))


class NoWeights(LinearModel):
    """Trains but hands back nothing."""

    name = "no-weights"

    def train(self, model, inputs, recipe, job) -> list[dict]:
        return []


def test_check_model_kind_passes_a_sound_kind_and_names_a_broken_rule(tmp_path: Path) -> None:
    from ogad_core.testing import check_model_kind

    register(NpzSource())
    try:
        config = ComputeConfig(data=f"npz:{_npz(tmp_path / 'd.npz')}", device="cpu")
        check_model_kind(LinearModel(), config, tmp_path / "run")
        check_model_kind(FixedModel(), replace(config, epochs=7), tmp_path / "run")
        broken = {
            WrongClasses(): "outputs 3 classes but the data has 2 labels",
            Restless(): "identity must be the same",
            NoWeights(): "weights must be the model's state_dicts",
            FixedModel(): "does not match",  # a run without --epochs 7
            object(): "is not a ModelKind",
        }
        for kind, message in broken.items():
            with pytest.raises(ConfigError, match=message):
                check_model_kind(kind, config, tmp_path / "run")
    finally:
        unregister("npz")
