"""CAM l1 sparsity (Top-GAP paper Fig. 4, Table A4): mean of the min-max-scaled input-resolution CAM."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from bench.interp.cams import compute_cams, resolve_method
from bench.interp.common import explained_class
from bench.plugins.base import Context, MetricInfo, Plugin, register_plugin, setting
from bench.stats import mean_of


@register_plugin
@dataclass
class CAMSparsity(Plugin):
    """Mean l1 of the min-max-scaled CAM of the ground-truth class (lower is sparser; range [0, 1])."""

    name = "cam_sparsity"
    metrics = {
        "l1_sparsity": MetricInfo("CAM l1 (mean of the min-max CAM)", "", "lower", headline=True),
        "l1_sparsity_std": MetricInfo("CAM l1, std over images", "", "none", "setting"),
        "uses_native_cam": setting("Native CAM share"),
    }
    method: str = "auto"
    target: str = "label"

    def run_batch(self, model, batch, ctx: Context) -> dict[str, np.ndarray]:
        target = explained_class(model, batch, self.target, ctx)
        cams = compute_cams(model, batch.x, target, self.method)
        native = resolve_method(model, self.method) == "native"
        return {
            "label": batch.y.cpu().numpy(),
            "l1": cams.flatten(1).mean(1).numpy(),
            "native": np.full(len(cams), native),
        }

    def summarize(self, examples: pd.DataFrame, ctx: Context) -> list[tuple[str, float]]:
        return [
            ("l1_sparsity", float(examples["l1"].mean())),
            ("l1_sparsity_std", float(examples["l1"].std(ddof=0))),
            ("uses_native_cam", float(examples["native"].mean())),
        ]

    def curve_point(self, metric: str) -> dict | None:
        return {"curve": "cam_l1"} if metric == "l1_sparsity" else None

    def example_values(self, examples: pd.DataFrame, seed: int = 0) -> dict:
        return {"l1_sparsity": mean_of(examples["l1"])}
