"""The ``tabular`` data kind (feature vectors, e.g. ``moons``): an MLP and its recipe; the
inputs are the arrays as tensors."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ogad_core.engine.kinds import KindInputs, register_input_kind

if TYPE_CHECKING:
    from torch import nn

    from ogad_core.data.loaders import LoadedData
    from ogad_core.engine.train import TrainRecipe
    from ogad_core.options import ComputeConfig
    from ogad_core.run.rundir import RunDir


class TabularKind:
    name = "tabular"

    def recipe(self) -> TrainRecipe:
        from ogad_core.engine.train import TrainRecipe

        # 50 epochs: on the paper's moons study 200 epochs memorised 26% of the flipped labels
        # (10% at 50) and lowered both detection and test accuracy; docs/benchmarks.md
        return TrainRecipe(epochs=50, lr=1e-2, weight_decay=0.0, batch_size=32)

    def builtin_model(self, input_shape: tuple[int, ...], n_classes: int) -> nn.Module:
        from ogad_core.engine.models import MLP

        return MLP(in_features=input_shape[0], n_classes=n_classes, hidden=(64, 64))

    def model_inputs(
        self, config: ComputeConfig, data: LoadedData, rd: RunDir, device: Any, progress: bool
    ) -> KindInputs:
        import torch

        x_test = None if data.test is None else torch.as_tensor(data.test.inputs)
        return torch.as_tensor(data.train.inputs), x_test, None

    def encoder_pass(self, config: ComputeConfig) -> str | None:
        """None: the features are the data's own."""
        return None


register_input_kind(TabularKind())
