"""The model's penultimate features ``h``, recovered from the run's last-layer gradients.

A last-layer gradient row is ``[(p - onehot(y)) ⊗ h, p - onehot(y)]`` (weight then bias, the
layout of :mod:`ogad_core.engine.gradients`), so ``h = G_W[c] / G_b[c]`` for any class ``c``
with ``G_b[c] != 0``; the class with the largest ``|G_b[c]|`` is the best conditioned. No model
and no torch are needed: ``features.npy`` is written through the resumable
:class:`~ogad_core.run.store.GradientStore` and reused while the gradients are unchanged.
Runs whose gradients are projected, or taken w.r.t. other parameters, have no features here.
"""

from __future__ import annotations

import numpy as np

from ogad_core._internal import log
from ogad_core.options import fingerprint
from ogad_core.run.manifest import Manifest
from ogad_core.run.rundir import RunDir
from ogad_core.run.store import GradientStore

#: rows recovered per chunk (bounded memory on a memory-mapped gradient matrix)
CHUNK_ROWS = 8192


def feature_dim(manifest: Manifest) -> int | None:
    """H when the run's stored gradients are unprojected last-layer ones with a bias, else None."""
    dims = manifest.dims or {}
    n_classes = len(manifest.label_names or [])
    stored = int(dims.get("stored") or 0)
    if manifest.params != "last" or dims.get("proj_dim") or n_classes < 2 or stored <= n_classes:
        return None
    if (stored - n_classes) % n_classes:
        return None
    return (stored - n_classes) // n_classes


def features_from_gradients(grads: np.ndarray, n_classes: int) -> np.ndarray:
    """(B, H) float32 features from (B, C * H + C) last-layer gradients.

    A row whose bias gradient is all zero (a sample fitted to float precision) gives zeros."""
    g = np.asarray(grads, dtype=np.float64)
    n, d = g.shape
    h_dim = (d - n_classes) // n_classes
    dz = g[:, n_classes * h_dim :]
    best = np.abs(dz).argmax(axis=1)
    rows = np.arange(n)
    denom = dz[rows, best]
    weights = g[:, : n_classes * h_dim].reshape(n, n_classes, h_dim)[rows, best]
    safe = np.where(denom == 0, 1.0, denom)
    out = weights / safe[:, None]
    out[denom == 0] = 0.0
    return out.astype(np.float32)


def ensure_features(rd: RunDir, manifest: Manifest) -> np.ndarray | None:
    """(N, H) features (memory-mapped), recovered once into features.npy; None when the run's
    gradients do not hold them (see :func:`feature_dim`)."""
    h_dim = feature_dim(manifest)
    if h_dim is None:
        return None
    n, n_classes = manifest.n_samples, len(manifest.label_names)
    fp = fingerprint("features", manifest.step_fingerprint("gradients"))
    store = GradientStore(rd.features_path, n_rows=n, n_cols=h_dim, fingerprint=fp)
    if not store.complete:
        log.info(f"issues: recovering the model's {h_dim}-d features from the gradients")
        grads = np.load(rd.gradients_path, mmap_mode="r")
        for rows in _chunks(store.pending()):
            store.write(rows, features_from_gradients(grads[rows], n_classes))
    return store.array()


def _chunks(rows: np.ndarray) -> list[np.ndarray]:
    return [rows[i : i + CHUNK_ROWS] for i in range(0, len(rows), CHUNK_ROWS)]
