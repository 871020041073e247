"""One static page per zoo model, ``leaderboards/models/<name>.html``, built by ``bench reproduce`` from results/.

A page shows the model's card (training command, epochs, from scratch or fine-tuned from what, data, precision,
machine; k and k/(H'·W') for Top-GAP), every current result across suites with its 95% interval (or why it has
none) and its place on each suite's leaderboard, its gradient-masking flags with the evidence behind each (the rule
and the accuracies it compares, as the flag's plugin declares them: ``Plugin.flag_evidence``) and a figure of its
CAMs on a few test images (``models/cams/<name>.png``; when the data or the weights are not here, the page says
so). Leaderboard rows link to these pages from the model name. Labels, units and directions come from the plugins
(``MetricInfo``); nothing here knows a plugin by its name. Like the rest of the build, the output is byte-stable.
A model that is one seed of a training recipe (``bench.report.common.seed_groups``) lists its sibling seeds, and each
of its leaderboard placings gives the seeds' mean ± SD (min–max) where the siblings were measured alike.
"""

from __future__ import annotations

import html
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from bench.plugins.base import MetricInfo
from bench.report.common import (
    MISSING,
    current_rows,
    format_value,
    is_missing,
    read_cards,
    seed_groups,
    setting_label,
    short_commit,
    sorted_rows,
    topgap_k,
    training_budget,
    training_seed,
    varying_params,
    write_text,
)
from bench.report.leaderboard import (
    INTERVAL_NOTE,
    MODEL_PAGES,
    SORT_HINT,
    Cell,
    Column,
    Leaderboard,
    Setting,
    _card_href,
    _ci_text,
    _html_table,
    _interval_title,
    _measurement_title,
    _nav,
    _unit_suffix,
    _value_text,
    build_boards,
    render_page,
)
from bench.results import ResultsStore

CAMS = "cams"  # models/cams/<name>.png
NO_FLAGS = (
    "Not checked: results/ holds no diagnostics rows (gradient-masking flags) for this model, so nothing here says "
    "whether its gradients mislead the attacks."
)


@dataclass
class Fact:
    """One line of the card: a label, its text, optionally a link and a value shown as code."""

    label: str
    text: str
    href: str = ""
    code: bool = False
    links: tuple[tuple[str, str], ...] = ()  # (text, href) shown after the text, comma-separated


@dataclass
class SuiteResults:
    suite: str
    placings: list[str]  # "Robust accuracy … ↑: 22.50 [16.9, 29.1], rank 3–5 of 12 (fp32, n=200, seed 0)"
    entries: list[dict[str, Cell]]


@dataclass
class FlagCheck:
    """One gradient-masking flag of one run, with what it compared."""

    name: str
    status: str  # "⚑ raised", "not raised", "not evaluated: <why>"
    raised: bool
    rule: str
    evidence: list[str]
    source: str  # suite · setting, n, precision

    @property
    def evaluated(self) -> bool:
        return not self.status.startswith("not evaluated")


@dataclass
class ModelPage:
    name: str
    facts: list[Fact]
    results: list[SuiteResults]
    flags: list[FlagCheck]
    cams: str = ""  # the CAM figure, relative to the page
    cams_skipped: str = ""
    notes: list[str] = field(default_factory=list)


RESULT_COLUMNS = [
    Column("setting", "Setting", False),
    Column("metric", "Metric", False),
    Column("value", "Value"),
    Column("interval", "95% interval", False),
    Column("n", "n"),
    Column("precision", "Precision", False),
    Column("seed", "Seed"),
    Column("date", "Measured", False),
    Column("commit", "Commit", False),
]
FLAG_COLUMNS = [
    Column("name", "Check", False),
    Column("status", "Status", False),
    Column("evidence", "Evidence (the accuracies it compares, 95% intervals)", False),
    Column("rule", "Rule", False),
    Column("source", "Run", False),
]


# ----------------------------------------------------------------------------------------- the card


def card_facts(name: str, card: dict[str, Any], cards: dict[str, dict[str, Any]], page_dir: Path) -> list[Fact]:
    """The card's lines a reader needs to judge the model's numbers, in reading order.

    Example:
        >>> [f.label for f in card_facts("m", {"method": "standard", "epochs": 3}, {}, Path("."))][:3]
        ['Method', 'Training', 'Epochs']
    """
    facts = [Fact("Method", str(card.get("method", MISSING))), Fact("Training", training_budget(card))]
    facts.append(Fact("Epochs", str(card.get("epochs", (card.get("hyperparameters") or {}).get("epochs", MISSING)))))
    facts.append(_start_fact(card, cards))
    if card.get("training_command"):
        facts.append(Fact("Training command", " ".join(str(card["training_command"]).split()), code=True))
    facts += [Fact("Architecture", _architecture(card)), *_topgap_facts(card), Fact("Data", _data(card))]
    facts += _optional_facts(card) + _seed_facts(name, cards)
    href = _card_href(cards, name, page_dir)
    facts.append(Fact("Card", "card.yaml (every field)" if href else MISSING, href))
    return facts


def _start_fact(card: dict[str, Any], cards: dict[str, dict[str, Any]]) -> Fact:
    start = card.get("initialized_from") or {}
    model = start.get("model") or (card.get("hyperparameters") or {}).get("init_from")
    if not model:
        return Fact("Initialized from", "nothing: trained from scratch")
    parts = start.get("parts")
    text = f"{model}" + (f" ({', '.join(map(str, parts))})" if parts else "")
    return Fact("Initialized from", text, f"{model}.html" if model in cards else "")


def _architecture(card: dict[str, Any]) -> str:
    head_kwargs = card.get("head_kwargs") or {}
    shown = ", ".join(f"{k}={format_value(v)}" for k, v in sorted(head_kwargs.items()))
    text = f"{card.get('arch', MISSING)}, {card.get('head', MISSING)} head" + (f" ({shown})" if shown else "")
    if card.get("parameters"):
        text += f"; {int(card['parameters']):,} parameters"
    return text


def _topgap_facts(card: dict[str, Any]) -> list[Fact]:
    k = topgap_k(card)
    if k is None:
        return []
    value, positions = k
    if positions is None:
        return [Fact("Top-GAP k", f"k = {value}; H'·W' unknown (the architecture cannot be built here)")]
    side = math.isqrt(positions)
    grid = f"{side}×{side} = {positions}" if side * side == positions else str(positions)
    text = f"k = {value} of H'·W' = {grid} CAM positions: k/(H'·W') = {value / positions:.4g}"
    if value >= positions:
        text += " — GAP ablation (k covers every position: plain global average pooling, not Top-GAP)"
    return [Fact("Top-GAP k", text)]


def _data(card: dict[str, Any]) -> str:
    size = card.get("input_size")
    text = f"{card.get('dataset', MISSING)}: {card.get('num_classes', MISSING)} classes"
    text += f", {size}×{size} px" if size else ""
    text += f", normalization {card['normalization']}" if card.get("normalization") else ""
    batch = (card.get("hyperparameters") or {}).get("batch_size")
    text += f"; batch size {batch}" if batch else ""
    clean = card.get("clean_accuracy") or {}
    if isinstance(clean, dict) and clean.get("value") is not None:
        images = " ".join(str(x) for x in (clean.get("n", "?"), clean.get("split"), "images") if x)
        text += f"; clean accuracy at training time {100 * float(clean['value']):.2f}% on {images}"
    return text


def _optional_facts(card: dict[str, Any]) -> list[Fact]:
    facts = [Fact("Precision", str(card.get("precision", MISSING)))]
    machine = ", ".join(str(card[k]) for k in ("machine", "device", "gpu") if card.get(k))
    if machine:
        facts.append(Fact("Machine", machine))
    trained = [str(card[k]) for k in ("trained_at",) if card.get(k)]
    if card.get("git_commit"):
        trained.append(f"commit {short_commit(card['git_commit'])}")
    if card.get("wall_seconds") is not None:
        trained.append(f"{float(card['wall_seconds']):.0f} s")
    if card.get("seed") is not None:
        trained.append(f"seed {card['seed']}")
    if trained:
        facts.append(Fact("Trained", ", ".join(trained)))
    if card.get("sha256"):
        facts.append(Fact("Weights sha256", str(card["sha256"]), code=True))
    if card.get("license"):
        facts.append(Fact("License", str(card["license"])))
    return facts


def _seed_facts(name: str, cards: dict[str, dict[str, Any]]) -> list[Fact]:
    """'Training seeds': the model's seed group with links to its sibling seeds; nothing for a model without one."""
    members = next((m for m in seed_groups(cards).values() if name in m), None)
    if members is None:
        return []
    text = (
        f"{len(members)} seeds of one recipe (cards equal but for seed, name and provenance); this model is seed "
        f"{training_seed(cards[name])}. Siblings:"
    )
    links = tuple((f"{m} (seed {training_seed(cards[m])})", f"{m}.html") for m in members if m != name)
    return [Fact("Training seeds", text, links=links)]


# ----------------------------------------------------------------------------------------- results


def model_results(rows: pd.DataFrame, boards: dict[str, Leaderboard], model: str) -> list[SuiteResults]:
    """Every current row of ``model`` grouped by suite (its headline first), with its place on each leaderboard.

    Example:
        >>> [s.suite for s in model_results(rows, boards, "topgap_cnn")]  # doctest: +SKIP
        ['cifar10-adv', 'cifar10-diagnostics']
    """
    own = sorted_rows(rows[rows["model"] == model])
    return [
        SuiteResults(str(suite), _placings(boards.get(str(suite)), model), _result_entries(group))
        for suite, group in own.groupby("suite", sort=True)
    ]


def _result_entries(group: pd.DataFrame) -> list[dict[str, Cell]]:
    def order(row: pd.Series) -> tuple:
        setting = Setting(row["plugin"], row["params"])
        instance = setting.instance
        first = instance is not None and instance.headline_metric() == row["metric"]
        return (setting.sort_key(), not first, row["metric"], row["precision"], row["n"], row["seed"])

    ordered = sorted((r for _, r in group.iterrows()), key=order)
    shown = varying_params(sorted(set(zip(group["plugin"], group["params"], strict=True))))
    return [
        _result_entry(row, setting_label(row["plugin"], row["params"], shown.get(row["plugin"], set())))
        for row in ordered
    ]


def _result_entry(row: pd.Series, label: str) -> dict[str, Cell]:
    """One row of a results table; ``label`` names the setting by the parameters that tell the suite's apart."""
    setting = Setting(row["plugin"], row["params"])
    info = setting.info(row["metric"])
    metric = f"{info.label or row['metric']}{_unit_suffix(info)} [{row['metric']}]"
    value, sort = _shown_value(row["value"], info)
    low, high = (float(row.get(k, math.nan)) for k in ("ci_low", "ci_high"))
    interval = _ci_text(low, high, info)
    reason = _interval_title(row)
    return {
        "setting": Cell(label, sort=label, title=str(row["params"])),
        "metric": Cell(metric, sort=metric),
        "value": Cell(value, sort=sort, title=_measurement_title(row), classes=_value_classes(row["value"], info)),
        "interval": Cell(interval or reason.removeprefix("interval: "), sort=low if interval else "", title=reason),
        "n": Cell(str(int(row["n"])), sort=int(row["n"])),
        "precision": Cell(str(row["precision"]), sort=str(row["precision"])),
        "seed": Cell(str(int(row["seed"])), sort=int(row["seed"])),
        "date": Cell(str(row["timestamp"])[:10], sort=str(row["timestamp"])),
        "commit": Cell(short_commit(row["git_commit"]), sort=str(row["git_commit"])),
    }


def _shown_value(value: Any, info: MetricInfo) -> tuple[str, float | str]:
    if is_missing(value):
        return (MISSING + " not evaluated" if info.kind == "flag" else MISSING), ""
    value = float(value)
    if info.kind == "flag":
        return ("⚑ raised" if value >= 0.5 else "not raised"), value
    if info.kind == "setting":
        return format_value(value), value
    return _value_text(value, info), value


def _value_classes(value: Any, info: MetricInfo) -> tuple[str, ...]:
    return ("flag",) if info.kind == "flag" and not is_missing(value) and float(value) >= 0.5 else ()


def _placings(board: Leaderboard | None, model: str) -> list[str]:
    if board is None or board.headline is None:
        return []
    label = f"{board.headline.label}{_unit_suffix(board.headline.info)}"
    total = len(board.entries)
    return [
        f"{label}: {entry['headline'].full_text if 'headline' in entry else MISSING}, rank "
        f"{entry['rank'].text} of {total} ({entry['precision'].text}, n={entry['n'].text}, seed {entry['seed'].text})"
        + _seed_placing(entry.get("seeds"))
        for entry in board.entries
        if entry["model"].text == model
    ]


def _seed_placing(cell: Cell | None) -> str:
    """'; training seeds, mean ± SD (min–max): 45.20 ± 1.10 (44.00–46.30, 3 seeds)' where siblings were measured."""
    if cell is None or not cell.csv_extra:
        return ""
    return f"; training seeds, mean ± SD (min–max): {cell.full_text}"


# ----------------------------------------------------------------------------------------- flags


def flag_checks(rows: pd.DataFrame, model: str) -> list[FlagCheck]:
    """The gradient-masking flags of every current run of ``model``, each with its rule and evidence.

    Example:
        >>> [f.name for f in flag_checks(rows, "topgap_cnn") if f.raised]  # doctest: +SKIP
        []
    """
    own = sorted_rows(rows[rows["model"] == model])
    checks = []
    for _, row in own.iterrows():
        setting = Setting(row["plugin"], row["params"])
        if setting.info(row["metric"]).kind == "flag":
            checks.append(_flag_check(row, setting, own[own["unit"] == row["unit"]]))
    return checks


def _flag_check(row: pd.Series, setting: Setting, unit_rows: pd.DataFrame) -> FlagCheck:
    instance = setting.instance
    evidence = instance.flag_evidence(row["metric"]) if instance is not None else None
    values = {str(r["metric"]): r for _, r in unit_rows.iterrows()}
    raised = not is_missing(row["value"]) and float(row["value"]) >= 0.5
    if is_missing(row["value"]):
        skipped = [why for m, why in (evidence.skipped if evidence else ()) if _is_set(values.get(m))]
        status = "not evaluated" + (f": {'; '.join(skipped)}" if skipped else "")
    else:
        status = "⚑ raised" if raised else "not raised"
    shown = [
        f"{label}: {_evidence_value(values.get(metric), setting.info(metric))}"
        for label, metric in (evidence.metrics if evidence else ())
    ]
    source = f"{row['suite']} · {setting.label}; n={int(row['n'])}, {row['precision']}, seed {int(row['seed'])}"
    rule = evidence.rule if evidence else "(its plugin does not describe this flag)"
    return FlagCheck(str(row["metric"]).removeprefix("flag_"), status, raised, rule, shown, source)


def _is_set(row: pd.Series | None) -> bool:
    return row is not None and not is_missing(row["value"]) and float(row["value"]) >= 0.5


def _evidence_value(row: pd.Series | None, info: MetricInfo) -> str:
    if row is None or is_missing(row["value"]):
        return f"{MISSING} (not in results)"
    interval = _ci_text(float(row.get("ci_low", math.nan)), float(row.get("ci_high", math.nan)), info)
    unit = "%" if info.percent else ""
    return f"{_value_text(float(row['value']), info)}{unit}" + (f" {interval}" if interval else "")


# ----------------------------------------------------------------------------------------- CAMs


def write_cam_figure(card: dict[str, Any], path: Path, data_root: str | os.PathLike | None) -> str:
    """Draw the model's CAM figure to ``path``; return "" or why it was not drawn (data or weights not here).

    Example:
        >>> write_cam_figure(read_cards()["standard_cnn"], Path("cams/standard_cnn.png"), None)  # doctest: +SKIP
        'needs the cifar10 test data: no data root given (--data-root or RIBENCH_DATA)'
    """
    import matplotlib.pyplot as plt

    from bench.report.figures import SkipFigure, _style, draw_cam_grid, model_cam_data, save_png

    try:
        grid = model_cam_data(card, data_root)
    except SkipFigure as reason:
        return str(reason)
    _style()
    fig = draw_cam_grid(grid)
    save_png(fig, path)
    plt.close(fig)
    return ""


# ----------------------------------------------------------------------------------------- pages


def build_model_page(
    name: str,
    cards: dict[str, dict[str, Any]],
    rows: pd.DataFrame,
    boards: dict[str, Leaderboard],
    page_dir: Path,
) -> ModelPage:
    """Everything on one model's page except its CAM figure (``write_cam_figure``), from its current rows.

    Example:
        >>> page = build_model_page("topgap_cnn", cards, rows, boards, Path("leaderboards/models"))  # doctest: +SKIP
        >>> page.facts[1].text
        'from scratch, 10 epochs'
    """
    facts = card_facts(name, cards[name], cards, page_dir)
    return ModelPage(name, facts, model_results(rows, boards, name), flag_checks(rows, name))


def render_model_html(page: ModelPage, suites: list[str]) -> str:
    """The page as HTML (the leaderboards' template, links relative to ``leaderboards/models/``)."""
    name = html.escape(page.name)
    content = (
        f"<h1>Model: {name}</h1>\n"
        + "<h2>Card</h2>\n"
        + _facts_html(page.facts)
        + "<h2>Results</h2>\n"
        + _results_html(page)
        + "<h2>Gradient-masking flags</h2>\n"
        + _flags_html(page.flags)
        + "<h2>CAMs</h2>\n"
        + _cams_html(page)
    )
    return render_page(f"RIBench — {page.name}", _nav(suites, "", prefix="../"), content)


def _facts_html(facts: list[Fact]) -> str:
    lines = []
    for fact in facts:
        text = html.escape(fact.text)
        text = f"<code>{text}</code>" if fact.code else text
        text = f'<a href="{html.escape(fact.href)}">{text}</a>' if fact.href else text
        if fact.links:
            text += " " + ", ".join(f'<a href="{html.escape(h)}">{html.escape(t)}</a>' for t, h in fact.links)
        lines.append(f'<tr><th scope="row">{html.escape(fact.label)}</th><td>{text}</td></tr>')
    return '<table class="card" id="card"><tbody>\n' + "\n".join(lines) + "\n</tbody></table>\n"


def _results_html(page: ModelPage) -> str:
    if not page.results:
        return "<p>No results in results/ for this model yet.</p>\n"
    parts = [f'<p class="rule">{html.escape(INTERVAL_NOTE)}</p>\n<p class="hint">{html.escape(SORT_HINT)}</p>\n']
    parts += [f"<p>{html.escape(note)}</p>\n" for note in page.notes]
    for suite in page.results:
        escaped = html.escape(suite.suite)
        parts.append(f'<h3 id="suite-{escaped}"><a href="../{escaped}.html">{escaped}</a></h3>\n')
        parts += [f'<p class="placing">Leaderboard: {html.escape(p)}</p>\n' for p in suite.placings]
        table = _html_table(RESULT_COLUMNS, suite.entries, f"results-{suite.suite}")
        parts.append(f'<div class="scroll">{table}</div>\n')
    return "".join(parts)


def _flags_html(flags: list[FlagCheck]) -> str:
    if not flags:
        return f'<p id="no-flags">{html.escape(NO_FLAGS)}</p>\n'
    raised, evaluated = sum(f.raised for f in flags), sum(f.evaluated for f in flags)
    summary = (
        f"{raised} of {evaluated} evaluated checks raised."
        if raised
        else f"None of {evaluated} evaluated checks raised."
    )
    if evaluated < len(flags):
        summary += f" {len(flags) - evaluated} could not be evaluated (below: why)."
    entries = [
        {
            "name": Cell(f.name, sort=f.name),
            "status": Cell(f.status, sort=f.status, classes=("flag",) if f.raised else ()),
            "evidence": Cell("; ".join(f.evidence) or MISSING, sort=""),
            "rule": Cell(f.rule, sort=f.rule),
            "source": Cell(f.source, sort=f.source),
        }
        for f in flags
    ]
    return (
        f"<p>{html.escape(summary)}</p>\n"
        + f'<div class="scroll">{_html_table(FLAG_COLUMNS, entries, "flags")}</div>\n'
    )


def _cams_html(page: ModelPage) -> str:
    if not page.cams:
        return f'<p id="no-cams">No CAM figure: {html.escape(page.cams_skipped)}.</p>\n'
    src = html.escape(page.cams)
    return (
        f'<figure><img src="{src}" alt="CAMs of {html.escape(page.name)}">'
        "<figcaption>The first test images of its dataset's first classes, each with the CAM of its true class "
        "(the model's own CAM for Top-GAP, Grad-CAM at the last backbone stage otherwise).</figcaption></figure>\n"
    )


def write_model_pages(
    results: str | os.PathLike | None = None,
    out_dir: str | os.PathLike = "leaderboards",
    zoo: str | os.PathLike | None = None,
    data_root: str | os.PathLike | None = None,
    boards: dict[str, Leaderboard] | None = None,
    cams_skipped: dict[str, str] | None = None,
) -> list[Path]:
    """Write ``models/<name>.html`` (and ``models/cams/<name>.png`` where it can be drawn) for every zoo model.

    ``boards``: the suites' leaderboards when the caller has built them already (``build_boards``).
    ``cams_skipped``: filled with model name -> why, for each page left without its CAM figure.

    Example:
        >>> [p.name for p in write_model_pages("results", "leaderboards")][:2]  # doctest: +SKIP
        ['ersm_cnn.png', 'ersm_cnn.html']
    """
    out = Path(out_dir)
    page_dir = out / MODEL_PAGES
    cards = read_cards(zoo)
    all_rows = ResultsStore(results).read()
    rows, _ = current_rows(all_rows, cards)
    boards = build_boards(results, out, cards) if boards is None else boards
    suites = sorted(boards)
    written = []
    for name in sorted(cards):
        page = build_model_page(name, cards, rows, boards, page_dir)
        stale = int((all_rows["model"] == name).sum()) - int((rows["model"] == name).sum())
        if stale:
            page.notes.append(f"{stale} rows measured on superseded weights (another sha256) were left out.")
        cam_path = page_dir / CAMS / f"{name}.png"
        page.cams_skipped = write_cam_figure(cards[name], cam_path, data_root)
        if not page.cams_skipped:
            page.cams = f"{CAMS}/{name}.png"
            written.append(cam_path)
        elif cams_skipped is not None:
            cams_skipped[name] = page.cams_skipped
        written.append(write_text(page_dir / f"{name}.html", render_model_html(page, suites)))
    return written
