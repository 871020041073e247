"""How fast the ``bench`` command answers when it computes nothing: ``--help``, ``list``, a user error.

Each is a fresh process (as a user types it), timed from spawn to exit; the bare interpreter start-up and
``import torch`` are measured the same way for scale. Fastest of the repeats (noise only adds time) and median.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.common import Env, Rows

COMMANDS = {
    "bench --help": ["--help"],
    "bench list plugins": ["list", "plugins"],
    "bench run (no arguments: user error)": ["run"],
    "bench run (model/suite mismatch)": ["run", "--model", "topgap_cnn_pets3", "--suite", "cifar10-adv"],
}


def _bench_command() -> list[str]:
    script = Path(sys.executable).with_name("bench")
    found = str(script) if script.exists() else shutil.which("bench")
    return [found] if found else [sys.executable, "-c", "from bench.cli import main; main()"]


def _wall_seconds(argv: list[str], repeats: int) -> list[float]:
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(argv, capture_output=True, check=False)
        seconds.append(time.perf_counter() - start)
    return seconds


def cli_startup(env: Env, rows: Rows) -> None:
    """Wall seconds of CLI commands that compute nothing, vs Python start-up and ``import torch``."""
    repeats = env.size(7, 2)
    bench = _bench_command()
    cases = {name: (bench + args, "wall_seconds") for name, args in COMMANDS.items()}
    cases["python -c pass"] = ([sys.executable, "-c", "pass"], "reference_seconds")
    cases["python -c 'import torch'"] = ([sys.executable, "-c", "import torch"], "reference_seconds")
    for variant, (argv, metric) in cases.items():
        seconds = _wall_seconds(argv, repeats)
        add = rows.scope(variant, n=repeats, batch_size=None, threads=1, params={"argv": argv[1:]})
        add(metric, min(seconds), "s")
        add(f"{metric}_median", statistics.median(seconds), "s")
