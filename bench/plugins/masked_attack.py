"""Attack distance (Def. 7): FGSM (or PGD) on object pixels only vs on background pixels only.

SAR(I) = 1 - Acc(I) over all evaluated images (clean-misclassified ones included, as in the paper;
they cancel in the distance). AD = SAR(O) - SAR(B); a positive AD means perturbing the object hurts
more than perturbing the background. Masks are binarized at 0.5. An image with an empty mask gets an
unperturbed object image (pets3's empty trimap, Abyssinian_34, is in neither official split).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from bench.interp.common import check_choice, require_masks
from bench.interp.masked_attack import masked_fgsm, masked_pgd
from bench.plugins.attack_base import frozen
from bench.plugins.base import Context, Plugin, accuracy, predict, register_plugin

ATTACKS = ("fgsm", "pgd")


@register_plugin
@dataclass
class MaskedAttack(Plugin):
    """Object-only vs background-only FGSM/PGD: SAR(O), SAR(B) and attack distance SAR(O) - SAR(B)."""

    name = "masked_attack"
    requires_masks = True
    eps: float = 1 / 255
    attack: str = "fgsm"
    steps: int = 10
    alpha: float = 0.25 / 255

    def __post_init__(self) -> None:
        check_choice("attack", self.attack, ATTACKS)

    def perturb(self, model, x: torch.Tensor, y: torch.Tensor, region: torch.Tensor, ctx: Context) -> torch.Tensor:
        if self.attack == "fgsm":
            return masked_fgsm(model, x, y, region, self.eps, ctx.autocast)
        return masked_pgd(model, x, y, region, self.eps, self.alpha, self.steps, ctx.autocast)

    def run_batch(self, model, batch, ctx: Context) -> dict[str, np.ndarray]:
        require_masks(self.name, ctx)
        x, y = batch.x.to(ctx.device), batch.y.to(ctx.device)
        obj = (batch.mask.to(ctx.device) >= 0.5).float()[:, None]
        with frozen(model):
            x_obj = self.perturb(model, x, y, obj, ctx)
            x_bg = self.perturb(model, x, y, 1 - obj, ctx)
        cpu = lambda t: t.cpu().numpy()  # noqa: E731
        return {
            "label": cpu(y),
            "clean_pred": cpu(predict(model, x, ctx)),
            "object_pred": cpu(predict(model, x_obj, ctx)),
            "background_pred": cpu(predict(model, x_bg, ctx)),
            "object_fraction": cpu(obj.flatten(1).mean(1)),
        }

    def summarize(self, examples: pd.DataFrame, ctx: Context) -> list[tuple[str, float]]:
        label = examples["label"]
        sar_object = 1 - accuracy(examples["object_pred"] == label)
        sar_background = 1 - accuracy(examples["background_pred"] == label)
        return [
            ("clean_accuracy", accuracy(examples["clean_pred"] == label)),
            ("sar_object", sar_object),
            ("sar_background", sar_background),
            ("attack_distance", sar_object - sar_background),
            ("mean_object_fraction", float(examples["object_fraction"].mean())),
        ]
