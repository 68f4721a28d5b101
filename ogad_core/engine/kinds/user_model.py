"""``--model module:factory`` (``--checkpoint FILE.pt``): the user's own model, on the data
kind's inputs, the user's ``--transform`` or a fine-tuned encoder's; with a checkpoint its
weights are loaded, never trained."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ogad_core.engine.kinds import (
    BaseModelKind,
    ModelIdentity,
    ModelInput,
    ModelInputs,
    StateDict,
    register_model_kind,
    with_labels,
)
from ogad_core.engine.kinds.image import ImageKind, encoder_identity, encoder_inputs, image_files

if TYPE_CHECKING:
    from torch import nn

    from ogad_core.data.loaders import LoadedData
    from ogad_core.engine.train import TrainRecipe
    from ogad_core.options import ComputeConfig
    from ogad_core.run.rundir import RunDir


def file_fingerprint(path: str | None) -> str | None:
    """sha256 (16 hex chars) of a weights file, None when no file is given."""
    import hashlib

    from ogad_core.errors import ModelError

    if not path:
        return None
    p = Path(path).expanduser()
    if not p.is_file():
        raise ModelError(f"checkpoint: file not found: {p}", param="checkpoint")
    return hashlib.sha256(p.read_bytes()).hexdigest()[:16]


def transforms_files(config: ComputeConfig, kind: str) -> bool:
    """Whether ``--transform`` reads the image files (images without an image encoder's
    features; other data kinds keep their own inputs)."""
    from ogad_core.engine import image_encoder

    if not config.transform or kind != ImageKind.name:
        return False
    return not image_encoder.is_image_encoder(config.encoder)


class UserModel(BaseModelKind):
    name = "user"

    def matches(self, config: ComputeConfig, kind: str) -> bool:
        return bool(config.model)

    def preprocess(
        self, config: ComputeConfig, data: LoadedData, rd: RunDir, device: Any, progress: bool
    ) -> ModelInputs:
        """The encoder's transforms with ``--finetune last-block``; the image files through
        ``--transform`` (unless an image encoder makes features); else the data kind's."""
        from ogad_core.engine import image_encoder

        if config.finetune == "last-block":
            return encoder_inputs(config, data, rd)
        if transforms_files(config, data.kind):
            from ogad_core.engine.datasets import ImageBatches

            tf = image_encoder.load_transform(str(config.transform))

            def batches(split: Any) -> ModelInput:
                return ImageBatches(image_files(split, rd, config), split.labels, transform=tf)

            x_test = None if data.test is None else batches(data.test)
            return with_labels(data, batches(data.train), x_test)
        return super().preprocess(config, data, rd, device, progress)

    def encoder_pass(self, config: ComputeConfig, kind: str) -> str | None:
        """None with ``--finetune last-block`` (the files go through the encoder's
        transforms) or ``--transform`` on image files; else the data kind's."""
        if config.finetune == "last-block" or transforms_files(config, kind):
            return None
        return super().encoder_pass(config, kind)

    def recipe(self, config: ComputeConfig, kind: str) -> TrainRecipe:
        """The data kind's built-in recipe (the last-block one with ``--finetune last-block``)."""
        if config.finetune == "last-block":
            from ogad_core.engine.kinds.last_block import last_block_recipe

            return last_block_recipe()
        return super().recipe(config, kind)

    def build(
        self,
        config: ComputeConfig,
        kind: str,
        input_shape: tuple[int, ...],
        n_classes: int,
        train_inputs: ModelInput | None,
    ) -> nn.Module:
        from ogad_core.engine import models

        ckpt = Path(config.checkpoint) if config.checkpoint else None
        return models.build_user_model(
            str(config.model), n_classes=n_classes, input_shape=input_shape, checkpoint=ckpt
        )

    def spec(self, config: ComputeConfig) -> str:
        return str(config.model)

    def identity(self, config: ComputeConfig) -> ModelIdentity:
        """The factory, the checkpoint file's digest, the encoder's and the transform."""
        ident = (config.model, file_fingerprint(config.checkpoint), config.finetune, config.encoder)
        transform = (f"transform:{config.transform}",) if config.transform else ()
        return ModelIdentity(ident, encoder_identity(config) + transform)

    def load(self, config: ComputeConfig, model: nn.Module) -> list[StateDict] | None:
        """With ``--checkpoint``: its weights (loaded by :meth:`build`), as they are."""
        if not config.checkpoint:
            return None
        return [{k: v.detach().clone() for k, v in model.state_dict().items()}]


register_model_kind(UserModel())
