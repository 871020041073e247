import numpy as np
import pytest
import torch

from bench.data import MissingDataError, load_dataset
from bench.data.cifar import EMBEDDED_SPLIT, embedded_sample
from tests.conftest import needs_shared_data, shared_data_root


def test_embedded_sample_is_balanced_1000_images():
    data = embedded_sample()
    assert len(data) == 1000 and data.split == EMBEDDED_SPLIT
    assert np.bincount(data.labels.numpy(), minlength=10).tolist() == [100] * 10


@needs_shared_data
def test_embedded_sample_matches_the_archive():
    with np.load(shared_data_root() / "cifar10_test.npz") as archive:
        x, y = archive["x"], archive["y"]
    with np.load(embedded_sample.__globals__["EMBEDDED"]) as sample:
        index = sample["index"]
    data = embedded_sample()
    assert np.array_equal(data.images.numpy(), x[index])
    assert np.array_equal(data.labels.numpy(), y[index])


def test_no_data_root_falls_back_to_embedded_sample_and_says_so(monkeypatch):
    monkeypatch.delenv("RIBENCH_DATA", raising=False)
    data = load_dataset("cifar10", "test")
    assert data.split == EMBEDDED_SPLIT


def test_missing_data_root_names_the_expected_files(tmp_path):
    with pytest.raises(MissingDataError, match="cifar10_train.npz"):
        load_dataset("cifar10", "train", tmp_path)


def test_torchvision_on_disk_format_is_read(tmp_path):
    import pickle

    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (20, 3, 32, 32), dtype=np.uint8)
    labels = list(rng.integers(0, 10, 20))
    with open(folder / "test_batch", "wb") as f:  # the format torchvision reads (pickled dicts)
        pickle.dump({"data": x.reshape(20, -1), "labels": labels}, f)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": [str(i) for i in range(10)]}, f)
    from unittest import mock

    # torchvision md5-checks the official files; the fixture's bytes differ, so only that check is bypassed
    with (
        mock.patch("torchvision.datasets.CIFAR10._check_integrity", return_value=True),
        mock.patch("torchvision.datasets.cifar.check_integrity", return_value=True),
    ):
        data = load_dataset("cifar10", "test", tmp_path)
    assert data.split == "test" and len(data) == 20
    assert np.array_equal(data.images.numpy(), x.transpose(0, 2, 3, 1))
    batch = data.batch(torch.arange(4))
    assert batch.x.shape == (4, 3, 32, 32) and 0 <= batch.x.min() and batch.x.max() <= 1


@needs_shared_data
def test_pets3_masks_and_splits():
    data = load_dataset("pets3", "test", shared_data_root())
    assert len(data) == 298 and data.num_classes == 3
    assert data.masks is not None and set(np.unique(data.masks.numpy())) <= {0.0, 1.0}


def test_interleaving_makes_every_prefix_balanced():
    from bench.data.pets import interleave_by_class

    labels = np.repeat([0, 1, 2], [5, 4, 6])
    order = interleave_by_class(labels)
    assert sorted(order.tolist()) == list(range(15))
    assert labels[order][:12].tolist() == [0, 1, 2] * 4
    assert all(np.diff(order[labels[order] == c]).min() > 0 for c in range(3))  # archive order within a class


@needs_shared_data
def test_pets3_first_99_test_images_are_balanced():
    data = load_dataset("pets3", "test", shared_data_root())
    assert np.bincount(data.labels[:99].numpy()).tolist() == [33, 33, 33]
