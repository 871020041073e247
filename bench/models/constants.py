"""Normalization statistics of the datasets models are trained on (a leaf module: no torch, no other import).

Models take [0, 1] images and normalize inside; ``NORMALIZATION[card["normalization"]]`` is (mean, std).
"""

from __future__ import annotations

CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

NORMALIZATION: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "cifar10": (CIFAR10_MEAN, CIFAR10_STD),
    "imagenet": (IMAGENET_MEAN, IMAGENET_STD),
    "none": ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0)),  # [0, 1] pixels as they are (the GradAlign PRN18 recipe)
}
