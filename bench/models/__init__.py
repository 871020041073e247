"""Architectures, heads and the model zoo."""

from bench.models.classifier import Classifier, build_classifier
from bench.models.zoo import load_model

__all__ = ["Classifier", "build_classifier", "load_model"]
