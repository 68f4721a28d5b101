"""The built-in text head (:func:`build_text_head`, trained with :data:`TEXT_HEAD_RECIPE`): a
linear layer on standardised, norm-completed embeddings, for closed-form last-layer gradients.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ogad_core.errors import ConfigError, DataError

if TYPE_CHECKING:
    import torch
    from torch import nn


# ---- the built-in text head ----------------------------------------------------------------

TEXT_HEAD_RECIPE = {"epochs": 100, "lr": 3e-3, "weight_decay": 1.5, "batch_size": 4096}
"""The text head's training recipe (Adam; one full batch up to 4,096 samples). Strong weight
decay: the regularised optimum ranks flipped labels best, while fitting them would shrink their
gradients. Measured on rotten-tomatoes (see benchmarks/bench_text.py --quality)."""

IMAGE_HEAD_RECIPE = {**TEXT_HEAD_RECIPE, "weight_decay": 1e-3}
"""The same head on image-encoder features (``--encoder torchvision:NAME``): light weight decay
(``--weight-decay`` overrides it). The text recipe's 1.5 was tuned on two classes; on many
classes it holds the head near uniform. Measured on the rehearsal's cached features (20,000
photos, 100 classes, 5% flipped, random-init shufflenet_v2_x0_5, benchmarks/bench_rehearsal.py
``head_check``; loss AUROC for the flipped labels, head accuracy on the true labels), weight decay
3e-3: 0.991 (87%), 1e-3: 0.989 (91%), 1e-4: 0.983 (93%), 0: 0.982 (93%); the text recipe's 1.5:
0.880 (20%; 0.849 and 12.8% with the old absolute std floor, which erased 434 of the 1,024
features). docs/benchmarks.md."""

TEXT_HEAD_MARGIN = 1.05

STD_FLOOR = 1e-6
"""A feature's standard deviation is floored at this fraction of the largest one (relative, so
features of any scale -- e.g. 1e-9 from a random-init encoder -- are standardised, not erased)."""


def std_with_floor(std: torch.Tensor) -> torch.Tensor:
    """(E,) per-feature stds -> (E,) clamped at :data:`STD_FLOOR` x the largest (constant
    features stay ~0 after centring; the smallest positive float32 when all are 0)."""
    import torch

    tiny = torch.finfo(std.dtype).tiny
    return std.clamp(min=max(float(std.max()) * STD_FLOOR, tiny))


def _make_text_head_class():
    import torch
    from torch import nn

    class TextHead(nn.Module):
        """Standardise -> complete the norm -> nn.Linear(E + 1, C).

        ``z = (x - mean) / std`` (train statistics), then ``h = [z, sqrt(c - |z|^2)]`` with
        ``c`` = 1.05 x the largest train ``|z|^2`` (clamped at 0 beyond it): every sample's head
        input has the same norm sqrt(c), so the last-layer gradient norm
        ``|softmax(z) - onehot(y)| * sqrt(c + 1)`` ranks samples by their error alone, while the
        classifier still sees the standardised features (the extra coordinate is the usual
        inner-product-to-distance augmentation). ``forward(x (B, E)) -> logits (B, C)``.
        """

        mean: torch.Tensor  # (E,) buffers, set from the training embeddings
        std: torch.Tensor
        norm_sq: torch.Tensor

        def __init__(self, *, in_features: int, n_classes: int) -> None:
            super().__init__()
            self.register_buffer("mean", torch.zeros(in_features))
            self.register_buffer("std", torch.ones(in_features))
            self.register_buffer("norm_sq", torch.tensor(float(in_features)))
            self.head = nn.Linear(in_features + 1, n_classes)

        def features(self, x: torch.Tensor) -> torch.Tensor:
            """(B, E) embeddings -> (B, E + 1) head inputs of norm sqrt(norm_sq)."""
            z = (x - self.mean) / self.std
            rest = (self.norm_sq - z.pow(2).sum(dim=-1, keepdim=True)).clamp(min=0.0)
            return torch.cat([z, rest.sqrt()], dim=-1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(self.features(x))

    return TextHead


def build_text_head(
    *,
    n_classes: int,
    embeddings: np.ndarray | torch.Tensor | None = None,
    in_features: int | None = None,
    seed: int = 0,
) -> nn.Module:
    """The built-in text model: a linear head on standardised, norm-completed embeddings.

    Args:
        embeddings: (N, E) train embeddings: the head keeps their per-feature mean / std and
            norm bound as buffers (they travel with the state_dict). Or give ``in_features``
            alone (neutral buffers until a state_dict is loaded).
    Train with :data:`TEXT_HEAD_RECIPE` (text) or :data:`IMAGE_HEAD_RECIPE` (image-encoder
    features). The last-layer gradient has C * (E + 2) entries.
    """
    import torch

    if n_classes < 2:
        raise ConfigError(f"n_classes must be >= 2, got {n_classes}")
    if embeddings is None and in_features is None:
        raise ConfigError("build_text_head needs embeddings or in_features")
    x = None
    if embeddings is not None:
        x = torch.as_tensor(np.asarray(embeddings, dtype=np.float32))
        if x.dim() != 2 or x.shape[0] < 2:
            raise DataError(f"text head: embeddings must be (N >= 2, E), got {tuple(x.shape)}")
        if not torch.isfinite(x).all():
            raise DataError("text head: embeddings contain NaN or infinite values")
        in_features = int(x.shape[1])
    assert in_features is not None
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = _make_text_head_class()(in_features=int(in_features), n_classes=n_classes)
    if x is not None:
        with torch.no_grad():
            model.mean.copy_(x.mean(dim=0))
            model.std.copy_(std_with_floor(x.std(dim=0)))
            z = (x - model.mean) / model.std
            model.norm_sq.fill_(float(z.pow(2).sum(dim=1).max()) * TEXT_HEAD_MARGIN)
    return model
