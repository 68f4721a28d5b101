"""Seeded sparse random projection (a CountSketch / sparse Johnson–Lindenstrauss transform) of
gradient vectors, generated on the device where the product runs.

P has shape (D, k) and ``nnz`` non-zeros per row: input coordinate i is added to ``nnz`` buckets
``b_j(i)`` in [0, k) with signs ``s_j(i)`` = +-1, scaled by 1/sqrt(nnz). Then E[(gP) . (hP)] =
g . h, and Var ||gP||^2 = (2 / k)(||g||^4 - sum g_i^4) for nnz = 1, never more than a dense
Gaussian projection's (2 / k)||g||^4. Why not Gaussian: generating D x k normals costs far more
than the product itself (86 s per 128 gradients of a 4.2 M-parameter MLP on 2 CPU cores vs
4.2 s for the gradients); a CountSketch is one scatter-add per gradient entry and needs only
D bucket indices. Figures (distortion and speed of nnz = 1, 4 and Gaussian) in
docs/benchmarks.md, from benchmarks/bench_projection.py.

Buckets and signs are an integer hash of (seed, coordinate) computed with exact int64
arithmetic (products stay below 2^62), so P is the same on every device: CPU and GPU results
differ only by float summation order, and P is never held whole (at most D indices, cached when
they fit ``max_cached_bytes``; else each slice's indices are hashed again on the device).
"""

from __future__ import annotations

import math

import torch

from ogad_core.errors import ConfigError

#: identifies the transform in fingerprints (a change here must change it)
PROJECTION_ID = "countsketch-hash31-v1"
_P = 2_147_483_647  # 2^31 - 1, prime
_ROUNDS = ((48_271, 11), (69_621, 4_127), (1_583_458_089, 9_973))
_SEED_MUL, _STREAM_MUL, _HIGH_MUL = 1_103_515_245, 2_654_435, 40_692


def hash31(index: torch.Tensor, seed: int, stream: int) -> torch.Tensor:
    """A pseudo-random int64 in [0, 2^31 - 1) for each index (int64 tensor, any device).

    Three rounds of ``x -> (a x + b) mod p`` followed by ``x ^= x >> 15``; exact on every device.
    """
    key = (seed % _P * _SEED_MUL + stream * _STREAM_MUL) % _P
    hi = (index // _P) * _HIGH_MUL % _P
    x = (index % _P + key + hi) % _P
    for a, b in _ROUNDS:
        x = (x * a + b) % _P
        x = x ^ (x >> 15)
    return x


class RandomProjector:
    """Project (B, D) gradients to (B, k), slice by slice (a sparse JL transform, see module).

    Args:
        in_dim: D, the gradient length.
        proj_dim: k.
        seed: fixes P.
        device: where buckets are generated and the products run.
        nnz: non-zeros per input coordinate (1 = CountSketch).
        max_cached_bytes: keep every coordinate's buckets (nnz x D x 12 bytes) on ``device`` when
            they fit; else they are hashed again for each slice.
    """

    def __init__(
        self,
        *,
        in_dim: int,
        proj_dim: int,
        seed: int = 0,
        device: torch.device | str = "cpu",
        nnz: int = 1,
        max_cached_bytes: int = 1 * 2**30,
    ) -> None:
        if proj_dim < 1:
            raise ConfigError(f"proj_dim must be >= 1, got {proj_dim}")
        if in_dim < 1:
            raise ConfigError(f"cannot project an empty gradient (D = {in_dim})")
        if nnz < 1:
            raise ConfigError(f"nnz must be >= 1, got {nnz}")
        self.in_dim = in_dim
        self.proj_dim = proj_dim
        self.seed = int(seed)
        self.nnz = int(nnz)
        self.device = torch.device(device)
        self.scale = 1.0 / math.sqrt(nnz)
        self._cached: tuple[torch.Tensor, torch.Tensor] | None = None
        if self.nnz * in_dim * 12 <= max_cached_bytes:
            self._cached = self._generate(0, in_dim)

    def _generate(self, start: int, stop: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Buckets (nnz, d) int64 and scaled signs (nnz, d) float32 of coordinates [start, stop)."""
        index = torch.arange(start, stop, dtype=torch.int64, device=self.device)
        buckets, signs = [], []
        for j in range(self.nnz):
            buckets.append(hash31(index, self.seed, 2 * j) % self.proj_dim)
            bit = (hash31(index, self.seed, 2 * j + 1) >> 7) & 1
            signs.append((bit.to(torch.float32) * 2.0 - 1.0) * self.scale)
        return torch.stack(buckets), torch.stack(signs)

    def buckets(self, start: int, stop: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(buckets, signs) of coordinates [start, stop), each (nnz, stop - start), on device."""
        if self._cached is not None:
            b, s = self._cached
            return b[:, start:stop], s[:, start:stop]
        return self._generate(start, stop)

    def project_slice(self, grads: torch.Tensor, offset: int) -> torch.Tensor:
        """(B, d) gradient columns [offset, offset + d) -> their (B, k) contribution."""
        d = grads.shape[1]
        buckets, signs = self.buckets(offset, offset + d)
        grads = grads.to(device=self.device, dtype=torch.float32)
        out = torch.zeros(grads.shape[0], self.proj_dim, dtype=torch.float32, device=self.device)
        for j in range(self.nnz):
            out.index_add_(1, buckets[j], grads * signs[j])
        return out

    def project(self, grads: torch.Tensor) -> torch.Tensor:
        """(B, D) -> (B, k)."""
        if grads.shape[1] != self.in_dim:
            raise ConfigError(
                f"gradient has {grads.shape[1]} columns, projector expects {self.in_dim}"
            )
        return self.project_slice(grads, 0)

    def matrix(self) -> torch.Tensor:
        """The whole P (D, k) dense; for tests and small D only."""
        buckets, signs = self.buckets(0, self.in_dim)
        p = torch.zeros(self.in_dim, self.proj_dim, device=self.device)
        rows = torch.arange(self.in_dim, device=self.device)
        for j in range(self.nnz):
            p.index_put_((rows, buckets[j]), signs[j], accumulate=True)
        return p
