"""The model every plugin sees: [0, 1] images in, logits out, normalization inside."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from bench.models.constants import NORMALIZATION
from bench.models.heads import GAPHead, TopGAPHead, top_gap, topgap_head_defaults
from bench.registry import ARCHS


def minmax_scale(maps: torch.Tensor) -> torch.Tensor:
    """Min-max scale each (H, W) map of a (B, H, W) tensor to [0, 1] (the paper's CAM mode)."""
    flat = maps.flatten(1)
    lo = flat.min(1).values[:, None, None]
    hi = flat.max(1).values[:, None, None]
    return (maps - lo) / (hi - lo + 1e-8)


class Classifier(nn.Module):
    """Normalize -> backbone (list of feature maps) -> head (logits)."""

    def __init__(
        self,
        backbone: nn.Module,
        head: nn.Module,
        mean: tuple[float, ...],
        std: tuple[float, ...],
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1), persistent=False)

    @property
    def has_native_cam(self) -> bool:
        return isinstance(self.head, TopGAPHead)

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.backbone((x - self.mean) / self.std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

    def last_map(self, x: torch.Tensor) -> torch.Tensor:
        """The last feature map X before pooling: the CAM for Top-GAP, the last backbone map otherwise."""
        feats = self.features(x)
        return self.head.class_map(feats) if self.has_native_cam else feats[-1]

    def class_map(self, x: torch.Tensor) -> torch.Tensor:
        """Raw Top-GAP CAM tensor (B, K, H', W'); only for models with a native CAM."""
        if not self.has_native_cam:
            raise TypeError("this model has no native CAM; use the `cam` plugin's grad-cam methods")
        return self.head.class_map(self.features(x))

    def cam(self, x: torch.Tensor, target: torch.Tensor | None = None) -> torch.Tensor:
        """CAM of class ``target`` (default: predicted), upsampled bilinearly to the input, min-max scaled."""
        maps = self.class_map(x)
        if target is None:
            target = top_gap(maps, self.head.k).argmax(1)
        chosen = maps[torch.arange(len(x)), target]
        up = F.interpolate(chosen[:, None], size=x.shape[-2:], mode="bilinear", align_corners=False)
        return minmax_scale(up[:, 0])


def build_classifier(
    arch: str,
    num_classes: int,
    head: str = "gap",
    normalization: str = "cifar10",
    **head_kwargs: Any,
) -> Classifier:
    """Build an untrained classifier from registry names (the zoo loads weights into it)."""
    backbone = ARCHS.create(arch)
    mean, std = NORMALIZATION[normalization]
    if head == "gap":
        head_module: nn.Module = GAPHead(backbone.feature_channels, num_classes)
    elif head == "topgap":
        head_kwargs = {**topgap_head_defaults(arch), **head_kwargs}  # the one place for per-arch head defaults
        head_module = TopGAPHead(backbone.feature_channels, num_classes, **head_kwargs)
    else:
        raise ValueError(f"unknown head '{head}' (choose gap or topgap)")
    return Classifier(backbone, head_module, mean, std)
