"""Temporal stability of depth predictions under known camera motion (pure NumPy).

Frames i and j of a sequence see a static scene from camera poses that differ by a pure
translation: a point at P in camera i is at P + t in camera j (``t`` in camera coordinates, x
right, y down, z forward). The procedural driving sequences move the camera ``step`` metres
along the road, the camera yawed by ``yaw`` (positive: looking right): ``driving_translation``.

Correspondences come from the exact depth (``correspondences``): pixel p of frame i, whose true
point lands at pixel q of frame j and is visible there (frame j's exact depth agrees within
``tolerance``), pairs with q. Because the motion is a translation, a depth d at p becomes the
depth d + t_z at q, whatever d is, so flicker is measured without asking the prediction to be
geometrically right first:

- ``tae``: temporal abs_rel error, the mean over the pairs of |(d_i(p) + t_z) - d_j(q)| / d_j(q)
  (frame i's prediction moved into frame j against frame j's), averaged with the reverse
  direction (|(d_j(q) - t_z) - d_i(p)| / d_i(p)). No alignment: it is 0 for the true depth, but
  a steady prediction of the wrong scale s x gt still scores |s - 1| |t_z| / (s gt_j) (the
  motion is in metres), hence the scale-aligned variant: divide each sequence's predictions by
  their median scale ratio first.
- ``scale_ratio``: median(pred / gt) of one frame, whose change over a sequence is the
  global scale flicker.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .camera import PinholeCamera


@dataclass(frozen=True)
class Correspondences:
    source: tuple[np.ndarray, np.ndarray]  # (rows, cols) in frame i
    target: tuple[np.ndarray, np.ndarray]  # (rows, cols) in frame j
    t_z: float  # depth change of every point from frame i to frame j

    def __len__(self) -> int:
        return int(self.source[0].size)


def driving_translation(step: float, yaw: float) -> np.ndarray:
    """Camera-frame translation of the scene's points when a camera yawed by ``yaw`` (radians,
    positive right) moves ``step`` metres forward along the road (world Z): (step sin yaw, 0, -step cos yaw)."""
    return np.array([step * math.sin(yaw), 0.0, -step * math.cos(yaw)])


def correspondences(gt_i: np.ndarray, gt_j: np.ndarray, camera: PinholeCamera, t: np.ndarray, *,
                    max_depth: float = 80.0, tolerance: float = 0.03) -> Correspondences:
    """Pixels of frame i whose exact point is visible in frame j, and where (see the module doc)."""
    height, width = gt_i.shape
    v, u = np.mgrid[0:height, 0:width]
    with np.errstate(invalid="ignore"):
        valid = np.isfinite(gt_i) & (gt_i > 1e-3) & (gt_i <= max_depth)
    z = gt_i[valid].astype(np.float64)
    x = (u[valid] - camera.cx) / camera.fx * z + t[0]
    y = (v[valid] - camera.cy) / camera.fy * z + t[1]
    z2 = z + t[2]
    ahead = z2 > 1e-3
    with np.errstate(invalid="ignore", divide="ignore"):
        qu = np.rint(camera.fx * x / z2 + camera.cx)
        qv = np.rint(camera.fy * y / z2 + camera.cy)
    inside = ahead & (qu >= 0) & (qu < width) & (qv >= 0) & (qv < height)
    qu, qv, z2 = qu[inside].astype(np.int64), qv[inside].astype(np.int64), z2[inside]
    seen = gt_j[qv, qu].astype(np.float64)
    with np.errstate(invalid="ignore"):
        visible = np.isfinite(seen) & (seen <= max_depth) & (np.abs(seen - z2) <= tolerance * z2)
    rows, cols = v[valid][inside][visible], u[valid][inside][visible]
    return Correspondences((rows, cols), (qv[visible], qu[visible]), float(t[2]))


def tae(pred_i: np.ndarray, pred_j: np.ndarray, pairs: Correspondences) -> float:
    """Temporal abs_rel error of a pair of predictions, both directions (module doc); NaN without pairs."""
    a = pred_i[pairs.source].astype(np.float64)
    b = pred_j[pairs.target].astype(np.float64)
    ok = np.isfinite(a) & np.isfinite(b) & (a > 0) & (b > 0)
    if not ok.any():
        return math.nan
    a, b = a[ok], b[ok]
    forward = np.abs(a + pairs.t_z - b) / b
    backward = np.abs(b - pairs.t_z - a) / a
    return float(0.5 * (forward.mean() + backward.mean()))


def scale_ratio(pred: np.ndarray, gt: np.ndarray, max_depth: float = 80.0) -> float:
    """median(pred / gt) over the pixels with gt in (1e-3, max_depth] and a finite positive prediction."""
    with np.errstate(invalid="ignore"):
        mask = np.isfinite(gt) & (gt > 1e-3) & (gt <= max_depth) & np.isfinite(pred) & (pred > 0)
    return float(np.median(pred[mask] / gt[mask])) if mask.any() else math.nan


def warp_depth(previous: np.ndarray, depth: np.ndarray, camera: PinholeCamera, t: np.ndarray) -> np.ndarray:
    """``previous`` (frame i) seen from frame j, looked up backwards through frame j's ``depth``: pixel
    q's point (from depth[q]) is moved back by ``t`` into frame i, ``previous`` is read at its
    nearest pixel and moved forward again (+ t_z). NaN where that falls outside frame i or either
    depth is missing. Where depth[q] is wrong or q was occluded in frame i the two disagree, which
    ``smooth_with_motion`` detects."""
    height, width = depth.shape
    v, u = np.mgrid[0:height, 0:width]
    z = depth.astype(np.float64)
    with np.errstate(invalid="ignore"):
        x = (u - camera.cx) / camera.fx * z - t[0]
        y = (v - camera.cy) / camera.fy * z - t[1]
        z1 = z - t[2]
        pu = np.rint(camera.fx * x / z1 + camera.cx)
        pv = np.rint(camera.fy * y / z1 + camera.cy)
        ok = np.isfinite(z1) & (z1 > 1e-3) & (pu >= 0) & (pu < width) & (pv >= 0) & (pv < height)
    out = np.full((height, width), np.nan, np.float32)
    out[ok] = previous[pv[ok].astype(np.int64), pu[ok].astype(np.int64)] + t[2]
    return out


def smooth_with_motion(previous: np.ndarray | None, depth: np.ndarray, camera: PinholeCamera, t: np.ndarray,
                       alpha: float = 0.5, reset: float = 0.15) -> np.ndarray:
    """A per-pixel temporal filter that needs the ego-motion ``t`` since the previous frame: the
    previous output warped into this frame (``warp_depth``), blended as alpha x warped +
    (1 - alpha) x depth where the two agree within ``reset`` (relative), else this frame's depth
    (disocclusion, moving objects, a wrong previous estimate: reset)."""
    if previous is None:
        return depth
    warped = warp_depth(previous, depth, camera, t)
    with np.errstate(invalid="ignore", divide="ignore"):
        agree = np.isfinite(warped) & np.isfinite(depth) & (np.abs(warped - depth) <= reset * depth)
    return np.where(agree, alpha * warped + (1 - alpha) * depth, depth).astype(np.float32)


def smooth_static(previous: np.ndarray, depth: np.ndarray, alpha: float, reset: float) -> np.ndarray:
    """``smooth_with_motion`` without ego-motion (the camera taken as still between two frames):
    alpha x previous + (1 - alpha) x depth where both are finite and agree within ``reset``
    (relative to depth), else depth. At 10 Hz and 1 m per frame, nearby surfaces change by more
    than ``reset`` and reset; far ones, which change little, are smoothed."""
    with np.errstate(invalid="ignore", divide="ignore"):
        agree = np.isfinite(previous) & np.isfinite(depth) & (np.abs(previous - depth) <= reset * depth)
    return np.where(agree, alpha * previous + (1 - alpha) * depth, depth).astype(np.float32)


TEMPORAL_MAX_GAP_S = 1.0  # a larger gap between two stamps (or one going back: a bag loop) restarts the filter


class TemporalSmoother:
    """The node's ``temporal_smoothing``: ``smooth_static`` on a stream, restarted when the camera
    (``key``: frame id and size) changes, the stamps jump back or by more than TEMPORAL_MAX_GAP_S,
    or the filter is off (alpha 0)."""

    def __init__(self, max_gap_s: float = TEMPORAL_MAX_GAP_S) -> None:
        self.max_gap_ns = int(max_gap_s * 1e9)
        self._previous: np.ndarray | None = None
        self._key: object = None
        self._stamp_ns = 0

    def apply(self, depth: np.ndarray, key: object, stamp_ns: int, alpha: float, reset: float) -> np.ndarray:
        if alpha <= 0:
            self._previous = None
            return depth
        gap = stamp_ns - self._stamp_ns
        usable = (self._previous is not None and self._key == key and self._previous.shape == depth.shape
                  and 0 <= gap <= self.max_gap_ns)
        out = smooth_static(self._previous, depth, alpha, reset) if usable else depth
        self._previous, self._key, self._stamp_ns = out, key, stamp_ns
        return out
