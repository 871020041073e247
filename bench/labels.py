"""How settings are named in reports: epsilons as fractions of 255, the threat model of a setting (no torch here)."""

from __future__ import annotations

from typing import Any


def format_eps(eps: float) -> str:
    """0.03137... -> '8/255'; other values with 4 significant digits.

    Example:
        >>> format_eps(8 / 255), format_eps(0.5)
        ('8/255', '0.5')
    """
    scaled = eps * 255
    if abs(scaled - round(scaled)) < 1e-6 and round(scaled) != 0:
        return f"{round(scaled)}/255"
    return f"{eps:.4g}"


def threat_suffix(params: dict[str, Any]) -> str:
    """' ε=8/255' (and ' L2' for a non-L-infinity norm) from a setting's parameters; '' without eps.

    Example:
        >>> threat_suffix({"eps": 8 / 255, "norm": "L2"})
        ' ε=8/255 L2'
    """
    eps = f" ε={format_eps(float(params['eps']))}" if isinstance(params.get("eps"), (int, float)) else ""
    norm = f" {params['norm']}" if params.get("norm") not in (None, "Linf") else ""
    return eps + norm


def short_value(value: Any) -> str:
    """A parameter value as a label shows it: floats with 4 significant digits."""
    return f"{value:.4g}" if isinstance(value, float) else str(value)
