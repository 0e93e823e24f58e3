"""Pieces both stages use: validation of a depth predictor, image grids, camera metadata."""
from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from torchvision.utils import make_grid

from depth_da_ros.camera import PinholeCamera
from depth_da_ros.metrics import evaluate_frames
from depth_da_ros.normalization import network_to_image
from depth_da_ros.visualization import colorize_depth
from training.config import ValidationConfig
from training.datasets import DataSpec

# SYNTHIA-RAND-CITYSCAPES: f = 532.74 px at 1280x760, principal point at the centre.
SYNTHIA_CAMERA = PinholeCamera(1280, 760, 532.74, 532.74, 640.0, 380.0)


def training_camera(spec: DataSpec, height: int, width: int) -> dict | None:
    """Intrinsics of the training images at the network size, when the data source fixes them.

    Inference uses them to rescale metric depth for a camera with another focal length.
    """
    if spec.kind == "procedural":
        camera = PinholeCamera.kitti_like(height, width)
    elif spec.kind == "synthia":
        camera = SYNTHIA_CAMERA.resized(height, width)
    else:
        return None
    return dataclasses.asdict(camera)


@torch.no_grad()
def evaluate_depth(predict: Callable[[torch.Tensor], torch.Tensor], dataset: Dataset, cfg: ValidationConfig,
                   device: torch.device, batch_size: int = 4) -> dict[str, float]:
    """The seven metrics in metres, per image then averaged. ``predict`` maps network-range
    images to metres; ground truth inf (sky) and NaN count as invalid."""
    pairs = []
    for batch in DataLoader(dataset, batch_size=batch_size, num_workers=0):
        pred = predict(batch["image"].to(device)).float().cpu().numpy()
        gt = batch["depth"].numpy()
        pairs += [(g[0], p[0]) for g, p in zip(gt, pred)]
    metrics = evaluate_frames(pairs, crop=cfg.crop, min_depth=cfg.min_depth, max_depth=cfg.max_depth)
    return {k: float(v) for k, v in metrics.items() if k != "frames"}


def to_display(image: torch.Tensor) -> torch.Tensor:
    """Network-range image batch -> float [0, 1] for TensorBoard."""
    return (network_to_image(image.detach().float().cpu()) / 255.0).clamp(0, 1)


def depth_display(depth_m: torch.Tensor, max_depth: float) -> torch.Tensor:
    """Metres (N, 1, H, W) -> colourised float [0, 1] (N, 3, H, W), the same map as RViz."""
    images = [colorize_depth(d[0].detach().float().cpu().numpy(), max_depth=max_depth) for d in depth_m]
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 255.0


def grid_rows(*columns: torch.Tensor, count: int) -> torch.Tensor:
    """One row per sample, one column per tensor (each (N, 3, H, W) in [0, 1])."""
    n = min(count, columns[0].shape[0])
    tiles = [col[i] for i in range(n) for col in columns]
    return make_grid(tiles, nrow=len(columns), padding=2)
