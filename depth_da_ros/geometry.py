"""Depth image -> 3D points, without ROS: intrinsics from CameraInfo's P, metric focal rescale,
and point buffers laid out byte for byte as ``sensor_msgs/PointCloud2`` expects them.

Back-projection uses the rectified projection matrix P (not K): depth images are rectified,
and P holds the intrinsics of the rectified image. A pixel (u, v) with depth z (metres along
the optical axis, REP 118) is the point, in the image's own optical frame (REP 103: x right,
y down, z forward)::

    x = (u - cx) * z / fx        y = (v - cy) * z / fy

P's fourth column (Tx, Ty) is not applied. For the second camera of a stereo pair it places
that camera's optical centre in the *reference* camera's frame (Tx = -fx * baseline); the
cloud is published in the image's own frame (its header's ``frame_id``), where the centre is
the origin, so the same formula holds for both cameras. ``depth_image_proc`` does the same.

Binning and ROI are applied as ``image_geometry`` does for a rectified image: the principal
point is shifted by the ROI offset, then focal lengths and principal point are divided by
the binning factors.

Byte layout: ``xyz`` is three little-endian float32 (12 bytes a point); ``xyzrgb`` adds
``rgb``, a float32 whose four bytes are the packed colour 0x00RRGGBB, as PCL writes it and
RViz's "RGB8" colour transformer reads it (16 bytes a point).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

import numpy as np

from .camera import CameraInfoError, PinholeCamera

SCALE_MODES = ("none", "focal")
# How a frame whose aspect ratio differs from the network's is fitted to the network input.
ASPECT_POLICIES = ("stretch", "crop", "pad")
# Frames within this relative difference of the network's aspect ratio are stretched under every
# policy: KITTI's 1242x375 (3.312) vs 640x192 (3.333) is 0.6% off, and cropping or padding a few
# rows would only lose or add pixels.
ASPECT_TOLERANCE = 0.02
# REP 118: a prediction at or above this fraction of the model's max depth is "beyond range".
BEYOND_RANGE_FRACTION = 0.98

# sensor_msgs/PointField datatypes (the ROS constants, copied so this module needs no ROS).
POINT_FIELD_UINT32 = 6
POINT_FIELD_FLOAT32 = 7


@dataclass(frozen=True)
class PointFieldSpec:
    """One ``sensor_msgs/PointField``: name, byte offset in a point, datatype constant, count."""

    name: str
    offset: int
    datatype: int
    count: int = 1


XYZ_FIELDS = (
    PointFieldSpec("x", 0, POINT_FIELD_FLOAT32),
    PointFieldSpec("y", 4, POINT_FIELD_FLOAT32),
    PointFieldSpec("z", 8, POINT_FIELD_FLOAT32),
)
XYZRGB_FIELDS = XYZ_FIELDS + (PointFieldSpec("rgb", 12, POINT_FIELD_FLOAT32),)


@dataclass(frozen=True)
class Intrinsics(PinholeCamera):
    """Rectified intrinsics of one image, as a ROS CameraInfo gives them: a ``PinholeCamera`` (size in
    pixels, P's entries after binning and ROI) that also keeps P's translation column, so ``P``
    reproduces the camera_info's. Validation, ``K`` and ``resized`` (which returns a plain
    ``PinholeCamera``: a baseline does not scale with the image) are ``PinholeCamera``'s; see
    ``depth_da_ros.camera`` for why the stored record has no translation."""

    tx: float = 0.0  # P[0, 3]: -fx * baseline for the second camera of a stereo pair
    ty: float = 0.0  # P[1, 3]

    FOCAL_HINT = " (an all-zero P means the camera is uncalibrated: set the intrinsics parameter)"

    @classmethod
    def from_camera_info(
        cls,
        width: int,
        height: int,
        p: Sequence[float],
        binning_x: int = 0,
        binning_y: int = 0,
        roi: tuple[int, int, int, int] = (0, 0, 0, 0),
    ) -> Intrinsics:
        """From CameraInfo fields: full-sensor ``width``/``height``, the 12 values of P (row
        major), binning (0 or 1 = none) and ``roi`` = (x_offset, y_offset, width, height),
        all zero for the full image."""
        p = np.asarray(p, dtype=np.float64).reshape(-1)
        if p.size != 12:
            raise CameraInfoError(f"P must have 12 values, got {p.size}")
        bx, by = max(int(binning_x), 1), max(int(binning_y), 1)
        x_offset, y_offset, roi_width, roi_height = (int(v) for v in roi)
        full_roi = roi_width == 0 or roi_height == 0
        out_width = (width if full_roi else roi_width) // bx
        out_height = (height if full_roi else roi_height) // by
        ox, oy = (0, 0) if full_roi else (x_offset, y_offset)
        return cls(out_width, out_height, p[0] / bx, p[5] / by, (p[2] - ox) / bx, (p[6] - oy) / by,
                   p[3] / bx, p[7] / by)

    @classmethod
    def from_vector(cls, values: Sequence[float], width: int, height: int) -> Intrinsics:
        """From ``[fx, fy, cx, cy]`` (the node's ``intrinsics`` parameter) for a ``width`` x ``height`` image."""
        if len(values) != 4:
            raise CameraInfoError(f"intrinsics must be [fx, fy, cx, cy], got {len(values)} values")
        fx, fy, cx, cy = (float(v) for v in values)
        return cls(width, height, fx, fy, cx, cy)

    @property
    def P(self) -> np.ndarray:
        """The 3x4 P of this image (binning and ROI already applied), translation included."""
        return np.hstack([self.K, [[self.tx], [self.ty], [0.0]]])

    def check_image_size(self, height: int, width: int) -> None:
        """Raise CameraInfoError unless the image is the size this calibration describes."""
        if (height, width) != (self.height, self.width):
            raise CameraInfoError(
                f"camera_info describes a {self.width}x{self.height} image but the image is {width}x{height}"
            )


@dataclass(frozen=True)
class NetworkWindow:
    """The rectangle of a frame that is resized to the network input, in frame pixels: top-left
    corner (``x``, ``y``) and size. It extends beyond the frame where the frame is padded
    (negative ``x``/``y`` or past the frame's edge) and lies inside it where it is cropped."""

    x: int
    y: int
    width: int
    height: int

    def __post_init__(self) -> None:
        if self.width <= 0 or self.height <= 0:
            raise ValueError(f"window size must be positive, got {self.width}x{self.height}")

    @classmethod
    def whole(cls, height: int, width: int) -> NetworkWindow:
        return cls(0, 0, width, height)


def network_window(frame_size: tuple[int, int], network_size: tuple[int, int], policy: str) -> NetworkWindow:
    """Where the network input lies in a frame of ``frame_size`` (height, width) under ``policy``.

    * ``stretch``: the whole frame, resized to the network size whatever its aspect ratio (a
      4:3 frame into 192x640 is squashed 2.5x vertically).
    * ``crop``: the largest centred window of the network's aspect ratio inside the frame; the
      rest of the frame gets no depth (NaN).
    * ``pad``: the smallest centred window of the network's aspect ratio around the frame; the
      frame is padded (mirrored) to it, so every pixel gets depth at a lower resolution.

    Frames within ``ASPECT_TOLERANCE`` of the network's aspect ratio get the whole frame under
    every policy.
    """
    if policy not in ASPECT_POLICIES:
        raise ValueError(f"unknown aspect policy {policy!r}; known: {', '.join(ASPECT_POLICIES)}")
    height, width = frame_size
    net_height, net_width = network_size
    if min(height, width, net_height, net_width) <= 0:
        raise ValueError(f"sizes must be positive, got frame {frame_size} and network {network_size}")
    frame_aspect, net_aspect = width / height, net_width / net_height
    if policy == "stretch" or abs(frame_aspect / net_aspect - 1.0) <= ASPECT_TOLERANCE:
        return NetworkWindow.whole(height, width)
    taller = frame_aspect < net_aspect  # e.g. 4:3 into 10:3
    if taller == (policy == "crop"):  # keep the width, window height from the network's aspect
        window_height = max(1, round(width / net_aspect))
        return NetworkWindow(0, (height - window_height) // 2, width, window_height)
    window_width = max(1, round(height * net_aspect))
    return NetworkWindow((width - window_width) // 2, 0, window_width, height)


def horizon_window(frame_size: tuple[int, int], network_size: tuple[int, int], source_cy: float,
                   target_cy: float) -> NetworkWindow:
    """The window of the network's aspect ratio inside a frame, placed so that the frame's
    principal-point row lands where the training camera has it (a crop for training frames).

    ``frame_size`` and ``network_size`` are (height, width) in pixels; ``source_cy`` and
    ``target_cy`` are the principal point's row as a fraction of the image height (frame and
    training camera). A frame taller than the network's aspect keeps its full width and gets a
    horizontal band with the principal point at ``target_cy`` of the band (clamped to the
    frame); a wider frame keeps its full height and gets a centred window. The horizon of a
    level road camera passes through the principal point, so this keeps a dash camera's road
    and horizon where a KITTI-like training camera sees them, instead of squashing a 16:9
    frame into 10:3 (which a ``stretch`` would do, bending every slope and size cue).
    Raises ValueError for non-positive sizes or fractions outside [0, 1].
    """
    height, width = frame_size
    net_height, net_width = network_size
    if min(height, width, net_height, net_width) <= 0:
        raise ValueError(f"sizes must be positive, got frame {frame_size} and network {network_size}")
    if not (0.0 <= source_cy <= 1.0 and 0.0 <= target_cy <= 1.0):
        raise ValueError(f"principal-point rows must be fractions in [0, 1], got {source_cy} and {target_cy}")
    net_aspect = net_width / net_height
    if abs(width / height / net_aspect - 1.0) <= ASPECT_TOLERANCE:
        return NetworkWindow.whole(height, width)
    if width / height < net_aspect:  # taller: a band of full width
        band = max(1, min(height, round(width / net_aspect)))
        top = round(source_cy * height - target_cy * band)
        return NetworkWindow(0, int(np.clip(top, 0, height - band)), width, band)
    window_width = max(1, min(width, round(height * net_aspect)))
    return NetworkWindow((width - window_width) // 2, 0, window_width, height)


def focal_scale(camera: PinholeCamera, training: PinholeCamera, window: NetworkWindow | None = None) -> float:
    """Factor that turns the network's depth into metres for ``camera``: f_camera / f_training.

    The network infers depth from apparent size, learnt with the training camera's focal
    length at its input size. The frame's ``window`` (default: the whole frame) is resized to
    that input size first, so the camera's focal length is compared after the same resize. A
    resize that changes the aspect ratio (``stretch``) scales fx and fy differently; their
    geometric mean is used on both sides.
    """
    window = NetworkWindow.whole(camera.height, camera.width) if window is None else window
    sx, sy = training.width / window.width, training.height / window.height
    return math.sqrt(camera.fx * sx * camera.fy * sy) / math.sqrt(training.fx * training.fy)


def scale_depth(depth: np.ndarray, mode: str, camera: PinholeCamera | None,
                training: PinholeCamera | None, window: NetworkWindow | None = None) -> tuple[np.ndarray, float]:
    """Apply ``mode`` ("none" or "focal") to float32 metres; returns (depth, factor used).

    "focal" needs both cameras; without one of them the depth is returned unscaled (factor 1),
    and the caller decides whether to warn. ``window``: see ``focal_scale``. NaN and +Inf
    stay what they are.
    """
    if mode not in SCALE_MODES:
        raise ValueError(f"unknown scale mode {mode!r}; known: {', '.join(SCALE_MODES)}")
    if mode == "none" or camera is None or training is None:
        return depth, 1.0
    factor = focal_scale(camera, training, window)
    return (depth * np.float32(factor)).astype(np.float32, copy=False), factor


def mark_beyond_range(depth: np.ndarray, max_depth: float, fraction: float = BEYOND_RANGE_FRACTION) -> np.ndarray:
    """REP 118 in place on float32 metres as the network predicted them (before any rescaling):
    a prediction at or above ``fraction * max_depth`` becomes +Inf ("beyond range": the network
    saturates there, on the sky and on anything farther than it was trained for), and a
    prediction <= 0 becomes NaN ("no estimate"). NaN stays NaN. Returns ``depth``.

    ``fraction`` in (0, 1]; 1 marks only exactly saturated pixels.
    """
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"beyond-range fraction must be in (0, 1], got {fraction}")
    with np.errstate(invalid="ignore"):
        np.copyto(depth, np.float32(np.inf), where=depth >= np.float32(fraction * max_depth))
        np.copyto(depth, np.float32(np.nan), where=depth <= 0)
    return depth


@dataclass(frozen=True)
class PointCloudBuffer:
    """What a ``sensor_msgs/PointCloud2`` carries, as plain values: ``data`` is the C-contiguous
    little-endian byte buffer (uint8, ``row_step * height`` bytes)."""

    data: np.ndarray
    height: int
    width: int
    fields: tuple[PointFieldSpec, ...]
    point_step: int
    row_step: int
    is_dense: bool

    @property
    def points(self) -> np.ndarray:
        """(height, width, 3) float32 view of x, y, z (for tests and consumers without ROS)."""
        floats = self.data.view("<f4").reshape(self.height, self.width, self.point_step // 4)
        return floats[:, :, :3]

    @property
    def colors(self) -> np.ndarray:
        """(height, width, 3) uint8 RGB unpacked from the ``rgb`` field as RViz reads it."""
        packed = self.data.view("<u4").reshape(self.height, self.width, self.point_step // 4)[:, :, 3]
        return np.stack([(packed >> 16) & 0xFF, (packed >> 8) & 0xFF, packed & 0xFF], axis=-1).astype(np.uint8)


@lru_cache(maxsize=8)
def _ray_factors(intrinsics: Intrinsics, decimation: int) -> tuple[np.ndarray, np.ndarray]:
    """(u - cx) / fx per sampled column and (v - cy) / fy per sampled row, cached: a stream's
    calibration rarely changes, and recomputing them costs more than the multiplications."""
    u = np.arange(0, intrinsics.width, decimation, dtype=np.float64)
    v = np.arange(0, intrinsics.height, decimation, dtype=np.float64)
    columns = ((u - intrinsics.cx) / intrinsics.fx).astype(np.float32)
    rows = ((v - intrinsics.cy) / intrinsics.fy).astype(np.float32)[:, None]
    columns.flags.writeable = rows.flags.writeable = False
    return columns, rows


def build_point_cloud(
    depth: np.ndarray,
    intrinsics: Intrinsics,
    *,
    rgb: np.ndarray | None = None,
    decimation: int = 1,
    min_depth: float = 0.0,
    max_depth: float = math.inf,
    organized: bool = True,
) -> PointCloudBuffer:
    """Back-project float32 metres (H, W) into a point buffer.

    Every ``decimation``-th row and column is used. A pixel whose depth is not finite or lies
    outside [``min_depth``, ``max_depth``] is no point: in an ``organized`` cloud (the image
    grid, ``height`` rows) it stays in place as NaN x, y, z; otherwise it is left out and the
    cloud is one row of valid points. ``rgb``: uint8 (H, W, 3) RGB adds the packed ``rgb`` field.
    """
    if depth.ndim != 2 or depth.shape != (intrinsics.height, intrinsics.width):
        raise CameraInfoError(
            f"depth is {depth.shape[1] if depth.ndim == 2 else '?'}x{depth.shape[0]} but the intrinsics describe "
            f"a {intrinsics.width}x{intrinsics.height} image"
        )
    if rgb is not None and rgb.shape != (*depth.shape, 3):
        raise ValueError(f"rgb must be (H, W, 3) = {(*depth.shape, 3)}, got {rgb.shape}")
    if decimation < 1:
        raise ValueError(f"decimation must be >= 1, got {decimation}")
    if not 0 <= min_depth < max_depth:
        raise ValueError(f"need 0 <= min_depth < max_depth, got {min_depth}, {max_depth}")

    z = depth[::decimation, ::decimation]
    columns, rows = _ray_factors(intrinsics, decimation)
    # Comparisons with NaN are False, so NaN is invalid here too; +Inf (REP 118: beyond range)
    # is never a point, even without a range limit.
    valid = (z >= min_depth) & (z <= min(max_depth, float(np.finfo(np.float32).max)))
    fields = XYZ_FIELDS if rgb is None else XYZRGB_FIELDS
    floats_per_point = len(fields)
    height, width = z.shape
    out = np.empty((height, width, floats_per_point), dtype="<f4")
    # Branch-free masking (1 where valid, 0/0 = NaN elsewhere): np.where and masked copies
    # branch per pixel and cost several times more on a ragged mask.
    mask = valid.astype(np.float32)
    with np.errstate(invalid="ignore"):
        np.divide(mask, mask, out=mask)
    np.multiply(z, mask, out=out[:, :, 2])
    np.multiply(out[:, :, 2], columns, out=out[:, :, 0])
    np.multiply(out[:, :, 2], rows, out=out[:, :, 1])
    if rgb is not None:
        colors = rgb[::decimation, ::decimation]
        # Little-endian bytes of 0x00RRGGBB: B, G, R, 0.
        packed = out.view(np.uint8).reshape(height, width, 4 * floats_per_point)[:, :, 12:16]
        packed[:, :, 0] = colors[:, :, 2]
        packed[:, :, 1] = colors[:, :, 1]
        packed[:, :, 2] = colors[:, :, 0]
        packed[:, :, 3] = 0
    point_step = 4 * floats_per_point
    if not organized:
        # Whole points as opaque records: compressing those is a memcpy per point.
        records = out.view(np.dtype((np.void, point_step))).reshape(-1)
        out = np.compress(valid.reshape(-1), records)
        height, width = 1, out.shape[0]
    return PointCloudBuffer(
        data=out.view(np.uint8).reshape(-1),
        height=height,
        width=width,
        fields=fields,
        point_step=point_step,
        row_step=point_step * width,
        is_dense=not organized or bool(valid.all()),
    )
