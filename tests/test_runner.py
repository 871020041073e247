from pathlib import Path

import pandas as pd
import pytest
import torch

from bench.plugins.pgd import PGD
from bench.registry import MODELS
from bench.results import ROW_COLUMNS, ResultsStore
from bench.runner import BadModelError, RunOptions, run_suite

SUITE = """
name: mini
dataset: cifar10
split: test
n: 40
batch_size: 10
plugins:
  - plugin: clean
  - plugin: pgd
    params: {eps: 2/255, alpha: 1/255, steps: 2}
"""


@pytest.fixture
def suite_file(tmp_path: Path) -> str:
    path = tmp_path / "mini.yaml"
    path.write_text(SUITE)
    return str(path)


def _opts(results_dir, **kw) -> RunOptions:
    return RunOptions(out=str(results_dir), progress=False, **kw)


def _values(table: pd.DataFrame) -> pd.Series:
    return table.set_index(["plugin", "params_hash", "metric"])["value"].sort_index()


def test_run_writes_tidy_rows_with_provenance(tiny_model, suite_file, results_dir):
    table = run_suite("tiny_cnn", suite_file, _opts(results_dir))
    assert list(table.columns) == ROW_COLUMNS
    assert set(table["plugin"]) == {"clean", "pgd"}
    assert {"robust_accuracy", "n_attacked", "clean_accuracy"} <= set(table["metric"])
    assert (table["n"] == 40).all() and (table["split"] == "test[balanced-1000]").all()
    for column in ("git_commit", "torch_version", "package_version", "timestamp", "command", "model_sha256"):
        assert table[column].astype(str).str.len().min() > 0
    assert table["command"].iloc[0].startswith("bench run --model tiny_cnn")
    clean = table[(table.plugin == "clean") & (table.metric == "accuracy")]["value"].item()
    pgd = table[table.plugin == "pgd"].set_index("metric")["value"]
    assert pgd["clean_accuracy"] == clean  # the attack's own clean pass agrees with the clean plugin
    assert pgd["robust_accuracy"] < clean  # the attack fools some images (robust <= clean holds by construction)
    examples = ResultsStore(results_dir).read_examples("mini", "tiny_cnn", "pgd")
    assert len(next(iter(examples.values()))) == 40


def test_rerun_is_a_no_op_and_same_seed_gives_identical_numbers(tiny_model, suite_file, results_dir, tmp_path):
    first = run_suite("tiny_cnn", suite_file, _opts(results_dir))
    again = run_suite("tiny_cnn", suite_file, _opts(results_dir))
    assert len(ResultsStore(results_dir).read("mini")) == len(first)
    pd.testing.assert_series_equal(_values(first), _values(again))
    fresh = run_suite("tiny_cnn", suite_file, _opts(tmp_path / "other"))
    pd.testing.assert_series_equal(_values(first), _values(fresh))


def test_killed_run_resumes_without_loss_or_duplicates(tiny_model, suite_file, results_dir, tmp_path, monkeypatch):
    reference = run_suite("tiny_cnn", suite_file, _opts(tmp_path / "reference"))
    calls = {"n": 0}
    original = PGD.run_batch

    def dying(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt("simulated kill")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(PGD, "run_batch", dying)
    with pytest.raises(KeyboardInterrupt):
        run_suite("tiny_cnn", suite_file, _opts(results_dir))
    partial = ResultsStore(results_dir).read("mini")
    assert set(partial["plugin"]) == {"clean"}  # clean finished, pgd did not
    calls["n"] = -100  # no more deaths
    resumed = run_suite("tiny_cnn", suite_file, _opts(results_dir))
    assert calls["n"] == -100 + 2  # only the 2 missing batches of 4 ran again
    pd.testing.assert_series_equal(_values(reference), _values(resumed))
    assert not resumed.duplicated(["unit", "metric"]).any()


@pytest.mark.parametrize(
    "forward,message",
    [(lambda x: torch.full((len(x), 10), float("nan")), "NaN"), (lambda x: torch.zeros(len(x), 7), "shape")],
)
def test_bad_models_fail_before_anything_is_written(suite_file, results_dir, forward, message):
    class Bad(torch.nn.Module):
        def forward(self, x):
            return forward(x)

    MODELS.add("bad_model", lambda device="cpu": Bad(), source="test")
    with pytest.raises(BadModelError, match=message):
        run_suite("bad_model", suite_file, _opts(results_dir))
    assert not Path(results_dir).exists() or not any(Path(results_dir).rglob("*.parquet"))


def test_autoattack_rows_on_a_few_images(tiny_model, results_dir):
    table = run_suite("tiny_cnn", "cifar10-autoattack", _opts(results_dir, limit=8))
    aa = table[table.plugin == "autoattack"].set_index("metric")["value"]
    clean = table[(table.plugin == "clean") & (table.metric == "accuracy")]["value"].item()
    assert aa["clean_accuracy"] == clean and aa["robust_accuracy"] < clean
    assert aa["max_distance"] <= 8 / 255 + 1e-6
    assert '"version":"standard"' in table[table.plugin == "autoattack"]["params"].iloc[0]


def test_autoattack_runs_on_channels_last_batches_with_survivors(tiny_model):
    """pyautoattack's zero-gradient check .view()s gradients: channels_last batches must not reach it as they are."""
    from bench.data.cifar import embedded_sample
    from bench.plugins import Context
    from bench.plugins.autoattack import AutoAttackPlugin

    data = embedded_sample()
    batch = data.batch(torch.arange(4))
    assert not batch.x.is_contiguous()  # the dataset hands out channels_last batches
    ctx = Context(seed=0, device="cpu", precision="fp32", dataset=data)
    columns = AutoAttackPlugin(eps=0.05 / 255).run_batch(tiny_model, batch, ctx)
    assert columns["robust"].any()  # some images survive APGD-CE, so the later attacks ran too
