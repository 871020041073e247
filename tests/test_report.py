"""Leaderboards, paper tables, figures and `bench reproduce`, on synthetic tidy rows written to tmp_path."""

from __future__ import annotations

import csv
import hashlib
import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from typer.testing import CliRunner

from bench.intervals import plugin_for, recompute
from bench.models.classifier import build_classifier
from bench.report import figures as figs
from bench.report.common import MISSING, current_rows, read_cards, setting_label, varying_params
from bench.report.leaderboard import build_leaderboard, render_csv, write_leaderboards
from bench.report.reproduce import check, rebuild
from bench.report.tables import (
    Table,
    TableCell,
    TableSpecError,
    build_table,
    load_spec,
    render_latex,
    render_markdown,
    write_tables,
)
from bench.results import ResultsStore, UnitKey, atomic_write_parquet, canonical_json
from tests.conftest import needs_shared_data, shared_data_root

EPS = 8 / 255
N = 200
FGSM = {"eps": EPS, "norm": "Linf"}
PGD = {"eps": EPS, "alpha": 2 / 255, "restarts": 1, "random_start": True, "norm": "Linf", "mode": "best"}
SQUARE = {"eps": EPS, "n_queries": 5000, "p_init": 0.8, "norm": "Linf"}
ADV = "cifar10-adv"
DIAGNOSTICS = {"eps": EPS, "steps": "10,20,50,100", "sweep_steps": 20, "restarts": 5}
# model: images [start, stop) that are (clean, FGSM, PGD-20, PGD-50, Square) right; None = not measured.
ADV_SETS = {
    "standard_cnn": ((0, 182), (0, 10), (0, 0), (0, 0), (0, 4)),
    # PGD-50 (images 0-61) and Square (40-107) break different images: the minimum over attacks is 31%, the
    # per-image worst case (images 40-61 survive everything) 11%
    "topgap_cnn_k16": ((0, 178), (0, 130), (0, 104), (0, 62), (40, 108)),
    "pgdat_cnn": ((0, 160), (0, 100), (0, 92), (0, 90), None),  # no Square: incomplete
}
WORST_CASE = {"standard_cnn": 0.0, "topgap_cnn_k16": 22 / N, "pgdat_cnn": 90 / N}
MIN_OVER_ATTACKS = {"standard_cnn": 0.0, "topgap_cnn_k16": 0.31, "pgdat_cnn": 0.45}


def tidy_rows(
    model,
    suite,
    plugin,
    params,
    metrics,
    *,
    n=200,
    precision="fp32",
    sha="sha-a",
    dataset="cifar10",
    seed=0,
    timestamp="2025-11-20T10:00:00Z",
    commit="0123456789abcdef",
):
    key = UnitKey(model, sha, dataset, "test", n, suite, plugin, canonical_json(params), seed, precision)
    base = {
        **key.columns(),
        "package_version": "0.1.0",
        "git_commit": commit,
        "torch_version": torch.__version__,
        "device": "cpu",
        "threads": 1,
        "wall_seconds": 2.0,
        "timestamp": timestamp,
        "command": "bench run",
    }
    return [{**base, "metric": metric, "value": value} for metric, value in metrics.items()]


def attack_rows(model, plugin, params, clean, robust, **kw):
    metrics = {"clean_accuracy": clean, "robust_accuracy": robust, "n_attacked": 150.0}
    return tidy_rows(model, ADV, plugin, params, metrics, **kw)


def flags(span: tuple[int, int], n: int = N) -> np.ndarray:
    return (np.arange(n) >= span[0]) & (np.arange(n) < span[1])


def clean_examples(correct: tuple[int, int], n: int = N) -> pd.DataFrame:
    right = flags(correct, n)
    labels = np.arange(n) % 10
    return pd.DataFrame(
        {"index": np.arange(n), "label": labels, "pred": np.where(right, labels, (labels + 1) % 10), "correct": right}
    )


def attack_examples(correct: tuple[int, int], robust: tuple[int, int], n: int = N) -> pd.DataFrame:
    """Per-example outcomes of an attack plugin: clean-correct images ``correct``, surviving images ``robust``."""
    right, survived = flags(correct, n), flags(robust, n)
    assert not (survived & ~right).any(), "a robust image must be clean-correct"
    labels = np.arange(n) % 10
    wrong = (labels + 1) % 10
    return pd.DataFrame(
        {
            "index": np.arange(n),
            "label": labels,
            "clean_pred": np.where(right, labels, wrong),
            "adv_pred": np.where(survived, labels, wrong),
            "attacked": right,
            "robust": survived,
            "distance": np.where(right, EPS, 0.0),
        }
    )


def write_unit(store: ResultsStore, model, suite, plugin, params, examples, *, precision="fp32", **kw) -> None:
    """Rows summarized by the plugin itself from ``examples``, and the examples file beside them."""
    metrics = dict(plugin_for(plugin, canonical_json(params)).summarize(examples, None))
    key = UnitKey(
        model,
        kw.get("sha", "sha-a"),
        "cifar10",
        "test",
        len(examples),
        suite,
        plugin,
        canonical_json(params),
        0,
        precision,
    )
    store.append_rows(
        suite, model, tidy_rows(model, suite, plugin, params, metrics, n=len(examples), precision=precision, **kw)
    )
    atomic_write_parquet(examples, store.examples_path(key))


def write_card(zoo: Path, name: str, method: str, dataset: str = "cifar10", sha: str = "sha-a", **extra) -> None:
    card = {
        "name": name,
        "method": method,
        "arch": "cnn",
        "head": "topgap" if method == "topgap" else "gap",
        "head_kwargs": extra.pop("head_kwargs", {}),
        "dataset": dataset,
        "num_classes": 10,
        "input_size": 32,
        "normalization": "cifar10",
        "sha256": sha,
        **extra,
    }
    (zoo / name).mkdir(parents=True, exist_ok=True)
    (zoo / name / "card.yaml").write_text(yaml.safe_dump(card, sort_keys=True))


def write_synthetic_results(root: Path) -> tuple[Path, Path]:
    """results/ and model_zoo/ folders under ``root`` with three CIFAR-10 models and a diagnostics run."""
    results, zoo = root / "results", root / "model_zoo"
    store = ResultsStore(results)
    for model, (clean, fgsm, pgd20, pgd50, square) in ADV_SETS.items():
        write_unit(store, model, ADV, "clean", {}, clean_examples(clean))
        write_unit(store, model, ADV, "fgsm", FGSM, attack_examples(clean, fgsm))
        write_unit(store, model, ADV, "pgd", {**PGD, "steps": 20}, attack_examples(clean, pgd20))
        later = "2025-11-21T08:00:00Z"
        write_unit(store, model, ADV, "pgd", {**PGD, "steps": 50}, attack_examples(clean, pgd50), timestamp=later)
        if square is not None:
            write_unit(store, model, ADV, "square", SQUARE, attack_examples(clean, square))
    # the same model in bf16: its own leaderboard line, never mixed with fp32
    bf16 = attack_examples((0, 180), (0, 10))
    write_unit(store, "standard_cnn", ADV, "pgd", {**PGD, "steps": 20}, bf16, precision="bf16")
    # diagnostics (metric names of bench/plugins/diagnostics.py); NaN = a check that could not run
    diagnostics = {
        "flag_more_steps_help": 1.0,
        "flag_blackbox_stronger": 1.0,
        "flag_accuracy_not_zero_at_max_eps": 0.0,
        "flag_transfer_stronger": float("nan"),
        "worst_case_accuracy": 0.12,
        "clean_accuracy": 0.89,
    }
    store.append_rows(
        "cifar10-diagnostics",
        "topgap_cnn_k16",
        tidy_rows("topgap_cnn_k16", "cifar10-diagnostics", "diagnostics", DIAGNOSTICS, diagnostics),
    )
    write_card(zoo, "standard_cnn", "standard")
    write_card(zoo, "topgap_cnn_k16", "topgap", head_kwargs={"k": 16, "num_maps": 2, "fpn_channels": 16})
    write_card(zoo, "pgdat_cnn", "pgd_at")
    recompute(results)  # the interval columns, from the examples files (the diagnostics unit has none)
    return results, zoo


@pytest.fixture
def synthetic(tmp_path: Path) -> tuple[Path, Path]:
    return write_synthetic_results(tmp_path)


def board_for(results: Path, zoo: Path, suite: str = ADV, out: Path | None = None):
    cards = read_cards(zoo)
    rows, _ = current_rows(ResultsStore(results).read(), cards)
    return build_leaderboard(rows, rows, cards, suite, out or results.parent / "leaderboards", results)


def column_key(board, prefix: str) -> str:
    return next(c.key for c in board.columns if c.header.startswith(prefix))


HEADLINE = "Robust accuracy, per-image worst case ↑"  # its CSV header


def csv_records(board) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(render_csv(board))))


# ----------------------------------------------------------------------------------------- leaderboard


def test_setting_labels_name_the_attack_and_its_budget():
    assert setting_label("pgd", canonical_json({**PGD, "steps": 20})) == "PGD-20 best-iterate ε=8/255"
    assert (
        setting_label("pgd", canonical_json({**PGD, "steps": 50, "restarts": 10})) == "PGD-50×10 best-iterate ε=8/255"
    )
    # rows written before `mode` existed were final-iterate PGD, and say so
    legacy = {k: v for k, v in PGD.items() if k != "mode"}
    assert setting_label("pgd", canonical_json({**legacy, "steps": 20})) == "PGD-20 final-iterate ε=8/255"
    assert setting_label("square", canonical_json(SQUARE)) == "Square-5000 ε=8/255"
    assert setting_label("fgsm", canonical_json({"eps": 0.5, "norm": "L2"})) == "FGSM ε=0.5 L2"
    # other plugins are named by the parameters that tell a suite's settings apart
    morf, lerf = (
        canonical_json({"ranking": "cam", "order": o, "operator": "zero", "steps": 10}) for o in ("morf", "lerf")
    )
    shown = varying_params([("deletion", morf), ("deletion", lerf), ("clean", "{}")])
    assert shown == {"deletion": {"order"}}
    assert setting_label("deletion", morf, shown["deletion"]) == "deletion order=morf"


def test_headline_is_the_per_image_worst_case_not_the_minimum_over_attacks(synthetic):
    records = [r for r in csv_records(board_for(*synthetic)) if r["Precision"] == "fp32"]
    # complete entries first (topgap 11% above standard 0%), then pgdat, which has no Square run, despite its 45%
    assert [r["Model"] for r in records] == ["topgap_cnn_k16", "standard_cnn", "pgdat_cnn"]
    worst = {r["Model"]: float(r[HEADLINE]) for r in records}
    assert worst == pytest.approx(WORST_CASE)
    assert worst["topgap_cnn_k16"] < MIN_OVER_ATTACKS["topgap_cnn_k16"]  # the fixture where the two rules differ
    assert {r["Model"]: r["headline note"] for r in records}["pgdat_cnn"] == "incomplete: no Square-5000 ε=8/255"
    # Wilson interval of 22 robust images out of 200
    topgap = next(r for r in records if r["Model"] == "topgap_cnn_k16")
    low, high = float(topgap[f"{HEADLINE} ci_low"]), float(topgap[f"{HEADLINE} ci_high"])
    assert (low, high) == pytest.approx((0.0738, 0.1609), abs=1e-4)


def test_worst_case_is_recomputed_from_the_stored_outcomes(synthetic):
    results, zoo = synthetic
    store = ResultsStore(results)
    survived = np.ones(N, dtype=bool)
    for frame in store.read_examples(ADV, "topgap_cnn_k16").values():
        if "robust" in frame:
            survived &= frame.sort_values("index")["robust"].to_numpy(dtype=bool)
    entry = next(e for e in board_for(results, zoo).entries if e["model"].text == "topgap_cnn_k16")
    assert entry["headline"].sort == pytest.approx(survived.mean()) and entry["headline"].text == "11.00"
    assert entry["headline"].ci == "[7.4, 16.1]"
    attacks = [("fgsm", FGSM), ("pgd", {**PGD, "steps": 20}), ("pgd", {**PGD, "steps": 50}), ("square", SQUARE)]
    assert entry["attacks"].text == ", ".join(setting_label(p, canonical_json(q)).split(" ε=")[0] for p, q in attacks)


def test_incomplete_entries_say_so_in_the_cell_and_overlapping_intervals_tie(synthetic):
    board = board_for(*synthetic)
    by_model = {(e["model"].text, e["precision"].text): e for e in board.entries}
    pgdat = by_model["pgdat_cnn", "fp32"]["headline"]
    assert pgdat.badge == "incomplete: no Square-5000 ε=8/255" and pgdat.text == "45.00"
    bf16 = by_model["standard_cnn", "bf16"]["headline"]
    assert bf16.badge == f"incomplete: no {', '.join(suite_labels()[i] for i in (0, 2, 3))}"  # FGSM, PGD-50, Square
    # ranks: topgap's [7.4, 16.1] and standard's [0, 1.9] do not overlap; the two incomplete ones do not either
    assert [e["rank"].text for e in board.entries] == ["1", "2", "3", "4"]
    markdown = render_markdown_board(board)
    assert "**incomplete: no Square-5000 ε=8/255** 45.00 [38.3, 51.9]" in markdown


def test_an_entry_without_any_attack_names_what_was_not_run(synthetic):
    results, zoo = synthetic
    # a killed run: clean rows only, no attack of the suite
    write_unit(ResultsStore(results), "normreg_cnn", ADV, "clean", {}, clean_examples((0, 170)))
    write_card(zoo, "normreg_cnn", "normreg_at")
    recompute(results)
    board = board_for(results, zoo)
    entry = next(e for e in board.entries if e["model"].text == "normreg_cnn")
    assert entry["headline"].text == MISSING and entry["rank"].text == MISSING
    assert entry["headline"].badge == f"not run: {', '.join(suite_labels())}"
    assert board.entries[-1] is entry  # ranked after every entry with a headline
    assert f"**not run: {', '.join(suite_labels())}** {MISSING}" in render_markdown_board(board)


def suite_labels() -> list[str]:
    """The labels of cifar10-adv's attacks as plugins name them today (FGSM, PGD-20, PGD-50, Square-5000)."""
    from bench.worst_case import suite_attacks

    return [a.label for a in suite_attacks(ADV, pd.DataFrame(columns=["plugin", "params"]))]


def render_markdown_board(board) -> str:
    from bench.report.leaderboard import render_markdown

    return render_markdown(board)


def test_rank_ranges_show_ties():
    from bench.stats import rank_ranges

    # 0.90 stands apart; 0.50 and 0.48 overlap each other and share ranks 2-3
    assert rank_ranges([0.9, 0.5, 0.48], [0.85, 0.4, 0.38], [0.95, 0.6, 0.58]) == [(1, 1), (2, 3), (2, 3)]
    assert rank_ranges([0.1, 0.5], [0.05, 0.4], [0.15, 0.6], higher_better=False) == [(1, 1), (2, 2)]


def test_cells_come_from_rows_and_missing_ones_say_so(synthetic):
    board = board_for(*synthetic)
    by_model = {(e["model"].text, e["precision"].text): e for e in board.entries}
    square, clean = column_key(board, "Square-5000"), column_key(board, "Clean")
    assert by_model["pgdat_cnn", "fp32"][square].text == MISSING
    assert by_model["topgap_cnn_k16", "fp32"][square].text == "34.00"
    assert by_model["topgap_cnn_k16", "fp32"][square].ci == "[27.8, 40.8]"  # Wilson, 68 of 200
    assert by_model["topgap_cnn_k16", "fp32"][clean].text == "89.00"
    # each number carries its own provenance and how its interval was computed
    title = by_model["topgap_cnn_k16", "fp32"][square].title
    assert "n=200, fp32, seed 0, 2025-11-20, commit 0123456789" in title and "95% interval: wilson" in title
    # the date column spans the two measurement days
    assert by_model["topgap_cnn_k16", "fp32"]["date"].text == "2025-11-20 … 2025-11-21"


def test_columns_are_grouped_by_plugin_and_marked_with_their_direction(synthetic):
    board = board_for(*synthetic)
    metric_headers = [c.header for c in board.columns if c.key.startswith("metric:")]
    attacks = [("fgsm", FGSM), ("pgd", {**PGD, "steps": 20}), ("pgd", {**PGD, "steps": 50}), ("square", SQUARE)]
    assert metric_headers == ["Clean · Clean accuracy (%) ↑"] + [
        f"{setting_label(p, canonical_json(q))} · Robust accuracy (%) ↑" for p, q in attacks
    ]
    assert "Ranked by robust accuracy, per-image worst case" in board.ranking_rule


def test_a_changed_result_changes_the_leaderboard(synthetic):
    results, zoo = synthetic
    clean = "Clean · Clean accuracy ↑"
    before = {r["Model"]: r[clean] for r in csv_records(board_for(results, zoo))}
    ResultsStore(results).append_rows(ADV, "pgdat_cnn", tidy_rows("pgdat_cnn", ADV, "clean", {}, {"accuracy": 0.8125}))
    after = {r["Model"]: r[clean] for r in csv_records(board_for(results, zoo))}
    assert before["pgdat_cnn"] == "0.800000" and after["pgdat_cnn"] == "0.812500"


def test_precisions_are_separate_entries(synthetic):
    entries = [(e["model"].text, e["precision"].text) for e in board_for(*synthetic).entries]
    assert ("standard_cnn", "bf16") in entries and ("standard_cnn", "fp32") in entries
    board = board_for(*synthetic)
    bf16 = next(e for e in board.entries if e["precision"].text == "bf16")
    assert bf16["headline"].text == "5.00"
    assert bf16[column_key(board, "Clean")].text == MISSING  # never the fp32 clean 91.00


def test_gradient_masking_flags_are_shown_beside_robust_accuracy(synthetic):
    board = board_for(*synthetic)
    keys = [c.key for c in board.columns]
    assert keys.index("flags") == keys.index("headline") + 3  # headline, attacks counted, n, flags
    flags = {e["model"].text: e["flags"].text for e in board.entries if e["precision"].text == "fp32"}
    assert flags["topgap_cnn_k16"] == "⚑ blackbox_stronger, more_steps_help (2 of 3)"
    assert flags["standard_cnn"] == "not checked"


def test_diagnostics_suite_ranks_by_its_worst_case_accuracy(synthetic):
    (entry,) = board_for(*synthetic, suite="cifar10-diagnostics").entries
    # no per-example outcomes stored for this unit: its own worst case, marked as an upper bound, without interval
    assert entry["headline"].text == "≤12.00" and entry["headline"].ci == ""
    assert entry["attacks"].text == "Diagnostics worst case"


def test_rows_of_superseded_weights_are_left_out(synthetic):
    results, zoo = synthetic
    old = tidy_rows("standard_cnn", ADV, "square", SQUARE, {"robust_accuracy": 0.7}, sha="sha-old")
    ResultsStore(results).append_rows(ADV, "standard_cnn", old)
    cards = read_cards(zoo)
    rows, stale = current_rows(ResultsStore(results).read(), cards)
    assert stale == 1 and not (rows["model_sha256"] == "sha-old").any()


def test_model_names_link_to_their_model_pages(synthetic, tmp_path):
    results, zoo = synthetic
    out = tmp_path / "leaderboards"
    write_leaderboards(results, out, zoo=zoo)
    page = (out / f"{ADV}.html").read_text()
    assert '<a href="models/topgap_cnn_k16.html">topgap_cnn_k16</a>' in page  # the page links the card
    markdown = (out / f"{ADV}.md").read_text()
    assert "Ranked by robust accuracy, per-image worst case" in markdown and "## Measurements" in markdown
    assert {p.name for p in out.iterdir()} == {
        f"{s}.{x}" for s in (ADV, "cifar10-diagnostics") for x in ("md", "csv", "html")
    } | {"index.html"}


def test_every_leaderboard_row_says_how_its_model_was_trained(synthetic):
    results, zoo = synthetic
    write_card(zoo, "pgdat_cnn", "pgd_at", epochs=3, hyperparameters={"init_from": "standard_cnn", "epochs": 3})
    write_card(zoo, "standard_cnn", "standard", epochs=10, hyperparameters={"init_from": None, "epochs": 10})
    board = board_for(results, zoo)
    training = {e["model"].text: e["training"].text for e in board.entries}
    assert training["pgdat_cnn"] == "fine-tuned 3 epochs from standard_cnn"
    assert training["standard_cnn"] == "from scratch, 10 epochs"
    assert "fine-tuned 3 epochs from standard_cnn" in render_csv(board)


def test_unknown_suite_is_one_clear_error(synthetic, tmp_path):
    from bench.cli import app

    results, zoo = synthetic
    result = CliRunner().invoke(
        app,
        ["leaderboard", "--suite", "nope", "--results", str(results), "--zoo", str(zoo), "--out", str(tmp_path / "lb")],
    )
    assert result.exit_code == 2
    assert "no results for suite 'nope'" in result.output and "cifar10-adv" in result.output
    assert not (tmp_path / "lb").exists()


# ----------------------------------------------------------------------------------------- paper tables

TABLE3 = Path(__file__).resolve().parents[1] / "bench" / "report" / "table_specs" / "topgap-table3.yaml"


def test_paper_table_puts_the_papers_value_beside_ours(synthetic):
    results, zoo = synthetic
    cards = read_cards(zoo)
    rows, _ = current_rows(ResultsStore(results).read(), cards)
    table = build_table(load_spec(TABLE3), rows, cards)
    labels = [" ".join(r) for r in table.row_labels]
    prn18, cnn = table.cells[labels.index("CIFAR-10 PRN18")], table.cells[labels.index("CIFAR-10 CNN")]
    # PRN18: nothing measured, the paper's values only; the CNN: ours, no paper value
    assert [c.ours for c in prn18] == [None] * 8 and prn18[1].paper == 0.517
    markdown = render_markdown(table)
    assert "| CIFAR-10 | PRN18 | – / 0.0 | – / 0.517 |" in markdown
    # CNN columns: PGD-20 std, PGD-20 TG, PGD-50 std, PGD-50 TG, Square std, Square TG, clean std, clean TG
    assert [c.ours for c in cnn] == pytest.approx([0.0, 0.52, 0.0, 0.31, 0.02, 0.34, 0.91, 0.89])
    assert "CIFAR-10 CNN · Top-GAP · PGD-50: topgap_cnn_k16 (n=200, fp32, seed 0, 2025-11-21" in markdown
    latex = render_latex(table)
    assert r"\multicolumn{2}{c}{PGD-20}" in latex and r"-- / \textit{0.517}" in latex
    assert latex.count(r"\\") == 4  # two header lines + two rows


def test_best_of_several_models_and_expanded_rows(synthetic, tmp_path):
    results, zoo = synthetic
    write_card(zoo, "topgap_cnn_k64", "topgap", head_kwargs={"k": 64})
    ResultsStore(results).append_rows(
        ADV, "topgap_cnn_k64", tidy_rows("topgap_cnn_k64", ADV, "clean", {}, {"accuracy": 0.93})
    )
    ResultsStore(results).append_rows(
        ADV,
        "topgap_cnn_k64",  # bf16 never fills a paper cell
        tidy_rows("topgap_cnn_k64", ADV, "clean", {}, {"accuracy": 0.99}, precision="bf16"),
    )
    spec = {
        "name": "t",
        "family": "demo",
        "title": "T",
        "better": "higher",
        "row_header": ["Data", "k"],
        "methods": [{"label": "Top-GAP", "card": {"method": "topgap"}}],
        "metrics": [{"label": "Clean", "plugin": "clean", "metric": "accuracy"}],
        "rows": [
            {"cells": ["CIFAR-10", "best"], "card": {"dataset": "cifar10"}, "paper": [0.951]},
            {"cells": ["CIFAR-10", "k={}"], "card": {"dataset": "cifar10"}, "expand": "head_kwargs.k"},
        ],
    }
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "t.yaml").write_text(yaml.safe_dump(spec))
    written = write_tables("demo", results, tmp_path / "tables", zoo, spec_dir=tmp_path / "specs")
    text = (tmp_path / "tables" / "demo" / "t.md").read_text()
    assert "| CIFAR-10 | best | 0.930 / 0.951 |" in text  # max over the k sweep, the paper's rule
    assert "| CIFAR-10 | k=16 | 0.890 [0.839, 0.926] |" in text and "| CIFAR-10 | k=64 | 0.930 |" in text
    assert "topgap_cnn_k64 (n=200, fp32, seed 0, 2025-11-20, 0123456789, best of 2 models)" in text
    assert sorted(p.name for p in written) == ["README.md", "t.md", "t.tex"]


def test_a_seed_group_enters_a_table_as_its_lowest_seed_not_its_best(synthetic, tmp_path):
    results, zoo = synthetic
    store = ResultsStore(results)
    for name, seed, accuracy in (("topgap_cnn_k64", 0, 0.93), ("topgap_cnn_k64_s1", 1, 0.97)):
        write_card(zoo, name, "topgap", head_kwargs={"k": 64}, seed=seed)
        store.append_rows(ADV, name, tidy_rows(name, ADV, "clean", {}, {"accuracy": accuracy}))
    spec = {
        "name": "seeds",
        "family": "demo",
        "title": "Seeds",
        "row_header": ["Data"],
        "methods": [{"label": "Top-GAP", "card": {"method": "topgap"}}],
        "metrics": [{"label": "Clean", "plugin": "clean", "metric": "accuracy"}],
        "rows": [{"cells": ["CIFAR-10"], "card": {"dataset": "cifar10"}}],
    }
    _write_spec(tmp_path / "specs", spec)
    cards = read_cards(zoo)
    rows, _ = current_rows(store.read(), cards)
    table = build_table(load_spec(tmp_path / "specs" / "seeds.yaml"), rows, cards)
    assert table.cells[0][0].ours == pytest.approx(0.93)  # seed 1's 0.97 is not picked as "the best model"
    assert "lowest seed of 2: topgap_cnn_k64, topgap_cnn_k64_s1" in table.models[0]


def test_a_row_that_names_k_shows_its_gap_ablation(synthetic, tmp_path):
    results, zoo = synthetic
    write_card(zoo, "topgap_cnn_gap", "topgap", head_kwargs={"k": 256, "num_maps": 2, "fpn_channels": 16})
    ResultsStore(results).append_rows(
        ADV, "topgap_cnn_gap", tidy_rows("topgap_cnn_gap", ADV, "clean", {}, {"accuracy": 0.9})
    )
    spec = {
        "name": "gap",
        "family": "demo",
        "title": "GAP control",
        "row_header": ["Model"],
        "methods": [{"label": "value", "card": {"dataset": "cifar10"}}],
        "metrics": [{"label": "Clean", "plugin": "clean", "metric": "accuracy"}],
        "rows": [
            {"cells": ["Top-GAP"], "card": {"method": "topgap"}},  # GAP ablations are not Top-GAP
            {"cells": ["GAP control"], "card": {"method": "topgap", "head_kwargs.k": 256}},
        ],
    }
    _write_spec(tmp_path / "specs", spec)
    cards = read_cards(zoo)
    rows, _ = current_rows(ResultsStore(results).read(), cards)
    table = build_table(load_spec(tmp_path / "specs" / "gap.yaml"), rows, cards)
    assert "topgap_cnn_gap" not in table.models[0]
    assert table.cells[1][0].ours == pytest.approx(0.9) and table.models[1].startswith("topgap_cnn_gap (")


def _write_spec(folder: Path, spec: dict) -> None:
    folder.mkdir(exist_ok=True)
    (folder / f"{spec['name']}.yaml").write_text(yaml.safe_dump(spec, allow_unicode=True))


def test_a_row_never_mixes_models_and_gap_ablations_are_not_top_gap(synthetic, tmp_path):
    results, zoo = synthetic
    store = ResultsStore(results)
    # topgap_cnn_k64: better clean accuracy, no PGD-20; topgap_cnn_k256 (k = all 256 positions): best everywhere
    head = {"num_maps": 2, "fpn_channels": 16}
    start = {"model": "standard_cnn"}
    write_card(zoo, "topgap_cnn_k64", "topgap", head_kwargs={"k": 64, **head}, epochs=2, initialized_from=start)
    write_card(zoo, "topgap_cnn_k256", "topgap", head_kwargs={"k": 256, **head}, epochs=2)
    store.append_rows(ADV, "topgap_cnn_k64", tidy_rows("topgap_cnn_k64", ADV, "clean", {}, {"accuracy": 0.95}))
    write_unit(store, "topgap_cnn_k256", ADV, "clean", {}, clean_examples((0, 199)))
    write_unit(store, "topgap_cnn_k256", ADV, "pgd", {**PGD, "steps": 20}, attack_examples((0, 199), (0, 190)))
    recompute(results)
    spec = {
        "name": "mix",
        "family": "demo",
        "title": "Mix",
        "paper_setup": "PreAct ResNet-18 from scratch",
        "row_header": ["Data"],
        "methods": [{"label": "Top-GAP", "card": {"method": "topgap"}}],
        "metrics": [
            {"label": "PGD-20", "plugin": "pgd", "params": {"steps": 20}, "metric": "robust_accuracy"},
            {"label": "Clean", "plugin": "clean", "metric": "accuracy"},
        ],
        "rows": [
            {"cells": ["CIFAR-10"], "card": {"dataset": "cifar10"}, "paper": {"PGD-20": [0.517], "Clean": [0.9]}},
            {"cells": ["k={}"], "card": {"dataset": "cifar10"}, "expand": "head_kwargs.k"},
        ],
    }
    _write_spec(tmp_path / "specs", spec)
    write_tables("demo", results, tmp_path / "tables", zoo, spec_dir=tmp_path / "specs")
    text = (tmp_path / "tables" / "demo" / "mix.md").read_text()
    # one model for the whole row: topgap_cnn_k16 (the best PGD-20 once the GAP ablation is left out), with its own
    # clean accuracy, not k64's 0.95; both paper values lie inside our intervals
    row = next(line for line in text.splitlines() if line.startswith("| CIFAR-10 |"))
    assert row.startswith("| CIFAR-10 | 0.520 [0.451, 0.588] / 0.517 ✓ | 0.890 [0.839, 0.926] / 0.9 ✓ |")
    assert "topgap_cnn_k16 (k=16, k/(H'·W')=16/256=0.0625" in row and "topgap_cnn_k256" not in row
    assert "| k=256 (GAP ablation) | 0.950 [0.910, 0.973] | 0.995 [0.972, 0.999] |" in text
    assert "topgap_cnn_k256 (k=256, k/(H'·W')=256/256=1, GAP ablation" in text
    assert (
        "| k=64 | – | 0.950 | topgap_cnn_k64 (k=64, k/(H'·W')=64/256=0.25, fine-tuned 2 epochs from standard_cnn)"
        in text
    )
    assert "Setup differs from the paper's — paper: PreAct ResNet-18 from scratch. Ours: n = 200 test images" in text


def test_paper_values_outside_our_interval_are_marked(synthetic, tmp_path):
    results, zoo = synthetic
    spec = {
        "name": "marks",
        "family": "demo",
        "title": "Marks",
        "row_header": ["Data"],
        "methods": [{"label": "standard", "card": {"method": "standard"}}],
        "metrics": [{"label": "Clean", "plugin": "clean", "metric": "accuracy"}],
        "rows": [{"cells": ["CIFAR-10"], "card": {"dataset": "cifar10"}, "paper": ["0.945 ± 0.01"]}],
    }
    _write_spec(tmp_path / "specs", spec)
    write_tables("demo", results, tmp_path / "tables", zoo, spec_dir=tmp_path / "specs")
    text = (tmp_path / "tables" / "demo" / "marks.md").read_text()
    assert "| CIFAR-10 | 0.910 [0.862, 0.942] / 0.945 ± 0.01 ✗ |" in text  # 182 of 200: the paper's 0.945 is above
    assert r"$\times$" in (tmp_path / "tables" / "demo" / "marks.tex").read_text()
    index = (tmp_path / "tables" / "demo" / "README.md").read_text()
    assert (
        "1 of 1 cells measured; the paper's value inside our 95% interval in 0 of 1 cells (✗: Clean CIFAR-10)" in index
    )


def test_every_shipped_spec_loads_and_renders_empty_cells_as_missing(tmp_path):
    written = write_tables("topgap", tmp_path / "no-results", tmp_path / "tables", tmp_path / "no-zoo")
    names = {p.stem for p in written if p.suffix == ".md"} - {"README"}
    assert names == {"table2", "table3", "table4", "table5", "table6", "table7", *(f"tableA{i}" for i in range(1, 8))}
    table2 = (tmp_path / "tables" / "topgap" / "table2.md").read_text()
    assert "| COCO | EN | – / 0.108 | – / 0.447 |" in table2 and "none yet" in table2


def test_bad_spec_names_file_and_key(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        yaml.safe_dump(
            {"name": "b", "family": "f", "title": "B", "colour": "red", "methods": [], "metrics": [], "rows": []}
        )
    )
    with pytest.raises(TableSpecError, match=r"bad.yaml: unknown key\(s\) colour"):
        load_spec(bad)
    spec = yaml.safe_load(TABLE3.read_text())
    spec["rows"][0]["paper"]["Clean"] = [0.945]
    bad.write_text(yaml.safe_dump(spec, allow_unicode=True))
    with pytest.raises(TableSpecError, match="Clean: expected a list of 2 values"):
        load_spec(bad)


# ----------------------------------------------------------------------------------------- figures


def test_robust_vs_steps_and_skips_with_reasons(synthetic, tmp_path):
    results, zoo = synthetic
    outcomes = {o.name: o for o in figs.write_figures(results, tmp_path / "figures", zoo, data_root=tmp_path)}
    assert [p.name for p in outcomes["robust_vs_steps"].paths] == ["robust_vs_steps.png", "robust_vs_steps.svg"]
    assert all(p.stat().st_size > 1000 for p in outcomes["robust_vs_steps"].paths)
    assert "two or more epsilons" in outcomes["robust_vs_eps"].skipped
    assert "deletion" in outcomes["deletion_curves"].skipped
    assert "pets3 model" in outcomes["cam_grid_pets3"].skipped
    svg = (tmp_path / "figures" / "robust_vs_steps.svg").read_text()
    assert "<dc:date>" not in svg


def test_pgd_curves_read_pgd_and_diagnostics_rows(synthetic):
    results, zoo = synthetic
    diagnostics = {"pgd100_accuracy": 0.12, "pgd20_restarts5_accuracy": 0.5, "accuracy_eps_16/255": 0.05}
    ResultsStore(results).append_rows(
        "cifar10-diagnostics",
        "topgap_cnn_k16",
        tidy_rows("topgap_cnn_k16", "cifar10-diagnostics", "diagnostics", DIAGNOSTICS, diagnostics),
    )
    data = figs.pgd_curve_data(ResultsStore(results).read())
    topgap = data[data["model"] == "topgap_cnn_k16 (fp32)"]
    points = zip(topgap["steps"], topgap["restarts"], topgap["robust_accuracy"].round(2), strict=True)
    assert sorted(points) == [(20, 1, 0.05), (20, 1, 0.52), (20, 5, 0.5), (50, 1, 0.31), (100, 1, 0.12)]
    assert topgap.loc[topgap["robust_accuracy"] == 0.05, "eps"].item() == pytest.approx(16 / 255)


def test_deletion_curve_data(synthetic):
    results, _ = synthetic
    params = {"ranking": "cam", "order": "morf", "mode": "deletion", "operator": "zero", "space": "input"}
    curve = {"accuracy@0.00": 0.9, "accuracy@0.50": 0.4, "accuracy@1.00": 0.1, "prob@0.50": 0.3, "auc_accuracy": 0.45}
    ResultsStore(results).append_rows(
        "cifar10-interp", "standard_cnn", tidy_rows("standard_cnn", "cifar10-interp", "deletion", params, curve)
    )
    data = figs.deletion_data(ResultsStore(results).read())
    assert data["fraction"].tolist() == [0.0, 0.5, 1.0] and data["accuracy"].tolist() == [0.9, 0.4, 0.1]
    assert data["setting"].iloc[0] == "deletion morf by cam (zero, input)"


def test_cam_l1_uses_k_over_the_models_cam_positions(synthetic):
    results, zoo = synthetic
    store = ResultsStore(results)
    for model, l1 in (("topgap_cnn_k16", 0.08), ("standard_cnn", 0.2)):
        store.append_rows(
            "cifar10-interp",
            model,
            tidy_rows(model, "cifar10-interp", "cam_sparsity", {"method": "auto"}, {"l1_sparsity": l1}),
        )
    tiny = {"k": 16, "num_maps": 2, "fpn_channels": 16}
    write_card(zoo, "topgap_cnn_k16", "topgap", arch="tiny", head_kwargs=tiny)  # an architecture the tests know
    cards = read_cards(zoo)
    inputs = figs.FigureInputs(store.read(), cards, zoo, None)
    data = figs.cam_l1_data(inputs).set_index("model")
    model = build_classifier("tiny", 10, "topgap", "cifar10", k=16, num_maps=2, fpn_channels=16)
    positions = model.class_map(torch.zeros(1, 3, 32, 32)).shape[-2:].numel()
    assert data.loc["topgap_cnn_k16", "normalized_k"] == pytest.approx(16 / positions)
    assert pd.isna(data.loc["standard_cnn", "normalized_k"]) and data.loc["standard_cnn", "l1"] == 0.2
    paths = figs.save_figure(figs.figure_cam_l1_vs_k(inputs), results.parent / "figures", "cam_l1_vs_k")
    assert all(p.exists() for p in paths)


@needs_shared_data
def test_cam_grid_on_pets3_with_zoo_models(tmp_path):
    from bench.models.zoo import save_model

    zoo = tmp_path / "zoo"
    torch.manual_seed(0)
    for name, head, kwargs in (
        ("standard_tiny_pets", "gap", {}),
        ("topgap_tiny_pets", "topgap", {"k": 16, "num_maps": 2, "fpn_channels": 8}),
    ):
        model = build_classifier("tiny", 3, head, "imagenet", **kwargs)
        card = {
            "name": name,
            "method": "standard" if head == "gap" else "topgap",
            "arch": "tiny",
            "head": head,
            "head_kwargs": kwargs,
            "dataset": "pets3",
            "num_classes": 3,
            "input_size": 128,
            "normalization": "imagenet",
        }
        save_model(model, card, zoo / name)
    inputs = figs.FigureInputs(pd.DataFrame(), read_cards(zoo), zoo, shared_data_root())
    grid = figs.cam_grid_data(inputs)
    assert grid["images"].shape == (6, 128, 128, 3) and len(grid["maps"]) == 2
    for maps in grid["maps"].values():
        assert maps.shape == (6, 128, 128) and maps.min() >= 0 and maps.max() <= 1
    assert grid["labels"] == ["Abyssinian"] * 2 + ["Bengal"] * 2 + ["american_bulldog"] * 2  # two per breed
    first = figs.save_figure(figs.draw_cam_grid(grid), tmp_path / "a", "cam_grid_pets3")
    second = figs.save_figure(figs.draw_cam_grid(grid), tmp_path / "b", "cam_grid_pets3")
    assert [p.read_bytes() for p in first] == [p.read_bytes() for p in second]


# ----------------------------------------------------------------------------------------- reproducibility


def tree_digest(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_rebuilding_twice_gives_identical_files(synthetic, tmp_path):
    results, zoo = synthetic
    out = tmp_path / "site" / "leaderboards"
    rebuild(results, out, zoo)
    first = tree_digest(out)
    assert {
        "index.html",
        f"{ADV}.md",
        f"{ADV}.csv",
        f"{ADV}.html",
        "figures/robust_vs_steps.svg",
        "figures/robust_vs_steps.png",
        "tables/topgap/table3.tex",
        "MANIFEST.sha256",
    } <= set(first)
    rebuild(results, out, zoo)
    assert tree_digest(out) == first
    # a file that differs from a fresh build is found (and only that one), and rebuilding removes what no longer exists
    (out / f"{ADV}.csv").write_text("edited by hand\n")
    assert check(results, out, zoo) == [f"{ADV}.csv"]
    (results / "cifar10-diagnostics" / "topgap_cnn_k16.parquet").unlink()
    build = rebuild(results, out, zoo)
    assert {p.name for p in build.removed} == {
        "cifar10-diagnostics.md",
        "cifar10-diagnostics.csv",
        "cifar10-diagnostics.html",
    }
    assert (out / f"{ADV}.csv").read_text() != "edited by hand\n"


def test_lambda_sweep_shows_trained_values_and_where_the_others_stopped(synthetic, tmp_path):
    results, zoo = synthetic
    store = ResultsStore(results)
    head = {"k": 64, "num_maps": 2, "fpn_channels": 128}
    scratch = {"epochs": 10, "hyperparameters": {"init_from": None, "seed": 0, "l1_reduction": "mean"}}
    for name, lam, correct in (("topgap_cnn", 1.0, 180), ("topgap_cnn_l1mean30", 30.0, 150)):
        card = {**scratch, "hyperparameters": {**scratch["hyperparameters"], "lambda_l1": lam}}
        write_card(zoo, name, "topgap", head_kwargs=head, **card)
        write_unit(store, name, ADV, "clean", {}, clean_examples((0, correct)))
    fine_tuned = {"epochs": 2, "hyperparameters": {"init_from": "standard_cnn", "lambda_l1": 3.0}}
    write_card(zoo, "topgap_cnn_k64", "topgap", head_kwargs=head, **fine_tuned)  # never a sweep row
    write_unit(store, "topgap_cnn_k64", ADV, "clean", {}, clean_examples((0, 190)))
    recompute(results)
    failed = {
        "name": "topgap_cnn_l1mean100",
        "method": "topgap",
        "arch": "cnn",
        "dataset": "cifar10",
        "head_kwargs": head,
        "epochs": 10,
        "hyperparameters": {**scratch["hyperparameters"], "lambda_l1": 100.0},
        "training_command": "bench train --name topgap_cnn_l1mean100 --lambda-l1 100",
        "status": "diverged",
        "stopped": {"epoch": 1, "step": 29, "lr": 0.00714},
    }
    (zoo / "_failed").mkdir()
    (zoo / "_failed" / "topgap_cnn_l1mean100.yaml").write_text(yaml.safe_dump(failed))
    write_tables("ribench", results, tmp_path / "tables", zoo)
    lines = (tmp_path / "tables" / "ribench" / "lambda-sweep.md").read_text().splitlines()
    rows = [line for line in lines if line.startswith("| Top-GAP k=64 |")]
    assert [r.split(" | ")[1] for r in rows] == ["1.0", "30.0", "100.0"]  # ordered by λ; the fine-tune is absent
    assert rows[0].split(" | ")[2] == "0.900 [0.851, 0.934]" and "topgap_cnn (k=64" in rows[0]
    assert rows[1].split(" | ")[2] == "0.750 [0.686, 0.805]"
    assert "topgap_cnn_l1mean100: not trained, diverged at epoch 1, step 29 (lr 7.14e-03)" in rows[2]
    assert "`bench train --name topgap_cnn_l1mean100 --lambda-l1 100`" in rows[2] and " – |" in rows[2]
    cards = read_cards(zoo)
    rows, _ = current_rows(ResultsStore(results).read(), cards)
    data = figs.lambda_sweep_data(figs.FigureInputs(rows, cards, zoo, None))
    clean = data[data["metric"] == "Clean"].set_index("lambda")
    assert clean["value"].get(1.0) == pytest.approx(0.9) and clean["value"].get(30.0) == pytest.approx(0.75)
    assert clean["stopped"].to_dict() == {1.0: False, 30.0: False, 100.0: True}
    assert set(data["metric"]) == {"Clean", "FGSM", "PGD-20", "PGD-50", "Square-1000", "AutoAttack"}
    outcome = figs.write_figures(results, tmp_path / "figures", zoo, only=["lambda_sweep"])[0]
    assert outcome.skipped == "" and sorted(p.suffix for p in outcome.paths) == [".png", ".svg"]


def test_a_metric_may_print_its_own_decimals_such_as_a_count():
    spec = {
        "name": "t",
        "family": "f",
        "title": "t",
        "row_header": ["Model"],
        "methods": [{"label": "value"}],
        "metrics": [{"label": "Clean", "metric": "accuracy"}, {"label": "flags", "metric": "n", "digits": 0}],
    }
    table = Table(spec, [["m"]], [[TableCell(0.9, None, low=0.85, high=0.93), TableCell(2.0, None)]], models=["m"])
    row = next(line for line in render_markdown(table).splitlines() if line.startswith("| m |"))
    assert row.split(" | ")[1:3] == ["0.900 [0.850, 0.930]", "2"]
    assert "0.900 [0.850, 0.930] & 2" in render_latex(table)


def test_a_tables_training_budget_names_the_precision_the_model_was_trained_in():
    from bench.report.common import model_budget

    card = {"training": "from scratch, 10 epochs", "method": "standard"}
    assert model_budget({**card, "precision": "bf16-autocast"}) == "from scratch, 10 epochs, bf16"
    assert model_budget({**card, "precision": "fp32"}) == "from scratch, 10 epochs, fp32"
