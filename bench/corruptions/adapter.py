"""The ``imagecorruptions`` 1.1.2 package made to run on NumPy 2 / scikit-image >= 0.19, patched at call depth.

The package is used as is (its code, parameters and frost images) except for three calls that no longer work:

* ``glass_blur`` and ``gaussian_blur`` call ``skimage.filters.gaussian(..., multichannel=True)``; scikit-image 0.19
  replaced that argument with ``channel_axis=-1`` (same meaning: blur each channel, not across channels) and 0.21
  removed it. Both functions are re-bound to a ``gaussian`` that translates exactly that keyword.
* ``fog`` calls ``plasma_fractal``, which allocates with ``np.float_`` (removed in NumPy 2.0; it was an alias of
  ``np.float64``). ``plasma_fractal`` is re-bound to a NumPy namespace that has the alias, and ``fog`` to that copy.
* ``impulse_noise`` calls ``skimage.util.random_noise`` without a seed. scikit-image < 0.19 drew from the global
  NumPy stream, so ``np.random.seed`` fixed it; today it draws from a fresh unseeded generator. It is re-bound to a
  ``random_noise`` whose generator is seeded from the global NumPy stream, which restores seeded reproducibility.

Re-binding copies a function with a changed global namespace: the package module itself is never modified, so
importing ``imagecorruptions`` elsewhere still gives the original functions.
"""

from __future__ import annotations

import types
import warnings
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path

import numpy as np
import skimage.color
import skimage.filters
import skimage.util

with warnings.catch_warnings():
    # imagecorruptions imports pkg_resources (setuptools < 81) and scipy.ndimage.interpolation (deprecated)
    warnings.simplefilter("ignore", (UserWarning, DeprecationWarning))
    import imagecorruptions
    from imagecorruptions import corruptions as _ic

IMAGECORRUPTIONS_VERSION = version("imagecorruptions")
IMAGENET_C_COMMON = tuple(imagecorruptions.get_corruption_names("common"))
IMAGENET_C_EXTRA = tuple(imagecorruptions.get_corruption_names("validation"))


def gaussian_with_multichannel(image: np.ndarray, *args, multichannel: bool | None = None, **kwargs) -> np.ndarray:
    """``skimage.filters.gaussian`` accepting the pre-0.19 ``multichannel`` flag (True = ``channel_axis=-1``)."""
    if multichannel is not None:
        kwargs["channel_axis"] = -1 if multichannel else None
    return skimage.filters.gaussian(image, *args, **kwargs)


def _random_noise_from_global_stream(image: np.ndarray, mode: str = "gaussian", **kwargs) -> np.ndarray:
    kwargs.setdefault("rng", np.random.randint(0, 2**31 - 1))
    return skimage.util.random_noise(image, mode=mode, **kwargs)


def _rebind(func: Callable, **replaced_globals: object) -> Callable:
    """A copy of ``func`` whose module-level names ``replaced_globals`` resolve to the given objects."""
    namespace = {**func.__globals__, **replaced_globals}
    copy = types.FunctionType(func.__code__, namespace, func.__name__, func.__defaults__, func.__closure__)
    copy.__doc__, copy.__wrapped__ = func.__doc__, func
    return copy


class _NumpyWithFloatAlias(types.ModuleType):
    """NumPy with the ``float_`` alias NumPy 2 removed; every other attribute is NumPy's own."""

    float_ = np.float64

    def __getattr__(self, name: str) -> object:
        return getattr(np, name)


_sk_with_seeded_noise = types.SimpleNamespace(
    util=types.SimpleNamespace(random_noise=_random_noise_from_global_stream), color=skimage.color
)
plasma_fractal = _rebind(_ic.plasma_fractal, np=_NumpyWithFloatAlias("numpy"))

PATCHED: dict[str, Callable] = {
    "glass_blur": _rebind(_ic.glass_blur, gaussian=gaussian_with_multichannel),
    "gaussian_blur": _rebind(_ic.gaussian_blur, gaussian=gaussian_with_multichannel),
    "fog": _rebind(_ic.fog, plasma_fractal=plasma_fractal),
    "impulse_noise": _rebind(_ic.impulse_noise, sk=_sk_with_seeded_noise),
}


def imagenet_c_function(name: str) -> Callable:
    """The package's corruption ``name`` (PIL image, severity) -> array, patched where it needs it."""
    if name not in imagecorruptions.corruption_dict:
        raise ValueError(f"unknown corruption '{name}' (choose from {', '.join(imagecorruptions.corruption_dict)})")
    return PATCHED.get(name, imagecorruptions.corruption_dict[name])


# helpers the CIFAR-10-C table reuses from the package
disk = _ic.disk
motion_blur_kernel_shift = _ic._motion_blur
FROST_FILES = tuple(
    str(Path(_ic.__file__).parent / "frost" / f)
    for f in ("frost1.png", "frost2.png", "frost3.png", "frost4.jpg", "frost5.jpg", "frost6.jpg")
)
