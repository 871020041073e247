"""Suites: small YAML files naming a dataset, split, number of examples and (plugin, params) pairs.

``eps: 8/255``-style fractions are accepted for float parameters. Unknown keys and wrong types are
reported with the file and line they are on.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import yaml

from bench.exceptions import SuiteError, UnknownNameError, UsageError
from bench.registry import PLUGINS, SUITES

SUITE_DIR = Path(__file__).parent
SUITE_KEYS = {
    "name": str,
    "description": str,
    "dataset": str,
    "split": str,
    "n": int,
    "batch_size": int,
    "plugins": list,
}
PLUGIN_KEYS = {"plugin": str, "params": dict}


@dataclass
class PluginSpec:
    plugin: str
    params: dict[str, Any] = field(default_factory=dict)

    def build(self):
        return PLUGINS.create(self.plugin, **self.params)


@dataclass
class Suite:
    name: str
    dataset: str
    split: str
    n: int
    plugins: list[PluginSpec]
    batch_size: int = 250
    description: str = ""
    path: str = ""


def _where(path: Path, node: yaml.Node) -> str:
    return f"{path}:{node.start_mark.line + 1}"


def _scalar(node: yaml.Node) -> Any:
    return yaml.safe_load(yaml.serialize(node))


def _check_mapping(node: yaml.Node, allowed: dict[str, type], path: Path, what: str) -> dict[str, Any]:
    if not isinstance(node, yaml.MappingNode):
        raise SuiteError(f"{_where(path, node)}: {what} must be a mapping")
    out: dict[str, Any] = {}
    for key_node, value_node in node.value:
        key = key_node.value
        if key not in allowed:
            raise SuiteError(f"{_where(path, key_node)}: unknown key '{key}' in {what} (allowed: {', '.join(allowed)})")
        value = _scalar(value_node)
        if not isinstance(value, allowed[key]) or (allowed[key] is int and isinstance(value, bool)):
            raise SuiteError(f"{_where(path, value_node)}: '{key}' must be {allowed[key].__name__}, got {value!r}")
        out[key] = value_node if allowed[key] in (list, dict) else value
    return out


def _coerce(value: Any, annotation: Any, where: str, key: str) -> Any:
    if annotation is float and isinstance(value, str):
        try:
            return float(Fraction(value.replace(" ", "")))
        except (ValueError, ZeroDivisionError):
            raise SuiteError(f"{where}: '{key}' must be a number or a fraction like 8/255, got {value!r}") from None
    if annotation is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    expected = annotation if isinstance(annotation, type) else None
    if expected is not None and (not isinstance(value, expected) or (expected is int and isinstance(value, bool))):
        raise SuiteError(f"{where}: '{key}' must be {expected.__name__}, got {value!r}")
    return value


def plugin_fields(plugin: str) -> dict[str, Any]:
    cls = PLUGINS.entry(plugin).factory
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls) if not f.name.startswith("_")}


def _plugin_spec(node: yaml.Node, path: Path) -> PluginSpec:
    raw = _check_mapping(node, PLUGIN_KEYS, path, "plugin entry")
    if "plugin" not in raw:
        raise SuiteError(f"{_where(path, node)}: plugin entry needs a 'plugin' key")
    try:
        fields = plugin_fields(raw["plugin"])
    except UnknownNameError as err:
        raise SuiteError(f"{_where(path, node)}: {err}") from None
    params: dict[str, Any] = {}
    params_node = raw.get("params")
    for key_node, value_node in params_node.value if params_node is not None else []:
        key, where = key_node.value, _where(path, key_node)
        if key not in fields:
            raise SuiteError(f"{where}: plugin '{raw['plugin']}' has no parameter '{key}' (has: {', '.join(fields)})")
        params[key] = _coerce(_scalar(value_node), fields[key], where, key)
    return PluginSpec(raw["plugin"], params)


def load_suite_file(path: str | Path) -> Suite:
    path = Path(path)
    root = yaml.compose(path.read_text())
    if root is None:
        raise SuiteError(f"{path}: empty suite file")
    raw = _check_mapping(root, SUITE_KEYS, path, "suite")
    missing = [k for k in ("dataset", "split", "n", "plugins") if k not in raw]
    if missing:
        raise SuiteError(f"{path}: missing key(s) {', '.join(missing)}")
    if raw["n"] < 1:
        raise SuiteError(f"{path}: n must be >= 1")
    plugins = [_plugin_spec(node, path) for node in raw.pop("plugins").value]
    return Suite(name=raw.pop("name", path.stem), plugins=plugins, path=str(path), **raw)


def load_suite(name_or_path: str) -> Suite:
    """A registered suite by name, or a path to a suite YAML."""
    if name_or_path.endswith((".yaml", ".yml")) and Path(name_or_path).exists():
        return load_suite_file(name_or_path)
    return SUITES.create(name_or_path)


@dataclass(frozen=True)
class SuiteOutline:
    """What a suite evaluates, read without validating plugin parameters (no plugin module, no torch)."""

    name: str
    dataset: str
    split: str
    n: int
    plugins: tuple[str, ...]


def suite_outline(name_or_path: str) -> SuiteOutline:
    """Name, dataset, split, n and plugin names of a suite; unknown suites fail with the closest names.

    Example:
        >>> suite_outline("cifar10-adv-quick").plugins
        ('clean', 'fgsm', 'pgd')
    """
    if name_or_path.endswith((".yaml", ".yml")) and Path(name_or_path).exists():
        path = Path(name_or_path)
    else:
        path = Path(SUITES.peek(name_or_path).meta["path"])
    raw = yaml.load(path.read_text(), Loader=_Loader) or {}
    if not isinstance(raw, dict) or not isinstance(raw.get("plugins", []), list):
        return SuiteOutline(path.stem, "", "", 0, ())  # the full load names the problem and its line
    plugins = tuple(str(p.get("plugin", "")) for p in raw.get("plugins", []) if isinstance(p, dict))
    n = raw.get("n", 0)
    return SuiteOutline(
        str(raw.get("name", path.stem)),
        str(raw.get("dataset", "")),
        str(raw.get("split", "")),
        n if isinstance(n, int) else 0,
        plugins,
    )


def check_only(suite: str, plugins: tuple[str, ...], only: tuple[str, ...]) -> None:
    """Fail when ``--only`` names a plugin that suite ``suite`` (running ``plugins``) does not run.

    Example:
        >>> check_only("cifar10-adv-quick", suite_outline("cifar10-adv-quick").plugins, ("autoattack",))
        Traceback (most recent call last):
        bench.exceptions.UsageError: --only autoattack: suite cifar10-adv-quick has plugins clean, fgsm, pgd
    """
    unknown = [name for name in only if name not in plugins]
    if unknown:
        raise UsageError(f"--only {','.join(unknown)}: suite {suite} has plugins {', '.join(dict.fromkeys(plugins))}")


def _description(path: Path) -> str:
    return str((yaml.load(path.read_text(), Loader=_Loader) or {}).get("description", ""))


_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


for _path in sorted(SUITE_DIR.glob("*.yaml")):
    SUITES.add(_path.stem, lambda _p=_path: load_suite_file(_p), path=str(_path), description=_description(_path))
