"""Rectification of distorted camera images (``image_raw``), without ROS.

A camera driver's ``image_raw`` is distorted: its camera_info's D is non-zero and P describes
the *rectified* image (image_proc's ``image_rect``), not the raw one. Back-projecting a raw
frame with P puts points sideways (fisheye: tens of metres) and scales depth by the wrong
focal length. So the node undistorts and rectifies such a frame before inference, as
image_proc does (K, D, R, P; ``cv2.fisheye`` for the equidistant model), and publishes depth,
cloud and camera_info in the rectified geometry: D zero, R identity, K from P.

The maps cost tens of milliseconds for a KITTI frame, so they are built once per calibration and
kept in a small least-recently-used cache (``MAPS_CACHE_SIZE`` calibrations). Measured on the
shared 2-core CPU: KITTI's plumb_bob at 1242x375, maps 3.6 ms once, remap 1.9 ms a frame with
the fixed-point maps used here (3.0 ms with float maps); 640x480, 2.1 ms.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np

PLUMB_BOB = "plumb_bob"
RATIONAL_POLYNOMIAL = "rational_polynomial"
EQUIDISTANT = "equidistant"
SUPPORTED_MODELS = (PLUMB_BOB, RATIONAL_POLYNOMIAL, EQUIDISTANT)
MAPS_CACHE_SIZE = 8  # calibrations whose maps are kept (6 bytes a pixel each)
IDENTITY_R = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)


class RectificationError(ValueError):
    """A calibration that cannot rectify its image (unknown model, unusable K or P)."""


@dataclass(frozen=True)
class DistortedCamera:
    """The camera_info fields rectification needs (row-major K 3x3, R 3x3, P 3x4, D)."""

    width: int
    height: int
    distortion_model: str
    d: tuple[float, ...]
    k: tuple[float, ...]
    r: tuple[float, ...]
    p: tuple[float, ...]

    @classmethod
    def from_fields(cls, width: int, height: int, distortion_model: str, d: Sequence[float], k: Sequence[float],
                    r: Sequence[float], p: Sequence[float]) -> "DistortedCamera":
        return cls(int(width), int(height), str(distortion_model), tuple(float(v) for v in d),
                   tuple(float(v) for v in k), tuple(float(v) for v in r), tuple(float(v) for v in p))

    @property
    def distorted(self) -> bool:
        """True when the image needs rectifying: a non-zero D (an all-zero or empty D is already
        rectified; R alone, a stereo rotation, is not undone: P's image is what the node fits)."""
        return any(v != 0.0 for v in self.d)


def rectified_fields(camera: DistortedCamera) -> dict:
    """camera_info fields of the rectified image: D zero (same length), R identity, K from P, P kept."""
    p = camera.p
    return {"distortion_model": camera.distortion_model, "d": [0.0] * len(camera.d),
            "k": [p[0], p[1], p[2], p[4], p[5], p[6], p[8], p[9], p[10]], "r": list(IDENTITY_R), "p": list(p)}


def build_maps(camera: DistortedCamera) -> tuple[np.ndarray, np.ndarray]:
    """The maps from the rectified image to the raw one for cv2.remap, in OpenCV's fixed-point
    form (CV_16SC2 + interpolation table: 1/32-pixel steps; remap faster than with float maps)."""
    model = camera.distortion_model
    if model not in SUPPORTED_MODELS:
        raise RectificationError(f"distortion model {model!r} is not supported (known: {', '.join(SUPPORTED_MODELS)})")
    if len(camera.k) != 9 or len(camera.p) != 12 or camera.width <= 0 or camera.height <= 0:
        raise RectificationError("camera_info needs K (9 values), P (12 values) and an image size to rectify")
    k = np.array(camera.k, np.float64).reshape(3, 3)
    new_k = np.array(camera.p, np.float64).reshape(3, 4)[:, :3]
    r = np.array(camera.r, np.float64).reshape(3, 3) if len(camera.r) == 9 and any(camera.r) else np.eye(3)
    if k[0, 0] <= 0 or k[1, 1] <= 0:
        raise RectificationError(f"K has no positive focal lengths (fx={k[0, 0]}, fy={k[1, 1]})")
    if new_k[0, 0] <= 0 or new_k[1, 1] <= 0:
        new_k = k  # image_proc's rule: no P, the rectified image keeps K
    size = (camera.width, camera.height)
    d = np.array(camera.d, np.float64)
    if model == EQUIDISTANT:
        if len(d) < 4:
            raise RectificationError(f"equidistant needs 4 distortion coefficients, got {len(d)}")
        return cv2.fisheye.initUndistortRectifyMap(k, d[:4].reshape(4, 1), r, new_k, size, cv2.CV_16SC2)
    if len(d) not in (4, 5, 8, 12, 14):
        raise RectificationError(f"{model} with {len(d)} distortion coefficients (OpenCV takes 4, 5, 8, 12 or 14)")
    return cv2.initUndistortRectifyMap(k, d, r, new_k, size, cv2.CV_16SC2)


def rectify(image: np.ndarray, maps: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """``image`` (raw) -> the rectified image, bilinear; pixels outside the raw frame are black."""
    return cv2.remap(image, maps[0], maps[1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)


class RectifyMaps:
    """The maps of recently used calibrations (least recently used dropped beyond ``capacity``);
    thread-safe. ``maps`` builds them on first use; ``is_new`` says whether that happened."""

    def __init__(self, capacity: int = MAPS_CACHE_SIZE) -> None:
        self.capacity = capacity
        self._lock = threading.Lock()
        self._maps: OrderedDict[DistortedCamera, tuple[np.ndarray, np.ndarray]] = OrderedDict()
        self.built = 0

    def maps(self, camera: DistortedCamera) -> tuple[tuple[np.ndarray, np.ndarray], bool]:
        """(maps, True when built now); RectificationError for an unusable calibration."""
        with self._lock:
            if camera in self._maps:
                self._maps.move_to_end(camera)
                return self._maps[camera], False
        maps = build_maps(camera)
        with self._lock:
            self._maps[camera] = maps
            self._maps.move_to_end(camera)
            while len(self._maps) > self.capacity:
                self._maps.popitem(last=False)
            self.built += 1
        return maps, True

    def __len__(self) -> int:
        with self._lock:
            return len(self._maps)


@dataclass(frozen=True)
class Rectified:
    """What ``Rectifier.apply`` did with one frame: the image to infer on, the camera_info fields
    of that image (None: unchanged), something to log once (info) and a problem to warn about
    (throttled key, message)."""

    image: np.ndarray
    fields: dict | None = None
    note: str | None = None
    problem: tuple[str, str] | None = None


class Rectifier:
    """Rectifies each frame whose calibration has distortion (maps per calibration, LRU), and
    decides what the node says: once when it starts rectifying, once when rectification is off
    for a distorted camera, a throttled warning when a calibration cannot rectify its frame."""

    def __init__(self, capacity: int = MAPS_CACHE_SIZE) -> None:
        self.cache = RectifyMaps(capacity)
        self._said: set[str] = set()  # at most two keys: 'rectifying', 'off'
        self._lock = threading.Lock()

    def _once(self, key: str) -> bool:
        with self._lock:
            first = key not in self._said
            self._said.add(key)
            return first

    def apply(self, image: np.ndarray, camera: DistortedCamera, enabled: bool, *, full_frame: bool = True,
              topic: str = "image") -> Rectified:
        """``image`` (raw, of ``camera``) rectified when its D is non-zero and ``enabled``.
        ``full_frame``: no binning or region of interest (the maps are for the whole sensor)."""
        if not camera.distorted:
            return Rectified(image)
        what = f"{camera.distortion_model} D={[round(v, 6) for v in camera.d]}"
        if not enabled:
            note = (f"{topic}: camera_info has distortion ({what}) but the rectify parameter is false: frames are "
                    "used as if rectified (remap image_rect, or set rectify to true, for image_raw)")
            return Rectified(image, note=note if self._once("off") else None)
        if not full_frame or image.shape[:2] != (camera.height, camera.width):
            return Rectified(image, problem=("rectification", (
                f"{topic}: cannot rectify a {image.shape[1]}x{image.shape[0]} frame with binning or a region of "
                f"interest ({camera.width}x{camera.height} calibration, {what}); used as if rectified")))
        try:
            maps, _ = self.cache.maps(camera)
        except (RectificationError, cv2.error) as exc:
            return Rectified(image, problem=("rectification", f"{topic}: cannot rectify ({what}): "
                                             f"{str(exc).strip()}; frame used as if rectified"))
        note = None
        if self._once("rectifying"):
            note = (f"{topic}: camera_info has distortion ({what}): rectifying each frame before inference (maps "
                    "built once per calibration); depth, points and depth/camera_info are in the rectified "
                    "geometry (D zero, K from P). Set rectify to false for an already rectified stream")
        return Rectified(rectify(image, maps), rectified_fields(camera), note=note)
