"""The node's ``temporal_smoothing`` over DDS: the second of two close frames comes out as
temporal.smooth_static of the first output and its own raw depth."""
from __future__ import annotations

import numpy as np
import pytest

from test_node_ros import (  # noqa: F401 (fixtures)
    DISCOVERY_TIMEOUT_S,
    ROS_MISSING,
    NodeProcess,
    RosSide,
    dds_env,
    depth_array,
    send_frame,
    tiny_checkpoint,
    tiny_node_command,
    wait_outputs,
)

from depth_da_ros.temporal import smooth_static

pytestmark = pytest.mark.skipif(bool(ROS_MISSING), reason=ROS_MISSING or "")


def test_temporal_smoothing_blends_consecutive_frames(dds_env, tiny_checkpoint, tmp_path):
    process = NodeProcess(tiny_node_command(tiny_checkpoint, "-p", "cloud_enabled:=false"), dds_env,
                          tmp_path / "node.log")
    tester = RosSide(int(dds_env["ROS_DOMAIN_ID"]))
    try:
        assert tester.wait_until(lambda: process.proc.poll() is not None or (
            tester.image_pub.get_subscription_count() > 0 and tester.node.count_publishers("depth/image") > 0
            and tester.node.count_subscribers("depth/image") > 0), DISCOVERY_TIMEOUT_S), process.text()

        def depth_of(seed: int) -> np.ndarray:
            for _ in range(5):  # the node's publisher may match this side a moment late
                stamp = send_frame(tester, seed=seed)
                if tester.wait_until(lambda: stamp in tester.outputs["depth/image"], 5.0):
                    return depth_array(tester.outputs["depth/image"][stamp]).copy()
            return depth_array(wait_outputs(tester, process, stamp, ("depth/image",))["depth/image"]).copy()

        raw_a, raw_b = depth_of(1), depth_of(2)  # smoothing off (the default)
        assert tester.set_parameter("temporal_smoothing", 0.5).successful
        first = depth_of(1)
        second = depth_of(2)
    finally:
        tester.close()
        process.stop()
    np.testing.assert_array_equal(first, raw_a)  # a (re)started filter passes the first frame through
    expected = smooth_static(raw_a, raw_b, 0.5, 0.15)
    np.testing.assert_allclose(second, expected, rtol=1e-6)
    assert not np.allclose(second, raw_b)  # it did blend
