"""CAMs by a named method: per-image summaries of the map (and the maps themselves if asked)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from bench.interp.cams import compute_cams, resolve_method
from bench.interp.common import explained_class, to_size
from bench.plugins.base import Context, Plugin, register_plugin


@register_plugin
@dataclass
class CAM(Plugin):
    """CAM maps (native Top-GAP, grad-cam methods or Recipro-CAM): l1, area, peak, mass on the object."""

    name = "cam"
    method: str = "auto"
    target: str = "label"
    store_maps: bool = False
    map_size: int = 32

    def run_batch(self, model, batch, ctx: Context) -> dict[str, np.ndarray]:
        x = batch.x.to(ctx.device)
        target = explained_class(model, batch, self.target, ctx)
        cams = compute_cams(model, x, target, self.method)
        width = cams.shape[-1]
        peak = cams.flatten(1).argmax(1)
        columns: dict[str, np.ndarray] = {
            "label": batch.y.numpy(),
            "explained": target.cpu().numpy(),
            "native": np.full(len(x), resolve_method(model, self.method) == "native"),
            "l1": cams.flatten(1).mean(1).numpy(),
            "area_at_0.5": (cams >= 0.5).flatten(1).float().mean(1).numpy(),
            "peak_row": (peak // width).numpy(),
            "peak_col": (peak % width).numpy(),
        }
        if batch.mask is not None:
            mask = (batch.mask >= 0.5).float()
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
