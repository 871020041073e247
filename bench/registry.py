"""One registry mechanism for models, datasets, plugins and suites.

A registry maps a name to a factory plus metadata. Third parties add entries through the
Python entry-point group ``ribench.<kind>`` (e.g. ``ribench.models``): the entry point must
resolve to a callable that is registered under the entry point's name.
"""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any


class UnknownNameError(KeyError):
    """Raised for a name no registry entry has; the message lists the closest names."""

    def __str__(self) -> str:  # KeyError quotes its message otherwise
        return str(self.args[0])


@dataclass(frozen=True)
class Entry:
    name: str
    factory: Callable[..., Any]
    meta: dict[str, Any] = field(default_factory=dict)


class Registry:
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Entry] = {}
        self._entry_points_loaded = False

    def register(self, name: str | None = None, **meta: Any) -> Callable:
        """Decorator: ``@MODELS.register("name", key=value)`` registers a factory."""

        def wrap(factory: Callable) -> Callable:
            self.add(name or factory.__name__, factory, **meta)
            return factory

        return wrap

    def add(self, name: str, factory: Callable, **meta: Any) -> None:
        self._entries[name] = Entry(name, factory, dict(meta))

    def remove(self, name: str) -> None:
        self._entries.pop(name, None)

    def _load_entry_points(self) -> None:
        if self._entry_points_loaded:
            return
        self._entry_points_loaded = True
        for ep in entry_points(group=f"ribench.{self.kind}"):
            if ep.name not in self._entries:
                self.add(ep.name, ep.load())

    def entry(self, name: str) -> Entry:
        self._load_entry_points()
        if name not in self._entries:
            raise UnknownNameError(self.unknown_message(name))
        return self._entries[name]

    def unknown_message(self, name: str) -> str:
        close = difflib.get_close_matches(name, self.names(), n=5, cutoff=0.4)
        hint = f"closest: {', '.join(close)}" if close else f"known: {', '.join(self.names()) or 'none'}"
        singular = self.kind[:-1] if self.kind.endswith("s") else self.kind
        return f"unknown {singular} '{name}' ({hint}); see `bench list {self.kind}`"

    def create(self, name: str, /, **kwargs: Any) -> Any:
        return self.entry(name).factory(**kwargs)

    def names(self, pattern: str = "*") -> list[str]:
        self._load_entry_points()
        return sorted(n for n in self._entries if fnmatch.fnmatch(n, pattern))

    def __contains__(self, name: str) -> bool:
        self._load_entry_points()
        return name in self._entries

    def __iter__(self) -> Iterator[Entry]:
        return iter(self.entry(n) for n in self.names())


MODELS = Registry("models")
ARCHS = Registry("archs")
DATASETS = Registry("datasets")
PLUGINS = Registry("plugins")
SUITES = Registry("suites")
