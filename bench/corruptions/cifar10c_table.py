"""CIFAR-10-C corruptions for 32x32 images: Hendrycks' severity parameters, computed with imagecorruptions' helpers.

The severity values are those of ``ImageNet-C/create_c/make_cifar_c.py`` (hendrycks/robustness), which generated the
published CIFAR-10-C; the ``imagecorruptions`` package only carries the ImageNet-C values (tuned for 224x224). The
procedures follow make_cifar_c.py where it differs from the package (zoom_blur crops centrally, pixelate upsamples
with BOX, frost shrinks the frost picture 5x, elastic_transform adds a random affine warp).

Still different from the published files, and why:

* every random corruption: the published files come from one unseeded NumPy stream run over the whole test set;
  here each image gets its own seeded stream (so results do not depend on batching). Same distribution, other draws.
* ``motion_blur`` and ``snow``: make_cifar_c.py blurs with ImageMagick (Wand ``MotionBlurImage``); ImageMagick is not
  a dependency here, so the package's NumPy re-implementation of that blur (``_motion_blur``) is used instead.
* deterministic corruptions (brightness, contrast, saturate, defocus/gaussian blur, zoom_blur, pixelate, jpeg)
  follow the same arithmetic; they can still differ by a grey level where library versions (libjpeg, OpenCV,
  scikit-image) round differently.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from io import BytesIO

import cv2
import numpy as np
import skimage.color
import skimage.filters
import skimage.util
from PIL import Image
from scipy.ndimage import map_coordinates
from scipy.ndimage import zoom as scipy_zoom

from bench.corruptions.adapter import FROST_FILES, disk, motion_blur_kernel_shift, plasma_fractal

CIFAR_SIZE = 32

# severity 1..5 parameters, copied from make_cifar_c.py
PARAMS: dict[str, tuple] = {
    "gaussian_noise": (0.04, 0.06, 0.08, 0.09, 0.10),
    "shot_noise": (500, 250, 100, 75, 50),
    "impulse_noise": (0.01, 0.02, 0.03, 0.05, 0.07),
    "defocus_blur": ((0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1, 0.2), (1.5, 0.1)),
    "glass_blur": ((0.05, 1, 1), (0.25, 1, 1), (0.4, 1, 1), (0.25, 1, 2), (0.4, 1, 2)),  # sigma, max_delta, iterations
    "motion_blur": ((6, 1), (6, 1.5), (6, 2), (8, 2), (9, 2.5)),  # radius, sigma
    "zoom_blur": (1.06, 1.11, 1.16, 1.21, 1.26),  # zoom factors arange(1, stop, 0.01)
    "snow": (
        (0.1, 0.2, 1, 0.6, 8, 3, 0.95),
        (0.1, 0.2, 1, 0.5, 10, 4, 0.9),
        (0.15, 0.3, 1.75, 0.55, 10, 4, 0.9),
        (0.25, 0.3, 2.25, 0.6, 12, 6, 0.85),
        (0.3, 0.3, 1.25, 0.65, 14, 12, 0.8),
    ),
    "frost": ((1, 0.2), (1, 0.3), (0.9, 0.4), (0.85, 0.4), (0.75, 0.45)),
    "fog": ((0.2, 3), (0.5, 3), (0.75, 2.5), (1, 2), (1.5, 1.75)),
    "brightness": (0.05, 0.1, 0.15, 0.2, 0.3),
    "contrast": (0.75, 0.5, 0.4, 0.3, 0.15),
    "elastic_transform": tuple(
        tuple(CIFAR_SIZE * v for v in c)  # alpha, sigma, affine jitter (in pixels)
        for c in ((0, 0, 0.08), (0.05, 0.2, 0.07), (0.08, 0.06, 0.06), (0.1, 0.04, 0.05), (0.1, 0.03, 0.03))
    ),
    "pixelate": (0.95, 0.9, 0.85, 0.75, 0.65),
    "jpeg_compression": (80, 65, 58, 50, 40),
    "speckle_noise": (0.06, 0.1, 0.12, 0.16, 0.2),
    "gaussian_blur": (0.4, 0.6, 0.7, 0.8, 1),
    "spatter": (
        (0.62, 0.1, 0.7, 0.7, 0.5, 0),
        (0.65, 0.1, 0.8, 0.7, 0.5, 0),
        (0.65, 0.3, 1, 0.69, 0.5, 0),
        (0.65, 0.1, 0.7, 0.69, 0.6, 1),
        (0.65, 0.1, 0.5, 0.68, 0.6, 1),
    ),
    "saturate": ((0.3, 0), (0.1, 0), (1.5, 0), (2, 0.1), (2.5, 0.2)),
}


def _unit(x: np.ndarray) -> np.ndarray:
    return np.asarray(x, dtype=np.float64) / 255.0


def _to_255(x: np.ndarray) -> np.ndarray:
    return np.clip(x, 0, 1) * 255


def gaussian_noise(x: np.ndarray, c: float) -> np.ndarray:
    x = _unit(x)
    return _to_255(x + np.random.normal(size=x.shape, scale=c))


def shot_noise(x: np.ndarray, c: float) -> np.ndarray:
    return _to_255(np.random.poisson(_unit(x) * c) / c)


def impulse_noise(x: np.ndarray, c: float) -> np.ndarray:
    rng = np.random.randint(0, 2**31 - 1)  # skimage no longer reads the global stream; seed it from there
    return _to_255(skimage.util.random_noise(_unit(x), mode="s&p", amount=c, rng=rng))


def speckle_noise(x: np.ndarray, c: float) -> np.ndarray:
    x = _unit(x)
    return _to_255(x + x * np.random.normal(size=x.shape, scale=c))


def gaussian_blur(x: np.ndarray, c: float) -> np.ndarray:
    return _to_255(skimage.filters.gaussian(_unit(x), sigma=c, channel_axis=-1))


def glass_blur(x: np.ndarray, c: tuple) -> np.ndarray:
    sigma, delta, iterations = c
    img = np.uint8(skimage.filters.gaussian(_unit(x), sigma=sigma, channel_axis=-1) * 255)
    height, width = img.shape[:2]
    for _ in range(iterations):
        for h in range(height - delta, delta, -1):
            for w in range(width - delta, delta, -1):
                dx, dy = np.random.randint(-delta, delta, size=(2,))
                # make_cifar_c.py writes a tuple "swap" of NumPy views, which copies the neighbour into (h, w)
                # and leaves the neighbour unchanged; the published files have that behaviour, so keep it.
                img[h, w] = img[h + dy, w + dx]
    return _to_255(skimage.filters.gaussian(img / 255.0, sigma=sigma, channel_axis=-1))


def defocus_blur(x: np.ndarray, c: tuple) -> np.ndarray:
    x = _unit(x)
    kernel = disk(radius=c[0], alias_blur=c[1])
    return _to_255(np.stack([cv2.filter2D(x[:, :, d], -1, kernel) for d in range(3)], axis=-1))


def motion_blur(x: np.ndarray, c: tuple) -> np.ndarray:
    angle = np.random.uniform(-45, 45)
    return np.clip(motion_blur_kernel_shift(np.asarray(x), radius=c[0], sigma=c[1], angle=angle), 0, 255)


def _clipped_zoom_center(img: np.ndarray, zoom_factor: float) -> np.ndarray:
    """Zoom into the centre of a square image and trim back to its size (make_cifar_c.py's variant)."""
    h = img.shape[0]
    crop = int(np.ceil(h / zoom_factor))
    top = (h - crop) // 2
    zoomed = scipy_zoom(img[top : top + crop, top : top + crop], (zoom_factor, zoom_factor, 1), order=1)
    trim = (zoomed.shape[0] - h) // 2
    return zoomed[trim : trim + h, trim : trim + h]


def zoom_blur(x: np.ndarray, c: float) -> np.ndarray:
    x = _unit(x).astype(np.float32)
    factors = np.arange(1, c, 0.01)
    out = np.zeros_like(x)
    for factor in factors:
        out += _clipped_zoom_center(x, factor)
    return _to_255((x + out) / (len(factors) + 1))


def snow(x: np.ndarray, c: tuple) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32) / 255.0
    layer = np.random.normal(size=x.shape[:2], loc=c[0], scale=c[1])
    layer = _clipped_zoom_center(layer[..., np.newaxis], c[2])
    layer[layer < c[3]] = 0
    layer = np.uint8(np.clip(layer.squeeze(), 0, 1) * 255)  # make_cifar_c.py blurs an 8-bit grey image
    angle = np.random.uniform(-135, -45)
    blurred = motion_blur_kernel_shift(layer.astype(np.float32), radius=c[4], sigma=c[5], angle=angle)
    layer = (np.round(np.clip(blurred, 0, 255)).astype(np.uint8) / 255.0)[..., np.newaxis]
    gray = cv2.cvtColor(x, cv2.COLOR_RGB2GRAY)[..., np.newaxis]
    x = c[6] * x + (1 - c[6]) * np.maximum(x, gray * 1.5 + 0.5)
    return _to_255(x + layer + np.rot90(layer, k=2))


@functools.cache
def _small_frost_picture(which: int) -> np.ndarray:
    return cv2.resize(cv2.imread(FROST_FILES[which]), (0, 0), fx=0.2, fy=0.2)


def frost(x: np.ndarray, c: tuple) -> np.ndarray:
    frost_img = _small_frost_picture(np.random.randint(5))  # make_cifar_c.py draws from the first five
    h, w = x.shape[:2]
    top, left = np.random.randint(0, frost_img.shape[0] - h), np.random.randint(0, frost_img.shape[1] - w)
    patch = frost_img[top : top + h, left : left + w][..., [2, 1, 0]]
    return np.clip(c[0] * np.asarray(x, dtype=np.float64) + c[1] * patch, 0, 255)


def fog(x: np.ndarray, c: tuple) -> np.ndarray:
    x = _unit(x)
    h, w = x.shape[:2]
    max_val = x.max()
    x = x + c[0] * plasma_fractal(mapsize=CIFAR_SIZE, wibbledecay=c[1])[:h, :w][..., np.newaxis]
    return _to_255(x * max_val / (max_val + c[0]))


def brightness(x: np.ndarray, c: float) -> np.ndarray:
    hsv = skimage.color.rgb2hsv(_unit(x))
    hsv[:, :, 2] = np.clip(hsv[:, :, 2] + c, 0, 1)
    return _to_255(skimage.color.hsv2rgb(hsv))


def saturate(x: np.ndarray, c: tuple) -> np.ndarray:
    hsv = skimage.color.rgb2hsv(_unit(x))
    hsv[:, :, 1] = np.clip(hsv[:, :, 1] * c[0] + c[1], 0, 1)
    return _to_255(skimage.color.hsv2rgb(hsv))


def contrast(x: np.ndarray, c: float) -> np.ndarray:
    x = _unit(x)
    means = x.mean(axis=(0, 1), keepdims=True)
    return _to_255((x - means) * c + means)


def jpeg_compression(x: np.ndarray, c: int) -> np.ndarray:
    buffer = BytesIO()
    Image.fromarray(np.asarray(x, dtype=np.uint8)).save(buffer, "JPEG", quality=c)
    return np.asarray(Image.open(buffer))


def pixelate(x: np.ndarray, c: float) -> np.ndarray:
    h, w = x.shape[:2]
    img = Image.fromarray(np.asarray(x, dtype=np.uint8))
    img = img.resize((int(w * c), int(h * c)), Image.BOX).resize((w, h), Image.BOX)
    return np.asarray(img)


def elastic_transform(x: np.ndarray, c: tuple) -> np.ndarray:
    alpha, sigma, affine = c
    image = np.asarray(x, dtype=np.float32) / 255.0
    shape = image.shape
    center = np.float32(shape[:2]) // 2
    square = min(shape[:2]) // 3
    pts1 = np.float32([center + square, [center[0] + square, center[1] - square], center - square])
    pts2 = pts1 + np.random.uniform(-affine, affine, size=pts1.shape).astype(np.float32)
    warp = cv2.getAffineTransform(pts1, pts2)
    image = cv2.warpAffine(image, warp, shape[:2][::-1], borderMode=cv2.BORDER_REFLECT_101)
    dx, dy = (
        (
            skimage.filters.gaussian(np.random.uniform(-1, 1, size=shape[:2]), sigma, mode="reflect", truncate=3)
            * alpha
        ).astype(np.float32)[..., np.newaxis]
        for _ in range(2)
    )
    cols, rows, chans = np.meshgrid(np.arange(shape[1]), np.arange(shape[0]), np.arange(shape[2]))
    indices = (rows + dy).reshape(-1, 1), (cols + dx).reshape(-1, 1), chans.reshape(-1, 1)
    return _to_255(map_coordinates(image, indices, order=1, mode="reflect").reshape(shape))


def spatter(x: np.ndarray, c: tuple) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32) / 255.0
    liquid = skimage.filters.gaussian(np.random.normal(size=x.shape[:2], loc=c[0], scale=c[1]), sigma=c[2])
    liquid[liquid < c[3]] = 0
    if c[5] == 0:  # water drops: pale turquoise
        liquid8 = (liquid * 255).astype(np.uint8)
        dist = cv2.distanceTransform(255 - cv2.Canny(liquid8, 50, 150), cv2.DIST_L2, 5)
        _, dist = cv2.threshold(dist, 20, 20, cv2.THRESH_TRUNC)
        dist = cv2.equalizeHist(cv2.blur(dist, (3, 3)).astype(np.uint8))
        dist = cv2.filter2D(dist, cv2.CV_8U, np.array([[-2, -1, 0], [-1, 1, 1], [0, 1, 2]]))
        m = liquid8 * cv2.blur(dist, (3, 3)).astype(np.float32)
        peak = m.max()
        m = m / peak * c[4] if peak > 0 else m  # the original divides by zero (NaN image) when no drop survives
        color = np.array([175, 238, 238], dtype=np.float32) / 255.0
        return _to_255(x + m[..., np.newaxis] * color)
    mud = np.where(liquid > c[3], 1, 0).astype(np.float32)
    mud = skimage.filters.gaussian(mud, sigma=c[4])
    mud[mud < 0.8] = 0
    color = np.array([63, 42, 20], dtype=np.float32) / 255.0
    return _to_255(x * (1 - mud[..., np.newaxis]) + color * mud[..., np.newaxis])


FUNCTIONS: dict[str, Callable[[np.ndarray, object], np.ndarray]] = {name: globals()[name] for name in PARAMS}


def cifar10c_corrupt(image: np.ndarray, name: str, severity: int) -> np.ndarray:
    """Corrupt one uint8 (32, 32, 3) image with the CIFAR-10-C parameters; returns uint8."""
    if image.shape != (CIFAR_SIZE, CIFAR_SIZE, 3):
        raise ValueError(
            f"CIFAR-10-C parameters are for 32x32 RGB images, got {image.shape}; use protocol 'imagenet-c' instead"
        )
    return np.uint8(FUNCTIONS[name](image, PARAMS[name][severity - 1]))
