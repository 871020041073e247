import pytest
import torch
import torch.nn.functional as F

from bench.models.classifier import build_classifier, minmax_scale
from bench.models.heads import top_gap


def test_top_gap_with_k_equal_to_map_size_is_gap():
    maps = torch.randn(4, 10, 8, 8)
    assert torch.allclose(top_gap(maps, 64), maps.mean((2, 3)), atol=1e-6)


def test_top_gap_with_k_one_is_global_max_pooling():
    maps = torch.randn(4, 10, 8, 8)
    assert torch.equal(top_gap(maps, 1), maps.amax((2, 3)))


def test_top_gap_gradient_is_one_over_k_on_the_top_positions_only():
    maps = torch.randn(1, 1, 4, 4, requires_grad=True)
    top_gap(maps, 3).sum().backward()
    grad = maps.grad.flatten()
    top3 = maps.detach().flatten().topk(3).indices
    assert torch.allclose(grad[top3], torch.full((3,), 1 / 3))
    assert grad.sum().item() == pytest.approx(1.0)


def test_top_gap_rejects_k_outside_the_map():
    with pytest.raises(ValueError, match="k=65"):
        top_gap(torch.zeros(1, 2, 8, 8), 65)


def _n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_topgap_parameter_count_efficientnet_b0_table1():
    model = build_classifier("efficientnet_b0", 53, "topgap", "imagenet", k=64, num_maps=4)
    assert _n_params(model) == 4_752_817  # "4.75M" in Table 1 (methods_spec §1(a))


def test_topgap_parameter_count_vgg11_bn_table1():
    model = build_classifier("vgg11_bn", 1000, "topgap", "imagenet", k=64, num_maps=3)
    assert _n_params(model) == 12_432_872  # "12.43M" in Table 1


def test_topgap_prn18_head_size_and_cam_resolution():
    std = build_classifier("prn18", 10, "gap")
    ours = build_classifier("prn18", 10, "topgap", k=128, num_maps=4)
    head_extra = _n_params(ours.head)
    assert head_extra == 2_215_434  # methods_spec §1(a)
    assert _n_params(std) - _n_params(std.head) == _n_params(ours) - head_extra
    assert ours.class_map(torch.rand(2, 3, 32, 32)).shape == (2, 10, 32, 32)


def test_models_take_unit_range_images_and_normalize_inside():
    model = build_classifier("cnn", 10, "gap").eval()
    x = torch.rand(2, 3, 32, 32)
    normalized = (x - model.mean) / model.std
    with torch.no_grad():
        expected = model.head(model.backbone(normalized))
        assert torch.allclose(model(x), expected)


def test_native_cam_is_upsampled_and_min_max_scaled():
    model = build_classifier("cnn", 10, "topgap", k=16, num_maps=2, fpn_channels=32).eval()
    x = torch.rand(3, 3, 32, 32)
    with torch.no_grad():
        cam = model.cam(x, torch.tensor([0, 1, 2]))
        raw = model.class_map(x)[torch.arange(3), torch.tensor([0, 1, 2])]
    assert cam.shape == (3, 32, 32)
    assert torch.allclose(cam.amin((1, 2)), torch.zeros(3), atol=1e-6)
    assert torch.allclose(cam.amax((1, 2)), torch.ones(3), atol=1e-4)
    up = F.interpolate(raw[:, None], size=(32, 32), mode="bilinear", align_corners=False)[:, 0]
    assert torch.allclose(cam, minmax_scale(up), atol=1e-6)


def test_standard_model_has_no_native_cam():
    model = build_classifier("cnn", 10, "gap")
    assert not model.has_native_cam
    with pytest.raises(TypeError, match="no native CAM"):
        model.cam(torch.rand(1, 3, 32, 32))
