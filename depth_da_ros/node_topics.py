"""Names and QoS of ``depth_da_node``: the node's name, its topics (relative, so that a
namespace and remapping re-target them) and the choice of input reliability."""
from __future__ import annotations

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
ADAPTED_TOPIC = "adapted/image"  # only for a model with the style adapter
DIAGNOSTICS_TOPIC = "/diagnostics"
OUTPUT_TOPICS = (DEPTH_TOPIC, DEPTH_INFO_TOPIC, COLORIZED_TOPIC, POINTS_TOPIC, SCAN_TOPIC, ADAPTED_TOPIC, DIAGNOSTICS_TOPIC)

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


# How long after start-up the node looks for other publishers on its output topics (discovery
# takes a moment), and how often within that time.
OUTPUT_CHECK_UNTIL_S = 10.0
OUTPUT_CHECK_PERIOD_S = 2.0


def shared_outputs(own_node: str, publishers: Mapping[str, Iterable[str]], said: set[tuple[str, str]]
                   ) -> list[str]:
    """Warnings for output topics (resolved name -> fully qualified names of their publishers'
    nodes) that another node publishes too, e.g. two depth nodes started without a namespace
    each; pairs already in ``said`` are skipped, new ones added. /diagnostics is shared by design."""
    warnings = []
    for topic, nodes in publishers.items():
        if topic == DIAGNOSTICS_TOPIC:
            continue
        others = sorted({n for n in nodes if n != own_node and (topic, n) not in said})
        if not others:
            continue
        said.update((topic, n) for n in others)
        warnings.append(
            f"{topic} is also published by {', '.join(others)}: subscribers get both streams mixed. Start each "
            "camera's node in its own namespace (-r __ns:=/front, or the launch file's namespace:= or "
            "cameras:=front,rear), which also keeps their parameters apart")
    return warnings
