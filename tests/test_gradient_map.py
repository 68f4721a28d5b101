"""The gradient map (PCA + UMAP): shape, determinism, memmaps, tiny inputs."""

from __future__ import annotations

import numpy as np
import pytest

from ogad_core import _internal
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
    monkeypatch.setattr(_internal, "CHUNK_BYTES", 33 * 120 * 4)  # and transform 33 rows a time
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


# ---- at scale: approximate kNN graph, fit on a subsample + placement ----------------------


def _clusters(n: int, d: int = 20, k: int = 4, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    label = rng.integers(0, k, n)
    X = rng.normal(size=(n, d)).astype(np.float32) + 8.0 * np.eye(k, d, dtype=np.float32)[label]
    return X, label


def test_the_approximate_graph_recalls_the_exact_neighbours(monkeypatch):
    X, _ = _clusters(3000)
    exact_d, exact_i = gm._knn_graph(X, 15)
    monkeypatch.setattr(gm, "ANN_MIN_ROWS", 1000)
    approx_d, approx_i = gm._knn_graph(X, 15)
    assert approx_i.shape == (3000, 15) and approx_i.dtype == np.int32
    np.testing.assert_array_equal(approx_i[:, 0], np.arange(3000))  # itself first
    assert (np.diff(approx_d, axis=1) >= -1e-5).all()  # sorted by distance
    recall = np.mean([len(set(a) & set(b)) / 15 for a, b in zip(exact_i, approx_i, strict=True)])
    assert recall >= 0.9
    nearest_other_found = np.isclose(approx_d[:, 1], exact_d[:, 1], rtol=1e-4)
    assert nearest_other_found.mean() > 0.99


def test_duplicate_rows_still_list_themselves_first(monkeypatch):
    X, _ = _clusters(600)
    X[300:] = X[:300]  # every row has a twin at distance 0
    monkeypatch.setattr(gm, "ANN_MIN_ROWS", 100)
    dists, indices = gm._knn_graph(X, 5)
    np.testing.assert_array_equal(indices[:, 0], np.arange(600))
    assert (dists[:, :2] == 0).all()


def test_placement_weights_favour_the_nearest_neighbour():
    coords = np.array([[[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]]], dtype=np.float32)
    equal = gm._place_by_neighbours(np.array([[1.0, 1.0, 1.0]], dtype=np.float32), coords)
    np.testing.assert_allclose(equal, [[10 / 3, 10 / 3]], rtol=1e-6)
    near = gm._place_by_neighbours(np.array([[0.1, 2.0, 2.0]], dtype=np.float32), coords)
    assert np.linalg.norm(near[0]) < 0.5 * np.linalg.norm(equal[0])  # pulled towards (0, 0)


def test_subsample_fit_places_every_row_with_its_cluster(monkeypatch):
    X, label = _clusters(1200, k=3, seed=2)
    monkeypatch.setattr(gm, "ANN_MIN_ROWS", 200)
    monkeypatch.setattr(gm, "UMAP_FIT_ROWS", 400)
    xy = gradient_map(X, seed=0)
    assert xy.shape == (1200, 2) and np.isfinite(xy).all()
    centers = np.stack([xy[label == c].mean(axis=0) for c in range(3)])
    nearest_center = np.linalg.norm(xy[:, None, :] - centers[None], axis=2).argmin(axis=1)
    assert (nearest_center == label).mean() > 0.98
    np.testing.assert_array_equal(gradient_map(X, seed=0), xy)  # reproducible for a seed
