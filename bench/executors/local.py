"""In-process executor (the default): batches run one after another and are saved as they finish."""

from __future__ import annotations

from bench.executors.base import EXECUTORS, BatchCallback, Executor, ShardJob, run_batches


class LocalExecutor(Executor):
    name = "local"
    units_per_round = 1  # batches run one after another: claim one unit at a time

    def run(self, jobs: list[ShardJob], on_batch: BatchCallback) -> None:
        for job in jobs:
            for start, part in run_batches(job):
                on_batch(job, start, part)


EXECUTORS.add("local", LocalExecutor, description="in-process, batch by batch (default)")
