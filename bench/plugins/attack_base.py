"""Shared machinery of the adversarial plugins: clean pass, attack only what is correct, checks."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from bench.plugins.base import Context, Plugin, accuracy, predict


class ConstraintViolation(RuntimeError):
    """An attack returned images outside the epsilon-ball or outside [0, 1]."""


@contextlib.contextmanager
def frozen(model: torch.nn.Module) -> Iterator[None]:
    """Eval mode and no parameter gradients during an attack; restores both afterwards."""
    was_training = model.training
    flags = [p.requires_grad for p in model.parameters()]
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in zip(model.parameters(), flags, strict=True):
            p.requires_grad_(flag)
        model.train(was_training)


def perturbation_norm(delta: torch.Tensor, norm: str) -> torch.Tensor:
    flat = delta.flatten(1)
    return flat.abs().amax(1) if norm == "Linf" else flat.norm(dim=1)


def check_constraints(x: torch.Tensor, x_adv: torch.Tensor, eps: float, norm: str, tol: float = 1e-5) -> None:
    if x_adv.min() < -tol or x_adv.max() > 1 + tol:
        raise ConstraintViolation(f"adversarial images leave [0, 1] (range {x_adv.min():.4g}..{x_adv.max():.4g})")
    worst = float(perturbation_norm(x_adv - x, norm).max()) if len(x) else 0.0
    if worst > eps + tol:
        raise ConstraintViolation(f"adversarial {norm} perturbation {worst:.6g} exceeds eps={eps:.6g}")


@dataclass
class AttackPlugin(Plugin):
    """Attacks the clean-correct examples of a batch; an example is robust if it stays correct."""

    eps: float = 8 / 255
    norm: str = "Linf"

    def attack(
        self, model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, index: torch.Tensor, ctx: Context
    ) -> torch.Tensor:
        raise NotImplementedError

    def run_batch(self, model, batch, ctx: Context) -> dict[str, np.ndarray]:
        x, y = batch.x.to(ctx.device), batch.y.to(ctx.device)
        clean_pred = predict(model, x, ctx)
        attacked = clean_pred == y
        adv_pred = clean_pred.clone()
        dist = torch.zeros(len(x), device=x.device)
        if attacked.any():
            xa, ya = x[attacked], y[attacked]
            with frozen(model):
                x_adv = self.attack(model, xa, ya, batch.index[attacked.cpu()], ctx).detach()
            check_constraints(xa, x_adv, self.eps, self.norm)
            adv_pred[attacked] = predict(model, x_adv, ctx)
            dist[attacked] = perturbation_norm(x_adv - xa, self.norm)
        cpu = lambda t: t.cpu().numpy()  # noqa: E731
        return {
            "label": cpu(y),
            "clean_pred": cpu(clean_pred),
            "adv_pred": cpu(adv_pred),
            "attacked": cpu(attacked),
            "robust": cpu(adv_pred == y),
            "distance": cpu(dist),
        }

    def summarize(self, examples: pd.DataFrame, ctx: Context) -> list[tuple[str, float]]:
        attacked = examples["attacked"].astype(bool)
        return [
            ("clean_accuracy", accuracy(examples["clean_pred"] == examples["label"])),
            ("robust_accuracy", accuracy(examples["robust"])),
            ("attack_success_rate", 1.0 - accuracy(examples.loc[attacked, "robust"]) if attacked.any() else 0.0),
            ("n_attacked", float(attacked.sum())),
            ("max_distance", float(examples["distance"].max()) if len(examples) else 0.0),
        ]
