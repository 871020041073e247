"""Pivot tidy rows into one line per (model, suite, plugin setting) and one column per metric.

A cell reads ``value [ci_low, ci_high]`` when the row has a 95% interval (``bench results``, ``bench run``).
"""

from __future__ import annotations

import json
import math

import pandas as pd

INDEX = ["model", "suite", "split", "n", "plugin", "setting", "seed", "precision"]


def describe_params(params_json: str) -> str:
    """Short human form of a plugin's parameters, e.g. 'eps=0.0314 steps=20'."""
    params = json.loads(params_json)
    return " ".join(f"{k}={round(v, 4) if isinstance(v, float) else v}" for k, v in params.items()) or "-"


def _cell(value: float, low: float, high: float) -> str:
    if value is None or math.isnan(value):
        return "–"
    if low is None or high is None or math.isnan(low) or math.isnan(high):
        return f"{value:.4f}"
    return f"{value:.4f} [{low:.4f}, {high:.4f}]"


def pivot(rows: pd.DataFrame) -> pd.DataFrame:
    """One line per setting, one column per metric; intervals beside values where the rows have them.

    Example:
        >>> pivot(ResultsStore().read("cifar10-adv", "fgsmat_cnn"))  # doctest: +SKIP
    """
    frame = rows.assign(setting=rows["params"].map(describe_params))
    if "ci_low" not in frame or frame["ci_low"].isna().all():
        table = frame.pivot_table(index=INDEX, columns="metric", values="value", aggfunc="last")
        table.columns.name = None
        return table.round(4)
    cells = [
        _cell(float(v), float(lo), float(hi))
        for v, lo, hi in zip(frame["value"], frame["ci_low"], frame["ci_high"], strict=True)
    ]
    table = frame.assign(cell=cells).pivot_table(index=INDEX, columns="metric", values="cell", aggfunc="last")
    table.columns.name = None
    return table.fillna("")
