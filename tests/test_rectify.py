"""Rectification of distorted frames (depth_da_ros.rectify), without ROS: for each distortion
model, markers drawn at distorted positions come back to their rectified pixels."""
from __future__ import annotations

import numpy as np
import pytest

from depth_da_ros.rectify import (
    DistortedCamera,
    RectificationError,
    Rectifier,
    RectifyMaps,
    build_maps,
    rectified_fields,
    rectify,
)
from rectify_fixtures import CAMERAS, marker_centroids, marker_points, raw_marker_frame


@pytest.mark.parametrize("model", sorted(CAMERAS))
def test_markers_land_on_their_rectified_pixels(model):
    camera = CAMERAS[model]
    truth = marker_points(camera)
    raw = raw_marker_frame(camera)
    found_raw = marker_centroids(raw)
    rectified = rectify(raw, build_maps(camera))
    found = marker_centroids(rectified)
    # Within 2% of the image width (in fact about a pixel); the raw frame is far off (what the
    # node used to back-project), so the check can tell.
    error = np.hypot(*(found - truth).T)
    assert error.max() < 0.02 * camera.width, (model, error)
    assert error.max() < 1.5, (model, error)
    assert np.hypot(*(found_raw - truth).T).max() > 0.03 * camera.width
    # Scale: the rays through the found markers (with P's focal) agree with the truth's within 2%.
    fx, cx, fy, cy = camera.p[0], camera.p[2], camera.p[5], camera.p[6]
    corners = slice(0, 4)
    np.testing.assert_allclose((found[corners, 0] - cx) / fx, (truth[corners, 0] - cx) / fx, rtol=0.02)
    np.testing.assert_allclose((found[corners, 1] - cy) / fy, (truth[corners, 1] - cy) / fy, rtol=0.02)


def test_rectified_camera_info_has_zero_d_identity_r_and_k_from_p():
    camera = CAMERAS["plumb_bob"]
    fields = rectified_fields(camera)
    assert fields["d"] == [0.0] * 5 and fields["r"] == [1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0]
    assert fields["k"] == [721.5377, 0.0, 609.5593, 0.0, 721.5377, 172.854, 0.0, 0.0, 1.0]
    assert fields["p"] == list(camera.p)


def test_maps_are_built_once_per_calibration_and_bounded():
    cache = RectifyMaps(capacity=2)
    camera = CAMERAS["equidistant"]
    first, built = cache.maps(camera)
    again, built_again = cache.maps(camera)
    assert built and not built_again and again is first and cache.built == 1
    for fx in (250.0, 240.0, 230.0):
        cache.maps(DistortedCamera(**{**camera.__dict__, "p": (fx, *camera.p[1:])}))
    assert len(cache) == 2 and cache.built == 4


def test_rectifier_says_once_and_leaves_undistorted_or_disabled_frames_alone():
    rectifier = Rectifier()
    camera = CAMERAS["plumb_bob"]
    raw = raw_marker_frame(camera)
    plain = DistortedCamera(**{**camera.__dict__, "d": (0.0,) * 5})
    assert rectifier.apply(raw, plain, True).image is raw  # D zero: already rectified
    off = rectifier.apply(raw, camera, False)
    assert off.image is raw and off.fields is None and "rectify parameter is false" in off.note
    assert rectifier.apply(raw, camera, False).note is None  # said once
    on = rectifier.apply(raw, camera, True, topic="/cam/image_raw")
    assert on.fields is not None and on.image.shape == raw.shape and "/cam/image_raw" in on.note
    assert rectifier.apply(raw, camera, True).note is None
    binned = rectifier.apply(raw[::2, ::2], camera, True)
    assert binned.fields is None and binned.problem[0] == "rectification"
    unknown = rectifier.apply(raw, DistortedCamera(**{**camera.__dict__, "distortion_model": "weird"}), True)
    assert unknown.fields is None and "not supported" in unknown.problem[1]


def test_unusable_calibrations_raise():
    camera = CAMERAS["plumb_bob"]
    with pytest.raises(RectificationError, match="focal"):
        build_maps(DistortedCamera(**{**camera.__dict__, "k": (0.0,) * 9}))
    with pytest.raises(RectificationError, match="coefficients"):
        build_maps(DistortedCamera(**{**camera.__dict__, "d": (0.1, 0.1, 0.0)}))
