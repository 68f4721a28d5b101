"""Seeded Gaussian random projection (Johnson–Lindenstrauss) of gradient vectors.

P has shape (D, k) with i.i.d. N(0, 1/k) entries, so E||g P||^2 = ||g||^2. P is generated in
fixed row blocks from (seed, block index), on the CPU, so any slice ``P[a:b]`` is reproducible
on any device without holding all of P; when P is small enough it is cached whole.
"""

from __future__ import annotations

import math

import torch

from ogad_core.errors import ConfigError

BLOCK_ROWS = 4096
_SEED_STRIDE = 1_000_003


class RandomProjector:
    """Project (B, D) gradients to (B, k), slice by slice.

    Args:
        in_dim: D, the gradient length.
        proj_dim: k.
        seed: fixes P.
        device: where the products run.
        max_cached_bytes: cache P whole on ``device`` when D * k * 4 is at most this.
    """

    def __init__(
        self,
        *,
        in_dim: int,
        proj_dim: int,
        seed: int = 0,
        device: torch.device | str = "cpu",
        max_cached_bytes: int = 4 * 2**30,
    ) -> None:
        if proj_dim < 1:
            raise ConfigError(f"--proj-dim must be >= 1, got {proj_dim}")
        if in_dim < 1:
            raise ConfigError(f"cannot project an empty gradient (D = {in_dim})")
        self.in_dim = in_dim
        self.proj_dim = proj_dim
        self.seed = seed
        self.device = torch.device(device)
        self.scale = 1.0 / math.sqrt(proj_dim)
        self._cached: torch.Tensor | None = None
        if in_dim * proj_dim * 4 <= max_cached_bytes:
            self._cached = self.rows(0, in_dim)

    def _block(self, b: int) -> torch.Tensor:
        """Rows [b * BLOCK_ROWS, ...) of P, (<= BLOCK_ROWS, k) float32 on the CPU."""
        start = b * BLOCK_ROWS
        n = min(BLOCK_ROWS, self.in_dim - start)
        gen = torch.Generator(device="cpu").manual_seed(self.seed * _SEED_STRIDE + b)
        return torch.randn(n, self.proj_dim, generator=gen) * self.scale

    def rows(self, start: int, stop: int) -> torch.Tensor:
        """P[start:stop] (stop - start, k) float32 on ``device``."""
        if self._cached is not None:
            return self._cached[start:stop]
        first, last = start // BLOCK_ROWS, (stop - 1) // BLOCK_ROWS
        blocks = torch.cat([self._block(b) for b in range(first, last + 1)])
        lo = start - first * BLOCK_ROWS
        return blocks[lo : lo + (stop - start)].to(self.device)

    def project_slice(self, grads: torch.Tensor, offset: int) -> torch.Tensor:
        """(B, d) gradient columns [offset, offset + d) -> their (B, k) contribution."""
        p = self.rows(offset, offset + grads.shape[1])
        return grads.to(p.dtype) @ p

    def project(self, grads: torch.Tensor) -> torch.Tensor:
        """(B, D) -> (B, k)."""
        if grads.shape[1] != self.in_dim:
            raise ConfigError(
                f"gradient has {grads.shape[1]} columns, projector expects {self.in_dim}"
            )
        return self.project_slice(grads, 0)

    def matrix(self) -> torch.Tensor:
        """The whole P (D, k); for tests and small D."""
        return self.rows(0, self.in_dim)
