"""depth_da_ros.temporal: correspondences from exact depth, TAE against analytic cases and on a
procedural driving sequence."""
from __future__ import annotations

import math

import numpy as np
import pytest

from depth_da_ros.camera import PinholeCamera
from depth_da_ros.temporal import correspondences, driving_translation, scale_ratio, tae

CAMERA = PinholeCamera(width=80, height=40, fx=60.0, fy=60.0, cx=39.5, cy=19.5)


def wall(z: float) -> np.ndarray:
    return np.full((CAMERA.height, CAMERA.width), z, np.float32)


def test_driving_translation():
    np.testing.assert_allclose(driving_translation(1.0, 0.0), [0, 0, -1], atol=1e-12)
    t = driving_translation(2.0, math.radians(30))  # looking right: points move to +x in the image
    np.testing.assert_allclose(t, [1.0, 0.0, -math.sqrt(3)], atol=1e-12)


def test_wall_pairs_and_exact_scaled_and_flickering_predictions():
    t = np.array([0.0, 0.0, -1.0])  # 1 m towards a wall 10 m away
    pairs = correspondences(wall(10.0), wall(9.0), CAMERA, t)
    assert len(pairs) > 0.8 * CAMERA.width * CAMERA.height  # the edges leave the view
    # The centre pixel stays the centre pixel; others move outwards by 10/9.
    assert tae(wall(10.0), wall(9.0), pairs) == pytest.approx(0.0, abs=1e-12)
    s = 1.1  # steady but 10% far: |s - 1| |t_z| / (s gt) both ways
    expected = 0.5 * (abs(s * 10 - 1 - s * 9) / (s * 9) + abs(s * 9 + 1 - s * 10) / (s * 10))
    assert tae(s * wall(10.0), s * wall(9.0), pairs) == pytest.approx(expected, rel=1e-5)
    # Flicker: frame j 5% farther than frame i's prediction moved there.
    flicker = tae(wall(10.0), 1.05 * wall(9.0), pairs)
    assert flicker == pytest.approx(0.5 * (0.05 / 1.05 + 0.05 * 9 / 10), rel=1e-5)


def test_occluded_points_are_not_paired():
    gt_j = wall(9.0)
    gt_j[:, :10] = 3.0  # something entered the view at the left in frame j
    pairs = correspondences(wall(10.0), gt_j, CAMERA, np.array([0.0, 0.0, -1.0]))
    assert pairs.target[1].min() >= 10
    nan_pred = wall(9.0)
    nan_pred[:] = np.nan
    assert math.isnan(tae(wall(10.0), nan_pred, pairs))


def test_scale_ratio():
    gt = wall(10.0)
    gt[0, 0] = np.inf
    pred = 1.2 * wall(10.0)
    pred[1, 1] = np.nan
    assert scale_ratio(pred, gt) == pytest.approx(1.2)


def test_exact_depth_of_a_procedural_driving_sequence_is_temporally_consistent():
    from depth_da_ros.procedural.dataset import ProceduralConfig, ProceduralDataset
    from depth_da_ros.procedural.scene import sample_scene

    config = ProceduralConfig(domain="real", seed=3, height=96, width=320, sequence_length=3, step=1.0)
    data = ProceduralDataset(config, 3)
    a, b = data[0], data[1]
    scene_seed, _, _ = data.seeds(0)
    yaw = sample_scene(scene_seed, config.scene, travel=config.step * (config.sequence_length - 1)).camera_yaw
    pairs = correspondences(a.depth, b.depth, data.camera, driving_translation(config.step, yaw))
    valid = np.isfinite(a.depth) & (a.depth <= 80)
    assert len(pairs) > 0.6 * valid.sum()
    assert tae(a.depth, b.depth, pairs) < 0.01  # the measurement's floor: pixel rounding only
    # Wrong motion (no yaw, twice the step) pairs far fewer pixels: the translation matters.
    wrong = correspondences(a.depth, b.depth, data.camera, driving_translation(2 * config.step, yaw + 0.1))
    assert len(wrong) < 0.7 * len(pairs)


def test_warp_and_motion_aware_smoothing():
    from depth_da_ros.temporal import smooth_with_motion, warp_depth

    t = np.array([0.0, 0.0, -1.0])
    warped = warp_depth(wall(10.0), wall(9.0), CAMERA, t)
    np.testing.assert_allclose(warped, 9.0, rtol=1e-6)  # moving closer: every pixel was seen before
    away = warp_depth(wall(9.0), wall(10.0), CAMERA, -t)  # moving back: the border was not
    assert np.isnan(away[0, 0]) and away[20, 40] == pytest.approx(10.0)
    # Agreeing pixels are blended, disagreeing ones reset to the new frame's depth.
    new = wall(9.5)
    new[:, :5] = 5.0
    out = smooth_with_motion(wall(10.0), new, CAMERA, t, alpha=0.5, reset=0.15)
    centre = out[15:25, 30:50]
    np.testing.assert_allclose(centre, 0.5 * 9.0 + 0.5 * 9.5, rtol=1e-6)
    np.testing.assert_array_equal(out[:, :5], 5.0)
    assert smooth_with_motion(None, new, CAMERA, t) is new


def test_static_smoother_blends_and_restarts():
    from depth_da_ros.temporal import TemporalSmoother, smooth_static

    a, b = wall(10.0), wall(10.5)
    b[0, 0] = 20.0  # disagrees by > 15%: reset to the new value
    b[0, 1] = np.inf
    out = smooth_static(a, b, 0.5, 0.15)
    assert out[5, 5] == pytest.approx(10.25) and out[0, 0] == 20.0 and np.isposinf(out[0, 1])
    smoother = TemporalSmoother(max_gap_s=1.0)
    second = 100_000_000
    assert smoother.apply(a, "cam", 0, 0.5, 0.15) is a  # first frame: as is
    assert smoother.apply(b, "cam", second, 0.5, 0.15)[5, 5] == pytest.approx(10.25)
    assert smoother.apply(b, "other", 2 * second, 0.5, 0.15) is b  # another camera restarts
    assert smoother.apply(a, "other", 2 * second + 2_000_000_000, 0.5, 0.15) is a  # a 2 s gap restarts
    assert smoother.apply(b, "other", second, 0.5, 0.15) is b  # stamps going back restart
    assert smoother.apply(a, "other", 2 * second, 0.0, 0.15) is a  # off
    assert smoother.apply(b, "other", 3 * second, 0.5, 0.15) is b  # ... and forgets
