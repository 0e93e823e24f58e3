"""Peer monocular-depth networks, rebuilt for speed comparisons only (random weights).

Each builder returns ``(module, (height, width))``: an eval-mode ``torch.nn.Module`` taking
float32 RGB ``[1, 3, H, W]`` in [0, 1] and returning one depth-like map ``[1, 1, H, W]``,
and the input size its paper deploys it at. The weights are random: the latency of a dense
network does not depend on them, its accuracy does, so these are for timing and FLOP counts
and nothing else.

- ``monodepth2_resnet18``: Godard et al., "Digging Into Self-Supervised Monocular Depth
  Estimation", ICCV 2019 (github.com/nianticlabs/monodepth2). ResNet-18 encoder
  (torchvision's, input normalised by (x - 0.45) / 0.225 as ``ResnetEncoder`` does) and
  ``DepthDecoder`` (decoder channels 16, 32, 64, 128, 256; ConvBlock = reflection-padded 3x3
  conv + ELU; nearest x2 up-sampling; skip concatenation; sigmoid disparity). Only the
  full-resolution disparity is computed, as at deployment; the three coarser heads of
  training are left out (they would add ~1% of the FLOPs). KITTI size 640x192.
- ``fastdepth``: Wofk et al., "FastDepth: Fast Monocular Depth Estimation on Embedded
  Systems", ICRA 2019 (github.com/dwofk/fast-depth, ``MobileNetSkipAdd``). MobileNet v1
  encoder, NNConv5 decoder of depthwise-separable 5x5 convolutions with nearest x2
  up-sampling and additive skips. 224x224 (NYU).
"""
from __future__ import annotations

from typing import Callable

import torch
import torchvision
from torch import Tensor, nn


class _ConvBlock(nn.Sequential):
    """monodepth2 ``ConvBlock``: reflection pad 1, 3x3 conv, ELU."""

    def __init__(self, cin: int, cout: int, act: bool = True) -> None:
        layers: list[nn.Module] = [nn.ReflectionPad2d(1), nn.Conv2d(cin, cout, 3)]
        if act:
            layers.append(nn.ELU(inplace=True))
        super().__init__(*layers)


class Monodepth2(nn.Module):
    """ResNet-18 encoder + monodepth2 ``DepthDecoder``, full-resolution disparity out."""

    ENC = (64, 64, 128, 256, 512)
    DEC = (16, 32, 64, 128, 256)

    def __init__(self) -> None:
        super().__init__()
        self.encoder = torchvision.models.resnet18(weights=None)
        self.up0 = nn.ModuleList()
        self.up1 = nn.ModuleList()
        for i in range(4, -1, -1):
            cin = self.ENC[-1] if i == 4 else self.DEC[i + 1]
            self.up0.append(_ConvBlock(cin, self.DEC[i]))
            self.up1.append(_ConvBlock(self.DEC[i] + (self.ENC[i - 1] if i > 0 else 0), self.DEC[i]))
        self.disp = _ConvBlock(self.DEC[0], 1, act=False)

    def forward(self, x: Tensor) -> Tensor:
        e = self.encoder
        x = (x - 0.45) / 0.225
        f0 = e.relu(e.bn1(e.conv1(x)))
        f1 = e.layer1(e.maxpool(f0))
        f2 = e.layer2(f1)
        f3 = e.layer3(f2)
        f4 = e.layer4(f3)
        skips = [f0, f1, f2, f3]
        y = f4
        for k, i in enumerate(range(4, -1, -1)):
            y = nn.functional.interpolate(self.up0[k](y), scale_factor=2.0, mode="nearest")
            if i > 0:
                y = torch.cat([y, skips[i - 1]], 1)
            y = self.up1[k](y)
        return torch.sigmoid(self.disp(y))


def _conv_bn(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


def _conv_dw(cin: int, cout: int, stride: int, kernel: int = 3) -> nn.Sequential:
    """Depthwise kxk + BN + ReLU, then pointwise 1x1 + BN + ReLU (MobileNet v1)."""
    return nn.Sequential(
        nn.Conv2d(cin, cin, kernel, stride, kernel // 2, groups=cin, bias=False), nn.BatchNorm2d(cin),
        nn.ReLU(inplace=True),
        nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
    )


class FastDepth(nn.Module):
    """MobileNet v1 + NNConv5 (depthwise-separable 5x5) decoder with additive skips."""

    def __init__(self) -> None:
        super().__init__()
        spec = [(32, 64, 1), (64, 128, 2), (128, 128, 1), (128, 256, 2), (256, 256, 1), (256, 512, 2),
                *[(512, 512, 1)] * 5, (512, 1024, 2), (1024, 1024, 1)]
        self.encoder = nn.ModuleList([_conv_bn(3, 32, 2), *(_conv_dw(a, b, s) for a, b, s in spec)])
        self.decoder = nn.ModuleList(
            [_conv_dw(1024, 512, 1, 5), _conv_dw(512, 256, 1, 5), _conv_dw(256, 128, 1, 5),
             _conv_dw(128, 64, 1, 5), _conv_dw(64, 32, 1, 5)])
        self.head = nn.Conv2d(32, 1, 1)

    def forward(self, x: Tensor) -> Tensor:
        skips = {}
        for i, layer in enumerate(self.encoder):
            x = layer(x)
            if i in (1, 3, 5):  # as MobileNetSkipAdd: 1/2, 1/4 and 1/8 features
                skips[i] = x
        for i, layer in enumerate(self.decoder):
            x = nn.functional.interpolate(layer(x), scale_factor=2.0, mode="nearest")
            if i == 1:
                x = x + skips[5]
            elif i == 2:
                x = x + skips[3]
            elif i == 3:
                x = x + skips[1]
        return self.head(x)


PEERS: dict[str, Callable[[], tuple[nn.Module, tuple[int, int]]]] = {
    "monodepth2_resnet18": lambda: (Monodepth2().eval(), (192, 640)),
    "fastdepth": lambda: (FastDepth().eval(), (224, 224)),
}
