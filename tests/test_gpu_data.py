"""scripts/gpu_data.py: CIFAR-10 packed as lossless WebP mosaics in groups that fit a device call, unpacked exactly."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "gpu_data.py"


@pytest.fixture(scope="module")
def gpu_data():
    pytest.importorskip("PIL.WebPImagePlugin")
    spec = importlib.util.spec_from_file_location("gpu_data", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def archive(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (250, 32, 32, 3), dtype=np.uint8)  # noise: the worst case for compression
    path = tmp_path / "cifar10_train.npz"
    np.savez(path, x=x, y=np.arange(250) % 10)
    return path


def test_pack_then_unpack_gives_back_the_same_arrays_from_several_groups(gpu_data, archive, tmp_path):
    groups = gpu_data.pack(archive, tmp_path / "packed", group_mib=0.3, per_mosaic=60, effort=0)
    assert len(groups) >= 2 and all((g / "manifest.json").exists() for g in groups)
    assert all(sum(p.stat().st_size for p in g.glob("*.webp")) <= 0.3 * (1 << 20) for g in groups)
    out = gpu_data.unpack(tmp_path / "packed", tmp_path / "data")
    with np.load(archive) as a, np.load(out) as b:
        assert np.array_equal(a["x"], b["x"]) and np.array_equal(a["y"], b["y"]) and b["y"].dtype == np.int64


def test_unpack_names_the_missing_groups(gpu_data, archive, tmp_path):
    import shutil

    groups = gpu_data.pack(archive, tmp_path / "packed", group_mib=0.3, per_mosaic=60, effort=0)
    shutil.rmtree(groups[-1])
    with pytest.raises(SystemExit, match="mosaics missing .groups here: g00"):
        gpu_data.unpack(tmp_path / "packed", tmp_path / "data")
