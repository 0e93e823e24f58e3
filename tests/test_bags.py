"""Bags: KITTI raw -> bag (MCAP and sqlite3) read back with rosbags; replay and record over real
DDS (rclpy + Fast DDS on loopback, the CLIs in their own processes).

The DDS tests give each test a domain id of its own (from the pid, away from the node tests'
range), wait for discovery and delivery with timeouts, and never sleep for a fixed time.
"""
from __future__ import annotations

import calendar
import itertools
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np
import pytest
from rosbags.highlevel import AnyReader
from rosbags.interfaces import QosDurability, QosReliability
from rosbags.rosbag2 import StoragePlugin, Writer

from depth_da_ros.bags import (
    CAMERA_FRAME,
    CAMERA_INFO_TOPIC,
    IMAGE_TOPIC,
    TF_STATIC_TOPIC,
    VELO_FRAME,
    VELO_TOPIC,
    offered_qos,
    typestore,
)
from depth_da_ros.bags import kitti2bag
from depth_da_ros.bags.kitti2bag import convert, parse_kitti_timestamp, quaternion_to_rotation
from depth_da_ros.kitti import KittiCalibration, load_velodyne_points
from depth_da_ros.procedural.dataset import ProceduralConfig
from depth_da_ros.procedural.writer import write_domain
from interrupts import interrupted_on_call

try:
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
    from rclpy.serialization import serialize_message
    from rclpy.signals import SignalHandlerOptions
    from sensor_msgs.msg import CameraInfo, Image
    from std_msgs.msg import String

    from depth_da_ros.bags.record import register_type, subscription_qos
    from depth_da_ros.bags.replay import MessageConverter, MessageTypeError, replay_qos

    ROS_MISSING = ""
except ImportError as exc:  # a venv without the [ros] extra
    ROS_MISSING = f"ROS 2 Python packages are not installed ({exc}); pip install -e '.[ros]'"

needs_ros = pytest.mark.skipif(bool(ROS_MISSING), reason=ROS_MISSING)

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SAMPLE_DATE_DIR = SHARED_DATA / "kitti_raw_sample" / "2011_09_26"
SAMPLE_DRIVE = SAMPLE_DATE_DIR / "2011_09_26_drive_9001_sync"
needs_sample = pytest.mark.skipif(
    not SAMPLE_DRIVE.is_dir(), reason=f"real KITTI sample not found at {SAMPLE_DRIVE} (../shared/data is absent "
    "in a fresh clone)")
SAMPLE_FRAMES = 2
DISCOVERY_TIMEOUT = 60.0  # s; generous: the CI machine has 2 cores shared with other work


def read_bag(path: Path) -> dict[str, list[tuple[int, Any]]]:
    """topic -> [(bag time, deserialised message)] of a bag, with rosbags."""
    out: dict[str, list[tuple[int, Any]]] = {}
    with AnyReader([path], default_typestore=typestore()) as reader:
        for connection, stamp, raw in reader.messages():
            out.setdefault(connection.topic, []).append((stamp, reader.deserialize(raw, connection.msgtype)))
    return out


def offered_profiles(path: Path) -> dict[str, list]:
    with AnyReader([path]) as reader:
        return {c.topic: c.ext.offered_qos_profiles for c in reader.connections}


def stamp_ns(header: Any) -> int:
    return int(header.stamp.sec) * 1_000_000_000 + int(header.stamp.nanosec)


def utc_ns(*fields: int, nanos: int = 0) -> int:
    return calendar.timegm(datetime(*fields).timetuple()) * 1_000_000_000 + nanos


# --- kitti2bag ------------------------------------------------------------------------------------


def test_timestamp_parsed_as_exact_integer_nanoseconds():
    stamp = parse_kitti_timestamp("2011-09-26 13:02:25.964389445")
    assert stamp == utc_ns(2011, 9, 26, 13, 2, 25, nanos=964389445)
    assert isinstance(stamp, int)
    assert parse_kitti_timestamp("2011-09-26 13:02:25.5") == utc_ns(2011, 9, 26, 13, 2, 25, nanos=500_000_000)
    assert parse_kitti_timestamp("2011-09-26 13:02:25") == utc_ns(2011, 9, 26, 13, 2, 25)
    with pytest.raises(ValueError, match="expected"):
        parse_kitti_timestamp("2011-09-26T13:02:25.1")


def test_quaternion_round_trip():
    rng = np.random.default_rng(0)
    for _ in range(20):
        q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
        rotation = q * np.sign(np.linalg.det(q))
        assert np.allclose(quaternion_to_rotation(*kitti2bag.rotation_to_quaternion(rotation)), rotation, atol=1e-12)


@pytest.fixture(scope="module")
def sample_bags(tmp_path_factory) -> dict[str, Path]:
    if not SAMPLE_DRIVE.is_dir():
        pytest.skip(f"real KITTI sample not found at {SAMPLE_DRIVE}")
    root = tmp_path_factory.mktemp("kitti_bags")
    bags = {}
    for storage in ("mcap", "sqlite3"):
        bags[storage] = root / f"sample_{storage}"
        convert(SAMPLE_DRIVE, bags[storage], storage=storage, progress=False)
    return bags


@needs_sample
@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_converted_sample_bag_reads_back(sample_bags, storage):
    bag = sample_bags[storage]
    assert (bag / "metadata.yaml").is_file()
    assert f"storage_identifier: {storage}" in (bag / "metadata.yaml").read_text()
    assert len(list(bag.glob("*.mcap" if storage == "mcap" else "*.db3"))) == 1
    messages = read_bag(bag)
    assert {topic: len(items) for topic, items in messages.items()} == {
        IMAGE_TOPIC: SAMPLE_FRAMES, CAMERA_INFO_TOPIC: SAMPLE_FRAMES, VELO_TOPIC: SAMPLE_FRAMES, TF_STATIC_TOPIC: 1}
    calib = KittiCalibration.from_dir(SAMPLE_DATE_DIR)

    for index, (bag_time, image) in enumerate(messages[IMAGE_TOPIC]):
        assert (image.encoding, image.width, image.height, image.step) == ("rgb8", 1242, 375, 1242 * 3)
        assert image.header.frame_id == CAMERA_FRAME and stamp_ns(image.header) == bag_time
        png = cv2.cvtColor(cv2.imread(str(SAMPLE_DRIVE / "image_02" / "data" / f"{index:010d}.png")), cv2.COLOR_BGR2RGB)
        assert np.array_equal(np.asarray(image.data).reshape(375, 1242, 3), png)

    for (_, info), (_, image) in zip(messages[CAMERA_INFO_TOPIC], messages[IMAGE_TOPIC]):
        assert info.header == image.header  # same stamp and frame as its image
        assert (info.width, info.height) == calib.image_size == (1242, 375)
        P = np.asarray(info.p).reshape(3, 4)
        assert np.array_equal(P[:, :3], calib.P_rect[:, :3])  # K and P from P_rect_02
        assert np.array_equal(P[:, 3], np.zeros(3))  # its 4th column lives in the tf (module doc)
        assert np.array_equal(np.asarray(info.k).reshape(3, 3), calib.P_rect[:, :3])
        assert np.array_equal(np.asarray(info.r), np.eye(3).reshape(-1))
        assert info.distortion_model == "plumb_bob" and np.array_equal(np.asarray(info.d), np.zeros(5))

    for index, (bag_time, cloud) in enumerate(messages[VELO_TOPIC]):
        raw = SAMPLE_DRIVE / "velodyne_points" / "data" / f"{index:010d}.bin"
        points = load_velodyne_points(raw)
        assert [(f.name, f.offset, f.datatype, f.count) for f in cloud.fields] == [
            ("x", 0, 7, 1), ("y", 4, 7, 1), ("z", 8, 7, 1), ("intensity", 12, 7, 1)]
        assert (cloud.width, cloud.height, cloud.point_step) == (len(points), 1, 16)
        assert cloud.row_step == 16 * len(points) and not cloud.is_bigendian
        assert cloud.header.frame_id == VELO_FRAME and stamp_ns(cloud.header) == bag_time
        assert np.asarray(cloud.data).tobytes() == raw.read_bytes()

    (_, tf_message), = messages[TF_STATIC_TOPIC]
    (tf,) = tf_message.transforms
    assert (tf.header.frame_id, tf.child_frame_id) == (VELO_FRAME, CAMERA_FRAME)
    velo_from_camera = np.eye(4)
    q, t = tf.transform.rotation, tf.transform.translation
    velo_from_camera[:3, :3] = quaternion_to_rotation(q.x, q.y, q.z, q.w)
    velo_from_camera[:3, 3] = (t.x, t.y, t.z)
    camera_from_velo = np.linalg.inv(velo_from_camera)
    # The calibration: R_rect_00 @ [R|T], shifted by P_rect_02's column (camera 2's own centre).
    expected = kitti2bag.camera_from_velo(calib)
    assert np.allclose(camera_from_velo, expected, atol=1e-7)
    assert np.allclose(camera_from_velo[:3, :3], calib.velo_to_rect[:3, :3], atol=1e-7)
    baseline = np.linalg.solve(calib.P_rect[:, :3], calib.P_rect[:, 3])
    assert np.allclose(camera_from_velo[:3, 3], calib.velo_to_rect[:3, 3] + baseline, atol=1e-7)
    assert 0.05 < baseline[0] < 0.07  # camera 2 sits about 6 cm left of camera 0
    # camera_info P composed with the tf is KITTI's projection P_rect_02 @ R_rect_00 @ [R|T].
    P = np.asarray(messages[CAMERA_INFO_TOPIC][0][1].p).reshape(3, 4)
    assert np.allclose(P @ camera_from_velo, calib.velo_to_image, rtol=1e-6, atol=1e-4)

    profiles = offered_profiles(bag)
    for topic in (IMAGE_TOPIC, CAMERA_INFO_TOPIC, VELO_TOPIC):
        (qos,) = profiles[topic]
        assert (qos.reliability, qos.durability) == (QosReliability.RELIABLE, QosDurability.VOLATILE)
    (tf_qos,) = profiles[TF_STATIC_TOPIC]
    assert (tf_qos.reliability, tf_qos.durability, tf_qos.depth) == (
        QosReliability.RELIABLE, QosDurability.TRANSIENT_LOCAL, 1)


@needs_sample
def test_drive_without_timestamps_gets_10hz_stamps_and_a_warning(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="depth_da_ros.bags.kitti2bag"):
        summary = convert(SAMPLE_DRIVE, tmp_path / "bag", progress=False)
    assert "timestamps.txt" in caplog.text and "10 Hz" in caplog.text
    assert summary.stamp_source == kitti2bag.SYNTHETIC_SOURCE
    messages = read_bag(tmp_path / "bag")
    midnight = utc_ns(2011, 9, 26)  # the drive's date
    for topic in (IMAGE_TOPIC, VELO_TOPIC):
        assert [stamp for stamp, _ in messages[topic]] == [midnight, midnight + 100_000_000]


def fixture_drive(root: Path, image_stamps: list[str], velo_stamps: list[str] | None) -> Path:
    """A drive of the sample's files (linked) with the given timestamps.txt files."""
    date_dir = root / "2011_09_26"
    drive = date_dir / "2011_09_26_drive_0001_sync"
    for name in ("calib_cam_to_cam.txt", "calib_velo_to_cam.txt"):
        date_dir.mkdir(parents=True, exist_ok=True)
        (date_dir / name).symlink_to(SAMPLE_DATE_DIR / name)
    for sensor, suffix, stamps in (("image_02", "png", image_stamps), ("velodyne_points", "bin", velo_stamps)):
        (drive / sensor / "data").mkdir(parents=True)
        for index in range(SAMPLE_FRAMES):
            name = f"{index:010d}.{suffix}"
            (drive / sensor / "data" / name).symlink_to(SAMPLE_DRIVE / sensor / "data" / name)
        if stamps is not None:
            (drive / sensor / "timestamps.txt").write_text("\n".join(stamps) + "\n")
    return drive


@needs_sample
def test_stamps_come_from_timestamps_files_to_the_nanosecond(tmp_path):
    image_stamps = ["2011-09-26 13:02:25.964389445", "2011-09-26 13:02:26.068238353"]
    velo_stamps = ["2011-09-26 13:02:25.951199337", "2011-09-26 13:02:26.054919486"]
    drive = fixture_drive(tmp_path, image_stamps, velo_stamps)
    convert(drive, tmp_path / "bag", storage="sqlite3", progress=False)
    messages = read_bag(tmp_path / "bag")
    expected_images = [utc_ns(2011, 9, 26, 13, 2, 25, nanos=964389445), utc_ns(2011, 9, 26, 13, 2, 26, nanos=68238353)]
    expected_velo = [utc_ns(2011, 9, 26, 13, 2, 25, nanos=951199337), utc_ns(2011, 9, 26, 13, 2, 26, nanos=54919486)]
    assert [stamp_ns(m.header) for _, m in messages[IMAGE_TOPIC]] == expected_images
    assert [stamp_ns(m.header) for _, m in messages[CAMERA_INFO_TOPIC]] == expected_images
    assert [stamp_ns(m.header) for _, m in messages[VELO_TOPIC]] == expected_velo
    assert [stamp for stamp, _ in messages[IMAGE_TOPIC]] == expected_images  # bag time = header stamp
    (tf_time, _), = messages[TF_STATIC_TOPIC]
    assert tf_time == min(expected_images + expected_velo)


@needs_sample
def test_start_and_frames_select_a_range(tmp_path):
    convert(SAMPLE_DRIVE, tmp_path / "bag", start=1, frames=1, progress=False)
    messages = read_bag(tmp_path / "bag")
    assert len(messages[IMAGE_TOPIC]) == len(messages[VELO_TOPIC]) == 1
    (_, cloud), = messages[VELO_TOPIC]
    scan = SAMPLE_DRIVE / "velodyne_points" / "data" / "0000000001.bin"
    assert np.asarray(cloud.data).tobytes() == scan.read_bytes()
    assert stamp_ns(messages[IMAGE_TOPIC][0][1].header) == utc_ns(2011, 9, 26) + 100_000_000  # frame 1's slot


def test_procedural_drive_without_velodyne_converts(tmp_path, caplog):
    write_domain(tmp_path, ProceduralConfig(domain="real", height=64, width=192), 3, workers=1, progress=False)
    drives = sorted((tmp_path / "real").glob("*/*_drive_*_sync"))
    assert len(drives) == 1
    with caplog.at_level(logging.WARNING, logger="depth_da_ros.bags.kitti2bag"):
        assert kitti2bag.main([str(drives[0]), "--out", str(tmp_path / "bag"), "--no-progress"]) == 0
    assert "velodyne_points" in caplog.text and VELO_TOPIC in caplog.text
    messages = read_bag(tmp_path / "bag")
    assert set(messages) == {IMAGE_TOPIC, CAMERA_INFO_TOPIC, TF_STATIC_TOPIC}
    assert [(m.width, m.height, m.encoding) for _, m in messages[IMAGE_TOPIC]] == [(192, 64, "rgb8")] * 3
    start = utc_ns(2000, 1, 1)  # the procedural timestamps.txt: 10 Hz from 2000-01-01
    assert [stamp_ns(m.header) for _, m in messages[IMAGE_TOPIC]] == [start + i * 100_000_000 for i in range(3)]
    calib = KittiCalibration.from_dir(drives[0].parent)
    assert np.allclose(np.asarray(messages[CAMERA_INFO_TOPIC][0][1].p).reshape(3, 4)[:, :3], calib.P_rect[:, :3])


def test_an_interrupted_conversion_leaves_a_readable_bag(tmp_path, monkeypatch, caplog):
    """Ctrl-C (here: a KeyboardInterrupt while the third image is read) closes the bag: exit code
    130, a warning instead of a traceback, and the frames written so far read back."""
    write_domain(tmp_path, ProceduralConfig(domain="real", height=64, width=192), 5, workers=1, progress=False)
    drive = next((tmp_path / "real").glob("*/*_drive_*_sync"))
    with interrupted_on_call(monkeypatch, kitti2bag, "read_rgb"), \
            caplog.at_level(logging.WARNING, logger="depth_da_ros.bags.kitti2bag"):
        assert kitti2bag.main([str(drive), "--out", str(tmp_path / "bag"), "--no-progress"]) == 130
    assert "interrupted" in caplog.text and "readable, incomplete bag" in caplog.text
    assert len(read_bag(tmp_path / "bag")[IMAGE_TOPIC]) == 2


def test_cli_errors_name_the_problem(tmp_path, caplog):
    with caplog.at_level(logging.ERROR):
        assert kitti2bag.main([str(tmp_path / "nowhere"), "--out", str(tmp_path / "bag"), "--no-progress"]) == 1
    assert str(tmp_path / "nowhere" / "image_02" / "data") in caplog.text
    (tmp_path / "exists").mkdir()
    with pytest.raises(SystemExit):
        kitti2bag.main([str(tmp_path), "--out", str(tmp_path / "exists")])


# --- replay and record over DDS -------------------------------------------------------------------

_domains = itertools.count()


def next_domain_id() -> int:
    """A domain per test, 160..229: away from the node tests' 10..159, distinct between tests."""
    return 160 + (os.getpid() + next(_domains)) % 70


def ros_env(domain: int) -> dict[str, str]:
    env = dict(os.environ)
    env.update(ROS_DOMAIN_ID=str(domain), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST", PYTHONUNBUFFERED="1",
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    return env


class RosSide:
    """The test's own rclpy context on the test's domain, spun in a thread; collects messages."""

    def __init__(self, domain: int) -> None:
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=domain, signal_handler_options=SignalHandlerOptions.NO)
        self.node = rclpy.create_node("depth_da_bag_tester", context=self.context)
        self.condition = threading.Condition()
        self.received: dict[str, list[Any]] = {}
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.thread = threading.Thread(target=self.executor.spin, daemon=True)
        self.thread.start()

    def subscribe(self, msg_type: type, topic: str, qos: QoSProfile | None = None) -> None:
        self.received[topic] = []
        qos = qos or QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        self.node.create_subscription(msg_type, topic, lambda msg: self._store(topic, msg), qos)

    def _store(self, topic: str, msg: Any) -> None:
        with self.condition:
            self.received[topic].append(msg)
            self.condition.notify_all()

    def wait_until(self, predicate: Callable[[], bool], timeout: float = DISCOVERY_TIMEOUT) -> bool:
        deadline = time.monotonic() + timeout
        with self.condition:
            while not predicate():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self.condition.wait(min(remaining, 0.1))  # graph changes do not notify: poll too
        return True

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)
        self.thread.join(timeout=5)


@pytest.fixture
def ros(monkeypatch):
    if ROS_MISSING:
        pytest.skip(ROS_MISSING)
    domain = next_domain_id()
    monkeypatch.setenv("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    side = RosSide(domain)
    side.env = ros_env(domain)
    yield side
    side.close()


def run_cli(module: str, args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    with log.open("wb") as out:
        return subprocess.Popen([sys.executable, "-m", module, *args], env=env, cwd=ROOT, stdout=out,
                                stderr=subprocess.STDOUT)


def finish(proc: subprocess.Popen, log: Path, timeout: float = DISCOVERY_TIMEOUT) -> str:
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        pytest.fail(f"{proc.args} did not finish in {timeout} s; its output:\n{log.read_text(errors='replace')}")
    text = log.read_text(errors="replace")
    assert proc.returncode == 0, text
    return text


@needs_ros
def test_message_converter_round_trips_through_rosbags_types():
    store = typestore()
    types = store.types
    header = types["std_msgs/msg/Header"](stamp=types["builtin_interfaces/msg/Time"](sec=5, nanosec=7), frame_id="cam")
    roi = types["sensor_msgs/msg/RegionOfInterest"](x_offset=1, y_offset=2, height=3, width=4, do_rectify=True)
    info = types["sensor_msgs/msg/CameraInfo"](
        header=header, height=4, width=6, distortion_model="plumb_bob", d=np.arange(5, dtype=np.float64),
        k=np.arange(9, dtype=np.float64), r=np.eye(3).reshape(-1), p=np.arange(12, dtype=np.float64),
        binning_x=1, binning_y=2, roi=roi)
    # Through CDR, so the converter sees what a bag reader gives it (NumPy arrays and scalars).
    info = store.deserialize_cdr(store.serialize_cdr(info, "sensor_msgs/msg/CameraInfo"), "sensor_msgs/msg/CameraInfo")
    out = MessageConverter().convert(info, CameraInfo)
    assert isinstance(out, CameraInfo)
    assert (out.header.stamp.sec, out.header.stamp.nanosec, out.header.frame_id) == (5, 7, "cam")
    assert list(out.d) == list(range(5)) and list(out.k) == list(range(9)) and list(out.p) == list(range(12))
    assert (out.roi.x_offset, out.roi.width, out.roi.do_rectify, out.binning_y) == (1, 4, True, 2)
    # Same content in CDR (compared after a rosbags round trip: Fast CDR leaves padding bytes undefined).
    name = "sensor_msgs/msg/CameraInfo"
    assert bytes(store.serialize_cdr(store.deserialize_cdr(serialize_message(out), name), name)) == bytes(
        store.serialize_cdr(info, name))


@needs_ros
def test_qos_choices():
    assert replay_qos([], IMAGE_TOPIC, 5).reliability == ReliabilityPolicy.RELIABLE
    assert replay_qos([], TF_STATIC_TOPIC, 2).durability == DurabilityPolicy.TRANSIENT_LOCAL
    assert replay_qos([offered_qos(reliable=False)], IMAGE_TOPIC, 5).reliability == ReliabilityPolicy.BEST_EFFORT
    latched = replay_qos([offered_qos(transient_local=True, depth=1)], "/map", 3)
    assert (latched.durability, latched.depth) == (DurabilityPolicy.TRANSIENT_LOCAL, 3)
    reliable = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
    best_effort = QoSProfile(depth=5, reliability=ReliabilityPolicy.BEST_EFFORT)
    assert subscription_qos([reliable], "auto").reliability == ReliabilityPolicy.RELIABLE
    assert subscription_qos([reliable, best_effort], "auto").reliability == ReliabilityPolicy.BEST_EFFORT
    assert subscription_qos([best_effort], "reliable").reliability == ReliabilityPolicy.RELIABLE


@needs_ros
def test_record_registers_types_the_typestore_lacks_from_installed_msg_files(tmp_path, monkeypatch):
    share = tmp_path / "prefix" / "share"
    (share / "my_pkg" / "msg").mkdir(parents=True)
    (share / "my_pkg" / "msg" / "Reading.msg").write_text("std_msgs/Header header\nmy_pkg/Unit[] units\n")
    (share / "my_pkg" / "msg" / "Unit.msg").write_text("string name\nfloat64 scale\n")
    monkeypatch.setenv("AMENT_PREFIX_PATH", str(tmp_path / "prefix"))
    store = typestore()
    register_type(store, "my_pkg/msg/Reading")
    assert {"my_pkg/msg/Reading", "my_pkg/msg/Unit"} <= set(store.fielddefs)
    msgdef, _ = store.generate_msgdef("my_pkg/msg/Reading", ros_version=2)
    assert "my_pkg/Unit[] units" in msgdef and "MSG: my_pkg/Unit" in msgdef
    with pytest.raises(MessageTypeError, match="my_pkg/msg/Missing.msg"):
        register_type(store, "my_pkg/msg/Missing")


@needs_ros
@needs_sample
def test_replay_publishes_every_image_and_camera_info(ros, sample_bags, tmp_path):
    ros.subscribe(Image, IMAGE_TOPIC)
    ros.subscribe(CameraInfo, CAMERA_INFO_TOPIC)
    log = tmp_path / "replay.log"
    proc = run_cli("depth_da_ros.bags.replay", [
        str(sample_bags["mcap"]), "--rate", "5", "--topics", IMAGE_TOPIC, CAMERA_INFO_TOPIC,
        "--wait-for-subscribers", "1", "--wait-timeout", str(DISCOVERY_TIMEOUT), "--no-progress"], ros.env, log)
    text = finish(proc, log)
    assert ros.wait_until(lambda: len(ros.received[IMAGE_TOPIC]) == SAMPLE_FRAMES
                          and len(ros.received[CAMERA_INFO_TOPIC]) == SAMPLE_FRAMES), text
    images, infos = ros.received[IMAGE_TOPIC], ros.received[CAMERA_INFO_TOPIC]
    png = cv2.cvtColor(cv2.imread(str(SAMPLE_DRIVE / "image_02" / "data" / "0000000000.png")), cv2.COLOR_BGR2RGB)
    assert (images[0].encoding, images[0].width, images[0].height) == ("rgb8", 1242, 375)
    assert np.array_equal(np.frombuffer(images[0].data, np.uint8).reshape(375, 1242, 3), png)
    assert [i.header.stamp for i in infos] == [i.header.stamp for i in images]
    calib = KittiCalibration.from_dir(SAMPLE_DATE_DIR)
    assert np.array_equal(np.asarray(infos[0].p).reshape(3, 4)[:, :3], calib.P_rect[:, :3])
    assert f"{IMAGE_TOPIC}" in text and "rate" in text  # the summary


def write_foreign_bag(path: Path, frames: int = 3) -> list[np.ndarray]:
    """A bag as another tool writes it: sqlite3, other topic names, bgr8 images, no QoS profiles."""
    store = typestore()
    types = store.types
    images = [np.random.default_rng(i).integers(0, 256, (6, 8, 3), dtype=np.uint8) for i in range(frames)]
    with Writer(path, version=8, storage_plugin=StoragePlugin.SQLITE3) as writer:
        image_conn = writer.add_connection("/camera/left/image", "sensor_msgs/msg/Image", typestore=store)
        info_conn = writer.add_connection("/camera/left/camera_info", "sensor_msgs/msg/CameraInfo", typestore=store)
        for index, bgr in enumerate(images):
            stamp = 1_700_000_000_000_000_000 + index * 50_000_000
            header = types["std_msgs/msg/Header"](
                stamp=types["builtin_interfaces/msg/Time"](sec=stamp // 10**9, nanosec=stamp % 10**9), frame_id="left")
            image = types["sensor_msgs/msg/Image"](header=header, height=6, width=8, encoding="bgr8", is_bigendian=0,
                                                    step=24, data=bgr.reshape(-1))
            roi = types["sensor_msgs/msg/RegionOfInterest"](x_offset=0, y_offset=0, height=0, width=0, do_rectify=False)
            info = types["sensor_msgs/msg/CameraInfo"](
                header=header, height=6, width=8, distortion_model="", d=np.zeros(0), k=np.zeros(9), r=np.zeros(9),
                p=np.full(12, float(index)), binning_x=0, binning_y=0, roi=roi)
            writer.write(info_conn, stamp, store.serialize_cdr(info, "sensor_msgs/msg/CameraInfo"))
            writer.write(image_conn, stamp, store.serialize_cdr(image, "sensor_msgs/msg/Image"))
    return images


@needs_ros
def test_replay_plays_another_tools_sqlite3_bag_with_remapping(ros, tmp_path):
    images = write_foreign_bag(tmp_path / "foreign")
    ros.subscribe(Image, "/remapped/image")
    ros.subscribe(CameraInfo, "/camera/left/camera_info")
    log = tmp_path / "replay.log"
    proc = run_cli("depth_da_ros.bags.replay", [
        str(tmp_path / "foreign"), "--rate", "5", "--remap", "/camera/left/image:=/remapped/image",
        "--wait-timeout", str(DISCOVERY_TIMEOUT), "--no-progress"], ros.env, log)  # waits for 1 by default
    text = finish(proc, log)
    assert "nobody" not in text
    assert ros.wait_until(lambda: len(ros.received["/remapped/image"]) == len(images)
                          and len(ros.received["/camera/left/camera_info"]) == len(images)), text
    for received, expected in zip(ros.received["/remapped/image"], images):
        assert received.encoding == "bgr8" and received.header.frame_id == "left"
        assert np.array_equal(np.frombuffer(received.data, np.uint8).reshape(6, 8, 3), expected)
    assert [list(info.p)[0] for info in ros.received["/camera/left/camera_info"]] == [0.0, 1.0, 2.0]
    assert "/remapped/image" in text


@needs_ros
def test_replay_warns_when_it_plays_to_nobody(ros, tmp_path):
    write_foreign_bag(tmp_path / "foreign", frames=1)
    ros.subscribe(CameraInfo, "/camera/left/camera_info")  # the image topic has no subscriber
    log = tmp_path / "replay.log"
    text = finish(run_cli("depth_da_ros.bags.replay", [
        str(tmp_path / "foreign"), "--wait-timeout", "3", "--no-progress"], ros.env, log), log)
    assert re.search(r"after 3.0 s, fewer than 1 subscriber\(s\) on [^;]*/camera/left/image; playing anyway", text), text
    text = finish(run_cli("depth_da_ros.bags.replay", [
        str(tmp_path / "foreign"), "--wait-for-subscribers", "0", "--no-progress"], ros.env, log), log)
    assert re.search(r"nobody subscribes to [^;]*/camera/left/image yet: playing to nobody there", text), text


@needs_ros
def test_record_writes_what_the_graph_publishes(ros, tmp_path):
    reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    image_pub = ros.node.create_publisher(Image, "/rec/image", reliable)
    text_pub = ros.node.create_publisher(String, "/rec/chatter", reliable)
    bag, log = tmp_path / "recorded", tmp_path / "record.log"
    proc = run_cli("depth_da_ros.bags.record", [str(bag), "--topics", "/rec/image", "rec/chatter",
                                                "--max-messages", "6"], ros.env, log)
    subscribed = ros.wait_until(lambda: image_pub.get_subscription_count() >= 1
                                and text_pub.get_subscription_count() >= 1 or proc.poll() is not None)
    assert subscribed and proc.poll() is None, log.read_text(errors="replace")
    frames = []
    for index in range(3):
        frame = np.full((4, 5), index * 10, dtype=np.uint8)
        frames.append(frame)
        msg = Image(height=4, width=5, encoding="mono8", step=5, data=frame.tobytes())
        msg.header.stamp.sec, msg.header.frame_id = 100 + index, "rec"
        image_pub.publish(msg)
        text_pub.publish(String(data=f"hello {index}"))
    finish(proc, log)
    messages = read_bag(bag)
    assert [m.data for _, m in messages["/rec/chatter"]] == ["hello 0", "hello 1", "hello 2"]
    recorded = messages["/rec/image"]
    assert [int(m.header.stamp.sec) for _, m in recorded] == [100, 101, 102]
    for (_, msg), frame in zip(recorded, frames):
        assert msg.encoding == "mono8" and np.array_equal(np.asarray(msg.data).reshape(4, 5), frame)
    profiles = offered_profiles(bag)
    assert profiles["/rec/image"][0].reliability == QosReliability.RELIABLE
    assert "storage_identifier: mcap" in (bag / "metadata.yaml").read_text()


# --- stopping: Ctrl-C / SIGTERM end record and replay cleanly ------------------------------------

KITTI_SIZE = (375, 1242)


class ImageStream:
    """Publishes KITTI-size rgb8 images (1.4 MB) on ``topic`` from a thread until ``close``, so a
    signal reaches the recorder while it receives and writes."""

    def __init__(self, ros: RosSide, topic: str, period_s: float = 0.05) -> None:
        reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        self.publisher = ros.node.create_publisher(Image, topic, reliable)
        self.sent = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(period_s,), daemon=True)
        self._thread.start()

    def _run(self, period_s: float) -> None:
        height, width = KITTI_SIZE
        data = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8).tobytes()
        while not self._stop.wait(period_s):
            msg = Image(height=height, width=width, encoding="rgb8", step=3 * width, data=data)
            msg.header.stamp.sec, msg.header.frame_id = self.sent, "cam"
            self.publisher.publish(msg)
            self.sent += 1

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


@needs_ros
@pytest.mark.parametrize("signals", [("SIGINT",), ("SIGTERM",), ("SIGINT", "SIGINT")],
                         ids=["ctrl-c", "sigterm", "ctrl-c-twice"])
def test_record_stops_on_a_signal_with_a_readable_bag(ros, tmp_path, signals):
    """A stop signal while large images arrive: exit code 0, no traceback, the summary printed, and a
    bag whose every message reads back (a second Ctrl-C during the clean-up changes nothing; rclpy's
    own handlers used to end in 'RCLError: context is invalid' from a running callback)."""
    stream = ImageStream(ros, "/stop/image")
    bag, log = tmp_path / "recorded", tmp_path / "record.log"
    try:
        proc = run_cli("depth_da_ros.bags.record", [str(bag), "--topics", "/stop/image"], ros.env, log)
        subscribed = ros.wait_until(lambda: stream.publisher.get_subscription_count() >= 1
                                    or proc.poll() is not None)
        assert subscribed and proc.poll() is None, log.read_text(errors="replace")
        start = stream.sent
        assert ros.wait_until(lambda: stream.sent >= start + 10, timeout=30), "the stream stalled"
        for name in signals:
            proc.send_signal(getattr(signal, name))
            time.sleep(0.02)
        text = finish(proc, log)
    finally:
        stream.close()
    assert "Traceback" not in text and f"stopped by {signals[0]}" in text, text
    summary = re.search(r"(\d+) messages in", text)
    assert summary, text
    recorded = read_bag(bag)["/stop/image"]
    assert len(recorded) == int(summary.group(1)) >= 1, text
    for _, msg in recorded:
        size = 3 * KITTI_SIZE[0] * KITTI_SIZE[1]
        assert (msg.height, msg.width, msg.encoding, len(msg.data)) == (*KITTI_SIZE, "rgb8", size)


@needs_ros
def test_replay_stops_on_signals_and_waits_for_the_topics_it_is_told(ros, tmp_path):
    write_foreign_bag(tmp_path / "foreign", frames=2)
    log = tmp_path / "replay.log"
    # Waiting for a subscriber of a topic it does not play (a recorder of the node's output) ...
    text = finish(run_cli("depth_da_ros.bags.replay", [
        str(tmp_path / "foreign"), "--wait-for-subscribers", "0", "--wait-for-topics", "/stop/depth",
        "--wait-timeout", "2", "--no-progress"], ros.env, log), log)
    assert re.search(r"after 2.0 s, no subscriber on /stop/depth; playing anyway", text), text
    ros.subscribe(Image, "/stop/depth")
    text = finish(run_cli("depth_da_ros.bags.replay", [
        str(tmp_path / "foreign"), "--wait-for-subscribers", "0", "--wait-for-topics", "/stop/depth",
        "--wait-timeout", str(DISCOVERY_TIMEOUT), "--no-progress"], ros.env, log), log)
    assert "playing anyway" not in text and "played 1 pass(es)" in text, text
    # ... Ctrl-C twice while looping: the summary, exit code 0 ...
    ros.subscribe(Image, "/camera/left/image")
    proc = run_cli("depth_da_ros.bags.replay", [str(tmp_path / "foreign"), "--loop", "--rate", "10",
                                                "--no-progress"], ros.env, log)
    assert ros.wait_until(lambda: len(ros.received["/camera/left/image"]) >= 4 or proc.poll() is not None)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    text = finish(proc, log)
    assert "interrupted after" in text and "Traceback" not in text, text
    # ... and SIGTERM before playing began (waiting for a subscriber that never comes): 130.
    proc = run_cli("depth_da_ros.bags.replay", [str(tmp_path / "foreign"), "--wait-for-topics", "/nobody",
                                                "--wait-timeout", "600", "--no-progress"], ros.env, log)
    assert ros.wait_until(lambda: ros.node.count_publishers("/camera/left/image") >= 1 or proc.poll() is not None)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=DISCOVERY_TIMEOUT) == 130
    text = log.read_text(errors="replace")
    assert "interrupted before playing" in text and "Traceback" not in text, text


@needs_ros
def test_record_subscribes_a_typed_topic_before_any_publisher(ros, tmp_path):
    """TOPIC:TYPE subscribes at start-up: a publisher created afterwards knows the subscription from
    its first message on (no waiting for the recorder to discover it), and the bag records it."""
    from depth_da_ros.bags.record import parse_topic

    assert parse_topic("typed/chatter:std_msgs/msg/String") == ("/typed/chatter", "std_msgs/msg/String")
    with pytest.raises(ValueError, match="TOPIC:package/msg/Type"):
        parse_topic("/typed/chatter:String")
    bag, log = tmp_path / "recorded", tmp_path / "record.log"
    proc = run_cli("depth_da_ros.bags.record", [str(bag), "--topics", "/typed/chatter:std_msgs/msg/String",
                                                "--max-messages", "1"], ros.env, log)
    assert ros.wait_until(lambda: ros.node.count_subscribers("/typed/chatter") >= 1 or proc.poll() is not None)
    assert proc.poll() is None, log.read_text(errors="replace")
    reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    publisher = ros.node.create_publisher(String, "/typed/chatter", reliable)
    publisher.publish(String(data="first"))  # at once: the recorder's subscription was known already
    text = finish(proc, log)
    assert "subscribed before any publisher" in text, text
    assert [m.data for _, m in read_bag(bag)["/typed/chatter"]] == ["first"]
