"""The one implementation of the gradient attacks: FGSM and PGD (L-infinity / L2, restarts, random start, pixel mask).

Used by the evaluation plugins (``fgsm``, ``pgd``, ``masked_attack``, ``diagnostics``) and by adversarial training
(``fgsm_at``, ``pgd_at``). Called like torchattacks: ``PGD(model, eps=8/255)(images, labels)`` returns adversarial
images; ``.run(...)`` returns an :class:`AttackResult` with the per-example outcome.

Two modes (recorded in every row as the plugin parameter ``mode``):

- ``best`` (default; AutoAttack's APGD keeps its best point too): an example counts as broken as soon as any iterate
  of any restart, the random start included, is misclassified. That is read from the logits of the forward pass that
  computes the gradient anyway (cast to fp32), so it costs no extra pass. The fooling image is kept and the example
  leaves the active batch: later steps run on a compacted batch of the survivors only. Every iterate is the same as
  in ``final`` mode up to the moment an example is fooled, so ``best`` never reports a higher robust accuracy.
- ``final``: classic PGD, the last iterate of each restart counts (all steps run on every example).

Random starts are drawn per example from (seed, restart, dataset index), so results do not depend on batch size,
sharding or which other examples are still active; ``seed=None`` draws from torch's global generator instead
(adversarial training). The loss is the per-example cross-entropy summed over the batch, so an example's gradient
does not depend on the batch either.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F

MODES = ("best", "final")
NORMS = ("Linf", "L2")
MODEL_MODES = ("eval", "as-is")


@dataclass
class AttackResult:
    """Per-example outcome of an attack, in the order of the input batch.

    ``adv``: adversarial images; ``pred``: the model's prediction at ``adv`` (from the attack's own forward passes);
    ``fooled``: ``pred != labels``; ``zero_grad``: the input gradient at the first point was exactly zero (a
    gradient-masking symptom); ``forward_passes``: image forward passes spent (a batch of b images costs b).
    """

    adv: torch.Tensor
    pred: torch.Tensor
    fooled: torch.Tensor
    zero_grad: torch.Tensor
    forward_passes: int
    start_grad: torch.Tensor | None = None


@contextlib.contextmanager
def frozen(model: torch.nn.Module) -> Iterator[None]:
    """Eval mode and no parameter gradients during an attack; restores both afterwards.

    Example:
        >>> net = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.BatchNorm1d(2)).train()
        >>> with frozen(net):
        ...     net.training
        False
        >>> net.training
        True
    """
    was_training = model.training
    flags = [p.requires_grad for p in model.parameters()]
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in zip(model.parameters(), flags, strict=True):
            p.requires_grad_(flag)
        model.train(was_training)


def l2_normalize(g: torch.Tensor) -> torch.Tensor:
    """Each example's tensor divided by its L2 norm (zero stays zero)."""
    return g / g.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, *([1] * (g.dim() - 1)))


def perturbation_norm(delta: torch.Tensor, norm: str) -> torch.Tensor:
    """Per-example L-infinity or L2 norm of a perturbation batch."""
    flat = delta.flatten(1)
    return flat.abs().amax(1) if norm == "Linf" else flat.norm(dim=1)


def project(x_adv: torch.Tensor, x: torch.Tensor, eps: float, norm: str, mask: torch.Tensor | None = None):
    """Project ``x_adv`` onto the eps-ball around ``x`` (and onto ``mask`` when given), clipped to [0, 1].

    Example:
        >>> x = torch.full((1, 1, 2, 2), 0.5)
        >>> round(project(x + 1.0, x, 0.1, "Linf").max().item(), 4)
        0.6
    """
    delta = x_adv - x
    if mask is not None:
        delta = delta * mask
    if norm == "Linf":
        delta = delta.clamp(-eps, eps)
    else:
        scale = (eps / delta.flatten(1).norm(dim=1).clamp_min(1e-12)).clamp(max=1.0)
        delta = delta * scale.view(-1, *([1] * (delta.dim() - 1)))
    return (x + delta).clamp(0, 1)


def example_generator(seed: int, index: int) -> torch.Generator:
    """A generator that depends only on (seed, example index): shards never change an example's noise."""
    return torch.Generator().manual_seed(seed * 1_000_003 + index)


def example_noise(index: torch.Tensor, shape: tuple[int, ...], seed: int | None, low: float, high: float):
    """Uniform noise per example: from (seed, dataset index) when ``seed`` is set, else torch's global generator."""
    if seed is None:
        return torch.rand((len(index), *shape)) * (high - low) + low
    draws = [torch.rand(shape, generator=example_generator(seed, int(i))) for i in index]
    return torch.stack(draws) * (high - low) + low if draws else torch.empty((0, *shape))


def random_start(x, index, eps: float, norm: str, seed: int | None, mask: torch.Tensor | None = None):
    """A uniform point of the eps-ball (L2: a random direction at a uniform radius), inside [0, 1] and the mask."""
    noise = example_noise(index, tuple(x.shape[1:]), seed, -eps, eps).to(x.device, x.dtype)
    if norm == "L2":
        radius_seed = None if seed is None else seed + 7919
        radius = example_noise(index, (1,) * (x.dim() - 1), radius_seed, 0.0, eps).to(x.device, x.dtype)
        noise = l2_normalize(noise) * radius
    return project(x + noise, x, eps, norm, mask)


class PGD:
    """Projected gradient descent on the cross-entropy (Madry et al. 2018), L-infinity or L2.

    Args:
        model: maps [0, 1] images to logits.
        eps: radius of the threat model.
        alpha: step size.
        steps: gradient steps per restart.
        norm: ``"Linf"`` or ``"L2"``.
        restarts: each restart attacks the examples that survived the previous ones.
        random_start: start from a uniform point of the ball (else from the clean image).
        mode: ``"best"`` (early exit, stronger) or ``"final"`` (last iterate counts); see the module docstring.
        seed: seed of the per-example random starts; ``None`` uses torch's global generator.
        model_mode: ``"eval"`` puts the model in eval mode without parameter gradients for the attack (restored
            afterwards); ``"as-is"`` leaves it alone (adversarial training crafts in train mode).
        autocast: a context-manager factory for the forward passes (e.g. bf16 autocast); fp32 by default.

    Returns (``__call__``): the adversarial images; ``run`` returns an :class:`AttackResult`.

    Example:
        >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 3))
        >>> x, y = torch.rand(4, 3, 2, 2), torch.tensor([0, 1, 2, 0])
        >>> x_adv = PGD(net, eps=8 / 255, alpha=2 / 255, steps=5)(x, y)
        >>> bool((x_adv - x).abs().max() <= 8 / 255 + 1e-6)
        True
    """

    def __init__(
        self,
        model: torch.nn.Module,
        eps: float = 8 / 255,
        alpha: float = 2 / 255,
        steps: int = 10,
        *,
        norm: str = "Linf",
        restarts: int = 1,
        random_start: bool = True,
        mode: str = "best",
        seed: int | None = 0,
        model_mode: str = "eval",
        autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
    ) -> None:
        for name, value, choices in (
            ("norm", norm, NORMS),
            ("mode", mode, MODES),
            ("model_mode", model_mode, MODEL_MODES),
        ):
            if value not in choices:
                raise ValueError(f"{type(self).__name__} {name} must be one of {', '.join(choices)}, not '{value}'")
        if steps < 1:
            raise ValueError(f"{type(self).__name__} steps must be >= 1, not {steps}")
        self.model, self.eps, self.alpha, self.steps = model, eps, alpha, steps
        self.norm, self.restarts, self.random_start, self.mode = norm, max(1, restarts), random_start, mode
        self.seed, self.model_mode, self.autocast = seed, model_mode, autocast
        self.keep_start_grad = False  # FGSM-AT's GradAlign reuses the gradient at the start point
        self.check_last = (
            True  # False: skip the check pass on the last restart's final iterate (training needs no pred)
        )

    def __call__(self, images: torch.Tensor, labels: torch.Tensor, **kwargs) -> torch.Tensor:
        return self.run(images, labels, **kwargs).adv

    def run(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        index: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
    ) -> AttackResult:
        """Attack a batch.

        Args:
            images: (B, C, H, W) in [0, 1].
            labels: (B,) true classes.
            index: (B,) dataset indices that seed the random starts (default ``arange(B)``).
            mask: optional (B, 1, H, W) or (B, C, H, W) region; the perturbation stays where it is 1.
        """
        index = torch.arange(len(images)) if index is None else index.cpu()
        context = frozen(self.model) if self.model_mode == "eval" else contextlib.nullcontext()
        with context:
            return self._attack(images.detach(), labels, index, mask)

    def _attack(self, x, y, index, mask) -> AttackResult:
        state = _State(x, y)
        for restart in range(self.restarts):
            active = (~state.fooled).nonzero().flatten()
            if len(active) == 0:
                break
            seed = None if self.seed is None else self.seed + 104729 * restart
            check = self.check_last or restart + 1 < self.restarts
            self._one_restart(state, active, index[active.cpu()], seed, mask, check)
        return state.result()

    def _one_restart(self, state: _State, active: torch.Tensor, index: torch.Tensor, seed, mask, check: bool) -> None:
        x, y = state.x[active], state.y[active]
        region = None if mask is None else mask[active]
        x_adv = random_start(x, index, self.eps, self.norm, seed, region) if self.random_start else x.clone()
        for step in range(self.steps + 1):
            last = step == self.steps
            if last and not check:
                state.adv[active] = x_adv.detach()
                return
            logits, grad = self._forward(x_adv, y, with_grad=not last)
            pred = logits.float().argmax(1)
            if step == 0 and not state.started:
                state.record_start(active, grad, keep_grad=self.keep_start_grad)
            done = pred != y if (self.mode == "best" or last) else torch.zeros_like(y, dtype=torch.bool)
            state.record(active, x_adv, pred, done, last)
            if last:
                return
            keep = ~done
            if not keep.all():
                active, x, y, x_adv, grad = active[keep], x[keep], y[keep], x_adv[keep], grad[keep]
                region = None if region is None else region[keep]
                if len(active) == 0:
                    return
            x_adv = project(x_adv + self.alpha * self._direction(grad, region), x, self.eps, self.norm, region)

    def _forward(self, x_adv: torch.Tensor, y: torch.Tensor, with_grad: bool):
        if not with_grad:
            with torch.no_grad(), self.autocast():
                return self.model(x_adv), None
        x_adv = x_adv.detach().requires_grad_(True)
        with self.autocast():
            logits = self.model(x_adv)
            loss = F.cross_entropy(logits, y, reduction="sum")
        grad = torch.autograd.grad(loss, x_adv)[0].float()
        return logits.detach(), grad

    def _direction(self, grad: torch.Tensor, region: torch.Tensor | None) -> torch.Tensor:
        if region is not None:
            grad = grad * region
        return grad.sign() if self.norm == "Linf" else l2_normalize(grad)


class FGSM(PGD):
    """FGSM (Goodfellow et al. 2015): one signed-gradient step of size ``eps`` from the clean image (L-infinity).

    In ``best`` mode an example that is already misclassified at the clean image counts as broken there.

    Example:
        >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 3))
        >>> x, y = torch.rand(4, 3, 2, 2), torch.tensor([0, 1, 2, 0])
        >>> bool(((FGSM(net, eps=0.1)(x, y) - x).abs() <= 0.1 + 1e-6).all())
        True
    """

    def __init__(self, model: torch.nn.Module, eps: float = 8 / 255, **kwargs) -> None:
        kwargs.setdefault("alpha", eps)
        kwargs.setdefault("random_start", False)
        super().__init__(model, eps, steps=1, norm="Linf", **kwargs)


class _State:
    """The attack's per-example bookkeeping in the original batch order (compaction never reorders it)."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.x, self.y = x, y
        self.adv = x.clone()
        self.pred = y.clone()
        self.fooled = torch.zeros(len(x), dtype=torch.bool, device=x.device)
        self.zero_grad = torch.zeros(len(x), dtype=torch.bool, device=x.device)
        self.start_grad: torch.Tensor | None = None
        self.started = False
        self.forward_passes = 0

    def record_start(self, active: torch.Tensor, grad: torch.Tensor | None, keep_grad: bool) -> None:
        self.started = True
        if grad is not None:
            self.zero_grad[active] = grad.flatten(1).abs().amax(1) == 0
            if keep_grad:
                self.start_grad = torch.zeros_like(self.x)
                self.start_grad[active] = grad

    def record(self, active, x_adv, pred, done, last: bool) -> None:
        self.forward_passes += len(active)
        if last:  # survivors keep their last iterate; the fooled ones their fooling image
            self.adv[active], self.pred[active] = x_adv.detach(), pred
        elif done.any():
            self.adv[active[done]], self.pred[active[done]] = x_adv[done].detach(), pred[done]
        self.fooled[active[done]] = True

    def result(self) -> AttackResult:
        return AttackResult(self.adv, self.pred, self.fooled, self.zero_grad, self.forward_passes, self.start_grad)
