"""Harness benchmarks: run_grid against a bare loop, data-loading share, Ray scaling, peak memory."""

from __future__ import annotations

import contextlib
import gc
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import torch
from tqdm import tqdm

import bench.runner
from bench.attacks import PGD as PGDAttack
from bench.data import ImageDataset, load_dataset
from bench.executors.base import release_freed_memory
from bench.plugins.base import predict
from bench.provenance import REPO_ROOT
from bench.registry import MODELS
from bench.results import ResultsStore
from benchmarks.attacks import ALPHA, EPS
from benchmarks.common import THREADS, Env, Rows, num_threads, pgd_spec, run_grid_once, timed, write_suite


def bare_pgd(env: Env, n: int, batch_size: int, steps: int) -> float:
    """What the pgd plugin computes, as a hand-written script would: load the model and the data (as ``run_grid``
    does), then PGD with the plugin's per-example random starts on the clean-correct images; the robust accuracy."""
    model = MODELS.create(env.model_name, device=env.device).eval()
    data, ctx, robust = load_dataset("cifar10", "test"), env.context(), 0
    for batch in data.batches(batch_size, torch.arange(n)):
        correct = predict(model, batch.x, ctx) == batch.y
        x, y = batch.x[correct], batch.y[correct]
        attack = PGDAttack(model, EPS, ALPHA, steps, mode="final", seed=ctx.seed, autocast=ctx.autocast)
        robust += int((~attack.run(x, y, batch.index[correct]).fooled).sum())
    return robust / n


def harness_pgd(env: Env, suite: str, folder: Path) -> tuple[float, float]:
    """(wall seconds, robust accuracy) of ``run_grid`` on the suite into a fresh results folder."""
    out = Path(tempfile.mkdtemp(dir=folder))
    seconds = run_grid_once(env, suite, out)
    table = ResultsStore(out).read(Path(suite).stem)
    return seconds, float(table.loc[table["metric"] == "robust_accuracy", "value"].item())


def harness_overhead(env: Env, rows: Rows) -> None:
    """Overhead from the fastest of 5 interleaved repeats per side (timeit's convention: noise only ever adds
    time; on this 2-core machine single ~11 s runs vary by +-10%, more than the 5% being measured)."""
    n, batch_size, steps, repeats = env.n(env.size(256, 8)), env.size(128, 8), env.size(10, 2), env.size(5, 1)
    with tempfile.TemporaryDirectory() as tmp, num_threads(THREADS):
        folder = Path(tmp)
        suite = write_suite(folder, "bench-harness", n, batch_size, [pgd_spec(EPS, ALPHA, steps)])
        warm = write_suite(folder, "bench-harness-warmup", min(n, 8), batch_size, [pgd_spec(EPS, ALPHA, 1)])
        run_grid_once(env, warm, folder / "warmup")
        bare_pgd(env, min(n, batch_size), batch_size, 1)
        bare, harness = [], []
        for _ in tqdm(range(repeats), desc="harness_overhead", leave=False):  # interleaved: drift hits both alike
            bare.append(timed(lambda: bare_pgd(env, n, batch_size, steps)))
            harness.append(harness_pgd(env, suite, folder))
    t_bare, t_harness = min(t for t, _ in bare), min(t for t, _ in harness)
    params = {"eps": EPS, "alpha": ALPHA, "steps": steps, "random_start": True, "split": env.data.split}
    row = rows.scope("pgd", n=n, batch_size=batch_size, threads=THREADS, params={**params, "repeats": repeats})
    row("harness_seconds", t_harness, "s")
    row("bare_seconds", t_bare, "s")
    row("overhead_fraction", t_harness / t_bare - 1, "fraction")
    row("harness_seconds_median", statistics.median(t for t, _ in harness), "s")
    row("bare_seconds_median", statistics.median(t for t, _ in bare), "s")
    row("robust_accuracy_diff_pp", 100 * (harness[-1][1] - bare[-1][1]), "pp")


@contextlib.contextmanager
def clocked_data_access(totals: dict[str, float]) -> Iterator[None]:
    """Accumulate the seconds spent in ``ImageDataset.batch`` and in the runner's ``load_dataset``."""
    original_batch, original_load = ImageDataset.batch, bench.runner.load_dataset

    def batch(self, index):
        start = time.perf_counter()
        try:
            return original_batch(self, index)
        finally:
            totals["batch"] += time.perf_counter() - start

    def load(*args, **kwargs):
        start = time.perf_counter()
        try:
            return original_load(*args, **kwargs)
        finally:
            totals["load"] += time.perf_counter() - start

    ImageDataset.batch, bench.runner.load_dataset = batch, load
    try:
        yield
    finally:
        ImageDataset.batch, bench.runner.load_dataset = original_batch, original_load


def data_loading_share(env: Env, rows: Rows) -> None:
    n, batch_size = env.n(env.size(5000, 32)), env.size(250, 16)
    clean = [{"plugin": "clean"}]
    with tempfile.TemporaryDirectory() as tmp, num_threads(THREADS):
        folder = Path(tmp)
        run_grid_once(
            env, write_suite(folder, "bench-data-warmup", min(n, batch_size), batch_size, clean), folder / "w"
        )
        suite = write_suite(folder, "bench-data", n, batch_size, clean)
        totals = {"batch": 0.0, "load": 0.0}
        with clocked_data_access(totals):
            total = run_grid_once(env, suite, folder / "run")
    row = rows.scope("clean", n=n, batch_size=batch_size, threads=THREADS, params={"split": env.data.split})
    row("data_loading_fraction", totals["batch"] / total, "fraction")
    row("batch_seconds", totals["batch"], "s")
    row("load_dataset_seconds", totals["load"], "s")
    row("total_seconds", total, "s")


def ray_scaling(env: Env, rows: Rows) -> None:
    try:
        import ray  # noqa: F401
    except ImportError as exc:
        print(f"ray_scaling skipped: Ray is not importable ({exc}); pip install 'ribench[ray]'", file=sys.stderr)
        return
    from bench.executors import EXECUTORS

    n, shard, steps = env.n(env.size(256, 16)), env.size(32, 4), env.size(5, 1)
    plugins = [{"plugin": "clean"}, pgd_spec(EPS, ALPHA, steps)]
    shards = len(plugins) * -(-n // shard)
    params = {"eps": EPS, "alpha": ALPHA, "steps": steps, "plugins": ["clean", "pgd"], "shard_size": shard}
    seconds = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        suite = write_suite(folder, "bench-ray", n, shard, plugins)
        warm = write_suite(folder, "bench-ray-warmup", min(n, 4 * shard), shard, plugins)  # >= 2 shards per worker
        for cpus in tqdm((1, 2), desc="ray_scaling", leave=False):
            start = time.perf_counter()
            executor = EXECUTORS.create("ray", num_cpus=cpus)
            startup = time.perf_counter() - start
            try:
                warmup = run_grid_once(env, warm, folder / f"warmup-{cpus}", executor, shard)
                seconds[cpus] = run_grid_once(env, suite, folder / f"run-{cpus}", executor, shard)
            finally:
                executor.close()
            row = rows.scope(f"num_cpus={cpus}", n=n, batch_size=shard, threads=cpus, params=params)
            row("startup_seconds", startup, "s")
            row("warmup_seconds", warmup, "s")
            row("seconds", seconds[cpus], "s")
            row("shards_per_second", shards / seconds[cpus], "shards/s")
    row = rows.scope("num_cpus=2", n=n, batch_size=shard, threads=2, params=params)
    row("speedup_2_cpus", seconds[1] / seconds[2], "ratio")


def own_rss_kb(field: str = "VmHWM") -> int:
    """This process's peak (``VmHWM``) or current (``VmRSS``) resident size since its exec, on Linux.

    ``ru_maxrss`` (``RUSAGE_SELF`` here or ``RUSAGE_CHILDREN`` in the parent) is useless for a child: Linux carries
    the parent's RSS at fork over into it, so every child would report at least the (large) parent's size.
    """
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KB on Linux, bytes on macOS: Linux has VmHWM


def memory_child(spec_json: str) -> None:
    """Run in a fresh interpreter: load the model and data (``baseline``) or run a suite; print own peak RSS and
    the RSS left once the run's objects are gone and freed heap memory is returned (KB)."""
    spec = json.loads(spec_json)
    torch.set_num_threads(spec["threads"])
    import pyarrow.parquet  # noqa: F401  (the run writes parquet: the baseline holds the same libraries)

    if spec["suite"] is None:
        env = Env(model_name=spec["model"])
        _ = env.model, env.data  # load both, nothing else
    else:
        run_grid_once(Env(model_name=spec["model"]), spec["suite"], Path(spec["out"]))
    gc.collect()
    release_freed_memory()
    print(json.dumps({"peak_rss_kb": own_rss_kb("VmHWM"), "retained_rss_kb": own_rss_kb("VmRSS")}))


def spawn_memory_child(env: Env, suite: str | None, out: Path) -> subprocess.Popen:
    spec = json.dumps({"model": env.model_name, "suite": suite, "out": str(out), "threads": THREADS})
    code = "import sys; from benchmarks.harness import memory_child; memory_child(sys.argv[1])"
    pipe = subprocess.PIPE
    return subprocess.Popen([sys.executable, "-c", code, spec], cwd=REPO_ROOT, stdout=pipe, stderr=pipe, text=True)


def children_rss_mb(env: Env, suites: list[str | None], out: Path) -> list[dict[str, float]]:
    """Peak and retained RSS (MB) of one child process per suite (None: load only), as each measures it itself
    (``own_rss_kb``). The children run at the same time: each one's own numbers do not depend on the others."""
    measured = []
    for child in [spawn_memory_child(env, suite, out) for suite in suites]:
        stdout, stderr = child.communicate()
        if child.returncode != 0:
            raise RuntimeError(f"peak_memory child failed ({child.returncode}):\n{stderr[-2000:]}")
        kb = json.loads(stdout.strip().splitlines()[-1])
        measured.append({key.removesuffix("_kb"): value / 1024 for key, value in kb.items()})
    return measured


def peak_memory(env: Env, rows: Rows) -> None:
    batch_size = env.size(250, 64)
    n, small = env.n(env.size(10_000, 256)), env.n(2 * batch_size)  # the small run has the same batch size
    plugins = [{"plugin": "clean"}, pgd_spec(EPS, ALPHA, 1)]
    sizes = {"full": n} if env.quick else {"full": n, "small": small}  # quick: one child fewer, nothing to compare
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        suites = [
            write_suite(folder, f"bench-memory-{name}", size, batch_size, plugins) for name, size in sizes.items()
        ]
        baseline, full, *small_run = children_rss_mb(env, [None, *suites], folder)
    params = {"eps": EPS, "alpha": ALPHA, "steps": 1, "plugins": ["clean", "pgd"], "split": env.data.split}
    row = rows.scope("pgd-1", n=n, batch_size=batch_size, threads=THREADS, params={**params, "n_small": small})
    row("baseline_rss_mb", baseline["peak_rss"], "MB")
    row("peak_rss_mb", full["peak_rss"], "MB")
    row("run_overhead_mb", full["peak_rss"] - baseline["peak_rss"], "MB")
    row("retained_rss_mb", full["retained_rss"], "MB")
    if small_run:
        row("peak_rss_mb_small_run", small_run[0]["peak_rss"], "MB")
        row("growth_mb_vs_small_run", full["peak_rss"] - small_run[0]["peak_rss"], "MB")
        row("retained_rss_mb_small_run", small_run[0]["retained_rss"], "MB")
        row("retained_growth_mb_vs_small_run", full["retained_rss"] - small_run[0]["retained_rss"], "MB")
