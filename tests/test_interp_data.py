"""The CUB-200-2011 and Oxford-IIIT Pet loaders on tiny fixtures in the datasets' on-disk formats."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench.data import MissingDataError, load_dataset
from bench.data.cub import load_cub
from bench.data.oxford_pet import load_oxford_pet


def save_rgb(path: Path, color: tuple[int, int, int], size: tuple[int, int] = (40, 30)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path)


def make_pets(root: Path) -> None:
    """4 pets: trimap left half pet (1), right half background (2), a boundary column (3)."""
    base = root / "oxford-iiit-pet"
    rows = {
        "trainval": [("Abyssinian_1", 1, 1, 1), ("american_bulldog_7", 2, 2, 1)],
        "test": [("Abyssinian_2", 1, 1, 1), ("american_bulldog_9", 2, 2, 1)],
    }
    for split, entries in rows.items():
        (base / "annotations").mkdir(parents=True, exist_ok=True)
        lines = ["#Image CLASS-ID SPECIES BREED ID"] + [" ".join(map(str, e)) for e in entries]
        (base / "annotations" / f"{split}.txt").write_text("\n".join(lines) + "\n")
        for name, class_id, _, _ in entries:
            save_rgb(base / "images" / f"{name}.jpg", (200, 10 * class_id, 0))
            trimap = np.full((30, 40), 2, dtype=np.uint8)
            trimap[:, :20] = 1
            trimap[:, 20] = 3
            (base / "annotations" / "trimaps").mkdir(parents=True, exist_ok=True)
            Image.fromarray(trimap, mode="L").save(base / "annotations" / "trimaps" / f"{name}.png")


def make_cub(root: Path, with_segmentations: bool = True) -> None:
    """3 birds of 2 classes; images 1 and 3 train, 2 test; soft masks: top half 255, a 100-grey band."""
    base = root / "CUB_200_2011"
    base.mkdir(parents=True)
    files = {
        1: "001.Black_footed_Albatross/a_1.jpg",
        2: "001.Black_footed_Albatross/a_2.jpg",
        3: "002.Laysan_Albatross/b_1.jpg",
    }
    (base / "images.txt").write_text("".join(f"{i} {f}\n" for i, f in files.items()))
    (base / "image_class_labels.txt").write_text("1 1\n2 1\n3 2\n")
    (base / "train_test_split.txt").write_text("1 1\n2 0\n3 1\n")
    (base / "classes.txt").write_text("1 001.Black_footed_Albatross\n2 002.Laysan_Albatross\n")
    for i, f in files.items():
        save_rgb(base / "images" / f, (i * 60, 0, 0))
        if with_segmentations:
            seg = np.zeros((30, 40), dtype=np.uint8)
            seg[:15] = 255
            seg[15:20] = 100  # below 0.5: not object
            path = root / "segmentations" / Path(f).with_suffix(".png")
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(seg, mode="L").save(path)


def test_oxford_pet_loader_reads_split_labels_species_and_trimap_masks(tmp_path):
    make_pets(tmp_path)
    data = load_oxford_pet(tmp_path, "test", size=16)
    assert len(data) == 2 and data.images.shape == (2, 16, 16, 3)
    assert data.labels.tolist() == [0, 1] and data.groups.tolist() == [0, 1]
    assert data.classes == ["Abyssinian", "american_bulldog"]
    mask = data.masks[0]
    assert mask[:, :7].eq(1).all() and mask[:, 9:].eq(0).all()  # pet left, background + boundary right
    assert set(np.unique(data.masks.numpy())) == {0.0, 1.0}
    assert np.abs(data.images[1, 0, 0].numpy().astype(int) - [200, 20, 0]).max() <= 3  # JPEG colour kept


def test_oxford_pet_registered_and_reports_missing_files(tmp_path):
    make_pets(tmp_path)
    assert len(load_dataset("oxford_pet", "trainval", tmp_path)) == 2
    (tmp_path / "oxford-iiit-pet" / "annotations" / "trimaps" / "Abyssinian_2.png").unlink()
    with pytest.raises(MissingDataError, match="Abyssinian_2.png"):
        load_oxford_pet(tmp_path, "test")
    with pytest.raises(ValueError, match="trainval"):
        load_oxford_pet(tmp_path, "val")


def test_cub_loader_reads_official_split_labels_and_binarized_masks(tmp_path):
    make_cub(tmp_path)
    train, test = load_cub(tmp_path, "train", size=20), load_cub(tmp_path, "test", size=20)
    assert len(train) == 2 and len(test) == 1
    assert train.labels.tolist() == [0, 1] and test.labels.tolist() == [0]
    assert train.classes == ["Black_footed_Albatross", "Laysan_Albatross"]
    mask = test.masks[0]
    assert mask[:10].eq(1).all() and mask[10:].eq(0).all()  # grey band below 0.5 is background
    assert int(test.images[0, 5, 5, 0]) == pytest.approx(120, abs=3)


def test_cub_without_segmentations_says_how_to_get_them(tmp_path):
    make_cub(tmp_path, with_segmentations=False)
    with pytest.raises(MissingDataError, match="segmentations"):
        load_cub(tmp_path, "test")
    with pytest.raises(MissingDataError, match="data root"):
        load_dataset("cub", "test", None)
