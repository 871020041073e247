"""Clean accuracy."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bench.plugins.base import Context, Plugin, accuracy, predict, register_plugin


@register_plugin
@dataclass
class Clean(Plugin):
    """Clean (unperturbed) top-1 accuracy."""

    name = "clean"

    def run_batch(self, model, batch, ctx: Context) -> dict[str, np.ndarray]:
        pred = predict(model, batch.x, ctx)
        return {"label": batch.y.numpy(), "pred": pred.cpu().numpy(), "correct": (pred.cpu() == batch.y).numpy()}

    def summarize(self, examples, ctx):
        return [("accuracy", accuracy(examples["correct"]))]
