"""FGSM-AT (GradAlign), PGD-AT and norm-regularized AT (methods_spec §1(d), §4(g))."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from bench.data.cifar import embedded_sample
from bench.methods import METHODS
from bench.methods.adversarial import grad_align
from bench.methods.normreg_at import (
    elastic_cost,
    fast_perturbation,
    gradient_penalty,
    group_norms,
    project_groups,
)
from bench.models.classifier import build_classifier

EPS = 8 / 255


@pytest.fixture(scope="module")
def batch():
    return embedded_sample().batch(torch.arange(64))


def _tiny(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_classifier("tiny", 10, "gap", "cifar10").train()


def _train(method, model, batch, steps: int = 12) -> tuple[float, float]:
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(steps):
        loss, _ = method.loss(model, batch.x, batch.y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses[0], losses[-1]


def _capture_inputs(model: torch.nn.Module) -> list[torch.Tensor]:
    seen: list[torch.Tensor] = []
    model.register_forward_pre_hook(lambda _m, args: seen.append(args[0].detach().clone()))
    return seen


@pytest.mark.parametrize(
    "name, kwargs",
    [
        ("fgsm_at", {}),
        ("fgsm_at", {"init": "random"}),
        ("pgd_at", {}),
        ("normreg_at", {}),
        ("normreg_at", {"training": "iterative", "eps": 4 / 255}),
        ("normreg_at_group", {}),
        ("normreg_at_group", {"training": "iterative"}),
        ("normreg_at_elastic", {}),
    ],
)
def test_training_input_stays_in_the_ball_and_the_image_range(batch, name, kwargs) -> None:
    method = METHODS.create(name, **kwargs)
    model = _tiny()
    seen = _capture_inputs(model)
    torch.manual_seed(1)
    method.loss(model, batch.x, batch.y)
    trained_on = seen[-1] if name != "fgsm_at" else seen[1]  # fgsm_at: FGSM grad, CE on x_adv, then GradAlign
    delta = trained_on - batch.x
    assert trained_on.min() >= 0 and trained_on.max() <= 1
    assert delta.abs().amax() > 0
    if name == "normreg_at_group":
        assert group_norms(delta, 4).max() <= method.eps + 1e-6
    elif name != "normreg_at_elastic":
        assert delta.abs().amax() <= method.eps + 1e-6


def test_model_stays_in_train_mode_unless_attack_mode_eval(batch) -> None:
    modes = []
    model = _tiny()
    model.register_forward_pre_hook(lambda m, _a: modes.append(m.training))
    METHODS.create("pgd_at", steps=2).loss(model, batch.x, batch.y)
    assert modes == [True, True, True]
    modes.clear()
    METHODS.create("pgd_at", steps=2, attack_mode="eval").loss(model, batch.x, batch.y)
    assert modes == [False, False, True] and model.training


@pytest.mark.parametrize("name", ["fgsm_at", "pgd_at", "normreg_at", "normreg_at_elastic", "normreg_at_group"])
def test_a_few_steps_reduce_the_training_loss(batch, name) -> None:
    method = METHODS.create(name, **({"steps": 3} if name == "pgd_at" else {}))
    first, last = _train(method, _tiny(), batch)
    assert last < 0.85 * first


def test_grad_align_is_zero_for_a_linear_model_and_positive_otherwise(batch) -> None:
    torch.manual_seed(0)
    linear = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 32 * 32, 10))
    x, y = batch.x[:8], batch.y[:8]
    grad = torch.autograd.grad(F.cross_entropy(linear(x.requires_grad_(True)), y), x)[0]
    x = x.detach()
    # softmax makes the input gradient of a linear model only nearly constant in the ball
    assert grad_align(linear, x, y, grad, EPS).item() < 1e-3
    assert grad_align(_tiny(), x, y, grad, EPS).item() > 1e-2


def test_fgsm_at_loss_is_ce_on_the_fgsm_point_plus_lambda_grad_align(batch) -> None:
    model = _tiny()
    x, y = batch.x[:16], batch.y[:16]
    torch.manual_seed(3)
    loss, logits = METHODS.create("fgsm_at").loss(model, x, y)
    torch.manual_seed(3)
    no_reg, logits_no_reg = METHODS.create("fgsm_at", grad_align_lambda=0.0).loss(model, x, y)
    assert loss.item() > no_reg.item()
    x_req = x.clone().requires_grad_(True)
    grad = torch.autograd.grad(F.cross_entropy(model(x_req), y), x_req)[0]
    x_fgsm = (x + EPS * grad.sign()).clamp(0, 1)
    torch.testing.assert_close(no_reg, F.cross_entropy(model(x_fgsm), y), atol=1e-5, rtol=1e-5)


def test_standard_mode_reproduces_erm_exactly(batch) -> None:
    model = _tiny()
    x, y = batch.x[:16], batch.y[:16]
    loss, logits = METHODS.create("normreg_at", mode="standard").loss(model, x, y)
    loss.backward()
    grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    reference = F.cross_entropy(model(x), y)
    reference.backward()
    assert loss.item() == reference.item()
    assert all(torch.equal(a, p.grad) for a, p in zip(grads, model.parameters(), strict=True))


def test_linear_model_one_step_linf_closed_form() -> None:
    torch.manual_seed(0)
    w = torch.randn(3 * 4 * 4, dtype=torch.float64)

    class Linear(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            score = x.flatten(1) @ w
            return torch.stack([torch.zeros_like(score), score], 1)  # CE = softplus(-y w^T x), y in {-1, +1}

    x = torch.rand(5, 3, 4, 4, dtype=torch.float64)
    labels = torch.tensor([0, 1, 1, 0, 1])
    eps = 0.01
    loss, _ = METHODS.create("normreg_at", eps=eps, clip=False).loss(Linear(), x, labels)
    sign = 2 * labels.double() - 1
    expected = F.softplus(-sign * (x.flatten(1) @ w) + eps * w.abs().sum()).mean()
    torch.testing.assert_close(loss, expected)


@pytest.mark.parametrize("mode", ["l1", "elastic", "group"])
def test_duality_identity_and_no_feasible_delta_does_better(mode: str) -> None:
    torch.manual_seed(0)
    g = torch.randn(1, 2, 4, 4, dtype=torch.float64)  # dimension 32, 4 groups of 2x2 per channel
    eps, eps1, eps2, patch = 0.1, 0.05, 0.3, 2
    best = fast_perturbation(g, mode, eps, eps1, eps2, patch)
    cost = elastic_cost(best, eps1, eps2) if mode == "elastic" else torch.zeros(1, dtype=torch.float64)
    value = (g * best).sum() - cost
    torch.testing.assert_close(value, gradient_penalty(g, mode, eps, eps1, eps2, patch))
    candidates = torch.randn(10_000, 2, 4, 4, dtype=torch.float64)
    if mode == "l1":
        candidates = (candidates.sign() * eps * torch.rand_like(candidates)).clamp(-eps, eps)
        objective = (candidates * g).flatten(1).sum(1)
    elif mode == "group":
        candidates = project_groups(candidates * eps, eps, patch)
        assert group_norms(candidates, patch).max() <= eps + 1e-12
        objective = (candidates * g).flatten(1).sum(1)
    else:
        candidates = best + 0.05 * candidates
        objective = (candidates * g).flatten(1).sum(1) - elastic_cost(candidates, eps1, eps2)
    assert objective.max() <= value + 1e-12


def test_fast_group_perturbation_has_radius_eps_where_the_gradient_is_nonzero() -> None:
    g = torch.randn(2, 3, 8, 8)
    g[0, 1, :4, :4] = 0
    delta = fast_perturbation(g, "group", eps=0.03, patch=4)
    norms = group_norms(delta, 4)
    assert norms[0, 1, 0, 0] == 0
    mask = torch.ones_like(norms, dtype=torch.bool)
    mask[0, 1, 0, 0] = False
    torch.testing.assert_close(norms[mask], torch.full_like(norms[mask], 0.03))


def test_fast_elastic_perturbation_decomposes() -> None:
    g = torch.randn(2, 3, 4, 4)
    delta = fast_perturbation(g, "elastic", eps=0.0, eps1=0.01, eps2=0.2)
    torch.testing.assert_close(delta - 0.01 * g.sign(), 2 * 0.2 * g)


def test_group_mode_refuses_a_patch_that_does_not_tile(batch) -> None:
    with pytest.raises(ValueError, match="tile"):
        METHODS.create("normreg_at_group", patch=5).loss(_tiny(), batch.x[:2], batch.y[:2])


@pytest.mark.parametrize("bad", [{"mode": "l3"}, {"training": "slow"}, {"attack_mode": "test"}])
def test_bad_parameters_raise_one_line_errors(bad) -> None:
    with pytest.raises(ValueError, match="must be one of"):
        METHODS.create("normreg_at", **bad)
