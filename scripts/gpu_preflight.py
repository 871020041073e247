"""Time ``bench train``'s loop on this machine and count its host synchronisations, in seconds, before a long run.

For each model of scripts/gpu_zoo.sh's PRN18 recipe (standard and Top-GAP k=128), it runs the training epoch of
bench/train.py on random resident data: one epoch to warm up (cudnn picks its kernels), then one measured epoch
of ``--steps`` steps under ``torch.cuda.set_sync_debug_mode("warn")``. It prints seconds per step, the estimated
seconds per CIFAR-10 epoch (391 steps of 128) and per 30-epoch model, and the synchronisations counted: on CUDA
the loop should show only the epoch-end reads of loss sum, correct count and non-finite count (3).

Usage:
    python3 scripts/gpu_preflight.py --device cuda --steps 40
    .venv/bin/python scripts/gpu_preflight.py --device cpu --steps 2 --batch-size 16     # a rehearsal
"""

from __future__ import annotations

import argparse
import math
import sys
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.methods import METHODS  # noqa: E402
from bench.models.classifier import build_classifier  # noqa: E402
from bench.train import Offsets, ResidentData, TrainConfig, _optimizer, _train_epoch, training_device  # noqa: E402

RECIPES = {
    "standard_prn18": ("standard", {}),
    "topgap_prn18": ("topgap", {"k": 128, "lambda_l1": 1.0, "l1_reduction": "mean"}),
}
CIFAR10_TRAIN = 50_000


def measure(name: str, device: torch.device, steps: int, batch_size: int, epochs: int) -> dict[str, float]:
    """Seconds per step and host synchronisations of one measured epoch of ``steps`` steps.

    Example:
        >>> measure("standard_prn18", torch.device("cpu"), 2, 16, 30)["syncs"]
        0
    """
    method_name, hparams = RECIPES[name]
    cfg = TrainConfig(
        name=f"preflight_{name}",
        method=method_name,
        arch="prn18",
        epochs=1,
        batch_size=batch_size,
        bf16=device.type == "cuda",
    )
    method = METHODS.create(method_name, **hparams)
    method.configure_for("prn18")
    model = build_classifier("prn18", 10, method.head, "none", **method.head_kwargs())
    model = model.to(device, memory_format=torch.channels_last)
    opt = _optimizer(model, cfg)
    n = steps * batch_size
    images = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, device=device)
    data = ResidentData(images, torch.randint(0, 10, (n,), device=device))
    offsets = Offsets.draw(n, 4, torch.Generator().manual_seed(0)).to(device)
    _train_epoch(model, method, opt, data, offsets, cfg, 0, steps, 2 * steps, 4)  # warm-up
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if device.type == "cuda":
            torch.cuda.set_sync_debug_mode("warn")
        try:
            stats = _train_epoch(model, method, opt, data, offsets, cfg, 0, steps, 2 * steps, 4)
        finally:
            if device.type == "cuda":
                torch.cuda.set_sync_debug_mode(0)
    per_step = stats["seconds"] / steps
    epoch = per_step * math.ceil(CIFAR10_TRAIN / batch_size)
    syncs = sum("synchroniz" in str(w.message).lower() for w in caught)
    return {"s_per_step": per_step, "s_per_epoch": epoch, "s_per_model": epoch * epochs, "syncs": syncs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=30)
    args = parser.parse_args()
    device = training_device(args.device)
    gpu = torch.cuda.get_device_name() if device.type == "cuda" else "no GPU"
    print(f"preflight: torch {torch.__version__}, {device.type} ({gpu}), batch {args.batch_size}, {args.steps} steps")
    for name in RECIPES:
        r = measure(name, device, args.steps, args.batch_size, args.epochs)
        print(
            f"preflight {name}: {r['s_per_step'] * 1000:.1f} ms/step, ~{r['s_per_epoch']:.1f} s per CIFAR-10 epoch, "
            f"~{r['s_per_model'] / 60:.1f} min for {args.epochs} epochs; host syncs in the measured epoch: "
            f"{r['syncs']} (expected on cuda: 3, the epoch-end reads)"
        )


if __name__ == "__main__":
    main()
