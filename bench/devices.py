"""Which device a run uses: ``auto`` (CUDA when torch sees one, else CPU), ``cpu``, ``cuda`` or ``cuda:N``.

Example:
    >>> resolve_device("cpu")
    'cpu'
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from bench.exceptions import DeviceUnavailableError, UsageError

DEVICE_PATTERN = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")
# device nodes of the NVIDIA driver, ROCm (HIP is torch's "cuda") and WSL's GPU paravirtualization
_GPU_NODES = ("/dev/nvidiactl", "/dev/nvidia0", "/proc/driver/nvidia", "/dev/kfd", "/dev/dxg")


def _surely_no_gpu() -> bool:
    """True on Linux when no GPU device node exists: torch would find no CUDA device either (checked without it)."""
    return sys.platform.startswith("linux") and not any(Path(p).exists() for p in _GPU_NODES)


def resolve_device(device: str | None) -> str:
    """The device to run on: ``auto``/None picks ``cuda`` when available, else ``cpu``.

    Args:
        device: ``auto``, ``cpu``, ``cuda``, ``cuda:N``, ``mps`` or None (= ``auto``).

    Returns:
        A torch device string.

    Raises:
        DeviceUnavailableError: ``cuda`` asked for where torch sees no CUDA device (or not that many).
        UsageError: a string that names no device.

    Example:
        >>> resolve_device("auto") in ("cpu", "cuda")
        True
    """
    device = (device or "auto").strip().lower()
    if not DEVICE_PATTERN.match(device):
        raise UsageError(f"--device {device}: use auto, cpu, cuda or cuda:N")
    if device == "cpu":
        return device
    if device == "auto" and _surely_no_gpu():
        return "cpu"
    if device.startswith("cuda") and _surely_no_gpu():
        raise DeviceUnavailableError(f"--device {device}: this machine has no CUDA device; use --device cpu or auto")
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "mps":
        if not torch.backends.mps.is_available():
            raise DeviceUnavailableError("--device mps: torch sees no MPS device; use --device cpu or auto")
        return device
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    index = int(device.partition(":")[2] or 0)
    if index >= count:
        seen = f"{count} CUDA device(s)" if count else f"no CUDA device (torch {torch.__version__})"
        raise DeviceUnavailableError(f"--device {device}: torch sees {seen}; use --device cpu or auto")
    return device
