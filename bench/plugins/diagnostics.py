"""Gradient-masking diagnostics (Carlini et al. 2019 checklist; AutoAttack's and RobustBench's sanity checks).

Per example: PGD at ``eps`` with 10/20/50/100 steps and with restarts, PGD over an eps sweep up to 64/255,
Square (black-box), transfer from a standard model, the zero-input-gradient check, and for models that pool the
top-k CAM positions (Top-GAP, ``model.has_native_cam``) PGD whose loss uses the mean over all CAM positions.
Attacks are bench.plugins.pgd / bench.plugins.square. Each check gives a row ``flag_<name>`` (1 = suspicious,
0 = fine, NaN = not evaluated, with ``<part>_skipped`` = 1 and the reason printed) next to the numbers behind it.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import pandas as pd
import torch
from torch import nn

from bench.plugins.attack_base import check_constraints, frozen
from bench.plugins.base import Context, Plugin, accuracy, predict, register_plugin
from bench.plugins.pgd import PGD, pgd, random_start
from bench.plugins.square import Square
from bench.registry import MODELS


def parse_fractions(spec: str) -> tuple[float, ...]:
    try:
        values = tuple(float(Fraction(v.strip())) for v in str(spec).split(",") if v.strip())
    except (ValueError, ZeroDivisionError):
        values = ()
    if not values or any(v < 0 for v in values):
        raise ValueError(f"expected comma-separated non-negative numbers or fractions like 8/255, got {spec!r}")
    return values


def parse_ints(spec: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in str(spec).split(",") if v.strip())
    except ValueError:
        values = ()
    if not values or min(values) < 1:
        raise ValueError(f"expected comma-separated positive integers, got {spec!r}")
    return values


class CamMeanLogits(nn.Module):
    """Adaptive surrogate for Top-GAP: logits = mean of each class CAM over all positions, not the top-k."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.class_map(x).flatten(2).mean(-1)


def eps_label(eps: float) -> str:
    return f"{eps * 255:g}/255"


@register_plugin
@dataclass
class Diagnostics(Plugin):
    """Gradient-masking checks: PGD steps/restarts, eps sweep, Square gap, transfer, zero gradient, CAM-adaptive PGD."""

    name = "diagnostics"
    eps: float = 8 / 255
    alpha: float = 2 / 255
    steps: str = "10,20,50,100"
    restarts: int = 5
    restart_steps: int = 20
    eps_sweep: str = "1/255,2/255,4/255,8/255,16/255,32/255,64/255"
    sweep_steps: int = 20
    square_queries: int = 1000
    # a registered model; "auto" = standard_<arch of the evaluated zoo model>; "" skips the check (reported)
    transfer_source: str = "auto"
    transfer_steps: int = 20
    cam_steps: int = 100
    tolerance: float = 0.01  # accuracy differences below this are noise
    zero_accuracy: float = 0.02  # accuracy at the largest sweep eps must be at most this

    def __post_init__(self) -> None:
        self._steps = parse_ints(self.steps)
        self._sweep = parse_fractions(self.eps_sweep)
        self._source_model: nn.Module | None = None
        self._source_reason: str | None = None

    # ----- attacks (each returns per-example "still correct" flags for the attacked subset)
    def _pgd(self, model, x, y, index, ctx, eps, alpha, steps, restarts=1) -> torch.Tensor:
        x_adv = PGD(eps=eps, alpha=alpha, steps=steps, restarts=restarts).attack(model, x, y, index, ctx).detach()
        check_constraints(x, x_adv, eps, "Linf")
        return predict(model, x_adv, ctx) == y

    def _square(self, model, x, y, index, ctx) -> torch.Tensor:
        x_adv = Square(eps=self.eps, n_queries=self.square_queries).attack(model, x, y, index, ctx).detach()
        check_constraints(x, x_adv, self.eps, "Linf")
        return predict(model, x_adv, ctx) == y

    def _cam_adaptive(self, model, x, y, index, ctx) -> torch.Tensor:
        start = random_start(x, index, self.eps, "Linf", ctx.seed + 31337)
        x_adv, _ = pgd(CamMeanLogits(model), x, y, self.eps, self.alpha, self.cam_steps, "Linf", start, ctx.autocast)
        check_constraints(x, x_adv, self.eps, "Linf")
        return predict(model, x_adv, ctx) == y

    def _source_name(self, ctx) -> str:
        if self.transfer_source != "auto":
            return self.transfer_source
        if ctx.model in MODELS and MODELS.entry(ctx.model).meta.get("source") == "zoo":
            from bench.models.zoo import read_card

            return f"standard_{read_card(ctx.model)['arch']}"
        return ""

    def _source(self, model: nn.Module, ctx) -> nn.Module | None:
        device = ctx.device
        if self._source_model is None and self._source_reason is None:
            name = self._source_name(ctx)
            if not name:
                self._source_reason = "no_source_given"
            elif name not in MODELS:
                self._source_reason = "source_not_registered"
            else:
                source = MODELS.create(name, device=device).eval()
                theirs, ours = source.state_dict(), model.state_dict()
                same = source is model or (
                    theirs.keys() == ours.keys()
                    and all(a.shape == ours[k].shape and torch.equal(a, ours[k]) for k, a in theirs.items())
                )
                if same:
                    self._source_reason = "source_is_the_evaluated_model"
                else:
                    self._source_model = source
            if self._source_reason:
                print(f"diagnostics: transfer from '{self.transfer_source}': {self._source_reason}", file=sys.stderr)
        return self._source_model

    def _transfer(self, model, source, x, y, index, ctx) -> torch.Tensor:
        with frozen(source):
            x_adv = PGD(eps=self.eps, alpha=self.alpha, steps=self.transfer_steps).attack(source, x, y, index, ctx)
        check_constraints(x, x_adv.detach(), self.eps, "Linf")
        return predict(model, x_adv.detach(), ctx) == y

    def run_batch(self, model, batch, ctx: Context) -> dict[str, np.ndarray]:
        x, y, index = batch.x.to(ctx.device), batch.y.to(ctx.device), batch.index
        correct = predict(model, x, ctx) == y
        cols: dict[str, torch.Tensor] = {"label": y, "clean_correct": correct}
        with frozen(model):
            _, zero_grad = pgd(model, x, y, self.eps, self.alpha, 1, "Linf", x, ctx.autocast)
        cols["zero_gradient"] = zero_grad
        xa, ya, ia = x[correct], y[correct], index[correct.cpu()]

        def robust(attack) -> torch.Tensor:
            out = torch.zeros_like(correct)
            if len(xa):
                with frozen(model):
                    out[correct] = attack().to(out.device)
            return out

        for steps in self._steps:
            attack = lambda s=steps: self._pgd(model, xa, ya, ia, ctx, self.eps, self.alpha, s)  # noqa: E731
            cols[f"robust_pgd{steps}"] = robust(attack)
        cols[f"robust_pgd{self.restart_steps}_r{self.restarts}"] = robust(
            lambda: self._pgd(model, xa, ya, ia, ctx, self.eps, self.alpha, self.restart_steps, self.restarts)
        )
        for i, eps in enumerate(self._sweep):
            alpha = 2.5 * eps / self.sweep_steps  # Madry et al.'s step rule
            attack = lambda e=eps, a=alpha: self._pgd(model, xa, ya, ia, ctx, e, a, self.sweep_steps)  # noqa: E731
            cols[f"robust_sweep{i}"] = robust(attack)
        cols["robust_square"] = robust(lambda: self._square(model, xa, ya, ia, ctx))
        if getattr(model, "has_native_cam", False):
            cols["robust_cam_adaptive"] = robust(lambda: self._cam_adaptive(model, xa, ya, ia, ctx))
        source = self._source(model, ctx)
        out = {k: v.cpu().numpy() for k, v in cols.items()}
        if source is not None:
            out["robust_transfer"] = robust(lambda: self._transfer(model, source, xa, ya, ia, ctx)).cpu().numpy()
        out["transfer_status"] = np.array([self._source_reason or "ok"] * len(x))
        return out

    def summarize(self, examples: pd.DataFrame, ctx: Context) -> list[tuple[str, float]]:
        acc = {c: accuracy(examples[c]) for c in examples if c.startswith(("robust_", "clean_correct", "zero_"))}
        tol, rows = self.tolerance, [("clean_accuracy", acc["clean_correct"])]
        steps_acc = [acc[f"robust_pgd{s}"] for s in self._steps]
        rows += [(f"pgd{s}_accuracy", a) for s, a in zip(self._steps, steps_acc, strict=True)]
        restart_key = f"robust_pgd{self.restart_steps}_r{self.restarts}"
        rows.append((f"pgd{self.restart_steps}_restarts{self.restarts}_accuracy", acc[restart_key]))
        white = examples[[f"robust_pgd{s}" for s in self._steps] + [restart_key]].all(axis=1)
        rows.append(("whitebox_accuracy", accuracy(white)))
        rows.append(("flag_more_steps_help", float(steps_acc[-1] < steps_acc[-2] - tol)))
        rows.append(("flag_accuracy_rises_with_steps", float(max(np.diff(steps_acc), default=0.0) > tol)))
        single = acc.get(f"robust_pgd{self.restart_steps}", acc[restart_key])
        rows.append(("flag_restarts_help", float(acc[restart_key] < single - tol)))

        sweep_acc = [acc[f"robust_sweep{i}"] for i in range(len(self._sweep))]
        rows += [(f"accuracy_eps_{eps_label(e)}", a) for e, a in zip(self._sweep, sweep_acc, strict=True)]
        rows.append(("flag_accuracy_not_zero_at_max_eps", float(sweep_acc[-1] > self.zero_accuracy)))
        rows.append(("flag_accuracy_rises_with_eps", float(max(np.diff(sweep_acc), default=0.0) > tol)))

        rows.append(("square_accuracy", acc["robust_square"]))
        rows.append(("n_square_only_breaks", float((white & ~examples["robust_square"].astype(bool)).sum())))
        rows.append(("flag_blackbox_stronger", float(acc["robust_square"] < accuracy(white) - tol)))

        if "robust_transfer" in examples:
            rows.append(("transfer_accuracy", acc["robust_transfer"]))
            rows.append(("flag_transfer_stronger", float(acc["robust_transfer"] < accuracy(white) - tol)))
        else:
            reason = str(examples["transfer_status"].iloc[0]) if len(examples) else "no_examples"
            rows += [("flag_transfer_stronger", float("nan")), ("transfer_skipped", 1.0)]
            rows.append((f"transfer_skipped_{reason}", 1.0))

        rows.append(("zero_gradient_fraction", acc["zero_gradient"]))
        rows.append(("flag_zero_gradients", float(acc["zero_gradient"] > tol)))

        if "robust_cam_adaptive" in examples:
            reference = acc.get(f"robust_pgd{self.cam_steps}", accuracy(white))
            rows.append(("cam_adaptive_accuracy", acc["robust_cam_adaptive"]))
            rows.append(("flag_cam_adaptive_stronger", float(acc["robust_cam_adaptive"] < reference - tol)))
            worst = white & examples["robust_square"].astype(bool) & examples["robust_cam_adaptive"].astype(bool)
        else:
            rows += [("flag_cam_adaptive_stronger", float("nan")), ("cam_adaptive_skipped", 1.0)]
            worst = white & examples["robust_square"].astype(bool)
        if "robust_transfer" in examples:
            worst = worst & examples["robust_transfer"].astype(bool)
        rows.append(("worst_case_accuracy", accuracy(worst)))
        rows.append(("n_flags_raised", float(sum(v == 1.0 for m, v in rows if m.startswith("flag_")))))
        return rows
