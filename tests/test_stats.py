"""Intervals, paired comparisons and the ERF reading: bench.stats, bench.intervals, bench compare."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binomtest
from typer.testing import CliRunner

from bench.interp.erf import joint_std_erf, joint_z_erf
from bench.intervals import recompute, unit_intervals
from bench.pairing import compare
from bench.plugins.clean import Clean
from bench.plugins.erf_distance import ERFDistance
from bench.report.common import setting_label
from bench.results import ResultsStore, canonical_json
from bench.stats import (
    MismatchError,
    bootstrap,
    interval,
    mcnemar_exact,
    mean_of,
    newcombe_paired,
    paired_difference,
    proportion,
    wilson,
)
from tests.test_report import ADV, PGD, attack_examples, tidy_rows, write_synthetic_results, write_unit

# ----------------------------------------------------------------------------------------- intervals


def test_wilson_matches_known_values():
    assert (wilson(5, 10).low, wilson(5, 10).high) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    assert (wilson(0, 10).low, wilson(0, 10).high) == pytest.approx((0.0, 0.2775), abs=1e-4)
    assert (wilson(10, 10).low, wilson(10, 10).high) == pytest.approx((0.7225, 1.0), abs=1e-4)
    assert wilson(0, 0).method.startswith("none")


def test_bootstrap_is_seeded_and_covers_the_mean():
    values = mean_of(np.random.default_rng(1).normal(3.0, 1.0, 400))
    first, again = bootstrap(values), bootstrap(values)
    assert (first.low, first.high) == (again.low, again.high)
    assert first.low < values.value() < first.high
    # about 1.96 standard errors either side
    assert first.high - first.low == pytest.approx(2 * 1.96 / math.sqrt(400), rel=0.15)
    assert bootstrap(values, seed=1).low != first.low


def test_an_interval_needs_outcomes_that_agree_with_the_row():
    assert interval(proportion([1, 1, 0, 1]), value=0.75).method == "wilson"
    assert interval(mean_of([0.2, 0.4]), value=0.3).method == "bootstrap"
    assert interval(proportion([1, 1, 0, 1]), value=0.5).method.startswith("none: per-example outcomes give 0.75")
    assert interval(None).method == "none: no per-image form"


def test_nan_images_do_not_enter_a_proportion():
    # attack success among the attacked images only: 2 of the 3 attacked
    flags = proportion([True, False, True, False], where=[True, True, True, False])
    assert flags.value() == pytest.approx(2 / 3)
    assert interval(flags).low == pytest.approx(wilson(2, 3).low)


# ----------------------------------------------------------------------------------------- paired tests


def test_mcnemar_is_the_exact_binomial_test_on_discordant_pairs():
    rng = np.random.default_rng(0)
    a, b = rng.random(200) < 0.6, rng.random(200) < 0.5
    p, only_a, only_b = mcnemar_exact(a, b)
    assert only_a == int((a & ~b).sum()) and only_b == int((~a & b).sum())
    assert p == pytest.approx(binomtest(only_a, only_a + only_b, 0.5).pvalue)
    assert mcnemar_exact(a, a) == (1.0, 0, 0)


def test_newcombe_interval_contains_the_difference_and_flips_with_the_order():
    rng = np.random.default_rng(3)
    a = rng.random(200) < 0.7
    b = a & (rng.random(200) < 0.8)  # B right on a subset of A's images: A better
    ab, ba = newcombe_paired(a, b), newcombe_paired(b, a)
    diff = a.mean() - b.mean()
    assert ab.low < diff < ab.high and ab.low > 0  # significantly better, as McNemar says
    assert mcnemar_exact(a, b)[0] < 0.05
    assert (ba.low, ba.high) == pytest.approx((-ab.high, -ab.low))
    same = newcombe_paired(a, a)
    assert same.low < 0 < same.high and same.high - same.low < 0.05


def test_continuous_metrics_use_the_paired_bootstrap():
    rng = np.random.default_rng(5)
    base = rng.random(300)
    d = paired_difference("l1", mean_of(base + 0.05 + rng.normal(0, 0.01, 300)), mean_of(base))
    assert d.test == "paired bootstrap" and d.interval.low > 0.04 and d.interval.high < 0.06 and d.p_value < 0.01
    with pytest.raises(MismatchError, match="A has 300 images, B 299"):
        paired_difference("l1", mean_of(base), mean_of(base[:-1]))


# ----------------------------------------------------------------------------------------- rows


def test_rows_get_intervals_and_a_unit_without_outcomes_says_why(tmp_path):
    store = ResultsStore(tmp_path)
    write_unit(store, "m", ADV, "pgd", {**PGD, "steps": 20}, attack_examples((0, 150), (0, 30)))
    store.append_rows(ADV, "m", tidy_rows("m", ADV, "clean", {}, {"accuracy": 0.75}))  # no examples file
    done = recompute(tmp_path)
    assert done.units == 2 and done.without_examples == 1
    rows = store.read(ADV, "m").set_index(["plugin", "metric"])
    robust = rows.loc[("pgd", "robust_accuracy")]
    assert robust["ci_method"] == "wilson" and robust["ci_low"] == pytest.approx(wilson(30, 200).low)
    assert rows.loc[("pgd", "n_attacked"), "ci_method"] == "none: a count, not an estimate"
    clean = rows.loc[("clean", "accuracy")]
    assert clean["ci_method"] == "none: no per-example outcomes" and math.isnan(clean["ci_low"])
    assert recompute(tmp_path).files == []  # idempotent


def test_unit_intervals_at_write_time():
    frame = pd.DataFrame({"correct": [True] * 9 + [False]})
    (accuracy,) = unit_intervals(Clean(), frame, [("accuracy", 0.9)]).values()
    assert (accuracy.low, accuracy.high) == pytest.approx((wilson(9, 10).low, wilson(9, 10).high))


def test_a_run_writes_its_rows_with_intervals(tiny_model, tmp_path):
    from bench.runner import RunOptions, run_suite

    rows = run_suite("tiny_cnn", "cifar10-adv-quick", RunOptions(limit=12, out=str(tmp_path), progress=False))
    robust = rows[rows["metric"] == "robust_accuracy"]
    assert set(robust["ci_method"]) == {"wilson"} and (robust["ci_low"] <= robust["value"]).all()
    assert (robust["value"] <= robust["ci_high"]).all()
    assert set(rows.loc[rows["metric"] == "n_attacked", "ci_method"]) == {"none: a count, not an estimate"}


# ----------------------------------------------------------------------------------------- ERF


def _erf_examples(center: np.ndarray, corner: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "index": np.arange(len(center)),
            "raw_center": center.mean(1),
            "raw_corner": corner.mean(1),
            "center_map": list(center.astype(np.float32)),
            "corner_map": list(corner.astype(np.float32)),
        }
    )


def _gradient_maps(rng: np.random.Generator, centre: tuple[int, int], n: int = 40) -> np.ndarray:
    """Gradient maps of one output position: a Gaussian blob of varying height around it, zero far away."""
    yy, xx = np.mgrid[0:16, 0:16]
    blob = np.exp(-((yy - centre[0]) ** 2 + (xx - centre[1]) ** 2) / (2 * 3.0**2)).ravel()
    return np.stack([blob * (0.5 + rng.random()) for _ in range(n)])


def test_a_zero_corner_gradient_reads_zero_and_the_distance_equals_the_centre():
    center = _gradient_maps(np.random.default_rng(0), (8, 8))
    metrics = dict(ERFDistance().summarize(_erf_examples(center, np.zeros_like(center)), None))
    assert metrics["erf_corner"] == 0.0 and metrics["erf_corner_ratio"] == 0.0
    assert metrics["erf_distance"] == pytest.approx(metrics["erf_center"]) and metrics["erf_center"] > 0.5
    # the z-normalized reading does not: a map that is exactly zero reads O(1) after centring
    assert joint_z_erf(center, np.zeros_like(center))["erf_corner"] > 0.4


def test_corner_gradients_ten_times_apart_give_clearly_different_distances():
    rng = np.random.default_rng(1)
    center, corner = _gradient_maps(rng, (8, 8)), _gradient_maps(rng, (0, 0)) * 0.5
    strong, weak = joint_std_erf(center, corner), joint_std_erf(center, corner / 10)
    assert strong["erf_corner"] == pytest.approx(10 * weak["erf_corner"], rel=0.05)  # proportional: zero stays zero
    assert weak["erf_distance"] - strong["erf_distance"] > 0.1
    # the saturated reading separates them much less, and reads the weak corner as about half the centre
    z_strong, z_weak = joint_z_erf(center, corner), joint_z_erf(center, corner / 10)
    assert z_weak["erf_distance"] - z_strong["erf_distance"] < 0.5 * (weak["erf_distance"] - strong["erf_distance"])
    assert z_weak["erf_corner"] > 0.4


def test_erf_intervals_recompute_the_reading_on_resampled_images():
    rng = np.random.default_rng(2)
    examples = _erf_examples(_gradient_maps(rng, (8, 8)), _gradient_maps(rng, (0, 0)) * 0.2)
    plugin = ERFDistance()
    metrics = plugin.summarize(examples, None)
    intervals = unit_intervals(plugin, examples, metrics)
    for name in ("erf_center", "erf_corner", "erf_distance", "erf_corner_ratio", "erf_center_raw"):
        value = dict(metrics)[name]
        assert intervals[name].method == "bootstrap" and intervals[name].low <= value <= intervals[name].high
    assert intervals["erf_distance_z"].method == "none: no per-image form"


# ----------------------------------------------------------------------------------------- bench compare


@pytest.fixture
def synthetic(tmp_path):
    return write_synthetic_results(tmp_path)


def test_compare_reports_paired_differences_with_a_test(synthetic):
    results, zoo = synthetic
    comparison = compare("topgap_cnn_k16", "standard_cnn", ADV, results=results, zoo=zoo)
    labels = [label for label, _ in comparison.differences]
    assert labels[0].startswith("per-image worst case")
    assert setting_label("pgd", canonical_json({**PGD, "steps": 50})) in labels
    worst = comparison.differences[0][1]
    assert worst.diff == pytest.approx(0.11) and worst.test == "exact McNemar"
    assert worst.p_value == pytest.approx(binomtest(22, 22, 0.5).pvalue)  # 22 images only topgap survives
    assert worst.interval.low > 0


def test_compare_cli_and_mismatches_are_one_line_with_exit_2(synthetic):
    from bench.cli import app

    results, zoo = synthetic
    runner = CliRunner()
    ok = runner.invoke(
        app, ["compare", "topgap_cnn_k16", "standard_cnn", "--suite", ADV, "--results", str(results), "--zoo", str(zoo)]
    )
    assert ok.exit_code == 0, ok.output
    assert "exact McNemar" in ok.output and "A − B = +0.1100" in ok.output
    store = ResultsStore(results)
    # another model measured on the first 100 images only
    write_unit(store, "other_cnn", ADV, "pgd", {**PGD, "steps": 20}, attack_examples((0, 90), (0, 10), n=100))
    recompute(results)
    bad = runner.invoke(app, ["compare", "other_cnn", "standard_cnn", "--suite", ADV, "--results", str(results)])
    assert bad.exit_code == 2
    (line,) = [x for x in bad.output.splitlines() if x.strip()]
    assert line.startswith("error: different images for ") and "other_cnn has 100 (indices 0–99)" in line
    # the same plugin with other parameters
    write_unit(store, "steps_cnn", ADV, "pgd", {**PGD, "steps": 7}, attack_examples((0, 180), (0, 10)))
    bad = runner.invoke(
        app, ["compare", "steps_cnn", "standard_cnn", "--suite", ADV, "--plugin", "pgd", "--results", str(results)]
    )
    assert bad.exit_code == 2 and "different parameters" in bad.output and "steps=7" in bad.output
