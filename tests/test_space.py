"""The gradient-space package: the one PCA helper, the one kNN graph, and the one row store
(in memory or resumable on disk) that gradients, text embeddings and image features share."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ogad_core.run.store import ArrayRows, GradientStore, finished_rows, row_store
from ogad_core.space.knn import IVF_TRAIN_ITERATIONS, ivf_index, knn_graph
from ogad_core.space.pca import fit_sample, pca_transform


def _data(n: int = 300, d: int = 40, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(n, 5)) @ rng.normal(size=(5, d))).astype(np.float32)


def test_fit_sample_takes_all_rows_or_a_seeded_sorted_sample() -> None:
    np.testing.assert_array_equal(fit_sample(50, 50, seed=3), np.arange(50))
    picked = fit_sample(1000, 100, seed=3)
    assert len(picked) == 100 and (np.diff(picked) > 0).all()
    np.testing.assert_array_equal(picked, fit_sample(1000, 100, seed=3))


def test_pca_on_all_rows_is_sklearns_pca() -> None:
    from sklearn.decomposition import PCA

    X = _data()
    expected = PCA(5, svd_solver="randomized", random_state=0).fit_transform(X)
    got = pca_transform(X, 5, seed=0, fit_rows=10_000)
    assert got.dtype == np.float32 and got.shape == (300, 5)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def test_pca_fit_on_a_sample_keeps_distances_and_reads_rows_its_way() -> None:
    X = _data(n=600)
    Z = pca_transform(X, 5, seed=1, fit_rows=80)  # rank-5 data: any sample spans it
    d_pca = np.linalg.norm(Z[:50, None] - Z[None, :50], axis=-1)
    d_raw = np.linalg.norm(X[:50, None] - X[None, :50], axis=-1)
    np.testing.assert_allclose(d_pca, d_raw, rtol=1e-3, atol=1e-3 * d_raw.max())
    seen: list[int] = []

    def doubled(A: np.ndarray, rows: np.ndarray | slice) -> np.ndarray:
        seen.append(len(np.arange(len(A))[rows]))
        return 2 * np.asarray(A[rows], dtype=np.float32)

    Z2 = pca_transform(X, 5, seed=1, fit_rows=80, read=doubled)
    assert seen[0] == 80 and sum(seen[1:]) == 600
    np.testing.assert_allclose(np.abs(Z2), 2 * np.abs(Z), rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("exact", [True, False])
def test_knn_graph_lists_itself_first_then_the_nearest(exact: bool) -> None:
    X = _data(n=400, d=8)
    X[200:210] = X[:10]  # duplicates: their twin ties at distance 0
    dists, idx = knn_graph(X, 6, exact=exact)
    assert idx.shape == (400, 6) and idx.dtype == np.int32 and dists.dtype == np.float32
    np.testing.assert_array_equal(idx[:, 0], np.arange(400))
    brute = np.linalg.norm(X[:, None] - X[None], axis=-1)
    nearest_other = np.sort(brute, axis=1)[:, 1]
    found = np.isclose(dists[:, 1], nearest_other, rtol=1e-3, atol=1e-3)
    assert found.all() if exact else found.mean() > 0.95


def test_row_store_in_memory_and_on_disk_agree(tmp_path: Path) -> None:
    values = _data(n=20, d=6)
    memory = row_store(None, n_rows=20, n_cols=6, fingerprint="k")
    disk = row_store(tmp_path / "k.npy", n_rows=20, n_cols=6, fingerprint="k")
    assert isinstance(memory, ArrayRows) and isinstance(disk, GradientStore)
    for store in (memory, disk):
        store.write(np.arange(10, 20), values[10:])
        np.testing.assert_array_equal(store.pending(), np.arange(10))
    assert finished_rows(tmp_path / "k.npy", n_rows=20, fingerprint="k") is None  # unfinished
    for store in (memory, disk):
        store.write(np.arange(10), values[:10])
        np.testing.assert_array_equal(store.array(), values)
    back = finished_rows(tmp_path / "k.npy", n_rows=20, fingerprint="k")
    assert back is not None
    np.testing.assert_array_equal(back, values)
    assert finished_rows(tmp_path / "k.npy", n_rows=20, fingerprint="other") is None
    assert finished_rows(tmp_path / "missing.npy", n_rows=20, fingerprint="k") is None


def test_an_inverted_file_trained_briefly_finds_the_nearest_rows() -> None:
    """The inverted file's k-means lists, trained for IVF_TRAIN_ITERATIONS (10) iterations,
    not faiss's 25, still give the candidate search nearly every exact neighbour: 40,000
    rows of 16-d clustered data, each row's 6 nearest others."""
    import faiss

    rng = np.random.default_rng(0)
    centres = rng.normal(size=(200, 16)).astype(np.float32) * 4
    Z = (centres[rng.integers(0, 200, 40_000)] + rng.normal(size=(40_000, 16))).astype(np.float32)
    index = ivf_index(Z)
    assert index.cp.niter == IVF_TRAIN_ITERATIONS == 10
    _, found = index.search(Z[:2000], 7)
    exact = faiss.IndexFlatL2(16)
    exact.add(Z)
    _, truth = exact.search(Z[:2000], 7)
    recall = np.mean([len(set(f) & set(t)) / 7 for f, t in zip(found, truth, strict=True)])
    assert recall > 0.9, recall


def test_a_search_of_an_inverted_file_list_by_list_finds_what_a_search_in_row_order_does() -> None:
    """``ivf_self_search`` (every row of an inverted file searched in the order of its lists,
    for the cache) returns, in row order, exactly the distances and indices of the search of
    the rows in their own order."""
    from ogad_core.space.knn import hnsw_search, ivf_list_rows, ivf_self_search

    rng = np.random.default_rng(1)
    centres = rng.normal(size=(50, 16)).astype(np.float32) * 4
    Z = (centres[rng.integers(0, 50, 12_000)] + rng.normal(size=(12_000, 16))).astype(np.float32)
    index = ivf_index(Z)
    order = ivf_list_rows(index)
    assert np.array_equal(np.sort(order), np.arange(len(Z)))
    assert not np.array_equal(order, np.arange(len(Z)))  # the lists' order is another
    dist, idx = ivf_self_search(index, Z, 7)
    plain_dist, plain_idx = hnsw_search(index, Z, 7)
    assert np.array_equal(idx, plain_idx) and np.array_equal(dist, plain_dist)


def test_queries_searched_by_their_nearest_list_find_what_a_search_in_row_order_does() -> None:
    """``ivf_search_by_list`` (queries from outside the index, searched in the order of their
    nearest list, for the cache) returns, in row order, exactly the distances and indices of
    the search of the queries in their own order."""
    from ogad_core.space.knn import hnsw_search, ivf_search_by_list

    rng = np.random.default_rng(2)
    centres = rng.normal(size=(50, 16)).astype(np.float32) * 4
    Z = (centres[rng.integers(0, 50, 12_000)] + rng.normal(size=(12_000, 16))).astype(np.float32)
    Q = (centres[rng.integers(0, 50, 3_000)] + rng.normal(size=(3_000, 16))).astype(np.float32)
    index = ivf_index(Z)
    index.nprobe = 8
    nearest = index.quantizer.assign(Q, 1).ravel()
    assert not np.all(np.diff(nearest) >= 0)  # the queries' own order is not the lists'
    dist, idx = ivf_search_by_list(index, Q, 11)
    plain_dist, plain_idx = hnsw_search(index, Q, 11)
    assert np.array_equal(idx, plain_idx) and np.array_equal(dist, plain_dist)
