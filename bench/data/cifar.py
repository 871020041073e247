"""CIFAR-10 from the numpy archives, the torchvision on-disk format, or the embedded sample."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bench.data.base import ImageDataset, MissingDataError, read_npz
from bench.registry import DATASETS

CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
EMBEDDED = Path(__file__).parent / "assets" / "cifar10_test_balanced1000.npz"
EMBEDDED_SPLIT = "test[balanced-1000]"
HOW_TO_GET = (
    "put cifar10_{split}.npz (keys x uint8 NHWC, y) or torchvision's cifar-10-batches-py/ there, "
    "or run `bench data download cifar10 --data-root DIR` on a machine with internet"
)


REPLACE_DAMAGED = (
    "copy a good {name} there, or delete it and run `bench data download cifar10 --data-root {root}` "
    "(torchvision's format, read when no {name} is there)"
)


def _from_npz(path: Path) -> tuple[np.ndarray, np.ndarray]:
    arrays = read_npz(path, ("x", "y"), REPLACE_DAMAGED.format(name=path.name, root=path.parent))
    return arrays["x"], arrays["y"]


def _from_torchvision(root: Path, train: bool) -> tuple[np.ndarray, np.ndarray]:
    from torchvision.datasets import CIFAR10

    tv = CIFAR10(str(root), train=train, download=False)
    return tv.data, np.asarray(tv.targets)


def embedded_sample() -> ImageDataset:
    """The balanced 1,000-image CIFAR-10 test sample shipped inside the package (100 per class)."""
    with np.load(EMBEDDED) as archive:
        x, y = archive["x"], archive["y"]
    return ImageDataset("cifar10", EMBEDDED_SPLIT, x, y, CLASSES, source=f"embedded:{EMBEDDED.name}")


@DATASETS.register("cifar10", num_classes=10, input_size=32, splits=("train", "test", EMBEDDED_SPLIT))
def cifar10(split: str = "test", root: Path | None = None) -> ImageDataset:
    if split == EMBEDDED_SPLIT or (root is None and split == "test"):
        return embedded_sample()
    if split not in ("train", "test"):
        raise ValueError(f"cifar10 has splits train, test and {EMBEDDED_SPLIT}, not '{split}'")
    if root is None:
        raise MissingDataError(
            f"cifar10 {split} needs a data root (--data-root or RIBENCH_DATA); {HOW_TO_GET.format(split=split)}"
        )
    npz = root / f"cifar10_{split}.npz"
    if npz.exists():
        x, y = _from_npz(npz)
        source = str(npz)
    elif (root / "cifar-10-batches-py").is_dir():
        x, y = _from_torchvision(root, train=split == "train")
        source = str(root / "cifar-10-batches-py")
    else:
        raise MissingDataError(f"no CIFAR-10 {split} data under {root}: {HOW_TO_GET.format(split=split)}")
    return ImageDataset("cifar10", split, x, y, CLASSES, source=source)


def download_cifar10(root: Path) -> None:
    """Download CIFAR-10 in torchvision's format (md5-checked by torchvision); needs internet."""
    from torchvision.datasets import CIFAR10

    CIFAR10(str(root), train=True, download=True)
    CIFAR10(str(root), train=False, download=True)
