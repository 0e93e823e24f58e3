"""Frames of any aspect ratio (stretch / crop / pad windows, focal rescaling through the window)
and REP 118 values (+Inf beyond range, NaN for no estimate), without ROS."""
from __future__ import annotations

import math

import numpy as np
import pytest

from depth_da_ros.camera import PinholeCamera
from depth_da_ros.geometry import (
    ASPECT_POLICIES,
    BEYOND_RANGE_FRACTION,
    Intrinsics,
    NetworkWindow,
    build_point_cloud,
    focal_scale,
    mark_beyond_range,
    network_window,
    scale_depth,
)
from depth_da_ros.pipeline import DepthPipeline, postprocess, preprocess

NET = (192, 640)


@pytest.mark.parametrize("policy, frame, expected", [
    ("stretch", (480, 640), NetworkWindow(0, 0, 640, 480)),
    ("crop", (480, 640), NetworkWindow(0, 144, 640, 192)),  # a centred 640x192 band
    ("pad", (480, 640), NetworkWindow(-480, 0, 1600, 480)),  # 480 mirrored columns each side
    ("crop", (100, 1000), NetworkWindow(333, 0, 333, 100)),  # wider than the network: columns cropped
    ("pad", (100, 1000), NetworkWindow(0, -100, 1000, 300)),
    ("crop", (375, 1242), NetworkWindow(0, 0, 1242, 375)),  # KITTI: within 2% of 640x192
    ("pad", (375, 1242), NetworkWindow(0, 0, 1242, 375)),
])
def test_network_window(policy, frame, expected):
    window = network_window(frame, NET, policy)
    assert window == expected
    if window != NetworkWindow.whole(*frame):
        assert window.width / window.height == pytest.approx(NET[1] / NET[0], rel=0.01)


def test_network_window_rejects_unknown_policies_and_sizes():
    with pytest.raises(ValueError, match="known: stretch, crop, pad"):
        network_window((480, 640), NET, "fit")
    with pytest.raises(ValueError, match="positive"):
        network_window((0, 640), NET, "crop")
    assert set(ASPECT_POLICIES) == {"stretch", "crop", "pad"}


def test_preprocess_crops_and_mirrors_the_window():
    frame = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    crop = network_window((48, 64), (16, 64), "crop")  # (0, 16, 64, 16): rows 16..31, no resize
    assert np.array_equal(preprocess(frame, (16, 64), crop)[0], frame[16:32])
    pad = network_window((48, 64), (12, 40), "pad")  # 48 high, 160 wide: 48 columns each side
    assert pad == NetworkWindow(-48, 0, 160, 48)
    padded = preprocess(frame, (48, 160), pad)[0]
    assert np.array_equal(padded[:, 48:112], frame)  # the frame itself, in the middle
    assert np.array_equal(padded[:, 47], frame[:, 1]) and np.array_equal(padded[:, 112], frame[:, 62])  # mirrored
    assert np.array_equal(padded[:, 0], frame[:, 48])
    wide = preprocess(frame, (48, 320), network_window((48, 64), (12, 80), "pad"))[0]  # margins wider than the frame
    assert np.array_equal(wide[:, 128:192], frame) and np.array_equal(wide[:, 0], frame[:, 0])  # edge replicated


def test_postprocess_puts_the_window_back_and_marks_the_rest_nan():
    depth = np.arange(16 * 64, dtype=np.float32).reshape(16, 64)
    crop = NetworkWindow(0, 16, 64, 16)
    out = postprocess(depth, (48, 64), crop)
    assert out.shape == (48, 64) and np.isnan(out[:16]).all() and np.isnan(out[32:]).all()
    assert np.array_equal(out[16:32], depth)
    wide = np.arange(48 * 320, dtype=np.float32).reshape(48, 320)
    out = postprocess(wide, (48, 64), NetworkWindow(-128, 0, 320, 48))
    assert np.array_equal(out, wide[:, 128:192])  # the padding is dropped, every pixel has depth


def test_postprocess_keeps_inf_and_nan_where_the_nearest_source_pixel_has_them():
    depth = np.full((4, 8), 10.0, np.float32)
    depth[0, :] = np.inf  # sky row: beyond range
    depth[3, 7] = np.nan
    out = postprocess(depth, (8, 16))
    assert np.isposinf(out[:2]).all()  # the sky rows stay +Inf
    assert np.isnan(out[6:, 14:]).all()
    finite = out[np.isfinite(out)]
    assert finite.size and np.allclose(finite, 10.0)  # no Inf or NaN smeared into valid depth


def test_focal_scale_follows_the_window():
    training = PinholeCamera.kitti_like(*NET)  # fx 371.8 at 640 wide
    square = Intrinsics(640, 480, training.fx, training.fx, 320.0, 240.0)  # a 4:3 camera, same fx
    # crop: the network sees 640x192 unresized: the same focal length as in training.
    crop = network_window((480, 640), NET, "crop")
    assert focal_scale(square, training, crop) == pytest.approx(math.sqrt(training.fx / training.fy), rel=1e-9)
    # pad: the frame shrinks 640/1600 = 0.4 in both directions: objects look 2.5x farther.
    pad = network_window((480, 640), NET, "pad")
    assert focal_scale(square, training, pad) == pytest.approx(0.4 * math.sqrt(training.fx / training.fy), rel=1e-3)
    # stretch: 1 horizontally, 192/480 vertically (geometric mean).
    assert focal_scale(square, training) == pytest.approx(math.sqrt(0.4 * training.fx / training.fy), rel=1e-9)
    depth = np.array([[10.0, np.inf, np.nan]], np.float32)
    scaled, factor = scale_depth(depth, "focal", square, training, pad)
    assert scaled[0, 0] == pytest.approx(10.0 * factor) and np.isposinf(scaled[0, 1]) and np.isnan(scaled[0, 2])


def test_beyond_range_is_inf_and_no_estimate_is_nan():
    depth = np.array([80.0, 79.9, 78.4, 78.3, 5.0, 0.0, -1.0, np.nan], np.float32)
    out = mark_beyond_range(depth.copy(), 80.0)
    assert BEYOND_RANGE_FRACTION == 0.98
    assert np.isposinf(out[:3]).all() and out[3] == np.float32(78.3) and out[4] == 5.0
    assert np.isnan(out[5:]).all()
    exact = mark_beyond_range(depth.copy(), 80.0, 1.0)
    assert np.isposinf(exact[0]) and exact[1] == np.float32(79.9)
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        mark_beyond_range(depth.copy(), 80.0, 1.5)


def test_the_cloud_range_limit_drops_inf_points():
    depth = np.array([[5.0, np.inf], [np.nan, 70.0]], np.float32)
    cam = Intrinsics(2, 2, 1.0, 1.0, 0.5, 0.5)
    cloud = build_point_cloud(depth, cam, max_depth=60.0, organized=False)
    assert cloud.width == 1 and cloud.points[0, 0, 2] == 5.0
    cloud = build_point_cloud(depth, cam, organized=False)  # no range limit: still no point at +Inf
    assert sorted(cloud.points[0, :, 2].tolist()) == [5.0, 70.0]


@pytest.fixture(scope="module")
def tiny_pipeline(tmp_path_factory) -> DepthPipeline:
    from model_fixtures import write_depth_checkpoint

    return DepthPipeline(write_depth_checkpoint(tmp_path_factory.mktemp("aspect") / "depth.pt"), "torch",
                         device="cpu", threads=1)


def test_pipeline_predicts_any_aspect_under_each_policy(tiny_pipeline):
    frame = np.random.default_rng(3).integers(0, 256, (96, 128, 3), dtype=np.uint8)  # 4:3
    stretch = tiny_pipeline.predict(frame)
    assert stretch.shape == (96, 128) and np.isfinite(stretch).all()
    crop = tiny_pipeline.predict(frame, aspect="crop")
    window = tiny_pipeline.window((96, 128), "crop")
    inside = np.zeros((96, 128), bool)
    inside[window.y:window.y + window.height] = True
    assert np.isfinite(crop[inside]).all() and np.isnan(crop[~inside]).all()
    pad = tiny_pipeline.predict(frame, aspect="pad")
    assert pad.shape == (96, 128) and np.isfinite(pad).all()
    assert not np.allclose(pad, stretch)
    with pytest.raises(ValueError, match="known: stretch, crop, pad"):
        tiny_pipeline.predict(frame, aspect="zoom")


def test_pipeline_marks_saturated_depth_as_inf(tiny_pipeline):
    frame = np.random.default_rng(4).integers(0, 256, (64, 192, 3), dtype=np.uint8)
    raw = tiny_pipeline.predict(frame)
    # A threshold at the frame's own median: half the pixels are "beyond range".
    fraction = float(np.median(raw)) / tiny_pipeline.max_depth
    marked = tiny_pipeline.predict(frame, beyond_range=fraction)
    far = raw >= np.float32(fraction * tiny_pipeline.max_depth)
    assert np.isposinf(marked[far]).all()
    finite = np.isfinite(marked)
    assert np.array_equal(marked[finite], raw[finite]) and not np.isnan(marked).any()
    # Beyond range also where the nearest network pixel is: a few boundary pixels more, no more.
    assert 0 <= np.isposinf(marked).sum() - far.sum() <= 0.25 * far.sum()
    # At the network's own size the two agree exactly.
    net = np.ascontiguousarray(frame[:64, :192])
    assert np.array_equal(np.isposinf(tiny_pipeline.predict(net, beyond_range=fraction)),
                          tiny_pipeline.predict(net) >= np.float32(fraction * tiny_pipeline.max_depth))
