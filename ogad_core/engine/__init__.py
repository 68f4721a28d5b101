"""The torch engine: models and their adapters, training recipes, per-sample gradients,
random projection, the sentence and image encoders. The only layer that imports torch."""
