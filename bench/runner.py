"""``bench run``: evaluate a model on a suite, plugin by plugin, batch by batch, resumably."""

from __future__ import annotations

import hashlib
import shlex
import sys
import time
from dataclasses import dataclass

import pandas as pd
import torch
from tqdm import tqdm

from bench.data import ImageDataset, MissingDataError, load_dataset
from bench.plugins import Context, Plugin
from bench.provenance import provenance, utc_now
from bench.registry import MODELS
from bench.results import ResultsStore, UnitKey, atomic_write_parquet, canonical_json
from bench.suites import Suite, load_suite


class BadModelError(RuntimeError):
    pass


@dataclass
class RunOptions:
    limit: int | None = None
    batch_size: int | None = None
    seed: int = 0
    data_root: str | None = None
    device: str = "cpu"
    out: str | None = None
    bf16: bool = False
    progress: bool = True


def model_sha256(name: str, model: torch.nn.Module) -> str:
    """The zoo card's sha256, or a hash of the state dict for models registered in code."""
    if MODELS.entry(name).meta.get("source") == "zoo":
        from bench.models.zoo import read_card

        return read_card(name)["sha256"]
    digest = hashlib.sha256()
    for key, tensor in sorted(model.state_dict().items()):
        digest.update(key.encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def check_model(model: torch.nn.Module, data: ImageDataset, device: str) -> None:
    """Fail before anything is written if the model's outputs are unusable."""
    batch = data.batch(torch.arange(min(8, len(data)))).to(device)
    with torch.no_grad():
        logits = model(batch.x)
    if logits.ndim != 2 or logits.shape != (len(batch.x), data.num_classes):
        raise BadModelError(
            f"model returns shape {tuple(logits.shape)}, expected "
            f"({len(batch.x)}, {data.num_classes}) logits for {data.name}"
        )
    if not torch.isfinite(logits).all():
        raise BadModelError("model returns NaN or infinite logits on clean inputs; check its weights")


def reproduce_command(model: str, suite: str, n: int, opts: RunOptions) -> str:
    args = ["bench", "run", "--model", model, "--suite", suite, "--limit", str(n), "--seed", str(opts.seed)]
    if opts.batch_size:
        args += ["--batch-size", str(opts.batch_size)]
    if opts.bf16:
        args.append("--bf16")
    return shlex.join(args)


def run_unit(
    store: ResultsStore,
    key: UnitKey,
    plugin: Plugin,
    model,
    data: ImageDataset,
    indices,
    batch_size: int,
    ctx: Context,
    base_row: dict,
    progress: bool,
) -> list[dict]:
    """Run one plugin over the examples, keeping finished batches so a killed run resumes."""
    start = time.perf_counter()
    parts: list[pd.DataFrame] = []
    bar = tqdm(
        total=len(indices),
        desc=f"{key.plugin} {key.params_hash[:6]}",
        unit="img",
        disable=not progress,
        file=sys.stderr,
    )
    for first in range(0, len(indices), batch_size):
        part_path = store.part_path(key, first)
        if part_path.exists():
            parts.append(pd.read_parquet(part_path))
        else:
            batch = data.batch(indices[first : first + batch_size])
            columns = plugin.run_batch(model, batch, ctx)
            part = pd.DataFrame({"index": batch.index.numpy(), **columns})
            atomic_write_parquet(part, part_path)
            parts.append(part)
        bar.update(len(parts[-1]))
    bar.close()
    examples = pd.concat(parts, ignore_index=True)
    metrics = plugin.summarize(examples, ctx)
    wall = time.perf_counter() - start
    rows = [
        {
            **base_row,
            **key.columns(),
            "metric": m,
            "value": float(v),
            "wall_seconds": round(wall, 3),
            "timestamp": utc_now(),
        }
        for m, v in metrics
    ]
    store.finish_unit(key, examples, rows)
    return rows


def run_suite(model_name: str, suite_name: str, opts: RunOptions) -> pd.DataFrame:
    suite: Suite = load_suite(suite_name)
    model = MODELS.create(model_name, device=opts.device)
    data = load_dataset(suite.dataset, suite.split, opts.data_root)
    n = min(opts.limit or suite.n, suite.n, len(data))
    check_model(model, data, opts.device)
    plugins = [spec.build() for spec in suite.plugins]  # fail on bad params before running anything
    needing_masks = [p.name for p in plugins if p.requires_masks]
    if needing_masks and data.masks is None:
        raise MissingDataError(f"plugins {', '.join(needing_masks)} need object masks, which {data.name} has none of")
    sha = model_sha256(model_name, model)
    store = ResultsStore(opts.out)
    precision = "bf16" if opts.bf16 else "fp32"
    ctx = Context(seed=opts.seed, device=opts.device, precision=precision, dataset=data, model=model_name,
                  data_root=opts.data_root)
    base_row = {**provenance(opts.device), "command": reproduce_command(model_name, suite.name, n, opts)}
    indices = torch.arange(n)
    for plugin in plugins:
        key = UnitKey(
            model_name,
            sha,
            data.name,
            data.split,
            n,
            suite.name,
            plugin.name,
            canonical_json(plugin.params()),
            opts.seed,
            precision,
        )
        if store.has_unit(key):
            print(
                f"{plugin.name} {key.params_hash[:6]}: already in {store.table_path(suite.name, model_name)}",
                file=sys.stderr,
            )
            continue
        torch.manual_seed(opts.seed)
        run_unit(
            store, key, plugin, model, data, indices, opts.batch_size or suite.batch_size, ctx, base_row, opts.progress
        )
    table = store.read(suite.name, model_name)
    return table[
        (table["model_sha256"] == sha)
        & (table["n"] == n)
        & (table["seed"] == opts.seed)
        & (table["precision"] == precision)
    ]
