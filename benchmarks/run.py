"""Run the performance benchmarks and write tidy rows: ``python -m benchmarks.run [--quick] [--only A,B] [--out F]``.

Every benchmark measures ratios within one run (ours vs a reference, harness vs bare loop, 2 vs 1 threads, ...),
so its numbers mean something on any machine. Rows go to a parquet file (rows of a rerun replace the old rows with
the same benchmark, variant, metric and params); a run into the default file also regenerates the results table of
benchmarks/README.md. ``--quick`` uses tiny sizes (a smoke test) and writes to results-quick.parquet by default.
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from benchmarks import attacks, cli, corruptions, early_exit, harness, store
from benchmarks.common import Env, Rows

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "results.parquet"
QUICK_OUT = HERE / "results-quick.parquet"
README = HERE / "README.md"

Benchmark = Callable[[Env, Rows], None]
BENCHMARKS: dict[str, Benchmark] = {
    "pgd_vs_torchattacks": attacks.pgd_vs_torchattacks,
    "harness_overhead": harness.harness_overhead,
    "attack_cost": attacks.attack_cost,
    "corruption_cost": corruptions.corruption_cost,
    "data_loading_share": harness.data_loading_share,
    "scaling_batch": attacks.scaling_batch,
    "scaling_threads": attacks.scaling_threads,
    "ray_scaling": harness.ray_scaling,
    "peak_memory": harness.peak_memory,
    "cli_startup": cli.cli_startup,
    "early_exit_pgd": early_exit.early_exit_pgd,
    "pgd_arithmetic": early_exit.pgd_arithmetic,
    "recipro_batched": early_exit.recipro_batched,
    "cascade_vs_per_attack": early_exit.cascade_vs_per_attack,
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test of every code path")
    parser.add_argument(
        "--out", type=Path, help=f"results parquet (default {DEFAULT_OUT.name}, quick: {QUICK_OUT.name})"
    )
    parser.add_argument("--only", default="", help=f"comma-separated subset of: {', '.join(BENCHMARKS)}")
    parser.add_argument("--model", default="standard_cnn", help="registry name of the model (default standard_cnn)")
    parser.add_argument("--max-n", type=int, help="cap on the images of every benchmark (rows record their n)")
    readme_help = "README whose results table to regenerate (default: README.md here, when --out is the default)"
    parser.add_argument("--readme", type=Path, help=readme_help)
    return parser.parse_args(argv)


def selected(only: str) -> list[str]:
    names = [name.strip() for name in only.split(",") if name.strip()] or list(BENCHMARKS)
    unknown = [name for name in names if name not in BENCHMARKS]
    if unknown:
        raise SystemExit(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    return names


def run_one(name: str, env: Env, out: Path) -> tuple[list[dict], float]:
    """Run a benchmark and merge its rows into ``out`` at once (a later failure cannot lose them)."""
    rows = Rows(name, env)
    start = time.perf_counter()
    BENCHMARKS[name](env, rows)
    if rows.rows:
        store.merge(out, rows.rows)
    return rows.rows, time.perf_counter() - start


def show(rows: list[dict]) -> None:
    frame = store.as_frame(rows)
    if not frame.empty:
        columns = ["benchmark", "variant", "metric", "value", "unit", "n", "batch_size", "threads"]
        print(frame[columns].to_string(index=False, float_format=lambda v: f"{v:.4g}"))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    names = selected(args.only)
    out = args.out or (QUICK_OUT if args.quick else DEFAULT_OUT)
    readme = args.readme or (README if out.resolve() == DEFAULT_OUT else None)
    env = Env(quick=args.quick, model_name=args.model, max_n=args.max_n)
    written: list[dict] = []
    failed: list[str] = []
    for name in tqdm(names, desc="benchmarks", unit="bench", file=sys.stderr):
        try:
            rows, seconds = run_one(name, env, out)
        except Exception:  # report, go on with the others, fail at the end
            traceback.print_exc()
            failed.append(name)
            continue
        written += rows
        tqdm.write(f"{name}: {len(rows)} rows in {seconds:.1f} s", file=sys.stderr)
    show(written)
    if readme is not None and out.exists():
        store.update_readme(readme, pd.read_parquet(out), list(BENCHMARKS))
    print(f"{len(written)} rows -> {out}" + (f"; failed: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
