import numpy as np
import pytest
import torch
import yaml

from bench.models.zoo import load_model
from bench.train import TrainConfig, augment, cyclic_lr, train


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
