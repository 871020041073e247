"""Deletion / insertion curves: accuracy and true-class probability as ranked pixels are removed.

Rankings: ``cam`` (the CAM of the explained class), ``magnitude`` (||feature|| per position of the
last backbone map, the magnitude-pruning baseline), ``random`` (seeded per example) and ``model``
(a model-provided importance score: ``model.importance(x) -> (B, h, w)``, higher = more important,
or -energy of an ERSM Energy-Mask layer). ``space='input'`` removes pixels (maps resized bilinearly to the input);
``space='feature'`` removes positions of the last backbone map before the head (maps area-pooled to
it). See bench.interp.removal for the operators (zero, mean, blur, road).
The curve is sampled at fractions 0, 1/steps, ..., 1; AUC is the trapezoidal area over [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from bench.interp.cams import compute_cams
from bench.interp.common import check_choice, explained_class, feature_magnitude, to_size
from bench.interp.removal import (
    FEATURE_OPERATORS,
    INPUT_OPERATORS,
    curve_auc,
    fractions,
    keep_mask,
    remove_feature,
    remove_input,
)
from bench.plugins.base import Context, MetricInfo, Plugin, example_uniform, register_plugin
from bench.stats import mean_of, proportion

RANKINGS = ("cam", "magnitude", "random", "model")


def ranking_scores(
    model,
    x: torch.Tensor,
    target: torch.Tensor,
    index: torch.Tensor,
    ranking: str,
    cam_method: str,
    size: tuple[int, int],
    seed: int,
) -> torch.Tensor:
    """Relevance scores (B, *size); higher = more relevant."""
    if ranking == "cam":
        return to_size(compute_cams(model, x, target, cam_method), size).to(x.device)
    if ranking == "magnitude":
        return to_size(feature_magnitude(model, x), size)
    if ranking == "random":
        return example_uniform(index, size, seed, 0.0, 1.0).to(x.device)
    return to_size(model_importance(model, x), size)


def model_importance(model, x: torch.Tensor) -> torch.Tensor:
    """``model.importance(x)`` if defined, else -energy of an ERSM Energy-Mask layer (low energy = important)."""
    with torch.no_grad():
        if hasattr(model, "importance"):
            return model.importance(x).float()
        from bench.models.ersm import find_energy_mask

        try:
            layer = find_energy_mask(model)
        except ValueError:
            raise TypeError(
                "ranking 'model' needs model.importance(x) -> (B, h, w) or an ERSM Energy-Mask layer; "
                "use cam, magnitude or random"
            ) from None
        model(x)
        return -layer.energy[:, 0].float()


@register_plugin
@dataclass
class Deletion(Plugin):
    """Deletion/insertion curves (accuracy, class probability, AUC) over CAM/magnitude/random/model rankings."""

    name = "deletion"
    ranking: str = "cam"
    cam_method: str = "auto"
    target: str = "label"
    order: str = "morf"
    mode: str = "deletion"
    operator: str = "zero"
    space: str = "input"
    steps: int = 10
    blur_sigma: float = 4.0

    def metric_info(self, metric: str) -> MetricInfo:
        """Which way is better depends on the curve: deleting the most relevant pixels first should hurt (low AUC),
        deleting the least relevant first should not (high AUC); insertion the other way round. Curves of baseline
        rankings (random, magnitude) have no better direction."""
        falls = (self.order == "morf") == (self.mode == "deletion")
        direction = "none" if self.ranking in ("random", "magnitude") else ("lower" if falls else "higher")
        what = f"{self.mode} {self.order.upper()} by {self.ranking}"
        if metric == "auc_accuracy":
            return MetricInfo(f"Accuracy AUC, {what}", "", direction, headline=True)
        if metric == "auc_prob":
            return MetricInfo(f"Class-probability AUC, {what}", "", direction)
        if metric.startswith("accuracy@"):
            return MetricInfo(f"Accuracy at {metric.split('@')[1]} {self.mode}", "%", direction)
        return MetricInfo(f"Class probability at {metric.split('@')[-1]} {self.mode}", "", direction)

    def headline_metric(self) -> str:
        return "auc_accuracy"

    def curve_point(self, metric: str) -> dict | None:
        if not metric.startswith("accuracy@"):
            return None
        setting = f"{self.mode} {self.order} by {self.ranking} ({self.operator}, {self.space})"
        return {"curve": "deletion", "fraction": float(metric.split("@")[1]), "setting": setting}

    def example_values(self, examples: pd.DataFrame, seed: int = 0) -> dict:
        fracs = fractions(self.steps)
        correct = np.stack(examples["correct"].to_numpy()).astype(float)
        prob = np.stack(examples["prob"].to_numpy()).astype(float)
        values: dict = {f"accuracy@{f:.2f}": proportion(correct[:, i]) for i, f in enumerate(fracs)}
        values.update({f"prob@{f:.2f}": mean_of(prob[:, i]) for i, f in enumerate(fracs)})
        values["auc_accuracy"] = mean_of(np.trapezoid(correct, fracs, axis=1))
        values["auc_prob"] = mean_of(np.trapezoid(prob, fracs, axis=1))
        return values

    def __post_init__(self) -> None:
        check_choice("ranking", self.ranking, RANKINGS)
        check_choice("order", self.order, ("morf", "lerf"))
        check_choice("mode", self.mode, ("deletion", "insertion"))
        check_choice("space", self.space, ("input", "feature"))
        check_choice("operator", self.operator, INPUT_OPERATORS if self.space == "input" else FEATURE_OPERATORS)
        if self.steps < 1:
            raise ValueError(f"steps must be >= 1, got {self.steps}")

    def logits_along_curve(
        self, model, x: torch.Tensor, scores: torch.Tensor, index: torch.Tensor, ctx: Context
    ) -> list[torch.Tensor]:
        out = []
        with torch.no_grad(), ctx.autocast():
            feats = model.features(x) if self.space == "feature" else None
            for f in fractions(self.steps):
                keep = keep_mask(scores, float(f), self.order, self.mode)
                if feats is None:
                    out.append(model(remove_input(x, keep, self.operator, index, ctx.seed, self.blur_sigma)))
                else:
                    out.append(model.head([*feats[:-1], remove_feature(feats[-1], keep, self.operator)]))
        return [o.float() for o in out]

    def run_batch(self, model, batch, ctx: Context) -> dict[str, np.ndarray]:
        x, y = batch.x, batch.y
        model.eval()
        if self.space == "feature":
            with torch.no_grad():
                size = tuple(model.features(x[:1])[-1].shape[-2:])
        else:
            size = tuple(x.shape[-2:])
        target = explained_class(model, batch, self.target, ctx) if self.ranking == "cam" else y
        scores = ranking_scores(model, x, target, batch.index, self.ranking, self.cam_method, size, ctx.seed)
        logits = self.logits_along_curve(model, x, scores, batch.index, ctx)
        correct = torch.stack([lg.argmax(1) == y for lg in logits], 1).float()
        prob = torch.stack([lg.softmax(1).gather(1, y[:, None])[:, 0] for lg in logits], 1)
        return {"label": y.cpu().numpy(), "correct": list(correct.cpu().numpy()), "prob": list(prob.cpu().numpy())}

    def summarize(self, examples: pd.DataFrame, ctx: Context) -> list[tuple[str, float]]:
        fracs = fractions(self.steps)
        accuracy = np.stack(examples["correct"].to_numpy()).mean(0)
        prob = np.stack(examples["prob"].to_numpy()).mean(0)
        metrics = [(f"accuracy@{f:.2f}", float(a)) for f, a in zip(fracs, accuracy, strict=True)]
        metrics += [(f"prob@{f:.2f}", float(p)) for f, p in zip(fracs, prob, strict=True)]
        return metrics + [("auc_accuracy", curve_auc(fracs, accuracy)), ("auc_prob", curve_auc(fracs, prob))]
