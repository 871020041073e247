"""Helpers the interpretability plugins share: which class to explain, mask checks, map features."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

if TYPE_CHECKING:  # bench.plugins imports the plugins, which import this module
    from bench.data import Batch
    from bench.plugins.base import Context

TARGETS = ("label", "pred")
MASK_DATASETS = "pets3, oxford_pet or cub"


def require_masks(plugin: str, ctx: Context) -> None:
    if ctx.dataset.masks is None:
        raise ValueError(
            f"plugin '{plugin}' needs object masks but dataset '{ctx.dataset.name}' has none; "
            f"run it on a dataset with masks ({MASK_DATASETS})"
        )


def explained_class(model: torch.nn.Module, batch: Batch, which: str, ctx: Context) -> torch.Tensor:
    """The class whose map is explained: the ground truth ('label', the paper's choice) or the prediction."""
    if which == "label":
        return batch.y
    if which == "pred":
        from bench.plugins.base import predict

        return predict(model, batch.x, ctx)
    raise ValueError(f"target must be one of {', '.join(TARGETS)}, not '{which}'")


def check_choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}, not '{value}'")


def feature_magnitude(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """||feature||_2 per position of the last backbone map: (B, h, w) (the magnitude-pruning ranking)."""
    with torch.no_grad():
        return model.features(x)[-1].float().norm(dim=1)


def to_size(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resize (B, h, w) maps: bilinear up, area-average down."""
    if tuple(maps.shape[-2:]) == tuple(size):
        return maps
    up = tuple(size)[0] > maps.shape[-2]
    mode = "bilinear" if up else "area"
    kwargs = {"align_corners": False} if up else {}
    return F.interpolate(maps[:, None].float(), size=size, mode=mode, **kwargs)[:, 0]
