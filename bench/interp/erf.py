"""Effective receptive field (Def. 6 of the Top-GAP paper, methods_spec §1(e)2).

For an output map X (B, K, h, w) — the CAM for Top-GAP models, the last backbone map otherwise — the
gradient map of position p is g_p = sum_c |d(sum_k X_{k,p}) / dx_c| over the input pixels. ERF(p) is
the mean of g_p over pixels.

Readings (``bench.plugins.erf_distance`` reports all of them):

* ``joint_std_erf`` (the headline): both maps divided by the standard deviation of their concatenation over all
  pixels of all evaluated images, without subtracting the mean. Zero stays zero: a corner map that is exactly 0
  reads 0, and the distance then equals the centre value. The scale is shared by the two maps (so their ratio is
  untouched) and cancels any overall gradient magnitude of a model.
* ``joint_z_erf`` (Appendix B taken literally): z-normalize with the mean and std of the concatenated maps, then
  average |z| per map. Centring makes every pixel far from the mean count, so on mostly-empty gradient maps both
  maps read about the same mean |z| whatever the corner gradient: the distance saturates (kept as ``*_z`` rows).
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


def joint_scale(mean_center, mean_corner, mean_square):
    """The joint standard deviation of two equally sized maps from their means and their joint mean square.

    Vectorised (scalars or arrays). Constant maps (standard deviation 0) are scaled by their root mean square
    instead, so that they read 1.

    Example:
        >>> float(joint_scale(1.0, 0.0, 1.0))  # maps [2, 0] and [0, 0]: std of [2, 0, 0, 0]
        0.8660254037844386
    """
    mean = (np.asarray(mean_center, dtype=np.float64) + np.asarray(mean_corner, dtype=np.float64)) / 2
    square = np.asarray(mean_square, dtype=np.float64)
    std = np.sqrt(np.maximum(square - mean * mean, 0.0))
    return np.where(std > 1e-12 * np.sqrt(square), std, np.sqrt(square))


def joint_std_erf(center: np.ndarray, corner: np.ndarray) -> dict[str, float]:
    """ERF values after dividing both maps by their joint standard deviation, uncentred (arrays of equal size).

    Example:
        >>> center, corner = np.array([[3.0, 1.0]]), np.zeros((1, 2))
        >>> erf = joint_std_erf(center, corner)
        >>> erf["erf_corner"], erf["erf_distance"] == erf["erf_center"]
        (0.0, True)
    """
    center, corner = np.asarray(center, dtype=np.float64), np.asarray(corner, dtype=np.float64)
    if center.size == 0 or center.size != corner.size:
        raise ValueError("joint_std_erf needs two non-empty maps of the same size")
    square = (np.mean(center**2) + np.mean(corner**2)) / 2
    scale = float(joint_scale(center.mean(), corner.mean(), square))
    if scale == 0:
        return {"erf_center": 0.0, "erf_corner": 0.0, "erf_distance": 0.0}
    erf_center = float(np.mean(center, dtype=np.float64) / scale)
    erf_corner = float(np.mean(corner, dtype=np.float64) / scale)
    return {"erf_center": erf_center, "erf_corner": erf_corner, "erf_distance": erf_center - erf_corner}
