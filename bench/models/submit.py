"""Validation of a model submitted to the zoo (``bench zoo submit``)."""

from __future__ import annotations

import math
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml

from bench.data.cifar import embedded_sample
from bench.models.cards import CARD_FILE, FACTORY_FILE, WEIGHTS_FILE, register_zoo, validate_card, zoo_folders, zoo_root
from bench.models.factory import load_factory_file
from bench.models.zoo import build_from_card, load_weights
from bench.provenance import sha256_file

__all__ = ["Check", "accept", "check_outputs", "load_factory_file", "logits_problem", "validate_submission"]


@dataclass
class Check:
    name: str
    passed: bool
    detail: str

    def __str__(self) -> str:
        return f"[{'ok' if self.passed else 'FAIL'}] {self.name}: {self.detail}"


def build_submission(path: Path, card: dict[str, Any]) -> torch.nn.Module:
    if path.suffix == ".py":
        return load_factory_file(path).eval()
    if path.suffix != ".safetensors":
        raise ValueError(f"{path}: submit a .safetensors checkpoint or a .py file with create_model()")
    model = build_from_card(card)
    load_weights(model, path, expected_sha256=None)
    return model.eval()


def _probe_batch(card: dict[str, Any], n: int = 8) -> torch.Tensor:
    size = card["input_size"]
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(0))


def logits_problem(logits: torch.Tensor, n: int, num_classes: int) -> str | None:
    """What is wrong with a model's logits for n inputs (shape, NaN/inf), or None; shared with bench run."""
    if tuple(logits.shape) != (n, num_classes):
        return f"model returns shape {tuple(logits.shape)}, expected ({n}, {num_classes}) logits"
    if not torch.isfinite(logits).all():
        return "model returns NaN or infinite logits on clean inputs; check its weights"
    return None


def check_outputs(model: torch.nn.Module, card: dict[str, Any]) -> list[Check]:
    x = _probe_batch(card)
    with torch.no_grad():
        first, second = model(x), model(x)
    problem = logits_problem(first, len(x), card["num_classes"])
    checks = [
        Check("logits", problem is None, problem or f"shape {tuple(first.shape)}, all finite"),
        Check("deterministic", bool(torch.equal(first, second)), "same input twice gives the same logits"),
    ]
    xg = x.clone().requires_grad_(True)
    torch.nn.functional.cross_entropy(model(xg), first.argmax(1)).backward()
    grad = xg.grad
    nonzero = float((grad.flatten(1).abs().amax(1) > 0).float().mean())
    checks.append(
        Check(
            "input gradients",
            bool(torch.isfinite(grad).all()) and nonzero == 1.0,
            f"finite={bool(torch.isfinite(grad).all())}, non-zero for {nonzero:.0%} of inputs",
        )
    )
    return checks


def check_smoke_accuracy(model: torch.nn.Module, card: dict[str, Any], n: int = 100) -> Check:
    """Accuracy on the first n embedded CIFAR-10 images vs the card's claim, within 3 binomial sd + 2 pp."""
    if card["dataset"] != "cifar10":
        return Check("smoke accuracy", True, f"not run: no embedded sample for dataset '{card['dataset']}'")
    claimed = float(card["clean_accuracy"]["value"]) if isinstance(card.get("clean_accuracy"), dict) else None
    if claimed is None:
        return Check("smoke accuracy", False, "card has no clean_accuracy.value to reproduce")
    data = embedded_sample()
    index = torch.linspace(0, len(data) - 1, n).long()  # spread over all classes
    batch = data.batch(index)
    with torch.no_grad():
        measured = float((model(batch.x).argmax(1) == batch.y).float().mean())
    tolerance = 3 * math.sqrt(claimed * (1 - claimed) / n) + 0.02
    ok = abs(measured - claimed) <= tolerance
    return Check(
        "smoke accuracy", ok, f"{measured:.3f} on {n} embedded images vs card {claimed:.3f} (±{tolerance:.3f})"
    )


def validate_submission(path: Path, card: dict[str, Any]) -> tuple[torch.nn.Module | None, list[Check]]:
    problems = validate_card(card, factory=path.suffix == ".py")
    checks = [Check("card schema", not problems, "; ".join(problems) or "all required keys with the right types")]
    if problems:
        return None, checks
    try:
        model = build_submission(path, card)
    except Exception as err:  # any failure to build is a failed check, reported as such
        return None, checks + [Check("build", False, f"{type(err).__name__}: {err}")]
    checks.append(Check("build", True, f"built from {path.name}"))
    checks += check_outputs(model, card)
    checks.append(check_smoke_accuracy(model, card))
    return model, checks


def accept(path: Path, card: dict[str, Any]) -> Path:
    """Copy a validated submission into the zoo and register it."""
    folder = zoo_root() / card["name"]
    taken = zoo_folders().get(card["name"])
    if folder.exists() or taken:
        raise FileExistsError(f"zoo model {card['name']} exists already ({taken or folder}); choose another name")
    folder.mkdir(parents=True)
    if path.suffix == ".py":
        shutil.copy(path, folder / FACTORY_FILE)
        card = {**card, "factory": FACTORY_FILE, "sha256": sha256_file(folder / FACTORY_FILE)}
    else:
        shutil.copy(path, folder / WEIGHTS_FILE)
        card = {**card, "weights": WEIGHTS_FILE, "sha256": sha256_file(folder / WEIGHTS_FILE)}
    (folder / CARD_FILE).write_text(yaml.safe_dump(card, sort_keys=False))
    register_zoo()
    return folder
