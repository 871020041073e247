"""The table ``bench run`` ends with: one line per plugin setting, named as a person names it, with its headline.

``bench.pivot`` keeps every metric and key (one column each); this keeps what a reader looks at first: the setting
("PGD-20 ε=8/255"), its headline metric (a percentage with its 95% interval when the row has one), and the metrics
its plugin shows beside the headline. Settings shared by all lines (suite, split, n, seed, precision) go in a header
line; columns without a value are left out.

Example:
    >>> print(render(summarize_rows(rows), "table"))
    cifar10-adv-quick · cifar10 test · n=500 · seed 0 · fp32
    model         setting         metric           value  95% CI
    standard_cnn  Clean           Clean accuracy   89.4%  [86.4, 91.8]
    standard_cnn  PGD-10 ε=8/255  Robust accuracy   0.0%  [0.0, 0.8]
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING

from bench.registry import PLUGINS

if TYPE_CHECKING:
    import pandas as pd

FORMATS = ("table", "md", "csv", "json")
HEADER_KEYS = ["suite", "dataset", "split", "n", "seed", "precision"]
SHOWN = ["model", "setting", "metric", "value", "95% CI", "also"]


def summarize_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """One record per unit (model x suite x plugin setting): its headline metric and the plugin's side metrics.

    Args:
        rows: tidy rows (``bench run``, ``bench.evaluate`` or a results folder).

    Returns:
        Columns ``suite, dataset, split, n, seed, precision, model, plugin, setting, metric, label, unit, value,
        ci_low, ci_high, also``; ``value`` and the interval are raw numbers (fractions for percentages).
    """
    import pandas as pd  # imported here: the CLI checks --format against FORMATS before anything heavy loads

    records = [_unit_record(unit) for _, unit in rows.groupby("unit", sort=False)] if len(rows) else []
    frame = pd.DataFrame(records)
    if frame.empty:
        return frame
    return frame.sort_values(["suite", "model", "_order"], kind="stable").drop(columns="_order").reset_index(drop=True)


def _unit_record(unit: pd.DataFrame) -> dict:
    first = unit.iloc[0]
    plugin = _plugin(first["plugin"], first["params"])
    values = dict(zip(unit["metric"], unit.index, strict=True))
    headline = plugin.headline_metric() if plugin is not None else None
    metric = headline if headline in values else unit["metric"].iloc[0]
    row = unit.loc[values[metric]]
    info = plugin.metric_info(metric) if plugin is not None else None
    also = [
        f"{plugin.metric_info(m).label} {_number(unit.loc[i, 'value'], plugin.metric_info(m).unit)}"
        for m, i in values.items()
        if plugin is not None and m != metric and plugin.metric_info(m).column
    ]
    return {
        **{k: first[k] for k in HEADER_KEYS},
        "model": first["model"],
        "plugin": first["plugin"],
        "setting": plugin.describe() if plugin is not None else f"{first['plugin']} {first['params']}",
        "metric": metric,
        "label": info.label if info is not None else metric,
        "unit": info.unit if info is not None else "",
        "value": float(row["value"]),
        "ci_low": _optional(row.get("ci_low")),
        "ci_high": _optional(row.get("ci_high")),
        "also": "; ".join(also),
        "_order": getattr(plugin, "report_order", 50),
    }


def _plugin(name: str, params: str):
    try:
        return PLUGINS.entry(name).factory.from_params(params)
    except Exception:  # a plugin that is not installed here, or changed since: show the raw name and parameters
        return None


def _optional(value) -> float | None:
    return None if value is None or math.isnan(float(value)) else float(value)


def _number(value: float | None, unit: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if unit == "%":
        return f"{100 * value:.1f}%"
    if unit == "count":
        return f"{value:.0f}"
    return f"{value:.4g}"


def _interval(record: pd.Series) -> str:
    low, high = _optional(record["ci_low"]), _optional(record["ci_high"])
    if low is None or high is None:
        return ""
    if record["unit"] == "%":
        return f"[{100 * low:.1f}, {100 * high:.1f}]"
    return f"[{low:.4g}, {high:.4g}]"


def _shown(block: pd.DataFrame) -> pd.DataFrame:
    """The columns a reader sees, without the ones that have no value."""
    import pandas as pd

    shown = pd.DataFrame(
        {
            "model": block["model"],
            "setting": block["setting"],
            "metric": block["label"],
            "value": [_number(v, u) for v, u in zip(block["value"], block["unit"], strict=True)],
            "95% CI": [_interval(r) for _, r in block.iterrows()],
            "also": block["also"],
        }
    )
    return shown[[c for c in SHOWN if (shown[c].astype(str) != "").any()]]


def _header(key: tuple) -> str:
    suite, dataset, split, n, seed, precision = key
    return f"{suite} · {dataset} {split} · n={n} · seed {seed} · {precision}"


def _aligned(frame: pd.DataFrame) -> str:
    """Columns padded to their widest cell: text left, numbers (value) right."""
    cells = [list(frame.columns)] + [[str(v) for v in row] for row in frame.itertuples(index=False)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(frame.columns))]
    right = {i for i, c in enumerate(frame.columns) if c == "value"}
    pad = lambda text, i: text.rjust(widths[i]) if i in right else text.ljust(widths[i])  # noqa: E731
    return "\n".join("  ".join(pad(text, i) for i, text in enumerate(row)).rstrip() for row in cells)


def _markdown(frame: pd.DataFrame) -> str:
    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "|".join(" --- " for _ in frame.columns) + "|"]
    lines += ["| " + " | ".join(str(v).replace("|", "\\|") for v in row) + " |" for row in frame.itertuples(False)]
    return "\n".join(lines)


def render(records: pd.DataFrame, fmt: str = "table") -> str:
    """The summary as text: ``table`` (aligned), ``md`` (Markdown), ``csv`` or ``json`` (raw numbers, all keys).

    Example:
        >>> print(render(summarize_rows(rows), "md"))
    """
    if fmt not in FORMATS:
        from bench.exceptions import UsageError

        raise UsageError(f"--format {fmt}: use one of {', '.join(FORMATS)}")
    if records.empty:
        return "no rows"
    if fmt == "csv":
        return records.to_csv(index=False).rstrip("\n")
    if fmt == "json":
        plain = json.loads(records.to_json(orient="records", force_ascii=False))  # numpy scalars as JSON numbers
        return json.dumps(plain, indent=1, ensure_ascii=False)
    blocks = []
    for key, block in records.groupby(HEADER_KEYS, sort=False):
        shown = _shown(block)
        body = _markdown(shown) if fmt == "md" else _aligned(shown)
        blocks.append(f"{'### ' if fmt == 'md' else ''}{_header(key)}\n{body}")
    return "\n\n".join(blocks)
