"""Convert a KITTI raw drive to a ROS 2 bag (MCAP by default, sqlite3 on request), with rosbags.

    depth_da_kitti2bag /data/kitti/2011_09_26/2011_09_26_drive_0002_sync --out kitti_0002
    python -m depth_da_ros.bags.kitti2bag DRIVE_DIR --storage sqlite3 --start 10 --frames 50

Input: a drive folder ``<date>_drive_XXXX_sync`` with ``image_02/data/*.png`` and optionally
``velodyne_points/data/*.bin`` and ``timestamps.txt`` files; the calibration
(``calib_cam_to_cam.txt``, ``calib_velo_to_cam.txt``) in its parent date folder (or
``--calib-dir``). Our procedural real domain (``depth_da_render --domains real``) has the same
layout without velodyne, and converts too.

Topics (frame names as in the widely used ROS 1 kitti2bag):

* ``/kitti/camera_color_left/image_raw``: sensor_msgs/Image ``rgb8``, frame ``camera_color_left``;
* ``/kitti/camera_color_left/camera_info``: the rectified camera (the images are rectified): K
  and P from ``P_rect_02``, R = identity, plumb_bob with zero distortion, size ``S_rect_02``;
  same header as its image;
* ``/kitti/velo/pointcloud``: PointCloud2 x, y, z, intensity (float32, the .bin bytes as they
  are), frame ``velo_link``;
* ``/tf_static``: one ``velo_link`` -> ``camera_color_left`` transform (parent velo_link);
* with ``--depth-dir`` (KITTI depth-benchmark PNGs named like the images, e.g. a drive's
  ``proj_depth/groundtruth/image_02`` or our procedural ``real_depth_gt``):
  ``/kitti/camera_color_left/depth/image``, REP 118 ``32FC1`` metres (NaN = no measurement) with
  its image's header, so the bag is an RGB-D recording (training's ``rosbag`` datasets read it
  as ground truth); frames without a depth file get none.

P_rect_02's fourth column. KITTI's P_rect_02 = K [I | t] projects points of the *rectified
camera-0* frame: t (about 6 cm along x, and 2.7 mm along z) is camera 2's offset from camera 0.
ROS's P for a monocular camera is [K | 0] in the camera's own optical frame, and every consumer
(image_geometry, depth_image_proc, RViz, our node) back-projects into the image's frame_id
without that column. So the converter folds t into the tf: ``camera_color_left`` is camera 2's
own optical centre, ``T_cam_velo = [I | t] @ R_rect_00 @ [R|T]``, and camera_info carries
P = [K | 0]. ``P_info @ T_cam_velo`` equals KITTI's ``P_rect_02 @ R_rect_00 @ [R|T]`` (up to
rounding and the re-orthonormalisation of the calibration's rotation, a few 1e-8), so ground
truth projected from the bag matches the monodepth2 protocol.

Stamps: ``image_02/timestamps.txt`` and ``velodyne_points/timestamps.txt`` (each sensor its own),
parsed as integers to the nanosecond (the wall-clock times as written, taken as UTC). A drive
without them gets 10 Hz stamps, frame i at midnight UTC of the drive's date + i / 10 s, with a
warning; velodyne without its own file takes the image stamps. The bag's receive time of every
message is its header stamp, so replay reproduces the recording's timing.

QoS: each topic's offered profile is stored in the bag (metadata.yaml and the MCAP channel
metadata), which ``ros2 bag play`` (Jazzy and later) and ``depth_da_replay`` adopt: reliable and
volatile for the streams, reliable and transient local (depth 1) for ``/tf_static``.
"""
from __future__ import annotations

import argparse
import calendar
import heapq
import logging
import re
import signal
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from rosbags.rosbag2 import Writer
from rosbags.typesys.store import Typestore
from tqdm import tqdm

from .. import depth_io
from ..kitti import KittiCalibration, load_velodyne_points
from . import (
    BAG_VERSION,
    CAMERA_FRAME,
    CAMERA_INFO_TOPIC,
    DEFAULT_STORAGE,
    DEPTH_TOPIC,
    IMAGE_TOPIC,
    STORAGES,
    STREAM_QOS,
    TF_STATIC_QOS,
    TF_STATIC_TOPIC,
    VELO_FRAME,
    VELO_TOPIC,
    typestore,
)

LOG = logging.getLogger(__name__)

IMAGE_DIR = "image_02"
VELO_DIR = "velodyne_points"
TIMESTAMPS_FILE = "timestamps.txt"
SYNTHETIC_PERIOD_NS = 100_000_000  # KITTI's 10 Hz
SYNTHETIC_SOURCE = "synthetic 10 Hz"
_DATE_RE = re.compile(r"(\d{4})_(\d{2})_(\d{2})")
_FALLBACK_DATE = datetime(2000, 1, 1, tzinfo=timezone.utc)  # for a folder whose name has no date
_TIMESTAMP_RE = re.compile(r"^(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?$")


def parse_kitti_timestamp(text: str) -> int:
    """``"2011-09-26 13:02:25.964389445"`` -> integer nanoseconds since the epoch (as UTC).

    Parsed as integers: a float64 of seconds since 1970 keeps only about 0.2 us.
    """
    match = _TIMESTAMP_RE.match(text.strip())
    if not match:
        raise ValueError(f"expected 'YYYY-MM-DD HH:MM:SS.fffffffff', got {text!r}")
    seconds = calendar.timegm(datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S").timetuple())
    fraction = (match.group(2) or "").ljust(9, "0")
    return seconds * 1_000_000_000 + int(fraction)


def read_timestamps(path: Path) -> list[int]:
    """Every line of a KITTI ``timestamps.txt`` in nanoseconds; errors name the file and line."""
    stamps = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            stamps.append(parse_kitti_timestamp(line))
        except ValueError as exc:
            raise ValueError(f"{path}:{number}: {exc}") from None
    return stamps


def synthetic_stamps(drive_dir: Path, frames: list[int]) -> list[int]:
    """10 Hz stamps for ``frames``: midnight UTC of the drive's date (from its folder names) + i / 10 s."""
    match = _DATE_RE.search(drive_dir.name) or _DATE_RE.search(drive_dir.parent.name)
    day = (datetime(*(int(g) for g in match.groups()), tzinfo=timezone.utc) if match else _FALLBACK_DATE)
    base = int(day.timestamp()) * 1_000_000_000
    return [base + frame * SYNTHETIC_PERIOD_NS for frame in frames]


@dataclass(frozen=True)
class KittiDrive:
    """The frames of one drive and their stamps; ``velo`` is None for a drive without scans."""

    drive_dir: Path
    calib_dir: Path
    frames: list[int]  # frame numbers (file names) in order
    images: list[Path]
    image_stamps: list[int]
    velo: list[Path | None] | None  # per frame; None entries for missing scans
    velo_stamps: list[int] | None
    stamp_source: str  # where the image stamps come from, for logs and metadata

    @classmethod
    def open(cls, drive_dir: str | Path, calib_dir: str | Path | None = None, start: int = 0,
             frames: int | None = None) -> KittiDrive:
        """Frames ``start``, ``start + 1``, ... (at most ``frames``) of ``drive_dir``."""
        drive_dir = Path(drive_dir)
        image_dir = drive_dir / IMAGE_DIR / "data"
        if not image_dir.is_dir():
            raise FileNotFoundError(f"no KITTI image folder {image_dir} (expected a drive folder "
                                    "<date>_drive_XXXX_sync with image_02/data/*.png)")
        images = sorted(p for p in image_dir.glob("*.png") if p.stem.isdigit() and int(p.stem) >= start)
        if frames is not None:
            images = images[:frames]
        if not images:
            raise FileNotFoundError(f"no frames numbered {start} or above in {image_dir}")
        numbers = [int(p.stem) for p in images]

        image_stamps = _stamps_for(drive_dir / IMAGE_DIR / TIMESTAMPS_FILE, numbers)
        stamp_source = f"{IMAGE_DIR}/{TIMESTAMPS_FILE}"
        if image_stamps is None:
            LOG.warning("%s has no %s/%s: stamping frames at 10 Hz from midnight UTC of the drive's date",
                        drive_dir, IMAGE_DIR, TIMESTAMPS_FILE)
            image_stamps, stamp_source = synthetic_stamps(drive_dir, numbers), SYNTHETIC_SOURCE

        velo_dir = drive_dir / VELO_DIR / "data"
        velo = velo_stamps = None
        if velo_dir.is_dir():
            velo = [path if path.is_file() else None for path in (velo_dir / f"{n:010d}.bin" for n in numbers)]
            missing = [str(n) for n, path in zip(numbers, velo) if path is None]
            if missing:
                LOG.warning("%s: %d of %d frames have no velodyne scan (frames %s)", velo_dir, len(missing),
                            len(numbers), ", ".join(missing[:10]) + (" ..." if len(missing) > 10 else ""))
            velo_stamps = _stamps_for(drive_dir / VELO_DIR / TIMESTAMPS_FILE, numbers)
            if velo_stamps is None:
                if stamp_source != SYNTHETIC_SOURCE:
                    LOG.warning("%s has no %s/%s: the scans take the image stamps", drive_dir, VELO_DIR,
                                TIMESTAMPS_FILE)
                velo_stamps = image_stamps
        else:
            LOG.warning("%s has no %s: the bag gets no %s", drive_dir, velo_dir.relative_to(drive_dir), VELO_TOPIC)
        return cls(drive_dir, Path(calib_dir) if calib_dir else drive_dir.parent, numbers, images, image_stamps,
                   velo, velo_stamps, stamp_source)


def _stamps_for(path: Path, frames: list[int]) -> list[int] | None:
    """Stamps of ``frames`` (line i = frame i) from ``path``; None when the file is absent."""
    if not path.is_file():
        return None
    stamps = read_timestamps(path)
    if frames[-1] >= len(stamps):
        raise ValueError(f"{path} has {len(stamps)} stamps, but frame {frames[-1]} needs line {frames[-1] + 1}")
    return [stamps[n] for n in frames]


# -- calibration -> ROS geometry -----------------------------------------------------------------


def camera_from_velo(calib: KittiCalibration) -> np.ndarray:
    """(4, 4) velodyne -> camera ``calib.cam``'s own optical frame: P_rect's column folded in.

    P_rect = K [I | t] with K = P_rect[:, :3], so t = K^-1 P_rect[:, 3] and
    ``K @ (camera_from_velo @ X)[:3] == P_rect @ velo_to_rect @ X``.
    """
    K = calib.P_rect[:, :3]
    shift = np.eye(4)
    shift[:3, 3] = np.linalg.solve(K, calib.P_rect[:, 3])
    return shift @ calib.velo_to_rect


def nearest_rotation(matrix: np.ndarray) -> np.ndarray:
    """The rotation closest to ``matrix`` (KITTI's calibrated rotations are orthonormal to ~1e-8)."""
    u, _, vt = np.linalg.svd(matrix)
    rotation = u @ vt
    if np.linalg.det(rotation) < 0:
        u[:, -1] *= -1
        rotation = u @ vt
    return rotation


def rotation_to_quaternion(rotation: np.ndarray) -> tuple[float, float, float, float]:
    """(x, y, z, w) of a rotation matrix, w >= 0 (Shepperd's method: stable for every angle)."""
    m = rotation
    trace = m[0, 0] + m[1, 1] + m[2, 2]
    if trace > 0:
        s = 2.0 * np.sqrt(1.0 + trace)
        q = ((m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s, 0.25 * s)
    elif m[0, 0] > m[1, 1] and m[0, 0] > m[2, 2]:
        s = 2.0 * np.sqrt(1.0 + m[0, 0] - m[1, 1] - m[2, 2])
        q = (0.25 * s, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s, (m[2, 1] - m[1, 2]) / s)
    elif m[1, 1] > m[2, 2]:
        s = 2.0 * np.sqrt(1.0 + m[1, 1] - m[0, 0] - m[2, 2])
        q = ((m[0, 1] + m[1, 0]) / s, 0.25 * s, (m[1, 2] + m[2, 1]) / s, (m[0, 2] - m[2, 0]) / s)
    else:
        s = 2.0 * np.sqrt(1.0 + m[2, 2] - m[0, 0] - m[1, 1])
        q = ((m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, 0.25 * s, (m[1, 0] - m[0, 1]) / s)
    q = np.array(q) / np.linalg.norm(q)
    return tuple(float(v) for v in (q if q[3] >= 0 else -q))


def quaternion_to_rotation(x: float, y: float, z: float, w: float) -> np.ndarray:
    """Rotation matrix of a unit quaternion (x, y, z, w)."""
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])


# -- messages ------------------------------------------------------------------------------------


class _Messages:
    """rosbags message objects of a drive, built with one typestore."""

    def __init__(self, store: Typestore, calib: KittiCalibration) -> None:
        self.store = store
        self.types = store.types
        self.calib = calib

    def header(self, stamp_ns: int, frame_id: str) -> object:
        sec, nanosec = divmod(stamp_ns, 1_000_000_000)
        stamp = self.types["builtin_interfaces/msg/Time"](sec=sec, nanosec=nanosec)
        return self.types["std_msgs/msg/Header"](stamp=stamp, frame_id=frame_id)

    def image(self, rgb: np.ndarray, stamp_ns: int) -> object:
        height, width = rgb.shape[:2]
        return self.types["sensor_msgs/msg/Image"](
            header=self.header(stamp_ns, CAMERA_FRAME), height=height, width=width, encoding="rgb8",
            is_bigendian=0, step=width * 3, data=np.ascontiguousarray(rgb).reshape(-1))

    def camera_info(self, stamp_ns: int) -> object:
        K = self.calib.P_rect[:, :3]
        width, height = self.calib.image_size
        roi = self.types["sensor_msgs/msg/RegionOfInterest"](x_offset=0, y_offset=0, height=0, width=0,
                                                              do_rectify=False)
        return self.types["sensor_msgs/msg/CameraInfo"](
            header=self.header(stamp_ns, CAMERA_FRAME), height=height, width=width,
            distortion_model="plumb_bob", d=np.zeros(5), k=K.reshape(-1).astype(np.float64),
            r=np.eye(3).reshape(-1), p=np.hstack([K, np.zeros((3, 1))]).reshape(-1).astype(np.float64),
            binning_x=0, binning_y=0, roi=roi)

    def depth(self, metres: np.ndarray, stamp_ns: int) -> object:
        """REP 118 32FC1 (little-endian) depth image of ``metres`` (float32 (H, W)), header as the image's."""
        height, width = metres.shape
        data = np.ascontiguousarray(metres, dtype="<f4").reshape(-1).view(np.uint8)
        return self.types["sensor_msgs/msg/Image"](
            header=self.header(stamp_ns, CAMERA_FRAME), height=height, width=width, encoding="32FC1",
            is_bigendian=0, step=width * 4, data=data)

    def point_cloud(self, points: np.ndarray, stamp_ns: int) -> object:
        field = self.types["sensor_msgs/msg/PointField"]
        fields = [field(name=name, offset=4 * i, datatype=field.FLOAT32, count=1)
                  for i, name in enumerate(("x", "y", "z", "intensity"))]
        data = np.ascontiguousarray(points, dtype="<f4").reshape(-1).view(np.uint8)
        return self.types["sensor_msgs/msg/PointCloud2"](
            header=self.header(stamp_ns, VELO_FRAME), height=1, width=len(points), fields=fields,
            is_bigendian=False, point_step=16, row_step=16 * len(points), data=data, is_dense=True)

    def tf_static(self, stamp_ns: int) -> object:
        velo_from_camera = np.linalg.inv(camera_from_velo(self.calib))
        x, y, z, w = rotation_to_quaternion(nearest_rotation(velo_from_camera[:3, :3]))
        t = velo_from_camera[:3, 3]
        transform = self.types["geometry_msgs/msg/Transform"](
            translation=self.types["geometry_msgs/msg/Vector3"](x=float(t[0]), y=float(t[1]), z=float(t[2])),
            rotation=self.types["geometry_msgs/msg/Quaternion"](x=x, y=y, z=z, w=w))
        stamped = self.types["geometry_msgs/msg/TransformStamped"](
            header=self.header(stamp_ns, VELO_FRAME), child_frame_id=CAMERA_FRAME, transform=transform)
        return self.types["tf2_msgs/msg/TFMessage"](transforms=[stamped])


def read_rgb(path: Path) -> np.ndarray:
    """uint8 RGB in stored pixel order, EXIF orientation ignored (the project's one rule, depth_io.read_rgb)."""
    return depth_io.read_rgb(path)


@dataclass(frozen=True)
class ConversionSummary:
    bag: Path
    storage: str
    frames: int
    scans: int
    start_ns: int
    end_ns: int
    stamp_source: str
    depth_frames: int = 0  # depth images written (--depth-dir)


def convert(drive_dir: str | Path, out: str | Path, storage: str = DEFAULT_STORAGE, start: int = 0,
            frames: int | None = None, calib_dir: str | Path | None = None, progress: bool = True,
            depth_dir: str | Path | None = None) -> ConversionSummary:
    """Write frames ``start``.. of ``drive_dir`` to a new bag ``out``; see the module doc for its content."""
    if storage not in STORAGES:
        raise ValueError(f"unknown storage {storage!r}; known: {', '.join(STORAGES)}")
    if depth_dir is not None and not Path(depth_dir).is_dir():
        raise FileNotFoundError(f"depth folder {depth_dir} does not exist")
    drive = KittiDrive.open(drive_dir, calib_dir, start, frames)
    calib = KittiCalibration.from_dir(drive.calib_dir, cam=2)
    store = typestore()
    messages = _Messages(store, calib)

    # Images and scans in stamp order; each stream is sorted already (KITTI stamps increase).
    image_events = (((stamp, 1, IMAGE_TOPIC), i) for i, stamp in enumerate(drive.image_stamps))
    velo_events = (((stamp, 0, VELO_TOPIC), i) for i, (stamp, path) in
                   enumerate(zip(drive.velo_stamps or [], drive.velo or [])) if path is not None)
    events = heapq.merge(image_events, velo_events)
    first = min(drive.image_stamps[0], (drive.velo_stamps or drive.image_stamps)[0])

    out = Path(out)
    writer = Writer(out, version=BAG_VERSION, storage_plugin=STORAGES[storage])
    writer.set_custom_data("depth_da_ros.source", str(drive.drive_dir.resolve()))
    writer.set_custom_data("depth_da_ros.frames", f"{drive.frames[0]}..{drive.frames[-1]}")
    writer.set_custom_data("depth_da_ros.stamps", drive.stamp_source)
    scans = depth_frames = 0
    interrupted = False
    with writer:
        def connect(topic: str, msgtype: str, qos: object) -> object:
            return writer.add_connection(topic, msgtype, typestore=store, offered_qos_profiles=[qos])

        tf_conn = connect(TF_STATIC_TOPIC, "tf2_msgs/msg/TFMessage", TF_STATIC_QOS)
        info_conn = connect(CAMERA_INFO_TOPIC, "sensor_msgs/msg/CameraInfo", STREAM_QOS)
        image_conn = connect(IMAGE_TOPIC, "sensor_msgs/msg/Image", STREAM_QOS)
        velo_conn = connect(VELO_TOPIC, "sensor_msgs/msg/PointCloud2", STREAM_QOS) if drive.velo else None
        depth_conn = connect(DEPTH_TOPIC, "sensor_msgs/msg/Image", STREAM_QOS) if depth_dir is not None else None

        def write(connection: object, stamp: int, message: object) -> None:
            writer.write(connection, stamp, store.serialize_cdr(message, connection.msgtype))

        write(tf_conn, first, messages.tf_static(first))
        total = len(drive.frames) + sum(p is not None for p in drive.velo or [])
        try:
            for (stamp, _, topic), index in tqdm(events, total=total, desc=f"{drive.drive_dir.name} -> {out.name}",
                                                 unit="msg", disable=not progress):
                if topic == VELO_TOPIC:
                    write(velo_conn, stamp, messages.point_cloud(load_velodyne_points(drive.velo[index]), stamp))
                    scans += 1
                    continue
                rgb = read_rgb(drive.images[index])
                if (rgb.shape[1], rgb.shape[0]) != calib.image_size:
                    raise ValueError(f"{drive.images[index]} is {rgb.shape[1]}x{rgb.shape[0]}, but S_rect_02 in "
                                     f"{drive.calib_dir} says {calib.image_size[0]}x{calib.image_size[1]}")
                # camera_info first: a subscriber that pairs by stamp has it when the image arrives.
                write(info_conn, stamp, messages.camera_info(stamp))
                write(image_conn, stamp, messages.image(rgb, stamp))
                if depth_conn is not None:
                    depth_path = Path(depth_dir) / drive.images[index].name
                    if depth_path.is_file():
                        metres = depth_io.read_kitti_depth(depth_path)
                        if metres.shape != rgb.shape[:2]:
                            raise ValueError(f"{depth_path} is {metres.shape[1]}x{metres.shape[0]}, but its image "
                                             f"{drive.images[index]} is {rgb.shape[1]}x{rgb.shape[0]}")
                        write(depth_conn, stamp, messages.depth(metres, stamp))
                        depth_frames += 1
        except KeyboardInterrupt:  # Ctrl-C: close the bag normally, so what was written stays readable
            interrupted = True
    if interrupted:
        raise KeyboardInterrupt
    end = max(drive.image_stamps[-1], (drive.velo_stamps or drive.image_stamps)[-1])
    summary = ConversionSummary(out, storage, len(drive.frames), scans, first, end, drive.stamp_source, depth_frames)
    if depth_dir is not None and depth_frames < len(drive.frames):
        LOG.warning("%s: %d of %d frames have no depth file (%s/<frame>.png)", depth_dir,
                    len(drive.frames) - depth_frames, len(drive.frames), depth_dir)
    LOG.info("wrote %s (%s): %d frames, %d scans, %.2f s of data, stamps from %s", out, storage, summary.frames,
             scans, (end - first) / 1e9, drive.stamp_source)
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="depth_da_kitti2bag", description="Convert a KITTI raw drive (image_02, velodyne, calibration) "
        "to a ROS 2 bag (MCAP or sqlite3).", epilog="Topics: " + ", ".join(
            (IMAGE_TOPIC, CAMERA_INFO_TOPIC, VELO_TOPIC, TF_STATIC_TOPIC)))
    parser.add_argument("drive", type=Path, help="drive folder <date>_drive_XXXX_sync")
    parser.add_argument("--out", type=Path, help="bag folder to create (default: kitti_<drive folder name>)")
    parser.add_argument("--storage", choices=sorted(STORAGES), default=DEFAULT_STORAGE,
                        help="bag storage (default: %(default)s)")
    parser.add_argument("--start", type=int, default=0, help="first frame number (default: %(default)s)")
    parser.add_argument("--frames", type=int, help="number of frames (default: all from --start)")
    parser.add_argument("--calib-dir", type=Path, help="folder with calib_*.txt (default: the drive's parent)")
    parser.add_argument("--depth-dir", type=Path,
                        help=f"KITTI depth-benchmark PNGs named like the images (e.g. proj_depth/groundtruth/image_02):"
                             f" written as {DEPTH_TOPIC} (32FC1 metres)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    if args.start < 0 or (args.frames is not None and args.frames < 1):
        parser.error("--start must be >= 0 and --frames >= 1")
    out = args.out or Path(f"kitti_{args.drive.resolve().name}")
    if out.exists():
        parser.error(f"{out} exists already; choose another --out or remove it")
    signal.signal(signal.SIGTERM, _interrupt)  # as Ctrl-C: the bag is closed on the way out
    try:
        summary = convert(args.drive, out, args.storage, args.start, args.frames, args.calib_dir,
                          progress=not args.no_progress, depth_dir=args.depth_dir)
    except (FileNotFoundError, ValueError, OSError) as exc:
        LOG.error("%s", exc)
        return 1
    except KeyboardInterrupt:
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, signal.SIG_IGN)
        LOG.warning("interrupted: %s holds the messages written so far (a readable, incomplete bag)", out)
        return 130
    depth = f", {summary.depth_frames} depth images" if args.depth_dir else ""
    print(f"{summary.bag}: {summary.frames} frames, {summary.scans} velodyne scans{depth}, "
          f"{(summary.end_ns - summary.start_ns) / 1e9:.2f} s ({summary.storage}; stamps: {summary.stamp_source})")
    return 0


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
