"""Leaderboards computed from the tidy rows of ``results/``: Markdown, CSV and a static HTML site.

One leaderboard per suite; one line per evaluated configuration (model, dataset, split, n, precision,
seed): fp32 and bf16 measurements, or runs on different numbers of examples, are never mixed in a cell.
Ranking follows RobustBench's "best known" rule: the robust accuracy under the strongest attack, i.e.
the minimum over every attack of the suite, then clean accuracy, then the model name.
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

import pandas as pd

from bench.report.common import (
    FLAG_PREFIX,
    MISSING,
    PLUGIN_ORDER,
    ROBUST_METRICS,
    ReportError,
    current_rows,
    format_number,
    format_percent,
    is_missing,
    is_rate_metric,
    markdown_table,
    read_cards,
    setting_label,
    short_commit,
    sorted_rows,
    varying_params,
    write_text,
)
from bench.results import ResultsStore

TEMPLATE = Path(__file__).parent / "templates" / "page.html"
ENTRY_KEYS = ["model", "dataset", "split", "n", "precision", "seed"]
MAX_METRICS_PER_SETTING = 12
AUXILIARY_SUFFIXES = ("_std", "_raw")  # spreads and unnormalized variants: in the measurements table only
HEADLINE_WORDS = ("mean", "worst", "average", "auc", "distance")
AUTOATTACK_WARNINGS = "checks_warnings"
RANKING_RULE = (
    "Ranked by best-known robust accuracy: the minimum robust accuracy over every attack of the suite "
    "(RobustBench's rule: the strongest attack counts), then by clean accuracy, then by model name. "
    "Entries without any attack come last, ordered by clean accuracy. "
    "Every number is computed from results/ — a dash (–) means not measured."
)
SORT_HINT = "Click a column header to sort; hover a number for its n, precision, seed, date and commit."
FIGURE_EXTENSION = ".svg"


@dataclass(frozen=True)
class Setting:
    plugin: str
    params: str

    @property
    def label(self) -> str:
        return setting_label(self.plugin, self.params)

    def sort_key(self) -> tuple:
        return (PLUGIN_ORDER.get(self.plugin, 99), self.plugin, self.label, self.params)


@dataclass
class Cell:
    text: str
    sort: float | str = ""
    csv: str = ""
    title: str = ""
    href: str = ""


@dataclass
class Column:
    key: str
    header: str
    numeric: bool = True


@dataclass
class Leaderboard:
    suite: str
    columns: list[Column]
    entries: list[dict[str, Cell]]
    measurements: pd.DataFrame
    notes: list[str] = field(default_factory=list)
    ranking_rule: str = RANKING_RULE


# ----------------------------------------------------------------------------------------- building


def _flags_by_model(rows: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Latest value of every ``flag_*`` metric of each model, over all suites."""
    flags = rows[rows["metric"].str.startswith(FLAG_PREFIX)].sort_values(["timestamp", "unit"])
    out: dict[str, dict[str, float]] = {}
    for (model, metric), group in flags.groupby(["model", "metric"], sort=True):
        value = float(group["value"].iloc[-1])
        if not math.isnan(value):  # NaN: the check could not run (e.g. no transfer source)
            out.setdefault(str(model), {})[str(metric)] = value
    return out


def _flags_cell(flags: dict[str, float], aa_warnings: float | None) -> Cell:
    raised = sorted(name.removeprefix(FLAG_PREFIX) for name, value in flags.items() if value >= 0.5)
    if aa_warnings is not None and aa_warnings > 0:
        raised.append("autoattack_warnings")
    checked = len(flags) + (aa_warnings is not None)
    if not checked:
        return Cell("not checked", sort=-1, csv="not checked", title="no diagnostics rows for this model")
    if not raised:
        return Cell(f"none of {checked}", sort=0, csv=f"none of {checked}", title="checks: " + ", ".join(sorted(flags)))
    text = f"⚑ {', '.join(raised)} ({len(raised)} of {checked})"
    return Cell(text, sort=len(raised), csv=text, title="raised gradient-masking flags")


def _measurement_title(row: pd.Series) -> str:
    return (
        f"n={int(row['n'])}, {row['precision']}, seed {int(row['seed'])}, "
        f"{str(row['timestamp'])[:10]}, commit {short_commit(row['git_commit'])}"
    )


def _value_cell(row: pd.Series | None, metric: str) -> Cell:
    if row is None or is_missing(row["value"]):
        return Cell(MISSING, sort="", csv="", title="not measured")
    value = float(row["value"])
    text = format_percent(value) if is_rate_metric(metric) else format_number(value, 4)
    return Cell(text, sort=value, csv=f"{value:.6f}", title=_measurement_title(row))


def _card_cell(cards: dict, model: str, field_name: str) -> Cell:
    value = str(cards.get(model, {}).get(field_name, MISSING))
    return Cell(value, sort=value, csv="" if value == MISSING else value)


def _metric_columns(rows: pd.DataFrame, setting: Setting) -> list[str]:
    metrics = sorted(
        m
        for m in rows["metric"].unique()
        if not m.startswith(FLAG_PREFIX)
        and m != AUTOATTACK_WARNINGS
        and not m.startswith("n_")
        and not m.endswith(AUXILIARY_SUFFIXES)
    )
    if setting.plugin == "clean":
        return ["accuracy"] if "accuracy" in metrics else metrics[:1]
    if len(metrics) > MAX_METRICS_PER_SETTING:
        headline = [m for m in metrics if any(w in m for w in HEADLINE_WORDS) or m == "accuracy"]
        metrics = (headline or metrics)[:MAX_METRICS_PER_SETTING]
    return metrics


def _robust_metric(setting_rows: pd.DataFrame) -> str | None:
    """The metric that makes a plugin setting an attack (robust accuracy, or a worst case over several)."""
    metrics = set(setting_rows["metric"])
    return next((m for m in ROBUST_METRICS if m in metrics), None)


def _clean_accuracy(values: dict[tuple[Setting, str], pd.Series]) -> pd.Series | None:
    for (setting, metric), row in sorted(values.items(), key=lambda kv: kv[0][0].sort_key()):
        if setting.plugin == "clean" and metric == "accuracy":
            return row
    for (_, metric), row in sorted(values.items(), key=lambda kv: kv[0][0].sort_key()):
        if metric == "clean_accuracy":
            return row
    return None


def build_leaderboard(
    rows: pd.DataFrame, all_rows: pd.DataFrame, cards: dict, suite: str, out_dir: Path
) -> Leaderboard:
    """The leaderboard of one suite from its (current) rows; ``all_rows`` supplies the models' flags."""
    rows = sorted_rows(rows[rows["suite"] == suite])
    settings = sorted(
        {Setting(p, q) for p, q in zip(rows["plugin"], rows["params"], strict=True)}, key=Setting.sort_key
    )
    rows_of = {s: rows[(rows["plugin"] == s.plugin) & (rows["params"] == s.params)] for s in settings}
    attacks = [(s, m) for s in settings if (m := _robust_metric(rows_of[s])) is not None]
    attacked = {s for s, _ in attacks}
    metric_columns = [
        (s, m) for s in settings if s.plugin != "clean" and s not in attacked for m in _metric_columns(rows_of[s], s)
    ]
    shown = varying_params([(s.plugin, s.params) for s in settings])
    short = {s: setting_label(s.plugin, s.params, shown.get(s.plugin, set())) for s in settings}
    flags = _flags_by_model(all_rows)

    columns = [
        Column("rank", "#"),
        Column("model", "Model", False),
        Column("method", "Method", False),
        Column("arch", "Arch", False),
        Column("clean", "Clean (%)"),
    ]
    if attacks:
        columns += [
            Column("best", "Best-known robust (%)"),
            Column("strongest", "Strongest attack", False),
            Column("n", "n"),
            Column("flags", "Gradient-masking flags", False),
        ]
        columns += [Column(f"attack:{i}", f"{s.label} (%)") for i, (s, _) in enumerate(attacks)]
    else:
        columns += [Column("n", "n"), Column("flags", "Gradient-masking flags", False)]
    columns += [
        Column(f"metric:{i}", f"{short[s]}: {m}" + (" (%)" if is_rate_metric(m) else ""))
        for i, (s, m) in enumerate(metric_columns)
    ]
    columns += [
        Column("precision", "Precision", False),
        Column("seed", "Seed"),
        Column("dataset", "Data", False),
        Column("date", "Measured", False),
        Column("commit", "Commit", False),
    ]

    entries = []
    for key, group in rows.groupby(ENTRY_KEYS, sort=True):
        entry_key = dict(zip(ENTRY_KEYS, key, strict=True))
        values = {
            (Setting(r["plugin"], r["params"]), r["metric"]): r
            for _, r in group.sort_values(["timestamp", "unit"]).iterrows()
        }
        entries.append(_entry(entry_key, values, attacks, metric_columns, flags, cards, out_dir))
    entries.sort(key=_rank_key)
    for rank, entry in enumerate(entries, 1):
        entry["rank"] = Cell(str(rank), sort=rank, csv=str(rank))
    return Leaderboard(suite, columns, entries, _measurement_table(rows, shown))


def _entry(entry_key, values, attacks, metric_columns, flags, cards, out_dir) -> dict[str, Cell]:
    model = str(entry_key["model"])
    rows_used = list(values.values())
    clean = _clean_accuracy(values)
    robust = [(values.get((s, m)), s) for s, m in attacks]
    measured = [(float(r["value"]), s.label, r) for r, s in robust if r is not None and not is_missing(r["value"])]
    aa = [float(r["value"]) for (s, m), r in values.items() if s.plugin == "autoattack" and m == AUTOATTACK_WARNINGS]
    dates = sorted({str(r["timestamp"])[:10] for r in rows_used})
    commits = sorted({short_commit(r["git_commit"]) for r in rows_used})
    entry = {
        "model": Cell(model, sort=model, csv=model, href=_card_href(cards, model, out_dir)),
        "method": _card_cell(cards, model, "method"),
        "arch": _card_cell(cards, model, "arch"),
        "clean": _value_cell(clean, "accuracy"),
        "n": Cell(str(entry_key["n"]), sort=int(entry_key["n"]), csv=str(entry_key["n"])),
        "flags": _flags_cell(flags.get(model, {}), max(aa) if aa else None),
        "precision": Cell(
            str(entry_key["precision"]), sort=str(entry_key["precision"]), csv=str(entry_key["precision"])
        ),
        "seed": Cell(str(entry_key["seed"]), sort=int(entry_key["seed"]), csv=str(entry_key["seed"])),
        "dataset": Cell(
            f"{entry_key['dataset']} {entry_key['split']}",
            sort=f"{entry_key['dataset']} {entry_key['split']}",
            csv=f"{entry_key['dataset']} {entry_key['split']}",
        ),
        "date": Cell(
            " … ".join([dates[0], dates[-1]]) if len(dates) > 1 else dates[0], sort=dates[-1], csv=";".join(dates)
        ),
        "commit": Cell(", ".join(commits), sort=commits[0], csv=";".join(commits)),
    }
    for i, (row, _) in enumerate(robust):
        entry[f"attack:{i}"] = _value_cell(row, "robust_accuracy")
    for i, (setting, metric) in enumerate(metric_columns):
        entry[f"metric:{i}"] = _value_cell(values.get((setting, metric)), metric)
    if attacks:
        entry.update(_best_known(measured, len(attacks)))
    return entry


def _best_known(measured: list[tuple[float, str, pd.Series]], n_attacks: int) -> dict[str, Cell]:
    if not measured:
        return {
            "best": Cell(MISSING, sort="", csv="", title="no attack measured"),
            "strongest": Cell(MISSING, sort="", csv=""),
        }
    value, label, row = min(measured, key=lambda m: (m[0], m[1]))
    missing = n_attacks - len(measured)
    title = f"minimum over {len(measured)} of {n_attacks} attacks" + (f" ({missing} not measured)" if missing else "")
    best = _value_cell(row, "robust_accuracy")
    best.title = f"{title}; {best.title}"
    return {"best": best, "strongest": Cell(label, sort=label, csv=label, title=title)}


def _rank_key(entry: dict[str, Cell]) -> tuple:
    def number(cell: Cell | None) -> float:
        return cell.sort if cell is not None and isinstance(cell.sort, float) else -math.inf

    return (
        -number(entry.get("best")),
        -number(entry.get("clean")),
        entry["model"].sort,
        entry["precision"].sort,
        -entry["n"].sort,
        entry["seed"].sort,
    )


def _card_href(cards: dict, model: str, out_dir: Path) -> str:
    card_path = cards.get(model, {}).get("_card_path")
    if not card_path:
        return ""
    return Path(os.path.relpath(Path(card_path).resolve(), Path(out_dir).resolve())).as_posix()


def _measurement_table(rows: pd.DataFrame, shown: dict[str, set[str]]) -> pd.DataFrame:
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
    return f"[{cell.text}]({cell.href})" if cell.href else cell.text


def render_csv(board: Leaderboard) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([c.header.replace(" (%)", "") for c in board.columns])  # CSV values are fractions
    for entry in board.entries:
        writer.writerow([entry[c.key].csv if c.key in entry else "" for c in board.columns])
    return buffer.getvalue()


def _html_table(columns: list[Column], entries: list[dict[str, Cell]], table_id: str) -> str:
    head = "".join(
        f'<th data-type="{"number" if c.numeric else "text"}" data-key="{html.escape(c.key)}" tabindex="0">'
        f"{html.escape(c.header)}</th>"
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
            title = f' title="{html.escape(cell.title)}"' if cell.title else ""
            cls = ' class="flag"' if c.key == "flags" and cell.text.startswith("⚑") else ""
            cells.append(f'<td data-sort="{html.escape(_sort_text(cell.sort))}"{title}{cls}>{text}</td>')
        lines.append("<tr>" + "".join(cells) + "</tr>")
    return (
        f'<table class="sortable" id="{html.escape(table_id)}"><thead><tr>{head}</tr></thead>\n<tbody>\n'
        + "\n".join(lines)
        + "\n</tbody></table>\n"
    )


def _sort_text(value: float | int | str) -> str:
    if isinstance(value, float):
        return "" if math.isnan(value) or math.isinf(value) else repr(value)
    return str(value)


def _measurements_html(table: pd.DataFrame) -> str:
    columns = [Column(c, c, c in ("n", "seed", "value", "wall_s")) for c in table.columns if c != "params"]
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


def _nav(suites: list[str], current: str | None) -> str:
    links = ['<a href="index.html"' + (' aria-current="page"' if current is None else "") + ">Overview</a>"]
    links += [
        f'<a href="{html.escape(s)}.html"' + (' aria-current="page"' if s == current else "") + f">{html.escape(s)}</a>"
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


def render_index_html(boards: dict[str, Leaderboard], out_dir: Path) -> str:
    suites = sorted(boards)
    columns = [
        Column("suite", "Suite", False),
        Column("entries", "Entries"),
        Column("top", "Top entry", False),
        Column("best", "Best-known robust (%)"),
        Column("clean", "Clean (%)"),
    ]
    entries = []
    for suite in suites:
        board = boards[suite]
        top = board.entries[0] if board.entries else {}
        top_model = top.get("model", Cell(MISSING))
        entries.append(
            {
                "suite": Cell(suite, sort=suite, href=f"{suite}.html"),
                "entries": Cell(str(len(board.entries)), sort=len(board.entries)),
                "top": Cell(top_model.text, sort=top_model.text),
                "best": top.get("best", Cell(MISSING)),
                "clean": top.get("clean", Cell(MISSING)),
            }
        )
    content = (
        "<h1>RIBench leaderboards</h1>\n"
        f'<p class="rule">{html.escape(RANKING_RULE)}</p>\n'
        + _html_table(columns, entries, "suites")
        + _figures_html(out_dir)
        + _tables_html(out_dir)
    )
    return render_page("RIBench leaderboards", _nav(suites, None), content)


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


def write_leaderboards(
    results: str | os.PathLike | None = None,
    out_dir: str | os.PathLike = "leaderboards",
    suite: str | None = None,
    zoo: str | os.PathLike | None = None,
) -> list[Path]:
    """Write ``<suite>.md``, ``<suite>.csv``, ``<suite>.html`` (one suite or all) and ``index.html``."""
    out = Path(out_dir)
    rows = ResultsStore(results).read()
    cards = read_cards(zoo)
    rows, stale = current_rows(rows, cards)
    suites = sorted(str(s) for s in rows["suite"].unique())
    if suite is not None and suite not in suites:
        known = ", ".join(suites) or "none"
        raise ReportError(f"no results for suite '{suite}' (suites with results: {known}); run `bench run` first")
    boards = {s: build_leaderboard(rows, rows, cards, s, out) for s in suites}
    if stale:
        for board in boards.values():
            board.notes.append(f"{stale} rows measured on superseded weights (another sha256) were left out.")
    written = []
    for name in [suite] if suite else suites:
        board = boards[name]
        written.append(write_text(out / f"{name}.md", render_markdown(board)))
        written.append(write_text(out / f"{name}.csv", render_csv(board)))
        written.append(write_text(out / f"{name}.html", render_suite_html(board, suites)))
    written.append(write_text(out / "index.html", render_index_html(boards, out)))
    return written
