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

from bench.attacks import PGD as PGDAttack
from bench.plugins.attack_base import check_constraints, frozen
from bench.plugins.base import (
    AttackOutcome,
    Context,
    FlagEvidence,
    MetricInfo,
    Plugin,
    accuracy,
    count,
    flag,
    predict,
    register_plugin,
    setting,
    threat_suffix,
)
from bench.plugins.square import Square
from bench.registry import MODELS
from bench.stats import proportion


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
    recorded_before = {"mode": "final"}  # rows from before best-iterate PGD existed
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
    mode: str = "best"  # PGD iterate that counts (bench.attacks); transfer and CAM-adaptive always use the final one
    tolerance: float = 0.01  # accuracy differences below this are noise
    zero_accuracy: float = 0.02  # accuracy at the largest sweep eps must be at most this

    def __post_init__(self) -> None:
        self._steps = parse_ints(self.steps)
        self._sweep = parse_fractions(self.eps_sweep)
        self._source_model: nn.Module | None = None
        self._source_reason: str | None = None

    # ----- attacks (each returns per-example "still correct" flags for the attacked subset)
    def _attack(self, model, ctx, eps, alpha, steps, restarts=1, mode=None, seed=None, random_start=True) -> PGDAttack:
        return PGDAttack(
            model,
            eps,
            alpha,
            steps,
            restarts=restarts,
            random_start=random_start,
            mode=mode or self.mode,
            seed=ctx.seed if seed is None else seed,
            model_mode="as-is",
            autocast=ctx.autocast,
        )

    def _pgd(self, model, x, y, index, ctx, eps, alpha, steps, restarts=1) -> torch.Tensor:
        result = self._attack(model, ctx, eps, alpha, steps, restarts).run(x, y, index)
        check_constraints(x, result.adv, eps, "Linf")
        return result.pred == y

    def _square(self, model, x, y, index, ctx) -> torch.Tensor:
        result = Square(eps=self.eps, n_queries=self.square_queries).attack(model, x, y, index, ctx)
        check_constraints(x, result.adv, self.eps, "Linf")
        return result.pred == y

    def _cam_adaptive(self, model, x, y, index, ctx) -> torch.Tensor:
        # final iterate: the surrogate's own early exit would stop on the surrogate's mistakes, not the model's
        surrogate = CamMeanLogits(model)
        attack = self._attack(surrogate, ctx, self.eps, self.alpha, self.cam_steps, mode="final", seed=ctx.seed + 31337)
        x_adv = attack.run(x, y, index).adv
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
        with frozen(source):  # final iterate: a perturbation that fools the source early may transfer worse
            attack = self._attack(source, ctx, self.eps, self.alpha, self.transfer_steps, mode="final")
            x_adv = attack.run(x, y, index).adv
        check_constraints(x, x_adv, self.eps, "Linf")
        return predict(model, x_adv, ctx) == y

    def run_batch(self, model, batch, ctx: Context) -> dict[str, np.ndarray]:
        x, y, index = batch.x, batch.y, batch.index
        correct = predict(model, x, ctx) == y
        cols: dict[str, torch.Tensor] = {"label": y, "clean_correct": correct}
        with frozen(model):
            first_step = self._attack(model, ctx, self.eps, self.alpha, 1, mode="final", random_start=False)
            cols["zero_gradient"] = first_step.run(x, y, index).zero_grad
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

    # ----- how the report layer reads this plugin (bench.plugins.base.Plugin)
    metrics = {
        "worst_case_accuracy": MetricInfo("Worst case over all its attacks", "%", "higher", headline=True),
        "whitebox_accuracy": MetricInfo("Worst case over its PGD runs", "%", "higher", column=True),
        "flag_*": flag("Gradient-masking flag"),
        "n_*": count("Count"),
        "*_skipped*": setting("Check skipped"),
        "zero_gradient_fraction": MetricInfo("Share of zero input gradients", "%", "lower"),
        "*accuracy*": MetricInfo("Robust accuracy", "%", "higher"),
    }
    report_order = 20

    def describe(self, shown=None) -> str:
        return f"Diagnostics worst case{threat_suffix({'eps': self.eps})}"

    def threat_model(self) -> tuple[str, float]:
        return "Linf", float(self.eps)

    def _robust_columns(self, examples: pd.DataFrame) -> dict[str, tuple[float, str, str]]:
        """Per-example robust column -> (its eps, its metric name, the attack's label)."""
        e = self.eps
        columns = {f"robust_pgd{s}": (e, f"pgd{s}_accuracy", f"PGD-{s}") for s in self._steps}
        restart, rs, r = f"robust_pgd{self.restart_steps}_r{self.restarts}", self.restart_steps, self.restarts
        columns[restart] = (e, f"pgd{rs}_restarts{r}_accuracy", f"PGD-{rs}×{r}")
        for i, eps in enumerate(self._sweep):
            label = f"PGD-{self.sweep_steps} ε={eps_label(eps)}"
            columns[f"robust_sweep{i}"] = (eps, f"accuracy_eps_{eps_label(eps)}", label)
        columns["robust_square"] = (e, "square_accuracy", f"Square-{self.square_queries}")
        columns["robust_transfer"] = (e, "transfer_accuracy", f"transfer PGD-{self.transfer_steps}")
        columns["robust_cam_adaptive"] = (e, "cam_adaptive_accuracy", f"CAM-adaptive PGD-{self.cam_steps}")
        return {c: v for c, v in columns.items() if c in examples}

    def example_values(self, examples: pd.DataFrame, seed: int = 0) -> dict:
        columns = self._robust_columns(examples)
        values = {metric: proportion(examples[c]) for c, (_, metric, _) in columns.items()}
        values["clean_accuracy"] = proportion(examples["clean_correct"])
        values["zero_gradient_fraction"] = proportion(examples["zero_gradient"])
        pgd = [c for c in columns if c.startswith("robust_pgd")]
        white = examples[pgd].astype(bool).all(axis=1)
        values["whitebox_accuracy"] = proportion(white)
        others = [f"robust_{n}" for n in ("square", "cam_adaptive", "transfer") if f"robust_{n}" in examples]
        values["worst_case_accuracy"] = proportion(white & examples[others].astype(bool).all(axis=1))
        return values

    def curve_point(self, metric: str) -> dict | None:
        """PGD accuracies by steps (and restarts) at eps, and the eps sweep at ``sweep_steps``."""
        point = {"curve": "robust", "eps": float(self.eps), "restarts": 1}
        if metric == f"pgd{self.restart_steps}_restarts{self.restarts}_accuracy":
            return {**point, "steps": self.restart_steps, "restarts": self.restarts}
        steps = {f"pgd{s}_accuracy": s for s in self._steps}
        if metric in steps:
            return {**point, "steps": steps[metric]}
        sweep = {f"accuracy_eps_{eps_label(e)}": e for e in self._sweep}
        if metric in sweep:
            return {**point, "eps": float(sweep[metric]), "steps": self.sweep_steps}
        return None

    def flag_evidence(self, metric: str) -> FlagEvidence | None:
        """The rule behind each ``flag_*`` row of ``summarize`` and the accuracies it compares (same parameters)."""
        return self._flag_evidence().get(metric)

    def _flag_evidence(self) -> dict[str, FlagEvidence]:
        points = 100 * self.tolerance
        tol = f"{points:g} percentage point{'' if points == 1 else 's'}"
        steps = tuple((f"PGD-{s}", f"pgd{s}_accuracy") for s in self._steps)
        single = (f"PGD-{self.restart_steps}", f"pgd{self.restart_steps}_accuracy")
        restarts = (
            f"PGD-{self.restart_steps}×{self.restarts}",
            f"pgd{self.restart_steps}_restarts{self.restarts}_accuracy",
        )
        sweep = tuple((f"PGD-{self.sweep_steps} ε={eps_label(e)}", f"accuracy_eps_{eps_label(e)}") for e in self._sweep)
        white = ("worst case over its PGD runs", "whitebox_accuracy")
        cam_reference = (
            (f"PGD-{self.cam_steps}", f"pgd{self.cam_steps}_accuracy") if self.cam_steps in self._steps else white
        )
        transfer_reasons = {
            "no_source_given": "no transfer source was given",
            "source_not_registered": f"the source model '{self.transfer_source}' is not registered",
            "source_is_the_evaluated_model": "the source model is the evaluated model itself",
            "no_examples": "no examples were evaluated",
        }
        return {
            "flag_more_steps_help": FlagEvidence(
                f"raised when {steps[-1][0]} accuracy is more than {tol} below {steps[-2][0]}'s: the attack had not "
                "converged",
                steps[-2:],
            ),
            "flag_accuracy_rises_with_steps": FlagEvidence(
                f"raised when accuracy rises by more than {tol} from one step count to the next: more steps "
                "should never help the model",
                steps,
            ),
            "flag_restarts_help": FlagEvidence(
                f"raised when {restarts[0]} accuracy is more than {tol} below {single[0]}'s: random restarts find "
                "what one start misses",
                (single, restarts),
            ),
            "flag_accuracy_not_zero_at_max_eps": FlagEvidence(
                f"raised when accuracy at ε={eps_label(self._sweep[-1])} is above "
                f"{100 * self.zero_accuracy:g}%: an unbounded attack must reach about 0",
                sweep[-1:],
            ),
            "flag_accuracy_rises_with_eps": FlagEvidence(
                f"raised when accuracy rises by more than {tol} from one ε to the next larger one", sweep
            ),
            "flag_blackbox_stronger": FlagEvidence(
                f"raised when Square-{self.square_queries} (black-box) accuracy is more than {tol} below the worst "
                "case over its PGD runs: gradients mislead the white-box attack",
                (
                    (f"Square-{self.square_queries}", "square_accuracy"),
                    white,
                    ("images only Square broke", "n_square_only_breaks"),
                ),
            ),
            "flag_transfer_stronger": FlagEvidence(
                f"raised when PGD-{self.transfer_steps} transferred from a standard model is more than {tol} below "
                "the worst case over its PGD runs",
                ((f"transfer PGD-{self.transfer_steps}", "transfer_accuracy"), white),
                tuple((f"transfer_skipped_{k}", why) for k, why in transfer_reasons.items()),
            ),
            "flag_zero_gradients": FlagEvidence(
                f"raised when more than {100 * self.tolerance:g}% of the images have an input gradient of exactly 0",
                (("share of zero input gradients", "zero_gradient_fraction"),),
            ),
            "flag_cam_adaptive_stronger": FlagEvidence(
                f"raised when PGD-{self.cam_steps} on the mean over all CAM positions is more than {tol} below "
                f"{cam_reference[0]}: the top-k pooling masks the gradient",
                ((f"CAM-adaptive PGD-{self.cam_steps}", "cam_adaptive_accuracy"), cam_reference),
                (("cam_adaptive_skipped", "the model has no CAM of its own (not Top-GAP)"),),
            ),
        }

    def attack_outcomes(self, examples: pd.DataFrame) -> list[AttackOutcome]:
        """Every attack of the checklist within eps (the sweep's smaller budgets included: they are valid attacks)."""
        return [
            AttackOutcome(f"diagnostics {label}", float(e), "Linf", examples[c].to_numpy(bool))
            for c, (e, _, label) in self._robust_columns(examples).items()
            if e <= self.eps + 1e-9
        ]
