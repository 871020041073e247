"""Distribution-shift loaders (ImageNet val / Sketch / ImageNet-C, Waterbirds) on fixtures in the published layouts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from torch import nn

from bench.data import MissingDataError, load_dataset
from bench.data.imagenet import imagenet_wnids, load_image
from bench.plugins.base import Context
from bench.plugins.group_shift import GroupAccuracy
from bench.registry import DATASETS

TENCH, GOLDFISH, LAST = "n01440764", "n01443537", "n15075141"


def save(path: Path, size: tuple[int, int], value: int, mode: str = "RGB") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(value)
    shape = (size[1], size[0], 3) if mode == "RGB" else (size[1], size[0])
    Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode=mode).save(path)


@pytest.fixture
def imagenet_root(tmp_path) -> Path:
    for i, (wnid, stem) in enumerate(
        [(TENCH, "ILSVRC2012_val_00000001"), (TENCH, "ILSVRC2012_val_00000002"), (LAST, "ILSVRC2012_val_00000003")]
    ):
        save(tmp_path / "imagenet" / "val" / wnid / f"{stem}.JPEG", (300 + 10 * i, 260), i)
        for severity in (1, 3):
            save(tmp_path / "ImageNet-C" / "fog" / str(severity) / wnid / f"{stem}.JPEG", (224, 224), 10 * severity + i)
    save(tmp_path / "sketch" / GOLDFISH / "sketch_1.jpg", (400, 500), 7, mode="L")
    save(tmp_path / "sketch" / LAST / "sketch_2.jpg", (256, 256), 8)
    return tmp_path


def test_class_index_is_the_sorted_wordnet_order_of_timm_and_torchvision():
    wnids = imagenet_wnids()
    assert len(wnids) == 1000 and list(wnids) == sorted(wnids)  # ImageFolder sorts class folders the same way
    assert wnids[0] == TENCH and wnids[1] == GOLDFISH and wnids[999] == LAST


def test_imagenet_val_and_sketch_loaders(imagenet_root):
    val = load_dataset("imagenet", "val", imagenet_root)
    assert val.num_classes == 1000 and val.labels.tolist() == [0, 0, 999]
    assert tuple(val.images.shape) == (3, 224, 224, 3)
    assert val.files[2] == f"{LAST}/ILSVRC2012_val_00000003"
    assert load_dataset("imagenet", "val[1/class]", imagenet_root).labels.tolist() == [0, 999]
    sketch = load_dataset("imagenet-sketch", "test", imagenet_root)
    assert sketch.labels.tolist() == [1, 999] and tuple(sketch.images.shape[1:]) == (224, 224, 3)
    gray = sketch.images[0].numpy()
    assert np.array_equal(gray[..., 0], gray[..., 2])  # a grey sketch becomes RGB


def test_resize_then_center_crop_matches_torchvision(imagenet_root):
    from torchvision import transforms

    path = next((imagenet_root / "imagenet" / "val" / TENCH).iterdir())
    tv = transforms.Compose([transforms.Resize(256), transforms.CenterCrop(224)])
    ours = load_image(path, 256, 224).astype(int)
    theirs = np.asarray(tv(Image.open(path).convert("RGB"))).astype(int)
    assert np.abs(ours - theirs).mean() < 2.0  # same geometry; PIL vs tensor resampling may differ by a grey level


def test_imagenet_c_cells_and_bad_folders(imagenet_root):
    cell = load_dataset("imagenet-c", "fog-3", imagenet_root)
    assert cell.labels.tolist() == [0, 0, 999] and tuple(cell.images.shape) == (3, 224, 224, 3)
    with pytest.raises(MissingDataError, match=r"fog/5/ \(severities present: 1, 3\)"):
        load_dataset("imagenet-c", "fog-5", imagenet_root)
    val = load_dataset("imagenet", "val", imagenet_root)
    reader = DATASETS.entry("imagenet-c").meta["cells"](imagenet_root, "fog", 3)
    images = reader.read(np.array([2, 0]), val.labels[[2, 0]].numpy(), val)
    assert np.array_equal(images, cell.images.numpy()[[2, 0]])
    with pytest.raises(ValueError, match="class mismatch"):
        reader.read(np.array([0]), np.array([5]), val)
    (imagenet_root / "ImageNet-C" / "fog" / "1" / LAST / "ILSVRC2012_val_00000003.JPEG").unlink()
    with pytest.raises(MissingDataError, match="fog/1/n15075141/ILSVRC2012_val_00000003"):
        DATASETS.entry("imagenet-c").meta["cells"](imagenet_root, "fog", 1).read(np.array([2]), np.array([999]), val)
    save(imagenet_root / "ImageNet-C" / "fog" / "1" / LAST / "small.JPEG", (100, 100), 3)
    with pytest.raises(ValueError, match=r"small.JPEG: image is 100x100"):
        load_dataset("imagenet-c", "fog-1", imagenet_root)
    (imagenet_root / "imagenet" / "val" / "not_a_wnid").mkdir()
    with pytest.raises(ValueError, match="not_a_wnid.*not an ImageNet WordNet id"):
        load_dataset("imagenet", "val", imagenet_root)


def write_waterbirds(root: Path, drop_group: int | None = None) -> Path:
    folder = root / "waterbird_complete95_forest2water2"
    rows = []
    for img_id in range(20):  # test: 3 per group; train: 1 per group + 4 more land birds on land (imbalanced)
        y, place, split = ((img_id // 2) % 2, img_id % 2, 2 if img_id < 12 else 0) if img_id < 16 else (0, 0, 0)
        if drop_group is not None and 2 * y + place == drop_group and split == 2:
            split = 1
        name = f"{img_id:03d}.Bird/{img_id}.jpg"
        save(folder / name, (240 + img_id, 250), img_id)
        rows.append((img_id + 1, name, y, split, place, f"/places/{img_id}.jpg"))
    pd.DataFrame(rows, columns=["img_id", "img_filename", "y", "split", "place", "place_filename"]).to_csv(
        folder / "metadata.csv", index=False
    )
    return folder


class BrightnessModel(nn.Module):
    """Predicts waterbird when the image is brighter than average: deterministic, group-dependent mistakes."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        score = x.mean(dim=(1, 2, 3)) - 0.5
        return torch.stack([-score, score], dim=1)


def test_waterbirds_groups_and_group_metrics(tmp_path):
    write_waterbirds(tmp_path)
    data = load_dataset("waterbirds", "test", tmp_path)
    meta = pd.read_csv(tmp_path / "waterbird_complete95_forest2water2" / "metadata.csv").query("split == 2")
    assert data.groups.tolist() == (2 * meta["y"] + meta["place"]).tolist()
    assert data.group_names[1] == "landbird_water" and tuple(data.images.shape[1:]) == (224, 224, 3)
    assert load_dataset("waterbirds", "test[1/group]", tmp_path).groups.tolist() == [0, 1, 2, 3]
    ctx = Context(seed=0, device="cpu", precision="fp32", dataset=data)
    plugin = GroupAccuracy()
    examples = pd.DataFrame(plugin.run_batch(BrightnessModel(), data.batch(torch.arange(len(data))), ctx))
    metrics = dict(plugin.summarize(examples, ctx))
    per_group = examples.groupby("group")["correct"].mean()
    assert metrics["average_accuracy"] == pytest.approx(examples["correct"].mean())
    assert metrics["accuracy_group_2_waterbird_land"] == pytest.approx(per_group[2])
    assert metrics["worst_group_accuracy"] == pytest.approx(per_group.min())
    train_shares = np.array([5, 1, 1, 1]) / 8
    assert data.train_group_fractions.tolist() == pytest.approx(train_shares.tolist())
    assert metrics["train_weighted_accuracy"] == pytest.approx(float((train_shares * per_group.to_numpy()).sum()))
    with pytest.raises(ValueError, match=r"group\(s\) \[3\].*have no evaluated examples"):
        plugin.summarize(examples[examples["group"] != 3], ctx)


def test_waterbirds_bad_input(tmp_path):
    folder = write_waterbirds(tmp_path, drop_group=3)
    with pytest.raises(ValueError, match="no examples of group.*waterbird_water"):
        load_dataset("waterbirds", "test", tmp_path)
    write_waterbirds(tmp_path / "other")
    (tmp_path / "other" / "waterbird_complete95_forest2water2" / "003.Bird" / "3.jpg").unlink()
    with pytest.raises(MissingDataError, match="3.jpg"):
        load_dataset("waterbirds", "test", tmp_path / "other")
    pd.read_csv(folder / "metadata.csv").drop(columns=["place"]).to_csv(folder / "metadata.csv", index=False)
    with pytest.raises(ValueError, match="missing column.*place"):
        load_dataset("waterbirds", "val", tmp_path)
