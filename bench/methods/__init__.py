"""Training methods (losses and recipes), registered by name."""

from bench.methods import standard, topgap  # noqa: F401  (registers methods)
from bench.methods.base import METHODS, Method

__all__ = ["METHODS", "Method"]
