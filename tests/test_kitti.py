"""KITTI calibration parsing and velodyne ground-truth projection."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from depth_da_ros.kitti import (
    KittiCalibration,
    generate_depth_map,
    load_velodyne_points,
    read_calib_file,
)

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
KITTI_DATE_DIR = SHARED_DATA / "kitti_raw_sample" / "2011_09_26"
KITTI_DRIVE_DIR = KITTI_DATE_DIR / "2011_09_26_drive_9001_sync"
KITTI_SCANS = sorted((KITTI_DRIVE_DIR / "velodyne_points" / "data").glob("*.bin"))
needs_kitti = pytest.mark.skipif(
    not KITTI_SCANS,
    reason=f"KITTI raw sample not found under {KITTI_DATE_DIR} "
    "(a fresh clone has no ../shared/data)",
)

# Synthetic camera: lidar x forward, y left, z up -> camera x right, y down, z forward.
SYN_W, SYN_H, SYN_F, SYN_CX, SYN_CY = 40, 30, 20.0, 20.0, 10.0
LIDAR_TO_CAM = np.array([[0.0, -1.0, 0.0], [0.0, 0.0, -1.0], [1.0, 0.0, 0.0]])


def _fmt(values: np.ndarray) -> str:
    return " ".join(f"{v:e}" for v in np.ravel(values))


@pytest.fixture
def synthetic_calib_dir(tmp_path: Path) -> Path:
    P = np.array([[SYN_F, 0, SYN_CX, 0], [0, SYN_F, SYN_CY, 0], [0, 0, 1, 0]])
    (tmp_path / "calib_cam_to_cam.txt").write_text(
        "calib_time: 09-Jan-2012 13:57:47\n"
        f"S_rect_02: {_fmt(np.array([SYN_W, SYN_H]))}\n"
        f"R_rect_00: {_fmt(np.eye(3))}\n"
        f"P_rect_02: {_fmt(P)}\n"
    )
    (tmp_path / "calib_velo_to_cam.txt").write_text(
        f"calib_time: 15-Mar-2012 11:37:16\nR: {_fmt(LIDAR_TO_CAM)}\nT: {_fmt(np.zeros(3))}\n"
    )
    return tmp_path


def _write_scan(path: Path, xyz: list[tuple[float, float, float]]) -> Path:
    points = np.zeros((len(xyz), 4), dtype=np.float32)
    points[:, :3] = xyz
    points[:, 3] = 0.5  # reflectance; must not leak into the projection
    points.tofile(path)
    return path


# ---- unit tests, no shared data ------------------------------------------------------


def test_read_calib_file(tmp_path: Path) -> None:
    path = tmp_path / "calib.txt"
    path.write_text(
        "calib_time: 09-Jan-2012 13:57:47\nS_rect_02: 1.242e+03 3.75e+02\nT: -1 2.5 3\nodd: 1-2\n\n"
    )
    calib = read_calib_file(path)
    assert calib["calib_time"] == "09-Jan-2012 13:57:47"
    assert isinstance(calib["S_rect_02"], np.ndarray)
    assert calib["S_rect_02"].tolist() == [1242.0, 375.0]
    assert calib["T"].tolist() == [-1.0, 2.5, 3.0]
    assert calib["odd"] == "1-2"  # numeric characters but not numbers


def test_read_calib_file_missing(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nope.txt"):
        read_calib_file(tmp_path / "nope.txt")


def test_missing_calibration_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"calib_cam_to_cam\.txt.*P_rect_0x"):
        KittiCalibration.from_dir(tmp_path)


def test_bad_velodyne_size(tmp_path: Path) -> None:
    path = tmp_path / "broken.bin"
    path.write_bytes(b"\0" * 17)
    with pytest.raises(ValueError, match=r"broken\.bin.*multiple of 16"):
        load_velodyne_points(path)


def test_load_velodyne_points(tmp_path: Path) -> None:
    path = _write_scan(tmp_path / "scan.bin", [(1.0, 2.0, 3.0), (4.0, 5.0, 6.0)])
    points = load_velodyne_points(path)
    assert points.dtype == np.float32 and points.shape == (2, 4)
    assert points[1].tolist() == [4.0, 5.0, 6.0, 0.5]


def test_synthetic_calibration(synthetic_calib_dir: Path) -> None:
    calib = KittiCalibration.from_dir(synthetic_calib_dir)
    assert calib.image_size == (SYN_W, SYN_H)  # S_rect is "width height"
    assert calib.camera_intrinsics == (SYN_F, SYN_F, SYN_CX, SYN_CY)
    np.testing.assert_array_equal(calib.velo_to_rect[:3, :3], LIDAR_TO_CAM)


def test_closest_point_wins_and_pixel_convention(synthetic_calib_dir: Path, tmp_path: Path) -> None:
    # Both on the optical axis: pixel (cx, cy) -> round() - 1 -> column 19, row 9.
    scan = _write_scan(tmp_path / "scan.bin", [(20.0, 0, 0), (10.0, 0, 0), (30.0, 0, 0)])
    depth = generate_depth_map(synthetic_calib_dir, scan)
    assert depth.shape == (SYN_H, SYN_W) and depth.dtype == np.float32
    assert depth[9, 19] == 10.0
    assert np.count_nonzero(depth) == 1


def test_points_behind_lidar_are_dropped(synthetic_calib_dir: Path, tmp_path: Path) -> None:
    # The mirrored point projects to the same pixel with depth -10; kept, it would win the
    # minimum and zero the pixel.
    scan = _write_scan(tmp_path / "scan.bin", [(10.0, 2.0, 1.0), (-10.0, -2.0, -1.0)])
    depth = generate_depth_map(synthetic_calib_dir, scan)
    row, col = int(round(SYN_CY - SYN_F * 0.1)) - 1, int(round(SYN_CX - SYN_F * 0.2)) - 1
    assert depth[row, col] == 10.0
    assert np.count_nonzero(depth) == 1


def test_out_of_image_dropped_and_vel_depth(synthetic_calib_dir: Path, tmp_path: Path) -> None:
    # (10, 0, 0) lands inside; (10, 15, 0) is 30 px left of the centre, outside.
    scan = _write_scan(tmp_path / "scan.bin", [(10.0, 0, 0), (10.0, 15.0, 0), (12.0, -1.0, 0.5)])
    depth = generate_depth_map(synthetic_calib_dir, scan, vel_depth=True)
    assert sorted(depth[depth > 0].tolist()) == [10.0, 12.0]


# ---- real KITTI raw sample -------------------------------------------------------------


def reference_depth_map(calib_dir: Path, velo_path: Path, vel_depth: bool = False) -> np.ndarray:
    """Plain per-point loop: monodepth2's projection, then keep the minimum per pixel."""
    cam2cam = read_calib_file(calib_dir / "calib_cam_to_cam.txt")
    velo2cam = read_calib_file(calib_dir / "calib_velo_to_cam.txt")
    Rt = np.eye(4)
    Rt[:3, :3] = velo2cam["R"].reshape(3, 3)
    Rt[:3, 3] = velo2cam["T"]
    R_rect = np.eye(4)
    R_rect[:3, :3] = cam2cam["R_rect_00"].reshape(3, 3)
    P_velo2im = np.dot(np.dot(cam2cam["P_rect_02"].reshape(3, 4), R_rect), Rt)
    width, height = cam2cam["S_rect_02"].astype(np.int32)

    velo = np.fromfile(velo_path, dtype=np.float32).reshape(-1, 4).astype(np.float64)
    velo = velo[velo[:, 0] >= 0]
    velo[:, 3] = 1.0
    projected = np.dot(P_velo2im, velo.T).T
    depth = np.zeros((height, width))
    for (x, y, z), lidar_x in zip(projected, velo[:, 0]):
        u, v = int(np.round(x / z)) - 1, int(np.round(y / z)) - 1
        if not (0 <= u < width and 0 <= v < height):
            continue
        d = lidar_x if vel_depth else z
        if depth[v, u] == 0 or d < depth[v, u]:
            depth[v, u] = d
    depth[depth < 0] = 0
    return depth.astype(np.float32)


@needs_kitti
def test_kitti_calibration_from_sample() -> None:
    calib = KittiCalibration.from_dir(KITTI_DATE_DIR, cam=2)
    assert calib.image_size == (1242, 375)
    assert calib.camera_intrinsics == pytest.approx((721.5377, 721.5377, 609.5593, 172.854))
    assert calib.P_rect[0, 3] == pytest.approx(44.85728)
    # Rotation blocks stay orthonormal after composing R_rect_00 with [R|T].
    rotation = calib.velo_to_rect[:3, :3]
    np.testing.assert_allclose(rotation @ rotation.T, np.eye(3), atol=1e-5)


@needs_kitti
@pytest.mark.parametrize("scan", KITTI_SCANS, ids=lambda p: p.stem)
def test_kitti_depth_map_plausible_and_matches_reference(scan: Path) -> None:
    depth = generate_depth_map(KITTI_DATE_DIR, scan, cam=2)
    assert depth.shape == (375, 1242) and depth.dtype == np.float32
    valid = depth > 0
    assert 5_000 < valid.sum() < 25_000
    assert 1.0 < depth[valid].min() and depth[valid].max() < 120.0
    np.testing.assert_array_equal(depth, reference_depth_map(KITTI_DATE_DIR, scan))


@needs_kitti
@pytest.mark.parametrize("scan", KITTI_SCANS, ids=lambda p: p.stem)
def test_kitti_depth_map_independent_of_point_order(scan: Path, tmp_path: Path) -> None:
    # In these scans the closer of two same-pixel points always comes later, so a
    # "last write wins" bug would still match the reference; reversed, it would not.
    reversed_scan = tmp_path / scan.name
    load_velodyne_points(scan)[::-1].tofile(reversed_scan)
    np.testing.assert_array_equal(
        generate_depth_map(KITTI_DATE_DIR, reversed_scan), generate_depth_map(KITTI_DATE_DIR, scan)
    )


@needs_kitti
@pytest.mark.parametrize("scan", KITTI_SCANS, ids=lambda p: p.stem)
def test_kitti_vel_depth_is_lidar_x(scan: Path) -> None:
    depth = generate_depth_map(KITTI_DATE_DIR, scan, vel_depth=True)
    np.testing.assert_array_equal(depth, reference_depth_map(KITTI_DATE_DIR, scan, vel_depth=True))
    lidar_x = load_velodyne_points(scan)[:, 0]
    assert np.isin(depth[depth > 0], lidar_x).all()


@needs_kitti
@pytest.mark.parametrize("scan", KITTI_SCANS, ids=lambda p: p.stem)
def test_kitti_depth_reprojects_onto_scan(scan: Path) -> None:
    calib = KittiCalibration.from_dir(KITTI_DATE_DIR, cam=2)
    depth = generate_depth_map(KITTI_DATE_DIR, scan)
    points = load_velodyne_points(scan)[:, :3].astype(np.float64)
    rows, cols = np.nonzero(depth)
    picks = np.random.default_rng(0).choice(len(rows), 25, replace=False)
    rect_to_velo = np.linalg.inv(calib.velo_to_rect)
    fx = calib.camera_intrinsics[0]
    for row, col in zip(rows[picks], cols[picks]):
        d = float(depth[row, col])
        # Undo "round() - 1", then solve P @ [X; 1] = d * [u, v, 1] for the rectified point.
        pixel = np.array([col + 1.0, row + 1.0, 1.0])
        rect = np.linalg.solve(calib.P_rect[:, :3], d * pixel - calib.P_rect[:, 3])
        velo = (rect_to_velo @ np.append(rect, 1.0))[:3]
        nearest = np.linalg.norm(points - velo, axis=1).min()
        # Rounding moves the pixel by at most half a pixel per axis; float32 depth adds ~1e-5.
        assert nearest <= d * np.sqrt(0.5) / fx + 1e-4, (row, col, d, nearest)
