"""The pipeline that ``ogad compute`` runs: data -> model -> predictions -> gradients -> scores
-> map -> evidence, each step a callable over a :class:`~ogad_core.pipeline.state.RunState` that
returns its manifest record, reused under a fingerprint of its inputs (``workflow.steps`` is the
list). The score, map and evidence steps need only the run's files, so ``ogad score`` and
``ogad map`` run the same steps standalone (``score_step.run_standalone``: one lock, one RunDir).

``ogad_core.pipeline`` itself is torch-free to import; the model and gradient steps import the
engine when they run.
"""

from ogad_core.pipeline.data_step import load_run_data
from ogad_core.pipeline.model_step import build_model, effective_params, model_inputs, model_recipe
from ogad_core.pipeline.score_step import load_embeddings, make_map, score
from ogad_core.pipeline.workflow import compute

__all__ = [
    "build_model",
    "compute",
    "effective_params",
    "load_embeddings",
    "load_run_data",
    "make_map",
    "model_inputs",
    "model_recipe",
    "score",
]
