"""PGD (Madry et al. 2018), L-infinity and L2, batched, with restarts: the plugin over ``bench.attacks.PGD``.

``mode`` is ``best`` by default (early exit: an example is broken as soon as any iterate fools the model) or
``final`` (the last iterate counts); rows record it. Random starts are drawn per example from (seed, restart, example
index), so a result does not depend on batch size or sharding. Tested against torchattacks (tests/test_attacks.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from bench.attacks import PGD as PGDAttack
from bench.plugins.attack_base import AttackPlugin
from bench.plugins.base import register_plugin


@register_plugin
@dataclass
class PGD(AttackPlugin):
    """PGD with random start and restarts (L-infinity or L2); best-iterate early exit by default."""

    name = "pgd"
    recorded_before = {"mode": "final"}  # rows from before best-iterate PGD existed
    alpha: float = 2 / 255
    steps: int = 20
    restarts: int = 1
    random_start: bool = True
    mode: str = "best"

    def make_attack(self, model, ctx) -> PGDAttack:
        return PGDAttack(
            model,
            self.eps,
            self.alpha,
            self.steps,
            norm=self.norm,
            restarts=self.restarts,
            random_start=self.random_start,
            mode=self.mode,
            seed=ctx.seed,
            autocast=ctx.autocast,
        )
