"""Common corruptions (Hendrycks & Dietterich 2019): the imagecorruptions adapter, CIFAR-10-C parameters, a cache.

``corrupt_images(images, indices, name, severity, seed, protocol)`` corrupts uint8 NHWC images, seeded per example;
``protocol`` is ``cifar10-c`` (make_cifar_c.py parameters, 32x32) or ``imagenet-c`` (the imagecorruptions package).
``CorruptionCache`` keeps the results on disk under ``RIBENCH_CACHE`` (default ``~/.cache/ribench``).
"""

from bench.corruptions.cache import ADAPTER_VERSION, IMAGECORRUPTIONS_VERSION, CorruptionCache, cache_root
from bench.corruptions.catalog import (
    ALL,
    COMMON,
    EXTRA,
    FAMILIES,
    FAMILY_OF,
    SEVERITIES,
    corrupt_image,
    corrupt_images,
    resolve_protocol,
    select_corruptions,
    select_severities,
)

__all__ = [
    "ADAPTER_VERSION",
    "ALL",
    "COMMON",
    "EXTRA",
    "FAMILIES",
    "FAMILY_OF",
    "IMAGECORRUPTIONS_VERSION",
    "SEVERITIES",
    "CorruptionCache",
    "cache_root",
    "corrupt_image",
    "corrupt_images",
    "resolve_protocol",
    "select_corruptions",
    "select_severities",
]
