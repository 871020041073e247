"""Leaderboards computed from the tidy rows of ``results/``: Markdown, CSV and a static HTML site.

One leaderboard per suite; one line per evaluated configuration (model, dataset, split, n, precision, seed): fp32
and bf16 measurements, or runs on different numbers of examples, are never mixed in a cell. Every number carries
its 95% interval (the row's ``ci_low``/``ci_high``, from the per-example outcomes).

Each page ranks by its own headline, and says which:

* a suite with attacks: robust accuracy, per-image worst case (``bench.worst_case``): an image counts as robust only
  if it survived every attack run on it, in this suite or in another one on the same images (AutoAttack, the
  diagnostics checklist). An entry missing one of the suite's attacks says "incomplete: no …" in that cell and ranks
  after the complete entries;
* any other suite: the headline metric of its first plugin that can rank a suite, in that metric's direction.

Entries whose intervals overlap share a rank range ("4–12"). Where seeds of one training recipe are on a board
(``bench.report.common.seed_groups``), each member shows the seeds' mean ± sample SD and min–max of the headline,
and two entries whose headlines differ by no more than the seed spread (max − min) of either one's group also share
a rank range. What a column means, its unit and which direction is better come from the plugins (``MetricInfo``);
nothing here knows a plugin by its name.
"""

from __future__ import annotations

import csv
import html
import io
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from string import Template
from typing import Any

import pandas as pd

from bench.intervals import plugin_for
from bench.plugins.base import MetricInfo
from bench.report.common import (
    MISSING,
    ReportError,
    SeedStats,
    current_rows,
    format_number,
    is_missing,
    markdown_table,
    read_cards,
    seed_groups,
    setting_label,
    short_commit,
    sorted_rows,
    training_budget,
    training_seed,
    varying_params,
    write_text,
)
from bench.results import ResultsStore, results_root
from bench.stats import rank_ranges
from bench.worst_case import WorstCase, entry_worst_case, missing_attacks, suite_attacks

TEMPLATE = Path(__file__).parent / "templates" / "page.html"
ENTRY_KEYS = ["model", "dataset", "split", "n", "precision", "seed"]
FALLBACK_METRICS = 3  # columns shown for a plugin that does not describe its metrics
INTERVAL_NOTE = (
    "Brackets: 95% intervals from the per-example outcomes (Wilson for proportions, a bootstrap over images for "
    "means). A dash (–) means not measured."
)
SEED_RULE = (
    "Training seeds: models whose cards differ only in seed, name and provenance are seeds of one recipe; each shows "
    "the seeds' mean ± sample SD of the headline, their min–max and how many seeds, over the seeds measured on the "
    "same data, n, precision and evaluation seed. Two entries whose headlines differ by no more than the seed spread "
    "(max − min) of either one's group are ties too, even when their 95% intervals do not overlap."
)
SORT_HINT = "Click a column header to sort; hover a number for its n, precision, seed, date, commit and interval."
FIGURE_EXTENSION = ".svg"
NEUTRAL = MetricInfo("", "", "none")
MODEL_PAGES = "models"  # leaderboards/models/<name>.html, one page per zoo model (bench.report.model_pages)


def model_page_href(model: str) -> str:
    """The link, relative to the leaderboards folder, of a zoo model's page.

    Example:
        >>> model_page_href("topgap_cnn")
        'models/topgap_cnn.html'
    """
    return f"{MODEL_PAGES}/{model}.html"


@dataclass(frozen=True)
class Setting:
    plugin: str
    params: str

    @property
    def instance(self) -> Any | None:
        return plugin_for(self.plugin, self.params)

    @property
    def label(self) -> str:
        return setting_label(self.plugin, self.params)

    def info(self, metric: str) -> MetricInfo:
        instance = self.instance
        return instance.metric_info(metric) if instance is not None else _guess_info(metric)

    @property
    def is_attack(self) -> bool:
        instance = self.instance
        return instance is not None and instance.threat_model() is not None

    def sort_key(self) -> tuple:
        instance = self.instance
        order = instance.report_order if instance is not None else 99
        return (order, self.plugin, self.label, self.params)


def _guess_info(metric: str) -> MetricInfo:
    """A plugin that does not describe its metrics: accuracy-like names are read as percentages, no direction."""
    rate = "accuracy" in metric or metric.endswith("_rate")
    return MetricInfo(metric, "%" if rate else "", "none")


@dataclass
class Cell:
    text: str
    sort: float | str = ""
    csv: str = ""
    title: str = ""
    href: str = ""
    ci: str = ""  # "[89.2, 96.2]", shown after the text
    ci_csv: tuple[str, str] = ("", "")
    badge: str = ""  # shown before the text, e.g. "incomplete: no Square-5000"
    classes: tuple[str, ...] = ()
    csv_extra: tuple[str, ...] = ()  # the CSV values of a column with ``csv_headers``

    @property
    def full_text(self) -> str:
        parts = [self.badge, self.text, self.ci]
        return " ".join(p for p in parts if p)


@dataclass
class Column:
    key: str
    header: str
    numeric: bool = True
    interval: bool = False  # CSV gets '<header> ci_low' and '<header> ci_high' beside it
    group_start: bool = False  # first column of a plugin's group
    csv_headers: tuple[str, ...] = ()  # CSV: these columns (values from ``Cell.csv_extra``) instead of the header


@dataclass
class Headline:
    """What a page ranks by."""

    label: str
    info: MetricInfo
    setting: Setting | None = None  # None: the per-image worst case over the suite's attacks
    metric: str = ""
    rule: str = ""

    @property
    def worst_case(self) -> bool:
        return self.setting is None


@dataclass
class Leaderboard:
    suite: str
    columns: list[Column]
    entries: list[dict[str, Cell]]
    measurements: pd.DataFrame
    notes: list[str] = field(default_factory=list)
    ranking_rule: str = ""
    headline: Headline | None = None


# ----------------------------------------------------------------------------------------- formatting


def _ci_text(low: float, high: float, info: MetricInfo) -> str:
    if is_missing(low) or is_missing(high):
        return ""
    if info.percent:
        return f"[{100 * low:.1f}, {100 * high:.1f}]"
    return f"[{format_number(low, 4)}, {format_number(high, 4)}]"


def _value_text(value: float, info: MetricInfo) -> str:
    if info.percent:
        return f"{100 * value:.2f}"
    if info.kind == "count":
        return f"{value:.0f}"
    return format_number(value, 4)


def _unit_suffix(info: MetricInfo) -> str:
    unit = f" ({info.unit})" if info.unit and info.unit != "count" else ""
    return unit + (f" {info.arrow}" if info.arrow else "")


def _interval_title(row: pd.Series) -> str:
    method = row.get("ci_method")
    if not isinstance(method, str) or not method:
        return "interval: not computed yet (run `bench intervals`)"
    if method.startswith("none"):
        return f"interval: {method}"
    return f"95% interval: {method}"


def _measurement_title(row: pd.Series) -> str:
    return (
        f"n={int(row['n'])}, {row['precision']}, seed {int(row['seed'])}, "
        f"{str(row['timestamp'])[:10]}, commit {short_commit(row['git_commit'])}; {_interval_title(row)}"
    )


def _value_cell(row: pd.Series | None, info: MetricInfo) -> Cell:
    if row is None or is_missing(row["value"]):
        return Cell(MISSING, sort="", csv="", title="not measured")
    value = float(row["value"])
    low, high = float(row.get("ci_low", math.nan)), float(row.get("ci_high", math.nan))
    csv_bounds = ("", "") if math.isnan(low) else (f"{low:.6f}", f"{high:.6f}")
    return Cell(
        _value_text(value, info),
        sort=value,
        csv=f"{value:.6f}",
        title=_measurement_title(row),
        ci=_ci_text(low, high, info),
        ci_csv=csv_bounds,
    )


def _text_cell(value: str) -> Cell:
    return Cell(value, sort=value, csv="" if value == MISSING else value)


def _card_cell(cards: dict, model: str, field_name: str) -> Cell:
    return _text_cell(str(cards.get(model, {}).get(field_name, MISSING)))


def _training_cell(card: dict | None) -> Cell:
    """'from scratch, 10 epochs' or 'fine-tuned 3 epochs from standard_cnn': a fine-tune never passes for the method."""
    return _text_cell(training_budget(card) if card else MISSING)


# ----------------------------------------------------------------------------------------- building


def _flags_by_model(rows: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Latest value of every flag metric (``MetricInfo.kind == "flag"``) of each model, over all suites."""
    kinds = {
        (p, q, m): Setting(p, q).info(m).kind
        for p, q, m in set(zip(rows["plugin"], rows["params"], rows["metric"], strict=True))
    }
    is_flag = [
        kinds[(p, q, m)] == "flag" for p, q, m in zip(rows["plugin"], rows["params"], rows["metric"], strict=True)
    ]
    flags = rows[pd.Series(is_flag, index=rows.index, dtype=bool)].sort_values(["timestamp", "unit"])
    out: dict[str, dict[str, float]] = {}
    for (model, metric), group in flags.groupby(["model", "metric"], sort=True):
        value = float(group["value"].iloc[-1])
        if not math.isnan(value):  # NaN: the check could not run (e.g. no transfer source)
            out.setdefault(str(model), {})[str(metric).removeprefix("flag_")] = value
    return out


def _flags_cell(flags: dict[str, float]) -> Cell:
    raised = sorted(name for name, value in flags.items() if value >= 0.5)
    if not flags:
        return Cell("not checked", sort=-1, csv="not checked", title="no diagnostics rows for this model")
    if not raised:
        text = f"none of {len(flags)}"
        return Cell(text, sort=0, csv=text, title="checks: " + ", ".join(sorted(flags)))
    text = f"⚑ {', '.join(raised)} ({len(raised)} of {len(flags)})"
    return Cell(text, sort=len(raised), csv=text, title="raised gradient-masking flags", classes=("flag",))


def _shown_metrics(setting_rows: pd.DataFrame, setting: Setting) -> list[str]:
    """The setting's headline metric and the ones its plugin marks as columns (all metrics are in the measurements)."""
    present = sorted(setting_rows["metric"].unique())
    instance = setting.instance
    if instance is None:
        return [m for m in present if not m.startswith(("flag_", "n_"))][:FALLBACK_METRICS]
    headline = instance.headline_metric()
    first = [headline] if headline in present else []
    return first + [m for m in present if m != headline and instance.metric_info(m).column]


def _suite_headline(suite: str, settings: list[Setting], rows: pd.DataFrame) -> Headline | None:
    attacks = [s for s in settings if s.is_attack]
    if attacks:
        labels = ", ".join(a.label for a in suite_attacks(suite, rows)) or ", ".join(s.label for s in attacks)
        info = MetricInfo("Robust accuracy, per-image worst case", "%", "higher", headline=True)
        rule = (
            "Ranked by robust accuracy, per-image worst case ↑: an image counts as robust only if it survived every "
            f"attack run on it — this suite's ({labels}), plus AutoAttack and the diagnostics checklist on the same "
            "images where they were run (the 'Attacks counted' column says which, and on how many images). An entry "
            "missing one of the suite's attacks says 'incomplete: no …' in that cell and ranks after the complete "
            "entries. Ranks whose 95% intervals overlap are ties, shown as a rank range (e.g. 4–12)."
        )
        return Headline(info.label, info, None, "", rule)
    for setting in _suite_order(suite, settings):
        instance = setting.instance
        if instance is None or not instance.ranks_suites:
            continue
        metric = instance.headline_metric()
        info = instance.metric_info(metric) if metric else NEUTRAL
        if metric and info.direction != "none" and (rows["plugin"] == setting.plugin).any():
            return _metric_headline(setting, metric, info)
    for setting in settings:  # only baselines (e.g. clean accuracy alone)
        metric = setting.instance.headline_metric() if setting.instance is not None else None
        if metric:
            return _metric_headline(setting, metric, setting.info(metric))
    return None


def _metric_headline(setting: Setting, metric: str, info: MetricInfo) -> Headline:
    better = "higher" if info.direction == "higher" else "lower"
    rule = (
        f"Ranked by {info.label} ({setting.label}; metric {metric}) {info.arrow}: {better} is better. Entries without "
        "it come last. Ranks whose 95% intervals overlap are ties, shown as a rank range (e.g. 4–12)."
    )
    shown = info.label if setting.label == setting.plugin else f"{info.label} — {setting.label}"
    return Headline(shown, info, setting, metric, rule)


def _suite_order(suite: str, settings: list[Setting]) -> list[Setting]:
    """Settings in the order of the suite file (the suite's first plugin is its main measurement)."""
    from bench.suites import load_suite

    try:
        names = [spec.plugin for spec in load_suite(suite).plugins]
    except Exception:  # a suite that no longer loads: report order
        return settings
    rank = {name: i for i, name in reversed(list(enumerate(names)))}
    return sorted(settings, key=lambda s: (rank.get(s.plugin, len(names)), s.sort_key()))


def build_leaderboard(
    rows: pd.DataFrame,
    all_rows: pd.DataFrame,
    cards: dict,
    suite: str,
    out_dir: Path,
    results: str | os.PathLike | None = None,
) -> Leaderboard:
    """The leaderboard of one suite from its (current) rows; ``all_rows`` supplies flags and other suites' attacks.

    ``results`` is the results folder, whose per-example files give the per-image worst case.
    """
    root = results_root(results)
    rows = sorted_rows(rows[rows["suite"] == suite])
    settings = sorted(
        {Setting(p, q) for p, q in zip(rows["plugin"], rows["params"], strict=True)}, key=Setting.sort_key
    )
    rows_of = {s: rows[(rows["plugin"] == s.plugin) & (rows["params"] == s.params)] for s in settings}
    headline = _suite_headline(suite, settings, rows)
    metric_columns = [
        (s, m)
        for s in settings
        for m in _shown_metrics(rows_of[s], s)
        if headline is None or headline.worst_case or (s, m) != (headline.setting, headline.metric)
    ]
    shown = varying_params([(s.plugin, s.params) for s in settings])
    short = {s: setting_label(s.plugin, s.params, shown.get(s.plugin, set())) for s in settings}
    context = _BoardContext(all_rows, root, cards, out_dir, _flags_by_model(all_rows), suite_attacks(suite, rows))
    columns = _columns(headline, metric_columns, short)
    entries = []
    for key, group in rows.groupby(ENTRY_KEYS, sort=True):
        entry_key = dict(zip(ENTRY_KEYS, key, strict=True))
        entries.append(_entry(entry_key, group, headline, metric_columns, context))
    seeds = _seed_stats(entries, seed_groups(cards), cards)
    if seeds and headline is not None:
        _add_seed_cells(entries, seeds, headline.info)
        columns.insert(next(i for i, c in enumerate(columns) if c.key == "n"), _seed_column(headline.info))
    entries = _rank(entries, headline, {k: s.spread for k, s in seeds.items()})
    rule = (headline.rule if headline else "No headline metric: entries in model order.") + " " + INTERVAL_NOTE
    if seeds and headline is not None:
        rule += " " + SEED_RULE
    return Leaderboard(suite, columns, entries, _measurement_table(rows, shown), ranking_rule=rule, headline=headline)


@dataclass
class _BoardContext:
    all_rows: pd.DataFrame
    root: Path
    cards: dict
    out_dir: Path
    flags: dict[str, dict[str, float]]
    attacks: list


def _columns(headline: Headline | None, metric_columns: list, short: dict) -> list[Column]:
    columns = [
        Column("rank", "#"),
        Column("model", "Model", False),
        Column("method", "Method", False),
        Column("arch", "Arch", False),
        Column("training", "Training", False),
    ]
    if headline is not None:
        columns.append(Column("headline", f"{headline.label}{_unit_suffix(headline.info)}", interval=True))
    if headline is not None and headline.worst_case:
        columns.append(Column("attacks", "Attacks counted", False))
    columns += [Column("n", "n"), Column("flags", "Gradient-masking flags", False)]
    previous = None
    labels = [(s, s.info(m).label) for s, m in metric_columns]
    for i, (setting, metric) in enumerate(metric_columns):
        info = setting.info(metric)
        label = info.label if labels.count((setting, info.label)) == 1 else f"{info.label} [{metric}]"
        header = f"{short[setting]} · {label}{_unit_suffix(info)}"
        numeric = Column(f"metric:{i}", header, interval=True, group_start=setting.plugin != previous)
        columns.append(numeric)
        previous = setting.plugin
    columns += [
        Column("precision", "Precision", False, group_start=True),
        Column("seed", "Seed"),
        Column("dataset", "Data", False),
        Column("date", "Measured", False),
        Column("commit", "Commit", False),
    ]
    return columns


def _entry(entry_key: dict, group: pd.DataFrame, headline: Headline | None, metric_columns, ctx) -> dict[str, Cell]:
    model = str(entry_key["model"])
    values = {
        (Setting(r["plugin"], r["params"]), r["metric"]): r
        for _, r in group.sort_values(["timestamp", "unit"]).iterrows()
    }
    dates = sorted({str(d)[:10] for d in group["timestamp"]})
    commits = sorted({short_commit(c) for c in group["git_commit"]})
    data = f"{entry_key['dataset']} {entry_key['split']}"
    entry = {
        "model": Cell(model, sort=model, csv=model, href=model_page_href(model) if model in ctx.cards else ""),
        "method": _card_cell(ctx.cards, model, "method"),
        "arch": _card_cell(ctx.cards, model, "arch"),
        "training": _training_cell(ctx.cards.get(model)),
        "n": Cell(str(entry_key["n"]), sort=int(entry_key["n"]), csv=str(entry_key["n"])),
        "flags": _flags_cell(ctx.flags.get(model, {})),
        "precision": Cell(
            str(entry_key["precision"]), sort=str(entry_key["precision"]), csv=str(entry_key["precision"])
        ),
        "seed": Cell(str(entry_key["seed"]), sort=int(entry_key["seed"]), csv=str(entry_key["seed"])),
        "dataset": Cell(data, sort=data, csv=data),
        "date": Cell(
            " … ".join([dates[0], dates[-1]]) if len(dates) > 1 else dates[0], sort=dates[-1], csv=";".join(dates)
        ),
        "commit": Cell(", ".join(commits), sort=commits[0], csv=";".join(commits)),
    }
    for i, (setting, metric) in enumerate(metric_columns):
        entry[f"metric:{i}"] = _value_cell(values.get((setting, metric)), setting.info(metric))
    if headline is not None and headline.worst_case:
        case = entry_worst_case(group, ctx.all_rows, ctx.root)
        entry["headline"], entry["attacks"] = _worst_case_cells(case, missing_attacks(ctx.attacks, group))
    elif headline is not None:
        entry["headline"] = _value_cell(values.get((headline.setting, headline.metric)), headline.info)
    return entry


def _worst_case_cells(case: WorstCase | None, missing: list[str]) -> tuple[Cell, Cell]:
    """The headline cell and the 'Attacks counted' cell; ``missing``: the suite's attacks the entry has no rows of."""
    if case is None or math.isnan(case.value):
        # an entry with clean rows only (e.g. a killed run) says which attacks it lacks, never a bare dash
        badge = f"not run: {', '.join(missing)}" if missing else ""
        return Cell(MISSING, sort="", csv="", title="no attack measured", badge=badge), Cell(MISSING, sort="", csv="")
    info = MetricInfo("", "%", "higher")
    low, high = case.interval.low, case.interval.high
    badge = f"incomplete: no {', '.join(missing)}" if missing else ""
    title = case.describe() + f"; minimum over this suite's attacks: {100 * case.min_over_attacks:.2f}%"
    text = _value_text(case.value, info) if case.exact else f"≤{_value_text(case.value, info)}"
    cell = Cell(
        text,
        sort=case.value,
        csv=f"{case.value:.6f}",
        title=title,
        ci=_ci_text(low, high, info),
        ci_csv=("", "") if math.isnan(low) else (f"{low:.6f}", f"{high:.6f}"),
        badge=badge,
        classes=("headline",),
    )
    return cell, Cell(_attacks_text(case), sort=len(case.attacks), csv=_attacks_text(case), title=case.describe())


def _attacks_text(case: WorstCase) -> str:
    # one name per attack: runs of one attack at two sizes (n = 200 and 1,000) both cover the entry's images
    own = list(dict.fromkeys(a.label.split(" ε=")[0] for a in case.attacks if not a.suite))
    other: dict[str, list] = {}
    for a in case.attacks:
        if a.suite:
            other.setdefault(a.suite, []).append(a)
    parts = [", ".join(own)] if own else []
    for suite, attacks in sorted(other.items()):
        images = max(a.images for a in attacks)
        parts.append(f"{suite}: {len(attacks)} on {images} of {case.n}")
    return " + ".join(parts) or MISSING


def _rank(
    entries: list[dict[str, Cell]], headline: Headline | None, spreads: dict[tuple, float] | None = None
) -> list[dict[str, Cell]]:
    """Complete entries first, then incomplete ones, then those without the headline; rank ranges by interval.

    ``spreads``: the seed spread of each entry in a seed group (by ``_entry_id``); differences within it are ties.
    """
    higher = headline is None or headline.info.direction != "lower"
    spreads = spreads or {}

    def value(entry: dict[str, Cell]) -> float | None:
        cell = entry.get("headline")
        return cell.sort if cell is not None and isinstance(cell.sort, float) else None

    def group(entry: dict[str, Cell]) -> int:
        if value(entry) is None:
            return 2
        return 1 if entry["headline"].badge else 0

    def key(entry: dict[str, Cell]) -> tuple:
        v = value(entry)
        number = 0.0 if v is None else (-v if higher else v)
        return (
            group(entry),
            number,
            entry["model"].sort,
            entry["precision"].sort,
            -entry["n"].sort,
            entry["seed"].sort,
        )

    entries = sorted(entries, key=key)
    offset = 0
    for g in (0, 1, 2):
        members = [e for e in entries if group(e) == g]
        if g == 2:
            ranges = [(offset + i + 1, offset + i + 1) for i in range(len(members))]
        else:
            bounds = [_bounds(e["headline"]) for e in members]
            margins = [spreads.get(_entry_id(e), 0.0) for e in members]
            ranges = (
                [
                    (offset + a, offset + b)
                    for a, b in rank_ranges([value(e) for e in members], *zip(*bounds, strict=True), higher, margins)
                ]
                if members
                else []
            )
        for position, (entry, (best, worst)) in enumerate(zip(members, ranges, strict=True), offset + 1):
            text = str(best) if best == worst else f"{best}–{worst}"  # an en dash, like MISSING
            if g == 2:
                text = MISSING
            title = _rank_title(best, worst, bool(spreads))
            entry["rank"] = Cell(text, sort=position, csv="" if g == 2 else text, title=title)
        offset += len(members)
    return entries


def _bounds(cell: Cell) -> tuple[float, float]:
    low, high = (float(x) if x else math.nan for x in cell.ci_csv)
    return low, high


def _rank_title(best: int, worst: int, seeded: bool = False) -> str:
    if seeded:
        if best == worst:
            return "no other entry's 95% interval overlaps this one's, nor is any within a seed spread of it"
        return f"tied with the entries ranked {best}–{worst}: intervals overlap or values differ within a seed spread"
    if best == worst:
        return "no other entry's 95% interval overlaps this one's"
    return f"tied: its 95% interval overlaps those of the entries ranked {best}–{worst}"


# ----------------------------------------------------------------------------------------- training seeds


def _entry_id(entry: dict[str, Cell]) -> tuple:
    """The entry's configuration (``ENTRY_KEYS``), from its cells."""
    return tuple(entry[k].text for k in ("model", "dataset", "n", "precision", "seed"))


def _headline_value(entry: dict[str, Cell]) -> float | None:
    cell = entry.get("headline")
    return cell.sort if cell is not None and isinstance(cell.sort, float) else None


def _seed_stats(entries: list[dict[str, Cell]], groups: dict[str, list[str]], cards: dict) -> dict[tuple, SeedStats]:
    """Per entry in a seed group: its group's headline over the seeds measured alike (same data, n, precision,
    evaluation seed, and complete or not); only where at least two seeds were.
    """
    group_of = {m: g for g, members in groups.items() for m in members}
    alike: dict[tuple, list[dict[str, Cell]]] = {}
    for entry in entries:
        group = group_of.get(entry["model"].text)
        if group is not None and _headline_value(entry) is not None:
            alike.setdefault((group, *_entry_id(entry)[1:], bool(entry["headline"].badge)), []).append(entry)
    stats = {}
    for (group, *_), members in alike.items():
        if len(members) < 2:
            continue
        members = sorted(members, key=lambda e: groups[group].index(e["model"].text))
        names = tuple(e["model"].text for e in members)
        seeds = tuple(training_seed(cards.get(m, {})) for m in names)
        summary = SeedStats(group, names, seeds, tuple(float(_headline_value(e)) for e in members))
        stats.update({_entry_id(e): summary for e in members})
    return stats


def _seed_column(info: MetricInfo) -> Column:
    unit = f" ({info.unit})" if info.unit and info.unit != "count" else ""
    headers = ("seed group", "seeds", "seed mean", "seed sd", "seed min", "seed max")
    return Column("seeds", f"Training seeds: mean ± SD (min–max){unit}", csv_headers=headers)


def _add_seed_cells(entries: list[dict[str, Cell]], seeds: dict[tuple, SeedStats], info: MetricInfo) -> None:
    for entry in entries:
        stats = seeds.get(_entry_id(entry))
        entry["seeds"] = _seed_cell(stats, info) if stats else Cell(MISSING, title="no other seed measured alike")


def _seed_cell(stats: SeedStats, info: MetricInfo) -> Cell:
    """'45.20 ± 1.10 (44.00–46.30, 3 seeds)': mean ± sample SD, min–max; CSV: the numbers as fractions."""
    members = ", ".join(f"{m} (seed {s})" for m, s in zip(stats.members, stats.seeds, strict=True))
    spread = _value_text(stats.spread, info)
    title = (
        f"{members}: mean ± sample SD of the headline over {stats.n} training seeds, min–max in brackets; entries "
        f"within its spread (max − min = {spread}) of this one's headline tie with it"
    )
    numbers = (stats.mean, stats.sd, stats.low, stats.high)
    return Cell(
        f"{_value_text(stats.mean, info)} ± {_value_text(stats.sd, info)}",
        sort=stats.mean,
        csv=f"{stats.mean:.6f}",
        title=title,
        ci=f"({_value_text(stats.low, info)}–{_value_text(stats.high, info)}, {stats.n} seeds)",
        csv_extra=(stats.group, str(stats.n), *(f"{v:.6f}" for v in numbers)),
    )


def _card_href(cards: dict, model: str, out_dir: Path) -> str:
    card_path = cards.get(model, {}).get("_card_path")
    if not card_path:
        return ""
    return Path(os.path.relpath(Path(card_path).resolve(), Path(out_dir).resolve())).as_posix()


def _measurement_table(rows: pd.DataFrame, shown: dict[str, set[str]]) -> pd.DataFrame:
    def column(name: str) -> pd.Series:
        return rows[name] if name in rows else pd.Series(math.nan, index=rows.index)

    table = pd.DataFrame(
        {
            "model": rows["model"],
            "precision": rows["precision"],
            "n": rows["n"].astype(int),
            "seed": rows["seed"].astype(int),
            "setting": [
                setting_label(p, q, shown.get(p, set())) for p, q in zip(rows["plugin"], rows["params"], strict=True)
            ],
            "params": rows["params"],
            "metric": rows["metric"],
            "value": [format_number(v, 6) for v in rows["value"]],
            "ci_low": [format_number(v, 6) for v in column("ci_low")],
            "ci_high": [format_number(v, 6) for v in column("ci_high")],
            "ci_method": [m if isinstance(m, str) else MISSING for m in column("ci_method")],
            "date": rows["timestamp"].astype(str).str[:10],
            "commit": rows["git_commit"].map(short_commit),
            "wall_s": [format_number(v, 1) for v in rows["wall_seconds"]],
        }
    )
    return table.sort_values(["model", "precision", "n", "seed", "setting", "params", "metric"], kind="mergesort")


# ----------------------------------------------------------------------------------------- rendering


def render_markdown(board: Leaderboard) -> str:
    header = [c.header for c in board.columns]
    body = [[_markdown_cell(e.get(c.key)) for c in board.columns] for e in board.entries]
    measurements = board.measurements.drop(columns=["params"])
    parts = [
        f"# Leaderboard: {board.suite}\n",
        f"\n{board.ranking_rule}\n\n",
        markdown_table(header, body),
        *(f"\n{note}\n" for note in board.notes),
        "\n## Measurements\n",
        "\nOne line per tidy row (plugin setting × metric) behind the table, with the date and commit of the run.\n\n",
        markdown_table(list(measurements.columns), measurements.astype(str).values.tolist()),
    ]
    return "".join(parts)


def _markdown_cell(cell: Cell | None) -> str:
    if cell is None:
        return MISSING
    text = f"[{cell.text}]({cell.href})" if cell.href else cell.text
    badge = f"**{cell.badge}** " if cell.badge else ""
    return f"{badge}{text}" + (f" {cell.ci}" if cell.ci else "")


def render_csv(board: Leaderboard) -> str:
    """One line per entry; numeric columns with their interval bounds beside them; values are fractions."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    header = []
    for c in board.columns:
        name = c.header.replace(" (%)", "")
        header += list(c.csv_headers) or ([name, f"{name} ci_low", f"{name} ci_high"] if c.interval else [name])
    has_headline = any(c.key == "headline" for c in board.columns)
    writer.writerow(header + (["headline note"] if has_headline else []))
    for entry in board.entries:
        line = []
        for c in board.columns:
            cell = entry.get(c.key, Cell(""))
            line += _csv_values(c, cell)
        writer.writerow(line + ([entry.get("headline", Cell("")).badge] if has_headline else []))
    return buffer.getvalue()


def _csv_values(column: Column, cell: Cell) -> list[str]:
    if column.csv_headers:
        return list(cell.csv_extra) or [""] * len(column.csv_headers)
    return [cell.csv, *cell.ci_csv] if column.interval else [cell.csv]


def _html_table(columns: list[Column], entries: list[dict[str, Cell]], table_id: str) -> str:
    head = "".join(
        f'<th data-type="{"number" if c.numeric else "text"}" data-key="{html.escape(c.key)}" tabindex="0"'
        f"{_class_attr(('group-start',) if c.group_start else ())}>{html.escape(c.header)}</th>"
        for c in columns
    )
    lines = []
    for entry in entries:
        cells = []
        for c in columns:
            cell = entry.get(c.key, Cell(MISSING))
            text = html.escape(cell.text)
            if cell.href:
                text = f'<a href="{html.escape(cell.href)}">{text}</a>'
            if cell.badge:
                text = f'<span class="badge">{html.escape(cell.badge)}</span> {text}'
            if cell.ci:
                text += f' <span class="ci">{html.escape(cell.ci)}</span>'
            title = f' title="{html.escape(cell.title)}"' if cell.title else ""
            classes = cell.classes + (("group-start",) if c.group_start else ())
            cells.append(
                f'<td data-sort="{html.escape(_sort_text(cell.sort))}"{title}{_class_attr(classes)}>{text}</td>'
            )
        lines.append("<tr>" + "".join(cells) + "</tr>")
    return (
        f'<table class="sortable" id="{html.escape(table_id)}"><thead><tr>{head}</tr></thead>\n<tbody>\n'
        + "\n".join(lines)
        + "\n</tbody></table>\n"
    )


def _class_attr(classes: tuple[str, ...]) -> str:
    return f' class="{" ".join(classes)}"' if classes else ""


def _sort_text(value: float | int | str) -> str:
    if isinstance(value, float):
        return "" if math.isnan(value) or math.isinf(value) else repr(value)
    return str(value)


def _measurements_html(table: pd.DataFrame) -> str:
    numeric = ("n", "seed", "value", "ci_low", "ci_high", "wall_s")
    columns = [Column(c, c, c in numeric) for c in table.columns if c != "params"]
    entries = [
        {
            c.key: Cell(str(r[c.key]), sort=str(r[c.key]), title=str(r["params"]) if c.key == "setting" else "")
            for c in columns
        }
        for _, r in table.iterrows()
    ]
    return _html_table(columns, entries, "measurements")


def render_page(title: str, nav: str, content: str) -> str:
    return Template(TEMPLATE.read_text(encoding="utf-8")).substitute(title=html.escape(title), nav=nav, content=content)


def _nav(suites: list[str], current: str | None, prefix: str = "") -> str:
    """Links to the overview and every suite page; ``prefix`` leads from a page in a subfolder (e.g. "../")."""
    links = [f'<a href="{prefix}index.html"' + (' aria-current="page"' if current is None else "") + ">Overview</a>"]
    links += [
        f'<a href="{prefix}{html.escape(s)}.html"'
        + (' aria-current="page"' if s == current else "")
        + f">{html.escape(s)}</a>"
        for s in suites
    ]
    return " · ".join(links)


def render_suite_html(board: Leaderboard, suites: list[str]) -> str:
    suite = html.escape(board.suite)
    content = (
        f"<h1>Leaderboard: {suite}</h1>\n"
        f'<p class="rule">{html.escape(board.ranking_rule)}</p>\n'
        f'<p class="hint">{html.escape(SORT_HINT)}</p>\n'
        '<div class="scroll">'
        + _html_table(board.columns, board.entries, "leaderboard")
        + "</div>\n"
        + "".join(f"<p>{html.escape(note)}</p>\n" for note in board.notes)
        + "<details><summary>Measurements behind this table</summary>\n"
        + '<div class="scroll">'
        + _measurements_html(board.measurements)
        + "</div></details>\n"
        + f'<p><a href="{suite}.csv">CSV</a> · <a href="{suite}.md">Markdown</a></p>\n'
    )
    return render_page(f"RIBench — {board.suite}", _nav(suites, board.suite), content)


def render_index_html(boards: dict[str, Leaderboard], out_dir: Path, models: list[str] | None = None) -> str:
    suites = sorted(boards)
    columns = [
        Column("suite", "Suite", False),
        Column("entries", "Entries"),
        Column("ranked", "Ranked by", False),
        Column("top", "Rank 1 (ties included)", False),
        Column("headline", "Its headline value"),
    ]
    entries = []
    for suite in suites:
        board = boards[suite]
        top = [e for e in board.entries if e.get("rank", Cell("")).text.split("–")[0] == "1"]
        names = ", ".join(e["model"].text for e in top) or MISSING
        label = board.headline.label + _unit_suffix(board.headline.info) if board.headline else MISSING
        entries.append(
            {
                "suite": Cell(suite, sort=suite, href=f"{suite}.html"),
                "entries": Cell(str(len(board.entries)), sort=len(board.entries)),
                "ranked": Cell(label, sort=label),
                "top": Cell(names, sort=names),
                "headline": top[0].get("headline", Cell(MISSING)) if top else Cell(MISSING),
            }
        )
    content = (
        "<h1>RIBench leaderboards</h1>\n"
        f'<p class="rule">Each suite ranks by its own headline (named per suite below and on its page): the '
        "per-image worst-case robust accuracy for suites with attacks (an image is robust only if it survived every "
        "attack run on it), else the headline metric of the suite's main plugin. Entries whose 95% intervals overlap "
        f"share a rank range.{_seed_note(boards)} {html.escape(INTERVAL_NOTE)}</p>\n"
        + _html_table(columns, entries, "suites")
        + _models_html(models or [])
        + _figures_html(out_dir)
        + _tables_html(out_dir)
    )
    return render_page("RIBench leaderboards", _nav(suites, None), content)


def _seed_note(boards: dict[str, Leaderboard]) -> str:
    if not any(c.key == "seeds" for board in boards.values() for c in board.columns):
        return ""
    return " " + html.escape(SEED_RULE)


def _models_html(models: list[str]) -> str:
    if not models:
        return ""
    items = "".join(f'<li><a href="{html.escape(model_page_href(m))}">{html.escape(m)}</a></li>' for m in models)
    return (
        "<h2>Models</h2>\n<p>One page per zoo model: its card, every result with its interval, its gradient-masking "
        f'checks and its CAMs.</p>\n<ul id="models">{items}</ul>\n'
    )


def _figures_html(out_dir: Path) -> str:
    figures = sorted((out_dir / "figures").glob(f"*{FIGURE_EXTENSION}"))
    if not figures:
        return "<h2>Figures</h2>\n<p>No figures yet (run <code>bench figures</code>).</p>\n"
    items = "".join(
        f'<figure><img src="figures/{stem}.svg" alt="{stem}">'
        f'<figcaption>{stem} (<a href="figures/{stem}.png">PNG</a>)</figcaption></figure>\n'
        for stem in (html.escape(p.stem) for p in figures)
    )
    return f'<h2>Figures</h2>\n<div class="figures">\n{items}</div>\n'


def _tables_html(out_dir: Path) -> str:
    tables = sorted((out_dir / "tables").glob("*/*.md"))
    if not tables:
        return ""
    items = "".join(
        f'<li><a href="{html.escape(p.relative_to(out_dir).as_posix())}">{html.escape(p.parent.name)}/'
        f"{html.escape(p.stem)}</a></li>"
        for p in tables
    )
    return f"<h2>Paper tables</h2>\n<ul>{items}</ul>\n"


# ----------------------------------------------------------------------------------------- entry point


def build_boards(
    results: str | os.PathLike | None, out_dir: str | os.PathLike, cards: dict[str, dict[str, Any]]
) -> dict[str, Leaderboard]:
    """The leaderboard of every suite with results, from the rows of the models' current weights.

    Example:
        >>> boards = build_boards("results", "leaderboards", read_cards())  # doctest: +SKIP
        >>> boards["cifar10-adv"].headline.label  # doctest: +SKIP
        'Robust accuracy, per-image worst case'
    """
    rows, stale = current_rows(ResultsStore(results).read(), cards)
    suites = sorted(str(s) for s in rows["suite"].unique())
    boards = {s: build_leaderboard(rows, rows, cards, s, Path(out_dir), results) for s in suites}
    if stale:
        for board in boards.values():
            board.notes.append(f"{stale} rows measured on superseded weights (another sha256) were left out.")
    return boards


def write_leaderboards(
    results: str | os.PathLike | None = None,
    out_dir: str | os.PathLike = "leaderboards",
    suite: str | None = None,
    zoo: str | os.PathLike | None = None,
    boards: dict[str, Leaderboard] | None = None,
) -> list[Path]:
    """Write ``<suite>.md``, ``<suite>.csv``, ``<suite>.html`` (one suite or all) and ``index.html``.

    ``boards``: the leaderboards when the caller has built them already (``build_boards``).
    """
    out = Path(out_dir)
    cards = read_cards(zoo)
    boards = build_boards(results, out, cards) if boards is None else boards
    suites = sorted(boards)
    if suite is not None and suite not in suites:
        known = ", ".join(suites) or "none"
        raise ReportError(f"no results for suite '{suite}' (suites with results: {known}); run `bench run` first")
    written = []
    for name in [suite] if suite else suites:
        board = boards[name]
        written.append(write_text(out / f"{name}.md", render_markdown(board)))
        written.append(write_text(out / f"{name}.csv", render_csv(board)))
        written.append(write_text(out / f"{name}.html", render_suite_html(board, suites)))
    written.append(write_text(out / "index.html", render_index_html(boards, out, sorted(cards))))
    return written
