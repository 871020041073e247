"""Seed groups: derived from the cards, shown as mean ± SD on the leaderboards, and ties within the seed spread."""

from __future__ import annotations

import copy
import statistics
from pathlib import Path

import pytest
import yaml

from bench.intervals import recompute
from bench.report.common import read_cards, seed_groups, training_seed
from bench.report.leaderboard import SEED_RULE, render_markdown, write_leaderboards
from bench.report.model_pages import build_model_page, card_facts, render_model_html
from bench.results import ResultsStore
from bench.stats import rank_ranges
from tests.test_report import board_for, clean_examples, csv_records, write_unit

SUITE = "seeds-test"  # no suite file: a clean-accuracy board
N = 1000
ZOO = Path(__file__).resolve().parents[1] / "model_zoo"
# model: (training seed, images right of N); the three seeds span 0.50-0.70, other_cnn sits 0.15 below seed 0
ACCURACY = {
    "standard_cnn": (0, 500),
    "standard_cnn_s1": (1, 700),
    "standard_cnn_s2": (2, 620),
    "other_cnn": (0, 350),
    "lone_cnn": (0, 950),
}


def zoo_card(name: str, seed: int, **hyper) -> dict:
    """The zoo's standard_cnn card as seed ``seed`` of ``name``, with its own provenance."""
    card = yaml.safe_load((ZOO / "standard_cnn" / "card.yaml").read_text())
    card = copy.deepcopy(card) | {"name": name, "seed": seed, "sha256": f"sha-{name}", "git_commit": f"c{seed}"}
    card["hyperparameters"] = card["hyperparameters"] | {"name": name, "seed": seed, **hyper}
    card["training_command"] = f"bench train --name {name} --seed {seed}"
    card["trained_at"], card["wall_seconds"] = f"2026-12-0{seed + 1}T00:00:00Z", 4000.0 + seed
    card["clean_accuracy"] = {"value": 0.89 + seed / 100, "dataset": "cifar10", "split": "test", "n": 10000}
    return card


def cards_of_fixture() -> dict[str, dict]:
    cards = {name: zoo_card(name, seed) for name, (seed, _) in ACCURACY.items() if name.startswith("standard")}
    cards["other_cnn"] = zoo_card("other_cnn", 0, lr=0.1)  # another learning rate: not a seed of standard_cnn
    cards["lone_cnn"] = zoo_card("lone_cnn", 0, epochs=20)
    return cards


@pytest.fixture(scope="module")
def seeded(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("seeds")
    results, zoo = root / "results", root / "model_zoo"
    store = ResultsStore(results)
    for name, card in cards_of_fixture().items():
        (zoo / name).mkdir(parents=True)
        (zoo / name / "card.yaml").write_text(yaml.safe_dump(card, sort_keys=True))
        write_unit(store, name, SUITE, "clean", {}, clean_examples((0, ACCURACY[name][1]), N), sha=card["sha256"])
    recompute(results)
    return results, zoo


def by_model(board) -> dict[str, dict]:
    return {e["model"].text: e for e in board.entries}


# ----------------------------------------------------------------------------------------- grouping


def test_grouping_ignores_seed_name_and_provenance_but_not_hyperparameters():
    groups = seed_groups(cards_of_fixture())
    assert groups == {"standard_cnn": ["standard_cnn", "standard_cnn_s1", "standard_cnn_s2"]}
    cards = cards_of_fixture()
    cards["standard_cnn_s2"]["precision"] = "fp32"  # trained in another precision: another recipe
    cards["standard_cnn_s1"]["head_kwargs"] = {"k": 4}
    assert seed_groups(cards) == {}


def test_the_shipped_zoo_groups_only_seeds_of_one_recipe_and_one_member_is_not_a_group():
    cards = read_cards(ZOO)
    for group, members in seed_groups(cards).items():
        assert len({training_seed(cards[m]) for m in members}) == len(members)
        facts = {(cards[m]["method"], cards[m]["arch"], cards[m]["precision"], cards[m]["epochs"]) for m in members}
        assert len(facts) == 1, (group, facts)
        assert all(m == group or m.startswith(f"{group}_s") for m in members), members  # seeds: NAME_sK
    assert seed_groups({"standard_cnn": zoo_card("standard_cnn", 0)}) == {}
    # two cards of one recipe with the same seed are copies, not seeds
    assert seed_groups({"a": zoo_card("a", 0), "b": zoo_card("b", 0)}) == {}


def test_fine_tuned_seeds_may_start_from_the_matching_seed_of_their_start_model():
    cards = cards_of_fixture()
    for seed, start in enumerate(["standard_cnn", "standard_cnn_s1"]):
        card = zoo_card(f"ft_s{seed}", seed, init_from=start, epochs=3)
        cards[f"ft_s{seed}"] = card | {"initialized_from": {"model": start, "parts": ["backbone"]}}
    assert seed_groups(cards)["ft_s0"] == ["ft_s0", "ft_s1"]
    cards["ft_s1"]["hyperparameters"]["init_from"] = "other_cnn"  # another start recipe
    cards["ft_s1"]["initialized_from"]["model"] = "other_cnn"
    assert "ft_s0" not in seed_groups(cards)


# ----------------------------------------------------------------------------------------- leaderboard


def test_three_seeds_show_their_mean_sample_sd_and_min_max(seeded):
    board = board_for(*seeded, suite=SUITE)
    values = [0.5, 0.7, 0.62]
    mean, sd = statistics.fmean(values), statistics.stdev(values)
    for name in ("standard_cnn", "standard_cnn_s1", "standard_cnn_s2"):
        cell = by_model(board)[name]["seeds"]
        assert cell.text == f"{100 * mean:.2f} ± {100 * sd:.2f}" and cell.ci == "(50.00–70.00, 3 seeds)"
    records = {r["Model"]: r for r in csv_records(board)}
    row = records["standard_cnn_s1"]
    assert (row["seed group"], row["seeds"]) == ("standard_cnn", "3")
    assert [float(row[k]) for k in ("seed mean", "seed sd", "seed min", "seed max")] == pytest.approx(
        [mean, sd, 0.5, 0.7], abs=1e-6
    )
    assert "60.67 ± 10.07 (50.00–70.00, 3 seeds)" in render_markdown(board)
    assert SEED_RULE in board.ranking_rule


def test_a_difference_inside_the_seed_spread_is_a_tie_though_the_intervals_do_not_overlap(seeded):
    board = board_for(*seeded, suite=SUITE)
    entries = by_model(board)
    low, high = (entries[m]["headline"].ci_csv for m in ("other_cnn", "standard_cnn"))
    assert float(low[1]) < float(high[0])  # 35% [32.1, 38.0] and 50% [46.9, 53.1]: the intervals alone would rank
    # other_cnn is 0.15 below seed 0, inside the group's spread 0.20: tied with it; 0.35 below seed 1: not
    assert entries["other_cnn"]["rank"].text == "4–5" and entries["standard_cnn"]["rank"].text == "2–5"
    assert entries["standard_cnn_s1"]["rank"].text == "2–4"  # tied with its siblings only
    assert rank_ranges([0.7, 0.5, 0.35], [0.67, 0.47, 0.32], [0.73, 0.53, 0.38]) == [(1, 1), (2, 2), (3, 3)]


def test_a_model_without_seeds_is_unaffected(seeded, tmp_path):
    results, zoo = seeded
    board = board_for(results, zoo, suite=SUITE)
    lone = by_model(board)["lone_cnn"]
    assert lone["rank"].text == "1" and lone["seeds"].text == "–" and lone["rank"].title.startswith("no other")
    assert next(r for r in csv_records(board) if r["Model"] == "lone_cnn")["seed mean"] == ""
    # without the sibling cards there is no group: no seed column, no seed rule, ranks by intervals alone
    solo = tmp_path / "zoo"
    for name in ("standard_cnn", "other_cnn", "lone_cnn"):
        (solo / name).mkdir(parents=True)
        (solo / name / "card.yaml").write_text((zoo / name / "card.yaml").read_text())
    plain = board_for(results, solo, suite=SUITE)
    assert all(c.key != "seeds" for c in plain.columns) and SEED_RULE not in plain.ranking_rule
    ranks = {m: e["rank"].text for m, e in by_model(plain).items()}
    assert ranks == {
        "lone_cnn": "1",
        "standard_cnn_s1": "2",
        "standard_cnn_s2": "3",
        "standard_cnn": "4",
        "other_cnn": "5",
    }


def test_the_written_pages_state_the_rule(seeded, tmp_path):
    results, zoo = seeded
    out = tmp_path / "boards"
    write_leaderboards(results, out, zoo=zoo)
    page = (out / f"{SUITE}.html").read_text()
    assert "Training seeds: mean ± SD (min–max) (%)" in page and "max − min" in page
    assert "seed spread" in (out / "index.html").read_text()
    assert "seed group,seeds,seed mean,seed sd,seed min,seed max" in (out / f"{SUITE}.csv").read_text()


# ----------------------------------------------------------------------------------------- model pages


def test_model_page_lists_sibling_seeds_and_the_group_mean(seeded, tmp_path):
    results, zoo = seeded
    cards = read_cards(zoo)
    board = board_for(results, zoo, suite=SUITE)
    rows = ResultsStore(results).read()
    page = build_model_page("standard_cnn_s1", cards, rows, {SUITE: board}, tmp_path)
    fact = next(f for f in page.facts if f.label == "Training seeds")
    assert "this model is seed 1" in fact.text
    assert fact.links == (
        ("standard_cnn (seed 0)", "standard_cnn.html"),
        ("standard_cnn_s2 (seed 2)", "standard_cnn_s2.html"),
    )
    assert (
        page.results[0]
        .placings[0]
        .endswith("training seeds, mean ± SD (min–max): 60.67 ± 10.07 (50.00–70.00, 3 seeds)")
    )
    assert '<a href="standard_cnn.html">standard_cnn (seed 0)</a>' in render_model_html(page, [SUITE])
    lone = card_facts("lone_cnn", cards["lone_cnn"], cards, tmp_path)
    assert all(f.label != "Training seeds" for f in lone)
    lone_page = build_model_page("lone_cnn", cards, rows, {SUITE: board}, tmp_path)
    assert "training seeds" not in lone_page.results[0].placings[0]


def test_csv_keeps_rank_ranges(seeded):
    ranks = {r["Model"]: r["#"] for r in csv_records(board_for(*seeded, suite=SUITE))}
    assert ranks == {
        "lone_cnn": "1",
        "standard_cnn_s1": "2–4",
        "standard_cnn_s2": "2–4",
        "standard_cnn": "2–5",
        "other_cnn": "4–5",
    }


def card_written_today(seed_zero: str, seed: int, **hparams) -> dict:
    """What `bench train` writes today for seed ``seed`` of a zoo model trained before its newer fields existed."""
    from dataclasses import asdict

    from bench.train import TrainConfig

    old = yaml.safe_load((ZOO / seed_zero / "card.yaml").read_text())
    fields = {k: v for k, v in old["hyperparameters"].items() if k in TrainConfig.__dataclass_fields__}
    config = TrainConfig(**fields | {"name": f"{seed_zero}_s{seed}", "seed": seed})
    new = old | {"name": config.name, "seed": seed, "arch_config": {}, "sha256": "new", "git_commit": "new"}
    new |= {"training": "from scratch, 10 epochs", "device": "cpu", "machine": "Intel(R) Xeon(R), 2 cores"}
    new["hyperparameters"] = {**asdict(config), **hparams, "data_root": None}
    return new


def test_seeds_trained_today_group_with_seed_zero_trained_before_the_newer_fields():
    cards = {name: yaml.safe_load((ZOO / name / "card.yaml").read_text()) for name in ("standard_cnn", "topgap_cnn")}
    cards["standard_cnn_s1"] = card_written_today("standard_cnn", 1)
    topgap_head = {"k": 64, "lambda_l1": 1.0, "l1_reduction": "mean", "num_maps": None, "fpn_channels": 128}
    cards["topgap_cnn_s1"] = card_written_today("topgap_cnn", 1, **topgap_head, dropout=0.0)
    assert "nesterov" not in cards["standard_cnn"]["hyperparameters"]  # the old card predates the field
    assert seed_groups(cards) == {
        "standard_cnn": ["standard_cnn", "standard_cnn_s1"],
        "topgap_cnn": ["topgap_cnn", "topgap_cnn_s1"],
    }
    cards["standard_cnn_s1"]["hyperparameters"]["nesterov"] = False  # not what the old code did: another recipe
    cards["topgap_cnn_s1"]["hyperparameters"]["l1_reduction"] = "sum"
    assert seed_groups(cards) == {}
