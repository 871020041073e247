"""Attack benchmarks: our PGD against torchattacks, PGD throughput by batch size and threads, attack costs."""

from __future__ import annotations

from collections.abc import Callable

import torch
from tqdm import tqdm

from bench.data import Batch
from bench.plugins import Context
from bench.plugins.attack_base import frozen
from bench.plugins.autoattack import build_adversary
from bench.plugins.pgd import PGD
from bench.plugins.square import Square
from benchmarks.common import THREADS, Env, Rows, num_threads, timed

EPS = 2 / 255  # L-inf 8/255 leaves an undefended model at 0% robust accuracy: nothing to compare
ALPHA = 0.5 / 255
AA_EPS = 8 / 255  # the cifar10-autoattack suite's
AA_COMPONENTS = ("apgd-ce", "apgd-t", "fab-t", "square")


def robust_ours(plugin: PGD, model: torch.nn.Module, batches: list[Batch], ctx: Context) -> torch.Tensor:
    """The plugin's per-example ``robust`` flags (clean-wrong examples are never robust)."""
    return torch.cat([torch.from_numpy(plugin.run_batch(model, batch, ctx)["robust"]) for batch in batches])


def robust_torchattacks(attack: Callable, model: torch.nn.Module, batches: list[Batch], seed: int) -> torch.Tensor:
    """Robust = clean-correct and still correct on torchattacks' adversarial image, like the plugin counts it."""
    torch.manual_seed(seed)  # torchattacks draws its random start from the global stream
    robust = []
    for batch in batches:
        with torch.no_grad():
            clean_ok = model(batch.x).argmax(1) == batch.y
        x_adv = attack(batch.x, batch.y)
        with torch.no_grad():
            robust.append((model(x_adv).argmax(1) == batch.y) & clean_ok)
    return torch.cat(robust)


def paired_diff_pp(ours: torch.Tensor, theirs: torch.Tensor) -> tuple[float, float]:
    """Mean difference of two per-example 0/1 outcomes on the same images, and its standard error, in pp."""
    d = ours.float() - theirs.float()
    se = d.std(unbiased=True) / len(d) ** 0.5 if len(d) > 1 else torch.tensor(0.0)
    return 100 * d.mean().item(), 100 * se.item()


def pgd_vs_torchattacks(env: Env, rows: Rows) -> None:
    """Without a random start both sides are deterministic: the outcomes must agree image by image (256 images).
    With one, each side draws its own starts, so images near the boundary can go either way: 2,000 images bring
    the standard error of the difference to about 0.2 pp, below the +-0.5 pp goal (256 gave +-1 pp)."""
    import torchattacks

    batch_size, steps, model, ctx = env.size(128, 8), env.size(20, 3), env.model, env.context()
    sizes = {False: env.n(env.size(256, 8)), True: env.n(env.size(2000, 16))}
    with num_threads(THREADS):
        warm = env.batches(batch_size, batch_size)[0]
        PGD(eps=EPS, alpha=ALPHA, steps=1).run_batch(model, warm, ctx)
        torchattacks.PGD(model, eps=EPS, alpha=ALPHA, steps=1)(warm.x, warm.y)
        for random_start in tqdm((False, True), desc="pgd_vs_torchattacks", leave=False):
            n = sizes[random_start]
            batches = env.batches(n, batch_size)
            ours = PGD(eps=EPS, alpha=ALPHA, steps=steps, random_start=random_start, mode="final")
            theirs = torchattacks.PGD(model, eps=EPS, alpha=ALPHA, steps=steps, random_start=random_start)
            t_ours, r_ours = timed(lambda ours=ours, b=batches: robust_ours(ours, model, b, ctx))
            t_theirs, r_theirs = timed(lambda a=theirs, b=batches: robust_torchattacks(a, model, b, ctx.seed))
            diff, se = paired_diff_pp(r_ours, r_theirs)
            params = {"eps": EPS, "alpha": ALPHA, "steps": steps, "random_start": random_start, "split": env.data.split}
            row = rows.scope(f"random_start={random_start}", n=n, batch_size=batch_size, threads=THREADS, params=params)
            row("images_per_second_ours", n / t_ours, "img/s")
            row("images_per_second_torchattacks", n / t_theirs, "img/s")
            row("speed_ratio", t_theirs / t_ours, "ratio")
            row("robust_accuracy_ours", r_ours.float().mean().item(), "fraction")
            row("robust_accuracy_torchattacks", r_theirs.float().mean().item(), "fraction")
            row("robust_accuracy_diff_pp", diff, "pp")
            row("robust_accuracy_diff_se_pp", se, "pp")
            row("outcome_disagreement_fraction", (r_ours != r_theirs).float().mean().item(), "fraction")


def pgd_images_per_second(env: Env, n: int, batch_size: int, threads: int, steps: int) -> float:
    """Images/s of the PGD plugin's ``run_batch`` on prepared batches (warm-up: one 1-step batch)."""
    batches, ctx = env.batches(n, batch_size), env.context()
    plugin = PGD(eps=EPS, alpha=ALPHA, steps=steps, mode="final")
    with num_threads(threads):
        PGD(eps=EPS, alpha=ALPHA, steps=1).run_batch(env.model, batches[0], ctx)
        seconds, _ = timed(lambda: [plugin.run_batch(env.model, b, ctx) for b in batches])
    return sum(len(b.y) for b in batches) / seconds


def scaling_batch(env: Env, rows: Rows) -> None:
    n, steps = env.n(env.size(256, 8)), env.size(10, 2)
    for batch_size in tqdm(env.size((32, 64, 128, 256), (4, 8)), desc="scaling_batch", leave=False):
        params = {"eps": EPS, "alpha": ALPHA, "steps": steps, "split": env.data.split}
        row = rows.scope(f"batch_size={batch_size}", n=n, batch_size=batch_size, threads=THREADS, params=params)
        row("images_per_second", pgd_images_per_second(env, n, batch_size, THREADS, steps), "img/s")


def scaling_threads(env: Env, rows: Rows) -> None:
    n, batch_size, steps = env.n(env.size(256, 8)), env.size(128, 8), env.size(10, 2)
    params = {"eps": EPS, "alpha": ALPHA, "steps": steps, "split": env.data.split}
    speed = {}
    for threads in tqdm((1, 2), desc="scaling_threads", leave=False):
        speed[threads] = pgd_images_per_second(env, n, batch_size, threads, steps)
        row = rows.scope(f"threads={threads}", n=n, batch_size=batch_size, threads=threads, params=params)
        row("images_per_second", speed[threads], "img/s")
    row = rows.scope("threads=2", n=n, batch_size=batch_size, threads=2, params=params)
    row("speedup_2_threads", speed[2] / speed[1], "ratio")


def autoattack_component(
    model: torch.nn.Module, batch: Batch, attack: str, eps: float, ctx: Context, budget: int | None = None
) -> torch.Tensor:
    """One AutoAttack component alone, with the 'standard' settings the autoattack plugin runs it with.

    ``budget`` (quick mode only) cuts APGD and FAB to that many iterations and Square to 5x as many queries.

    ``version='custom'`` would leave APGD-CE and FAB at 5 restarts; pyautoattack's own
    ``run_standard_evaluation_individual`` does what this does: standard settings, ``attacks_to_run = [attack]``.
    The images are made contiguous: APGD-T and FAB ``.view`` gradients, which fails on the channels_last batches
    of ``ImageDataset.batch``.
    """
    adversary = build_adversary(model, "Linf", eps, "standard", ctx)
    adversary.attacks_to_run = [attack]
    if budget is not None:
        adversary.apgd.n_iter = adversary.apgd_targeted.n_iter = adversary.fab.n_iter = budget
        adversary.square.n_queries = 5 * budget
    with frozen(model):
        x_adv, _ = adversary.run_standard_evaluation(batch.x.contiguous(), batch.y, batch_size=len(batch.y))
    return x_adv


def attack_cost(env: Env, rows: Rows) -> None:
    n = env.n(env.size(32, 4))
    batch, model, ctx = env.data.batch(torch.arange(n)), env.model, env.context()
    n_queries, budget = env.size(1000, 50), env.size(None, 10)  # budget: AutoAttack's iterations, standard in full
    with num_threads(THREADS):
        PGD(eps=EPS, alpha=ALPHA, steps=1).run_batch(model, batch, ctx)  # warm-up
        square = Square(eps=AA_EPS, n_queries=n_queries)
        seconds, out = timed(lambda: square.run_batch(model, batch, ctx))
        params = {"eps": AA_EPS, "n_queries": n_queries, "split": env.data.split}
        row = rows.scope("square_plugin", n=n, batch_size=n, threads=THREADS, params=params)
        row("seconds_per_image", seconds / n, "s/img")
        row("robust_accuracy", float(out["robust"].mean()), "fraction")
        for attack in tqdm(AA_COMPONENTS, desc="attack_cost", leave=False):
            seconds, x_adv = timed(lambda a=attack: autoattack_component(model, batch, a, AA_EPS, ctx, budget))
            with torch.no_grad():
                robust = (model(x_adv).argmax(1) == batch.y).float().mean().item()
            params = {"eps": AA_EPS, "version": "standard", "attacks_to_run": [attack], "split": env.data.split}
            params |= {} if budget is None else {"n_iter": budget, "square_n_queries": 5 * budget}
            row = rows.scope(f"autoattack:{attack}", n=n, batch_size=n, threads=THREADS, params=params)
            row("seconds_per_image", seconds / n, "s/img")
            row("robust_accuracy", robust, "fraction")
