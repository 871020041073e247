"""Damaged inputs (truncated or corrupt archives, tables, weights; a read-only or full --out) are one line and exit
code 2, and nothing is written."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from bench.cli import app
from bench.data.base import KNOWN_ARCHIVES
from bench.models.zoo import WEIGHTS_FILE, DamagedWeightsError, load_weights, save_model
from bench.runner import UnitFinisher

runner = CliRunner()
SUITE = "name: dmg\ndataset: cifar10\nsplit: test\nn: 8\nbatch_size: 4\nplugins:\n  - plugin: clean\n"
CARD = {
    "name": "tiny_damaged",
    "method": "standard",
    "arch": "tiny",
    "head": "gap",
    "dataset": "cifar10",
    "num_classes": 10,
    "input_size": 32,
    "normalization": "cifar10",
    "hyperparameters": {},
    "license": "MIT",
}


@pytest.fixture
def suite_file(tmp_path: Path) -> str:
    path = tmp_path / "dmg.yaml"
    path.write_text(SUITE)
    return str(path)


def _run(suite_file: str, out: Path, *extra: str, model: str = "tiny_cnn"):
    return runner.invoke(
        app, ["run", "--model", model, "--suite", suite_file, "--out", str(out), "--no-progress", *extra]
    )


def _one_error_line(result) -> str:
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def _write_cifar_archive(path: Path) -> bytes:
    """A valid archive in the layout of cifar10_test.npz (64 random images); its bytes."""
    rng = np.random.default_rng(0)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, x=rng.integers(0, 256, (64, 32, 32, 3), dtype=np.uint8), y=rng.integers(0, 10, 64))
    return path.read_bytes()


@pytest.mark.parametrize("damage", ["truncated", "one byte flipped"])
def test_damaged_cifar_archive_names_file_size_sha256_and_where_to_get_it(tiny_model, suite_file, tmp_path, damage):
    archive = tmp_path / "data" / "cifar10_test.npz"
    good = _write_cifar_archive(archive)
    middle = len(good) // 2  # inside the image array
    bad = good[:middle] if damage == "truncated" else good[:middle] + bytes([good[middle] ^ 0xFF]) + good[middle + 1 :]
    archive.write_bytes(bad)
    out = tmp_path / "out"
    line = _one_error_line(_run(suite_file, out, "--data-root", str(archive.parent)))
    size, sha256 = KNOWN_ARCHIVES["cifar10_test.npz"]
    assert str(archive) in line and f"{len(bad):,} bytes" in line
    assert f"{size:,} bytes" in line and sha256 in line and "bench data download cifar10" in line
    assert not out.exists()


def test_damaged_results_table_names_it_and_moving_it_aside_rebuilds_its_rows(
    tiny_model, suite_file, tmp_path, monkeypatch
):
    out = tmp_path / "out"
    assert _run(suite_file, out).exit_code == 0
    table = out / "dmg" / "tiny_cnn.parquet"
    rows = pd.read_parquet(table)
    damaged = table.read_bytes()[: table.stat().st_size // 2]
    table.write_bytes(damaged)
    files = _files(out)
    for result in (_run(suite_file, out), runner.invoke(app, ["results", "--out", str(out)])):
        line = _one_error_line(result)
        assert str(table) in line and "move it aside" in line
    assert _files(out) == files and table.read_bytes() == damaged
    computed = []
    monkeypatch.setattr(UnitFinisher, "on_batch", lambda *args: computed.append(args))
    table.rename(tmp_path / "aside.parquet")
    assert _run(suite_file, out).exit_code == 0
    rebuilt = pd.read_parquet(table)
    assert computed == []  # the rows came back from the per-example file, nothing was recomputed
    key = ["unit", "metric", "value"]
    pd.testing.assert_frame_equal(rebuilt[key].sort_values(key), rows[key].sort_values(key))


def test_damaged_zoo_weights_are_one_line(tiny_model, suite_file, tmp_path, monkeypatch):
    monkeypatch.setenv("RIBENCH_ZOO", str(tmp_path / "zoo"))
    weights = save_model(tiny_model, {**CARD, "sha256": ""}) / WEIGHTS_FILE
    weights.write_bytes(weights.read_bytes()[:1000])
    out = tmp_path / "out"
    line = _one_error_line(_run(suite_file, out, model="tiny_damaged"))
    assert str(weights) in line
    assert not out.exists()


def test_weights_that_are_not_safetensors_name_the_file(tmp_path):
    path = tmp_path / "w.safetensors"
    path.write_bytes(b"\xff" * 64)
    with pytest.raises(DamagedWeightsError, match=f"{path} is not a readable safetensors file"):
        load_weights(torch.nn.Linear(2, 2), path, expected_sha256=None)


def _writable(folder: Path) -> bool:
    probe = folder / ".probe"
    try:
        probe.write_bytes(b"")
    except OSError:
        return False
    probe.unlink()
    return True


@pytest.fixture
def read_only_dir(tmp_path: Path):
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    if _writable(folder):  # root ignores permissions: use a read-only file system instead
        folder = Path("/sys")
        if not folder.is_dir() or _writable(folder):
            pytest.skip("no read-only folder: running as root without a read-only /sys")
    yield folder
    (tmp_path / "read-only").chmod(0o755)


def test_read_only_out_is_one_line_before_anything_runs(tiny_model, suite_file, read_only_dir, monkeypatch):
    computed = []
    monkeypatch.setattr(UnitFinisher, "on_batch", lambda *args: computed.append(args))
    files = _files(read_only_dir) if read_only_dir != Path("/sys") else None
    line = _one_error_line(_run(suite_file, read_only_dir))
    assert f"cannot write {read_only_dir}" in line and "not writable" in line and "--out" in line
    assert computed == []
    assert files is None or _files(read_only_dir) == files


def test_full_out_is_one_line_and_leaves_no_partial_file(tiny_model, suite_file, tmp_path, monkeypatch):
    to_parquet = pd.DataFrame.to_parquet

    def disk_full(self, path, *args, **kwargs):
        Path(path).write_bytes(b"PAR1" + b"\0" * 512)  # what fitted on the disk
        return to_parquet(self, "/dev/full", *args, **kwargs)  # pyarrow's own error on a full disk (ENOSPC)

    monkeypatch.setattr(pd.DataFrame, "to_parquet", disk_full)
    out = tmp_path / "out"
    line = _one_error_line(_run(suite_file, out))
    assert "No space left on device" in line and "disk is full" in line
    assert not [p for p in _files(out) if p.suffix in (".parquet", ".tmp")]
    assert os.path.isdir(out)
