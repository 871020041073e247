"""The results parquet (rows of a rerun replace the old ones with the same key) and the README's results table."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

from bench.results import atomic_write_parquet
from benchmarks.common import COLUMNS

KEY = ["benchmark", "model", "variant", "metric", "params"]
INTS = ["n", "batch_size", "threads"]
START, END = "<!-- results:start -->", "<!-- results:end -->"
GOALS = {  # (benchmark, metric) -> (text, check)
    ("pgd_vs_torchattacks", "speed_ratio"): ("≥ 1.0", lambda v: v >= 1.0),
    ("pgd_vs_torchattacks", "robust_accuracy_diff_pp"): ("within ±0.5", lambda v: abs(v) <= 0.5),
    ("harness_overhead", "overhead_fraction"): ("≤ 0.05", lambda v: v <= 0.05),
    ("harness_overhead", "robust_accuracy_diff_pp"): ("= 0", lambda v: v == 0),
    ("peak_memory", "retained_growth_mb_vs_small_run"): ("≤ 50", lambda v: v <= 50),
    ("cli_startup", "wall_seconds"): ("≤ 2 s", lambda v: v <= 2.0),
}


def as_frame(rows: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=COLUMNS)
    return frame.astype({c: "Int64" for c in INTS} | {"value": "float64"})


def merge(path: Path, rows: list[dict]) -> pd.DataFrame:
    """Add one run's rows to the parquet at ``path``: they replace every earlier row of the same benchmarks, model
    and mode (full or quick), so the file holds the latest run of each benchmark per model and nothing stale."""
    frame = as_frame(rows)
    if path.exists():
        old = as_frame(pd.read_parquet(path).to_dict("records"))
        rerun = set(zip(frame["benchmark"], frame["model"].fillna(""), frame["params"].map(_mode), strict=True))
        keys = zip(old["benchmark"], old["model"].fillna(""), old["params"].map(_mode), strict=True)
        stale = [key in rerun for key in keys]
        frame = pd.concat([old[~pd.Series(stale, index=old.index, dtype=bool)], frame], ignore_index=True)
    frame = frame.drop_duplicates(KEY, keep="last").reset_index(drop=True)
    atomic_write_parquet(frame, path)
    return frame


def _mode(params: str) -> str:
    return json.loads(params).get("mode", "full")


def _value(value: float) -> str:
    if not math.isfinite(value):
        return str(value)
    return f"{value:.4g}" if abs(value) < 1e5 else f"{value:,.0f}"


def _goal(benchmark: str, metric: str, value: float) -> str:
    goal = GOALS.get((benchmark, metric))
    if goal is None:
        return ""
    text, check = goal
    return f"{text} {'✓' if check(value) else '✗'}"


def _cell(value: object) -> str:
    return "" if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)) else str(value)


def markdown_table(frame: pd.DataFrame, order: list[str]) -> str:
    """One line per row, benchmarks in registry order; with the provenance of the newest row."""
    if frame.empty:
        return "_No results yet: run `.venv/bin/python -m benchmarks.run`._"
    rank = {name: i for i, name in enumerate(order)}
    frame = frame.assign(_rank=frame["benchmark"].map(rank).fillna(len(order))).sort_values(
        ["_rank", "benchmark", "model", "variant"], kind="stable"
    )
    newest = frame.sort_values("timestamp").iloc[-1]
    lines = [
        f"Measured {frame['timestamp'].min()} … {frame['timestamp'].max()}; newest row: commit `{newest.git_commit}`, "
        f"ribench {newest.package_version}, torch {newest.torch_version}, device {newest.device}, "
        f"model `{newest.model}`.",
        "",
        "| benchmark | model | variant | metric | value | unit | goal | n | batch | threads |",
        "| --- | --- | --- | --- | ---: | --- | --- | ---: | ---: | ---: |",
    ]
    for r in frame.itertuples():
        goal = _goal(r.benchmark, r.metric, r.value)
        lines.append(
            f"| {r.benchmark} | {_cell(r.model)} | {r.variant} | {r.metric} | {_value(r.value)} | {r.unit} | {goal} "
            f"| {_cell(r.n)} | {_cell(r.batch_size)} | {_cell(r.threads)} |"
        )
    return "\n".join(lines)


def update_readme(readme: Path, frame: pd.DataFrame, order: list[str]) -> None:
    """Replace the text between the results markers (appending the section when the markers are missing)."""
    text = readme.read_text() if readme.exists() else ""
    block = f"{START}\n{markdown_table(frame, order)}\n{END}"
    if START in text and END in text:
        head, rest = text.split(START, 1)
        text = head + block + rest.split(END, 1)[1]
    else:
        text = text.rstrip() + f"\n\n## Latest results\n\n{block}\n"
    readme.write_text(text)
