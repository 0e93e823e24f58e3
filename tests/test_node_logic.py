"""The node's logic without ROS (node_parameters, node_topics, node_frames, node_diagnostics):
frame slot, statistics, stamp matching, warning throttle, QoS choice, parameter validation,
diagnostics summary."""
from __future__ import annotations

import dataclasses
import math
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from depth_da_ros.backends import AUTO, BACKENDS
from depth_da_ros.node_diagnostics import (
    DIAGNOSTIC_ERROR,
    DIAGNOSTIC_OK,
    DIAGNOSTIC_WARN,
    StreamStatistics,
    diagnostic_summary,
    percentile,
)
from depth_da_ros.node_frames import FrameQueue, StampMatcher, WarningThrottle
from depth_da_ros.node_parameters import (
    AUTO_DECIMATION,
    BACKEND_CHOICES,
    BUNDLED_MODEL,
    PARAMETER_NAMES,
    PARAMETERS,
    NodeSettings,
    ParameterError,
    cloud_stride,
    find_bundled_model,
    parameter_help,
    settings_from_parameters,
    unknown_parameters,
)
from depth_da_ros.node_topics import choose_reliability
from depth_da_ros.registry import Registry, UnknownNameError


@pytest.fixture
def model(tmp_path):
    path = tmp_path / "model.onnx"
    path.write_bytes(b"onnx")
    return str(path)


# --- frame slot ---------------------------------------------------------------------------


def test_slot_keeps_the_newest_frame_and_counts_the_dropped_ones():
    slot: FrameQueue[int] = FrameQueue()
    assert slot.put(1) is False
    assert slot.put(2) is True and slot.put(3) is True  # 1 and 2 were never taken: stale
    assert slot.take(timeout=0) == 3
    assert slot.take(timeout=0) is None  # taken frames are gone
    assert slot.put(4) is False and slot.take(timeout=0) == 4
    assert (slot.received, slot.dropped) == (4, 2)


def test_slot_wakes_a_waiting_consumer_and_close_ends_it():
    slot: FrameQueue[str] = FrameQueue()
    taken = []
    first_taken = threading.Event()

    def consume() -> None:
        taken.append(slot.take())  # blocks until the put
        first_taken.set()
        taken.append(slot.take())  # blocks until the close

    consumer = threading.Thread(target=consume)
    consumer.start()
    slot.put("frame")
    assert first_taken.wait(timeout=5)
    slot.close()
    consumer.join(timeout=5)
    assert not consumer.is_alive() and taken == ["frame", None]
    slot.put("late")
    assert slot.closed and slot.take() is None  # closed for good, even with a frame inside


def test_a_bounded_queue_keeps_every_frame_in_order_and_drops_the_oldest_beyond_its_capacity():
    queue: FrameQueue[int] = FrameQueue(3)
    assert [queue.put(i) for i in range(3)] == [False, False, False]
    assert queue.take(timeout=0) == 0  # oldest first: every frame of a bag is processed in order
    assert queue.put(3) is False and queue.put(4) is True  # full: frame 1 is dropped
    assert [queue.take(timeout=0) for _ in range(4)] == [2, 3, 4, None]
    assert (queue.received, queue.dropped, len(queue)) == (5, 1, 0)
    with pytest.raises(ValueError, match="capacity"):
        FrameQueue(0)


# --- statistics ---------------------------------------------------------------------------


def test_percentiles_match_numpy():
    values = [float(v) for v in np.random.default_rng(0).uniform(0, 100, 37)]
    for q in (0, 50, 95, 100):
        assert percentile(values, q) == pytest.approx(np.percentile(values, q))
    assert percentile(list(range(1, 101)), 50) == pytest.approx(50.5)
    assert percentile(list(range(1, 101)), 95) == pytest.approx(95.05)
    assert math.isnan(percentile([], 50))


def test_stream_statistics_rates_latencies_and_window():
    stats = StreamStatistics(window_s=10.0, samples=100)
    for i in range(31):  # 30 Hz input for one second, every second frame published
        stats.record_input(100.0 + i / 30)
        if i % 2 == 0:
            stats.record_output(100.0 + i / 30 + 0.01, latency_s=0.040 + i * 0.001, processing_s=0.02,
                                inference_s=0.015)
    stats.record_rejected()
    snap = stats.snapshot(101.0, received=31, dropped=15)
    assert snap.input_hz == pytest.approx(30.0) and snap.output_hz == pytest.approx(15.0)
    latencies = [40.0 + i for i in range(0, 31, 2)]
    assert snap.latency_p50_ms == pytest.approx(np.percentile(latencies, 50))
    assert snap.latency_p95_ms == pytest.approx(np.percentile(latencies, 95))
    assert snap.processing_p50_ms == pytest.approx(20.0) and snap.inference_p50_ms == pytest.approx(15.0)
    assert (snap.received, snap.processed, snap.dropped, snap.rejected) == (31, 16, 15, 1)
    assert snap.seconds_since_input == pytest.approx(0.0) and snap.seconds_since_output == pytest.approx(0.0, abs=0.02)
    later = stats.snapshot(120.0, received=31, dropped=15)  # everything left the 10 s window
    assert later.input_hz == 0.0 and later.output_hz == 0.0 and later.processed == 16
    assert later.latency_p50_ms == snap.latency_p50_ms  # percentiles cover the last N frames


def test_seconds_since_output_counts_from_the_first_input_until_something_is_published():
    stats = StreamStatistics()
    assert stats.snapshot(5.0, received=0, dropped=0).seconds_since_output is None
    stats.record_input(10.0)
    stats.record_input(11.0)
    assert stats.snapshot(17.0, received=2, dropped=0).seconds_since_output == pytest.approx(7.0)


@pytest.mark.parametrize("offset_s, shown", [
    (15 * 365.25 * 86400, "15.0 years behind"),  # a bag's recorded stamps, no --clock / use_sim_time
    (-1.7e9, "53.9 years ahead of"),  # use_sim_time with a silent /clock: the node's clock reads 0
])
def test_latency_is_reported_only_where_the_stamps_are_on_the_nodes_clock(offset_s, shown):
    stats = StreamStatistics()
    stats.record_input(0.0)
    stats.record_output(0.1, 0.08, 0.05, 0.04)
    assert stats.snapshot(0.2, received=1, dropped=0).latency_note is None
    stats.record_output(0.2, offset_s, 0.05, 0.04)
    snap = stats.snapshot(0.3, received=2, dropped=0)
    level, message, values = diagnostic_summary(snap, "b")
    keys = dict(values)
    assert level == DIAGNOSTIC_OK and keys["latency p50 (ms)"] == keys["latency p95 (ms)"] == "n/a"
    assert f"image stamps are {shown} this node's clock" in keys["latency"] and "--clock" in keys["latency"]
    assert keys["processing p50 (ms)"] == "50.0"  # measured on the steady clock: always meaningful
    stats.record_output(0.3, 0.05, 0.05, 0.04)  # stamps back on the node's clock: only the new sample counts
    snap = stats.snapshot(0.4, received=3, dropped=0)
    assert snap.latency_note is None and snap.latency_p50_ms == pytest.approx(50.0)


def test_a_clock_problem_is_a_warning_named_in_the_status():
    stats = StreamStatistics()
    stats.record_input(0.0)
    level, message, values = diagnostic_summary(stats.snapshot(0.5, received=1, dropped=0), "b",
                                                clock_problem="use_sim_time is true but /clock is silent")
    assert (level, message) == (DIAGNOSTIC_WARN, "use_sim_time is true but /clock is silent")
    assert dict(values)["clock"] == message


def test_diagnostic_summary_levels():
    stats = StreamStatistics()
    level, message, values = diagnostic_summary(stats.snapshot(0.0, received=0, dropped=0), "torch on cpu")
    assert level == DIAGNOSTIC_WARN and message == "no input images"
    keys = dict(values)
    for key in ("input rate (Hz)", "output rate (Hz)", "latency p50 (ms)", "latency p95 (ms)", "processing p50 (ms)",
                "inference p50 (ms)", "frames dropped"):
        assert key in keys
    assert keys["backend"] == "torch on cpu" and keys["latency p50 (ms)"] == "n/a"

    stats.record_input(0.0)
    assert diagnostic_summary(stats.snapshot(1.0, received=1, dropped=0), "b")[:2] == (
        DIAGNOSTIC_OK, "waiting for the first depth image")
    stats.record_input(9.0)
    assert diagnostic_summary(stats.snapshot(9.5, received=2, dropped=0), "b")[0] == DIAGNOSTIC_ERROR
    stats.record_output(9.6, 0.05, 0.04, 0.03)
    stats.record_input(9.7)
    stats.record_output(9.8, 0.05, 0.04, 0.03)
    level, message, _ = diagnostic_summary(stats.snapshot(10.0, received=3, dropped=0), "b")
    assert level == DIAGNOSTIC_OK and message == "publishing depth at 5.0 Hz"


# --- stamps, throttling, QoS ----------------------------------------------------------------


def test_stamp_matcher_takes_the_nearest_stamp_within_the_tolerance():
    matcher: StampMatcher[str] = StampMatcher(tolerance_s=0.001, capacity=3)
    assert matcher.match(0) is None and matcher.newest_stamp_ns is None
    for stamp, name in ((1_000_000_000, "a"), (1_100_000_000, "b"), (1_200_000_000, "c")):
        matcher.add(stamp, name)
    assert matcher.match(1_100_000_000) == "b"
    assert matcher.match(1_100_900_000) == "b"  # 0.9 ms away
    assert matcher.match(1_102_000_000) is None  # 2 ms away
    matcher.set_tolerance(0.05)
    assert matcher.match(1_140_000_000) == "b" and matcher.match(1_160_000_000) == "c"
    matcher.add(1_300_000_000, "d")  # capacity 3: "a" is forgotten
    assert matcher.match(1_000_000_000) is None and matcher.newest_stamp_ns == 1_300_000_000


def test_stamp_matcher_waits_for_a_late_item_only_while_the_stream_is_live():
    matcher: StampMatcher[str] = StampMatcher(tolerance_s=0.001)
    start = time.monotonic()
    assert matcher.match(5_000_000_000, wait_s=5.0) is None  # nothing ever arrived: no wait
    matcher.add(4_000_000_000, "earlier")
    timer = threading.Timer(0.05, matcher.add, args=(5_000_000_000, "late"))
    timer.start()
    assert matcher.match(5_000_000_000, wait_s=5.0) == "late"
    assert matcher.match(4_500_000_000, wait_s=5.0) is None  # something newer arrived: no wait
    assert time.monotonic() - start < 2.0
    timer.join()
    assert matcher.match(6_000_000_000, wait_s=0.05) is None  # waited in vain, gave up


def test_warning_throttle_is_per_problem_and_counts_what_it_held_back():
    throttle = WarningThrottle(period_s=5.0)
    assert throttle.check("step", 0.0) == 0
    assert throttle.check("step", 1.0) is None and throttle.check("step", 2.0) is None
    assert throttle.check("encoding", 2.0) == 0  # another problem is not held back
    assert throttle.check("step", 5.5) == 2


def test_reliability_matches_the_publishers_in_auto_mode():
    assert choose_reliability("auto", []) == "reliable"
    assert choose_reliability("auto", ["reliable"]) == "reliable"
    assert choose_reliability("auto", ["reliable", "best_effort"]) == "best_effort"
    assert choose_reliability("reliable", ["best_effort"]) == "reliable"
    assert choose_reliability("best_effort", ["reliable"]) == "best_effort"
    with pytest.raises(ValueError, match="known: auto, reliable, best_effort"):
        choose_reliability("sensor_data", [])


# --- parameters ---------------------------------------------------------------------------


def test_one_parameter_table_one_settings_dataclass():
    assert tuple(f.name for f in dataclasses.fields(NodeSettings)) == PARAMETER_NAMES
    assert len(set(PARAMETER_NAMES)) == len(PARAMETERS)
    for spec in PARAMETERS:
        assert spec.description, spec.name
        assert (spec.minimum is None) == (spec.maximum is None), spec.name


@pytest.mark.parametrize("decimation, image, network, stride", [
    (3, (375, 1242), (192, 640), 3),  # set by the user: as it is
    (AUTO_DECIMATION, (375, 1242), (192, 640), 2),  # KITTI from the lite network: 1.95x
    (AUTO_DECIMATION, (720, 1280), (192, 640), 2),  # the denser direction (width, 2x) decides
    (AUTO_DECIMATION, (192, 640), (192, 640), 1),
    (AUTO_DECIMATION, (96, 320), (192, 640), 1),  # a camera smaller than the network: every pixel
])
def test_cloud_stride(decimation, image, network, stride):
    assert cloud_stride(decimation, image, network) == stride


def test_backend_choices_are_the_registry_names():
    assert set(BACKEND_CHOICES) == {AUTO, *BACKENDS.names()}


def test_defaults_validate(model):
    settings = settings_from_parameters({"model_path": model})
    assert settings.backend == "auto" and settings.intrinsics == ()
    assert settings.cloud_decimation == AUTO_DECIMATION
    settings = settings_from_parameters({"model_path": model, "intrinsics": [700, 700.0, 600, 170], "device": "cuda:1"})
    assert settings.intrinsics == (700.0, 700.0, 600.0, 170.0) and settings.device == "cuda:1"
    assert settings_from_parameters({"model_path": model, "intrinsics": None}).intrinsics == ()


@pytest.mark.parametrize(
    "values, message",
    [
        ({"backend": "openvino"}, "backend: 'openvino' is not one of: 'auto', 'onnxruntime', 'tensorrt', 'torch'"),
        ({"scale_mode": "metric"}, "scale_mode: 'metric' is not one of: 'none', 'focal'"),
        ({"cloud_decimation": -1}, "cloud_decimation: -1 is not in [0, 64]"),
        ({"cloud_decimation": 2.0}, "cloud_decimation: expected int, got 2.0"),
        ({"cloud_rgb": "yes"}, "cloud_rgb: expected bool, got 'yes'"),
        ({"camera_info_tolerance": -1.0}, "camera_info_tolerance: -1.0 is not in [0.0, 10.0]"),
        ({"colormap_min_depth": 90.0}, "colormap_min_depth (90.0) must be less than colormap_max_depth (80.0)"),
        ({"cloud_min_depth": 5.0, "cloud_max_depth": 5.0}, "cloud_min_depth (5.0) must be less than cloud_max_depth"),
        ({"intrinsics": [1.0, 2.0]}, "intrinsics: expected [fx, fy, cx, cy], got 2 values"),
        ({"intrinsics": [0.0, 700.0, 600.0, 170.0]}, "intrinsics: need finite values and fx, fy > 0"),
        ({"intrinsics": ["a"]}, "intrinsics: expected a list of numbers"),
        ({"device": "gpu"}, "device: 'gpu' is not 'auto', 'cpu', 'cuda' or 'cuda:N'"),
        ({"input_reliability": "sensor_data"}, "input_reliability: 'sensor_data' is not one of"),
        ({"style_checkpoint": "/nonexistent/style.pt"}, "style_checkpoint: /nonexistent/style.pt does not exist"),
        ({"colour_map": 1}, "unknown parameter(s) colour_map"),
    ],
)
def test_invalid_parameters_are_named_with_the_reason(model, values, message):
    with pytest.raises(ParameterError) as exc:
        settings_from_parameters({"model_path": model, **values})
    assert message in str(exc.value)


def test_every_problem_is_reported_at_once(model):
    with pytest.raises(ParameterError) as exc:
        settings_from_parameters({"model_path": model, "backend": "x", "cloud_decimation": 100, "scale_mode": "y"})
    text = str(exc.value)
    assert text.startswith("invalid parameters:") and "backend" in text and "cloud_decimation" in text
    assert "scale_mode" in text


def test_missing_model_says_where_it_looked_and_what_to_do(tmp_path):
    found, looked = find_bundled_model([tmp_path / "share_a", tmp_path / "share_b"])
    assert found is None and looked == [tmp_path / "share_a/models/depth.onnx", tmp_path / "share_b/models/depth.onnx"]
    with pytest.raises(ParameterError) as exc:
        settings_from_parameters({}, model_search=looked)
    assert f"model_path: required (no bundled model; looked for {looked[0]}, {looked[1]})" in str(exc.value)
    assert "-p model_path:=" in str(exc.value)
    with pytest.raises(ParameterError, match="model_path: /nowhere/model.onnx does not exist"):
        settings_from_parameters({"model_path": "/nowhere/model.onnx"})

    bundled = tmp_path / "share_b" / "models" / "depth.onnx"
    bundled.parent.mkdir(parents=True)
    bundled.write_bytes(b"onnx")
    assert find_bundled_model([tmp_path / "share_a", tmp_path / "share_b"])[0] == bundled


def test_an_onnx_model_starts_without_importing_torch():
    """The node's start-up path (parameters, pipeline, ONNX Runtime via ``auto``) imports no torch,
    which takes seconds; the torch and TensorRT backends stay registered (lazily)."""
    model = Path(__file__).resolve().parents[1] / BUNDLED_MODEL
    if not model.is_file():
        pytest.skip(f"no bundled model at {model}")
    code = (
        "import sys\n"
        "import depth_da_ros.node_parameters\n"
        "from depth_da_ros.backends import BACKENDS\n"
        "from depth_da_ros.pipeline import DepthPipeline\n"
        "pipeline = DepthPipeline(sys.argv[1])\n"
        "try:\n"
        "    import depth_da_ros.node\n"
        "except ImportError:\n"
        "    pass  # no rclpy here: the library part is checked\n"
        "print(pipeline.backend.name, sorted(BACKENDS.names()), 'torch' in sys.modules)\n")
    result = subprocess.run([sys.executable, "-c", code, str(model)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[-2] == "onnxruntime ['onnxruntime', 'tensorrt', 'torch'] False", result.stdout


def test_lazy_registry_entries_are_listed_and_built_on_first_use():
    registry: Registry[type] = Registry("thing")
    loads = []
    registry.register_lazy("late", lambda: loads.append(1) or int)
    assert "late" in registry and registry.names() == ["late"] and not registry.is_loaded("late")
    assert registry.get("late") is int and registry.get("late") is int and loads == [1]
    with pytest.raises(ValueError, match="already registered"):
        registry.register_lazy("late", lambda: str)
    with pytest.raises(UnknownNameError, match="known: late"):
        registry.get("early")


def test_unknown_parameters_are_named_with_the_nearest_known_one():
    assert unknown_parameters(["colormap_max_depth", "use_sim_time", "qos_overrides./image.subscription.depth"]) is None
    problem = unknown_parameters(["colormap_max_dept", "colormap_inverse", "zzz"])
    assert problem.startswith("unknown parameter(s) colormap_inverse (replaced by colormap_scale")
    assert "colormap_max_dept (did you mean colormap_max_depth?)" in problem and ", zzz;" in problem


def test_parameter_help_lists_every_parameter_with_default_range_and_description():
    text = parameter_help()
    for spec in PARAMETERS:
        line = next(line for line in text.splitlines() if line.startswith(f"  {spec.name} ("))
        assert "default" in line and (spec.constraints in line) and (("start-up only" in line) == spec.read_only)
    assert "  queue_size (int, default 1, in [1, 1000], start-up only)" in text
    assert "  colormap_scale (string, default log, one of: 'log', 'inverse', 'linear')" in text


def test_stamp_matcher_waits_for_the_first_item_when_told_it_is_on_its_way():
    # A stream's first image often arrives before its first camera_info; with a camera_info
    # publisher present the node waits for it instead of publishing the frame uncalibrated.
    matcher: StampMatcher[str] = StampMatcher(tolerance_s=0.001)
    timer = threading.Timer(0.05, matcher.add, args=(5_000_000_000, "first"))
    timer.start()
    assert matcher.match(5_000_000_000, wait_s=5.0, wait_when_empty=True) == "first"
    timer.join()
    empty: StampMatcher[str] = StampMatcher(tolerance_s=0.001)
    start = time.monotonic()
    assert empty.match(5_000_000_000, wait_s=0.05, wait_when_empty=True) is None  # gave up after wait_s
    assert 0.04 <= time.monotonic() - start < 1.0


def test_stamp_matcher_ties_go_to_the_newest_item():
    """Drivers without a clock stamp everything 0: a changed calibration must win over older ones."""
    matcher: StampMatcher[str] = StampMatcher(tolerance_s=0.2, capacity=30)
    for n in range(30):
        matcher.add(0, f"fx 721 #{n}")
    matcher.add(0, "fx 500")
    assert matcher.match(0) == "fx 500"
    matcher.add(10, "a")
    matcher.add(-10, "b")  # equally near 0 as 'a', and newer
    assert matcher.match(0) == "fx 500"  # nearest still wins over newest
    assert matcher.match(0 + 0) == "fx 500"
    matcher.add(5, "c")
    matcher.add(-5, "d")
    assert matcher.match(0) == "fx 500" and StampMatcher(1.0).match(0) is None
    ties: StampMatcher[str] = StampMatcher(tolerance_s=0.2)
    ties.add(100, "older")
    ties.add(300, "newer")
    assert ties.match(200) == "newer"


def test_shared_output_topics_are_named_once_per_other_node():
    from depth_da_ros.node_topics import shared_outputs

    said: set[tuple[str, str]] = set()
    publishers = {"/depth/image": ["/depth_da_node", "/other/depth_da_node"], "/points": ["/depth_da_node"],
                  "/diagnostics": ["/depth_da_node", "/x"]}
    first = shared_outputs("/depth_da_node", publishers, said)
    assert len(first) == 1 and first[0].startswith("/depth/image is also published by /other/depth_da_node")
    assert "namespace" in first[0]
    assert shared_outputs("/depth_da_node", publishers, said) == []  # said once
    publishers["/points"].append("/third")
    assert [w.split(" is")[0] for w in shared_outputs("/depth_da_node", publishers, said)] == ["/points"]
    # Two nodes of the same name (both started without a namespace): the second entry is the other.
    twins = shared_outputs("/depth_da_node", {"/depth/image": ["/depth_da_node", "/depth_da_node"]}, set())
    assert len(twins) == 1 and "/depth_da_node (another node of this name)" in twins[0]


def test_diagnostic_status_name_and_hardware_id():
    from depth_da_ros.node_diagnostics import hardware_id, status_name

    assert status_name("/front/depth_da_node") == "front/depth_da_node: depth"
    assert status_name("/depth_da_node") == "depth_da_node: depth"
    assert hardware_id("cam_left", "/front/image_raw", "/m/depth.onnx", "onnxruntime") == \
        "cam_left (/front/image_raw): depth.onnx on onnxruntime"
    assert hardware_id("", "/image", "", "torch") == "/image: model on torch"


def test_12_bit_data_in_16_bit_images_is_detected():
    from sensor_msgs.msg import Image

    from depth_da_ros.ros_conversions import narrow_16bit_peak

    def image(values: np.ndarray, encoding: str = "mono16", big: bool = False) -> Image:
        data = values.astype(">u2" if big else "<u2").tobytes()
        return Image(height=values.shape[0], width=values.shape[1], encoding=encoding, is_bigendian=big,
                     step=2 * values.shape[1], data=data)

    twelve = np.array([[0, 100], [4000, 4095]])
    assert narrow_16bit_peak(image(twelve)) == 4095
    assert narrow_16bit_peak(image(twelve, big=True)) == 4095
    assert narrow_16bit_peak(image(np.array([[0, 60000]]))) is None  # full range
    assert narrow_16bit_peak(image(np.zeros((2, 2)))) is None  # black: the contrast check's case
    eight = Image(height=1, width=2, encoding="mono8", step=2, data=bytes([1, 2]))
    assert narrow_16bit_peak(eight) is None


def test_a_crashed_publisher_stops_counting_once_a_replacement_appears():
    from depth_da_ros.node_topics import PublisherLiveness, choose_reliability

    live = PublisherLiveness(silent_s=1.0)
    old, new = b"old", b"new"
    assert live.offered([(old, "best_effort")], 0.0) == (["best_effort"], 0)
    live.heard(old, 0.5)
    live.heard(old, 1.0)  # then it crashes: silent, but still in the graph
    assert live.offered([(old, "best_effort")], 5.0) == (["best_effort"], 0)  # alone: a slow camera
    # A reliable driver replaces it: the silent one no longer counts, so 'auto' picks reliable.
    offered, left_out = live.offered([(old, "best_effort"), (new, "reliable")], 6.0)
    assert (offered, left_out) == (["reliable"], 1) and choose_reliability("auto", offered) == "reliable"
    # A replacement never heard still counts (it may be incompatible with the subscription).
    assert live.offered([(new, "reliable")], 7.0) == (["reliable"], 0)
    # Both alive and heard: both count.
    both = PublisherLiveness(silent_s=1.0)
    both.offered([(old, "best_effort"), (new, "reliable")], 0.0)
    both.heard(old, 0.9)
    both.heard(new, 0.9)
    assert sorted(both.offered([(old, "best_effort"), (new, "reliable")], 1.2)[0]) == ["best_effort", "reliable"]
    # Forgotten once gone from the graph.
    assert both.offered([], 2.0) == ([], 0) and not both._heard and not both._seen
