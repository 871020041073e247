"""Training methods (head + loss), registered by name. One file per method.

Every built-in method is declared here with the module that defines (and registers) it, so methods are listed
without importing torch; ``Method`` is imported from ``bench.methods.base`` on first access.
"""

from __future__ import annotations

import importlib
from typing import Any

from bench.registry import METHODS

_NORMREG = "Norm-regularized AT"
# name: (module, description)
_METHODS = {
    "standard": ("standard", "GAP + linear head, cross-entropy"),
    "topgap": ("topgap", "Top-GAP head (FPN CAM + top-k pooling) with L1 on the CAM"),
    "ersm": ("ersm", "ERSM: Energy-Mask layer (use --arch cnn_ersm) + beta * mean(m * E)"),
    "isvs": ("isvs", "ISVS: Split-LBI TV smoothing in front of the net (use --arch cnn_isvs)"),
    "fgsm_at": ("adversarial", "FGSM-AT + GradAlign (eps 8/255, lambda 0.2), GradAlign-repo recipe"),
    "pgd_at": ("adversarial", "PGD-AT (Madry): PGD-7, alpha 2/255, random start, eps 8/255"),
    "normreg_at": ("normreg_at", f"{_NORMREG}, l1 mode (l_inf eps 2/255, fast): sparse gradients"),
    "normreg_at_elastic": ("normreg_at", f"{_NORMREG}, elastic-net mode (eps1 1/255, eps2 0.05, fast)"),
    "normreg_at_group": ("normreg_at", f"{_NORMREG}, group mode (4x4 patches per channel, radius 8/255, fast)"),
}
for _name, (_module, _description) in _METHODS.items():
    METHODS.declare(_name, f"{__name__}.{_module}", description=_description)

__all__ = ["METHODS", "Method"]


def __getattr__(name: str) -> Any:
    if name == "Method":
        return importlib.import_module(f"{__name__}.base").Method
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
