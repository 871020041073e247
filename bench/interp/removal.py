"""Deletion and insertion curves over an attribution ranking, with a choice of removal operator.

Deletion removes the top fraction f of a ranking; insertion starts from the fully removed image and
puts back the top fraction f. ``order='morf'`` ranks most relevant first, ``'lerf'`` least relevant
first. Removal operators (input space): ``zero`` (black), ``mean`` (per-image channel mean), ``blur``
(Gaussian blur of the image) and ``road`` (noisy linear imputation of Rong et al. 2022, from
pytorch_grad_cam.metrics.road, which avoids the class leak of the shape of plain deletion masks).
In feature space (the last backbone map) the operators are ``zero`` and ``mean`` (per-channel mean).
"""

from __future__ import annotations

import numpy as np
import torch
import torchvision.transforms.functional as TF
from pytorch_grad_cam.metrics.road import NoisyLinearImputer

from bench.attacks import example_generator

INPUT_OPERATORS = ("zero", "mean", "blur", "road")
FEATURE_OPERATORS = ("zero", "mean")


def fractions(steps: int) -> np.ndarray:
    return np.linspace(0.0, 1.0, steps + 1)


def top_fraction(scores: torch.Tensor, fraction: float, order: str) -> torch.Tensor:
    """Boolean (B, h, w): the first ``fraction`` of positions in ranking order (ties kept in raster order)."""
    flat = scores.flatten(1)
    count = int(round(fraction * flat.shape[1]))
    ranked = torch.sort(flat, dim=1, descending=order == "morf", stable=True).indices[:, :count]
    chosen = torch.zeros_like(flat, dtype=torch.bool)
    chosen.scatter_(1, ranked, True)
    return chosen.view_as(scores)


def keep_mask(scores: torch.Tensor, fraction: float, order: str, mode: str) -> torch.Tensor:
    """(B, 1, h, w) True where the original value is kept."""
    chosen = top_fraction(scores, fraction, order)
    return (~chosen if mode == "deletion" else chosen)[:, None]


def road_impute(x: torch.Tensor, keep: torch.Tensor, index: torch.Tensor, seed: int) -> torch.Tensor:
    """Noisy linear imputation of the removed pixels, image by image, noise seeded per example."""
    out = x.clone()
    imputer = NoisyLinearImputer()
    for b in range(len(x)):
        if bool(keep[b].all()):
            continue
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(example_generator(seed, int(index[b])).initial_seed()))
            out[b] = imputer(x[b].cpu().float(), keep[b, 0].cpu().float()).to(x.dtype)
    return out.clamp(0, 1)


def remove_input(
    x: torch.Tensor, keep: torch.Tensor, operator: str, index: torch.Tensor, seed: int, blur_sigma: float = 4.0
) -> torch.Tensor:
    """Replace the pixels where ``keep`` (B, 1, H, W) is False by the operator's fill."""
    if operator == "road":
        return road_impute(x, keep, index, seed)
    if operator == "zero":
        fill = torch.zeros_like(x)
    elif operator == "mean":
        fill = x.mean((2, 3), keepdim=True).expand_as(x)
    elif operator == "blur":
        kernel = 2 * int(round(3 * blur_sigma)) + 1
        fill = TF.gaussian_blur(x, [kernel, kernel], [blur_sigma, blur_sigma])
    else:
        raise ValueError(f"unknown removal operator '{operator}' (choose from {', '.join(INPUT_OPERATORS)})")
    return torch.where(keep, x, fill)


def remove_feature(feature: torch.Tensor, keep: torch.Tensor, operator: str) -> torch.Tensor:
    if operator == "zero":
        return feature * keep
    if operator == "mean":
        return torch.where(keep, feature, feature.mean((2, 3), keepdim=True))
    raise ValueError(f"feature-space removal supports {', '.join(FEATURE_OPERATORS)}, not '{operator}'")


def curve_auc(fracs: np.ndarray, values: np.ndarray) -> float:
    """Trapezoidal area under a curve sampled at ``fracs`` (fractions in [0, 1])."""
    return float(np.trapezoid(values, fracs))
