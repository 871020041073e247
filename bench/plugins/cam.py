"""CAMs by a named method: per-image summaries of the map (and the maps themselves if asked)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from bench.interp.cams import compute_cams, resolve_method
from bench.interp.common import explained_class, to_size
from bench.plugins.base import Context, MetricInfo, Plugin, register_plugin, setting
from bench.stats import mean_of, proportion


@register_plugin
@dataclass
class CAM(Plugin):
    """CAM maps (native Top-GAP, grad-cam methods or Recipro-CAM): l1, area, peak, mass on the object."""

    name = "cam"
    metrics = {
        "pointing_game": MetricInfo("Pointing game (CAM peak on the object)", "%", "higher", headline=True),
        "mass_on_object": MetricInfo("CAM mass on the object", "", "higher", column=True),
        "mean_l1": MetricInfo("CAM l1", "", "lower"),
        "mean_area_at_0.5": MetricInfo("CAM area at 0.5", "", "lower"),
        "uses_native_cam": setting("Native CAM share"),
    }
    method: str = "auto"
    target: str = "label"
    store_maps: bool = False
    map_size: int = 32

    def run_batch(self, model, batch, ctx: Context) -> dict[str, np.ndarray]:
        x = batch.x
        target = explained_class(model, batch, self.target, ctx)
        cams = compute_cams(model, x, target, self.method)
        width = cams.shape[-1]
        peak = cams.flatten(1).argmax(1)
        columns: dict[str, np.ndarray] = {
            "label": batch.y.cpu().numpy(),
            "explained": target.cpu().numpy(),
            "native": np.full(len(x), resolve_method(model, self.method) == "native"),
            "l1": cams.flatten(1).mean(1).numpy(),
            "area_at_0.5": (cams >= 0.5).flatten(1).float().mean(1).numpy(),
            "peak_row": (peak // width).numpy(),
            "peak_col": (peak % width).numpy(),
        }
        if batch.mask is not None:
            mask = (batch.mask.cpu() >= 0.5).float()
            peak_on_object = mask.flatten(1).gather(1, peak[:, None])[:, 0]
            mass = (cams * mask).flatten(1).sum(1) / cams.flatten(1).sum(1).clamp_min(1e-12)
            columns["peak_on_object"] = peak_on_object.numpy()
            columns["mass_on_object"] = mass.numpy()
        if self.store_maps:
            small = to_size(cams, (self.map_size, self.map_size))
            columns["map"] = list(small.flatten(1).numpy().astype(np.float32))
        return columns

    def summarize(self, examples: pd.DataFrame, ctx: Context) -> list[tuple[str, float]]:
        metrics = [
            ("uses_native_cam", float(examples["native"].mean())),
            ("mean_l1", float(examples["l1"].mean())),
            ("mean_area_at_0.5", float(examples["area_at_0.5"].mean())),
        ]
        if "mass_on_object" in examples:
            metrics += [
                ("pointing_game", float(examples["peak_on_object"].mean())),
                ("mass_on_object", float(examples["mass_on_object"].mean())),
            ]
        return metrics

    def example_values(self, examples: pd.DataFrame, seed: int = 0) -> dict:
        values = {"mean_l1": mean_of(examples["l1"]), "mean_area_at_0.5": mean_of(examples["area_at_0.5"])}
        if "mass_on_object" in examples:
            values["pointing_game"] = proportion(examples["peak_on_object"])
            values["mass_on_object"] = mean_of(examples["mass_on_object"])
        return values
