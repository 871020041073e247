import json
import subprocess
import sys

import pytest
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


def _commands(group, path=()):
    """Every leaf command of the CLI with its argv prefix, e.g. (("zoo", "submit"), <command>)."""
    for name, command in getattr(group, "commands", {}).items():
        if getattr(command, "commands", None):
            yield from _commands(command, (*path, name))
        else:
            yield (*path, name), command


def test_every_command_documents_every_option():
    from typer.main import get_command

    commands = dict(_commands(get_command(app)))
    assert {("run",), ("list",), ("zoo", "fetch"), ("reproduce",)} <= set(commands)
    for path, command in commands.items():
        shown = runner.invoke(app, [*path, "--help"], terminal_width=400)
        assert shown.exit_code == 0, shown.output
        for param in command.params:
            if param.name == "help":
                continue
            assert any(opt in shown.output for opt in param.opts), f"bench {' '.join(path)}: {param.opts} not shown"
            if param.param_type_name == "option":
                assert (param.help or "").strip(), f"bench {' '.join(path)} {param.opts[0]} has no help text"


def test_run_with_no_model_or_suite_is_one_line():
    line = _one_line_error(runner.invoke(app, ["run"]))
    assert "--model NAME --suite NAME" in line


def test_only_naming_a_plugin_the_suite_lacks_is_one_line():
    line = _one_line_error(
        runner.invoke(
            app, ["run", "--model", "standard_cnn", "--suite", "cifar10-adv-quick", "--only", "clean,autoattack"]
        )
    )
    assert line == "error: --only autoattack: suite cifar10-adv-quick has plugins clean, fgsm, pgd"


def test_model_trained_on_another_dataset_is_explained():
    line = _one_line_error(runner.invoke(app, ["run", "--model", "topgap_cnn_pets3", "--suite", "cifar10-adv"]))
    assert line == (
        "error: topgap_cnn_pets3 was trained on pets3, 128 px, 3 classes; "
        "cifar10-adv evaluates cifar10, 32 px, 10 classes"
    )


def test_cuda_without_cuda_is_one_line():
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    line = _one_line_error(
        runner.invoke(app, ["run", "--model", "standard_cnn", "--suite", "cifar10-adv-quick", "--device", "cuda"])
    )
    assert "--device cuda" in line and "no CUDA device" in line


@pytest.mark.parametrize(
    "args,expected",
    [
        (["run", "--model", "standard_cnn", "--suite", "cifar10-adv", "--limit", "many"], "'--limit'"),
        (["run", "--model", "standard_cnn", "--suite", "cifar10-adv", "--executor", "rey"], "unknown executor 'rey'"),
        (["run", "--model", "standard_cnn", "--suite", "cifar10-adv", "--device", "gpu"], "--device gpu"),
        (["list", "kinds"], "unknown kind 'kinds'"),
        (["frobnicate"], "No such command 'frobnicate'"),
        (["zoo", "show", "standard_cn"], "unknown model 'standard_cn'"),
    ],
)
def test_user_errors_are_one_line(args, expected):
    assert expected in _one_line_error(runner.invoke(app, args))


def test_answers_without_importing_torch():
    """--help, list, zoo list and every user error answer before torch is imported (what makes them fast)."""
    cases = [
        ["--help"],
        ["list", "plugins"],
        ["list", "models"],
        ["list", "datasets"],
        ["list", "archs"],
        ["zoo", "list"],
        ["run"],
        ["run", "--model", "topgap_cnn_pets3", "--suite", "cifar10-adv"],
        ["run", "--model", "standard_cnn", "--suite", "cifar10-adv", "--only", "autoattack"],
        ["run", "--model", "standard_cn", "--suite", "cifar10-adv"],
    ]
    code = (
        "import json, sys\n"
        "from typer.testing import CliRunner\n"
        "from bench.cli import app\n"
        "codes = [CliRunner().invoke(app, args).exit_code for args in json.loads(sys.argv[1])]\n"
        "print(json.dumps({'codes': codes, 'torch': 'torch' in sys.modules}))\n"
    )
    done = subprocess.run([sys.executable, "-c", code, json.dumps(cases)], capture_output=True, text=True, check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {"codes": [0, 0, 0, 0, 0, 0, 2, 2, 2, 2], "torch": False}
