"""In-memory image datasets and the batches plugins consume."""

from __future__ import annotations

import os
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from bench.exceptions import MissingDataError
from bench.registry import DATASETS


class DamagedDataError(MissingDataError):
    """A data file that is there but cannot be read (truncated, corrupt); the message names it and how to replace it."""


# name: (bytes, sha256) of the reference archives (the offline data's README lists how they were built)
KNOWN_ARCHIVES = {
    "cifar10_test.npz": (28_252_659, "deed1e6f451526907a3528d0687dc225328d4a8018902a17d33867e6246afa93"),
    "cifar10_train.npz": (141_358_631, "b3148f6665e2fba2bbc427a63c5e447af7f103a2697cae91f4e6406025754030"),
    "oxford_pets3_128.npz": (24_109_742, "2fc94c7d4533b0b88d6ede591c10d7dde43772c260fdce4e4189e4f97e43bd70"),
}
# what np.load and zipfile raise on a truncated or corrupt archive (a header can even claim a huge array)
_DAMAGED_NPZ = (OSError, ValueError, KeyError, EOFError, MemoryError, zipfile.BadZipFile, zlib.error)


def read_npz(path: Path, keys: tuple[str, ...], how_to_get: str) -> dict[str, np.ndarray]:
    """The arrays ``keys`` of a numpy archive; a truncated or corrupt one is a one-line ``DamagedDataError``.

    The message names the file, its size, the reference archive's size and sha256 (for the archives in
    ``KNOWN_ARCHIVES``) and ``how_to_get`` a good copy.

    Example:
        >>> arrays = read_npz(Path("data/cifar10_test.npz"), ("x", "y"), "run `bench data download cifar10`")
    """
    try:
        with np.load(path) as archive:
            return {key: archive[key] for key in keys}
    except _DAMAGED_NPZ as err:
        reason = " ".join(str(err).split()) or type(err).__name__
        raise DamagedDataError(f"{path} is damaged ({reason}); {_size_note(path)}; {how_to_get}") from err


def _size_note(path: Path) -> str:
    size = path.stat().st_size
    if path.name not in KNOWN_ARCHIVES:
        return f"it has {size:,} bytes"
    expected, sha256 = KNOWN_ARCHIVES[path.name]
    return f"it has {size:,} bytes, the reference archive {expected:,} bytes with sha256 {sha256}"


def resolve_data_root(data_root: str | os.PathLike | None = None) -> Path | None:
    """``--data-root`` wins, then the ``RIBENCH_DATA`` environment variable, else None."""
    value = data_root or os.environ.get("RIBENCH_DATA")
    if not value:
        return None
    root = Path(value).expanduser()
    if not root.is_dir():
        raise MissingDataError(f"data root {root} does not exist (set --data-root or RIBENCH_DATA to a folder)")
    return root


@dataclass
class Batch:
    """A batch of examples: images in [0, 1] (B, 3, H, W), labels, dataset indices, optional mask/group."""

    x: torch.Tensor
    y: torch.Tensor
    index: torch.Tensor
    mask: torch.Tensor | None = None
    group: torch.Tensor | None = None

    def to(self, device: torch.device | str) -> Batch:
        """The batch with its tensors on ``device`` (``index`` stays on the CPU: it indexes the dataset)."""
        move = lambda t: None if t is None else t.to(device, non_blocking=True)  # noqa: E731
        return Batch(move(self.x), move(self.y), self.index, move(self.mask), move(self.group))


class ImageDataset(torch.utils.data.Dataset):
    """Images held as uint8 (N, H, W, 3); labels, optional object masks (N, H, W) and group ids."""

    def __init__(
        self,
        name: str,
        split: str,
        images: np.ndarray,
        labels: np.ndarray,
        classes: list[str],
        masks: np.ndarray | None = None,
        groups: np.ndarray | None = None,
        source: str = "",
    ) -> None:
        if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
            raise ValueError(f"{name}: images must be uint8 (N, H, W, 3), got {images.dtype} {images.shape}")
        self.name, self.split, self.classes, self.source = name, split, list(classes), source
        self.images = torch.from_numpy(np.ascontiguousarray(images))
        self.labels = torch.as_tensor(labels, dtype=torch.long)
        self.masks = None if masks is None else torch.as_tensor(masks, dtype=torch.float32)
        self.groups = None if groups is None else torch.as_tensor(groups, dtype=torch.long)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict:
        sample = {"image": self.images[i].permute(2, 0, 1).float() / 255, "label": int(self.labels[i])}
        if self.masks is not None:
            sample["mask"] = self.masks[i]
        if self.groups is not None:
            sample["group"] = int(self.groups[i])
        return sample

    def batch(self, index: torch.Tensor) -> Batch:
        x = self.images[index].permute(0, 3, 1, 2).float().div_(255)
        mask = None if self.masks is None else self.masks[index]
        group = None if self.groups is None else self.groups[index]
        return Batch(x.contiguous(memory_format=torch.channels_last), self.labels[index], index, mask, group)

    def batches(self, batch_size: int, indices: torch.Tensor | None = None) -> Iterator[Batch]:
        indices = torch.arange(len(self)) if indices is None else indices
        for start in range(0, len(indices), batch_size):
            yield self.batch(indices[start : start + batch_size])


def load_dataset(name: str, split: str = "test", data_root: str | os.PathLike | None = None) -> ImageDataset:
    """Load a registered dataset; the returned ``split`` names exactly what was loaded."""
    return DATASETS.create(name, split=split, root=resolve_data_root(data_root))


def check_files(root: Path, files: list[str], how_to_get: str) -> None:
    missing = [f for f in files if not (root / f).exists()]
    if missing:
        raise MissingDataError(f"missing {', '.join(missing)} under {root}; {how_to_get}")
