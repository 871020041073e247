"""Executors: sharding never changes a number; Ray runs match the local executor row for row; kills lose nothing."""

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.executors import EXECUTORS
from bench.plugins.base import Plugin, register_plugin
from bench.plugins.clean import Clean
from bench.results import ResultsStore
from bench.runner import RunOptions, UnitFinisher, run_grid

SUITE = """
name: {name}
dataset: cifar10
split: test
n: {n}
batch_size: 8
plugins:
{plugins}
"""
ATTACKS = """  - plugin: clean
  - plugin: pgd
    params: {eps: 4/255, alpha: 1/255, steps: 3}
  - plugin: square
    params: {eps: 8/255, n_queries: 20}"""

VALUE_KEYS = ["model", "suite", "plugin", "params_hash", "unit", "metric", "n", "seed", "value"]


@register_plugin
@dataclass
class CrashOnce(Plugin):
    """Clean accuracy, but the process running a batch dies the first time it meets that batch (test only)."""

    name = "test_crash_once"
    marker_dir: str = ""

    def run_batch(self, model, batch, ctx):
        marker = Path(self.marker_dir) / f"batch-{int(batch.index[0])}"
        if not marker.exists():
            marker.touch()
            os._exit(1)  # a worker killed mid-shard, nothing returned
        return Clean().run_batch(model, batch, ctx)

    def summarize(self, examples, ctx):
        return Clean().summarize(examples, ctx)


def _suite(tmp_path: Path, name: str, plugins: str, n: int = 48) -> str:
    path = tmp_path / f"{name}.yaml"
    path.write_text(SUITE.format(name=name, plugins=plugins, n=n))
    return str(path)


def _opts(out: Path) -> RunOptions:
    return RunOptions(out=str(out), progress=False)


def _values(tables: list[pd.DataFrame]) -> pd.DataFrame:
    rows = pd.concat(tables, ignore_index=True)[VALUE_KEYS]
    return rows.sort_values(["unit", "metric"]).reset_index(drop=True)


def _examples(out: Path) -> dict[str, pd.DataFrame]:
    return {p.name: pd.read_parquet(p) for p in sorted(out.rglob("*.examples.parquet"))}


def _assert_same_examples(a: Path, b: Path) -> None:
    left, right = _examples(a), _examples(b)
    assert left.keys() == right.keys() and left
    for name in left:
        pd.testing.assert_frame_equal(left[name], right[name])


def test_shards_do_not_change_any_number(tiny_model, tmp_path):
    suite = _suite(tmp_path, "grid", ATTACKS)
    whole = run_grid(["tiny_cnn"], [suite], _opts(tmp_path / "whole"))
    sharded = run_grid(["tiny_cnn"], [suite], _opts(tmp_path / "sharded"), shard_size=16)
    pd.testing.assert_frame_equal(_values(whole), _values(sharded))
    _assert_same_examples(tmp_path / "whole", tmp_path / "sharded")


def test_unknown_executor_lists_the_known_ones():
    with pytest.raises(KeyError, match="closest: ray"):
        EXECUTORS.entry("rey")


def test_killed_driver_resumes_only_missing_batches(tiny_model, tmp_path, monkeypatch):
    suite = _suite(tmp_path, "grid", ATTACKS)
    reference = run_grid(["tiny_cnn"], [suite], _opts(tmp_path / "reference"))
    seen = {"n": 0}
    original = UnitFinisher.on_batch

    def dying(self, job, start, part):
        seen["n"] += 1
        if seen["n"] == 8:
            raise KeyboardInterrupt("simulated kill")
        original(self, job, start, part)

    monkeypatch.setattr(UnitFinisher, "on_batch", dying)
    with pytest.raises(KeyboardInterrupt):
        run_grid(["tiny_cnn"], [suite], _opts(tmp_path / "out"), shard_size=16)
    seen["n"] = -100
    resumed = run_grid(["tiny_cnn"], [suite], _opts(tmp_path / "out"), shard_size=16)
    assert seen["n"] == -100 + 3 * 6 - 7  # 18 batches in all, 7 were saved before the kill
    pd.testing.assert_frame_equal(_values(reference), _values(resumed))
    assert not pd.concat(resumed).duplicated(["unit", "metric"]).any()


@pytest.fixture(scope="module")
def ray_executor():
    ray = pytest.importorskip("ray", reason="Ray is an optional extra: pip install 'ribench[ray]'")
    import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import this test module
    executor = EXECUTORS.create("ray", num_cpus=2)
    yield executor
    executor.close()
    assert not ray.is_initialized()


def test_ray_grid_matches_local_row_for_row(tiny_model, tiny_topgap_model, ray_executor, tmp_path):
    suites = [_suite(tmp_path, "grid_a", ATTACKS), _suite(tmp_path, "grid_b", "  - plugin: clean")]
    models = ["tiny_cnn", "tiny_topgap"]
    local = run_grid(models, suites, _opts(tmp_path / "local"))
    distributed = run_grid(models, suites, _opts(tmp_path / "ray"), ray_executor, shard_size=16)
    assert len(distributed) == 4 and all(len(t) for t in distributed)
    pd.testing.assert_frame_equal(_values(local), _values(distributed))
    _assert_same_examples(tmp_path / "local", tmp_path / "ray")
    assert not (tmp_path / "ray" / ".work").exists() or not any((tmp_path / "ray" / ".work").rglob("*.parquet"))


def test_ray_worker_killed_mid_shard_is_retried_without_loss_or_duplicates(tiny_model, ray_executor, tmp_path):
    markers = tmp_path / "markers"
    markers.mkdir()
    plugins = f"  - plugin: test_crash_once\n    params: {{marker_dir: {markers}}}"
    suite = _suite(tmp_path, "crashy", plugins, n=16)
    tables = run_grid(["tiny_cnn"], [suite], _opts(tmp_path / "ray"), ray_executor, shard_size=16)
    assert len(list(markers.iterdir())) == 2  # each batch of the shard killed its worker once, and was run again
    clean_suite = _suite(tmp_path, "crashy", "  - plugin: clean", n=16)
    clean = run_grid(["tiny_cnn"], [clean_suite], _opts(tmp_path / "local"))
    got, want = tables[0], clean[0]
    assert len(got) == len(want) and not got.duplicated(["unit", "metric"]).any()
    np.testing.assert_allclose(np.sort(got["value"].to_numpy()), np.sort(want["value"].to_numpy()))
    store = ResultsStore(tmp_path / "ray")
    assert len(store.read("crashy", "tiny_cnn")) == len(got)
