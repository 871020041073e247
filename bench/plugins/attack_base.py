"""Shared machinery of the adversarial plugins: clean pass, attack only what is correct, checks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd
import torch

from bench.attacks import PGD as PGDAttack
from bench.attacks import AttackResult, frozen, perturbation_norm
from bench.plugins.base import AttackOutcome, Context, MetricInfo, Plugin, accuracy, count, predict, threat_suffix
from bench.stats import proportion

__all__ = ["AttackPlugin", "ConstraintViolation", "check_constraints", "frozen", "perturbation_norm", "result_of"]


class ConstraintViolation(RuntimeError):
    """An attack returned images outside the epsilon-ball or outside [0, 1]."""


def check_constraints(x: torch.Tensor, x_adv: torch.Tensor, eps: float, norm: str, tol: float = 1e-5) -> None:
    if x_adv.min() < -tol or x_adv.max() > 1 + tol:
        raise ConstraintViolation(f"adversarial images leave [0, 1] (range {x_adv.min():.4g}..{x_adv.max():.4g})")
    worst = float(perturbation_norm(x_adv - x, norm).max()) if len(x) else 0.0
    if worst > eps + tol:
        raise ConstraintViolation(f"adversarial {norm} perturbation {worst:.6g} exceeds eps={eps:.6g}")


def result_of(model: torch.nn.Module, x_adv: torch.Tensor, y: torch.Tensor, ctx: Context) -> AttackResult:
    """The outcome of an attack that returns only images (Square, AutoAttack): one prediction pass on them."""
    x_adv = x_adv.detach()
    pred = predict(model, x_adv, ctx)
    zero = torch.zeros(len(x_adv), dtype=torch.bool, device=x_adv.device)
    return AttackResult(x_adv, pred, pred != y, zero, forward_passes=len(x_adv))


@dataclass
class AttackPlugin(Plugin):
    """Attacks the clean-correct examples of a batch; an example is robust if it stays correct."""

    eps: float = 8 / 255
    norm: str = "Linf"

    def make_attack(self, model: torch.nn.Module, ctx: Context) -> PGDAttack:
        """The ``bench.attacks`` object of this plugin (gradient attacks); other attacks override ``attack``."""
        raise NotImplementedError

    def attack(
        self, model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, index: torch.Tensor, ctx: Context
    ) -> AttackResult:
        """Attack clean-correct examples; the model is already frozen (eval mode, no parameter gradients)."""
        attack = self.make_attack(model, ctx)
        attack.model_mode = "as-is"
        return attack.run(x, y, index)

    def run_batch(self, model, batch, ctx: Context) -> dict[str, np.ndarray]:
        x, y = batch.x, batch.y  # the runner moved the batch to the device
        clean_pred = predict(model, x, ctx)
        attacked = clean_pred == y
        adv_pred = clean_pred.clone()
        dist = torch.zeros(len(x), device=x.device)
        if attacked.any():
            xa, ya = x[attacked], y[attacked]
            with frozen(model):
                result = self.attack(model, xa, ya, batch.index[attacked.cpu()], ctx)
            x_adv = result.adv.detach()
            check_constraints(xa, x_adv, self.eps, self.norm)
            adv_pred[attacked] = result.pred
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

    # ----- how the report layer reads this plugin (bench.plugins.base.Plugin)
    metrics: ClassVar[dict[str, MetricInfo]] = {
        "robust_accuracy": MetricInfo("Robust accuracy", "%", "higher", headline=True),
        "clean_accuracy": MetricInfo("Clean accuracy", "%", "higher"),
        "attack_success_rate": MetricInfo("Attack success rate (among attacked)", "%", "lower"),
        "n_attacked": count("Attacked images"),
        "max_distance": MetricInfo("Largest perturbation norm (≤ ε)", "", "none", "setting"),
    }
    report_order: ClassVar[int] = 10

    def describe(self, shown=None) -> str:
        """'PGD-20×5 best-iterate ε=8/255': the class name, its steps or queries, restarts when more than one, which
        iterate counts (``mode``, for the gradient attacks), the threat model."""
        params = self.params()
        budget = next((f"-{params[k]}" for k in ("steps", "n_queries") if k in params), "")
        restarts = f"×{params['restarts']}" if int(params.get("restarts", 1) or 1) > 1 else ""
        iterate = {"best": " best-iterate", "final": " final-iterate"}.get(params.get("mode", ""), "")
        return f"{type(self).__name__}{budget}{restarts}{iterate}{threat_suffix(params)}"

    def threat_model(self) -> tuple[str, float]:
        return self.norm, float(self.eps)

    def example_values(self, examples: pd.DataFrame, seed: int = 0) -> dict:
        attacked = examples["attacked"].astype(bool)
        return {
            "clean_accuracy": proportion(examples["clean_pred"] == examples["label"]),
            "robust_accuracy": proportion(examples["robust"]),
            "attack_success_rate": proportion(~examples["robust"].astype(bool), where=attacked),
        }

    def attack_outcomes(self, examples: pd.DataFrame) -> list[AttackOutcome]:
        robust = examples["robust"].to_numpy(dtype=bool)
        return [AttackOutcome(self.describe(), float(self.eps), self.norm, robust)]

    def curve_point(self, metric: str) -> dict | None:
        """Iterative L-infinity attacks put their robust accuracy on the robust-vs-steps/eps curves."""
        params = self.params()
        if metric != "robust_accuracy" or "steps" not in params or self.norm != "Linf":
            return None
        return {
            "curve": "robust",
            "eps": float(self.eps),
            "steps": int(params["steps"]),
            "restarts": int(params.get("restarts", 1)),
        }
