"""Per-image worst-case robust accuracy (AutoAttack's rule): an image counts as robust only if it survived every
attack run on it.

The attacks of a model are all its current units, in any suite, on the same dataset, split and precision, whose
plugin reports attack outcomes at the same norm and an eps no larger than the threat model (a perturbation within a
smaller ball is within the larger one too): the suite's own attacks, and AutoAttack or the diagnostics checklist
where they were run. Images are matched by their dataset index, so an attack run on fewer images (AutoAttack on the
first 50) counts on those images only; each attack's coverage is reported. The minimum over per-attack accuracies,
RobustBench's "best known" number, overstates robustness whenever different attacks break different images.
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.intervals import examples_path, plugin_for
from bench.stats import Interval, wilson

EPS_TOLERANCE = 1e-9
MATCH_KEYS = ("model", "model_sha256", "dataset", "split", "precision")


@dataclass(frozen=True)
class Threat:
    norm: str
    eps: float

    def covers(self, norm: str, eps: float) -> bool:
        return norm == self.norm and eps <= self.eps + EPS_TOLERANCE


@dataclass
class AttackCoverage:
    label: str
    suite: str
    images: int  # of the entry's images
    robust_accuracy: float  # on those images


@dataclass
class WorstCase:
    """The headline robust accuracy of one leaderboard entry and how it was reached."""

    value: float
    interval: Interval
    n: int
    threat: Threat
    attacks: list[AttackCoverage] = field(default_factory=list)
    min_over_attacks: float = math.nan
    exact: bool = True  # False: an attack of the suite has no per-example outcomes; an upper bound is shown
    robust: pd.Series | None = None  # per image (dataset index) of the entry: survived every attack
    skipped: list[str] = field(default_factory=list)  # other suites' attacks without outcomes (not counted)

    def describe(self) -> str:
        counted = "; ".join(
            f"{a.label}" + (f" ({a.suite})" if a.suite else "") + f" on {a.images} of {self.n}" for a in self.attacks
        )
        rule = "per image over" if self.exact else "upper bound (per-example outcomes missing) over"
        left_out = f"; not counted (no per-example outcomes): {', '.join(self.skipped)}" if self.skipped else ""
        return f"{rule} {len(self.attacks)} attacks: {counted}{left_out}"


@functools.lru_cache(maxsize=1024)
def _read(path: str, mtime: float) -> pd.DataFrame:
    return pd.read_parquet(path)


def unit_examples(root: Path, row: pd.Series | dict[str, Any]) -> pd.DataFrame | None:
    path = examples_path(root, str(row["suite"]), str(row["model"]), str(row["plugin"]), str(row["unit"]))
    return _read(str(path), path.stat().st_mtime) if path.exists() else None


def threat_of(plugin: str, params: str) -> Threat | None:
    instance = plugin_for(plugin, params)
    model = instance.threat_model() if instance is not None else None
    return Threat(model[0], float(model[1])) if model else None


def headline_threat(units: pd.DataFrame) -> Threat | None:
    """The threat model most of a suite's attack units share (ties: the larger eps)."""
    threats = [t for t in (threat_of(p, q) for p, q in zip(units["plugin"], units["params"], strict=True)) if t]
    if not threats:
        return None
    counts: dict[Threat, int] = {}
    for t in threats:
        counts[t] = counts.get(t, 0) + 1
    return max(counts, key=lambda t: (counts[t], t.eps, t.norm))


def _units(rows: pd.DataFrame) -> pd.DataFrame:
    return rows.drop_duplicates("unit").sort_values(["suite", "plugin", "params", "unit"], kind="mergesort")


def _headline_value(rows: pd.DataFrame, unit: pd.Series) -> float:
    """The value of a unit's headline metric (robust accuracy of an attack)."""
    plugin = plugin_for(str(unit["plugin"]), str(unit["params"]))
    metric = plugin.headline_metric() if plugin is not None else None
    picked = rows[(rows["unit"] == unit["unit"]) & (rows["metric"] == metric)]
    return float(picked["value"].iloc[0]) if len(picked) else math.nan


def entry_worst_case(entry_rows: pd.DataFrame, all_rows: pd.DataFrame, root: Path) -> WorstCase | None:
    """The per-image worst case of one entry (its own rows in a suite); ``all_rows`` supplies the other suites.

    None when the entry has no attack. Which of the suite's attacks the entry lacks is `missing_attacks`'s answer.

    Example:
        >>> case = entry_worst_case(rows_of_entry, current_rows, Path("results"))  # doctest: +SKIP
        >>> case.value, case.interval.low, case.describe()  # doctest: +SKIP
    """
    own = _units(entry_rows)
    threat = headline_threat(own)
    if threat is None:
        return None
    first = entry_rows.iloc[0]
    same = np.ones(len(all_rows), dtype=bool)
    for key in MATCH_KEYS:
        same &= (all_rows[key] == first[key]).to_numpy()
    images = _entry_images(own, root)
    flags = pd.Series(True, index=images) if images is not None else None
    attacks, skipped, minimum, without = [], [], math.inf, []
    for _, unit in _units(all_rows[same]).iterrows():
        t = threat_of(str(unit["plugin"]), str(unit["params"]))
        if t is None or not threat.covers(t.norm, t.eps):
            continue
        rate, suite = _headline_value(all_rows, unit), _other_suite(unit, first)
        if not suite and not math.isnan(rate):
            minimum = min(minimum, rate)
        outcomes = _outcomes(root, unit)
        if outcomes is None:  # counted by its rate when it is this suite's, else left out (and said so)
            if suite:
                skipped.append(f"{_label(unit)} ({suite})")
            else:
                without.append(rate)
                attacks.append(AttackCoverage(_label(unit), suite, 0, rate))
            continue
        for label, series in outcomes if flags is not None else []:
            on = series.index.intersection(flags.index)
            if len(on):
                flags.loc[on] = flags.loc[on].to_numpy() & series.loc[on].to_numpy()
                attacks.append(AttackCoverage(label, suite, len(on), float(series.loc[on].mean())))
    case = WorstCase(
        math.nan, Interval.none("no attack outcomes"), int(first["n"]), threat, attacks, min_over_attacks=minimum
    )
    case.skipped = skipped
    if flags is not None:
        robust = int(flags.sum())
        case.value, case.interval, case.n, case.robust = (
            robust / len(flags),
            wilson(robust, len(flags)),
            len(flags),
            flags,
        )
    if without or flags is None:  # an attack of this suite without per-example outcomes: an upper bound
        rates = [r for r in without if not math.isnan(r)] + ([case.value] if flags is not None else [])
        rates = rates or ([minimum] if minimum < math.inf else [])
        case.value = min(rates) if rates else math.nan
        case.exact, case.robust = False, None
        case.interval = Interval.none("an attack of this suite has no per-example outcomes")
    return case


def _other_suite(unit: pd.Series, first: pd.Series) -> str:
    return "" if unit["suite"] == first["suite"] else str(unit["suite"])


def _label(unit: pd.Series) -> str:
    plugin = plugin_for(str(unit["plugin"]), str(unit["params"]))
    return plugin.describe() if plugin is not None else str(unit["plugin"])


def _entry_images(own: pd.DataFrame, root: Path) -> pd.Index | None:
    """The dataset indices of the entry's images (from any of its attack units' outcomes)."""
    for _, unit in own.iterrows():
        if threat_of(str(unit["plugin"]), str(unit["params"])) is None:
            continue
        examples = unit_examples(root, unit)
        if examples is not None:
            return pd.Index(np.sort(examples["index"].to_numpy()), name="index")
    return None


def _outcomes(root: Path, unit: pd.Series) -> list[tuple[str, pd.Series]] | None:
    """(label, robust per dataset index) of each attack a unit reports, or None without stored outcomes."""
    examples = unit_examples(root, unit)
    plugin = plugin_for(str(unit["plugin"]), str(unit["params"]))
    if examples is None or plugin is None:
        return None
    index = examples["index"].to_numpy()
    outcomes = plugin.attack_outcomes(examples)
    return [(o.label, pd.Series(np.asarray(o.robust, dtype=bool), index=index)) for o in outcomes]


# ----------------------------------------------------------------------------------------- completeness


@dataclass(frozen=True)
class SuiteAttack:
    """One attack a suite runs: its label and the parameters its suite file gives (others take defaults)."""

    label: str
    plugin: str
    params: tuple[tuple[str, Any], ...]

    def ran_in(self, units: pd.DataFrame) -> bool:
        wanted = dict(self.params)
        return any(
            plugin == self.plugin and _params_match(json.loads(params), wanted)
            for plugin, params in zip(units["plugin"], units["params"], strict=True)
        )


def _params_match(have: dict[str, Any], wanted: dict[str, Any]) -> bool:
    for key, want in wanted.items():
        got = have.get(key)
        if isinstance(want, (int, float)) and not isinstance(want, bool) and isinstance(got, (int, float)):
            if not math.isclose(float(got), float(want), rel_tol=1e-6, abs_tol=1e-9):
                return False
        elif got != want:
            return False
    return True


def suite_attacks(suite: str, suite_rows: pd.DataFrame) -> list[SuiteAttack]:
    """The attacks of a suite from its suite file; without one, every attack setting that has rows in it."""
    from bench.suites import load_suite

    try:  # the suite's plugins as a run would build them today (today's defaults for what the file leaves out)
        specs = [(spec.plugin, dict(spec.params), spec.build()) for spec in load_suite(suite).plugins]
    except Exception:  # a suite file that is gone or no longer loads: fall back to what was run
        settings = sorted(set(zip(suite_rows["plugin"], suite_rows["params"], strict=True)))
        specs = [(p, json.loads(q), plugin_for(p, q)) for p, q in settings]
    attacks = []
    for name, params, plugin in specs:
        if plugin is not None and plugin.threat_model() is not None:
            attacks.append(SuiteAttack(plugin.describe(), name, tuple(sorted(params.items()))))
    return attacks


def missing_attacks(attacks: list[SuiteAttack], entry_rows: pd.DataFrame) -> list[str]:
    """Labels of the suite's attacks an entry has no rows of."""
    units = entry_rows.drop_duplicates("unit")
    return [a.label for a in attacks if not a.ran_in(units)]
