"""A real install: the wheel, in a fresh venv outside the clone, runs a suite from any directory.

The venv reuses this environment's installed dependencies (torch, ...) through a ``.pth`` line instead of installing
them (``--system-site-packages`` would reach only the base interpreter's), and nothing is downloaded: the test takes
about 40 s, most of it the evaluation itself.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pandas as pd
import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


def _pip(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "pip", "-q", *args], check=True, capture_output=True, text=True)


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A venv with the wheel built from this clone; returns its bin folder."""
    root = tmp_path_factory.mktemp("install")
    source = root / "src"  # a copy: building in the clone would leave build/ and *.egg-info behind
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    shutil.copytree(REPO / "bench", source / "bench", ignore=shutil.ignore_patterns("__pycache__"))
    _pip("wheel", "--no-deps", "--no-build-isolation", "-w", str(root / "dist"), str(source))
    wheel = next((root / "dist").glob("ribench-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "bench/suites/cifar10-adv-quick.yaml" in names and "bench/data/assets/cifar10_test_balanced1000.npz" in names
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root / "venv")], check=True)
    _pip("--python", str(root / "venv" / "bin" / "python"), "install", "--no-deps", str(wheel))
    site = next((root / "venv" / "lib").glob("python*/site-packages"))
    (site / "_ribench_test_dependencies.pth").write_text(str(Path(torch.__file__).resolve().parents[1]) + "\n")
    return root / "venv" / "bin"


def _bench(bin_dir: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RIBENCH_")}
    env["RIBENCH_CACHE"] = str(cwd / "cache")  # an empty user cache: no zoo but the ones named
    return subprocess.run([str(bin_dir / "bench"), *args], cwd=cwd, env=env, capture_output=True, text=True)


def test_installed_wheel_runs_a_suite_from_any_directory(installed, tmp_path):
    located = subprocess.run(
        [str(installed / "python"), "-c", "import bench; print(bench.__file__)"],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    )
    assert "site-packages" in located.stdout and str(REPO) not in located.stdout
    no_zoo = _bench(installed, tmp_path, "run", "--model", "standard_cnn", "--suite", "cifar10-adv-quick")
    assert no_zoo.returncode == 2 and "no zoo found: pass --zoo DIR" in no_zoo.stderr
    run = _bench(
        installed,
        tmp_path,
        "run",
        "--model",
        "standard_cnn",
        "--suite",
        "cifar10-adv-quick",
        "--zoo",
        str(REPO / "model_zoo"),
        "--limit",
        "20",
        "--device",
        "cpu",
        "--no-progress",
    )
    assert run.returncode == 0, run.stderr[-2000:]
    rows = pd.read_parquet(tmp_path / "results" / "cifar10-adv-quick" / "standard_cnn.parquet")
    assert set(rows["plugin"]) == {"clean", "fgsm", "pgd"} and (rows["n"] == 20).all()
    assert (rows["git_commit"] == "unknown").all()  # an installed package is no clone
    clean = rows[(rows["plugin"] == "clean") & (rows["metric"] == "accuracy")]["value"].item()
    assert clean >= 0.7  # the zoo's weights were loaded (89.6% on the full test set)
    site = next((installed.parent / "lib").glob("python*/site-packages"))
    assert not (site / "results").exists() and not (site / "model_zoo").exists()
