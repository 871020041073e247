"""Clean accuracy."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bench.plugins.base import Context, MetricInfo, Plugin, accuracy, predict, register_plugin
from bench.stats import proportion


@register_plugin
@dataclass
class Clean(Plugin):
    """Clean (unperturbed) top-1 accuracy."""

    name = "clean"
    metrics = {"accuracy": MetricInfo("Clean accuracy", "%", "higher", headline=True)}
    report_order = 0
    ranks_suites = False

    def describe(self, shown=None) -> str:
        return "Clean"

    def run_batch(self, model, batch, ctx: Context) -> dict[str, np.ndarray]:
        pred = predict(model, batch.x, ctx)
        return {"label": batch.y.cpu().numpy(), "pred": pred.cpu().numpy(), "correct": (pred == batch.y).cpu().numpy()}

    def summarize(self, examples, ctx):
        return [("accuracy", accuracy(examples["correct"]))]

    def example_values(self, examples, seed: int = 0):
        return {"accuracy": proportion(examples["correct"])}
