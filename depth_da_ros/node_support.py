"""The logic of ``depth_da_node`` that needs no ROS: parameters, frame slot, statistics, stamp
matching, warning throttling, QoS choice and the diagnostics summary.

The node (``depth_da_ros.node``) only moves values between ROS and these classes, so all of
this is unit-tested without a middleware. Times are plain floats (seconds) and stamps plain
integers (nanoseconds): the node converts.
"""
from __future__ import annotations

import math
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, Iterable, Mapping, Sequence, TypeVar

from .geometry import SCALE_MODES

T = TypeVar("T")

NODE_NAME = "depth_da_node"

# Topic names, relative so that a namespace and remapping re-target them (DESIGN: ROS).
IMAGE_TOPIC = "image"
COMPRESSED_SUFFIX = "/compressed"  # image_transport's convention: <image topic>/compressed
CAMERA_INFO_TOPIC = "camera_info"
DEPTH_TOPIC = "depth/image"
DEPTH_INFO_TOPIC = "depth/camera_info"
COLORIZED_TOPIC = "depth/colorized"
POINTS_TOPIC = "points"
ADAPTED_TOPIC = "adapted/image"  # only for a model with the style adapter
DIAGNOSTICS_TOPIC = "/diagnostics"
OUTPUT_TOPICS = (DEPTH_TOPIC, DEPTH_INFO_TOPIC, COLORIZED_TOPIC, POINTS_TOPIC, ADAPTED_TOPIC, DIAGNOSTICS_TOPIC)

# Where a bundled model is looked for, relative to the package's share directory.
PACKAGE = "depth_da_ros"
BUNDLED_MODEL = Path("models") / "depth.onnx"

# The backend registry's names (tests/test_node_support.py keeps them in step); listed here so
# that validating parameters does not import torch and every backend.
BACKEND_CHOICES = ("auto", "onnxruntime", "tensorrt", "torch")
PRECISION_CHOICES = ("", "fp32", "fp16")
INPUT_RELIABILITY_CHOICES = ("auto", "reliable", "best_effort")
OUTPUT_RELIABILITY_CHOICES = ("reliable", "best_effort")
RELIABLE, BEST_EFFORT = "reliable", "best_effort"
AUTO_DECIMATION = 0  # cloud_decimation: match the network's resolution

# diagnostic_msgs/DiagnosticStatus levels.
DIAGNOSTIC_OK, DIAGNOSTIC_WARN, DIAGNOSTIC_ERROR = 0, 1, 2


class ParameterError(ValueError):
    """Invalid node parameters; the message names each offending parameter and why."""


# --- parameters ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ParameterSpec:
    """One node parameter, declared once from this table (type, default, range, description)."""

    name: str
    default: Any  # its Python type is the parameter's type; a tuple means a double array
    description: str
    read_only: bool = False  # start-up only: changing it needs a restart
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()

    @property
    def constraints(self) -> str:
        if self.choices:
            return "one of: " + ", ".join(repr(c) for c in self.choices)
        if self.minimum is not None:
            return f"in [{self.minimum}, {self.maximum}]"
        return ""


PARAMETERS: tuple[ParameterSpec, ...] = (
    ParameterSpec("model_path", "", "Exported .onnx model or depth checkpoint .pt; default: the bundled "
                  f"model <share>/depth_da_ros/{BUNDLED_MODEL} when installed", read_only=True),
    ParameterSpec("style_checkpoint", "", "Style adapter checkpoint (.pt) run before a depth checkpoint "
                  "(torch backend only; an exported .onnx already contains its adapter)", read_only=True),
    ParameterSpec("backend", "auto", "Inference backend", read_only=True, choices=BACKEND_CHOICES),
    ParameterSpec("device", "auto", "'auto', 'cpu', 'cuda' or 'cuda:N'", read_only=True),
    ParameterSpec("precision", "", "'fp32' or 'fp16'; empty: as the model file", read_only=True,
                  choices=PRECISION_CHOICES),
    ParameterSpec("threads", 0, "CPU inference threads; 0: every core this process may use", read_only=True,
                  minimum=0, maximum=1024),
    ParameterSpec("use_compressed", False, "Subscribe to <image>/compressed (sensor_msgs/CompressedImage) "
                  "instead of the raw image", read_only=True),
    ParameterSpec("input_reliability", "auto", "QoS reliability of the image and camera_info subscriptions; "
                  "'auto' matches what the publishers offer (reliable when none is known yet)", read_only=True,
                  choices=INPUT_RELIABILITY_CHOICES),
    ParameterSpec("output_reliability", RELIABLE, "QoS reliability of the published topics (RViz and "
                  "recorders subscribe reliable)", read_only=True, choices=OUTPUT_RELIABILITY_CHOICES),
    ParameterSpec("camera_info_tolerance", 0.2, "Largest difference in seconds between an image stamp and "
                  "the camera_info matched to it (the nearest); 0.2 s bridges a late or lost camera_info of a "
                  "fixed calibration, 0 demands the same stamp (e.g. a zoom camera)", minimum=0.0, maximum=10.0),
    ParameterSpec("intrinsics", (), "[fx, fy, cx, cy] in pixels of the image, used for frames without a "
                  "valid camera_info (uncalibrated cameras); empty: none"),
    ParameterSpec("scale_mode", "focal", "'focal': depth x f_camera / f_training when the camera's focal "
                  "length (at the network size) differs from the training camera's; 'none': as predicted",
                  choices=SCALE_MODES),
    ParameterSpec("colormap_min_depth", 1.0, "Depth in metres drawn with the near end of the colour map",
                  minimum=0.01, maximum=1000.0),
    ParameterSpec("colormap_max_depth", 80.0, "Depth in metres drawn with the far end of the colour map",
                  minimum=0.01, maximum=1000.0),
    ParameterSpec("colormap_inverse", True, "Spread the colours by 1/depth (resolves near objects)"),
    ParameterSpec("cloud_enabled", True, "Publish the point cloud (needs camera_info or intrinsics)"),
    ParameterSpec("cloud_rgb", True, "Colour each point with the camera image (xyz + rgb)"),
    ParameterSpec("cloud_organized", True, "Keep the image grid (invalid points are NaN); false: valid "
                  "points only, in one row"),
    ParameterSpec("cloud_decimation", AUTO_DECIMATION, "Use every N-th row and column of the depth image; "
                  "0: about one point per network pixel (the network's resolution: a denser cloud only adds "
                  "interpolated points)", minimum=0, maximum=64),
    ParameterSpec("cloud_min_depth", 0.1, "Points nearer than this depth (metres along the optical axis) are "
                  "dropped", minimum=0.0, maximum=1000.0),
    ParameterSpec("cloud_max_depth", 60.0, "Points farther than this depth (metres along the optical axis) are "
                  "dropped; keep it below the model's max depth to drop the saturated sky",
                  minimum=0.01, maximum=1000.0),
    ParameterSpec("diagnostics_period", 1.0, "Seconds between /diagnostics messages", read_only=True,
                  minimum=0.1, maximum=60.0),
    ParameterSpec("warning_period", 5.0, "Seconds between two warnings about the same problem", read_only=True,
                  minimum=0.1, maximum=3600.0),
)
PARAMETER_NAMES = tuple(spec.name for spec in PARAMETERS)


@dataclass(frozen=True)
class NodeSettings:
    """The validated parameters, one field per ``PARAMETERS`` entry."""

    model_path: str
    style_checkpoint: str
    backend: str
    device: str
    precision: str
    threads: int
    use_compressed: bool
    input_reliability: str
    output_reliability: str
    camera_info_tolerance: float
    intrinsics: tuple[float, ...]
    scale_mode: str
    colormap_min_depth: float
    colormap_max_depth: float
    colormap_inverse: bool
    cloud_enabled: bool
    cloud_rgb: bool
    cloud_organized: bool
    cloud_decimation: int
    cloud_min_depth: float
    cloud_max_depth: float
    diagnostics_period: float
    warning_period: float



def settings_from_parameters(values: Mapping[str, Any], *, model_search: Sequence[Path] = ()) -> NodeSettings:
    """Check parameter ``values`` (missing names take their defaults) and build the settings.

    Raises ParameterError listing every problem. ``model_search``: the bundled model paths that
    were looked for, named in the error when ``model_path`` is empty.
    """
    unknown = sorted(set(values) - set(PARAMETER_NAMES))
    problems = [f"unknown parameter(s) {', '.join(unknown)}"] if unknown else []
    merged: dict[str, Any] = {}
    for spec in PARAMETERS:
        value = values.get(spec.name, spec.default)
        value = spec.default if value is None else value  # an unset array parameter reads as None
        problem = _check_value(spec, value)
        if problem:
            problems.append(f"{spec.name}: {problem}")
        elif isinstance(spec.default, tuple):
            value = tuple(float(v) for v in value)
        merged[spec.name] = value

    if not merged["model_path"]:
        looked = ", ".join(str(p) for p in model_search) or "no package share directory found"
        problems.append(f"model_path: required (no bundled model; looked for {looked}); "
                        "pass -p model_path:=/path/to/model.onnx")
    elif not Path(merged["model_path"]).is_file():
        problems.append(f"model_path: {merged['model_path']} does not exist")
    if merged["style_checkpoint"] and not Path(merged["style_checkpoint"]).is_file():
        problems.append(f"style_checkpoint: {merged['style_checkpoint']} does not exist")
    device = merged["device"]
    if isinstance(device, str) and not (device in ("auto", "cpu", "cuda")
                                        or (device.startswith("cuda:") and device[5:].isdigit())):
        problems.append(f"device: {device!r} is not 'auto', 'cpu', 'cuda' or 'cuda:N'")
    intrinsics = merged["intrinsics"]
    if isinstance(intrinsics, tuple) and intrinsics:
        if len(intrinsics) != 4:
            problems.append(f"intrinsics: expected [fx, fy, cx, cy], got {len(intrinsics)} values")
        elif not all(math.isfinite(v) for v in intrinsics) or min(intrinsics[:2]) <= 0:
            problems.append(f"intrinsics: need finite values and fx, fy > 0, got {list(intrinsics)}")
    for low, high in (("colormap_min_depth", "colormap_max_depth"), ("cloud_min_depth", "cloud_max_depth")):
        if _is_number(merged[low]) and _is_number(merged[high]) and not merged[low] < merged[high]:
            problems.append(f"{low} ({merged[low]}) must be less than {high} ({merged[high]})")
    if problems:
        raise ParameterError("invalid parameters:\n  " + "\n  ".join(problems))
    return NodeSettings(**merged)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_value(spec: ParameterSpec, value: Any) -> str | None:
    """Why ``value`` does not fit ``spec`` (type, range, choices), or None."""
    default = spec.default
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(default, float):
        ok = _is_number(value)
    elif isinstance(default, tuple):
        ok = isinstance(value, Sequence) and not isinstance(value, str) and all(_is_number(v) for v in value)
    else:
        ok = isinstance(value, str)
    if not ok:
        kind = "a list of numbers" if isinstance(default, tuple) else type(default).__name__
        return f"expected {kind}, got {value!r}"
    if spec.choices and value not in spec.choices:
        return f"{value!r} is not {spec.constraints}"
    if spec.minimum is not None and not spec.minimum <= value <= spec.maximum:
        return f"{value} is not {spec.constraints}"
    if isinstance(value, float) and not math.isfinite(value):
        return f"{value} is not finite"
    return None


def package_directories() -> list[Path]:
    """Where the package's data may be: this source checkout (its models/ and config/ are the
    freshest), the ament index (a colcon install), then the prefix a pip install puts setup.py's
    data_files in."""
    candidates = []
    checkout = Path(__file__).resolve().parents[1]
    if (checkout / "package.xml").is_file() and (checkout / "setup.py").is_file():
        candidates.append(checkout)
    try:
        from ament_index_python.packages import get_package_share_directory

        candidates.append(Path(get_package_share_directory(PACKAGE)))
    except (ImportError, LookupError, OSError):  # no ament_index_python, not in the index, no AMENT_PREFIX_PATH
        pass
    candidates.append(Path(sys.prefix) / "share" / PACKAGE)
    return list(dict.fromkeys(candidates))


def find_bundled_model(share_dirs: Iterable[Path]) -> tuple[Path | None, list[Path]]:
    """The first existing ``<share>/BUNDLED_MODEL`` and every path looked at."""
    looked = [Path(share) / BUNDLED_MODEL for share in share_dirs]
    return next((p for p in looked if p.is_file()), None), looked


# --- frames, statistics, stamps -------------------------------------------------------------


class LatestFrameSlot(Generic[T]):
    """A one-item mailbox between the executor (``put``) and the inference thread (``take``).

    A new frame replaces one that was not taken yet: the older frame is stale by then, so it is
    dropped and counted rather than queued, and a slow model never builds up latency.
    """

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._item: T | None = None
        self._closed = False
        self.received = 0
        self.dropped = 0

    def put(self, item: T) -> bool:
        """Store ``item``; True when it replaced (dropped) an untaken frame."""
        with self._condition:
            replaced = self._item is not None
            self._item = item
            self.received += 1
            self.dropped += replaced
            self._condition.notify()
            return replaced

    def take(self, timeout: float | None = None) -> T | None:
        """The newest frame, waiting up to ``timeout`` seconds; None on timeout or once closed."""
        with self._condition:
            self._condition.wait_for(lambda: self._item is not None or self._closed, timeout)
            if self._closed:
                return None
            item, self._item = self._item, None
            return item

    def close(self) -> None:
        """Wake the consumer for good: ``take`` returns None from now on."""
        with self._condition:
            self._closed = True
            self._condition.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolation percentile (NumPy's default) of ``values``; NaN when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True)
class StatisticsSnapshot:
    received: int
    processed: int
    dropped: int
    rejected: int  # bad inputs (undecodable images)
    input_hz: float
    output_hz: float
    latency_p50_ms: float  # camera stamp -> depth published
    latency_p95_ms: float
    processing_p50_ms: float  # inference thread's time per frame: decoding, inference, every output
    inference_p50_ms: float  # the DepthPipeline.predict part of it (the rest is the node's own work)
    seconds_since_input: float | None  # None before the first input
    seconds_since_output: float | None  # since the last output, or the first input while none; None before it


class StreamStatistics:
    """Rates over a sliding time window and latency percentiles over the last ``samples``
    frames; thread-safe (the executor records inputs, the inference thread outputs)."""

    def __init__(self, window_s: float = 10.0, samples: int = 200) -> None:
        self.window_s = window_s
        self._lock = threading.Lock()
        self._inputs: deque[float] = deque()
        self._outputs: deque[float] = deque()
        self._latencies: deque[float] = deque(maxlen=samples)
        self._processing: deque[float] = deque(maxlen=samples)
        self._inference: deque[float] = deque(maxlen=samples)
        self._processed = 0
        self._rejected = 0
        self._first_input: float | None = None
        self._last_input: float | None = None
        self._last_output: float | None = None

    def record_input(self, now: float) -> None:
        with self._lock:
            self._inputs.append(now)
            self._last_input = now
            if self._first_input is None:
                self._first_input = now
            self._prune(now)

    def record_output(self, now: float, latency_s: float, processing_s: float, inference_s: float) -> None:
        """A published frame: stamp-to-publish latency, the node's time on it, and the part of
        that time spent in ``DepthPipeline.predict``."""
        with self._lock:
            self._outputs.append(now)
            self._latencies.append(latency_s * 1e3)
            self._processing.append(processing_s * 1e3)
            self._inference.append(inference_s * 1e3)
            self._processed += 1
            self._last_output = now
            self._prune(now)

    def record_rejected(self) -> None:
        with self._lock:
            self._rejected += 1

    def snapshot(self, now: float, *, received: int, dropped: int) -> StatisticsSnapshot:
        """Current figures; ``received`` and ``dropped`` come from the frame slot."""
        with self._lock:
            self._prune(now)
            latencies, processing, inference = list(self._latencies), list(self._processing), list(self._inference)
            return StatisticsSnapshot(
                received=received, processed=self._processed, dropped=dropped, rejected=self._rejected,
                input_hz=self._rate(self._inputs), output_hz=self._rate(self._outputs),
                latency_p50_ms=percentile(latencies, 50), latency_p95_ms=percentile(latencies, 95),
                processing_p50_ms=percentile(processing, 50), inference_p50_ms=percentile(inference, 50),
                seconds_since_input=None if self._last_input is None else now - self._last_input,
                seconds_since_output=None if self._first_input is None
                else now - (self._first_input if self._last_output is None else self._last_output),
            )

    def _prune(self, now: float) -> None:
        for times in (self._inputs, self._outputs):
            while times and times[0] < now - self.window_s:
                times.popleft()

    @staticmethod
    def _rate(times: deque[float]) -> float:
        """Events per second between the first and last event in the window (as ``ros2 topic hz``)."""
        if len(times) < 2 or times[-1] <= times[0]:
            return 0.0
        return (len(times) - 1) / (times[-1] - times[0])


class StampMatcher(Generic[T]):
    """Recent items (camera_info) by stamp; ``match`` finds the nearest within a tolerance.

    An image and its camera_info travel on two topics, so either may arrive first: ``match``
    can wait a little for the item of a stamp while the stream is live (something arrived
    before) and nothing newer than the stamp has arrived yet.
    """

    def __init__(self, tolerance_s: float, capacity: int = 30) -> None:
        self.tolerance_ns = round(tolerance_s * 1e9)
        self._items: deque[tuple[int, T]] = deque(maxlen=capacity)
        self._condition = threading.Condition()

    def set_tolerance(self, tolerance_s: float) -> None:
        self.tolerance_ns = round(tolerance_s * 1e9)

    def add(self, stamp_ns: int, item: T) -> None:
        with self._condition:
            self._items.append((stamp_ns, item))
            self._condition.notify_all()

    def match(self, stamp_ns: int, wait_s: float = 0.0) -> T | None:
        """The item nearest ``stamp_ns`` within the tolerance, waiting up to ``wait_s`` for it."""
        deadline = time.monotonic() + wait_s
        with self._condition:
            while True:
                best = min(self._items, key=lambda entry: abs(entry[0] - stamp_ns), default=None)
                if best is not None and abs(best[0] - stamp_ns) <= self.tolerance_ns:
                    return best[1]
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._items or self._items[-1][0] > stamp_ns + self.tolerance_ns:
                    return None
                self._condition.wait(remaining)

    @property
    def newest_stamp_ns(self) -> int | None:
        with self._condition:
            return self._items[-1][0] if self._items else None


class WarningThrottle:
    """At most one warning per problem ``key`` every ``period_s``; counts what it held back."""

    def __init__(self, period_s: float) -> None:
        self.period_s = period_s
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}
        self._lock = threading.Lock()

    def check(self, key: str, now: float) -> int | None:
        """None: stay quiet. Otherwise log now; the value is how many were suppressed since the last one."""
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self.period_s:
                self._suppressed[key] = self._suppressed.get(key, 0) + 1
                return None
            self._last[key] = now
            return self._suppressed.pop(key, 0)


def cloud_stride(decimation: int, image_size: tuple[int, int], network_size: tuple[int, int]) -> int:
    """The row and column stride of the point cloud: ``decimation``, or for ``AUTO_DECIMATION``
    about one point per network pixel, (height, width) sizes. The depth is upsampled from the
    network's output, so a denser cloud only adds interpolated points to build, send and draw
    (a 1242x375 KITTI frame from a 640x192 network: stride 2, 4x fewer points)."""
    if decimation != AUTO_DECIMATION:
        return decimation
    ratio = min(image / network for image, network in zip(image_size, network_size))
    return max(1, round(ratio))


def choose_reliability(mode: str, offered: Iterable[str]) -> str:
    """The reliability to subscribe with: ``mode`` unless "auto"; then best effort when any
    publisher offers only that (a reliable subscription would match none of its messages),
    otherwise reliable (large images need it; also the choice while no publisher is known)."""
    if mode not in INPUT_RELIABILITY_CHOICES:
        raise ValueError(f"unknown reliability mode {mode!r}; known: {', '.join(INPUT_RELIABILITY_CHOICES)}")
    if mode != "auto":
        return mode
    return BEST_EFFORT if BEST_EFFORT in set(offered) else RELIABLE


def diagnostic_summary(stats: StatisticsSnapshot, backend: str, stale_after_s: float = 5.0
                       ) -> tuple[int, str, list[tuple[str, str]]]:
    """(level, message, key/value pairs) of the node's /diagnostics status."""
    def ms(value: float) -> str:
        return "n/a" if math.isnan(value) else f"{value:.1f}"

    values = [
        ("input rate (Hz)", f"{stats.input_hz:.2f}"),
        ("output rate (Hz)", f"{stats.output_hz:.2f}"),
        ("latency p50 (ms)", ms(stats.latency_p50_ms)),
        ("latency p95 (ms)", ms(stats.latency_p95_ms)),
        ("processing p50 (ms)", ms(stats.processing_p50_ms)),
        ("inference p50 (ms)", ms(stats.inference_p50_ms)),
        ("frames received", str(stats.received)),
        ("frames processed", str(stats.processed)),
        ("frames dropped", str(stats.dropped)),
        ("frames rejected", str(stats.rejected)),
        ("backend", backend),
    ]
    if stats.seconds_since_input is None or stats.seconds_since_input > stale_after_s:
        return DIAGNOSTIC_WARN, "no input images", values
    if stats.seconds_since_output is not None and stats.seconds_since_output > stale_after_s:
        return DIAGNOSTIC_ERROR, "receiving images but publishing no depth (see the node's log)", values
    if stats.processed == 0:
        return DIAGNOSTIC_OK, "waiting for the first depth image", values
    return DIAGNOSTIC_OK, f"publishing depth at {stats.output_hz:.1f} Hz", values
