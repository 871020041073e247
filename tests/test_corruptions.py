"""Corruptions: the imagecorruptions adapter vs the package, CIFAR-10-C parameters, cache, plugin, published files."""

from __future__ import annotations

import warnings
from io import BytesIO
from pathlib import Path

import numpy as np
import pytest
import scipy.ndimage
import skimage.filters
import torch
from PIL import Image

from bench.corruptions import (
    ALL,
    COMMON,
    EXTRA,
    CorruptionCache,
    corrupt_images,
    select_corruptions,
    select_severities,
)
from bench.corruptions.catalog import example_seed, global_numpy_seed
from bench.data import MissingDataError, load_dataset
from bench.data.cifar import embedded_sample
from bench.plugins.base import Context
from bench.plugins.corruption import Corruption, cell_column

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import imagecorruptions
    from imagecorruptions import corruptions as ic

PATCHED = {"glass_blur", "gaussian_blur", "fog", "impulse_noise"}


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return embedded_sample().images[:6].numpy()


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("RIBENCH_CACHE", str(tmp_path / "cache"))


def package_output(image: np.ndarray, name: str, severity: int, seed: int, index: int) -> np.ndarray:
    with global_numpy_seed(example_seed(seed, name, severity, index)):
        return imagecorruptions.corrupt(image, severity, name)


def test_names_and_families_match_the_package():
    assert COMMON == tuple(imagecorruptions.get_corruption_names("common"))
    assert EXTRA == tuple(imagecorruptions.get_corruption_names("validation"))
    assert select_corruptions("common") == COMMON and len(select_corruptions("all")) == 19
    assert select_corruptions("noise") == ("gaussian_noise", "shot_noise", "impulse_noise")
    with pytest.raises(ValueError, match="gausian_noise"):
        select_corruptions("gausian_noise")
    with pytest.raises(ValueError, match="1..5"):
        select_severities("0,6")


@pytest.mark.parametrize("name", sorted(set(ALL) - PATCHED))
def test_unpatched_corruptions_equal_the_package_bit_for_bit(images, name):
    for severity in (1, 5):
        ours = corrupt_images(images[:2], np.array([3, 7]), name, severity, seed=11, protocol="imagenet-c")
        for row, index in enumerate((3, 7)):
            assert np.array_equal(ours[row], package_output(images[row], name, severity, 11, index))


def test_fog_equals_the_package_run_with_the_removed_numpy_alias(images, monkeypatch):
    ours = corrupt_images(images[:1], np.array([0]), "fog", 4, seed=1, protocol="imagenet-c")
    monkeypatch.setattr(np, "float_", np.float64, raising=False)  # the package's own fog, in a NumPy-1 world
    assert np.array_equal(ours[0], package_output(images[0], "fog", 4, 1, 0))


def per_channel_gaussian(image, sigma=1.0, multichannel=None, **kwargs):
    """What skimage < 0.19 computed for multichannel=True: a 2-D blur of each channel (truncate 4, mode nearest)."""
    assert multichannel is True
    image = np.asarray(image, dtype=np.float64)
    return scipy.ndimage.gaussian_filter(image, sigma=(sigma, sigma, 0), mode="nearest", truncate=4.0)


@pytest.mark.parametrize("name", ["glass_blur", "gaussian_blur"])
def test_multichannel_patch_equals_a_per_channel_blur_in_the_package_code(images, name, monkeypatch):
    ours = corrupt_images(images[:2], np.array([0, 1]), name, 3, seed=2, protocol="imagenet-c")
    monkeypatch.setattr(ic, "gaussian", per_channel_gaussian)  # the package's code with an independent blur
    for row in range(2):
        assert np.abs(ours[row].astype(int) - package_output(images[row], name, 3, 2, row)).max() <= 1


def test_the_package_module_itself_is_left_unpatched():
    assert ic.gaussian is skimage.filters.gaussian and ic.np is np and not hasattr(np, "float_")


def test_impulse_noise_is_seeded_and_hits_the_requested_fraction(images):
    a = corrupt_images(images, np.arange(6), "impulse_noise", 5, seed=0, protocol="imagenet-c")
    b = corrupt_images(images, np.arange(6), "impulse_noise", 5, seed=0, protocol="imagenet-c")
    assert np.array_equal(a, b)
    changed = (a != images).mean()
    assert 0.2 < changed < 0.3  # s&p amount 0.27, minus values that were already 0/255


def test_cifar_parameters_for_deterministic_corruptions(images):
    x = images[:1]
    contrast = corrupt_images(x, np.array([0]), "contrast", 5, 0, "cifar10-c")[0]
    unit = x[0] / 255.0
    expected = np.uint8(np.clip((unit - unit.mean(axis=(0, 1))) * 0.15 + unit.mean(axis=(0, 1)), 0, 1) * 255)
    assert np.array_equal(contrast, expected)
    jpeg = corrupt_images(x, np.array([0]), "jpeg_compression", 1, 0, "cifar10-c")[0]
    buffer = BytesIO()
    Image.fromarray(x[0]).save(buffer, "JPEG", quality=80)
    assert np.array_equal(jpeg, np.asarray(Image.open(buffer)))
    pixel = corrupt_images(x, np.array([0]), "pixelate", 5, 0, "cifar10-c")[0]
    small = Image.fromarray(x[0]).resize((20, 20), Image.BOX).resize((32, 32), Image.BOX)
    assert np.array_equal(pixel, np.asarray(small))


def test_cifar_severities_are_milder_than_imagenet_and_grow(images):
    def damage(name, severity, protocol):
        out = corrupt_images(images, np.arange(6), name, severity, 0, protocol)
        return np.abs(out.astype(float) - images).mean()

    for name in ("gaussian_noise", "contrast", "defocus_blur"):
        cifar = [damage(name, s, "cifar10-c") for s in (1, 3, 5)]
        assert cifar == sorted(cifar) and cifar[0] < cifar[2]
        assert damage(name, 3, "cifar10-c") < damage(name, 3, "imagenet-c")


@pytest.mark.parametrize("name", ALL)
def test_every_cifar_corruption_runs_is_seeded_and_batch_independent(images, name):
    for severity in (1, 5):
        batch = corrupt_images(images[:3], np.array([10, 11, 12]), name, severity, 5, "cifar10-c")
        alone = corrupt_images(images[2:3], np.array([12]), name, severity, 5, "cifar10-c")
        assert batch.dtype == np.uint8 and batch.shape == (3, 32, 32, 3)
        assert np.array_equal(batch[2], alone[0])
    assert not np.array_equal(batch[0], images[0])


def test_cifar_protocol_refuses_other_sizes():
    with pytest.raises(ValueError, match="imagenet-c"):
        corrupt_images(np.zeros((1, 64, 64, 3), np.uint8), np.array([0]), "fog", 1, 0, "cifar10-c")


def test_cache_serves_a_second_run_and_is_keyed(images, tmp_path):
    calls = []

    def compute(imgs, idx):
        calls.append(len(idx))
        return corrupt_images(imgs, idx, "glass_blur", 2, 0, "cifar10-c")

    cache = CorruptionCache("cifar10", "test", "cifar10-c", seed=0)
    assert str(cache.root).startswith(str(tmp_path / "cache"))  # RIBENCH_CACHE is honoured
    first = cache.get_or_compute(images, np.arange(6), "glass_blur", 2, compute)
    again = CorruptionCache("cifar10", "test", "cifar10-c", seed=0)
    second = again.get_or_compute(images[2:5], np.arange(2, 5), "glass_blur", 2, compute)
    assert calls == [6] and again.hits == 3 and np.array_equal(second, first[2:5])
    other_seed = CorruptionCache("cifar10", "test", "cifar10-c", seed=1)
    other_seed.get_or_compute(images[:2], np.arange(2), "glass_blur", 2, compute)
    assert calls == [6, 2] and other_seed.folder("glass_blur", 2) != cache.folder("glass_blur", 2)
    changed = images[:1].copy()
    changed[0, 0, 0] ^= 1  # same index, different clean image: recomputed, not served stale
    again.get_or_compute(changed, np.arange(1), "glass_blur", 2, compute)
    assert calls == [6, 2, 1]
    assert "imagecorruptions-1.1.2" in str(cache.folder("fog", 1))


def _context(seed: int = 0) -> Context:
    return Context(seed=seed, device="cpu", precision="fp32", dataset=embedded_sample())


def test_plugin_summaries_are_means_of_the_cells(tiny_model):
    data = embedded_sample()
    plugin = Corruption(corruptions="gaussian_noise,contrast,saturate", severities="1,5")
    ctx = _context()
    import pandas as pd

    columns = plugin.run_batch(tiny_model, data.batch(torch.arange(40)), ctx)
    examples = pd.DataFrame(columns)
    metrics = dict(plugin.summarize(examples, ctx))
    common = [examples[cell_column(c, s)].mean() for c in ("gaussian_noise", "contrast") for s in (1, 5)]
    assert metrics["mean_accuracy"] == pytest.approx(np.mean(common))
    assert metrics["extra_mean_accuracy"] == pytest.approx(
        np.mean([examples[cell_column("saturate", s)].mean() for s in (1, 5)])
    )
    assert metrics["accuracy_family_noise"] == pytest.approx(np.mean(common[:2]))
    assert metrics["n_cells"] == 6
    assert metrics["accuracy_contrast_s5"] <= metrics["clean_accuracy"] + 0.1


def write_cifar10c(folder: Path, images: np.ndarray, labels: np.ndarray, corruptions: dict[str, list[np.ndarray]]):
    """The published format: <corruption>.npy with 5 severities stacked, labels.npy repeated 5 times."""
    folder.mkdir(parents=True)
    np.save(folder / "labels.npy", np.tile(labels, 5).astype(np.uint8))
    for name, per_severity in corruptions.items():
        np.save(folder / f"{name}.npy", np.concatenate(per_severity).astype(np.uint8))


def test_published_files_give_the_same_rows_as_generation(tiny_model, tmp_path):
    data = embedded_sample()
    n = 16
    x, y = data.images[:n].numpy(), data.labels[:n].numpy()
    generated = {
        name: [corrupt_images(x, np.arange(n), name, s, 0, "cifar10-c") for s in range(1, 6)]
        for name in ("fog", "pixelate")
    }
    write_cifar10c(tmp_path / "CIFAR-10-C", x, y, generated)
    batch = data.batch(torch.arange(n))
    kwargs = dict(corruptions="fog,pixelate", severities="2,4")
    from_files = Corruption(source="cifar10c", data_root=str(tmp_path), **kwargs).run_batch(
        tiny_model, batch, _context()
    )
    from_generation = Corruption(**kwargs).run_batch(tiny_model, batch, _context())
    assert from_files.keys() == from_generation.keys()
    for key in from_files:
        assert np.array_equal(from_files[key], from_generation[key]), key
    cell = load_dataset("cifar10c", "fog-4", tmp_path)
    assert len(cell) == n and np.array_equal(cell.images.numpy(), generated["fog"][3])


def test_published_files_bad_input_names_the_file(tiny_model, tmp_path):
    data = embedded_sample()
    x, y = data.images[:8].numpy(), data.labels[:8].numpy()
    write_cifar10c(tmp_path / "CIFAR-10-C", x, y, {"fog": [x] * 4, "contrast": [x] * 5, "frost": [x[:, :16, :16]] * 5})
    with pytest.raises(ValueError, match=r"fog.npy has 32 images.*4 severities"):
        load_dataset("cifar10c", "fog-5", tmp_path)
    with pytest.raises(ValueError, match=r"frost.npy: expected uint8 \(5\*N, 32, 32, 3\)"):
        load_dataset("cifar10c", "frost-1", tmp_path)
    with pytest.raises(MissingDataError, match="snow.npy"):
        load_dataset("cifar10c", "snow-1", tmp_path)
    with pytest.raises(ValueError, match="<corruption>-<severity"):
        load_dataset("cifar10c", "contrast", tmp_path)
    wrong = data.batch(torch.arange(8))
    wrong.y = (wrong.y + 1) % 10
    plugin = Corruption(corruptions="contrast", severities="1", source="cifar10c", data_root=str(tmp_path))
    with pytest.raises(ValueError, match="class mismatch: .*labels.npy"):
        plugin.run_batch(tiny_model, wrong, _context())
