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

Measured on the six real KITTI holdout frames with right and wrong heights, with and without
the height check below: benchmarks/results/ground.md (``benchmarks/bench_ground.py``, 28 networks;
tolerance 0.5 chosen on the kitti_raw_sample frames). With KITTI's height a1 rises from 0.52 to
0.61; a height 20% off is worse than none. So it is off unless the height is given, and the height
must be right to about 10%. Roll and a sloped or curved road are not modelled.

A height far off is caught per frame (``road_ratio``, ``height_plausible``; the node's
``ground_height_check``, on by default): on the road 4-12 m ahead, in the middle half of the
image, our networks predict about 0.9 of the ground's depth at the right height (0.72-1.09 over
the 28 networks and 2 validation frames; about 1.09 for a network trained with the ground-prior
residual), and 1/k of that for a height k times the true one. Outside ROAD_RATIO_RANGE (chosen on
those validation frames: none skipped at the right height) the node skips the constraint on that
frame and warns. On the holdout frames that brings heights 30-50% too low back to the network's
own scores; one 20-30% too high is still worse than without. A car covering the road ahead also
makes a frame implausible (skipped: the network's depth, as without the constraint).

Frames (REP 103): the camera's optical frame, x right, y down, z forward; depth is z in metres
(REP 118). Pitch is positive when the camera looks down.
"""
from __future__ import annotations

import math

import numpy as np

from .geometry import Intrinsics

# The near road band ``road_ratio`` looks at: ground 4-12 m ahead, the middle half of the columns
# (parked cars and kerbs crowd the sides). ROAD_RATIO_RANGE: the ratios taken as a right height.
ROAD_BAND_M = (4.0, 12.0)
ROAD_RATIO_RANGE = (0.70, 1.15)
MIN_ROAD_PIXELS = 16


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


def road_ratio(depth: np.ndarray, ground: np.ndarray, band_m: tuple[float, float] = ROAD_BAND_M) -> float | None:
    """The median of ``depth / ground`` (both float metres, (H, W)) over the pixels of the middle
    half of the columns whose ground lies ``band_m`` metres ahead: how far the predicted road is
    from the flat ground of the given height (1: on it; the true height over the given one,
    times the network's own bias, when the height is wrong). Non-finite predictions are left
    out; None with fewer than MIN_ROAD_PIXELS left (camera pitched up, tiny image, masked).
    Raises ValueError for arrays of different shapes."""
    if depth.shape != ground.shape:
        raise ValueError(f"depth {depth.shape} and ground {ground.shape} differ in size")
    width = ground.shape[1]
    middle = slice(width // 4, width - width // 4)
    g, d = ground[:, middle], depth[:, middle]
    with np.errstate(invalid="ignore"):
        band = (g >= band_m[0]) & (g <= band_m[1]) & np.isfinite(d)
    if np.count_nonzero(band) < MIN_ROAD_PIXELS:
        return None
    return float(np.median(d[band] / g[band]))


def height_plausible(ratio: float | None, allowed: tuple[float, float] = ROAD_RATIO_RANGE) -> bool:
    """Whether a ``road_ratio`` agrees with the given camera height (None, nothing to judge by: True)."""
    return ratio is None or allowed[0] <= ratio <= allowed[1]


def constrain_if_plausible(depth: np.ndarray, ground: np.ndarray, tolerance: float, max_depth: float = math.inf,
                           check: bool = True) -> tuple[np.ndarray, float | None]:
    """What the node does with ``ground_camera_height``: ``constrain_to_ground``, unless ``check``
    and the frame's ``road_ratio`` is not ``height_plausible``. Returns (depth, None) when it was
    applied, (``depth`` itself, the ratio) when the frame was skipped. Raises as those functions."""
    ratio = road_ratio(depth, ground) if check else None
    if not height_plausible(ratio):
        return depth, ratio
    return constrain_to_ground(depth, ground, tolerance, max_depth), None
