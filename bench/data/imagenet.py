"""ImageNet val (ImageFolder), ImageNet-Sketch and ImageNet-C, labelled with the class indices of timm/torchvision.

Class index = position of the WordNet id in the sorted 1000-synset list (``timm.data.ImageNetInfo``), which is the
index ImageFolder gives a full ``train/`` or ``val/`` tree and the output index of timm/torchvision ImageNet models.
Folders holding only some classes keep the global index (a 10-class subset still yields 1000-way labels).

* ``imagenet``: ``<root>/imagenet/val/<wnid>/*.JPEG`` (val re-sorted into class folders, torchvision layout);
  Resize(256) + CenterCrop(224), as for timm/torchvision evaluation.
* ``imagenet-sketch``: ``<root>/sketch/<wnid>/*.jpg`` (Wang et al. 2019; also ``<root>/imagenet-sketch/sketch``);
  Resize(256) + CenterCrop(224). Split ``test``.
* ``imagenet-c``: ``<root>/ImageNet-C/<corruption>/<severity>/<wnid>/*.JPEG`` (224x224 JPEGs; CenterCrop(224)
  only, as Hendrycks' test.py). Split ``<corruption>-<severity>``.

Every split takes an optional per-class cap, ``val[5/class]``: the first 5 files of each class in sorted order.
Images are decoded into memory (uint8), so use a cap for anything but small evaluations.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
from PIL import Image

from bench.data.base import ImageDataset, MissingDataError
from bench.registry import DATASETS

CROP, RESIZE = 224, 256
IMAGE_SUFFIXES = (".jpeg", ".jpg", ".png")
CAP = re.compile(r"^(?P<base>.+?)(?:\[(?P<k>\d+)/class\])?$")


@cache
def imagenet_wnids() -> tuple[str, ...]:
    """The 1000 WordNet ids in model output order (timm's synset list, sorted like ImageFolder)."""
    from timm.data import ImageNetInfo

    return tuple(ImageNetInfo().label_names())


def parse_split(split: str) -> tuple[str, int | None]:
    match = CAP.match(split)
    return match["base"], int(match["k"]) if match["k"] else None


def list_class_folders(folder: Path, per_class: int | None) -> tuple[list[Path], np.ndarray]:
    """Image files under ``folder/<wnid>/`` and their global class indices; unknown folders are an error."""
    if not folder.is_dir():
        raise MissingDataError(f"missing folder {folder}")
    index = {wnid: i for i, wnid in enumerate(imagenet_wnids())}
    files, labels = [], []
    for class_dir in sorted(p for p in folder.iterdir() if p.is_dir()):
        if class_dir.name not in index:
            raise ValueError(f"{class_dir}: '{class_dir.name}' is not an ImageNet WordNet id (expected e.g. n01440764)")
        found = sorted(p for p in class_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)[:per_class]
        files += found
        labels += [index[class_dir.name]] * len(found)
    if not files:
        raise MissingDataError(f"no images under {folder}/<wnid>/")
    return files, np.array(labels, dtype=np.int64)


def load_image(path: Path, resize: int | None, crop: int) -> np.ndarray:
    """RGB uint8 (crop, crop, 3): shorter side resized to ``resize`` (bilinear) when given, then centre crop."""
    try:
        img = Image.open(path).convert("RGB")
    except OSError as err:
        raise ValueError(f"{path}: cannot decode image ({err})") from None
    if resize is not None:
        w, h = img.size
        scale = resize / min(w, h)
        img = img.resize((max(crop, round(w * scale)), max(crop, round(h * scale))), Image.BILINEAR)
    w, h = img.size
    if min(w, h) < crop:
        raise ValueError(f"{path}: image is {w}x{h}, smaller than the {crop}x{crop} crop")
    left, top = (w - crop) // 2, (h - crop) // 2
    return np.asarray(img.crop((left, top, left + crop, top + crop)))


def build(name: str, split: str, files: list[Path], labels: np.ndarray, resize: int | None, root: Path) -> ImageDataset:
    images = np.stack([load_image(f, resize, CROP) for f in files])
    data = ImageDataset(name, split, images, labels, list(imagenet_wnids()), source=str(root))
    data.files = [f"{f.parent.name}/{f.stem}" for f in files]  # class/stem, to align ImageNet-C with val
    return data


def first_existing(root: Path | None, candidates: list[str], what: str) -> Path:
    if root is None:
        raise MissingDataError(f"{what} needs a data root (--data-root or RIBENCH_DATA) holding {candidates[0]}/")
    for rel in candidates:
        if (root / rel).is_dir():
            return root / rel
    raise MissingDataError(f"missing {root / candidates[0]}/ ({what}); see the module docstring for the layout")


@DATASETS.register("imagenet", num_classes=1000, input_size=CROP, splits=("val", "val[5/class]"))
def imagenet(split: str = "val", root: Path | None = None) -> ImageDataset:
    base, per_class = parse_split(split)
    if base != "val":
        raise ValueError(f"imagenet has split val (optionally val[K/class]), not '{split}'")
    folder = first_existing(root, ["imagenet/val", "val"], "ImageNet val")
    files, labels = list_class_folders(folder, per_class)
    return build("imagenet", split, files, labels, RESIZE, folder)


@DATASETS.register("imagenet-sketch", num_classes=1000, input_size=CROP, splits=("test", "test[5/class]"))
def imagenet_sketch(split: str = "test", root: Path | None = None) -> ImageDataset:
    base, per_class = parse_split(split)
    if base != "test":
        raise ValueError(f"imagenet-sketch has split test (optionally test[K/class]), not '{split}'")
    folder = first_existing(root, ["sketch", "imagenet-sketch/sketch", "ImageNet-Sketch/sketch"], "ImageNet-Sketch")
    files, labels = list_class_folders(folder, per_class)
    return build("imagenet-sketch", split, files, labels, RESIZE, folder)


def imagenet_c_folder(root: Path | None, corruption: str, severity: int) -> Path:
    from bench.corruptions import ALL

    if corruption not in ALL:
        raise ValueError(f"unknown ImageNet-C corruption '{corruption}' (choose from {', '.join(ALL)})")
    base = first_existing(root, ["ImageNet-C", "imagenet-c"], "ImageNet-C")
    folder = base / corruption / str(severity)
    if not folder.is_dir():
        have = sorted(p.name for p in (base / corruption).iterdir()) if (base / corruption).is_dir() else []
        raise MissingDataError(f"missing {folder}/ (severities present: {', '.join(have) or 'none'})")
    return folder


@dataclass
class ImageNetCCell:
    """One published ImageNet-C cell, read file by file for the clean examples it is asked for."""

    folder: Path

    def read(self, index: np.ndarray, labels: np.ndarray, dataset: ImageDataset) -> np.ndarray:
        keys = getattr(dataset, "files", None)
        if keys is None:
            raise ValueError(f"ImageNet-C cells align by file name; dataset '{dataset.name}' does not list its files")
        wnids = imagenet_wnids()
        out = []
        for i, label in zip(index, labels, strict=True):
            wnid, stem = keys[int(i)].split("/")
            if wnids[int(label)] != wnid:
                raise ValueError(f"class mismatch: {keys[int(i)]} is labelled {label} ({wnids[int(label)]})")
            matches = [p for p in (self.folder / wnid).glob(f"{stem}.*") if p.suffix.lower() in IMAGE_SUFFIXES]
            if not matches:
                raise MissingDataError(f"missing {self.folder / wnid / stem}.JPEG (ImageNet-C cell is incomplete)")
            out.append(load_image(matches[0], None, CROP))
        return np.stack(out)


def open_imagenet_c_cell(root: Path | None, corruption: str, severity: int) -> ImageNetCCell:
    return ImageNetCCell(imagenet_c_folder(root, corruption, severity))


@DATASETS.register(
    "imagenet-c", num_classes=1000, input_size=CROP, splits=("<corruption>-<severity>",), cells=open_imagenet_c_cell
)
def imagenet_c(split: str = "gaussian_noise-3", root: Path | None = None) -> ImageDataset:
    base, per_class = parse_split(split)
    corruption, _, level = base.rpartition("-")
    if not level.isdigit() or not 1 <= int(level) <= 5:
        raise ValueError(f"imagenet-c split must be <corruption>-<severity 1..5>[K/class], not '{split}'")
    folder = imagenet_c_folder(root, corruption, int(level))
    files, labels = list_class_folders(folder, per_class)
    return build("imagenet-c", split, files, labels, None, folder)
