"""The main job on the embedded default: ``make demo`` (console script ``depth_da_demo``).

The whole chain on a procedural drive, with no dataset, GPU or ROS distro:

1. render a short driving sequence in the real-camera look, with exact depth, as a KITTI raw
   drive (``depth_da_ros.procedural.writer``), and the sample sheet of the two looks;
2. convert it to a ROS 2 bag (``depth_da_kitti2bag``; procedural drives have no velodyne);
3. start ``depth_da_node`` (the bundled model and ``config/depth.yaml``) in its every-frame mode
   (``queue_size`` = the frame count: no frame is skipped, so the metrics cover a fixed frame
   set however busy the machine is) and ``depth_da_record``;
4. replay the bag into the node over DDS (``depth_da_replay``) on a ROS domain of its own,
   localhost only, with the shipped Fast DDS profile for large images (unless Fast DDS is
   configured otherwise, see ``depth_da_ros.console``);
5. write ``demo_out/``: picture strips (input | adapted | predicted depth | ground truth, with
   column labels and a colour bar in metres), one point cloud as PLY, the metrics against the
   ground truth, a latency / fps summary (printed too), the sample sheet and each process's log.
   Strips and the cloud come from frames the node actually published; the summary names only
   files that were written, and says when frames lack depth (the metrics then cover fewer).

Each child process runs in a session of its own (a Ctrl-C reaches the demo, which stops them in
order) and is stopped with SIGINT, then SIGKILL after a timeout, when the demo ends: also on an
error, SIGTERM or Ctrl-C. ``--model`` runs another exported model.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from .bags import CAMERA_INFO_TOPIC, IMAGE_TOPIC
from .console import apply_default_fastdds_profile
from .depth_io import read_kitti_depth
from .metrics import METRIC_NAMES, evaluate_frames, format_metrics_table
from .model_metadata import MetadataError, read_model_metadata
from .node_parameters import find_bundled_model, package_directories
from .node_topics import ADAPTED_TOPIC, COLORIZED_TOPIC, DEPTH_INFO_TOPIC, DEPTH_TOPIC, POINTS_TOPIC
from .procedural.dataset import ProceduralConfig, ProceduralDataset
from .procedural.writer import KITTI_DATE, drive_name, frame_paths, write_domain
from .pointcloud_io import cloud_arrays, write_ply
from .processes import ChildProcesses
from .visualization import colorize_depth, label_columns, picture_strip, with_colour_bar, write_png

LOG = logging.getLogger("depth_da_demo")

CONFIG_FILE = Path("config") / "depth.yaml"
# Not a seed of training (0), validation (1) or the sim-to-real evaluation (1000).
DEMO_SEED = 2000
MAX_DEPTH = 80.0  # metres: the metrics' cap, as KITTI's
# The node's colour map (config/depth.yaml) is the visualization default, as the ground truth's here.
MAX_QUEUE = 1000  # queue_size's maximum: frames the node may hold waiting (each a camera frame of memory)
START_TIMEOUT_S = 120.0  # the node loads its model and subscribes: slow on a busy 2-core machine
STOP_TIMEOUT_S = 10.0  # SIGINT, then SIGKILL
QUIET_S = 5.0  # after the replay ends, this long without a new depth image means the node is done
POLL_S = 0.1
STRIP_FRAMES = 4
STRIP_SCALE = 0.5  # strip tiles at half the camera's size
# Absolute names of the node's outputs (it runs without a namespace).
DEPTH, DEPTH_INFO, COLORIZED, POINTS, ADAPTED = (f"/{t}" for t in (
    DEPTH_TOPIC, DEPTH_INFO_TOPIC, COLORIZED_TOPIC, POINTS_TOPIC, ADAPTED_TOPIC))


class DemoError(RuntimeError):
    """The demo cannot go on; the message says why and, where it helps, which log to read."""


# -- package files --------------------------------------------------------------------------------


def find_model(explicit: Path | None, directories: Sequence[Path] | None = None) -> Path:
    """``explicit`` if given, else the bundled model (``node_parameters.find_bundled_model``)."""
    if explicit is not None:
        if not explicit.is_file():
            raise DemoError(f"--model {explicit} does not exist")
        return explicit
    found, looked = find_bundled_model(package_directories() if directories is None else directories)
    if found is None:
        raise DemoError("no bundled model: looked for " + ", ".join(str(p) for p in looked) + ". Build it with "
                        "`python benchmarks/bench_sim2real.py --work runs/bench_sim2real/main` (about 80 min on 2 cores), then "
                        "`python benchmarks/bundle_model.py runs/bench_sim2real/main`, or pass --model MODEL.onnx")
    return found


def find_package_file(relative: Path, directories: Sequence[Path] | None = None) -> Path:
    looked = [d / relative for d in (package_directories() if directories is None else directories)]
    found = next((p for p in looked if p.is_file()), None)
    if found is None:
        raise DemoError(f"{relative} not found; looked for {', '.join(str(p) for p in looked)}")
    return found


def model_outputs_adapted(model: Path) -> bool:
    """Whether the node will publish the adapted frame: the model has the adapter's styled output."""
    try:
        return read_model_metadata(model).outputs_styled
    except MetadataError as exc:
        raise DemoError(str(exc)) from None


# -- the procedural part ---------------------------------------------------------------------------


def render_sample_sheet(scenes: int, seed: int, height: int, width: int) -> tuple[np.ndarray, float]:
    """Rows of (synthetic, real, depth) for ``scenes`` shared scenes, with column labels and a
    colour bar in metres; returns (RGB sheet, frames/s)."""
    base = ProceduralConfig(seed=seed, height=height, width=width, paired=True)
    synthetic = ProceduralDataset(base, scenes)
    real = ProceduralDataset(dataclasses.replace(base, domain="real"), scenes)
    rows = []
    started = time.perf_counter()
    for i in tqdm(range(scenes), desc="rendering scenes", unit="scene"):
        a, b = synthetic[i], real[i]
        rows.append(np.hstack([a.rgb, b.rgb, colorize_depth(a.depth)]))
    fps = 2 * scenes / (time.perf_counter() - started)
    sheet = label_columns(np.vstack(rows), ["synthetic look (training)", "real look (camera)", "exact depth"],
                          f"procedural scenes, seed {seed}")
    return with_colour_bar(sheet), fps


def render_drive(root: Path, frames: int, height: int, width: int, seed: int) -> Path:
    """One real-look driving sequence (the camera moves forward through one scene) as a KITTI raw
    drive under ``root``, with depth-benchmark ground truth; returns the drive folder."""
    config = ProceduralConfig(domain="real", seed=seed, height=height, width=width, sequence_length=frames)
    # In this process: a worker pool forked after OpenCV's threads have run (the sample sheet) can
    # deadlock in OpenCV, and for a few dozen frames it would save about a second.
    write_domain(root, config, frames, workers=1)
    return root / "real" / KITTI_DATE / drive_name(0)


# -- processes and the ROS graph -------------------------------------------------------------------


class GraphWatcher:
    """The demo's own rclpy participant: who subscribes to what, when each camera frame arrived and
    when its depth came out (by the small depth/camera_info published with it), and the node's latest
    /diagnostics values. Receive times are this process's monotonic clock, in ns.

    It subscribes to both replayed topics, so the replay, waiting for two subscribers per topic (the
    node and this one), plays only once the demo hears the frames too.
    """

    def __init__(self, domain_id: int) -> None:
        try:
            import rclpy
            from diagnostic_msgs.msg import DiagnosticArray
            from rclpy.executors import SingleThreadedExecutor
            from rclpy.qos import QoSProfile, ReliabilityPolicy
            from rclpy.signals import SignalHandlerOptions
            from sensor_msgs.msg import CameraInfo, Image
        except ImportError as exc:
            raise DemoError(f"the demo needs ROS 2 Python ({exc}): pip install -e '.[ros]' in a venv "
                            "(what `make demo` does), or source a ROS 2 distro") from None
        self._rclpy = rclpy
        self.context = rclpy.Context()
        # No rclpy signal handlers: Ctrl-C stays a KeyboardInterrupt, so the demo stops its children.
        rclpy.init(context=self.context, domain_id=domain_id, signal_handler_options=SignalHandlerOptions.NO)
        self.node = rclpy.create_node("depth_da_demo", context=self.context)
        self._lock = threading.Lock()
        self.sent: dict[int, int] = {}  # image stamp -> when the camera image arrived
        self.done: dict[int, int] = {}  # image stamp -> when the node's depth/camera_info for it arrived
        self.diagnostics: dict[str, str] = {}
        qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        self.node.create_subscription(Image, IMAGE_TOPIC, partial(self._on_stamped, self.sent), qos)
        self.node.create_subscription(CameraInfo, CAMERA_INFO_TOPIC, lambda msg: None, qos)  # see the class doc
        self.node.create_subscription(CameraInfo, DEPTH_INFO, partial(self._on_stamped, self.done), qos)
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, qos)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.thread = threading.Thread(target=self.executor.spin, name="demo_graph", daemon=True)
        self.thread.start()

    def _on_stamped(self, times: dict[int, int], msg: object) -> None:
        now = time.monotonic_ns()
        with self._lock:
            times.setdefault(msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec, now)

    def _on_diagnostics(self, msg: object) -> None:
        for status in msg.status:
            if "depth_da_node" in status.name:
                with self._lock:
                    self.diagnostics = {kv.key: kv.value for kv in status.values}

    @property
    def depth_count(self) -> int:
        with self._lock:
            return len(self.done)

    def timing(self) -> tuple[dict[int, int], dict[int, int]]:
        with self._lock:
            return dict(self.sent), dict(self.done)

    def subscribers(self, topic: str) -> int:
        return self.node.count_subscribers(topic)

    def wait_until(self, ready: Callable[[], bool], timeout_s: float, what: str, check: Callable[[], None]) -> None:
        """Poll ``ready`` until true; ``check`` raises when a process it needs has died."""
        deadline = time.monotonic() + timeout_s
        while not ready():
            check()
            if time.monotonic() > deadline:
                raise DemoError(f"timed out after {timeout_s:.0f} s waiting for {what}")
            time.sleep(POLL_S)

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        self._rclpy.try_shutdown(context=self.context)
        self.thread.join(timeout=STOP_TIMEOUT_S)


# -- the chain -------------------------------------------------------------------------------------


@dataclass
class Recorded:
    """What the recorder got that the outputs need, by image stamp: depth for every frame, pictures
    and the point cloud only for the frames shown (``picture_stamps``, ``cloud_stamp``: chosen
    among the frames the node published them for)."""

    depth: dict[int, np.ndarray] = field(default_factory=dict)
    colorized: dict[int, np.ndarray] = field(default_factory=dict)
    adapted: dict[int, np.ndarray] = field(default_factory=dict)
    cloud: tuple[np.ndarray, np.ndarray | None] | None = None
    picture_stamps: list[int] = field(default_factory=list)
    cloud_stamp: int | None = None


def _stamp(msg: object) -> int:
    return msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec


def choose_shown(stamps: Sequence[int], published: dict[str, set[int]], picture_topics: Sequence[str]
                 ) -> tuple[list[int], int | None]:
    """The strip's frames (up to ``STRIP_FRAMES``, spread over the drive) among ``stamps`` (in
    order) with depth and every picture topic published, and the cloud's frame: the published
    one nearest the middle of the drive; None when the node published no cloud."""
    complete = [s for s in stamps if all(s in published.get(t, ()) for t in (DEPTH, *picture_topics))]
    pictures = [complete[i] for i in strip_indices(len(complete))] if complete else []
    clouds = [i for i, s in enumerate(stamps) if s in published.get(POINTS, ())]
    middle = len(stamps) // 2
    cloud = stamps[min(clouds, key=lambda i: (abs(i - middle), i))] if clouds else None
    return pictures, cloud


def read_recording(bag: Path, stamps: Sequence[int], adapted: bool) -> Recorded:
    """The recorded outputs: which frames each topic has (first pass), then depth of every frame
    and the pictures and cloud of the frames shown (second pass, so only those are kept)."""
    from rosbags.highlevel import AnyReader
    from rosbags.image import message_to_cvimage

    from .bags import typestore

    out = Recorded()
    with AnyReader([bag], default_typestore=typestore()) as reader:
        published: dict[str, set[int]] = {}
        for connection, _, raw in reader.messages():
            published.setdefault(connection.topic, set()).add(_stamp(reader.deserialize(raw, connection.msgtype)))
        out.picture_stamps, out.cloud_stamp = choose_shown(stamps, published,
                                                           [COLORIZED, *([ADAPTED] if adapted else [])])
        shown = set(out.picture_stamps)
        for connection, _, raw in reader.messages():
            topic = connection.topic
            msg = reader.deserialize(raw, connection.msgtype)
            stamp = _stamp(msg)
            if topic == DEPTH:
                out.depth[stamp] = np.asarray(message_to_cvimage(msg), dtype=np.float32)
            elif topic == COLORIZED and stamp in shown:
                out.colorized[stamp] = message_to_cvimage(msg, "rgb8")
            elif topic == ADAPTED and stamp in shown:
                out.adapted[stamp] = message_to_cvimage(msg, "rgb8")
            elif topic == POINTS and stamp == out.cloud_stamp:
                try:
                    out.cloud = cloud_arrays(msg)
                except ValueError as exc:
                    raise DemoError(f"{topic}: {exc}") from None
    return out


@dataclass
class ChainResult:
    recorded: Recorded
    stamps: list[int]  # of the rendered frames, in order
    adapted: bool  # the model has the style adapter (the node published adapted/image)
    sent: dict[int, int]  # GraphWatcher's receive times
    done: dict[int, int]
    diagnostics: dict[str, str]
    processes: dict[str, dict[str, int | None]]
    walls: dict[str, float]


def child_environment(domain_id: int) -> dict[str, str]:
    """The children's environment: the demo's ROS domain, this host only, and the package's Fast DDS
    profile for large images unless the user configured Fast DDS (``console.apply_default_fastdds_profile``)."""
    env = dict(os.environ)
    env.update(ROS_DOMAIN_ID=str(domain_id), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST", PYTHONUNBUFFERED="1")
    apply_default_fastdds_profile(env)
    return env


def run_chain(args: argparse.Namespace, model: Path, work: Path, log_dir: Path) -> ChainResult:
    """Render, convert, start node and recorder, replay, wait for the depth images, stop everything."""
    from .bags.kitti2bag import convert, read_timestamps

    walls: dict[str, float] = {}
    tick = time.perf_counter()
    LOG.info("[1/5] rendering %d real-look frames at %dx%d (a forward drive, procedural seed %d)", args.frames,
             args.width, args.height, args.seed)
    drive = render_drive(work / "procedural", args.frames, args.height, args.width, args.seed)
    walls["render"] = time.perf_counter() - tick

    tick = time.perf_counter()
    LOG.info("[2/5] converting the drive to a ROS 2 bag")
    bag = work / "drive_bag"
    convert(drive, bag, progress=False)
    stamps = read_timestamps(drive / "image_02" / "timestamps.txt")
    walls["convert"] = time.perf_counter() - tick

    tick = time.perf_counter()
    config = find_package_file(CONFIG_FILE)
    env = child_environment(args.domain_id)
    # The demo's own participant joins the same localhost-only domain with the same Fast DDS profile.
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    apply_default_fastdds_profile()
    children = ChildProcesses(env, log_dir, STOP_TIMEOUT_S)
    watcher = None
    try:
        LOG.info("[3/5] starting depth_da_node (model %s, ROS domain %d; log %s)", model, args.domain_id,
                 log_dir / "node.log")
        # Every frame (queue_size), the strip draws one colour bar for all tiles (no legend in the image).
        children.start("node", "depth_da_ros.node", [
            "--ros-args", "--params-file", str(config), "-p", f"model_path:={model}",
            "-p", f"queue_size:={min(args.frames, MAX_QUEUE)}", "-p", "colormap_legend:=false",
            "-r", f"image:={IMAGE_TOPIC}", "-r", f"camera_info:={CAMERA_INFO_TOPIC}"])
        watcher = GraphWatcher(args.domain_id)
        adapted = model_outputs_adapted(model)
        # Two subscribers per input topic: the node's and the watcher's.
        watcher.wait_until(lambda: all(watcher.subscribers(t) >= 2 for t in (IMAGE_TOPIC, CAMERA_INFO_TOPIC)),
                           START_TIMEOUT_S, "depth_da_node to load its model and subscribe",
                           lambda: children.check_running("node"))
        outputs = [DEPTH, COLORIZED, POINTS, *([ADAPTED] if adapted else [])]
        # One message per output and frame: the recorder stops by itself after them all.
        children.start("record", "depth_da_ros.bags.record", [
            str(work / "recorded"), "--topics", *outputs, "--max-messages", str(args.frames * len(outputs))])
        watcher.wait_until(lambda: all(watcher.subscribers(t) >= 1 for t in outputs), START_TIMEOUT_S,
                           "depth_da_record to subscribe", lambda: children.check_running("node", "record"))
        walls["start"] = time.perf_counter() - tick

        tick = time.perf_counter()
        LOG.info("[4/5] replaying the bag into the node at %.2fx (%.1f frames/s) and recording its outputs",
                 args.rate, 10.0 * args.rate)
        replay = children.start("replay", "depth_da_ros.bags.replay", [
            str(bag), "--rate", str(args.rate), "--topics", IMAGE_TOPIC, CAMERA_INFO_TOPIC,
            "--wait-for-subscribers", "2", "--no-progress"])
        recorder = children.procs["record"]
        replay_s = args.frames / (10.0 * args.rate)
        deadline = time.monotonic() + replay_s + START_TIMEOUT_S
        last_count, last_change = 0, time.monotonic()
        with tqdm(total=args.frames, desc="depth images", unit="frame") as bar:
            while recorder.poll() is None:
                count = watcher.depth_count
                if count > bar.n:
                    bar.update(count - bar.n)
                now = time.monotonic()
                if count != last_count:
                    last_count, last_change = count, now
                children.check_running("node")
                if replay.poll() not in (None, 0):
                    raise DemoError(f"depth_da_replay failed with code {replay.returncode}; "
                                    f"{children.log_tail('replay')}")
                if replay.poll() == 0 and now - last_change > QUIET_S:
                    if count < args.frames:
                        LOG.warning("the node published depth for %d of %d frames (see the frames dropped in its "
                                    "diagnostics and %s)", count, args.frames, log_dir / "node.log")
                    else:
                        LOG.warning("the recorder missed some of the node's outputs (see %s)",
                                    log_dir / "record.log")
                    children.stop("record")
                    break
                if now > deadline:
                    raise DemoError(f"timed out: {count} of {args.frames} depth images after {replay_s:.0f} s "
                                    f"of replay; {children.log_tail('node')}")
                time.sleep(POLL_S)
            bar.update(max(watcher.depth_count - bar.n, 0))
        if recorder.returncode != 0:
            raise DemoError(f"depth_da_record failed with code {recorder.returncode}; {children.log_tail('record')}")
        diagnostics = dict(watcher.diagnostics)
        sent, done = watcher.timing()
        walls["replay"] = time.perf_counter() - tick
    finally:
        children.stop_all()
        if watcher is not None:
            watcher.close()

    tick = time.perf_counter()
    recorded = read_recording(work / "recorded", stamps, adapted)
    walls["read"] = time.perf_counter() - tick
    return ChainResult(recorded, stamps, adapted, sent, done, diagnostics, children.record(), walls)


def strip_indices(frames: int) -> list[int]:
    return sorted(set(np.linspace(0, frames - 1, min(STRIP_FRAMES, frames)).round().astype(int).tolist()))


# -- outputs ---------------------------------------------------------------------------------------


def write_outputs(out: Path, result: ChainResult, work: Path, args: argparse.Namespace, model: Path) -> dict:
    """Strips, point cloud, metrics and the summary under ``out``; returns the summary."""
    recorded, stamps = result.recorded, result.stamps
    paths = [frame_paths(work / "procedural", "real", i) for i in range(len(stamps))]
    gt = {stamp: read_kitti_depth(p["depth"]) for stamp, p in zip(stamps, paths)}

    written: list[str] = []
    rows = []
    for stamp in recorded.picture_stamps:  # frames with every picture published
        i = stamps.index(stamp)
        rgb = cv2.cvtColor(cv2.imread(str(paths[i]["rgb"]), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        row = [rgb]
        if result.adapted:
            # The adapted frame is at the network's size: shown at the camera's.
            row.append(cv2.resize(recorded.adapted[stamp], (rgb.shape[1], rgb.shape[0]),
                                  interpolation=cv2.INTER_LINEAR))
        row += [recorded.colorized[stamp], colorize_depth(gt[stamp])]
        rows.append(row)
    labels = ["input (camera)", *(["adapted (what the depth net sees)"] if result.adapted else []),
              "predicted depth (depth/colorized)", "ground truth"]
    frame_numbers = ", ".join(str(stamps.index(s)) for s in recorded.picture_stamps)
    if rows:
        write_png(out / "strips.png", picture_strip(rows, labels, f"depth_da_demo: {model.name}, frames "
                                                    f"{frame_numbers}", STRIP_SCALE))
        written.append(f"strips.png ({len(rows)} frames: {frame_numbers})")
    else:
        LOG.warning("no frame has every picture published: no strips.png")

    cloud_points, cloud_frame = None, None
    if recorded.cloud is not None:
        xyz, rgb = recorded.cloud
        cloud_frame = stamps.index(recorded.cloud_stamp)
        write_ply(out / "point_cloud.ply", xyz, rgb, comment=f"depth_da_demo points of frame {cloud_frame}, "
                  "camera optical frame (x right, y down, z forward), metres")
        cloud_points = len(xyz)
        written.append(f"point_cloud.ply (frame {cloud_frame}, {cloud_points} points)")
    else:
        LOG.warning("the node published no point cloud: no point_cloud.ply")

    pairs = [(gt[s], recorded.depth[s]) for s in stamps if s in recorded.depth]
    missing = [i for i, s in enumerate(stamps) if s not in recorded.depth]
    if missing:
        LOG.warning("frames %s have no depth: the metrics cover %d of %d frames and are not comparable with a "
                    "complete run", ", ".join(map(str, missing)), len(pairs), len(stamps))
    metrics = {name: evaluate_frames(pairs, crop="none", max_depth=MAX_DEPTH, median_scaling=scaled)
               for name, scaled in (("metric", False), ("median-scaled", True))} if pairs else {}
    protocol = f"crop none, ground truth in (1e-3, {MAX_DEPTH:g}] m (the sky has none), per image then averaged"
    (out / "metrics.json").write_text(json.dumps({"protocol": protocol, "frames": len(pairs),
                                                  "frames_without_depth": missing, **metrics}, indent=2) + "\n")
    (out / "metrics.md").write_text(
        f"# depth_da_demo metrics\n\nModel `{model}`, {len(pairs)} of {len(stamps)} frames of a procedural "
        f"real-look drive (seed {args.seed}) against its exact depth; {protocol}."
        + (f" Frames without depth (not evaluated): {', '.join(map(str, missing))}." if missing else "")
        + "\n\n" + (format_metrics_table(metrics) if metrics else "No depth image was recorded.") + "\n")
    written += ["metrics.md", "metrics.json", "summary.json", "sample_sheet.png", "logs/"]

    latencies = [(result.done[s] - result.sent[s]) / 1e6 for s in stamps if s in result.done and s in result.sent]
    received = sorted(result.done.values())
    fps = (len(received) - 1) / ((received[-1] - received[0]) / 1e9) if len(received) > 1 else float("nan")
    summary = {
        "model": str(model),
        "backend": result.diagnostics.get("backend", "unknown"),
        "frames": len(stamps),
        "size": [args.width, args.height],
        "depth_images": len(recorded.depth),
        "replay_fps": 10.0 * args.rate,
        "output_fps": fps,
        "latency_ms": {"p50": float(np.percentile(latencies, 50)) if latencies else None,
                       "p95": float(np.percentile(latencies, 95)) if latencies else None},
        "node_processing_p50_ms": result.diagnostics.get("processing p50 (ms)"),
        "node_frames_dropped": result.diagnostics.get("frames dropped"),
        "point_cloud_points": cloud_points,
        "point_cloud_frame": cloud_frame,
        "strip_frames": [stamps.index(s) for s in recorded.picture_stamps],
        "frames_without_depth": missing,
        "written": written,
        "metrics": metrics,
        "wall_s": {k: round(v, 2) for k, v in result.walls.items()},
        "processes": result.processes,
    }
    return summary


def format_summary(summary: dict, out: Path) -> str:
    latency = summary["latency_ms"]
    lines = [
        f"depth_da_demo: {summary['frames']} frames {summary['size'][0]}x{summary['size'][1]} replayed over DDS "
        f"into depth_da_node ({summary['backend']})",
        f"  model            {summary['model']}",
        f"  depth images     {summary['depth_images']} of {summary['frames']} frames (the node's count of "
        f"dropped frames: {summary['node_frames_dropped'] or 'n/a'})",
    ]
    if summary["frames_without_depth"]:
        lines.append(f"  INCOMPLETE       frames {', '.join(map(str, summary['frames_without_depth']))} have no depth: "
                     "the metrics below cover the others only")
    if latency["p50"] is not None:
        lines.append(f"  latency          p50 {latency['p50']:.0f} ms, p95 {latency['p95']:.0f} ms "
                     "(camera image received -> its depth/camera_info received, at one subscriber; includes "
                     "the wait in the node's frame queue when frames come faster than it runs)")
    lines.append(f"  rate             {summary['output_fps']:.1f} depth images/s for {summary['replay_fps']:.1f} "
                 f"frames/s in; node processing p50 {summary['node_processing_p50_ms'] or 'n/a'} ms per frame")
    if summary["metrics"]:
        lines.append(f"  vs ground truth  crop none, depth in (1e-3, {MAX_DEPTH:g}] m, per frame then averaged:")
    for name, metrics in summary["metrics"].items():
        lines.append(f"    {name:<14} " + " ".join(f"{k} {metrics[k]:.3f}" for k in METRIC_NAMES))
    walls = summary["wall_s"]
    lines += [f"  wall time        {walls['total']:.0f} s (" + ", ".join(
        f"{k} {v:.0f} s" for k, v in walls.items() if k != "total") + ")",
        f"  wrote            {out}/: " + ", ".join(summary["written"])]
    return "\n".join(lines)


# -- main ------------------------------------------------------------------------------------------


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="depth_da_demo", description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--out", type=Path, default=Path("demo_out"), help="output folder (default: %(default)s)")
    parser.add_argument("--model", type=Path, help="exported .onnx model (default: the bundled models/depth.onnx)")
    parser.add_argument("--frames", type=int, default=24, help="frames of the drive (default: %(default)s)")
    parser.add_argument("--height", type=int, default=375, help="frame height (default: KITTI's %(default)s)")
    parser.add_argument("--width", type=int, default=1242, help="frame width (default: KITTI's %(default)s)")
    parser.add_argument("--seed", type=int, default=DEMO_SEED,
                        help="procedural seed of the drive (default: %(default)s)")
    parser.add_argument("--rate", type=float, default=0.3,
                        help="replay speed, x the drive's 10 Hz (default: %(default)s, slow enough for 2 CPU cores)")
    parser.add_argument("--domain-id", type=int, default=1 + os.getpid() % 232,
                        help="ROS domain of the demo's processes, localhost only (default: from the process id)")
    parser.add_argument("--scenes", type=int, default=6, help="scenes of the sample sheet (default: %(default)s)")
    parser.add_argument("--keep-work", action="store_true",
                        help="keep the rendered drive and both bags in OUT/work (several MB per frame)")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    args = parser.parse_args(argv)
    if not 2 <= args.frames <= 1000:
        parser.error("--frames must be in [2, 1000]")
    if args.height < 8 or args.width < 8 or args.scenes < 1 or args.rate <= 0:
        parser.error("--height and --width must be >= 8, --scenes >= 1 and --rate > 0")
    if not 0 <= args.domain_id <= 232:
        parser.error("--domain-id must be in [0, 232]")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(message)s")
    started = time.perf_counter()
    # SIGTERM stops the children as Ctrl-C does; SIGINT explicitly too, since a background job starts with
    # it ignored.
    previous_handlers = {signum: signal.signal(signum, _interrupt) for signum in (signal.SIGINT, signal.SIGTERM)}
    out = args.out
    try:
        model = find_model(args.model)
        out.mkdir(parents=True, exist_ok=True)
        sheet, fps = render_sample_sheet(args.scenes, args.seed, 192, 640)
        write_png(out / "sample_sheet.png", sheet)
        LOG.info("wrote %s: %d scenes, synthetic look | real look | depth (renderer: %.1f frames/s)",
                 out / "sample_sheet.png", args.scenes, fps)
        if args.keep_work:
            shutil.rmtree(out / "work", ignore_errors=True)  # the bag writers refuse existing bags
        work_dir = contextlib.nullcontext(str(out / "work")) if args.keep_work else \
            tempfile.TemporaryDirectory(prefix="depth_da_demo_")
        with work_dir as work:
            result = run_chain(args, model, Path(work), out / "logs")
            LOG.info("[5/5] writing %s", out)
            summary = write_outputs(out, result, Path(work), args, model)
    except (DemoError, ChildProcessError) as exc:  # ChildProcessError: a child exited early
        LOG.error("depth_da_demo: %s", exc)
        return 2
    except KeyboardInterrupt:
        LOG.error("depth_da_demo: interrupted; every child process was stopped")
        return 130
    finally:
        for signum, handler in previous_handlers.items():
            signal.signal(signum, handler)
    summary["wall_s"]["total"] = round(time.perf_counter() - started, 2)
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(format_summary(summary, out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
