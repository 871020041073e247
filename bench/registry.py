"""One registry mechanism for models, architectures, datasets, plugins, suites, methods and executors.

A registry maps a name to a factory plus metadata. Each package's ``__init__`` declares its entries explicitly
(``declare(name, module, **meta)``: the name, the module that defines it and what listing it needs), so listing
names or checking them imports neither the module nor torch; the module is imported when the entry is first used,
and registers the factory itself (``add`` / ``register``). A registry imports its home package on first use.
Third parties add entries through the entry-point group ``ribench.<kind>`` (e.g. ``ribench.models``): the entry
point must resolve to a callable that is registered under the entry point's name.

Example:
    >>> reg = Registry("things")
    >>> reg.add("double", lambda value: 2 * value, description="twice")
    >>> reg.create("double", value=4)
    8
"""

from __future__ import annotations

import ast
import difflib
import fnmatch
import functools
import importlib
import importlib.util
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from bench.exceptions import UnknownNameError

__all__ = [
    "ARCHS",
    "DATASETS",
    "EXECUTORS",
    "METHODS",
    "MODELS",
    "PLUGINS",
    "SUITES",
    "Entry",
    "Registry",
    "UnknownNameError",
]


@dataclass(frozen=True)
class Entry:
    """A registered name: its factory (None while only declared), metadata, and where the factory comes from.

    ``target`` is a module that registers the name when imported, or ``"module:function"`` whose function, with
    ``args`` bound first, is the factory (the form of Python entry points).
    """

    name: str
    factory: Callable[..., Any] | None
    meta: dict[str, Any] = field(default_factory=dict)
    target: str = ""
    args: tuple[Any, ...] = ()

    @property
    def declared_only(self) -> bool:
        return self.factory is None


class Registry:
    def __init__(self, kind: str, home: str | None = None) -> None:
        self.kind = kind
        self.home = home  # the package whose __init__ declares the built-in entries
        self._entries: dict[str, Entry] = {}
        self._loaded = False

    def register(self, name: str | None = None, **meta: Any) -> Callable:
        """Decorator: ``@MODELS.register("name", key=value)`` registers a factory."""

        def wrap(factory: Callable) -> Callable:
            self.add(name or factory.__name__, factory, **meta)
            return factory

        return wrap

    def add(self, name: str, factory: Callable, **meta: Any) -> None:
        """Register ``factory`` under ``name`` (replacing a declaration or an earlier entry)."""
        self._entries[name] = Entry(name, factory, dict(meta), getattr(factory, "__module__", "") or "")

    def declare(self, name: str, target: str, *args: Any, **meta: Any) -> None:
        """Declare ``name`` without importing anything; ``meta`` is what listing and checks need.

        Args:
            name: the registered name.
            target: a module that registers ``name`` when imported, or ``"module:function"`` (the factory is
                ``function`` with ``args`` bound first).
            *args: leading arguments of a ``"module:function"`` factory.
            **meta: metadata, as for ``add``.

        Example:
            >>> reg = Registry("things")
            >>> reg.declare("half", "fractions:Fraction", 1, description="one half, built on first use")
            >>> reg.create("half", denominator=2)
            Fraction(1, 2)
        """
        if name not in self._entries or self._entries[name].declared_only:
            self._entries[name] = Entry(name, None, dict(meta), target, args)

    def remove(self, name: str) -> None:
        self._entries.pop(name, None)

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        if self.home:
            importlib.import_module(self.home)
        for ep in entry_points(group=f"ribench.{self.kind}"):
            if ep.name not in self._entries:
                self.add(ep.name, ep.load())

    def peek(self, name: str) -> Entry:
        """The entry of ``name`` as declared or registered, without importing its module."""
        self._load()
        if name not in self._entries:
            raise UnknownNameError(self.unknown_message(name))
        return self._entries[name]

    def entry(self, name: str) -> Entry:
        """The registered entry of ``name``, importing its defining module when it is only declared."""
        found = self.peek(name)
        if not found.declared_only:
            return found
        module, _, function = found.target.partition(":")
        imported = importlib.import_module(module)
        if function:
            factory = functools.partial(getattr(imported, function), *found.args) if found.args else None
            self._entries[name] = replace(found, factory=factory or getattr(imported, function))
        elif self._entries[name].declared_only:
            raise RuntimeError(f"{module} was declared to register {self.kind} '{name}' but does not")
        return self._entries[name]

    def unknown_message(self, name: str) -> str:
        close = difflib.get_close_matches(name, self.names(), n=5, cutoff=0.4)
        hint = f"closest: {', '.join(close)}" if close else f"known: {', '.join(self.names()) or 'none'}"
        singular = self.kind[:-1] if self.kind.endswith("s") else self.kind
        return f"unknown {singular} '{name}' ({hint}); see `bench list {self.kind}`"

    def description(self, name: str) -> str:
        """One line about ``name``: its ``description`` metadata, else the first docstring line of the class that
        the declared module defines for it (read from the source: nothing is imported)."""
        entry = self.peek(name)
        if entry.meta.get("description") or not entry.declared_only or ":" in entry.target:
            return str(entry.meta.get("description") or "")
        return _class_summary(entry.target, name)

    def create(self, name: str, /, **kwargs: Any) -> Any:
        return self.entry(name).factory(**kwargs)

    def names(self, pattern: str = "*") -> list[str]:
        self._load()
        return sorted(n for n in self._entries if fnmatch.fnmatch(n, pattern))

    def __contains__(self, name: str) -> bool:
        self._load()
        return name in self._entries

    def __iter__(self) -> Iterator[Entry]:
        """Every entry, declared or registered (listing imports nothing)."""
        return iter(self.peek(n) for n in self.names())


def _class_summary(module: str, name: str) -> str:
    """First docstring line of the class in ``module`` whose body sets ``name = "<name>"`` (a plugin's name)."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.origin:
        return ""
    for node in ast.parse(Path(spec.origin).read_text()).body:
        if isinstance(node, ast.ClassDef) and any(
            isinstance(st, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == "name" for t in st.targets)
            and isinstance(st.value, ast.Constant)
            and st.value.value == name
            for st in node.body
        ):
            return ((ast.get_docstring(node) or "").strip().splitlines() or [""])[0]
    return ""


MODELS = Registry("models", home="bench.models")
ARCHS = Registry("archs", home="bench.models")
DATASETS = Registry("datasets", home="bench.data")
PLUGINS = Registry("plugins", home="bench.plugins")
SUITES = Registry("suites", home="bench.suites")
METHODS = Registry("methods", home="bench.methods")
EXECUTORS = Registry("executors", home="bench.executors")
