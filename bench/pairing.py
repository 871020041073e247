"""``bench.pairing.compare`` (``bench compare``): two models' paired differences in a suite, from stored outcomes.

Units of the two models are paired when everything that determines their numbers but the model agrees: plugin,
parameters, dataset, split, precision and seed; paired units must hold the same images (dataset indices). Anything
else — another n, other parameters, another precision — is a mismatch, reported in one line (``MismatchError``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

from bench.intervals import lookup, plugin_for
from bench.stats import Comparison, MismatchError, paired_difference, proportion
from bench.worst_case import entry_worst_case, missing_attacks, suite_attacks, unit_examples

SETTING_KEYS = ("plugin", "params", "dataset", "split", "precision", "seed")


def _units(rows: pd.DataFrame) -> pd.DataFrame:
    return rows.drop_duplicates("unit").sort_values([*SETTING_KEYS, "n", "timestamp"], kind="mergesort")


def _setting_text(unit: pd.Series) -> str:
    params = json.loads(unit["params"])
    shown = ", ".join(f"{k}={v}" for k, v in sorted(params.items()))
    return f"{unit['plugin']}({shown}) {unit['precision']} seed {unit['seed']} on {unit['dataset']} {unit['split']}"


def _no_common_setting(a: str, b: str, units_a: pd.DataFrame, units_b: pd.DataFrame) -> MismatchError:
    """Name the first field that tells the two models' settings apart."""
    for key in ("dataset", "split", "precision", "seed", "plugin", "params"):
        values_a, values_b = set(units_a[key].astype(str)), set(units_b[key].astype(str))
        if not values_a & values_b:
            what = "parameters" if key == "params" else key
            shown_a = _setting_text(units_a.iloc[0]) if key == "params" else ", ".join(sorted(values_a))
            shown_b = _setting_text(units_b.iloc[0]) if key == "params" else ", ".join(sorted(values_b))
            return MismatchError(f"different {what}: {a} has {shown_a}; {b} has {shown_b}")
    return MismatchError(f"{a} and {b} share no setting (plugin, parameters, precision, seed) in this suite")


def _check_images(label: str, a: str, b: str, ex_a: pd.DataFrame, ex_b: pd.DataFrame) -> None:
    ia, ib = np.sort(ex_a["index"].to_numpy()), np.sort(ex_b["index"].to_numpy())
    if len(ia) != len(ib) or not np.array_equal(ia, ib):
        raise MismatchError(
            f"different images for {label}: {a} has {len(ia)} ({_span(ia)}), {b} has {len(ib)} ({_span(ib)})"
        )


def _span(index: np.ndarray) -> str:
    return f"indices {index.min()}–{index.max()}" if len(index) else "none"


def _pairs(a: str, b: str, rows_a: pd.DataFrame, rows_b: pd.DataFrame, plugin: str | None):
    units_a, units_b = _units(rows_a), _units(rows_b)
    if plugin is not None:
        units_a, units_b = units_a[units_a["plugin"] == plugin], units_b[units_b["plugin"] == plugin]
        for model, units in ((a, units_a), (b, units_b)):
            if units.empty:
                raise MismatchError(f"{model} has no {plugin} results in this suite")
    key = list(SETTING_KEYS)
    merged = units_a.merge(units_b, on=key, suffixes=("_a", "_b"))
    if merged.empty:
        raise _no_common_setting(a, b, units_a, units_b)
    merged = merged.sort_values([*key, "n_a", "n_b"]).drop_duplicates(key, keep="last")
    only = []
    for model, units in ((a, units_a), (b, units_b)):
        seen = set(map(tuple, merged[key].astype(str).to_numpy()))
        for _, u in units.iterrows():
            if tuple(str(u[k]) for k in key) not in seen:
                only.append(f"only {model} has {_label(u['plugin'], u['params'])} ({u['precision']}, seed {u['seed']})")
    return merged, sorted(set(only))


def _label(plugin: str, params: str) -> str:
    instance = plugin_for(plugin, params)
    return instance.describe() if instance is not None else plugin


def _side(unit: pd.Series, side: str) -> pd.Series:
    fields = {k: unit[k] for k in SETTING_KEYS}
    fields.update({k: unit[f"{k}_{side}"] for k in ("model", "unit", "suite", "n")})
    return pd.Series(fields)


def _metrics(instance, values: dict, metric: str | None) -> list[str]:
    if metric == "all":
        return [m for m in values if "*" not in m]
    if metric is not None:
        return [metric]
    headline = instance.headline_metric()
    return [headline] if headline else []


def compare(
    model_a: str,
    model_b: str,
    suite: str,
    plugin: str | None = None,
    metric: str | None = None,
    results: str | os.PathLike | None = None,
    zoo: str | os.PathLike | None = None,
) -> Comparison:
    """Paired differences A − B of two models in a suite, on the images both were measured on.

    By default each plugin setting's headline metric is compared, and for suites with attacks the per-image
    worst-case robust accuracy first; ``metric`` picks one metric (or "all"). Raises ``MismatchError`` (one
    line) when the two models were measured on different images or with different parameters.

    Example:
        >>> c = compare("pgdat_cnn", "fgsmat_cnn", "cifar10-adv")  # doctest: +SKIP
        >>> print("\\n".join(c.lines()))  # doctest: +SKIP
    """
    from bench.report.common import current_rows, read_cards
    from bench.results import ResultsStore, results_root

    root = results_root(results)
    rows, _ = current_rows(ResultsStore(root).read(), read_cards(zoo))
    in_suite = rows[rows["suite"] == suite]
    rows_a, rows_b = in_suite[in_suite["model"] == model_a], in_suite[in_suite["model"] == model_b]
    for model, part in ((model_a, rows_a), (model_b, rows_b)):
        if part.empty:
            raise MismatchError(f"no results of {model} in suite {suite}")
    merged, notes = _pairs(model_a, model_b, rows_a, rows_b, plugin)
    comparison = Comparison(model_a, model_b, suite, notes=notes)
    if plugin is None:
        _add_worst_case(comparison, rows, rows_a, rows_b, merged, root)
    for _, pair in merged.iterrows():
        _add_setting(comparison, _side(pair, "a"), _side(pair, "b"), root, metric)
    return comparison


def _add_setting(comparison: Comparison, unit_a: pd.Series, unit_b: pd.Series, root: Path, metric: str | None) -> None:
    instance = plugin_for(str(unit_a["plugin"]), str(unit_a["params"]))
    label = _label(str(unit_a["plugin"]), str(unit_a["params"]))
    ex_a, ex_b = unit_examples(root, unit_a), unit_examples(root, unit_b)
    if instance is None or ex_a is None or ex_b is None:
        comparison.notes.append(f"{label}: no per-example outcomes stored, not compared")
        return
    _check_images(label, comparison.model_a, comparison.model_b, ex_a, ex_b)
    ex_a, ex_b = ex_a.sort_values("index").reset_index(drop=True), ex_b.sort_values("index").reset_index(drop=True)
    seed = int(unit_a["seed"])
    values_a, values_b = instance.example_values(ex_a, seed), instance.example_values(ex_b, seed)
    for name in _metrics(instance, values_a, metric):
        per_a, per_b = lookup(values_a, name), lookup(values_b, name)
        if per_a is None or per_b is None:
            comparison.notes.append(f"{label} · {name}: no per-image form, not compared")
            continue
        comparison.differences.append((label, paired_difference(name, per_a, per_b, seed)))


def _add_worst_case(
    comparison: Comparison,
    rows: pd.DataFrame,
    rows_a: pd.DataFrame,
    rows_b: pd.DataFrame,
    merged: pd.DataFrame,
    root: Path,
) -> None:
    """The per-image worst-case robust accuracy, on the images and precision both share."""
    precision, seed = merged.iloc[0]["precision"], merged.iloc[0]["seed"]
    entry_a = rows_a[(rows_a["precision"] == precision) & (rows_a["seed"] == seed)]
    entry_b = rows_b[(rows_b["precision"] == precision) & (rows_b["seed"] == seed)]
    case_a, case_b = entry_worst_case(entry_a, rows, root), entry_worst_case(entry_b, rows, root)
    if case_a is None or case_b is None:
        return
    if case_a.robust is None or case_b.robust is None:
        comparison.notes.append("per-image worst case: an attack has no per-example outcomes, not compared")
        return
    ia, ib = case_a.robust.index.to_numpy(), case_b.robust.index.to_numpy()
    if not np.array_equal(np.sort(ia), np.sort(ib)):
        raise MismatchError(
            f"different images for the worst case: {comparison.model_a} has {len(ia)} ({_span(ia)}), "
            f"{comparison.model_b} has {len(ib)} ({_span(ib)})"
        )
    flags_a, flags_b = case_a.robust.sort_index(), case_b.robust.sort_index()
    label = f"per-image worst case over every attack ({precision})"
    difference = paired_difference("robust_accuracy", proportion(flags_a), proportion(flags_b))
    comparison.differences.append((label, difference))
    counted_a, counted_b = {a.label for a in case_a.attacks}, {a.label for a in case_b.attacks}
    if counted_a != counted_b:
        comparison.notes.append(
            f"the worst cases count different attacks: only {comparison.model_a}: "
            f"{', '.join(sorted(counted_a - counted_b)) or 'none'}; only {comparison.model_b}: "
            f"{', '.join(sorted(counted_b - counted_a)) or 'none'}"
        )
    attacks = suite_attacks(comparison.suite, rows[rows["suite"] == comparison.suite])
    for model, entry in ((comparison.model_a, entry_a), (comparison.model_b, entry_b)):
        missing = missing_attacks(attacks, entry)
        if missing:
            comparison.notes.append(f"{model} is incomplete: no {', '.join(missing)} (its worst case is optimistic)")
