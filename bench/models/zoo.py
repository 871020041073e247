"""The model zoo: ``<zoo>/<name>/card.yaml`` + ``weights.safetensors`` (or a ``model.py`` factory), loaded by name.

Weights are safetensors only (never unpickled) and are refused when their sha256 differs from the card. Which zoo
folders are searched, and in which order, is ``bench.models.cards`` (``--zoo``, ``RIBENCH_ZOO``, the clone's
``model_zoo/``, the user cache).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from bench.exceptions import ChecksumError
from bench.models.cards import (  # noqa: F401  (re-exported: the zoo's public names)
    CARD_FILE,
    REQUIRED_CARD_KEYS,
    WEIGHTS_FILE,
    find_card,
    read_card,
    register_zoo,
    validate_card,
    verify_file,
    weights_path,
    write_yaml_atomically,
    zoo_root,
)
from bench.models.classifier import Classifier, build_classifier
from bench.models.factory import load_factory_file
from bench.models.weights import is_split, read_parts, store_weights, verify_parts


class DamagedWeightsError(ChecksumError):
    """A weights file that is not valid safetensors (truncated, corrupt); the message names it."""


def build_from_card(card: dict[str, Any]) -> Classifier:
    head_kwargs = dict(card.get("head_kwargs") or {})
    return build_classifier(card["arch"], card["num_classes"], card["head"], card["normalization"], **head_kwargs)


def load_weights(model: torch.nn.Module, path: Path, expected_sha256: str | None) -> None:
    """Load safetensors weights into ``model``, after checking their sha256 when one is given.

    A file that is not valid safetensors (truncated, corrupt) is a one-line ``DamagedWeightsError``.

    Example:
        >>> load_weights(model, Path("model_zoo/standard_cnn/weights.safetensors"), card["sha256"])
    """
    if expected_sha256 is not None:
        verify_file(path, expected_sha256)
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError) as err:
        reason = " ".join(str(err).split())
        raise DamagedWeightsError(
            f"{path} is not a readable safetensors file ({reason}); re-download it or save the weights again"
        ) from err
    model.load_state_dict(state)


def load_model(name: str, device: str = "cpu") -> torch.nn.Module:
    """Load a zoo model by name, verified against its card's sha256, in eval mode.

    Args:
        name: a zoo model (``bench zoo list``).
        device: where to put it.

    Returns:
        The model, in eval mode.

    Example:
        >>> model = load_model("standard_cnn")
    """
    folder = find_card(name)
    card = read_card(name)
    if card.get("factory"):  # a submitted Python file exposing create_model()
        verify_file(folder / card["factory"], card["sha256"])
        return load_factory_file(folder / card["factory"]).eval().to(device)
    model = build_from_card(card)
    if is_split(card):
        model.load_state_dict(read_parts(card, folder))
    else:
        load_weights(model, weights_path(card, folder), card["sha256"])
    return model.eval().to(device)


def verify_model(name: str) -> tuple[bool, str]:
    """Re-hash a zoo checkpoint; (ok, message)."""
    card = read_card(name)
    folder = find_card(name)
    if is_split(card):
        return _verify_split(card, folder)
    try:
        path = folder / card["factory"] if card.get("factory") else weights_path(card, folder)
    except FileNotFoundError as err:
        return False, str(err)
    if not path.exists():
        return False, f"{name}: {path} is missing"
    try:
        verify_file(path, card["sha256"])
    except ChecksumError as err:
        return False, str(err)
    return True, f"{name}: sha256 {card['sha256'][:12]}… ok"


def _verify_split(card: dict[str, Any], folder: Path) -> tuple[bool, str]:
    try:
        verify_parts(card, folder)
    except (ChecksumError, FileNotFoundError) as err:
        return False, str(err)
    return True, f"{card['name']}: sha256 {card['sha256'][:12]}… ok ({len(card['weights'])} parts, each checked)"


def save_model(
    model: torch.nn.Module,
    card: dict[str, Any],
    folder: Path | None = None,
    weights_dtype: str = "float32",
    max_part_bytes: int | None = None,
) -> Path:
    """Write weights + card (with the weights' sha256) to ``folder`` (default: the zoo).

    ``weights_dtype="float16"`` and ``max_part_bytes`` store the forms of ``bench.models.weights`` (half the size;
    byte parts with one sha256 each), for channels that take only small files.

    Example:
        >>> save_model(model, card, weights_dtype="float16", max_part_bytes=16 << 20)
    """
    folder = folder or zoo_root() / card["name"]
    folder.mkdir(parents=True, exist_ok=True)
    card = {**card, **store_weights(model.state_dict(), folder, weights_dtype, max_part_bytes)}
    write_yaml_atomically(folder / CARD_FILE, card)
    register_zoo()
    return folder
