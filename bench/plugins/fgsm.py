"""FGSM (Goodfellow et al. 2015), L-infinity: the plugin over ``bench.attacks.FGSM``."""

from __future__ import annotations

from dataclasses import dataclass

from bench.attacks import FGSM as FGSMAttack
from bench.plugins.attack_base import AttackPlugin
from bench.plugins.base import register_plugin


@register_plugin
@dataclass
class FGSM(AttackPlugin):
    """FGSM: one signed-gradient step of size eps (L-infinity)."""

    name = "fgsm"

    def make_attack(self, model, ctx) -> FGSMAttack:
        if self.norm != "Linf":
            raise ValueError("fgsm is an L-infinity attack (norm: Linf)")
        return FGSMAttack(model, self.eps, seed=ctx.seed, autocast=ctx.autocast)
