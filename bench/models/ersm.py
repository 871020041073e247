"""ERSM Energy-Mask layer (Devynck et al., arXiv 2604.06893; methods_spec §2) and backbones that insert it.

Each spatial position i of a feature map F (B, C, H, W) is a token p_i. With p_hat_i = p_i / max(||p_i||, 1e-6):

    a_i = W_mask^T p_hat_i + b                                  unary logit
    U_i = lambda_unary * softplus(a_i)                          unary energy
    P_i = lambda_pair * softplus(pair_sign * sum_{j in N4(i)} p_hat_i^T p_hat_j)   pairwise energy (zero padding)
    E_i = U_i + P_i,   m_i = sigmoid(-U_i)  (mask_from="energy") or sigmoid(-a_i) (mask_from="logit")
    F'_i = m_i * p_i,  L_reg = mean over batch and positions of m_i * E_i

The layer keeps the tensors of its last forward (``energy``, ``mask``, ``unary``, ``pair``, ``tokens``) so that the
ERSM loss and the deletion plugin (rank tokens by energy vs by feature magnitude) can read them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from bench.models.backbones import PreActResNet18, SmallCNN
from bench.registry import ARCHS

MASK_SOURCES = ("energy", "logit")
CNN_POSITIONS = ("pool2", "stage2", "stage3")


@dataclass
class EnergyTerms:
    logit: torch.Tensor  # a, (B, 1, H, W)
    unary: torch.Tensor  # U
    pair: torch.Tensor  # P
    energy: torch.Tensor  # E = U + P
    mask: torch.Tensor  # m
    neighbour_similarity: torch.Tensor  # sum_j p_hat_i^T p_hat_j, before softplus


def normalize_tokens(feats: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """p / max(||p||_2, eps) over channels; clamping the squared norm keeps all-zero tokens NaN-free in backward."""
    squared = (feats * feats).sum(1, keepdim=True)
    return feats / squared.clamp_min(eps * eps).sqrt()


def neighbour_similarity(tokens_hat: torch.Tensor) -> torch.Tensor:
    """sum over the 4-neighbourhood (zero padding) of cosine similarities: (B, C, H, W) -> (B, 1, H, W)."""
    padded = F.pad(tokens_hat, (1, 1, 1, 1))
    neighbours = padded[..., :-2, 1:-1] + padded[..., 2:, 1:-1] + padded[..., 1:-1, :-2] + padded[..., 1:-1, 2:]
    return (tokens_hat * neighbours).sum(1, keepdim=True)


class EnergyMask(nn.Module):
    """Soft multiplicative spatial mask from a unary + pairwise token energy (the ERSM Energy-Mask layer)."""

    def __init__(
        self,
        channels: int,
        lambda_unary: float = 1.0,
        lambda_pair: float = 0.25,
        pair_sign: float = 1.0,
        mask_from: str = "energy",
        positional_bias: tuple[int, int] | None = None,
    ) -> None:
        super().__init__()
        if mask_from not in MASK_SOURCES:
            raise ValueError(f"mask_from must be one of {MASK_SOURCES}, not '{mask_from}'")
        if pair_sign not in (1.0, -1.0):
            raise ValueError(f"pair_sign must be +1 (literal coherence penalty) or -1, not {pair_sign}")
        self.lambda_unary, self.lambda_pair = lambda_unary, lambda_pair
        self.pair_sign, self.mask_from = pair_sign, mask_from
        self.weight = nn.Parameter(torch.zeros(channels))  # W_mask = 0, b = 0: every m starts at 1/3 (spec §2(d))
        bias_shape = (1, 1, *positional_bias) if positional_bias else (1,)
        self.bias = nn.Parameter(torch.zeros(bias_shape))
        self.last: EnergyTerms | None = None
        self.tokens: torch.Tensor | None = None
        self.drop: torch.Tensor | None = None  # (B, 1, H, W) bool: tokens zeroed after masking (deletion tests)

    def terms(self, feats: torch.Tensor) -> EnergyTerms:
        with torch.autocast(feats.device.type, enabled=False):  # energies in float32 (or float64) even under bf16
            dtype = torch.promote_types(feats.dtype, torch.float32)
            tokens_hat = normalize_tokens(feats.to(dtype))
            logit = torch.einsum("bchw,c->bhw", tokens_hat, self.weight.to(dtype))[:, None] + self.bias.to(dtype)
            unary = self.lambda_unary * F.softplus(logit)
            similarity = neighbour_similarity(tokens_hat)
            pair = self.lambda_pair * F.softplus(self.pair_sign * similarity)
            mask = torch.sigmoid(-(unary if self.mask_from == "energy" else logit))
        return EnergyTerms(logit, unary, pair, unary + pair, mask, similarity)

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        terms = self.terms(feats)
        self.last, self.tokens = terms, feats
        out = feats * terms.mask.to(feats.dtype)
        if self.drop is not None:
            out = out * (~self.drop).to(out.dtype)
        return out

    def _require_forward(self) -> EnergyTerms:
        if self.last is None:
            raise RuntimeError("the Energy-Mask layer has not run yet: call the model on a batch first")
        return self.last

    @property
    def energy(self) -> torch.Tensor:
        """Per-position energy E (B, 1, H, W) of the last forward (low energy = important)."""
        return self._require_forward().energy

    @property
    def mask(self) -> torch.Tensor:
        return self._require_forward().mask

    def regularizer(self) -> torch.Tensor:
        """L_reg = (1/N) sum_i m_i E_i, averaged over the batch, for the last forward."""
        terms = self._require_forward()
        return (terms.mask * terms.energy).mean()

    def config(self) -> dict:
        return {
            "lambda_unary": self.lambda_unary,
            "lambda_pair": self.lambda_pair,
            "pair_sign": self.pair_sign,
            "mask_from": self.mask_from,
            "positional_bias": list(self.bias.shape[-2:]) if self.bias.ndim == 4 else None,
        }


@contextlib.contextmanager
def deleting(layer: EnergyMask, drop: torch.Tensor) -> Iterator[None]:
    """Zero the tokens where ``drop`` (B, 1, H, W) is True, after masking, for the forwards inside the block."""
    previous, layer.drop = layer.drop, drop.bool()
    try:
        yield
    finally:
        layer.drop = previous


def find_energy_mask(model: nn.Module) -> EnergyMask:
    for module in model.modules():
        if isinstance(module, EnergyMask):
            return module
    raise ValueError("this model has no Energy-Mask layer: build it with an ERSM arch, e.g. --arch cnn_ersm")


class ErsmSmallCNN(SmallCNN):
    """The small CNN with an Energy-Mask layer.

    position: "pool2" (default, spec §2(a) "after the penultimate conv stage", at 8x8: after stage2 and the
    stride-2 pooling that opens stage3), "stage2" (stage2 output, 16x16) or "stage3" (last map, 8x8, before GAP).
    The returned feature list holds the masked map where the mask acts on a returned map.
    """

    def __init__(self, widths: tuple[int, int, int] = (64, 128, 256), position: str = "pool2", **mask_kwargs) -> None:
        super().__init__(widths)
        if position not in CNN_POSITIONS:
            raise ValueError(f"ERSM position must be one of {CNN_POSITIONS}, not '{position}'")
        self.position = position
        self.energy_mask = EnergyMask(widths[2] if position == "stage3" else widths[1], **mask_kwargs)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        f1 = self.stage1(x)
        f2 = self.stage2(f1)
        if self.position == "stage2":
            f2 = self.energy_mask(f2)
        if self.position == "pool2":
            f3 = self.stage3[1:](self.energy_mask(self.stage3[0](f2)))
        else:
            f3 = self.stage3(f2)
        if self.position == "stage3":
            f3 = self.energy_mask(f3)
        return [f1, f2, f3]

    @property
    def energy(self) -> torch.Tensor:
        return self.energy_mask.energy

    def config(self) -> dict:
        return {"position": self.position, **self.energy_mask.config()}


class ErsmPreActResNet18(PreActResNet18):
    """PreAct ResNet-18 with the Energy-Mask after layer3 (256 ch, 8x8, N = 64), before layer4 (spec §2(a))."""

    def __init__(self, **mask_kwargs) -> None:
        super().__init__()
        self.energy_mask = EnergyMask(256, **mask_kwargs)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        f1 = self.layer1(self.conv1(x))
        f2 = self.layer2(f1)
        f3 = self.energy_mask(self.layer3(f2))
        return [f1, f2, f3, F.relu(self.bn(self.layer4(f3)))]

    @property
    def energy(self) -> torch.Tensor:
        return self.energy_mask.energy

    def config(self) -> dict:
        return {"position": "layer3", **self.energy_mask.config()}


ARCHS.add(
    "cnn_ersm",
    ErsmSmallCNN,
    input_size=32,
    normalization="cifar10",
    description="small CNN + ERSM Energy-Mask after stage2 (8x8 tokens)",
)
ARCHS.add(
    "prn18_ersm",
    ErsmPreActResNet18,
    input_size=32,
    normalization="cifar10",
    description="PreAct ResNet-18 + ERSM Energy-Mask after layer3 (8x8 tokens)",
)
