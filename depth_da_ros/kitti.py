"""KITTI raw calibration and velodyne ground truth (the monodepth2 evaluation protocol).

Ground truth for the Eigen split is the velodyne scan projected into the rectified left
colour camera: ``P_rect_0{cam} @ R_rect_00 @ [R|T]``, ``round(u) - 1`` pixel convention,
closest point wins per pixel, 0 = no return. Everything here is pure NumPy so it runs and
tests without ROS or torch.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

CAM_TO_CAM_FILE = "calib_cam_to_cam.txt"
VELO_TO_CAM_FILE = "calib_velo_to_cam.txt"
_FLOAT_CHARS = frozenset("0123456789.e+- ")


def read_calib_file(path: str | Path) -> dict[str, np.ndarray | str]:
    """Parse a KITTI ``key: value`` calibration file.

    Numeric values become float64 arrays (flat, as written); anything else, such as
    ``calib_time: 09-Jan-2012 13:57:47``, is kept as the stripped string (monodepth2 rule).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"KITTI calibration file not found: {path}")
    data: dict[str, np.ndarray | str] = {}
    for line_no, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        key, sep, value = line.partition(":")
        if not sep:
            raise ValueError(f"{path}:{line_no}: expected 'key: value', got {line!r}")
        key, value = key.strip(), value.strip()
        data[key] = value
        # A date like "09-Jan-2012" has letters, so only all-numeric-character values
        # are tried; "1-2" passes the character test but not float(), and stays a string.
        if value and _FLOAT_CHARS.issuperset(value):
            try:
                data[key] = np.array([float(v) for v in value.split()])
            except ValueError:
                pass
    return data


def load_velodyne_points(path: str | Path) -> np.ndarray:
    """Read a KITTI velodyne ``.bin`` scan: float32 ``(N, 4)`` = x, y, z, reflectance."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"velodyne scan not found: {path}")
    size = path.stat().st_size
    if size % 16:
        raise ValueError(
            f"{path}: {size} bytes is not a multiple of 16; a KITTI velodyne scan is "
            "float32 records of (x, y, z, reflectance)"
        )
    return np.fromfile(path, dtype=np.float32).reshape(-1, 4)


def _calib_entry(calib: dict[str, np.ndarray | str], key: str, size: int, path: Path) -> np.ndarray:
    value = calib.get(key)
    if not isinstance(value, np.ndarray) or value.size != size:
        raise ValueError(f"{path}: expected numeric {key!r} with {size} values, got {value!r}")
    return value


@dataclass(frozen=True)
class KittiCalibration:
    """Rectified geometry of one KITTI camera for a date folder (e.g. ``2011_09_26``).

    Frames: ``velo`` (velodyne), ``cam0`` (unrectified camera 0), ``rect`` (rectified
    camera 0, the common frame that every ``P_rect_0x`` projects from). ``P_rect`` holds
    the stereo offset of camera ``cam`` in its last column, so ``P_rect @ velo_to_rect``
    maps velodyne points to pixels of that camera, and its third row gives the depth
    along the camera's optical axis (the value ``generate_depth_map`` stores).

    For ROS, CameraInfo ``P = P_rect`` pairs with the tf ``velo_to_rect``. ROS's P form
    assumes ``P[2, 3] == 0``; KITTI's P_rect_02 has 2.7e-3 there (a 2.7 mm shift along
    the optical axis), which a converter must drop or fold into the tf.
    """

    cam: int
    P_rect: np.ndarray  # (3, 4) P_rect_0{cam}
    R_rect_00: np.ndarray  # (3, 3) cam0 -> rect
    velo_to_cam: np.ndarray  # (4, 4) [R|T] from calib_velo_to_cam.txt, velo -> cam0
    image_size: tuple[int, int]  # (width, height) from S_rect_0{cam}

    @classmethod
    def from_dir(cls, calib_dir: str | Path, cam: int = 2) -> KittiCalibration:
        """Load from the folder holding calib_cam_to_cam.txt and calib_velo_to_cam.txt."""
        calib_dir = Path(calib_dir)
        cam_file, velo_file = calib_dir / CAM_TO_CAM_FILE, calib_dir / VELO_TO_CAM_FILE
        for path, what in ((cam_file, "P_rect_0x, R_rect_00, S_rect_0x"), (velo_file, "R, T")):
            if not path.is_file():
                raise FileNotFoundError(
                    f"KITTI calibration file not found: {path} (expected the raw-data "
                    f"date folder's {path.name} with {what})"
                )
        cam2cam = read_calib_file(cam_file)
        velo2cam = read_calib_file(velo_file)
        velo_to_cam = np.eye(4)
        velo_to_cam[:3, :3] = _calib_entry(velo2cam, "R", 9, velo_file).reshape(3, 3)
        velo_to_cam[:3, 3] = _calib_entry(velo2cam, "T", 3, velo_file)
        # S_rect is written as "width height".
        width, height = _calib_entry(cam2cam, f"S_rect_0{cam}", 2, cam_file).astype(np.int32)
        return cls(
            cam=cam,
            P_rect=_calib_entry(cam2cam, f"P_rect_0{cam}", 12, cam_file).reshape(3, 4),
            R_rect_00=_calib_entry(cam2cam, "R_rect_00", 9, cam_file).reshape(3, 3),
            velo_to_cam=velo_to_cam,
            image_size=(int(width), int(height)),
        )

    @property
    def cam_to_rect(self) -> np.ndarray:
        """(4, 4) homogeneous form of R_rect_00."""
        rect = np.eye(4)
        rect[:3, :3] = self.R_rect_00
        return rect

    @property
    def velo_to_rect(self) -> np.ndarray:
        """(4, 4) velodyne -> rectified camera-0 frame: ``R_rect_00 @ [R|T]``."""
        return self.cam_to_rect @ self.velo_to_cam

    @property
    def velo_to_image(self) -> np.ndarray:
        """(3, 4) velodyne -> homogeneous pixels ``P_rect @ R_rect_00 @ [R|T]``.

        Multiplied left to right as monodepth2 does, so the float64 result (and hence
        any ``round(u)`` tie) is bit-identical to its ground-truth generator.
        """
        return (self.P_rect @ self.cam_to_rect) @ self.velo_to_cam

    @property
    def camera_intrinsics(self) -> tuple[float, float, float, float]:
        """(fx, fy, cx, cy) of the rectified image, read from P_rect."""
        P = self.P_rect
        return float(P[0, 0]), float(P[1, 1]), float(P[0, 2]), float(P[1, 2])


def generate_depth_map(
    calib_dir: str | Path, velo_path: str | Path, cam: int = 2, vel_depth: bool = False
) -> np.ndarray:
    """Project a velodyne scan into camera ``cam``: float32 ``(H, W)`` metres, 0 = no return.

    The monodepth2 algorithm, with one deliberate difference: monodepth2 finds duplicate
    pixels with ``sub2ind`` = ``row * (n - 1) + col - 1``, which maps the last column of
    one row and the first column of the next to the same index, so those neighbours get
    merged. Here duplicates are resolved exactly per pixel (closest point wins), so the
    maps can differ from monodepth2's only in the first and last image columns.

    ``vel_depth=True`` stores the lidar x (forward range) instead of the camera depth;
    the winner is then the point with the smallest x, as in monodepth2.
    """
    calib = KittiCalibration.from_dir(calib_dir, cam)
    width, height = calib.image_size
    return project_velodyne(load_velodyne_points(velo_path), calib.velo_to_image, width, height, vel_depth)


def project_velodyne(points: np.ndarray, velo_to_image: np.ndarray, width: int, height: int,
                     vel_depth: bool = False) -> np.ndarray:
    """Scan (N, >= 3) -> float32 (height, width) depth, 0 = no return, for a calibration given
    as the 3x4 velodyne-to-image matrix (``generate_depth_map`` for files, bag evaluation for
    a calibration read from messages)."""
    xyz = np.asarray(points, dtype=np.float64)[:, :3]
    xyz = xyz[xyz[:, 0] >= 0]  # behind the lidar; never in front of the camera
    velo = np.hstack([xyz, np.ones((len(xyz), 1))])  # homogeneous coordinates
    pts = np.dot(velo_to_image, velo.T).T
    depth = velo[:, 0] if vel_depth else pts[:, 2]
    # monodepth2 pixel convention: round, then shift by one (MATLAB's 1-based devkit).
    u = np.round(pts[:, 0] / pts[:, 2]) - 1
    v = np.round(pts[:, 1] / pts[:, 2]) - 1
    inside = (u >= 0) & (v >= 0) & (u < width) & (v < height)
    logger.debug("%d of %d forward points project into the image", inside.sum(), len(velo))
    flat = np.full(height * width, np.inf)
    index = v[inside].astype(np.int64) * width + u[inside].astype(np.int64)
    np.minimum.at(flat, index, depth[inside])  # unbuffered: exact min per pixel
    flat[np.isinf(flat)] = 0.0
    flat[flat < 0] = 0.0  # points just ahead of the lidar but behind the camera
    return flat.reshape(height, width).astype(np.float32)
