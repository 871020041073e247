"""IoU of the thresholded CAM with the object mask, best threshold on a held-out half, and PxAP.

Protocol (methods_spec §1(e)5): the min-max CAM of the ground-truth class is thresholded at
tau = 0.5 (a pixel is "on" when cam >= tau); the best tau over 0.05..0.95 is chosen on a seeded half
of the images and reported on the other half; PxAP is the threshold-free area under the pixel
precision-recall curve. Masks are binarized at 0.5 (pets3: trimap 1 = object, the boundary band 3
counts as background). Images whose mask is empty have no defined IoU and are left out of every
number here; the row ``n_empty_mask_excluded`` counts them. (pets3's one empty trimap, Abyssinian_34,
is in neither official list, so the pets3 test split has 298 valid masks and this row reads 0.)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from bench.interp.cams import compute_cams, resolve_method
from bench.interp.common import explained_class, require_masks
from bench.interp.localization import N_BINS, best_tau, cam_histograms, iou_at, pxap, split_calibration
from bench.plugins.base import Context, MetricInfo, Plugin, count, register_plugin, setting
from bench.stats import Statistic, mean_of


@register_plugin
@dataclass
class CAMIoU(Plugin):
    """CAM vs object mask: IoU at tau=0.5, IoU at the best tau (held-out half), PxAP."""

    name = "cam_iou"
    requires_masks = True
    metrics = {
        "pxap": MetricInfo("PxAP (pixel average precision)", "", "higher", headline=True),
        "iou@best_tau_heldout": MetricInfo("IoU at the best τ (held-out half)", "", "higher", column=True),
        "iou@*_heldout": MetricInfo("IoU (held-out half)", "", "higher"),
        "iou@*": MetricInfo("IoU", "", "higher"),
        "best_tau": setting("Best τ (calibration half)"),
        "uses_native_cam": setting("Native CAM share"),
        "n_*": count("Images"),
    }
    method: str = "auto"
    target: str = "label"
    tau: float = 0.5
    calibration_fraction: float = 0.5

    def __post_init__(self) -> None:
        if not 0 < self.tau < 1 or abs(self.tau * N_BINS - round(self.tau * N_BINS)) > 1e-9:
            raise ValueError(f"tau must be a multiple of 0.01 in (0, 1), got {self.tau}")
        if not 0 < self.calibration_fraction < 1:
            raise ValueError(f"calibration_fraction must lie in (0, 1), got {self.calibration_fraction}")

    def run_batch(self, model, batch, ctx: Context) -> dict[str, np.ndarray]:
        require_masks(self.name, ctx)
        target = explained_class(model, batch, self.target, ctx)
        cams = compute_cams(model, batch.x, target, self.method)
        pos, neg = cam_histograms(cams, batch.mask.cpu())
        return {
            "label": batch.y.cpu().numpy(),
            "native": np.full(len(cams), resolve_method(model, self.method) == "native"),
            "object_pixels": pos.sum(1),
            "pos_hist": list(pos),
            "neg_hist": list(neg),
        }

    def summarize(self, examples: pd.DataFrame, ctx: Context) -> list[tuple[str, float]]:
        valid = examples[examples["object_pixels"] > 0]
        pos, neg = np.stack(valid["pos_hist"].to_numpy()), np.stack(valid["neg_hist"].to_numpy())
        calibration = split_calibration(valid["index"].to_numpy(), ctx.seed, self.calibration_fraction)
        tau_star = best_tau(pos[calibration], neg[calibration])
        held_out = ~calibration
        return [
            (f"iou@{self.tau:g}", float(np.mean(iou_at(pos, neg, self.tau)))),
            (f"iou@{self.tau:g}_heldout", float(np.mean(iou_at(pos[held_out], neg[held_out], self.tau)))),
            ("best_tau", tau_star),
            ("iou@best_tau_heldout", float(np.mean(iou_at(pos[held_out], neg[held_out], tau_star)))),
            ("pxap", pxap(pos, neg)),
            ("uses_native_cam", float(examples["native"].mean())),
            ("n_images", float(len(valid))),
            ("n_empty_mask_excluded", float(len(examples) - len(valid))),
        ]

    def example_values(self, examples: pd.DataFrame, seed: int = 0) -> dict:
        """Per-image IoU (NaN outside the half a metric is reported on); PxAP from the pooled histograms."""
        valid = examples["object_pixels"].to_numpy() > 0
        if not valid.any():
            return {}
        pos, neg = np.stack(examples["pos_hist"].to_numpy()), np.stack(examples["neg_hist"].to_numpy())
        calibration = np.zeros(len(examples), dtype=bool)
        calibration[valid] = split_calibration(examples["index"].to_numpy()[valid], seed, self.calibration_fraction)
        held_out = valid & ~calibration
        iou = np.where(valid, iou_at(pos, neg, self.tau), np.nan)
        tau_star = best_tau(pos[calibration], neg[calibration])
        return {
            f"iou@{self.tau:g}": mean_of(iou),
            f"iou@{self.tau:g}_heldout": mean_of(np.where(held_out, iou, np.nan)),
            "iou@best_tau_heldout": mean_of(np.where(held_out, iou_at(pos, neg, tau_star), np.nan)),
            "pxap": Statistic({"pos": pos * valid[:, None], "neg": neg * valid[:, None]}, _pxap),
        }


def _pxap(means: dict[str, np.ndarray]) -> np.ndarray:
    """PxAP of each resample from its mean histograms (precision and recall are ratios: means do as sums do)."""
    return np.array([pxap(p[None], n[None]) for p, n in zip(means["pos"], means["neg"], strict=True)])
