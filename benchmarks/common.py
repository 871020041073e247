"""What every benchmark shares: the model and data, tidy rows with provenance, timing, threads, temporary suites."""

from __future__ import annotations

import contextlib
import functools
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import torch
import yaml

import bench.models  # noqa: F401  (registers the zoo models)
from bench.data import Batch, ImageDataset, load_dataset
from bench.plugins import Context
from bench.provenance import provenance, utc_now
from bench.registry import MODELS
from bench.results import canonical_json
from bench.runner import RunOptions, run_grid

COLUMNS = [
    "benchmark",
    "variant",
    "metric",
    "value",
    "unit",
    "model",
    "n",
    "batch_size",
    "threads",
    "params",
    "package_version",
    "git_commit",
    "torch_version",
    "device",
    "timestamp",
]
THREADS = 2  # the machine the numbers are for has 2 cores
T = TypeVar("T")


@dataclass
class Env:
    """The run's settings and the (lazily loaded) model and CIFAR-10 test data every benchmark uses."""

    quick: bool = False
    model_name: str = "standard_cnn"
    max_n: int | None = None  # --max-n: cap every benchmark's image count (rows record the n they used)
    device: str = "cpu"

    def size(self, full: T, quick: T) -> T:
        return quick if self.quick else full

    @functools.cached_property
    def model(self) -> torch.nn.Module:
        return MODELS.create(self.model_name, device=self.device).eval()

    @functools.cached_property
    def data(self) -> ImageDataset:
        return load_dataset("cifar10", "test")  # RIBENCH_DATA: the full test set, else the embedded sample

    def n(self, wanted: int) -> int:
        return min(wanted, len(self.data), self.max_n or wanted)

    def batches(self, n: int, batch_size: int) -> list[Batch]:
        return list(self.data.batches(batch_size, torch.arange(self.n(n))))

    def context(self, seed: int = 0) -> Context:
        return Context(seed=seed, device=self.device, precision="fp32", dataset=self.data, model=self.model_name)

    def options(self, out: Path, **kwargs: Any) -> RunOptions:
        return RunOptions(out=str(out), device=self.device, progress=False, **kwargs)


@dataclass
class Rows:
    """The tidy rows of one benchmark; ``scope`` fixes everything but (metric, value, unit)."""

    benchmark: str
    env: Env
    rows: list[dict[str, Any]] = field(default_factory=list)

    def add(
        self,
        variant: str,
        metric: str,
        value: float,
        unit: str,
        *,
        n: int | None,
        batch_size: int | None,
        threads: int,
        params: dict[str, Any],
    ) -> None:
        meta = {k: v for k, v in provenance(self.env.device).items() if k != "threads"}
        self.rows.append(
            {
                "benchmark": self.benchmark,
                "variant": variant,
                "metric": metric,
                "value": float(value),
                "unit": unit,
                "model": self.env.model_name,
                "n": n,
                "batch_size": batch_size,
                "threads": threads,
                "params": canonical_json({**params, "mode": "quick" if self.env.quick else "full"}),
                **meta,
                "timestamp": utc_now(),
            }
        )

    def scope(self, variant: str, **fixed: Any) -> Callable[[str, float, str], None]:
        return functools.partial(self.add, variant, **fixed)


@contextlib.contextmanager
def num_threads(n: int) -> Iterator[int]:
    """Set torch's intra-op threads for one measurement; restore them afterwards."""
    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield n
    finally:
        torch.set_num_threads(previous)


def timed(fn: Callable[[], T], repeats: int = 1) -> tuple[float, T]:
    """Median wall seconds (perf_counter) of ``repeats`` calls, and the last call's result."""
    seconds: list[float] = []
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        result = fn()
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds), result


def write_suite(folder: Path, name: str, n: int, batch_size: int, plugins: list[dict[str, Any]]) -> str:
    """A temporary CIFAR-10 test suite YAML (the same format as bench/suites/*.yaml); returns its path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.yaml"
    suite = {"name": name, "dataset": "cifar10", "split": "test", "n": n, "batch_size": batch_size, "plugins": plugins}
    path.write_text(yaml.safe_dump(suite, sort_keys=False))
    return str(path)


def pgd_spec(eps: float, alpha: float, steps: int, mode: str = "final") -> dict[str, Any]:
    return {"plugin": "pgd", "params": {"eps": eps, "alpha": alpha, "steps": steps, "mode": mode}}


def run_grid_once(env: Env, suite: str, out: Path, executor: Any = None, shard_size: int | None = None) -> float:
    """Wall seconds of one ``run_grid`` of the env's model on a suite, into a fresh results folder."""
    start = time.perf_counter()
    run_grid([env.model_name], [suite], env.options(out), executor=executor, shard_size=shard_size)
    return time.perf_counter() - start
