"""Data kinds and model kinds as objects, each in its own module of this package and registered
once; the model step and the data step ask these registries instead of branching on names.

* :class:`InputKind` — what a data kind (``LoadedData.kind``: ``image``, ``text``,
  ``tabular``) means to the model: the inputs it consumes, its built-in model and the
  built-in training recipe.
* :class:`ModelKind` — one way to get the run's model (built-in, a head on encoder features,
  LoRA, a fine-tuned last block, the user's ``--model``): whether it applies to a run
  configuration, its training recipe, and building it.

A new kind is one module plus one registration (``register_input_kind(MyKind())`` or
``register_model_kind(MyModel(), before="builtin")``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from ogad_core.errors import ConfigError, ModelError

if TYPE_CHECKING:
    from ogad_core.data.loaders import LoadedData
    from ogad_core.engine.train import TrainRecipe
    from ogad_core.options import ComputeConfig
    from ogad_core.run.rundir import RunDir

__all__ = [
    "INPUT_KINDS",
    "MODEL_KINDS",
    "InputKind",
    "KindInputs",
    "ModelKind",
    "input_kind",
    "model_kind_for",
    "register_input_kind",
    "register_model_kind",
]

#: (train inputs, test inputs or None, (N,) bool truncation flags or None)
KindInputs = tuple[Any, Any, Any]


@runtime_checkable
class InputKind(Protocol):
    """A data kind, as the model sees it."""

    #: the ``LoadedData.kind`` it serves
    name: str

    def recipe(self) -> TrainRecipe:
        """The built-in training recipe of the built-in model (or a user's untrained one)."""
        ...

    def builtin_model(self, input_shape: tuple[int, ...], n_classes: int) -> Any:
        """The built-in ``nn.Module`` for one sample of ``input_shape``."""
        ...

    def model_inputs(
        self, config: ComputeConfig, data: LoadedData, rd: RunDir, device: Any, progress: bool
    ) -> KindInputs:
        """What the model consumes for the train and test splits (tensors, streamed batches or
        token ids), and which texts were truncated."""
        ...


@runtime_checkable
class ModelKind(Protocol):
    """One way to obtain the run's model."""

    name: str

    def matches(self, config: ComputeConfig, kind: str) -> bool:
        """Whether this kind builds the model of a run with ``config`` on data of ``kind``."""
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
        train_inputs: Any,
    ) -> Any:
        """The untrained model (or the user's, checkpoint loaded)."""
        ...


#: data kind name -> its InputKind
INPUT_KINDS: dict[str, InputKind] = {}
#: model kinds, asked in order (the first that matches builds the model)
MODEL_KINDS: list[ModelKind] = []


def register_input_kind(kind: InputKind) -> InputKind:
    """Add a data kind (once per name); returns it."""
    if not isinstance(kind, InputKind):
        raise ConfigError(f"{kind!r} is not an InputKind (name, recipe, builtin_model, ...)")
    if kind.name in INPUT_KINDS:
        raise ConfigError(f"a data kind named {kind.name!r} is registered already")
    INPUT_KINDS[kind.name] = kind
    return kind


def register_model_kind(kind: ModelKind, *, before: str | None = None) -> ModelKind:
    """Add a model kind, last or just before the kind named ``before``; returns it."""
    if not isinstance(kind, ModelKind):
        raise ConfigError(f"{kind!r} is not a ModelKind (name, matches, recipe, build)")
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
