"""Gradient-masking diagnostics: a model with masked gradients raises the flags, a plain model does not."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import torch
from torch import nn

from bench.data.cifar import embedded_sample
from bench.plugins.base import Context
from bench.plugins.diagnostics import CamMeanLogits, Diagnostics, parse_fractions
from bench.registry import MODELS
from bench.suites import load_suite

FAST = dict(
    steps="5,10",
    restarts=2,
    restart_steps=5,
    eps_sweep="4/255,64/255",
    sweep_steps=10,
    square_queries=200,
    transfer_steps=10,
    cam_steps=10,
)


class QuantizedInput(nn.Module):
    """Rounds the input to 4 grey levels before the model: zero input gradient, a classic masked defense."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(torch.round(x * 3) / 3)


def run(model, plugin: Diagnostics, n: int = 32) -> dict[str, float]:
    data = embedded_sample()
    ctx = Context(seed=0, device="cpu", precision="fp32", dataset=data)
    examples = pd.DataFrame(plugin.run_batch(model, data.batch(torch.arange(n)), ctx))
    return dict(plugin.summarize(examples, ctx))


@pytest.fixture(scope="module")
def source_name(tiny_model):
    MODELS.add("diag_source_tiny", lambda device="cpu": tiny_model, source="test")
    yield "diag_source_tiny"
    MODELS.remove("diag_source_tiny")


def test_masked_gradients_raise_the_flags(tiny_model, source_name):
    masked = QuantizedInput(tiny_model).eval()
    m = run(masked, Diagnostics(transfer_source=source_name, **FAST))
    assert m["zero_gradient_fraction"] == 1.0 and m["flag_zero_gradients"] == 1.0
    assert m["accuracy_eps_64/255"] > 0.05 and m["flag_accuracy_not_zero_at_max_eps"] == 1.0
    assert m["square_accuracy"] < m["whitebox_accuracy"] and m["flag_blackbox_stronger"] == 1.0
    assert m["transfer_accuracy"] < m["whitebox_accuracy"] and m["flag_transfer_stronger"] == 1.0
    assert m["n_flags_raised"] >= 4
    assert m["worst_case_accuracy"] <= min(m["square_accuracy"], m["transfer_accuracy"], m["whitebox_accuracy"])


def test_plain_model_is_not_flagged_and_transfer_skip_is_explicit(tiny_model):
    m = run(tiny_model, Diagnostics(transfer_source="no_such_model", **FAST))
    assert m["flag_zero_gradients"] == 0.0 and m["flag_accuracy_not_zero_at_max_eps"] == 0.0
    assert m["flag_blackbox_stronger"] == 0.0
    assert m["pgd10_accuracy"] <= m["pgd5_accuracy"] <= m["clean_accuracy"]
    assert m["accuracy_eps_64/255"] <= m["accuracy_eps_4/255"]
    assert math.isnan(m["flag_transfer_stronger"]) and m["transfer_skipped_source_not_registered"] == 1.0
    assert math.isnan(m["flag_cam_adaptive_stronger"]) and m["cam_adaptive_skipped"] == 1.0


def test_topgap_gets_the_cam_adaptive_attack(tiny_topgap_model):
    m = run(tiny_topgap_model, Diagnostics(transfer_source="", **FAST), n=32)
    assert 0.0 <= m["cam_adaptive_accuracy"] <= m["clean_accuracy"]
    assert m["flag_cam_adaptive_stronger"] in (0.0, 1.0)
    assert m["transfer_skipped_no_source_given"] == 1.0
    x = embedded_sample().batch(torch.arange(4)).x
    cam = tiny_topgap_model.class_map(x)
    assert torch.allclose(CamMeanLogits(tiny_topgap_model)(x), cam.mean(dim=(2, 3)))


def test_parameters_and_suite():
    assert parse_fractions("8/255, 0.5") == (8 / 255, 0.5)
    with pytest.raises(ValueError, match="8/255"):
        Diagnostics(eps_sweep="eight")
    suite = load_suite("cifar10-diagnostics")
    plugin = suite.plugins[0].build()
    assert suite.n <= 200 and plugin.eps == pytest.approx(8 / 255) and plugin._sweep[-1] == pytest.approx(64 / 255)
