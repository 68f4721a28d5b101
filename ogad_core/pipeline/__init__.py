"""The pipeline that ``ogad compute`` runs: data -> model -> predictions -> gradients -> scores
-> map, each step cached in the run directory under a fingerprint of its inputs."""

from ogad_core.pipeline.steps import compute, load_embeddings, make_map, score

__all__ = ["compute", "load_embeddings", "make_map", "score"]
