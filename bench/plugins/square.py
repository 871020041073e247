"""Square Attack (Andriushchenko et al. 2020) through pyautoattack's reference implementation.

The reference implementation already stops querying an example once it is misclassified (its ``idx_to_fool`` set
holds only the points whose margin is still positive), so Square has the early exit of best-iterate PGD built in.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from bench.plugins.attack_base import AttackPlugin, result_of
from bench.plugins.base import register_plugin


@register_plugin
@dataclass
class Square(AttackPlugin):
    """Square Attack: score-based black-box attack (margin loss), reference implementation."""

    name = "square"
    n_queries: int = 5000
    p_init: float = 0.8
    restarts: int = 1

    def attack(self, model, x, y, index, ctx):
        from pyautoattack.square import SquareAttack

        def logits(inp: torch.Tensor) -> torch.Tensor:
            with torch.no_grad(), ctx.autocast():
                return model(inp).float()

        # seed per batch from its first example index: batches, not examples, share a random stream
        seed = ctx.seed * 1_000_003 + int(index[0]) if len(index) else ctx.seed
        attack = SquareAttack(
            logits,
            norm=self.norm,
            n_queries=self.n_queries,
            eps=self.eps,
            p_init=self.p_init,
            n_restarts=self.restarts,
            seed=seed,
            verbose=False,
            loss="margin",
            resc_schedule=False,
            device=x.device,
        )
        return result_of(model, attack.perturb(x, y), y, ctx)
