"""Scoring gradient embeddings, torch-free: outlier detectors (scikit-learn's outlier API),
detection metrics, and the 2-D map."""
