"""Networks of the two stages: ResNet style adapter, U-Net depth generator, PatchGANs.

Importing this package registers every network in ``NETWORKS``.
"""
from __future__ import annotations

from depth_da_ros.models.layers import NORM_KINDS, conv_bias, make_norm
from depth_da_ros.models.patchgan import PatchGAN, PatchGANCritic
from depth_da_ros.models.presets import PRESETS, ModelPreset, get_preset
from depth_da_ros.models.registry import NETWORKS, NetworkSpec, build_network, count_parameters
from depth_da_ros.models.resnet_generator import ResnetGenerator
from depth_da_ros.models.unet import UnetGenerator

__all__ = [
    "NETWORKS",
    "NORM_KINDS",
    "PRESETS",
    "ModelPreset",
    "NetworkSpec",
    "PatchGAN",
    "PatchGANCritic",
    "ResnetGenerator",
    "UnetGenerator",
    "build_network",
    "conv_bias",
    "count_parameters",
    "get_preset",
    "make_norm",
]
