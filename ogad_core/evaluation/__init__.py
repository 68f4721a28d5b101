"""Evaluation against known label noise: the ``evaluation.json`` report, baselines, retraining.

* ``schema``     the report's typed schema (dataclasses, to_json / from_json, version); torch-free
* ``plans``      which samples each retraining keeps (trim the top k%, random, oracles)
* ``context``    the run re-loaded for training (data checked, inputs, recipe, device)
* ``baselines``  cleanlab (K-fold CV) and TracIn, merged into scores.parquet
* ``retrain``    trim, retrain, held-out test accuracy over seeds
* ``cost``       timings, total compute per method, the quality bar against cleanlab
* ``formatting`` the text tables ``ogad evaluate`` prints
* ``report``     ``evaluate_run``: the orchestrator that writes ``evaluation.json``

This package's ``__init__`` and ``schema`` stay torch-free; training imports the engine when it
runs.
"""
