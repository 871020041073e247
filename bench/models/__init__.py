"""Architectures, heads and the model zoo.

The built-in architectures are declared here with the module that defines (and registers) each, and the zoo's
models are registered from their folders (``bench.models.cards``: no card is read, no torch imported), so names
can be listed and checked at once; ``Classifier``, ``build_classifier`` and ``load_model`` are imported on first
access.
"""

from __future__ import annotations

import importlib
from typing import Any

from bench.models.cards import register_zoo
from bench.registry import ARCHS

_ISVS = "ISVS Split-LBI TV smoothing (K=140, kappa=1, nu=1, alpha=0.1)"
# name: (module, input size, normalization, description)
_ARCHS = {
    "cnn": ("backbones", 32, "cifar10", "VGG-style 3-stage CNN, ~1.7M params"),
    "prn18": ("backbones", 32, "cifar10", "PreAct ResNet-18 for 32x32 inputs"),
    **{
        name: ("backbones", 224, "imagenet", f"timm {name} (features_only)")
        for name in ("resnet18", "efficientnet_b0", "convnext_tiny", "vgg11_bn")
    },
    "cnn_ersm": ("ersm", 32, "cifar10", "small CNN + ERSM Energy-Mask after stage2 (8x8 tokens)"),
    "prn18_ersm": ("ersm", 32, "cifar10", "PreAct ResNet-18 + ERSM Energy-Mask after layer3 (8x8 tokens)"),
    "cnn_isvs": ("isvs", 32, "cifar10", f"{_ISVS} + small CNN"),
    "prn18_isvs": ("isvs", 32, "cifar10", f"{_ISVS} + PreAct ResNet-18"),
    "cnn_isvs_train_only": ("isvs", 32, "cifar10", "ISVS smoothing at training only + small CNN"),
}
for _name, (_module, _size, _normalization, _description) in _ARCHS.items():
    ARCHS.declare(
        _name, f"{__name__}.{_module}", input_size=_size, normalization=_normalization, description=_description
    )

register_zoo()

_LAZY = {"Classifier": "classifier", "build_classifier": "classifier", "load_model": "zoo"}
__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
