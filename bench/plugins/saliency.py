"""Simple-gradient saliency maps and their structure: sparsity (Gini index) and connectedness (methods_spec §4(e)).

The functions are reusable by the interpretability plugins:

* ``simple_gradient``: grad_x of the label's logit (the AdvGrad code's evaluation map; primary) or of the CE loss.
* ``aggregate``: sum of |.| over colour channels -> (B, H, W).
* ``gini_index``: G = 1 - 2 sum_i a_(i) (n - i + 1/2) / (n sum a), a sorted ascending; 1 - 1/n for a one-hot map,
  0 for a constant map, NaN for an all-zero map (no gradient at all).
* ``group_gini``: Gini of the per-patch l2 norms of the aggregated map (group sparsity).
* ``top_region_connectedness``: the top q % pixels (value >= the ceil(q n)-th largest and > 0, so ties at the
  threshold are all kept), their number of 8-connected components (scipy.ndimage.label), and the fraction of those
  pixels, and of their saliency mass, in the largest component (higher = more connected).
* ``scale_p99``: the AdvGrad display scaling (v - min) / (p99 - min), clipped to [0, 1].
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from scipy import ndimage

from bench.plugins.attack_base import frozen
from bench.plugins.base import Context, MetricInfo, Plugin, accuracy, register_plugin
from bench.stats import mean_of, proportion

KINDS = ("logit", "loss")
EIGHT_CONNECTED = np.ones((3, 3), dtype=int)


def simple_gradient(
    model: torch.nn.Module, x: torch.Tensor, target: torch.Tensor, kind: str = "logit", autocast=None
) -> torch.Tensor:
    """grad_x f_target(x) ("logit") or grad_x CE(f(x), target) ("loss"), per example, shape of x, float32."""
    if kind not in KINDS:
        raise ValueError(f"saliency kind must be one of {KINDS}, not '{kind}'")
    x = x.detach().clone().requires_grad_(True)
    with torch.enable_grad(), autocast() if autocast else torch.autocast("cpu", enabled=False):
        logits = model(x)
        if kind == "logit":
            objective = logits.gather(1, target.view(-1, 1)).sum()
        else:
            objective = F.cross_entropy(logits, target, reduction="sum")
    return torch.autograd.grad(objective, x)[0].float()


def aggregate(grad: torch.Tensor) -> torch.Tensor:
    """Sum of absolute values over channels: (B, C, H, W) -> (B, H, W)."""
    return grad.abs().sum(1)


def gini_index(maps: torch.Tensor) -> torch.Tensor:
    """Gini index of each non-negative map of a batch (B, ...) -> (B,); NaN for an all-zero map."""
    flat = maps.flatten(1).double()
    if (flat < 0).any():
        raise ValueError("the Gini index needs non-negative maps; aggregate the gradient with |.| first")
    n = flat.shape[1]
    ordered = flat.sort(dim=1).values
    weights = n - torch.arange(1, n + 1, dtype=flat.dtype, device=flat.device) + 0.5
    total = ordered.sum(1)
    gini = 1 - 2 * (ordered * weights).sum(1) / (n * total)
    return torch.where(total > 0, gini, torch.full_like(gini, math.nan)).float()


def group_gini(maps: torch.Tensor, patch: int) -> torch.Tensor:
    """Gini index of the per-patch l2 norms of (B, H, W) maps (group sparsity)."""
    h, w = maps.shape[-2:]
    if h % patch or w % patch:
        raise ValueError(f"saliency group patch {patch} must tile the {h}x{w} map; choose a divisor of {h} and {w}")
    norms = F.avg_pool2d(maps[:, None].double() ** 2, patch).mul(patch * patch).sqrt()
    return gini_index(norms)


def top_region(saliency: np.ndarray, percent: float) -> np.ndarray:
    """Boolean mask of the top ``percent`` % pixels of a (H, W) map (ties at the threshold kept, zeros excluded)."""
    if not 0 < percent <= 100:
        raise ValueError(f"top percent must lie in (0, 100], not {percent}")
    k = max(1, math.ceil(percent / 100 * saliency.size))
    threshold = np.partition(saliency.ravel(), saliency.size - k)[saliency.size - k]
    return (saliency >= threshold) & (saliency > 0)


def top_region_connectedness(saliency: np.ndarray, percent: float) -> tuple[int, float, float]:
    """(number of 8-connected components, pixel fraction and mass fraction in the largest) of the top region."""
    region = top_region(saliency, percent)
    labels, n = ndimage.label(region, structure=EIGHT_CONNECTED)
    if n == 0:
        return 0, math.nan, math.nan
    sizes = np.bincount(labels.ravel())[1:]
    masses = np.bincount(labels.ravel(), weights=saliency.ravel())[1:]
    largest = int(sizes.argmax())
    return n, float(sizes[largest] / sizes.sum()), float(masses[largest] / masses.sum())


def scale_p99(maps: torch.Tensor) -> torch.Tensor:
    """(v - min) / (p99 - min) clipped to [0, 1], per map of a (B, H, W) batch (display scaling of the AdvGrad code)."""
    flat = maps.flatten(1).float()
    lo = flat.min(1).values
    hi = flat.quantile(0.99, dim=1)
    scaled = (flat - lo[:, None]) / (hi - lo).clamp_min(1e-12)[:, None]
    return scaled.clamp(0, 1).view_as(maps)


def _percent_label(percent: float) -> str:
    return f"q{percent:g}".replace(".", "p")


@register_plugin
@dataclass
class Saliency(Plugin):
    """Simple-gradient saliency: sparsity (Gini, group Gini) and connectedness of the top pixels."""

    name = "saliency"
    metrics = {
        "gini": MetricInfo("Saliency Gini index (sparsity)", "", "higher", headline=True),
        "group_gini": MetricInfo("Saliency group Gini (patch sparsity)", "", "higher"),
        "accuracy": MetricInfo("Accuracy", "%", "higher"),
        "zero_map_fraction": MetricInfo("Share of all-zero saliency maps", "%", "lower"),
        "components_*": MetricInfo("Connected components of the top pixels", "", "lower"),
        "largest_fraction_*": MetricInfo("Top pixels in the largest component", "", "higher", column=True),
        "largest_mass_*": MetricInfo("Top saliency mass in the largest component", "", "higher"),
    }
    kind: str = "logit"
    target: str = "label"
    top_percents: tuple[float, ...] = (5.0, 10.0)
    group_patch: int = 4

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"saliency kind must be one of {KINDS}, not '{self.kind}'")
        if self.target not in ("label", "pred"):
            raise ValueError(f"saliency target must be label or pred, not '{self.target}'")

    def run_batch(self, model, batch, ctx: Context) -> dict[str, np.ndarray]:
        x, y = batch.x, batch.y
        with frozen(model):
            with torch.no_grad(), ctx.autocast():
                pred = model(x).argmax(1)
            target = y if self.target == "label" else pred
            maps = aggregate(simple_gradient(model, x, target, self.kind, ctx.autocast))
        columns = {
            "label": y.cpu().numpy(),
            "pred": pred.cpu().numpy(),
            "gini": gini_index(maps).cpu().numpy(),
            "group_gini": group_gini(maps, self.group_patch).cpu().numpy(),
            "zero_map": (maps.flatten(1).amax(1) == 0).cpu().numpy(),
        }
        numpy_maps = maps.cpu().numpy()
        for percent in self.top_percents:
            stats = np.array([top_region_connectedness(m, percent) for m in numpy_maps], dtype=float).reshape(-1, 3)
            label = _percent_label(percent)
            columns[f"components_{label}"] = stats[:, 0]
            columns[f"largest_fraction_{label}"] = stats[:, 1]
            columns[f"largest_mass_{label}"] = stats[:, 2]
        return columns

    def summarize(self, examples: pd.DataFrame, ctx: Context) -> list[tuple[str, float]]:
        metrics = [
            ("accuracy", accuracy(examples["pred"] == examples["label"])),
            ("gini", float(np.nanmean(examples["gini"])) if examples["gini"].notna().any() else math.nan),
            (
                "group_gini",
                float(np.nanmean(examples["group_gini"])) if examples["group_gini"].notna().any() else math.nan,
            ),
            ("zero_map_fraction", float(examples["zero_map"].astype(bool).mean()) if len(examples) else math.nan),
        ]
        for percent in self.top_percents:
            label = _percent_label(percent)
            for column in ("components", "largest_fraction", "largest_mass"):
                values = examples[f"{column}_{label}"]
                metrics.append((f"{column}_{label}", float(np.nanmean(values)) if values.notna().any() else math.nan))
        return metrics

    def example_values(self, examples: pd.DataFrame, seed: int = 0) -> dict:
        values = {
            "accuracy": proportion(examples["pred"] == examples["label"]),
            "gini": mean_of(examples["gini"]),
            "group_gini": mean_of(examples["group_gini"]),
            "zero_map_fraction": proportion(examples["zero_map"]),
        }
        for percent in self.top_percents:
            label = _percent_label(percent)
            for column in ("components", "largest_fraction", "largest_mass"):
                values[f"{column}_{label}"] = mean_of(examples[f"{column}_{label}"])
        return values
