"""The whole chain on the real KITTI sample, each stage in its own process over real DDS:
kitti2bag -> depth_da_replay -> depth_da_node (a tiny untrained ONNX model) -> depth_da_record
-> training/evaluate.py against the velodyne ground truth of the converted bag.

The model is untrained, so its metric values mean nothing: the test asserts one depth image per
frame, stamped like its camera frame, and finite metrics.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from depth_da_ros.metrics import METRIC_NAMES

try:
    import depth_da_ros.node  # noqa: F401
except Exception as exc:  # noqa: BLE001  (any import failure means: no node to test yet)
    pytest.skip(f"depth_da_ros.node does not import ({exc!r}); the chain test needs the node",
                allow_module_level=True)

from test_bags import (  # noqa: E402  (the bag tests' DDS helpers)
    DISCOVERY_TIMEOUT,
    ROOT,
    ROS_MISSING,
    SAMPLE_DRIVE,
    SAMPLE_FRAMES,
    RosSide,
    finish,
    needs_sample,
    next_domain_id,
    read_bag,
    ros_env,
    run_cli,
    stamp_ns,
)

from depth_da_ros.bags import CAMERA_INFO_TOPIC, IMAGE_TOPIC  # noqa: E402
from depth_da_ros.bags.kitti2bag import convert  # noqa: E402
from depth_da_ros.processes import interrupt  # noqa: E402
from training import evaluate  # noqa: E402

pytestmark = [needs_sample, pytest.mark.slow,
              pytest.mark.skipif(bool(ROS_MISSING), reason=ROS_MISSING or "ROS 2 Python is installed")]
DEPTH_TOPIC, POINTS_TOPIC = "/depth/image", "/points"
CHAIN_TIMEOUT = 180.0  # s: the node imports torch and loads the model on a busy 2-core machine


def stop(proc: subprocess.Popen) -> None:
    interrupt(proc, 20)


def logs(*paths: Path) -> str:
    return "\n".join(f"--- {p.name}:\n{p.read_text(errors='replace') if p.exists() else '(none)'}" for p in paths)


@pytest.fixture(scope="module")
def tiny_onnx(tmp_path_factory) -> Path:
    from model_fixtures import write_depth_checkpoint

    from depth_da_ros.export import export_onnx

    root = tmp_path_factory.mktemp("chain_model")
    out = root / "tiny.onnx"
    export_onnx(out, write_depth_checkpoint(root / "depth.pt"))
    return out


def test_convert_replay_node_record_evaluate(tiny_onnx, tmp_path, monkeypatch):
    converted, recorded = tmp_path / "kitti", tmp_path / "recorded"
    convert(SAMPLE_DRIVE, converted, progress=False)
    domain = next_domain_id()
    monkeypatch.setenv("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    env = ros_env(domain)
    ros = RosSide(domain)
    node_log, record_log, replay_log = tmp_path / "node.log", tmp_path / "record.log", tmp_path / "replay.log"
    node = recorder = None
    try:
        with node_log.open("wb") as out:
            node = subprocess.Popen(
                [sys.executable, "-m", "depth_da_ros.node", "--ros-args", "-p", f"model_path:={tiny_onnx}",
                 "-p", "backend:=onnxruntime", "-r", f"image:={IMAGE_TOPIC}",
                 "-r", f"camera_info:={CAMERA_INFO_TOPIC}"],
                env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
        recorder = run_cli("depth_da_ros.bags.record", [str(recorded), "--topics", DEPTH_TOPIC, POINTS_TOPIC,
                                                        "--max-messages", str(2 * SAMPLE_FRAMES)], env, record_log)
        # The node subscribes the camera once its model is loaded; the recorder subscribes the
        # node's outputs once they have a publisher.
        graph = ros.node
        ready = ros.wait_until(lambda: all(graph.count_subscribers(t) >= 1 for t in (IMAGE_TOPIC, CAMERA_INFO_TOPIC))
                               and all(graph.count_subscribers(t) >= 1 for t in (DEPTH_TOPIC, POINTS_TOPIC))
                               or node.poll() is not None or recorder.poll() is not None, timeout=CHAIN_TIMEOUT)
        assert ready and node.poll() is None and recorder.poll() is None, logs(node_log, record_log)

        # Slow enough that the node (newest frame wins) processes every frame.
        replay = run_cli("depth_da_ros.bags.replay", [
            str(converted), "--rate", "0.2", "--topics", IMAGE_TOPIC, CAMERA_INFO_TOPIC,
            "--wait-for-subscribers", "1", "--wait-timeout", str(DISCOVERY_TIMEOUT), "--no-progress"], env, replay_log)
        finish(replay, replay_log)
        try:
            recorder.wait(timeout=CHAIN_TIMEOUT)
        except subprocess.TimeoutExpired:
            stop(recorder)
            pytest.fail("the recorder did not get a depth image and a cloud per frame\n"
                        + logs(node_log, record_log, replay_log))
        assert recorder.returncode == 0, logs(record_log)
    finally:
        for proc in (recorder, node):
            if proc is not None:
                stop(proc)
        ros.close()

    messages = read_bag(recorded)
    frames = read_bag(converted)[IMAGE_TOPIC]
    depth = messages[DEPTH_TOPIC]
    assert len(depth) == SAMPLE_FRAMES and len(messages[POINTS_TOPIC]) == SAMPLE_FRAMES, logs(node_log)
    assert sorted(stamp_ns(m.header) for _, m in depth) == [stamp_ns(m.header) for _, m in frames]
    for _, msg in depth:
        assert (msg.encoding, msg.width, msg.height) == ("32FC1", 1242, 375)

    out_json = tmp_path / "report.json"
    assert evaluate.main(["--bag", str(recorded), "--gt-bag", str(converted), "--label", "chain",
                          "--out-json", str(out_json), "--no-progress"]) == 0
    metrics = json.loads(out_json.read_text())["rows"]["chain"]["metrics"]
    assert metrics["frames"] == SAMPLE_FRAMES
    assert all(np.isfinite(metrics[name]) for name in METRIC_NAMES), metrics
