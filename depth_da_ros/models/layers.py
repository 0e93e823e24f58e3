"""Normalisation-layer factory and input-size checks shared by the networks."""
from __future__ import annotations

from torch import nn

NORM_KINDS = ("batch", "instance", "group", "layer", "none")
MAX_GROUPS = 32


def make_norm(kind: str, channels: int) -> nn.Module:
    """Build the normalisation layer ``kind`` for ``channels`` feature maps.

    * ``batch``: BatchNorm2d with running statistics (pix2pix's U-Net).
    * ``instance``: InstanceNorm2d, affine=False, track_running_stats=False, the CycleGAN
      choice; it has no state, so train and eval mode compute the same function.
    * ``group``: GroupNorm with the largest group count <= 32 that divides ``channels``.
    * ``layer``: GroupNorm(1, C), layer norm over (C, H, W) per sample, as the WGAN-GP
      paper recommends for critics.
    * ``none``: Identity.
    """
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
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
