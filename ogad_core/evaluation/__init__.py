"""Evaluation against known label noise: the ``evaluation.json`` report, baselines, retraining.

This package's ``__init__`` stays torch-free; retraining imports the engine when it runs.
"""
