"""Plugin base: a measurement over batches of a dataset, returning per-example columns.

The runner owns batching, devices, seeding, progress, resume and row writing; a plugin only
implements ``run_batch`` (per-example outcomes) and ``summarize`` (metrics from those outcomes).
Plugins are dataclasses: their fields are their parameters, recorded with every row.
"""

from __future__ import annotations

import contextlib
import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch

from bench.data import Batch, ImageDataset
from bench.registry import PLUGINS


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


@dataclass
class Plugin:
    name: ClassVar[str] = ""
    requires_masks: ClassVar[bool] = False

    def params(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def run_batch(self, model: torch.nn.Module, batch: Batch, ctx: Context) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def summarize(self, examples: pd.DataFrame, ctx: Context) -> list[Metric]:
        raise NotImplementedError


def register_plugin(cls: type[Plugin]) -> type[Plugin]:
    """Class decorator: register a plugin under its ``name``."""
    PLUGINS.add(cls.name, cls, description=(cls.__doc__ or "").strip().splitlines()[0])
    return cls


def example_generator(seed: int, index: int) -> torch.Generator:
    """A generator that depends only on (seed, example index): shards never change an example's noise."""
    return torch.Generator().manual_seed(seed * 1_000_003 + index)


def example_uniform(
    batch_index: torch.Tensor, shape: tuple[int, ...], seed: int, low: float, high: float
) -> torch.Tensor:
    """Per-example uniform noise in [low, high), reproducible whatever the batch composition."""
    draws = [torch.rand(shape, generator=example_generator(seed, int(i))) for i in batch_index]
    return torch.stack(draws) * (high - low) + low


@torch.no_grad()
def predict(model: torch.nn.Module, x: torch.Tensor, ctx: Context) -> torch.Tensor:
    with ctx.autocast():
        return model(x).argmax(1)


def accuracy(flags: pd.Series) -> float:
    return float(flags.astype(bool).mean()) if len(flags) else float("nan")
