from typer.testing import CliRunner

from bench.cli import app

runner = CliRunner()


def _one_line_error(result) -> str:
    lines = [line for line in result.output.strip().splitlines() if line.strip()]
    assert result.exit_code == 2, result.output
    assert len(lines) == 1, result.output
    return lines[0]


def test_unknown_model_lists_close_names(tiny_model):
    line = _one_line_error(runner.invoke(app, ["run", "--model", "tiny_cn", "--suite", "cifar10-adv-quick"]))
    assert "unknown model 'tiny_cn'" in line and "tiny_cnn" in line


def test_unknown_suite_and_bad_limit(tiny_model):
    line = _one_line_error(runner.invoke(app, ["run", "--model", "tiny_cnn", "--suite", "cifar10-ad"]))
    assert "unknown suite" in line and "cifar10-adv" in line
    line = _one_line_error(
        runner.invoke(app, ["run", "--model", "tiny_cnn", "--suite", "cifar10-adv", "--limit", "-3"])
    )
    assert "--limit must be >= 1" in line


def test_missing_data_root_says_where_to_put_data(tiny_model, tmp_path):
    suite = tmp_path / "s.yaml"
    suite.write_text("dataset: cifar10\nsplit: train\nn: 5\nplugins:\n  - plugin: clean\n")
    line = _one_line_error(
        runner.invoke(app, ["run", "--model", "tiny_cnn", "--suite", str(suite), "--data-root", str(tmp_path)])
    )
    assert "cifar10_train.npz" in line


def test_bad_suite_yaml_names_the_line(tiny_model, tmp_path):
    suite = tmp_path / "s.yaml"
    suite.write_text("dataset: cifar10\nsplit: test\nn: 5\nplugins:\n  - plugin: clean\n    parms: {}\n")
    line = _one_line_error(runner.invoke(app, ["run", "--model", "tiny_cnn", "--suite", str(suite)]))
    assert "s.yaml:6" in line and "parms" in line


def test_run_and_results_pivot(tiny_model, tmp_path):
    out = tmp_path / "results"
    args = [
        "run",
        "--model",
        "tiny_cnn",
        "--suite",
        "cifar10-adv-quick",
        "--limit",
        "20",
        "--out",
        str(out),
        "--no-progress",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    shown = runner.invoke(app, ["results", "--out", str(out), "--model", "tiny_cnn"])
    assert shown.exit_code == 0 and "robust_accuracy" in shown.output and "pgd" in shown.output


def test_every_command_documents_every_option():
    for command in (["run"], ["train"], ["results"], ["list"], ["zoo", "submit"], ["zoo", "verify"]):
        result = runner.invoke(app, [*command, "--help"])
        assert result.exit_code == 0
        assert "--help" in result.output
