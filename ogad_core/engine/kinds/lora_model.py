"""``--finetune lora``: the text encoder with LoRA adapters and a classifier, trained together
on token ids; the gradients are the adapters'."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ogad_core.engine.kinds import (
    BaseModelKind,
    ModelInput,
    ModelInputs,
    register_model_kind,
    with_labels,
)
from ogad_core.errors import ModelError

if TYPE_CHECKING:
    from torch import nn

    from ogad_core.data.loaders import LoadedData
    from ogad_core.engine.train import TrainRecipe
    from ogad_core.options import ComputeConfig
    from ogad_core.run.rundir import RunDir

#: the data kind LoRA fine-tunes an encoder of
TEXT_KIND = "text"


class LoraModel(BaseModelKind):
    name = "lora"

    def matches(self, config: ComputeConfig, kind: str) -> bool:
        return config.finetune == "lora"

    def preprocess(
        self, config: ComputeConfig, data: LoadedData, rd: RunDir, device: Any, progress: bool
    ) -> ModelInputs:
        """Token ids of every text (train then test), and which texts were cut."""
        from ogad_core.engine import lora, text_encoder

        if data.kind != TEXT_KIND:
            raise ModelError(
                f"finetune lora fine-tunes a text encoder; the data is {data.kind}",
                param="finetune",
            )
        encoder = text_encoder.resolve_encoder(config.encoder)
        texts = list(data.train.inputs) + (list(data.test.inputs) if data.test is not None else [])
        ids, flags = lora.tokenize(texts, encoder=encoder)
        n = len(data.train)
        x_test = ids[n:] if data.test is not None else None
        return with_labels(data, ids[:n], x_test, np.asarray(flags[:n], dtype=bool))

    def encoder_pass(self, config: ComputeConfig, kind: str) -> str | None:
        """None: the model reads the data itself (its encoder trains)."""
        return None

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
        train_inputs: ModelInput | None,
    ) -> nn.Module:
        from ogad_core.engine import lora, text_encoder

        encoder = text_encoder.resolve_encoder(config.encoder)
        return lora.build_lora_classifier(encoder=encoder, n_classes=n_classes, seed=config.seed)

    def spec(self, config: ComputeConfig) -> str:
        return "lora:" + (config.encoder or "default")

    def gradient_params(self, config: ComputeConfig) -> str:
        """The LoRA adapters."""
        from ogad_core.engine.lora import lora_param_patterns

        return ",".join(lora_param_patterns())


register_model_kind(LoraModel())
