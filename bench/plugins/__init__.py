"""Evaluation plugins, registered by name (see ``bench list plugins``). One file per measurement.

Every built-in plugin is declared here with the module that defines (and registers) it, so that listing plugins
(their descriptions are read from the classes' docstrings in the source) or checking a suite's plugin names imports
no plugin module and no torch. ``Context``, ``Plugin`` and ``register_plugin`` are imported from
``bench.plugins.base`` on first access.
"""

from __future__ import annotations

import importlib
from typing import Any

from bench.registry import PLUGINS

# plugin name -> the module that defines and registers it; descriptions are the classes' docstrings
_PLUGINS = {
    "autoattack": "autoattack",
    "background_swap": "background_swap",
    "cam": "cam",
    "cam_iou": "cam_iou",
    "cam_sparsity": "cam_sparsity",
    "cascade": "cascade",
    "clean": "clean",
    "corruption": "corruption",
    "deletion": "deletion",
    "diagnostics": "diagnostics",
    "erf_distance": "erf_distance",
    "fgsm": "fgsm",
    "group_accuracy": "group_shift",
    "masked_attack": "masked_attack",
    "pgd": "pgd",
    "saliency": "saliency",
    "square": "square",
}
for _name, _module in _PLUGINS.items():
    PLUGINS.declare(_name, f"{__name__}.{_module}")

_FROM_BASE = ("Context", "Plugin", "register_plugin")
__all__ = list(_FROM_BASE)


def __getattr__(name: str) -> Any:
    if name in _FROM_BASE:
        return getattr(importlib.import_module(f"{__name__}.base"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
