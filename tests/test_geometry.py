"""geometry: back-projection with CameraInfo P, decimation, depth limits, RGB packed as RViz
reads it, focal rescale, CameraInfo checks. Pure NumPy, no ROS."""
from __future__ import annotations

import math

import numpy as np
import pytest

from depth_da_ros.camera import KITTI_CX, KITTI_CY, KITTI_FX, KITTI_HEIGHT, KITTI_WIDTH, PinholeCamera
from depth_da_ros.geometry import (
    POINT_FIELD_FLOAT32,
    CameraInfoError,
    Intrinsics,
    build_point_cloud,
    focal_scale,
    scale_depth,
)

# KITTI P_rect_03 (the right colour camera): P[0, 3] = Tx = -fx * baseline.
KITTI_P_RIGHT = [KITTI_FX, 0.0, KITTI_CX, -3.395242e02,
                 0.0, KITTI_FX, KITTI_CY, 2.199936e00,
                 0.0, 0.0, 1.0, 2.729905e-03]


@pytest.fixture(scope="module")
def kitti() -> Intrinsics:
    p = [KITTI_FX, 0.0, KITTI_CX, 0.0, 0.0, KITTI_FX * 1.01, KITTI_CY, 0.0, 0.0, 0.0, 1.0, 0.0]
    return Intrinsics.from_camera_info(KITTI_WIDTH, KITTI_HEIGHT, p)


@pytest.fixture(scope="module")
def depth() -> np.ndarray:
    return np.random.default_rng(0).uniform(0.5, 90.0, (KITTI_HEIGHT, KITTI_WIDTH)).astype(np.float32)


def expected_points(depth: np.ndarray, cam: Intrinsics, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    z = depth[np.ix_(rows, cols)].astype(np.float64)
    x = (cols[None, :] - cam.cx) * z / cam.fx
    y = (rows[:, None] - cam.cy) * z / cam.fy
    return np.stack([x, y, z], axis=-1)


def test_organized_cloud_back_projects_with_p(kitti, depth):
    cloud = build_point_cloud(depth, kitti)
    assert (cloud.height, cloud.width, cloud.point_step) == (KITTI_HEIGHT, KITTI_WIDTH, 12)
    assert cloud.row_step == 12 * KITTI_WIDTH and cloud.data.nbytes == cloud.row_step * cloud.height
    assert [(f.name, f.offset, f.datatype) for f in cloud.fields] == [
        ("x", 0, POINT_FIELD_FLOAT32), ("y", 4, POINT_FIELD_FLOAT32), ("z", 8, POINT_FIELD_FLOAT32)]
    assert cloud.is_dense
    expected = expected_points(depth, kitti, np.arange(KITTI_HEIGHT), np.arange(KITTI_WIDTH))
    np.testing.assert_allclose(cloud.points, expected, rtol=1e-4, atol=1e-6)
    # The bytes are little-endian float32 x, y, z, as PointCloud2 with is_bigendian=False says.
    first = np.frombuffer(cloud.data[:12].tobytes(), "<f4")
    np.testing.assert_allclose(first, expected[0, 0], rtol=1e-4)


def test_principal_point_pixel_is_on_the_optical_axis():
    cam = Intrinsics(9, 7, 500.0, 400.0, 4.0, 3.0)
    cloud = build_point_cloud(np.full((7, 9), 12.5, np.float32), cam)
    assert cloud.points[3, 4].tolist() == [0.0, 0.0, 12.5]
    assert cloud.points[3, 8, 0] > 0 and cloud.points[6, 4, 1] > 0  # x right, y down (REP 103)


def test_decimation_keeps_every_nth_row_and_column(kitti, depth):
    cloud = build_point_cloud(depth, kitti, decimation=4)
    rows, cols = np.arange(0, KITTI_HEIGHT, 4), np.arange(0, KITTI_WIDTH, 4)
    assert (cloud.height, cloud.width) == (rows.size, cols.size)
    np.testing.assert_allclose(cloud.points, expected_points(depth, kitti, rows, cols), rtol=1e-4, atol=1e-6)


def test_depth_limits_and_invalid_pixels_in_organized_and_unorganized_clouds(kitti):
    depth = np.full((KITTI_HEIGHT, KITTI_WIDTH), 10.0, np.float32)
    depth[0, :5] = [0.05, 70.0, np.nan, np.inf, 0.0]
    organized = build_point_cloud(depth, kitti, min_depth=0.1, max_depth=60.0)
    assert np.isnan(organized.points[0, :5]).all() and not organized.is_dense
    assert np.isfinite(organized.points[0, 5:]).all() and np.isfinite(organized.points[1:]).all()

    flat = build_point_cloud(depth, kitti, min_depth=0.1, max_depth=60.0, organized=False)
    assert flat.height == 1 and flat.width == depth.size - 5 and flat.is_dense
    assert flat.row_step == flat.width * flat.point_step
    np.testing.assert_allclose(flat.points[0], organized.points.reshape(-1, 3)[5:], rtol=1e-6)


def test_rgb_is_packed_as_rviz_reads_it(kitti, depth):
    rgb = np.random.default_rng(1).integers(0, 256, (KITTI_HEIGHT, KITTI_WIDTH, 3), dtype=np.uint8)
    cloud = build_point_cloud(depth, kitti, rgb=rgb, decimation=2)
    assert cloud.point_step == 16 and [f.name for f in cloud.fields] == ["x", "y", "z", "rgb"]
    assert cloud.fields[3].offset == 12 and cloud.fields[3].datatype == POINT_FIELD_FLOAT32
    # RViz "RGB8": the field's 4 bytes as a little-endian uint32 0x00RRGGBB.
    packed = cloud.data.view("<u4").reshape(cloud.height, cloud.width, 4)[:, :, 3]
    expected = rgb[::2, ::2].astype(np.uint32)
    assert np.array_equal(packed, (expected[..., 0] << 16) | (expected[..., 1] << 8) | expected[..., 2])
    assert np.array_equal(cloud.colors, rgb[::2, ::2])
    np.testing.assert_allclose(cloud.points, build_point_cloud(depth, kitti, decimation=2).points)
    flat = build_point_cloud(depth, kitti, rgb=rgb, organized=False, max_depth=50.0)
    keep = (depth <= 50.0).reshape(-1)
    assert np.array_equal(flat.colors[0], rgb.reshape(-1, 3)[keep])


def test_right_stereo_camera_cloud_is_in_its_own_frame():
    """Tx = -fx * B places the right camera in the left camera's frame; the cloud is published in
    the image's own frame, where the formula does not use Tx (as depth_image_proc)."""
    right = Intrinsics.from_camera_info(KITTI_WIDTH, KITTI_HEIGHT, KITTI_P_RIGHT)
    assert right.tx == pytest.approx(-339.5242) and right.ty == pytest.approx(2.199936)
    depth = np.full((KITTI_HEIGHT, KITTI_WIDTH), 20.0, np.float32)
    points = build_point_cloud(depth, right).points
    assert points[0, 0, 0] == pytest.approx((0 - KITTI_CX) * 20.0 / KITTI_FX, rel=1e-5)
    # Projecting the point with the right camera's own P (no Tx) gives the pixel back.
    x, y, z = points[100, 700]
    assert (KITTI_FX * x / z + KITTI_CX, KITTI_FX * y / z + KITTI_CY) == (pytest.approx(700, abs=1e-3),
                                                                          pytest.approx(100, abs=1e-3))


def test_binning_and_roi_follow_image_geometry():
    p = [800.0, 0.0, 640.0, 0.0, 0.0, 820.0, 360.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    binned = Intrinsics.from_camera_info(1280, 720, p, binning_x=2, binning_y=2)
    assert (binned.width, binned.height, binned.fx, binned.fy, binned.cx, binned.cy) == (640, 360, 400, 410, 320, 180)
    cropped = Intrinsics.from_camera_info(1280, 720, p, roi=(100, 50, 640, 480))
    assert (cropped.width, cropped.height, cropped.cx, cropped.cy, cropped.fx) == (640, 480, 540, 310, 800)


@pytest.mark.parametrize(
    "p, message",
    [
        ([0.0] * 12, "focal lengths must be positive"),
        ([np.nan, 0, 600, 0, 0, 700, 170, 0, 0, 0, 1, 0], "intrinsics must be finite"),
        ([700.0, 0, 600, 0, 0, 700, 170, 0, 0, 0, 1], "P must have 12 values, got 11"),
    ],
)
def test_unusable_camera_info_raises_a_clear_error(p, message):
    with pytest.raises(CameraInfoError, match=message):
        Intrinsics.from_camera_info(KITTI_WIDTH, KITTI_HEIGHT, p)


def test_zero_size_and_size_mismatch_are_reported(kitti):
    with pytest.raises(CameraInfoError, match="image size must be positive, got 0x0"):
        Intrinsics.from_camera_info(0, 0, kitti.P.reshape(-1))
    with pytest.raises(CameraInfoError, match="describes a 1242x375 image but the image is 640x480"):
        kitti.check_image_size(480, 640)
    with pytest.raises(CameraInfoError, match="depth is 640x480"):
        build_point_cloud(np.ones((480, 640), np.float32), kitti)


def test_intrinsics_parameter_vector():
    cam = Intrinsics.from_vector([721.5, 721.5, 609.5, 172.8], 1242, 375)
    assert cam.P.tolist() == [[721.5, 0, 609.5, 0], [0, 721.5, 172.8, 0], [0, 0, 1, 0]]
    with pytest.raises(CameraInfoError, match=r"\[fx, fy, cx, cy\], got 3 values"):
        Intrinsics.from_vector([1.0, 2.0, 3.0], 10, 10)


def test_focal_rescale_compares_focal_lengths_at_the_network_size():
    training = PinholeCamera.kitti_like(192, 640)  # KITTI's focal length scaled to the network size
    same = Intrinsics(KITTI_WIDTH, KITTI_HEIGHT, KITTI_FX, KITTI_FX, KITTI_CX, KITTI_CY)
    assert focal_scale(same, training) == pytest.approx(1.0)
    # Twice the focal length at the same image size: objects look twice as big, the network
    # reads them as twice as near, so its depth must be doubled.
    zoomed = Intrinsics(KITTI_WIDTH, KITTI_HEIGHT, 2 * KITTI_FX, 2 * KITTI_FX, KITTI_CX, KITTI_CY)
    assert focal_scale(zoomed, training) == pytest.approx(2.0)
    # The same camera at half the resolution has half the focal length in pixels: no change.
    half = Intrinsics(KITTI_WIDTH // 2, 187, KITTI_FX / 2, KITTI_FX / 2 * 187 / 187.5, KITTI_CX / 2, KITTI_CY / 2)
    assert focal_scale(half, training) == pytest.approx(1.0, rel=2e-3)

    depth = np.array([[10.0, np.nan]], np.float32)
    scaled, factor = scale_depth(depth, "focal", zoomed, training)
    assert factor == pytest.approx(2.0) and scaled[0, 0] == pytest.approx(20.0) and math.isnan(scaled[0, 1])
    assert scaled.dtype == np.float32
    assert scale_depth(depth, "none", zoomed, training)[1] == 1.0
    assert scale_depth(depth, "focal", None, training)[1] == 1.0
    with pytest.raises(ValueError, match="unknown scale mode 'metric'; known: none, focal"):
        scale_depth(depth, "metric", zoomed, training)


def test_argument_checks(kitti, depth):
    with pytest.raises(ValueError, match="decimation must be >= 1"):
        build_point_cloud(depth, kitti, decimation=0)
    with pytest.raises(ValueError, match="min_depth < max_depth"):
        build_point_cloud(depth, kitti, min_depth=5.0, max_depth=1.0)
    with pytest.raises(ValueError, match=r"rgb must be \(H, W, 3\)"):
        build_point_cloud(depth, kitti, rgb=np.zeros((2, 2, 3), np.uint8))
