"""Datasets, registered by name. Each yields samples with image, label and optionally mask / group."""

from bench.data import cifar, pets  # noqa: F401  (registers datasets)
from bench.data.base import Batch, ImageDataset, MissingDataError, load_dataset, resolve_data_root

__all__ = ["Batch", "ImageDataset", "MissingDataError", "load_dataset", "resolve_data_root"]
