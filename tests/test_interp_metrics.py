"""Properties of the interpretability measurements (bench.interp) on hand-built models and maps."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pytorch_grad_cam import GradCAM
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from torch import nn

from bench.attacks import FGSM, PGD
from bench.data.cifar import embedded_sample
from bench.interp.cams import compute_cams, resolve_method, target_layer
from bench.interp.erf import erf_gradient_maps, joint_z_erf
from bench.interp.localization import best_tau, cam_histograms, iou_at, pxap, split_calibration
from bench.interp.recipro_cam import recipro_scores, spatial_masks
from bench.interp.removal import keep_mask, remove_input, top_fraction


def square_mask(size: int = 16, lo: int = 4, hi: int = 10) -> torch.Tensor:
    mask = torch.zeros(1, size, size)
    mask[:, lo:hi, lo:hi] = 1
    return mask


# ---------- IoU / PxAP ----------


def test_map_equal_to_mask_gives_iou_one_and_complement_zero():
    mask = square_mask()
    pos, neg = cam_histograms(mask, mask)
    cpos, cneg = cam_histograms(1 - mask, mask)
    for tau in (0.05, 0.5, 0.95):
        assert iou_at(pos, neg, tau)[0] == 1.0
        assert iou_at(cpos, cneg, tau)[0] == 0.0
    assert pxap(pos, neg) == pytest.approx(1.0)
    assert pxap(cpos, cneg) == pytest.approx(mask.mean().item())  # precision of "everything on"


def test_iou_matches_direct_computation_on_random_maps():
    gen = torch.Generator().manual_seed(0)
    cams, masks = torch.rand(5, 12, 12, generator=gen), (torch.rand(5, 12, 12, generator=gen) > 0.6).float()
    pos, neg = cam_histograms(cams, masks)
    for tau in (0.25, 0.5, 0.8):
        on, obj = cams >= tau, masks.bool()
        direct = ((on & obj).flatten(1).sum(1) / (on | obj).flatten(1).sum(1)).numpy()
        np.testing.assert_allclose(iou_at(pos, neg, tau), direct, rtol=1e-6)


def test_best_tau_finds_the_threshold_that_separates_object_from_background():
    mask = square_mask()
    cam = torch.where(mask.bool(), torch.tensor(0.72), torch.tensor(0.31))
    pos, neg = cam_histograms(cam, mask)
    tau = best_tau(pos, neg)
    assert 0.31 < tau <= 0.72 and iou_at(pos, neg, tau)[0] == 1.0
    assert iou_at(pos, neg, 0.75)[0] == 0.0


def test_calibration_split_is_seeded_and_halves():
    index = np.arange(40)
    flags = split_calibration(index, seed=3)
    assert flags.sum() == 20
    assert (flags == split_calibration(index[::-1], seed=3)[::-1]).all()
    assert not (flags == split_calibration(index, seed=4)).all()


# ---------- ERF ----------


class CentrePixelModel(nn.Module):
    """Every output position is a function of the centre input pixel only."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        centre = x[:, :, x.shape[2] // 2, x.shape[3] // 2].sum(1)
        return (centre**2)[:, None, None, None].expand(-1, 2, 4, 4) + 0.0


def test_erf_of_centre_pixel_model_is_zero_at_the_corner():
    x = torch.rand(3, 3, 16, 16) + 0.1
    maps = erf_gradient_maps(CentrePixelModel(), x)
    for g in maps.values():
        assert g[:, 0, 0].abs().max() == 0
        assert (g[:, 8, 8] > 0).all()
        assert (g.flatten(1) != 0).sum(1).eq(1).all()  # only the centre pixel matters


def test_erf_of_local_model_follows_the_output_position():
    conv = nn.Conv2d(3, 2, 3, padding=1, bias=False)
    nn.init.constant_(conv.weight, 1.0)
    maps = erf_gradient_maps(conv, torch.rand(2, 3, 9, 9))
    centre, corner = maps["center"][0], maps["corner"][0]
    assert centre[3:6, 3:6].min() > 0 and centre.sum() == centre[3:6, 3:6].sum()
    assert corner[:2, :2].min() > 0 and corner.sum() == corner[:2, :2].sum()


def test_joint_z_normalization_matches_manual_formula():
    rng = np.random.default_rng(0)
    centre, corner = rng.random((4, 10)) * 3, rng.random((4, 10)) * 0.1
    both = np.concatenate([centre.ravel(), corner.ravel()])
    z = lambda a: np.abs((a - both.mean()) / both.std()).mean()  # noqa: E731
    out = joint_z_erf(centre, corner)
    assert out["erf_center"] == pytest.approx(z(centre))
    assert out["erf_corner"] == pytest.approx(z(corner))
    assert out["erf_distance"] == pytest.approx(z(centre) - z(corner)) and out["erf_distance"] > 0


# ---------- masked attacks ----------


@pytest.mark.parametrize("attack", ["fgsm", "pgd"])
def test_object_attack_never_changes_background_and_vice_versa(tiny_model, attack):
    batch = embedded_sample().batch(torch.arange(8))
    obj = torch.zeros(8, 1, 32, 32)
    obj[:, :, 8:24, 10:26] = 1
    for region in (obj, 1 - obj):
        if attack == "fgsm":
            adv = FGSM(tiny_model, eps=8 / 255, mode="final").run(batch.x, batch.y, mask=region).adv
        else:
            pgd = PGD(tiny_model, 8 / 255, 2 / 255, 3, random_start=False, mode="final")
            adv = pgd.run(batch.x, batch.y, mask=region).adv
        outside = ~region.bool().expand_as(adv)
        assert torch.equal(adv[outside], batch.x[outside])
        changed = (adv - batch.x).abs()
        assert changed[~outside].max() > 0 and changed.max() <= 8 / 255 + 1e-6


@pytest.mark.parametrize("mode", ["best", "final"])
def test_masked_pgd_with_full_region_equals_plain_pgd(tiny_model, mode):
    batch = embedded_sample().batch(torch.arange(8))
    full = torch.ones(8, 1, 32, 32)
    pgd = PGD(tiny_model, 4 / 255, 1 / 255, 4, mode=mode, seed=5)
    torch.testing.assert_close(pgd.run(batch.x, batch.y, mask=full).adv, pgd(batch.x, batch.y))


# ---------- removal ----------


def test_top_fraction_selects_most_or_least_relevant():
    scores = torch.arange(16.0).view(1, 4, 4)
    morf = top_fraction(scores, 0.25, "morf")
    lerf = top_fraction(scores, 0.25, "lerf")
    assert morf.flatten().nonzero().flatten().tolist() == [12, 13, 14, 15]
    assert lerf.flatten().nonzero().flatten().tolist() == [0, 1, 2, 3]
    assert keep_mask(scores, 0.0, "morf", "deletion").all() and not keep_mask(scores, 1.0, "morf", "deletion").any()
    assert not keep_mask(scores, 0.0, "morf", "insertion").any()


@pytest.mark.parametrize("operator", ["zero", "mean", "blur", "road"])
def test_removal_changes_only_removed_pixels(operator):
    x = torch.rand(2, 3, 16, 16)
    keep = torch.ones(2, 1, 16, 16, dtype=torch.bool)
    keep[:, :, 5:11, 5:11] = False
    out = remove_input(x, keep, operator, torch.arange(2), seed=0)
    kept = keep.expand_as(x)
    assert torch.equal(out[kept], x[kept])
    assert not torch.allclose(out[~kept], x[~kept])
    again = remove_input(x, keep, operator, torch.arange(2), seed=0)
    assert torch.equal(out, again)  # ROAD noise is seeded per example


def test_road_fill_is_linear_interpolation_of_a_smooth_image():
    ramp = torch.linspace(0, 1, 16).view(1, 1, 1, 16).expand(1, 3, 16, 16).contiguous()
    keep = torch.ones(1, 1, 16, 16, dtype=torch.bool)
    keep[:, :, 6:10, 6:10] = False
    out = remove_input(ramp, keep, "road", torch.arange(1), seed=0)
    assert (out - ramp).abs().max() < 0.05  # imputation of a linear ramp is the ramp (+ 0.01 noise)


# ---------- CAMs ----------


def test_target_layer_of_small_cnn_is_the_last_block_of_stage3(tiny_model):
    assert target_layer(tiny_model) is tiny_model.backbone.stage3[-1]


def test_auto_method_picks_native_for_topgap_and_gradcam_otherwise(tiny_model, tiny_topgap_model):
    assert resolve_method(tiny_topgap_model, "auto") == "native"
    assert resolve_method(tiny_model, "auto") == "gradcam"
    with pytest.raises(ValueError, match="native"):
        resolve_method(tiny_model, "native")


@pytest.mark.parametrize("method", ["gradcam", "recipro", "recipro_gaussian", "layercam"])
def test_cams_are_minmax_scaled_at_input_size(tiny_model, method):
    batch = embedded_sample().batch(torch.arange(4))
    cams = compute_cams(tiny_model, batch.x, batch.y, method)
    assert cams.shape == (4, 32, 32)
    assert cams.min() >= 0 and cams.max() <= 1 + 1e-6
    assert torch.allclose(cams.flatten(1).amax(1), torch.ones(4), atol=1e-3)


def test_gradcam_matches_pytorch_grad_cam_directly(tiny_model):
    batch = embedded_sample().batch(torch.arange(4))
    ours = compute_cams(tiny_model, batch.x, batch.y, "gradcam")
    with GradCAM(model=tiny_model, target_layers=[tiny_model.backbone.stage3]) as cam:
        targets = [ClassifierOutputTarget(int(t)) for t in batch.y]
        ref = cam(input_tensor=batch.x.clone().requires_grad_(True), targets=targets)
    np.testing.assert_allclose(ours.numpy(), ref, atol=1e-5)


def test_native_cam_is_the_models_cam(tiny_topgap_model):
    batch = embedded_sample().batch(torch.arange(4))
    torch.testing.assert_close(
        compute_cams(tiny_topgap_model, batch.x, batch.y, "auto"), tiny_topgap_model.cam(batch.x, batch.y)
    )


def test_recipro_cam_equals_a_position_by_position_loop(tiny_model):
    x = embedded_sample().batch(torch.arange(2)).x
    target = torch.tensor([3, 7])
    ours = recipro_scores(tiny_model, x, target, chunk=5)
    with torch.no_grad():
        last = tiny_model.features(x)[-1]
        h, w = last.shape[-2:]
        for b in range(2):
            for i, j in [(0, 0), (h // 2, w // 3), (h - 1, w - 1)]:
                only = torch.zeros_like(last[b : b + 1])
                only[:, :, i, j] = last[b, :, i, j]
                expected = tiny_model.head([only]).softmax(1)[0, target[b]]
                assert ours[b, i, j] == pytest.approx(float(expected), abs=1e-6)


def test_recipro_cam_rows_across_images_do_not_depend_on_the_chunk(tiny_topgap_model):
    x = embedded_sample().batch(torch.arange(3)).x
    target = torch.tensor([1, 4, 9])
    one_by_one = torch.stack([recipro_scores(tiny_topgap_model, x[i : i + 1], target[i : i + 1])[0] for i in range(3)])
    torch.testing.assert_close(recipro_scores(tiny_topgap_model, x, target, chunk=7), one_by_one, atol=1e-5, rtol=0)


def test_recipro_gaussian_masks_are_cropped_3x3_kernels():
    masks = spatial_masks(4, 5, gaussian=True)
    assert masks.shape == (20, 1, 4, 5)
    assert masks[7, 0, 1, 2] == 0.25 and masks[7, 0, 0, 1] == 1 / 16 and masks[7, 0, 3, 4] == 0
    assert masks[0, 0].sum() == pytest.approx(0.25 + 2 / 8 + 1 / 16)  # corner kernel is cropped, not renormalized


def test_recipro_cam_peaks_where_the_class_evidence_is():
    class OnePositionNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.head = lambda feats: feats[-1].mean((2, 3)) * 100  # class k = channel k

        def features(self, x: torch.Tensor) -> list[torch.Tensor]:
            return [x]

    x = torch.zeros(1, 2, 6, 6)
    x[0, 1, 4, 2] = 1.0  # evidence for class 1 at (4, 2) only
    scores = recipro_scores(OnePositionNet(), x, torch.tensor([1]))
    assert divmod(int(scores[0].flatten().argmax()), 6) == (4, 2)
