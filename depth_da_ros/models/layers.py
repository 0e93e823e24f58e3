"""Normalisation-layer factory and input-size checks shared by the networks."""
from __future__ import annotations

import torch
from torch import Tensor, nn

NORM_KINDS = ("batch", "instance", "group", "layer", "none")
UPSAMPLE_KINDS = ("transpose", "resize")
MAX_GROUPS = 32
# GuardedInstanceNorm2d: a channel whose standard deviation is below this fraction of its mean
# magnitude (plus an absolute floor) is constant up to float rounding and normalises to 0.
INSTANCE_NORM_GUARD = 1e-3
INSTANCE_NORM_FLOOR = 1e-3


class GuardedInstanceNorm2d(nn.InstanceNorm2d):
    """``InstanceNorm2d`` (affine=False, no running statistics) that is numerically safe on
    (nearly) constant feature maps.

    Instance norm divides by the spatial standard deviation. On a constant frame (lens cap,
    white-out) every channel is constant up to float rounding, and dividing that rounding noise
    by ``sqrt(var + eps)`` makes it the signal; 17 such layers in the lite adapter turn it into a
    full-range image that differs between float32, float64, torch and ONNX Runtime. Here a
    channel with ``std <= guard * sqrt(mean**2 + floor**2)`` outputs exactly 0 (what an exactly
    constant channel gives in exact arithmetic), so the result no longer depends on rounding.
    Any channel that carries a signal is normalised exactly as by ``InstanceNorm2d`` (the gate
    is a multiplication by 1), and there is no state: checkpoints of ``InstanceNorm2d`` load.
    Input and output (N, C, H, W); exports to ONNX as InstanceNormalization times the gate.
    """

    def __init__(self, channels: int, guard: float = INSTANCE_NORM_GUARD, floor: float = INSTANCE_NORM_FLOOR) -> None:
        super().__init__(channels, affine=False, track_running_stats=False)
        self.guard = guard
        self.floor = floor

    def forward(self, x: Tensor) -> Tensor:
        # Two passes (not torch.var_mean, which exports to ONNX with a dozen shape ops per layer).
        mean = x.mean(dim=(2, 3), keepdim=True)
        centred = x - mean
        var = (centred * centred).mean(dim=(2, 3), keepdim=True)
        varying = var > (mean * mean + self.floor**2) * self.guard**2
        return super().forward(x) * varying.to(x.dtype)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, guard={self.guard}, floor={self.floor}"


def make_norm(kind: str, channels: int, guarded: bool = True) -> nn.Module:
    """Build the normalisation layer ``kind`` for ``channels`` feature maps.

    * ``batch``: BatchNorm2d with running statistics (pix2pix's U-Net).
    * ``instance``: InstanceNorm2d, affine=False, track_running_stats=False, the CycleGAN
      choice; it has no state, so train and eval mode compute the same function. Guarded
      (``GuardedInstanceNorm2d``): a channel constant up to rounding outputs 0; ``guarded=False``
      for networks that never run at inference (the discriminators), where the guard's extra
      reductions would only slow training.
    * ``group``: GroupNorm with the largest group count <= 32 that divides ``channels``.
    * ``layer``: GroupNorm(1, C), layer norm over (C, H, W) per sample, as the WGAN-GP
      paper recommends for critics.
    * ``none``: Identity.
    """
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "instance":
        return GuardedInstanceNorm2d(channels) if guarded else \
            nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
    if kind == "group":
        groups = next(g for g in range(min(MAX_GROUPS, channels), 0, -1) if channels % g == 0)
        return nn.GroupNorm(groups, channels)
    if kind == "layer":
        return nn.GroupNorm(1, channels)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm {kind!r}; known: {', '.join(NORM_KINDS)}")


def conv_bias(kind: str) -> bool:
    """Whether a conv followed by norm ``kind`` carries its own bias: iff it is not batch.

    Batch norm's affine shift makes a conv bias redundant (pix2pix's rule). With instance
    norm the bias is cancelled by the mean subtraction too, but CycleGAN and pix2pix keep
    it, and the published parameter counts (11,378,179; 2,764,737) include it.
    """
    if kind not in NORM_KINDS:
        raise ValueError(f"unknown norm {kind!r}; known: {', '.join(NORM_KINDS)}")
    return kind != "batch"


def check_spatial_size(height: int, width: int, multiple: int, network: str) -> None:
    """Raise a ValueError unless both sides are positive multiples of ``multiple``.

    The message names the multiple and, per offending side, the nearest valid sizes,
    so a wrong ``input_height``/``input_width`` in a config is fixed in one edit.
    """
    problems = []
    for side, size in (("height", height), ("width", width)):
        if size <= 0 or size % multiple:
            below = size // multiple * multiple
            above = below + multiple
            nearest = f"{below} or {above}" if below > 0 else f"{above}"
            problems.append(f"{side} {size} (nearest valid: {nearest})")
    if problems:
        raise ValueError(
            f"{network} needs height and width that are multiples of {multiple}; got "
            + ", ".join(problems)
        )


def make_upsample(kind: str, in_channels: int, out_channels: int, *, kernel_size: int, output_padding: int = 0,
                  bias: bool = True) -> nn.Module:
    """A x2 up-sampling layer ``in_channels`` -> ``out_channels``: (N, C, H, W) -> (N, C', 2H, 2W).

    * ``transpose``: ``ConvTranspose2d(kernel_size, stride 2, padding 1, output_padding)``, the
      reference networks' layer (pix2pix: kernel 4; CycleGAN: kernel 3, output_padding 1).
    * ``resize``: nearest-neighbour x2 resize, then a 3x3 convolution (reflection padded).
      Odena, Dumoulin & Olah, "Deconvolution and Checkerboard Artifacts", Distill 2016: every
      output pixel sees the same number of weights, so there is no checkerboard pattern; it also
      runs faster than the transposed convolution on CPUs (DESIGN.md, "Facts learned").
    """
    if kind == "transpose":
        return nn.ConvTranspose2d(in_channels, out_channels, kernel_size=kernel_size, stride=2, padding=1,
                                  output_padding=output_padding, bias=bias)
    if kind == "resize":
        return nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), nn.ReflectionPad2d(1),
                             nn.Conv2d(in_channels, out_channels, kernel_size=3, bias=bias))
    raise ValueError(f"unknown upsample {kind!r}; known: {', '.join(UPSAMPLE_KINDS)}")
