"""Early-exit benchmarks (issue 16): best-iterate PGD against torchattacks and our final-iterate PGD, the PGD steps'
arithmetic against the machine's fp32 matmul peak, and batched Recipro-CAM against the per-image loop it replaced.

All ratios are measured within one run on the same images and seeds. Per image, every disagreement between
torchattacks and best-iterate PGD is counted both ways (``n_broken_only_by_*``): torchattacks draws its own random
starts, so a few images near the boundary can go either way; without random starts best-iterate breaks a superset.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode
from tqdm import tqdm

from bench.attacks import PGD as PGDAttack
from bench.attacks import frozen
from bench.interp.recipro_cam import recipro_scores, spatial_masks
from bench.plugins.cascade import stage_label
from bench.plugins.pgd import PGD
from bench.provenance import machine
from benchmarks.attacks import robust_ours, robust_torchattacks
from benchmarks.common import THREADS, Env, Rows, num_threads, run_grid_once, timed, write_suite

STEPS = 20
EPS_VALUES = (8 / 255, 2 / 255)


def _n_images(env: Env) -> int:
    """1,000 images; 200 for a model over 5M parameters (PRN18: three PGD-20 runs of 1,000 cost ~1 h here)."""
    big = sum(p.numel() for p in env.model.parameters()) > 5_000_000
    return env.n(env.size(200 if big else 1000, 16))


def early_exit_pgd(env: Env, rows: Rows) -> None:
    """PGD-20 at eps 8/255 and 2/255 (alpha = eps/4, random start): torchattacks, ours final-iterate, ours best."""
    import torchattacks

    n, batch_size, steps, model, ctx = _n_images(env), env.size(250, 8), env.size(STEPS, 2), env.model, env.context()
    batches = env.batches(n, batch_size)
    with num_threads(THREADS):
        PGD(eps=EPS_VALUES[0], steps=1).run_batch(model, batches[0], ctx)  # warm-up
        for eps in tqdm(EPS_VALUES, desc="early_exit_pgd", leave=False):
            alpha = eps / 4
            theirs = torchattacks.PGD(model, eps=eps, alpha=alpha, steps=steps, random_start=True)
            t_ta, r_ta = timed(lambda a=theirs: robust_torchattacks(a, model, batches, ctx.seed))
            final = PGD(eps=eps, alpha=alpha, steps=steps, mode="final")
            t_final, r_final = timed(lambda p=final: robust_ours(p, model, batches, ctx))
            best = PGD(eps=eps, alpha=alpha, steps=steps, mode="best")
            t_best, r_best = timed(lambda p=best: robust_ours(p, model, batches, ctx))
            params = {"eps": eps, "alpha": alpha, "steps": steps, "split": env.data.split, "machine": machine()}
            row = rows.scope(f"eps={eps * 255:g}/255", n=n, batch_size=batch_size, threads=THREADS, params=params)
            for side, seconds, robust in (
                ("torchattacks", t_ta, r_ta),
                ("final", t_final, r_final),
                ("best", t_best, r_best),
            ):
                row(f"images_per_second_{side}", n / seconds, "img/s")
                row(f"robust_accuracy_{side}", robust.float().mean().item(), "fraction")
            row("speed_ratio_best_vs_torchattacks", t_ta / t_best, "ratio")
            row("speed_ratio_best_vs_final", t_final / t_best, "ratio")
            row("n_broken_only_by_torchattacks", int((r_best & ~r_ta).sum()), "images")
            row("n_broken_only_by_best", int((r_ta & ~r_best).sum()), "images")
            row("n_robust_best_not_final", int((r_best & ~r_final).sum()), "images")  # must be 0


def matmul_peak_gflops(size: int = 2048, repeats: int = 5) -> float:
    """The machine's fp32 matmul throughput (GFLOP/s): the best of ``repeats`` timed ``size``-square products."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e9


def pgd_step_flops(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> int:
    """FLOPs of one PGD step (forward + input-gradient backward) on the batch, by torch's FLOP counter."""
    x = x.clone().requires_grad_(True)
    with frozen(model), FlopCounterMode(display=False) as counter:  # frozen: no parameter gradients, as in PGD
        F.cross_entropy(model(x), y, reduction="sum").backward()
    return counter.get_total_flops()


def pgd_arithmetic(env: Env, rows: Rows) -> None:
    """Achieved GFLOP/s of final-iterate PGD steps on one batch (no early exit) against the fp32 matmul peak."""
    batch_size, steps, model = env.size(250, 8), env.size(STEPS, 2), env.model
    batch = env.batches(batch_size, batch_size)[0]
    with num_threads(THREADS):
        peak = matmul_peak_gflops(env.size(2048, 256))
        flops = pgd_step_flops(model, batch.x, batch.y)
        attack = PGDAttack(model, 8 / 255, 2 / 255, steps, mode="final")
        attack(batch.x[:8], batch.y[:8])  # warm-up
        seconds, _ = timed(lambda: attack(batch.x, batch.y))
    # steps gradient passes plus one check pass (about a third of a step)
    achieved = flops * (steps + 1 / 3) / seconds / 1e9
    params = {"eps": 8 / 255, "alpha": 2 / 255, "steps": steps, "machine": machine()}
    row = rows.scope("fp32", n=batch_size, batch_size=batch_size, threads=THREADS, params=params)
    row("matmul_peak_gflops", peak, "GFLOP/s")
    row("pgd_step_gflop_per_image", flops / batch_size / 1e9, "GFLOP")
    row("pgd_achieved_gflops", achieved, "GFLOP/s")
    row("fraction_of_matmul_peak", achieved / peak, "fraction")


@torch.no_grad()
def recipro_scores_per_image(model: torch.nn.Module, x: torch.Tensor, target: torch.Tensor, chunk: int = 256):
    """The per-image loop that ``recipro_scores`` replaced (each image's h*w masked passes batched alone)."""
    feats = model.features(x)
    last = feats[-1]
    _, _, h, w = last.shape
    masks = spatial_masks(h, w).to(last.device, last.dtype)
    maps = []
    for b in range(len(x)):
        scores = []
        for start in range(0, len(masks), chunk):
            m = masks[start : start + chunk]
            earlier = [f[b : b + 1].expand(len(m), *f.shape[1:]) for f in feats[:-1]]
            scores.append(model.head([*earlier, last[b : b + 1] * m]).softmax(1)[:, int(target[b])])
        maps.append(torch.cat(scores).view(h, w))
    return torch.stack(maps)


def recipro_batched(env: Env, rows: Rows) -> None:
    """Recipro-CAM on 64 images: the batched (image, position) rows against the per-image loop; same maps."""
    n, model = env.n(env.size(64, 4)), env.model
    batch = env.batches(n, n)[0]
    with num_threads(THREADS):
        recipro_scores(model, batch.x[:2], batch.y[:2])
        t_before, before = timed(lambda: recipro_scores_per_image(model, batch.x, batch.y), repeats=3)
        t_after, after = timed(lambda: recipro_scores(model, batch.x, batch.y), repeats=3)
    row = rows.scope("recipro", n=n, batch_size=n, threads=THREADS, params={"chunk": 256, "machine": machine()})
    row("images_per_second_per_image_loop", n / t_before, "img/s")
    row("images_per_second_batched", n / t_after, "img/s")
    row("speed_ratio", t_before / t_after, "ratio")
    row("max_abs_difference", (before - after).abs().max().item(), "probability")


def _robust_flags(out: Path, suite: str, plugin: str) -> dict[str, np.ndarray]:
    """Per-example ``robust`` flags of every unit of ``plugin`` in a fresh results folder, by unit file name."""
    files = sorted((out / suite).glob(f"*/{plugin}-*.examples.parquet"))
    return {f.name: pd.read_parquet(f).sort_values("index")["robust"].to_numpy(bool) for f in files}


def cascade_vs_per_attack(env: Env, rows: Rows) -> None:
    """cifar10-adv's attacks (FGSM, PGD-20, PGD-50, Square-5000; best-iterate) on the same images, in cascade mode
    and per attack: wall seconds of each and the per-image worst case of each (they must agree image by image, up
    to Square's random stream, which is seeded per batch and so depends on which images reach it)."""
    n, batch_size = env.n(env.size(1000, 16)), env.size(250, 8)
    stages = [
        {"plugin": "fgsm"},
        {"plugin": "pgd", "params": {"steps": env.size(20, 2)}},
        {"plugin": "pgd", "params": {"steps": env.size(50, 3)}},
        {"plugin": "square", "params": {"n_queries": env.size(5000, 20)}},
    ]
    per_attack = [{"plugin": s["plugin"], "params": {"eps": 8 / 255, **s.get("params", {})}} for s in stages]
    cascade = [{"plugin": "cascade", "params": {"eps": 8 / 255, "stages": stages}}]
    with tempfile.TemporaryDirectory() as tmp, num_threads(THREADS):
        folder = Path(tmp)
        suites = {
            "cascade": write_suite(folder, "bench-cascade", n, batch_size, cascade),
            "per_attack": write_suite(folder, "bench-per-attack", n, batch_size, per_attack),
        }
        seconds = {mode: run_grid_once(env, path, folder / mode) for mode, path in suites.items()}
        worst_cascade = next(iter(_robust_flags(folder / "cascade", "bench-cascade", "cascade").values()))
        flags = [
            flag
            for plugin in ("fgsm", "pgd", "square")
            for flag in _robust_flags(folder / "per_attack", "bench-per-attack", plugin).values()
        ]
        worst_per_attack = np.logical_and.reduce(flags)
    params = {"eps": 8 / 255, "stages": [stage_label(s) for s in stages], "machine": machine()}
    row = rows.scope("cifar10-adv", n=n, batch_size=batch_size, threads=THREADS, params=params)
    row("seconds_cascade", seconds["cascade"], "s")
    row("seconds_per_attack", seconds["per_attack"], "s")
    row("speed_ratio", seconds["per_attack"] / seconds["cascade"], "ratio")
    row("worst_case_robust_accuracy_cascade", worst_cascade.mean(), "fraction")
    row("worst_case_robust_accuracy_per_attack", worst_per_attack.mean(), "fraction")
    row("n_images_worst_case_differs", int((worst_cascade != worst_per_attack).sum()), "images")
