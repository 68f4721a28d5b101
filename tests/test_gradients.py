"""Per-sample gradients: closed form == autograd, vmap == loop, projection, determinism."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from ogad_core import compute_gradients, per_sample_gradients_loop
from ogad_core.cli import user_message
from ogad_core.engine.gradients import gradient_dim, select_params
from ogad_core.engine.models import MLP, SmallCNN
from ogad_core.engine.projection import RandomProjector
from ogad_core.errors import ConfigError
from ogad_core.run.store import GradientStore


def _images(n: int = 24, seed: int = 0) -> TensorDataset:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, 12, 12, generator=g)
    return TensorDataset(x, torch.randint(0, 5, (n,), generator=g))


def _cnn(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return SmallCNN(in_channels=1, n_classes=5, hidden=16)


class ScaledHead(nn.Module):
    """The head's output is transformed after the last Linear (temperature + no bias)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(1)
        self.body = nn.Sequential(nn.Linear(6, 8), nn.Tanh())
        self.out = nn.Linear(8, 3, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.body(x)) / 0.7


def test_closed_form_equals_autograd_per_sample() -> None:
    model, ds = _cnn(), _images()
    fast = compute_gradients(model, ds, params="last", batch_size=7, device="cpu", progress=False)
    slow = per_sample_gradients_loop(model, ds, params="last")
    assert fast.shape == (24, 5 * (16 + 1))
    np.testing.assert_allclose(fast, slow, rtol=1e-4, atol=1e-6)


def test_closed_form_matches_the_formula() -> None:
    torch.manual_seed(0)
    model = MLP(in_features=3, n_classes=4, hidden=(5,))
    x, y = torch.randn(10, 3), torch.randint(0, 4, (10,))
    g = compute_gradients(model, TensorDataset(x, y), params="last", progress=False)
    with torch.no_grad():
        h = model.body(x)
        p = torch.softmax(model.head(h), dim=1)
    p[torch.arange(10), y] -= 1
    expected = torch.cat([(p[:, :, None] * h[:, None, :]).reshape(10, -1), p], dim=1)
    np.testing.assert_allclose(g, expected.numpy(), rtol=1e-5, atol=1e-7)


def test_head_output_transformed_uses_exact_autograd_path() -> None:
    model = ScaledHead()
    ds = TensorDataset(torch.randn(9, 6), torch.randint(0, 3, (9,)))
    fast = compute_gradients(model, ds, params="last", batch_size=4, progress=False)
    slow = per_sample_gradients_loop(model, ds, params="last")
    assert fast.shape == (9, 3 * 8)
    np.testing.assert_allclose(fast, slow, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("params", ["all", "hidden,head", "features.3", "*.bias"])
def test_vmap_equals_loop(params: str) -> None:
    model, ds = _cnn(), _images(10)
    fast = compute_gradients(model, ds, params=params, batch_size=4, method="vmap", progress=False)
    slow = per_sample_gradients_loop(model, ds, params=params)
    assert fast.shape == (10, gradient_dim(model, params))
    np.testing.assert_allclose(fast, slow, rtol=1e-4, atol=1e-6)


def test_select_params_orders_and_errors() -> None:
    model = _cnn()
    names = [n for n, _ in select_params(model, "last")]
    assert names == ["head.weight", "head.bias"]
    assert [n for n, _ in select_params(model, "*.bias")] == [
        n for n, _ in model.named_parameters() if n.endswith(".bias")
    ]
    with pytest.raises(ConfigError, match="no parameter matches nope"):
        select_params(model, "head,nope")


def test_projection_preserves_norms_and_inner_products() -> None:
    rng = np.random.default_rng(0)
    g = torch.as_tensor(rng.normal(size=(40, 3000)).astype(np.float32))
    k = 1024
    proj = RandomProjector(in_dim=3000, proj_dim=k, seed=3)
    pg = proj.project(g).numpy()
    ratio = np.linalg.norm(pg, axis=1) / np.linalg.norm(g.numpy(), axis=1)
    # JL: with k = 1024 the squared-norm distortion exceeds 0.25 with negligible probability.
    assert np.all(np.abs(ratio**2 - 1) < 0.25)
    cos_full = np.corrcoef(g.numpy())
    cos_proj = np.corrcoef(pg)
    assert np.abs(cos_full - cos_proj).max() < 0.2


def test_projection_slices_equal_whole_and_uncached_equals_cached() -> None:
    g = torch.randn(5, 9000)
    cached = RandomProjector(in_dim=9000, proj_dim=16, seed=1)
    streamed = RandomProjector(in_dim=9000, proj_dim=16, seed=1, max_cached_bytes=0)
    whole = cached.project(g)
    parts = streamed.project_slice(g[:, :5000], 0) + streamed.project_slice(g[:, 5000:], 5000)
    torch.testing.assert_close(whole, parts, rtol=1e-4, atol=1e-5)
    other = RandomProjector(in_dim=9000, proj_dim=16, seed=2).project(g)
    assert not torch.allclose(whole, other)


def test_projected_gradients_equal_full_gradients_times_matrix() -> None:
    model, ds = _cnn(), _images(12)
    full = compute_gradients(model, ds, params="all", batch_size=5, progress=False)
    projected = compute_gradients(
        model, ds, params="all", batch_size=5, proj_dim=32, seed=7, progress=False
    )
    p = RandomProjector(in_dim=full.shape[1], proj_dim=32, seed=7).matrix().numpy()
    np.testing.assert_allclose(projected, full @ p, rtol=1e-3, atol=1e-4)


def test_deterministic() -> None:
    a = compute_gradients(_cnn(), _images(), params="all", proj_dim=20, seed=5, progress=False)
    b = compute_gradients(_cnn(), _images(), params="all", proj_dim=20, seed=5, progress=False)
    np.testing.assert_array_equal(a, b)


def test_store_streams_and_resumes(tmp_path, monkeypatch) -> None:
    model, ds = _cnn(), _images(30)
    expected = compute_gradients(model, ds, params="last", batch_size=8, progress=False)
    path = tmp_path / "gradients.npy"
    store = GradientStore(path, n_rows=30, n_cols=expected.shape[1], fingerprint="abc")

    # Simulate a crash after two batches.
    from ogad_core.engine import gradients as mod

    real, calls = mod._last_layer_batch, {"n": 0}

    def crashing(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 3:  # the first call checks the closed form on a probe batch
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(mod, "_last_layer_batch", crashing)
    with pytest.raises(KeyboardInterrupt):
        compute_gradients(model, ds, params="last", batch_size=8, out=store, progress=False)
    monkeypatch.setattr(mod, "_last_layer_batch", real)

    reopened = GradientStore(path, n_rows=30, n_cols=expected.shape[1], fingerprint="abc")
    assert reopened.resumed and len(reopened.pending()) == 14
    out = compute_gradients(model, ds, params="last", batch_size=8, out=reopened, progress=False)
    assert reopened.complete
    np.testing.assert_allclose(np.asarray(out), expected, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(np.load(path), expected, rtol=1e-6, atol=1e-7)

    # Another fingerprint never mixes rows: the store starts over.
    fresh = GradientStore(path, n_rows=30, n_cols=expected.shape[1], fingerprint="other")
    assert not fresh.resumed and len(fresh.pending()) == 30


def test_bad_batch_size_and_empty_dataset() -> None:
    with pytest.raises(ConfigError, match="`batch_size`") as err:
        compute_gradients(_cnn(), _images(), batch_size=0)
    assert user_message(err.value).startswith("--batch-size must be >= 1")  # the CLI's words
    empty = TensorDataset(torch.zeros(0, 1, 12, 12), torch.zeros(0, dtype=torch.long))
    with pytest.raises(ConfigError, match="empty"):
        compute_gradients(_cnn(), empty, progress=False)


def test_tensor_datasets_are_sliced_not_indexed_per_sample(monkeypatch) -> None:
    model, ds = _cnn(), _images(20)
    pairs = [ds[i] for i in range(20)]  # a plain sequence: collated per batch

    def per_sample(*_a, **_k):
        raise AssertionError("TensorDataset indexed sample by sample")

    monkeypatch.setattr(TensorDataset, "__getitem__", per_sample)
    sliced = compute_gradients(model, ds, params="last", batch_size=6, progress=False)
    collated = compute_gradients(model, pairs, params="last", batch_size=6, progress=False)
    np.testing.assert_allclose(sliced, collated, rtol=1e-6, atol=1e-7)


def test_image_files_stream_into_gradients(tmp_path) -> None:
    from PIL import Image

    from ogad_core.data.images import scan_images
    from ogad_core.engine.datasets import ImageBatches

    rng = np.random.default_rng(0)
    paths = []
    for i in range(10):
        paths.append(tmp_path / f"{i}.png")
        Image.fromarray(rng.integers(0, 255, (20, 30), dtype=np.uint8)).save(paths[-1])
    files = scan_images(paths, 12, "test")
    labels = rng.integers(0, 5, 10)
    decoded = TensorDataset(torch.from_numpy(files.decode_rows(range(10))), torch.as_tensor(labels))
    streamed = compute_gradients(
        _cnn(), ImageBatches(files, labels), batch_size=4, workers=2, progress=False
    )
    expected = compute_gradients(_cnn(), decoded, batch_size=4, progress=False)
    np.testing.assert_allclose(streamed, expected, rtol=1e-6, atol=1e-7)


def test_bf16_forward_keeps_the_ranking() -> None:
    """bf16 autocast for the forward pass: float32 rows, the norm ranking essentially unchanged
    (measured in benchmarks/bench_extraction.py --precision)."""
    from scipy.stats import spearmanr

    model, ds = _cnn(), _images(64)
    fp32 = compute_gradients(model, ds, batch_size=16, progress=False)
    bf16 = compute_gradients(model, ds, batch_size=16, precision="bf16", progress=False)
    assert bf16.dtype == np.float32
    rho = spearmanr(np.linalg.norm(fp32, axis=1), np.linalg.norm(bf16, axis=1)).statistic
    assert rho > 0.98
    with pytest.raises(ConfigError, match="precision"):
        compute_gradients(model, ds, precision="fp8", progress=False)
