"""Tiny self-describing depth and style checkpoints for tests that need *a* model, not a good one.

The checkpoint has the layout training writes (see depth_da_ros/checkpoint.py), so the torch
backend loads it directly and ``depth_da_ros.export.export_onnx`` exports it.
"""
from __future__ import annotations

from pathlib import Path

import torch

from depth_da_ros.camera import PinholeCamera
from depth_da_ros.checkpoint import network_entry, save_checkpoint
from depth_da_ros.models import NetworkSpec
from depth_da_ros.normalization import DepthCodec

TINY_SIZE = (64, 192)  # (height, width): multiples of 2**6 for 6 down-samplings, KITTI's aspect
TINY_MAX_DEPTH = 80.0


def write_depth_checkpoint(path: Path, size: tuple[int, int] = TINY_SIZE, *, num_downs: int = 6, ngf: int = 8,
                           max_depth: float = TINY_MAX_DEPTH, seed: int = 0) -> Path:
    """A U-Net depth checkpoint with fresh weights (eval-mode batch norm), the KITTI-like
    training camera at ``size`` and ``max_depth``; returns ``path``."""
    torch.manual_seed(seed)
    spec = NetworkSpec("unet", {"input_nc": 3, "output_nc": 1, "num_downs": num_downs, "ngf": ngf, "norm": "batch"})
    save_checkpoint(path, {
        "stage": "depth", "preset": "lite", "deploy": ["depth"], "step": 1, "config": {}, "metrics": {},
        "input_size": list(size), "depth_codec": DepthCodec(max_depth).to_dict(),
        "training_camera": PinholeCamera.kitti_like(*size).__dict__,
        "networks": {"depth": network_entry(spec.build(), spec)},
    })
    return path


def write_style_checkpoint(path: Path, size: tuple[int, int] = TINY_SIZE, *, ngf: int = 8, n_blocks: int = 2,
                           seed: int = 0) -> Path:
    """A ResNet style-adapter checkpoint (real -> synthetic) with fresh weights at ``size``;
    returns ``path``. Next to a depth checkpoint it makes the fused model."""
    torch.manual_seed(seed)
    spec = NetworkSpec("resnet_generator", {"input_nc": 3, "output_nc": 3, "ngf": ngf, "n_blocks": n_blocks,
                                            "norm": "instance"})
    save_checkpoint(path, {
        "stage": "style", "preset": "lite", "deploy": ["style"], "step": 1, "config": {}, "metrics": {},
        "input_size": list(size), "networks": {"style": network_entry(spec.build(), spec)},
    })
    return path
