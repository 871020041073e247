"""ISVS Split-LBI smoothing (methods_spec §3(g)) and the isvs training method."""

from __future__ import annotations

import pytest
import torch

from bench.data.cifar import embedded_sample
from bench.methods import METHODS
from bench.models.backbones import SmallCNN
from bench.models.classifier import build_classifier
from bench.models.isvs import SplitLBISmoother, grad_adjoint, grad_op, isvs_arch, psnr, shrink
from bench.registry import ARCHS

ARCHS.add("tiny_isvs", isvs_arch(lambda: SmallCNN(widths=(8, 16, 32)), iterations=20), input_size=32, source="test")


def test_constant_image_is_a_fixed_point() -> None:
    x = torch.full((2, 3, 8, 8), 0.37, dtype=torch.float64)
    assert (SplitLBISmoother()(x) - x).abs().max() < 1e-12


def test_intensity_shift_carries_through_but_scale_does_not() -> None:
    torch.manual_seed(0)
    x = torch.rand(2, 3, 12, 12, dtype=torch.float64)
    smoother = SplitLBISmoother()
    torch.testing.assert_close(smoother(x + 0.25), smoother(x) + 0.25, atol=1e-12, rtol=0)
    assert (smoother(2 * x) - 2 * smoother(x)).abs().max() > 1e-3  # the shrink threshold is not scale-free


def test_zero_iterations_give_the_channel_mean_and_gamma_starts_at_zero() -> None:
    x = torch.rand(1, 3, 6, 6, dtype=torch.float64)
    smoother = SplitLBISmoother()
    u, _ = smoother.path(x, iterations=0)
    torch.testing.assert_close(u, x.mean((-2, -1), keepdim=True).expand_as(x))
    _, gamma = smoother.path(x, iterations=3)
    assert all((g == 0).all() for g in gamma)


def test_psnr_rises_along_the_early_path() -> None:
    x = embedded_sample().batch(torch.arange(16)).x
    smoother = SplitLBISmoother()
    values = [psnr(smoother.path(x, iterations=k)[0], x).mean().item() for k in (0, 10, 40, 100)]
    assert values == sorted(values) and values[-1] > values[0] + 5


def test_edge_preserving_unlike_a_gaussian_blur() -> None:
    torch.manual_seed(0)
    step = torch.zeros(1, 1, 32, 32)
    step[..., 16:] = 1
    noisy = step + 0.05 * torch.randn_like(step)
    out = SplitLBISmoother(iterations=200)(noisy)
    assert out[..., :16].std() < 0.025 and out[..., 16:].std() < 0.025
    assert (out[..., 16] - out[..., 15]).mean() > 0.9
    radius = torch.arange(-3, 4, dtype=torch.float)
    kernel = torch.exp(-(radius**2) / (2 * 0.8**2))
    kernel = (kernel / kernel.sum()).view(1, 1, 1, -1)
    blurred = torch.nn.functional.conv2d(torch.nn.functional.pad(noisy, (3, 3, 0, 0), mode="replicate"), kernel)
    assert (blurred[..., 16] - blurred[..., 15]).mean() < 0.9


def test_shrink_values_and_adjointness() -> None:
    z = torch.tensor([-2.5, -1.0, -0.3, 0.0, 0.7, 1.0, 1.8])
    torch.testing.assert_close(shrink(z, 1.0), torch.tensor([-1.5, 0.0, 0.0, 0.0, 0.0, 0.0, 0.8]))
    torch.manual_seed(0)
    u = torch.randn(2, 3, 5, 7, dtype=torch.float64)
    v = (torch.randn(2, 3, 5, 6, dtype=torch.float64), torch.randn(2, 3, 4, 7, dtype=torch.float64))
    du = grad_op(u)
    lhs = (du[0] * v[0]).sum() + (du[1] * v[1]).sum()
    torch.testing.assert_close(lhs, (u * grad_adjoint(v)).sum())


@pytest.mark.parametrize("coupling", ["anisotropic", "rgb_group"])
def test_gradcheck_through_all_iterations(coupling: str) -> None:
    torch.manual_seed(0)
    smoother = SplitLBISmoother(iterations=6, coupling=coupling, checkpoint_every=2)
    x = (torch.rand(1, 3, 6, 6, dtype=torch.float64) * 30).requires_grad_(True)  # large contrast: G becomes non-zero
    _, gamma = smoother.path(x.detach())
    assert any((g != 0).any() for g in gamma), "the test must exercise the shrink"
    assert torch.autograd.gradcheck(smoother, (x,))


def test_checkpointing_gives_the_same_gradient() -> None:
    x = torch.rand(2, 3, 8, 8, dtype=torch.float64)
    grads = []
    for every in (0, 7):
        xg = x.clone().requires_grad_(True)
        SplitLBISmoother(iterations=30, checkpoint_every=every)(xg).pow(2).sum().backward()
        grads.append(xg.grad)
    torch.testing.assert_close(grads[0], grads[1])


def test_projected_output_is_piecewise_constant_region_means() -> None:
    x = torch.zeros(1, 1, 6, 6, dtype=torch.float64)
    x[..., 3:] = 5.0
    smoother = SplitLBISmoother(iterations=50, output="projected")
    out = smoother(x)
    torch.testing.assert_close(out, x)  # the strong edge enters supp(G): two regions, each averaged exactly


def test_classifier_smooths_pixels_not_normalized_values() -> None:
    model = build_classifier("tiny_isvs", 10, "gap", "cifar10").eval()
    x = embedded_sample().batch(torch.arange(4)).x
    seen = {}
    model.backbone.body.register_forward_pre_hook(lambda _m, args: seen.setdefault("x", args[0]))
    with torch.no_grad():
        model(x)
    expected = (SplitLBISmoother(iterations=20)(x) - model.mean) / model.std
    torch.testing.assert_close(seen["x"], expected, atol=1e-5, rtol=1e-5)


def test_attack_gradient_flows_through_the_smoothing() -> None:
    model = build_classifier("tiny_isvs", 10, "gap", "cifar10").eval()
    x = embedded_sample().batch(torch.arange(2)).x.requires_grad_(True)
    model(x).sum().backward()
    assert x.grad.abs().sum() > 0


def test_isvs_method_binds_the_classifier_normalization_and_it_is_saved() -> None:
    model = build_classifier("tiny_isvs", 10, "gap", "imagenet").train()
    x = torch.rand(2, 3, 32, 32)
    seen = {}
    model.backbone.body.register_forward_pre_hook(lambda _m, args: seen.setdefault("x", args[0]))
    METHODS.create("isvs").loss(model, x, torch.tensor([0, 1]))
    expected = (SplitLBISmoother(iterations=20)(x) - model.mean) / model.std
    torch.testing.assert_close(seen["x"], expected, atol=1e-5, rtol=1e-5)
    state = model.state_dict()
    torch.testing.assert_close(state["backbone.pixel_std"], model.std)
    reloaded = build_classifier("tiny_isvs", 10, "gap", "imagenet")
    reloaded.load_state_dict(state)
    torch.testing.assert_close(reloaded.backbone.pixel_mean, model.mean)


def test_isvs_training_reduces_loss() -> None:
    method = METHODS.create("isvs")
    torch.manual_seed(0)
    batch = embedded_sample().batch(torch.arange(64))
    model = build_classifier("tiny_isvs", 10, "gap", "cifar10").train()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(15):
        loss, _ = method.loss(model, batch.x, batch.y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0]


def test_mixing_feeds_raw_images_for_bypassed_examples() -> None:
    model = build_classifier("tiny_isvs", 10, "gap", "cifar10").eval()
    x = torch.rand(3, 3, 32, 32)
    smoothing = model.backbone
    smoothing.bypass = torch.tensor([True, False, True])
    out = smoothing.smooth_pixels(x)
    smoothing.bypass = None
    torch.testing.assert_close(out[[0, 2]], x[[0, 2]])
    torch.testing.assert_close(out[1], SplitLBISmoother(iterations=20)(x[1:2])[0])
