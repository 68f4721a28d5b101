"""The sparse JL projection: reproducible from the seed on any device, never materialised, and
norms / inner products preserved within the stated tolerance."""

from __future__ import annotations

import pytest
import torch

from ogad_core.engine.projection import RandomProjector, hash31
from ogad_core.errors import ConfigError

_P = 2**31 - 1


def _hash_reference(i: int, seed: int, stream: int) -> int:
    """hash31 in plain Python integers (no tensors, no device)."""
    key = (seed % _P * 1_103_515_245 + stream * 2_654_435) % _P
    x = (i % _P + key + (i // _P) * 40_692 % _P) % _P
    for a, b in ((48_271, 11), (69_621, 4_127), (1_583_458_089, 9_973)):
        x = (x * a + b) % _P
        x ^= x >> 15
    return x


def test_hash_is_exact_integer_arithmetic() -> None:
    idx = torch.tensor([0, 1, 2, 4095, 10**6, 3 * 10**9, 2**40 + 7], dtype=torch.int64)
    got = hash31(idx, seed=12345, stream=3).tolist()
    assert got == [_hash_reference(int(i), 12345, 3) for i in idx]


def test_buckets_and_signs_are_balanced() -> None:
    p = RandomProjector(in_dim=200_000, proj_dim=256, seed=0)
    buckets, signs = p.buckets(0, 200_000)
    counts = torch.bincount(buckets[0], minlength=256).double()
    chi2 = float(((counts - counts.mean()) ** 2 / counts.mean()).sum())
    assert chi2 < 255 + 6 * (2 * 255) ** 0.5  # chi-square with 255 dof, 6 sigma
    assert abs(float(signs.mean())) < 0.01


def test_same_seed_same_projection_in_any_slicing() -> None:
    g = torch.randn(5, 9000)
    cached = RandomProjector(in_dim=9000, proj_dim=64, seed=1)
    hashed_per_slice = RandomProjector(in_dim=9000, proj_dim=64, seed=1, max_cached_bytes=0)
    assert hashed_per_slice._cached is None
    whole = cached.project(g)
    parts = sum(
        hashed_per_slice.project_slice(g[:, a:b], a)
        for a, b in ((0, 1234), (1234, 5000), (5000, 9000))
    )
    torch.testing.assert_close(parts, whole, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(g @ cached.matrix(), whole, rtol=1e-4, atol=1e-4)
    assert not torch.allclose(RandomProjector(in_dim=9000, proj_dim=64, seed=2).project(g), whole)


@pytest.mark.parametrize("nnz", [1, 4])
def test_norms_and_inner_products_are_preserved(nnz: int) -> None:
    """k = 512: Var(|gP|^2 / |g|^2) <= 2 / k, so the ratio stays within 1 +- 0.3 (4.8 sigma)
    and its mean over 256 vectors within 1 +- 0.02; cosines within 0.25."""
    gen = torch.Generator().manual_seed(0)
    g = torch.randn(256, 20_000, generator=gen) * torch.rand(256, 1, generator=gen) * 5
    g[:, :20] *= 20  # a few heavy coordinates, as gradients have
    p = RandomProjector(in_dim=20_000, proj_dim=512, seed=7, nnz=nnz)
    z = p.project(g)
    ratio = (z.norm(dim=1) / g.norm(dim=1)) ** 2
    assert float((ratio - 1).abs().max()) < 0.3
    assert abs(float(ratio.mean()) - 1) < 0.02
    gn = g / g.norm(dim=1, keepdim=True)
    zn = p.project(gn)
    err = (zn @ zn.T - gn @ gn.T).abs()
    assert float(err.max()) < 0.25 and float(err.mean()) < 0.05


def test_projection_never_builds_the_matrix(monkeypatch: pytest.MonkeyPatch) -> None:
    p = RandomProjector(in_dim=3_000_000, proj_dim=512, seed=0, max_cached_bytes=0)
    g = torch.randn(2, 100_000)

    def no_matrix(*_a, **_k):
        raise AssertionError("a dense matrix was built")

    monkeypatch.setattr(torch, "randn", no_matrix)
    out = p.project_slice(g, 2_000_000)
    assert out.shape == (2, 512)


def test_bad_arguments() -> None:
    for kw in ({"in_dim": 0, "proj_dim": 4}, {"in_dim": 4, "proj_dim": 0}):
        with pytest.raises(ConfigError):
            RandomProjector(**kw)
    with pytest.raises(ConfigError):
        RandomProjector(in_dim=4, proj_dim=4, nnz=0)
    with pytest.raises(ConfigError, match="columns"):
        RandomProjector(in_dim=10, proj_dim=4).project(torch.zeros(1, 9))
    assert torch.isfinite(RandomProjector(in_dim=10, proj_dim=4).project(torch.ones(1, 10))).all()
