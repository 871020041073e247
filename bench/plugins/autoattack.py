"""AutoAttack (Croce & Hein 2020) through pyautoattack, with the upstream 'standard' settings.

APGD-CE, APGD-T, FAB-T (100 iterations each) and Square (5,000 queries); the number of target
classes is min(9, classes - 1). Never torchattacks' 10-step variant. AutoAttack's own checks
(randomness, zero gradients, ...) are counted in the ``checks_warnings`` metric.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch

from bench.plugins.attack_base import AttackPlugin, result_of
from bench.plugins.base import Context, FlagEvidence, MetricInfo, register_plugin, threat_suffix


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def build_adversary(model: torch.nn.Module, norm: str, eps: float, version: str, ctx: Context) -> Any:
    """pyautoattack's ``AutoAttack`` as the plugin runs it: the run's seed, min(9, classes - 1) target classes."""
    from pyautoattack import AutoAttack

    adversary = AutoAttack(model, norm=norm, eps=eps, version=version, seed=ctx.seed, device=ctx.device)
    targets = min(9, ctx.num_classes - 1)
    adversary.apgd_targeted.n_target_classes = targets
    adversary.fab.n_target_classes = targets
    return adversary


@register_plugin
@dataclass
class AutoAttackPlugin(AttackPlugin):
    """AutoAttack 'standard' (APGD-CE, APGD-T, FAB-T, Square) via pyautoattack."""

    name = "autoattack"
    version: str = "standard"
    _warnings: list[str] = field(default_factory=list, repr=False, compare=False)

    def params(self) -> dict:
        import importlib.metadata as md

        return {"eps": self.eps, "norm": self.norm, "version": self.version, "pyautoattack": md.version("pyautoattack")}

    def attack(self, model, x, y, index, ctx: Context):
        adversary = build_adversary(model, self.norm, self.eps, self.version, ctx)
        handler = _Collect()
        logger = logging.getLogger("auto-attack")
        logger.addHandler(handler)
        try:
            # contiguous: pyautoattack's check_zero_gradients calls .view on gradients shaped like channels_last x
            x_adv, _ = adversary.run_standard_evaluation(x.contiguous(), y, batch_size=len(x))
        finally:
            logger.removeHandler(handler)
        self._warnings.extend(handler.messages)
        return result_of(model, x_adv, y, ctx)

    def run_batch(self, model, batch, ctx) -> dict[str, np.ndarray]:
        self._warnings.clear()
        out = super().run_batch(model, batch, ctx)
        out["checks_warnings"] = np.full(len(batch.y), len(self._warnings))
        return out

    def summarize(self, examples: pd.DataFrame, ctx: Context):
        metrics = super().summarize(examples, ctx)
        return metrics + [("checks_warnings", float(examples["checks_warnings"].max()) if len(examples) else 0.0)]

    metrics = {
        **AttackPlugin.metrics,
        "checks_warnings": MetricInfo("AutoAttack check warnings", "count", "lower", "flag"),
    }
    report_order = 11

    def flag_evidence(self, metric: str) -> FlagEvidence | None:
        if metric != "checks_warnings":
            return None
        rule = (
            "raised when AutoAttack's own checks (randomness, zero gradients, ...) warned during the run; the value "
            "is the number of warnings"
        )
        return FlagEvidence(rule, (("robust accuracy under AutoAttack", "robust_accuracy"),))

    def describe(self, shown=None) -> str:
        return f"AutoAttack ({self.version}){threat_suffix(self.params())}"
