"""Concurrent writers into one results folder lose nothing, and a run killed mid-write (kill -9) damages nothing.

The writers are forked processes (real processes with their own file locks, without the seconds a fresh
interpreter needs to import torch); the `bench run` ones call the command line exactly as the console script does.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

import bench.results
from bench.results import ROW_COLUMNS, ResultsStore
from bench.runner import RunOptions, UnitFinisher, run_suite

FORK = multiprocessing.get_context("fork")
SUITE = """
name: mini
dataset: cifar10
split: test
n: 24
batch_size: 4
plugins:
  - plugin: clean
  - plugin: fgsm
    params: {eps: 2/255}
  - plugin: pgd
    params: {eps: 2/255, alpha: 1/255, steps: 2}
"""
BATCHES_PER_RUN = 3 * 6  # 3 plugins x 24 images / 4 per batch
VALUE_COLUMNS = ["unit", "plugin", "params_hash", "metric", "value"]


@pytest.fixture(scope="module")
def suite_file(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("suite") / "mini.yaml"
    path.write_text(SUITE)
    return str(path)


@pytest.fixture(scope="module")
def reference(tiny_model, suite_file, tmp_path_factory) -> pd.DataFrame:
    """The rows of one run on its own."""
    out = tmp_path_factory.mktemp("reference")
    return run_suite("tiny_cnn", suite_file, RunOptions(out=str(out), progress=False))


def _values(table: pd.DataFrame) -> pd.DataFrame:
    return table[VALUE_COLUMNS].sort_values(["unit", "metric"]).reset_index(drop=True)


def _start_together(targets: list[tuple], timeout: float = 120) -> list[int]:
    """Run each (function, *args) in a forked process, released at the same instant; their exit codes."""
    go = FORK.Event()
    processes = [FORK.Process(target=_after, args=(go, *target)) for target in targets]
    for process in processes:
        process.start()
    go.set()
    for process in processes:
        process.join(timeout)
    return [process.exitcode for process in processes]


def _after(go, function, *args) -> None:
    go.wait()
    function(*args)


def _append(root: Path, writer: str, count: int) -> None:
    store = ResultsStore(root)
    for i in range(count):
        row = {**dict.fromkeys(ROW_COLUMNS, "x"), "unit": f"{writer}-{i}", "metric": "accuracy", "value": float(i)}
        store.append_rows("suite", "model", [row])


def test_two_processes_appending_50_rows_each_keep_all_100(tmp_path):
    for attempt in range(3):
        root = tmp_path / f"attempt-{attempt}"
        assert _start_together([(_append, root, "a", 50), (_append, root, "b", 50)]) == [0, 0]
        table = ResultsStore(root).read("suite", "model")
        assert len(table) == 100 and table["unit"].nunique() == 100, f"attempt {attempt}"
        assert not list(root.rglob("*.tmp"))


def _bench(log: Path, *args: str) -> None:
    """`bench ARGS` in this (forked) process, output to ``log``; exits with the command's exit code."""
    from bench.cli import app

    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    app(list(args), prog_name="bench")


@pytest.fixture
def batch_counter(monkeypatch):
    """Counts every batch any (forked) process computes."""
    computed = FORK.Value("i", 0)
    original = UnitFinisher.on_batch

    def counting(self, job, start, part):
        with computed.get_lock():
            computed.value += 1
        original(self, job, start, part)

    monkeypatch.setattr(UnitFinisher, "on_batch", counting)
    return computed


def _run_args(suite_file: str, out: Path, *extra: str) -> list[str]:
    return ["run", "--model", "tiny_cnn", "--suite", suite_file, "--out", str(out), "--no-progress", *extra]


def _logs(tmp_path: Path) -> str:
    return "\n".join(f"--- {log.name}\n{log.read_text()}" for log in sorted(tmp_path.glob("*.log")))


def test_identical_runs_started_together_share_the_units_and_write_one_run(
    reference, suite_file, tmp_path, batch_counter
):
    out = tmp_path / "out"
    runs = [(_bench, tmp_path / f"run-{i}.log", *_run_args(suite_file, out)) for i in range(2)]
    assert _start_together(runs) == [0, 0], _logs(tmp_path)
    table = ResultsStore(out).read("mini", "tiny_cnn")
    assert not table.duplicated(["unit", "metric"]).any()
    pd.testing.assert_frame_equal(_values(table), _values(reference))
    assert batch_counter.value == BATCHES_PER_RUN  # no batch was computed twice
    assert not (out / ".work" / "mini").exists() or not list((out / ".work" / "mini").rglob("*.parquet"))


def test_runs_with_disjoint_plugins_started_together_keep_the_union(reference, suite_file, tmp_path, batch_counter):
    out = tmp_path / "out"
    runs = [
        (_bench, tmp_path / "first.log", *_run_args(suite_file, out, "--only", "clean,pgd")),
        (_bench, tmp_path / "second.log", *_run_args(suite_file, out, "--only", "fgsm")),
    ]
    assert _start_together(runs) == [0, 0], _logs(tmp_path)
    table = ResultsStore(out).read("mini", "tiny_cnn")
    pd.testing.assert_frame_equal(_values(table), _values(reference))
    assert batch_counter.value == BATCHES_PER_RUN


def _run_stalling_before_the_table_rename(suite_file: str, out: Path, stalled) -> None:
    """A run that, once the new table is written and fsync'ed, signals and sleeps before renaming it into place."""
    publish = bench.results._replace_into_place
    table = ResultsStore(out).table_path("mini", "tiny_cnn")

    def stall(tmp: Path, path: Path) -> None:
        if path == table:
            stalled.set()
            time.sleep(120)
        publish(tmp, path)

    bench.results._replace_into_place = stall
    run_suite("tiny_cnn", suite_file, RunOptions(out=str(out), progress=False))
    sys.exit(3)  # never reached: the parent kills this process while it sleeps


def test_run_killed_between_table_write_and_rename_keeps_the_old_table_and_resumes(
    reference, suite_file, tmp_path, batch_counter
):
    out = tmp_path / "out"
    store = ResultsStore(out)
    before = run_suite("tiny_cnn", suite_file, RunOptions(out=str(out), progress=False, only=("clean",)))
    table_path = store.table_path("mini", "tiny_cnn")
    old_bytes = table_path.read_bytes()
    stalled = FORK.Event()
    child = FORK.Process(target=_run_stalling_before_the_table_rename, args=(suite_file, out, stalled))
    child.start()
    assert stalled.wait(60), "the child never reached the rename"
    os.kill(child.pid, signal.SIGKILL)
    child.join(10)
    assert child.exitcode == -signal.SIGKILL
    assert table_path.read_bytes() == old_bytes  # the old table, intact
    assert len(list(table_path.parent.glob(f".{table_path.name}.*.tmp"))) == 1  # the new one was written, not renamed
    batch_counter.value = 0
    resumed = run_suite("tiny_cnn", suite_file, RunOptions(out=str(out), progress=False))  # the dead claim is free
    assert batch_counter.value == 6  # pgd's batches; fgsm's rows come back from its per-example file
    assert len(before) < len(resumed)
    assert not resumed.duplicated(["unit", "metric"]).any()
    pd.testing.assert_frame_equal(_values(resumed), _values(reference))
    assert not list(table_path.parent.glob("*.tmp")) and not list(table_path.parent.glob(".*.tmp"))
