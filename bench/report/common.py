"""Shared by leaderboards, paper tables and figures: reading rows and cards, matching, formatting, writing.

Everything here is deterministic: rows are sorted before use, floats are formatted with a fixed number of
digits, and files are written with "\\n" line ends, so that regenerating from the same ``results/`` gives
identical bytes.
"""

from __future__ import annotations

import json
import math
import os
from fractions import Fraction
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from bench.exceptions import ReportError  # noqa: F401  (re-exported: report modules import it from here)
from bench.models.cards import CARD_FILE, zoo_root

MISSING = "–"  # an en dash: "not measured", never a guessed number
ATTACK_METRIC = "robust_accuracy"
ROBUST_METRICS = (ATTACK_METRIC, "worst_case_accuracy")  # the diagnostics plugin: worst case over all its attacks
FLAG_PREFIX = "flag_"
PLUGIN_ORDER = {"clean": 0, "fgsm": 1, "pgd": 2, "square": 3, "autoattack": 4}


def read_cards(zoo: str | os.PathLike | None = None) -> dict[str, dict[str, Any]]:
    """All model cards of a zoo folder, by model name (the folder name)."""
    root = Path(zoo) if zoo is not None else zoo_root()
    cards = {}
    for path in sorted(root.glob(f"*/{CARD_FILE}")) if root.is_dir() else []:
        card = yaml.safe_load(path.read_text()) or {}
        cards[path.parent.name] = {**card, "_card_path": str(path)}
    return cards


def parse_number(value: Any) -> Any:
    """``"8/255"`` -> 0.0313..., numbers unchanged, other values unchanged."""
    if isinstance(value, str) and "/" in value:
        try:
            return float(Fraction(value.replace(" ", "")))
        except (ValueError, ZeroDivisionError):
            return value
    return value


def values_equal(actual: Any, wanted: Any) -> bool:
    wanted = parse_number(wanted)
    if isinstance(wanted, bool) or isinstance(actual, bool):
        return actual == wanted
    if isinstance(wanted, (int, float)) and isinstance(actual, (int, float)):
        return math.isclose(float(actual), float(wanted), rel_tol=1e-6, abs_tol=1e-9)
    return str(actual) == str(wanted)


def dotted_get(mapping: dict[str, Any], dotted: str) -> Any:
    """``dotted_get(card, "head_kwargs.k")``; None when any part is absent."""
    node: Any = mapping
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def mapping_matches(mapping: dict[str, Any], wanted: dict[str, Any]) -> bool:
    """Every (dotted) key of ``wanted`` is present in ``mapping`` with an equal value (lists mean any-of)."""
    for key, want in wanted.items():
        have = dotted_get(mapping, key)
        options = want if isinstance(want, list) else [want]
        if have is None or not any(values_equal(have, option) for option in options):
            return False
    return True


def params_match(params_json: str, wanted: dict[str, Any]) -> bool:
    return mapping_matches(json.loads(params_json), wanted)


def current_rows(rows: pd.DataFrame, cards: dict[str, dict[str, Any]]) -> tuple[pd.DataFrame, int]:
    """Keep each model's rows of its current weights; return them and the number of stale rows dropped.

    Current = the sha256 on the model's card when some rows carry it, else the sha256 of the newest row
    (a retrained model under the same name must not be mixed with measurements of its old weights).
    """
    if rows.empty:
        return rows, 0
    keep = pd.Series(False, index=rows.index)
    for model, group in rows.groupby("model", sort=True):
        card_sha = cards.get(str(model), {}).get("sha256")
        if card_sha and (group["model_sha256"] == card_sha).any():
            current = card_sha
        else:
            current = group.sort_values(["timestamp", "unit"]).iloc[-1]["model_sha256"]
        keep[group.index] = group["model_sha256"] == current
    return rows[keep], int((~keep).sum())


def sorted_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """A canonical order, independent of the order files were read or rows appended."""
    return rows.sort_values(["suite", "model", "plugin", "params", "metric", "timestamp", "unit"], kind="mergesort")


def format_eps(eps: float) -> str:
    """0.03137... -> '8/255'; other values with 4 significant digits."""
    scaled = eps * 255
    if abs(scaled - round(scaled)) < 1e-6 and round(scaled) != 0:
        return f"{round(scaled)}/255"
    return f"{eps:.4g}"


def setting_label(plugin: str, params_json: str, shown: set[str] | None = None) -> str:
    """A short name of a plugin setting: 'PGD-20 ε=8/255', 'FGSM ε=8/255', 'Square-5000 ε=8/255'.

    Other plugins are named by their parameters; ``shown`` limits those to the ones that tell settings apart.
    """
    params = json.loads(params_json)
    eps = f" ε={format_eps(float(params['eps']))}" if isinstance(params.get("eps"), (int, float)) else ""
    norm = f" {params['norm']}" if params.get("norm") not in (None, "Linf") else ""
    if plugin == "clean":
        return "Clean"
    if plugin == "fgsm":
        return f"FGSM{eps}{norm}"
    if plugin == "pgd":
        restarts = int(params.get("restarts", 1))
        tail = f"×{restarts}" if restarts > 1 else ""
        return f"PGD-{params.get('steps', '?')}{tail}{eps}{norm}"
    if plugin == "square":
        return f"Square-{params.get('n_queries', '?')}{eps}{norm}"
    if plugin == "autoattack":
        return f"AutoAttack ({params.get('version', '?')}){eps}{norm}"
    if plugin == "diagnostics":
        return f"Diagnostics worst case{eps}"
    rest = {k: v for k, v in params.items() if k not in ("eps", "norm") and (shown is None or k in shown)}
    described = " ".join(f"{k}={format_value(v)}" for k, v in sorted(rest.items()))
    return f"{plugin}{eps}{norm}" + (f" {described}" if described else "")


def varying_params(settings: list[tuple[str, str]]) -> dict[str, set[str]]:
    """Per plugin, the parameter names whose values differ between its settings (plugin, params JSON)."""
    values: dict[str, dict[str, set[str]]] = {}
    for plugin, params_json in settings:
        for key, value in json.loads(params_json).items():
            values.setdefault(plugin, {}).setdefault(key, set()).add(json.dumps(value, sort_keys=True))
    return {plugin: {k for k, v in keys.items() if len(v) > 1} for plugin, keys in values.items()}


def format_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def format_number(value: Any, digits: int = 3) -> str:
    return MISSING if is_missing(value) else f"{float(value):.{digits}f}"


def format_percent(value: Any) -> str:
    return MISSING if is_missing(value) else f"{100 * float(value):.2f}"


def is_rate_metric(metric: str) -> bool:
    return "accuracy" in metric or metric.endswith("_rate")


def short_commit(commit: str) -> str:
    dirty = "+dirty" if str(commit).endswith("+dirty") else ""
    return str(commit).removesuffix("+dirty")[:10] + dirty


def write_text(path: Path, text: str) -> Path:
    """Write UTF-8 with '\\n' line ends (the same bytes on every platform)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)
    return path


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|").replace("\n", " ") for c in cells) + " |"

    return "\n".join([line(header), "|" + "|".join("---" for _ in header) + "|", *map(line, rows)]) + "\n"
