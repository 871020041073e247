"""``bench train``: one loop for every method; resumable, with a card written at the end.

The same loop runs on the CPU and on CUDA. The training split lives on the training device as uint8 (CIFAR-10's is
150 MB), batches are gathered, cropped and flipped there (``augment_batch``, vectorised), and the model runs
channels_last under bf16 autocast. Shuffling and augmentation offsets are drawn on the CPU once per epoch from a
per-epoch seed, so a resumed run and a CPU or CUDA run see the same order and offsets.

On CUDA nothing inside an epoch waits for the GPU: loss and accuracy are summed as device tensors and read once per
epoch, so a non-finite loss is caught at the end of the epoch it happened in (the per-epoch read), not at its step.
On the CPU, where a read costs nothing, every step is checked and the progress bar shows running loss and accuracy.
"""

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
from bench.models.failures import forget_failure, record_failure
from bench.models.weights import round_trip
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
    device: str = "cpu"
    normalization: str | None = None  # None: the arch's registry default; "none" feeds [0, 1] pixels unchanged
    nesterov: bool = True
    limit: int | None = None  # only the first N images of the train and evaluation splits (rehearsals, tests)
    weights_dtype: str = "float32"  # float16 halves the weights file; the card's accuracy is measured after rounding
    max_part_mib: float | None = None  # cut the weights file into parts of at most this size


@dataclass
class Offsets:
    """One epoch's random draws, indexed by position in the epoch: shuffled order, crop offsets, flips."""

    order: torch.Tensor
    dy: torch.Tensor
    dx: torch.Tensor
    flip: torch.Tensor

    @classmethod
    def draw(cls, n: int, pad: int, generator: torch.Generator) -> Offsets:
        """Draw on the CPU generator, so every device sees the same numbers for the same seed.

        Example:
            >>> Offsets.draw(4, 4, torch.Generator().manual_seed(0)).dy.shape
            torch.Size([4])
        """
        order = torch.randperm(n, generator=generator)
        dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
        dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
        return cls(order, dy, dx, torch.rand(n, generator=generator) < 0.5)

    def to(self, device: torch.device) -> Offsets:
        return Offsets(*(t.to(device, non_blocking=True) for t in (self.order, self.dy, self.dx, self.flip)))


def crop(padded: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Cut an (h, w) window at per-image offsets (dy, dx) out of a padded batch (B, C, H, W), in one gather.

    Works for any dtype on any device; ``dy`` and ``dx`` are integer tensors on the batch's device.

    Example:
        >>> crop(torch.arange(16.0).view(1, 1, 4, 4), torch.tensor([1]), torch.tensor([2]), 2, 2)[0, 0]
        tensor([[ 6.,  7.],
                [10., 11.]])
    """
    b, c = padded.shape[:2]
    rows = dy[:, None] + torch.arange(h, device=padded.device)  # (B, h)
    cols = dx[:, None] + torch.arange(w, device=padded.device)  # (B, w)
    batch = torch.arange(b, device=padded.device)[:, None, None, None]
    channel = torch.arange(c, device=padded.device)[None, :, None, None]
    return padded[batch, channel, rows[:, None, :, None], cols[:, None, None, :]]


def augment_batch(
    images: torch.Tensor, pad: int, dy: torch.Tensor, dx: torch.Tensor, flip: torch.Tensor
) -> torch.Tensor:
    """Random crop with zero padding + horizontal flip of a (B, C, H, W) batch, at the given offsets and flips.

    Example:
        >>> x = torch.rand(2, 3, 32, 32)
        >>> torch.equal(augment_batch(x, 4, torch.tensor([4, 4]), torch.tensor([4, 4]), torch.tensor([False] * 2)), x)
        True
    """
    h, w = images.shape[-2:]
    out = crop(F.pad(images, (pad, pad, pad, pad)), dy, dx, h, w)
    return torch.where(flip[:, None, None, None], out.flip(-1), out)


def augment(images: torch.Tensor, pad: int, generator: torch.Generator) -> torch.Tensor:
    """Random crop with zero padding + horizontal flip of a (B, 3, H, W) batch, offsets drawn from ``generator``.

    Example:
        >>> augment(torch.rand(8, 3, 32, 32), 4, torch.Generator().manual_seed(0)).shape
        torch.Size([8, 3, 32, 32])
    """
    b = len(images)
    dy = torch.randint(0, 2 * pad + 1, (b,), generator=generator)
    dx = torch.randint(0, 2 * pad + 1, (b,), generator=generator)
    flip = torch.rand(b, generator=generator) < 0.5
    return augment_batch(images, pad, dy.to(images.device), dx.to(images.device), flip.to(images.device))


@dataclass
class ResidentData:
    """A training split on the training device: uint8 images (N, C, H, W) and labels, gathered there per batch."""

    images: torch.Tensor
    labels: torch.Tensor

    @classmethod
    def of(cls, data: ImageDataset, device: torch.device) -> ResidentData:
        images = data.images.to(device).permute(0, 3, 1, 2).contiguous()
        return cls(images, data.labels.to(device))

    def __len__(self) -> int:
        return len(self.labels)

    def batch(self, offsets: Offsets, start: int, size: int, pad: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Augmented float batch in [0, 1] (channels_last) and its labels, for epoch positions [start, start+size)."""
        index = offsets.order[start : start + size]
        window = slice(start, start + size)
        x = augment_batch(self.images[index], pad, offsets.dy[window], offsets.dx[window], offsets.flip[window])
        return x.float().div_(255).contiguous(memory_format=torch.channels_last), self.labels[index]


def _normalization(cfg: TrainConfig) -> str:
    """``--normalization`` when given, else the arch's registry default (prn18 and cnn: cifar10)."""
    return cfg.normalization or ARCHS.entry(cfg.arch).meta.get("normalization", "imagenet")


def cyclic_lr(step: int, total: int, peak: float, warmup_fraction: float) -> float:
    """Linear 0 -> peak over the warm-up fraction, then linear to 0 (the GradAlign 'cyclic' schedule)."""
    turn = warmup_fraction * total
    return peak * step / turn if step < turn else peak * max(0.0, (total - step) / (total - turn))


def autocast(enabled: bool, device_type: str = "cpu") -> contextlib.AbstractContextManager:
    return torch.autocast(device_type, dtype=torch.bfloat16) if enabled else contextlib.nullcontext()


def training_device(name: str) -> torch.device:
    """``cpu`` or ``cuda``; CUDA must be visible.

    Example:
        >>> training_device("cpu")
        device(type='cpu')
    """
    if name not in ("cpu", "cuda"):
        raise ValueError(f"device must be cpu or cuda, not '{name}'")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda: torch sees no CUDA device here; use --device cpu")
    return torch.device(name)


@torch.inference_mode()
def evaluate_accuracy(
    model: torch.nn.Module, data: ImageDataset, batch_size: int = 500, device: torch.device | str = "cpu"
) -> float:
    model.eval()
    correct = torch.zeros((), dtype=torch.long, device=device)
    for batch in data.batches(batch_size):
        correct += (model(batch.x.to(device)).argmax(1) == batch.y.to(device)).sum()
    return int(correct) / len(data)


def _checkpoint_path(cfg: TrainConfig) -> Path:
    return Path("runs") / cfg.name / "last.pt"


def _load_checkpoint(path: Path, model: Classifier, opt: torch.optim.Optimizer) -> tuple[int, float, list[dict]]:
    device = next(model.parameters()).device
    state = torch.load(path, weights_only=True, map_location=device)  # our own file; weights_only: unpickle-free
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
    device = training_device(cfg.device)
    torch.manual_seed(cfg.seed)
    method = METHODS.create(cfg.method, **hparams)
    method.configure_for(cfg.arch)
    meta = DATASETS.entry(cfg.dataset).meta
    train_split = "trainval" if cfg.dataset == "pets3" else "train"
    train_data = first_images(load_dataset(cfg.dataset, train_split, cfg.data_root), cfg.limit)
    test_data = first_images(load_dataset(cfg.dataset, cfg.eval_split, cfg.data_root), cfg.limit)
    model = build_classifier(
        cfg.arch,
        meta["num_classes"],
        method.head,
        _normalization(cfg),
        **method.head_kwargs(),
    )
    initialized = _init_backbone(model, cfg.init_from) if cfg.init_from else []
    model = model.to(device, memory_format=torch.channels_last)
    opt = _optimizer(model, cfg)
    ckpt = _checkpoint_path(cfg)
    start_epoch, wall, history = _load_checkpoint(ckpt, model, opt) if resume and ckpt.exists() else (0, 0.0, [])
    resident = ResidentData.of(train_data, device)
    generator = torch.Generator().manual_seed(cfg.seed)
    pad = max(4, train_data.images.shape[1] // 8)
    torch.backends.cudnn.benchmark = device.type == "cuda"  # fixed shapes: pick the fastest conv kernels once
    try:
        wall = _run_epochs(model, method, opt, resident, cfg, start_epoch, wall, history, generator, pad, ckpt)
    except TrainingCollapsed as stopped:
        record_failure(_card(cfg, method, model, None, test_data, wall, hparams, history), stopped, history)
        raise
    forget_failure(cfg.name)
    if cfg.weights_dtype != "float32":
        round_trip(model, cfg.weights_dtype)  # the card's accuracy is that of the weights as stored
    accuracy = evaluate_accuracy(model, test_data, device=device)
    print(f"{cfg.name}: clean accuracy {accuracy:.4f} on {cfg.dataset} {test_data.split} (n={len(test_data)})")
    card = _card(cfg, method, model, accuracy, test_data, wall, hparams, history)
    card["history"] = history
    if cfg.init_from:
        card["initialized_from"] = {"model": cfg.init_from, "parts": initialized}
    part_bytes = int(cfg.max_part_mib * (1 << 20)) if cfg.max_part_mib else None
    return save_model(model, card, zoo_root() / cfg.name, weights_dtype=cfg.weights_dtype, max_part_bytes=part_bytes)


def _run_epochs(model, method, opt, resident, cfg, start_epoch, wall, history, generator, pad, ckpt) -> float:
    """Train the remaining epochs with a checkpoint after each; return the total wall time in seconds."""
    device = next(model.parameters()).device
    steps_per_epoch = math.ceil(len(resident) / cfg.batch_size)
    total = cfg.epochs * steps_per_epoch
    for epoch in range(start_epoch, cfg.epochs):
        generator.manual_seed(cfg.seed * 1000 + epoch)  # resume-stable shuffling/augmentation
        offsets = Offsets.draw(len(resident), pad, generator).to(device)
        stats = _train_epoch(model, method, opt, resident, offsets, cfg, epoch, steps_per_epoch, total, pad)
        wall += stats["seconds"]
        history.append({"epoch": epoch + 1, **stats, "machine": machine()})
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
                f"--abort-below {cfg.abort_below}; stopped (checkpoint kept in {ckpt})",
                kind="collapsed",
                where={"epoch": epoch + 1, "train_accuracy": stats["train_accuracy"]},
            )
    return wall


def first_images(data: ImageDataset, limit: int | None) -> ImageDataset:
    """The first ``limit`` examples of a dataset (all when None), with the split named ``split[:limit]``.

    Example:
        >>> first_images(embedded_sample(), 10).split
        'test[balanced-1000][:10]'
    """
    if limit is None or limit >= len(data):
        return data
    cut = lambda t: None if t is None else t[:limit].numpy()  # noqa: E731
    return ImageDataset(
        data.name,
        f"{data.split}[:{limit}]",
        cut(data.images),
        cut(data.labels),
        data.classes,
        masks=cut(data.masks),
        groups=cut(data.groups),
        source=data.source,
    )


def _optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.SGD:
    """SGD with weight decay on weights only (not biases and BN), momentum and, unless disabled, Nesterov."""
    decay = [p for p in model.parameters() if p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.ndim <= 1]
    return torch.optim.SGD(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=0.0,
        momentum=cfg.momentum,
        nesterov=cfg.nesterov,
    )


def reads_each_step(device: torch.device) -> bool:
    """Whether the loop reads loss and accuracy every step: on the CPU (free), not on CUDA (each read waits for
    the GPU to drain its queue; there the epoch's sums are read once, at its end).

    Example:
        >>> reads_each_step(torch.device("cpu")), reads_each_step(torch.device("cuda"))
        (True, False)
    """
    return device.type == "cpu"


def _train_epoch(model, method, opt, data, offsets, cfg, epoch, steps_per_epoch, total, pad) -> dict[str, float]:
    model.train()
    device = data.labels.device
    each_step = reads_each_step(device)
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), dtype=torch.long, device=device)
    nonfinite = torch.zeros((), dtype=torch.long, device=device)
    start = time.perf_counter()
    bar = tqdm(range(steps_per_epoch), desc=f"{cfg.name} epoch {epoch + 1}/{cfg.epochs}", unit="batch", file=sys.stderr)
    for i in bar:
        x, y = data.batch(offsets, i * cfg.batch_size, cfg.batch_size, pad)
        for group in opt.param_groups:
            group["lr"] = cyclic_lr(epoch * steps_per_epoch + i, total, cfg.lr, cfg.warmup_fraction)
        with autocast(cfg.bf16, device.type):
            loss, logits = method.loss(model, x, y)
        if each_step and not torch.isfinite(loss.detach()):
            lr = opt.param_groups[0]["lr"]
            raise TrainingCollapsed(
                f"{cfg.name}: the loss became {float(loss.detach())} at epoch {epoch + 1}, step {i + 1} "
                f"(lr {lr:.2e}); stopped, no zoo entry written",
                where={"epoch": epoch + 1, "step": i + 1, "lr": float(f"{lr:.3g}")},
            )
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step_loss = loss.detach().float()
        nonfinite += (~torch.isfinite(step_loss)).long()
        loss_sum += step_loss * len(y)
        correct += (logits.argmax(1) == y).sum()
        if each_step:
            seen = min((i + 1) * cfg.batch_size, len(data))
            rate = seen / (time.perf_counter() - start)
            bar.set_postfix(loss=f"{float(loss_sum) / seen:.3f}", acc=f"{int(correct) / seen:.3f}", img_s=f"{rate:.0f}")
    loss_total, n_correct, n_bad = float(loss_sum), int(correct), int(nonfinite)  # on CUDA: the epoch's one wait
    seconds = time.perf_counter() - start
    if n_bad:
        raise TrainingCollapsed(
            f"{cfg.name}: the loss was non-finite in {n_bad} of the {steps_per_epoch} steps of epoch {epoch + 1} "
            f"(on {device.type} it is read once per epoch); stopped, no zoo entry written",
            where={"epoch": epoch + 1, "nonfinite_steps": n_bad},
        )
    return {
        "seconds": round(seconds, 1),
        "train_loss": round(loss_total / len(data), 4),
        "train_accuracy": round(n_correct / len(data), 4),
    }


def _clean_accuracy(accuracy: float | None, cfg: TrainConfig, test_data: ImageDataset) -> dict:
    if accuracy is None:  # a run that stopped early has none
        return {}
    return {
        "clean_accuracy": {
            "value": round(accuracy, 4),
            "dataset": cfg.dataset,
            "split": test_data.split,
            "n": len(test_data),
        }
    }


def machines_text(history: list[dict]) -> str:
    """The machine(s) a run's epochs ran on: one name, or each with its epochs when a resumed run changed machine.

    >>> machines_text([{"epoch": 1, "machine": "A"}, {"epoch": 2, "machine": "B"}, {"epoch": 3, "machine": "B"}])
    'A (epoch 1); B (epochs 2–3)'
    """
    spans: list[list] = []  # [machine, first epoch, last epoch]
    for entry in history:
        name = entry.get("machine", "not recorded")
        if spans and spans[-1][0] == name:
            spans[-1][2] = entry["epoch"]
        else:
            spans.append([name, entry["epoch"], entry["epoch"]])
    if not spans or (len(spans) == 1 and spans[0][0] == "not recorded"):
        return machine()  # checkpoints written before epochs recorded their machine
    if len(spans) == 1:
        return spans[0][0]
    return "; ".join(f"{m} (epoch {a})" if a == b else f"{m} (epochs {a}–{b})" for m, a, b in spans)


def _card(cfg, method, model, accuracy, test_data, wall, hparams, history) -> dict:
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
        "normalization": _normalization(cfg),
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
        "device": cfg.device,
        **({"gpu": torch.cuda.get_device_name()} if cfg.device == "cuda" else {}),
        "machine": machines_text(history),
        "package_version": bench.__version__,
        "git_commit": git_commit(),
        "trained_at": utc_now(),
        **_clean_accuracy(accuracy, cfg, test_data),
        "license": "MIT (weights); data license per dataset card",
    }
