"""Pinhole camera intrinsics (rectified, REP 103 optical frame: x right, y down, z forward).

``PinholeCamera`` is the one description of a camera's intrinsics: image size, focal lengths and
principal point, validated once here. ``geometry.Intrinsics`` is a ``PinholeCamera`` read from a
ROS CameraInfo (it adds P's translation column and the CameraInfo constructors). Both exist
because checkpoints and exports store a ``PinholeCamera`` as its six fields (``to_dict``, read
back with ``PinholeCamera(**record)``), a format that older files and readers share, while P's
translation (a stereo baseline) belongs to a live calibration, not to that record.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

# KITTI 2011_09_26 P_rect_02 at 1242x375: the camera our procedural data imitates.
KITTI_WIDTH, KITTI_HEIGHT = 1242, 375
KITTI_FX = KITTI_FY = 721.5377
KITTI_CX, KITTI_CY = 609.5593, 172.854


class CameraInfoError(ValueError):
    """Camera intrinsics that cannot be used (size, focal lengths, principal point, P); the message says why."""


@dataclass(frozen=True)
class PinholeCamera:
    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float

    # Appended to the message for a non-positive focal length (subclasses name where it came from).
    FOCAL_HINT: ClassVar[str] = ""

    def __post_init__(self) -> None:
        if self.width <= 0 or self.height <= 0:
            raise CameraInfoError(f"image size must be positive, got {self.width}x{self.height}")
        # fx, fy, cx, cy and a subclass's number fields. vars(), not dataclasses.fields(): the node builds one
        # per frame, and fields()'s tuples pile up in the free list (test_node_calibration's memory test).
        values = {key: v for key, v in vars(self).items() if key not in ("width", "height")}
        if not all(math.isfinite(v) for v in values.values()):
            raise CameraInfoError("intrinsics must be finite, got " + " ".join(f"{k}={v}" for k, v in values.items()))
        if self.fx <= 0 or self.fy <= 0:
            raise CameraInfoError(f"focal lengths must be positive, got fx={self.fx} fy={self.fy}{self.FOCAL_HINT}")

    @classmethod
    def kitti_like(cls, height: int = KITTI_HEIGHT, width: int = KITTI_WIDTH) -> PinholeCamera:
        """KITTI's left colour camera, scaled to ``height`` x ``width`` (stretching if the aspect differs)."""
        return PinholeCamera(KITTI_WIDTH, KITTI_HEIGHT, KITTI_FX, KITTI_FY, KITTI_CX, KITTI_CY).resized(height, width)

    def resized(self, height: int, width: int) -> PinholeCamera:
        """Intrinsics after resizing the image; the monodepth/KITTI convention of plain scaling."""
        sx, sy = width / self.width, height / self.height
        return PinholeCamera(width, height, self.fx * sx, self.fy * sy, self.cx * sx, self.cy * sy)

    def to_dict(self) -> dict[str, Any]:
        """The stored record (a checkpoint's ``training_camera``/``deployment_camera``, an export's
        metadata): the six fields as plain Python numbers, which ``torch.load(weights_only=True)``
        accepts and ``PinholeCamera(**record)`` reads back."""
        return {"width": int(self.width), "height": int(self.height), "fx": float(self.fx), "fy": float(self.fy),
                "cx": float(self.cx), "cy": float(self.cy)}

    @property
    def K(self) -> np.ndarray:
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    @property
    def P(self) -> np.ndarray:
        """3x4 projection of the rectified camera (no baseline term: the left/reference camera)."""
        return np.hstack([self.K, np.zeros((3, 1))])
