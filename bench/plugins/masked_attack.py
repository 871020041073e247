"""Attack distance (Def. 7): FGSM (or PGD) on object pixels only vs on background pixels only.

SAR(I) = 1 - Acc(I) over all evaluated images (clean-misclassified ones included, as in the paper;
they cancel in the distance). AD = SAR(O) - SAR(B); a positive AD means perturbing the object hurts
more than perturbing the background. Masks are binarized at 0.5. An image with an empty mask gets an
unperturbed object image (pets3's empty trimap, Abyssinian_34, is in neither official split).

The attacks are ``bench.attacks.FGSM`` / ``PGD`` (no random start) with a pixel mask: x_O = clip(x + eps * sign(grad)
* M) perturbs only object pixels M, x_B uses (1 - M), and pixels outside the region are returned bit-for-bit
unchanged. ``mode="best"`` keeps the first iterate that fools the model (an image misclassified from the start counts
as fooled at once); ``final`` keeps the last iterate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from bench.attacks import FGSM, PGD, frozen
from bench.interp.common import check_choice, require_masks
from bench.plugins.base import Context, MetricInfo, Plugin, accuracy, predict, register_plugin
from bench.stats import mean_of, proportion

ATTACKS = ("fgsm", "pgd")


@register_plugin
@dataclass
class MaskedAttack(Plugin):
    """Object-only vs background-only FGSM/PGD: SAR(O), SAR(B) and attack distance SAR(O) - SAR(B)."""

    name = "masked_attack"
    recorded_before = {"mode": "final"}  # rows from before best-iterate PGD existed
    requires_masks = True
    eps: float = 1 / 255
    attack: str = "fgsm"
    steps: int = 10
    alpha: float = 0.25 / 255
    mode: str = "best"

    def __post_init__(self) -> None:
        check_choice("attack", self.attack, ATTACKS)

    def predict_attacked(self, model, x, y, index, region: torch.Tensor, ctx: Context) -> torch.Tensor:
        """The model's predictions on x attacked inside ``region`` only."""
        common = {"mode": self.mode, "seed": ctx.seed, "model_mode": "as-is", "autocast": ctx.autocast}
        if self.attack == "fgsm":
            attack = FGSM(model, self.eps, **common)
        else:
            attack = PGD(model, self.eps, self.alpha, self.steps, random_start=False, **common)
        return attack.run(x, y, index, mask=region).pred

    def run_batch(self, model, batch, ctx: Context) -> dict[str, np.ndarray]:
        require_masks(self.name, ctx)
        x, y = batch.x, batch.y  # the runner moved the batch to the device
        obj = (batch.mask >= 0.5).float()[:, None]
        with frozen(model):
            object_pred = self.predict_attacked(model, x, y, batch.index, obj, ctx)
            background_pred = self.predict_attacked(model, x, y, batch.index, 1 - obj, ctx)
        cpu = lambda t: t.cpu().numpy()  # noqa: E731
        return {
            "label": cpu(y),
            "clean_pred": cpu(predict(model, x, ctx)),
            "object_pred": cpu(object_pred),
            "background_pred": cpu(background_pred),
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

    metrics = {
        "attack_distance": MetricInfo("Attack distance SAR(O) − SAR(B)", "", "higher", headline=True),
        "sar_object": MetricInfo("Success rate, object pixels only", "%", "none"),
        "sar_background": MetricInfo("Success rate, background pixels only", "%", "lower", column=True),
        "clean_accuracy": MetricInfo("Clean accuracy", "%", "higher"),
        "mean_object_fraction": MetricInfo("Object share of the image", "", "none", "setting"),
    }

    def example_values(self, examples: pd.DataFrame, seed: int = 0) -> dict:
        object_fooled = (examples["object_pred"] != examples["label"]).astype(float)
        background_fooled = (examples["background_pred"] != examples["label"]).astype(float)
        return {
            "clean_accuracy": proportion(examples["clean_pred"] == examples["label"]),
            "sar_object": proportion(object_fooled),
            "sar_background": proportion(background_fooled),
            "attack_distance": mean_of(object_fooled - background_fooled),
        }
