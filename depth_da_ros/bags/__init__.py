"""ROS 2 bags without a ROS 2 distro: KITTI raw -> bag, replay a bag into the live graph, record
topics to a bag. All bag I/O is ``rosbags`` (MCAP and sqlite3, rosbag2 format version 9, as
Jazzy and later write it); replay and record use rclpy.

    depth_da_kitti2bag DRIVE_DIR [--out BAG] [--storage mcap|sqlite3]    (no rclpy needed)
    depth_da_replay BAG [--rate R] [--loop] [--clock HZ] [--remap OLD:=NEW]
    depth_da_record OUT --topics /depth/image /points [--duration S]

This module holds what the three share and needs no rclpy: topic and frame names of converted
KITTI drives, the typestore, storage names and QoS profiles in rosbags' form.
"""
from __future__ import annotations

from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime
from rosbags.rosbag2 import StoragePlugin
from rosbags.typesys import Stores, get_typestore
from rosbags.typesys.store import Typestore

# Topics and frames of a converted KITTI drive (the names of the widely used kitti2bag tool).
IMAGE_TOPIC = "/kitti/camera_color_left/image_raw"
CAMERA_INFO_TOPIC = "/kitti/camera_color_left/camera_info"
DEPTH_TOPIC = "/kitti/camera_color_left/depth/image"  # kitti2bag --depth-dir: ground truth, REP 118 32FC1
VELO_TOPIC = "/kitti/velo/pointcloud"
TF_STATIC_TOPIC = "/tf_static"
CAMERA_FRAME = "camera_color_left"  # optical frame of KITTI camera 2 (REP 103: x right, y down, z forward)
VELO_FRAME = "velo_link"

BAG_VERSION = 9  # rosbag2 metadata version of Jazzy and Kilted
STORAGES: dict[str, StoragePlugin] = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}
DEFAULT_STORAGE = "mcap"
STREAM_DEPTH = 10  # history depth offered for streams (images, clouds)

_UNSPECIFIED = QosTime(0, 0)  # a zero duration is rmw's "unspecified", i.e. the default (infinite)


def typestore() -> Typestore:
    """The message definitions we write and fall back on: ROS 2 Kilted's."""
    return get_typestore(Stores.ROS2_KILTED)


def offered_qos(transient_local: bool = False, depth: int = STREAM_DEPTH, reliable: bool = True) -> Qos:
    """A publisher's offered QoS in rosbags' form, as stored in bag metadata for ``ros2 bag play``."""
    return Qos(
        history=QosHistory.KEEP_LAST,
        depth=depth,
        reliability=QosReliability.RELIABLE if reliable else QosReliability.BEST_EFFORT,
        durability=QosDurability.TRANSIENT_LOCAL if transient_local else QosDurability.VOLATILE,
        deadline=_UNSPECIFIED,
        lifespan=_UNSPECIFIED,
        liveliness=QosLiveliness.AUTOMATIC,
        liveliness_lease_duration=_UNSPECIFIED,
        avoid_ros_namespace_conventions=False,
    )


# tf2_ros' static broadcaster: reliable, transient local, depth 1 (late joiners get the latest).
TF_STATIC_QOS = offered_qos(transient_local=True, depth=1)
STREAM_QOS = offered_qos()
