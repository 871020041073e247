"""The CPU training scripts' shared shell functions (scripts/train_lib.sh), run with a stand-in for `bench`."""

import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run_train_logged(tmp_path: Path, bench_exit: int) -> str:
    fake = tmp_path / "bench"
    fake.write_text(f"#!/bin/sh\necho 'error: a stand-in that exits {bench_exit}' >&2\nexit {bench_exit}\n")
    fake.chmod(0o755)
    script = f"source {REPO / 'scripts' / 'train_lib.sh'}; train_logged queue.log m1 --epochs 1"
    env = {"PATH": "/usr/bin:/bin", "BENCH": str(fake), "RIBENCH_ZOO": str(tmp_path / "zoo")}
    subprocess.run(["bash", "-c", script], cwd=tmp_path, env=env, check=True, timeout=60)
    return (tmp_path / "runs" / "logs" / "queue.log").read_text()


def test_train_logged_records_the_exit_status_of_the_training_run(tmp_path):
    log = run_train_logged(tmp_path, bench_exit=2).splitlines()
    assert log[0].endswith("m1: start")
    assert "m1: exit 2 error: a stand-in that exits 2" in log[1]


def test_train_logged_records_a_successful_run_as_exit_0(tmp_path):
    assert "m1: exit 0 " in run_train_logged(tmp_path, bench_exit=0)
