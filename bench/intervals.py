"""95% intervals of tidy rows (``ci_low``, ``ci_high``, ``ci_method``) from the per-example outcomes of their unit.

New rows get them when their unit finishes (``with_intervals``, called by the runner). Rows already written get
them by ``recompute`` (``bench intervals``), which reads each unit's ``<plugin>-<unit>.examples.parquet`` and never
re-runs a model; a unit without that file gets NaN bounds and ``ci_method`` = "none: no per-example outcomes".
``recompute(resummarize=[plugin])`` also recomputes that plugin's values from the stored outcomes (its
``summarize``), for a plugin whose reading of the same outcomes changed (the ERF distance of issue 13).
"""

from __future__ import annotations

import fnmatch
import functools
import math
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from bench.stats import NO_EXAMPLES, Interval, PerExample, interval

CI_COLUMNS = ("ci_low", "ci_high", "ci_method")
KIND_REASONS = {
    "count": "a count, not an estimate",
    "flag": "a decision flag, not an estimate",
    "setting": "a setting or check, not an estimate",
}


@functools.cache
def _plugin_class(name: str) -> type | None:
    from bench.registry import PLUGINS

    try:
        return PLUGINS.entry(name).factory
    except KeyError:
        return None


def plugin_for(name: str, params: str) -> Any | None:
    """The plugin instance as it ran (from its recorded parameters), or None when it cannot be rebuilt."""
    return _cached_plugin(name, params)


@functools.lru_cache(maxsize=512)
def _cached_plugin(name: str, params: str) -> Any | None:
    cls = _plugin_class(name)
    if cls is None:
        return None
    try:
        return cls.from_params(params)
    except (TypeError, ValueError):
        return None


def lookup(values: dict[str, PerExample], metric: str) -> PerExample | None:
    """The per-image form of ``metric``: an exact key, else the first fnmatch-pattern key that matches."""
    if metric in values:
        return values[metric]
    return next((v for k, v in values.items() if "*" in k and fnmatch.fnmatchcase(metric, k)), None)


def unit_intervals(
    plugin: Any | None, examples: pd.DataFrame | None, metrics: Iterable[tuple[str, float]], seed: int = 0
) -> dict[str, Interval]:
    """The interval of each metric of one unit (examples None: its outcomes are not stored).

    Example:
        >>> from bench.plugins.clean import Clean
        >>> frame = pd.DataFrame({"correct": [True] * 9 + [False]})
        >>> unit_intervals(Clean(), frame, [("accuracy", 0.9)])["accuracy"].method
        'wilson'
    """
    metrics = list(metrics)
    values: dict[str, PerExample] = {}
    failed = ""
    if plugin is not None and examples is not None:
        try:
            values = plugin.example_values(examples, seed)
        except (KeyError, ValueError, TypeError, IndexError) as err:  # outcomes of an older plugin version
            failed = f"none: per-example outcomes unreadable ({type(err).__name__}: {err})"[:200]
    out = {}
    for metric, value in metrics:
        kind = plugin.metric_info(metric).kind if plugin is not None else "estimate"
        if kind in KIND_REASONS:
            out[metric] = Interval.none(KIND_REASONS[kind])
        elif plugin is None:
            out[metric] = Interval.none("plugin not available to read its outcomes")
        elif examples is None:
            out[metric] = Interval(math.nan, math.nan, NO_EXAMPLES)
        elif failed:
            out[metric] = Interval(math.nan, math.nan, failed)
        else:
            out[metric] = interval(lookup(values, metric), value, seed)
    return out


def with_intervals(rows: list[dict[str, Any]], plugin: Any, examples: pd.DataFrame, seed: int) -> list[dict[str, Any]]:
    """The rows of a finished unit with their ``ci_low``, ``ci_high`` and ``ci_method``."""
    intervals = unit_intervals(plugin, examples, [(r["metric"], r["value"]) for r in rows], seed)
    return [{**row, **intervals[row["metric"]].columns()} for row in rows]


# ----------------------------------------------------------------------------------------- committed rows


def examples_path(root: Path, suite: str, model: str, plugin: str, unit: str) -> Path:
    return root / suite / model / f"{plugin}-{unit}.examples.parquet"


def read_examples(root: Path, row: pd.Series | dict[str, Any], columns: list[str] | None = None) -> pd.DataFrame | None:
    """The per-example outcomes of a row's unit, or None when they are not stored."""
    path = examples_path(root, str(row["suite"]), str(row["model"]), str(row["plugin"]), str(row["unit"]))
    return pd.read_parquet(path, columns=columns) if path.exists() else None


class _Context:
    """What ``summarize`` may read when a unit is re-summarized from its stored outcomes (no dataset, no model)."""

    def __init__(self, row: pd.Series) -> None:
        self.seed, self.precision, self.device, self.model = (
            int(row["seed"]),
            str(row["precision"]),
            "cpu",
            row["model"],
        )

    def __getattr__(self, name: str) -> Any:
        raise ValueError(f"re-summarizing from stored outcomes cannot provide ctx.{name}")


@dataclass
class Recomputed:
    files: list[Path] = field(default_factory=list)
    units: int = 0
    without_examples: int = 0
    resummarized: int = 0


def _resummarize(group: pd.DataFrame, plugin: Any, examples: pd.DataFrame, commit: str) -> pd.DataFrame:
    """The unit's rows with the values its plugin now computes from the same outcomes (new metrics get rows)."""
    first = group.iloc[0]
    metrics = plugin.summarize(examples, _Context(first))
    old = {str(m): r for m, (_, r) in zip(group["metric"], group.iterrows(), strict=True)}
    rows = []
    for metric, value in metrics:
        row = dict(old.get(metric, first))
        row.update(metric=metric, value=float(value), git_commit=commit)
        rows.append(row)
    return pd.DataFrame(rows)


def recompute_table(
    path: Path, root: Path, resummarize: set[str] = frozenset(), commit: str = "", stats: Recomputed | None = None
) -> bool:
    """Recompute the interval columns (and values of ``resummarize`` plugins) of one table; True if it changed."""
    stats = stats if stats is not None else Recomputed()
    table = pd.read_parquet(path)
    parts = []
    for _, group in table.groupby("unit", sort=False):
        first = group.iloc[0]
        plugin = plugin_for(str(first["plugin"]), str(first["params"]))
        examples = read_examples(root, first)
        stats.units += 1
        stats.without_examples += examples is None
        if plugin is not None and examples is not None and str(first["plugin"]) in resummarize:
            group = _resummarize(group, plugin, examples, commit or str(first["git_commit"]))
            stats.resummarized += 1
        metrics = list(zip(group["metric"], group["value"], strict=True))
        intervals = unit_intervals(plugin, examples, metrics, int(first["seed"]))
        group = group.assign(**{c: [intervals[m].columns()[c] for m in group["metric"]] for c in CI_COLUMNS})
        parts.append(group)
    new = pd.concat(parts, ignore_index=True)
    new = new[_columns(new)]
    if _equal(table, new):
        return False
    from bench.results import atomic_write_parquet

    atomic_write_parquet(new, path)
    return True


def _columns(table: pd.DataFrame) -> list[str]:
    """Row columns in the store's order, the interval columns after them, then anything else the table has."""
    from bench.results import ROW_COLUMNS

    ordered = [c for c in [*ROW_COLUMNS, *(c for c in CI_COLUMNS if c not in ROW_COLUMNS)] if c in table.columns]
    return ordered + [c for c in table.columns if c not in ordered]


def _equal(old: pd.DataFrame, new: pd.DataFrame) -> bool:
    if list(old.columns) != list(new.columns) or len(old) != len(new):
        return False
    key = ["unit", "metric"]
    a, b = old.sort_values(key).reset_index(drop=True), new.sort_values(key).reset_index(drop=True)
    return a.equals(b)


def recompute(
    results: str | os.PathLike | None = None,
    suite: str | None = None,
    model: str | None = None,
    resummarize: Iterable[str] = (),
) -> Recomputed:
    """Recompute ``ci_low``/``ci_high``/``ci_method`` of every stored row from the per-example files.

    Example:
        >>> done = recompute("results", suite="cifar10-adv")  # doctest: +SKIP
        >>> done.units, done.without_examples  # doctest: +SKIP
        (50, 0)
    """
    from bench.provenance import git_commit
    from bench.results import results_root

    root = results_root(results)
    stats = Recomputed()
    wanted = set(resummarize)
    commit = git_commit() if wanted else ""
    for path in sorted(root.glob(f"{suite or '*'}/{model or '*'}.parquet")):
        if recompute_table(path, root, wanted, commit, stats):
            stats.files.append(path)
    return stats
