"""Where a number came from: package version, git commit, torch version, device, threads, time."""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import subprocess
from pathlib import Path

import torch

import bench

REPO_ROOT = Path(__file__).resolve().parent.parent


@functools.cache
def git_commit() -> str:
    """The commit of the working tree ("+dirty" when it has uncommitted changes), or "unknown"."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", "bench"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        return commit + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def provenance(device: str) -> dict[str, str | int]:
    return {
        "package_version": bench.__version__,
        "git_commit": git_commit(),
        "torch_version": torch.__version__,
        "device": device,
        "threads": torch.get_num_threads(),
    }


def utc_now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
