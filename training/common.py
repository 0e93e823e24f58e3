"""Pieces both stages use: validation of a depth predictor, image grids, camera metadata."""
from __future__ import annotations

import logging
from typing import Callable

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from torchvision.utils import make_grid

from depth_da_ros.camera import PinholeCamera
from depth_da_ros.metrics import METRIC_NAMES, evaluate_frame
from depth_da_ros.normalization import network_to_image
from depth_da_ros.visualization import colorize_depth
from training.config import ValidationConfig
from training.datasets import DataSpec, build_dataset, source_camera

LOG = logging.getLogger("training")

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
    elif spec.kind in ("vkitti2", "carla"):  # from the dataset's intrinsics file / field of view
        native = source_camera(spec)
        if native is None:
            return None
        camera = native.resized(height, width)
    else:
        return None
    return camera.to_dict()  # plain Python numbers: checkpoints load with weights_only=True


def deployment_camera(spec: DataSpec) -> dict | None:
    """The camera the adapted model is meant for: the camera_info of a rosbag real domain (its
    ``camera_info_topic``), at the camera's own resolution, as ``PinholeCamera`` fields; None
    for any other source. Recorded in style checkpoints and exports next to ``training_camera``."""
    if spec.kind != "rosbag" or not spec.camera_info_topic:
        return None
    from depth_da_ros.bags.frames import bag_camera

    # Plain Python numbers (checkpoints load with weights_only=True, which refuses NumPy scalars), without
    # P's translation: the stored record is a PinholeCamera's.
    return bag_camera(spec.root, spec.camera_info_topic, spec.start, spec.end).to_dict()


def depth_validation_set(spec: DataSpec, height: int, width: int, seed: int, what: str) -> Dataset | None:
    """The validation frames of ``spec`` when they have depth; None, with a warning that ``what``
    is not validated, when they have none (e.g. a robot's bag without a depth camera)."""
    dataset = build_dataset(spec, height, width, augment=False, seed=seed)
    if "depth" in dataset[0]:
        return dataset
    LOG.warning("data.val (%s) has no depth: %s is not validated by depth metrics (best.pt is the latest "
                "checkpoint)", spec.kind, what)
    return None


@torch.no_grad()
def evaluate_depth(predict: Callable[[torch.Tensor], torch.Tensor], dataset: Dataset, cfg: ValidationConfig,
                   device: torch.device, batch_size: int = 4) -> dict[str, float]:
    """The seven metrics in metres, per image then averaged. ``predict`` maps network-range
    images to metres; ground truth inf (sky) and NaN count as invalid.

    A frame without a valid ground-truth pixel (all NaN, or nothing inside the crop and depth
    range) is skipped with a warning, as training/evaluate.py does; when no frame has any,
    the result is empty ({}): the run goes on and keeps writing checkpoints."""
    per_frame: list[dict[str, float]] = []
    skipped: list[str] = []
    for batch in DataLoader(dataset, batch_size=batch_size, num_workers=0):
        pred = predict(batch["image"].to(device)).float().cpu().numpy()
        start = len(per_frame) + len(skipped)
        indices = batch["index"].tolist() if "index" in batch else range(start, start + len(pred))
        for index, g, p in zip(indices, batch["depth"].numpy(), pred):
            try:
                per_frame.append(evaluate_frame(g[0], p[0], cfg.crop, cfg.min_depth, cfg.max_depth)[0])
            except ValueError as exc:
                skipped.append(f"{index} ({exc})")
    if skipped:
        LOG.warning("validation: %d of %d frame(s) not evaluated, no ground truth to compare with: sample %s%s",
                    len(skipped), len(skipped) + len(per_frame), skipped[0],
                    f" and {len(skipped) - 1} more" if len(skipped) > 1 else "")
    if not per_frame:
        LOG.warning("validation measured nothing: no frame of the validation set has valid ground truth")
        return {}
    return {name: float(np.mean([errors[name] for errors in per_frame])) for name in METRIC_NAMES}


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
