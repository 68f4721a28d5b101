"""The built-in model of the data kind (SmallCNN for images, an MLP for tabular data) with the
kind's recipe, trained on the data kind's inputs: every run no other model kind takes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ogad_core.engine.kinds import BaseModelKind, ModelInput, input_kind, register_model_kind

if TYPE_CHECKING:
    from torch import nn

    from ogad_core.options import ComputeConfig


class BuiltinModel(BaseModelKind):
    name = "builtin"

    def matches(self, config: ComputeConfig, kind: str) -> bool:
        return True

    def build(
        self,
        config: ComputeConfig,
        kind: str,
        input_shape: tuple[int, ...],
        n_classes: int,
        train_inputs: ModelInput | None,
    ) -> nn.Module:
        return input_kind(kind).builtin_model(input_shape, n_classes)


register_model_kind(BuiltinModel())
