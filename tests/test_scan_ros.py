"""The node's ``scan`` output over DDS: the LaserScan of each depth image (same stamp), in the
configured body frame, and read back the way Nav2's obstacle layer reads it (range -> point)."""
from __future__ import annotations

import math
import time

import numpy as np
import pytest

from test_node_ros import (  # noqa: F401 (fixtures)
    DISCOVERY_TIMEOUT_S,
    OUTPUT_TIMEOUT_S,
    ROS_MISSING,
    NodeProcess,
    RosSide,
    dds_env,
    depth_array,
    send_frame,
    tiny_checkpoint,
    tiny_node_command,
)

pytestmark = pytest.mark.skipif(bool(ROS_MISSING), reason=ROS_MISSING or "")

if not ROS_MISSING:
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import LaserScan

    from depth_da_ros import ros_conversions as conv

from depth_da_ros.camera import KITTI_CX, KITTI_CY, KITTI_FX, KITTI_HEIGHT, KITTI_WIDTH
from depth_da_ros.geometry import Intrinsics
from depth_da_ros.laserscan import Scan, depth_to_scan, scan_points, scan_to_optical

BAND = 5
RANGE_MIN, RANGE_MAX = 0.5, 200.0


def test_scan_matches_the_depth_image_and_reads_back_onto_it(dds_env, tiny_checkpoint, tmp_path):
    process = NodeProcess(tiny_node_command(
        tiny_checkpoint, "-p", "cloud_enabled:=false", "-p", f"scan_band_height:={BAND}",
        "-p", f"scan_range_min:={RANGE_MIN}", "-p", f"scan_range_max:={RANGE_MAX}",
        "-p", "scan_frame_id:=camera_link"), dds_env, tmp_path / "node.log")
    tester = RosSide(int(dds_env["ROS_DOMAIN_ID"]))
    scans: dict[int, LaserScan] = {}

    def store(msg: LaserScan) -> None:
        with tester.condition:
            scans[conv.stamp_to_ns(msg.header.stamp)] = msg
            tester.condition.notify_all()

    tester.node.create_subscription(LaserScan, "scan", store, QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE))
    try:
        assert tester.wait_until(lambda: process.proc.poll() is not None or (
            tester.image_pub.get_subscription_count() > 0 and tester.node.count_publishers("scan") > 0),
            DISCOVERY_TIMEOUT_S), f"node not discovered; its log:\n{process.text()}"
        deadline = time.monotonic() + OUTPUT_TIMEOUT_S
        while True:
            stamp = send_frame(tester, seed=7)
            if tester.wait_until(lambda: stamp in scans and stamp in tester.outputs["depth/image"], 5.0):
                break
            assert time.monotonic() < deadline, f"no scan; node log:\n{process.text()[-3000:]}"
        msg = scans[stamp]
        depth = depth_array(tester.outputs["depth/image"][stamp])
    finally:
        tester.close()
        process.stop()

    assert msg.header.frame_id == "camera_link"
    assert (msg.range_min, msg.range_max) == (RANGE_MIN, RANGE_MAX)
    assert len(msg.ranges) == KITTI_WIDTH and msg.time_increment == 0.0
    camera = Intrinsics(KITTI_WIDTH, KITTI_HEIGHT, KITTI_FX, KITTI_FX, KITTI_CX, KITTI_CY)
    expected = depth_to_scan(depth, camera, band_height=BAND, range_min=RANGE_MIN, range_max=RANGE_MAX)
    ranges = np.asarray(msg.ranges, dtype=np.float32)
    np.testing.assert_array_equal(ranges, expected.ranges)  # NaN, +-Inf and values alike
    assert msg.angle_min == pytest.approx(-math.atan((KITTI_WIDTH - 1 - KITTI_CX) / KITTI_FX), rel=1e-6)
    assert msg.angle_max == pytest.approx(math.atan(KITTI_CX / KITTI_FX), rel=1e-6)
    assert msg.angle_min + msg.angle_increment * (KITTI_WIDTH - 1) == pytest.approx(msg.angle_max, rel=1e-5)

    # Nav2's reading of the message: each marking point, moved to the optical frame and
    # projected with P, lies on the band's rows' depth: its z is within the band's depth range
    # of a column at most one column away from where it projects.
    scan = Scan(msg.angle_min, msg.angle_max, msg.angle_increment, msg.range_min, msg.range_max, ranges)
    marks, clears = scan_points(scan, inf_is_valid=True)
    assert len(marks) > 0 and len(clears) >= len(marks)
    optical = scan_to_optical(marks)
    u = KITTI_FX * optical[:, 0] / optical[:, 2] + KITTI_CX
    centre = int(math.floor(KITTI_CY + 0.5))
    band = depth[centre - (BAND - 1) // 2: centre - (BAND - 1) // 2 + BAND]
    for x_opt, z_opt, column in zip(optical[:, 0], optical[:, 2], u):
        cols = range(max(int(math.floor(column)) - 1, 0), min(int(math.ceil(column)) + 2, KITTI_WIDTH))
        ranges_there = [d * math.hypot(1.0, (c - KITTI_CX) / KITTI_FX) for c in cols for d in band[:, c]
                        if np.isfinite(d) and d > 0]
        assert min(abs(math.hypot(x_opt, z_opt) - r) for r in ranges_there) < 1e-3
