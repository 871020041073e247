"""CIFAR-10-C (Hendrycks & Dietterich 2019) from the published files: ``CIFAR-10-C/<corruption>.npy`` + ``labels.npy``.

Each ``<corruption>.npy`` holds uint8 (5*N, 32, 32, 3): severity s is rows [(s-1)*N, s*N), in CIFAR-10 test order
(N = 10,000 in the published release); ``labels.npy`` holds the 5*N labels. Dataset ``cifar10c`` has one split per
cell, ``<corruption>-<severity>`` (e.g. ``gaussian_noise-3``); the ``corruption`` plugin with ``source: cifar10c``
reads the same cells for the CIFAR-10 test examples it is given.
"""

from __future__ import annotations

import hashlib
import json
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.corruptions import ALL, SEVERITIES
from bench.data.base import ImageDataset, MissingDataError
from bench.data.cifar import CLASSES
from bench.registry import DATASETS

FOLDER = "CIFAR-10-C"
ZENODO_RECORD = "2535967"  # CIFAR-10-C.tar; RobustBench md5-checks it against the record
HOW_TO_GET = f"download CIFAR-10-C.tar from Zenodo record {ZENODO_RECORD} and extract it there (folder {FOLDER}/)"


def find_folder(root: Path | None) -> Path:
    if root is None:
        raise MissingDataError(f"cifar10c needs a data root (--data-root or RIBENCH_DATA); {HOW_TO_GET}")
    for folder in (root / FOLDER, root):
        if (folder / "labels.npy").exists():
            return folder
    raise MissingDataError(f"missing {root / FOLDER / 'labels.npy'}; {HOW_TO_GET}")


def parse_cell(split: str) -> tuple[str, int]:
    name, _, level = split.rpartition("-")
    if name not in ALL or not level.isdigit() or int(level) not in SEVERITIES:
        raise ValueError(f"cifar10c split must be <corruption>-<severity 1..5> (e.g. gaussian_noise-3), not '{split}'")
    return name, int(level)


@dataclass
class CifarCCell:
    """One (corruption, severity) cell of the published files, memory-mapped."""

    images: np.ndarray
    labels: np.ndarray
    path: Path

    def read(self, index: np.ndarray, labels: np.ndarray, dataset: ImageDataset | None = None) -> np.ndarray:
        """Rows ``index`` (CIFAR-10 test indices); fails if their labels differ from the clean ``labels``."""
        if len(index) and int(index.max()) >= len(self.images):
            raise ValueError(f"{self.path} has {len(self.images)} per severity; no example {index.max()}")
        mismatch = np.flatnonzero(self.labels[index] != labels)
        if len(mismatch):
            raise ValueError(
                f"class mismatch: {self.path.parent / 'labels.npy'} gives label {self.labels[index[mismatch[0]]]} "
                f"for test example {index[mismatch[0]]}, the clean dataset {labels[mismatch[0]]}; "
                "CIFAR-10-C rows must be in CIFAR-10 test order"
            )
        return np.asarray(self.images[index])


def open_cell(root: Path | None, corruption: str, severity: int) -> CifarCCell:
    folder = find_folder(root)
    labels_path, path = folder / "labels.npy", folder / f"{corruption}.npy"
    if not path.exists():
        raise MissingDataError(f"missing {path}; {HOW_TO_GET}")
    labels = np.load(labels_path, mmap_mode="r")
    images = np.load(path, mmap_mode="r")
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != (32, 32, 3):
        raise ValueError(f"{path}: expected uint8 (5*N, 32, 32, 3) images, got {images.dtype} {images.shape}")
    if labels.ndim != 1 or len(labels) % len(SEVERITIES):
        raise ValueError(f"{labels_path}: expected 5*N labels (N per severity), got shape {labels.shape}")
    per_severity = len(labels) // len(SEVERITIES)
    if len(images) != len(labels):
        have = len(images) // per_severity if per_severity else 0
        raise ValueError(
            f"{path} has {len(images)} images but labels.npy has {len(labels)} (5 severities x {per_severity}); "
            f"it holds {have} severities - re-extract {FOLDER}"
        )
    rows = slice((severity - 1) * per_severity, severity * per_severity)
    return CifarCCell(images[rows], np.asarray(labels[rows], dtype=np.int64), path)


@DATASETS.register(
    "cifar10c",
    num_classes=10,
    input_size=32,
    splits=tuple(f"{c}-{s}" for c in ALL for s in SEVERITIES),
    cells=open_cell,
)
def cifar10c(split: str = "gaussian_noise-3", root: Path | None = None) -> ImageDataset:
    """One CIFAR-10-C cell of the published files: split ``<corruption>-<severity>``."""
    corruption, severity = parse_cell(split)
    cell = open_cell(root, corruption, severity)
    return ImageDataset("cifar10c", split, np.array(cell.images), cell.labels, CLASSES, source=str(cell.path))


def download_cifar10c(root: Path) -> Path:
    """Download and extract CIFAR-10-C.tar from Zenodo, md5-checked against the record (needs internet)."""
    import tarfile

    record = json.load(urllib.request.urlopen(f"https://zenodo.org/api/records/{ZENODO_RECORD}"))
    entry = next(f for f in record["files"] if f["key"] == f"{FOLDER}.tar")
    target = root / entry["key"]
    urllib.request.urlretrieve(entry["links"]["self"], target)
    md5 = hashlib.md5()
    with open(target, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            md5.update(chunk)
    if f"md5:{md5.hexdigest()}" != entry["checksum"]:
        raise MissingDataError(f"{target}: md5 {md5.hexdigest()} differs from Zenodo's {entry['checksum']}; retry")
    with tarfile.open(target) as tar:
        tar.extractall(root, filter="data")
    return root / FOLDER
