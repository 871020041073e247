"""Top-GAP training (methods_spec §1(b)): L = CE(TopGAP(X, k), y) + lambda * ||X||_1.

``l1_reduction`` says how ||X||_1 is normalized, because the two readings differ by K*H'*W' (2,560x for a 16x16
CAM over 10 classes, 10,240x for 32x32):

- ``mean``: the mean absolute value over all B*K*H'*W' CAM entries (the spec's choice; Table A6's ||X||_1 values
  are per-element averages);
- ``sum``: Eq. 1 read literally, the per-image sum over classes and positions, averaged over the batch.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from bench.methods.base import METHODS, Method
from bench.models.heads import top_gap, topgap_head_defaults

L1_REDUCTIONS = ("mean", "sum")


def cam_l1(maps: torch.Tensor, reduction: str) -> torch.Tensor:
    """||X||_1 of a CAM batch (B, K, H', W') under ``reduction`` (``mean`` or ``sum``, see the module docstring).

    Example:
        >>> x = torch.ones(2, 10, 4, 4)
        >>> float(cam_l1(x, "sum") / cam_l1(x, "mean"))
        160.0
    """
    if reduction == "mean":
        return maps.abs().mean()
    if reduction == "sum":
        return maps.abs().flatten(1).sum(1).mean()
    raise ValueError(f"l1_reduction must be one of {', '.join(L1_REDUCTIONS)}, got '{reduction}'")


class TopGAP(Method):
    name = "topgap"
    head = "topgap"

    def __init__(
        self,
        k: int = 64,
        lambda_l1: float = 1.0,
        l1_reduction: str = "mean",
        num_maps: int | None = None,
        fpn_channels: int | None = None,
        dropout: float = 0.0,
        **rest: Any,
    ) -> None:
        if l1_reduction not in L1_REDUCTIONS:
            raise ValueError(f"l1_reduction must be one of {', '.join(L1_REDUCTIONS)}, got '{l1_reduction}'")
        super().__init__(k=k, lambda_l1=lambda_l1, l1_reduction=l1_reduction, dropout=dropout, **rest)
        self.k, self.lambda_l1, self.l1_reduction = k, lambda_l1, l1_reduction
        self.num_maps, self.fpn_channels, self.dropout = num_maps, fpn_channels, dropout

    def configure_for(self, arch: str) -> None:
        """Fill the head settings left unset from the backbone's defaults (``topgap_head_defaults``)."""
        defaults = topgap_head_defaults(arch)
        self.num_maps = self.num_maps if self.num_maps is not None else defaults["num_maps"]
        self.fpn_channels = self.fpn_channels if self.fpn_channels is not None else defaults["fpn_channels"]
        self.hparams.update(num_maps=self.num_maps, fpn_channels=self.fpn_channels)

    def head_kwargs(self) -> dict[str, Any]:
        if self.num_maps is None or self.fpn_channels is None:
            raise RuntimeError("TopGAP.configure_for(arch) must run before the head is built")
        return {"k": self.k, "num_maps": self.num_maps, "fpn_channels": self.fpn_channels, "dropout": self.dropout}

    def loss(self, model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        maps = model.class_map(x)
        logits = top_gap(maps, self.k)
        return F.cross_entropy(logits, y) + self.lambda_l1 * cam_l1(maps.float(), self.l1_reduction), logits


METHODS.add("topgap", TopGAP, description="Top-GAP head (FPN CAM + top-k pooling) with L1 on the CAM")
