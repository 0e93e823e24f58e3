"""Distorted cameras and marker frames for the rectification tests (pure and over DDS).

A frame is drawn in the *raw* (distorted) geometry: small discs of distinct colours where
rectified-image points land after distortion, found with OpenCV's projection functions (an
independent path from the undistortion maps the node builds). Rectifying it must bring each
disc's centroid back to its rectified point."""
from __future__ import annotations

import cv2
import numpy as np

from depth_da_ros.rectify import DistortedCamera

# KITTI's own left colour camera (calib_cam_to_cam.txt, 2011_09_26: K_02, D_02, P_rect_02) on
# the rectified image size, plus a rational-polynomial and a fisheye camera.
CAMERAS = {
    "plumb_bob": DistortedCamera.from_fields(
        1242, 375, "plumb_bob", [-0.3691481, 0.1968681, 0.001353473, 0.0005677587, -0.06770705],
        [959.791, 0.0, 621.0, 0.0, 956.9251, 187.5, 0.0, 0.0, 1.0], [1, 0, 0, 0, 1, 0, 0, 0, 1],
        [721.5377, 0.0, 609.5593, 0.0, 0.0, 721.5377, 172.854, 0.0, 0.0, 0.0, 1.0, 0.0]),
    "rational_polynomial": DistortedCamera.from_fields(
        640, 480, "rational_polynomial", [0.3, -0.1, 0.0008, -0.0006, 0.02, 0.9, 0.05, 0.01],
        [520.0, 0.0, 322.0, 0.0, 518.0, 241.0, 0.0, 0.0, 1.0], [1, 0, 0, 0, 1, 0, 0, 0, 1],
        [470.0, 0.0, 320.0, 0.0, 0.0, 470.0, 240.0, 0.0, 0.0, 0.0, 1.0, 0.0]),
    "equidistant": DistortedCamera.from_fields(
        640, 480, "equidistant", [-0.013, 0.047, -0.056, 0.021],
        [285.0, 0.0, 318.0, 0.0, 286.0, 243.0, 0.0, 0.0, 1.0], [1, 0, 0, 0, 1, 0, 0, 0, 1],
        [260.0, 0.0, 320.0, 0.0, 0.0, 260.0, 240.0, 0.0, 0.0, 0.0, 1.0, 0.0]),
}
COLOURS = ((255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (255, 0, 255))
RADIUS = 5


def marker_points(camera: DistortedCamera) -> np.ndarray:
    """Rectified pixels (u, v) near the four corners (12% in) and the centre, (5, 2)."""
    w, h = camera.width, camera.height
    return np.array([(0.12 * w, 0.12 * h), (0.88 * w, 0.12 * h), (0.12 * w, 0.88 * h), (0.88 * w, 0.88 * h),
                     (0.5 * w, 0.5 * h)], np.float64)


def distort(camera: DistortedCamera, rectified: np.ndarray) -> np.ndarray:
    """Raw pixels of rectified pixels (R identity): through P to rays, then K and D."""
    p = np.array(camera.p).reshape(3, 4)
    rays = np.column_stack([(rectified[:, 0] - p[0, 2]) / p[0, 0], (rectified[:, 1] - p[1, 2]) / p[1, 1],
                            np.ones(len(rectified))])
    k = np.array(camera.k).reshape(3, 3)
    d = np.array(camera.d)
    if camera.distortion_model == "equidistant":
        raw, _ = cv2.fisheye.projectPoints(rays.reshape(-1, 1, 3), np.zeros(3), np.zeros(3), k, d)
    else:
        raw, _ = cv2.projectPoints(rays.reshape(-1, 1, 3), np.zeros(3), np.zeros(3), k, d)
    return raw.reshape(-1, 2)


def raw_marker_frame(camera: DistortedCamera) -> np.ndarray:
    """A grey rgb8 raw frame with a coloured disc at each marker's distorted position."""
    frame = np.full((camera.height, camera.width, 3), 96, np.uint8)
    for (u, v), colour in zip(distort(camera, marker_points(camera)), COLOURS):
        assert 0 <= u < camera.width and 0 <= v < camera.height, "marker outside the raw frame"
        cv2.circle(frame, (int(round(u * 16)), int(round(v * 16))), RADIUS * 16, colour, -1, cv2.LINE_AA, shift=4)
    return frame


def marker_centroids(rgb: np.ndarray) -> np.ndarray:
    """(u, v) centroid of each marker colour in ``rgb`` (NaN when absent), (5, 2)."""
    found = []
    for colour in COLOURS:
        near = np.all(np.abs(rgb.astype(np.int16) - np.array(colour)) < 60, axis=-1)
        v, u = np.nonzero(near)
        found.append((u.mean(), v.mean()) if len(u) else (np.nan, np.nan))
    return np.array(found)
