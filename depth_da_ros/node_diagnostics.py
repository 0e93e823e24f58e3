"""Statistics of ``depth_da_node``'s stream and its /diagnostics summary (no ROS: the node
converts the level and key/value pairs into a DiagnosticStatus)."""
from __future__ import annotations

import math
import threading
from collections import deque
from dataclasses import dataclass
from typing import Sequence

# diagnostic_msgs/DiagnosticStatus levels.
DIAGNOSTIC_OK, DIAGNOSTIC_WARN, DIAGNOSTIC_ERROR = 0, 1, 2
# Camera stamp -> publish latency means something only when the stamps are on the node's clock.
# Outside this range (seconds) they are not: a bag replayed with its recorded stamps (years old)
# without --clock / use_sim_time, sim time with a silent /clock (the clock reads 0), or cameras
# whose clocks disagree. A real latency of a minute would show as stale output anyway.
MEANINGFUL_LATENCY_S = (-1.0, 60.0)


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
    # The last frame's stamp-to-publish difference (s) when it was outside MEANINGFUL_LATENCY_S
    # (latency is then not measured, see latency_note); None while stamps are on the node's clock.
    stamp_offset_s: float | None = None

    @property
    def latency_note(self) -> str | None:
        """Why latency is not reported, or None when it is."""
        offset = self.stamp_offset_s
        if offset is None:
            return None
        direction = "behind" if offset > 0 else "ahead of"
        return (f"not measured: image stamps are {_duration(abs(offset))} {direction} this node's clock, so "
                "stamp-to-publish time means nothing (a bag replayed with its recorded stamps? play it with "
                "--clock and set use_sim_time; with use_sim_time, is /clock published?)")


def _duration(seconds: float) -> str:
    for unit, size in (("years", 365.25 * 86400), ("days", 86400), ("h", 3600), ("min", 60)):
        if seconds >= 2 * size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.1f} s"


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
        self._stamp_offset: float | None = None

    def record_input(self, now: float) -> None:
        with self._lock:
            self._inputs.append(now)
            self._last_input = now
            if self._first_input is None:
                self._first_input = now
            self._prune(now)

    def record_output(self, now: float, latency_s: float, processing_s: float, inference_s: float) -> None:
        """A published frame: stamp-to-publish latency, the node's time on it, and the part of
        that time spent in ``DepthPipeline.predict``. A latency outside ``MEANINGFUL_LATENCY_S``
        is not one (see there): it is kept apart and reported as the stamps' offset."""
        low, high = MEANINGFUL_LATENCY_S
        with self._lock:
            self._outputs.append(now)
            if low <= latency_s <= high:
                if self._stamp_offset is not None:  # the stamps changed clock: older samples mean nothing
                    self._latencies.clear()
                self._stamp_offset = None
                self._latencies.append(latency_s * 1e3)
            else:
                self._stamp_offset = latency_s
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
                stamp_offset_s=self._stamp_offset,
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


def diagnostic_summary(stats: StatisticsSnapshot, backend: str, stale_after_s: float = 5.0,
                       clock_problem: str | None = None) -> tuple[int, str, list[tuple[str, str]]]:
    """(level, message, key/value pairs) of the node's /diagnostics status. ``clock_problem``:
    why the node's ROS clock is not usable (sim time without /clock), a warning."""
    def ms(value: float) -> str:
        return "n/a" if math.isnan(value) else f"{value:.1f}"

    note = stats.latency_note
    values = [
        ("input rate (Hz)", f"{stats.input_hz:.2f}"),
        ("output rate (Hz)", f"{stats.output_hz:.2f}"),
        ("latency p50 (ms)", "n/a" if note else ms(stats.latency_p50_ms)),
        ("latency p95 (ms)", "n/a" if note else ms(stats.latency_p95_ms)),
        *([("latency", note)] if note else []),
        ("processing p50 (ms)", ms(stats.processing_p50_ms)),
        ("inference p50 (ms)", ms(stats.inference_p50_ms)),
        ("frames received", str(stats.received)),
        ("frames processed", str(stats.processed)),
        ("frames dropped", str(stats.dropped)),
        ("frames rejected", str(stats.rejected)),
        ("backend", backend),
        *([("clock", clock_problem)] if clock_problem else []),
    ]
    if clock_problem:
        return DIAGNOSTIC_WARN, clock_problem, values
    if stats.seconds_since_input is None or stats.seconds_since_input > stale_after_s:
        return DIAGNOSTIC_WARN, "no input images", values
    if stats.seconds_since_output is not None and stats.seconds_since_output > stale_after_s:
        return DIAGNOSTIC_ERROR, "receiving images but publishing no depth (see the node's log)", values
    if stats.processed == 0:
        return DIAGNOSTIC_OK, "waiting for the first depth image", values
    return DIAGNOSTIC_OK, f"publishing depth at {stats.output_hz:.1f} Hz", values


def status_name(node_fqn: str) -> str:
    """The DiagnosticStatus name: the node's full name without the leading '/' (diagnostic
    aggregators match names by prefix, e.g. 'front/depth_da_node'), then ': depth'."""
    return f"{node_fqn.lstrip('/')}: depth"


def hardware_id(camera_frame_id: str, image_topic: str, model_path: str, backend: str) -> str:
    """What the status is about: the camera (its frame id, else its image topic) and the model
    (file name and backend), e.g. 'camera_color_left (/front/image_raw): depth.onnx on onnxruntime'."""
    camera = f"{camera_frame_id} ({image_topic})" if camera_frame_id else image_topic
    model = model_path.replace("\\", "/").rsplit("/", 1)[-1] or "model"
    return f"{camera}: {model} on {backend}"
