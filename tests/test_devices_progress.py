"""Devices (the runner moves each batch once; auto picks CUDA), per-unit progress bars and the final summary."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

import bench.devices as devices
from bench.cli import app
from bench.data.cifar import embedded_sample
from bench.exceptions import DeviceUnavailableError, UsageError
from bench.executors.base import ShardJob, run_batches
from bench.plugins.base import Context, Plugin
from bench.runner import RunOptions, run_suite
from bench.suites import load_suite
from bench.summary import render, summarize_rows

runner = CliRunner()
SUITE = """
name: dev-mini
dataset: cifar10
split: test
n: 12
batch_size: 4
plugins:
  - plugin: clean
  - plugin: fgsm
    params: {eps: 2/255}
  - plugin: pgd
    params: {eps: 2/255, alpha: 1/255, steps: 2}
"""


@pytest.fixture
def suite_file(tmp_path: Path) -> str:
    path = tmp_path / "dev-mini.yaml"
    path.write_text(SUITE)
    return str(path)


@dataclass
class WhereIsTheBatch(Plugin):
    """Records where run_batch finds each tensor of its batch."""

    name = "where_is_the_batch"

    def run_batch(self, model, batch, ctx):
        n = len(batch.index)
        return {
            "x": np.full(n, batch.x.device.type),
            "y": np.full(n, batch.y.device.type),
            "index": batch.index.numpy(),
            "index_device": np.full(n, batch.index.device.type),
        }


def test_the_runner_moves_each_batch_to_the_device_before_the_plugin_sees_it():
    data = embedded_sample()
    ctx = Context(seed=0, device="meta", precision="fp32", dataset=data)  # a device no batch starts on
    job = ShardJob("u", None, data, WhereIsTheBatch(), ctx, (0, 4), 4, 6)
    parts = pd.concat([part for _, part in run_batches(job)])
    assert set(parts["x"]) == {"meta"} and set(parts["y"]) == {"meta"}
    assert set(parts["index_device"]) == {"cpu"} and len(parts) == 6  # index stays on the CPU, for the dataset


def test_plugins_never_move_batches_themselves():
    root = Path(devices.__file__).parent
    offenders = []
    for path in [*root.glob("plugins/*.py"), *root.glob("interp/*.py")]:
        name = str(path.relative_to(root))
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(r"batch\.(x|y|mask|group)\.to\(", line):
                offenders.append(f"{name}:{number}: {line.strip()}")
    assert not offenders


def test_auto_picks_cuda_when_torch_sees_it_and_cuda_without_it_is_one_line(monkeypatch):
    monkeypatch.setattr(devices, "_surely_no_gpu", lambda: False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert devices.resolve_device("auto") == "cuda" and devices.resolve_device(None) == "cuda"
    assert devices.resolve_device("cuda:0") == "cuda:0"
    with pytest.raises(DeviceUnavailableError, match="--device cuda:1: torch sees 1 CUDA device"):
        devices.resolve_device("cuda:1")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert devices.resolve_device("auto") == "cpu"
    with pytest.raises(DeviceUnavailableError, match="no CUDA device"):
        devices.resolve_device("cuda")
    with pytest.raises(UsageError, match="--device gpu"):
        devices.resolve_device("gpu")


def test_ray_tasks_ask_for_a_share_of_a_gpu(monkeypatch):
    from bench.executors import ray as ray_executor

    asked = {}

    class FakeRay:
        def is_initialized(self):
            return True

        def cluster_resources(self):
            return self.resources

        def remote(self, function):
            class Remote:
                def options(self, **kwargs):
                    asked.update(kwargs)
                    return self

            return Remote()

    fake = FakeRay()
    monkeypatch.setattr(ray_executor, "_import_ray", lambda: fake)
    fake.resources = {"CPU": 16, "GPU": 2}
    ray_executor.RayExecutor(gpus_per_task=0.25)
    assert asked["num_gpus"] == 0.25 and asked["num_cpus"] == 1
    ray_executor.RayExecutor()
    assert asked["num_gpus"] == 0.0  # a CPU run asks for no GPU
    fake.resources = {"CPU": 16}
    with pytest.raises(DeviceUnavailableError, match="no GPUs"):  # rather than tasks that wait forever
        ray_executor.RayExecutor(gpus_per_task=1.0)


def test_one_progress_bar_per_unit_named_as_a_person_names_it(tiny_model, suite_file, tmp_path, capsys):
    run_suite("tiny_cnn", suite_file, RunOptions(out=str(tmp_path / "r"), progress=True))
    err = capsys.readouterr().err
    labels = {line.split(":")[0] for line in re.split(r"[\r\n]", err) if "img" in line}
    assert labels == {f"tiny_cnn · {spec.build().describe()}" for spec in load_suite(suite_file).plugins}
    assert {"tiny_cnn · Clean", "tiny_cnn · FGSM ε=2/255"} < labels
    assert any(label.startswith("tiny_cnn · PGD-2") and label.endswith("ε=2/255") for label in labels)
    assert err.count("12/12") >= 3  # each bar counts its own unit's images


def test_run_ends_with_a_compact_summary_in_every_format(tiny_model, suite_file, tmp_path):
    args = ["run", "--model", "tiny_cnn", "--suite", suite_file, "--out", str(tmp_path / "r"), "--no-progress"]
    table = runner.invoke(app, [*args, "--device", "cpu"])
    assert table.exit_code == 0, table.output
    lines = table.stdout.strip().splitlines()
    assert lines[0] == "dev-mini · cifar10 test[balanced-1000] · n=12 · seed 0 · fp32"
    assert lines[1].split() == ["model", "setting", "metric", "value", "95%", "CI"]  # no empty column
    assert "FGSM ε=2/255" in lines[3] and "0.0078" not in table.output and len(lines) == 5
    assert max(len(line) for line in lines) < 100
    records = json.loads(runner.invoke(app, [*args, "--format", "json"]).stdout)
    assert [r["setting"][:6] for r in records] == ["Clean", "FGSM ε", "PGD-2 "]
    assert all(r["setting"].endswith("ε=2/255") for r in records[1:])
    assert all(0 <= r["ci_low"] <= r["value"] <= r["ci_high"] <= 1 for r in records)
    markdown = runner.invoke(app, [*args, "--format", "md"]).stdout
    assert "| model | setting | metric | value | 95% CI |" in markdown
    csv = runner.invoke(app, [*args, "--format", "csv"]).stdout.splitlines()
    assert csv[0].startswith("suite,dataset,split,n,seed,precision,model,plugin,setting,metric") and len(csv) == 4
    bad = runner.invoke(app, [*args, "--format", "xml"])
    assert bad.exit_code == 2 and bad.output.strip() == "error: --format xml: use one of table, md, csv, json"


def test_summary_without_intervals_drops_the_column_and_keeps_raw_numbers(tiny_model, suite_file, tmp_path):
    rows = run_suite("tiny_cnn", suite_file, RunOptions(out=str(tmp_path / "r"), progress=False))
    records = summarize_rows(rows.drop(columns=["ci_low", "ci_high"], errors="ignore"))
    assert "95% CI" not in render(records, "table")
    assert records["value"].between(0, 1).all()
