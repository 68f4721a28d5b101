"""Kinds as objects: a new data source, data kind or model kind is one module plus one
registration, and the pipeline then runs it with no other change.

The module here plays the plugin author's module: it defines a tiny ``npz:PATH`` source, a
``sequence`` data kind and a ``linear`` model kind, registers each once, and runs ``compute``.
"""

from __future__ import annotations

from collections.abc import Iterator
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


class LinearModel:
    """A plain linear classifier: every tabular run without ``--model``, while registered."""

    name = "linear"

    def matches(self, config: ComputeConfig, kind: str) -> bool:
        return kind == "tabular" and not config.model

    def recipe(self, config: ComputeConfig, kind: str) -> Any:
        from ogad_core.engine.train import TrainRecipe

        return TrainRecipe(epochs=4, lr=5e-2, weight_decay=0.0, batch_size=32)

    def build(self, config: ComputeConfig, kind: str, input_shape, n_classes, train_inputs) -> Any:
        from torch import nn

        return nn.Linear(input_shape[0], n_classes)


@pytest.fixture
def plugin() -> Iterator[None]:
    """Register the three kinds for one test, then take them out again."""
    register(NpzSource())
    register_input_kind(SequenceKind())
    register_model_kind(LinearModel(), before="builtin")
    try:
        yield
    finally:
        unregister("npz")
        INPUT_KINDS.pop("sequence", None)
        MODEL_KINDS[:] = [k for k in MODEL_KINDS if k.name != "linear"]


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


def test_unknown_spec_and_kind_name_what_is_known(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"use one of mnist5k, .* imagefolder:PATH or csv:PATH"):
        load_data("npz:x.npz", run_dir=tmp_path)
    with pytest.raises(ConfigError, match="not a data spec"):
        ComputeConfig(data="npz:x.npz")  # accepted only while a source takes it
    with pytest.raises(ModelError, match="known: image, text, tabular"):
        input_kind("sequence")


# ---- a new source, data kind and model kind: one module, one registration each -------------


def test_a_new_source_and_model_kind_run_through_compute(plugin: None, tmp_path: Path) -> None:
    spec = f"npz:{_npz(tmp_path / 'd.npz')}"
    assert load_data(spec, run_dir=tmp_path).kind == "tabular"
    config = ComputeConfig(data=spec, detectors=("l2", "loss"), device="cpu")
    assert type(build_model(config, "tabular", (4,), 2)).__name__ == "Linear"
    assert model_recipe(config, "tabular").epochs == 4
    manifest = compute(config, tmp_path / "run", progress=False)
    assert manifest["data"]["kind"] == "tabular" and manifest["model"]["class"] == "Linear"
    assert manifest["dims"]["gradient"] == 2 * 5  # (weight 2x4 + bias 2)
    scores = pd.read_parquet(tmp_path / "run" / "scores.parquet")
    assert len(scores) == 80 and scores["l2_score"].notna().all()


def test_a_new_data_kind_gets_its_inputs_and_builtin_model(plugin: None, tmp_path: Path) -> None:
    data = load_data(f"npz:{_npz(tmp_path / 's.npz', kind='sequence')}", run_dir=tmp_path)
    config = ComputeConfig(data="digits")
    from ogad_core.pipeline import model_inputs

    inputs = model_inputs(config, data, None, "cpu", False)  # type: ignore[arg-type]
    assert tuple(inputs.x_train.shape) == (80, 4) and inputs.x_test is None
    model = build_model(config, "sequence", inputs.input_shape, data.n_classes)
    assert type(model).__name__ == "MLP"
    assert model_recipe(config, "sequence").epochs == 3
