"""The ``text`` data kind: the texts become sentence-encoder features (cached in the run,
on Ray with ``--engine ray``) for the text head (LoRA's model kind tokenizes them instead).
There is no built-in model on raw texts: the features head (or LoRA) builds the model."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ogad_core.engine.kinds import KindInputs, register_input_kind
from ogad_core.errors import ModelError

if TYPE_CHECKING:
    from torch import nn

    from ogad_core.data.loaders import LoadedData
    from ogad_core.engine.train import TrainRecipe
    from ogad_core.options import ComputeConfig
    from ogad_core.run.rundir import RunDir


class TextKind:
    name = "text"

    def recipe(self) -> TrainRecipe:
        from ogad_core.engine.train import TrainRecipe

        return TrainRecipe(epochs=20, lr=1e-3, weight_decay=1e-4, batch_size=64)

    def builtin_model(self, input_shape: tuple[int, ...], n_classes: int) -> nn.Module:
        raise ModelError(f"no built-in model for data kind {self.name!r}")

    def model_inputs(
        self, config: ComputeConfig, data: LoadedData, rd: RunDir, device: Any, progress: bool
    ) -> KindInputs:
        import torch

        from ogad_core.engine import text_encoder

        encoder = text_encoder.resolve_encoder(config.encoder)
        texts = list(data.train.inputs) + (list(data.test.inputs) if data.test is not None else [])
        n, has_test = len(data.train), data.test is not None
        emb = _encode(texts, encoder, config, rd, device, progress)
        flags = text_encoder.truncation_flags(list(data.train.inputs), encoder=encoder)
        emb_t = torch.as_tensor(np.asarray(emb, dtype=np.float32))
        return emb_t[:n], (emb_t[n:] if has_test else None), np.asarray(flags)

    def encoder_pass(self, config: ComputeConfig) -> str | None:
        """The sentence encoder's features of every text."""
        return "texts"


def _encode(
    texts: list[str], encoder: Any, config: ComputeConfig, rd: RunDir, device: Any, progress: bool
) -> np.ndarray:
    """(N, E) sentence features of ``texts`` (the encoder step's, cached in the run's
    embeddings/; computed by the executor of ``--engine`` when not there)."""
    from ogad_core.engine import text_encoder
    from ogad_core.engine.executors import executor_for

    return text_encoder.encode_texts(
        texts,
        encoder=encoder,
        batch_size=64,
        device=str(device),
        cache_dir=rd.embeddings_dir,
        progress=progress,
        executor=executor_for(config, progress=progress),
    )


register_input_kind(TextKind())
