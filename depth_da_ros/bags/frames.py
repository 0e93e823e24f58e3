"""Camera frames of a ROS 2 bag as a random-access sequence: the rosbag training dataset's reader.

    frames = BagFrames("my_robot_run", "/camera/image_raw", depth_topic="/camera/depth/image_rect_raw",
                       camera_info_topic="/camera/camera_info", stride=5, start=10.0, end=70.0)
    rgb, depth = frames.load(0)   # uint8 (H, W, 3) RGB, float32 (H, W) metres or None
    frames.camera                 # Intrinsics from camera_info (P), or None

Any bag rosbags reads (MCAP or sqlite3 rosbag2 folders). Images: ``sensor_msgs/msg/Image`` of any
encoding the node accepts, or ``sensor_msgs/msg/CompressedImage`` (JPEG, PNG), decoded by the
node's own conversions (``ros_conversions.image_to_rgb`` / ``compressed_to_rgb``). Depth: a
``sensor_msgs/msg/Image`` topic in REP 118 encodings, ``32FC1`` metres or ``16UC1`` millimetres
(``depth_io.decode_depth_image``; NaN = no measurement), paired with each image by header stamp
(nearest, within ``sync_tolerance`` seconds; images without a depth partner are dropped with a
warning).

Selection, in this order: the time window ``[start, end)`` in seconds from the bag's first message
(bag receive time; ``end`` 0 = to the end), pairing with depth, every ``stride``-th frame, the first
``limit`` frames. The bag is indexed once, at construction: each frame is kept as (connection,
bag time, ordinal among the topic's messages of that time), so ``load`` reads exactly one message
per topic through the storage's time index (MCAP chunk index, sqlite3 timestamp index) and never
rescans the bag. A reader is opened lazily per process (DataLoader workers each open their own).

Errors (``BagFramesError``) name the bag, the topic and, for a frame, its index and bag time:
a missing topic (with the topics the bag has), a wrong message type, an empty window, an
unreadable frame, a camera_info of another size than the images.
"""
from __future__ import annotations

import bisect
import itertools
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..depth_io import decode_depth_image
from ..geometry import CameraInfoError, Intrinsics
from . import typestore

LOG = logging.getLogger(__name__)

IMAGE_TYPES = ("sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage")
DEPTH_TYPES = ("sensor_msgs/msg/Image",)
CAMERA_INFO_TYPES = ("sensor_msgs/msg/CameraInfo",)
NS = 1_000_000_000


class BagFramesError(ValueError):
    """A bag, topic or message that cannot give training frames; the message names it."""


@dataclass(frozen=True)
class MessageRef:
    """Where one message lies: its connection id, bag time (ns) and ordinal among the messages of its
    topic with that bag time (almost always 0); ``stamp`` is its header stamp (ns)."""

    connection: int
    time: int
    ordinal: int
    stamp: int


def _stamp_ns(message: Any) -> int:
    return int(message.header.stamp.sec) * NS + int(message.header.stamp.nanosec)


def _open(bag: Path) -> Any:
    from rosbags.highlevel import AnyReader, AnyReaderError

    if not bag.exists():
        raise BagFramesError(f"bag {bag} does not exist")
    reader = AnyReader([bag], default_typestore=typestore())
    try:
        reader.open()
    except (AnyReaderError, OSError) as exc:
        raise BagFramesError(f"cannot read bag {bag}: {exc}") from None
    return reader


def _first_camera(reader: Any, bag: Path, topic: str, lo: int, hi: int | None) -> Intrinsics:
    """Intrinsics (from P) of the first camera_info on ``topic`` with bag time in [lo, hi), or of the
    bag's first one when the window has none (calibration rarely changes within a recording)."""
    connections = [c for c in reader.connections if c.topic == topic]
    info = next(iter(reader.messages(connections=connections, start=lo, stop=hi)), None)
    if info is None:
        info = next(iter(reader.messages(connections=connections)), None)
    if info is None:
        raise BagFramesError(f"{bag}: topic {topic} has no message")
    connection, time_ns, raw = info
    msg = reader.deserialize(raw, connection.msgtype)
    try:
        return Intrinsics.from_camera_info(
            msg.width, msg.height, msg.p, msg.binning_x, msg.binning_y,
            (msg.roi.x_offset, msg.roi.y_offset, msg.roi.width, msg.roi.height))
    except CameraInfoError as exc:
        raise BagFramesError(f"{bag}: camera_info on {topic} (bag time {time_ns / NS:.6f} s) is not usable: "
                             f"{exc}") from None


def bag_camera(bag: str | Path, camera_info_topic: str, start: float = 0.0, end: float = 0.0) -> Intrinsics:
    """The camera of a bag (``camera_info_topic``'s first message in the window ``start``..``end`` s,
    else the bag's first): what the rosbag dataset uses, without indexing the images."""
    bag = Path(bag)
    reader = _open(bag)
    try:
        topics = reader.topics
        if camera_info_topic not in topics:
            raise BagFramesError(f"{bag} has no topic {camera_info_topic}; it has: {', '.join(sorted(topics))}")
        if topics[camera_info_topic].msgtype not in CAMERA_INFO_TYPES:
            raise BagFramesError(f"{bag}: topic {camera_info_topic} carries {topics[camera_info_topic].msgtype}, "
                                 f"expected {CAMERA_INFO_TYPES[0]}")
        first = reader.start_time
        return _first_camera(reader, bag, camera_info_topic, first + round(start * NS),
                             first + round(end * NS) if end else None)
    finally:
        reader.close()


class BagFrames:
    """RGB frames (and REP 118 depth) of one bag, selected and indexed once; see the module doc."""

    def __init__(self, bag: str | Path, topic: str, *, depth_topic: str = "", camera_info_topic: str = "",
                 stride: int = 1, start: float = 0.0, end: float = 0.0, limit: int = 0,
                 sync_tolerance: float = 0.01, verify: bool = True) -> None:
        if stride < 1 or limit < 0 or start < 0 or end < 0 or sync_tolerance < 0:
            raise BagFramesError(f"stride must be >= 1 and limit, start, end, sync_tolerance >= 0; got stride "
                                 f"{stride}, limit {limit}, start {start}, end {end}, sync_tolerance {sync_tolerance}")
        if end and end <= start:
            raise BagFramesError(f"end {end} s must be after start {start} s (0 = to the end of the bag)")
        self.bag, self.topic = Path(bag), topic
        self.depth_topic, self.camera_info_topic = depth_topic, camera_info_topic
        self.window = (start, end)
        self._reader: Any = None
        self._pid = -1
        reader = self._reader_here()
        topics = reader.topics
        self._types = {t: self._topic_type(topics, t, allowed)
                       for t, allowed in ((topic, IMAGE_TYPES), (depth_topic, DEPTH_TYPES),
                                          (camera_info_topic, CAMERA_INFO_TYPES)) if t}
        first_ns = reader.start_time
        lo = first_ns + round(start * NS)
        hi = first_ns + round(end * NS) if end else None
        images = self._index(reader, topic, lo, hi)
        length = (reader.end_time - first_ns) / NS
        window = f"[{start:g} s, {f'{end:g} s' if end else 'end'}) of the bag's {length:.2f} s"
        if not images:
            raise BagFramesError(f"{self.bag}: topic {topic} has no message in the window {window} "
                                 f"({topics[topic].msgcount} in the whole bag)")
        pairs: list[tuple[MessageRef, MessageRef | None]]
        if depth_topic:
            margin = round(sync_tolerance * NS)
            depths = self._index(reader, depth_topic, max(lo - margin, 0), None if hi is None else hi + margin)
            pairs = self._pair(images, depths, round(sync_tolerance * NS))
            if not pairs:
                raise BagFramesError(
                    f"{self.bag}: no image of {topic} has a depth image on {depth_topic} within sync_tolerance "
                    f"{sync_tolerance:g} s of its header stamp in the window {window} ({len(images)} images, "
                    f"{len(depths)} depth images)")
            if len(pairs) < len(images):
                LOG.warning("%s: %d of %d images of %s have no depth on %s within %g s; they are left out", self.bag,
                            len(images) - len(pairs), len(images), topic, depth_topic, sync_tolerance)
        else:
            pairs = [(image, None) for image in images]
        pairs = pairs[::stride]
        if limit and limit < len(pairs):
            pairs = pairs[:limit]
        self.frames = pairs
        self.camera: Intrinsics | None = None
        if camera_info_topic:
            self.camera = self._camera(reader, lo, hi)
        if verify:
            for index in range(len(self)):
                self.load(index)
        elif self.camera is not None:
            self.load(0)  # the camera check below compares with a decoded frame's size
        LOG.info("%s", self.describe())

    # -- construction ---------------------------------------------------------------------------

    def _topic_type(self, topics: dict, topic: str, allowed: tuple[str, ...]) -> str:
        if topic not in topics:
            raise BagFramesError(f"{self.bag} has no topic {topic}; it has: "
                                 f"{', '.join(f'{t} ({i.msgtype})' for t, i in sorted(topics.items())) or 'none'}")
        msgtype = topics[topic].msgtype
        if msgtype not in allowed:
            raise BagFramesError(f"{self.bag}: topic {topic} carries {msgtype}, expected {' or '.join(allowed)}")
        return msgtype

    def _index(self, reader: Any, topic: str, lo: int, hi: int | None) -> list[MessageRef]:
        """Every message of ``topic`` with bag time in [lo, hi), in bag-time order, with its header stamp."""
        connections = [c for c in reader.connections if c.topic == topic]
        refs: list[MessageRef] = []
        seen: dict[tuple[int, int], int] = {}  # (connection, bag time) -> messages so far
        for connection, time_ns, raw in reader.messages(connections=connections, start=lo, stop=hi):
            ordinal = seen[connection.id, time_ns] = seen.get((connection.id, time_ns), -1) + 1
            try:
                stamp = _stamp_ns(reader.deserialize(raw, connection.msgtype))
            except Exception as exc:  # noqa: BLE001 - rosbags raises several types for corrupt CDR
                raise BagFramesError(f"{self.bag}: message {len(refs)} of {topic} (bag time {time_ns / NS:.6f} s) "
                                     f"cannot be deserialised as {connection.msgtype}: {exc}") from None
            refs.append(MessageRef(connection.id, time_ns, ordinal, stamp))
        return refs

    @staticmethod
    def _pair(images: list[MessageRef], depths: list[MessageRef], tolerance_ns: int
              ) -> list[tuple[MessageRef, MessageRef | None]]:
        """Each image with the depth of nearest header stamp within ``tolerance_ns`` (images without one dropped)."""
        if not depths:
            return []
        depths = sorted(depths, key=lambda r: r.stamp)
        stamps = [r.stamp for r in depths]
        pairs: list[tuple[MessageRef, MessageRef | None]] = []
        for image in images:
            i = bisect.bisect_left(stamps, image.stamp)
            near = [j for j in (i - 1, i) if 0 <= j < len(stamps)]
            best = min(near, key=lambda j: abs(stamps[j] - image.stamp))
            if abs(stamps[best] - image.stamp) <= tolerance_ns:
                pairs.append((image, depths[best]))
        return pairs

    def _camera(self, reader: Any, lo: int, hi: int | None) -> Intrinsics:
        return _first_camera(reader, self.bag, self.camera_info_topic, lo, hi)

    # -- reading --------------------------------------------------------------------------------

    def _reader_here(self) -> Any:
        """This process's reader (a forked DataLoader worker must not share its parent's file handles)."""
        if self._reader is None or self._pid != os.getpid():
            self._reader = _open(self.bag)
            self._pid = os.getpid()
            # Connection objects point at their reader's storage: look them up in this process's reader.
            self._connections = {c.id: c for c in self._reader.connections}
        return self._reader

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_reader": None, "_pid": -1, "_connections": {}}

    def __len__(self) -> int:
        return len(self.frames)

    def _message(self, ref: MessageRef, topic: str, index: int) -> Any:
        reader = self._reader_here()
        connection = self._connections[ref.connection]
        found = next(itertools.islice(
            reader.messages(connections=[connection], start=ref.time, stop=ref.time + 1), ref.ordinal, None), None)
        if found is None:
            raise BagFramesError(f"{self.bag}: frame {index} of {topic} (bag time {ref.time / NS:.6f} s) is no "
                                 "longer in the bag (was it rewritten after the dataset was built?)")
        return reader.deserialize(found[2], connection.msgtype)

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray | None]:
        """Frame ``index``: uint8 (H, W, 3) RGB and float32 (H, W) depth in metres (NaN = no measurement,
        +inf = beyond range) or None without a depth topic."""
        from ..ros_conversions import InvalidMessageError, compressed_to_rgb, image_to_rgb

        image_ref, depth_ref = self.frames[index]
        msg = self._message(image_ref, self.topic, index)
        where = f"{self.bag}: frame {index} of {self.topic} (bag time {image_ref.time / NS:.6f} s)"
        try:
            rgb = compressed_to_rgb(msg) if self._types[self.topic].endswith("CompressedImage") else image_to_rgb(msg)
        except InvalidMessageError as exc:
            raise BagFramesError(f"{where} cannot be decoded: {exc}") from None
        if self.camera is not None and (self.camera.height, self.camera.width) != rgb.shape[:2]:
            raise BagFramesError(f"{where} is {rgb.shape[1]}x{rgb.shape[0]}, but camera_info on "
                                 f"{self.camera_info_topic} describes {self.camera.width}x{self.camera.height}")
        if depth_ref is None:
            return rgb, None
        depth_msg = self._message(depth_ref, self.depth_topic, index)
        try:
            depth = decode_depth_image(depth_msg.height, depth_msg.width, depth_msg.encoding,
                                       bool(depth_msg.is_bigendian), depth_msg.step, depth_msg.data)
        except ValueError as exc:
            raise BagFramesError(f"{self.bag}: depth of frame {index} on {self.depth_topic} (bag time "
                                 f"{depth_ref.time / NS:.6f} s) cannot be decoded: {exc}") from None
        if depth.shape != rgb.shape[:2]:
            raise BagFramesError(f"{where} is {rgb.shape[1]}x{rgb.shape[0]} but its depth on {self.depth_topic} is "
                                 f"{depth.shape[1]}x{depth.shape[0]}; register depth to the colour camera "
                                 "(e.g. an aligned_depth_to_color topic)")
        return rgb, depth

    def describe(self) -> str:
        start, end = self.window
        parts = [f"{len(self)} frames of {self.topic}"]
        if self.depth_topic:
            parts.append(f"depth {self.depth_topic}")
        if self.camera is not None:
            parts.append(f"camera {self.camera.width}x{self.camera.height} fx {self.camera.fx:.1f}")
        return f"bag {self.bag} ({', '.join(parts)}, window {start:g}-{f'{end:g}' if end else 'end'} s)"
