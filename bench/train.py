"""``bench train``: one loop for every method; resumable, with a card written at the end."""

from __future__ import annotations

import contextlib
import math
import shlex
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

import bench
from bench.data import ImageDataset, load_dataset
from bench.exceptions import TrainingCollapsed
from bench.methods import METHODS
from bench.models.classifier import Classifier, build_classifier
from bench.models.zoo import save_model, zoo_root
from bench.provenance import git_commit, machine, utc_now
from bench.registry import ARCHS, DATASETS


@dataclass
class TrainConfig:
    name: str
    method: str = "standard"
    arch: str = "cnn"
    dataset: str = "cifar10"
    epochs: int = 15
    batch_size: int = 256
    lr: float = 0.2
    weight_decay: float = 5e-4
    momentum: float = 0.9
    warmup_fraction: float = 0.4
    seed: int = 0
    bf16: bool = True
    data_root: str | None = None
    init_from: str | None = None
    eval_split: str = "test"
    abort_below: float = 0.0  # stop when an epoch's training accuracy is below this (a collapsed run), from epoch 2


def augment(images: torch.Tensor, pad: int, generator: torch.Generator) -> torch.Tensor:
    """Random crop with zero padding + horizontal flip, on a float batch (B, 3, H, W)."""
    b, _, h, w = images.shape
    padded = F.pad(images, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (b,), generator=generator)
    dx = torch.randint(0, 2 * pad + 1, (b,), generator=generator)
    out = _crop(padded, dy, dx, h, w)
    flip = torch.rand(b, generator=generator) < 0.5
    out[flip] = out[flip].flip(-1)
    return out


def _crop(padded: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor, h: int, w: int) -> torch.Tensor:
    return torch.stack([p[:, y : y + h, x : x + w] for p, y, x in zip(padded, dy.tolist(), dx.tolist(), strict=True)])


def _normalization(arch: str) -> str:
    return ARCHS.entry(arch).meta.get("normalization", "imagenet")


def cyclic_lr(step: int, total: int, peak: float, warmup_fraction: float) -> float:
    """Linear 0 -> peak over the warm-up fraction, then linear to 0 (the GradAlign 'cyclic' schedule)."""
    turn = warmup_fraction * total
    return peak * step / turn if step < turn else peak * max(0.0, (total - step) / (total - turn))


def autocast(enabled: bool) -> contextlib.AbstractContextManager:
    return torch.autocast("cpu", dtype=torch.bfloat16) if enabled else contextlib.nullcontext()


@torch.inference_mode()
def evaluate_accuracy(model: torch.nn.Module, data: ImageDataset, batch_size: int = 500) -> float:
    model.eval()
    correct = 0
    for batch in data.batches(batch_size):
        correct += int((model(batch.x).argmax(1) == batch.y).sum())
    return correct / len(data)


def _checkpoint_path(cfg: TrainConfig) -> Path:
    return Path("runs") / cfg.name / "last.pt"


def _load_checkpoint(path: Path, model: Classifier, opt: torch.optim.Optimizer) -> tuple[int, float, list[dict]]:
    state = torch.load(path, weights_only=True)  # our own file; weights_only keeps it unpickle-free
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["optimizer"])
    return int(state["epoch"]), float(state["wall_seconds"]), list(state.get("history", []))


def _init_backbone(model: Classifier, zoo_name: str) -> list[str]:
    """Start from another zoo model (fine-tuning): every backbone tensor, and the head where it fits.

    Wrapping backbones (ISVS's ``body.``) and extended ones (ERSM's energy mask) take the source's tensors under
    the matching name; the head is copied only when its tensors all match in name and shape (same head, same
    classes), so CIFAR-10 -> pets3 keeps a fresh head. Returns the parts that were copied, for the card.
    """
    from bench.models.zoo import load_model

    source = load_model(zoo_name)
    _copy_matching(source.backbone.state_dict(), model.backbone, zoo_name, "backbone")
    copied = ["backbone"]
    head_src, head_dst = source.head.state_dict(), model.head.state_dict()
    if head_src.keys() == head_dst.keys() and all(head_src[k].shape == head_dst[k].shape for k in head_src):
        model.head.load_state_dict(head_src)
        copied.append("head")
    return copied


def _copy_matching(source: dict[str, torch.Tensor], target: torch.nn.Module, zoo_name: str, part: str) -> None:
    target_state = target.state_dict()
    mapped = {}
    for key, tensor in source.items():
        name = next((k for k in (key, f"body.{key}") if k in target_state), None)
        if name is None or target_state[name].shape != tensor.shape:
            raise ValueError(f"--init-from {zoo_name}: its {part} tensor '{key}' has no same-shape match here")
        mapped[name] = tensor
    target.load_state_dict(mapped, strict=False)


def train(cfg: TrainConfig, hparams: dict, resume: bool = True) -> Path:
    git_commit()  # cached now: the card records the commit the run started from
    torch.manual_seed(cfg.seed)
    method = METHODS.create(cfg.method, **hparams)
    method.configure_for(cfg.arch)
    meta = DATASETS.entry(cfg.dataset).meta
    train_split = "trainval" if cfg.dataset == "pets3" else "train"
    train_data = load_dataset(cfg.dataset, train_split, cfg.data_root)
    test_data = load_dataset(cfg.dataset, cfg.eval_split, cfg.data_root)
    model = build_classifier(
        cfg.arch,
        meta["num_classes"],
        method.head,
        _normalization(cfg.arch),
        **method.head_kwargs(),
    )
    initialized = _init_backbone(model, cfg.init_from) if cfg.init_from else []
    model = model.to(memory_format=torch.channels_last)
    decay = [p for n, p in model.named_parameters() if p.ndim > 1]
    no_decay = [p for n, p in model.named_parameters() if p.ndim <= 1]
    opt = torch.optim.SGD(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=0.0,
        momentum=cfg.momentum,
        nesterov=True,
    )
    ckpt = _checkpoint_path(cfg)
    start_epoch, wall, history = _load_checkpoint(ckpt, model, opt) if resume and ckpt.exists() else (0, 0.0, [])
    steps_per_epoch = math.ceil(len(train_data) / cfg.batch_size)
    total = cfg.epochs * steps_per_epoch
    generator = torch.Generator().manual_seed(cfg.seed)
    pad = max(4, train_data.images.shape[1] // 8)
    for epoch in range(start_epoch, cfg.epochs):
        generator.manual_seed(cfg.seed * 1000 + epoch)  # resume-stable shuffling/augmentation
        stats = _train_epoch(model, method, opt, train_data, cfg, epoch, steps_per_epoch, total, pad, generator)
        wall += stats["seconds"]
        history.append({"epoch": epoch + 1, **stats})
        ckpt.parent.mkdir(parents=True, exist_ok=True)
        state = {
            "model": model.state_dict(),
            "optimizer": opt.state_dict(),
            "epoch": epoch + 1,
            "wall_seconds": wall,
            "history": history,
        }
        torch.save(state, ckpt.with_suffix(".tmp"))
        ckpt.with_suffix(".tmp").replace(ckpt)
        if epoch >= 1 and stats["train_accuracy"] < cfg.abort_below:
            raise TrainingCollapsed(
                f"{cfg.name}: training accuracy {stats['train_accuracy']:.3f} after epoch {epoch + 1} is below "
                f"--abort-below {cfg.abort_below}; stopped (checkpoint kept in {ckpt})"
            )
    accuracy = evaluate_accuracy(model, test_data)
    print(f"{cfg.name}: clean accuracy {accuracy:.4f} on {cfg.dataset} {test_data.split} (n={len(test_data)})")
    card = _card(cfg, method, model, accuracy, test_data, wall, hparams)
    card["history"] = history
    if cfg.init_from:
        card["initialized_from"] = {"model": cfg.init_from, "parts": initialized}
    return save_model(model, card, zoo_root() / cfg.name)


def _train_epoch(model, method, opt, data, cfg, epoch, steps_per_epoch, total, pad, generator) -> dict[str, float]:
    model.train()
    order = torch.randperm(len(data), generator=generator)
    start = time.perf_counter()
    seen = correct = 0
    loss_sum = 0.0
    bar = tqdm(range(steps_per_epoch), desc=f"{cfg.name} epoch {epoch + 1}/{cfg.epochs}", unit="batch", file=sys.stderr)
    for i in bar:
        batch = data.batch(order[i * cfg.batch_size : (i + 1) * cfg.batch_size])
        x = augment(batch.x, pad, generator).contiguous(memory_format=torch.channels_last)
        for group in opt.param_groups:
            group["lr"] = cyclic_lr(epoch * steps_per_epoch + i, total, cfg.lr, cfg.warmup_fraction)
        with autocast(cfg.bf16):
            loss, logits = method.loss(model, x, batch.y)
        if not torch.isfinite(loss.detach()):
            raise TrainingCollapsed(
                f"{cfg.name}: the loss became {float(loss)} at epoch {epoch + 1}, step {i + 1} "
                f"(lr {opt.param_groups[0]['lr']:.2e}); stopped, no zoo entry written"
            )
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        seen += len(x)
        correct += int((logits.argmax(1) == batch.y).sum())
        loss_sum += float(loss.detach()) * len(x)
        elapsed = time.perf_counter() - start
        bar.set_postfix(loss=f"{loss_sum / seen:.3f}", acc=f"{correct / seen:.3f}", img_s=f"{seen / elapsed:.0f}")
    seconds = time.perf_counter() - start
    return {
        "seconds": round(seconds, 1),
        "train_loss": round(loss_sum / seen, 4),
        "train_accuracy": round(correct / seen, 4),
    }


def _card(cfg, method, model, accuracy, test_data, wall, hparams) -> dict:
    n_params = sum(p.numel() for p in model.parameters())
    return {
        "name": cfg.name,
        "method": cfg.method,
        "arch": cfg.arch,
        "head": method.head,
        "head_kwargs": method.head_kwargs(),
        "dataset": cfg.dataset,
        "num_classes": test_data.num_classes,
        "input_size": int(test_data.images.shape[1]),
        "normalization": _normalization(cfg.arch),
        "parameters": n_params,
        "hyperparameters": {**asdict(cfg), **method.hparams, **hparams, "data_root": None},
        "arch_config": model.backbone.config() if hasattr(model.backbone, "config") else {},
        "training_command": "bench train " + shlex.join(sys.argv[2:])
        if sys.argv[1:2] == ["train"]
        else shlex.join(sys.argv),
        "seed": cfg.seed,
        "epochs": cfg.epochs,
        "wall_seconds": round(wall, 1),
        "precision": "bf16-autocast" if cfg.bf16 else "fp32",
        "training": f"fine-tuned {cfg.epochs} epochs from {cfg.init_from}"
        if cfg.init_from
        else f"from scratch, {cfg.epochs} epochs",
        "device": "cpu",
        "machine": machine(),
        "package_version": bench.__version__,
        "git_commit": git_commit(),
        "trained_at": utc_now(),
        "clean_accuracy": {
            "value": round(accuracy, 4),
            "dataset": cfg.dataset,
            "split": test_data.split,
            "n": len(test_data),
        },
        "license": "MIT (weights); data license per dataset card",
    }
