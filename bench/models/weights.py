"""Zoo weights files in a form that fits a narrow channel: float16 and/or split into byte parts.

A GPU machine hands back files of at most 16 MiB, and PreAct ResNet-18 weights are 45-54 MB in float32, 22-27 MB in
float16. So a card may describe its weights in two more ways than the single float32 ``weights.safetensors``:

- ``weights_dtype: float16``: floating tensors stored in float16 (the loader copies them into the float32 model);
- ``weights: [weights.safetensors.part-00, weights.safetensors.part-01]``: the one safetensors file cut into byte
  parts, in order, and ``sha256_parts`` mapping each part to its own sha256.

``sha256`` stays the digest of the whole safetensors file (the parts joined), so a model keeps one identity in result
rows whatever its transport, and every card has a ``sha256`` string as before. Parts are checked one by one first, so
a damaged part is named.

Example:
    >>> fields = store_weights(model.state_dict(), folder, dtype="float16", max_part_bytes=16 << 20)
    >>> model.load_state_dict(read_parts({**card, **fields}, folder))
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load, save

from bench.exceptions import ChecksumError
from bench.models.cards import verify_file
from bench.provenance import sha256_file

WEIGHTS_FILE = "weights.safetensors"
WEIGHTS_DTYPES = {"float32": torch.float32, "float16": torch.float16}
FLOAT16_MAX = 65504.0


def store_weights(
    state: dict[str, torch.Tensor],
    folder: Path,
    dtype: str = "float32",
    max_part_bytes: int | None = None,
) -> dict[str, Any]:
    """Write ``state`` as safetensors in ``dtype``, cut into parts of at most ``max_part_bytes`` when it is larger.

    Returns the card fields that describe the files: ``weights``, ``sha256`` and, when used, ``sha256_parts`` and
    ``weights_dtype``. A float32 file that fits is the zoo's usual single ``weights.safetensors``.

    Example:
        >>> store_weights(model.state_dict(), Path("model_zoo/m"), "float16", 16 << 20)["weights"]
        ['weights.safetensors.part-00', 'weights.safetensors.part-01']
    """
    blob = save(_cast(state, dtype))
    for stale in [folder / WEIGHTS_FILE, *folder.glob(f"{WEIGHTS_FILE}.part-*")]:
        stale.unlink(missing_ok=True)  # a re-saved model may change form
    fields: dict[str, Any] = {"sha256": hashlib.sha256(blob).hexdigest()}
    if dtype != "float32":
        fields["weights_dtype"] = dtype
    if max_part_bytes is None or len(blob) <= max_part_bytes:
        (folder / WEIGHTS_FILE).write_bytes(blob)
        return {**fields, "weights": WEIGHTS_FILE}
    names = []
    for index, start in enumerate(range(0, len(blob), max_part_bytes)):
        names.append(f"{WEIGHTS_FILE}.part-{index:02d}")
        (folder / names[-1]).write_bytes(blob[start : start + max_part_bytes])
    parts = {name: sha256_file(folder / name) for name in names}
    return {**fields, "weights": names, "sha256_parts": parts}


def _cast(state: dict[str, torch.Tensor], dtype: str) -> dict[str, torch.Tensor]:
    if dtype not in WEIGHTS_DTYPES:
        raise ValueError(f"weights dtype must be one of {', '.join(WEIGHTS_DTYPES)}, not '{dtype}'")
    target = WEIGHTS_DTYPES[dtype]
    out = {}
    for key, tensor in state.items():
        tensor = tensor.detach().cpu()
        if tensor.is_floating_point():
            if target == torch.float16 and tensor.numel() and tensor.abs().max() > FLOAT16_MAX:
                raise ValueError(f"'{key}' holds values beyond float16's range; store the weights as float32")
            tensor = tensor.to(target)
        out[key] = tensor.contiguous()
    return out


def round_trip(model: torch.nn.Module, dtype: str) -> None:
    """Round the model's floating tensors through ``dtype`` in place, so it computes what its stored weights will.

    Example:
        >>> round_trip(model, "float16")  # then measure the accuracy the card reports
    """
    state = model.state_dict()
    with torch.no_grad():
        for key, tensor in _cast(state, dtype).items():
            state[key].copy_(tensor)


def is_split(card: dict[str, Any]) -> bool:
    """Whether the card's weights are byte parts (``weights`` is a list)."""
    return isinstance(card.get("weights"), list)


def verify_parts(card: dict[str, Any], folder: Path) -> None:
    """Check each part's sha256, then the joined file's, against the card; ``ChecksumError`` names what differs.

    Example:
        >>> verify_parts(read_card("standard_prn18"), Path("model_zoo/standard_prn18"))
    """
    _joined(card, folder)


def read_parts(card: dict[str, Any], folder: Path) -> dict[str, torch.Tensor]:
    """The state dict of a split card, verified part by part and as a whole, with float tensors in float32.

    Example:
        >>> model.load_state_dict(read_parts(card, folder))
    """
    state = load(_joined(card, folder))
    return {k: v.float() if v.is_floating_point() else v for k, v in state.items()}


def _joined(card: dict[str, Any], folder: Path) -> bytes:
    expected = card.get("sha256_parts") or {}
    for name in card["weights"]:
        if name not in expected:
            raise ChecksumError(f"{card['name']}: the card gives no sha256 for its part {name} (sha256_parts)")
        if not (folder / name).is_file():
            raise FileNotFoundError(f"{card['name']}: weights part {folder / name} is missing")
        verify_file(folder / name, expected[name])
    blob = b"".join((folder / name).read_bytes() for name in card["weights"])
    actual = hashlib.sha256(blob).hexdigest()
    if actual != card["sha256"]:
        raise ChecksumError(
            f"refusing to load {card['name']}: its joined parts have sha256 {actual[:12]}…, "
            f"the card {card['sha256'][:12]}…"
        )
    return blob
