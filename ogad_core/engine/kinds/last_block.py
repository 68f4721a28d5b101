"""``--finetune last-block``: a pretrained torchvision encoder whose last block and a new head
train on the images, decoded through the encoder's own transforms."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ogad_core.engine.kinds import (
    BaseModelKind,
    ModelIdentity,
    ModelInput,
    ModelInputs,
    register_model_kind,
)
from ogad_core.engine.kinds.image import encoder_identity, encoder_inputs

if TYPE_CHECKING:
    from torch import nn

    from ogad_core.data.loaders import LoadedData
    from ogad_core.engine.train import TrainRecipe
    from ogad_core.options import ComputeConfig
    from ogad_core.run.rundir import RunDir


def last_block_recipe() -> TrainRecipe:
    """A pretrained block and a head: few epochs, low learning rate."""
    from ogad_core.engine.train import TrainRecipe

    return TrainRecipe(epochs=3, lr=1e-4, weight_decay=1e-4, batch_size=32)


class LastBlockModel(BaseModelKind):
    name = "last-block"

    def matches(self, config: ComputeConfig, kind: str) -> bool:
        return config.finetune == "last-block"

    def preprocess(
        self, config: ComputeConfig, data: LoadedData, rd: RunDir, device: Any, progress: bool
    ) -> ModelInputs:
        return encoder_inputs(config, data, rd)

    def encoder_pass(self, config: ComputeConfig, kind: str) -> str | None:
        """None: the model reads the data itself (its encoder trains)."""
        return None

    def recipe(self, config: ComputeConfig, kind: str) -> TrainRecipe:
        return last_block_recipe()

    def build(
        self,
        config: ComputeConfig,
        kind: str,
        input_shape: tuple[int, ...],
        n_classes: int,
        train_inputs: ModelInput | None,
    ) -> nn.Module:
        from ogad_core.engine.image_encoder import build_encoder_classifier

        model, _ = build_encoder_classifier(
            str(config.encoder), weights=config.weights, n_classes=n_classes, seed=config.seed
        )
        return model

    def spec(self, config: ComputeConfig) -> str:
        return f"last-block:{config.encoder}"

    def identity(self, config: ComputeConfig) -> ModelIdentity:
        return ModelIdentity(super().identity(config).config, encoder_identity(config))


register_model_kind(LastBlockModel())
