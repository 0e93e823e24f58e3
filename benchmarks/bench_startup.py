"""depth_da_node start-up: process start -> its image subscription discovered, and the CPU time
the node had used by then.

    python benchmarks/bench_startup.py                        # the bundled model, 5 starts
    python benchmarks/bench_startup.py --runs 3 --model model.onnx --param backend:=onnxruntime

Each run starts ``python -m depth_da_ros.node`` with config/depth.yaml on a ROS domain of its
own (localhost only) while this process's publisher on ``image`` waits for the subscription,
then stops the node with SIGINT. Wall time depends on what else runs on the cores (on a shared
machine it varies several-fold from run to run); the node's CPU seconds (user + system, from
/proc) at that moment do not, and show what start-up costs. Records
benchmarks/results/<name>.md (default startup.md) unless --no-record.
"""
from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # runs from a plain checkout

from recording import record  # noqa: E402

TIMEOUT_S = 300.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="node starts (default: %(default)s)")
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "depth.onnx", help="model_path")
    parser.add_argument("--param", action="append", default=[], metavar="NAME:=VALUE",
                        help="node parameter over config/depth.yaml (repeatable)")
    parser.add_argument("--name", default="startup", help="results file name (benchmarks/results/NAME.md)")
    parser.add_argument("--no-record", action="store_true", help="print only")
    args = parser.parse_args(argv)

    domain = 100 + os.getpid() % 60
    os.environ.update(ROS_DOMAIN_ID=str(domain), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST")
    import rclpy
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image

    rclpy.init()
    probe = rclpy.create_node("startup_probe")
    publisher = probe.create_publisher(Image, "image", QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE))
    command = [sys.executable, "-m", "depth_da_ros.node", "--ros-args", "--params-file",
               str(ROOT / "config" / "depth.yaml"), "-p", f"model_path:={args.model}",
               *[part for param in args.param for part in ("-p", param)]]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    walls, cpus = [], []
    try:
        for _ in range(args.runs):
            started = time.monotonic()
            node = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
            while publisher.get_subscription_count() == 0:
                if node.poll() is not None or time.monotonic() - started > TIMEOUT_S:
                    raise RuntimeError(f"the node did not subscribe (exit code {node.poll()}): {' '.join(command)}")
                time.sleep(0.01)
            walls.append(time.monotonic() - started)
            cpus.append(cpu_seconds(node.pid))
            node.send_signal(signal.SIGINT)
            node.wait(60)
            while publisher.get_subscription_count() > 0:  # the next run starts unmatched
                time.sleep(0.05)
    finally:
        probe.destroy_node()
        rclpy.try_shutdown()
    load = os.getloadavg()
    body = (
        "| figure | value |\n|---|---|\n"
        f"| model | {args.model.name} (parameters over config/depth.yaml: {', '.join(args.param) or 'none'}) |\n"
        f"| process start -> image subscription discovered, median (runs) | {statistics.median(walls):.2f} s "
        f"({', '.join(f'{w:.2f}' for w in walls)}) |\n"
        f"| node CPU time (user + system) by then, median (runs) | {statistics.median(cpus):.2f} s "
        f"({', '.join(f'{c:.2f}' for c in cpus)}) |\n"
        f"| load average at the end (1 / 5 / 15 min) | {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} |\n")
    print(body)
    if not args.no_record:
        print(f"recorded {record(args.name, body)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
