"""Depth files on disk <-> float metres, decoded once at load time.

Two real formats, both 16-bit PNG (reading them as 8-bit is the classic bug this guards
against; every reader checks the dtype):

* SYNTHIA-RAND-CITYSCAPES ``Depth/Depth``: centimetres, metres = channel 0 / 100. The
  largest code (65535 cm) marks sky / beyond range and decodes to ``inf``.
* KITTI depth benchmark (``proj_depth/groundtruth``): metres = value / 256, 0 = no
  measurement, decoded to NaN.

Synthetic sources people train on, and ROS depth images:

* Virtual KITTI 2 ``frames/depth/Camera_N/depth_*.png``: one-channel 16-bit PNG, centimetres;
  its far clip (65535 cm = 655.35 m, the sky) decodes to ``inf``.
* CARLA depth camera: 24-bit depth in the R, G, B bytes of an 8-bit colour image,
  ``normalized = (R + G * 256 + B * 256**2) / (256**3 - 1)``, metres = 1000 * normalized (the
  camera's far plane is 1000 m; the largest code, the sky, decodes to ``inf``).
* REP 118 depth images (``decode_depth_image``): ``32FC1`` metres as stored, ``16UC1``
  millimetres with 0 = no measurement (NaN).

Orientation, one rule for every image and depth file: pixels are used as stored, and an EXIF
orientation tag is ignored. Depth maps are aligned to the stored pixel grid (16-bit PNG readers
never rotate), so an image rotated by its tag would no longer match its depth; the build-time
checks (PIL header sizes) read the same unrotated sizes. ``read_rgb`` is the image reader that
keeps to this rule (OpenCV's default ``IMREAD_COLOR`` would rotate JPEGs by their tag).
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

# cv2.imread flags of colour images: stored pixel order, EXIF orientation ignored (see above).
IMAGE_READ_FLAGS = cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION
SYNTHIA_SCALE = 100.0  # codes per metre
SYNTHIA_SKY_CODE = 65535
KITTI_SCALE = 256.0
VKITTI2_SCALE = 100.0  # codes per metre (centimetres)
VKITTI2_SKY_CODE = 65535
CARLA_FAR_M = 1000.0  # metres at normalized depth 1 (the depth camera's far plane)
CARLA_MAX_CODE = 256**3 - 1
REP118_DEPTH_DTYPES = {"32FC1": "f4", "16UC1": "u2"}  # metres, millimetres


def read_rgb(path: str | Path) -> np.ndarray:
    """uint8 (H, W, 3) RGB of an image file in stored pixel order (EXIF orientation ignored, as
    every depth reader does); OSError naming the file when it cannot be decoded."""
    bgr = cv2.imread(str(path), IMAGE_READ_FLAGS)
    if bgr is None:
        raise OSError(f"cannot read image {path} (missing, truncated or not an image)")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _read_uint16(path: str | Path) -> np.ndarray:
    data = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if data is None:
        raise OSError(f"cannot read depth image {path} (missing, truncated or not an image)")
    if data.dtype != np.uint16:
        raise ValueError(f"depth image {path} is {data.dtype}, expected 16-bit PNG")
    return data


def read_synthia_depth(path: str | Path) -> np.ndarray:
    """float32 metres; sky (65535) -> inf."""
    data = _read_uint16(path)
    if data.ndim == 3:
        data = data[..., 2]  # OpenCV returns BGR(A): channel 0 of the file is the last one here
    metres = data.astype(np.float32) / SYNTHIA_SCALE
    metres[data == SYNTHIA_SKY_CODE] = np.inf
    return metres


def write_synthia_depth(path: str | Path, metres: np.ndarray) -> None:
    """Write SYNTHIA-style depth; inf / NaN / beyond 655.34 m are written as the sky code."""
    codes = np.round(np.nan_to_num(metres, nan=np.inf, posinf=np.inf) * SYNTHIA_SCALE)
    codes = np.where(np.isfinite(codes) & (codes < SYNTHIA_SKY_CODE), codes, SYNTHIA_SKY_CODE).astype(np.uint16)
    # SYNTHIA stores depth in a 3-channel 16-bit PNG; readers use channel 0.
    _write_png(path, np.repeat(codes[..., None], 3, axis=2))


def read_kitti_depth(path: str | Path) -> np.ndarray:
    """float32 metres; 0 (no measurement) -> NaN."""
    data = _read_uint16(path)
    if data.ndim != 2:
        raise ValueError(f"KITTI depth image {path} has {data.shape[2]} channels, expected 1")
    metres = data.astype(np.float32) / KITTI_SCALE
    metres[data == 0] = np.nan
    return metres


def write_kitti_depth(path: str | Path, metres: np.ndarray) -> None:
    """Write KITTI depth-benchmark PNG; invalid, non-positive or >= 256 m become 0 (no measurement)."""
    codes = np.round(np.nan_to_num(metres, nan=0.0, posinf=0.0) * KITTI_SCALE)
    codes = np.where((codes > 0) & (codes <= 65535), codes, 0).astype(np.uint16)
    _write_png(path, codes)


def read_vkitti2_depth(path: str | Path) -> np.ndarray:
    """Virtual KITTI 2 depth PNG -> float32 metres (H, W); 65535 (far clip, sky) -> inf."""
    data = _read_uint16(path)
    if data.ndim != 2:
        raise ValueError(f"Virtual KITTI 2 depth image {path} has {data.shape[2]} channels, expected 1")
    metres = data.astype(np.float32) / VKITTI2_SCALE
    metres[data == VKITTI2_SKY_CODE] = np.inf
    return metres


def decode_carla_depth(rgb: np.ndarray) -> np.ndarray:
    """CARLA's depth encoding: uint8 (H, W, 3) in R, G, B order -> float32 metres (H, W).

    ``metres = 1000 * (R + G * 256 + B * 256**2) / (256**3 - 1)`` (CARLA's documented decoding,
    computed in float64 so that the 24-bit code is exact); the largest code (the far plane, sky)
    -> inf."""
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"CARLA depth must be uint8 (H, W, 3), got {rgb.dtype} {rgb.shape}")
    codes = rgb[..., 0].astype(np.int64) + rgb[..., 1].astype(np.int64) * 256 + rgb[..., 2].astype(np.int64) * 65536
    metres = (CARLA_FAR_M * (codes / CARLA_MAX_CODE)).astype(np.float32)
    metres[codes == CARLA_MAX_CODE] = np.inf
    return metres


def encode_carla_depth(metres: np.ndarray) -> np.ndarray:
    """The inverse of ``decode_carla_depth`` (to the nearest code): float metres (H, W) -> uint8
    (H, W, 3) R, G, B; inf, NaN and beyond 1000 m -> the far-plane code."""
    normalized = np.nan_to_num(np.asarray(metres, np.float64), nan=np.inf, posinf=np.inf) / CARLA_FAR_M
    codes = np.round(np.clip(normalized, 0.0, 1.0) * CARLA_MAX_CODE).astype(np.int64)
    return np.stack([codes & 255, (codes >> 8) & 255, (codes >> 16) & 255], axis=-1).astype(np.uint8)


def read_carla_depth(path: str | Path) -> np.ndarray:
    """A CARLA depth image file (8-bit PNG as ``save_to_disk`` writes the raw depth camera,
    alpha ignored) -> float32 metres (H, W); see ``decode_carla_depth``."""
    data = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if data is None:
        raise OSError(f"cannot read depth image {path} (missing, truncated or not an image)")
    if data.dtype != np.uint8 or data.ndim != 3 or data.shape[2] not in (3, 4):
        raise ValueError(f"CARLA depth image {path} is {data.dtype} with shape {data.shape}, expected 8-bit "
                         "BGR(A): the raw depth camera, not a gray-scale or log-depth view of it")
    return decode_carla_depth(np.ascontiguousarray(data[..., 2::-1]))  # OpenCV's B, G, R(, A) -> R, G, B


def decode_depth_image(height: int, width: int, encoding: str, is_bigendian: bool, step: int,
                       data: object) -> np.ndarray:
    """The fields of a REP 118 sensor_msgs/Image (any ROS message object's, e.g. rosbags' or
    rclpy's) -> float32 metres (H, W): ``32FC1`` metres as stored (NaN = no measurement, +inf =
    beyond range), ``16UC1`` millimetres with 0 = no measurement (NaN). Rows may be padded
    (``step``). ValueError naming the problem for another encoding or an inconsistent size."""
    if encoding not in REP118_DEPTH_DTYPES:
        raise ValueError(f"depth image encoding {encoding!r} is not 32FC1 (metres) or 16UC1 (millimetres)")
    dtype = np.dtype(REP118_DEPTH_DTYPES[encoding]).newbyteorder(">" if is_bigendian else "<")
    row_bytes = width * dtype.itemsize
    if height <= 0 or width <= 0:
        raise ValueError(f"{encoding} depth image has zero size ({width}x{height})")
    if step < row_bytes:
        raise ValueError(f"{encoding} depth image {width}x{height}: step {step} < width x {dtype.itemsize} bytes")
    raw = np.frombuffer(data, dtype=np.uint8)  # bytes, array.array('B') (rclpy) or a uint8 array (rosbags)
    if raw.size != height * step:
        raise ValueError(f"{encoding} depth image {width}x{height}: data has {raw.size} bytes, expected height x "
                         f"step = {height} x {step} = {height * step}")
    rows = raw.reshape(height, step)[:, :row_bytes]
    depth = np.ascontiguousarray(rows).view(dtype).astype(np.float32)
    if encoding == "16UC1":
        depth = np.where(depth > 0, depth / np.float32(1000.0), np.float32(np.nan)).astype(np.float32)
    return depth


def _write_png(path: str | Path, data: np.ndarray) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), data):
        raise OSError(f"cannot write {path}")
