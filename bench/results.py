"""Tidy results store: one row per measurement, Parquet under ``results/<suite>/<model>.parquet``.

Writes are atomic (temp file + ``os.replace``). A plugin run is a *unit* identified by a hash of
everything that determines its numbers; rows are deduplicated on (unit, metric), so re-running a
finished unit is a no-op and a killed run never leaves a half-written file. Per-example outcomes of
a unit go to ``results/<suite>/<model>/<plugin>-<unit>.examples.parquet``; while a unit runs, its
finished batches are kept under ``results/.work/`` so that a killed run resumes batch by batch.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from bench.paths import default_results_root

ROW_COLUMNS = [
    "model",
    "model_sha256",
    "dataset",
    "split",
    "n",
    "suite",
    "plugin",
    "metric",
    "value",
    "ci_low",
    "ci_high",
    "ci_method",
    "params",
    "params_hash",
    "seed",
    "precision",
    "unit",
    "package_version",
    "git_commit",
    "torch_version",
    "device",
    "threads",
    "wall_seconds",
    "timestamp",
    "command",
]
UNIT_KEYS = ("model", "model_sha256", "dataset", "split", "n", "suite", "plugin", "params_hash", "seed", "precision")


def results_root(out: str | os.PathLike | None = None) -> Path:
    """``out``, else ``RIBENCH_RESULTS``, else ``./results`` (inside the clone: the clone's ``results/``)."""
    return Path(out or os.environ.get("RIBENCH_RESULTS") or default_results_root())


def canonical_json(params: dict[str, Any]) -> str:
    return json.dumps(params, sort_keys=True, separators=(",", ":"), default=str)


def short_hash(text: str, length: int = 12) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:length]


@dataclass(frozen=True)
class UnitKey:
    """Everything that determines a plugin run's numbers."""

    model: str
    model_sha256: str
    dataset: str
    split: str
    n: int
    suite: str
    plugin: str
    params: str  # canonical JSON
    seed: int
    precision: str

    @property
    def params_hash(self) -> str:
        return short_hash(self.params)

    @property
    def unit(self) -> str:
        fields = [str(getattr(self, k)) for k in UNIT_KEYS if k != "params_hash"] + [self.params_hash]
        return short_hash("|".join(fields), 16)

    def columns(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "model_sha256": self.model_sha256,
            "dataset": self.dataset,
            "split": self.split,
            "n": self.n,
            "suite": self.suite,
            "plugin": self.plugin,
            "params": self.params,
            "params_hash": self.params_hash,
            "seed": self.seed,
            "precision": self.precision,
            "unit": self.unit,
        }


def atomic_write_parquet(frame: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    frame.to_parquet(tmp, index=False)
    os.replace(tmp, path)


class ResultsStore:
    def __init__(self, root: str | os.PathLike | None = None) -> None:
        self.root = results_root(root)

    def table_path(self, suite: str, model: str) -> Path:
        return self.root / suite / f"{model}.parquet"

    def examples_path(self, key: UnitKey) -> Path:
        return self.root / key.suite / key.model / f"{key.plugin}-{key.unit}.examples.parquet"

    def work_dir(self, key: UnitKey) -> Path:
        return self.root / ".work" / key.suite / key.model / f"{key.plugin}-{key.unit}"

    def has_unit(self, key: UnitKey) -> bool:
        path = self.table_path(key.suite, key.model)
        if not path.exists():
            return False
        return bool((pd.read_parquet(path, columns=["unit"])["unit"] == key.unit).any())

    def append_rows(self, suite: str, model: str, rows: Iterable[dict[str, Any]]) -> pd.DataFrame:
        """Append rows to the model x suite table, replacing rows with the same (unit, metric)."""
        new = pd.DataFrame(list(rows), columns=ROW_COLUMNS)
        path = self.table_path(suite, model)
        if path.exists():
            old = pd.read_parquet(path)
            new = pd.concat([old, new], ignore_index=True).drop_duplicates(["unit", "metric"], keep="last")
        atomic_write_parquet(new, path)
        return new

    # per-batch parts of a running unit
    def part_path(self, key: UnitKey, start: int) -> Path:
        return self.work_dir(key) / f"part-{start:08d}.parquet"

    def finish_unit(self, key: UnitKey, examples: pd.DataFrame, rows: list[dict[str, Any]]) -> None:
        atomic_write_parquet(examples, self.examples_path(key))
        self.append_rows(key.suite, key.model, rows)
        shutil.rmtree(self.work_dir(key), ignore_errors=True)

    def read(self, suite: str | None = None, model: str | None = None) -> pd.DataFrame:
        pattern = f"{suite or '*'}/{model or '*'}.parquet"
        frames = [pd.read_parquet(p) for p in sorted(self.root.glob(pattern))]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=ROW_COLUMNS)

    def read_examples(self, suite: str, model: str, plugin: str | None = None) -> dict[str, pd.DataFrame]:
        folder = self.root / suite / model
        return {p.name: pd.read_parquet(p) for p in sorted(folder.glob(f"{plugin or '*'}-*.examples.parquet"))}
