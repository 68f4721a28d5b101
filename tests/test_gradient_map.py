"""The gradient map (PCA + UMAP): shape, determinism, memmaps, tiny inputs."""

from __future__ import annotations

import numpy as np
import pytest

from ogad_core.errors import ConfigError, DataError
from ogad_core.scoring import gradient_map as gm
from ogad_core.scoring.gradient_map import gradient_map


@pytest.fixture(scope="module")
def two_blobs() -> tuple[np.ndarray, np.ndarray]:
    """200 rows x 80 columns (> pca_dim, so PCA runs) in two well separated blobs."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 80)).astype(np.float32)
    blob = np.repeat([0, 1], 100)
    X[blob == 1] += 6.0
    X[:, 7] = 2.5  # a constant column
    return X, blob


@pytest.fixture(scope="module")
def blob_map(two_blobs) -> np.ndarray:
    return gradient_map(two_blobs[0], seed=0)  # the one slow call (numba compiles UMAP)


def test_map_shape_and_blobs(blob_map, two_blobs):
    _, blob = two_blobs
    assert blob_map.shape == (200, 2) and blob_map.dtype == np.float32
    assert np.isfinite(blob_map).all()
    centers = [blob_map[blob == b].mean(axis=0) for b in (0, 1)]
    spread = max(np.linalg.norm(blob_map[blob == b] - centers[b], axis=1).mean() for b in (0, 1))
    assert np.linalg.norm(centers[0] - centers[1]) > 3 * spread


def test_map_is_deterministic_for_a_seed(blob_map, two_blobs):
    X, _ = two_blobs
    np.testing.assert_array_equal(gradient_map(X, seed=0), blob_map)
    assert not np.allclose(gradient_map(X, seed=1), blob_map)


def test_constant_columns_are_ignored():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(60, 6)).astype(np.float32)
    padded = np.insert(X, [0, 3, 6], 4.0, axis=1)  # D = 9 <= pca_dim: no PCA
    np.testing.assert_array_equal(gradient_map(padded), gradient_map(X))
    np.testing.assert_array_equal(gradient_map(np.full((50, 9), 1.5)), np.zeros((50, 2)))


@pytest.mark.parametrize("n", [4, 5, 9, 16])
def test_small_inputs_reduce_neighbours(n):
    X = np.random.default_rng(n).normal(size=(n, 70)).astype(np.float32)
    coords = gradient_map(X, n_neighbors=15)
    assert coords.shape == (n, 2) and np.isfinite(coords).all()


def test_three_or_fewer_points_use_principal_axes():
    assert gradient_map(np.ones((1, 5))).tolist() == [[0.0, 0.0]]
    assert gradient_map(np.empty((0, 5))).shape == (0, 2)
    X = np.random.default_rng(2).normal(size=(3, 40))
    coords = gradient_map(X)
    assert coords.shape == (3, 2) and coords.dtype == np.float32
    # three points span a plane: the principal axes keep every pairwise distance
    for i, j in ((0, 1), (0, 2), (1, 2)):
        assert np.linalg.norm(coords[i] - coords[j]) == pytest.approx(
            np.linalg.norm(X[i] - X[j]), rel=1e-5
        )
    pair = gradient_map(np.array([[0.0, 0.0], [3.0, 4.0]]))
    assert np.linalg.norm(pair[0] - pair[1]) == pytest.approx(5.0)
    assert pair[:, 1].tolist() == [0.0, 0.0]


def test_memmap_pca_is_fit_on_a_subsample_and_applied_to_all_rows(tmp_path, monkeypatch):
    rng = np.random.default_rng(4)
    # rank-3 data in 120 columns: the top PCA axes keep all distances, fit on any subsample
    X = (rng.normal(size=(500, 3)) @ rng.normal(size=(3, 120))).astype(np.float32)
    path = tmp_path / "g.npy"
    np.save(path, X)
    mm = np.load(path, mmap_mode="r")
    monkeypatch.setattr(gm, "PCA_FIT_ELEMENTS", 100 * 120)  # fit PCA on 100 of the 500 rows
    monkeypatch.setattr(gm, "_CHUNK_BYTES", 33 * 120 * 4)  # and transform 33 rows at a time
    Z = gm._pca_reduce(mm, 10, seed=0)
    assert Z.shape == (500, 10)
    sub = rng.choice(500, size=40, replace=False)
    d_pca = np.linalg.norm(Z[sub, None] - Z[None, sub], axis=-1)
    d_raw = np.linalg.norm(X[sub, None] - X[None, sub], axis=-1)
    np.testing.assert_allclose(d_pca, d_raw, rtol=1e-3, atol=1e-3 * d_raw.max())
    np.testing.assert_array_equal(gm._pca_reduce(X, 10, seed=0), Z)


def test_bad_inputs():
    with pytest.raises(DataError, match="row 3"):
        gradient_map(np.where(np.arange(20)[:, None] == 3, np.nan, np.ones((20, 4))))
    with pytest.raises(DataError, match="2-D"):
        gradient_map(np.ones(5))
    with pytest.raises(ConfigError, match="n_neighbors"):
        gradient_map(np.ones((5, 5)), n_neighbors=1)
