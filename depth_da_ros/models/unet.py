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

``ground_prior`` (``ground_prior_logit``): the network predicts a residual over the depth of a
flat road under a level camera. The final tanh gets a per-row bias, atanh of the encoded
flat-ground depth z(v) = fy * h / (v - cy) (``max_depth`` at and above the horizon), so an
untrained or unsure network outputs the flat road, and what it learns is where the scene
departs from it (cars, walls, slopes). The bias is a constant of the input size: exports carry
it, and nothing at inference needs the camera height.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from depth_da_ros.models.layers import check_spatial_size, conv_bias, make_norm, make_upsample
from depth_da_ros.models.registry import NETWORKS

MIN_DOWNS = 5  # the fixed outer blocks: ngf -> 2 -> 4 -> 8 -> 8 (innermost)
GROUND_PRIOR_KEYS = ("height", "fy", "cy", "min_depth", "max_depth", "encoding")
PRIOR_CODE_LIMIT = 0.98  # the prior's codes are kept inside (-1, 1), where atanh is finite


def ground_prior_logit(prior: dict[str, Any], height: int) -> np.ndarray:
    """float32 (height, 1): atanh of the encoded flat-ground depth per image row.

    ``prior``: ``height`` (camera above the road, metres), ``fy`` and ``cy`` (focal length and
    principal-point row as fractions of the image height), ``min_depth`` / ``max_depth``
    (metres) and ``encoding`` ("linear" or "log") of the depth codec
    (``depth_da_ros.normalization.DepthCodec``). Row v (pixel index, as the procedural renderer's
    rays) below the principal point sees the road at z = fy * h / (v - cy) metres; rows at or
    above it get ``max_depth``. Raises ValueError for missing keys or non-positive values.
    """
    missing = [key for key in GROUND_PRIOR_KEYS if key not in prior]
    if missing or set(prior) - set(GROUND_PRIOR_KEYS):
        raise ValueError(f"ground_prior needs exactly the keys {', '.join(GROUND_PRIOR_KEYS)}; got {sorted(prior)}")
    if min(prior["height"], prior["fy"], prior["min_depth"]) <= 0 or prior["max_depth"] <= prior["min_depth"]:
        raise ValueError(f"ground_prior: height, fy and min_depth must be > 0 and max_depth > min_depth, got {prior}")
    fy, cy = prior["fy"] * height, prior["cy"] * height
    below = np.arange(height, dtype=np.float64) - cy
    with np.errstate(divide="ignore"):
        z = np.where(below > 0, fy * prior["height"] / np.where(below > 0, below, 1.0), prior["max_depth"])
    z = np.clip(z, prior["min_depth"], prior["max_depth"])
    if prior["encoding"] == "linear":
        unit = z / prior["max_depth"]
    elif prior["encoding"] == "log":
        unit = np.log(z / prior["min_depth"]) / math.log(prior["max_depth"] / prior["min_depth"])
    else:
        raise ValueError(f"ground_prior: unknown encoding {prior['encoding']!r}; known: linear, log")
    code = np.clip(unit * 2.0 - 1.0, -PRIOR_CODE_LIMIT, PRIOR_CODE_LIMIT)
    return np.arctanh(code).astype(np.float32)[:, None]


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
        ground_prior: dict[str, Any] | None = None,
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
        self.ground_prior = dict(ground_prior) if ground_prior else None
        if self.ground_prior is not None:
            ground_prior_logit(self.ground_prior, 1)  # validate now, not at the first forward
            self.model.model[-1] = nn.Identity()  # the tanh moves to forward, after the prior's bias

    def forward(self, x: Tensor) -> Tensor:
        network = f"unet with {self.num_downs} down-samplings"
        check_spatial_size(x.shape[-2], x.shape[-1], self.size_multiple, network)
        out = self.model(x)
        if self.ground_prior is None:
            return out
        bias = torch.from_numpy(ground_prior_logit(self.ground_prior, x.shape[-2])).to(out.device, out.dtype)
        return torch.tanh(out + bias)
