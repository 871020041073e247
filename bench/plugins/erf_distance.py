"""ERF distance (Def. 6): centre minus corner effective receptive field of the last map X.

X is the CAM tensor for Top-GAP models and the last backbone map otherwise (``model.last_map``).
Per image the centre and corner gradient maps are stored; ``summarize`` z-normalizes them jointly
over all pixels of all evaluated images (methods_spec §1(e)2) and reports mean |z| per map. The raw
(unnormalized) mean |gradient| values are reported too.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from bench.interp.erf import erf_gradient_maps, joint_z_erf
from bench.plugins.attack_base import frozen
from bench.plugins.base import Context, Plugin, register_plugin


@register_plugin
@dataclass
class ERFDistance(Plugin):
    """ERF distance (Def. 6) with joint z-normalization: rows for centre, corner and distance."""

    name = "erf_distance"

    def run_batch(self, model, batch, ctx: Context) -> dict[str, np.ndarray]:
        last_map = getattr(model, "last_map", None)
        if last_map is None:
            raise TypeError("erf_distance needs a model with last_map(x) -> (B, K, h, w) (bench Classifier)")
        with frozen(model):
            maps = erf_gradient_maps(last_map, batch.x.to(ctx.device))
        center, corner = maps["center"].cpu().numpy(), maps["corner"].cpu().numpy()
        return {
            "label": batch.y.numpy(),
            "raw_center": center.mean((1, 2)),
            "raw_corner": corner.mean((1, 2)),
            "center_map": list(center.reshape(len(center), -1).astype(np.float32)),
            "corner_map": list(corner.reshape(len(corner), -1).astype(np.float32)),
        }

    def summarize(self, examples: pd.DataFrame, ctx: Context) -> list[tuple[str, float]]:
        center = np.stack(examples["center_map"].to_numpy())
        corner = np.stack(examples["corner_map"].to_numpy())
        z = joint_z_erf(center, corner)
        raw_center, raw_corner = float(examples["raw_center"].mean()), float(examples["raw_corner"].mean())
        return [
            ("erf_center", z["erf_center"]),
            ("erf_corner", z["erf_corner"]),
            ("erf_distance", z["erf_distance"]),
            ("erf_center_raw", raw_center),
            ("erf_corner_raw", raw_corner),
            ("erf_distance_raw", raw_center - raw_corner),
        ]
