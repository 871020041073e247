import pytest

from bench.registry import SUITES
from bench.suites import SuiteError, load_suite_file

GOOD = """name: s
dataset: cifar10
split: test
n: 10
plugins:
  - plugin: pgd
    params: {eps: 8/255, steps: 3}
"""


def _write(tmp_path, text):
    path = tmp_path / "suite.yaml"
    path.write_text(text)
    return path


def test_fractions_are_parsed_and_types_kept(tmp_path):
    suite = load_suite_file(_write(tmp_path, GOOD))
    params = suite.plugins[0].params
    assert params["eps"] == pytest.approx(8 / 255) and params["steps"] == 3


@pytest.mark.parametrize(
    "text,match",
    [
        (GOOD.replace("n: 10", "n: 10\ncolour: red"), r"suite.yaml:5: unknown key 'colour'"),
        (GOOD.replace("n: 10", "n: ten"), r"suite.yaml:4: 'n' must be int"),
        (GOOD.replace("steps: 3", "stepz: 3"), r"suite.yaml:7: plugin 'pgd' has no parameter 'stepz'"),
        (GOOD.replace("steps: 3", "steps: 3.5"), r"'steps' must be int"),
        (GOOD.replace("plugin: pgd", "plugin: pdg"), r"unknown plugin 'pdg'.*closest: pgd"),
        (GOOD.replace("n: 10", "n: 0"), r"n must be >= 1"),
    ],
)
def test_bad_suites_name_the_line(tmp_path, text, match):
    with pytest.raises(SuiteError, match=match):
        load_suite_file(_write(tmp_path, text))


def test_every_shipped_suite_loads():
    for name in SUITES.names():
        suite = SUITES.create(name)
        assert suite.plugins and suite.n >= 1
