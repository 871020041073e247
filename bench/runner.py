"""``bench run``: evaluate a model on a suite, plugin by plugin, batch by batch, resumably."""

from __future__ import annotations

import shlex
import sys
import time
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass, replace

import pandas as pd
import torch
from filelock import FileLock, Timeout
from tqdm import tqdm

from bench.data import ImageDataset, load_dataset
from bench.exceptions import BadModelError, MissingDataError
from bench.executors import Executor, ShardJob, shard_jobs
from bench.executors.base import BATCH_SECONDS
from bench.executors.local import LocalExecutor
from bench.intervals import with_intervals
from bench.models.cards import read_card
from bench.models.fingerprint import combined_sha256, state_dict_sha256
from bench.models.submit import logits_problem
from bench.plugins import Context
from bench.provenance import provenance, utc_now
from bench.registry import MODELS
from bench.results import COMPUTE_SECONDS, ResultsStore, UnitKey, atomic_write_parquet, canonical_json
from bench.suites import Suite, check_only, load_suite


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
    only: tuple[str, ...] = ()  # run only these plugins of the suite (rows are the same as in a full run)


def model_sha256(name: str, model: torch.nn.Module) -> str:
    """The zoo card's sha256, or a hash of the state dict for models registered in code; for a model built by a
    Python file (``--model file.py:fn`` or a zoo ``model.py``), the file's and the loaded weights' together."""
    meta = MODELS.entry(name).meta
    if meta.get("source") == "zoo":
        card = read_card(name)
        return combined_sha256(card["sha256"], state_dict_sha256(model)) if card.get("factory") else card["sha256"]
    if meta.get("source") == "file":
        return combined_sha256(meta["file_sha256"], state_dict_sha256(model))
    return state_dict_sha256(model)


def check_model(model: torch.nn.Module, data: ImageDataset, device: str) -> None:
    """Fail before anything is written if the model's outputs are unusable."""
    batch = data.batch(torch.arange(min(8, len(data)))).to(device)
    with torch.no_grad():
        logits = model(batch.x)
    problem = logits_problem(logits, len(batch.x), data.num_classes)
    if problem:
        raise BadModelError(f"{problem} (dataset {data.name})")


def reproduce_command(model: str, suite: str, n: int, opts: RunOptions) -> str:
    """The command that recomputes a row; for a model that only exists in someone's Python session, what it needs.

    Example:
        >>> reproduce_command("standard_cnn", "cifar10-adv", 200, RunOptions())
        'bench run --model standard_cnn --suite cifar10-adv --limit 200 --seed 0'
    """
    meta = MODELS.peek(model).meta
    if meta.get("source") == "custom":  # an nn.Module handed to bench.evaluate: no name loads it
        options = f", batch_size={opts.batch_size}" if opts.batch_size else ""
        return (
            f"bench.evaluate(model, {suite!r}, n={n}, seed={opts.seed}{options})  # needs the nn.Module "
            f"{meta['class_name']} whose state_dict has sha256 {meta['state_sha256']}; it is in no zoo "
            "(bench zoo submit adds it)"
        )
    args = ["bench", "run", "--model", meta.get("cli_model", model), "--suite", suite, "--limit", str(n)]
    args += ["--seed", str(opts.seed)]
    if opts.batch_size:
        args += ["--batch-size", str(opts.batch_size)]
    if opts.bf16:
        args.append("--bf16")
    return shlex.join(args)


@dataclass
class Unit:
    """One plugin run of a model on a suite: its key, its job and what its rows carry."""

    key: UnitKey
    job: ShardJob
    base_row: dict


@dataclass(frozen=True)
class Selection:
    """Which rows of a model x suite table belong to this run."""

    model: str
    suite: str
    model_sha256: str
    n: int
    seed: int
    precision: str

    def select(self, table: pd.DataFrame) -> pd.DataFrame:
        if table.empty:
            return table
        return table[
            (table["model_sha256"] == self.model_sha256)
            & (table["n"] == self.n)
            & (table["seed"] == self.seed)
            & (table["precision"] == self.precision)
        ]


def plan_suite(model_name: str, suite_name: str, opts: RunOptions, store: ResultsStore) -> tuple[list[Unit], Selection]:
    """Check the model, data and plugins of one model x suite; return its units not yet in the store."""
    suite: Suite = load_suite(suite_name)
    model = MODELS.create(model_name, device=opts.device).eval()  # clean and attacks alike see eval mode
    data = load_dataset(suite.dataset, suite.split, opts.data_root)
    n = min(opts.limit or suite.n, suite.n, len(data))
    check_model(model, data, opts.device)
    plugins = [spec.build() for spec in _selected(suite, opts.only)]  # bad params fail before anything runs
    needing_masks = [p.name for p in plugins if p.requires_masks]
    if needing_masks and data.masks is None:
        raise MissingDataError(f"plugins {', '.join(needing_masks)} need object masks, which {data.name} has none of")
    sha = model_sha256(model_name, model)
    precision = "bf16" if opts.bf16 else "fp32"
    ctx = Context(
        seed=opts.seed,
        device=opts.device,
        precision=precision,
        dataset=data,
        model=model_name,
        data_root=opts.data_root,
    )
    base_row = {**provenance(opts.device), "command": reproduce_command(model_name, suite.name, n, opts)}
    batch_size = opts.batch_size or suite.batch_size
    units = []
    selection = Selection(model_name, suite.name, sha, n, opts.seed, precision)
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
        job = ShardJob(key.unit, model, data, plugin, ctx, tuple(range(0, n, batch_size)), batch_size, n)
        units.append(Unit(key, job, base_row))
    return units, selection


def _selected(suite: Suite, only: tuple[str, ...]) -> list:
    check_only(suite.name, tuple(spec.plugin for spec in suite.plugins), only)
    return [spec for spec in suite.plugins if not only or spec.plugin in only]


def unit_label(unit: Unit) -> str:
    """How a person names a unit: 'standard_cnn · PGD-20 ε=8/255'."""
    return f"{unit.key.model} · {unit.job.plugin.describe()}"


class UnitFinisher:
    """Computes the units this process claimed: saves each finished batch as a part file; once a unit has all its
    parts, writes its per-example file and rows. Each unit being computed has its own progress bar (and ETA)."""

    def __init__(self, store: ResultsStore, units: list[Unit], progress: bool) -> None:
        self.store = store
        self.units = {u.key.unit: u for u in units}
        self.missing: dict[str, set[int]] = {}
        self.progress = progress
        self.bars: dict[str, tqdm] = {}

    def start(self, unit: Unit) -> ShardJob | None:
        """The batches of a claimed unit still to compute; None when there are none (finished here or elsewhere)."""
        key = unit.key
        if self.store.has_unit(key):  # another run finished it after this one planned
            return None
        examples = self.store.read_unit_examples(key)
        if examples is not None:  # its rows were lost (table moved aside): rebuild them, don't recompute
            self.write_rows(unit, examples, examples.attrs.get(COMPUTE_SECONDS, float("nan")))
            return None
        missing = {s for s in unit.job.starts if not self.store.part_path(key, s).exists()}  # a killed run's parts
        self.missing[key.unit] = missing
        if not missing:
            self.finish(unit)
            return None
        done = unit.job.n_examples - unit.job.examples_in(missing)
        self.bars[key.unit] = tqdm(
            total=unit.job.n_examples,
            initial=done,  # a resumed unit's ETA counts only what this run computes
            desc=unit_label(unit),
            unit="img",
            disable=not self.progress,
            file=sys.stderr,
            dynamic_ncols=True,
        )
        return replace(unit.job, starts=tuple(sorted(missing)))

    def on_batch(self, job: ShardJob, start: int, part: pd.DataFrame) -> None:
        unit = self.units[job.unit]
        atomic_write_parquet(part, self.store.part_path(unit.key, start))
        self.bars[job.unit].update(len(part))
        self.missing[job.unit].discard(start)
        if not self.missing[job.unit]:
            self.bars.pop(job.unit).close()
            self.finish(unit)

    def finish(self, unit: Unit) -> None:
        parts = [self.store.read_part(unit.key, s) for s in unit.job.starts]
        compute_seconds = sum(float(p[BATCH_SECONDS].iloc[0]) for p in parts if len(p) and BATCH_SECONDS in p)
        examples = pd.concat(parts, ignore_index=True).drop(columns=BATCH_SECONDS, errors="ignore")
        examples.attrs[COMPUTE_SECONDS] = compute_seconds
        self.write_rows(unit, examples, compute_seconds)

    def write_rows(self, unit: Unit, examples: pd.DataFrame, compute_seconds: float) -> None:
        started = time.perf_counter()
        metrics = unit.job.plugin.summarize(examples, unit.job.ctx)
        wall = compute_seconds + time.perf_counter() - started
        rows = [
            {
                **unit.base_row,
                **unit.key.columns(),
                "metric": m,
                "value": float(v),
                "wall_seconds": round(wall, 3),
                "timestamp": utc_now(),
            }
            for m, v in metrics
        ]
        self.store.finish_unit(unit.key, examples, with_intervals(rows, unit.job.plugin, examples, unit.key.seed))

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()


def claimed_rounds(store: ResultsStore, units: list[Unit], per_round: int | None) -> Iterator[list[Unit]]:
    """Claim units (up to ``per_round`` at a time, None: all that are free) and yield them, a round at a time.

    A round's claims are held until the caller asks for the next round (or closes the generator). A unit that
    another process holds is left for later; once every remaining unit is held elsewhere, this waits for the first:
    its holder finishes it, or dies and the OS releases its lock. So concurrent runs of overlapping grids split the
    units between them, and no unit is computed or written twice.

    Example:
        >>> with closing(claimed_rounds(store, units, per_round=1)) as rounds:
        ...     for claimed in rounds:
        ...         ...  # compute the claimed units
    """
    waiting = list(units)
    while waiting:
        held = _claim_free(store, waiting, per_round) or [_wait_for(store, waiting[0])]
        ids = {unit.key.unit for unit, _ in held}
        waiting = [unit for unit in waiting if unit.key.unit not in ids]
        try:
            yield [unit for unit, _ in held]
        finally:
            for _, claim in held:
                claim.release()


def _claim_free(store: ResultsStore, units: list[Unit], limit: int | None) -> list[tuple[Unit, FileLock]]:
    held = []
    for unit in units:
        if limit is not None and len(held) >= limit:
            break
        claim = store.unit_claim(unit.key)
        try:
            claim.acquire(blocking=False)
        except Timeout:
            continue
        held.append((unit, claim))
    return held


def _wait_for(store: ResultsStore, unit: Unit) -> tuple[Unit, FileLock]:
    key = unit.key
    print(f"{key.plugin} {key.params_hash[:6]}: waiting for another bench run that is computing it", file=sys.stderr)
    claim = store.unit_claim(key)
    claim.acquire()
    return unit, claim


def run_grid(
    models: list[str],
    suites: list[str],
    opts: RunOptions,
    executor: Executor | None = None,
    shard_size: int | None = None,
) -> list[pd.DataFrame]:
    """Evaluate every model on every suite; return one table per (model, suite), in that order.

    Everything is checked before anything runs. The executor (default: local) runs the missing batches in shards
    of about ``shard_size`` examples (whole batches); each finished batch is saved, each finished unit writes rows.
    Units are claimed first (see ``claimed_rounds``), so runs started together into one ``--out`` share the work.
    """
    store = ResultsStore(opts.out)
    plans = [plan_suite(m, s, opts, store) for m in models for s in suites]
    units = [u for units, _ in plans for u in units]
    if units:
        store.check_writable()
    runner = executor or LocalExecutor()
    finisher = UnitFinisher(store, units, opts.progress)
    try:
        with closing(claimed_rounds(store, units, runner.units_per_round)) as rounds:
            for claimed in rounds:
                jobs = [job for job in map(finisher.start, claimed) if job is not None]
                runner.run([shard for job in jobs for shard in shard_jobs(job, shard_size)], finisher.on_batch)
    finally:
        finisher.close()
    return [selection.select(store.read(selection.suite, selection.model)) for _, selection in plans]


def run_suite(model_name: str, suite_name: str, opts: RunOptions) -> pd.DataFrame:
    return run_grid([model_name], [suite_name], opts)[0]
