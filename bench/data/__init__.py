"""Datasets, registered by name. Each yields samples with image, label and optionally mask / group.

Every built-in dataset is declared here with its module, number of classes and input size, so that a model can
be checked against a suite's dataset (and datasets listed) without importing torch. The loaders and ``Batch``,
``ImageDataset``, ``load_dataset``, ``resolve_data_root`` are imported from their modules on first access.
"""

from __future__ import annotations

import importlib
from typing import Any

from bench.exceptions import MissingDataError
from bench.registry import DATASETS

# name: (module, number of classes, input size in pixels, description)
_DATASETS = {
    "cifar10": ("cifar", 10, 32, "CIFAR-10 (train, test; embedded balanced 1,000-image test sample)"),
    "cifar10c": ("cifar10c", 10, 32, "CIFAR-10-C published files, split <corruption>-<severity>"),
    "cub": ("cub", 200, 224, "CUB-200-2011 with segmentation masks"),
    "imagenet": ("imagenet", 1000, 224, "ImageNet validation set (class folders)"),
    "imagenet-c": ("imagenet", 1000, 224, "ImageNet-C published files, split <corruption>-<severity>"),
    "imagenet-sketch": ("imagenet", 1000, 224, "ImageNet-Sketch"),
    "oxford_pet": ("oxford_pet", 37, 224, "Oxford-IIIT Pet, 37 breeds, with trimaps"),
    "pets3": ("pets", 3, 128, "600 Oxford-IIIT Pet images of 3 breeds at 128x128, with trimaps"),
    "waterbirds": ("waterbirds", 2, 224, "Waterbirds (bird type x background groups)"),
}
for _name, (_module, _classes, _size, _description) in _DATASETS.items():
    DATASETS.declare(_name, f"{__name__}.{_module}", num_classes=_classes, input_size=_size, description=_description)

_FROM_BASE = ("Batch", "ImageDataset", "load_dataset", "resolve_data_root")
__all__ = [*_FROM_BASE, "MissingDataError"]


def __getattr__(name: str) -> Any:
    if name in _FROM_BASE:
        return getattr(importlib.import_module(f"{__name__}.base"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
