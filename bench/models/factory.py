"""Models from Python files: ``path/to/file.py`` exposing a function (default ``create_model``) returning the model.

Importing the file runs code the user chose to run (a submission, or ``bench run --model file.py:fn``). Such a model
is registered as ``<file name>:<function>`` (e.g. ``mynet.py:create_model``); its ``model_sha256`` covers the file
and the weights the function loads.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
from pathlib import Path
from typing import Any

from bench.exceptions import BadModelError
from bench.provenance import sha256_file
from bench.registry import MODELS

DEFAULT_FUNCTION = "create_model"


def split_spec(spec: str) -> tuple[Path, str] | None:
    """``"dir/net.py:build"`` -> (Path("dir/net.py"), "build"); ``"dir/net.py"`` -> create_model; a name -> None.

    Example:
        >>> split_spec("nets/mine.py:build")
        (PosixPath('nets/mine.py'), 'build')
        >>> split_spec("standard_cnn") is None
        True
    """
    path, sep, function = spec.rpartition(":") if ".py:" in spec else (spec, "", "")
    if not path.endswith(".py"):
        return None
    return Path(path), (function if sep else DEFAULT_FUNCTION) or DEFAULT_FUNCTION


def load_factory_file(path: Path, function: str = DEFAULT_FUNCTION) -> Any:
    """Import the Python file ``path`` and return ``function()``, the model.

    Args:
        path: a ``.py`` file.
        function: the name of a function in it that takes no arguments and returns an ``nn.Module``.

    Returns:
        Whatever the function returns (checked to be an ``nn.Module`` by the callers that evaluate it).

    Example:
        >>> model = load_factory_file(Path("my_model.py"))  # my_model.py defines create_model()
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"model file {path} not found")
    digest = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:8]
    module_name = f"ribench_model_{path.stem}_{digest}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    factory = getattr(module, function, None)
    if not callable(factory):
        raise BadModelError(f"{path} must define {function}() returning the model")
    return factory()


def resolve_model(spec: str) -> str:
    """The registry name of a model spec: a registered name as it is, a ``file.py[:function]`` registered first.

    Args:
        spec: ``standard_cnn`` (zoo or registered), or ``path/to/file.py:function`` (default ``create_model``).

    Returns:
        A name ``MODELS`` knows; for a file, ``<file name>:<function>``.

    Example:
        >>> resolve_model("standard_cnn")
        'standard_cnn'
    """
    parsed = split_spec(spec)
    if parsed is None:
        return spec
    path, function = parsed
    if not path.is_file():
        raise FileNotFoundError(f"--model {spec}: no such file {path}")
    name = f"{path.name}:{function}"
    MODELS.add(
        name,
        functools.partial(_create, path.resolve(), function),
        source="file",
        path=str(path.resolve()),
        file_sha256=sha256_file(path),
        cli_model=spec,
        description=f"{function}() of {path}",
    )
    return name


def _create(path: Path, function: str, device: str = "cpu") -> Any:
    return load_factory_file(path, function).eval().to(device)
