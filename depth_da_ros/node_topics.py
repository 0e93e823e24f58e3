"""Names and QoS of ``depth_da_node``: the node's name, its topics (relative, so that a
namespace and remapping re-target them) and the choice of input reliability."""
from __future__ import annotations

from typing import Iterable

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
