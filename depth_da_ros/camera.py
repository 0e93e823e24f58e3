"""Pinhole camera intrinsics (rectified, REP 103 optical frame: x right, y down, z forward)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# KITTI 2011_09_26 P_rect_02 at 1242x375: the camera our procedural data imitates.
KITTI_WIDTH, KITTI_HEIGHT = 1242, 375
KITTI_FX = KITTI_FY = 721.5377
KITTI_CX, KITTI_CY = 609.5593, 172.854


@dataclass(frozen=True)
class PinholeCamera:
    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float

    def __post_init__(self) -> None:
        if self.width <= 0 or self.height <= 0:
            raise ValueError(f"image size must be positive, got {self.width}x{self.height}")
        if not all(np.isfinite(v) for v in (self.fx, self.fy, self.cx, self.cy)) or self.fx <= 0 or self.fy <= 0:
            raise ValueError(f"invalid intrinsics fx={self.fx} fy={self.fy} cx={self.cx} cy={self.cy}")

    @classmethod
    def kitti_like(cls, height: int = KITTI_HEIGHT, width: int = KITTI_WIDTH) -> "PinholeCamera":
        """KITTI's left colour camera, scaled to ``height`` x ``width`` (stretching if the aspect differs)."""
        return cls(KITTI_WIDTH, KITTI_HEIGHT, KITTI_FX, KITTI_FY, KITTI_CX, KITTI_CY).resized(height, width)

    def resized(self, height: int, width: int) -> "PinholeCamera":
        """Intrinsics after resizing the image; the monodepth/KITTI convention of plain scaling."""
        sx, sy = width / self.width, height / self.height
        return PinholeCamera(width, height, self.fx * sx, self.fy * sy, self.cx * sx, self.cy * sy)

    @property
    def K(self) -> np.ndarray:
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    @property
    def P(self) -> np.ndarray:
        """3x4 projection of the rectified camera (no baseline term: the left/reference camera)."""
        return np.hstack([self.K, np.zeros((3, 1))])
