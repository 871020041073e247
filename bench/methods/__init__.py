"""Training methods (head + loss), registered by name. One file per method."""

from bench._discover import import_submodules
from bench.methods.base import METHODS, Method

import_submodules(__name__)

__all__ = ["METHODS", "Method"]
