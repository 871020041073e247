"""Waterbirds (Sagawa et al. 2019, kohpangwei/group_DRO): CUB birds pasted on Places backgrounds.

Layout: ``<root>/waterbird_complete95_forest2water2/metadata.csv`` (also under ``<root>/waterbirds/`` or
``<root>/cub/data/``) with columns ``img_id, img_filename, y, split, place, place_filename``; split 0 train, 1 val,
2 test; y 1 = waterbird; place 1 = water background. Group = 2*y + place (0 land bird on land, 1 land bird on
water, 2 water bird on land, 3 water bird on water). Images: Resize(256) + CenterCrop(224) as group_DRO's eval
transform. Splits ``train``, ``val``, ``test``, optionally capped per group: ``test[50/group]``.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from bench.data.base import ImageDataset, MissingDataError
from bench.data.imagenet import CROP, RESIZE, load_image
from bench.registry import DATASETS

FOLDER = "waterbird_complete95_forest2water2"
COLUMNS = ("img_id", "img_filename", "y", "split", "place", "place_filename")
SPLITS = {"train": 0, "val": 1, "test": 2}
CLASSES = ["landbird", "waterbird"]
GROUP_NAMES = ("landbird_land", "landbird_water", "waterbird_land", "waterbird_water")
CAP = re.compile(r"^(?P<base>[a-z]+)(?:\[(?P<k>\d+)/group\])?$")
HOW_TO_GET = "get waterbird_complete95_forest2water2.tar.gz from the group_DRO README (or WILDS) and extract it there"


def find_folder(root: Path | None) -> Path:
    if root is None:
        raise MissingDataError(f"waterbirds needs a data root (--data-root or RIBENCH_DATA); {HOW_TO_GET}")
    for folder in (root / FOLDER, root / "waterbirds" / FOLDER, root / "cub" / "data" / FOLDER, root):
        if (folder / "metadata.csv").exists():
            return folder
    raise MissingDataError(f"missing {root / FOLDER / 'metadata.csv'}; {HOW_TO_GET}")


def read_metadata(path: Path) -> pd.DataFrame:
    meta = pd.read_csv(path)
    missing = [c for c in COLUMNS if c not in meta.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {', '.join(missing)} (expected {', '.join(COLUMNS)})")
    for column, allowed in (("y", {0, 1}), ("place", {0, 1}), ("split", {0, 1, 2})):
        bad = sorted(set(meta[column].unique()) - allowed)
        if bad:
            raise ValueError(f"{path}: column '{column}' has values {bad}, expected {sorted(allowed)}")
    return meta


@DATASETS.register("waterbirds", num_classes=2, input_size=CROP, splits=tuple(SPLITS), group_names=GROUP_NAMES)
def waterbirds(split: str = "test", root: Path | None = None) -> ImageDataset:
    match = CAP.match(split)
    if match is None or match["base"] not in SPLITS:
        raise ValueError(f"waterbirds has splits train, val, test (optionally e.g. test[50/group]), not '{split}'")
    folder = find_folder(root)
    meta = read_metadata(folder / "metadata.csv")
    rows = meta[meta["split"] == SPLITS[match["base"]]].sort_values("img_id")
    rows = rows.assign(group=2 * rows["y"] + rows["place"])
    empty = [GROUP_NAMES[g] for g in range(4) if not (rows["group"] == g).any()]
    if empty:
        raise ValueError(
            f"{folder / 'metadata.csv'}: split {match['base']} has no examples of group(s) {', '.join(empty)}"
        )
    if match["k"]:
        rows = rows.groupby("group", sort=False).head(int(match["k"])).sort_values("img_id")
    files = [folder / f for f in rows["img_filename"]]
    absent = [f for f in files if not f.exists()]
    if absent:
        raise MissingDataError(f"missing {absent[0]} (and {len(absent) - 1} more) listed in {folder / 'metadata.csv'}")
    images = np.stack([load_image(f, RESIZE, CROP) for f in files])
    data = ImageDataset(
        "waterbirds",
        split,
        images,
        np.array(rows["y"]),
        CLASSES,
        groups=np.array(rows["group"]),
        source=str(folder),
    )
    data.group_names = GROUP_NAMES
    data.train_group_fractions = train_group_fractions(meta)
    return data


def train_group_fractions(meta: pd.DataFrame) -> np.ndarray:
    """Each group's share of the training split: group_DRO's weights for the test set's "average accuracy".

    The test split is far more balanced than training (Waterbirds' 95% spurious correlation holds only in
    train), so Sagawa et al. report the test average re-weighted to the training group distribution.
    """
    train = meta[meta["split"] == SPLITS["train"]]
    counts = np.bincount(2 * train["y"] + train["place"], minlength=4).astype(float)
    return counts / counts.sum() if counts.sum() else np.full(4, np.nan)
