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
