"""Shared fixtures: tiny models trained in seconds on the embedded CIFAR-10 sample."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from bench.data.cifar import embedded_sample
from bench.models.backbones import SmallCNN
from bench.models.classifier import build_classifier
from bench.registry import ARCHS, MODELS

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

# Test tensors are tiny: one thread avoids synchronization overhead (and oversubscription on a busy machine).
torch.set_num_threads(1)


# Tests pass data roots explicitly (shared_data_root()); the environment variable is taken out so that a
# test's outcome never depends on whether `make test` exported it.
_ENV_DATA = os.environ.pop("RIBENCH_DATA", None)


def shared_data_root() -> Path | None:
    root = Path(_ENV_DATA or SHARED_DATA)
    return root if (root / "cifar10_test.npz").exists() else None


needs_shared_data = pytest.mark.skipif(
    shared_data_root() is None, reason="needs ../shared/data (the CIFAR-10 / pets3 archives); set RIBENCH_DATA"
)

ARCHS.add("tiny", lambda: SmallCNN(widths=(8, 16, 32)), input_size=32, description="test-only tiny CNN")


def train_tiny(head: str = "gap", epochs: int = 4, seed: int = 0, **head_kwargs) -> torch.nn.Module:
    """A tiny CNN trained for a few seconds on the embedded sample (~35-45% accuracy)."""
    torch.manual_seed(seed)
    data = embedded_sample()
    model = build_classifier("tiny", 10, head, **head_kwargs)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(epochs):
        model.train()
        for batch in data.batches(100, torch.randperm(len(data))):
            if head == "topgap":
                maps = model.class_map(batch.x)
                logits = maps.flatten(2).topk(head_kwargs["k"], -1).values.mean(-1)
                loss = torch.nn.functional.cross_entropy(logits, batch.y) + maps.abs().mean()
            else:
                loss = torch.nn.functional.cross_entropy(model(batch.x), batch.y)
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval()


@pytest.fixture(scope="session")
def tiny_model() -> torch.nn.Module:
    model = train_tiny()
    MODELS.add("tiny_cnn", lambda device="cpu": model.to(device), source="test")
    return model


@pytest.fixture(scope="session")
def tiny_topgap_model() -> torch.nn.Module:
    model = train_tiny("topgap", k=16, num_maps=2, fpn_channels=16)
    MODELS.add("tiny_topgap", lambda device="cpu": model.to(device), source="test")
    return model


@pytest.fixture
def results_dir(tmp_path: Path) -> Path:
    return tmp_path / "results"
