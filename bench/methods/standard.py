"""Standard training: GAP + linear head, cross-entropy."""

from bench.methods.base import METHODS, Method

METHODS.add("standard", Method, description="GAP + linear head, cross-entropy")
