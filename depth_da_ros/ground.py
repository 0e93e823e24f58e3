"""The ground plane under a mounted camera: its depth per pixel, and a constraint on predictions.

A robot knows where its camera is mounted: the height of the optical centre above the ground
and the pitch (from tf, ``base_footprint`` -> the camera's optical frame, or from a parameter).
On flat ground that alone gives every pixel below the horizon a depth (the "flat-ground prior"),
exact on the road and wrong on everything standing on it. A monocular network gets the objects
roughly right and the road only roughly. ``constrain_to_ground`` combines the two:

* nothing below the horizon can be farther than the ground the ray meets (on flat ground), so a
  prediction beyond the ground's depth is replaced by it;
* a prediction within a factor ``1 + tolerance`` nearer than the ground is taken to be the ground
  too (the network saw road, roughly), and gets the ground's exact depth;
* a prediction nearer than that is an obstacle and is kept, as is everything at or above the
  horizon and every "no estimate" (NaN).

Measured on the six real KITTI holdout frames (benchmarks/results/ground.md, 25 networks of
``bench_real.py``; tolerance 0.5 chosen on the kitti_raw_sample frames): abs_rel / a1 0.331 /
0.501 without, 0.297 / 0.605 with KITTI's height; with a height 10% wrong either way a1 still
gains (0.612, 0.549); 20% too low the road's depth is 20% short, just outside a1's 1.25 ratio
(a1 0.395), 20% too high abs_rel gets worse too (0.389 / 0.445). So it is off unless the height
is given, and the height must be right to about 10%. Roll and a sloped or curved road are not
modelled.

Frames (REP 103): the camera's optical frame, x right, y down, z forward; depth is z in metres
(REP 118). Pitch is positive when the camera looks down.
"""
from __future__ import annotations

import math

import numpy as np

from .geometry import Intrinsics


def ground_plane_depth(camera: Intrinsics, height: float, pitch: float = 0.0) -> np.ndarray:
    """float32 (camera.height, camera.width): metres along the optical axis at which each pixel's
    ray meets a flat ground plane ``height`` metres below the optical centre, for a camera pitched
    down by ``pitch`` radians (no roll); +Inf for rays at or above the horizon.

    A ray through pixel row v is (.., (v - cy) / fy, 1) * z; the world's down direction in the
    optical frame is (0, cos pitch, sin pitch), so the ray is ``height`` below the camera at
    z = height / (cos(pitch) * (v - cy) / fy + sin(pitch)). Pitch 0 gives the familiar
    z = fy * height / (v - cy). The depth does not depend on the column u.

    Raises ValueError for a height that is not a positive finite number of metres, or a pitch
    outside (-pi/2, pi/2).
    """
    if not (math.isfinite(height) and height > 0):
        raise ValueError(f"camera height must be a positive number of metres, got {height}")
    if not (math.isfinite(pitch) and abs(pitch) < math.pi / 2):
        raise ValueError(f"camera pitch must be in (-pi/2, pi/2) radians, got {pitch}")
    rows = (np.arange(camera.height, dtype=np.float64) - camera.cy) / camera.fy
    down = math.cos(pitch) * rows + math.sin(pitch)
    with np.errstate(divide="ignore"):
        z = np.where(down > 0, height / np.where(down > 0, down, 1.0), np.inf)
    return np.broadcast_to(z.astype(np.float32)[:, None], (camera.height, camera.width))


def constrain_to_ground(depth: np.ndarray, ground: np.ndarray, tolerance: float,
                        max_depth: float = math.inf) -> np.ndarray:
    """float32 metres like ``depth`` (H, W): ``depth`` with the pixels that are (nearly) ground
    given the ground's depth: where ``depth * (1 + tolerance) >= ground`` (a prediction farther
    than the ground, or less than that factor nearer) and the ground is at most ``max_depth``
    metres away (the model's range: beyond it the ground's depth would be a claim the model
    cannot make). +Inf predictions ("beyond range") on such pixels become the ground's depth,
    NaN ("no estimate") stays NaN, and every other pixel is ``depth`` unchanged. A new array.

    ``ground``: from ``ground_plane_depth`` for the same image size (+Inf above the horizon).
    ``tolerance`` >= 0: 0 keeps only the physical bound (nothing farther than the ground).
    Raises ValueError for a negative or non-finite tolerance, or arrays of different shapes.
    """
    if not (math.isfinite(tolerance) and tolerance >= 0):
        raise ValueError(f"ground tolerance must be a finite number >= 0, got {tolerance}")
    if depth.shape != ground.shape:
        raise ValueError(f"depth {depth.shape} and ground {ground.shape} differ in size")
    with np.errstate(invalid="ignore"):
        ground_like = (depth * np.float32(1.0 + tolerance) >= ground) & (ground <= max_depth)
    return np.where(ground_like, ground, depth).astype(np.float32, copy=False)
