"""Intervals and paired comparisons computed from per-example outcomes (95%, seeded, deterministic).

* A proportion (a 0/1 outcome per image: accuracy, robust accuracy, attack success among attacked images):
  the Wilson score interval over the images that enter it.
* A mean of a per-image value (IoU, l1, AUC, mean corruption accuracy, ...): the percentile bootstrap over
  images, ``N_BOOT`` resamples drawn by ``numpy.random.default_rng(SEED)``.
* A statistic that is not a plain mean (a ratio of per-image sums, a minimum over groups): the same bootstrap,
  recomputing the statistic from the resampled per-image parts (``Statistic``).
* The paired difference of two models on the same images: for proportions Newcombe's hybrid score interval
  (Newcombe 1998, method 10, built from the two Wilson intervals and the correlation of the pairs) with the exact
  McNemar test (a two-sided binomial test on the discordant pairs); for everything else the paired bootstrap (the
  same resampled images for both models) with its two-sided percentile p-value.

``compare`` (``bench compare A B --suite S``) reads two models' stored per-example outcomes and reports these
differences; it refuses, with one line naming the mismatch, models measured on different images or settings.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bench.exceptions import RIBenchError

LEVEL = 0.95
N_BOOT = 2000
SEED = 0
WILSON = "wilson"
BOOTSTRAP = "bootstrap"
NO_EXAMPLES = "none: no per-example outcomes"


class MismatchError(RIBenchError, ValueError):
    """Two measurements cannot be paired: different images, parameters, precision or seed."""


# ----------------------------------------------------------------------------------------- per-image forms


@dataclass(frozen=True)
class PerImage:
    """A metric that is the mean of one value per image; NaN marks an image that does not enter it.

    ``kind`` is "proportion" (values 0/1: Wilson) or "mean" (bootstrap).
    """

    values: np.ndarray
    kind: str = "mean"

    def value(self) -> float:
        finite = self.values[~np.isnan(self.values)]
        return float(finite.mean()) if len(finite) else math.nan


@dataclass(frozen=True)
class Statistic:
    """A metric computed from per-image parts: ``combine`` maps the parts' means over images to the value.

    ``combine`` receives a dict of arrays whose first axis runs over bootstrap resamples and must return one value
    per resample (it is vectorised so that 2,000 resamples cost one call).
    """

    parts: dict[str, np.ndarray]
    combine: Callable[[dict[str, np.ndarray]], np.ndarray]

    def value(self) -> float:
        means = {k: np.nanmean(v, axis=0)[None] for k, v in self.parts.items()}
        return float(np.asarray(self.combine(means))[0])


PerExample = PerImage | Statistic


def proportion(flags: Any, where: Any = None) -> PerImage:
    """0/1 outcomes per image; images where ``where`` is False do not enter the proportion.

    Example:
        >>> proportion([True, False, True, True]).value()
        0.75
    """
    values = np.asarray(flags, dtype=float)
    if where is not None:
        values = np.where(np.asarray(where, dtype=bool), values, np.nan)
    return PerImage(values, "proportion")


def mean_of(values: Any) -> PerImage:
    """One value per image (NaN: the image does not enter the mean).

    Example:
        >>> mean_of([0.2, 0.4, float("nan")]).value()
        0.30000000000000004
    """
    return PerImage(np.asarray(values, dtype=float), "mean")


# ----------------------------------------------------------------------------------------- intervals


@dataclass(frozen=True)
class Interval:
    """A 95% interval and how it was computed; NaN bounds with ``method`` = "none: <why>" when there is none."""

    low: float
    high: float
    method: str

    @classmethod
    def none(cls, why: str) -> Interval:
        return cls(math.nan, math.nan, f"none: {why}")

    def contains(self, value: float, tol: float = 1e-9) -> bool | None:
        if math.isnan(self.low) or math.isnan(self.high) or value is None or math.isnan(float(value)):
            return None
        return self.low - tol <= float(value) <= self.high + tol

    def columns(self) -> dict[str, Any]:
        return {"ci_low": self.low, "ci_high": self.high, "ci_method": self.method}


def _z(level: float = LEVEL) -> float:
    from scipy.stats import norm

    return float(norm.ppf(0.5 + level / 2))


def wilson(successes: int, n: int, level: float = LEVEL) -> Interval:
    """Wilson score interval of a binomial proportion.

    Example:
        >>> iv = wilson(5, 10)
        >>> round(iv.low, 4), round(iv.high, 4)
        (0.2366, 0.7634)
    """
    if n <= 0:
        return Interval.none("no images enter this metric")
    z, p = _z(level), successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    low = 0.0 if successes == 0 else max(0.0, centre - half)  # exact at the ends (no rounding above 0 or below 1)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return Interval(low, high, WILSON)


def resample_index(n: int, seed: int = SEED, n_boot: int = N_BOOT) -> np.ndarray:
    """(n_boot, n) image indices drawn with replacement; the same seed gives the same resamples."""
    return np.random.default_rng(seed).integers(0, n, size=(n_boot, n))


def _percentiles(draws: np.ndarray, level: float = LEVEL) -> tuple[float, float]:
    draws = draws[np.isfinite(draws)]
    if not len(draws):
        return math.nan, math.nan
    tail = (1 - level) / 2
    low, high = np.quantile(draws, [tail, 1 - tail])
    return float(low), float(high)


def _resampled(per_image: PerExample, idx: np.ndarray) -> np.ndarray:
    """The metric on each resample of images (rows of ``idx``)."""
    if isinstance(per_image, PerImage):
        values = per_image.values[idx]
        valid = ~np.isnan(values)
        counts = valid.sum(1)
        sums = np.where(valid, values, 0.0).sum(1)
        return np.divide(sums, counts, out=np.full(len(idx), np.nan), where=counts > 0)
    means = {}
    for name, part in per_image.parts.items():
        picked = part[idx]  # (B, n, ...)
        valid = ~np.isnan(picked)
        counts = valid.sum(1)
        sums = np.where(valid, picked, 0.0).sum(1)
        means[name] = np.divide(sums, counts, out=np.full(sums.shape, np.nan), where=counts > 0)
    return np.asarray(per_image.combine(means), dtype=float)


def _n_images(per_image: PerExample) -> int:
    if isinstance(per_image, PerImage):
        return len(per_image.values)
    return len(next(iter(per_image.parts.values())))


def bootstrap(per_image: PerExample, seed: int = SEED, n_boot: int = N_BOOT, level: float = LEVEL) -> Interval:
    """Percentile bootstrap interval over images of a mean or a statistic.

    Example:
        >>> iv = bootstrap(mean_of(np.linspace(0, 1, 101)))
        >>> iv.method, round(iv.low, 2), round(iv.high, 2)
        ('bootstrap', 0.44, 0.56)
    """
    n = _n_images(per_image)
    if n == 0:
        return Interval.none("no images enter this metric")
    low, high = _percentiles(_resampled(per_image, resample_index(n, seed, n_boot)), level)
    if math.isnan(low):
        return Interval.none("no images enter this metric")
    return Interval(low, high, BOOTSTRAP)


def interval(per_image: PerExample | None, value: float | None = None, seed: int = SEED) -> Interval:
    """The interval of a metric from its per-image form; says why when there is none.

    ``value`` (the stored row's value) is checked against the per-image form: a disagreement means the outcomes
    file does not belong to the row, and no interval is given.

    Example:
        >>> interval(proportion([1, 1, 0, 1]), value=0.75).method
        'wilson'
    """
    if per_image is None:
        return Interval.none("no per-image form")
    recomputed = per_image.value()
    if value is not None and not _same(recomputed, float(value)):
        return Interval.none(f"per-example outcomes give {recomputed:.6g}, the row {float(value):.6g}")
    if isinstance(per_image, PerImage) and per_image.kind == "proportion":
        finite = per_image.values[~np.isnan(per_image.values)]
        return wilson(int(round(finite.sum())), len(finite))
    return bootstrap(per_image, seed)


def _same(a: float, b: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return math.isclose(a, b, rel_tol=1e-5, abs_tol=1e-6)


def rank_ranges(
    values: list[float],
    lows: list[float],
    highs: list[float],
    higher_better: bool = True,
    margins: list[float] | None = None,
) -> list[tuple]:
    """Ranks that the 95% intervals allow: (best, worst) rank per entry, 1-based.

    An entry ranks behind another only when the two intervals do not overlap; entries whose intervals overlap share
    a rank range (shown as "4–12"). A NaN bound counts as the point value. ``margins`` (e.g. the spread of an
    entry's training seeds; 0 or NaN: none) adds ties: two entries whose values differ by no more than the larger
    of their two margins share a rank range too.

    Example:
        >>> rank_ranges([0.9, 0.5, 0.48], [0.85, 0.4, 0.38], [0.95, 0.6, 0.58])
        [(1, 1), (2, 3), (2, 3)]
        >>> rank_ranges([0.9, 0.5, 0.48], [0.85, 0.4, 0.38], [0.95, 0.6, 0.58], margins=[0.45, 0.0, 0.0])
        [(1, 3), (1, 3), (1, 3)]
    """
    sign = 1.0 if higher_better else -1.0
    lo = [sign * (v if math.isnan(a) else a) for v, a in zip(values, lows if sign > 0 else highs, strict=True)]
    hi = [sign * (v if math.isnan(b) else b) for v, b in zip(values, highs if sign > 0 else lows, strict=True)]
    margin = [0.0 if m is None or math.isnan(m) else m for m in (margins or [0.0] * len(values))]

    def apart(i: int, j: int) -> bool:
        return abs(values[i] - values[j]) > max(margin[i], margin[j]) + 1e-12

    out = []
    for i in range(len(values)):
        better = sum(lo[j] > hi[i] and apart(i, j) for j in range(len(values)) if j != i)
        worse = sum(hi[j] < lo[i] and apart(i, j) for j in range(len(values)) if j != i)
        out.append((1 + better, len(values) - worse))
    return out


# ----------------------------------------------------------------------------------------- paired differences


@dataclass
class Difference:
    """The paired difference A − B of one metric on the same images, with its interval and test."""

    metric: str
    n: int
    a: float
    b: float
    interval: Interval
    test: str
    p_value: float
    detail: str = ""

    @property
    def diff(self) -> float:
        return self.a - self.b


def mcnemar_exact(a: Any, b: Any) -> tuple[float, int, int]:
    """Exact two-sided McNemar test of paired 0/1 outcomes: (p-value, #A right B wrong, #A wrong B right).

    Example:
        >>> p, only_a, only_b = mcnemar_exact([1, 1, 1, 1, 0], [0, 0, 0, 0, 0])
        >>> round(p, 4), only_a, only_b
        (0.125, 4, 0)
    """
    from scipy.stats import binomtest

    a, b = np.asarray(a, dtype=bool), np.asarray(b, dtype=bool)
    only_a, only_b = int((a & ~b).sum()), int((~a & b).sum())
    if only_a + only_b == 0:
        return 1.0, 0, 0
    return float(binomtest(only_a, only_a + only_b, 0.5).pvalue), only_a, only_b


def newcombe_paired(a: Any, b: Any, level: float = LEVEL) -> Interval:
    """Newcombe's hybrid score interval (1998, method 10) for p_A − p_B of paired 0/1 outcomes.

    Example:
        >>> iv = newcombe_paired([1] * 10, [0] * 10)
        >>> round(iv.low, 3), iv.high
        (0.608, 1.0)
    """
    a, b = np.asarray(a, dtype=bool), np.asarray(b, dtype=bool)
    n = len(a)
    if n == 0:
        return Interval.none("no paired images")
    n11, n10, n01, n00 = (int(v.sum()) for v in (a & b, a & ~b, ~a & b, ~a & ~b))
    p1, p2 = (n11 + n10) / n, (n11 + n01) / n
    w1, w2 = wilson(n11 + n10, n, level), wilson(n11 + n01, n, level)
    denom = (n11 + n10) * (n01 + n00) * (n11 + n01) * (n10 + n00)
    phi = (n11 * n00 - n10 * n01) / math.sqrt(denom) if denom > 0 else 0.0
    d1l, d1u, d2l, d2u = p1 - w1.low, w1.high - p1, p2 - w2.low, w2.high - p2
    theta = p1 - p2
    low = theta - math.sqrt(max(0.0, d1l**2 - 2 * phi * d1l * d2u + d2u**2))
    high = theta + math.sqrt(max(0.0, d1u**2 - 2 * phi * d1u * d2l + d2l**2))
    return Interval(max(-1.0, low), min(1.0, high), "newcombe")


def paired_bootstrap(a: PerExample, b: PerExample, seed: int = SEED, n_boot: int = N_BOOT) -> tuple[Interval, float]:
    """Interval of A − B over the same resampled images, and the two-sided percentile p-value of A − B = 0.

    Example:
        >>> iv, p = paired_bootstrap(mean_of(np.arange(50) + 1.0), mean_of(np.arange(50.0)))
        >>> (iv.low, iv.high), p
        ((1.0, 1.0), 0.0)
    """
    n = _n_images(a)
    idx = resample_index(n, seed, n_boot)
    draws = _resampled(a, idx) - _resampled(b, idx)
    low, high = _percentiles(draws)
    finite = draws[np.isfinite(draws)]
    if not len(finite):
        return Interval.none("no images enter this metric"), math.nan
    p = min(1.0, 2 * min(float((finite <= 0).mean()), float((finite >= 0).mean())))
    return Interval(low, high, "paired bootstrap"), p


def paired_difference(metric: str, a: PerExample, b: PerExample, seed: int = SEED) -> Difference:
    """A − B of one metric measured on the same images (the per-image forms must be aligned image by image).

    Example:
        >>> d = paired_difference("accuracy", proportion([1, 1, 1, 0] * 5), proportion([1, 0, 0, 0] * 5))
        >>> round(d.diff, 2), d.test, round(d.p_value, 4)
        (0.5, 'exact McNemar', 0.002)
    """
    n = _n_images(a)
    if _n_images(b) != n:
        raise MismatchError(f"{metric}: A has {n} images, B {_n_images(b)}")
    flags = [x for x in (a, b) if isinstance(x, PerImage) and x.kind == "proportion"]
    if len(flags) == 2 and not any(np.isnan(x.values).any() for x in flags):
        p, only_a, only_b = mcnemar_exact(a.values, b.values)
        detail = f"discordant pairs: {only_a} only A right, {only_b} only B right"
        iv = newcombe_paired(a.values, b.values)
        return Difference(metric, n, a.value(), b.value(), iv, "exact McNemar", p, detail)
    iv, p = paired_bootstrap(a, b, seed)
    return Difference(metric, n, a.value(), b.value(), iv, "paired bootstrap", p, f"{N_BOOT} resamples of images")


# ----------------------------------------------------------------------------------------- compare two models


@dataclass
class Comparison:
    """``compare``'s answer: one ``Difference`` per compared metric and notes on what could not be compared."""

    model_a: str
    model_b: str
    suite: str
    differences: list[tuple[str, Difference]] = field(default_factory=list)  # (setting label, difference)
    notes: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        """Human-readable lines, one per difference (``bench compare`` prints these)."""
        out = [f"{self.model_a} (A) vs {self.model_b} (B) on {self.suite}: A − B on the same images, 95% intervals"]
        for label, d in self.differences:
            p = f"p = {d.p_value:.3g}" if not math.isnan(d.p_value) else "p = –"
            if d.test == "paired bootstrap" and d.p_value == 0:  # no resample crossed zero
                p = f"p < {2 / N_BOOT:.0e}"
            out.append(
                f"{label} · {d.metric}: A {d.a:.4f}, B {d.b:.4f}, A − B = {d.diff:+.4f} "
                f"[{d.interval.low:+.4f}, {d.interval.high:+.4f}] ({d.interval.method}); {d.test} {p}; "
                f"n = {d.n}; {d.detail}"
            )
        return out + [f"note: {n}" for n in self.notes]
