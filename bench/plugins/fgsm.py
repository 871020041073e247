"""FGSM (Goodfellow et al. 2015), L-infinity."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from bench.plugins.attack_base import AttackPlugin
from bench.plugins.base import register_plugin


def fgsm(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, autocast) -> torch.Tensor:
    x = x.clone().requires_grad_(True)
    with autocast():
        loss = F.cross_entropy(model(x), y)
    grad = torch.autograd.grad(loss, x)[0]
    return (x + eps * grad.sign()).clamp(0, 1).detach()


@register_plugin
@dataclass
class FGSM(AttackPlugin):
    """FGSM: one signed-gradient step of size eps (L-infinity)."""

    name = "fgsm"

    def attack(self, model, x, y, index, ctx):
        if self.norm != "Linf":
            raise ValueError("fgsm is an L-infinity attack (norm: Linf)")
        return fgsm(model, x, y, self.eps, ctx.autocast)
