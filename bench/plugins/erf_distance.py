"""ERF distance (Def. 6): centre minus corner effective receptive field of the last map X.

X is the CAM tensor for Top-GAP models and the last backbone map otherwise (``model.last_map``). Per image the
centre and corner gradient maps are stored; ``summarize`` reads them in three ways:

* ``erf_center`` / ``erf_corner`` / ``erf_distance`` (headline): both maps divided by the standard deviation of
  their concatenation over all pixels of all evaluated images, without subtracting the mean
  (``bench.interp.erf.joint_std_erf``). Chosen because it preserves zero: a model whose corner gradient is exactly
  0 gets ``erf_corner`` = 0 and ``erf_distance`` = ``erf_center``, and corner gradients 10x apart give clearly
  different distances. The paper's joint z-normalization (Appendix B) centres the maps first; on mostly-empty
  gradient maps every model then reads about the same mean |z| for both maps (all 12 zoo models at 0.23–0.30,
  and 0.22 with the corner map forced to 0), so it cannot show the effect the metric is meant to measure.
* ``*_z``: that z-normalized reading, kept for comparison with the paper's Table 2.
* ``*_raw``: the unscaled mean |gradient| per map (its scale is the model's), and ``erf_corner_ratio`` = raw corner /
  raw centre (scale-free: 0 when the corner position has no gradient at all; lower = a more central ERF).

Intervals: the bootstrap over images recomputes each reading from the resampled images' per-image parts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from bench.interp.erf import erf_gradient_maps, joint_scale, joint_std_erf, joint_z_erf
from bench.plugins.attack_base import frozen
from bench.plugins.base import Context, MetricInfo, Plugin, register_plugin
from bench.stats import Statistic, mean_of

HEADLINE = "erf_distance"


def _per_image_parts(examples: pd.DataFrame) -> dict[str, np.ndarray]:
    """Per image: mean centre and corner gradient and the mean square over both maps (equal pixel counts)."""
    center = np.stack(examples["center_map"].to_numpy()).astype(np.float64)
    corner = np.stack(examples["corner_map"].to_numpy()).astype(np.float64)
    return {
        "center": center.mean(1),
        "corner": corner.mean(1),
        "square": (center**2 + corner**2).mean(1) / 2,
        "raw_center": examples["raw_center"].to_numpy(dtype=np.float64),
        "raw_corner": examples["raw_corner"].to_numpy(dtype=np.float64),
    }


def _scaled_reading(name: str):
    def combine(means: dict[str, np.ndarray]) -> np.ndarray:
        scale = joint_scale(means["center"], means["corner"], means["square"])
        centre = np.divide(means["center"], scale, out=np.zeros_like(scale), where=scale > 0)
        corner = np.divide(means["corner"], scale, out=np.zeros_like(scale), where=scale > 0)
        return {"erf_center": centre, "erf_corner": corner, "erf_distance": centre - corner}[name]

    return combine


def _ratio(means: dict[str, np.ndarray]) -> np.ndarray:
    centre = means["raw_center"]
    return np.divide(means["raw_corner"], centre, out=np.full_like(centre, np.nan), where=centre > 0)


@register_plugin
@dataclass
class ERFDistance(Plugin):
    """ERF distance (Def. 6), maps scaled by their joint std, uncentred (zero-preserving); z and raw readings too."""

    name = "erf_distance"
    metrics = {
        "erf_distance": MetricInfo("ERF distance (centre − corner, joint std)", "", "higher", headline=True),
        "erf_center": MetricInfo("ERF centre (joint std)", "", "none"),
        "erf_corner": MetricInfo("ERF corner (joint std)", "", "lower"),
        "erf_corner_ratio": MetricInfo("ERF corner / centre (raw)", "", "lower", column=True),
        "erf_distance_z": MetricInfo("ERF distance (joint z, saturated)", "", "none"),
        "erf_*_z": MetricInfo("ERF value (joint z)", "", "none"),
        "erf_distance_raw": MetricInfo("ERF distance (raw |∂X/∂x|)", "|∂X/∂x|", "none"),
        "erf_*_raw": MetricInfo("ERF value (raw |∂X/∂x|)", "|∂X/∂x|", "none"),
    }

    def run_batch(self, model, batch, ctx: Context) -> dict[str, np.ndarray]:
        last_map = getattr(model, "last_map", None)
        if last_map is None:
            raise TypeError("erf_distance needs a model with last_map(x) -> (B, K, h, w) (bench Classifier)")
        with frozen(model):
            maps = erf_gradient_maps(last_map, batch.x)
        center, corner = maps["center"].cpu().numpy(), maps["corner"].cpu().numpy()
        return {
            "label": batch.y.cpu().numpy(),
            "raw_center": center.mean((1, 2)),
            "raw_corner": corner.mean((1, 2)),
            "center_map": list(center.reshape(len(center), -1).astype(np.float32)),
            "corner_map": list(corner.reshape(len(corner), -1).astype(np.float32)),
        }

    def summarize(self, examples: pd.DataFrame, ctx: Context) -> list[tuple[str, float]]:
        center = np.stack(examples["center_map"].to_numpy())
        corner = np.stack(examples["corner_map"].to_numpy())
        scaled, z = joint_std_erf(center, corner), joint_z_erf(center, corner)
        raw_center, raw_corner = float(examples["raw_center"].mean()), float(examples["raw_corner"].mean())
        return [
            ("erf_center", scaled["erf_center"]),
            ("erf_corner", scaled["erf_corner"]),
            ("erf_distance", scaled["erf_distance"]),
            ("erf_center_z", z["erf_center"]),
            ("erf_corner_z", z["erf_corner"]),
            ("erf_distance_z", z["erf_distance"]),
            ("erf_center_raw", raw_center),
            ("erf_corner_raw", raw_corner),
            ("erf_distance_raw", raw_center - raw_corner),
            ("erf_corner_ratio", raw_corner / raw_center if raw_center > 0 else float("nan")),
        ]

    def example_values(self, examples: pd.DataFrame, seed: int = 0) -> dict:
        parts = _per_image_parts(examples)
        values = {
            name: Statistic(parts, _scaled_reading(name)) for name in ("erf_center", "erf_corner", "erf_distance")
        }
        values["erf_corner_ratio"] = Statistic(parts, _ratio)
        values["erf_center_raw"] = mean_of(examples["raw_center"])
        values["erf_corner_raw"] = mean_of(examples["raw_corner"])
        values["erf_distance_raw"] = mean_of(examples["raw_center"] - examples["raw_corner"])
        return values
