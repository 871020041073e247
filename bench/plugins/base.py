"""Plugin base: a measurement over batches of a dataset, returning per-example columns.

The runner owns batching, devices, seeding, progress, resume and row writing; a plugin only
implements ``run_batch`` (per-example outcomes) and ``summarize`` (metrics from those outcomes).
Plugins are dataclasses: their fields are their parameters, recorded with every row.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fnmatch
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch

from bench.attacks import example_noise
from bench.data import Batch, ImageDataset
from bench.labels import format_eps, short_value, threat_suffix
from bench.registry import PLUGINS
from bench.stats import PerExample

__all__ = [
    "AttackOutcome",
    "Context",
    "FlagEvidence",
    "MetricInfo",
    "Plugin",
    "format_eps",
    "register_plugin",
    "threat_suffix",
]


@dataclass
class Context:
    """What a plugin may know about the run besides the model and the batch."""

    seed: int
    device: str
    precision: str  # "fp32" or "bf16"
    dataset: ImageDataset
    model: str = ""  # registry name of the evaluated model
    data_root: str | None = None  # the run's --data-root / RIBENCH_DATA

    @property
    def num_classes(self) -> int:
        return self.dataset.num_classes

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.precision == "bf16":
            return torch.autocast(torch.device(self.device).type, dtype=torch.bfloat16)
        return contextlib.nullcontext()


Metric = tuple[str, float]

DIRECTIONS = ("higher", "lower", "none")
KINDS = ("estimate", "count", "flag", "setting")


@dataclass(frozen=True)
class MetricInfo:
    """How to read one metric a plugin writes.

    ``unit``: "%" for a fraction shown as a percentage, "count", or a short unit name ("" = dimensionless).
    ``direction``: which values are better for the evaluated model ("none": neither, e.g. a setting or a count).
    ``kind``: "estimate" (a measured quantity: gets an interval), "count", "flag" (a decision: 1 = raised) or
    "setting" (a parameter the run chose). ``headline``: the metric the plugin is ranked and compared by.
    ``column``: shown as a leaderboard column beside the headline (every metric is in the measurements table).

    Example:
        >>> MetricInfo("Robust accuracy", "%", "higher", headline=True).arrow
        '↑'
    """

    label: str
    unit: str = ""
    direction: str = "higher"
    kind: str = "estimate"
    headline: bool = False
    column: bool = False

    def __post_init__(self) -> None:
        if self.direction not in DIRECTIONS or self.kind not in KINDS:
            raise ValueError(f"MetricInfo: direction must be one of {DIRECTIONS}, kind one of {KINDS}")

    @property
    def arrow(self) -> str:
        return {"higher": "↑", "lower": "↓"}.get(self.direction, "")

    @property
    def percent(self) -> bool:
        return self.unit == "%"


def count(label: str) -> MetricInfo:
    return MetricInfo(label, "count", "none", "count")


def setting(label: str) -> MetricInfo:
    return MetricInfo(label, "", "none", "setting")


def flag(label: str) -> MetricInfo:
    return MetricInfo(label, "", "lower", "flag")


@dataclass(frozen=True)
class AttackOutcome:
    """Which images survived one attack: ``robust`` per example (False for clean-misclassified ones)."""

    label: str
    eps: float
    norm: str
    robust: np.ndarray


@dataclass(frozen=True)
class FlagEvidence:
    """What a flag metric decides from: the rule that raises it and the metrics of the same run it compares.

    ``metrics``: (label, metric name) pairs, e.g. ("PGD-50", "pgd50_accuracy"). ``skipped``: (metric name, why)
    pairs: a row of that metric with value 1 means the check did not run, for that reason.

    Example:
        >>> FlagEvidence("raised when PGD-100 < PGD-50 - 0.01", (("PGD-50", "pgd50_accuracy"),)).metrics[0][1]
        'pgd50_accuracy'
    """

    rule: str
    metrics: tuple[tuple[str, str], ...] = ()
    skipped: tuple[tuple[str, str], ...] = ()


@dataclass
class Plugin:
    """A measurement. Besides ``run_batch`` and ``summarize``, a plugin says how its metrics read (``metrics``:
    metric name or fnmatch pattern -> ``MetricInfo``, first match wins), their per-image form
    (``example_values``: for intervals and paired comparisons) and, for attacks, which images survived
    (``attack_outcomes``). The report layer reads only these, never a plugin's name."""

    name: ClassVar[str] = ""
    requires_masks: ClassVar[bool] = False
    metrics: ClassVar[dict[str, MetricInfo]] = {}
    report_order: ClassVar[int] = 50  # position of its columns on a leaderboard (clean 0, attacks 10)
    recorded_before: ClassVar[dict[str, Any]] = {}  # parameters added later -> their value in older rows
    ranks_suites: ClassVar[bool] = True  # False for a baseline (clean accuracy) that should not rank a suite it is in

    def params(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_params(cls, params: dict[str, Any] | str) -> Plugin:
        """The plugin as it ran, from its recorded parameters (unknown keys ignored, missing ones default).

        A parameter added later (``recorded_before``) takes the value that described the old rows, not today's
        default: PGD rows written before ``mode`` existed were final-iterate.
        """
        values = json.loads(params) if isinstance(params, str) else dict(params)
        values = {**cls.recorded_before, **values}
        fields = {f.name for f in dataclasses.fields(cls) if f.init}
        return cls(**{k: v for k, v in values.items() if k in fields})

    def metric_info(self, metric: str) -> MetricInfo:
        """The metric's ``MetricInfo`` (a neutral one for a metric the plugin does not describe)."""
        for pattern, info in self.metrics.items():
            if fnmatch.fnmatchcase(metric, pattern):
                return info
        return MetricInfo(metric, "", "none", "estimate")

    def headline_metric(self) -> str | None:
        """The metric this plugin is ranked and compared by."""
        return next((m for m, info in self.metrics.items() if info.headline), None)

    def describe(self, shown: Iterable[str] | None = None) -> str:
        """A short name of this setting, e.g. 'deletion order=morf ε=...'; ``shown`` limits the parameters named."""
        params = self.params()
        keep = set(params) if shown is None else set(shown)
        rest = {k: v for k, v in params.items() if k not in ("eps", "norm") and k in keep}
        described = " ".join(f"{k}={short_value(v)}" for k, v in sorted(rest.items()))
        return f"{self.name}{threat_suffix(params)}" + (f" {described}" if described else "")

    def threat_model(self) -> tuple[str, float] | None:
        """(norm, eps) of the attacks whose outcomes this plugin reports; None for plugins that attack nothing."""
        return None

    def example_values(self, examples: pd.DataFrame, seed: int = 0) -> dict[str, PerExample]:
        """Per-image form of each metric that has one (``bench.stats.proportion`` / ``mean_of`` / ``Statistic``).

        ``seed`` is the run's seed (for metrics whose images were split by it). A key may be an fnmatch pattern.
        """
        return {}

    def attack_outcomes(self, examples: pd.DataFrame) -> list[AttackOutcome]:
        """Per-image survival under each attack at (or within) this plugin's threat model."""
        return []

    def curve_point(self, metric: str) -> dict[str, Any] | None:
        """Where a metric sits on a figure's curve, e.g. {"curve": "robust", "eps": ..., "steps": 20, "restarts": 1}
        (robust accuracy vs steps or eps), {"curve": "deletion", "fraction": 0.2, "setting": ...} or
        {"curve": "cam_l1"}; None for a metric no figure draws."""
        return None

    def flag_evidence(self, metric: str) -> FlagEvidence | None:
        """For a flag metric (``MetricInfo.kind == "flag"``): its rule and the metrics it compares; None if unknown."""
        return None

    def run_batch(self, model: torch.nn.Module, batch: Batch, ctx: Context) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def summarize(self, examples: pd.DataFrame, ctx: Context) -> list[Metric]:
        raise NotImplementedError


def register_plugin(cls: type[Plugin]) -> type[Plugin]:
    """Class decorator: register a plugin under its ``name``."""
    PLUGINS.add(cls.name, cls, description=(cls.__doc__ or "").strip().splitlines()[0])
    return cls


def example_uniform(
    batch_index: torch.Tensor, shape: tuple[int, ...], seed: int, low: float, high: float
) -> torch.Tensor:
    """Per-example uniform noise in [low, high), reproducible whatever the batch composition."""
    return example_noise(batch_index, shape, seed, low, high)


@torch.no_grad()
def predict(model: torch.nn.Module, x: torch.Tensor, ctx: Context) -> torch.Tensor:
    with ctx.autocast():
        return model(x).argmax(1)


def accuracy(flags: pd.Series) -> float:
    return float(flags.astype(bool).mean()) if len(flags) else float("nan")
