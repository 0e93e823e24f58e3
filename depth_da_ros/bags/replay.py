"""Play a ROS 2 bag into the live graph with rclpy: ``ros2 bag play`` for installs without a distro.

    depth_da_replay kitti_2011_09_26_drive_0002_sync --rate 0.5 --loop --clock 100
    depth_da_replay BAG --topics /kitti/camera_color_left/image_raw /kitti/camera_color_left/camera_info \\
        --remap /kitti/camera_color_left/image_raw:=/camera/image_raw --wait-for-subscribers 2

Any ROS 2 bag that rosbags reads (MCAP or sqlite3, any tool's) plays. Messages are deserialised
with the bag's own message definitions and converted field by field, by name, to the installed
rclpy classes (``MessageConverter``): one generic converter for every type, which also bridges
definitions that differ between distros (a field the bag lacks keeps its default; a field only
the bag has is dropped). A topic whose type has no installed Python package (e.g. tf2_msgs in a
pip venv) is skipped with a warning that names the package.

Timing: each message goes out at its bag time, relative to the first, divided by ``--rate``.
Start: by default playing waits (up to ``--wait-timeout``) until every played topic has a
subscriber, so the first frames are not published before discovery has matched the node (they
would be lost: the publishers are volatile); ``--wait-for-subscribers 0`` plays at once and
warns about the topics nobody subscribes to yet; ``--wait-for-topics`` also waits for subscribers of
topics it does not play (a recorder of the node's output, so the node's first outputs are recorded).
SIGINT / SIGTERM end the playing with its summary (exit code 0; 130 when it comes before playing
began or while waiting for the last acknowledgements). Unless
Fast DDS is configured otherwise, the package's Fast DDS profile for large images applies
(``depth_da_ros.console``).
QoS: each topic's publisher adopts the bag's offered profiles, as ``ros2 bag play`` does:
reliable unless every recorded publisher was best effort (a reliable publisher also serves
best-effort subscribers, the reverse matches nothing), transient local when every recorded
publisher was (``/tf_static`` when the bag records no profile), so late joiners get latched data.
"""
from __future__ import annotations

import argparse
import array
import importlib
import logging
import signal
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rclpy
from builtin_interfaces.msg import Time
from rclpy.duration import Duration
from rclpy.node import Node
from rclpy.publisher import Publisher
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.signals import SignalHandlerOptions
from rosbags.highlevel import AnyReader, AnyReaderError
from rosbags.interfaces import Connection, Qos, QosDurability, QosReliability
from rosgraph_msgs.msg import Clock
from tqdm import tqdm

from ..console import ExitIfStuck, apply_default_fastdds_profile
from . import STREAM_DEPTH, TF_STATIC_TOPIC, typestore

LOG = logging.getLogger(__name__)
CLOCK_TOPIC = "/clock"
ACK_TIMEOUT_S = 5.0  # at the end, how long reliable publishers may take to deliver the last messages
WAIT_FOR_SUBSCRIBERS = 1  # default of --wait-for-subscribers
WAIT_TIMEOUT_S = 10.0  # default of --wait-timeout


class MessageTypeError(LookupError):
    """A message type without an installed Python (rclpy) class."""


def message_class(msgtype: str) -> type:
    """``"sensor_msgs/msg/Image"`` -> the installed rclpy class (what rosidl_runtime_py's get_message does)."""
    parts = msgtype.split("/")
    if len(parts) != 3 or not all(parts):
        raise MessageTypeError(f"expected a ROS 2 type name 'package/msg/Name', got {msgtype!r}")
    package, kind, name = parts
    try:
        module = importlib.import_module(f"{package}.{kind}")
    except ModuleNotFoundError:
        raise MessageTypeError(
            f"message type {msgtype} is not installed (no Python module {package}.{kind}; on a distro install "
            f"ros-$ROS_DISTRO-{package.replace('_', '-')}, in a venv the ros-kilted-{package.replace('_', '-')} "
            "wheel where PyPI has one)") from None
    try:
        return getattr(module, name)
    except AttributeError:
        raise MessageTypeError(f"message type {msgtype}: {package}.{kind} has no {name}") from None


def _scalar(typename: str) -> Callable[[Any], Any]:
    """Converter of one basic value: rosbags gives numbers (sometimes NumPy scalars) for every type."""
    if typename == "octet":
        return lambda v: bytes([v]) if isinstance(v, (int, np.integer)) else v
    if typename in ("char", "wchar"):
        return lambda v: chr(v) if isinstance(v, (int, np.integer)) else v
    if typename == "boolean":
        return bool
    return lambda v: v.item() if isinstance(v, np.generic) else v


class MessageConverter:
    """rosbags message objects -> rclpy messages, by field introspection of the rclpy class.

    The plan of each (rclpy class, rosbags class) pair is built once: nested messages recurse,
    numeric arrays become the container the rclpy class holds (NumPy array for fixed-size
    arrays, ``array.array`` for sequences; one copy of the bytes, no per-element checks), other
    sequences become lists.
    """

    def __init__(self) -> None:
        self._plans: dict[tuple[type, type], list[tuple[str, Callable[[Any], Any]]]] = {}

    def convert(self, message: Any, cls: type) -> Any:
        key = (cls, type(message))
        plan = self._plans.get(key)
        if plan is None:
            plan = self._plans[key] = self._plan(cls, message)
        out = cls()
        for name, convert in plan:
            setattr(out, name, convert(getattr(message, name)))
        return out

    def _plan(self, cls: type, message: Any) -> list[tuple[str, Callable[[Any], Any]]]:
        defaults = cls()
        plan, missing = [], []
        for name, slot in zip(cls.get_fields_and_field_types(), cls.SLOT_TYPES):
            if not hasattr(message, name):
                missing.append(name)
                continue
            plan.append((name, self._field(slot, getattr(defaults, name))))
        if missing:
            LOG.warning("%s: the bag's definition lacks field(s) %s; they keep their defaults",
                        getattr(message, "__msgtype__", type(message).__name__), ", ".join(missing))
        return plan

    def _field(self, slot: Any, default: Any) -> Callable[[Any], Any]:
        # SLOT_TYPES hold rosidl_parser.definition objects: a nested message type has
        # ``namespaces``, an array or sequence has ``value_type``, a basic type has ``typename``.
        if hasattr(slot, "namespaces"):
            nested = message_class("/".join([*slot.namespaces, slot.name]))
            return lambda v: self.convert(v, nested)
        if hasattr(slot, "value_type"):
            value_type = slot.value_type
            if hasattr(value_type, "namespaces"):
                nested = message_class("/".join([*value_type.namespaces, value_type.name]))
                return lambda v: [self.convert(x, nested) for x in v]
            if isinstance(default, np.ndarray):
                dtype = default.dtype
                return lambda v: np.asarray(v, dtype=dtype)
            if isinstance(default, array.array):
                typecode, dtype = default.typecode, np.dtype(default.typecode)
                return lambda v: array.array(typecode, np.ascontiguousarray(v, dtype=dtype).tobytes())
            element = _scalar(getattr(value_type, "typename", ""))
            return lambda v: [element(x) for x in v]
        return _scalar(getattr(slot, "typename", ""))


def replay_qos(profiles: Sequence[Qos], topic: str, message_count: int) -> QoSProfile:
    """The publisher QoS for a topic recorded with ``profiles`` (see the module doc)."""
    reliabilities = {p.reliability for p in profiles}
    durabilities = {p.durability for p in profiles}
    if len(reliabilities) > 1 or len(durabilities) > 1:
        LOG.warning("%s was recorded from publishers with different QoS; replaying reliable%s", topic,
                    ", transient local" if durabilities == {QosDurability.TRANSIENT_LOCAL} else "")
    best_effort = reliabilities == {QosReliability.BEST_EFFORT}
    transient = durabilities == {QosDurability.TRANSIENT_LOCAL} or (not profiles and topic == TF_STATIC_TOPIC)
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        # Transient local keeps every recorded message for late joiners (e.g. several /tf_static).
        depth=max(1, message_count) if transient else STREAM_DEPTH,
        reliability=ReliabilityPolicy.BEST_EFFORT if best_effort else ReliabilityPolicy.RELIABLE,
        durability=DurabilityPolicy.TRANSIENT_LOCAL if transient else DurabilityPolicy.VOLATILE,
    )


def parse_remaps(items: Sequence[str]) -> dict[str, str]:
    """``["OLD:=NEW", ...]`` -> {OLD: NEW}."""
    remaps = {}
    for item in items:
        old, sep, new = item.partition(":=")
        if not sep or not old or not new:
            raise ValueError(f"expected OLD:=NEW, got {item!r}")
        remaps[old] = new
    return remaps


@dataclass
class _Output:
    name: str  # topic published (after remapping)
    msgtype: str
    cls: type
    publisher: Publisher
    count: int = 0


@dataclass
class ReplaySummary:
    """What one ``play`` published: messages per output topic, skipped topics, wall and bag time."""

    counts: dict[str, int]
    types: dict[str, str]
    skipped: dict[str, str]
    wall_s: float
    bag_s: float  # bag time covered, summed over loops
    loops: int
    interrupted: bool = False

    @property
    def achieved_rate(self) -> float:
        """Bag seconds per wall second (compare with ``--rate``)."""
        return self.bag_s / self.wall_s if self.wall_s > 0 else 0.0

    def format(self) -> str:
        lines = [f"{'topic':<44} {'type':<32} {'messages':>8} {'msg/s':>7}"]
        for topic, count in self.counts.items():
            rate = count / self.wall_s if self.wall_s > 0 else 0.0
            lines.append(f"{topic:<44} {self.types[topic]:<32} {count:>8} {rate:>7.2f}")
        for topic, reason in self.skipped.items():
            lines.append(f"{topic:<44} skipped: {reason}")
        state = "interrupted after" if self.interrupted else "played"
        lines.append(f"{state} {self.loops} pass(es): {self.bag_s:.2f} s of bag time in {self.wall_s:.2f} s "
                     f"(rate {self.achieved_rate:.2f}x)")
        return "\n".join(lines)


class BagPlayer:
    """Publishes a bag's messages with ``node``; ``play()`` runs until the end (or forever with ``loop``)."""

    def __init__(self, node: Node, bag: str | Path, *, topics: Sequence[str] | None = None,
                 remap: dict[str, str] | None = None, rate: float = 1.0, loop: bool = False,
                 clock_hz: float = 0.0, progress: bool = False) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be positive, got {rate}")
        if clock_hz < 0:
            raise ValueError(f"clock rate must be >= 0, got {clock_hz}")
        self.node, self.bag, self.rate, self.loop, self.clock_hz = node, Path(bag), rate, loop, clock_hz
        self.progress = progress
        self.converter = MessageConverter()
        self.reader = AnyReader([self.bag], default_typestore=typestore())
        self.reader.open()
        bag_topics = self.reader.topics
        wanted = list(topics) if topics else list(bag_topics)
        unknown = [t for t in wanted if t not in bag_topics]
        if unknown:
            self.reader.close()
            raise ValueError(f"topic(s) {', '.join(unknown)} not in {self.bag}; "
                             f"it has: {', '.join(sorted(bag_topics))}")
        remap = dict(remap or {})
        for old in remap:
            if old not in wanted:
                LOG.warning("--remap %s: no such topic is played", old)
        self.skipped: dict[str, str] = {}
        self.outputs: dict[str, _Output] = {}
        for topic in wanted:
            info = bag_topics[topic]
            if info.msgtype is None:
                self.skipped[topic] = "several message types on one topic"
                continue
            try:
                cls = message_class(info.msgtype)
            except MessageTypeError as exc:
                self.skipped[topic] = str(exc)
                continue
            profiles = [q for c in info.connections for q in getattr(c.ext, "offered_qos_profiles", [])]
            name = remap.get(topic, topic)
            qos = replay_qos(profiles, topic, info.msgcount)
            self.outputs[topic] = _Output(name, info.msgtype, cls, node.create_publisher(cls, name, qos))
            LOG.debug("%s -> %s (%s, %s, %s)", topic, name, info.msgtype, qos.reliability.name, qos.durability.name)
        for topic, reason in self.skipped.items():
            LOG.warning("skipping %s: %s", topic, reason)
        if not self.outputs:
            self.reader.close()
            raise ValueError(f"nothing to play in {self.bag}")
        self.connections: list[Connection] = [c for c in self.reader.connections if c.topic in self.outputs]
        self.total = sum(bag_topics[t].msgcount for t in self.outputs)
        self.clock_publisher = None
        self._next_tick = 0.0
        if clock_hz:
            self.clock_publisher = node.create_publisher(
                Clock, CLOCK_TOPIC, QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE))

    def close(self) -> None:
        self.reader.close()

    def wait_for_subscribers(self, count: int, timeout_s: float, also: Sequence[str] = ()) -> bool:
        """Wait until every played topic has ``count`` matched subscriptions and every topic of
        ``also`` (not played; absolute names) has a subscriber in the graph; False (and a warning
        naming the topics) on timeout. ``count`` 0 waits for nothing but still warns about topics
        without any subscriber: their messages go to nobody."""
        deadline = time.monotonic() + timeout_s
        while True:
            lacking = [o.name for o in self.outputs.values() if o.publisher.get_subscription_count() < count]
            unheard = [topic for topic in also if self.node.count_subscribers(topic) < 1]
            if not lacking and not unheard:
                break
            if time.monotonic() >= deadline:
                problems = ([f"fewer than {count} subscriber(s) on {', '.join(lacking)}"] if lacking else []) + \
                    ([f"no subscriber on {', '.join(unheard)}"] if unheard else [])
                LOG.warning("after %.1f s, %s; playing anyway (the first messages may reach nobody)", timeout_s,
                            " and ".join(problems))
                return False
            time.sleep(0.05)
        nobody = [o.name for o in self.outputs.values() if o.publisher.get_subscription_count() == 0]
        if nobody:
            LOG.warning("nobody subscribes to %s yet: playing to nobody there (use --wait-for-subscribers N to "
                        "wait for N subscribers)", ", ".join(nobody))
        return not nobody or count == 0

    def play(self) -> ReplaySummary:
        wall_start = time.monotonic()
        bag_s, loops, interrupted = 0.0, 0, False
        try:
            while True:
                bag_s += self._play_once()
                loops += 1
                if not self.loop:
                    break
        except KeyboardInterrupt:
            interrupted = True
        wall_s = time.monotonic() - wall_start
        if not interrupted:
            for output in self.outputs.values():
                if not output.publisher.wait_for_all_acked(Duration(seconds=ACK_TIMEOUT_S)):
                    LOG.warning("%s: not every subscriber acknowledged the last messages within %.0f s",
                                output.name, ACK_TIMEOUT_S)
        return ReplaySummary({o.name: o.count for o in self.outputs.values()},
                             {o.name: o.msgtype for o in self.outputs.values()}, dict(self.skipped), wall_s, bag_s,
                             loops, interrupted)

    def _play_once(self) -> float:
        """One pass over the bag; returns the bag time it covered (s)."""
        start_wall = self._next_tick = time.monotonic()
        first = last = None
        with tqdm(total=self.total, desc=f"playing {self.bag.name}", unit="msg", disable=not self.progress) as bar:
            for connection, stamp, raw in self.reader.messages(connections=self.connections):
                if first is None:
                    first = stamp
                self._wait_until(start_wall + (stamp - first) / 1e9 / self.rate, start_wall, first)
                output = self.outputs[connection.topic]
                message = self.reader.deserialize(raw, connection.msgtype)
                output.publisher.publish(self.converter.convert(message, output.cls))
                output.count += 1
                last = stamp
                bar.update()
        return 0.0 if first is None else (last - first) / 1e9

    def _wait_until(self, target: float, start_wall: float, first_stamp: int) -> None:
        """Sleep until ``target`` (monotonic s), publishing /clock ticks meanwhile."""
        while True:
            now = time.monotonic()
            if self.clock_publisher is not None and now >= self._next_tick:
                sec, nanosec = divmod(first_stamp + int((now - start_wall) * self.rate * 1e9), 1_000_000_000)
                self.clock_publisher.publish(Clock(clock=Time(sec=sec, nanosec=nanosec)))
                # Fixed rate; after a stall, tick from now rather than publish a burst.
                self._next_tick = max(self._next_tick + 1.0 / self.clock_hz, now)
            if now >= target:
                return
            wake = min(target, self._next_tick) if self.clock_publisher is not None else target
            time.sleep(max(0.0, wake - now))


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _interrupt(signum: int, frame: object) -> None:
    """The first SIGINT / SIGTERM interrupts playing (KeyboardInterrupt); later ones are ignored, so
    they cannot interrupt the clean-up."""
    for other in STOP_SIGNALS:
        signal.signal(other, signal.SIG_IGN)
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="depth_da_replay", description="Play a ROS 2 bag (MCAP or sqlite3) into the ROS 2 graph with rclpy, "
        "like `ros2 bag play`, for installs without a ROS 2 distro.")
    parser.add_argument("bag", type=Path, help="bag folder (with metadata.yaml) or a single .mcap / .db3 file")
    parser.add_argument("--rate", type=float, default=1.0, help="playback speed factor (default: %(default)s)")
    parser.add_argument("--loop", action="store_true", help="play again from the start until interrupted")
    parser.add_argument("--topics", nargs="+", metavar="TOPIC", help="play only these bag topics (default: all)")
    parser.add_argument("--remap", nargs="+", default=[], metavar="OLD:=NEW", help="publish bag topic OLD as NEW")
    parser.add_argument("--clock", type=float, nargs="?", const=100.0, default=0.0, metavar="HZ",
                        help="publish the bag time on /clock at HZ (default with the flag: 100)")
    parser.add_argument("--wait-for-subscribers", type=int, default=WAIT_FOR_SUBSCRIBERS, metavar="N",
                        help="before playing, wait until every played topic has N subscribers, so that the first "
                             "messages are not lost to discovery (default: %(default)s; 0: play at once, warning "
                             "about topics nobody subscribes to)")
    parser.add_argument("--wait-for-topics", nargs="+", default=[], metavar="TOPIC",
                        help="also wait until each of these topics, which are not played, has a subscriber: e.g. "
                             "the node's /depth/image that a recorder subscribes to once the node publishes it")
    parser.add_argument("--wait-timeout", type=float, default=WAIT_TIMEOUT_S, metavar="S",
                        help="give up waiting for subscribers after S seconds, warn and play (default: %(default)s)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    if args.rate <= 0 or args.clock < 0 or args.wait_for_subscribers < 0:
        parser.error("--rate must be positive, --clock and --wait-for-subscribers non-negative")
    try:
        remap = parse_remaps(args.remap)
    except ValueError as exc:
        parser.error(str(exc))
    if not args.bag.exists():
        parser.error(f"bag {args.bag} does not exist")

    # SIGINT / SIGTERM interrupt the playback (KeyboardInterrupt) and the summary is printed; rclpy's
    # own handlers would instead invalidate the context under the next publish. Installed before
    # rclpy starts, so an early Ctrl-C ends the tool cleanly too.
    apply_default_fastdds_profile()
    for signum in STOP_SIGNALS:  # SIGINT too: a background job starts with it ignored
        signal.signal(signum, _interrupt)
    node = player = None
    try:
        rclpy.init(signal_handler_options=SignalHandlerOptions.NO)
        node = Node("depth_da_replay")
        try:
            player = BagPlayer(node, args.bag, topics=args.topics, remap=remap, rate=args.rate, loop=args.loop,
                               clock_hz=args.clock, progress=not args.no_progress)
        except (ValueError, AnyReaderError, MessageTypeError) as exc:
            LOG.error("%s", exc)
            return 1
        player.wait_for_subscribers(args.wait_for_subscribers, args.wait_timeout, also=args.wait_for_topics)
        summary = player.play()  # a signal while playing ends it normally, with the summary
        print(summary.format(), flush=True)
    except KeyboardInterrupt:  # while waiting for subscribers, or for the last acknowledgements
        LOG.info("interrupted before playing finished")
        return 130
    finally:
        for signum in STOP_SIGNALS:
            signal.signal(signum, signal.SIG_IGN)
        if player is not None:
            player.close()
        with ExitIfStuck():  # every message went out (or playing was stopped) by now
            if node is not None:
                node.destroy_node()
            rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
