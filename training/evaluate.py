#!/usr/bin/env python3
"""KITTI depth evaluation with the monodepth2 protocol: seven metrics per image, averaged.

Three sources of (ground truth, prediction) pairs:

    # (a) a split file of '<date>/<drive> <frame> l|r' lines (e.g. the Eigen test split);
    #     ground truth projected from the velodyne scans, predictions from a model
    python training/evaluate.py --kitti-root /data/kitti_raw --split eigen_test_files.txt --model model.onnx

    # (b) a bag recorded from the node (depth/image, 32FC1), against the velodyne scans of the
    #     converted drive (depth_da_kitti2bag), matched by stamp
    python training/evaluate.py --bag depth_run --gt-bag kitti_2011_09_26_drive_0002_sync
    #     or against a depth image topic of the recorded bag (an RGB-D camera's, or kitti2bag --depth-dir's)
    python training/evaluate.py --bag depth_run --gt-bag my_run --gt-depth-topic /camera/depth/image

    # (c) KITTI depth-benchmark PNG ground truth (our procedural real_depth_gt/ layout, or the
    #     official proj_depth/groundtruth folders), with the images of a KITTI raw root;
    #     every ground-truth file, or only the frames of --split
    python training/evaluate.py --gt-root data/procedural/real_depth_gt --kitti-root data/procedural/real \\
        --model depth.pt

Protocol (depth_da_ros.metrics): ground truth in (--min-depth, --max-depth], --crop garg (default)
| eigen | none, predictions clamped to the same range, optional per-image median scaling
(--median-scaling; the ratio's median and spread are reported).
Velodyne ground truth (depth_da_ros.kitti.generate_depth_map) is cached as .npz under --cache-dir,
keyed by the scan's and the calibration files' paths and modification times.

Which depth the velodyne ground truth holds (--gt-depth): ``lidar-x``, the scan point's x (forward
range in the lidar frame), is what monodepth2's export_gt_depth stores (generate_depth_map with
vel_depth=True): the ground truth behind the published Eigen-split tables, and the default for
--split. ``camera-z``, the depth along the camera's optical axis (REP 118's definition, what the
node publishes), is the default for --bag, whose lidar may be mounted any way round. On KITTI the
two differ by the lidar-to-camera offset (about 0.27 m); on our sample frames abs_rel moves by
3-4%. Every printed table, --out-md and --out-json states which was used.

A prediction is never stretched to ground truth of another size: it must have the ground truth's
size, or --gt-align says how they correspond: ``kb-crop`` cuts the prediction to the KITTI depth
benchmark's crop (the ground truth's height from the bottom, its width centred: top = H - h,
left = (W - w) // 2, as the benchmark's 1216x352 crop of 1242x375 frames), ``resize`` resizes the
prediction to the ground truth (only right when both cover the same field of view).

The style adapter: a fused ONNX export contains it when it was exported with --style; a .pt depth
checkpoint gets it from --style-checkpoint, and --adapter-ablation adds a row for each .pt model
without it (the paper's with / without domain adaptation comparison). To compare ONNX models,
pass several: --model adapted=model.onnx --model plain=depth_only.onnx. Each --model is one row.

Output: a markdown table in the paper's column order (printed; --out-md writes it) and, with
--out-json, every row's mean metrics and per-frame metrics.
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import logging
import os
import sys
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

if __package__ in (None, ""):  # run as a script: make the checkout importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from depth_da_ros.atomic import atomic_write_bytes  # noqa: E402
from depth_da_ros.bags import CAMERA_INFO_TOPIC, TF_STATIC_TOPIC, VELO_TOPIC  # noqa: E402
from depth_da_ros.bags.kitti2bag import quaternion_to_rotation  # noqa: E402
from depth_da_ros import depth_io  # noqa: E402
from depth_da_ros.depth_io import read_kitti_depth  # noqa: E402
from depth_da_ros.kitti import (  # noqa: E402
    CAM_TO_CAM_FILE, VELO_TO_CAM_FILE, KittiCalibration, generate_depth_map, project_velodyne)
from depth_da_ros.metrics import (  # noqa: E402
    CROP_KINDS,
    MAX_DEPTH,
    METRIC_NAMES,
    MIN_DEPTH,
    evaluate_frame,
    format_metrics_table,
    strict_json,
)

LOG = logging.getLogger("training.evaluate")
GT_CACHE_VERSION = 1  # bump when generate_depth_map's output changes
GT_DEPTHS = ("lidar-x", "camera-z")  # --gt-depth: which depth the velodyne ground truth holds
GT_ALIGNS = ("same", "kb-crop", "resize")  # --gt-align: how a prediction maps onto its ground truth
KITTI_CAMERAS = {"image_02": 2, "image_03": 3}  # camera folder -> calibration index
CAMERA_LETTERS = {"image_02": "l", "image_03": "r"}  # as split files name them
GT_PATTERN = "**/proj_depth/groundtruth/image_0[23]/*.png"


class EvaluationError(ValueError):
    """Inputs that cannot be evaluated; the message names the file or topic."""


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "depth_da_ros" / "kitti_gt"


# -- ground truth ---------------------------------------------------------------------------------


def _file_key(path: Path) -> list:
    stat = path.stat()
    return [str(path.resolve()), stat.st_mtime_ns, stat.st_size]


def velodyne_gt(calib_dir: Path, velo_path: Path, cam: int, cache_dir: Path | None,
                gt_depth: str = "lidar-x") -> np.ndarray:
    """generate_depth_map (``gt_depth`` lidar-x: vel_depth=True, as monodepth2's export_gt_depth;
    camera-z: depth along the optical axis), cached as .npz keyed by the scan's and calibration
    files' path + mtime and by ``gt_depth``."""
    if gt_depth not in GT_DEPTHS:
        raise ValueError(f"gt_depth must be one of {', '.join(GT_DEPTHS)}, got {gt_depth!r}")
    vel_depth = gt_depth == "lidar-x"
    if cache_dir is None:
        return generate_depth_map(calib_dir, velo_path, cam, vel_depth=vel_depth)
    parts = [GT_CACHE_VERSION, cam, _file_key(velo_path), _file_key(calib_dir / CAM_TO_CAM_FILE),
             _file_key(calib_dir / VELO_TO_CAM_FILE)]
    key = json.dumps(parts + ([gt_depth] if vel_depth else []))  # camera-z keeps the earlier cache entries
    path = cache_dir / f"{hashlib.sha256(key.encode()).hexdigest()[:32]}.npz"
    if path.is_file():
        try:
            with np.load(path) as data:
                return data["depth"]
        except (OSError, ValueError, KeyError) as exc:  # a torn or foreign file: recompute
            LOG.warning("ignoring unreadable ground-truth cache %s (%s)", path, exc)
    depth = generate_depth_map(calib_dir, velo_path, cam, vel_depth=vel_depth)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, depth=depth)
    atomic_write_bytes(path, buffer.getvalue())
    return depth


@dataclass(frozen=True)
class Frame:
    """One evaluation frame of the model modes: its split-style id, image and ground-truth loader."""

    id: str
    image: Path
    load_gt: Callable[[], np.ndarray]


def _find_image(folder: Path, frame: int) -> Path | None:
    from training.datasets import KITTI_IMAGE_SUFFIXES

    return next((p for s in KITTI_IMAGE_SUFFIXES if (p := folder / f"{frame:010d}{s}").is_file()), None)


def _raise_missing(missing: list[str], what: str) -> None:
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise EvaluationError(f"missing {what}: {missing[0]}{more}")


def _gt_index(gt_root: Path) -> dict[tuple[str, str, int], Path]:
    """(drive folder name, image_0X, frame) -> depth-benchmark PNG under ``gt_root`` (any nesting)."""
    if not gt_root.is_dir():
        raise EvaluationError(f"ground-truth root {gt_root} does not exist")
    index = {}
    for path in gt_root.glob(GT_PATTERN):
        if path.stem.isdigit():
            index[(path.parents[3].name, path.parent.name, int(path.stem))] = path
    if not index:
        raise EvaluationError(f"no depth-benchmark ground truth under {gt_root} (looked for {gt_root}/{GT_PATTERN})")
    return index


def split_frames(split_file: Path, kitti_root: Path, gt_root: Path | None, cache_dir: Path | None,
                 gt_depth: str = "lidar-x") -> list[Frame]:
    """Frames of a split file: velodyne ground truth (``gt_depth``, see velodyne_gt), or
    depth-benchmark PNGs with ``gt_root``."""
    from training.datasets import read_kitti_split  # the one split-file reader (checks the images)

    gt_index = _gt_index(gt_root) if gt_root else None
    frames, missing = [], []
    for image in read_kitti_split(split_file, kitti_root):
        camera_dir, drive_dir, frame = image.parent.parent.name, image.parents[2], int(image.stem)
        frame_id = f"{drive_dir.relative_to(kitti_root).as_posix()} {frame} {CAMERA_LETTERS[camera_dir]}"
        if gt_index is not None:
            gt_path = gt_index.get((drive_dir.name, camera_dir, frame))
            if gt_path is None:
                missing.append(f"{drive_dir.name}/proj_depth/groundtruth/{camera_dir}/{frame:010d}.png under "
                               f"{gt_root} (for '{frame_id}')")
                continue
            load = (lambda p=gt_path: read_kitti_depth(p))
        else:
            velo = drive_dir / "velodyne_points" / "data" / f"{frame:010d}.bin"
            calib_dir = drive_dir.parent
            missing += [f"{needed} (for '{frame_id}')" for needed in
                        (velo, calib_dir / CAM_TO_CAM_FILE, calib_dir / VELO_TO_CAM_FILE) if not needed.is_file()]
            load = (lambda c=calib_dir, v=velo, k=KITTI_CAMERAS[camera_dir]: velodyne_gt(c, v, k, cache_dir, gt_depth))
        frames.append(Frame(frame_id, image, load))
    _raise_missing(missing, "ground truth")
    return frames


def gt_root_frames(gt_root: Path, kitti_root: Path) -> list[Frame]:
    """Every depth-benchmark PNG under ``gt_root``, paired with ``<kitti_root>/<date>/<drive>/image_0X/data``."""
    frames, missing = [], []
    for (drive, camera_dir, frame), gt_path in sorted(_gt_index(gt_root).items()):
        date = drive[:10]
        folder = kitti_root / date / drive / camera_dir / "data"
        image = _find_image(folder, frame)
        if image is None:
            missing.append(f"{folder / f'{frame:010d}'}.png (for {gt_path})")
            continue
        frames.append(Frame(f"{date}/{drive} {frame} {CAMERA_LETTERS[camera_dir]}", image,
                            lambda p=gt_path: read_kitti_depth(p)))
    _raise_missing(missing, "images")
    return frames


# -- bags -----------------------------------------------------------------------------------------


def _stamp_ns(header: object) -> int:
    return int(header.stamp.sec) * 1_000_000_000 + int(header.stamp.nanosec)


def decode_depth_image(msg: object) -> np.ndarray:
    """REP 118 depth (32FC1 metres, or 16UC1 millimetres with 0 = invalid) -> float32 metres, NaN invalid
    (``depth_io.decode_depth_image``, which training's rosbag datasets use too)."""
    try:
        return depth_io.decode_depth_image(msg.height, msg.width, msg.encoding, bool(msg.is_bigendian), msg.step,
                                           msg.data)
    except ValueError as exc:
        raise EvaluationError(str(exc)) from None


def static_transform(transforms: Sequence[tuple[str, str, np.ndarray]], target: str, source: str) -> np.ndarray:
    """(4, 4) mapping ``source``-frame coordinates to ``target``-frame coordinates through a chain of
    static transforms ``(parent, child, child -> parent matrix)``."""
    edges: dict[str, list[tuple[str, np.ndarray]]] = {}
    for parent, child, matrix in transforms:
        edges.setdefault(child, []).append((parent, matrix))
        edges.setdefault(parent, []).append((child, np.linalg.inv(matrix)))
    queue, seen = deque([(source, np.eye(4))]), {source}
    while queue:
        frame, to_frame = queue.popleft()
        if frame == target:
            return to_frame
        for neighbour, matrix in edges.get(frame, []):
            if neighbour not in seen:
                seen.add(neighbour)
                queue.append((neighbour, matrix @ to_frame))
    known = ", ".join(sorted(edges)) or "none"
    raise EvaluationError(f"no static transform chain from {source!r} to {target!r} (frames: {known})")


def _transform_matrix(transform: object) -> np.ndarray:
    matrix = np.eye(4)
    q, t = transform.rotation, transform.translation
    matrix[:3, :3] = quaternion_to_rotation(q.x, q.y, q.z, q.w)
    matrix[:3, 3] = (t.x, t.y, t.z)
    return matrix


def _open_bag(path: Path):  # -> AnyReader (imported here: rosbags is needed only for bags)
    from rosbags.highlevel import AnyReader

    from depth_da_ros.bags import typestore

    if not path.exists():
        raise EvaluationError(f"bag {path} does not exist")
    return AnyReader([path], default_typestore=typestore())


def _connections(reader: object, topic: str, bag: Path) -> list:
    found = [c for c in reader.connections if c.topic == topic]
    if not found:
        raise EvaluationError(f"{bag} has no topic {topic} (it has: {', '.join(sorted(reader.topics))})")
    return found


@dataclass
class BagGroundTruth:
    """Velodyne ground truth of a converted drive bag, projected once per scan (kept sparse)."""

    width: int
    height: int
    stamps: np.ndarray  # int64 ns, sorted
    scans: list[tuple[np.ndarray, np.ndarray]]  # flat pixel indices and depths of each scan

    def dense(self, index: int) -> np.ndarray:
        depth = np.zeros(self.height * self.width, dtype=np.float32)
        pixels, values = self.scans[index]
        depth[pixels] = values
        return depth.reshape(self.height, self.width)


def bag_ground_truth(gt_bag: Path, velo_topic: str, info_topic: str, calib_dir: Path | None,
                     progress: bool, gt_depth: str = "camera-z") -> BagGroundTruth:
    """Ground truth from a bag's point clouds; calibration from its camera_info + /tf_static, or from
    the KITTI files in ``calib_dir`` (the exact monodepth2 matrices). ``gt_depth``: camera-z (depth
    along the optical axis) or lidar-x (the point's x in the cloud's frame, monodepth2's vel_depth)."""
    with _open_bag(gt_bag) as reader:
        velo_connections = _connections(reader, velo_topic, gt_bag)
        velo_frame = None
        if calib_dir is not None:
            calib = KittiCalibration.from_dir(calib_dir, cam=2)
            velo_to_image, (width, height) = calib.velo_to_image, calib.image_size
        else:
            info = None
            for connection, _, raw in reader.messages(connections=_connections(reader, info_topic, gt_bag)):
                info = reader.deserialize(raw, connection.msgtype)
                break
            transforms = []
            tf_connections = [c for c in reader.connections if c.topic == TF_STATIC_TOPIC]
            for connection, _, raw in reader.messages(connections=tf_connections):
                for tf in reader.deserialize(raw, connection.msgtype).transforms:
                    transforms.append((tf.header.frame_id, tf.child_frame_id, _transform_matrix(tf.transform)))
            for connection, _, raw in reader.messages(connections=velo_connections):
                velo_frame = reader.deserialize(raw, connection.msgtype).header.frame_id
                break
            if velo_frame is None:
                raise EvaluationError(f"{gt_bag} has no message on {velo_topic}")
            camera_to_velo = static_transform(transforms, info.header.frame_id, velo_frame)
            velo_to_image = np.asarray(info.p, dtype=np.float64).reshape(3, 4) @ camera_to_velo
            width, height = int(info.width), int(info.height)
        stamps, scans = [], []
        total = sum(c.msgcount for c in velo_connections)
        for connection, _, raw in tqdm(reader.messages(connections=velo_connections), total=total,
                                       desc="projecting scans", unit="scan", disable=not progress):
            cloud = reader.deserialize(raw, connection.msgtype)
            depth = project_velodyne(_cloud_xyz(cloud), velo_to_image, width, height,
                                     vel_depth=gt_depth == "lidar-x").reshape(-1)
            pixels = np.flatnonzero(depth)
            stamps.append(_stamp_ns(cloud.header))
            scans.append((pixels.astype(np.int32), depth[pixels]))
    order = np.argsort(stamps, kind="stable")
    return BagGroundTruth(width, height, np.asarray(stamps, dtype=np.int64)[order], [scans[i] for i in order])


def bag_depth_ground_truth(gt_bag: Path, depth_topic: str, progress: bool) -> BagGroundTruth:
    """Ground truth from a bag's REP 118 depth images (an RGB-D camera, or ``depth_da_kitti2bag
    --depth-dir``), by header stamp; pixels that are NaN, +inf or <= 0 are not ground truth."""
    with _open_bag(gt_bag) as reader:
        connections = _connections(reader, depth_topic, gt_bag)
        if any(c.msgtype != "sensor_msgs/msg/Image" for c in connections):
            raise EvaluationError(f"{gt_bag}: {depth_topic} is {connections[0].msgtype}, not sensor_msgs/msg/Image")
        size, stamps, frames = None, [], []
        total = sum(c.msgcount for c in connections)
        for connection, _, raw in tqdm(reader.messages(connections=connections), total=total,
                                       desc=f"reading {depth_topic}", unit="frame", disable=not progress):
            msg = reader.deserialize(raw, connection.msgtype)
            depth = decode_depth_image(msg)
            if size is None:
                size = depth.shape
            elif depth.shape != size:
                raise EvaluationError(f"{gt_bag}: {depth_topic} changes size ({size[1]}x{size[0]} -> "
                                      f"{depth.shape[1]}x{depth.shape[0]})")
            flat = depth.reshape(-1)
            pixels = np.flatnonzero(np.isfinite(flat) & (flat > 0))
            stamps.append(_stamp_ns(msg.header))
            frames.append((pixels.astype(np.int32), flat[pixels]))
    if size is None:
        raise EvaluationError(f"{gt_bag} has no message on {depth_topic}")
    order = np.argsort(stamps, kind="stable")
    return BagGroundTruth(size[1], size[0], np.asarray(stamps, dtype=np.int64)[order], [frames[i] for i in order])


def _cloud_xyz(cloud: object) -> np.ndarray:
    """(N, 3) float64 x, y, z of a PointCloud2 with float32 x, y, z fields."""
    offsets = {f.name: f.offset for f in cloud.fields if f.datatype == 7}  # PointField.FLOAT32
    if not {"x", "y", "z"} <= offsets.keys():
        raise EvaluationError(f"point cloud ({cloud.header.frame_id}) lacks float32 x, y, z fields")
    dtype = np.dtype({"names": ["x", "y", "z"], "formats": [">f4" if cloud.is_bigendian else "<f4"] * 3,
                      "offsets": [offsets["x"], offsets["y"], offsets["z"]], "itemsize": cloud.point_step})
    count = cloud.width * cloud.height
    data = np.asarray(cloud.data, dtype=np.uint8)
    rows = data.reshape(cloud.height, cloud.row_step)[:, : cloud.width * cloud.point_step]
    points = np.ascontiguousarray(rows).view(dtype).reshape(count)
    return np.stack([points["x"], points["y"], points["z"]], axis=1).astype(np.float64)


def find_depth_topic(reader: object, bag: Path) -> str:
    candidates = [t for t, info in reader.topics.items()
                  if info.msgtype == "sensor_msgs/msg/Image" and t.rstrip("/").endswith("depth/image")]
    if len(candidates) != 1:
        raise EvaluationError(f"{bag}: cannot tell the depth topic ({len(candidates)} Image topics end in "
                              f"'depth/image'; topics: {', '.join(sorted(reader.topics))}); pass --depth-topic")
    return candidates[0]


def bag_pairs(bag: Path, depth_topic: str | None, gt: BagGroundTruth, max_stamp_diff_s: float,
              progress: bool) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """(stamp id, ground truth, prediction) for each depth image matched to its scan by stamp."""
    tolerance = int(max_stamp_diff_s * 1e9)
    seen: set[int] = set()
    unmatched = 0
    with _open_bag(bag) as reader:
        topic = depth_topic or find_depth_topic(reader, bag)
        connections = _connections(reader, topic, bag)
        if any(c.msgtype != "sensor_msgs/msg/Image" for c in connections):
            raise EvaluationError(f"{bag}: {topic} is {connections[0].msgtype}, not sensor_msgs/msg/Image")
        total = sum(c.msgcount for c in connections)
        for connection, _, raw in tqdm(reader.messages(connections=connections), total=total,
                                       desc=f"evaluating {topic}", unit="frame", disable=not progress):
            msg = reader.deserialize(raw, connection.msgtype)
            stamp = _stamp_ns(msg.header)
            if stamp in seen:
                LOG.warning("%s: a second depth image stamped %d.%09d; evaluating the first only", bag,
                            *divmod(stamp, 1_000_000_000))
                continue
            seen.add(stamp)
            nearest = int(np.argmin(np.abs(gt.stamps - stamp)))
            if abs(int(gt.stamps[nearest]) - stamp) > tolerance:
                unmatched += 1
                continue
            yield f"{stamp // 1_000_000_000}.{stamp % 1_000_000_000:09d}", gt.dense(nearest), decode_depth_image(msg)
    if unmatched:
        LOG.warning("%d depth image(s) in %s have no scan within %.3f s; not evaluated", unmatched, bag,
                    max_stamp_diff_s)


# -- evaluation -----------------------------------------------------------------------------------


@dataclass
class Row:
    """Per-frame metrics of one method; ``summary`` is their mean (per image, then averaged)."""

    per_frame: list[dict] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def add(self, frame_id: str, gt: np.ndarray, pred: np.ndarray, args: argparse.Namespace) -> None:
        try:
            errors, ratio = evaluate_frame(gt, pred, args.crop, args.min_depth, args.max_depth, args.median_scaling)
        except ValueError as exc:
            LOG.warning("frame %s not evaluated: %s", frame_id, exc)
            self.skipped.append(frame_id)
            return
        entry = {"id": frame_id, **errors}
        if ratio is not None:
            entry["ratio"] = ratio
        self.per_frame.append(entry)

    def summary(self) -> dict[str, float]:
        if not self.per_frame:
            raise EvaluationError("no frame could be evaluated")
        result: dict[str, float] = {name: float(np.mean([f[name] for f in self.per_frame])) for name in METRIC_NAMES}
        result["frames"] = len(self.per_frame)
        ratios = [f["ratio"] for f in self.per_frame if "ratio" in f]
        if ratios:
            median = float(np.median(ratios))
            result["ratio_median"] = median
            result["ratio_std"] = float(np.std(np.array(ratios) / median))
        return result


def _model_specs(items: Sequence[str]) -> list[tuple[str, Path]]:
    specs = []
    for item in items:
        label, sep, path = item.partition("=")
        specs.append((label, Path(path)) if sep else ("", Path(item)))
    return specs


def load_models(args: argparse.Namespace) -> list[tuple[str, object]]:
    """(row label, DepthPipeline) for every --model (and its no-adapter twin with --adapter-ablation)."""
    from depth_da_ros.backends import ModelLoadError  # torch / onnxruntime only when a model is evaluated
    from depth_da_ros.pipeline import DepthPipeline

    models = []
    for label, path in _model_specs(args.model):
        if not path.is_file():
            raise EvaluationError(f"model {path} does not exist")
        is_checkpoint = path.suffix == ".pt"
        style = args.style_checkpoint if is_checkpoint else None
        variants = [style, None] if style is not None and args.adapter_ablation else [style]
        for variant in variants:
            try:
                pipeline = DepthPipeline(path, backend=args.backend, style_checkpoint=variant)
            except ModelLoadError as exc:
                raise EvaluationError(str(exc)) from None
            adapter = "adapter" if pipeline.metadata.with_style_adapter else "no adapter"
            name = label or path.name
            models.append((f"{name} ({adapter})" if len(variants) > 1 or not label else name, pipeline))
            LOG.info("row %r: %s, %s", models[-1][0], path, pipeline.description)
    return models


def align_prediction(pred: np.ndarray, gt_shape: tuple[int, ...], align: str, what: str) -> np.ndarray:
    """``pred`` (H, W) on the ground truth's (h, w) grid, never silently stretched: equal sizes pass;
    otherwise ``align`` "kb-crop" cuts the KITTI depth benchmark's crop (rows H - h .. H, columns
    (W - w) // 2 onwards), "resize" resizes explicitly, "same" refuses with an EvaluationError
    naming ``what`` (the frame) and both sizes."""
    h, w = gt_shape[:2]
    height, width = pred.shape[:2]
    if (height, width) == (h, w):
        return pred
    if align == "kb-crop":
        if height < h or width < w:
            raise EvaluationError(f"{what}: --gt-align kb-crop needs a prediction at least as large as the ground "
                                  f"truth; got {width}x{height} for {w}x{h} ground truth")
        top, left = height - h, (width - w) // 2
        return pred[top:top + h, left:left + w]
    if align == "resize":
        return cv2.resize(pred.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
    raise EvaluationError(f"{what}: the prediction is {width}x{height} but the ground truth {w}x{h}; a resize would "
                          "stretch one onto the other. Pass --gt-align kb-crop if the ground truth is the KITTI depth "
                          "benchmark's crop (bottom rows, centred columns), or --gt-align resize if both cover the "
                          "same view at different resolutions")


def read_rgb(path: Path) -> np.ndarray:
    """The frame as training reads it (depth_io.read_rgb: stored pixel order, EXIF orientation ignored)."""
    try:
        return depth_io.read_rgb(path)
    except OSError as exc:
        raise EvaluationError(str(exc)) from None


def evaluate(args: argparse.Namespace) -> tuple[dict[str, Row], str]:
    """Rows of per-frame metrics, and a one-line description of the ground truth used."""
    progress = not args.no_progress
    if args.bag:
        gt_bag = args.gt_bag or args.bag
        if args.gt_depth_topic:  # an RGB-D recording's depth images
            gt = bag_depth_ground_truth(gt_bag, args.gt_depth_topic, progress)
            described = f"depth images on {args.gt_depth_topic} of {gt_bag}"
        else:
            gt = bag_ground_truth(gt_bag, args.velo_topic, args.camera_info_topic, args.calib_dir, progress,
                                  args.gt_depth)
            calibration = f"calibration {args.calib_dir}" if args.calib_dir else "calibration from camera_info + /tf_static"
            described = f"velodyne scans of {gt_bag} ({calibration}), {describe_gt_depth(args.gt_depth)}"
        row = Row()
        for frame_id, gt_depth, pred in bag_pairs(args.bag, args.depth_topic, gt, args.max_stamp_diff, progress):
            row.add(frame_id, gt_depth, align_prediction(pred, gt_depth.shape, args.gt_align, f"depth image {frame_id}"),
                    args)
        return {args.label or args.bag.name: row}, described

    cache_dir = None if args.no_cache else args.cache_dir
    if args.split:
        frames = split_frames(args.split, args.kitti_root, args.gt_root, cache_dir, args.gt_depth)
        source = (f"{args.gt_root} (depth benchmark)" if args.gt_root else
                  f"velodyne (generate_depth_map), {describe_gt_depth(args.gt_depth)}")
        source += f", frames of {args.split}"
    else:
        frames = gt_root_frames(args.gt_root, args.kitti_root)
        source = f"{args.gt_root} (depth benchmark), every frame"
    models = load_models(args)
    rows = {label: Row() for label, _ in models}
    for frame in tqdm(frames, desc="evaluating", unit="frame", disable=not progress):
        gt_depth = frame.load_gt()
        rgb = read_rgb(frame.image)
        for label, pipeline in models:
            pred = align_prediction(pipeline.predict(rgb), gt_depth.shape, args.gt_align,
                                    f"frame '{frame.id}' ({frame.image}, model {label})")
            rows[label].add(frame.id, gt_depth, pred, args)
    if args.gt_align != "same":
        source += f"; predictions aligned to the ground truth by {args.gt_align}"
    return rows, source


def describe_gt_depth(gt_depth: str) -> str:
    return {"lidar-x": "depth = lidar x (monodepth2 export_gt_depth, vel_depth=True: the published protocol)",
            "camera-z": "depth = camera z (along the optical axis, vel_depth=False)"}[gt_depth]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    data = parser.add_argument_group("frames and ground truth")
    data.add_argument("--kitti-root", type=Path, help="KITTI raw root (<date>/<drive>/image_02/data, calib files)")
    data.add_argument("--split", type=Path, help="split file of '<date>/<drive> <frame> l|r' lines")
    data.add_argument("--gt-root", type=Path, help="depth-benchmark ground truth (<drive>/proj_depth/groundtruth/...)")
    data.add_argument("--cache-dir", type=Path, default=default_cache_dir(),
                      help="velodyne ground-truth cache (default: %(default)s)")
    data.add_argument("--no-cache", action="store_true", help="project the scans every time")
    model = parser.add_argument_group("predictions from a model")
    model.add_argument("--model", action="append", default=[], metavar="[LABEL=]PATH",
                       help="exported .onnx or depth checkpoint .pt; repeat for more rows")
    model.add_argument("--backend", default="auto", help="auto | onnxruntime | tensorrt | torch (default: auto)")
    model.add_argument("--style-checkpoint", type=Path, help="style adapter for .pt depth checkpoints")
    model.add_argument("--adapter-ablation", action="store_true",
                       help="also evaluate each .pt model without the --style-checkpoint adapter")
    bag = parser.add_argument_group("predictions from a recorded bag")
    bag.add_argument("--bag", type=Path, help="bag recorded from the node, with its depth images")
    bag.add_argument("--gt-bag", type=Path, help="converted drive bag with the scans (default: --bag)")
    bag.add_argument("--depth-topic", help="depth image topic (default: the one Image topic ending in depth/image)")
    bag.add_argument("--velo-topic", default=VELO_TOPIC, help="point cloud topic (default: %(default)s)")
    bag.add_argument("--gt-depth-topic", help="ground truth from this REP 118 depth image topic of --gt-bag (an "
                                              "RGB-D recording, or depth_da_kitti2bag --depth-dir) instead of scans")
    bag.add_argument("--camera-info-topic", default=CAMERA_INFO_TOPIC, help="(default: %(default)s)")
    bag.add_argument("--calib-dir", type=Path, help="KITTI date folder: calibration from its files instead")
    bag.add_argument("--max-stamp-diff", type=float, default=0.05, metavar="S",
                     help="largest depth-to-scan stamp difference (default: %(default)s s)")
    bag.add_argument("--label", help="row name for the bag (default: the bag's name)")
    protocol = parser.add_argument_group("protocol and output")
    protocol.add_argument("--crop", choices=CROP_KINDS, default="garg", help="(default: %(default)s)")
    protocol.add_argument("--min-depth", type=float, default=MIN_DEPTH, help="m (default: %(default)s)")
    protocol.add_argument("--max-depth", type=float, default=MAX_DEPTH, help="m (default: %(default)s)")
    protocol.add_argument("--median-scaling", action="store_true", help="per-image median scaling")
    protocol.add_argument("--gt-depth", choices=GT_DEPTHS,
                          help="velodyne ground truth: lidar-x (monodepth2's export_gt_depth, the published tables; "
                               "default with --split) or camera-z (along the optical axis; default with --bag)")
    protocol.add_argument("--gt-align", choices=GT_ALIGNS, default="same",
                          help="prediction vs ground truth of another size: same (refuse, default), kb-crop (KITTI "
                               "depth-benchmark crop: bottom rows, centred columns) or resize")
    protocol.add_argument("--out-md", type=Path, help="write the markdown table here")
    protocol.add_argument("--out-json", type=Path, help="write mean and per-frame metrics here")
    protocol.add_argument("--no-progress", action="store_true", help="no progress bars")
    protocol.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    args = parser.parse_args(argv)

    if args.bag:
        extra = [flag for flag, value in (("--model", args.model), ("--split", args.split), ("--gt-root", args.gt_root))
                 if value]
        if extra:
            parser.error(f"--bag evaluates the recorded depth images; it takes no {', '.join(extra)}")
    else:
        if not args.model:
            parser.error("give --model (with --kitti-root and --split or --gt-root), or --bag")
        if not args.kitti_root:
            parser.error("--model needs --kitti-root (the images)")
        if not (args.split or args.gt_root):
            parser.error("--model needs --split (velodyne ground truth) or --gt-root (PNG ground truth)")
    if not 0 < args.min_depth < args.max_depth:
        parser.error(f"need 0 < --min-depth < --max-depth, got {args.min_depth} and {args.max_depth} (rmse_log "
                     "and abs_rel are undefined for depths of 0 m)")
    if args.gt_depth is not None and args.gt_root and not args.bag:
        parser.error("--gt-depth applies to velodyne ground truth (--split without --gt-root, or --bag); "
                     "--gt-root PNGs hold the depth benchmark's own")
    if args.gt_depth_topic and not args.bag:
        parser.error("--gt-depth-topic reads the ground truth of a recorded bag: give --bag (and --gt-bag)")
    if args.gt_depth_topic and args.gt_depth is not None:
        parser.error("--gt-depth applies to velodyne ground truth, not to --gt-depth-topic's depth images")
    if args.gt_depth is None:
        args.gt_depth = "camera-z" if args.bag else "lidar-x"
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        rows, source = evaluate(args)
        summaries = {label: row.summary() for label, row in rows.items()}
    except (EvaluationError, ValueError, OSError) as exc:  # ValueError: DatasetError, bad calibration
        LOG.error("%s", exc)
        return 1
    protocol = (f"crop {args.crop}, depth ({args.min_depth:g}, {args.max_depth:g}] m, "
                f"{'median scaling' if args.median_scaling else 'metric (no scaling)'}; ground truth: {source}; "
                + ", ".join(f"{label}: {int(s['frames'])} frames" for label, s in summaries.items()))
    table = format_metrics_table(summaries)
    print(table)
    print(protocol)
    outputs: list[tuple[Path, str]] = []
    if args.out_md:
        outputs.append((args.out_md, f"{table}\n\n{protocol}\n"))
    if args.out_json:
        # depth-benchmark PNGs or a bag's depth images: --gt-depth (a velodyne choice) does not apply
        velodyne_free = (bool(args.gt_root) and not args.bag) or bool(args.bag and args.gt_depth_topic)
        report = {"protocol": {"crop": args.crop, "min_depth": args.min_depth, "max_depth": args.max_depth,
                               "median_scaling": args.median_scaling, "ground_truth": source,
                               "gt_depth": None if velodyne_free else args.gt_depth, "gt_align": args.gt_align},
                  "rows": {label: {"metrics": summaries[label], "per_frame": row.per_frame, "skipped": row.skipped}
                           for label, row in rows.items()}}
        outputs.append((args.out_json, json.dumps(strict_json(report), indent=2, allow_nan=False) + "\n"))
    for path, text in outputs:  # atomically: a full disk leaves no torn report, and says so in one line
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(path, text.encode())
        except OSError as exc:
            from depth_da_ros.checkpoint import write_error_reason  # here: it imports torch

            reason, _ = write_error_reason(exc)
            LOG.error("cannot write %s: %s", path, reason)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
