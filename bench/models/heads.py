"""Classification heads: global average pooling + linear, and Top-GAP (Nieradzik et al. 2024)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def top_gap(cam: torch.Tensor, k: int) -> torch.Tensor:
    """Top-k average pooling per class channel (Def. 5): (B, K, H, W) -> (B, K)."""
    flat = cam.flatten(2)
    if not 1 <= k <= flat.shape[-1]:
        raise ValueError(f"Top-GAP k={k} must lie in [1, {flat.shape[-1]}] for a {tuple(cam.shape[2:])} map")
    return flat.topk(k, dim=-1).values.mean(-1)


# One place for the Top-GAP head's defaults per backbone (methods_spec §1(a), §1(c)). ``num_maps`` sets the CAM size:
# the largest tapped map. prn18 taps layer1..layer4 (32x32 CAM); the small cnn taps its last two stages (16x16 CAM,
# the zoo's CPU-affordable choice: k=64 of 256 positions); timm ResNet/EfficientNet use 4 maps and VGG 3 (Table 1).
TOPGAP_HEAD_DEFAULTS: dict[str, dict[str, int]] = {
    "prn18": {"num_maps": 4, "fpn_channels": 256},
    "cnn": {"num_maps": 2, "fpn_channels": 128},
    "resnet18": {"num_maps": 4, "fpn_channels": 256},
    "efficientnet_b0": {"num_maps": 4, "fpn_channels": 256},
    "convnext_tiny": {"num_maps": 4, "fpn_channels": 256},
    "vgg11_bn": {"num_maps": 3, "fpn_channels": 256},
}
FALLBACK_TOPGAP_HEAD = {"num_maps": 3, "fpn_channels": 256}


def topgap_head_defaults(arch: str) -> dict[str, int]:
    """The Top-GAP head's ``num_maps`` and ``fpn_channels`` for a backbone.

    Example:
        >>> topgap_head_defaults("prn18")
        {'num_maps': 4, 'fpn_channels': 256}
    """
    return dict(TOPGAP_HEAD_DEFAULTS.get(arch, FALLBACK_TOPGAP_HEAD))


class GAPHead(nn.Module):
    """Standard head: GAP over the last feature map, then a linear layer."""

    def __init__(self, feature_channels: list[int], num_classes: int) -> None:
        super().__init__()
        self.fc = nn.Linear(feature_channels[-1], num_classes)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        return self.fc(features[-1].mean((2, 3)))


class TopGAPHead(nn.Module):
    """FPN-like head of the Top-GAP paper (Fig. 2, methods_spec §1(a)).

    One biased 3x3 conv (``fpn_channels`` filters) per tapped map, nearest upsampling to the
    largest tapped map, sum, optional dropout, 1x1 conv to the classes (the CAM), Top-GAP.
    """

    def __init__(
        self,
        feature_channels: list[int],
        num_classes: int,
        k: int,
        num_maps: int,
        fpn_channels: int,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.k = k
        self.num_maps = num_maps
        self.laterals = nn.ModuleList(nn.Conv2d(c, fpn_channels, 3, padding=1) for c in feature_channels[-num_maps:])
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.classifier = nn.Conv2d(fpn_channels, num_classes, 1)

    def class_map(self, features: list[torch.Tensor]) -> torch.Tensor:
        """The CAM tensor X (B, K, H', W') before pooling."""
        taps = features[-self.num_maps :]
        size = taps[0].shape[-2:]
        summed = sum(
            F.interpolate(lat(f), size=size, mode="nearest") if f.shape[-2:] != size else lat(f)
            for lat, f in zip(self.laterals, taps, strict=True)
        )
        return self.classifier(self.dropout(summed))

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        return top_gap(self.class_map(features), self.k)
