"""Top-GAP training (methods_spec §1(b)): L = CE(TopGAP(X, k), y) + lambda * mean|X|.

||X||_1 is normalized as the mean absolute value over all B*K*H'*W' CAM entries (the spec's
choice; the paper's Table A6 values are per-element averages).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from bench.methods.base import METHODS, Method
from bench.models.heads import top_gap


class TopGAP(Method):
    name = "topgap"
    head = "topgap"

    def __init__(
        self,
        k: int = 64,
        lambda_l1: float = 1.0,
        num_maps: int = 2,
        fpn_channels: int = 256,
        dropout: float = 0.0,
        **rest: Any,
    ) -> None:
        super().__init__(
            k=k, lambda_l1=lambda_l1, num_maps=num_maps, fpn_channels=fpn_channels, dropout=dropout, **rest
        )
        self.k, self.lambda_l1 = k, lambda_l1
        self.num_maps, self.fpn_channels, self.dropout = num_maps, fpn_channels, dropout

    def head_kwargs(self) -> dict[str, Any]:
        return {"k": self.k, "num_maps": self.num_maps, "fpn_channels": self.fpn_channels, "dropout": self.dropout}

    def loss(self, model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        maps = model.class_map(x)
        logits = top_gap(maps, self.k)
        return F.cross_entropy(logits, y) + self.lambda_l1 * maps.abs().mean(), logits


METHODS.add("topgap", TopGAP, description="Top-GAP head (FPN CAM + top-k pooling) with L1 on the CAM")
