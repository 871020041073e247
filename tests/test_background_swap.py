import numpy as np
import torch

from bench.data.base import ImageDataset
from bench.plugins.background_swap import VARIANTS, BackgroundSwap, partner_index
from bench.plugins.base import Context


def _dataset(n: int = 12) -> ImageDataset:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (n, 8, 8, 3), dtype=np.uint8)
    masks = np.zeros((n, 8, 8), np.float32)
    masks[:, 2:6, 2:6] = 1
    return ImageDataset("fixture", "test", x, np.arange(n) % 3, ["a", "b", "c"], masks=masks)


class MeanOfCentre(torch.nn.Module):
    """Predicts from the object (centre) pixels only: background swaps cannot change its output."""

    def forward(self, x):
        centre = x[:, :, 2:6, 2:6].mean((1, 2, 3))
        return torch.stack([torch.sin(7 * centre), torch.cos(5 * centre), centre], 1)


def test_partners_follow_the_variant_rule_and_never_the_image_itself():
    labels = torch.arange(12) % 3
    for i in range(12):
        same = partner_index(i, int(labels[i]), labels, "mixed_same", 3, seed=0)
        nxt = partner_index(i, int(labels[i]), labels, "mixed_next", 3, seed=0)
        assert same != i and labels[same] == labels[i]
        assert labels[nxt] == (labels[i] + 1) % 3
        assert partner_index(i, int(labels[i]), labels, "mixed_rand", 3, seed=0) != i


def test_swaps_keep_object_pixels_and_take_partner_background():
    data = _dataset()
    batch = data.batch(torch.arange(4))
    ctx = Context(seed=0, device="cpu", precision="fp32", dataset=data)
    plugin = BackgroundSwap()
    mixed = plugin._variant_images("mixed_rand", batch, ctx)
    m = batch.mask[:, None].bool().expand_as(batch.x)
    assert torch.equal(mixed[m], batch.x[m])
    assert not torch.equal(mixed[~m], batch.x[~m])
    assert plugin._variant_images("only_bg", batch, ctx)[m].abs().sum() == 0


def test_a_model_blind_to_the_background_has_zero_bg_gap():
    data = _dataset()
    ctx = Context(seed=0, device="cpu", precision="fp32", dataset=data)
    plugin = BackgroundSwap()
    cols = plugin.run_batch(MeanOfCentre(), data.batch(torch.arange(12)), ctx)
    for variant in ("only_fg", "mixed_same", "mixed_rand", "mixed_next"):
        assert (cols[f"correct_{variant}"] == cols["correct_original"]).all()
    import pandas as pd

    metrics = dict(plugin.summarize(pd.DataFrame(cols), ctx))
    assert metrics["bg_gap"] == 0.0 and set(VARIANTS) == {k[len("accuracy_") :] for k in metrics if k.startswith("acc")}
