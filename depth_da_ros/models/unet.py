"""pix2pix U-Net generator (Isola et al.), the depth network.

Built from the inside out by ``UnetSkipConnectionBlock`` recursion as in
junyanz/pytorch-CycleGAN-and-pix2pix ``UnetGenerator``: every block halves the size with a
4x4 stride-2 conv (LeakyReLU 0.2 before it, except in the outermost block), doubles it back
with a 4x4 stride-2 transposed conv (ReLU before it) and concatenates its input to its
output. The innermost block has no norm after its down conv (at 256x256 its bottleneck is
1x1, one value per channel, which batch norm cannot normalise at batch size 1); the
outermost block has no norm at all, and its up conv has a bias and ends in tanh. With 8
down-samplings, ngf 64, batch norm and 3 -> 1 channels (pix2pix ``unet_256``) it has
54,409,857 parameters (54,413,955 with 3 output channels).

``upsample="resize"`` replaces each transposed conv by a nearest x2 resize and a 3x3 conv
(``layers.make_upsample``): no checkerboard artefacts, and cheaper on a CPU.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from depth_da_ros.models.layers import check_spatial_size, conv_bias, make_norm, make_upsample
from depth_da_ros.models.registry import NETWORKS

MIN_DOWNS = 5  # the fixed outer blocks: ngf -> 2 -> 4 -> 8 -> 8 (innermost)


class UnetSkipConnectionBlock(nn.Module):
    """down -> submodule -> up, with the block's input concatenated to its output.

    ``outer_nc`` is the channel count this block returns to its parent (before the
    parent's concatenation), ``inner_nc`` the count its down conv produces.
    """

    def __init__(
        self,
        outer_nc: int,
        inner_nc: int,
        *,
        input_nc: int | None = None,
        submodule: nn.Module | None = None,
        outermost: bool = False,
        innermost: bool = False,
        norm: str = "batch",
        use_dropout: bool = False,
        upsample: str = "transpose",
    ) -> None:
        super().__init__()
        self.outermost = outermost
        bias = conv_bias(norm)
        input_nc = outer_nc if input_nc is None else input_nc
        downconv = nn.Conv2d(input_nc, inner_nc, kernel_size=4, stride=2, padding=1, bias=bias)
        downrelu = nn.LeakyReLU(0.2, True)
        uprelu = nn.ReLU(True)

        layers: list[nn.Module]
        if outermost:
            upconv = make_upsample(upsample, inner_nc * 2, outer_nc, kernel_size=4)
            layers = [downconv, submodule, uprelu, upconv, nn.Tanh()]
        elif innermost:
            upconv = make_upsample(upsample, inner_nc, outer_nc, kernel_size=4, bias=bias)
            layers = [downrelu, downconv, uprelu, upconv, make_norm(norm, outer_nc)]
        else:
            upconv = make_upsample(upsample, inner_nc * 2, outer_nc, kernel_size=4, bias=bias)
            layers = [
                downrelu,
                downconv,
                make_norm(norm, inner_nc),
                submodule,
                uprelu,
                upconv,
                make_norm(norm, outer_nc),
            ]
            if use_dropout:
                layers.append(nn.Dropout(0.5))
        self.model = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        if self.outermost:
            return self.model(x)
        return torch.cat([x, self.model(x)], 1)


@NETWORKS.register("unet")
class UnetGenerator(nn.Module):
    def __init__(
        self,
        input_nc: int = 3,
        output_nc: int = 1,
        num_downs: int = 8,
        ngf: int = 64,
        norm: str = "batch",
        use_dropout: bool = False,
        upsample: str = "transpose",
    ) -> None:
        super().__init__()
        if num_downs < MIN_DOWNS:
            raise ValueError(f"num_downs must be >= {MIN_DOWNS}, got {num_downs}")
        up = {"norm": norm, "upsample": upsample}
        block = UnetSkipConnectionBlock(ngf * 8, ngf * 8, innermost=True, **up)
        # Only the ngf*8 -> ngf*8 middle blocks get dropout, as in pix2pix.
        for _ in range(num_downs - MIN_DOWNS):
            block = UnetSkipConnectionBlock(
                ngf * 8, ngf * 8, submodule=block, use_dropout=use_dropout, **up
            )
        block = UnetSkipConnectionBlock(ngf * 4, ngf * 8, submodule=block, **up)
        block = UnetSkipConnectionBlock(ngf * 2, ngf * 4, submodule=block, **up)
        block = UnetSkipConnectionBlock(ngf, ngf * 2, submodule=block, **up)
        self.model = UnetSkipConnectionBlock(
            output_nc, ngf, input_nc=input_nc, submodule=block, outermost=True, **up
        )
        # Every block halves the size and the skip concatenation needs the halves to
        # double back to the same size exactly.
        self.num_downs = num_downs
        self.size_multiple = 2**num_downs

    def forward(self, x: Tensor) -> Tensor:
        network = f"unet with {self.num_downs} down-samplings"
        check_spatial_size(x.shape[-2], x.shape[-1], self.size_multiple, network)
        return self.model(x)
