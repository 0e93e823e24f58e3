"""A 2-D laser scan from a depth image, the way depthimage_to_laserscan makes one (pure NumPy, no ROS).

Per image column, the nearest valid range over a band of rows around the optical centre row
(cy): each pixel (u, v) of depth z is back-projected with the rectified P, x = (u - cx) z / fx,
and its range in the horizontal plane is sqrt(x^2 + z^2) (the row's height y is dropped).

Frame convention (REP 103). A LaserScan lies in the x-y plane of its frame, angle 0 on +x and
angles increasing counter-clockwise about +z, so its frame must be x forward, y left, z up: the
camera's *body* frame, not its optical frame (x right, y down, z forward), in which the scan's
points would land in the image plane. With scan frame = (z_opt, -x_opt, -y_opt), a column u
looks along angle theta(u) = atan2(-(u - cx), fx): columns left of cx have positive angles.
Index 0 of ``ranges`` is therefore the rightmost column (angle_min < 0) and the last index the
leftmost (angle_max > 0); the scan spans the image's horizontal field of view between the
centres of its first and last columns. ``scan_frame_for`` names the body frame of an optical
frame by the common driver convention ('<name>_optical_frame' -> '<name>_frame').

Bins are uniform in angle (LaserScan requires it) while columns are uniform in tan(angle), so
each column goes to its nearest bin (the minimum wins where several land in one, so nothing is
lost), and a bin no column landed in takes the column nearest to its angle.

Values, following depthimage_to_laserscan's preferences and REP 117:
- a finite range in [range_min, range_max]: the nearest such in the bin's columns and band;
- otherwise -Inf when a pixel was nearer than range_min (too close to measure: not clearing);
- otherwise +Inf when a pixel was beyond range_max or +Inf in the depth (REP 118 beyond range):
  nothing in range, so costmaps with inf_is_valid clear along the ray;
- otherwise NaN (no valid pixel: NaN, zero or negative depth).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .geometry import Intrinsics

OPTICAL_SUFFIXES = ("_optical_frame", "_optical")


@dataclass(frozen=True)
class Scan:
    """The LaserScan fields this module computes (time_increment and scan_time are 0: one exposure)."""

    angle_min: float
    angle_max: float
    angle_increment: float
    range_min: float
    range_max: float
    ranges: np.ndarray  # float32, len = image width, index 0 at angle_min (rightmost column)

    @property
    def angles(self) -> np.ndarray:
        return self.angle_min + self.angle_increment * np.arange(self.ranges.size)


@dataclass(frozen=True)
class ScanGrid:
    """Column -> bin assignment of one camera (kept per calibration: it depends only on fx, cx, width)."""

    angle_min: float
    angle_max: float
    angle_increment: float
    bin_of_column: np.ndarray  # (width,) int
    column_of_empty_bin: np.ndarray  # (width,) int: nearest column for each bin, used where no column landed
    empty: np.ndarray  # (width,) bool: bins no column landed in


def column_angles(width: int, fx: float, cx: float) -> np.ndarray:
    """Angle of each column's ray in the scan frame (x forward, y left): atan2(-(u - cx), fx)."""
    return np.arctan2(-(np.arange(width, dtype=np.float64) - cx), fx)


def scan_grid(width: int, fx: float, cx: float) -> ScanGrid:
    if width < 2:
        raise ValueError(f"a scan needs an image at least 2 columns wide, got {width}")
    theta = column_angles(width, fx, cx)
    angle_min, angle_max = float(theta[-1]), float(theta[0])
    increment = (angle_max - angle_min) / (width - 1)
    bins = np.clip(np.rint((theta - angle_min) / increment).astype(np.int64), 0, width - 1)
    empty = np.ones(width, dtype=bool)
    empty[bins] = False
    bin_angles = angle_min + increment * np.arange(width)
    nearest = np.clip(np.rint(cx - fx * np.tan(bin_angles)).astype(np.int64), 0, width - 1)
    return ScanGrid(angle_min, angle_max, increment, bins, nearest, empty)


def band_rows(height: int, cy: float, band_height: int) -> tuple[int, int]:
    """Rows [first, last) of a band of ``band_height`` rows centred on row cy, clipped to the image."""
    if band_height < 1:
        raise ValueError(f"band_height must be at least 1, got {band_height}")
    centre = int(math.floor(cy + 0.5))
    first = centre - (band_height - 1) // 2
    first = min(max(first, 0), max(height - band_height, 0))
    return first, min(first + band_height, height)


def depth_to_scan(depth: np.ndarray, camera: Intrinsics, *, band_height: int = 1, range_min: float = 0.1,
                  range_max: float = 30.0, grid: ScanGrid | None = None) -> Scan:
    """The scan of ``depth`` (H x W metres along the optical axis; NaN / <= 0 invalid, +Inf beyond
    range) seen by a camera with rectified intrinsics ``camera`` (fx, cx of P)."""
    if depth.ndim != 2:
        raise ValueError(f"depth must be a 2-D image, got shape {depth.shape}")
    height, width = depth.shape
    camera.check_image_size(height, width)
    if not 0 <= range_min < range_max:
        raise ValueError(f"need 0 <= range_min < range_max, got {range_min}, {range_max}")
    grid = grid or scan_grid(width, camera.fx, camera.cx)
    first, last = band_rows(height, camera.cy, band_height)
    z = np.asarray(depth[first:last], dtype=np.float64)
    x_per_z = (np.arange(width, dtype=np.float64) - camera.cx) / camera.fx
    with np.errstate(invalid="ignore"):
        r = z * np.sqrt(1.0 + x_per_z * x_per_z)  # = sqrt(x^2 + z^2); +Inf stays +Inf, NaN stays NaN
        valid = z > 0  # False for NaN
        in_range = valid & (r >= range_min) & (r <= range_max)
        too_close = valid & (r < range_min)
        beyond = valid & (r > range_max)
    nearest = np.where(in_range, r, np.inf).min(axis=0)  # per column
    column_in = in_range.any(axis=0)
    column_close = too_close.any(axis=0)
    column_beyond = beyond.any(axis=0)

    bins = grid.bin_of_column
    best = np.full(width, np.inf)
    np.minimum.at(best, bins, nearest)
    has_in, has_close, has_beyond = (np.zeros(width, dtype=bool) for _ in range(3))
    np.logical_or.at(has_in, bins, column_in)
    np.logical_or.at(has_close, bins, column_close)
    np.logical_or.at(has_beyond, bins, column_beyond)
    source = grid.column_of_empty_bin[grid.empty]
    best[grid.empty] = nearest[source]
    has_in[grid.empty], has_close[grid.empty] = column_in[source], column_close[source]
    has_beyond[grid.empty] = column_beyond[source]

    ranges = np.where(has_in, best, np.where(has_close, -np.inf, np.where(has_beyond, np.inf, np.nan)))
    return Scan(grid.angle_min, grid.angle_max, grid.angle_increment, float(range_min), float(range_max),
                ranges.astype(np.float32))


def scan_frame_for(depth_frame: str, configured: str = "") -> str:
    """The scan's frame id: ``configured`` when set; else the body frame named after the depth's
    optical frame ('camera_color_optical_frame' -> 'camera_color_frame', 'cam_optical' -> 'cam'),
    else the depth's frame itself (correct only if that frame is x forward, y left, z up)."""
    if configured:
        return configured
    for suffix in OPTICAL_SUFFIXES:
        if depth_frame.endswith(suffix) and len(depth_frame) > len(suffix):
            return depth_frame[: -len(suffix)] + ("_frame" if suffix == "_optical_frame" else "")
    return depth_frame


def is_optical_frame_name(frame_id: str) -> bool:
    return "optical" in frame_id


def scan_points(scan: Scan, *, inf_is_valid: bool = False, obstacle_max_range: float = math.inf,
                raytrace_max_range: float = math.inf) -> tuple[np.ndarray, np.ndarray]:
    """Read a scan back as Nav2's obstacle/voxel layer does: returns (marking points, clearing
    ray end points), each N x 3 in the scan frame.

    With ``inf_is_valid`` a +Inf range is first replaced by range_max - 1e-4 (the layer's
    laserScanValidInfCallback); laser_geometry's projectLaser then keeps finite ranges in
    [range_min, range_max) as points (NaN and -Inf dropped). A point marks when nearer than
    ``obstacle_max_range``, and a clearing ray runs to it, cut at ``raytrace_max_range``. So a
    +Inf ray clears without marking only if obstacle_max_range < range_max."""
    r = scan.ranges.astype(np.float64)
    theta = scan.angles
    with np.errstate(invalid="ignore"):
        if inf_is_valid:
            r = np.where(np.isposinf(r), scan.range_max - 1e-4, r)
        kept = np.isfinite(r) & (r >= scan.range_min) & (r < scan.range_max)
        marks = kept & (r < obstacle_max_range)
    clear_r = np.minimum(r, raytrace_max_range)

    def points(mask: np.ndarray, rr: np.ndarray) -> np.ndarray:
        return np.stack([rr[mask] * np.cos(theta[mask]), rr[mask] * np.sin(theta[mask]),
                         np.zeros(int(mask.sum()))], axis=1)

    return points(marks, r), points(kept, clear_r)


def scan_to_optical(points: np.ndarray) -> np.ndarray:
    """Points in the scan (body) frame -> the optical frame at the same origin: (x, y, z)_opt = (-y, -z, x)."""
    return np.stack([-points[:, 1], -points[:, 2], points[:, 0]], axis=1)


class ScanMaker:
    """Scans of a stream: the column -> bin grid kept for the last camera (fx, cx, width), and
    the scan's frame with a problem to warn about when it looks like an optical frame."""

    def __init__(self) -> None:
        self._key: tuple[int, float, float] | None = None
        self._grid: ScanGrid | None = None

    def make(self, depth: np.ndarray, camera: Intrinsics, depth_frame: str, *, band_height: int, range_min: float,
             range_max: float, frame_id: str = "") -> tuple[Scan, str, str | None]:
        key = (camera.width, camera.fx, camera.cx)
        if key != self._key:
            self._key, self._grid = key, scan_grid(camera.width, camera.fx, camera.cx)
        scan = depth_to_scan(depth, camera, band_height=band_height, range_min=range_min, range_max=range_max,
                             grid=self._grid)
        frame = scan_frame_for(depth_frame, frame_id)
        problem = None
        if is_optical_frame_name(frame):
            problem = (f"scan is published in frame '{frame}', whose name says optical (x right, y down): a "
                       "LaserScan's angles turn about +z from +x, so it needs a frame with x forward, y left, z up "
                       "at the camera; set scan_frame_id")
        elif not frame_id and frame == depth_frame:
            problem = (f"scan is published in the depth's frame '{frame}' (scan_frame_id empty and the name has no "
                       "'_optical_frame' suffix to derive a body frame from): correct only if that frame is x forward, "
                       "y left, z up; set scan_frame_id")
        return scan, frame, problem
