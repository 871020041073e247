"""The full Oxford-IIIT Pet dataset (Parkhi et al. 2012) from its on-disk layout.

Expected under the data root (the layout of images.tar.gz + annotations.tar.gz)::

    oxford-iiit-pet/images/<name>.jpg
    oxford-iiit-pet/annotations/trimaps/<name>.png      (1 = pet, 2 = background, 3 = boundary)
    oxford-iiit-pet/annotations/trainval.txt, test.txt  ("<name> <class 1..37> <species 1 cat, 2 dog> <breed id>")

Object mask = trimap value 1; the boundary band (3) counts as background, as for pets3. Label =
the 37-way breed (class id - 1); group = species (0 cat, 1 dog). Images are resized to 224x224.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from bench.data.base import ImageDataset, MissingDataError, check_files
from bench.registry import DATASETS

FOLDER = "oxford-iiit-pet"
SPLIT_FILES = {"trainval": "annotations/trainval.txt", "test": "annotations/test.txt"}
HOW_TO_GET = (
    "download images.tar.gz and annotations.tar.gz from https://www.robots.ox.ac.uk/~vgg/data/pets/ "
    "and unpack them into <data root>/oxford-iiit-pet"
)


def read_rgb(path: Path, size: int) -> np.ndarray:
    """An RGB image resized to size x size (bilinear; aspect ratio not kept, as in pets3)."""
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB").resize((size, size), Image.BILINEAR), dtype=np.uint8)


def read_label_map(path: Path, size: int) -> np.ndarray:
    """A single-channel annotation (trimap or segmentation) resized with nearest-neighbour.

    Palette ('P') and grey images keep their stored values (trimap ids 1/2/3); colour ones become grey.
    """
    with Image.open(path) as im:
        single = im if im.mode in ("L", "P") else im.convert("L")
        return np.asarray(single.resize((size, size), Image.NEAREST), dtype=np.uint8)


def read_split_list(path: Path) -> list[tuple[str, int, int]]:
    """(name, class index 0..36, species 0 cat / 1 dog) per non-comment line."""
    rows = []
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, class_id, species, _ = line.split()
            rows.append((name, int(class_id) - 1, int(species) - 1))
    return rows


def class_names(rows: list[tuple[str, int, int]]) -> list[str]:
    """Breed names from the file names ("Abyssinian_100" -> "Abyssinian"), indexed by class."""
    names: dict[int, str] = {}
    for name, label, _ in rows:
        names.setdefault(label, name.rsplit("_", 1)[0])
    return [names.get(i, f"class_{i}") for i in range(max(names) + 1)]


def load_oxford_pet(root: Path, split: str = "test", size: int = 224) -> ImageDataset:
    if split not in SPLIT_FILES:
        raise ValueError(f"oxford_pet has splits {', '.join(SPLIT_FILES)}, not '{split}'")
    base = root / FOLDER
    check_files(base, [SPLIT_FILES[split], "images", "annotations/trimaps"], HOW_TO_GET)
    rows = read_split_list(base / SPLIT_FILES[split])
    check_files(
        base, [f"images/{n}.jpg" for n, _, _ in rows] + [f"annotations/trimaps/{n}.png" for n, _, _ in rows], HOW_TO_GET
    )
    images = np.stack([read_rgb(base / "images" / f"{n}.jpg", size) for n, _, _ in rows])
    trimaps = np.stack([read_label_map(base / "annotations" / "trimaps" / f"{n}.png", size) for n, _, _ in rows])
    labels = np.array([label for _, label, _ in rows], dtype=np.int64)
    species = np.array([s for _, _, s in rows], dtype=np.int64)
    all_rows = sum((read_split_list(base / f) for f in SPLIT_FILES.values() if (base / f).exists()), [])
    return ImageDataset(
        "oxford_pet",
        split,
        images,
        labels,
        class_names(all_rows),
        masks=(trimaps == 1).astype(np.float32),
        groups=species,
        source=str(base),
    )


@DATASETS.register("oxford_pet", num_classes=37, input_size=224, splits=tuple(SPLIT_FILES), has_masks=True)
def oxford_pet(split: str = "test", root: Path | None = None) -> ImageDataset:
    """Oxford-IIIT Pet, 37 breeds at 224x224 with trimap object masks; group id = species."""
    if root is None:
        raise MissingDataError(f"oxford_pet needs a data root (--data-root or RIBENCH_DATA); {HOW_TO_GET}")
    return load_oxford_pet(root, split)
