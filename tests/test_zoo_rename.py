"""`bench zoo rename`: a model and its results move together (rows, unit ids, per-example files, card)."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from bench.cli import app
from bench.results import ResultsStore, UnitKey, canonical_json

OLD, NEW = "t_rename_me", "t_rename_me_ft3"


def unit(model: str, suite: str, plugin: str, params: dict) -> UnitKey:
    return UnitKey(model, "sha-a", "cifar10", "test", 4, suite, plugin, canonical_json(params), 0, "fp32")


def rows_for(key: UnitKey, value: float) -> list[dict]:
    return [{**key.columns(), "metric": "accuracy", "value": value, "timestamp": "2026-12-01T00:00:00Z"}]


@pytest.fixture
def world(tmp_path, monkeypatch):
    zoo, results = tmp_path / "zoo", tmp_path / "results"
    monkeypatch.setenv("RIBENCH_ZOO", str(zoo))
    for name in (OLD, "t_other"):
        (zoo / name).mkdir(parents=True)
        (zoo / name / "card.yaml").write_text(yaml.safe_dump({"name": name, "sha256": "sha-a", "epochs": 3}))
    store = ResultsStore(results)
    for suite, plugin, params in (("s-adv", "pgd", {"eps": 0.03}), ("s-adv", "clean", {}), ("s-int", "cam", {})):
        key = unit(OLD, suite, plugin, params)
        store.finish_unit(key, pd.DataFrame({"correct": [True, False, True, True]}), rows_for(key, 0.75))
    other = unit("t_other", "s-adv", "clean", {})
    store.finish_unit(other, pd.DataFrame({"correct": [True] * 4}), rows_for(other, 1.0))
    return zoo, results


def test_rename_moves_rows_unit_ids_examples_and_card(world):
    zoo, results = world
    result = CliRunner().invoke(app, ["zoo", "rename", OLD, NEW, "--results", str(results)])
    assert result.exit_code == 0, result.output
    store = ResultsStore(results)
    assert store.read(model=OLD).empty and len(store.read(model=NEW)) == 3
    for _, row in store.read(model=NEW).iterrows():
        key = unit(NEW, row["suite"], row["plugin"], json.loads(row["params"]))
        assert row["unit"] == key.unit  # the unit id hashes the new name
        examples = pd.read_parquet(store.examples_path(key))
        assert examples["correct"].tolist() == [True, False, True, True]
    assert not (results / "s-adv" / OLD).exists() and len(store.read(model="t_other")) == 1
    card = yaml.safe_load((zoo / NEW / "card.yaml").read_text())
    assert card["name"] == NEW and card["renamed_from"] == [OLD] and card["epochs"] == 3
    assert not (zoo / OLD).exists()


@pytest.mark.parametrize(("new", "why"), [("t_other", "already a zoo model"), ("Bad-Name", "not a model name")])
def test_rename_refuses_a_taken_or_malformed_name_before_moving_anything(world, new, why):
    zoo, results = world
    result = CliRunner().invoke(app, ["zoo", "rename", OLD, new, "--results", str(results)])
    assert result.exit_code == 2 and why in result.output
    assert len(ResultsStore(results).read(model=OLD)) == 3 and (zoo / OLD / "card.yaml").exists()


def test_rename_of_an_unknown_model_is_one_clear_error(world):
    _, results = world
    result = CliRunner().invoke(app, ["zoo", "rename", "t_no_such_model", NEW, "--results", str(results)])
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1
