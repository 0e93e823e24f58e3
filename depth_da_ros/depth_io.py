"""Depth files on disk <-> float metres, decoded once at load time.

Two real formats, both 16-bit PNG (reading them as 8-bit is the classic bug this guards
against; every reader checks the dtype):

* SYNTHIA-RAND-CITYSCAPES ``Depth/Depth``: centimetres, metres = channel 0 / 100. The
  largest code (65535 cm) marks sky / beyond range and decodes to ``inf``.
* KITTI depth benchmark (``proj_depth/groundtruth``): metres = value / 256, 0 = no
  measurement, decoded to NaN.

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


def _write_png(path: str | Path, data: np.ndarray) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), data):
        raise OSError(f"cannot write {path}")
