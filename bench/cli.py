"""The ``bench`` command line."""

from __future__ import annotations

import json
from typing import Optional

import typer

app = typer.Typer(no_args_is_help=True, add_completion=False, help="RIBench: robustness and interpretability benchmarks.")


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
    lambda_l1: float = typer.Option(1.0, help="Top-GAP: weight of mean|CAM| in the loss."),
    num_maps: int = typer.Option(2, help="Top-GAP: number of last backbone maps tapped by the FPN head."),
    fpn_channels: int = typer.Option(256, help="Top-GAP: filters of each 3x3 lateral conv."),
    seed: int = typer.Option(0, help="Seed for init, shuffling and augmentation."),
    bf16: bool = typer.Option(True, help="bf16 autocast on CPU (about 2x faster here)."),
    init_from: Optional[str] = typer.Option(None, help="Initialize the backbone from this zoo model."),
    data_root: Optional[str] = typer.Option(None, envvar="RIBENCH_DATA", help="Folder with the dataset files."),
    threads: int = typer.Option(0, help="torch threads (0 = torch default)."),
    resume: bool = typer.Option(True, help="Resume from runs/NAME/last.pt when it exists."),
) -> None:
    """Train a model and write it to model_zoo/NAME (weights + card)."""
    import torch

    from bench.train import TrainConfig
    from bench.train import train as run_training

    if threads:
        torch.set_num_threads(threads)
    cfg = TrainConfig(name=name, method=method, arch=arch, dataset=dataset, epochs=epochs, batch_size=batch_size,
                      lr=lr, weight_decay=weight_decay, seed=seed, bf16=bf16, data_root=data_root, init_from=init_from)
    hparams = {"k": k, "lambda_l1": lambda_l1, "num_maps": num_maps, "fpn_channels": fpn_channels} if method == "topgap" else {}
    folder = run_training(cfg, hparams, resume=resume)
    typer.echo(json.dumps({"saved": str(folder)}))


def main() -> None:
    app()
