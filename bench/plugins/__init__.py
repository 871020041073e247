"""Evaluation plugins, registered by name (see ``bench list plugins``). One file per measurement."""

from bench._discover import import_submodules
from bench.plugins.base import Context, Plugin, register_plugin

import_submodules(__name__)

__all__ = ["Context", "Plugin", "register_plugin"]
