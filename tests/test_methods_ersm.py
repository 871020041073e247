"""ERSM Energy-Mask layer (methods_spec §2(g)) and the ersm training method."""

from __future__ import annotations

import math

import pytest
import torch

from bench.data.cifar import embedded_sample
from bench.methods import METHODS
from bench.models.classifier import build_classifier
from bench.models.ersm import EnergyMask, ErsmSmallCNN, deleting, find_energy_mask, neighbour_similarity
from bench.registry import ARCHS

ARCHS.add("tiny_ersm", lambda: ErsmSmallCNN(widths=(8, 16, 32)), input_size=32, description="test-only")


def _random_layer(channels: int = 6, **kwargs) -> EnergyMask:
    torch.manual_seed(0)
    layer = EnergyMask(channels, **kwargs)
    with torch.no_grad():
        layer.weight.normal_()
        layer.bias.fill_(0.3)
    return layer


def test_shapes_and_literal_mask_range() -> None:
    layer = _random_layer()
    feats = torch.randn(2, 6, 5, 7) * 10
    out = layer(feats)
    assert out.shape == feats.shape
    assert layer.mask.shape == (2, 1, 5, 7) and layer.energy.shape == (2, 1, 5, 7)
    assert (layer.mask > 0).all() and (layer.mask < 0.5).all()


def test_logit_mask_variant_spans_zero_one() -> None:
    layer = _random_layer(mask_from="logit")
    layer(torch.randn(4, 6, 8, 8))
    assert layer.mask.max() > 0.5 and layer.mask.min() < 0.5


def test_energy_is_scale_invariant() -> None:
    layer = _random_layer()
    feats = torch.randn(2, 6, 5, 5)
    layer(feats)
    energy = layer.energy.clone()
    layer(3.7 * feats)
    torch.testing.assert_close(layer.energy, energy)


def test_pairwise_sum_on_constant_checkerboard_and_alternating_maps() -> None:
    v = torch.tensor([0.6, 0.8])
    constant = v.view(1, 2, 1, 1).expand(1, 2, 4, 5)
    expected = torch.tensor([[2, 3, 3, 3, 2], [3, 4, 4, 4, 3], [3, 4, 4, 4, 3], [2, 3, 3, 3, 2]], dtype=torch.float)
    torch.testing.assert_close(neighbour_similarity(constant)[0, 0], expected)
    parity = (torch.arange(4)[:, None] + torch.arange(5)[None]) % 2
    checker = torch.stack([parity == 0, parity == 1]).float()[None]  # two orthogonal unit vectors
    assert neighbour_similarity(checker).abs().max() == 0
    alternating = constant * (1 - 2 * parity.float())
    assert (neighbour_similarity(alternating)[0, 0, 1:-1, 1:-1] == -4).all()


def test_zero_init_gives_one_third_mask_and_log2_unary() -> None:
    layer = EnergyMask(3)
    layer(torch.randn(2, 3, 4, 4))
    torch.testing.assert_close(layer.mask, torch.full((2, 1, 4, 4), 1 / 3))
    torch.testing.assert_close(layer.last.unary, torch.full((2, 1, 4, 4), math.log(2)))


def test_no_energy_terms_give_half_mask_and_zero_regularizer() -> None:
    layer = _random_layer(lambda_unary=0.0, lambda_pair=0.0)
    layer(torch.randn(2, 6, 4, 4))
    torch.testing.assert_close(layer.mask, torch.full((2, 1, 4, 4), 0.5))
    assert layer.regularizer() == 0


def test_regularizer_hand_computed() -> None:
    # 2x2 map of equal tokens: every token is a corner with 2 neighbours of cosine 1, so S = 2.
    # U = softplus(0) = log 2, P = 0.25 softplus(2), m = 1/3, L_reg = (log 2 + 0.25 log(1 + e^2)) / 3 = 0.408293
    layer = EnergyMask(2)
    layer(torch.tensor([1.0, 0.0]).view(1, 2, 1, 1).expand(1, 2, 2, 2) * 5)
    assert layer.regularizer().item() == pytest.approx(0.408293, abs=1e-6)


def test_regularizer_gradcheck_and_zero_tokens_are_nan_free() -> None:
    layer = _random_layer(4).double()
    feats = torch.randn(1, 4, 3, 3, dtype=torch.float64, requires_grad=True)

    def reg(f: torch.Tensor) -> torch.Tensor:
        layer(f)
        return layer.regularizer()

    assert torch.autograd.gradcheck(reg, (feats,))
    zeros = torch.zeros(1, 4, 3, 3, dtype=torch.float64, requires_grad=True)
    reg(zeros).backward()
    assert torch.isfinite(zeros.grad).all() and torch.isfinite(layer.weight.grad).all()


def test_translation_equivariance_of_the_mask() -> None:
    layer = _random_layer()
    feats = torch.randn(1, 6, 6, 6)
    layer(feats)
    mask, energy = layer.mask.clone(), layer.energy.clone()
    layer(feats.roll(1, dims=-1))
    torch.testing.assert_close(layer.mask, mask.roll(1, dims=-1))
    torch.testing.assert_close(layer.energy[..., 1:-1, 2:-1], energy.roll(1, dims=-1)[..., 1:-1, 2:-1])


def test_arch_places_mask_at_8x8_and_deleting_zeroes_tokens() -> None:
    model = build_classifier("cnn_ersm", 10, "gap", "cifar10").eval()
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        model(x)
        assert model.backbone.energy.shape == (2, 1, 8, 8)
        layer = find_energy_mask(model)
        drop = torch.zeros(2, 1, 8, 8, dtype=torch.bool)
        drop[:, :, :4] = True
        base = model(x)
        with deleting(layer, drop):
            deleted = model(x)
        assert layer.drop is None
        assert not torch.allclose(base, deleted)


def test_ersm_method_adds_beta_times_regularizer_and_training_reduces_loss() -> None:
    torch.manual_seed(0)
    batch = embedded_sample().batch(torch.arange(64))
    model = build_classifier("tiny_ersm", 10, "gap", "cifar10")
    method = METHODS.create("ersm", beta=0.5)
    model.train()
    loss, logits = method.loss(model, batch.x, batch.y)
    ce = torch.nn.functional.cross_entropy(logits, batch.y)
    assert loss.item() == pytest.approx(ce.item() + 0.5 * find_energy_mask(model).regularizer().item(), rel=1e-6)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    first = loss.item()
    for _ in range(15):
        loss, _ = method.loss(model, batch.x, batch.y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.7 * first
    assert find_energy_mask(model).weight.grad.abs().sum() > 0


def test_ersm_method_refuses_a_model_without_the_layer() -> None:
    model = build_classifier("tiny", 10, "gap", "cifar10")
    with pytest.raises(ValueError, match="cnn_ersm"):
        METHODS.create("ersm").loss(model, torch.rand(2, 3, 32, 32), torch.tensor([0, 1]))


@pytest.mark.parametrize("arch", ["cnn", "cnn_ersm", "cnn_isvs"])
def test_grad_cam_hooks_fire_on_every_small_cnn_variant(arch):
    from bench.interp.cams import compute_cams, target_layer

    torch.manual_seed(0)
    model = build_classifier(arch, 10).eval()
    x = torch.rand(2, 3, 32, 32)
    cams = compute_cams(model, x, torch.tensor([1, 2]), "gradcam")
    assert cams.shape == (2, 32, 32) and torch.isfinite(cams).all() and cams.amax() > 0
    seen = []
    handle = target_layer(model).register_forward_hook(lambda m, i, out: seen.append(out))
    with torch.no_grad():
        last_map = model.features(x)[-1]
    handle.remove()
    assert len(seen) == 1  # the hook fired once, on the map the head pools
    torch.testing.assert_close(seen[0], last_map)
