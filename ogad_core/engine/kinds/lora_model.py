"""``--finetune lora``: the text encoder with LoRA adapters and a classifier, trained together."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ogad_core.engine.kinds import register_model_kind

if TYPE_CHECKING:
    from ogad_core.engine.train import TrainRecipe
    from ogad_core.options import ComputeConfig


class LoraModel:
    name = "lora"

    def matches(self, config: ComputeConfig, kind: str) -> bool:
        return config.finetune == "lora"

    def recipe(self, config: ComputeConfig, kind: str) -> TrainRecipe:
        from ogad_core.engine.train import TrainRecipe

        # the encoder trains too: few epochs on CPU
        return TrainRecipe(epochs=3, lr=5e-4, weight_decay=0.0, batch_size=32)

    def build(
        self,
        config: ComputeConfig,
        kind: str,
        input_shape: tuple[int, ...],
        n_classes: int,
        train_inputs: Any,
    ) -> Any:
        from ogad_core.engine import lora, text_encoder

        encoder = text_encoder.resolve_encoder(config.encoder)
        return lora.build_lora_classifier(encoder=encoder, n_classes=n_classes, seed=config.seed)


register_model_kind(LoraModel())
