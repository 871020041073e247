"""Executors run the shards of a ``bench run``: ``local`` (in-process) or ``ray``; one file + one registration each."""

from bench._discover import import_submodules
from bench.executors.base import EXECUTORS, Executor, ShardJob, run_batches, shard_jobs

import_submodules(__name__, skip=("base",))

__all__ = ["EXECUTORS", "Executor", "ShardJob", "run_batches", "shard_jobs"]
