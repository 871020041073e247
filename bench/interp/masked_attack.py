"""Attacks confined to a region (Def. 7): FGSM / PGD whose perturbation lives only where region == 1.

x_O = clip(x + eps * sign(grad_x CE) * M) perturbs only object pixels M; x_B uses (1 - M).
Pixels outside the region are returned bit-for-bit unchanged.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import torch
import torch.nn.functional as F


def _loss_grad(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, autocast: Callable) -> torch.Tensor:
    x = x.detach().clone().requires_grad_(True)
    with autocast():
        loss = F.cross_entropy(model(x), y, reduction="sum")
    return torch.autograd.grad(loss, x)[0].float()


def masked_fgsm(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    region: torch.Tensor,
    eps: float,
    autocast: Callable = contextlib.nullcontext,
) -> torch.Tensor:
    """One signed-gradient step of size eps on the pixels where ``region`` (B, 1, H, W) is 1."""
    step = eps * _loss_grad(model, x, y, autocast).sign() * region
    return torch.where(region.bool().expand_as(x), (x + step).clamp(0, 1), x).detach()


def masked_pgd(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    region: torch.Tensor,
    eps: float,
    alpha: float,
    steps: int,
    autocast: Callable = contextlib.nullcontext,
) -> torch.Tensor:
    """L-infinity PGD (no random start) whose perturbation stays inside ``region``."""
    inside = region.bool().expand_as(x)
    x_adv = x.clone()
    for _ in range(steps):
        step = alpha * _loss_grad(model, x_adv, y, autocast).sign()
        candidate = torch.min(torch.max(x_adv + step, x - eps), x + eps).clamp(0, 1)
        x_adv = torch.where(inside, candidate, x)
    return x_adv.detach()
