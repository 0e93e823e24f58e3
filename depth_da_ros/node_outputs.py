"""The per-frame outputs of ``depth_da_node`` (ROS messages, but no node): their publishers and
what each frame publishes on them, all with the frame's output header.

- ``depth/image``: 32FC1 metres (REP 118: NaN no estimate, +Inf beyond range), every frame;
- ``depth/confidence``: 32FC1 in [0, 1] (depth_da_ros.confidence), while someone subscribes;
- ``depth/camera_info``: the frame's calibration, when it has one;
- ``depth/colorized``: bgr8 colour map (colormap_* parameters), while someone subscribes;
- ``points``: PointCloud2 in the optical frame, when enabled, calibrated and subscribed;
- ``scan``: LaserScan in the camera's body frame (depth_da_ros.laserscan), when calibrated and
  subscribed; a scan frame that looks wrong is warned about (throttled);
- ``adapted/image``: rgb8, the frame as the depth network saw it, only for a model whose
  export has the style adapter's output, and fetched from it only while someone subscribes.

The colour map, cloud, scan, confidence and adapted frame cost time, so each is built only for
a subscriber; ``wants_confidence`` and ``wants_styled`` tell the node whether to ask the model
for them. The node makes the publishers (``publisher(msg_type, topic)``, with its QoS).
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
from sensor_msgs.msg import CameraInfo, Image, LaserScan, PointCloud2
from std_msgs.msg import Header

from .geometry import Intrinsics, build_point_cloud
from .laserscan import ScanMaker
from .node_frames import ThrottledLog
from .node_parameters import NodeSettings, cloud_stride
from .node_topics import (
    ADAPTED_TOPIC,
    COLORIZED_TOPIC,
    CONFIDENCE_TOPIC,
    DEPTH_INFO_TOPIC,
    DEPTH_TOPIC,
    POINTS_TOPIC,
    SCAN_TOPIC,
)
from .ros_conversions import bgr8_image_cdr, depth_image_cdr, laser_scan_cdr, point_cloud2_cdr, rgb8_image_cdr
from .visualization import colorize_depth, draw_colour_legend

# The outputs of every model (ADAPTED_TOPIC only with the style adapter).
FRAME_TOPICS = (DEPTH_TOPIC, DEPTH_INFO_TOPIC, COLORIZED_TOPIC, POINTS_TOPIC, SCAN_TOPIC, CONFIDENCE_TOPIC)


class FrameOutputs:
    """The output publishers of one node; ``styled``: the model outputs the adapted frame.
    ``publish_depth`` first (the node measures latency when depth is out), then ``publish_rest``."""

    def __init__(self, publisher: Callable[[type, str], Any], styled: bool, log: ThrottledLog) -> None:
        self._depth = publisher(Image, DEPTH_TOPIC)
        self._info = publisher(CameraInfo, DEPTH_INFO_TOPIC)
        self._colorized = publisher(Image, COLORIZED_TOPIC)
        self._points = publisher(PointCloud2, POINTS_TOPIC)
        self._scan = publisher(LaserScan, SCAN_TOPIC)
        self._confidence = publisher(Image, CONFIDENCE_TOPIC)
        self._adapted = publisher(Image, ADAPTED_TOPIC) if styled else None
        self._scans = ScanMaker()
        self._log = log

    @property
    def topics(self) -> tuple[str, ...]:
        """The (relative) topics published."""
        return FRAME_TOPICS + ((ADAPTED_TOPIC,) if self._adapted is not None else ())

    def wants_confidence(self) -> bool:
        return self._confidence.get_subscription_count() > 0

    def wants_styled(self) -> bool:
        """The adapted frame costs a copy and a message: fetched only for a subscriber."""
        return self._adapted is not None and self._adapted.get_subscription_count() > 0

    def publish_depth(self, header: Header, depth: np.ndarray, confidence: np.ndarray | None) -> None:
        self._depth.publish(depth_image_cdr(depth, header))
        if confidence is not None and self.wants_confidence():
            self._confidence.publish(depth_image_cdr(confidence, header))  # 32FC1 in [0, 1]

    def publish_rest(self, header: Header, depth: np.ndarray, rgb: np.ndarray, camera: Intrinsics | None,
                     camera_info: CameraInfo | None, styled: np.ndarray | None, settings: NodeSettings,
                     network_size: tuple[int, int]) -> None:
        """camera_info, colour map, cloud, scan and adapted frame of a frame whose depth is out;
        ``network_size`` (height, width) sets the cloud's automatic decimation."""
        if camera_info is not None:
            self._info.publish(camera_info)
        if self._colorized.get_subscription_count() > 0:
            colors = colorize_depth(depth, settings.colormap_min_depth, settings.colormap_max_depth,
                                    settings.colormap_scale)
            if settings.colormap_legend:
                draw_colour_legend(colors, settings.colormap_min_depth, settings.colormap_max_depth,
                                   settings.colormap_scale)
            self._colorized.publish(bgr8_image_cdr(colors, header))
        if settings.cloud_enabled and camera is not None and self._points.get_subscription_count() > 0:
            stride = cloud_stride(settings.cloud_decimation, depth.shape, network_size)
            cloud = build_point_cloud(depth, camera, rgb=rgb if settings.cloud_rgb else None, decimation=stride,
                                      min_depth=settings.cloud_min_depth, max_depth=settings.cloud_max_depth,
                                      organized=settings.cloud_organized)
            self._points.publish(point_cloud2_cdr(cloud, header))
        if camera is not None and self._scan.get_subscription_count() > 0:
            scan, scan_frame, problem = self._scans.make(
                depth, camera, header.frame_id, band_height=settings.scan_band_height,
                range_min=settings.scan_range_min, range_max=settings.scan_range_max, frame_id=settings.scan_frame_id)
            if problem:
                self._log.warning("scan_frame", problem)
            self._scan.publish(laser_scan_cdr(scan, Header(stamp=header.stamp, frame_id=scan_frame)))
        if styled is not None:
            self._adapted.publish(rgb8_image_cdr(styled, header))
