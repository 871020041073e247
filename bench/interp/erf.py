"""Effective receptive field (Def. 6 of the Top-GAP paper, methods_spec §1(e)2).

For an output map X (B, K, h, w) — the CAM for Top-GAP models, the last backbone map otherwise — the
gradient map of position p is g_p = sum_c |d(sum_k X_{k,p}) / dx_c| over the input pixels. ERF(p) is
the mean of g_p over pixels. Appendix B z-normalizes the gradients; we normalize jointly with the
mean and std of the concatenation of the centre and corner maps over all pixels of all evaluated
images, then average |z| per map (a per-map normalization would make the two maps look alike).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch


def output_positions(h: int, w: int) -> dict[str, tuple[int, int]]:
    """Centre floor(h/2), floor(w/2) (0-based) and the top-left corner."""
    return {"center": (h // 2, w // 2), "corner": (0, 0)}


def erf_gradient_maps(last_map: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Gradient maps (B, H, W) of the centre and corner output positions w.r.t. the input.

    Sums over the batch are safe because in eval mode each output depends on its own image only.
    """
    x = x.detach().clone().requires_grad_(True)
    out = last_map(x)
    if out.ndim != 4:
        raise ValueError(f"the last map must be (B, K, h, w), got shape {tuple(out.shape)}")
    positions = output_positions(*out.shape[-2:])
    maps = {}
    for i, (name, (r, c)) in enumerate(positions.items()):
        grad = torch.autograd.grad(out[:, :, r, c].sum(), x, retain_graph=i < len(positions) - 1)[0]
        maps[name] = grad.abs().sum(1).detach()
    return maps


def joint_z_erf(center: np.ndarray, corner: np.ndarray) -> dict[str, float]:
    """ERF values after z-normalizing the centre and corner maps jointly (arrays: any shape, one value per pixel)."""
    both = np.concatenate([center.ravel(), corner.ravel()]).astype(np.float64)
    mean, std = both.mean(), both.std()
    if std == 0:
        return {"erf_center": 0.0, "erf_corner": 0.0, "erf_distance": 0.0}
    erf_center = float(np.abs((center - mean) / std).mean())
    erf_corner = float(np.abs((corner - mean) / std).mean())
    return {"erf_center": erf_center, "erf_corner": erf_corner, "erf_distance": erf_center - erf_corner}
