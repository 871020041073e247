"""Localization of CAMs against object masks: IoU at thresholds and pixel average precision (PxAP).

Per image we keep 100-bin histograms of the CAM values on object and on background pixels. From them
the IoU at any threshold on the 0.01 grid is exact (a pixel counts as "on" when cam >= tau), and PxAP
(Choe et al. 2020, "Evaluating weakly supervised object localization methods right") is the area
under the dataset-wide pixel precision-recall curve.
"""

from __future__ import annotations

import numpy as np
import torch

N_BINS = 100
TAU_GRID = tuple(round(0.05 * i, 2) for i in range(1, 20))  # 0.05 .. 0.95


def cam_histograms(cams: torch.Tensor, masks: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """(B, N_BINS) counts of CAM values on object pixels and on background pixels; masks binarized at 0.5."""
    bins = (cams.float() * N_BINS).floor().clamp(0, N_BINS - 1).long().flatten(1)
    obj = (masks >= 0.5).flatten(1)
    pos = torch.zeros(len(cams), N_BINS, dtype=torch.long)
    neg = torch.zeros(len(cams), N_BINS, dtype=torch.long)
    pos.scatter_add_(1, bins, obj.long())
    neg.scatter_add_(1, bins, (~obj).long())
    return pos.numpy(), neg.numpy()


def _bin(tau: float) -> int:
    return int(round(tau * N_BINS))


def iou_at(pos_hist: np.ndarray, neg_hist: np.ndarray, tau: float) -> np.ndarray:
    """Per-image IoU of {cam >= tau} with the object mask (tau on the 0.01 grid)."""
    tp = pos_hist[:, _bin(tau) :].sum(1)
    fp = neg_hist[:, _bin(tau) :].sum(1)
    fn = pos_hist.sum(1) - tp
    union = tp + fp + fn
    return np.where(union > 0, tp / np.maximum(union, 1), np.nan)


def pxap(pos_hist: np.ndarray, neg_hist: np.ndarray) -> float:
    """Area under the pixel precision-recall curve over all images (thresholds from high to low)."""
    pos, neg = pos_hist.sum(0)[::-1], neg_hist.sum(0)[::-1]
    tp = np.concatenate([[0], pos.cumsum()])
    fp = np.concatenate([[0], neg.cumsum()])
    if tp[-1] == 0:
        return float("nan")
    precision = np.divide(tp, tp + fp, out=np.zeros(len(tp)), where=(tp + fp) > 0)
    recall = tp / tp[-1]
    return float((precision[1:] * np.diff(recall)).sum())


def best_tau(pos_hist: np.ndarray, neg_hist: np.ndarray, taus: tuple[float, ...] = TAU_GRID) -> float:
    """The threshold with the highest mean IoU over the given images (the smallest one on ties)."""
    means = [np.nanmean(iou_at(pos_hist, neg_hist, t)) for t in taus]
    return float(taus[int(np.nanargmax(means))])


def split_calibration(index: np.ndarray, seed: int, fraction: float = 0.5) -> np.ndarray:
    """Boolean flags: True for the images used to choose tau, False for the held-out images."""
    order = np.random.default_rng(seed).permutation(np.sort(index))
    chosen = set(order[: int(round(fraction * len(order)))].tolist())
    return np.array([i in chosen for i in index])
