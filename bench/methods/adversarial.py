"""Adversarial-training baselines: FGSM-AT with GradAlign and PGD-AT (Madry et al. 2018), L-infinity, [0, 1] pixels.

Both craft the perturbation inside ``loss`` with the model in train mode (BatchNorm uses batch statistics and its
running averages also see the attack's forward passes), as the reference recipes do: Madry et al.'s code and
tml-epfl/understanding-fast-adv-training (GradAlign) never switch to eval mode while training.
``attack_mode="eval"`` is the alternative (BatchNorm frozen while attacking, train mode restored for the update).

FGSM-AT follows the GradAlign recipe of methods_spec §1(d) for eps = 8/255 (the repo's sh/exps_diff_eps_cifar10.sh):
zero init, fgsm_alpha = 1.25 (with zero init the step is clipped to eps: plain FGSM), grad_align_lambda = 0.2,
GradAlign = lambda * (1 - mean cos(grad_x CE(x), grad_x CE(x + eta))), eta ~ U[-eps, eps]^d (not clipped to the
image range, as in the repo), cosine over the examples whose two gradients are non-zero, double backprop through
the second gradient only. That recipe also raises the peak learning rate to 0.30 (a `bench train --lr` setting).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
import torch.nn.functional as F

from bench.attacks import FGSM, PGD
from bench.methods.base import METHODS, Method

ATTACK_MODES = ("train", "eval")
INITS = ("zero", "random")


@contextlib.contextmanager
def attack_mode(model: torch.nn.Module, mode: str) -> Iterator[None]:
    """Train mode (reference recipes) or eval mode while the perturbation is crafted; restores the mode after."""
    if mode not in ATTACK_MODES:
        raise ValueError(f"attack_mode must be one of {ATTACK_MODES}, not '{mode}'")
    was_training = model.training
    if mode == "eval":
        model.eval()
    try:
        yield
    finally:
        model.train(was_training)


def input_gradient(
    model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, reduction: str = "mean", create_graph: bool = False
) -> torch.Tensor:
    """grad_x CE(model(x), y); detached unless ``create_graph`` (then x must already require grad)."""
    if not create_graph:
        x = x.detach().requires_grad_(True)
    loss = F.cross_entropy(model(x), y, reduction=reduction)
    grad = torch.autograd.grad(loss, x, create_graph=create_graph)[0]
    return grad if create_graph else grad.detach()


def uniform_noise(x: torch.Tensor, eps: float) -> torch.Tensor:
    return torch.empty_like(x).uniform_(-eps, eps)


def grad_align(
    model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, grad_x: torch.Tensor, eps: float
) -> torch.Tensor:
    """GradAlign: 1 - mean cosine between grad at x (given, detached) and grad at a uniform point of the eps-ball."""
    x_eta = (x.detach() + uniform_noise(x, eps)).requires_grad_(True)
    grad_eta = input_gradient(model, x_eta, y, create_graph=True).float()
    g1, g2 = grad_x.float().flatten(1), grad_eta.flatten(1)
    nonzero = (g1.norm(dim=1) > 0) & (g2.norm(dim=1) > 0)
    if not nonzero.any():
        return g2.sum() * 0.0
    cos = F.cosine_similarity(g1[nonzero], g2[nonzero], dim=1, eps=1e-20)
    return 1.0 - cos.mean()


class FGSMAT(Method):
    """FGSM adversarial training + GradAlign (Andriushchenko & Flammarion 2020)."""

    name = "fgsm_at"
    head = "gap"

    def __init__(
        self,
        eps: float = 8 / 255,
        fgsm_alpha: float = 1.25,
        init: str = "zero",
        grad_align_lambda: float = 0.2,
        attack_mode: str = "train",
        **rest: Any,
    ) -> None:
        if init not in INITS:
            raise ValueError(f"fgsm_at init must be one of {INITS}, not '{init}'")
        if attack_mode not in ATTACK_MODES:
            raise ValueError(f"attack_mode must be one of {ATTACK_MODES}, not '{attack_mode}'")
        super().__init__(
            eps=eps,
            fgsm_alpha=fgsm_alpha,
            init=init,
            grad_align_lambda=grad_align_lambda,
            attack_mode=attack_mode,
            **rest,
        )
        self.eps, self.fgsm_alpha, self.init = eps, fgsm_alpha, init
        self.grad_align_lambda, self.attack_mode = grad_align_lambda, attack_mode
        self.stats: dict[str, float] = {}

    def perturb(self, model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (x_adv, grad at the FGSM start point); GradAlign reuses that gradient."""
        attack = FGSM(
            model,
            self.eps,
            alpha=self.fgsm_alpha * self.eps,
            random_start=self.init == "random",
            mode="final",
            seed=None,
            model_mode="as-is",
        )
        attack.keep_start_grad, attack.check_last = True, False
        with attack_mode(model, self.attack_mode):
            result = attack.run(x, y)
        return result.adv, result.start_grad

    def loss(self, model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = x.detach()
        x_adv, grad = self.perturb(model, x, y)
        logits = model(x_adv)
        loss = F.cross_entropy(logits, y)
        if self.grad_align_lambda > 0:
            reg = grad_align(model, x, y, grad, self.eps)  # the FGSM start's gradient, as in the GradAlign repo
            self.stats = {"grad_align": float(reg.detach())}
            loss = loss + self.grad_align_lambda * reg
        return loss, logits


class PGDAT(Method):
    """PGD adversarial training (Madry et al. 2018): CE on a PGD-`steps` point of the L-infinity eps-ball."""

    name = "pgd_at"
    head = "gap"

    def __init__(
        self,
        eps: float = 8 / 255,
        alpha: float = 2 / 255,
        steps: int = 7,
        random_start: bool = True,
        attack_mode: str = "train",
        **rest: Any,
    ) -> None:
        if steps < 1:
            raise ValueError(f"pgd_at steps must be >= 1, not {steps}")
        if attack_mode not in ATTACK_MODES:
            raise ValueError(f"attack_mode must be one of {ATTACK_MODES}, not '{attack_mode}'")
        super().__init__(eps=eps, alpha=alpha, steps=steps, random_start=random_start, attack_mode=attack_mode, **rest)
        self.eps, self.alpha, self.steps = eps, alpha, steps
        self.random_start, self.attack_mode = random_start, attack_mode

    def perturb(self, model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        # final iterate, fresh random starts from the global generator; train.py already runs loss() under autocast
        attack = PGD(
            model,
            self.eps,
            self.alpha,
            self.steps,
            random_start=self.random_start,
            mode="final",
            seed=None,
            model_mode="as-is",
        )
        attack.check_last = False
        with attack_mode(model, self.attack_mode):
            return attack(x, y)

    def loss(self, model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x_adv = self.perturb(model, x.detach(), y)
        logits = model(x_adv)
        return F.cross_entropy(logits, y), logits


METHODS.add("fgsm_at", FGSMAT, description="FGSM-AT + GradAlign (eps 8/255, lambda 0.2), GradAlign-repo recipe")
METHODS.add("pgd_at", PGDAT, description="PGD-AT (Madry): PGD-7, alpha 2/255, random start, eps 8/255")
