"""A training method = how to build the model's head + the loss it trains with."""

from __future__ import annotations

from typing import Any

import torch

from bench.registry import METHODS

__all__ = ["METHODS", "Method"]


class Method:
    """Base: standard GAP head, cross-entropy loss."""

    name = "standard"
    head = "gap"

    def __init__(self, **hparams: Any) -> None:
        self.hparams = hparams

    def configure_for(self, arch: str) -> None:
        """Fill settings that depend on the backbone (no-op unless the method's head has per-arch defaults)."""

    def head_kwargs(self) -> dict[str, Any]:
        return {}

    def loss(self, model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (loss, logits) for a training batch."""
        logits = model(x)
        return torch.nn.functional.cross_entropy(logits, y), logits
