import copy

import pytest
import torch
import yaml

from bench.models.classifier import build_classifier
from bench.models.submit import check_outputs, validate_submission
from bench.models.zoo import WEIGHTS_FILE, ChecksumError, load_model, save_model, verify_model

CARD = {
    "name": "tiny_submitted",
    "method": "standard",
    "arch": "tiny",
    "head": "gap",
    "head_kwargs": {},
    "dataset": "cifar10",
    "num_classes": 10,
    "input_size": 32,
    "normalization": "cifar10",
    "hyperparameters": {"epochs": 4},
    "sha256": "",
    "license": "MIT",
    "clean_accuracy": {"value": 0.0},
}


@pytest.fixture
def zoo(tmp_path, monkeypatch):
    monkeypatch.setenv("RIBENCH_ZOO", str(tmp_path / "zoo"))
    return tmp_path / "zoo"


def _smoke_accuracy(model) -> float:
    from bench.data.cifar import embedded_sample

    data = embedded_sample()
    batch = data.batch(torch.linspace(0, 999, 100).long())
    with torch.no_grad():
        return float((model(batch.x).argmax(1) == batch.y).float().mean())


def _card_for(model) -> dict:
    card = copy.deepcopy(CARD)
    card["clean_accuracy"]["value"] = _smoke_accuracy(model)
    return card


def _assert_same_outputs(loaded, reference) -> None:
    x = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    assert not loaded.training
    with torch.no_grad():
        assert torch.equal(loaded(x), reference(x))


def test_saved_model_loads_by_name_and_checksum_mismatch_is_refused(tiny_model, zoo):
    folder = save_model(tiny_model, _card_for(tiny_model))
    loaded = load_model("tiny_submitted")
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(loaded(x), tiny_model(x))
    assert verify_model("tiny_submitted")[0]
    with open(folder / WEIGHTS_FILE, "r+b") as f:  # flip one byte near the end (a weight, not the header)
        f.seek(-3, 2)
        byte = f.read(1)
        f.seek(-3, 2)
        f.write(bytes([byte[0] ^ 1]))
    with pytest.raises(ChecksumError, match="refusing to load"):
        load_model("tiny_submitted")
    assert not verify_model("tiny_submitted")[0]


def test_valid_submission_passes_every_check(tiny_model, tmp_path, zoo):
    from safetensors.torch import save_file

    path = tmp_path / "w.safetensors"
    save_file({k: v.contiguous() for k, v in tiny_model.state_dict().items()}, str(path))
    model, checks = validate_submission(path, _card_for(tiny_model))
    assert model is not None and all(c.passed for c in checks), [str(c) for c in checks]


def test_submission_with_wrong_claimed_accuracy_fails_the_smoke_check(tiny_model, tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "w.safetensors"
    save_file({k: v.contiguous() for k, v in tiny_model.state_dict().items()}, str(path))
    card = _card_for(tiny_model)
    card["clean_accuracy"]["value"] = 0.95
    _, checks = validate_submission(path, card)
    failed = {c.name for c in checks if not c.passed}
    assert failed == {"smoke accuracy"}


class ConstantLogits(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.bias = torch.nn.Parameter(torch.zeros(10))

    def forward(self, x):
        return self.bias.expand(len(x), 10) + 0 * x.flatten(1)[:, :1]


class NoisyLogits(torch.nn.Module):
    def forward(self, x):
        return x.flatten(1)[:, :10] + torch.randn(len(x), 10)


def test_model_with_all_zero_gradients_is_flagged():
    checks = {c.name: c for c in check_outputs(ConstantLogits(), CARD)}
    assert not checks["input gradients"].passed and "0%" in checks["input gradients"].detail
    assert checks["deterministic"].passed


def test_nondeterministic_and_wrong_class_count_models_are_flagged():
    checks = {c.name: c for c in check_outputs(NoisyLogits(), CARD)}
    assert not checks["deterministic"].passed
    wrong = {c.name: c for c in check_outputs(build_classifier("tiny", 7).eval(), CARD)}
    assert not wrong["logits"].passed and "(8, 10)" in wrong["logits"].detail


def test_card_schema_problems_are_named(tmp_path):
    bad = {k: v for k, v in CARD.items() if k != "num_classes"}
    bad["input_size"] = "32"
    _, checks = validate_submission(tmp_path / "w.safetensors", bad)
    assert "missing key 'num_classes'" in checks[0].detail and "'input_size' must be int" in checks[0].detail


def test_cli_submit_accepts_a_python_factory(tiny_model, tmp_path, zoo):
    from typer.testing import CliRunner

    from bench.cli import app

    weights = tmp_path / "w.safetensors"
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in tiny_model.state_dict().items()}, str(weights))
    factory = tmp_path / "factory.py"
    factory.write_text(
        "from safetensors.torch import load_file\n"
        "from bench.models.classifier import build_classifier\n"
        "import tests.conftest  # registers the 'tiny' arch\n"
        "def create_model():\n"
        "    m = build_classifier('tiny', 10)\n"
        f"    m.load_state_dict(load_file({str(weights)!r}))\n"
        "    return m\n"
    )
    card_path = tmp_path / "card.yaml"
    card_path.write_text(yaml.safe_dump({**_card_for(tiny_model), "name": "tiny_factory"}))
    result = CliRunner().invoke(app, ["zoo", "submit", str(factory), "--card", str(card_path)])
    assert result.exit_code == 0, result.output
    assert "[ok] smoke accuracy" in result.output and "accepted" in result.output
    assert (zoo / "tiny_factory" / "model.py").exists()
    _assert_same_outputs(load_model("tiny_factory"), tiny_model)


def test_url_card_loads_from_the_cache_offline_and_names_the_url_when_absent(tiny_model, zoo, tmp_path, monkeypatch):
    import shutil

    monkeypatch.setenv("RIBENCH_CACHE", str(tmp_path / "cache"))
    folder = save_model(tiny_model, {**_card_for(tiny_model), "name": "tiny_remote"})
    card = yaml.safe_load((folder / "card.yaml").read_text())
    card["url"] = "https://example.org/tiny_remote.safetensors"
    (folder / "card.yaml").write_text(yaml.safe_dump(card))
    cached = tmp_path / "cache" / "weights" / f"tiny_remote-{card['sha256'][:16]}.safetensors"
    cached.parent.mkdir(parents=True)
    shutil.move(folder / WEIGHTS_FILE, cached)
    _assert_same_outputs(load_model("tiny_remote"), tiny_model)
    cached.unlink()
    with pytest.raises(FileNotFoundError, match="example.org"):
        load_model("tiny_remote")
