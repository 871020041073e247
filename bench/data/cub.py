"""CUB-200-2011 (Wah et al. 2011) with the segmentation masks of Farrell et al., from the on-disk layout.

Expected under the data root (CUB_200_2011.tgz + segmentations.tgz)::

    CUB_200_2011/images.txt               "<id> <class folder>/<file>.jpg"
    CUB_200_2011/image_class_labels.txt   "<id> <class 1..200>"
    CUB_200_2011/train_test_split.txt     "<id> <1 train / 0 test>"
    CUB_200_2011/classes.txt              "<class> <name>" (optional)
    CUB_200_2011/images/<class folder>/<file>.jpg
    segmentations/<class folder>/<file>.png  (or CUB_200_2011/segmentations/...)

The soft segmentations (grey levels) are binarized at 0.5 (methods_spec §1(e)3). Images and masks are
resized to 224x224 (aspect ratio not kept, so masks stay aligned).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bench.data.base import ImageDataset, MissingDataError, check_files
from bench.data.oxford_pet import read_label_map, read_rgb
from bench.registry import DATASETS

FOLDER = "CUB_200_2011"
SPLITS = {"train": 1, "test": 0}
LISTS = ["images.txt", "image_class_labels.txt", "train_test_split.txt"]
HOW_TO_GET = (
    "download CUB_200_2011.tgz and segmentations.tgz from "
    "https://www.vision.caltech.edu/datasets/cub_200_2011/ and unpack both into the data root"
)


def read_pairs(path: Path) -> dict[int, str]:
    pairs = (line.split(maxsplit=1) for line in path.read_text().splitlines() if line.strip())
    return {int(key): value.strip() for key, value in pairs}


def segmentation_dir(root: Path) -> Path:
    for candidate in (root / "segmentations", root / FOLDER / "segmentations"):
        if candidate.is_dir():
            return candidate
    raise MissingDataError(f"no segmentations/ folder under {root} or {root / FOLDER}; {HOW_TO_GET}")


def class_names(base: Path, num_classes: int) -> list[str]:
    if (base / "classes.txt").exists():
        names = read_pairs(base / "classes.txt")
        return [names[i + 1].split(".", 1)[-1] for i in range(len(names))]
    return [f"class_{i + 1:03d}" for i in range(num_classes)]


def load_cub(root: Path, split: str = "test", size: int = 224) -> ImageDataset:
    if split not in SPLITS:
        raise ValueError(f"cub has splits {', '.join(SPLITS)}, not '{split}'")
    base = root / FOLDER
    check_files(base, LISTS, HOW_TO_GET)
    files, labels, is_train = (read_pairs(base / name) for name in LISTS)
    ids = sorted(i for i in files if int(is_train[i]) == SPLITS[split])
    seg = segmentation_dir(root)
    check_files(base / "images", [files[i] for i in ids], HOW_TO_GET)
    check_files(seg, [str(Path(files[i]).with_suffix(".png")) for i in ids], HOW_TO_GET)
    images = np.stack([read_rgb(base / "images" / files[i], size) for i in ids])
    masks = np.stack([read_label_map(seg / Path(files[i]).with_suffix(".png"), size) for i in ids])
    y = np.array([int(labels[i]) - 1 for i in ids], dtype=np.int64)
    num_classes = max(int(v) for v in labels.values())
    return ImageDataset(
        "cub",
        split,
        images,
        y,
        class_names(base, num_classes),
        masks=(masks >= 128).astype(np.float32),
        source=str(base),
    )


@DATASETS.register("cub", num_classes=200, input_size=224, splits=tuple(SPLITS), has_masks=True)
def cub(split: str = "test", root: Path | None = None) -> ImageDataset:
    """CUB-200-2011 birds, 200 classes at 224x224 with binarized segmentation masks."""
    if root is None:
        raise MissingDataError(f"cub needs a data root (--data-root or RIBENCH_DATA); {HOW_TO_GET}")
    return load_cub(root, split)
