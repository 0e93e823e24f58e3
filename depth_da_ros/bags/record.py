"""Record topics of the live graph to a ROS 2 bag with rclpy and rosbags: ``ros2 bag record``
for installs without a distro.

    depth_da_record depth_run --topics /depth/image /points --duration 60
    depth_da_record OUT --topics /depth/image --max-messages 100 --storage sqlite3

Each topic is subscribed once a publisher of it appears in the graph (so recording may start
first), with its type discovered from the graph and imported like rosidl_runtime_py's
``get_message``; a topic given with its type (``/depth/image:sensor_msgs/msg/Image``) is subscribed
at once, so a publisher that starts later matches it from its first message on. Subscriptions
are raw: the serialized CDR bytes go into the bag unchanged, with the receive time as bag time
(as rosbag2 does). The bag records the definition of each type
(from rosbags' Kilted typestore, or from the ``.msg`` files of the installed package for types
it does not know) and the publishers' offered QoS, which replay adopts.

QoS (``--qos``): ``auto`` (default) subscribes reliable, unless some publisher only offers best
effort (a reliable subscription would match nothing from it), and transient local when every
publisher is, as rosbag2's recorder does; ``reliable`` / ``best_effort`` force one.

Stops at SIGINT / SIGTERM (Ctrl-C; exit code 0, further signals are ignored while the bag is
closed), after ``--duration`` seconds or after ``--max-messages`` messages (all topics together),
then writes the bag's metadata and prints a summary. Unless Fast DDS is configured otherwise, the
package's Fast DDS profile for large images applies (``depth_da_ros.console``).
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from rclpy.signals import SignalHandlerOptions
from rosbags.interfaces import Connection, Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime
from rosbags.rosbag2 import Writer
from rosbags.typesys import get_types_from_msg
from rosbags.typesys.store import Typestore

from ..console import ExitIfStuck, StopSignals, apply_default_fastdds_profile
from . import BAG_VERSION, DEFAULT_STORAGE, STORAGES, STREAM_DEPTH, typestore
from .replay import MessageTypeError, message_class

LOG = logging.getLogger(__name__)
QOS_MODES = ("auto", "reliable", "best_effort")
DISCOVERY_PERIOD_S = 0.1


def _msg_file(msgtype: str) -> Path:
    """The ``.msg`` file of ``msgtype`` in an installed package (ament prefixes, then this Python's prefix)."""
    package, kind, name = msgtype.split("/")
    prefixes = [p for p in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p] + [sys.prefix]
    for prefix in prefixes:
        path = Path(prefix) / "share" / package / kind / f"{name}.msg"
        if path.is_file():
            return path
    raise MessageTypeError(f"no definition of {msgtype}: {package}/{kind}/{name}.msg is in none of "
                           f"{', '.join(p + '/share' for p in prefixes)}")


def _referenced_types(desc: tuple) -> list[str]:
    """Message type names a rosbags field description refers to (nested, array or sequence)."""
    nodetype, rest = desc
    if nodetype.name == "NAME":
        return [rest]
    if nodetype.name in ("ARRAY", "SEQUENCE"):
        return _referenced_types(rest[0])
    return []


def register_type(store: Typestore, msgtype: str) -> None:
    """Make ``store`` know ``msgtype`` and the types it uses, from installed ``.msg`` files."""
    found: dict = {}
    pending = [msgtype]
    while pending:
        name = pending.pop()
        if name in store.fielddefs or name in found:
            continue
        types = get_types_from_msg(_msg_file(name).read_text(), name)
        found.update(types)
        pending.extend(ref for _, fields in types.values() for _, desc in fields for ref in _referenced_types(desc))
    if found:
        store.register(found)
        LOG.info("registered %s from installed .msg files", ", ".join(sorted(found)))


def _duration(value: object) -> QosTime:
    sec, nsec = divmod(int(value.nanoseconds), 1_000_000_000)
    return QosTime(sec, nsec)


def _policy(enum: type, value: object) -> object:
    return enum.__members__.get(getattr(value, "name", ""), enum.UNKNOWN)


def bag_qos(profile: QoSProfile) -> Qos:
    """An rclpy QoS profile (a publisher's, from the graph) in rosbags' form for the bag metadata."""
    return Qos(
        history=_policy(QosHistory, profile.history), depth=int(profile.depth),
        reliability=_policy(QosReliability, profile.reliability),
        durability=_policy(QosDurability, profile.durability),
        deadline=_duration(profile.deadline), lifespan=_duration(profile.lifespan),
        liveliness=_policy(QosLiveliness, profile.liveliness),
        liveliness_lease_duration=_duration(profile.liveliness_lease_duration),
        avoid_ros_namespace_conventions=bool(profile.avoid_ros_namespace_conventions))


def subscription_qos(offered: Sequence[QoSProfile], mode: str) -> QoSProfile:
    """The QoS to record with, given the publishers' offered profiles (see the module doc)."""
    if mode == "auto":
        reliable = all(p.reliability != ReliabilityPolicy.BEST_EFFORT for p in offered)
    else:
        reliable = mode == "reliable"
    transient = bool(offered) and all(p.durability == DurabilityPolicy.TRANSIENT_LOCAL for p in offered)
    return QoSProfile(depth=STREAM_DEPTH,
                      reliability=ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT,
                      durability=DurabilityPolicy.TRANSIENT_LOCAL if transient else DurabilityPolicy.VOLATILE)


def parse_topic(item: str) -> tuple[str, str]:
    """``"/depth/image"`` -> ("/depth/image", ""); ``"depth/image:sensor_msgs/msg/Image"`` ->
    ("/depth/image", "sensor_msgs/msg/Image"): with its type a topic is subscribed at start-up
    (a colon cannot occur in a ROS topic name)."""
    topic, colon, msgtype = item.partition(":")
    if not topic or (colon and len([part for part in msgtype.split("/") if part]) != 3):
        raise ValueError(f"expected TOPIC or TOPIC:package/msg/Type, got {item!r}")
    return (topic if topic.startswith("/") else "/" + topic), msgtype


@dataclass
class RecordSummary:
    bag: Path
    counts: dict[str, int]
    types: dict[str, str]
    missing: list[str]  # requested topics never seen with a publisher
    wall_s: float

    def format(self) -> str:
        lines = [f"{'topic':<40} {'type':<32} {'messages':>8} {'msg/s':>7}"]
        for topic, count in self.counts.items():
            rate = count / self.wall_s if self.wall_s > 0 else 0.0
            lines.append(f"{topic:<40} {self.types[topic]:<32} {count:>8} {rate:>7.2f}")
        lines += [f"{topic:<40} no publisher appeared" for topic in self.missing]
        lines.append(f"{self.bag}: {sum(self.counts.values())} messages in {self.wall_s:.2f} s")
        return "\n".join(lines)


class Recorder:
    """Subscribes ``topics`` as they appear and writes what arrives to ``writer`` (opened by the caller)."""

    def __init__(self, node: Node, writer: Writer, topics: Sequence[str], qos_mode: str = "auto",
                 max_messages: int | None = None) -> None:
        if qos_mode not in QOS_MODES:
            raise ValueError(f"unknown QoS mode {qos_mode!r}; known: {', '.join(QOS_MODES)}")
        self.node, self.writer, self.qos_mode, self.max_messages = node, writer, qos_mode, max_messages
        typed = dict(parse_topic(t) for t in topics)
        self.topics = list(typed)
        self.store = typestore()
        self.connections: dict[str, Connection] = {}
        self.counts: dict[str, int] = {}
        self.total = 0
        self._failed: set[str] = set()
        self._subscriptions = []
        for topic, msgtype in typed.items():
            if msgtype:  # subscribed now, before any publisher exists
                self._subscribe(topic, msgtype, [])
        node.create_timer(DISCOVERY_PERIOD_S, self.discover)

    @property
    def done(self) -> bool:
        return self.max_messages is not None and self.total >= self.max_messages

    def discover(self) -> None:
        """Subscribe each wanted topic that now has a publisher."""
        graph = dict(self.node.get_topic_names_and_types())
        for topic in self.topics:
            if topic in self.connections or topic in self._failed or topic not in graph:
                continue
            publishers = self.node.get_publishers_info_by_topic(topic)
            if not publishers:
                continue
            types = graph[topic]
            if len(types) > 1:
                LOG.warning("%s has several types (%s); recording %s", topic, ", ".join(types), types[0])
            self._subscribe(topic, types[0], [info.qos_profile for info in publishers])

    def _subscribe(self, topic: str, msgtype: str, offered: Sequence[QoSProfile]) -> None:
        try:
            cls = message_class(msgtype)
            register_type(self.store, msgtype)
        except MessageTypeError as exc:
            LOG.error("cannot record %s: %s", topic, exc)
            self._failed.add(topic)
            return
        qos = subscription_qos(offered, self.qos_mode)
        self.connections[topic] = self.writer.add_connection(
            topic, msgtype, typestore=self.store, offered_qos_profiles=[bag_qos(p) for p in offered])
        self.counts[topic] = 0
        self._subscriptions.append(self.node.create_subscription(
            cls, topic, lambda data, topic=topic: self._write(topic, data), qos, raw=True))
        LOG.info("recording %s (%s, %s, %s%s)", topic, msgtype, qos.reliability.name.lower(),
                 qos.durability.name.lower(), "" if offered else "; subscribed before any publisher")

    def _write(self, topic: str, data: bytes) -> None:
        if self.done:
            return
        self.writer.write(self.connections[topic], self.node.get_clock().now().nanoseconds, data)
        self.counts[topic] += 1
        self.total += 1


def record(node: Node, out: Path, topics: Sequence[str], *, storage: str = DEFAULT_STORAGE, qos_mode: str = "auto",
           duration: float | None = None, max_messages: int | None = None,
           stop: threading.Event | None = None) -> RecordSummary:
    """Record until ``stop`` is set (``main``: SIGINT / SIGTERM), the context shuts down, ``duration``
    or ``max_messages``; the bag is closed (readable) however it ends."""
    writer = Writer(out, version=BAG_VERSION, storage_plugin=STORAGES[storage])
    writer.open()
    recorder = Recorder(node, writer, topics, qos_mode, max_messages)
    start = time.monotonic()
    try:
        while rclpy.ok(context=node.context) and not recorder.done and not (stop is not None and stop.is_set()):
            if duration is not None and time.monotonic() - start >= duration:
                break
            rclpy.spin_once(node, timeout_sec=DISCOVERY_PERIOD_S)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        writer.close()
    wall_s = time.monotonic() - start
    missing = [t for t in recorder.topics if t not in recorder.connections]
    types = {topic: connection.msgtype for topic, connection in recorder.connections.items()}
    return RecordSummary(out, dict(recorder.counts), types, missing, wall_s)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="depth_da_record", description="Record ROS 2 topics to a bag (MCAP or sqlite3) with rclpy, like "
        "`ros2 bag record`, for installs without a ROS 2 distro.")
    parser.add_argument("out", type=Path, help="bag folder to create")
    parser.add_argument("--topics", nargs="+", required=True, metavar="TOPIC[:TYPE]",
                        help="topics to record; with a type (e.g. /depth/image:sensor_msgs/msg/Image) subscribed "
                             "at once, before a publisher appears, reliable unless --qos best_effort (a publisher "
                             "started later then knows this subscription from the start and sends it its first "
                             "messages); without one, once a publisher appears, with its type and QoS")
    parser.add_argument("--storage", choices=sorted(STORAGES), default=DEFAULT_STORAGE,
                        help="bag storage (default: %(default)s)")
    parser.add_argument("--qos", choices=QOS_MODES, default="auto",
                        help="subscription reliability; auto matches the publishers (default: %(default)s)")
    parser.add_argument("--duration", type=float, metavar="S", help="stop after S seconds")
    parser.add_argument("--max-messages", type=int, metavar="N", help="stop after N messages (all topics)")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    if (args.duration is not None and args.duration <= 0) or (args.max_messages is not None and args.max_messages < 1):
        parser.error("--duration and --max-messages must be positive")
    if args.out.exists():
        parser.error(f"{args.out} exists already; choose another name or remove it")
    try:
        [parse_topic(t) for t in args.topics]
    except ValueError as exc:
        parser.error(str(exc))

    apply_default_fastdds_profile()
    # SIGINT / SIGTERM end the recording normally (exit code 0, as `ros2 bag record`): our handlers
    # set a flag the loop polls; rclpy's would shut the context down under a running callback.
    with StopSignals(restore=False) as signals:
        rclpy.init(signal_handler_options=SignalHandlerOptions.NO)
        node = Node("depth_da_record")
        try:
            summary = record(node, args.out, args.topics, storage=args.storage, qos_mode=args.qos,
                             duration=args.duration, max_messages=args.max_messages, stop=signals.requested)
            if signals.signal_name:
                LOG.info("stopped by %s", signals.signal_name)
            print(summary.format(), flush=True)
        finally:
            with ExitIfStuck():  # the bag is closed and the summary printed by now
                node.destroy_node()
                rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
