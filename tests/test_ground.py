"""The ground plane under a mounted camera (depth_da_ros/ground.py)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from depth_da_ros.geometry import Intrinsics, build_point_cloud
from depth_da_ros.ground import constrain_to_ground, ground_plane_depth, height_plausible, road_ratio

KITTI = Intrinsics(1242, 375, 721.5377, 721.5377, 609.5593, 172.854)
KITTI_SHAPE = (375, 1242)


def test_level_camera_gives_the_flat_road_formula():
    ground = ground_plane_depth(KITTI, 1.65)
    assert ground.shape == (375, 1242) and ground.dtype == np.float32
    for v in (173, 200, 374):
        assert ground[v, 0] == pytest.approx(KITTI.fy * 1.65 / (v - KITTI.cy), rel=1e-6)
        assert (ground[v] == ground[v, 0]).all()  # no dependence on the column
    assert np.isposinf(ground[:173]).all()  # the principal point's row and above: the sky


@pytest.mark.parametrize("pitch", [-0.05, 0.0, 0.08, 0.3])
def test_every_ground_pixel_back_projects_onto_the_plane(pitch):
    """Independent check through the cloud's back-projection: each point lies `height` below the
    camera along the world's down direction (0, cos pitch, sin pitch) in the optical frame."""
    height = 1.3
    ground = ground_plane_depth(KITTI, height, pitch)
    finite = np.where(np.isfinite(ground) & (ground < 500), ground, np.nan).astype(np.float32)
    points = build_point_cloud(finite, KITTI, decimation=7, min_depth=0.0, max_depth=1e9, organized=False).points
    points = points.reshape(-1, 3)
    assert len(points) > 1000
    below = points[:, 1] * math.cos(pitch) + points[:, 2] * math.sin(pitch)
    np.testing.assert_allclose(below, height, rtol=1e-4)


def test_pitch_moves_the_horizon():
    pitch = 0.1  # looking down: the horizon rises in the image by fy * tan(pitch)
    ground = ground_plane_depth(KITTI, 1.65, pitch)
    horizon = KITTI.cy - KITTI.fy * math.tan(pitch)
    assert np.isposinf(ground[math.floor(horizon) - 1]).all() and np.isfinite(ground[math.ceil(horizon) + 1]).all()


@pytest.mark.parametrize("height, pitch", [(0.0, 0.0), (-1.0, 0.0), (math.nan, 0.0), (math.inf, 0.0),
                                           (1.65, math.pi / 2), (1.65, math.nan)])
def test_bad_mounting_is_refused(height, pitch):
    with pytest.raises(ValueError, match="height|pitch"):
        ground_plane_depth(KITTI, height, pitch)


def test_constraint_keeps_obstacles_and_snaps_the_road():
    ground = np.array([[np.inf, np.inf, 20.0, 20.0, 20.0, 20.0, 200.0, 10.0]], np.float32)
    depth = np.array([[35.0, np.inf, 8.0, 15.0, 30.0, np.inf, 150.0, np.nan]], np.float32)
    out = constrain_to_ground(depth, ground, tolerance=0.5, max_depth=80.0)
    # sky kept; +Inf sky kept; obstacle 8 m (< 20 / 1.5) kept; 15 m within 50%: ground;
    # 30 m beyond the ground: ground; +Inf below the horizon: ground; ground beyond the model's
    # range (200 m > 80 m): the prediction kept; no estimate stays no estimate.
    np.testing.assert_array_equal(out, np.array([[35.0, np.inf, 8.0, 20.0, 20.0, 20.0, 150.0, np.nan]], np.float32))
    assert out.dtype == np.float32 and out is not depth
    assert depth[0, 4] == 30.0  # the input is not modified


def test_zero_tolerance_is_only_the_physical_bound():
    ground = np.full((2, 3), 10.0, np.float32)
    depth = np.array([[9.99, 10.0, 12.0], [1.0, np.inf, 5.0]], np.float32)
    np.testing.assert_array_equal(constrain_to_ground(depth, ground, 0.0), np.minimum(depth, ground))


@pytest.mark.parametrize("tolerance", [-0.1, math.nan, math.inf])
def test_bad_tolerance_is_refused(tolerance):
    with pytest.raises(ValueError, match="tolerance"):
        constrain_to_ground(np.ones((2, 2), np.float32), np.ones((2, 2), np.float32), tolerance)


def test_sizes_must_match():
    with pytest.raises(ValueError, match="differ"):
        constrain_to_ground(np.ones((2, 2), np.float32), np.ones((2, 3), np.float32), 0.5)


def test_road_ratio_reads_a_wrong_height_from_the_predicted_road():
    """A road predicted at 0.9 of the true ground (our networks' bias): the ratio is 0.9 with the
    right height, 0.9 / k with a height k times the true one; heights 50% too high or 30% too low
    are implausible, 10% off is not. Obstacles off the middle half and NaN do not count."""
    true = ground_plane_depth(KITTI, 1.65)
    predicted = np.where(np.isfinite(true), 0.9 * true, 80.0).astype(np.float32)
    predicted[:, :300] = 3.0  # a parked car along the left edge
    predicted[300:310, 620:630] = np.nan
    for k, plausible in ((1.0, True), (0.9, True), (1.1, True), (1.5, False), (0.7, False), (2.0, False)):
        ratio = road_ratio(predicted, ground_plane_depth(KITTI, 1.65 * k))
        assert ratio == pytest.approx(0.9 / k, rel=1e-3) and height_plausible(ratio) is plausible, k


def test_road_ratio_without_a_road_band_judges_nothing():
    ground = ground_plane_depth(KITTI, 1.65, pitch=-0.5)  # looking up: no ground 4-12 m ahead in view
    assert road_ratio(np.ones_like(ground), ground) is None and height_plausible(None)
    masked = np.full(KITTI_SHAPE, np.nan, np.float32)
    assert road_ratio(masked, ground_plane_depth(KITTI, 1.65)) is None
    with pytest.raises(ValueError, match="differ in size"):
        road_ratio(masked[:-1], ground_plane_depth(KITTI, 1.65))
