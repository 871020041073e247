"""The Python API: load zoo models, evaluate any ``nn.Module`` on a suite, pivot the rows (``import bench``).

Example:
    >>> import bench
    >>> rows = bench.evaluate("standard_cnn", "cifar10-adv-quick", n=20)
    >>> table = bench.pivot(rows)
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator

import pandas as pd
import torch

from bench.devices import resolve_device
from bench.exceptions import UsageError
from bench.models.factory import resolve_model
from bench.models.fingerprint import state_dict_sha256
from bench.preflight import check_run
from bench.registry import MODELS


def list_models(pattern: str = "*") -> list[str]:
    """Names of the models ``load_model`` and ``evaluate`` accept: the zoo's and any registered in code.

    Args:
        pattern: a shell-style filter, e.g. ``"topgap_*"``.

    Returns:
        Sorted names.

    Example:
        >>> "standard_cnn" in bench.list_models()
        True
    """
    return MODELS.names(pattern)


def load_model(name: str, device: str | None = "cpu") -> torch.nn.Module:
    """A model by name: a zoo model (sha256-verified), a registered one, or ``path/to/file.py[:function]``.

    Args:
        name: see ``list_models()``; or a Python file whose function (default ``create_model``) returns the model.
        device: ``cpu``, ``cuda``, ``cuda:N`` or ``auto``/None (CUDA when present).

    Returns:
        The model in eval mode, taking [0, 1] images (N, 3, H, W) and returning logits.

    Example:
        >>> model = bench.load_model("topgap_cnn")
        >>> model(torch.rand(2, 3, 32, 32)).shape
        torch.Size([2, 10])
    """
    return MODELS.create(resolve_model(name), device=resolve_device(device)).eval()


def evaluate(
    model_or_name: torch.nn.Module | str,
    suite: str,
    *,
    n: int | None = None,
    device: str | None = None,
    batch_size: int | None = None,
    out: str | os.PathLike | None = None,
    seed: int = 0,
    progress: bool = True,
) -> pd.DataFrame:
    """Evaluate a model on a suite; return its tidy rows (one measurement per row, with what produced it).

    The model runs in eval mode for the whole run and gets its mode (and device) back afterwards. Nothing is
    written unless ``out`` is given; with ``out``, the run resumes and skips what is already there, like
    ``bench run --out``. An ``nn.Module`` that is not in the zoo is named ``custom:<ClassName>:<12 hex>``
    (the sha256 of its state dict), so every row says which weights it measured.

    Args:
        model_or_name: an ``nn.Module`` taking [0, 1] images (N, 3, H, W) and returning logits, or a name
            ``load_model`` accepts.
        suite: a suite name (``bench list suites``) or the path of a suite YAML.
        n: evaluate the first ``n`` examples of the suite's split (default: the suite's n).
        device: ``cpu``, ``cuda``, ``cuda:N``, or ``auto``/None (CUDA when present).
        batch_size: default: the suite's.
        out: a results folder to write to (and resume from); None writes nothing.
        seed: seed of random starts and stochastic attacks.
        progress: show a progress bar per plugin run on stderr.

    Returns:
        A DataFrame with the columns of ``results/README.md`` (``model``, ``plugin``, ``params``, ``metric``,
        ``value``, ...); ``bench.pivot(rows)`` lays it out as one line per plugin setting.

    Example:
        >>> rows = bench.evaluate(my_model, "cifar10-adv-quick", n=100)
        >>> bench.pivot(rows)["robust_accuracy"]
    """
    if n is not None and n < 1:
        raise UsageError(f"n must be >= 1 (got {n}); None evaluates the suite's n")
    device = resolve_device(device)
    if isinstance(model_or_name, torch.nn.Module):
        with _registered(model_or_name, device) as name:
            return _run(name, suite, n, device, batch_size, out, seed, progress)
    if not isinstance(model_or_name, str):
        raise UsageError(f"evaluate takes an nn.Module or a model name, not {type(model_or_name).__name__}")
    return _run(resolve_model(model_or_name), suite, n, device, batch_size, out, seed, progress)


def pivot(rows: pd.DataFrame) -> pd.DataFrame:
    """One line per (model, suite, plugin setting), one column per metric.

    Args:
        rows: tidy rows from ``evaluate`` or a results folder.

    Returns:
        The pivoted table.

    Example:
        >>> bench.pivot(bench.evaluate("standard_cnn", "cifar10-adv-quick", n=20))
    """
    from bench.report.pivot import pivot as pivot_rows

    return pivot_rows(rows)


def custom_name(model: torch.nn.Module) -> str:
    """``custom:<ClassName>:<first 12 hex of the state dict's sha256>``.

    Example:
        >>> custom_name(torch.nn.Linear(2, 2)).startswith("custom:Linear:")
        True
    """
    return f"custom:{type(model).__name__}:{state_dict_sha256(model)[:12]}"


@contextlib.contextmanager
def _registered(model: torch.nn.Module, device: str) -> Iterator[str]:
    """Register ``model`` under its custom name for one run, in eval mode on ``device``; restore it afterwards."""
    was_training = model.training
    first = next(model.parameters(), None)
    home = first.device if first is not None else None
    name = custom_name(model)
    state_sha = state_dict_sha256(model)
    MODELS.add(
        name,
        lambda device="cpu": model.to(device),
        source="custom",
        class_name=type(model).__name__,
        state_sha256=state_sha,
    )
    model.eval()
    try:
        yield name
    finally:
        MODELS.remove(name)
        model.train(was_training)
        if home is not None:
            model.to(home)


def _run(
    name: str,
    suite: str,
    n: int | None,
    device: str,
    batch_size: int | None,
    out: str | os.PathLike | None,
    seed: int,
    progress: bool,
) -> pd.DataFrame:
    from bench.runner import RunOptions, run_grid

    check_run([name], [suite], ())
    with contextlib.ExitStack() as stack:
        folder = out if out is not None else stack.enter_context(tempfile.TemporaryDirectory(prefix="ribench-"))
        opts = RunOptions(limit=n, batch_size=batch_size, seed=seed, device=device, out=str(folder), progress=progress)
        return run_grid([name], [suite], opts)[0].reset_index(drop=True)
