"""Models from outside the official zoo: ``--model file.py:function``, ``--zoo DIR``, ``RIBENCH_ZOO`` path lists."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest
import yaml
from safetensors.torch import save_file
from typer.testing import CliRunner

from bench.cli import app
from bench.models import cards
from bench.models.cards import read_card, zoo_folders
from bench.models.zoo import save_model
from tests.test_zoo import _card_for

runner = CliRunner()
SUITE = "dataset: cifar10\nsplit: test\nn: 8\nbatch_size: 8\nplugins:\n  - plugin: clean\n"
FACTORY = """
from safetensors.torch import load_file

import tests.conftest  # registers the 'tiny' arch
from bench.models.classifier import build_classifier


def build():
    model = build_classifier("tiny", 10)
    model.load_state_dict(load_file({weights!r}))
    return model
"""


@pytest.fixture(autouse=True)
def own_zoo_roots(monkeypatch):
    monkeypatch.setattr(cards, "_extra_roots", [])  # --zoo folders added by one test stay out of the others
    monkeypatch.delenv("RIBENCH_ZOO", raising=False)


def _weights(model, path: Path) -> Path:
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    return path


def _run(tmp_path: Path, *args: str) -> pd.DataFrame:
    tmp_path.mkdir(parents=True, exist_ok=True)
    suite = tmp_path / "one.yaml"
    suite.write_text(SUITE)
    out = tmp_path / "results"
    result = runner.invoke(
        app, ["run", "--suite", str(suite), "--out", str(out), "--no-progress", "--device", "cpu", *args]
    )
    assert result.exit_code == 0, result.output
    return pd.concat([pd.read_parquet(p) for p in out.glob("one/*.parquet")])


def test_a_python_file_model_runs_and_its_hash_covers_the_weights_it_loads(tiny_model, tmp_path):
    import torch

    weights = _weights(tiny_model, tmp_path / "w.safetensors")
    factory = tmp_path / "net.py"
    factory.write_text(FACTORY.format(weights=str(weights)))
    first = _run(tmp_path / "a", "--model", f"{factory}:build")
    assert set(first["model"]) == {"net.py:build"}
    assert first["command"].iloc[0].startswith(f"bench run --model {factory}:build --suite")
    assert _run(tmp_path / "b", "--model", f"{factory}:build")["model_sha256"].iloc[0] == first["model_sha256"].iloc[0]
    with torch.no_grad():
        tiny_model.head.fc.bias.add_(1.0)  # other weights, the same file
    try:
        _weights(tiny_model, weights)
        changed = _run(tmp_path / "c", "--model", f"{factory}:build")
    finally:
        with torch.no_grad():
            tiny_model.head.fc.bias.sub_(1.0)
    assert changed["model_sha256"].iloc[0] != first["model_sha256"].iloc[0]


def test_a_missing_file_or_function_is_one_line(tmp_path):
    result = runner.invoke(app, ["run", "--model", str(tmp_path / "none.py"), "--suite", "cifar10-adv-quick"])
    assert (
        result.exit_code == 2 and result.output.strip().startswith("error: --model") and "no such file" in result.output
    )
    (tmp_path / "empty.py").write_text("x = 1\n")
    result = runner.invoke(
        app,
        [
            "run",
            "--model",
            f"{tmp_path / 'empty.py'}:build",
            "--suite",
            "cifar10-adv-quick",
            "--limit",
            "8",
            "--out",
            str(tmp_path / "r"),
            "--device",
            "cpu",
        ],
    )
    assert result.exit_code == 2 and "must define build()" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_a_private_zoo_is_searched_after_the_official_one_and_never_hides_it(tiny_model, tmp_path):
    private = tmp_path / "private"
    save_model(tiny_model, {**_card_for(tiny_model), "name": "private_tiny"}, private / "private_tiny")
    impostor = {**_card_for(tiny_model), "name": "standard_cnn", "dataset": "pets3"}
    save_model(tiny_model, impostor, private / "standard_cnn")
    rows = _run(tmp_path, "--model", "private_tiny", "--zoo", str(private))
    assert set(rows["model"]) == {"private_tiny"}
    assert zoo_folders()["private_tiny"] == private / "private_tiny"
    assert read_card("standard_cnn")["dataset"] == "cifar10"  # the official card, not the impostor
    assert zoo_folders()["standard_cnn"].parent.name == "model_zoo"


def test_ribench_zoo_is_a_path_list(tiny_model, tmp_path, monkeypatch):
    first, second = tmp_path / "z1", tmp_path / "z2"
    save_model(tiny_model, {**_card_for(tiny_model), "name": "tiny_one"}, first / "tiny_one")
    save_model(tiny_model, {**_card_for(tiny_model), "name": "tiny_two"}, second / "tiny_two")
    monkeypatch.setenv("RIBENCH_ZOO", os.pathsep.join([str(first), str(second)]))
    assert {"tiny_one", "tiny_two"} <= set(zoo_folders())
    assert cards.zoo_root() == first  # where new models go


def test_a_python_model_card_needs_only_what_is_true_of_it(tiny_model, tmp_path, monkeypatch):
    monkeypatch.setenv("RIBENCH_ZOO", str(tmp_path / "zoo"))
    weights = _weights(tiny_model, tmp_path / "w.safetensors")
    factory = tmp_path / "factory.py"
    factory.write_text(FACTORY.format(weights=str(weights)).replace("def build", "def create_model"))
    accuracy = _card_for(tiny_model)["clean_accuracy"]
    card = {
        "name": "tiny_py",
        "dataset": "cifar10",
        "num_classes": 10,
        "input_size": 32,
        "license": "MIT",
        "clean_accuracy": accuracy,
    }
    (tmp_path / "card.yaml").write_text(yaml.safe_dump(card))
    result = runner.invoke(app, ["zoo", "submit", str(factory), "--card", str(tmp_path / "card.yaml")])
    assert result.exit_code == 0, result.output
    assert "[ok] card schema" in result.output and "accepted" in result.output
    stored = read_card("tiny_py")
    assert "arch" not in stored and "head" not in stored and stored["factory"] == "model.py"


def test_zoo_fetch_puts_a_card_and_its_weights_in_the_user_cache(tiny_model, tmp_path, monkeypatch):
    import torch

    from bench.models.zoo import load_model

    monkeypatch.setenv("RIBENCH_CACHE", str(tmp_path / "cache"))
    served = save_model(tiny_model, {**_card_for(tiny_model), "name": "tiny_fetched"}, tmp_path / "server")
    card = yaml.safe_load((served / "card.yaml").read_text())
    (served / "card.yaml").write_text(yaml.safe_dump({**card, "url": card["weights"]}))  # relative to the card's URL
    result = runner.invoke(app, ["zoo", "fetch", (served / "card.yaml").as_uri()])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "cache" / "zoo" / "tiny_fetched" / "card.yaml").exists()
    (served / card["weights"]).unlink()  # the server is gone: the cache is enough
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(load_model("tiny_fetched")(x), tiny_model(x))


def test_zoo_fetch_refuses_weights_that_do_not_match_the_card(tiny_model, tmp_path, monkeypatch):
    monkeypatch.setenv("RIBENCH_CACHE", str(tmp_path / "cache"))
    served = save_model(tiny_model, {**_card_for(tiny_model), "name": "tiny_tampered"}, tmp_path / "server")
    card = yaml.safe_load((served / "card.yaml").read_text())
    card = {**card, "url": card["weights"], "sha256": "0" * 64}
    (served / "card.yaml").write_text(yaml.safe_dump(card))
    result = runner.invoke(app, ["zoo", "fetch", str(served / "card.yaml")])
    assert result.exit_code == 2 and result.output.startswith("error: refusing") and "sha256" in result.output
    assert not any((tmp_path / "cache" / "weights").iterdir())  # nothing half-downloaded is left
