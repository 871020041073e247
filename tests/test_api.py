"""The public API: bench.evaluate / pivot / load_model / list_models, and the README's example as written."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
from torch import nn

import bench
from bench.exceptions import ModelSuiteMismatch, UsageError
from bench.models.fingerprint import state_dict_sha256
from bench.results import ROW_COLUMNS

README = Path(__file__).resolve().parents[1] / "README.md"
SUITE = """
name: api-mini
dataset: cifar10
split: test
n: 24
batch_size: 8
plugins:
  - plugin: clean
  - plugin: fgsm
    params: {eps: 2/255}
"""


class BNNet(nn.Module):
    """Batch norm: in train mode a forward pass changes its running statistics (and its outputs)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.fc = nn.Linear(8, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.bn(self.conv(x)).relu().mean((2, 3)))


@pytest.fixture
def suite_file(tmp_path: Path) -> str:
    path = tmp_path / "api-mini.yaml"
    path.write_text(SUITE)
    return str(path)


def _values(rows: pd.DataFrame) -> pd.Series:
    return rows.set_index(["plugin", "metric"])["value"].sort_index()


def test_evaluate_a_module_in_train_mode_measures_it_in_eval_mode_and_restores_it(
    tiny_model, suite_file, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RIBENCH_RESULTS", raising=False)
    torch.manual_seed(0)
    net = BNNet()
    net.load_state_dict({**net.state_dict(), "bn.running_mean": torch.rand(8), "bn.running_var": torch.rand(8) + 0.5})
    before = {k: v.clone() for k, v in net.state_dict().items()}
    net.train()
    rows = bench.evaluate(net, suite_file, device="cpu", progress=False)
    assert net.training  # its mode is given back
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())  # no batch-norm update happened
    reference = bench.evaluate(net.eval(), suite_file, device="cpu", progress=False)
    pd.testing.assert_series_equal(_values(rows), _values(reference))
    assert list(rows.columns) == ROW_COLUMNS
    assert sorted(p.name for p in tmp_path.iterdir()) == ["api-mini.yaml"]  # nothing written without out=


def test_an_unregistered_module_is_named_by_its_weights_and_its_command_says_what_it_needs(suite_file):
    torch.manual_seed(1)
    net = BNNet().eval()
    sha = state_dict_sha256(net)
    rows = bench.evaluate(net, suite_file, n=8, progress=False)
    assert set(rows["model"]) == {f"custom:BNNet:{sha[:12]}"}
    assert set(rows["model_sha256"]) == {sha}
    command = rows["command"].iloc[0]
    assert "--model custom:" not in command and f"BNNet whose state_dict has sha256 {sha}" in command
    assert (rows["n"] == 8).all()
    assert f"custom:BNNet:{sha[:12]}" not in bench.list_models()  # registered for the run only


def test_evaluate_by_name_with_out_writes_and_resumes(tiny_model, suite_file, tmp_path):
    out = tmp_path / "results"
    first = bench.evaluate("tiny_cnn", suite_file, out=out, progress=False)
    assert (out / "api-mini" / "tiny_cnn.parquet").exists()
    again = bench.evaluate("tiny_cnn", suite_file, out=out, progress=False)
    pd.testing.assert_series_equal(_values(first), _values(again))
    assert first["command"].iloc[0].startswith("bench run --model tiny_cnn --suite")


def test_pivot_has_one_line_per_setting_and_a_column_per_metric(tiny_model, suite_file):
    table = bench.pivot(bench.evaluate("tiny_cnn", suite_file, n=8, progress=False))
    assert len(table) == 2 and {"accuracy", "robust_accuracy"} <= set(table.columns)


def test_load_model_and_list_models():
    assert {"standard_cnn", "topgap_cnn"} <= set(bench.list_models())
    assert bench.list_models("topgap_cnn_k*_ft2") == ["topgap_cnn_k16_ft2", "topgap_cnn_k256_ft2", "topgap_cnn_k64_ft2"]
    model = bench.load_model("standard_cnn")
    assert not model.training
    with torch.no_grad():
        assert model(torch.rand(2, 3, 32, 32)).shape == (2, 10)


def test_bad_input_raises_one_library_error():
    with pytest.raises(ModelSuiteMismatch, match="trained on pets3, 128 px, 3 classes"):
        bench.evaluate("standard_cnn_pets3", "cifar10-adv-quick")
    with pytest.raises(UsageError, match="n must be >= 1"):
        bench.evaluate("standard_cnn", "cifar10-adv-quick", n=0)
    with pytest.raises(UsageError, match="not int"):
        bench.evaluate(3, "cifar10-adv-quick")


def test_import_bench_stays_cheap():
    code = "import sys, bench; print('torch' in sys.modules, 'pandas' in sys.modules, bench.__version__)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False", "False", bench.__version__]


def readme_example() -> str:
    """The code block of the README's "Use it from Python" section."""
    section = README.read_text().split("## Use it from Python", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_readme_example_runs_as_written(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    code = readme_example()
    assert code.count("n=100") == 2
    exec(compile(code.replace("n=100", "n=10"), str(README), "exec"), {"__name__": "readme"})  # only n shrunk
    assert not any(tmp_path.iterdir())
