"""Top-GAP's loss reductions and head defaults have one source of truth (methods_spec §1(a)-(c))."""

import pytest
import torch

from bench.methods import METHODS
from bench.methods.topgap import cam_l1
from bench.models.classifier import build_classifier


@pytest.mark.parametrize("shape", [(3, 10, 16, 16), (2, 10, 32, 32), (4, 3, 5, 7)])
def test_sum_reduction_is_mean_times_classes_and_positions(shape):
    maps = torch.randn(shape)
    _, k, h, w = shape
    assert cam_l1(maps, "sum").item() == pytest.approx(cam_l1(maps, "mean").item() * k * h * w, rel=1e-5)


def test_unknown_reduction_is_refused():
    with pytest.raises(ValueError, match="l1_reduction"):
        METHODS.create("topgap", l1_reduction="max")


def _cam_side(arch: str, **hparams) -> int:
    method = METHODS.create("topgap", k=16, **hparams)
    method.configure_for(arch)
    model = build_classifier(arch, 10, method.head, "cifar10", **method.head_kwargs()).eval()
    with torch.no_grad():
        return model.class_map(torch.rand(1, 3, 32, 32)).shape[-1]


def test_prn18_without_head_flags_gets_the_spec_32x32_cam():
    assert _cam_side("prn18") == 32


def test_small_cnn_defaults_to_16x16_and_explicit_flags_win():
    assert _cam_side("cnn") == 16
    assert _cam_side("cnn", num_maps=3) == 32


def test_loss_uses_the_chosen_reduction():
    torch.manual_seed(0)
    model = build_classifier("cnn", 10, "topgap", "cifar10", k=16, num_maps=2, fpn_channels=8).eval()
    x, y = torch.rand(2, 3, 32, 32), torch.tensor([0, 1])
    losses = {}
    for reduction in ("mean", "sum"):
        method = METHODS.create("topgap", k=16, l1_reduction=reduction, lambda_l1=1.0, fpn_channels=8)
        method.configure_for("cnn")
        losses[reduction], logits = method.loss(model, x, y)
    ce = torch.nn.functional.cross_entropy(logits, y)
    l1_mean = (losses["mean"] - ce).item()
    assert (losses["sum"] - ce).item() == pytest.approx(l1_mean * 10 * 16 * 16, rel=1e-4)
