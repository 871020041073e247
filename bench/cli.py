"""The ``bench`` command line."""

from __future__ import annotations

import json
import os
import sys

import typer
from typer._click import Context
from typer._click.exceptions import UsageError as ClickUsageError
from typer.core import TyperGroup

from bench.commands import report as report_commands
from bench.commands import zoo as zoo_commands
from bench.devices import resolve_device
from bench.exceptions import RIBenchError, UsageError
from bench.summary import FORMATS

# Bad input: one line and exit code 2. FileNotFoundError / FileExistsError come from paths the user named.
USER_ERRORS = (RIBenchError, FileNotFoundError, FileExistsError)


class _OneLineErrors(TyperGroup):
    """The root command group: catches every user error of every command once, printing it as one line."""

    def invoke(self, ctx: Context):
        try:
            return super().invoke(ctx)
        except USER_ERRORS as err:
            typer.echo(f"error: {err}", err=True)
            raise typer.Exit(2) from None
        except ClickUsageError as err:  # bad option value, missing argument, unknown command
            typer.echo(f"error: {err.format_message()}", err=True)
            raise typer.Exit(2) from None


app = typer.Typer(
    cls=_OneLineErrors,
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    help="RIBench: robustness and interpretability benchmarks.",
)


@app.callback()
def _root() -> None:
    """RIBench: robustness and interpretability benchmarks for image classifiers."""


@app.command()
def train(
    name: str = typer.Option(..., help="Zoo name for the trained model, e.g. topgap_cnn_k64."),
    method: str = typer.Option("standard", help="Training method: standard or topgap."),
    arch: str = typer.Option("cnn", help="Backbone architecture (see `bench list archs`)."),
    dataset: str = typer.Option("cifar10", help="Training dataset (its train/trainval split is used)."),
    epochs: int = typer.Option(15, min=1, help="Number of epochs."),
    batch_size: int = typer.Option(256, min=1, help="Batch size."),
    lr: float = typer.Option(0.2, help="Peak learning rate of the cyclic (triangular) schedule."),
    weight_decay: float = typer.Option(5e-4, help="SGD weight decay (not applied to biases and BN)."),
    k: int = typer.Option(64, help="Top-GAP: number of top CAM positions averaged per class."),
    lambda_l1: float = typer.Option(1.0, help="Top-GAP: weight of ||CAM||_1 in the loss."),
    l1_reduction: str = typer.Option("mean", help="Top-GAP: ||CAM||_1 as the entry mean ('mean') or per-image sum."),
    num_maps: int | None = typer.Option(None, help="Top-GAP: backbone maps tapped by the FPN head [per-arch default]."),
    fpn_channels: int | None = typer.Option(None, help="Top-GAP: filters of each 3x3 lateral [per-arch default]."),
    seed: int = typer.Option(0, help="Seed for init, shuffling and augmentation."),
    bf16: bool = typer.Option(True, help="bf16 autocast on CPU (about 2x faster here)."),
    init_from: str | None = typer.Option(None, help="Initialize the backbone from this zoo model."),
    data_root: str | None = typer.Option(None, envvar="RIBENCH_DATA", help="Folder with the dataset files."),
    threads: int = typer.Option(0, help="torch threads (0 = torch default)."),
    abort_below: float = typer.Option(0.0, help="Stop when an epoch's training accuracy (from epoch 2) is below this."),
    resume: bool = typer.Option(True, help="Resume from runs/NAME/last.pt when it exists."),
    hp: list[str] = typer.Option([], "--hp", help="Extra method hyper-parameter KEY=VALUE (repeatable; YAML scalar)."),
    device: str = typer.Option("cpu", help="cpu or cuda (data resident on the GPU, one host read per epoch)."),
    normalization: str | None = typer.Option(
        None, help="Input normalization inside the model: cifar10, imagenet or none [the arch's default]."
    ),
    nesterov: bool = typer.Option(True, help="Nesterov momentum (the paper's PRN18 recipe uses --no-nesterov)."),
    limit: int | None = typer.Option(None, min=1, help="Only the first N train and evaluation images (rehearsals)."),
    weights_dtype: str = typer.Option("float32", help="Stored weights: float32, or float16 (half the size)."),
    max_part_mib: float | None = typer.Option(None, help="Cut the weights file into parts of at most this many MiB."),
    eval_split: str = typer.Option(
        "test", help="Split the card's clean accuracy is measured on, e.g. 'test[balanced-1000]'."
    ),
) -> None:
    """Train a model and write it to model_zoo/NAME (weights + card)."""
    import torch
    import yaml

    from bench.train import TrainConfig
    from bench.train import train as run_training

    if device not in ("cpu", "cuda") or (device == "cuda" and not torch.cuda.is_available()):
        reason = "torch sees no CUDA device here" if device == "cuda" else "use cpu or cuda"
        typer.echo(f"error: --device {device}: {reason}", err=True)
        raise typer.Exit(2)
    if threads:
        torch.set_num_threads(threads)
    cfg = TrainConfig(
        name=name,
        method=method,
        arch=arch,
        dataset=dataset,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        weight_decay=weight_decay,
        seed=seed,
        bf16=bf16,
        data_root=data_root,
        init_from=init_from,
        abort_below=abort_below,
        device=device,
        normalization=normalization,
        nesterov=nesterov,
        limit=limit,
        weights_dtype=weights_dtype,
        max_part_mib=max_part_mib,
        eval_split=eval_split,
    )
    hparams = (
        {
            "k": k,
            "lambda_l1": lambda_l1,
            "l1_reduction": l1_reduction,
            "num_maps": num_maps,
            "fpn_channels": fpn_channels,
        }
        if method == "topgap"
        else {}
    )
    for item in hp:
        key, sep, value = item.partition("=")
        if not sep:
            raise UsageError(f"--hp expects KEY=VALUE, got '{item}'")
        hparams[key.strip().replace("-", "_")] = yaml.safe_load(value)
    folder = run_training(cfg, hparams, resume=resume)
    typer.echo(json.dumps({"saved": str(folder)}))


LIST_KINDS = ("models", "datasets", "plugins", "suites", "archs", "methods", "executors")


@app.command("list")
def list_(kind: str = typer.Argument(..., help=f"What to list: {', '.join(LIST_KINDS)}.")) -> None:
    """List the registered models, datasets, plugins, suites, architectures or training methods."""
    from bench import registry

    registries = {
        "models": registry.MODELS,
        "datasets": registry.DATASETS,
        "plugins": registry.PLUGINS,
        "suites": registry.SUITES,
        "archs": registry.ARCHS,
        "methods": registry.METHODS,
        "executors": registry.EXECUTORS,
    }
    if kind not in registries:
        raise UsageError(f"unknown kind '{kind}' (choose one of {', '.join(LIST_KINDS)})")
    chosen = registries[kind]
    for entry in chosen:
        detail = chosen.description(entry.name) or entry.meta.get("source") or entry.meta.get("path") or ""
        typer.echo(f"{entry.name:28s} {detail}")


@app.command()
def run(
    model: str = typer.Option(
        "",
        help="Model name(s), comma-separated (see `bench list models`), or path/to/file.py[:function] "
        "(default function: create_model) returning an nn.Module.",
    ),
    suite: str = typer.Option("", help="Suite name(s), comma-separated (see `bench list suites`), or YAML paths."),
    zoo: list[str] = typer.Option(
        [],
        "--zoo",
        help="Extra zoo folder(s) of <name>/card.yaml, searched after the official zoo (repeatable; RIBENCH_ZOO too).",
    ),
    limit: int | None = typer.Option(None, help="Evaluate only the first N examples of the suite's split (N >= 1)."),
    batch_size: int | None = typer.Option(None, min=1, help="Batch size (default: the suite's)."),
    seed: int = typer.Option(0, help="Seed for random starts and stochastic attacks."),
    data_root: str | None = typer.Option(
        None,
        envvar="RIBENCH_DATA",
        help="Folder with dataset files; without one, CIFAR-10 uses the embedded 1,000-image sample.",
    ),
    device: str = typer.Option("auto", help="auto (CUDA when present), cpu, cuda or cuda:N."),
    threads: int = typer.Option(0, min=0, help="torch CPU threads (0 = torch default)."),
    out: str | None = typer.Option(
        None, envvar="RIBENCH_RESULTS", help="Results folder (default: ./results; inside the clone, its results/)."
    ),
    bf16: bool = typer.Option(
        False, "--bf16", help="bf16 autocast for attacks (recorded as precision=bf16 in every row)."
    ),
    progress: bool = typer.Option(True, help="Show progress bars."),
    executor: str = typer.Option("local", help="Where shards run: local (in-process) or ray."),
    address: str | None = typer.Option(
        None, help="Ray only: 'auto' joins a running cluster, 'ray://host:port' uses Ray Client; none starts one."
    ),
    shard_size: int | None = typer.Option(
        None, min=1, help="Examples per shard (rounded up to whole batches); default: one shard per plugin run."
    ),
    grid: str | None = typer.Option(None, help="YAML file with 'models:' and 'suites:' lists (adds to the options)."),
    only: str = typer.Option(
        "", help="Run only these plugins of the suite(s), comma-separated; a later full run adds the rest."
    ),
    gpus_per_shard: float = typer.Option(
        1.0, min=0.0, help="Ray with --device cuda: GPUs each shard asks for (0.25: four shards share one GPU)."
    ),
    fmt: str = typer.Option("table", "--format", help="Final summary: table, md, csv or json."),
) -> None:
    """Evaluate MODEL on SUITE and append tidy rows to results/<suite>/<model>.parquet (resumable).

    Several models and suites (comma-separated, or a --grid file) run as one campaign: every (model, suite,
    plugin) unit is split into shards of examples and run by the executor; a re-run only does what is missing.
    """
    only_names = _split(only)
    if fmt not in FORMATS:
        raise UsageError(f"--format {fmt}: use one of {', '.join(FORMATS)}")
    if limit is not None and limit < 1:
        raise UsageError(f"--limit must be >= 1 (got {limit}); omit it to use the suite's n")
    from bench.models.cards import add_zoo_roots
    from bench.models.factory import resolve_model

    if zoo:
        add_zoo_roots([p for value in zoo for p in value.split(os.pathsep) if p])
    models, suites = _grid_names(model, suite, grid)
    models = [resolve_model(spec) for spec in models]  # a file.py[:function] is registered under its file name
    _check_names(models, suites, only_names, executor)  # everything a user can get wrong, before torch loads
    device = resolve_device(device)

    import torch

    from bench.registry import EXECUTORS
    from bench.runner import RunOptions, run_grid

    if threads:
        torch.set_num_threads(threads)
    opts = RunOptions(
        limit=limit,
        batch_size=batch_size,
        seed=seed,
        data_root=data_root,
        device=device,
        out=out,
        bf16=bf16,
        progress=progress,
        only=only_names,
    )
    runner = EXECUTORS.entry(executor)
    if executor == "ray":
        pool = runner.factory(address=address, gpus_per_task=gpus_per_shard if device.startswith("cuda") else 0.0)
    else:
        pool = runner.factory()
    try:
        tables = run_grid(models, suites, opts, pool, shard_size)
    finally:
        pool.close()
    _print_summary(tables, fmt)


def _split(names: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(n.strip() for n in names.split(",") if n.strip()))


def _grid_names(model: str, suite: str, grid: str | None) -> tuple[list[str], list[str]]:
    """Models and suites from the options and the grid file, in order, without repeats."""
    models, suites = list(_split(model)), list(_split(suite))
    if grid:
        spec = _read_grid(grid)
        models, suites = models + spec["models"], suites + spec["suites"]
    models, suites = list(dict.fromkeys(models)), list(dict.fromkeys(suites))
    if not models or not suites:
        raise UsageError("name at least one model and one suite: --model NAME --suite NAME, or --grid FILE")
    return models, suites


def _check_names(models: list[str], suites: list[str], only: tuple[str, ...], executor: str) -> None:
    """Unknown models, suites, executors, --only plugins and model/suite mismatches, without importing torch."""
    from bench.preflight import check_run
    from bench.registry import EXECUTORS

    EXECUTORS.peek(executor)
    check_run(models, suites, only)


def _read_grid(path: str) -> dict[str, list[str]]:
    from pathlib import Path

    import yaml

    if not Path(path).is_file():
        raise FileNotFoundError(f"grid file {path} not found")
    spec = yaml.safe_load(Path(path).read_text()) or {}
    unknown = set(spec) - {"models", "suites"}
    if unknown or not all(isinstance(spec.get(k, []), list) for k in ("models", "suites")):
        raise UsageError(f"{path}: a grid file has only 'models:' and 'suites:' lists (found {sorted(spec)})")
    return {"models": [str(m) for m in spec.get("models", [])], "suites": [str(s) for s in spec.get("suites", [])]}


def _print_summary(tables: list, fmt: str) -> None:
    import pandas as pd

    from bench.summary import render, summarize_rows

    rows = [t for t in tables if not t.empty]
    typer.echo(render(summarize_rows(pd.concat(rows, ignore_index=True)) if rows else pd.DataFrame(), fmt))


def _print_pivot(table) -> None:
    from bench.report.pivot import pivot

    if table.empty:
        typer.echo("no rows")
        return
    typer.echo(pivot(table).to_string())


@app.command()
def results(
    suite: str | None = typer.Option(None, help="Only this suite."),
    model: str | None = typer.Option(None, help="Only this model."),
    out: str | None = typer.Option(
        None, envvar="RIBENCH_RESULTS", help="Results folder (default: ./results; inside the clone, its results/)."
    ),
) -> None:
    """Show a pivot of the tidy rows: one line per model x suite x plugin setting, one column per metric."""
    from bench.results import ResultsStore

    _print_pivot(ResultsStore(out).read(suite, model))


data_app = typer.Typer(help="Dataset helpers.", no_args_is_help=True)
app.add_typer(data_app, name="data")


@data_app.command("download")
def data_download(
    name: str = typer.Argument(..., help="Dataset to download (cifar10)."),
    data_root: str = typer.Option(..., envvar="RIBENCH_DATA", help="Folder to download into."),
) -> None:
    """Download a dataset in its public format (needs internet; checksummed by torchvision)."""
    from pathlib import Path

    from bench.data.cifar import download_cifar10

    if name != "cifar10":
        raise UsageError(f"no downloader for '{name}' (available: cifar10)")
    download_cifar10(Path(data_root))


def main() -> None:
    """The ``bench`` console script."""
    sys.exit(app())


zoo_commands.register(app)
report_commands.register(app)
