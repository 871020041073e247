"""Common-corruption accuracy (Hendrycks & Dietterich 2019): 15 corruptions x 5 severities, per cell and means.

Two sources give the same rows: ``source: generate`` corrupts the batch images with bench.corruptions (seeded per
example, cached on disk under RIBENCH_CACHE), ``source: cifar10c`` / ``imagenet-c`` reads the published files for the
same examples (the dataset registers a ``cells`` reader). Summary: accuracy per (corruption, severity) cell, the
mean over the selected common cells (RobustBench's ``corruptions_acc`` for all 75), per corruption, per severity
and per family; the 4 extra corruptions are averaged separately.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from bench.corruptions import (
    COMMON,
    FAMILIES,
    CorruptionCache,
    corrupt_images,
    resolve_protocol,
    select_corruptions,
    select_severities,
)
from bench.corruptions.cache import image_digests
from bench.data.base import resolve_data_root
from bench.plugins.base import Context, MetricInfo, Plugin, accuracy, count, predict, register_plugin
from bench.registry import DATASETS
from bench.stats import mean_of, proportion


def cell_column(corruption: str, severity: int) -> str:
    return f"correct__{corruption}__{severity}"


def to_uint8_nhwc(x: torch.Tensor) -> np.ndarray:
    return (x.detach().float().cpu() * 255).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()


def to_float_nchw(images: np.ndarray, device: str) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float().div(255).to(device)


@register_plugin
@dataclass
class Corruption(Plugin):
    """Common-corruption accuracy per (corruption, severity) cell, mean over cells, per corruption and family."""

    name = "corruption"
    metrics = {
        "mean_accuracy": MetricInfo("Mean corruption accuracy (common cells)", "%", "higher", headline=True),
        "extra_mean_accuracy": MetricInfo("Mean accuracy, extra corruptions", "%", "higher"),
        "clean_accuracy": MetricInfo("Clean accuracy", "%", "higher"),
        "accuracy_severity_*": MetricInfo("Accuracy at one severity", "%", "higher"),
        "accuracy_family_*": MetricInfo("Accuracy, one corruption family", "%", "higher"),
        "accuracy_*": MetricInfo("Accuracy, one corruption", "%", "higher"),
        "n_cells": count("Cells"),
    }
    corruptions: str = "common"  # common (15) | all (19) | extra | a family | comma-separated names
    severities: str = "1,2,3,4,5"
    protocol: str = "auto"  # auto: cifar10-c parameters for 32x32 images, imagenet-c otherwise
    source: str = "generate"  # generate | a dataset with published cells (cifar10c, imagenet-c)
    data_root: str = ""  # for published cells; default RIBENCH_DATA

    def __post_init__(self) -> None:
        self._names = select_corruptions(self.corruptions)
        self._levels = select_severities(self.severities)
        if self.protocol != "auto":
            resolve_protocol(self.protocol, (0, 0))
        if self.source != "generate" and "cells" not in DATASETS.entry(self.source).meta:
            raise ValueError(f"dataset '{self.source}' has no published corruption cells; use cifar10c or imagenet-c")
        self._cells: dict[tuple[str, int], Any] = {}
        self._cache: CorruptionCache | None = None

    def cells(self) -> list[tuple[str, int]]:
        return [(c, s) for c in self._names for s in self._levels]

    def _generated(self, images, index, digests, corruption: str, severity: int, ctx: Context) -> np.ndarray:
        protocol = resolve_protocol(self.protocol, images.shape[1:])
        if self._cache is None or (self._cache.dataset, self._cache.split, self._cache.protocol, self._cache.seed) != (
            ctx.dataset.name,
            ctx.dataset.split,
            protocol,
            ctx.seed,
        ):
            self._cache = CorruptionCache(ctx.dataset.name, ctx.dataset.split, protocol, ctx.seed)

        def compute(imgs: np.ndarray, idx: np.ndarray) -> np.ndarray:
            return corrupt_images(imgs, idx, corruption, severity, ctx.seed, protocol)

        return self._cache.get_or_compute(images, index, corruption, severity, compute, digests)

    def _published(self, index: np.ndarray, labels: np.ndarray, corruption: str, severity: int, ctx: Context):
        key = (corruption, severity)
        if key not in self._cells:
            root = resolve_data_root(self.data_root or ctx.data_root)
            if root is None:
                raise ValueError(f"corruption source '{self.source}' needs a data root (data_root or RIBENCH_DATA)")
            self._cells[key] = DATASETS.entry(self.source).meta["cells"](root, corruption, severity)
        return self._cells[key].read(index, labels, ctx.dataset)

    def run_batch(self, model, batch, ctx: Context) -> dict[str, np.ndarray]:
        y = batch.y.cpu().numpy()
        index = batch.index.numpy()
        images = to_uint8_nhwc(batch.x)
        digests = image_digests(images) if self.source == "generate" else None
        columns: dict[str, np.ndarray] = {
            "label": y,
            "clean_correct": (predict(model, batch.x, ctx).cpu().numpy() == y),
        }
        for corruption, severity in self.cells():
            if self.source == "generate":
                corrupted = self._generated(images, index, digests, corruption, severity, ctx)
            else:
                corrupted = self._published(index, y, corruption, severity, ctx)
            pred = predict(model, to_float_nchw(corrupted, ctx.device), ctx).cpu().numpy()
            columns[cell_column(corruption, severity)] = pred == y
        return columns

    def summarize(self, examples: pd.DataFrame, ctx: Context) -> list[tuple[str, float]]:
        missing = [cell_column(c, s) for c, s in self.cells() if cell_column(c, s) not in examples]
        if missing:
            raise ValueError(f"corruption results lack cells {', '.join(missing[:3])}…; delete the unit and re-run")
        cell_acc = {(c, s): accuracy(examples[cell_column(c, s)]) for c, s in self.cells()}
        metrics: list[tuple[str, float]] = [("clean_accuracy", accuracy(examples["clean_correct"]))]
        metrics += [(f"accuracy_{c}_s{s}", a) for (c, s), a in cell_acc.items()]
        metrics += [(f"accuracy_{c}", float(np.mean([cell_acc[c, s] for s in self._levels]))) for c in self._names]
        common = [a for (c, _), a in cell_acc.items() if c in COMMON]
        extra = [a for (c, _), a in cell_acc.items() if c not in COMMON]
        if common:
            metrics.append(("mean_accuracy", float(np.mean(common))))
            metrics += [
                (f"accuracy_severity_{s}", float(np.mean([cell_acc[c, s] for c in self._names if c in COMMON])))
                for s in self._levels
            ]
        if extra:
            metrics.append(("extra_mean_accuracy", float(np.mean(extra))))
        for family, members in FAMILIES.items():
            values = [a for (c, _), a in cell_acc.items() if c in members]
            if values:
                metrics.append((f"accuracy_family_{family}", float(np.mean(values))))
        metrics.append(("n_cells", float(len(cell_acc))))
        return metrics

    def example_values(self, examples: pd.DataFrame, seed: int = 0) -> dict:
        """Cells: 0/1 per image; means over cells: the per-image share of cells classified right (bootstrap)."""
        cells = [(c, s) for c, s in self.cells() if cell_column(c, s) in examples]

        def share(selected: list[tuple[str, int]]):
            return mean_of(examples[[cell_column(c, s) for c, s in selected]].astype(float).mean(axis=1))

        values: dict = {"clean_accuracy": proportion(examples["clean_correct"])}
        values.update({f"accuracy_{c}_s{s}": proportion(examples[cell_column(c, s)]) for c, s in cells})
        for name in self._names:
            values[f"accuracy_{name}"] = share([(c, s) for c, s in cells if c == name])
        common = [(c, s) for c, s in cells if c in COMMON]
        extra = [(c, s) for c, s in cells if c not in COMMON]
        if common:
            values["mean_accuracy"] = share(common)
            for level in self._levels:
                values[f"accuracy_severity_{level}"] = share([(c, s) for c, s in common if s == level])
        if extra:
            values["extra_mean_accuracy"] = share(extra)
        for family, members in FAMILIES.items():
            chosen = [(c, s) for c, s in cells if c in members]
            if chosen:
                values[f"accuracy_family_{family}"] = share(chosen)
        return values
