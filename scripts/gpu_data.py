"""Pack an image archive (cifar10_train.npz) for GPU device calls, and unpack it there, losslessly.

A device call carries at most 64 MiB in all, and cifar10_train.npz is 141 MB. Lossless WebP of 1,000-image mosaics
takes it to about 54% (~83 MB), still more than one call carries, so ``pack`` writes groups (folders of at most
``--group-mib``), each with the manifest; successive calls each carry one group (a warm machine keeps what earlier
calls brought), and ``unpack`` there checks that every mosaic is present, rebuilds the arrays, checks their sha256
against the manifest and writes the .npz that ``--data-root`` reads.

Usage:
    .venv/bin/python scripts/gpu_data.py pack ../shared/data/cifar10_train.npz .gpu/data --group-mib 24
    python3 scripts/gpu_data.py unpack .gpu/data runs/gpu_data        # on the GPU machine
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import shutil
from pathlib import Path

import numpy as np

PER_MOSAIC = 1000
COLUMNS = 50
MANIFEST = "manifest.json"


def mosaic(images: np.ndarray, columns: int = COLUMNS) -> np.ndarray:
    """Tile (N, H, W, 3) images row-major into one (rows*H, columns*W, 3) image, zero-filling the last row.

    Example:
        >>> mosaic(np.zeros((3, 32, 32, 3), np.uint8), columns=2).shape
        (64, 64, 3)
    """
    n, h, w, c = images.shape
    rows = -(-n // columns)
    full = np.zeros((rows * columns, h, w, c), np.uint8)
    full[:n] = images
    return full.reshape(rows, columns, h, w, c).transpose(0, 2, 1, 3, 4).reshape(rows * h, columns * w, c)


def unmosaic(tiled: np.ndarray, n: int, h: int, w: int, columns: int = COLUMNS) -> np.ndarray:
    """Inverse of ``mosaic``: the first ``n`` (h, w) tiles of a mosaic.

    Example:
        >>> x = np.arange(3 * 2 * 2 * 3, dtype=np.uint8).reshape(3, 2, 2, 3)
        >>> bool((unmosaic(mosaic(x, 2), 3, 2, 2, 2) == x).all())
        True
    """
    rows = tiled.shape[0] // h
    tiles = tiled.reshape(rows, h, columns, w, -1).transpose(0, 2, 1, 3, 4).reshape(rows * columns, h, w, -1)
    return tiles[:n]


def _digest(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def pack(src: Path, out: Path, group_mib: float, per_mosaic: int = PER_MOSAIC, effort: int = 4) -> list[Path]:
    """Write lossless WebP mosaics of ``src``'s ``x`` into groups ``out/g00``, ``out/g01``, ... (each <= group_mib).

    ``effort`` is WebP's ``method`` (0-6): on CIFAR-10, 4 gives 55.2% of the raw size in about 3 s per 1,000 images
    here, 6 gives 54.4% in 8 times as long, 0 gives 58.2%.

    Example:
        >>> pack(Path("../shared/data/cifar10_train.npz"), Path(".gpu/data"), 24)[0].name
        'g00'
    """
    from PIL import Image

    with np.load(src) as archive:
        x, y = archive["x"], archive["y"]
    if y.min() < 0 or y.max() > 255:
        raise SystemExit(f"error: {src}: labels outside 0..255 do not fit the manifest's uint8 labels")
    manifest = {
        "file": src.name,
        "shape": list(x.shape),
        "x_sha256": _digest(x),
        "y_sha256": _digest(y.astype(np.int64)),
        "y": base64.b64encode(y.astype(np.uint8).tobytes()).decode(),
        "per_mosaic": per_mosaic,
        "mosaics": -(-len(x) // per_mosaic),
    }
    shutil.rmtree(out, ignore_errors=True)
    groups: list[Path] = []
    size = limit = int(group_mib * (1 << 20))
    for index, start in enumerate(range(0, len(x), per_mosaic)):
        buffer = io.BytesIO()
        Image.fromarray(mosaic(x[start : start + per_mosaic])).save(
            buffer, "WEBP", lossless=True, quality=100, method=effort
        )
        data = buffer.getvalue()
        if size + len(data) > limit:
            groups.append(out / f"g{len(groups):02d}")
            groups[-1].mkdir(parents=True)
            (groups[-1] / MANIFEST).write_text(json.dumps(manifest))
            size = 0
        (groups[-1] / f"mosaic-{index:03d}.webp").write_bytes(data)
        size += len(data)
    for group in groups:
        mib = sum(p.stat().st_size for p in group.iterdir()) / (1 << 20)
        print(f"{group}: {len(list(group.glob('*.webp')))} mosaics, {mib:.1f} MiB")
    return groups


def unpack(packed: Path, out: Path) -> Path:
    """Rebuild the archive from every group under ``packed``; refuse a missing mosaic or a sha256 mismatch.

    Example:
        >>> unpack(Path(".gpu/data"), Path("runs/gpu_data")).name
        'cifar10_train.npz'
    """
    from PIL import Image

    manifests = sorted(packed.glob(f"*/{MANIFEST}"))
    if not manifests:
        raise SystemExit(f"error: no packed groups under {packed}")
    manifest = json.loads(manifests[0].read_text())
    files = {p.name: p for p in packed.glob("*/mosaic-*.webp")}
    names = [f"mosaic-{i:03d}.webp" for i in range(manifest["mosaics"])]
    missing = [n for n in names if n not in files]
    if missing:
        have = ", ".join(sorted(m.parent.name for m in manifests))
        raise SystemExit(f"error: {len(missing)} of {len(names)} mosaics missing (groups here: {have}); carry the rest")
    n, h, w, _ = manifest["shape"]
    per = manifest["per_mosaic"]
    x = np.concatenate(
        [
            unmosaic(np.asarray(Image.open(files[name]).convert("RGB")), min(per, n - i * per), h, w)
            for i, name in enumerate(names)
        ]
    )
    y = np.frombuffer(base64.b64decode(manifest["y"]), np.uint8).astype(np.int64)
    if _digest(x) != manifest["x_sha256"] or _digest(y) != manifest["y_sha256"]:
        raise SystemExit("error: the unpacked arrays differ from the packed ones (sha256); re-pack and carry again")
    out.mkdir(parents=True, exist_ok=True)
    np.savez(out / manifest["file"], x=x, y=y)
    print(f"{out / manifest['file']}: {n} images, sha256 of x and y as packed")
    return out / manifest["file"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("pack")
    p.add_argument("src", type=Path)
    p.add_argument("out", type=Path)
    p.add_argument("--group-mib", type=float, default=24.0)
    p.add_argument("--effort", type=int, default=4, choices=range(7), help="WebP method 0 (fast) .. 6 (smallest)")
    u = sub.add_parser("unpack")
    u.add_argument("packed", type=Path)
    u.add_argument("out", type=Path)
    args = parser.parse_args()
    if args.command == "pack":
        pack(args.src, args.out, args.group_mib, effort=args.effort)
    else:
        unpack(args.packed, args.out)


if __name__ == "__main__":
    main()
