"""Pivot tidy rows into one line per (model, suite, plugin setting) and one column per metric."""

from __future__ import annotations

import json

import pandas as pd

INDEX = ["model", "suite", "split", "n", "plugin", "setting", "seed", "precision"]


def describe_params(params_json: str) -> str:
    """Short human form of a plugin's parameters, e.g. 'eps=0.0314 steps=20'."""
    params = json.loads(params_json)
    return " ".join(f"{k}={round(v, 4) if isinstance(v, float) else v}" for k, v in params.items()) or "-"


def pivot(rows: pd.DataFrame) -> pd.DataFrame:
    frame = rows.assign(setting=rows["params"].map(describe_params))
    table = frame.pivot_table(index=INDEX, columns="metric", values="value", aggfunc="last")
    table.columns.name = None
    return table.round(4)
