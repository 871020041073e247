import numpy as np
import pytest
import torch
import yaml

from bench.models.failures import read_failures, stopped_text
from bench.models.zoo import load_model, verify_model
from bench.train import TrainConfig, augment, augment_batch, crop, cyclic_lr, train


@pytest.fixture
def tiny_cifar_root(tmp_path):
    rng = np.random.default_rng(0)
    for split, n in (("train", 64), ("test", 32)):
        y = np.arange(n) % 10
        x = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
        x[..., 0] = (y[:, None, None] * 25).astype(np.uint8)  # a learnable class signal in the red channel
        np.savez(tmp_path / f"cifar10_{split}.npz", x=x, y=y)
    return tmp_path


def test_cyclic_schedule_peaks_at_the_turn_and_ends_at_zero():
    assert cyclic_lr(0, 100, 0.2, 0.4) == 0.0
    assert cyclic_lr(40, 100, 0.2, 0.4) == pytest.approx(0.2)
    assert cyclic_lr(100, 100, 0.2, 0.4) == 0.0


def test_augment_keeps_shape_and_only_shifts_or_flips():
    x = torch.rand(8, 3, 32, 32)
    out = augment(x, 4, torch.Generator().manual_seed(0))
    assert out.shape == x.shape
    centre = out[:, :, 8:24, 8:24]
    assert centre.abs().sum() > 0 and out.max() <= x.max()


@pytest.mark.parametrize("method,hparams", [("standard", {}), ("topgap", {"k": 8, "num_maps": 2, "fpn_channels": 8})])
def test_train_writes_a_loadable_card_and_resumes(tiny_cifar_root, tmp_path, monkeypatch, method, hparams):
    monkeypatch.setenv("RIBENCH_ZOO", str(tmp_path / "zoo"))
    monkeypatch.chdir(tmp_path)
    cfg = TrainConfig(
        name=f"t_{method}",
        method=method,
        arch="tiny",
        epochs=2,
        batch_size=16,
        lr=0.05,
        bf16=False,
        data_root=str(tiny_cifar_root),
    )
    folder = train(cfg, hparams)
    card = yaml.safe_load((folder / "card.yaml").read_text())
    assert card["method"] == method and card["epochs"] == 2 and len(card["sha256"]) == 64
    assert card["clean_accuracy"]["n"] == 32 and card["clean_accuracy"]["split"] == "test"
    assert (tmp_path / "runs" / f"t_{method}" / "last.pt").exists()
    model = load_model(f"t_{method}")
    # resuming a finished run trains nothing more and reproduces the same weights
    again = load_model(train(cfg, hparams).name)
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(model(x), again(x))


def test_train_records_history_and_stops_a_collapsed_run(tiny_cifar_root, tmp_path, monkeypatch):
    from bench.train import TrainingCollapsed

    monkeypatch.setenv("RIBENCH_ZOO", str(tmp_path / "zoo"))
    monkeypatch.chdir(tmp_path)
    base = {"method": "standard", "arch": "tiny", "batch_size": 16, "lr": 0.05, "bf16": False}
    cfg = TrainConfig(name="t_hist", epochs=2, data_root=str(tiny_cifar_root), **base)
    card = yaml.safe_load((train(cfg, {}) / "card.yaml").read_text())
    assert [h["epoch"] for h in card["history"]] == [1, 2]
    assert card["training"] == "from scratch, 2 epochs" and "cores" in card["machine"]
    collapsed = TrainConfig(name="t_dead", epochs=3, abort_below=1.01, data_root=str(tiny_cifar_root), **base)
    with pytest.raises(TrainingCollapsed, match="after epoch 2"):
        train(collapsed, {})
    assert not (tmp_path / "zoo" / "t_dead").exists()
    record = read_failures(tmp_path / "zoo")["t_dead"]
    assert record["status"] == "collapsed" and record["stopped"]["epoch"] == 2
    assert [h["epoch"] for h in record["history"]] == [1, 2] and "clean_accuracy" not in record
    finished = TrainConfig(name="t_dead", epochs=1, data_root=str(tiny_cifar_root), **base)
    train(finished, {}, resume=False)
    assert "t_dead" not in read_failures(tmp_path / "zoo")  # the run of that name has now finished


def test_a_diverging_loss_stops_at_once_and_writes_nothing(tiny_cifar_root, tmp_path, monkeypatch):
    from bench.train import TrainingCollapsed

    monkeypatch.setenv("RIBENCH_ZOO", str(tmp_path / "zoo"))
    monkeypatch.chdir(tmp_path)
    cfg = TrainConfig(
        name="t_inf", method="topgap", arch="tiny", epochs=1, batch_size=16, bf16=False, data_root=str(tiny_cifar_root)
    )
    with pytest.raises(TrainingCollapsed, match="epoch 1, step 1"):
        train(cfg, {"k": 8, "num_maps": 2, "fpn_channels": 8, "lambda_l1": float("inf")})
    assert not (tmp_path / "zoo" / "t_inf").exists()
    record = read_failures(tmp_path / "zoo")["t_inf"]
    assert record["status"] == "diverged" and record["stopped"]["step"] == 1 and record["stopped"]["epoch"] == 1
    assert record["hyperparameters"]["lambda_l1"] == float("inf") and record["head_kwargs"]["k"] == 8
    assert stopped_text(record).startswith("diverged at epoch 1, step 1 (lr ")


def _loop_crop(padded, dy, dx, h, w):
    """The per-image crop that train.py used before the vectorised one (the reference)."""
    return torch.stack([p[:, y : y + h, x : x + w] for p, y, x in zip(padded, dy.tolist(), dx.tolist(), strict=True)])


@pytest.mark.parametrize("dtype", [torch.float32, torch.uint8])
def test_vectorised_crop_equals_the_per_image_loop_for_the_same_offsets(dtype):
    g = torch.Generator().manual_seed(1)
    padded = torch.randint(0, 256, (64, 3, 40, 40), generator=g).to(dtype)
    dy = torch.randint(0, 9, (64,), generator=g)
    dx = torch.randint(0, 9, (64,), generator=g)
    dy[:2], dx[:2] = torch.tensor([0, 8]), torch.tensor([8, 0])  # both extremes of the padding
    assert torch.equal(crop(padded, dy, dx, 32, 32), _loop_crop(padded, dy, dx, 32, 32))


def test_augmenting_uint8_then_scaling_equals_augmenting_floats():
    g = torch.Generator().manual_seed(2)
    raw = torch.randint(0, 256, (16, 3, 32, 32), dtype=torch.uint8, generator=g)
    dy, dx = torch.randint(0, 9, (16,), generator=g), torch.randint(0, 9, (16,), generator=g)
    flip = torch.rand(16, generator=g) < 0.5
    on_floats = augment_batch(raw.float() / 255, 4, dy, dx, flip)
    assert torch.equal(augment_batch(raw, 4, dy, dx, flip).float() / 255, on_floats)
    assert torch.equal(
        on_floats[flip], _loop_crop(torch.nn.functional.pad(raw.float() / 255, (4,) * 4), dy, dx, 32, 32)[flip].flip(-1)
    )


def test_paper_recipe_options_reach_the_card_optimizer_and_split_fp16_weights(tiny_cifar_root, tmp_path, monkeypatch):
    monkeypatch.setenv("RIBENCH_ZOO", str(tmp_path / "zoo"))
    monkeypatch.chdir(tmp_path)
    cfg = TrainConfig(
        name="t_recipe",
        arch="tiny",
        epochs=1,
        batch_size=16,
        lr=0.05,
        data_root=str(tiny_cifar_root),
        device="cpu",
        normalization="none",
        nesterov=False,
        limit=48,
        weights_dtype="float16",
        max_part_mib=0.05,  # the tiny net's ~60 KB of float16 weights in 2 parts
    )
    folder = train(cfg, {})
    card = yaml.safe_load((folder / "card.yaml").read_text())
    assert card["device"] == "cpu" and card["precision"] == "bf16-autocast" and "gpu" not in card
    assert card["normalization"] == "none" and card["hyperparameters"]["nesterov"] is False
    assert card["clean_accuracy"]["n"] == 32 and card["hyperparameters"]["limit"] == 48
    assert card["weights_dtype"] == "float16" and len(card["weights"]) == 2 == len(card["sha256_parts"])
    state = torch.load(tmp_path / "runs" / "t_recipe" / "last.pt", weights_only=True)
    assert state["optimizer"]["param_groups"][0]["nesterov"] is False
    assert [h["epoch"] for h in state["history"]] == [1]
    model = load_model("t_recipe")
    assert float(model.mean.abs().sum()) == 0.0 and bool((model.std == 1).all())
    assert all(p.dtype == torch.float32 for p in model.parameters()) and verify_model("t_recipe")[0]


def test_the_once_per_epoch_nonfinite_check_of_cuda_stops_the_run(tiny_cifar_root, tmp_path, monkeypatch):
    import bench.train
    from bench.train import TrainingCollapsed

    monkeypatch.setenv("RIBENCH_ZOO", str(tmp_path / "zoo"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(bench.train, "reads_each_step", lambda device: False)  # the CUDA loop, run on the CPU
    cfg = TrainConfig(
        name="t_inf_epoch",
        method="topgap",
        arch="tiny",
        epochs=2,
        batch_size=16,
        bf16=False,
        data_root=str(tiny_cifar_root),
    )
    with pytest.raises(TrainingCollapsed, match="non-finite in 4 of the 4 steps of epoch 1"):
        train(cfg, {"k": 8, "num_maps": 2, "fpn_channels": 8, "lambda_l1": float("inf")})
    assert (
        not (tmp_path / "runs" / "t_inf_epoch" / "last.pt").exists() and not (tmp_path / "zoo" / "t_inf_epoch").exists()
    )


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error of a machine without CUDA")
def test_device_cuda_without_cuda_is_one_line_and_exit_2(tiny_cifar_root):
    from typer.testing import CliRunner

    from bench.cli import app

    result = CliRunner().invoke(
        app, ["train", "--name", "t_nocuda", "--device", "cuda", "--data-root", str(tiny_cifar_root)]
    )
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == ["error: --device cuda: torch sees no CUDA device here"]


def test_a_tree_without_git_reports_the_commit_it_was_copied_from(tmp_path, monkeypatch):
    import bench.provenance as provenance

    monkeypatch.setattr(provenance, "REPO_ROOT", tmp_path)  # no .git here, as on a GPU machine's copy
    monkeypatch.setattr(provenance, "clone_root", lambda: tmp_path)
    monkeypatch.delenv("RIBENCH_GIT_COMMIT", raising=False)
    assert provenance.git_commit.__wrapped__() == "unknown"
    monkeypatch.setenv("RIBENCH_GIT_COMMIT", "0123abc+dirty")
    assert provenance.git_commit.__wrapped__() == "0123abc+dirty"


def test_a_run_resumed_on_another_machine_names_both_in_its_card(tiny_cifar_root, tmp_path, monkeypatch):
    import shutil

    from bench.provenance import machine

    monkeypatch.setenv("RIBENCH_ZOO", str(tmp_path / "zoo"))
    monkeypatch.chdir(tmp_path)
    cfg = TrainConfig(
        name="t_moved",
        method="standard",
        arch="tiny",
        epochs=2,
        batch_size=16,
        bf16=False,
        data_root=str(tiny_cifar_root),
    )
    card = yaml.safe_load((train(cfg, {}) / "card.yaml").read_text())
    assert card["machine"] == machine() and [h["machine"] for h in card["history"]] == [machine()] * 2
    checkpoint = tmp_path / "runs" / "t_moved" / "last.pt"
    state = torch.load(checkpoint, weights_only=True)
    state["history"][0]["machine"] = "Other CPU, 2 cores"  # epoch 1 ran elsewhere before the resume
    torch.save(state, checkpoint)
    shutil.rmtree(tmp_path / "zoo" / "t_moved")
    card = yaml.safe_load((train(cfg, {}) / "card.yaml").read_text())
    assert card["machine"] == f"Other CPU, 2 cores (epoch 1); {machine()} (epoch 2)"
