"""A linear head on cached encoder features: the text head for texts, and for images with a
pretrained torchvision ``--encoder`` (closed-form last-layer gradients). The data kind makes the
features (:meth:`InputKind.model_inputs`); an image encoder's weights digest identifies it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ogad_core.engine.kinds import BaseModelKind, ModelIdentity, ModelInput, register_model_kind
from ogad_core.engine.kinds.image import encoder_identity
from ogad_core.errors import ModelError

if TYPE_CHECKING:
    from torch import nn

    from ogad_core.engine.train import TrainRecipe
    from ogad_core.options import ComputeConfig

#: the data kinds whose inputs are encoder features (images: only with an image --encoder)
FEATURE_KINDS = ("text", "image")


class FeaturesHead(BaseModelKind):
    name = "features-head"

    def matches(self, config: ComputeConfig, kind: str) -> bool:
        from ogad_core.engine.image_encoder import is_image_encoder

        if config.finetune or config.model or kind not in FEATURE_KINDS:
            return False
        return kind == FEATURE_KINDS[0] or is_image_encoder(config.encoder)

    def recipe(self, config: ComputeConfig, kind: str) -> TrainRecipe:
        """Per data kind: text embeddings get :data:`TEXT_HEAD_RECIPE`, image-encoder features
        :data:`IMAGE_HEAD_RECIPE` (light weight decay; see its docstring for the measurements)."""
        from ogad_core.engine.text_head import IMAGE_HEAD_RECIPE, TEXT_HEAD_RECIPE
        from ogad_core.engine.train import TrainRecipe

        recipe = TEXT_HEAD_RECIPE if kind == FEATURE_KINDS[0] else IMAGE_HEAD_RECIPE
        return TrainRecipe(**recipe)  # type: ignore[arg-type]

    def build(
        self,
        config: ComputeConfig,
        kind: str,
        input_shape: tuple[int, ...],
        n_classes: int,
        train_inputs: ModelInput | None,
    ) -> nn.Module:
        import torch

        from ogad_core.engine import text_head

        if train_inputs is not None and not isinstance(train_inputs, torch.Tensor):
            raise ModelError("the features head is trained on encoder features (a tensor)")
        return text_head.build_text_head(
            n_classes=n_classes,
            embeddings=train_inputs,
            in_features=input_shape[0],
            seed=config.seed,
        )

    def spec(self, config: ComputeConfig) -> str:
        """The image encoder (``builtin`` for the text head)."""
        from ogad_core.engine.image_encoder import is_image_encoder

        return str(config.encoder) if is_image_encoder(config.encoder) else "builtin"

    def identity(self, config: ComputeConfig) -> ModelIdentity:
        return ModelIdentity(super().identity(config).config, encoder_identity(config))


register_model_kind(FeaturesHead())
