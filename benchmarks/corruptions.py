"""Cost of generating the 15 common corruptions (what ``corruption`` with ``source: generate`` pays, cache bypassed)."""

from __future__ import annotations

import numpy as np
from tqdm import tqdm

from bench.corruptions import COMMON, corrupt_images, resolve_protocol
from benchmarks.common import THREADS, Env, Rows, num_threads, timed

SEVERITY = 3


def corruption_cost(env: Env, rows: Rows) -> None:
    n, repeats = env.n(env.size(20, 2)), env.size(3, 1)
    images, index = env.data.images[:n].numpy(), np.arange(n)
    protocol = resolve_protocol("auto", images.shape[1:])  # as the plugin: cifar10-c for 32x32 images
    params = {"severity": SEVERITY, "protocol": protocol, "seed": 0, "repeats": repeats, "split": env.data.split}
    total = 0.0
    with num_threads(THREADS):
        for name in tqdm(COMMON, desc="corruption_cost", leave=False):
            corrupt_images(images[:1], index[:1], name, SEVERITY, 0, protocol)  # warm-up: lazy imports, tables
            seconds, _ = timed(lambda c=name: corrupt_images(images, index, c, SEVERITY, 0, protocol), repeats)
            total += seconds
            row = rows.scope(name, n=n, batch_size=None, threads=THREADS, params=params)
            row("seconds_per_image", seconds / n, "s/img")
    row = rows.scope("all_15", n=n, batch_size=None, threads=THREADS, params=params)
    row("seconds_per_image", total / n, "s/img")
    row("seconds", total, "s")
