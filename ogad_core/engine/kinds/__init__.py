"""Data kinds and model kinds as objects, each in its own module of this package and registered
once; the model step and the data step ask these registries instead of branching on names.

* :class:`InputKind` — what a data kind (``LoadedData.kind``: ``image``, ``text``,
  ``tabular``) means to the model: the inputs a model on it consumes by default, its built-in
  model and the built-in training recipe.
* :class:`ModelKind` — one way to get the run's model (built-in, a head on encoder features,
  LoRA, a fine-tuned last block, the user's ``--model``): whether it applies to a run
  configuration, the inputs it consumes (preprocessing), its training recipe, building it,
  training it or loading the weights it brings, the gradient parameters and what identifies
  it in the ``train`` step's fingerprint. :class:`BaseModelKind` gives the common answers, so
  a kind overrides only what is its own.

A new kind is one module plus one registration (``register_input_kind(MyKind())`` or
``register_model_kind(MyModel(), before="builtin")``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, Union, runtime_checkable

from ogad_core.errors import ConfigError, ModelError

if TYPE_CHECKING:
    import numpy as np
    import torch
    from torch import nn

    from ogad_core.data.images import ImageFiles
    from ogad_core.data.loaders import LoadedData
    from ogad_core.engine.datasets import BatchDataset
    from ogad_core.engine.train import TrainRecipe
    from ogad_core.options import ComputeConfig
    from ogad_core.run.rundir import RunDir

__all__ = [
    "INPUT_KINDS",
    "MODEL_KINDS",
    "BaseModelKind",
    "InputKind",
    "KindInputs",
    "ModelIdentity",
    "ModelInput",
    "ModelInputs",
    "ModelKind",
    "StateDict",
    "TrainJob",
    "input_kind",
    "model_kind_for",
    "register_input_kind",
    "register_model_kind",
]

#: one split as a model consumes it: a tensor (arrays, encoder features, token ids), decoded
#: batches of image files (through a transform), or the image files themselves (decoded per batch)
ModelInput = Union["torch.Tensor", "BatchDataset", "ImageFiles"]
#: a model's weights, parameter name -> tensor (on CPU)
StateDict = dict[str, "torch.Tensor"]
#: (train inputs, test inputs or None, (N,) bool truncation flags or None)
KindInputs = tuple[ModelInput, ModelInput | None, Union["np.ndarray", None]]


@dataclass
class ModelInputs:
    """What the model consumes: train / test inputs and labels, made by the model kind
    (:meth:`ModelKind.preprocess`, by default the data kind's)."""

    #: (N, ...) train inputs
    x_train: ModelInput
    #: (N,) int64 given labels
    y_train: torch.Tensor
    #: (M, ...) test inputs, None without a test split
    x_test: ModelInput | None = None
    #: (M,) int64 test labels
    y_test: torch.Tensor | None = None
    #: (N,) bool, texts cut to the encoder's length (text runs only)
    truncated: np.ndarray | None = None

    @property
    def input_shape(self) -> tuple[int, ...]:
        """One sample's shape (what the model takes, after decoding)."""
        return tuple(self.x_train.shape[1:])


@dataclass(frozen=True)
class TrainJob:
    """How a model is trained besides its recipe (the run's options)."""

    seed: int
    device: torch.device
    #: keep the weights at this many evenly spaced epochs (the last is final)
    n_checkpoints: int = 1
    progress: bool = False
    #: image-decoding processes
    workers: int | None = None
    #: called after each epoch with (epoch, mean training loss, seconds)
    on_epoch: Callable[[int, float, float], None] | None = None


@dataclass(frozen=True)
class ModelIdentity:
    """What identifies a kind's model in the ``train`` step's fingerprint (beside the data,
    the recipe, the checkpoints and the seed)."""

    #: the configuration it is built from: (model spec, checkpoint digest, finetune, encoder)
    config: tuple[object, ...]
    #: what its weights come from besides training (a pretrained encoder's digest, --transform)
    weights: tuple[object, ...] = ()


@runtime_checkable
class InputKind(Protocol):
    """A data kind, as the model sees it."""

    #: the ``LoadedData.kind`` it serves
    name: str

    def recipe(self) -> TrainRecipe:
        """The built-in training recipe of the built-in model (or a user's untrained one)."""
        ...

    def builtin_model(self, input_shape: tuple[int, ...], n_classes: int) -> nn.Module:
        """The built-in ``nn.Module`` for one sample of ``input_shape``."""
        ...

    def model_inputs(
        self, config: ComputeConfig, data: LoadedData, rd: RunDir, device: Any, progress: bool
    ) -> KindInputs:
        """What a model on this kind consumes by default for the train and test splits
        (tensors, encoder features or the image files), and which texts were truncated."""
        ...

    def encoder_pass(self, config: ComputeConfig) -> str | None:
        """What the encoder step encodes for these default inputs (``images``, ``texts``),
        None when they are no encoder's features."""
        ...


@runtime_checkable
class ModelKind(Protocol):
    """One way to obtain the run's model: the model step asks it for everything particular to
    the model (see :class:`BaseModelKind` for the common answers)."""

    name: str

    def matches(self, config: ComputeConfig, kind: str) -> bool:
        """Whether this kind builds the model of a run with ``config`` on data of ``kind``."""
        ...

    def preprocess(
        self, config: ComputeConfig, data: LoadedData, rd: RunDir, device: Any, progress: bool
    ) -> ModelInputs:
        """The inputs the model consumes (the data kind's, or the kind's own: token ids,
        files through an encoder's or the user's transform)."""
        ...

    def recipe(self, config: ComputeConfig, kind: str) -> TrainRecipe:
        """Its training recipe before ``--epochs`` / ``--lr`` are applied."""
        ...

    def build(
        self,
        config: ComputeConfig,
        kind: str,
        input_shape: tuple[int, ...],
        n_classes: int,
        train_inputs: ModelInput | None,
    ) -> nn.Module:
        """The untrained model (or the user's, checkpoint loaded)."""
        ...

    def identity(self, config: ComputeConfig) -> ModelIdentity:
        """What identifies the model in the ``train`` step's fingerprint."""
        ...

    def gradient_params(self, config: ComputeConfig) -> str:
        """The parameters whose gradients are taken with ``--params auto``."""
        ...

    def encoder_pass(self, config: ComputeConfig, kind: str) -> str | None:
        """What the encoder step encodes for this model's inputs (``images``, ``texts``; None:
        no pass, the model reads the data itself)."""
        ...

    def spec(self, config: ComputeConfig) -> str:
        """What the manifest calls the model (``builtin``, the ``--model`` factory, ...)."""
        ...

    def load(self, config: ComputeConfig, model: nn.Module) -> list[StateDict] | None:
        """The weights the kind brings (the user's checkpoint, loaded by :meth:`build`): the
        model is not trained then; None when it trains."""
        ...

    def train(
        self, model: nn.Module, inputs: ModelInputs, recipe: TrainRecipe, job: TrainJob
    ) -> list[StateDict]:
        """Train ``model`` in place; its state_dicts at each checkpoint (last = final)."""
        ...


class BaseModelKind:
    """The common answers of a :class:`ModelKind`: the data kind's inputs, training with Adam
    and cross-entropy (:func:`~ogad_core.engine.train.train_model`), the last layer's
    gradients, identified by the model options. A kind overrides what is its own."""

    name: str = ""

    def matches(self, config: ComputeConfig, kind: str) -> bool:
        raise NotImplementedError

    def recipe(self, config: ComputeConfig, kind: str) -> TrainRecipe:
        return input_kind(kind).recipe()

    def build(
        self,
        config: ComputeConfig,
        kind: str,
        input_shape: tuple[int, ...],
        n_classes: int,
        train_inputs: ModelInput | None,
    ) -> nn.Module:
        raise NotImplementedError

    def preprocess(
        self, config: ComputeConfig, data: LoadedData, rd: RunDir, device: Any, progress: bool
    ) -> ModelInputs:
        x_train, x_test, truncated = input_kind(data.kind).model_inputs(
            config, data, rd, device, progress
        )
        return with_labels(data, x_train, x_test, truncated)

    def identity(self, config: ComputeConfig) -> ModelIdentity:
        return ModelIdentity((config.model, None, config.finetune, config.encoder))

    def gradient_params(self, config: ComputeConfig) -> str:
        return "last"

    def encoder_pass(self, config: ComputeConfig, kind: str) -> str | None:
        return input_kind(kind).encoder_pass(config)

    def spec(self, config: ComputeConfig) -> str:
        return self.name

    def load(self, config: ComputeConfig, model: nn.Module) -> list[StateDict] | None:
        return None

    def train(
        self, model: nn.Module, inputs: ModelInputs, recipe: TrainRecipe, job: TrainJob
    ) -> list[StateDict]:
        from ogad_core.engine.train import train_model

        return train_model(
            model,
            inputs.x_train,
            inputs.y_train,
            recipe=recipe,
            seed=job.seed,
            device=job.device,
            n_checkpoints=job.n_checkpoints,
            progress=job.progress,
            workers=job.workers,
            on_epoch=job.on_epoch,
        )


def with_labels(
    data: LoadedData,
    x_train: ModelInput,
    x_test: ModelInput | None = None,
    truncated: np.ndarray | None = None,
) -> ModelInputs:
    """:class:`ModelInputs` of the given inputs with the data's labels as tensors."""
    import torch

    y_test = None if data.test is None else torch.as_tensor(data.test.labels)
    return ModelInputs(x_train, torch.as_tensor(data.train.labels), x_test, y_test, truncated)


#: data kind name -> its InputKind
INPUT_KINDS: dict[str, InputKind] = {}
#: model kinds, asked in order (the first that matches builds the model)
MODEL_KINDS: list[ModelKind] = []


def register_input_kind(kind: InputKind) -> InputKind:
    """Add a data kind (once per name); returns it."""
    if not isinstance(kind, InputKind):
        raise ConfigError(
            f"{kind!r} is not an InputKind (name, recipe, builtin_model, model_inputs, "
            "encoder_pass)"
        )
    if kind.name in INPUT_KINDS:
        raise ConfigError(f"a data kind named {kind.name!r} is registered already")
    INPUT_KINDS[kind.name] = kind
    return kind


def register_model_kind(kind: ModelKind, *, before: str | None = None) -> ModelKind:
    """Add a model kind, last or just before the kind named ``before``; returns it."""
    if not isinstance(kind, ModelKind):
        raise ConfigError(
            f"{kind!r} is not a ModelKind (name, matches, preprocess, recipe, build, identity, "
            "gradient_params, encoder_pass, spec, load, train; BaseModelKind has the common ones)"
        )
    if any(k.name == kind.name for k in MODEL_KINDS):
        raise ConfigError(f"a model kind named {kind.name!r} is registered already")
    names = [k.name for k in MODEL_KINDS]
    MODEL_KINDS.insert(names.index(before) if before in names else len(names), kind)
    return kind


def input_kind(name: str) -> InputKind:
    """The registered data kind ``name``; ModelError when there is none."""
    try:
        return INPUT_KINDS[name]
    except KeyError:
        known = ", ".join(INPUT_KINDS)
        raise ModelError(f"no model inputs for data kind {name!r} (known: {known})") from None


def model_kind_for(config: ComputeConfig, kind: str) -> ModelKind:
    """The first registered model kind that matches the run."""
    for model_kind in MODEL_KINDS:
        if model_kind.matches(config, kind):
            return model_kind
    raise ModelError(f"no model kind builds a model for data kind {kind!r}")


# the built-in kinds, each registered by its own module (model kinds: this order is the order
# they are asked in; ``builtin`` last, it takes every run)
from ogad_core.engine.kinds import (  # noqa: E402, F401, I001
    image,
    text,
    tabular,
    lora_model,
    user_model,
    last_block,
    features_head,
    builtin,
)
