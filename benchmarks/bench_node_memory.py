"""depth_da_node's memory and log while a publisher changes frame_id and image size every frame
(issue 24 item 2): the node's RSS every 1,000 frames, its log's line count and longest line.

    python benchmarks/bench_node_memory.py --frames 10000

Runs the node (a tiny random depth checkpoint, torch on CPU) in its own process on ROS domain 77,
localhost discovery; each frame has a camera_info of another frame id (kept as a calibration)
and an image of a new frame id and one of 35 sizes (without calibration). Every camera_info
reaches the node's calibration cache; with queue_size 1 the inference thread sees only the frames
it has time for (the rest are dropped and counted).
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def rss_kb(pid: int) -> int:
    return int(Path(f"/proc/{pid}/status").read_text().split("VmRSS:")[1].split()[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=10000)
    args = parser.parse_args()
    os.environ.update({"ROS_DOMAIN_ID": "77", "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"})
    import rclpy
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import CameraInfo, Image

    from model_fixtures import write_depth_checkpoint

    work = Path(tempfile.mkdtemp(prefix="node_memory_"))
    checkpoint = write_depth_checkpoint(work / "depth.pt")
    log_path = work / "node.log"
    with log_path.open("w") as log:
        node_proc = subprocess.Popen(
            [sys.executable, "-m", "depth_da_ros.node", "--ros-args", "-p", f"model_path:={checkpoint}", "-p",
             "backend:=torch", "-p", "device:=cpu", "-p", "threads:=1", "-p", "warning_period:=5.0"],
            stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    rclpy.init()
    node = rclpy.create_node("memory_driver")
    qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    image_pub = node.create_publisher(Image, "image", qos)
    info_pub = node.create_publisher(CameraInfo, "camera_info", qos)
    try:
        while image_pub.get_subscription_count() == 0:
            time.sleep(0.1)
        time.sleep(1.0)
        rng = np.random.default_rng(0)
        for n in range(args.frames + 1):
            height, width = 24 + n % 5, 32 + n % 7
            stamp = node.get_clock().now().to_msg()
            info = CameraInfo(width=width, height=height,
                              p=[30.0, 0.0, 16.0, 0.0, 0.0, 30.0, 12.0, 0.0, 0.0, 0.0, 1.0, 0.0])
            info.header.stamp, info.header.frame_id = stamp, f"info_{n}"
            info_pub.publish(info)
            image = Image(height=height, width=width, encoding="rgb8", step=3 * width,
                          data=rng.integers(0, 256, height * width * 3, np.uint8).tobytes())
            image.header.stamp, image.header.frame_id = stamp, f"camera_{n}"
            image_pub.publish(image)
            if n % 1000 == 0:
                print(f"{n} frames: node RSS {rss_kb(node_proc.pid)} kB", flush=True)
            time.sleep(0.002)
        time.sleep(2.0)
        print(f"end: node RSS {rss_kb(node_proc.pid)} kB")
    finally:
        node_proc.send_signal(2)
        node_proc.wait(20)
        node.destroy_node()
        rclpy.try_shutdown()
    lines = log_path.read_text().splitlines()
    print(f"node log: {len(lines)} lines, longest {max(map(len, lines), default=0)} characters")


if __name__ == "__main__":
    main()
