"""Cascade: the per-image worst case over a chain of attacks, each run only on the images the cheaper ones left.

AutoAttack's rule: an image is robust only if it survives every attack, so an image that one attack breaks need not
be attacked again. Stages run in the order given (cheapest first); each stage is an attack plugin with its own
parameters, all at the cascade's ``eps`` and ``norm``. The headline ``robust_accuracy`` equals the per-image worst
case of running every stage on every image (per-attack mode, the paper-table protocol) at a fraction of the cost;
``robust_after_<stage>`` is the cumulative robust accuracy after each stage and ``n_attacked_<stage>`` how many images
that stage had to attack. Rows of this plugin are cascade-mode rows by their plugin name.

Example suite entry::

    - plugin: cascade
      params: {eps: 8/255, stages: [{plugin: fgsm}, {plugin: pgd, params: {steps: 20}},
                                    {plugin: square, params: {n_queries: 5000}}]}
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch

from bench.attacks import AttackResult
from bench.plugins.attack_base import AttackPlugin, check_constraints
from bench.plugins.base import Context, MetricInfo, count, register_plugin, threat_suffix
from bench.registry import PLUGINS
from bench.stats import proportion


def stage_label(stage: dict[str, Any]) -> str:
    """A short name for a stage, e.g. ``pgd20``, ``square5000``, ``fgsm``.

    Example:
        >>> stage_label({"plugin": "pgd", "params": {"steps": 50}})
        'pgd50'
    """
    params = stage.get("params") or {}
    budget = params.get("steps", params.get("n_queries", ""))
    return f"{stage['plugin']}{budget}"


@register_plugin
@dataclass
class Cascade(AttackPlugin):
    """Per-image worst case over attacks run cheapest first, each on the survivors of the previous ones."""

    name = "cascade"
    metrics: ClassVar[dict[str, MetricInfo]] = {
        **AttackPlugin.metrics,
        "robust_accuracy": MetricInfo(
            "Robust accuracy, per-image worst case over all stages", "%", "higher", headline=True
        ),
        "robust_after_*": MetricInfo("Robust accuracy after this stage (cumulative)", "%", "higher"),
        "n_attacked_*": count("Images this stage attacked"),
    }
    stages: list[dict[str, Any]] = field(
        default_factory=lambda: [
            {"plugin": "fgsm"},
            {"plugin": "pgd", "params": {"steps": 20}},
            {"plugin": "pgd", "params": {"steps": 50}},
            {"plugin": "square", "params": {"n_queries": 5000}},
        ]
    )

    def __post_init__(self) -> None:
        for stage in self.stages:
            if not isinstance(stage, dict) or "plugin" not in stage:
                raise ValueError(f"cascade stage {stage} has no 'plugin'")
        labels = [stage_label(stage) for stage in self.stages]
        if not labels or len(set(labels)) != len(labels):
            raise ValueError(f"cascade stages must be non-empty and distinct, got {labels}")
        self._plugins = [self._stage_plugin(stage) for stage in self.stages]
        self._broken_by = np.zeros(0, dtype=np.int64)

    def describe(self, shown=None) -> str:
        """'Cascade FGSM→PGD-20→PGD-50→Square-5000 ε=8/255'."""
        chain = "→".join(plugin.describe().split(" ")[0] for plugin in self._plugins)
        return f"Cascade {chain}{threat_suffix(self.params())}"

    def _stage_plugin(self, stage: dict[str, Any]) -> AttackPlugin:
        cls = PLUGINS.entry(stage["plugin"]).factory
        if not (isinstance(cls, type) and issubclass(cls, AttackPlugin)):
            raise ValueError(f"cascade stage '{stage['plugin']}' is not an attack plugin")
        return cls(eps=self.eps, norm=self.norm, **(stage.get("params") or {}))

    def attack(self, model, x: torch.Tensor, y: torch.Tensor, index: torch.Tensor, ctx: Context) -> AttackResult:
        adv, pred = x.clone(), y.clone()
        broken_by = torch.full((len(x),), -1, dtype=torch.long)
        alive = torch.arange(len(x), device=x.device)
        passes = 0
        for i, plugin in enumerate(self._plugins):
            if len(alive) == 0:
                break
            result = plugin.attack(model, x[alive], y[alive], index[alive.cpu()], ctx)
            check_constraints(x[alive], result.adv, self.eps, self.norm)
            passes += result.forward_passes
            adv[alive], pred[alive] = result.adv, result.pred
            broken_by[alive[result.fooled].cpu()] = i
            alive = alive[~result.fooled]
        self._broken_by = broken_by.numpy()
        zero = torch.zeros(len(x), dtype=torch.bool, device=x.device)
        return AttackResult(adv, pred, pred != y, zero, passes)

    def run_batch(self, model, batch, ctx: Context) -> dict[str, np.ndarray]:
        self._broken_by = np.zeros(0, dtype=np.int64)
        out = super().run_batch(model, batch, ctx)
        broken_by = np.full(len(out["label"]), -1, dtype=np.int64)
        broken_by[out["attacked"].astype(bool)] = self._broken_by
        out["broken_by"] = broken_by
        return out

    def _survived(self, examples: pd.DataFrame) -> dict[str, np.ndarray]:
        """Per image: still robust after each stage (clean-correct and not broken by that stage or an earlier one)."""
        correct = (examples["clean_pred"] == examples["label"]).to_numpy()
        broken_by = examples["broken_by"].to_numpy()
        return {
            stage_label(stage): correct & ((broken_by < 0) | (broken_by > i)) for i, stage in enumerate(self.stages)
        }

    def example_values(self, examples: pd.DataFrame, seed: int = 0) -> dict:
        after = {f"robust_after_{label}": proportion(flags) for label, flags in self._survived(examples).items()}
        return {**super().example_values(examples, seed), **after}

    def summarize(self, examples: pd.DataFrame, ctx: Context) -> list[tuple[str, float]]:
        metrics = super().summarize(examples, ctx)
        correct = (examples["clean_pred"] == examples["label"]).to_numpy()
        broken_by = examples["broken_by"].to_numpy()
        n = max(len(examples), 1)
        for i, (label, survived) in enumerate(self._survived(examples).items()):
            attacked = correct & ((broken_by < 0) | (broken_by >= i))
            metrics.append((f"robust_after_{label}", float(survived.sum()) / n))
            metrics.append((f"n_attacked_{label}", float(attacked.sum())))
        return metrics
