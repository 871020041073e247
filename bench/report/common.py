"""Shared by leaderboards, paper tables and figures: reading rows and cards, matching, formatting, writing.

Everything here is deterministic: rows are sorted before use, floats are formatted with a fixed number of
digits, and files are written with "\\n" line ends, so that regenerating from the same ``results/`` gives
identical bytes.
"""

from __future__ import annotations

import functools
import json
import math
import os
import statistics
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from bench.exceptions import ReportError  # noqa: F401  (re-exported: report modules import it from here)
from bench.labels import format_eps, threat_suffix  # noqa: F401  (format_eps: re-exported for figures and tables)
from bench.models.cards import CARD_FILE, zoo_root

MISSING = "–"  # an en dash: "not measured", never a guessed number
ATTACK_METRIC = "robust_accuracy"
FLAG_PREFIX = "flag_"


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
    """Every (dotted) key of ``wanted`` is present in ``mapping`` with an equal value (lists mean any-of; a wanted
    ``None`` matches a key that is absent or null, e.g. ``hyperparameters.init_from: null`` = trained from scratch).

    Example:
        >>> mapping_matches({"a": {"b": 2}}, {"a.b": [1, 2], "c": None})
        True
    """
    for key, want in wanted.items():
        have = dotted_get(mapping, key)
        options = want if isinstance(want, list) else [want]
        if have is None:
            if None in options:
                continue
            return False
        if not any(option is not None and values_equal(have, option) for option in options):
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


@functools.cache
def _cam_positions(card_json: str) -> int:
    """Number of CAM positions H'·W' of a Top-GAP model: one forward pass of the architecture (no weights needed)."""
    import torch

    from bench.models.zoo import build_from_card

    card = json.loads(card_json)
    model = build_from_card(card).eval()
    size = int(card["input_size"])
    with torch.no_grad():
        cam = model.class_map(torch.zeros(1, 3, size, size))
    return int(cam.shape[-1] * cam.shape[-2])


def cam_positions(card: dict[str, Any]) -> int:
    """H'·W' of a Top-GAP card (its ``cam_positions`` field, or one forward pass of its architecture).

    Example:
        >>> cam_positions(read_cards()["topgap_cnn"])  # doctest: +SKIP
        256
    """
    if card.get("cam_positions"):
        return int(card["cam_positions"])
    keys = ("arch", "num_classes", "head", "normalization", "head_kwargs", "input_size")
    return _cam_positions(json.dumps({k: card.get(k) for k in keys}, sort_keys=True))


def topgap_k(card: dict[str, Any]) -> tuple[int, int | None] | None:
    """(k, H'·W') of a Top-GAP card; H'·W' None when the architecture cannot be built here; None for other heads."""
    k = (card.get("head_kwargs") or {}).get("k")
    if card.get("head") != "topgap" or k is None:
        return None
    try:
        return int(k), cam_positions(card)
    except Exception:  # an architecture this installation cannot build (e.g. an optional timm model)
        return int(k), None


def is_gap_ablation(card: dict[str, Any]) -> bool:
    """A Top-GAP model whose k covers every CAM position: plain global average pooling, not Top-GAP."""
    k = topgap_k(card)
    return k is not None and k[1] is not None and k[0] >= k[1]


def training_budget(card: dict[str, Any]) -> str:
    """'from scratch, 10 epochs' / 'fine-tuned 2 epochs from standard_cnn', from the card.

    Example:
        >>> training_budget({"epochs": 2, "initialized_from": {"model": "standard_cnn"}})
        'fine-tuned 2 epochs from standard_cnn'
    """
    if card.get("training"):
        return str(card["training"])
    epochs = card.get("epochs", (card.get("hyperparameters") or {}).get("epochs"))
    start = (card.get("initialized_from") or {}).get("model") or (card.get("hyperparameters") or {}).get("init_from")
    shown = f"{epochs} epoch{'' if epochs == 1 else 's'}" if epochs is not None else "epochs unknown"
    return f"fine-tuned {shown} from {start}" if start else f"from scratch, {shown}"


def model_budget(card: dict[str, Any]) -> str:
    """The training budget and precision, and for Top-GAP k and k/(H'·W') ('GAP ablation' when k covers every
    position).

    Example:
        >>> model_budget({"training": "from scratch, 10 epochs", "precision": "bf16-autocast"})
        'from scratch, 10 epochs, bf16'
    """
    parts = []
    k = topgap_k(card)
    if k is not None:
        value, positions = k
        if positions is None:
            parts.append(f"k={value}, H'·W' unknown")
        else:
            parts.append(f"k={value}, k/(H'·W')={value}/{positions}={value / positions:.3g}")
            if value >= positions:
                parts.append("GAP ablation")
    parts.append(training_budget(card))
    if card.get("precision"):  # rows of one table may come from models trained in different precisions
        parts.append(str(card["precision"]).removesuffix("-autocast"))
    return ", ".join(parts)


def setting_label(plugin: str, params_json: str, shown: set[str] | None = None) -> str:
    """A short name of a plugin setting, as the plugin describes itself: 'PGD-20 best-iterate ε=8/255',
    'FGSM ε=8/255'.

    Plugins that are not attacks are named by their parameters; ``shown`` limits those to the ones that tell a
    suite's settings apart. A plugin that is not registered here is named by its parameters the same way.

    Example:
        >>> setting_label("pgd", '{"eps": 0.03137254901960784, "steps": 20, "norm": "Linf", "mode": "best"}')
        'PGD-20 best-iterate ε=8/255'
    """
    from bench.intervals import plugin_for

    instance = plugin_for(plugin, params_json)
    if instance is not None:
        return instance.describe(shown)
    params = json.loads(params_json)
    rest = {k: v for k, v in params.items() if k not in ("eps", "norm") and (shown is None or k in shown)}
    described = " ".join(f"{k}={format_value(v)}" for k, v in sorted(rest.items()))
    return f"{plugin}{threat_suffix(params)}" + (f" {described}" if described else "")


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


# ----------------------------------------------------------------------------------------- seed groups

# Card fields that record where, when and how fast a model was trained, or what it scored, not how: two seeds of
# one recipe differ in these. ``precision`` is not among them (bf16-autocast or fp32 training is part of the recipe).
PROVENANCE_FIELDS = frozenset(
    {
        "name",
        "seed",
        "git_commit",
        "package_version",
        "trained_at",
        "wall_seconds",
        "sha256",
        "weights",
        "license",
        "clean_accuracy",
        "machine",
        "device",
        "gpu",
        "history",
        "training_history",
        "training_command",
        "training",  # "from scratch, 10 epochs": a sentence derived from init_from and epochs, which do count
        "_card_path",
    }
)
# Hyperparameters that do not change the recipe: the seed itself, the run's name and where the data lay on disk.
SEED_FREE_HYPERPARAMETERS = frozenset({"seed", "name", "data_root"})
# Hyperparameters that ``bench train`` gained after the zoo's first models were trained, with the value its code used
# before each existed (bench/train.py at the commits in those cards: SGD with nesterov=True, no stop on collapse, CPU,
# the arch's normalization, the whole split, float32 weights in one file, Top-GAP's l1 as the entry mean, no head
# dropout). A card that lacks one ran with that value, so a field at that value says nothing about the recipe.
HISTORICAL_HYPERPARAMETERS: dict[str, Any] = {
    "abort_below": 0.0,
    "device": "cpu",
    "normalization": None,
    "nesterov": True,
    "limit": None,
    "weights_dtype": "float32",
    "max_part_mib": None,
    "l1_reduction": "mean",
    "dropout": 0.0,
}


def training_seed(card: dict[str, Any]) -> int | None:
    """The card's training seed (top-level ``seed``, else ``hyperparameters.seed``); None when it has none."""
    seed = card.get("seed", (card.get("hyperparameters") or {}).get("seed"))
    return None if seed is None else int(seed)


def _start_model(card: dict[str, Any]) -> str | None:
    return (card.get("initialized_from") or {}).get("model") or (card.get("hyperparameters") or {}).get("init_from")


def recipe(card: dict[str, Any], group_of: dict[str, str] | None = None) -> str:
    """The card's training recipe as canonical JSON: every field but provenance, the seed and the name.

    A fine-tuned model's start model is named by its seed group (``group_of``: model -> group) when it has one, so
    that seed s of a fine-tuned recipe may start from seed s of its start model.

    Example:
        >>> recipe({"name": "a", "seed": 1, "method": "standard", "hyperparameters": {"seed": 1, "lr": 0.1}})
        '{"hyperparameters": {"lr": 0.1}, "method": "standard"}'
    """
    group_of = group_of or {}
    kept = {k: v for k, v in card.items() if k not in PROVENANCE_FIELDS and v != {}}
    hyper = {k: v for k, v in (card.get("hyperparameters") or {}).items() if _shapes_the_recipe(k, v, card)}
    if "hyperparameters" in card:
        kept["hyperparameters"] = hyper
    start = _start_model(card)
    if start and isinstance(kept.get("initialized_from"), dict):
        kept["initialized_from"] = {**kept["initialized_from"], "model": group_of.get(start, start)}
    if start and hyper.get("init_from"):
        hyper["init_from"] = group_of.get(start, start)
    return json.dumps(kept, sort_keys=True, default=str)


def _shapes_the_recipe(key: str, value: Any, card: dict[str, Any]) -> bool:
    """False for the seed, the name, the data folder, a field at its historical value and a head option that the
    card's ``head_kwargs`` records as built (a head default left unset reads ``None`` in newer cards)."""
    if key in SEED_FREE_HYPERPARAMETERS or key in (card.get("head_kwargs") or {}):
        return False
    return key not in HISTORICAL_HYPERPARAMETERS or value != HISTORICAL_HYPERPARAMETERS[key]


def _group_once(cards: dict[str, dict[str, Any]], group_of: dict[str, str]) -> dict[str, list[str]]:
    buckets: dict[str, list[str]] = {}
    for name in sorted(cards):
        buckets.setdefault(recipe(cards[name], group_of), []).append(name)
    groups = {}
    for members in buckets.values():
        seeds = {training_seed(cards[m]) for m in members}
        if len(members) >= 2 and len(seeds - {None}) >= 2:
            ordered = sorted(members, key=lambda m: (training_seed(cards[m]) is None, training_seed(cards[m]) or 0, m))
            groups[ordered[0]] = ordered
    return dict(sorted(groups.items()))


def seed_groups(cards: dict[str, dict[str, Any]]) -> dict[str, list[str]]:
    """Models that are seeds of one training recipe, by group name (its lowest-seed member), members by seed.

    Derived from the cards, never declared: cards that agree on every field except provenance
    (``PROVENANCE_FIELDS``: commit, date, wall time, sha256, clean accuracy, machine, training command, ...), the
    seed, the name and the data folder form one group (method, arch, dataset, head, head_kwargs, arch_config,
    precision, epochs and every other hyperparameter must be equal; a start model counts by its own seed group).
    A group needs at least two members with different seeds.

    Example:
        >>> base = {"method": "standard", "arch": "cnn", "hyperparameters": {"lr": 0.2}}
        >>> cards = {"m": {**base, "seed": 0}, "m_s1": {**base, "seed": 1, "git_commit": "abc"},
        ...          "m_lr": {**base, "seed": 1, "hyperparameters": {"lr": 0.1}}}
        >>> seed_groups(cards)
        {'m': ['m', 'm_s1']}
    """
    group_of: dict[str, str] = {}
    groups: dict[str, list[str]] = {}
    for _ in range(len(cards) + 1):  # until the start models' groups stop changing (fine-tuned from a seed group)
        groups = _group_once(cards, group_of)
        found = {m: g for g, members in groups.items() for m in members}
        if found == group_of:
            break
        group_of = found
    return groups


@dataclass(frozen=True)
class SeedStats:
    """A headline over the seeds of one group measured alike: mean, sample SD, min, max and spread = max − min."""

    group: str
    members: tuple[str, ...]
    seeds: tuple[int | None, ...]
    values: tuple[float, ...]

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.values)

    @property
    def sd(self) -> float:
        return statistics.stdev(self.values) if self.n >= 2 else math.nan

    @property
    def low(self) -> float:
        return min(self.values)

    @property
    def high(self) -> float:
        return max(self.values)

    @property
    def spread(self) -> float:
        return self.high - self.low
