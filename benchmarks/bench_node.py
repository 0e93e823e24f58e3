"""depth_da_node under a KITTI-size camera stream: latency, rates, drops, overhead, cloud time.

    python benchmarks/bench_node.py                                  # lite preset, ONNX Runtime, 30 Hz, 60 s
    python benchmarks/bench_node.py --threads 2 --duration 120 --soak-minutes 30
    python benchmarks/bench_node.py --model model.onnx --backend onnxruntime
    python benchmarks/bench_node.py --param cloud_decimation:=1 --name node-full-cloud  # full-resolution cloud
    python benchmarks/bench_node.py --outputs --name node-depth-only  # no colour map or cloud subscriber
    python benchmarks/bench_node.py --model tiny.pt --backend torch --duration 3 --warmup 1 --no-record  # smoke
    python benchmarks/bench_node.py --model models/depth.onnx --rate 10 --load 2 --name node-load  # busy cores

The node runs in its own process (``python -m depth_da_ros.node`` with config/depth.yaml), fed
1242x375 rgb8 frames + camera_info at ``--rate`` Hz over DDS (a domain of its own) by this
process, which subscribes to the depth image, colour map and point cloud as RViz would (the
latter two without deserialising them: the harness should cost the shared CPU little), and
reads /diagnostics. Figures:

- camera stamp -> depth published, p50 / p95 (the node's own measurement, /diagnostics), and
  camera stamp -> depth received here (adds the transport of a 1.8 MB message);
- depth output rate, and dropped-frame ratio = 1 - depth images received / frames sent (the
  node keeps only the newest frame, so a model slower than the camera drops frames by design);
- node overhead over the bare pipeline (target <= 10% of its time): the node's own work per
  frame (decoding, scaling, colour map, cloud, messages, publishing: the node's processing p50
  minus its ``DepthPipeline.predict`` p50, both from /diagnostics) over ``predict`` alone in
  this process (timed before and after the node runs, pooled); and, end to end, the node's whole
  time per frame over it, which adds the inference slow-down of sharing the cores with the
  camera stream, DDS and the subscribers;
- point-cloud build time at 1242x375, organised xyz and xyz+rgb, median (target <= 3 ms);
- with ``--soak-minutes``: the node's resident memory after warm-up and at the end;
- frames received / processed / dropped by the node (its /diagnostics counters over the
  measured period) against frames sent: received is what the node's executor got (lost in
  transport otherwise), dropped what it received but skipped because inference was busy;
- start-up: node process start -> its image subscription discovered by the camera;
- with ``--load N``: N competing core-bound processes (a busy loop each) run meanwhile.

Weights are fresh (latency does not depend on them). Records benchmarks/results/<name>.md
(default node.md) unless --no-record.
"""
from __future__ import annotations

import argparse
import array
import logging
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # runs from a plain checkout

import rclpy  # noqa: E402
from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: E402
from rclpy.signals import SignalHandlerOptions  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image, PointCloud2  # noqa: E402
from std_msgs.msg import Header  # noqa: E402

from depth_da_ros.camera import KITTI_CX, KITTI_CY, KITTI_FX, KITTI_HEIGHT, KITTI_WIDTH  # noqa: E402
from depth_da_ros.export import quiet_exporter_logs  # noqa: E402
from depth_da_ros.geometry import Intrinsics, build_point_cloud  # noqa: E402
from depth_da_ros.models import get_preset  # noqa: E402
from depth_da_ros.node_diagnostics import percentile  # noqa: E402
from depth_da_ros.node_topics import NODE_NAME  # noqa: E402
from depth_da_ros.pipeline import DepthPipeline  # noqa: E402
from depth_da_ros.processes import interrupt  # noqa: E402

from bench_pipeline import write_models  # noqa: E402
from recording import record  # noqa: E402

LOG = logging.getLogger("bench_node")
KITTI_P = [KITTI_FX, 0.0, KITTI_CX, 0.0, 0.0, KITTI_FX, KITTI_CY, 0.0, 0.0, 0.0, 1.0, 0.0]
OVERHEAD_TARGET = 0.10  # issue 16 (was 15%)
OPTIONAL_OUTPUTS = ("colorized", "points")
CLOUD_TARGET_MS = 3.0
START_TIMEOUT_S = 120.0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, help="model to run (.onnx or depth checkpoint .pt); default: "
                                                   "a fresh --preset model exported to ONNX")
    parser.add_argument("--preset", default="lite", help="preset of the default model")
    parser.add_argument("--backend", default="onnxruntime", help="node and pipeline backend")
    parser.add_argument("--threads", type=int, default=0, help="inference threads (0: all cores)")
    parser.add_argument("--rate", type=float, default=30.0, help="camera frames per second")
    parser.add_argument("--duration", type=float, default=60.0, help="measured seconds of streaming")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds of streaming before measuring")
    parser.add_argument("--pipeline-runs", type=int, default=30, help="bare-pipeline frames timed")
    parser.add_argument("--cloud-runs", type=int, default=50, help="point-cloud builds timed")
    parser.add_argument("--soak-minutes", type=float, default=0.0, help="then stream this long, tracking memory")
    parser.add_argument("--param", action="append", default=[], metavar="NAME:=VALUE",
                        help="node parameter over config/depth.yaml (repeatable)")
    parser.add_argument("--outputs", nargs="*", default=list(OPTIONAL_OUTPUTS), choices=OPTIONAL_OUTPUTS,
                        help="outputs subscribed besides depth/image (the node builds only those); none: depth only")
    parser.add_argument("--load", type=int, default=0, metavar="N",
                        help="competing core-bound processes (busy loops) while the node runs")
    parser.add_argument("--name", default="node", help="results file name (benchmarks/results/NAME.md)")
    parser.add_argument("--no-record", action="store_true", help="print only")
    return parser.parse_args(argv)


def kitti_rgb(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (KITTI_HEIGHT, KITTI_WIDTH, 3), dtype=np.uint8)


def bench_pipeline(model: Path, backend: str, threads: int, runs: int) -> list[float]:
    """``predict`` milliseconds on a KITTI-size frame, after 3 warm-up frames."""
    pipeline = DepthPipeline(model, backend, device="cpu", threads=threads or None)
    frame = kitti_rgb()
    for _ in range(3):
        pipeline.predict(frame)
    timings = []
    for _ in range(runs):
        pipeline.predict(frame)
        timings.append(pipeline.last_timing.total_ms)
    return timings


def bench_cloud(runs: int) -> dict[str, float]:
    """Median milliseconds of a full-resolution organised cloud, xyz and xyz+rgb."""
    camera = Intrinsics(KITTI_WIDTH, KITTI_HEIGHT, KITTI_FX, KITTI_FX, KITTI_CX, KITTI_CY)
    depth = np.random.default_rng(0).uniform(0.5, 80.0, (KITTI_HEIGHT, KITTI_WIDTH)).astype(np.float32)
    rgb = kitti_rgb()
    results = {}
    for name, colours in (("xyz", None), ("xyzrgb", rgb)):
        timings = []
        for _ in range(runs):
            start = time.perf_counter()
            build_point_cloud(depth, camera, rgb=colours, min_depth=0.1, max_depth=60.0)
            timings.append((time.perf_counter() - start) * 1e3)
        results[name] = float(np.median(timings))
    return results


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


class Camera:
    """Publishes frames at a fixed rate and collects what the node sends back."""

    def __init__(self, domain: int, outputs: list[str]) -> None:
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=domain, signal_handler_options=SignalHandlerOptions.NO)
        self.node = rclpy.create_node("bench_camera", context=self.context)
        qos = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
        self.image_pub = self.node.create_publisher(Image, "image", qos)
        self.info_pub = self.node.create_publisher(CameraInfo, "camera_info", qos)
        self.lock = threading.Lock()
        self.sent = 0
        self.since_ns = 0  # frames stamped before this (warm-up) are not counted
        self.latencies_ms: list[float] = []  # camera stamp -> depth received here
        self.diagnostics: dict[str, str] = {}
        self.node.create_subscription(Image, "depth/image", self._on_depth, qos)
        # Subscribed as RViz would, so that the node builds them.
        self.cloud_bytes = 0  # the serialised size of the last point cloud
        if "colorized" in outputs:
            self.node.create_subscription(Image, "depth/colorized", lambda msg: None, qos, raw=True)
        if "points" in outputs:
            self.node.create_subscription(PointCloud2, "points", self._on_cloud, qos, raw=True)
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, 10)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.spinner = threading.Thread(target=self.executor.spin, daemon=True)
        self.spinner.start()
        self.data = array.array("B", kitti_rgb().tobytes())
        self.baseline: dict[str, str] = {}  # the node's counters when measuring starts

    def _on_depth(self, msg: Image) -> None:
        now = self.node.get_clock().now().nanoseconds
        stamp = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
        with self.lock:
            if stamp >= self.since_ns:
                self.latencies_ms.append((now - stamp) * 1e-6)

    def _on_cloud(self, serialized: bytes) -> None:
        self.cloud_bytes = len(serialized)

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            if NODE_NAME in status.name:
                with self.lock:
                    self.diagnostics = {kv.key: kv.value for kv in status.values}

    def connected(self) -> bool:
        return (self.image_pub.get_subscription_count() > 0 and self.info_pub.get_subscription_count() > 0
                and self.node.count_publishers("depth/image") > 0)

    def stream(self, seconds: float, rate: float) -> None:
        """Publish camera_info + image pairs at ``rate`` Hz for ``seconds`` (fixed schedule, no drift)."""
        period = 1.0 / rate
        start = time.monotonic()
        count = int(seconds * rate)
        for i in range(count):
            time.sleep(max(0.0, start + i * period - time.monotonic()))
            header = Header(stamp=self.node.get_clock().now().to_msg(), frame_id="camera_color_left")
            self.info_pub.publish(CameraInfo(header=header, width=KITTI_WIDTH, height=KITTI_HEIGHT, p=KITTI_P))
            self.image_pub.publish(Image(header=header, height=KITTI_HEIGHT, width=KITTI_WIDTH, encoding="rgb8",
                                         step=3 * KITTI_WIDTH, data=self.data))
            with self.lock:
                self.sent += 1

    def reset(self) -> None:
        with self.lock:
            self.baseline = dict(self.diagnostics)
            self.sent = 0
            self.since_ns = self.node.get_clock().now().nanoseconds
            self.latencies_ms.clear()

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)


def start_load(count: int) -> list[subprocess.Popen]:
    """``count`` core-bound processes (a Python busy loop each) competing with the node."""
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]


def counter(diagnostics: dict[str, str], baseline: dict[str, str], key: str) -> int:
    return int(diagnostics.get(key, 0)) - int(baseline.get(key, 0))


def run_node(args: argparse.Namespace, model: Path) -> dict:
    domain = 160 + os.getpid() % 60
    env = {**os.environ, "ROS_DOMAIN_ID": str(domain), "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    command = [sys.executable, "-m", "depth_da_ros.node", "--ros-args",
               "--params-file", str(ROOT / "config" / "depth.yaml"), "-p", f"model_path:={model}",
               "-p", f"backend:={args.backend}", "-p", "device:=cpu", "-p", f"threads:={args.threads}",
               *[part for param in args.param for part in ("-p", param)]]
    log = tempfile.NamedTemporaryFile(prefix="bench_node_", suffix=".log", delete=False)
    os.environ["ROS_DOMAIN_ID"], os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = str(domain), "LOCALHOST"
    camera = Camera(domain, args.outputs)  # first: the node's start-up is timed alone
    load = start_load(args.load)
    started = time.monotonic()
    node = subprocess.Popen(command, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = started + START_TIMEOUT_S
        while camera.image_pub.get_subscription_count() == 0:
            if node.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the node did not come up; its log: {log.name}")
            time.sleep(0.02)
        startup_s = time.monotonic() - started
        while not camera.connected():
            if node.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the node did not come up; its log: {log.name}")
            time.sleep(0.1)
        camera.stream(args.warmup, args.rate)
        time.sleep(1.5)  # a /diagnostics message after the warm-up frames: the baseline of the counters
        camera.reset()
        camera.stream(args.duration, args.rate)
        time.sleep(1.5)  # the last frames and a /diagnostics message after them
        with camera.lock:
            sent, latencies, diagnostics = camera.sent, list(camera.latencies_ms), dict(camera.diagnostics)
            baseline = camera.baseline
        result = {"sent": sent, "received": len(latencies), "seconds": sent / args.rate, "latencies": latencies,
                  "diagnostics": diagnostics, "cloud_mb": camera.cloud_bytes / 1e6, "startup_s": startup_s,
                  "node_counts": {key: counter(diagnostics, baseline, f"frames {key}")
                                  for key in ("received", "processed", "dropped", "rejected")}}
        if args.soak_minutes > 0:
            rss_start = rss_mb(node.pid)
            camera.stream(args.soak_minutes * 60.0, args.rate)
            result["rss_mb"] = (rss_start, rss_mb(node.pid))
        return result
    finally:
        for process in load:
            process.kill()
            process.wait()
        camera.close()
        interrupt(node, 30, "depth_da_node")
        log.close()
        if node.returncode == 0:
            os.unlink(log.name)
        else:
            LOG.error("the node exited with %s; its log: %s", node.returncode, log.name)


def report(args: argparse.Namespace, model: Path, pipeline_ms: tuple[list[float], list[float]],
           cloud_ms: dict[str, float], node: dict) -> str:
    diagnostics = node["diagnostics"]
    before, after = pipeline_ms
    pipeline_p50 = percentile(before + after, 50)
    node_p50 = float(diagnostics.get("processing p50 (ms)", "nan"))
    inference_p50 = float(diagnostics.get("inference p50 (ms)", "nan"))
    own_work = node_p50 - inference_p50
    received = node["received"]
    counts = node["node_counts"]
    rows = [
        ("model", f"{model.name} ({args.backend}, {args.threads or 'all'} threads)"),
        ("node parameters over config/depth.yaml", ", ".join(args.param) or "none"),
        ("outputs subscribed", ", ".join(["depth/image", *args.outputs])),
        ("input", f"{KITTI_WIDTH}x{KITTI_HEIGHT} rgb8 + camera_info at {args.rate:g} Hz, {node['seconds']:.0f} s"),
        ("camera stamp -> depth published, p50 / p95 (node)",
         f"{diagnostics.get('latency p50 (ms)', 'n/a')} / {diagnostics.get('latency p95 (ms)', 'n/a')} ms"),
        ("camera stamp -> depth received here, p50 / p95",
         f"{percentile(node['latencies'], 50):.1f} / {percentile(node['latencies'], 95):.1f} ms"),
        ("competing core-bound processes", str(args.load)),
        ("start-up: process start -> image subscription discovered", f"{node['startup_s']:.2f} s"),
        ("depth output rate", f"{received / node['seconds']:.2f} Hz"),
        ("dropped frames (sent but no depth back)",
         f"{1 - received / max(node['sent'], 1):.1%} ({node['sent'] - received} of {node['sent']})"),
        ("frames received by the node / processed / dropped by its queue (of sent)",
         f"{counts['received']} ({counts['received'] / max(node['sent'], 1):.0%}) / {counts['processed']} / "
         f"{counts['dropped']} (of {node['sent']})"),
        ("point cloud message", f"{node['cloud_mb']:.2f} MB" if "points" in args.outputs else "not subscribed"),
        ("bare pipeline predict, p50 (before / after the node run)",
         f"{pipeline_p50:.1f} ms ({percentile(before, 50):.1f} / {percentile(after, 50):.1f})"),
        ("node time per frame, p50 (decode, inference, colour map, cloud, publishing)", f"{node_p50:.1f} ms"),
        ("of which predict in the node, p50", f"{inference_p50:.1f} ms"),
        ("node overhead: its own work per frame (node time - its predict) over the bare pipeline",
         f"{own_work:.1f} ms = {own_work / pipeline_p50:+.1%} (target <= {OVERHEAD_TARGET:.0%})"),
        ("node time per frame over the bare pipeline, end to end (adds predict slowed by the shared cores)",
         f"{node_p50 / pipeline_p50 - 1.0:+.1%}"),
        ("point cloud 1242x375 organised, xyz / xyz+rgb (median)",
         f"{cloud_ms['xyz']:.2f} / {cloud_ms['xyzrgb']:.2f} ms (target <= {CLOUD_TARGET_MS:g} ms)"),
    ]
    if "rss_mb" in node:
        start, end = node["rss_mb"]
        rows.append((f"resident memory, after warm-up -> after {args.soak_minutes:g} min",
                     f"{start:.0f} -> {end:.0f} MB ({end - start:+.1f} MB)"))
    table = "| figure | value |\n|---|---|\n" + "\n".join(f"| {name} | {value} |" for name, value in rows)
    return table + ("\n\nThe camera publisher and the subscribers run in the benchmark's process on the same "
                    "CPU as the node.\n")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    quiet_exporter_logs()
    with tempfile.TemporaryDirectory(prefix="bench_node_") as tmp:
        model = args.model or write_models(get_preset(args.preset), Path(tmp))["onnx"]
        LOG.info("bare pipeline: %d frames", args.pipeline_runs)
        before = bench_pipeline(model, args.backend, args.threads, args.pipeline_runs)
        LOG.info("point cloud: %d builds", args.cloud_runs)
        cloud_ms = bench_cloud(args.cloud_runs)
        LOG.info("node: %.0f s warm-up + %.0f s at %g Hz", args.warmup, args.duration, args.rate)
        node = run_node(args, model)
        # Timed again after the node run: on a shared machine one baseline can be off by 10-20%.
        LOG.info("bare pipeline again: %d frames", args.pipeline_runs)
        after = bench_pipeline(model, args.backend, args.threads, args.pipeline_runs)
        body = report(args, model, (before, after), cloud_ms, node)
    print(body)
    if not args.no_record:
        LOG.info("recorded %s", record(args.name, body))
    return 0


if __name__ == "__main__":
    sys.exit(main())
