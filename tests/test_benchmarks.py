"""benchmarks/run.py end to end in quick mode, for the two cheap benchmarks (schema only, never speed)."""

import numpy as np
import pandas as pd

from benchmarks.common import COLUMNS
from benchmarks.run import main
from benchmarks.store import merge


def test_quick_benchmarks_write_tidy_rows(tiny_model, tmp_path):
    out = tmp_path / "benchmarks.parquet"
    argv = ["--quick", "--only", "pgd_vs_torchattacks,harness_overhead", "--out", str(out), "--model", "tiny_cnn"]
    assert main(argv) == 0
    rows = pd.read_parquet(out)
    assert list(rows.columns) == COLUMNS
    assert set(rows["benchmark"]) == {"pgd_vs_torchattacks", "harness_overhead"}
    assert np.isfinite(rows["value"]).all()
    assert rows[["benchmark", "variant", "metric", "params"]].notna().all().all()
    exact = rows[(rows["variant"] == "random_start=False") & (rows["metric"] == "robust_accuracy_diff_pp")]
    assert exact["value"].tolist() == [0.0]
    assert len(merge(out, rows.to_dict("records"))) == len(rows)  # rerun rows replace, never add to, old ones


def test_a_rerun_replaces_all_earlier_rows_of_its_benchmarks_only(tmp_path):
    def row(benchmark, variant, params, value):
        return {"benchmark": benchmark, "variant": variant, "metric": "m", "value": value, "params": params}

    out = tmp_path / "results.parquet"
    merge(out, [row("a", "old-variant", '{"mode":"full","repeats":3}', 1.0), row("b", "v", '{"mode":"full"}', 2.0)])
    merge(out, [row("a", "v", '{"mode":"quick"}', 9.0)])  # a quick run leaves the full rows alone
    frame = merge(out, [row("a", "new-variant", '{"mode":"full","repeats":5}', 3.0)])
    got = sorted(zip(frame["benchmark"], frame["variant"], frame["value"], strict=True))
    assert got == [("a", "new-variant", 3.0), ("a", "v", 9.0), ("b", "v", 2.0)]


def test_quick_early_exit_benchmarks_report_best_never_weaker_than_final(tiny_model, tmp_path):
    out = tmp_path / "benchmarks.parquet"
    only = "early_exit_pgd,pgd_arithmetic,recipro_batched,cascade_vs_per_attack"
    argv = ["--quick", "--only", only, "--out", str(out)]
    assert main([*argv, "--model", "tiny_cnn"]) == 0
    rows = pd.read_parquet(out).set_index(["benchmark", "variant", "metric"])["value"]
    assert rows[("early_exit_pgd", "eps=8/255", "n_robust_best_not_final")] == 0
    assert rows[("early_exit_pgd", "eps=2/255", "n_robust_best_not_final")] == 0
    assert 0 < rows[("pgd_arithmetic", "fp32", "fraction_of_matmul_peak")] < 2
    assert rows[("recipro_batched", "recipro", "max_abs_difference")] < 1e-5
    cascade = rows[("cascade_vs_per_attack", "cifar10-adv", "worst_case_robust_accuracy_cascade")]
    assert cascade == rows[("cascade_vs_per_attack", "cifar10-adv", "worst_case_robust_accuracy_per_attack")]


def test_a_rerun_for_another_model_keeps_the_first_models_rows(tmp_path):
    def row(model, value):
        return {"benchmark": "a", "variant": "v", "metric": "m", "value": value, "params": "{}", "model": model}

    out = tmp_path / "results.parquet"
    merge(out, [row("standard_cnn", 1.0)])
    frame = merge(out, [row("pgdat_cnn", 2.0)])
    assert sorted(zip(frame["model"], frame["value"], strict=True)) == [("pgdat_cnn", 2.0), ("standard_cnn", 1.0)]
