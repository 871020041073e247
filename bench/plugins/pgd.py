"""PGD (Madry et al. 2018), L-infinity and L2, batched, with restarts.

Random starts are drawn per example from (seed, restart, example index), so a result does not
depend on batch size or sharding. An example counts as robust only if it survives every restart.
The implementation is tested against torchattacks' PGD (tests/test_attacks.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from bench.plugins.attack_base import AttackPlugin
from bench.plugins.base import example_uniform, register_plugin


def _l2_normalize(g: torch.Tensor) -> torch.Tensor:
    return g / g.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, 1, 1, 1)


def project(x_adv: torch.Tensor, x: torch.Tensor, eps: float, norm: str) -> torch.Tensor:
    delta = x_adv - x
    if norm == "Linf":
        delta = delta.clamp(-eps, eps)
    else:
        scale = (eps / delta.flatten(1).norm(dim=1).clamp_min(1e-12)).clamp(max=1.0)
        delta = delta * scale.view(-1, 1, 1, 1)
    return (x + delta).clamp(0, 1)


def random_start(x: torch.Tensor, index: torch.Tensor, eps: float, norm: str, seed: int) -> torch.Tensor:
    noise = example_uniform(index, tuple(x.shape[1:]), seed, -eps, eps).to(x.device, x.dtype)
    if norm == "L2":  # a random direction with a random radius inside the ball
        radius = example_uniform(index, (1, 1, 1), seed + 7919, 0.0, eps).to(x.device, x.dtype)
        noise = _l2_normalize(noise) * radius
    return project(x + noise, x, eps, norm)


def pgd(model, x, y, eps, alpha, steps, norm="Linf", x_init=None, autocast=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Run PGD from ``x_init`` (default x); return (x_adv, zero_grad flags of the first step)."""
    x_adv = (x if x_init is None else x_init).clone().detach()
    zero_grad = torch.zeros(len(x), dtype=torch.bool, device=x.device)
    for step in range(steps):
        x_adv.requires_grad_(True)
        with autocast():
            loss = F.cross_entropy(model(x_adv), y, reduction="sum")
        grad = torch.autograd.grad(loss, x_adv)[0].float()
        if step == 0:
            zero_grad = grad.flatten(1).abs().amax(1) == 0
        direction = grad.sign() if norm == "Linf" else _l2_normalize(grad)
        x_adv = project(x_adv.detach() + alpha * direction, x, eps, norm)
    return x_adv.detach(), zero_grad


@register_plugin
@dataclass
class PGD(AttackPlugin):
    """PGD with random start and restarts (L-infinity or L2)."""

    name = "pgd"
    alpha: float = 2 / 255
    steps: int = 20
    restarts: int = 1
    random_start: bool = True

    def attack(self, model, x, y, index, ctx):
        if self.norm not in ("Linf", "L2"):
            raise ValueError(f"pgd norm must be Linf or L2, not {self.norm}")
        best = x.clone()
        alive = torch.ones(len(x), dtype=torch.bool, device=x.device)
        restarts = max(1, self.restarts)
        for restart in range(restarts):
            idx = alive.nonzero().flatten()
            if len(idx) == 0:
                break
            xs, ys = x[idx], y[idx]
            start = (
                random_start(xs, index[idx.cpu()], self.eps, self.norm, ctx.seed + 104729 * restart)
                if self.random_start
                else xs
            )
            x_adv, _ = pgd(model, xs, ys, self.eps, self.alpha, self.steps, self.norm, start, ctx.autocast)
            best[idx] = x_adv  # keep the last restart's image for survivors, the fooling one otherwise
            if restart + 1 < restarts:  # the caller predicts on the result: the last restart needs no extra pass
                with torch.no_grad(), ctx.autocast():
                    alive[idx[model(x_adv).argmax(1) != ys]] = False
        return best
