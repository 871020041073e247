"""ISVS training (methods_spec §3(d)): cross-entropy on S_K(aug(x)); the smoothing is the architecture.

Use ``--arch cnn_isvs`` (or ``prn18_isvs``; bench/models/isvs.py). No extra loss term: the regularization acts
through the input representation. ``mix_prob`` is the spec's optional, unconfirmed mixing: with this probability
an example is fed raw instead of smoothed (default 0, off).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from bench.methods.base import METHODS, Method
from bench.models.isvs import find_isvs


class ISVS(Method):
    name = "isvs"
    head = "gap"

    def __init__(self, mix_prob: float = 0.0, **rest: Any) -> None:
        if not 0.0 <= mix_prob <= 1.0:
            raise ValueError(f"ISVS mix_prob must lie in [0, 1], not {mix_prob}")
        super().__init__(mix_prob=mix_prob, **rest)
        self.mix_prob = mix_prob

    def loss(self, model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        smoothing = find_isvs(model)
        smoothing.bind_normalization(model.mean, model.std)  # see IsvsBackbone: whatever train.py chose
        smoothing.bypass = torch.rand(len(x), device=x.device) < self.mix_prob if self.mix_prob > 0 else None
        try:
            logits = model(x)
        finally:
            smoothing.bypass = None
        return F.cross_entropy(logits, y), logits


METHODS.add("isvs", ISVS, description="ISVS: Split-LBI TV smoothing in front of the net (use --arch cnn_isvs)")
