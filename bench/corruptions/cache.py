"""On-disk cache of corrupted images, so that a suite pays the (slow) corruption once.

Key: dataset, split, protocol, corruption, severity, seed, imagecorruptions version and this adapter's version.
Images are stored in blocks of ``BLOCK`` example indices (``.npz``: index, clean-image digest, corrupted image),
written atomically. A cached image is used only if the digest of the clean image it came from matches, so a
dataset whose files changed under the same name is recomputed, never served stale.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path

import numpy as np

ADAPTER_VERSION = 1  # bump when bench/corruptions changes what an image looks like
BLOCK = 512
IMAGECORRUPTIONS_VERSION = version("imagecorruptions")


def cache_root() -> Path:
    """``RIBENCH_CACHE`` or ``~/.cache/ribench``."""
    return Path(os.environ.get("RIBENCH_CACHE") or "~/.cache/ribench").expanduser()


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)


def image_digests(images: np.ndarray) -> np.ndarray:
    return np.array(
        [int.from_bytes(hashlib.blake2b(img.tobytes(), digest_size=8).digest(), "little") for img in images],
        dtype=np.uint64,
    )


@dataclass
class CorruptionCache:
    dataset: str
    split: str
    protocol: str
    seed: int
    root: Path = field(default_factory=cache_root)
    hits: int = 0
    misses: int = 0

    def folder(self, corruption: str, severity: int) -> Path:
        return (
            Path(self.root)
            / "corruptions"
            / f"imagecorruptions-{IMAGECORRUPTIONS_VERSION}_adapter-{ADAPTER_VERSION}"
            / _slug(self.dataset)
            / _slug(self.split)
            / self.protocol
            / f"seed{self.seed}"
            / corruption
            / f"severity{severity}"
        )

    def _read_block(self, path: Path) -> dict[int, tuple[int, np.ndarray]]:
        if not path.exists():
            return {}
        try:
            with np.load(path) as block:
                rows = zip(block["index"], block["digest"], block["images"], strict=True)
                return {int(i): (int(d), img) for i, d, img in rows}
        except (OSError, ValueError, KeyError):  # a damaged cache file is rebuilt, not trusted
            return {}

    def _write_block(self, path: Path, entries: dict[int, tuple[int, np.ndarray]]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        keys = sorted(entries)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as f:
            np.savez(
                f,
                index=np.array(keys, dtype=np.int64),
                digest=np.array([entries[k][0] for k in keys], dtype=np.uint64),
                images=np.stack([entries[k][1] for k in keys]),
            )
        os.replace(tmp, path)

    def get_or_compute(
        self,
        images: np.ndarray,
        indices: np.ndarray,
        corruption: str,
        severity: int,
        compute: Callable[[np.ndarray, np.ndarray], np.ndarray],
        digests: np.ndarray | None = None,
    ) -> np.ndarray:
        """Corrupted versions of ``images`` (uint8 NHWC, dataset ``indices``), from the cache where it has them.

        ``digests`` (from ``image_digests``) may be passed when the same images are looked up for many cells.
        """
        indices = np.asarray(indices, dtype=np.int64)
        digests = image_digests(images) if digests is None else digests
        out = np.empty_like(images)
        folder = self.folder(corruption, severity)
        for block_id in np.unique(indices // BLOCK):
            path = folder / f"block{int(block_id):07d}.npz"
            entries = self._read_block(path)
            rows = np.flatnonzero(indices // BLOCK == block_id)
            missing = []
            for r in rows:
                cached = entries.get(int(indices[r]))
                if cached is not None and cached[0] == int(digests[r]) and cached[1].shape == images[r].shape:
                    out[r] = cached[1]
                else:
                    missing.append(r)
            self.hits += len(rows) - len(missing)
            self.misses += len(missing)
            if missing:
                missing = np.array(missing)
                fresh = compute(images[missing], indices[missing])
                out[missing] = fresh
                entries.update({int(indices[r]): (int(digests[r]), img) for r, img in zip(missing, fresh, strict=True)})
                self._write_block(path, entries)
        return out
