"""Backbones that return a list of feature maps (largest first), registered by name.

Every backbone exposes ``feature_channels`` (one entry per returned map) so that a head can be
built without a forward pass, like timm's ``feature_info.channels()``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from bench.registry import ARCHS


def _conv_bn_relu(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


class SmallCNN(nn.Module):
    """VGG-style 3-stage net (~2.0 M parameters); stages run at strides 1, 2 and 4."""

    def __init__(self, widths: tuple[int, int, int] = (64, 128, 256)) -> None:
        super().__init__()
        w1, w2, w3 = widths
        self.stage1 = nn.Sequential(_conv_bn_relu(3, w1), _conv_bn_relu(w1, w1))
        self.stage2 = nn.Sequential(nn.MaxPool2d(2), _conv_bn_relu(w1, w2), _conv_bn_relu(w2, w2))
        self.stage3 = nn.Sequential(
            nn.MaxPool2d(2), _conv_bn_relu(w2, w3), _conv_bn_relu(w3, w3), _conv_bn_relu(w3, w3)
        )
        self.feature_channels = [w1, w2, w3]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        f1 = self.stage1(x)
        f2 = self.stage2(f1)
        return [f1, f2, self.stage3(f2)]


class PreActBlock(nn.Module):
    expansion = 1

    def __init__(self, c_in: int, c_out: int, stride: int = 1) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.shortcut = None
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Conv2d(c_in, c_out, 1, stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(x))
        shortcut = self.shortcut(out) if self.shortcut is not None else x
        out = self.conv1(out)
        out = self.conv2(F.relu(self.bn2(out)))
        return out + shortcut


class PreActResNet18(nn.Module):
    """PreAct ResNet-18 for 32x32 inputs (He et al. 2016; the GradAlign / Top-GAP CIFAR net).

    Returns the raw outputs of layer1..layer3 and relu(bn(layer4)), as methods_spec §1(a) taps.
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
        self.layer1 = self._layer(64, 64, 1)
        self.layer2 = self._layer(64, 128, 2)
        self.layer3 = self._layer(128, 256, 2)
        self.layer4 = self._layer(256, 512, 2)
        self.bn = nn.BatchNorm2d(512)
        self.feature_channels = [64, 128, 256, 512]

    @staticmethod
    def _layer(c_in: int, c_out: int, stride: int) -> nn.Sequential:
        return nn.Sequential(PreActBlock(c_in, c_out, stride), PreActBlock(c_out, c_out, 1))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        f1 = self.layer1(self.conv1(x))
        f2 = self.layer2(f1)
        f3 = self.layer3(f2)
        return [f1, f2, f3, F.relu(self.bn(self.layer4(f3)))]


class TimmFeatures(nn.Module):
    """A timm backbone created with ``features_only=True`` (no download unless pretrained=True).

    For VGG, timm's last feature map is only the max-pool of the one before it, so it is left out
    (``out_indices``); the Top-GAP head's last 3 maps are then the 256/512/512-channel ones that
    reproduce Table 1's 12.43M parameters.
    """

    OUT_INDICES = {"vgg11_bn": (0, 1, 2, 3, 4)}

    def __init__(self, timm_name: str, pretrained: bool = False) -> None:
        super().__init__()
        import timm

        kwargs = {"out_indices": self.OUT_INDICES[timm_name]} if timm_name in self.OUT_INDICES else {}
        self.body = timm.create_model(timm_name, pretrained=pretrained, features_only=True, **kwargs)
        self.feature_channels = list(self.body.feature_info.channels())

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return list(self.body(x))


ARCHS.add("cnn", SmallCNN, input_size=32, normalization="cifar10", description="VGG-style 3-stage CNN, ~1.7M params")
ARCHS.add(
    "prn18", PreActResNet18, input_size=32, normalization="cifar10", description="PreAct ResNet-18 for 32x32 inputs"
)
for _name in ("resnet18", "efficientnet_b0", "convnext_tiny", "vgg11_bn"):
    ARCHS.add(
        _name,
        lambda pretrained=False, _n=_name: TimmFeatures(_n, pretrained),
        input_size=224,
        normalization="imagenet",
        description=f"timm {_name} (features_only)",
    )
