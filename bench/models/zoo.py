"""The model zoo: ``model_zoo/<name>/card.yaml`` + ``weights.safetensors``, loaded by name.

Weights are safetensors only (never unpickled) and are refused when their sha256 differs from the
card. ``RIBENCH_ZOO`` points at another zoo folder.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
import yaml
from safetensors.torch import load_file, save_file

from bench.models.classifier import Classifier, build_classifier
from bench.provenance import REPO_ROOT, sha256_file
from bench.registry import MODELS

WEIGHTS_FILE = "weights.safetensors"
CARD_FILE = "card.yaml"
REQUIRED_CARD_KEYS = {
    "name": str,
    "method": str,
    "arch": str,
    "head": str,
    "dataset": str,
    "num_classes": int,
    "input_size": int,
    "normalization": str,
    "hyperparameters": dict,
    "sha256": str,
    "license": str,
}


class ChecksumError(RuntimeError):
    pass


def zoo_root() -> Path:
    return Path(os.environ.get("RIBENCH_ZOO", REPO_ROOT / "model_zoo"))


def read_card(name: str) -> dict[str, Any]:
    MODELS.entry(name)  # unknown names fail here with the closest matches
    return yaml.safe_load((zoo_root() / name / CARD_FILE).read_text())


def validate_card(card: dict[str, Any]) -> list[str]:
    """Return the schema problems of a card (empty when it is valid)."""
    problems = [f"missing key '{k}'" for k in REQUIRED_CARD_KEYS if k not in card]
    problems += [
        f"key '{k}' must be {t.__name__}, got {type(card[k]).__name__}"
        for k, t in REQUIRED_CARD_KEYS.items()
        if k in card and not isinstance(card[k], t)
    ]
    return problems


def build_from_card(card: dict[str, Any]) -> Classifier:
    head_kwargs = dict(card.get("head_kwargs") or {})
    return build_classifier(card["arch"], card["num_classes"], card["head"], card["normalization"], **head_kwargs)


def load_weights(model: torch.nn.Module, path: Path, expected_sha256: str | None) -> None:
    if expected_sha256 is not None:
        verify_file(path, expected_sha256)
    model.load_state_dict(load_file(str(path)))


def load_model(name: str, device: str = "cpu") -> torch.nn.Module:
    """Load a zoo model by name, verified against its card's sha256, in eval mode."""
    card = read_card(name)
    folder = zoo_root() / name
    if card.get("factory"):  # a submitted Python file exposing create_model()
        from bench.models.submit import load_factory_file

        verify_file(folder / card["factory"], card["sha256"])
        return load_factory_file(folder / card["factory"]).eval().to(device)
    model = build_from_card(card)
    load_weights(model, weights_path(card, folder), card["sha256"])
    return model.eval().to(device)


def cache_root() -> Path:
    return Path(os.environ.get("RIBENCH_CACHE", Path.home() / ".cache" / "ribench"))


def weights_path(card: dict[str, Any], folder: Path, download: bool = False) -> Path:
    """The committed weights, else the cached copy of the card's URL (downloaded only when asked)."""
    local = folder / card.get("weights", WEIGHTS_FILE)
    if local.exists() or not card.get("url"):
        return local
    cached = cache_root() / "weights" / f"{card['name']}-{card['sha256'][:16]}.safetensors"
    if not cached.exists():
        if not download:
            raise FileNotFoundError(
                f"{card['name']}: weights not in {cached}; fetch {card['url']} there "
                f"(or run `bench zoo fetch {card['name']}` with internet)"
            )
        cached.parent.mkdir(parents=True, exist_ok=True)
        torch.hub.download_url_to_file(card["url"], str(cached), hash_prefix=card["sha256"][:16])
    return cached


def verify_file(path: Path, expected_sha256: str) -> None:
    actual = sha256_file(path)
    if actual != expected_sha256:
        raise ChecksumError(
            f"refusing to load {path}: sha256 {actual[:12]}… does not match the card's {expected_sha256[:12]}…"
            " (re-download the file or re-run `bench zoo verify`)"
        )


def verify_model(name: str) -> tuple[bool, str]:
    """Re-hash a zoo checkpoint; (ok, message)."""
    card = read_card(name)
    folder = zoo_root() / name
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


def save_model(model: torch.nn.Module, card: dict[str, Any], folder: Path | None = None) -> Path:
    """Write weights + card (with the weights' sha256) to ``folder`` (default: the zoo)."""
    folder = folder or zoo_root() / card["name"]
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(folder / WEIGHTS_FILE))
    card = {**card, "sha256": sha256_file(folder / WEIGHTS_FILE), "weights": WEIGHTS_FILE}
    (folder / CARD_FILE).write_text(yaml.safe_dump(card, sort_keys=False))
    register_zoo()
    return folder


def register_zoo() -> None:
    """Register every folder of the zoo that holds a card."""
    root = zoo_root()
    for card_path in sorted(root.glob(f"*/{CARD_FILE}")) if root.is_dir() else []:
        name = card_path.parent.name
        MODELS.add(name, lambda device="cpu", _n=name: load_model(_n, device), source="zoo")


register_zoo()
