"""Group-shift accuracy (Sagawa et al. 2019): average, per-group and worst-group accuracy.

Datasets that know their training group distribution (``waterbirds``) also get ``train_weighted_accuracy``: the
per-group test accuracies weighted by the training split's group shares, the "average accuracy" of Sagawa et al.
and group_DRO's adjusted average (the test split's own average over-weights the rare groups).

Needs a dataset with group ids (``waterbirds``: group = 2*y + place; ``pets3``: species). Every group the dataset
defines must appear among the evaluated examples; a missing group is an error, never silently dropped.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from bench.plugins.base import Context, MetricInfo, Plugin, accuracy, count, predict, register_plugin
from bench.stats import Statistic, proportion


@register_plugin
@dataclass
class GroupAccuracy(Plugin):
    """Average, per-group and worst-group accuracy on a dataset with group labels."""

    name = "group_accuracy"
    metrics = {
        "worst_group_accuracy": MetricInfo("Worst-group accuracy", "%", "higher", headline=True),
        "average_accuracy": MetricInfo("Average accuracy", "%", "higher", column=True),
        "mean_group_accuracy": MetricInfo("Mean of group accuracies", "%", "higher"),
        "train_weighted_accuracy": MetricInfo("Accuracy weighted by training group shares", "%", "higher"),
        "accuracy_group_*": MetricInfo("Accuracy of one group", "%", "higher"),
        "n_group_*": count("Images in the group"),
    }

    def run_batch(self, model, batch, ctx: Context) -> dict[str, np.ndarray]:
        if batch.group is None:
            raise ValueError(f"group_accuracy needs a dataset with group ids; '{ctx.dataset.name}' has none")
        pred, y = predict(model, batch.x, ctx).cpu(), batch.y.cpu()
        return {
            "label": y.numpy(),
            "pred": pred.numpy(),
            "correct": (pred == y).numpy(),
            "group": batch.group.cpu().numpy(),
        }

    def summarize(self, examples: pd.DataFrame, ctx: Context) -> list[tuple[str, float]]:
        groups = ctx.dataset.groups
        expected = sorted(set(groups.tolist())) if groups is not None else sorted(examples["group"].unique())
        names = getattr(ctx.dataset, "group_names", None)
        present = set(examples["group"].unique().tolist())
        absent = [g for g in expected if g not in present]
        if absent:
            raise ValueError(
                f"group(s) {absent} of {ctx.dataset.name} have no evaluated examples; raise n or use a split "
                "capped per group (e.g. test[50/group]) so every group is measured"
            )
        per_group = {g: accuracy(examples.loc[examples["group"] == g, "correct"]) for g in expected}
        label = lambda g: f"{g}_{names[g]}" if names is not None and g < len(names) else str(g)  # noqa: E731
        rows = [("average_accuracy", accuracy(examples["correct"]))]
        rows += [(f"accuracy_group_{label(g)}", a) for g, a in per_group.items()]
        rows += [(f"n_group_{label(g)}", float((examples["group"] == g).sum())) for g in expected]
        rows.append(("worst_group_accuracy", min(per_group.values())))
        rows.append(("mean_group_accuracy", float(np.mean(list(per_group.values())))))
        weights = getattr(ctx.dataset, "train_group_fractions", None)
        if weights is not None and np.isfinite(weights).all():
            rows.append(("train_weighted_accuracy", float(sum(weights[g] * per_group[g] for g in expected))))
        return rows

    def example_values(self, examples: pd.DataFrame, seed: int = 0) -> dict:
        """Per group 0/1 outcomes (Wilson); the worst and the mean over groups re-taken on each bootstrap resample.

        Keys may be fnmatch patterns (group names are the dataset's, which this does not load).
        """
        groups = sorted(int(g) for g in examples["group"].unique())
        correct, group = examples["correct"].astype(float).to_numpy(), examples["group"].to_numpy()
        parts = {"in": np.stack([group == g for g in groups], 1).astype(float)}
        parts["right"] = parts["in"] * correct[:, None]

        def per_group(means: dict[str, np.ndarray]) -> np.ndarray:
            return np.divide(means["right"], means["in"], out=np.full_like(means["in"], np.nan), where=means["in"] > 0)

        values: dict = {"average_accuracy": proportion(correct)}
        values["worst_group_accuracy"] = Statistic(parts, lambda m: per_group(m).min(axis=1))
        values["mean_group_accuracy"] = Statistic(parts, lambda m: per_group(m).mean(axis=1))
        for g in groups:  # named groups write accuracy_group_<id>_<name>: matched by the pattern key
            values[f"accuracy_group_{g}"] = values[f"accuracy_group_{g}_*"] = proportion(correct, where=group == g)
        return values
