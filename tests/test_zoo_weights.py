"""Zoo weights in float16 and in byte parts (bench.models.weights): the forms a GPU machine's return channel takes."""

import hashlib

import pytest
import torch
import yaml
from safetensors.torch import load, save_file

from bench.models.zoo import ChecksumError, load_model, save_model, verify_model

CARD = {
    "name": "tiny_parts",
    "method": "standard",
    "arch": "tiny",
    "head": "gap",
    "head_kwargs": {},
    "dataset": "cifar10",
    "num_classes": 10,
    "input_size": 32,
    "normalization": "cifar10",
    "hyperparameters": {},
    "license": "MIT",
}
PART_BYTES = 40_000  # the tiny CNN (27k parameters): ~55 KB in float16 -> 2 parts


@pytest.fixture
def zoo(tmp_path, monkeypatch):
    monkeypatch.setenv("RIBENCH_ZOO", str(tmp_path / "zoo"))
    return tmp_path / "zoo"


def _card(folder) -> dict:
    return yaml.safe_load((folder / "card.yaml").read_text())


def _flip_last_byte(path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.write_bytes(bytes(data))


def test_a_float32_single_file_keeps_the_zoo_s_usual_form(tiny_model, zoo, tmp_path):
    folder = save_model(tiny_model, dict(CARD))
    card = _card(folder)
    save_file({k: v.contiguous() for k, v in tiny_model.state_dict().items()}, str(tmp_path / "plain.safetensors"))
    assert card["weights"] == "weights.safetensors" and "sha256_parts" not in card and "weights_dtype" not in card
    assert (folder / "weights.safetensors").read_bytes() == (tmp_path / "plain.safetensors").read_bytes()
    assert card["sha256"] == hashlib.sha256((folder / "weights.safetensors").read_bytes()).hexdigest()


def test_float16_parts_load_back_as_the_float32_model_rounded_through_float16(tiny_model, zoo):
    folder = save_model(tiny_model, dict(CARD), weights_dtype="float16", max_part_bytes=PART_BYTES)
    card = _card(folder)
    parts = [folder / name for name in card["weights"]]
    assert card["weights_dtype"] == "float16" and len(parts) == 2 and not (folder / "weights.safetensors").exists()
    assert all(p.stat().st_size <= PART_BYTES for p in parts)
    joined = b"".join(p.read_bytes() for p in parts)
    assert hashlib.sha256(joined).hexdigest() == card["sha256"]  # one identity for the model, whatever the parts
    assert load(joined)["backbone.stage1.0.0.weight"].dtype == torch.float16
    loaded = load_model("tiny_parts").state_dict()
    for key, tensor in tiny_model.state_dict().items():
        expected = tensor.half().float() if tensor.is_floating_point() else tensor
        assert loaded[key].dtype == tensor.dtype and torch.equal(loaded[key], expected), key
    ok, message = verify_model("tiny_parts")
    assert ok and "2 parts" in message


def test_a_tampered_or_missing_part_is_refused_and_named(tiny_model, zoo):
    folder = save_model(tiny_model, dict(CARD), weights_dtype="float16", max_part_bytes=PART_BYTES)
    _flip_last_byte(folder / "weights.safetensors.part-01")
    with pytest.raises(ChecksumError, match="part-01"):
        load_model("tiny_parts")
    ok, message = verify_model("tiny_parts")
    assert not ok and "part-01" in message
    (folder / "weights.safetensors.part-01").unlink()
    ok, message = verify_model("tiny_parts")
    assert not ok and "missing" in message


def test_parts_whose_card_digests_were_edited_to_match_still_fail_the_whole_file_check(tiny_model, zoo):
    folder = save_model(tiny_model, dict(CARD), max_part_bytes=PART_BYTES)
    card = _card(folder)
    part = folder / card["weights"][0]
    _flip_last_byte(part)
    card["sha256_parts"][part.name] = hashlib.sha256(part.read_bytes()).hexdigest()
    (folder / "card.yaml").write_text(yaml.safe_dump(card))
    with pytest.raises(ChecksumError, match="joined parts"):
        load_model("tiny_parts")


def test_bench_zoo_verify_checks_every_part(tiny_model, zoo):
    from typer.testing import CliRunner

    from bench.cli import app

    folder = save_model(tiny_model, dict(CARD), weights_dtype="float16", max_part_bytes=PART_BYTES)
    result = CliRunner().invoke(app, ["zoo", "verify", "tiny_parts"])
    assert result.exit_code == 0 and "2 parts, each checked" in result.output
    _flip_last_byte(folder / "weights.safetensors.part-00")
    result = CliRunner().invoke(app, ["zoo", "verify", "tiny_parts"])
    assert result.exit_code == 1 and "part-00" in result.output


def test_saving_again_in_another_form_leaves_no_stale_weights(tiny_model, zoo):
    folder = save_model(tiny_model, dict(CARD), weights_dtype="float16", max_part_bytes=PART_BYTES)
    save_model(tiny_model, dict(CARD))
    assert sorted(p.name for p in folder.iterdir()) == ["card.yaml", "weights.safetensors"]
    assert verify_model("tiny_parts")[0]


def test_weights_beyond_float16_range_are_refused(zoo):
    from bench.models.classifier import build_classifier

    model = build_classifier("tiny", 10)
    with torch.no_grad():
        model.head.fc.bias[0] = 1e6
    with pytest.raises(ValueError, match="head.fc.bias.*float16"):
        save_model(model, dict(CARD), weights_dtype="float16")
