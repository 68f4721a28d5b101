"""``--finetune last-block``: a pretrained torchvision encoder whose last block and a new head
train on the images."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ogad_core.engine.kinds import register_model_kind

if TYPE_CHECKING:
    from ogad_core.engine.train import TrainRecipe
    from ogad_core.options import ComputeConfig


def last_block_recipe() -> TrainRecipe:
    """A pretrained block and a head: few epochs, low learning rate."""
    from ogad_core.engine.train import TrainRecipe

    return TrainRecipe(epochs=3, lr=1e-4, weight_decay=1e-4, batch_size=32)


class LastBlockModel:
    name = "last-block"

    def matches(self, config: ComputeConfig, kind: str) -> bool:
        return config.finetune == "last-block"

    def recipe(self, config: ComputeConfig, kind: str) -> TrainRecipe:
        return last_block_recipe()

    def build(
        self,
        config: ComputeConfig,
        kind: str,
        input_shape: tuple[int, ...],
        n_classes: int,
        train_inputs: Any,
    ) -> Any:
        from ogad_core.engine.image_encoder import build_encoder_classifier

        model, _ = build_encoder_classifier(
            str(config.encoder), weights=config.weights, n_classes=n_classes, seed=config.seed
        )
        return model


register_model_kind(LastBlockModel())
