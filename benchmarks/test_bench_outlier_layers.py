"""bench_outlier_layers: its outlier type with extra spaces is the library's when it has none,
an extra space joins the model's view, and the Gram statistics are what they say."""

from __future__ import annotations

import numpy as np
import torch

from benchmarks.bench_outlier_layers import LayerOutlier, gram, gram_deviation
from ogad_core.issues.outlier import OutlierIssue
from ogad_core.issues.tail import upper_z
from tests.test_issues_outlier import _digits_and_foreign_inputs, _model_view


def test_layer_outlier_without_extra_spaces_is_the_outlier_type() -> None:
    """The benchmark's re-implemented combination gives the library's scores and flags, so its
    figures for today's rule are the issue step's; a candidate space is averaged into the
    model's view (the model's view the mean of three spaces, then the two views)."""
    ctx = _digits_and_foreign_inputs(0, n=600, m=10, registration=True)
    _model_view(ctx, 0, np.arange(600, 610))
    spaces = ("features", "gradients", "statistics")
    ours, library = LayerOutlier(spaces, {}).fit(ctx), OutlierIssue().fit(ctx)
    np.testing.assert_allclose(ours.scores_, library.scores_)
    assert (ours.flagged_ == library.flagged_).all()
    extra = np.random.default_rng(1).lognormal(size=ctx.n)
    added = LayerOutlier(("features", "gradients", "conv", "statistics"), {"conv": extra})
    z = library.space_z_
    model = (z[:, 0] + z[:, 1] + upper_z(np.log(extra))) / 3
    np.testing.assert_allclose(added.fit(ctx).scores_, (model + z[:, 2]) / 2)


def test_gram_is_the_channels_inner_products_and_deviation_is_outside_the_range() -> None:
    """p = 1: the channels' inner products over positions; p = 2: the p-th root of the squared
    activations' products. A row inside its class's range deviates by 0, one outside it by its
    relative distance beyond the bound."""
    a = torch.rand(3, 4, 5, 5)
    flat = a.reshape(3, 4, 25).double()
    iu = torch.triu_indices(4, 4)
    full = (flat @ flat.transpose(1, 2) / 25)[:, iu[0], iu[1]]
    np.testing.assert_allclose(gram(a, 1), full.numpy(), rtol=1e-5)
    sq = ((flat**2) @ (flat**2).transpose(1, 2) / 25).sqrt()[:, iu[0], iu[1]]
    np.testing.assert_allclose(gram(a, 2), sq.numpy(), rtol=1e-5)
    G = np.tile(np.linspace(1.0, 2.0, 201)[:, None], (1, 2))
    G[100] = [1.5, 4.0]  # one entry twice beyond the class's upper bound (about 2)
    dev = gram_deviation(G, np.zeros(len(G), int), q=0.01)
    assert dev[50] == 0.0
    assert abs(dev[100] - (4.0 - 1.995) / 1.995) < 1e-4
