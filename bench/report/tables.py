"""Paper tables regenerated from results/: one declarative YAML spec per table (``table_specs/*.yaml``).

A spec names column groups (``metrics``: which measurement — plugin, parameters, metric, optionally suite,
evaluation dataset and split), column sub-groups (``methods``: which models, by their card fields) and rows
(which models, by their card fields; the paper's own values). A cell is filled from whichever current tidy
rows match; several matching models (e.g. a sweep over k) are resolved by the spec's ``choose`` rule and
named under the table, and a cell nothing matches shows "–". Paper values are printed beside ours.

Honesty rules: one model fills all the cells of a (row, method) — the choice is made once per row, by the first
metric that separates the candidates — so a row never mixes models; the model, its training budget (epochs, from
scratch or fine-tuned from what) and for Top-GAP k and k/(H'·W') are printed in the row; a Top-GAP model whose k
covers every CAM position is a "GAP ablation" and never counts as Top-GAP (it only appears in rows that expand
over k, labelled so); each of our values carries its 95% interval, and ✓/✗ says whether the paper's value lies
inside it; a line under the table says where our setup differs from the paper's.

Spec keys (see ``table_specs/topgap-table3.yaml`` for an example):
    name, family, title, caption, digits (3), choose (best|latest), better (higher|lower), row_header,
    paper_setup (the paper's setup in a few words, for the "setup differs" line),
    methods: [{label, card: {card fields}, where: {measurement filter}}],
    metrics: [{label, plugin, metric, params, suite, dataset, split, precision, better, digits}],
    rows: [{cells, card, where, paper, expand}]
``expand: head_kwargs.k`` turns a row into one row per value of that card field among matching models
(cells may use ``{}`` for the value). Values like ``8/255`` are read as fractions; a list means any of.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from bench.models.failures import read_failures, stopped_text
from bench.report.common import (
    MISSING,
    ReportError,
    current_rows,
    dotted_get,
    format_number,
    is_gap_ablation,
    is_missing,
    mapping_matches,
    model_budget,
    params_match,
    read_cards,
    seed_groups,
    short_commit,
    values_equal,
    write_text,
)
from bench.results import ResultsStore

SPEC_DIR = Path(__file__).parent / "table_specs"
SPEC_KEYS = {
    "name",
    "family",
    "title",
    "caption",
    "digits",
    "choose",
    "better",
    "row_header",
    "methods",
    "metrics",
    "rows",
    "source",
    "paper_setup",
}
METHOD_KEYS = {"label", "card", "where"}
METRIC_KEYS = {"label", "plugin", "metric", "params", "suite", "dataset", "split", "precision", "better", "digits"}
ROW_KEYS = {"cells", "card", "where", "paper", "expand"}
ROW_FILTER_COLUMNS = ("plugin", "metric", "suite", "dataset", "split", "precision")


class TableSpecError(ReportError):
    pass


@dataclass
class Source:
    """Which tidy row filled a cell."""

    model: str
    n: int
    precision: str
    seed: int
    date: str
    commit: str
    candidates: int

    def describe(self) -> str:
        chosen = f", best of {self.candidates} models" if self.candidates > 1 else ""
        return f"{self.model} (n={self.n}, {self.precision}, seed {self.seed}, {self.date}, {self.commit}{chosen})"


@dataclass
class TableCell:
    ours: float | None
    paper: Any
    source: Source | None = None
    low: float | None = None
    high: float | None = None

    def paper_inside(self) -> bool | None:
        """Whether the paper's value lies inside our 95% interval (None: no paper value or no interval)."""
        paper = paper_number(self.paper)
        if paper is None or self.low is None or self.high is None or is_missing(self.low) or is_missing(self.high):
            return None
        return self.low - 1e-9 <= paper <= self.high + 1e-9


def paper_number(value: Any) -> float | None:
    """The paper's value as a number ('0.801 ± 0.009' -> 0.801); None when there is none."""
    if value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return float(str(value).split("±")[0].strip())
    except ValueError:
        return None


@dataclass
class Table:
    spec: dict[str, Any]
    row_labels: list[list[str]]
    cells: list[list[TableCell]]  # [row][group * n_methods + method]
    sources: list[str] = field(default_factory=list)
    models: list[str] = field(default_factory=list)  # per row: our models and their training budgets
    setup: list[str] = field(default_factory=list)  # where our setup differs from the paper's
    filters: list[dict[str, Any]] = field(default_factory=list)  # per row: the card filter that selected it


# ----------------------------------------------------------------------------------------- specs


def _check_keys(node: Any, allowed: set[str], where: str) -> dict[str, Any]:
    if not isinstance(node, dict):
        raise TableSpecError(f"{where}: expected a mapping, got {type(node).__name__}")
    unknown = sorted(set(node) - allowed)
    if unknown:
        raise TableSpecError(f"{where}: unknown key(s) {', '.join(unknown)} (allowed: {', '.join(sorted(allowed))})")
    return node


def load_spec(path: str | os.PathLike) -> dict[str, Any]:
    """Read and validate one table spec; errors name the file and the offending key."""
    path = Path(path)
    spec = _check_keys(yaml.safe_load(path.read_text(encoding="utf-8")), SPEC_KEYS, str(path))
    for key in ("name", "family", "title", "methods", "metrics", "rows"):
        if key not in spec:
            raise TableSpecError(f"{path}: missing key '{key}'")
    if spec.get("choose", "best") not in ("best", "latest"):
        raise TableSpecError(f"{path}: choose must be 'best' or 'latest', not {spec['choose']!r}")
    for i, method in enumerate(spec["methods"]):
        _check_keys(method, METHOD_KEYS, f"{path}: methods[{i}]")
    labels = []
    for i, metric in enumerate(spec["metrics"]):
        _check_keys(metric, METRIC_KEYS, f"{path}: metrics[{i}]")
        if "plugin" not in metric or "metric" not in metric:
            raise TableSpecError(f"{path}: metrics[{i}] needs 'plugin' and 'metric'")
        labels.append(str(metric.get("label", metric["metric"])))
    for i, row in enumerate(spec["rows"]):
        _check_keys(row, ROW_KEYS, f"{path}: rows[{i}]")
        row["paper"] = _normalize_paper(row.get("paper"), labels, len(spec["methods"]), f"{path}: rows[{i}].paper")
    spec["_path"] = str(path)
    return spec


def _normalize_paper(paper: Any, groups: list[str], n_methods: int, where: str) -> dict[str, list[Any]]:
    """Paper values as {group label: [value per method]}; a bare list is allowed for one-group tables."""
    if paper is None:
        return {}
    if isinstance(paper, list):
        if len(groups) != 1:
            raise TableSpecError(f"{where}: a plain list needs a table with one metric; use {{label: [...]}}")
        paper = {groups[0]: paper}
    if not isinstance(paper, dict):
        raise TableSpecError(f"{where}: expected a mapping of metric label to values")
    for label, values in paper.items():
        if label not in groups:
            raise TableSpecError(f"{where}: '{label}' is not a metric label of this table ({', '.join(groups)})")
        if not isinstance(values, list) or len(values) != n_methods:
            raise TableSpecError(
                f"{where}.{label}: expected a list of {n_methods} values (one per method; null if none)"
            )
    return paper


def load_specs(family: str, spec_dir: str | os.PathLike = SPEC_DIR) -> list[dict[str, Any]]:
    specs = [load_spec(p) for p in sorted(Path(spec_dir).glob("*.yaml"))]
    chosen = [s for s in specs if s["family"] == family]
    if not chosen:
        families = ", ".join(sorted({s["family"] for s in specs})) or "none"
        raise TableSpecError(f"no table specs of family '{family}' in {spec_dir} (families: {families})")
    return chosen


# ----------------------------------------------------------------------------------------- filling


def _matching_rows(rows: pd.DataFrame, where: dict[str, Any]) -> pd.DataFrame:
    selected = rows
    for column in ROW_FILTER_COLUMNS:
        if column in where:
            options = where[column] if isinstance(where[column], list) else [where[column]]
            keep = [any(values_equal(v, x) for x in options) for v in selected[column]]
            selected = selected.loc[pd.Series(keep, index=selected.index, dtype=bool)]
    if where.get("params"):
        keep = [params_match(p, where["params"]) for p in selected["params"]]
        selected = selected.loc[pd.Series(keep, index=selected.index, dtype=bool)]
    return selected


def _merge_where(*parts: dict[str, Any] | None) -> dict[str, Any]:
    merged: dict[str, Any] = {"precision": "fp32"}  # bf16 numbers never fill a paper cell unless asked for
    for part in parts:
        for key, value in (part or {}).items():
            merged[key] = {**merged.get(key, {}), **value} if key == "params" else value
    return merged


def _candidate_rows(rows: pd.DataFrame, models: list[str], cards: dict, where: dict[str, Any]) -> pd.DataFrame:
    """Per model, the matching measurement on most examples (then the newest)."""
    candidates = _matching_rows(rows[rows["model"].isin(models)], where)
    if "dataset" not in where:  # by default a model is measured on the dataset it was trained on
        trained_on = [cards[m].get("dataset") for m in candidates["model"]]
        candidates = candidates.loc[(candidates["dataset"] == pd.Series(trained_on, index=candidates.index))]
    candidates = candidates[candidates["value"].notna()]
    return candidates.sort_values(["model", "n", "timestamp", "unit"]).groupby("model", sort=True).tail(1)


def _choose_model(per_metric: list[pd.DataFrame], choose: str, betters: list[str]) -> str | None:
    """One model for a whole (row, method): the newest measurement, or the best on the first metric that separates
    the candidates (then the next metric, then the model name). A model without a value ranks last on a metric."""
    models = sorted({str(m) for frame in per_metric for m in frame["model"]})
    if not models:
        return None
    if choose == "latest":
        newest = {m: max(str(t) for f in per_metric for t in f.loc[f["model"] == m, "timestamp"]) for m in models}
        return max(models, key=lambda m: (newest[m], m))

    def key(model: str) -> tuple:
        out = []
        for frame, better in zip(per_metric, betters, strict=True):
            values = frame.loc[frame["model"] == model, "value"]
            if values.empty:
                out.append((1, 0.0))
            else:
                out.append((0, -float(values.iloc[0]) if better == "higher" else float(values.iloc[0])))
        return (*out, model)

    return min(models, key=key)


def _cell(frame: pd.DataFrame, model: str | None, paper: Any, candidates: int) -> TableCell:
    picked = frame[frame["model"] == model] if model is not None else frame.iloc[0:0]
    if picked.empty:
        return TableCell(None, paper)
    row = picked.iloc[0]
    source = Source(
        str(row["model"]),
        int(row["n"]),
        str(row["precision"]),
        int(row["seed"]),
        str(row["timestamp"])[:10],
        short_commit(row["git_commit"]),
        candidates,
    )
    low, high = (float(row[c]) if c in row and not is_missing(row[c]) else None for c in ("ci_low", "ci_high"))
    return TableCell(float(row["value"]), paper, source, low, high)


def _matches_row(card: dict[str, Any], card_filter: dict[str, Any], methods: list[dict]) -> bool:
    return any(mapping_matches(card, {**card_filter, **(m.get("card") or {})}) for m in methods)


def _expand_rows(
    spec_row: dict[str, Any], methods: list[dict], cards: dict[str, dict], failures: dict[str, dict] | None = None
) -> list[tuple[list[str], dict]]:
    """The row itself, or with ``expand``: one row per value of that card field among the models it could show,
    and among the runs that stopped before the end of their recipe (``failures``: they show where they stopped)."""
    cells = [str(c) for c in spec_row.get("cells", [])]
    card_filter = spec_row.get("card") or {}
    key = spec_row.get("expand")
    if not key:
        return [(cells, card_filter)]
    candidates = [*cards.values(), *(failures or {}).values()]
    shown = [c for c in candidates if _matches_row(c, card_filter, methods)]
    values = sorted({dotted_get(c, key) for c in shown} - {None}, key=lambda v: (str(type(v)), v))
    rows = []
    for v in values:
        alike = sorted((c for c in shown if dotted_get(c, key) == v), key=lambda c: str(c.get("name")))
        for card in alike if len(alike) > 1 else alike[:1]:  # one row per model: a row never mixes models
            text = f"{v} (GAP ablation)" if is_gap_ablation(card) else str(v)
            text += f", {card.get('name')}" if len(alike) > 1 else ""
            pinned = {**card_filter, key: v, **({"name": card.get("name")} if len(alike) > 1 else {})}
            rows.append(([c.replace("{}", text) for c in cells], pinned))
    return rows


def _method_models(cards: dict, card_filter: dict, method: dict, spec_row: dict) -> list[str]:
    """Models of a (row, method); GAP ablations (k = H'·W') only in rows that expand over k or name k themselves."""
    wanted = {**card_filter, **(method.get("card") or {})}
    keep_gap = spec_row.get("expand") == "head_kwargs.k" or "head_kwargs.k" in (spec_row.get("card") or {})
    return sorted(
        name
        for name, card in cards.items()
        if mapping_matches(card, wanted) and (keep_gap or not is_gap_ablation(card))
    )


def _failure_note(failures: dict[str, dict], card_filter: dict[str, Any], methods: list[dict]) -> str:
    """Where the runs a row would show stopped, with their commands ('' when none did)."""
    stopped = [r for r in failures.values() if _matches_row(r, card_filter, methods)]
    return "; ".join(
        f"{r.get('name')}: not trained, {stopped_text(r)} (`{r.get('training_command', '')}`)" for r in stopped
    )


def build_table(
    spec: dict[str, Any], rows: pd.DataFrame, cards: dict[str, dict], failures: dict[str, dict] | None = None
) -> Table:
    """Fill a table spec from current tidy rows, model cards and, for expanded rows, the runs that stopped early.

    Example:
        >>> table = build_table(load_spec(SPEC_DIR / "topgap-table3.yaml"), pd.DataFrame(), {})
        >>> len(table.row_labels) > 0
        True
    """
    choose, default_better = spec.get("choose", "best"), spec.get("better", "higher")
    seeds = seed_groups(cards)
    # a seed group enters as its lowest seed, never as its best seed: "best of N" chooses among recipes
    cards = {name: card for name, card in cards.items() if not any(name in m[1:] for m in seeds.values())}
    table = Table(spec, [], [])
    groups = [str(m.get("label", m["metric"])) for m in spec["metrics"]]
    betters = [m.get("better", default_better) for m in spec["metrics"]]
    n_methods = len(spec["methods"])
    for spec_row in spec["rows"]:
        for cells, card_filter in _expand_rows(spec_row, spec["methods"], cards, failures):
            line: list[TableCell | None] = [None] * (len(groups) * n_methods)
            described = []
            for m_index, method in enumerate(spec["methods"]):
                models = _method_models(cards, card_filter, method, spec_row)
                per_metric = [
                    _candidate_rows(
                        rows,
                        models,
                        cards,
                        _merge_where(
                            {k: v for k, v in metric.items() if k not in ("label", "better")},
                            method.get("where"),
                            spec_row.get("where"),
                        ),
                    )
                    for metric in spec["metrics"]
                ]
                chosen = _choose_model(per_metric, choose, betters)
                n_candidates = len({m for frame in per_metric for m in frame["model"]})
                for g_index, (group, frame) in enumerate(zip(groups, per_metric, strict=True)):
                    paper = (spec_row["paper"].get(group) or [None] * n_methods)[m_index]
                    cell = _cell(frame, chosen, paper, n_candidates)
                    line[g_index * n_methods + m_index] = cell
                    if cell.source is not None:
                        table.sources.append(
                            f"{' '.join(cells)} · {method['label']} · {group}: {cell.source.describe()}"
                        )
                if chosen is not None:
                    prefix = f"{method['label']}: " if n_methods > 1 else ""
                    members = seeds.get(chosen, [])
                    group = f"; lowest seed of {len(members)}: {', '.join(members)}" if members else ""
                    described.append(f"{prefix}{chosen} ({model_budget(cards[chosen])}{group})")
            table.row_labels.append(cells)
            table.filters.append(card_filter)
            table.cells.append([c for c in line if c is not None])
            note = "" if described else _failure_note(failures or {}, card_filter, spec["methods"])
            table.models.append("; ".join(described) or note or MISSING)
    table.setup = _setup_differences(spec, table, cards)
    return table


def _epochs(card: dict[str, Any]) -> str:
    epochs = card.get("epochs", (card.get("hyperparameters") or {}).get("epochs"))
    return "epochs unknown" if epochs is None else f"{epochs} epoch{'' if epochs == 1 else 's'}"


def _setup_differences(spec: dict[str, Any], table: Table, cards: dict[str, dict]) -> list[str]:
    """One line: the paper's setup (spec ``paper_setup``) against ours (images evaluated, how models were trained)."""
    sources = [c.source for line in table.cells for c in line if c.source is not None]
    if not sources:
        return []
    ns = sorted({s.n for s in sources})
    models = sorted({s.model for s in sources})
    fine_tuned = [m for m in models if "fine-tuned" in model_budget(cards.get(m, {}))]
    scratch = [m for m in models if m not in fine_tuned]
    ours = [f"n = {', '.join(map(str, ns))} test images per cell"]
    if fine_tuned:
        ours.append("fine-tuned from another zoo model: " + ", ".join(f"{m} ({_epochs(cards[m])})" for m in fine_tuned))
    if scratch:
        ours.append("from scratch: " + ", ".join(f"{m} ({_epochs(cards.get(m, {}))})" for m in scratch))
    paper = str(spec.get("paper_setup") or "see the paper").strip().rstrip(".")
    return [f"Setup differs from the paper's — paper: {paper}. Ours: {'; '.join(ours)}."]


# ----------------------------------------------------------------------------------------- rendering


def _paper_text(value: Any) -> str:
    return "" if value is None else str(value)


MARKS = {True: "✓", False: "✗", None: ""}


def _ours_text(cell: TableCell, digits: int) -> str:
    ours = format_number(cell.ours, digits)
    if cell.ours is not None and cell.low is not None and cell.high is not None:
        ours += f" [{format_number(cell.low, digits)}, {format_number(cell.high, digits)}]"
    return ours


def _cell_text(cell: TableCell, digits: int) -> str:
    ours, paper = _ours_text(cell, digits), _paper_text(cell.paper)
    mark = MARKS[cell.paper_inside()]
    return f"{ours} / {paper}" + (f" {mark}" if mark else "") if paper else ours


OUR_MODELS = "Our models (training budget)"


def _headers(table: Table) -> tuple[list[str], list[str]]:
    row_header = [str(h) for h in table.spec.get("row_header", [])]
    width = max([len(r) for r in table.row_labels] + [len(row_header)])
    row_header = row_header + [""] * (width - len(row_header))
    return row_header, _group_labels(table) + [OUR_MODELS]


def _cell_digits(table: Table) -> list[int]:
    """Decimals of each value column, in cell order: a metric's own ``digits`` (e.g. 0 for a count), else the spec's."""
    default = int(table.spec.get("digits", 3))
    return [int(m.get("digits", default)) for m in table.spec["metrics"] for _ in table.spec["methods"]]


def render_markdown(table: Table) -> str:
    spec, digits = table.spec, _cell_digits(table)
    row_header, value_header = _headers(table)
    lines = [f"# {spec['title']}", ""]
    if spec.get("caption"):
        lines += [str(spec["caption"]).strip(), ""]
    lines += [
        "Each cell: **ours [95% interval] / paper** (the paper's published value, transcribed in the table spec; see "
        "'Paper' below); ✓ = the paper's value lies inside our interval, ✗ = outside; "
        f"{MISSING} = not measured here. Ours is computed from results/ ({_choose_text(spec)}); one model fills a "
        "row's cells of a method, named with its training budget in the last column.",
        "",
    ]
    header = row_header + value_header
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "|".join("---" for _ in header) + "|")
    for labels, cells, models in zip(table.row_labels, table.cells, table.models, strict=True):
        padded = labels + [""] * (len(row_header) - len(labels))
        values = [_cell_text(c, d) for c, d in zip(cells, digits, strict=True)]
        lines.append("| " + " | ".join(padded + values + [models]) + " |")
    lines += ["", *table.setup] if table.setup else []
    lines += ["", "Sources of our values:", ""]
    lines += [f"- {s}" for s in table.sources] or ["- none yet (no matching rows in results/)"]
    if spec.get("source"):
        lines += ["", f"Paper: {spec['source']}"]
    return "\n".join(lines) + "\n"


def _choose_text(spec: dict[str, Any]) -> str:
    if spec.get("choose", "best") == "latest":
        return "the newest matching measurement"
    return (
        "where several models match (e.g. a sweep over k), the best one on the first metric that separates them, as "
        "the paper reports; optimistic"
    )


LATEX_ESCAPES = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "–": "--",
    "—": "---",
    "±": r"$\pm$",
    "↑": r"$\uparrow$",
    "↓": r"$\downarrow$",
    "ε": r"$\varepsilon$",
    "→": r"$\rightarrow$",
    "‖": r"$\|$",
    "₁": r"$_1$",
    "∞": r"$\infty$",
    "·": r"$\cdot$",
    "×": r"$\times$",
}


def latex_escape(text: str) -> str:
    return "".join(LATEX_ESCAPES.get(ch, ch) for ch in str(text))


def render_latex(table: Table) -> str:
    spec, digits = table.spec, _cell_digits(table)
    row_header = _headers(table)[0]
    n_methods = len(spec["methods"])
    groups = [str(m.get("label", m["metric"])) for m in spec["metrics"]]
    n_values = len(groups) * n_methods
    lines = [
        f"% {spec['title']} -- generated by `bench tables {spec['family']}` from results/; do not edit.",
        r"\begin{table}[t]",
        r"\centering",
        r"\small",
        r"\begin{tabular}{" + "l" * len(row_header) + "c" * n_values + "}",
        r"\toprule",
    ]
    if n_methods > 1 and len(groups) > 1:
        first = [latex_escape(h) for h in row_header] + [
            rf"\multicolumn{{{n_methods}}}{{c}}{{{latex_escape(g)}}}" for g in groups
        ]
        lines.append(" & ".join(first) + r" \\")
        rules = [
            rf"\cmidrule(lr){{{len(row_header) + i * n_methods + 1}-{len(row_header) + (i + 1) * n_methods}}}"
            for i in range(len(groups))
        ]
        lines.append(" ".join(rules))
        second = [""] * len(row_header) + [latex_escape(m["label"]) for _ in groups for m in spec["methods"]]
        lines.append(" & ".join(second) + r" \\")
    else:
        labels = [m["label"] for m in spec["methods"]] if len(groups) == 1 else groups
        lines.append(" & ".join([latex_escape(h) for h in row_header] + [latex_escape(v) for v in labels]) + r" \\")
    lines.append(r"\midrule")
    for labels, cells in zip(table.row_labels, table.cells, strict=True):
        padded = labels + [""] * (len(row_header) - len(labels))
        values = [_latex_cell(c, d) for c, d in zip(cells, digits, strict=True)]
        lines.append(" & ".join([latex_escape(v) for v in padded] + values) + r" \\")
    notes = [f"{' '.join(labels)}: {models}" for labels, models in zip(table.row_labels, table.models, strict=True)]
    lines += [
        r"\bottomrule",
        r"\end{tabular}",
        *(rf"\par{{\footnotesize {latex_escape(text)}}}" for text in [*notes, *table.setup]),
        rf"\caption{{{latex_escape(spec['title'])}. Each cell: ours [95\% interval] / \textit{{paper}}; "
        r"$\checkmark$ / $\times$: the paper's value inside / outside our interval; -- = not measured.}",
        rf"\label{{tab:{latex_escape(spec['family'])}-{latex_escape(spec['name'])}}}",
        r"\end{table}",
    ]
    return "\n".join(lines) + "\n"


def _latex_cell(cell: TableCell, digits: int) -> str:
    ours = latex_escape(_ours_text(cell, digits))
    paper = _paper_text(cell.paper)
    mark = {True: r" $\checkmark$", False: r" $\times$", None: ""}[cell.paper_inside()]
    return f"{ours} / \\textit{{{latex_escape(paper)}}}{mark}" if paper else ours


# ----------------------------------------------------------------------------------------- entry point


def _verdict_text(table: Table) -> str:
    """', the paper's value inside our 95% interval in 3 of 7 cells (✗: Clean CIFAR-10, ...)' ('' without any)."""
    verdicts = [
        (cell.paper_inside(), f"{group} {' '.join(labels)}")
        for labels, line in zip(table.row_labels, table.cells, strict=True)
        for group, cell in zip(_group_labels(table), line, strict=True)
    ]
    judged = [(inside, where) for inside, where in verdicts if inside is not None]
    if not judged:
        return ""
    outside = [where for inside, where in judged if not inside]
    text = f"; the paper's value inside our 95% interval in {len(judged) - len(outside)} of {len(judged)} cells"
    return text + (f" (✗: {', '.join(outside)})" if outside else "")


def _group_labels(table: Table) -> list[str]:
    methods = table.spec["methods"]
    groups = [str(m.get("label", m["metric"])) for m in table.spec["metrics"]]
    return [f"{g} · {m['label']}" if len(methods) > 1 else g for g in groups for m in methods]


def write_tables(
    family: str,
    results: str | os.PathLike | None = None,
    out_dir: str | os.PathLike = "leaderboards/tables",
    zoo: str | os.PathLike | None = None,
    spec_dir: str | os.PathLike = SPEC_DIR,
) -> list[Path]:
    """Render every spec of ``family`` to ``<out_dir>/<family>/<name>.md`` and ``.tex`` plus a README index."""
    specs = load_specs(family, spec_dir)
    cards, failures = read_cards(zoo), read_failures(zoo)
    rows, _ = current_rows(ResultsStore(results).read(), cards)
    folder = Path(out_dir) / family
    written, index = [], [f"# {family} tables regenerated from results/", ""]
    for spec in specs:
        table = build_table(spec, rows, cards, failures)
        written.append(write_text(folder / f"{spec['name']}.md", render_markdown(table)))
        written.append(write_text(folder / f"{spec['name']}.tex", render_latex(table)))
        filled = sum(c.ours is not None for line in table.cells for c in line)
        total = sum(len(line) for line in table.cells)
        index.append(
            f"- [{spec['title']}]({spec['name']}.md) ([LaTeX]({spec['name']}.tex)): {filled} of {total} cells "
            f"measured{_verdict_text(table)}"
        )
    written.append(write_text(folder / "README.md", "\n".join(index) + "\n"))
    return written
