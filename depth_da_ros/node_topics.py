"""Names and QoS of ``depth_da_node``: the node's name, its topics (relative, so that a
namespace and remapping re-target them) and the choice of input reliability."""
from __future__ import annotations

import threading
from typing import Iterable, Mapping

NODE_NAME = "depth_da_node"

# Topic names, relative so that a namespace and remapping re-target them (DESIGN: ROS).
IMAGE_TOPIC = "image"
COMPRESSED_SUFFIX = "/compressed"  # image_transport's convention: <image topic>/compressed
CAMERA_INFO_TOPIC = "camera_info"
DEPTH_TOPIC = "depth/image"
DEPTH_INFO_TOPIC = "depth/camera_info"
COLORIZED_TOPIC = "depth/colorized"
POINTS_TOPIC = "points"
SCAN_TOPIC = "scan"
CONFIDENCE_TOPIC = "depth/confidence"
ADAPTED_TOPIC = "adapted/image"  # only for a model with the style adapter
DIAGNOSTICS_TOPIC = "/diagnostics"
OUTPUT_TOPICS = (DEPTH_TOPIC, DEPTH_INFO_TOPIC, COLORIZED_TOPIC, POINTS_TOPIC, SCAN_TOPIC, CONFIDENCE_TOPIC, ADAPTED_TOPIC, DIAGNOSTICS_TOPIC)

INPUT_RELIABILITY_CHOICES = ("auto", "reliable", "best_effort")
OUTPUT_RELIABILITY_CHOICES = ("reliable", "best_effort")
RELIABLE, BEST_EFFORT = "reliable", "best_effort"


def choose_reliability(mode: str, offered: Iterable[str]) -> str:
    """The reliability to subscribe with: ``mode`` unless "auto"; then best effort when any
    publisher offers only that (a reliable subscription would match none of its messages),
    otherwise reliable (large images need it; also the choice while no publisher is known)."""
    if mode not in INPUT_RELIABILITY_CHOICES:
        raise ValueError(f"unknown reliability mode {mode!r}; known: {', '.join(INPUT_RELIABILITY_CHOICES)}")
    if mode != "auto":
        return mode
    return BEST_EFFORT if BEST_EFFORT in set(offered) else RELIABLE


def input_incompatible_warning(topic: str, reliability: str, mode: str, policy: str, count: int) -> str:
    """The warning for an input publisher whose QoS (``policy``, ``count`` times so far) does not
    match this node's ``reliability`` subscription, under the ``input_reliability`` ``mode``."""
    fix = ("the node re-subscribes to match it within a second (input_reliability 'auto')" if mode == "auto"
           else "set input_reliability to 'auto' to match the publisher")
    return (f"{topic}: a publisher's QoS is incompatible with this {reliability} subscription (policy {policy}, "
            f"{count} so far), so none of its messages arrive; {fix}")


def output_incompatible_warning(topic: str, reliability: str, policy: str) -> str:
    """The warning for a subscriber whose requested QoS (``policy``) this node's ``reliability``
    publisher on ``topic`` (resolved) does not offer."""
    fix = "set output_reliability to 'reliable'" if reliability == BEST_EFFORT else "the subscriber must relax its QoS"
    return (f"{topic}: a subscriber requests QoS this {reliability} publisher does not offer (policy {policy}), so "
            f"it receives nothing; {fix}")


# How long after start-up the node looks for other publishers on its output topics (discovery
# takes a moment), and how often within that time.
OUTPUT_CHECK_UNTIL_S = 10.0
OUTPUT_CHECK_PERIOD_S = 2.0


def shared_outputs(own_node: str, publishers: Mapping[str, Iterable[str]], said: set[tuple[str, str]]
                   ) -> list[str]:
    """Warnings for output topics (resolved name -> fully qualified names of their publishers'
    nodes, one entry per publisher) that another node publishes too, e.g. two depth nodes started
    without a namespace each (both named ``own_node``: one entry is this node's own publisher, a
    second is the other node); pairs already in ``said`` are skipped, new ones added.
    /diagnostics is shared by design."""
    warnings = []
    for topic, nodes in publishers.items():
        if topic == DIAGNOSTICS_TOPIC:
            continue
        names = list(nodes)
        if own_node in names:
            names.remove(own_node)  # this node's own publisher; another of the same name stays
        others = sorted({n for n in names if (topic, n) not in said})
        if not others:
            continue
        said.update((topic, n) for n in others)
        shown = [f"{n} (another node of this name)" if n == own_node else n for n in others]
        warnings.append(
            f"{topic} is also published by {', '.join(shown)}: subscribers get both streams mixed. Start each "
            "camera's node in its own namespace (-r __ns:=/front, or the launch file's namespace:= or "
            "cameras:=front,rear), which also keeps their parameters apart")
    return warnings


# A publisher that delivered messages and then went silent this long, while another publisher
# appeared on its topic after its last message, is taken for a crashed driver: DDS keeps it in
# the graph until its lease expires (~20 s with Fast DDS), and 'auto' reliability must not keep
# matching its QoS meanwhile. With the node's 0.5 s QoS check, a restarted driver is matched
# within about 1.5-2 s.
SILENT_PUBLISHER_S = 1.0


class PublisherLiveness:
    """Which of a topic's publishers (by GID) still count when choosing the subscription's
    reliability. A publisher counts unless it was heard (delivered a message), has been silent
    for ``silent_s``, and another publisher entered the graph after its last message (its
    replacement). One never heard always counts (it may be incompatible with the current
    subscription, so its messages cannot arrive), and so does a slow camera that is alone.
    Thread-safe; entries of publishers gone from the graph are forgotten (bounded)."""

    def __init__(self, silent_s: float = SILENT_PUBLISHER_S) -> None:
        self.silent_s = silent_s
        self._lock = threading.Lock()
        self._heard: dict[bytes, float] = {}
        self._seen: dict[bytes, float] = {}

    def heard(self, gid: bytes, now: float) -> None:
        with self._lock:
            if gid in self._heard or len(self._heard) < 1024:  # bounded even before a graph check prunes
                self._heard[gid] = now

    def offered(self, publishers: Iterable[tuple[bytes, str]], now: float) -> tuple[list[str], int]:
        """(reliabilities of the publishers that count, how many were left out as crashed)
        from the graph's (gid, reliability) pairs."""
        publishers = list(publishers)
        with self._lock:
            gids = {gid for gid, _ in publishers}
            for table in (self._heard, self._seen):
                for gone in set(table) - gids:
                    del table[gone]
            for gid in gids:
                self._seen.setdefault(gid, now)
            counted, left_out = [], 0
            for gid, reliability in publishers:
                last = self._heard.get(gid)
                crashed = (last is not None and now - last > self.silent_s
                           and any(self._seen[other] > last for other in gids if other != gid))
                if crashed:
                    left_out += 1
                else:
                    counted.append(reliability)
        return counted, left_out
