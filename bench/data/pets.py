"""Oxford-IIIT Pet: the embedded 3-breed subset with trimaps (``pets3``) and the full on-disk dataset.

Object mask = trimap value 1 (pet). The boundary value 3 counts as *not object* (mask 0): it is a
band of unclassified pixels around the pet, so CAM IoU is measured against the sure-foreground only.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bench.data.base import ImageDataset, MissingDataError, check_files, read_npz
from bench.registry import DATASETS

PETS3_FILE = "oxford_pets3_128.npz"
PETS3_SPLITS = {"trainval": 0, "test": 1}
PETS3_REPLACE = "copy a good one there (../shared/data/README.md says how it was built from Oxford-IIIT Pet)"


def interleave_by_class(labels: np.ndarray) -> np.ndarray:
    """An order that takes one example of each class in turn (archive order within a class).

    The archive is sorted by breed, so without this the first n examples of a split (``--limit n``) would be
    almost all of one class.
    """
    rank_in_class = np.zeros(len(labels), dtype=np.int64)
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        rank_in_class[members] = np.arange(len(members))
    return np.lexsort((labels, rank_in_class))


@DATASETS.register("pets3", num_classes=3, input_size=128, splits=tuple(PETS3_SPLITS), has_masks=True)
def pets3(split: str = "test", root: Path | None = None) -> ImageDataset:
    """600 Oxford-IIIT Pet images of 3 breeds at 128x128 with trimaps; group id = species (0 cat, 1 dog).

    Examples are interleaved by class, so the first n of a split are balanced.
    """
    if split not in PETS3_SPLITS:
        raise ValueError(f"pets3 has splits {', '.join(PETS3_SPLITS)}, not '{split}'")
    if root is None:
        raise MissingDataError(f"pets3 needs a data root holding {PETS3_FILE} (--data-root or RIBENCH_DATA)")
    check_files(root, [PETS3_FILE], "see ../shared/data/README.md for how it was built from Oxford-IIIT Pet")
    a = read_npz(root / PETS3_FILE, ("split", "x", "y", "trimap", "species", "breeds"), PETS3_REPLACE)
    keep = a["split"] == PETS3_SPLITS[split]
    x, y, trimap, species = a["x"][keep], a["y"][keep], a["trimap"][keep], a["species"][keep]
    breeds = [str(b) for b in a["breeds"]]
    order = interleave_by_class(y)
    x, y, trimap, species = x[order], y[order], trimap[order], species[order]
    masks = (trimap == 1).astype(np.float32)
    return ImageDataset("pets3", split, x, y, breeds, masks=masks, groups=species, source=str(root / PETS3_FILE))
