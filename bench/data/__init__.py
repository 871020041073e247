"""Datasets, registered by name. Each yields samples with image, label and optionally mask / group."""

from bench._discover import import_submodules
from bench.data.base import Batch, ImageDataset, MissingDataError, load_dataset, resolve_data_root

import_submodules(__name__)

__all__ = ["Batch", "ImageDataset", "MissingDataError", "load_dataset", "resolve_data_root"]
