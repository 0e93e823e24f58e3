"""What ``depth_da_node`` knows about each camera and each frame, without ROS: the last valid
calibration per camera (so that a frame whose own camera_info is missing, late or stamped
differently keeps its camera's metric scale), the frame id to publish, and the per-frame
problems that /diagnostics reports (degenerate frames, frames without calibration, empty
frame ids).

A camera is a (frame_id, height, width) triple: the same frame id at another resolution (a
driver's binning or ROI mode) is another calibration. Stamps are integer nanoseconds and times
``time.monotonic`` seconds; the node converts.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Generic, TypeVar

from .geometry import Intrinsics

T = TypeVar("T")

# Where a frame's calibration came from (reported in /diagnostics as "calibration").
FROM_CAMERA_INFO = "camera_info"  # the frame's own, matched by stamp
FROM_CACHE = "last valid camera_info"  # the camera's own frame had none (missing, late, invalid, other stamp)
FROM_PARAMETER = "intrinsics parameter"  # the camera never sent a valid camera_info
FROM_NOTHING = "none"
CALIBRATION_SOURCES = (FROM_CAMERA_INFO, FROM_CACHE, FROM_PARAMETER, FROM_NOTHING)


@dataclass(frozen=True)
class Calibration(Generic[T]):
    """Intrinsics of one camera at one resolution, the camera_info they came from (None for the
    ``intrinsics`` parameter) and its stamp in ns (None for the parameter)."""

    intrinsics: Intrinsics
    message: T | None
    stamp_ns: int | None
    source: str


CameraKey = tuple[str, int, int]  # (frame_id, height, width)
# Cameras whose calibration (and "no calibration" announcement) is kept; beyond that the least
# recently used is forgotten, so a publisher whose frame_id or size changes every frame cannot
# grow the node's memory. A robot's node reads one camera: 64 leaves room for ROI/binning modes.
CAMERAS_KEPT = 64
CAMERAS_NAMED = 5  # cameras a message lists before "and N more"


class CalibrationCache(Generic[T]):
    """The newest valid calibration received per camera (frame_id, height, width); thread-safe.

    ``remember`` is called for every valid camera_info as it arrives (not only for those
    matched to an image), so a camera whose camera_info always arrives after its image still
    gets its calibration from the second frame on. At most ``capacity`` cameras are kept (least
    recently used forgotten first), and as many "no calibration" announcements.
    """

    def __init__(self, capacity: int = CAMERAS_KEPT) -> None:
        self.capacity = capacity
        self._lock = threading.Lock()
        self._entries: OrderedDict[CameraKey, Calibration[T]] = OrderedDict()
        self._announced: OrderedDict[CameraKey, None] = OrderedDict()
        self._images: OrderedDict[CameraKey, None] = OrderedDict()  # cameras images came from

    def _keep(self, table: OrderedDict, key: CameraKey, value: object) -> None:
        table[key] = value
        table.move_to_end(key)
        while len(table) > self.capacity:
            table.popitem(last=False)

    def remember(self, frame_id: str, intrinsics: Intrinsics, message: T, stamp_ns: int) -> bool:
        """Keep ``intrinsics`` as the camera's calibration (replacing the one kept); True when
        it is the first for that camera."""
        key = (frame_id, intrinsics.height, intrinsics.width)
        with self._lock:
            first = key not in self._entries
            self._keep(self._entries, key, Calibration(intrinsics, message, stamp_ns, FROM_CACHE))
            return first

    def recall(self, frame_id: str, height: int, width: int) -> Calibration[T] | None:
        """The kept calibration of this camera at this image size, or None."""
        key = (frame_id, height, width)
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
            return self._entries.get(key)

    def recall_only(self, height: int, width: int) -> tuple[str, Calibration[T]] | None:
        """(frame_id, calibration) when exactly one camera of this image size has one and no
        image came with its frame id (at any size): the node reads one camera_info topic, so that
        is the image's camera when the driver stamps its camera_info with another frame id than
        its images. A frame id that images carry is another camera's (its calibration is not
        lent: a frame whose own camera_info was lost goes uncalibrated, said so, rather than take
        a wrong one). None when none or several."""
        with self._lock:
            found = [(key[0], entry) for key, entry in self._entries.items()
                     if key[1:] == (height, width) and not self._carried_by_images(key[0])]
            return found[0] if len(found) == 1 else None

    def _carried_by_images(self, frame_id: str) -> bool:
        return any(key[0] == frame_id for key in self._images)

    def carried_by_images(self, frame_id: str) -> bool:
        """Whether an image (of the last ``capacity`` cameras) came with this frame id: then a
        camera_info of that frame id is that camera's, never another frame id's."""
        with self._lock:
            return self._carried_by_images(frame_id)

    def cameras(self) -> list[CameraKey]:
        with self._lock:
            return sorted(self._entries)

    def describe(self, limit: int = CAMERAS_NAMED) -> str:
        """The kept cameras for a log line, at most ``limit`` named (most recently used first)."""
        with self._lock:
            keys = list(reversed(self._entries))
        named = ", ".join(f"{frame_id!r} at {w}x{h}" for frame_id, h, w in keys[:limit]) or "none"
        return named + (f" and {len(keys) - limit} more" if len(keys) > limit else "")

    def _first(self, table: OrderedDict, key: CameraKey) -> bool:
        with self._lock:
            if key in table:
                table.move_to_end(key)
                return False
            self._keep(table, key, None)
            return True

    def saw_image(self, frame_id: str, height: int, width: int) -> bool:
        """An image of this camera arrived; True for its first (at most ``capacity`` cameras kept)."""
        return self._first(self._images, (frame_id, height, width))

    def first_miss(self, frame_id: str, height: int, width: int) -> bool:
        """True the first time a frame of this camera finds no calibration at all (say so once)."""
        return self._first(self._announced, (frame_id, height, width))


def output_frame_id(received: str, override: str) -> str:
    """The frame id the outputs carry: the ``frame_id`` parameter when set, else the input's."""
    return override or received


# Keys of the per-frame problems counted by FrameChecks.
DEGENERATE = "degenerate"
UNCALIBRATED = "uncalibrated"
EMPTY_FRAME_ID = "empty frame_id"
GROUND_HEIGHT = "ground height"
_MESSAGES = {
    DEGENERATE: "degenerate frames (no contrast: lens cap, white-out, blank): depth published as NaN",
    UNCALIBRATED: "frames without calibration (no valid camera_info, no intrinsics parameter): depth not "
                  "rescaled, no depth/camera_info, no point cloud",
    EMPTY_FRAME_ID: "inputs with an empty frame_id (RViz and tf2 drop such outputs): set the frame_id parameter",
    GROUND_HEIGHT: "frames whose predicted road disagrees with ground_camera_height: ground constraint skipped; "
                   "check the height and pitch",
}
_VALUE_NAMES = {DEGENERATE: "frames degenerate", UNCALIBRATED: "frames without calibration",
                EMPTY_FRAME_ID: "inputs with empty frame_id", GROUND_HEIGHT: "frames ground constraint skipped"}


class FrameChecks:
    """Counts of per-frame problems and when each last happened, for /diagnostics; thread-safe.

    ``summary`` turns them into a WARN message while one happened within ``recent_s`` seconds,
    plus key/value pairs (counts, the last frame's calibration source, contrast threshold)."""

    def __init__(self, recent_s: float = 5.0) -> None:
        self.recent_s = recent_s
        self._lock = threading.Lock()
        self._counts = {key: 0 for key in _MESSAGES}
        self._last: dict[str, float] = {}
        self._calibration = FROM_NOTHING

    def record(self, key: str, now: float) -> None:
        if key not in self._counts:
            raise ValueError(f"unknown frame problem {key!r}; known: {', '.join(self._counts)}")
        with self._lock:
            self._counts[key] += 1
            self._last[key] = now

    def record_calibration(self, source: str) -> None:
        if source not in CALIBRATION_SOURCES:
            raise ValueError(f"unknown calibration source {source!r}; known: {', '.join(CALIBRATION_SOURCES)}")
        with self._lock:
            self._calibration = source

    def count(self, key: str) -> int:
        with self._lock:
            return self._counts[key]

    def summary(self, now: float) -> tuple[str | None, list[tuple[str, str]]]:
        """(warning message or None, key/value pairs)."""
        with self._lock:
            recent = [key for key in _MESSAGES if now - self._last.get(key, -float("inf")) <= self.recent_s]
            values = [("calibration", self._calibration)]
            values += [(_VALUE_NAMES[key], str(self._counts[key])) for key in _MESSAGES]
        return ("; ".join(_MESSAGES[key] for key in recent) or None), values


def merge_frame_checks(level: int, message: str, values: list[tuple[str, str]], problem: str | None,
                       values_more: list[tuple[str, str]], warn_level: int) -> tuple[int, str, list[tuple[str, str]]]:
    """The node's diagnostic status with the frame checks added: their values appended, and a
    ``problem`` raising the level to at least ``warn_level`` (its message first)."""
    values = [*values, *values_more]
    if problem is None:
        return level, message, values
    if level < warn_level:
        return warn_level, problem, values
    return level, f"{message}; {problem}", values
