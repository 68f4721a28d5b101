"""ogad: Outlier Gradient Analysis — find the training samples that hurt a model.

``compute_gradients`` is imported lazily so that torch-free users (the dashboard, export)
never load torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["compute_gradients", "per_sample_gradients_loop", "RunDir", "__version__"]

if TYPE_CHECKING:
    from ogad_core.engine.gradients import compute_gradients, per_sample_gradients_loop
    from ogad_core.run.rundir import RunDir


def __getattr__(name: str) -> Any:
    if name in ("compute_gradients", "per_sample_gradients_loop"):
        from ogad_core.engine import gradients

        return getattr(gradients, name)
    if name == "RunDir":
        from ogad_core.run.rundir import RunDir

        return RunDir
    raise AttributeError(f"module 'ogad_core' has no attribute {name!r}")
