"""Recipro-CAM (Byun & Lee, "Recipro-CAM: Fast gradient-free visual explanations for CNNs", 2023).

grad-cam 1.5.7 does not ship it, so it is implemented here following the authors' reference code
(github.com/sybyun/ReciproCAM): for every position (i, j) of the last feature map F, keep F only at
(i, j) (or under a 3x3 Gaussian centred there, cropped at the border), run the rest of the network on
that spatially masked map, and take the softmax probability of the target class as the CAM value at
(i, j). The map is min-max scaled and upsampled bilinearly to the input.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

GAUSSIAN_3X3 = torch.tensor([[1 / 16, 1 / 8, 1 / 16], [1 / 8, 1 / 4, 1 / 8], [1 / 16, 1 / 8, 1 / 16]])


def spatial_masks(height: int, width: int, gaussian: bool = False) -> torch.Tensor:
    """(h*w, 1, h, w) masks; mask k is one-hot at position k (row-major), or a cropped 3x3 Gaussian there."""
    one_hot = torch.eye(height * width).view(height * width, 1, height, width)
    if not gaussian:
        return one_hot
    return F.conv2d(one_hot, GAUSSIAN_3X3.view(1, 1, 3, 3), padding=1)


@torch.no_grad()
def recipro_scores(
    model: torch.nn.Module, x: torch.Tensor, target: torch.Tensor, gaussian: bool = False, chunk: int = 256
) -> torch.Tensor:
    """Raw Recipro-CAM maps (B, h, w) at the resolution of the last backbone map of a bench Classifier.

    The B*h*w masked head passes run in batches of about ``chunk`` rows: several whole images per batch when the map
    is small (a 4x4 or 8x8 map alone would make batches of 16 or 64), a slice of one image's positions when it is
    large; memory is bounded by ``chunk`` whatever B and h*w are. Masked maps are broadcast products, not gathers.

    Example:
        >>> from bench.models.classifier import build_classifier
        >>> net = build_classifier("cnn", 10).eval()
        >>> recipro_scores(net, torch.rand(2, 3, 32, 32), torch.tensor([0, 1])).shape
        torch.Size([2, 8, 8])
    """
    feats = model.features(x)
    last = feats[-1]
    _, _, h, w = last.shape
    masks = spatial_masks(h, w, gaussian).to(last.device, last.dtype)  # (h*w, 1, h, w)
    # the head reads only its last `num_maps` maps (GAP: 1); the others get a free placeholder, not a per-row copy
    first_read = len(feats) - getattr(model.head, "num_maps", 1)
    target = target.to(last.device)
    scores = torch.empty(len(x), h * w, device=last.device)
    images_per_batch = max(1, chunk // (h * w))
    positions_per_batch = min(h * w, chunk)
    for first in range(0, len(x), images_per_batch):
        images = slice(first, first + images_per_batch)
        for p in range(0, h * w, positions_per_batch):
            m = masks[p : p + positions_per_batch]
            n_img, n_pos = len(last[images]), len(m)
            masked = (last[images, None] * m[None]).flatten(0, 1)  # image-major rows: (n_img * n_pos, C, h, w)
            earlier = [
                f[images].repeat_interleave(n_pos, 0) if i >= first_read else f[:1].expand(len(masked), *f.shape[1:])
                for i, f in enumerate(feats[:-1])
            ]
            probs = model.head([*earlier, masked]).float().softmax(1).view(n_img, n_pos, -1)
            picked = probs.gather(2, target[images].view(-1, 1, 1).expand(n_img, n_pos, 1))[..., 0]
            scores[images, p : p + n_pos] = picked
    return scores.view(len(x), h, w)


def recipro_cam(model: torch.nn.Module, x: torch.Tensor, target: torch.Tensor, gaussian: bool = False) -> torch.Tensor:
    """Recipro-CAM upsampled to the input size and min-max scaled per image: (B, H, W) in [0, 1]."""
    from bench.models.classifier import minmax_scale

    raw = recipro_scores(model, x, target, gaussian)
    up = F.interpolate(raw[:, None], size=x.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
    return minmax_scale(up)
