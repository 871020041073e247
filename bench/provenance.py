"""Where a number came from: package version, git commit, torch version, device, threads, time."""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import os
import subprocess
from pathlib import Path

from bench._version import __version__
from bench.paths import REPO_ROOT, clone_root

__all__ = ["REPO_ROOT", "git_commit", "machine", "provenance", "sha256_file", "utc_now"]


@functools.cache
def git_commit() -> str:
    """The commit of the working tree ("+dirty" when it has uncommitted changes), or "unknown" (installed package).

    A copy of the tree without its ``.git`` (the one a GPU machine receives) reports ``RIBENCH_GIT_COMMIT``, which
    scripts/gpu_wheels.sh records from the clone before the copy is sent.

    Example:
        >>> len(git_commit()) >= 7
        True
    """
    fallback = os.environ.get("RIBENCH_GIT_COMMIT", "unknown")
    if clone_root() is None:  # site-packages may sit inside someone else's repository
        return fallback
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
        return fallback


def provenance(device: str) -> dict[str, str | int]:
    import torch  # only runs that compute record provenance

    return {
        "package_version": __version__,
        "git_commit": git_commit(),
        "torch_version": torch.__version__,
        "device": device,
        "threads": torch.get_num_threads(),
    }


@functools.cache
def machine() -> str:
    """The CPU model, its cores and whether it has bf16 matrix units, e.g. "AMD EPYC, 2 cores, no AMX/AVX512-BF16".

    Cards and benchmark rows record it: CPUs differ between machines, and bf16 is fast only with AMX or AVX512-BF16.
    """
    import os
    import platform

    model, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                model = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
    except OSError:
        pass
    fast_bf16 = [f for f in ("amx_bf16", "avx512_bf16") if f in flags]
    bf16 = "+".join(fast_bf16) if fast_bf16 else "no AMX/AVX512-BF16"
    return f"{model}, {os.cpu_count()} cores, {bf16}"


def utc_now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
