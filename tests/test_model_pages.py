"""Per-model pages (bench.report.model_pages) on the synthetic results of tests/test_report.py."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest
import torch

from bench.models.classifier import build_classifier
from bench.report.common import current_rows, read_cards
from bench.report.leaderboard import build_boards, write_leaderboards
from bench.report.model_pages import NO_FLAGS, build_model_page, card_facts, write_model_pages
from bench.report.reproduce import rebuild
from bench.results import ResultsStore
from bench.stats import wilson
from tests.conftest import needs_shared_data, shared_data_root
from tests.test_report import ADV, DIAGNOSTICS, tidy_rows, write_card, write_synthetic_results

TOPGAP = "topgap_cnn_k16"
TRAINING = {
    "epochs": 2,
    "initialized_from": {"model": "standard_cnn", "parts": ["backbone"]},
    "training_command": "bench train --name topgap_cnn_k16 --method topgap --k 16 --epochs 2",
    "precision": "bf16-autocast",
    "machine": "AMD EPYC, 2 cores, no AMX/AVX512-BF16",
}
# the numbers the diagnostics flags of the fixture compare (its unit has no per-example file: no intervals)
EVIDENCE = {
    "pgd50_accuracy": 0.31,
    "pgd100_accuracy": 0.2,
    "square_accuracy": 0.1,
    "whitebox_accuracy": 0.2,
    "transfer_skipped": 1.0,
    "transfer_skipped_no_source_given": 1.0,
}


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> tuple[Path, Path]:
    """Synthetic results with a fine-tuned Top-GAP card and the accuracies behind its flags."""
    root = tmp_path_factory.mktemp("model-pages")
    results, zoo = write_synthetic_results(root)
    write_card(zoo, TOPGAP, "topgap", head_kwargs={"k": 16, "num_maps": 2, "fpn_channels": 16}, **TRAINING)
    rows = tidy_rows(TOPGAP, "cifar10-diagnostics", "diagnostics", DIAGNOSTICS, EVIDENCE)
    ResultsStore(results).append_rows("cifar10-diagnostics", TOPGAP, rows)
    return results, zoo


def page_of(results: Path, zoo: Path, model: str):
    cards = read_cards(zoo)
    rows, _ = current_rows(ResultsStore(results).read(), cards)
    out = results.parent / "leaderboards"
    return build_model_page(model, cards, rows, build_boards(results, out, cards), out / "models")


def facts(page) -> dict[str, str]:
    return {fact.label: fact.text for fact in page.facts}


def test_card_says_how_the_model_was_trained_and_its_k_over_positions(site):
    page = page_of(*site, TOPGAP)
    shown = facts(page)
    assert shown["Training"] == "fine-tuned 2 epochs from standard_cnn"
    assert shown["Epochs"] == "2" and shown["Initialized from"] == "standard_cnn (backbone)"
    assert next(f.href for f in page.facts if f.label == "Initialized from") == "standard_cnn.html"
    assert shown["Training command"] == TRAINING["training_command"]
    assert shown["Precision"] == "bf16-autocast" and shown["Machine"] == TRAINING["machine"]
    assert shown["Top-GAP k"] == "k = 16 of H'·W' = 16×16 = 256 CAM positions: k/(H'·W') = 0.0625"
    assert shown["Data"].startswith("cifar10: 10 classes, 32×32 px")
    card = next(f for f in page.facts if f.label == "Card")
    assert card.href == "../../model_zoo/topgap_cnn_k16/card.yaml"
    standard = facts(page_of(*site, "standard_cnn"))
    assert standard["Initialized from"] == "nothing: trained from scratch" and "Top-GAP k" not in standard


@pytest.mark.parametrize(
    ("arch", "k", "num_maps", "expected"),
    [
        ("cnn", 256, 2, "k = 256 of H'·W' = 16×16 = 256 CAM positions: k/(H'·W') = 1 — GAP ablation"),
        ("prn18", 128, 4, "k = 128 of H'·W' = 32×32 = 1024 CAM positions: k/(H'·W') = 0.125"),
    ],
)
def test_positions_follow_from_the_arch_and_num_maps(arch, k, num_maps, expected):
    card = {"arch": arch, "head": "topgap", "head_kwargs": {"k": k, "num_maps": num_maps}, "num_classes": 10}
    card.update(input_size=32, normalization="cifar10")
    (line,) = [f.text for f in card_facts("m", card, {}, Path(".")) if f.label == "Top-GAP k"]
    assert line.startswith(expected) and ("GAP ablation" in line) == (k == 256)


def test_every_current_result_is_listed_with_its_interval_or_why_it_has_none(site):
    results, zoo = site
    page = page_of(results, zoo, TOPGAP)
    rows = ResultsStore(results).read()
    assert [s.suite for s in page.results] == [ADV, "cifar10-diagnostics"]
    for suite in page.results:
        assert len(suite.entries) == int(((rows["model"] == TOPGAP) & (rows["suite"] == suite.suite)).sum())
    adv = page.results[0]
    fgsm = next(
        e for e in adv.entries if e["setting"].text == "FGSM ε=8/255" and "[robust_accuracy]" in e["metric"].text
    )
    low, high = wilson(130, 200).low, wilson(130, 200).high  # images 0-129 of 200 survive FGSM
    assert fgsm["value"].text == "65.00" and fgsm["interval"].text == f"[{100 * low:.1f}, {100 * high:.1f}]"
    assert fgsm["metric"].text.startswith("Robust accuracy (%) ↑")
    # the diagnostics unit has no per-example outcomes: the interval column says so instead of a number
    worst = next(e for e in page.results[1].entries if "[worst_case_accuracy]" in e["metric"].text)
    assert worst["value"].text == "12.00" and worst["interval"].text == "none: no per-example outcomes"
    # its leaderboard place: the per-image worst case (images 40-61 survive every attack), first of four
    assert adv.placings == [
        "Robust accuracy, per-image worst case (%) ↑: 11.00 [7.4, 16.1], rank 1 of 4 (fp32, n=200, seed 0)"
    ]


def test_flags_come_with_their_rule_and_the_accuracies_they_compare(site):
    checks = {c.name: c for c in page_of(*site, TOPGAP).flags}
    assert set(checks) == {"more_steps_help", "blackbox_stronger", "accuracy_not_zero_at_max_eps", "transfer_stronger"}
    steps = checks["more_steps_help"]
    assert steps.raised and steps.status == "⚑ raised"
    assert steps.evidence == ["PGD-50: 31.00%", "PGD-100: 20.00%"]
    assert "PGD-100 accuracy is more than 1 percentage point below PGD-50's" in steps.rule
    assert checks["blackbox_stronger"].evidence[:2] == ["Square-1000: 10.00%", "worst case over its PGD runs: 20.00%"]
    assert checks["transfer_stronger"].status == "not evaluated: no transfer source was given"
    assert not checks["accuracy_not_zero_at_max_eps"].raised
    assert checks["accuracy_not_zero_at_max_eps"].evidence == ["PGD-20 ε=64/255: – (not in results)"]
    assert [c.evaluated for c in checks.values()].count(False) == 1
    assert page_of(*site, "standard_cnn").flags == []


def test_pages_are_written_linked_from_every_leaderboard_row_and_say_why_cams_are_missing(site, tmp_path):
    results, zoo = site
    out = tmp_path / "leaderboards"
    written = write_model_pages(results, out, zoo, data_root=None)
    assert sorted(p.relative_to(out).as_posix() for p in written) == [
        f"models/{m}.html" for m in ("pgdat_cnn", "standard_cnn", TOPGAP)
    ]
    page = (out / "models" / f"{TOPGAP}.html").read_text()
    assert "No CAM figure: needs the cifar10 test data: no data root given" in page
    assert "2 of 3 evaluated checks raised. 1 could not be evaluated (below: why)." in page
    assert '<a href="../cifar10-adv.html">cifar10-adv</a>' in page and "[7.4, 16.1]" in page
    assert NO_FLAGS in (out / "models" / "standard_cnn.html").read_text()
    write_leaderboards(results, out, zoo=zoo)
    board = (out / f"{ADV}.html").read_text()
    links = re.findall(r'<td data-sort="[^"]*"><a href="([^"]+)">([^<]+)</a></td>', board)
    assert sorted(set(links)) == sorted({(f"models/{m}.html", m) for m in ("pgdat_cnn", "standard_cnn", TOPGAP)})
    assert all((out / href).is_file() for href, _ in links)
    assert f"[{TOPGAP}](models/{TOPGAP}.html)" in (out / f"{ADV}.md").read_text()
    assert f'<a href="models/{TOPGAP}.html">{TOPGAP}</a>' in (out / "index.html").read_text()


def test_reproduce_lists_the_pages_in_the_manifest(site, tmp_path):
    results, zoo = site
    out = tmp_path / "leaderboards"
    build = rebuild(results, out, zoo)
    manifest = (out / "MANIFEST.sha256").read_text()
    assert f"  models/{TOPGAP}.html\n" in manifest and "  models/standard_cnn.html\n" in manifest
    # without weights or data, each page left without its CAM figure is reported with why (the CLI prints it)
    assert set(build.cams_skipped) == set(read_cards(zoo)) and all(build.cams_skipped.values())


@needs_shared_data
def test_cam_figure_of_a_zoo_model_is_drawn_and_byte_stable(tmp_path):
    from bench.models.zoo import save_model

    zoo = tmp_path / "zoo"
    torch.manual_seed(0)
    for name, head, kwargs in (("tiny_gap", "gap", {}), ("tiny_topgap", "topgap", {"k": 4, "num_maps": 2})):
        model = build_classifier("tiny", 10, head, "cifar10", **kwargs)
        card = {"name": name, "method": "standard" if head == "gap" else "topgap", "arch": "tiny", "head": head}
        card.update(head_kwargs=kwargs, dataset="cifar10", num_classes=10, input_size=32, normalization="cifar10")
        save_model(model, card, zoo / name)
    results = tmp_path / "results"
    digests = []
    for run in ("a", "b"):
        out = tmp_path / run
        written = write_model_pages(results, out, zoo, shared_data_root(), boards={})
        digests.append({p.relative_to(out).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in written})
    assert digests[0] == digests[1]
    assert {"models/cams/tiny_gap.png", "models/cams/tiny_topgap.png"} <= set(digests[0])
    page = (tmp_path / "a" / "models" / "tiny_topgap.html").read_text()
    assert '<img src="cams/tiny_topgap.png" alt="CAMs of tiny_topgap">' in page
    (zoo / "tiny_gap" / "weights.safetensors").unlink()
    write_model_pages(results, tmp_path / "c", zoo, shared_data_root(), boards={})
    assert "No CAM figure: needs the weights of tiny_gap" in (tmp_path / "c" / "models" / "tiny_gap.html").read_text()
