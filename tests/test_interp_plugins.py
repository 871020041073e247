"""The interpretability plugins end to end through bench.runner.run_suite on tiny models and a masked fixture."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from bench.data import ImageDataset
from bench.data.cifar import embedded_sample
from bench.plugins.base import Context
from bench.registry import DATASETS, PLUGINS
from bench.runner import RunOptions, run_suite

N = 12


def masked_fixture(split: str = "test", root: Path | None = None) -> ImageDataset:
    """12 embedded CIFAR-10 images with a centre-square 'object' mask; image 0 has an empty mask."""
    sample = embedded_sample()
    images = sample.images[:N].numpy()
    masks = np.zeros((N, 32, 32), dtype=np.float32)
    masks[1:, 8:24, 8:24] = 1
    return ImageDataset("interp_fixture", split, images, sample.labels[:N].numpy(), sample.classes, masks=masks)


def unmasked_fixture(split: str = "test", root: Path | None = None) -> ImageDataset:
    sample = embedded_sample()
    return ImageDataset("interp_nomask", split, sample.images[:N].numpy(), sample.labels[:N].numpy(), sample.classes)


DATASETS.add("interp_fixture", masked_fixture, num_classes=10, has_masks=True)
DATASETS.add("interp_nomask", unmasked_fixture, num_classes=10)


def write_suite(tmp_path: Path, dataset: str, plugins: str) -> str:
    path = tmp_path / "interp-tiny.yaml"
    path.write_text(f"name: interp-tiny\ndataset: {dataset}\nsplit: test\nn: {N}\nbatch_size: 5\nplugins:\n{plugins}")
    return str(path)


def run(model: str, suite: str, results_dir: Path) -> pd.DataFrame:
    return run_suite(model, suite, RunOptions(out=str(results_dir), progress=False))


def metric(rows: pd.DataFrame, plugin: str, name: str, params: str = "") -> float:
    hit = rows[(rows["plugin"] == plugin) & (rows["metric"] == name) & rows["params"].str.contains(params, regex=False)]
    assert len(hit) == 1, (plugin, name, params, hit)
    return float(hit["value"].iloc[0])


PLUGIN_LIST = """\
  - plugin: clean
  - plugin: cam
    params: {method: auto, store_maps: true, map_size: 8}
  - plugin: cam_iou
    params: {method: auto}
  - plugin: cam_iou
    params: {method: recipro}
  - plugin: cam_sparsity
  - plugin: erf_distance
  - plugin: masked_attack
    params: {eps: 8/255}
  - plugin: masked_attack
    params: {eps: 8/255, attack: pgd, steps: 2, alpha: 4/255}
  - plugin: deletion
    params: {ranking: cam, steps: 4}
  - plugin: deletion
    params: {ranking: random, mode: insertion, operator: blur, steps: 4}
  - plugin: deletion
    params: {ranking: magnitude, order: lerf, space: feature, steps: 4}
  - plugin: deletion
    params: {ranking: cam, operator: road, steps: 2}
"""


@pytest.mark.parametrize("fixture", ["tiny_model", "tiny_topgap_model"])
def test_every_interp_plugin_writes_rows(request, tmp_path, results_dir, fixture):
    request.getfixturevalue(fixture)
    model = {"tiny_model": "tiny_cnn", "tiny_topgap_model": "tiny_topgap"}[fixture]
    rows = run(model, write_suite(tmp_path, "interp_fixture", PLUGIN_LIST), results_dir)
    expected = {"clean", "cam", "cam_iou", "cam_sparsity", "erf_distance", "masked_attack", "deletion"}
    assert set(rows["plugin"]) == expected
    assert rows["value"].notna().all()
    clean = metric(rows, "clean", "accuracy")
    native = 1.0 if model == "tiny_topgap" else 0.0
    assert metric(rows, "cam_iou", "uses_native_cam", '"method":"auto"') == native
    assert metric(rows, "cam_iou", "n_empty_mask_excluded", '"method":"auto"') == 1
    assert metric(rows, "cam_iou", "n_images", '"method":"recipro"') == N - 1
    assert 0 <= metric(rows, "cam_iou", "iou@0.5", '"method":"recipro"') <= 1
    assert 0 < metric(rows, "cam_sparsity", "l1_sparsity") < 1
    assert metric(rows, "erf_distance", "erf_distance") == pytest.approx(
        metric(rows, "erf_distance", "erf_center") - metric(rows, "erf_distance", "erf_corner")
    )
    for attack in ('"attack":"fgsm"', '"attack":"pgd"'):
        assert metric(rows, "masked_attack", "clean_accuracy", attack) == pytest.approx(clean)
        sar_o, sar_b = (metric(rows, "masked_attack", m, attack) for m in ("sar_object", "sar_background"))
        assert metric(rows, "masked_attack", "attack_distance", attack) == pytest.approx(sar_o - sar_b)
    cam_deletion = '"ranking":"cam","space":"input","steps":4'
    assert metric(rows, "deletion", "accuracy@0.00", cam_deletion) == pytest.approx(clean)
    assert metric(rows, "deletion", "accuracy@1.00", '"mode":"insertion"') == pytest.approx(clean)
    examples = next(iter(pd.read_parquet(p) for p in results_dir.glob("interp-tiny/*/cam-*.examples.parquet")))
    assert len(examples) == N and len(examples["map"].iloc[0]) == 64


def test_deletion_endpoints_are_clean_and_fully_removed_accuracy(tiny_model, tmp_path, results_dir):
    rows = run(
        "tiny_cnn",
        write_suite(
            tmp_path,
            "interp_fixture",
            """\
  - plugin: clean
  - plugin: deletion
    params: {ranking: cam, operator: mean, steps: 5}
""",
        ),
        results_dir,
    )
    data = masked_fixture()
    x = data.batch(torch.arange(N)).x
    with torch.no_grad():
        removed_acc = (tiny_model(x.mean((2, 3), keepdim=True).expand_as(x)).argmax(1) == data.labels).float().mean()
    assert metric(rows, "deletion", "accuracy@0.00") == pytest.approx(metric(rows, "clean", "accuracy"))
    assert metric(rows, "deletion", "accuracy@1.00") == pytest.approx(float(removed_acc))
    fracs = np.linspace(0, 1, 6)
    curve = [metric(rows, "deletion", f"accuracy@{f:.2f}") for f in fracs]
    assert metric(rows, "deletion", "auc_accuracy") == pytest.approx(np.trapezoid(curve, fracs))


@pytest.mark.parametrize("plugin", ["cam_iou", "masked_attack"])
def test_mask_plugins_fail_clearly_without_masks(tiny_model, plugin):
    batch = unmasked_fixture().batch(torch.arange(2))
    ctx = Context(seed=0, device="cpu", precision="fp32", dataset=unmasked_fixture())
    with pytest.raises(ValueError, match="needs object masks.*interp_nomask"):
        PLUGINS.create(plugin).run_batch(tiny_model, batch, ctx)


def test_bad_parameters_are_rejected():
    with pytest.raises(ValueError, match="operator"):
        PLUGINS.create("deletion", operator="blur", space="feature")
    with pytest.raises(ValueError, match="ranking"):
        PLUGINS.create("deletion", ranking="energy")
    with pytest.raises(ValueError, match="tau"):
        PLUGINS.create("cam_iou", tau=0.555)


def test_shipped_interp_suites_load():
    from bench.suites import load_suite

    pets, cifar = load_suite("pets3-interp"), load_suite("cifar10-interp")
    assert (pets.dataset, pets.split, pets.n) == ("pets3", "test", 298)
    assert cifar.dataset == "cifar10" and not {"cam_iou", "masked_attack"} & {p.plugin for p in cifar.plugins}
    for spec in pets.plugins + cifar.plugins:
        spec.build()


def test_model_ranking_uses_ersm_energy_and_errors_without_one(tiny_model):
    from bench.models.classifier import build_classifier
    from bench.models.ersm import find_energy_mask
    from bench.plugins.deletion import ranking_scores

    torch.manual_seed(0)
    ersm = build_classifier("cnn_ersm", 10).eval()
    nn_init = find_energy_mask(ersm).weight
    with torch.no_grad():
        nn_init.normal_()
    x = embedded_sample().batch(torch.arange(3)).x
    scores = ranking_scores(ersm, x, torch.zeros(3, dtype=torch.long), torch.arange(3), "model", "auto", (8, 8), 0)
    with torch.no_grad():
        ersm(x)
    torch.testing.assert_close(scores, -find_energy_mask(ersm).energy[:, 0])
    with pytest.raises(TypeError, match="importance"):
        ranking_scores(tiny_model, x, torch.zeros(3, dtype=torch.long), torch.arange(3), "model", "auto", (8, 8), 0)
