"""The feature head's recipe per data kind and its scale-free standardisation (issue 21)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ogad_core.engine import text_head
from ogad_core.engine.kinds.features_head import FeaturesHead
from ogad_core.engine.train import TrainRecipe, train_model
from ogad_core.options import ComputeConfig


def _clusters(n_classes: int, per_class: int, dim: int, seed: int = 0):
    """(N, dim) float32 features around one random centre per class, and (N,) labels."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_classes, dim))
    y = np.repeat(np.arange(n_classes), per_class)
    x = centres[y] + 0.8 * rng.normal(size=(len(y), dim))
    return x.astype(np.float32), y


def _fit_accuracy(x: np.ndarray, y: np.ndarray, recipe: TrainRecipe) -> float:
    """Train accuracy of the feature head trained with ``recipe`` on (x, y)."""
    head = text_head.build_text_head(embeddings=x, n_classes=int(y.max()) + 1, seed=0)
    xt, yt = torch.as_tensor(x), torch.as_tensor(y)
    train_model(head, xt, yt, recipe=recipe, seed=0, device=torch.device("cpu"), progress=False)
    with torch.no_grad():
        return float((head(xt).argmax(1) == yt).float().mean())


def _recipe(kind: str, encoder: str | None) -> TrainRecipe:
    data = "mnist5k" if kind == "image" else "rotten-tomatoes"
    config = ComputeConfig(data=data, encoder=encoder)
    return FeaturesHead().recipe(config, kind)


QUICK = {"epochs": 30, "lr": 3e-2}


def test_image_features_recipe_fits_many_classes():
    """40 separable classes: the image-feature recipe learns them (the text recipe's strong
    weight decay kept the 100-class rehearsal head at 13% accuracy)."""
    x, y = _clusters(40, 25, 32)
    recipe = _recipe("image", "torchvision:resnet18")
    assert recipe.weight_decay < text_head.TEXT_HEAD_RECIPE["weight_decay"]
    fast = TrainRecipe(**{**recipe.__dict__, **QUICK})
    assert _fit_accuracy(x, y, fast) > 0.9


def test_text_recipe_is_unchanged():
    assert _recipe("text", None) == TrainRecipe(**text_head.TEXT_HEAD_RECIPE)  # type: ignore[arg-type]


@pytest.mark.parametrize("scale", [1e-9, 1e6])
def test_standardisation_is_scale_free(scale):
    """Features scaled by 1e-9 (a random-init encoder's) are standardised like unscaled ones
    and the head learns them as well."""
    x, y = _clusters(10, 20, 16, seed=1)
    plain = text_head.build_text_head(embeddings=x, n_classes=10, seed=0)
    scaled = text_head.build_text_head(embeddings=x * scale, n_classes=10, seed=0)
    with torch.no_grad():
        z = plain.features(torch.as_tensor(x))
        zs = scaled.features(torch.as_tensor(x * scale))
    np.testing.assert_allclose(zs.numpy(), z.numpy(), rtol=1e-3, atol=1e-3)
    recipe = TrainRecipe(epochs=30, lr=3e-2, weight_decay=1e-4, batch_size=4096)
    assert _fit_accuracy(x * scale, y, recipe) == pytest.approx(_fit_accuracy(x, y, recipe))


def test_constant_features_stay_finite():
    x, _ = _clusters(3, 10, 4)
    x[:, 1] = 7.0
    head = text_head.build_text_head(embeddings=x, n_classes=3, seed=0)
    assert torch.isfinite(head.features(torch.as_tensor(x))).all()
    zero = text_head.build_text_head(embeddings=np.zeros((5, 3), np.float32), n_classes=2)
    assert torch.isfinite(zero.features(torch.zeros(5, 3))).all()


def test_weight_decay_option_overrides_the_recipe():
    from ogad_core.pipeline.model_step import model_recipe

    config = ComputeConfig(data="mnist5k", encoder="torchvision:resnet18", weight_decay=0.5)
    assert model_recipe(config, "image").weight_decay == 0.5
    assert model_recipe(ComputeConfig(data="moons", weight_decay=0.0), "tabular").weight_decay == 0
    text = model_recipe(ComputeConfig(data="rotten-tomatoes"), "text")
    assert text.weight_decay == text_head.TEXT_HEAD_RECIPE["weight_decay"]
