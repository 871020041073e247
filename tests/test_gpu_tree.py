"""scripts/gpu_tree.sh: a slim local branch for a device call, and back to main with every file."""

import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "gpu_tree.sh"


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    root = tmp_path / "repo"
    files = {
        "bench/code.py": b"x = 1\n",
        "scripts/gpu_tree.sh": SCRIPT.read_bytes(),
        "model_zoo/m/card.yaml": b"name: m\n",
        "model_zoo/m/weights.safetensors": b"\0" * 200_000,
        "model_zoo/p/weights.safetensors.part0": b"\0" * 100_000,
        "results/s/m/rows.parquet": b"\0" * 50_000,
        "leaderboards/s.html": b"<html></html>",
        "benchmarks/results.parquet": b"\0" * 10_000,
        "benchmarks/run.py": b"y = 2\n",
    }
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "zoo")
    return root


def run_script(repo: Path, verb: str) -> subprocess.CompletedProcess:
    env = {
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t",
        "PATH": "/usr/bin:/bin",
    }
    return subprocess.run(["bash", "scripts/gpu_tree.sh", verb], cwd=repo, capture_output=True, text=True, env=env)


def test_enter_keeps_code_and_cards_and_drops_weights_results_and_leaderboards(repo):
    assert run_script(repo, "enter").returncode == 0
    assert git(repo, "branch", "--show-current").strip() == "gpu-slim"
    present = {p.relative_to(repo).as_posix() for p in repo.rglob("*") if p.is_file() and ".git" not in p.parts}
    assert present == {"bench/code.py", "scripts/gpu_tree.sh", "model_zoo/m/card.yaml", "benchmarks/run.py"}
    assert git(repo, "status", "--porcelain") == ""
    assert int(run_script(repo, "size").stdout.split()[0]) < 10  # KiB: the 360 kB of weights and tables are gone


def test_leave_restores_every_file_and_main_is_unchanged(repo):
    main_before = git(repo, "rev-parse", "main")
    run_script(repo, "enter")
    assert run_script(repo, "leave").returncode == 0
    assert git(repo, "branch", "--show-current").strip() == "main"
    assert git(repo, "rev-parse", "main") == main_before
    assert (repo / "model_zoo/m/weights.safetensors").stat().st_size == 200_000
    assert (repo / "results/s/m/rows.parquet").exists() and (repo / "benchmarks/results.parquet").exists()


def test_enter_refuses_uncommitted_changes(repo):
    (repo / "bench/code.py").write_text("x = 2\n")
    result = run_script(repo, "enter")
    assert result.returncode == 2 and "uncommitted changes" in result.stderr
    assert git(repo, "branch", "--show-current").strip() == "main"
