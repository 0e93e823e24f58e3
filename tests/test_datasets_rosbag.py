"""data.*.kind rosbag: training frames from ROS 2 bags the tests write themselves (MCAP and sqlite3),
raw and compressed images, REP 118 depth (32FC1 metres, 16UC1 millimetres), camera_info, window,
stride, and the errors that name the bag, topic and frame."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from rosbags.rosbag2 import StoragePlugin, Writer

from depth_da_ros.bags import BAG_VERSION, typestore
from training.datasets import DataSpec, DatasetError, build_dataset

pytest.importorskip("sensor_msgs.msg", reason="image decoding uses the node's conversions (ROS message packages)")

H, W = 12, 16
RATE_NS = 100_000_000  # 10 Hz
T0 = 1_700_000_000 * 1_000_000_000
FX, FY, CX, CY = 20.0, 21.0, 7.5, 5.5


def frame_rgb(i: int) -> np.ndarray:
    """A frame whose pixels tell its index: R = 10 * i, G = column, B = row."""
    rgb = np.zeros((H, W, 3), np.uint8)
    rgb[..., 0] = 10 * i
    rgb[..., 1] = np.arange(W)[None, :]
    rgb[..., 2] = np.arange(H)[:, None]
    return rgb


def frame_depth(i: int) -> np.ndarray:
    depth = np.full((H, W), 1.0 + i, np.float32)
    depth[0, 0] = np.nan
    return depth


class BagBuilder:
    """rosbags messages of one typestore, written with a Writer (what the project's converters do)."""

    def __init__(self) -> None:
        self.store = typestore()
        self.t = self.store.types

    def header(self, stamp: int, frame_id: str = "camera") -> object:
        sec, nanosec = divmod(stamp, 1_000_000_000)
        return self.t["std_msgs/msg/Header"](stamp=self.t["builtin_interfaces/msg/Time"](sec=sec, nanosec=nanosec),
                                             frame_id=frame_id)

    def image(self, stamp: int, pixels: np.ndarray, encoding: str, pad: int = 0, bigendian: bool = False) -> object:
        height, width = pixels.shape[:2]
        rows = np.ascontiguousarray(pixels).reshape(height, -1).view(np.uint8)
        if pad:
            rows = np.hstack([rows, np.full((height, pad), 77, np.uint8)])
        return self.t["sensor_msgs/msg/Image"](header=self.header(stamp), height=height, width=width,
                                               encoding=encoding, is_bigendian=int(bigendian), step=rows.shape[1],
                                               data=np.ascontiguousarray(rows).reshape(-1))

    def compressed(self, stamp: int, rgb: np.ndarray, fmt: str = "png") -> object:
        ok, data = cv2.imencode(f".{fmt}", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        assert ok
        return self.t["sensor_msgs/msg/CompressedImage"](header=self.header(stamp),
                                                         format=f"rgb8; {fmt} compressed bgr8",
                                                         data=data.reshape(-1))

    def camera_info(self, stamp: int, width: int = W, height: int = H, fx: float = FX) -> object:
        roi = self.t["sensor_msgs/msg/RegionOfInterest"](x_offset=0, y_offset=0, height=0, width=0, do_rectify=False)
        k = np.array([fx, 0, CX, 0, FY, CY, 0, 0, 1], np.float64)
        p = np.array([fx, 0, CX, 0, 0, FY, CY, 0, 0, 0, 1, 0], np.float64)
        return self.t["sensor_msgs/msg/CameraInfo"](header=self.header(stamp), height=height, width=width,
                                                    distortion_model="plumb_bob", d=np.zeros(5), k=k,
                                                    r=np.eye(3).reshape(-1),
                                                    p=p, binning_x=0, binning_y=0, roi=roi)

    def write(self, path: Path, messages: list[tuple[str, str, int, object]], storage: str = "mcap") -> Path:
        """``messages``: (topic, msgtype, bag time ns, message), written in bag-time order."""
        plugin = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}[storage]
        with Writer(path, version=BAG_VERSION, storage_plugin=plugin) as writer:
            connections = {}
            for topic, msgtype, stamp, message in sorted(messages, key=lambda m: m[2]):
                if topic not in connections:
                    connections[topic] = writer.add_connection(topic, msgtype, typestore=self.store)
                writer.write(connections[topic], stamp, self.store.serialize_cdr(message, msgtype))
        return path


IMAGE, COMPRESSED, DEPTH, INFO = "/cam/image_raw", "/cam/image_raw/compressed", "/cam/depth", "/cam/camera_info"
IMG_T, CMP_T, INFO_T = "sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage", "sensor_msgs/msg/CameraInfo"


def rgbd_bag(path: Path, frames: int = 6, storage: str = "mcap", depth_encoding: str = "32FC1",
             image_encoding: str = "rgb8") -> Path:
    b = BagBuilder()
    messages = []
    for i in range(frames):
        stamp = T0 + i * RATE_NS
        rgb = frame_rgb(i)
        if image_encoding == "bgr8":
            pixels, pad = rgb[..., ::-1], 3  # padded rows, another channel order
        else:
            pixels, pad = rgb, 0
        messages.append((IMAGE, IMG_T, stamp, b.image(stamp, pixels, image_encoding, pad=pad)))
        messages.append((COMPRESSED, CMP_T, stamp, b.compressed(stamp, rgb)))
        # depth stamped like its image, received 3 ms later (as a driver's second stream)
        depth = frame_depth(i)
        if depth_encoding == "16UC1":
            depth_msg = b.image(stamp, np.nan_to_num(depth * 1000, nan=0).astype("<u2"), "16UC1")
        else:
            depth_msg = b.image(stamp, depth, "32FC1", bigendian=False)
        messages.append((DEPTH, IMG_T, stamp + 3_000_000, depth_msg))
        messages.append((INFO, INFO_T, stamp, b.camera_info(stamp)))
    return b.write(path, messages, storage)


def spec(bag: Path, **kwargs) -> DataSpec:
    return DataSpec(kind="rosbag", root=str(bag), domain="real", **kwargs)


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_rosbag_images_depth_and_camera(tmp_path, storage):
    bag = rgbd_bag(tmp_path / "run", storage=storage)
    dataset = build_dataset(spec(bag, topic=IMAGE, depth_topic=DEPTH, camera_info_topic=INFO), H, W, False, 0)
    assert len(dataset) == 6 and dataset.has_depth
    for i in range(6):
        rgb, depth = dataset.source.load(i)
        np.testing.assert_array_equal(rgb, frame_rgb(i))
        np.testing.assert_array_equal(depth, frame_depth(i))  # metres, NaN kept
    sample = dataset[2]
    assert sample["image"].shape == (3, H, W) and sample["depth"].shape == (1, H, W)
    assert float(sample["depth"][0, 5, 5]) == 3.0
    camera = dataset.source.camera
    assert (camera.width, camera.height, camera.fx, camera.fy, camera.cx, camera.cy) == (W, H, FX, FY, CX, CY)


def test_rosbag_window_stride_limit_and_16uc1_millimetres(tmp_path):
    bag = rgbd_bag(tmp_path / "run", frames=10, depth_encoding="16UC1")
    # bag times: frame i at i * 0.1 s (its depth 3 ms later); window [0.25, 0.85) s holds frames 3..8
    dataset = build_dataset(spec(bag, topic=IMAGE, depth_topic=DEPTH, start=0.25, end=0.85, stride=2), H, W, False, 0)
    indices = [int(dataset.source.load(i)[0][0, 0, 0]) // 10 for i in range(len(dataset))]
    assert indices == [3, 5, 7]
    _, depth = dataset.source.load(0)
    assert depth[5, 5] == pytest.approx(4.0) and np.isnan(depth[0, 0])  # 4000 mm; 0 mm = no measurement
    limited = build_dataset(spec(bag, topic=IMAGE, start=0.25, end=0.85, stride=2, limit=2), H, W, False, 0)
    assert len(limited) == 2 and not limited.has_depth and "depth" not in limited[0]


@pytest.mark.parametrize("topic,encoding", [(COMPRESSED, "rgb8"), (IMAGE, "bgr8")])
def test_rosbag_compressed_and_padded_bgr_images(tmp_path, topic, encoding):
    bag = rgbd_bag(tmp_path / "run", frames=3, image_encoding=encoding)
    dataset = build_dataset(spec(bag, topic=topic), H, W, False, 0)
    for i in range(3):
        np.testing.assert_array_equal(dataset.source.load(i)[0], frame_rgb(i))  # PNG: lossless


def test_rosbag_index_reads_one_message_per_load(tmp_path, monkeypatch):
    """__getitem__ reads the frame's message by its bag time, not by scanning the bag."""
    bag = rgbd_bag(tmp_path / "run", frames=8)
    dataset = build_dataset(spec(bag, topic=IMAGE, depth_topic=DEPTH), H, W, False, 0)
    frames = dataset.source.frames
    reader = frames._reader_here()
    seen = []
    original = reader.messages

    def counting(connections=(), start=None, stop=None):
        for item in original(connections=connections, start=start, stop=stop):
            seen.append(item[0].topic)
            yield item

    monkeypatch.setattr(reader, "messages", counting)
    rgb, depth = frames.load(5)
    assert int(rgb[0, 0, 0]) == 50 and depth[5, 5] == 6.0
    assert sorted(seen) == [DEPTH, IMAGE]


def test_rosbag_dataset_pickles_without_its_reader(tmp_path):
    import pickle

    bag = rgbd_bag(tmp_path / "run", frames=2)
    dataset = build_dataset(spec(bag, topic=IMAGE), H, W, False, 0)
    copy = pickle.loads(pickle.dumps(dataset))  # what a spawned DataLoader worker gets
    np.testing.assert_array_equal(copy.source.load(1)[0], frame_rgb(1))


def test_rosbag_errors_name_bag_topic_and_frame(tmp_path):
    bag = rgbd_bag(tmp_path / "run", frames=3)
    with pytest.raises(DatasetError, match=rf"run has no topic /nope; it has: .*{IMAGE} \(sensor_msgs/msg/Image\)"):
        build_dataset(spec(bag, topic="/nope"), H, W, False, 0)
    with pytest.raises(DatasetError, match=rf"topic {INFO} carries sensor_msgs/msg/CameraInfo, expected"):
        build_dataset(spec(bag, topic=INFO), H, W, False, 0)
    with pytest.raises(DatasetError,
                       match=rf"topic {COMPRESSED} carries .*CompressedImage, expected sensor_msgs/msg/Image"):
        build_dataset(spec(bag, topic=IMAGE, depth_topic=COMPRESSED), H, W, False, 0)
    with pytest.raises(DatasetError, match=rf"{IMAGE} has no message in the window \[5 s, end\).*3 in the whole bag"):
        build_dataset(spec(bag, topic=IMAGE, start=5.0), H, W, False, 0)
    with pytest.raises(DatasetError, match="bag .*missing does not exist"):
        build_dataset(spec(tmp_path / "missing", topic=IMAGE), H, W, False, 0)
    shifted = _shifted_depth_bag(tmp_path / "shifted")
    with pytest.raises(DatasetError, match="no image of .* has a depth image on .* within sync_tolerance 0.01 s"):
        build_dataset(spec(shifted, topic=IMAGE, depth_topic=DEPTH), H, W, False, 0)
    assert len(build_dataset(spec(shifted, topic=IMAGE, depth_topic=DEPTH, sync_tolerance=0.06), H, W, False, 0)) == 3


def _shifted_depth_bag(path: Path) -> Path:
    b = BagBuilder()
    messages = []
    for i in range(3):
        stamp = T0 + i * RATE_NS
        messages.append((IMAGE, IMG_T, stamp, b.image(stamp, frame_rgb(i), "rgb8")))
        messages.append((DEPTH, IMG_T, stamp, b.image(stamp + 50_000_000, frame_depth(i), "32FC1")))  # 50 ms off
    return b.write(path, messages)


def test_rosbag_unreadable_frame_and_wrong_depth_encoding(tmp_path):
    b = BagBuilder()
    broken = b.image(T0 + RATE_NS, frame_rgb(1), "rgb8")
    broken.data = broken.data[:-5]  # truncated pixel data
    messages = [(IMAGE, IMG_T, T0, b.image(T0, frame_rgb(0), "rgb8")), (IMAGE, IMG_T, T0 + RATE_NS, broken)]
    bag = b.write(tmp_path / "broken", messages)
    with pytest.raises(DatasetError,
                       match=rf"broken: frame 1 of {IMAGE} \(bag time .*\) cannot be decoded: .*data has"):
        build_dataset(spec(bag, topic=IMAGE), H, W, False, 0)
    # verify off: the same error comes at the first load of that frame, and frame 0 still loads
    dataset = build_dataset(spec(bag, topic=IMAGE, verify=False), H, W, False, 0)
    dataset[0]
    with pytest.raises(DatasetError, match="frame 1 of"):
        dataset[1]
    rgb8_depth = [(IMAGE, IMG_T, T0, b.image(T0, frame_rgb(0), "rgb8")),
                  (DEPTH, IMG_T, T0, b.image(T0, frame_rgb(0), "rgb8"))]
    bag = b.write(tmp_path / "rgb_depth", rgb8_depth)
    with pytest.raises(DatasetError, match=rf"depth of frame 0 on {DEPTH} .* encoding 'rgb8' is not 32FC1"):
        build_dataset(spec(bag, topic=IMAGE, depth_topic=DEPTH), H, W, False, 0)


def test_rosbag_camera_info_of_another_size_is_refused(tmp_path):
    b = BagBuilder()
    messages = [(IMAGE, IMG_T, T0, b.image(T0, frame_rgb(0), "rgb8")),
                (INFO, INFO_T, T0, b.camera_info(T0, width=2 * W, height=2 * H))]
    bag = b.write(tmp_path / "scaled", messages)
    with pytest.raises(DatasetError, match=rf"is {W}x{H}, but camera_info on {INFO} describes {2 * W}x{2 * H}"):
        build_dataset(spec(bag, topic=IMAGE, camera_info_topic=INFO), H, W, False, 0)


@pytest.mark.parametrize("kwargs,message", [
    ({"kind": "rosbag", "root": "bag"}, "needs topic"),
    ({"kind": "rosbag", "root": "bag", "topic": "/i", "stride": 0}, "stride must be >= 1"),
    ({"kind": "rosbag", "root": "bag", "topic": "/i", "start": 2.0, "end": 1.0}, "must be after start"),
    ({"kind": "rosbag", "root": "bag", "topic": "/i", "start": float("nan")}, "start must be a finite"),
    ({"kind": "image_folder", "root": "x", "topic": "/i"}, "topic is only read by kind 'rosbag'"),
    ({"kind": "kitti_raw", "root": "x", "stride": 2, "end": 3.0}, "stride, end are only read by kind 'rosbag'"),
])
def test_rosbag_spec_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DataSpec(**kwargs)


def test_kitti2bag_depth_dir_gives_an_rgbd_bag_the_dataset_reads(tmp_path):
    """Convert a procedural drive with its ground truth (depth_da_kitti2bag --depth-dir): the rosbag
    dataset reads the depth topic back as the ground truth PNGs' metres (NaN = no measurement)."""
    from depth_da_ros.bags import CAMERA_INFO_TOPIC, DEPTH_TOPIC, IMAGE_TOPIC
    from depth_da_ros.bags.kitti2bag import convert
    from depth_da_ros.depth_io import read_kitti_depth
    from depth_da_ros.procedural.dataset import ProceduralConfig
    from depth_da_ros.procedural.writer import frame_paths, write_domain

    write_domain(tmp_path, ProceduralConfig(domain="real", height=H * 2, width=W * 2), 3, workers=1, progress=False)
    paths = [frame_paths(tmp_path, "real", i) for i in range(3)]
    drive, gt_dir = paths[0]["rgb"].parents[2], paths[0]["depth"].parent
    summary = convert(drive, tmp_path / "rgbd", progress=False, depth_dir=gt_dir)
    assert summary.depth_frames == 3
    dataset = build_dataset(spec(tmp_path / "rgbd", topic=IMAGE_TOPIC, depth_topic=DEPTH_TOPIC,
                                 camera_info_topic=CAMERA_INFO_TOPIC), H, W, False, 0)
    assert len(dataset) == 3 and dataset.source.camera.width == W * 2
    for i in range(3):
        _, depth = dataset.source.load(i)
        np.testing.assert_array_equal(depth, read_kitti_depth(paths[i]["depth"]))
    with pytest.raises(FileNotFoundError, match="depth folder .*absent does not exist"):
        convert(drive, tmp_path / "other", progress=False, depth_dir=tmp_path / "absent")


def test_rosbag_dataset_in_a_forked_dataloader_worker(tmp_path):
    """A forked worker opens its own reader (the parent's file handles are not shared)."""
    import multiprocessing

    from torch.utils.data import DataLoader

    if "fork" not in multiprocessing.get_all_start_methods():
        pytest.skip("no fork start method on this platform")
    bag = rgbd_bag(tmp_path / "run", frames=4)
    dataset = build_dataset(spec(bag, topic=IMAGE, depth_topic=DEPTH), H, W, False, 0)
    loader = DataLoader(dataset, batch_size=2, num_workers=1, multiprocessing_context="fork")
    depths = [batch["depth"][:, 0, 5, 5].tolist() for batch in loader]
    assert depths == [[1.0, 2.0], [3.0, 4.0]]


def test_rosbag_messages_with_one_bag_time_are_told_apart(tmp_path):
    """Two images received in the same nanosecond (e.g. a bag merged from two recorders) are two frames."""
    b = BagBuilder()
    messages = [(IMAGE, IMG_T, T0, b.image(T0 + i, frame_rgb(i), "rgb8")) for i in range(3)]
    bag = b.write(tmp_path / "same_time", messages)
    dataset = build_dataset(spec(bag, topic=IMAGE), H, W, False, 0)
    assert [int(dataset.source.load(i)[0][0, 0, 0]) for i in range(3)] == [0, 10, 20]
