"""RIBench: robustness and interpretability benchmark suite for image classifiers.

The public API (imported on first use, so that ``import bench`` stays cheap):

- ``bench.evaluate(model_or_name, suite, *, n=None, device=None, batch_size=None, out=None, seed=0)``: tidy rows;
- ``bench.pivot(rows)``: one line per plugin setting, one column per metric;
- ``bench.load_model(name)``, ``bench.list_models()``: the zoo (and models registered in code).

Example:
    >>> import bench
    >>> rows = bench.evaluate("standard_cnn", "cifar10-adv-quick", n=20)
    >>> print(bench.pivot(rows))
"""

from __future__ import annotations

from typing import Any

from bench._version import __version__

__all__ = ["__version__", "evaluate", "list_models", "load_model", "pivot"]

_API = ("evaluate", "list_models", "load_model", "pivot")


def __getattr__(name: str) -> Any:
    if name in _API:
        from bench import api

        return getattr(api, name)
    raise AttributeError(f"module 'bench' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_API))
