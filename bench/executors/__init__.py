"""Executors run the shards of a ``bench run``: ``local`` (in-process) or ``ray``; one file + one registration each.

Both are declared here (listing them imports neither torch nor Ray); ``Executor``, ``ShardJob``, ``run_batches``
and ``shard_jobs`` are imported from ``bench.executors.base`` on first access.
"""

from __future__ import annotations

import importlib
from typing import Any

from bench.registry import EXECUTORS

EXECUTORS.declare("local", f"{__name__}.local", description="in-process, batch by batch (default)")
EXECUTORS.declare("ray", f"{__name__}.ray", description="Ray tasks, one per shard (pip install 'ribench[ray]')")

_FROM_BASE = ("Executor", "ShardJob", "run_batches", "shard_jobs")
__all__ = ["EXECUTORS", *_FROM_BASE]


def __getattr__(name: str) -> Any:
    if name in _FROM_BASE:
        return getattr(importlib.import_module(f"{__name__}.base"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
