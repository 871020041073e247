"""CAMs by name: the model's own CAM (Top-GAP), pytorch-grad-cam methods, and Recipro-CAM.

Every method returns (B, H, W) maps at the input resolution, min-max scaled per image to [0, 1]
(pytorch-grad-cam's default: ReLU, bilinear resize, min-max).
"""

from __future__ import annotations

from collections.abc import Callable

import pytorch_grad_cam as pgc
import torch
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from torch import nn

from bench.interp.recipro_cam import recipro_cam
from bench.models.backbones import PreActResNet18, SmallCNN, TimmFeatures

GRAD_CAM_CLASSES: dict[str, Callable] = {
    "gradcam": pgc.GradCAM,
    "gradcam++": pgc.GradCAMPlusPlus,
    "hirescam": pgc.HiResCAM,
    "xgradcam": pgc.XGradCAM,
    "layercam": pgc.LayerCAM,
    "eigencam": pgc.EigenCAM,
    "scorecam": pgc.ScoreCAM,
}
CAM_METHODS = ("auto", "native", "recipro", "recipro_gaussian", *GRAD_CAM_CLASSES)


def target_layer(model: nn.Module) -> nn.Module:
    """The Grad-CAM target layer of a bench Classifier: the last stage of its backbone.

    For the small CNN that is the last block of stage 3 (the same tensor as stage 3's output): ERSM's variant
    calls stage 3's blocks one by one around its mask, so hooks on the stage itself would never fire. Wrapping
    backbones (ISVS's smoothing in front) are looked through.
    """
    backbone = getattr(model, "backbone", None)
    backbone = getattr(backbone, "body", backbone) if not isinstance(backbone, TimmFeatures) else backbone
    if isinstance(backbone, SmallCNN):
        return backbone.stage3[-1]
    if isinstance(backbone, PreActResNet18):
        return backbone.layer4
    if isinstance(backbone, TimmFeatures):
        name = backbone.body.feature_info.module_name()[-1]
        modules = dict(backbone.body.named_modules())
        for candidate in (name, name.replace(".", "_")):
            if candidate in modules:
                return modules[candidate]
    raise ValueError(
        f"no Grad-CAM target layer known for backbone {type(backbone).__name__}; "
        "add it to bench.interp.cams.target_layer or use method 'native'"
    )


def resolve_method(model: nn.Module, method: str) -> str:
    """'auto' means the model's own CAM when it has one (Top-GAP), Grad-CAM otherwise."""
    if method not in CAM_METHODS:
        raise ValueError(f"unknown CAM method '{method}' (choose from {', '.join(CAM_METHODS)})")
    if method == "auto":
        return "native" if getattr(model, "has_native_cam", False) else "gradcam"
    if method == "native" and not getattr(model, "has_native_cam", False):
        raise ValueError("method 'native' needs a model with its own CAM (Top-GAP head); use 'gradcam' or 'recipro'")
    return method


def grad_cam_maps(model: nn.Module, x: torch.Tensor, target: torch.Tensor, method: str) -> torch.Tensor:
    targets = [ClassifierOutputTarget(int(t)) for t in target]
    # an input that requires grad keeps activations differentiable even if the weights are frozen
    x = x.detach().clone().requires_grad_(True)
    with GRAD_CAM_CLASSES[method](model=model, target_layers=[target_layer(model)]) as cam:
        maps = cam(input_tensor=x, targets=targets)
    model.zero_grad(set_to_none=True)
    return torch.from_numpy(maps).float()


def compute_cams(model: nn.Module, x: torch.Tensor, target: torch.Tensor, method: str = "auto") -> torch.Tensor:
    """CAMs of class ``target`` per image: (B, H, W) in [0, 1] at the input resolution (on CPU)."""
    method = resolve_method(model, method)
    was_training = model.training
    model.eval()
    try:
        if method == "native":
            with torch.no_grad():
                return model.cam(x, target).float().cpu()
        if method.startswith("recipro"):
            return recipro_cam(model, x, target, gaussian=method == "recipro_gaussian").float().cpu()
        return grad_cam_maps(model, x, target, method)
    finally:
        model.train(was_training)
