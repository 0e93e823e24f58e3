"""ROS 2 node ``depth_da_node``: camera images in; REP 118 depth, camera_info, colour map, point
cloud and diagnostics out.

    python -m depth_da_ros.node --ros-args -p model_path:=model.onnx -r image:=/camera/image_raw
    ros2 launch depth_da_ros depth.launch.py model:=model.onnx kitti:=true

Subscribes ``image`` (or ``<image>/compressed`` with ``use_compressed``) and ``camera_info``;
publishes, with each input image's header (its frame id replaced by the ``frame_id`` parameter
when set), ``depth/image`` (32FC1 metres at the camera's resolution; REP 118: NaN = no estimate,
+Inf = beyond range), ``depth/camera_info`` (the frame's own, else its camera's last valid one), ``depth/colorized`` (bgr8), ``points``
(PointCloud2 in the camera's optical frame), ``scan`` (LaserScan in the camera's x-forward body frame,
see depth_da_ros.laserscan), ``depth/confidence`` (32FC1 in [0, 1] by flip consistency, see
depth_da_ros.confidence), ``adapted/image`` and ``/diagnostics``.
Parameters: see ``depth_da_ros.node_parameters.PARAMETERS`` (or ``depth_da_node --help``).

``adapted/image`` (rgb8, for debugging) is the frame after the style adapter, as the depth
network saw it: at the network resolution, not the camera's (so no camera_info describes it),
which costs no resize. Only a model with the adapter advertises it (otherwise the node says so
once at start-up), and it is fetched from the model only while someone subscribes.

The node is glue: the logic lives in ``node_parameters``, ``node_topics`` (names, QoS choice),
``node_frames`` (frame queue, stamp matching, throttled warnings), ``node_diagnostics``
(statistics), ``node_calibration`` (calibration kept per camera, degenerate-frame and frame-id
checks), ``node_camera`` (each frame's header, calibration and rectification), ``node_depth``
(inference, confidence, metric scale, ground constraint, temporal smoothing), ``node_outputs``
(the per-frame outputs, each built only for a subscriber), ``ros_conversions``, ``geometry`` and
``pipeline``. Callbacks only store messages; one inference
thread, at a lower priority (``inference_nice``), takes frames from a queue: the newest only by
default (older frames are dropped and counted), every frame in order with ``queue_size`` > 1
(bags, evaluation), so a slow model never delays the executor. A bad message gives a throttled
warning that names the problem, and the next good frame is processed. Timers (QoS matching,
diagnostics) run on steady time, so ``use_sim_time`` without /clock does not stop them (the
node warns), and latency is reported only while image stamps are on the node's clock.

    depth_da_node --help    # every parameter with its type, default, range and description
"""
from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path
from dataclasses import dataclass
from functools import partial
from typing import Any, Callable

import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, SetParametersResult
from rclpy.event_handler import (
    PublisherEventCallbacks,
    QoSOfferedIncompatibleQoSInfo,
    QoSRequestedIncompatibleQoSInfo,
    SubscriptionEventCallbacks,
    qos_policy_name_from_kind,
)
from rclpy.clock import Clock, ClockType
from rclpy.exceptions import ParameterException
from rclpy.executors import ExternalShutdownException
from rclpy.impl.rcutils_logger import RcutilsLogger
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rclpy.signals import SignalHandlerOptions, install_signal_handlers
from rclpy.subscription import MessageInfo, Subscription
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import Header

from .backends import ModelLoadError
from .console import apply_default_fastdds_profile, profile_variable
from .node_diagnostics import (
    DIAGNOSTIC_ERROR,
    DIAGNOSTIC_OK,
    DIAGNOSTIC_WARN,
    StreamStatistics,
    diagnostic_summary,
    hardware_id,
    status_name,
)
from .ground import ROAD_BAND_M, ROAD_RATIO_RANGE
from .node_calibration import DEGENERATE, GROUND_HEIGHT, FrameChecks, merge_frame_checks
from .node_camera import FrameCameras
from .node_depth import DepthEstimator
from .node_frames import FrameQueue, ThrottledLog, WarningThrottle, call_with_lower_priority, lower_thread_priority
from .node_outputs import FRAME_TOPICS, FrameOutputs
from .node_parameters import (
    PARAMETER_NAMES,
    PARAMETERS,
    NodeSettings,
    ParameterSpec,
    params_file_sections_problem,
    ParameterError,
    find_bundled_model,
    package_directories,
    parameter_help,
    settings_from_parameters,
    unknown_parameters,
)
from .node_topics import (
    ADAPTED_TOPIC,
    CAMERA_INFO_TOPIC,
    COLORIZED_TOPIC,
    COMPRESSED_SUFFIX,
    DEPTH_INFO_TOPIC,
    DEPTH_TOPIC,
    DIAGNOSTICS_TOPIC,
    IMAGE_TOPIC,
    NODE_NAME,
    OUTPUT_CHECK_PERIOD_S,
    OUTPUT_CHECK_UNTIL_S,
    POINTS_TOPIC,
    PublisherLiveness,
    choose_reliability,
    input_incompatible_warning,
    output_incompatible_warning,
    shared_outputs,
)
from .parameter_guard import guard_parameter_services
from .pipeline import DepthPipeline
from .ros_conversions import InvalidMessageError, compressed_to_rgb, image_to_rgb, narrow_16bit_peak, stamp_to_ns

# DDS history of the image subscription: room for frames that arrive while the executor is busy
# (a burst, a loaded CPU); the callback only queues them, and the frame queue decides what is
# processed and counts what is dropped. Never below queue_size.
IMAGE_QUEUE = 5
CAMERA_INFO_QUEUE = 10  # enough history to match stamps
OUTPUT_QUEUE = 5
QOS_CHECK_PERIOD_S = 0.5  # how often 'auto' reliability looks at the input publishers
WORKER_JOIN_TIMEOUT_S = 10.0
# With use_sim_time, how long the ROS clock may stay at 0 (nothing on /clock) before the node
# warns, and how often it repeats that warning (it is also in /diagnostics).
SIM_CLOCK_GRACE_S = 3.0
SIM_CLOCK_WARNING_PERIOD_S = 30.0
_RELIABILITY = {"reliable": ReliabilityPolicy.RELIABLE, "best_effort": ReliabilityPolicy.BEST_EFFORT}
_DIAGNOSTIC_LEVEL = {DIAGNOSTIC_OK: DiagnosticStatus.OK, DIAGNOSTIC_WARN: DiagnosticStatus.WARN,
                     DIAGNOSTIC_ERROR: DiagnosticStatus.ERROR}


@dataclass
class _Input:
    subscription: Subscription
    reliability: str


class DepthNode(Node):
    """See the module docstring. Raises ParameterError or ModelLoadError when it cannot start,
    after logging why ("cannot start: ...") under its own (namespaced) logger."""

    def __init__(self, **node_options: Any) -> None:
        super().__init__(NODE_NAME, **node_options)
        # First: destroy_node() also runs on a node whose start-up failed (rclpy's shutdown).
        self._slot: FrameQueue[Image | CompressedImage] = FrameQueue()
        self._worker: threading.Thread | None = None
        # The library's logging (backends, pipeline) goes to this node's logger, whose name has
        # the node's namespace ('front.depth_da_node'), until destroy_node.
        self._log_handler = _RosLogHandler(self.get_logger())
        logging.getLogger().addHandler(self._log_handler)
        try:
            self._start()
        except (ParameterError, ModelLoadError) as exc:
            self.get_logger().fatal(f"cannot start: {exc}")
            raise  # rclpy's shutdown destroys the node

    def _start(self) -> None:
        self._settings = self._declare_parameters()
        settings = self._settings
        self._slot = FrameQueue(settings.queue_size)
        # Loaded in a thread of lower priority: the inference library's threads inherit it (see
        # the inference_nice parameter), the executor and DDS threads keep theirs.
        self._pipeline = call_with_lower_priority(lambda: DepthPipeline(
            settings.model_path, settings.backend, device=settings.device, precision=settings.precision or None,
            threads=settings.threads or None, style_checkpoint=settings.style_checkpoint or None),
            settings.inference_nice)
        self._log_model()

        self._stats = StreamStatistics()
        self._log = ThrottledLog(self.get_logger(), settings.warning_period)
        self._clock_throttle = WarningThrottle(SIM_CLOCK_WARNING_PERIOD_S)
        self._frame_checks = FrameChecks()
        self._zero_stamp_said = False  # read and set by the inference thread only
        self._camera_frame_id = ""  # the last frame's, for /diagnostics' hardware_id
        # Resolved once: image_transport's convention puts the compressed stream under the
        # (remapped) image topic.
        image_topic = self.resolve_topic_name(IMAGE_TOPIC)
        self._image_type = CompressedImage if settings.use_compressed else Image
        self._image_topic = image_topic + COMPRESSED_SUFFIX if settings.use_compressed else image_topic
        self._info_topic = self.resolve_topic_name(CAMERA_INFO_TOPIC)
        self._cameras = FrameCameras(settings.camera_info_tolerance, self._frame_checks, self._log,
                                     self._image_topic, self._info_topic)

        self._outputs = FrameOutputs(self._output, self._pipeline.metadata.outputs_styled, self._log)
        self._estimator = DepthEstimator(self._pipeline)
        self._diagnostics_pub = self.create_publisher(DiagnosticArray, DIAGNOSTICS_TOPIC, 10)
        self._inputs: dict[str, _Input] = {}
        # Which input publishers still count for 'auto' reliability (a crashed driver lingers in the graph).
        self._liveness = {self._image_topic: PublisherLiveness(), self._info_topic: PublisherLiveness()}
        self._subscribe_inputs()
        # Housekeeping runs on steady time: with use_sim_time the ROS clock stands still until
        # /clock ticks (and jumps with a replay), which must not stop QoS matching or diagnostics.
        self._steady = Clock(clock_type=ClockType.STEADY_TIME)
        self._started = time.monotonic()
        if settings.input_reliability == "auto":
            self.create_timer(QOS_CHECK_PERIOD_S, self._subscribe_inputs, clock=self._steady)
        self.create_timer(settings.diagnostics_period, self._publish_diagnostics, clock=self._steady)
        self._shared_said: set[tuple[str, str]] = set()
        self._output_check = self.create_timer(OUTPUT_CHECK_PERIOD_S, self._check_shared_outputs, clock=self._steady)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        guard_parameter_services(self.services, lambda reason: self._log.warning("parameter_request",
                                                                                 f"set_parameters: {reason}"))

        self._worker = threading.Thread(target=self._run_worker, name="depth_inference", daemon=True)
        self._worker.start()
        outputs = ", ".join(self.resolve_topic_name(t) for t in self._outputs.topics)
        self.get_logger().info(f"subscribed to {self._image_topic} and {self._info_topic}; publishing {outputs}")

    # --- parameters ---------------------------------------------------------------------------

    def _declare_parameters(self) -> NodeSettings:
        bundled, looked = find_bundled_model(package_directories())
        problems = []
        for spec in PARAMETERS:
            value: Any = spec.default
            if spec.name == "model_path" and bundled is not None:
                value = str(bundled)
            elif isinstance(spec.default, tuple):
                value = Parameter.Type.DOUBLE_ARRAY  # an empty list has no ROS type: typed here, set below
            try:
                declared = self.declare_parameter(spec.name, value, _descriptor(spec))
                if declared.type_ == Parameter.Type.NOT_SET:  # no override: give it its (empty) value, or
                    # get_parameters naming it answers nothing (ros2 param dump, rqt show no parameters)
                    self.set_parameters([Parameter(spec.name, value, list(spec.default))])
            except ParameterException as exc:  # wrong type or out of range in an override
                problems.append(f"{spec.name}: {exc}")
        # rclpy ignores overrides of undeclared names: a misspelt one would leave the default in force.
        unknown = unknown_parameters(getattr(self, "_parameter_overrides", {}))
        if unknown:
            problems.append(unknown)
        if problems:
            raise ParameterError("invalid parameters:\n  " + "\n  ".join(problems))
        return settings_from_parameters(self._parameter_values(), model_search=looked)

    def _parameter_values(self) -> dict[str, Any]:
        # get_parameter_or: a parameter that is somehow unset reads as None (its default) instead of raising.
        return {name: self.get_parameter_or(name).value for name in PARAMETER_NAMES}

    def _on_set_parameters(self, parameters: list[Parameter]) -> SetParametersResult:
        values = self._parameter_values()
        values.update({p.name: p.value for p in parameters})
        try:
            settings = settings_from_parameters(values)
        except ParameterError as exc:
            return SetParametersResult(successful=False, reason=str(exc))
        self._settings = settings  # one reference swap: the worker reads a consistent set per frame
        self._cameras.set_tolerance(settings.camera_info_tolerance)
        return SetParametersResult(successful=True)

    def _log_model(self) -> None:
        pipeline = self._pipeline
        height, width = pipeline.input_size
        camera = pipeline.training_camera
        self.get_logger().info(
            f"model {self._settings.model_path}: {pipeline.description}; network input {width}x{height}, "
            f"max depth {pipeline.max_depth} m, training camera "
            + (f"fx={camera.fx:.2f} fy={camera.fy:.2f} at {camera.width}x{camera.height}" if camera else "unknown"))
        if camera is None and self._settings.scale_mode == "focal":
            self.get_logger().warning("the model records no training camera: scale_mode 'focal' cannot rescale "
                                      "depth, which is published as predicted")
        metadata = pipeline.metadata
        if not metadata.outputs_styled:
            why = ("its export has no styled output (re-export it with training/export.py)"
                   if metadata.with_style_adapter else "it has no style adapter")
            self.get_logger().info(f"{self.resolve_topic_name(ADAPTED_TOPIC)} is not published: {why}")

    # --- QoS ----------------------------------------------------------------------------------

    def _output(self, msg_type: type, topic: str) -> Any:
        reliability = self._settings.output_reliability
        # queue_size > 1 (every frame): a burst of outputs must not overwrite unacknowledged ones.
        qos = QoSProfile(depth=max(OUTPUT_QUEUE, self._settings.queue_size), reliability=_RELIABILITY[reliability])
        events = PublisherEventCallbacks(incompatible_qos=partial(self._on_output_incompatible, topic))
        return self.create_publisher(msg_type, topic, qos, event_callbacks=events)

    def _subscribe_inputs(self) -> None:
        """(Re)subscribe each input whose wanted reliability changed: at start-up and, with
        ``input_reliability`` 'auto', whenever its publishers' offered reliability changes."""
        for topic, msg_type, callback, depth in (
            (self._image_topic, self._image_type, self._on_image, max(IMAGE_QUEUE, self._settings.queue_size)),
            (self._info_topic, CameraInfo, self._on_camera_info, CAMERA_INFO_QUEUE),
        ):
            offered, crashed = self._liveness[topic].offered(
                ((_gid(info.endpoint_gid), info.qos_profile.reliability.name.lower())
                 for info in self.get_publishers_info_by_topic(topic)), time.monotonic())
            wanted = choose_reliability(self._settings.input_reliability, offered)
            current = self._inputs.get(topic)
            if current is not None and current.reliability == wanted:
                continue
            if current is not None:
                self.destroy_subscription(current.subscription)
                ignored = (f" (ignoring {crashed} publisher(s) silent since a newer one appeared: a crashed driver "
                           "stays in the DDS graph for ~20 s)" if crashed else "")
                self.get_logger().info(f"{topic}: publishers offer {', '.join(sorted(set(offered))) or 'nothing'}"
                                       f"{ignored}; re-subscribed {wanted}")
            qos = QoSProfile(depth=depth, reliability=_RELIABILITY[wanted])
            events = SubscriptionEventCallbacks(incompatible_qos=partial(self._on_input_incompatible, topic, wanted))
            subscription = self.create_subscription(msg_type, topic, callback, qos, event_callbacks=events)
            self._inputs[topic] = _Input(subscription, wanted)

    def _on_input_incompatible(self, topic: str, reliability: str, info: QoSRequestedIncompatibleQoSInfo) -> None:
        self.get_logger().warning(input_incompatible_warning(
            topic, reliability, self._settings.input_reliability, qos_policy_name_from_kind(info.last_policy_kind),
            info.total_count))

    def _on_output_incompatible(self, topic: str, info: QoSOfferedIncompatibleQoSInfo) -> None:
        self.get_logger().warning(output_incompatible_warning(
            self.resolve_topic_name(topic), self._settings.output_reliability,
            qos_policy_name_from_kind(info.last_policy_kind)))

    def _check_shared_outputs(self) -> None:
        """At start-up: warn about another node publishing on one of this node's output topics."""
        if time.monotonic() - self._started > OUTPUT_CHECK_UNTIL_S:
            self.destroy_timer(self._output_check)
            return
        publishers = {self.resolve_topic_name(t): [
            f"{info.node_namespace.rstrip('/')}/{info.node_name}"
            for info in self.get_publishers_info_by_topic(self.resolve_topic_name(t))] for t in FRAME_TOPICS}
        for warning in shared_outputs(self.get_fully_qualified_name(), publishers, self._shared_said):
            self.get_logger().warning(warning)

    # --- callbacks (executor thread: store and return) ----------------------------------------

    def _on_image(self, msg: Image | CompressedImage, info: MessageInfo) -> None:
        self._heard(self._image_topic, info)
        self._slot.put(msg)
        self._stats.record_input(time.monotonic())

    def _heard(self, topic: str, info: MessageInfo) -> None:
        gid = info.get("publisher_gid")
        if gid:
            self._liveness[topic].heard(_gid(gid["data"]), time.monotonic())

    def _on_camera_info(self, msg: CameraInfo, info: MessageInfo) -> None:
        self._heard(self._info_topic, info)
        self._cameras.received(msg, self._settings.frame_id)

    def _clock_problem(self) -> str | None:
        """Why the ROS clock is unusable: sim time on and nothing on /clock (it stays at 0)."""
        if (not self.get_parameter("use_sim_time").value or self.get_clock().now().nanoseconds != 0
                or time.monotonic() - self._started < SIM_CLOCK_GRACE_S):
            return None
        return ("use_sim_time is true but nothing is published on /clock: the ROS clock stands at 0 "
                "(replay with --clock, or set use_sim_time to false)")

    def _publish_diagnostics(self) -> None:
        snapshot = self._stats.snapshot(time.monotonic(), received=self._slot.received, dropped=self._slot.dropped)
        clock_problem = self._clock_problem()
        if clock_problem and self._clock_throttle.check("sim_clock", time.monotonic()) is not None:
            self.get_logger().warning(clock_problem)
        level, message, values = diagnostic_summary(snapshot, self._pipeline.description, clock_problem=clock_problem)
        frame_problem, frame_values = self._frame_checks.summary(time.monotonic())
        level, message, values = merge_frame_checks(level, message, values, frame_problem, frame_values,
                                                    DIAGNOSTIC_WARN)
        status = DiagnosticStatus(level=_DIAGNOSTIC_LEVEL[level], name=status_name(self.get_fully_qualified_name()),
                                  message=message, hardware_id=hardware_id(
                                      self._camera_frame_id, self._image_topic, self._settings.model_path,
                                      self._pipeline.backend.name),
                                  values=[KeyValue(key=k, value=v) for k, v in values])
        self._diagnostics_pub.publish(DiagnosticArray(header=Header(stamp=self.get_clock().now().to_msg()),
                                                      status=[status]))

    # --- inference thread ---------------------------------------------------------------------

    def _run_worker(self) -> None:
        lower_thread_priority(self._settings.inference_nice)
        while (msg := self._slot.take()) is not None:
            try:
                self._process(msg)
            except InvalidMessageError as exc:
                self._stats.record_rejected()
                self._log.warning(exc.kind, f"{exc}; frame skipped")
            except Exception as exc:  # noqa: BLE001  a bad frame must never end the node
                if self._slot.closed:
                    return  # shutting down: the publishers may already be gone
                self._stats.record_rejected()
                self._log.warning(type(exc).__name__, f"frame skipped: {type(exc).__name__}: {exc}")

    def _process(self, msg: Image | CompressedImage) -> None:
        started = time.monotonic()
        settings = self._settings
        rgb = compressed_to_rgb(msg) if isinstance(msg, CompressedImage) else image_to_rgb(msg)
        if isinstance(msg, Image) and (peak := narrow_16bit_peak(msg)) is not None:
            self._log.warning("narrow_16bit", f"{msg.encoding} image on {self._image_topic} peaks at {peak} (< 4096): "
                              "12-bit data in a 16-bit image? Converted to 8 bits by its top byte it is nearly black "
                              "(the driver can shift it to the full 16-bit range, or publish 8-bit)")
        header = self._cameras.output_header(msg.header, settings.frame_id)
        self._camera_frame_id = header.frame_id
        if not self._zero_stamp_said and stamp_to_ns(msg.header.stamp) == 0:
            self._zero_stamp_said = True
            self.get_logger().warning(
                f"images on {self._image_topic} are stamped 0 (a driver or simulator without a clock?): each takes "
                "the newest camera_info stamped 0, latency is not measured, and tf2 users get the latest transform "
                "instead of the frame's. (Said once.)")
        height, width = rgb.shape[:2]
        camera, camera_info = self._cameras.for_frame(header, height, width, settings.intrinsics,
                                                      wait_when_empty=self.count_publishers(self._info_topic) > 0)
        rgb, camera_info = self._cameras.rectified(rgb, camera_info, settings.rectify)
        frame = self._estimator.estimate(rgb, camera, header.frame_id, stamp_to_ns(header.stamp), settings,
                                         wants_confidence=self._outputs.wants_confidence,
                                         wants_styled=self._outputs.wants_styled)
        if frame.degenerate_contrast is not None:
            self._frame_checks.record(DEGENERATE, started)
            self._log.warning(DEGENERATE, f"degenerate frame on {self._image_topic} (contrast "
                              f"{frame.degenerate_contrast:.2f} grey levels < min_contrast {settings.min_contrast}: "
                              "lens cap, white-out, blank frame?); depth published as NaN")
        if frame.implausible_road is not None:
            self._frame_checks.record(GROUND_HEIGHT, started)
            self._log.warning(GROUND_HEIGHT, f"ground_camera_height {settings.ground_camera_height:g} m disagrees with "
                              f"the predicted road ({ROAD_BAND_M[0]:g}-{ROAD_BAND_M[1]:g} m ahead at "
                              f"{frame.implausible_road:.2f} of the ground's depth, allowed {ROAD_RATIO_RANGE[0]:.2f}-"
                              f"{ROAD_RATIO_RANGE[1]:.2f}): ground constraint skipped "
                              "on this frame. Check ground_camera_height and ground_camera_pitch, unless the road "
                              "ahead is covered (traffic); ground_height_check false applies it regardless")
        self._outputs.publish_depth(header, frame.depth, frame.confidence)
        latency_s = (self.get_clock().now().nanoseconds - stamp_to_ns(header.stamp)) * 1e-9
        self._outputs.publish_rest(header, frame.depth, rgb, camera, camera_info, frame.styled, settings,
                                   self._pipeline.input_size)
        now = time.monotonic()
        self._stats.record_output(now, latency_s, now - started, frame.inference_s)

    def destroy_node(self) -> None:
        # Stop the inference thread before the publishers it uses go away.
        self._slot.close()
        if self._worker is not None:
            self._worker.join(WORKER_JOIN_TIMEOUT_S)
        logging.getLogger().removeHandler(self._log_handler)
        super().destroy_node()


def _descriptor(spec: ParameterSpec) -> ParameterDescriptor:
    """The ROS descriptor of a parameter: description, read-only flag, constraints and range."""
    descriptor = ParameterDescriptor(description=spec.description, read_only=spec.read_only,
                                     additional_constraints=spec.constraints)
    if spec.minimum is not None and isinstance(spec.default, int):
        descriptor.integer_range = [IntegerRange(from_value=int(spec.minimum), to_value=int(spec.maximum), step=1)]
    elif spec.minimum is not None:
        descriptor.floating_point_range = [FloatingPointRange(from_value=float(spec.minimum),
                                                              to_value=float(spec.maximum), step=0.0)]
    return descriptor


def _gid(data: Any) -> bytes:
    """A publisher's GID as bytes, the same from the graph (a list of ints) and from a message's info."""
    return bytes(data)[:16]


class _RosLogHandler(logging.Handler):
    """Sends the library's ``logging`` records to the node's rclpy logger (one log stream)."""

    def __init__(self, logger: RcutilsLogger) -> None:
        super().__init__(logging.INFO)
        self._logger = logger

    def emit(self, record: logging.LogRecord) -> None:
        message = f"{record.name}: {self.format(record)}"
        if record.levelno >= logging.ERROR:
            self._logger.error(message)
        elif record.levelno >= logging.WARNING:
            self._logger.warning(message)
        else:
            self._logger.info(message)


USAGE = f"""usage: {NODE_NAME} [-h] [--ros-args [-p NAME:=VALUE] [--params-file FILE] [-r FROM:=TO] ...]

ROS 2 node: camera images in ({IMAGE_TOPIC}, {CAMERA_INFO_TOPIC}); metric depth out ({DEPTH_TOPIC} 32FC1
metres, {DEPTH_INFO_TOPIC}, {COLORIZED_TOPIC}, {POINTS_TOPIC}, {ADAPTED_TOPIC}, {DIAGNOSTICS_TOPIC}).
Topic names are relative: remap them with -r, e.g. -r {IMAGE_TOPIC}:=/camera/image_raw.
"""


def params_file_problem(argv: list[str]) -> str | None:
    """A ``--params-file`` in the ROS arguments that is not a readable file (rcl would fail with
    a long traceback), or None."""
    for flag, value in zip(argv, argv[1:]):
        if flag == "--params-file" and not Path(value).is_file():
            return f"--params-file {value}: no such file"
    return None


def _ignore_further_interrupts() -> None:
    """Shutting down: a second SIGINT (launch forwards one after the process group got its own)
    must not interrupt the clean-up with a KeyboardInterrupt traceback; launch escalates to
    SIGTERM if the clean-up hangs."""
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:  # not the main thread (main() called from a thread): nothing to protect
        pass


def main(args: list[str] | None = None, interrupted: Callable[[], bool] | None = None) -> int:
    """The node's process: parses ``args`` (sys.argv's by default), spins until SIGINT/SIGTERM.
    ``interrupted``: whether a SIGINT arrived during start-up (``node_entry.StartupInterrupt``);
    if so the node exits as soon as it is up. Returns the exit code: 0, or 1 when the parameters
    or the model are unusable (logged)."""
    argv = sys.argv[1:] if args is None else args
    ros_start = argv.index("--ros-args") if "--ros-args" in argv else len(argv)
    if any(a in ("-h", "--help") for a in argv[:ros_start]):
        print(USAGE + "\n" + parameter_help())
        return 0
    problem = params_file_problem(argv[ros_start:])
    if problem:
        print(f"[FATAL] [{NODE_NAME}]: cannot start: {problem}", file=sys.stderr)
        return 1
    profile = apply_default_fastdds_profile()  # before rclpy creates the participant
    # rclpy's SIGINT/SIGTERM handlers (shut the context down, then call the previous handler) go in
    # once the node is up: a signal during its construction would leave it half built.
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    logging.getLogger().setLevel(logging.INFO)
    node = None
    try:
        node = DepthNode()
        if sections_problem := params_file_sections_problem(argv[ros_start:], node.get_fully_qualified_name()):
            node.get_logger().warning(sections_problem)
        if profile is not None:
            node.get_logger().info(f"Fast DDS profile {profile} (the package's default for large images; set "
                                   f"{profile_variable(os.environ)} to use another)")
        install_signal_handlers(SignalHandlerOptions.ALL)
        if interrupted is not None and interrupted():  # checked after: a SIGINT from now on ends spin
            node.get_logger().info("SIGINT during start-up: stopping")
            return 0
        rclpy.spin(node)
    except (ParameterError, ModelLoadError):
        return 1  # the node logged why
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        _ignore_further_interrupts()
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
