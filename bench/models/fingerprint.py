"""What identifies a model's numbers: the sha256 of its weights (and of the code that builds it, for ``.py`` models).

Example:
    >>> import torch
    >>> len(state_dict_sha256(torch.nn.Linear(2, 2)))
    64
"""

from __future__ import annotations

import hashlib

import torch


def state_dict_sha256(model: torch.nn.Module) -> str:
    """sha256 over the state dict's keys and raw tensor bytes, in key order (device and mode do not matter).

    Args:
        model: any module.

    Returns:
        64 hex digits.

    Example:
        >>> a = torch.nn.Linear(2, 2)
        >>> state_dict_sha256(a) == state_dict_sha256(a.train(False))
        True
    """
    digest = hashlib.sha256()
    for key, tensor in sorted(model.state_dict().items()):
        digest.update(key.encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def combined_sha256(*digests: str) -> str:
    """One sha256 for several (e.g. a model file's and the weights it loads): changes when any of them does.

    Example:
        >>> combined_sha256("ab", "cd") != combined_sha256("ab", "ce")
        True
    """
    return hashlib.sha256("+".join(digests).encode()).hexdigest()
