"""What an executor runs: a shard of one plugin run (a unit), i.e. some of its batches.

A shard is self-contained: the model, the dataset, the built plugin and the run's context travel with it, so a
worker process (or a Ray worker on another node) needs nothing but the ``bench`` package. Batches start at fixed
multiples of the batch size and every plugin seeds per example (or per batch start), so how the batches of a
unit are grouped into shards, and which worker runs them, cannot change a number.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace

import pandas as pd
import torch

from bench.data import ImageDataset
from bench.plugins import Context, Plugin
from bench.registry import EXECUTORS  # noqa: F401  (re-exported for the executor modules)

BATCH_SECONDS = "_batch_seconds"  # kept in the batch parts only, summed into the unit's wall_seconds


@dataclass
class ShardJob:
    unit: str  # the unit's id (UnitKey.unit)
    model: torch.nn.Module
    data: ImageDataset
    plugin: Plugin
    ctx: Context
    starts: tuple[int, ...]  # first example index of each batch
    batch_size: int
    n: int  # examples in the unit (the last batch may be short)

    @property
    def n_examples(self) -> int:
        return self.examples_in(self.starts)

    def examples_in(self, starts: Iterable[int]) -> int:
        """Number of examples in the batches starting at ``starts`` (the last batch may be short)."""
        return sum(min(self.batch_size, self.n - s) for s in starts)

    def without_payload(self) -> ShardJob:
        """The job minus model and dataset, which a distributed executor ships once per run, not per shard."""
        return replace(self, model=None, data=None, ctx=replace(self.ctx, dataset=None))


BatchCallback = Callable[[ShardJob, int, pd.DataFrame], None]


def run_batches(job: ShardJob) -> Iterator[tuple[int, pd.DataFrame]]:
    """Run the job's batches; yield (start, per-example frame with the batch's compute seconds).

    Each batch is moved to the run's device here, once: plugins get ``x``, ``y``, ``mask`` and ``group`` on
    ``ctx.device`` (``index`` stays on the CPU) and never move a batch themselves.
    """
    for start in job.starts:
        began = time.perf_counter()
        torch.manual_seed(job.ctx.seed * 1_000_003 + start)  # plugins seed per example; this pins anything global
        batch = job.data.batch(torch.arange(start, min(start + job.batch_size, job.n))).to(job.ctx.device)
        columns = job.plugin.run_batch(job.model, batch, job.ctx)
        part = pd.DataFrame({"index": batch.index.numpy(), **columns})
        part[BATCH_SECONDS] = time.perf_counter() - began
        yield start, part
        release_freed_memory()


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    libc = ctypes.CDLL(name) if name else None
    return getattr(libc, "malloc_trim", None)  # glibc only


def release_freed_memory() -> None:
    """Hand the heap memory a batch freed back to the OS (glibc's ``malloc_trim``; a no-op elsewhere).

    Without it glibc keeps the freed activation and gradient buffers of past batches, so the resident size of a
    long run creeps up with the number of batches (benchmarks/README.md, ``peak_memory``) though nothing is kept.
    """
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


def shard_jobs(job: ShardJob, shard_size: int | None) -> Iterable[ShardJob]:
    """Split a unit's job into shards of ``shard_size`` examples, rounded up to whole batches (None: one shard)."""
    size = -(-shard_size // job.batch_size) if shard_size else max(1, len(job.starts))
    for i in range(0, len(job.starts), size):
        yield replace(job, starts=job.starts[i : i + size])


class Executor:
    """Runs shard jobs and reports every finished batch to ``on_batch`` (in the driver process).

    ``units_per_round``: how many units the driver claims before handing their jobs over (None: every free one).
    A claimed unit is held until its round ends, so an executor that runs units one after another claims one at a
    time, and concurrent runs into one results folder share the remaining units instead of waiting.
    """

    name = ""
    units_per_round: int | None = None

    def run(self, jobs: list[ShardJob], on_batch: BatchCallback) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass
