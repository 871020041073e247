import numpy as np
import pytest
import torch

from bench.data.cifar import embedded_sample
from bench.plugins.base import Context
from bench.plugins.cascade import Cascade
from bench.plugins.pgd import PGD

EPS = 2 / 255
WEAK = {"steps": 1, "alpha": 0.25 / 255, "random_start": False}
STAGES = [{"plugin": "pgd", "params": WEAK}, {"plugin": "pgd", "params": {"steps": 4, "alpha": 0.5 / 255}}]


@pytest.fixture(scope="module")
def batch():
    return embedded_sample().batch(torch.arange(96))


def _ctx():
    return Context(seed=0, device="cpu", precision="fp32", dataset=embedded_sample())


def test_cascade_equals_the_per_image_worst_case_of_its_attacks(tiny_model, batch):
    cascade = Cascade(eps=EPS, stages=STAGES).run_batch(tiny_model, batch, _ctx())
    fgsm = PGD(eps=EPS, **WEAK).run_batch(tiny_model, batch, _ctx())
    pgd = PGD(eps=EPS, alpha=0.5 / 255, steps=4).run_batch(tiny_model, batch, _ctx())
    worst = fgsm["robust"] & pgd["robust"]
    assert np.array_equal(cascade["robust"], worst)
    assert fgsm["robust"].sum() > worst.sum()  # PGD broke images FGSM left: the second stage did something


def test_later_stages_attack_only_the_survivors(tiny_model, batch):
    plugin = Cascade(eps=EPS, stages=[{"plugin": "fgsm"}, STAGES[1]])
    examples = plugin.run_batch(tiny_model, batch, _ctx())
    metrics = dict(plugin.summarize(__import__("pandas").DataFrame(examples), _ctx()))
    correct = int((examples["clean_pred"] == examples["label"]).sum())
    first_survivors = int(((examples["broken_by"] != 0) & (examples["clean_pred"] == examples["label"])).sum())
    assert metrics["n_attacked_fgsm"] == correct
    assert metrics["n_attacked_pgd4"] == first_survivors < correct
    assert metrics["robust_after_pgd4"] == pytest.approx(metrics["robust_accuracy"])
    assert metrics["robust_after_fgsm"] >= metrics["robust_after_pgd4"]


def test_duplicate_or_non_attack_stages_are_refused():
    with pytest.raises(ValueError, match="distinct"):
        Cascade(stages=[{"plugin": "fgsm"}, {"plugin": "fgsm"}])
    with pytest.raises(ValueError, match="no 'plugin'"):
        Cascade(stages=[{"params": {"steps": 3}}])
    with pytest.raises(ValueError, match="not an attack"):
        Cascade(stages=[{"plugin": "clean"}])


def test_every_stage_has_a_per_image_interval(tiny_model, batch):
    import pandas as pd

    from bench.intervals import unit_intervals

    plugin = Cascade(eps=EPS, stages=STAGES)
    examples = pd.DataFrame(plugin.run_batch(tiny_model, batch, _ctx()))
    metrics = plugin.summarize(examples, _ctx())
    intervals = unit_intervals(plugin, examples, metrics)
    for name in ("robust_accuracy", "robust_after_pgd1", "robust_after_pgd4"):
        value = dict(metrics)[name]
        assert intervals[name].method == "wilson" and intervals[name].low <= value <= intervals[name].high
