"""The node's ``depth/confidence`` over DDS (32FC1 in [0, 1], the depth's header and size, only
while subscribed) and ``confidence_threshold`` turning unconfident depth into NaN."""
from __future__ import annotations

import time

import numpy as np
import pytest

from test_node_ros import (  # noqa: F401 (fixtures)
    DISCOVERY_TIMEOUT_S,
    FRAME_ID,
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
    from depth_da_ros import ros_conversions as conv

from depth_da_ros.camera import KITTI_HEIGHT, KITTI_WIDTH

CONFIDENCE = "depth/confidence"


def frame_outputs(tester, process, seed: int) -> tuple[np.ndarray, np.ndarray, object]:
    deadline = time.monotonic() + OUTPUT_TIMEOUT_S
    while True:
        stamp = send_frame(tester, seed=seed)
        if tester.wait_until(lambda: stamp in tester.outputs[CONFIDENCE] and stamp in tester.outputs["depth/image"],
                             5.0):
            break
        assert time.monotonic() < deadline, f"no confidence; node log:\n{process.text()[-3000:]}"
    message = tester.outputs[CONFIDENCE][stamp]
    assert conv.stamp_to_ns(message.header.stamp) == stamp
    return depth_array(tester.outputs["depth/image"][stamp]), depth_array(message), message


def test_confidence_image_and_threshold(dds_env, tiny_checkpoint, tmp_path):
    process = NodeProcess(tiny_node_command(tiny_checkpoint, "-p", "cloud_enabled:=false"), dds_env,
                          tmp_path / "node.log")
    tester = RosSide(int(dds_env["ROS_DOMAIN_ID"]))
    tester.collect(CONFIDENCE)
    try:
        assert tester.wait_until(lambda: process.proc.poll() is not None or (
            tester.image_pub.get_subscription_count() > 0 and tester.node.count_publishers(CONFIDENCE) > 0),
            DISCOVERY_TIMEOUT_S), f"node not discovered; its log:\n{process.text()}"
        depth, confidence, message = frame_outputs(tester, process, seed=3)
        assert message.encoding == "32FC1" and message.header.frame_id == FRAME_ID
        assert confidence.shape == depth.shape == (KITTI_HEIGHT, KITTI_WIDTH)
        assert np.isfinite(confidence).all() and (confidence >= 0).all() and (confidence <= 1).all()
        assert np.all(confidence[np.isnan(depth)] == 0.0)
        assert 0.0 < confidence.mean() < 1.0  # an untrained network disagrees with itself somewhere
        threshold = float(np.quantile(confidence, 0.3))

        assert tester.set_parameter("confidence_threshold", threshold).successful
        depth, confidence, _ = frame_outputs(tester, process, seed=3)
        low = confidence < threshold
        assert 0.1 < low.mean() < 0.6
        assert np.isnan(depth[low]).all()  # unconfident depth is NaN (REP 118: no estimate)
        assert not np.isnan(depth[~low]).all()
        assert tester.set_parameter("confidence_threshold", 1.5).successful is False  # range checked
    finally:
        tester.close()
        process.stop()
