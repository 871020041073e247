"""Corruption names, families and seeded corruption of image arrays (CIFAR-10-C or ImageNet-C parameters)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
from PIL import Image

# The names equal imagecorruptions.get_corruption_names("common" / "validation") (checked by the tests); they are
# spelled out so that listing them does not import the package (OpenCV, scikit-image).
COMMON = (  # the 15 corruptions of the benchmark, in Hendrycks & Dietterich's order
    "gaussian_noise",
    "shot_noise",
    "impulse_noise",
    "defocus_blur",
    "glass_blur",
    "motion_blur",
    "zoom_blur",
    "snow",
    "frost",
    "fog",
    "brightness",
    "contrast",
    "elastic_transform",
    "pixelate",
    "jpeg_compression",
)
EXTRA = ("speckle_noise", "gaussian_blur", "spatter", "saturate")  # the held-out "validation" corruptions
CIFAR_SIZE = 32
ALL = COMMON + EXTRA
SEVERITIES = (1, 2, 3, 4, 5)
FAMILIES: dict[str, tuple[str, ...]] = {
    "noise": ("gaussian_noise", "shot_noise", "impulse_noise"),
    "blur": ("defocus_blur", "glass_blur", "motion_blur", "zoom_blur"),
    "weather": ("snow", "frost", "fog", "brightness"),
    "digital": ("contrast", "elastic_transform", "pixelate", "jpeg_compression"),
    "extra": EXTRA,
}
FAMILY_OF = {name: family for family, names in FAMILIES.items() for name in names}
PROTOCOLS = ("cifar10-c", "imagenet-c")


def select_corruptions(spec: str) -> tuple[str, ...]:
    """``common`` (15), ``all`` (19), ``extra`` (4), a family name, or comma-separated corruption names."""
    presets = {"common": COMMON, "all": ALL, **FAMILIES}
    if spec in presets:
        return tuple(presets[spec])
    names = tuple(n.strip() for n in spec.split(",") if n.strip())
    unknown = [n for n in names if n not in ALL]
    if unknown or not names:
        raise ValueError(
            f"unknown corruption(s) {', '.join(unknown) or repr(spec)}; use common, all, extra, "
            f"{', '.join(FAMILIES)} or names from: {', '.join(ALL)}"
        )
    return names


def select_severities(spec: str) -> tuple[int, ...]:
    """Comma-separated severities in 1..5, e.g. ``1,2,3,4,5`` or ``3``."""
    try:
        levels = tuple(int(s) for s in str(spec).split(",") if s.strip())
    except ValueError:
        levels = ()
    if not levels or any(s not in SEVERITIES for s in levels):
        raise ValueError(f"severities must be comma-separated integers in 1..5, got {spec!r}")
    return levels


def resolve_protocol(protocol: str, image_shape: tuple[int, ...]) -> str:
    """``auto`` means CIFAR-10-C parameters for 32x32 images and ImageNet-C parameters otherwise."""
    if protocol == "auto":
        return "cifar10-c" if tuple(image_shape[:2]) == (CIFAR_SIZE, CIFAR_SIZE) else "imagenet-c"
    if protocol not in PROTOCOLS:
        raise ValueError(f"corruption protocol must be auto, cifar10-c or imagenet-c, not '{protocol}'")
    return protocol


def corrupt_image(image: np.ndarray, name: str, severity: int, protocol: str) -> np.ndarray:
    """One uint8 (H, W, 3) image -> uint8 corrupted image, drawing from the global NumPy stream."""
    from bench.corruptions.adapter import imagenet_c_function
    from bench.corruptions.cifar10c_table import cifar10c_corrupt

    if protocol == "cifar10-c":
        return cifar10c_corrupt(image, name, severity)
    if min(image.shape[:2]) < CIFAR_SIZE:
        raise ValueError(f"imagecorruptions needs images of at least 32x32 pixels, got {image.shape}")
    # same call path as imagecorruptions.corrupt(): PIL image in, uint8 array out
    return np.uint8(imagenet_c_function(name)(Image.fromarray(image), severity))


def example_seed(seed: int, name: str, severity: int, index: int) -> int:
    """A 32-bit seed that depends only on (run seed, corruption, severity, example index)."""
    return int(np.random.SeedSequence([seed, ALL.index(name), severity, index]).generate_state(1)[0])


@contextlib.contextmanager
def global_numpy_seed(value: int) -> Iterator[None]:
    """Seed NumPy's global stream (the packages draw from it) and restore the caller's state afterwards."""
    state = np.random.get_state()
    np.random.seed(value)
    try:
        yield
    finally:
        np.random.set_state(state)


def corrupt_images(
    images: np.ndarray, indices: np.ndarray, name: str, severity: int, seed: int, protocol: str
) -> np.ndarray:
    """Corrupt uint8 (N, H, W, 3) images; example i is seeded by (seed, name, severity, indices[i])."""
    if name not in ALL:
        raise ValueError(f"unknown corruption '{name}' (choose from {', '.join(ALL)})")
    if severity not in SEVERITIES:
        raise ValueError(f"severity must be in 1..5, got {severity}")
    out = np.empty_like(images)
    for i, (image, index) in enumerate(zip(images, indices, strict=True)):
        with global_numpy_seed(example_seed(seed, name, severity, int(index))):
            out[i] = corrupt_image(image, name, severity, protocol)
    return out
