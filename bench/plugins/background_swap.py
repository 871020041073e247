"""Background swap on real object masks (Xiao et al. 2020, "Noise or Signal", the Backgrounds Challenge).

Variants per example x with object mask m (1 = object): ``original``; ``only_fg`` (background set to black);
``only_bg`` (object set to black); ``mixed_same`` / ``mixed_rand`` / ``mixed_next`` (the object pasted on the
background of another image of the same class / of any other image / of the next class). Partners are drawn
from the evaluated dataset by a generator seeded with (seed, example index), so a result does not depend on
batching. BG-gap = acc(mixed_same) - acc(mixed_rand): how much the model relies on the background.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from bench.attacks import example_generator
from bench.plugins.base import Context, MetricInfo, Plugin, accuracy, predict, register_plugin
from bench.stats import mean_of, proportion

VARIANTS = ("original", "only_fg", "only_bg", "mixed_same", "mixed_rand", "mixed_next")


def partner_index(index: int, label: int, labels: torch.Tensor, variant: str, num_classes: int, seed: int) -> int:
    """A deterministic partner image for ``index``: same class, any other image, or the next class."""
    if variant == "mixed_same":
        pool = (labels == label).nonzero().flatten()
    elif variant == "mixed_next":
        pool = (labels == (label + 1) % num_classes).nonzero().flatten()
    else:
        pool = torch.arange(len(labels))
    pool = pool[pool != index]
    if len(pool) == 0:
        raise ValueError(f"no partner image for example {index} in variant {variant}; evaluate more examples")
    pick = torch.randint(len(pool), (1,), generator=example_generator(seed + VARIANTS.index(variant), index))
    return int(pool[pick])


def swapped(batch_x: torch.Tensor, batch_mask: torch.Tensor, partners: torch.Tensor) -> torch.Tensor:
    """Object of each image on the partner's background."""
    m = batch_mask[:, None]
    return batch_x * m + partners * (1 - m)


@register_plugin
@dataclass
class BackgroundSwap(Plugin):
    """Backgrounds Challenge variants on object masks: accuracy per variant and the BG-gap."""

    name = "background_swap"
    requires_masks = True
    metrics = {
        "bg_gap": MetricInfo("BG-gap (mixed-same − mixed-rand)", "", "lower", headline=True),
        "accuracy_mixed_rand": MetricInfo("Accuracy, object on a random background", "%", "higher", column=True),
        "accuracy_only_bg": MetricInfo("Accuracy, background only", "%", "none"),
        "accuracy_*": MetricInfo("Accuracy, one variant", "%", "higher"),
    }

    def _variant_images(self, variant: str, batch, ctx: Context) -> torch.Tensor:
        x, m = batch.x, batch.mask[:, None]
        if variant == "original":
            return x
        if variant == "only_fg":
            return x * m
        if variant == "only_bg":
            return x * (1 - m)
        data = ctx.dataset
        labels = data.labels
        pick = [
            partner_index(int(i), int(y), labels, variant, data.num_classes, ctx.seed)
            for i, y in zip(batch.index, batch.y, strict=True)
        ]
        partner = data.batch(torch.tensor(pick)).to(x.device)
        return swapped(x, batch.mask, partner.x)

    def run_batch(self, model, batch, ctx: Context) -> dict[str, np.ndarray]:
        if batch.mask is None:
            raise ValueError(f"background_swap needs object masks; '{ctx.dataset.name}' has none")
        out: dict[str, np.ndarray] = {"label": batch.y.cpu().numpy()}
        for variant in VARIANTS:
            pred = predict(model, self._variant_images(variant, batch, ctx), ctx)
            out[f"correct_{variant}"] = (pred == batch.y).cpu().numpy()
        return out

    def summarize(self, examples: pd.DataFrame, ctx: Context) -> list[tuple[str, float]]:
        rows = [(f"accuracy_{v}", accuracy(examples[f"correct_{v}"])) for v in VARIANTS]
        acc = dict(rows)
        return rows + [("bg_gap", acc["accuracy_mixed_same"] - acc["accuracy_mixed_rand"])]

    def example_values(self, examples: pd.DataFrame, seed: int = 0) -> dict:
        values: dict = {f"accuracy_{v}": proportion(examples[f"correct_{v}"]) for v in VARIANTS}
        gap = examples["correct_mixed_same"].astype(float) - examples["correct_mixed_rand"].astype(float)
        values["bg_gap"] = mean_of(gap)
        return values
