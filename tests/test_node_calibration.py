"""The node's per-camera calibration cache, frame id choice and frame checks (no ROS needed)."""
from __future__ import annotations

import pytest

from depth_da_ros.geometry import Intrinsics
from depth_da_ros.node_calibration import (
    DEGENERATE,
    EMPTY_FRAME_ID,
    FROM_CACHE,
    FROM_CAMERA_INFO,
    UNCALIBRATED,
    CalibrationCache,
    FrameChecks,
    merge_frame_checks,
    output_frame_id,
)

KITTI = Intrinsics(1242, 375, 721.5377, 721.5377, 609.5593, 172.854)
ZOOM = Intrinsics(1242, 375, 1443.08, 1443.08, 609.5593, 172.854)


def test_the_last_valid_calibration_is_kept_per_frame_id_and_size():
    cache: CalibrationCache[str] = CalibrationCache()
    assert cache.recall("cam", 375, 1242) is None
    assert cache.remember("cam", KITTI, "info 1", 10)  # the camera's first calibration
    assert not cache.remember("cam", ZOOM, "info 2", 20)  # replaces it (a zoom), not a new camera
    kept = cache.recall("cam", 375, 1242)
    assert (kept.intrinsics, kept.message, kept.stamp_ns, kept.source) == (ZOOM, "info 2", 20, FROM_CACHE)
    assert cache.recall("cam", 480, 640) is None  # another resolution is another calibration
    assert cache.recall("other", 375, 1242) is None  # and another frame id another camera
    half = Intrinsics(621, 187, 360.8, 360.8, 304.8, 86.4)
    assert cache.remember("cam", half, "binned", 30)
    assert cache.recall("cam", 375, 1242).intrinsics == ZOOM and cache.recall("cam", 187, 621).intrinsics == half
    assert cache.cameras() == [("cam", 187, 621), ("cam", 375, 1242)]


def test_the_only_calibration_of_a_size_serves_another_frame_id():
    cache: CalibrationCache[str] = CalibrationCache()
    assert cache.recall_only(375, 1242) is None
    cache.remember("camera_link", KITTI, "info", 10)
    frame_id, kept = cache.recall_only(375, 1242)
    assert frame_id == "camera_link" and kept.intrinsics == KITTI
    assert cache.recall_only(480, 640) is None
    cache.remember("second_camera", ZOOM, "info 2", 20)
    assert cache.recall_only(375, 1242) is None  # two cameras of that size: which one is unknown


def test_a_camera_whose_images_carry_its_frame_id_does_not_lend_its_calibration():
    """CI of stop 30: a new camera's lost camera_info made its frame take the only other
    calibration of its size, a zoom camera's (fx twice KITTI's). That camera's images carry its
    frame id, so it is not a driver stamping camera_info with another frame id."""
    cache: CalibrationCache[str] = CalibrationCache()
    cache.remember("zoom", ZOOM, "info", 10)
    assert cache.saw_image("zoom", 375, 1242) and not cache.saw_image("zoom", 375, 1242)
    assert cache.recall_only(375, 1242) is None
    cache.remember("camera_link", KITTI, "info 2", 20)  # its images come as camera_optical
    assert cache.saw_image("camera_optical", 375, 1242)
    assert cache.recall_only(375, 1242)[0] == "camera_link"
    # A camera_info of the zoom camera at another size: still the zoom camera's (CI, equidistant).
    cache.remember("zoom", Intrinsics(640, 480, 500.0, 500.0, 320.0, 240.0), "info 3", 30)
    assert cache.recall_only(480, 640) is None


def test_a_camera_without_calibration_is_announced_once():
    cache: CalibrationCache[str] = CalibrationCache()
    assert cache.first_miss("cam", 480, 640)
    assert not cache.first_miss("cam", 480, 640)
    assert cache.first_miss("cam", 240, 320) and cache.first_miss("other", 480, 640)


def test_the_frame_id_parameter_replaces_the_input_frame_id():
    assert output_frame_id("camera_link", "") == "camera_link"
    assert output_frame_id("", "front_camera") == "front_camera"
    assert output_frame_id("camera_link", "front_camera") == "front_camera"
    assert output_frame_id("", "") == ""


def test_frame_checks_warn_while_a_problem_is_recent():
    checks = FrameChecks(recent_s=5.0)
    problem, values = checks.summary(0.0)
    assert problem is None and dict(values) == {"calibration": "none", "frames degenerate": "0",
                                                "frames without calibration": "0", "inputs with empty frame_id": "0",
                                                "frames ground constraint skipped": "0"}
    checks.record(DEGENERATE, 10.0)
    checks.record(DEGENERATE, 11.0)
    checks.record(EMPTY_FRAME_ID, 11.0)
    checks.record_calibration(FROM_CAMERA_INFO)
    problem, values = checks.summary(12.0)
    assert "degenerate frames" in problem and "empty frame_id" in problem and "without calibration" not in problem
    assert dict(values)["frames degenerate"] == "2" and dict(values)["calibration"] == FROM_CAMERA_INFO
    checks.record(UNCALIBRATED, 13.0)
    problem, _ = checks.summary(17.0)  # the degenerate frames are 6 s old now
    assert problem.startswith("frames without calibration")
    assert checks.summary(30.0)[0] is None and checks.count(DEGENERATE) == 2
    with pytest.raises(ValueError, match="known"):
        checks.record("weird", 0.0)
    with pytest.raises(ValueError, match="known"):
        checks.record_calibration("guess")


def test_merging_frame_checks_into_the_status():
    ok, warn, error = 0, 1, 2
    assert merge_frame_checks(ok, "publishing", [("a", "1")], None, [("b", "2")], warn) == (
        ok, "publishing", [("a", "1"), ("b", "2")])
    assert merge_frame_checks(ok, "publishing", [], "degenerate", [], warn)[:2] == (warn, "degenerate")
    assert merge_frame_checks(error, "no depth", [], "degenerate", [], warn)[:2] == (error, "no depth; degenerate")


def test_cameras_are_bounded_least_recently_used_and_described_briefly():
    from depth_da_ros.node_calibration import CAMERAS_KEPT

    cache: CalibrationCache[str] = CalibrationCache(capacity=3)
    for name in "abcd":
        cache.remember(name, KITTI, name, 0)
    assert [c[0] for c in cache.cameras()] == ["b", "c", "d"]  # 'a' forgotten
    cache.recall("b", 375, 1242)  # used: now the most recent
    cache.remember("e", KITTI, "e", 0)
    assert [c[0] for c in cache.cameras()] == ["b", "d", "e"]
    assert cache.describe(limit=2) == "'e' at 1242x375, 'b' at 1242x375 and 1 more"
    assert CalibrationCache().capacity == CAMERAS_KEPT


def test_memory_and_messages_stay_flat_over_10000_frames_whose_frame_id_and_size_change():
    """Issue 24: a publisher changing frame_id or size every frame grew the node by ~1.8 KB a
    frame and its warning listed every camera ever seen. What the node keeps per frame
    (calibration, "no calibration" announcement, the warning's camera list) is bounded."""
    import tracemalloc

    cache: CalibrationCache[bytes] = CalibrationCache()

    def frames(start: int, stop: int) -> int:
        longest = 0
        for n in range(start, stop):
            intrinsics = Intrinsics(100 + n % 50, 80 + n % 7, 700.0, 700.0, 50.0, 40.0)
            cache.remember(f"camera_{n}", intrinsics, b"x" * 200, n)
            cache.recall(f"camera_{n}", intrinsics.height, intrinsics.width)
            cache.recall_only(intrinsics.height, intrinsics.width)
            if cache.first_miss(f"other_{n}", 10, 10):
                longest = max(longest, len(cache.describe()))
        return longest

    frames(0, 1000)  # fill the caches
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        longest = frames(1000, 11000)
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 64 * 1024, f"grew {grown} bytes over 10,000 frames"
    assert longest < 200 and len(cache.cameras()) == cache.capacity
