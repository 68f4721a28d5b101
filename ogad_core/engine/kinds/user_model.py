"""``--model module:factory`` (``--checkpoint FILE.pt``): the user's own model."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ogad_core.engine.kinds import input_kind, register_model_kind

if TYPE_CHECKING:
    from ogad_core.engine.train import TrainRecipe
    from ogad_core.options import ComputeConfig


class UserModel:
    name = "user"

    def matches(self, config: ComputeConfig, kind: str) -> bool:
        return bool(config.model)

    def recipe(self, config: ComputeConfig, kind: str) -> TrainRecipe:
        """The data kind's built-in recipe (the last-block one with ``--finetune last-block``)."""
        if config.finetune == "last-block":
            from ogad_core.engine.kinds.last_block import last_block_recipe

            return last_block_recipe()
        return input_kind(kind).recipe()

    def build(
        self,
        config: ComputeConfig,
        kind: str,
        input_shape: tuple[int, ...],
        n_classes: int,
        train_inputs: Any,
    ) -> Any:
        from ogad_core.engine import models

        ckpt = Path(config.checkpoint) if config.checkpoint else None
        return models.build_user_model(
            str(config.model), n_classes=n_classes, input_shape=input_shape, checkpoint=ckpt
        )


register_model_kind(UserModel())
