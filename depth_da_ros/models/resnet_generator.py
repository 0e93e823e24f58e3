"""CycleGAN ResNet generator (Johnson et al. / Zhu et al.), the style-transfer adapter.

Layout as in junyanz/pytorch-CycleGAN-and-pix2pix ``ResnetGenerator``: reflection pad 3 +
7x7 conv, two stride-2 3x3 down convs, ``n_blocks`` residual blocks, two stride-2
transposed convs, reflection pad 3 + 7x7 conv + tanh. With 9 blocks, ngf 64, instance norm
and 3 -> 3 channels it has 11,378,179 parameters, as the official monocularDepth-Inference
style network. ``upsample="resize"`` replaces the transposed convs by a nearest x2 resize and a
3x3 conv (``layers.make_upsample``), which has no checkerboard artefacts.
"""
from __future__ import annotations

from torch import Tensor, nn

from depth_da_ros.models.layers import check_spatial_size, conv_bias, make_norm, make_upsample
from depth_da_ros.models.registry import NETWORKS

N_DOWNSAMPLING = 2


class ResnetBlock(nn.Module):
    """x + conv-norm-relu-(dropout)-conv-norm(x), reflection padded to keep the size."""

    def __init__(self, channels: int, norm: str, use_dropout: bool) -> None:
        super().__init__()
        bias = conv_bias(norm)
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, kernel_size=3, bias=bias),
            make_norm(norm, channels),
            nn.ReLU(True),
        ]
        if use_dropout:
            layers.append(nn.Dropout(0.5))
        layers += [
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, kernel_size=3, bias=bias),
            make_norm(norm, channels),
        ]
        self.conv_block = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv_block(x)


@NETWORKS.register("resnet_generator")
class ResnetGenerator(nn.Module):
    def __init__(
        self,
        input_nc: int = 3,
        output_nc: int = 3,
        ngf: int = 64,
        n_blocks: int = 9,
        norm: str = "instance",
        use_dropout: bool = False,
        upsample: str = "transpose",
    ) -> None:
        super().__init__()
        if n_blocks < 0:
            raise ValueError(f"n_blocks must be >= 0, got {n_blocks}")
        bias = conv_bias(norm)
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(input_nc, ngf, kernel_size=7, bias=bias),
            make_norm(norm, ngf),
            nn.ReLU(True),
        ]
        for i in range(N_DOWNSAMPLING):
            mult = 2**i
            layers += [
                nn.Conv2d(
                    ngf * mult, ngf * mult * 2, kernel_size=3, stride=2, padding=1, bias=bias
                ),
                make_norm(norm, ngf * mult * 2),
                nn.ReLU(True),
            ]
        mult = 2**N_DOWNSAMPLING
        layers += [ResnetBlock(ngf * mult, norm, use_dropout) for _ in range(n_blocks)]
        for i in range(N_DOWNSAMPLING):
            mult = 2 ** (N_DOWNSAMPLING - i)
            layers += [
                make_upsample(upsample, ngf * mult, ngf * mult // 2, kernel_size=3, output_padding=1, bias=bias),
                make_norm(norm, ngf * mult // 2),
                nn.ReLU(True),
            ]
        layers += [
            nn.ReflectionPad2d(3),
            nn.Conv2d(ngf, output_nc, kernel_size=7),
            nn.Tanh(),
        ]
        self.model = nn.Sequential(*layers)
        # Each stride-2 conv halves the size and each transposed conv doubles it, so the
        # output matches the input only for sides divisible by 2**N_DOWNSAMPLING.
        self.size_multiple = 2**N_DOWNSAMPLING

    def forward(self, x: Tensor) -> Tensor:
        check_spatial_size(x.shape[-2], x.shape[-1], self.size_multiple, "resnet_generator")
        return self.model(x)
