"""ERSM training (methods_spec §2(b)): L = CE(f(x), y) + beta * (1/N) sum_i m_i E_i.

The Energy-Mask layer lives in the architecture (``--arch cnn_ersm`` / ``prn18_ersm``, bench/models/ersm.py); its
lambda_unary = 1, lambda_pair = 0.25, pair_sign = +1, mask_from = "energy" and placement are the arch's defaults.
beta is absent from the source (beta = 1 would be the literal reading); 0.1 is the spec's choice.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from bench.methods.base import METHODS, Method
from bench.models.ersm import find_energy_mask


class ERSM(Method):
    name = "ersm"
    head = "gap"

    def __init__(self, beta: float = 0.1, **rest: Any) -> None:
        super().__init__(beta=beta, **rest)
        self.beta = beta
        self.stats: dict[str, float] = {}

    def loss(self, model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        layer = find_energy_mask(model)
        logits = model(x)
        reg = layer.regularizer()
        with torch.no_grad():  # for logging the mask histogram's summary (spec §2(d))
            mask = layer.mask
            self.stats = {
                "reg": float(reg.detach()),
                "mask_mean": float(mask.mean()),
                "mask_lt_0.05": float((mask < 0.05).float().mean()),
            }
        return F.cross_entropy(logits, y) + self.beta * reg, logits


METHODS.add("ersm", ERSM, description="ERSM: Energy-Mask layer (use --arch cnn_ersm) + beta * mean(m * E)")
