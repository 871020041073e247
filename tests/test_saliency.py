"""Saliency structure metrics (Gini sparsity, connectedness) and the saliency plugin."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from bench.data.cifar import embedded_sample
from bench.models.classifier import build_classifier
from bench.plugins.base import Context
from bench.plugins.saliency import (
    Saliency,
    aggregate,
    gini_index,
    group_gini,
    scale_p99,
    simple_gradient,
    top_region_connectedness,
)
from bench.registry import PLUGINS


def test_gini_of_one_hot_uniform_and_zero_maps() -> None:
    one_hot = torch.zeros(1, 8, 8)
    one_hot[0, 3, 5] = 2.5
    uniform = torch.full((1, 8, 8), 0.7)
    values = gini_index(torch.cat([one_hot, uniform, torch.zeros(1, 8, 8)]))
    assert values[0].item() == pytest.approx(1 - 1 / 64, abs=1e-6)
    assert values[1].item() == pytest.approx(0.0, abs=1e-6)
    assert math.isnan(values[2].item())


def test_gini_hand_example_and_order_invariance() -> None:
    # a = (0, 0, 1, 3), n = 4: 1 - 2 (1 * 1.5 + 3 * 0.5) / (4 * 4) = 0.625
    maps = torch.tensor([[0.0, 3.0, 0.0, 1.0]])
    assert gini_index(maps).item() == pytest.approx(0.625)
    assert gini_index(maps.flip(-1)).item() == pytest.approx(0.625)
    with pytest.raises(ValueError, match="non-negative"):
        gini_index(torch.tensor([[-1.0, 1.0]]))


def test_group_gini_sees_patches() -> None:
    concentrated = torch.zeros(1, 8, 8)
    concentrated[0, :4, :4] = 1.0  # one full 4x4 patch of four
    spread = torch.zeros(1, 8, 8)
    spread[0, ::4, ::4] = 1.0  # the same "pixel Gini" class of map, one pixel in each patch
    assert group_gini(concentrated, 4).item() == pytest.approx(0.75)
    assert group_gini(spread, 4).item() == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match="tile"):
        group_gini(spread, 3)


def test_connectedness_one_hot_blob_and_scattered_maps() -> None:
    one_hot = np.zeros((20, 20))
    one_hot[4, 7] = 1.0
    assert top_region_connectedness(one_hot, 5) == (1, 1.0, 1.0)
    blob = np.zeros((20, 20))
    blob[5:10, 5:9] = 1.0  # 20 pixels = 5 % of 400, one 4-connected block
    assert top_region_connectedness(blob, 5) == (1, 1.0, 1.0)
    scattered = np.zeros((20, 20))
    scattered[::5, ::5] = 1.0  # 16 isolated pixels
    scattered[0, 0] = 3.0
    n, pixel_fraction, mass_fraction = top_region_connectedness(scattered, 5)
    assert n == 16 and pixel_fraction == pytest.approx(1 / 16) and mass_fraction == pytest.approx(3 / 18)


def test_connectedness_uses_eight_neighbours() -> None:
    diagonal = np.zeros((10, 10))
    for i in range(5):
        diagonal[i, i] = 1.0
    assert top_region_connectedness(diagonal, 5)[0] == 1


def test_uniform_map_is_one_component() -> None:
    assert top_region_connectedness(np.ones((8, 8)), 10) == (1, 1.0, 1.0)


def test_scale_p99_range() -> None:
    maps = torch.rand(3, 10, 10)
    scaled = scale_p99(maps)
    assert scaled.min() == 0 and scaled.max() == 1
    assert (scaled == 1).flatten(1).sum(1).min() >= 1


def test_simple_gradient_matches_autograd_on_a_linear_model() -> None:
    torch.manual_seed(0)
    linear = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 4 * 4, 5))
    x = torch.rand(2, 3, 4, 4)
    target = torch.tensor([1, 4])
    grad = simple_gradient(linear, x, target, "logit")
    torch.testing.assert_close(grad, linear[1].weight[target].view(2, 3, 4, 4))
    assert aggregate(grad).shape == (2, 4, 4)
    with pytest.raises(ValueError, match="kind"):
        simple_gradient(linear, x, target, "hessian")


def test_plugin_runs_on_a_tiny_model_and_summarizes() -> None:
    torch.manual_seed(0)
    tiny_model = build_classifier("tiny", 10, "gap", "cifar10").eval()  # untrained: its gradients are enough here
    data = embedded_sample()
    batch = data.batch(torch.arange(12))
    plugin = PLUGINS.create("saliency")
    assert isinstance(plugin, Saliency)
    ctx = Context(seed=0, device="cpu", precision="fp32", dataset=data)
    columns = plugin.run_batch(tiny_model, batch, ctx)
    assert {"gini", "group_gini", "components_q5", "largest_fraction_q10", "largest_mass_q5"} <= set(columns)
    assert all(len(v) == 12 for v in columns.values())
    assert ((columns["gini"] > 0) & (columns["gini"] < 1)).all()
    assert tiny_model.training is False and all(p.requires_grad for p in tiny_model.parameters())
    metrics = dict(plugin.summarize(pd.DataFrame(columns), ctx))
    assert 0 < metrics["gini"] < 1 and metrics["components_q5"] >= 1
    assert 0 < metrics["largest_fraction_q5"] <= 1
