"""Training runs that stopped before the end of their recipe, recorded beside the zoo.

A run that diverges (non-finite loss) or collapses (training accuracy below ``--abort-below``) writes no model,
but a sweep must still say where it stopped: ``bench train`` writes ``<zoo>/_failed/<name>.yaml``, a card without
weights or accuracy plus ``status`` (``diverged`` | ``collapsed``), ``stopped`` (epoch, step, learning rate, as
far as known), ``reason`` (the one-line message) and the per-epoch history. The same filters that select cards
(method, ``head_kwargs.k``, ``hyperparameters.lambda_l1``, ...) select these records, so a paper table or sweep
can show the failed settings in their place. A later run of the same name that finishes removes the record.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from bench.exceptions import TrainingCollapsed
from bench.models.cards import write_yaml_atomically, zoo_root

FAILED_DIR = "_failed"


def failure_path(name: str, zoo: str | os.PathLike | None = None) -> Path:
    return (Path(zoo) if zoo is not None else zoo_root()) / FAILED_DIR / f"{name}.yaml"


def record_failure(card: dict[str, Any], stopped: TrainingCollapsed, history: list[dict]) -> Path:
    """Write the failure record of a stopped run (atomically; a record of the same name is replaced).

    Example (what ``bench train`` does when a run stops):
        >>> try:
        ...     raise TrainingCollapsed("t: the loss became nan", where={"epoch": 1, "step": 8})
        ... except TrainingCollapsed as stopped:
        ...     path = record_failure({"name": "t", "method": "topgap"}, stopped, history=[])
    """
    record = {
        **card,
        "status": stopped.kind,
        "stopped": stopped.where,
        "reason": str(stopped),
        "history": history,
    }
    path = failure_path(str(card["name"]))
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_yaml_atomically(path, record)


def forget_failure(name: str) -> None:
    """Remove the failure record of ``name`` (its run has now finished)."""
    failure_path(name).unlink(missing_ok=True)


def read_failures(zoo: str | os.PathLike | None = None) -> dict[str, dict[str, Any]]:
    """Every failure record of a zoo folder, by run name.

    Example:
        >>> read_failures("/nonexistent")
        {}
    """
    folder = (Path(zoo) if zoo is not None else zoo_root()) / FAILED_DIR
    records = {}
    for path in sorted(folder.glob("*.yaml")) if folder.is_dir() else []:
        records[path.stem] = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return records


def stopped_text(record: dict[str, Any]) -> str:
    """One phrase for a table: where the run stopped.

    Example:
        >>> stopped_text({"status": "diverged", "stopped": {"epoch": 1, "step": 29, "lr": 0.00714}})
        'diverged at epoch 1, step 29 (lr 7.14e-03)'
    """
    where = record.get("stopped") or {}
    parts = [f"epoch {where['epoch']}"] if "epoch" in where else []
    parts += [f"step {where['step']}"] if "step" in where else []
    text = f"{record.get('status', 'stopped')} at {', '.join(parts)}" if parts else str(record.get("status"))
    if "lr" in where:
        text += f" (lr {where['lr']:.2e})"
    if "train_accuracy" in where:
        text += f" (training accuracy {where['train_accuracy']:.3f})"
    return text
