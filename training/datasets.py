"""Training datasets: procedural frames, SYNTHIA-RAND-CITYSCAPES, KITTI raw and plain image folders.

``build_dataset(spec, height, width, augment, seed)`` turns a ``DataSpec`` config section into
a map-style dataset whose samples are dicts that the default collate batches:

* ``"image"``: float32 (3, height, width) in [-1, 1] (``normalization.image_to_network``);
* ``"depth"``: float32 (1, height, width) in metres, inf = sky / beyond range, NaN = no
  measurement; only for datasets with depth (``dataset.has_depth``), never None;
* ``"index"``: the sample's index.

Depth is decoded to metres when a file is read (``depth_io``), resized by nearest neighbour
(interpolating across an object's edge would invent depths that exist nowhere in the scene)
and flipped together with its image.

Determinism. The random draw of sample ``i`` in epoch ``e`` is seeded by
``sample_seed(seed, e, i)`` inside ``torch.random.fork_rng``, so it does not depend on the
number of DataLoader workers, on which worker loads the sample, on the order of loading,
or on where a run resumed, and it leaves the caller's RNG untouched. The epoch lives in a
shared-memory tensor: ``dataset.set_epoch(e)`` reaches the copies held by DataLoader
workers, persistent or not. The trainer calls ``set_epoch(e)`` before it starts iterating
the loader for epoch ``e`` (workers prefetch only once the iteration starts). To resume
mid-epoch it replays the epoch's sampler order (e.g. a sampler generator seeded from
``(seed, epoch)``) and skips the samples already consumed; their augmentation needs no state.

Construction fails fast, naming the file: missing or empty folders (with the pattern that
was searched), an image without its depth or a depth without its image, unreadable or
truncated files, depth that is not 16-bit PNG, image and depth of different sizes. The
per-file checks read every file once (``DataSpec.verify``, default on); turning them off
defers the same errors to the first load of each file.
"""
from __future__ import annotations

import functools
import logging
import struct
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Literal, Protocol, Sequence

import cv2
import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF
from tqdm import tqdm

from depth_da_ros.camera import KITTI_CY, KITTI_HEIGHT, PinholeCamera
from depth_da_ros.geometry import horizon_window
from depth_da_ros.depth_io import (KITTI_SCALE, read_carla_depth, read_kitti_depth, read_rgb, read_synthia_depth,
                                   read_vkitti2_depth)
from depth_da_ros.normalization import image_to_network
from depth_da_ros.procedural.cache import FrameCache
from depth_da_ros.procedural.dataset import RENDERERS, ProceduralConfig, ProceduralDataset
from depth_da_ros.registry import Registry

LOG = logging.getLogger(__name__)

DepthFormat = Literal["none", "synthia", "kitti", "png16", "npy", "vkitti2", "carla"]
Domain = Literal["synthetic", "real"]
DEPTH_FORMATS: tuple[str, ...] = typing.get_args(DepthFormat)
DOMAINS: tuple[str, ...] = typing.get_args(Domain)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
PROGRESS_MIN_FILES = 200  # below this the file check is quick enough to run without a progress bar
KITTI_CAMERAS = {"l": "image_02", "r": "image_03"}
# A drive folder, a date folder, a root of date folders: the first pattern that finds images wins.
KITTI_IMAGE_DIRS = ("image_02/data", "*_drive_*_sync/image_02/data", "*/*_drive_*_sync/image_02/data")
KITTI_IMAGE_SUFFIXES = (".png", ".jpg")  # raw KITTI is PNG; monodepth2-style copies are JPEG
# Virtual KITTI 2: the left camera's folders and each variation's intrinsics file.
VKITTI2_CAMERA = "Camera_0"
VKITTI2_INTRINSICS = "intrinsic.txt"
CARLA_RGB_DIR, CARLA_DEPTH_DIR = "rgb", "depth"  # kind carla: root/rgb/** and root/depth/** (raw depth camera)
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # IHDR colour type -> channels (3 = palette)


class DatasetError(ValueError):
    """A dataset's files are missing, unreadable or inconsistent; the message names the file."""


@dataclass(frozen=True)
class DataSpec:
    """One dataset of a training config.

    ``procedural`` renders frames on the fly (``domain``, ``length``, ``seed``,
    ``sequence_length``; these four are ignored by the file kinds). ``synthia`` reads
    ``root/RGB`` + ``root/Depth/Depth``; ``kitti_raw`` reads images only (the unpaired real
    domain), from ``root`` or from ``split_file`` lines relative to ``root``;
    ``image_folder`` reads every image under ``root`` and, when ``depth_format`` is not
    "none", the depth file at the same relative path under ``depth_root``. ``depth_scale``
    is png16's codes per metre (0 = no measurement). ``road_frames`` reads every image under
    ``root`` of any size and aspect (real, unlabelled road frames, e.g. ../shared/data/real_unlabeled)
    and crops each to the network's aspect around the horizon (``RoadFrameSource``).

    ``rosbag`` reads the ROS 2 bag ``root`` (MCAP or sqlite3 folder): images of ``topic`` (Image of
    any encoding the node accepts, or CompressedImage), optionally REP 118 depth of
    ``depth_topic`` (32FC1 metres / 16UC1 millimetres, paired by header stamp within
    ``sync_tolerance`` s) and the camera of ``camera_info_topic``; the window ``start``..``end``
    seconds from the bag's first message (end 0 = to the end), then every ``stride``-th frame
    (``depth_da_ros.bags.frames``). ``vkitti2`` reads Virtual KITTI 2 (``root``/Scene*/<variation>/
    frames/rgb/Camera_0/rgb_*.jpg + frames/depth/Camera_0/depth_*.png, centimetres; ``variation``
    "" = all, e.g. "clone"). ``carla`` reads ``root``/rgb/** with the raw CARLA depth camera images
    at the same relative paths under ``root``/depth (depth encoded in RGB), a camera of ``fov``
    degrees horizontal field of view (CARLA's default 90).
    """

    kind: str = "procedural"
    root: str = ""
    split_file: str = ""
    depth_root: str = ""
    depth_format: DepthFormat = "none"
    depth_scale: float = 256.0
    domain: Domain = "synthetic"
    length: int = 1000
    seed: int = 0
    sequence_length: int = 1
    limit: int = 0  # use only the first N files / frames (0 = all), for quick runs
    # procedural only: a folder where rendered frames are stored once and reused by every epoch, run
    # and seed ("" = render on the fly); see depth_da_ros.procedural.cache
    cache: str = ""
    verify: bool = True  # read every file once at construction to catch broken files early
    topic: str = ""  # rosbag: image topic (sensor_msgs/Image of any encoding, or CompressedImage); root = the bag
    depth_topic: str = ""  # rosbag: REP 118 depth (32FC1 m / 16UC1 mm) paired by header stamp ("" = none)
    camera_info_topic: str = ""  # rosbag: camera_info; data.real's is recorded as deployment_camera ("" = none)
    stride: int = 1  # rosbag: every N-th frame of the window
    start: float = 0.0  # rosbag: window start, seconds from the bag's first message
    end: float = 0.0  # rosbag: window end in seconds (0 = to the end of the bag)
    sync_tolerance: float = 0.01  # rosbag: max header-stamp difference (s) of an image and its depth
    variation: str = ""  # vkitti2: one variation folder (clone, fog, morning, ...); "" = every variation
    fov: float = 90.0  # carla: the camera's horizontal field of view in degrees
    renderer: int = 1  # procedural: 1 (boxes on a plane, the default) or 2 (procedural.scene_v2)

    def __post_init__(self) -> None:
        if self.kind not in DATASETS:
            raise ValueError(f"unknown dataset kind {self.kind!r}; known: {', '.join(DATASETS.names())}")
        if self.depth_format not in DEPTH_FORMATS:
            raise ValueError(f"depth_format {self.depth_format!r} is not one of {', '.join(DEPTH_FORMATS)}")
        if self.domain not in DOMAINS:
            raise ValueError(f"domain {self.domain!r} is not one of {', '.join(DOMAINS)}")
        if self.length < 1 or self.sequence_length < 1:
            raise ValueError(f"length and sequence_length must be >= 1, got {self.length} and {self.sequence_length}")
        if self.seed < 0 or self.limit < 0:
            raise ValueError(f"seed and limit must be >= 0, got {self.seed} and {self.limit}")
        if not (np.isfinite(self.depth_scale) and self.depth_scale > 0):
            raise ValueError(f"depth_scale must be a positive number of codes per metre, got {self.depth_scale}")
        self._check_source_fields()
        if self.renderer not in RENDERERS:
            raise ValueError(f"renderer {self.renderer!r} is not one of {', '.join(map(str, RENDERERS))}")
        if self.kind == "procedural":
            used = [name for name in ("root", "split_file", "depth_root") if getattr(self, name)]
            if self.depth_format != "none":
                used.append("depth_format")
            if used:
                raise ValueError(f"kind 'procedural' renders frames and reads no files, but {', '.join(used)} "
                                 "is set; choose kind synthia, kitti_raw or image_folder to read files")
            return
        if self.cache:
            raise ValueError(f"cache is only used by kind 'procedural' (rendered frames), not {self.kind!r}")
        if not self.root:
            raise ValueError(f"kind {self.kind!r} needs root (the dataset folder)")
        if self.split_file and self.kind != "kitti_raw":
            raise ValueError(f"split_file is only read by kind 'kitti_raw', not {self.kind!r}")
        if self.kind != "image_folder" and (self.depth_root or self.depth_format != "none"):
            raise ValueError(f"depth_root / depth_format are only read by kind 'image_folder'; kind {self.kind!r} "
                             "has a fixed depth layout (synthia: Depth/Depth, kitti_raw: images only)")
        if bool(self.depth_root) != (self.depth_format != "none"):
            raise ValueError("set depth_root and depth_format together (depth_format 'none' = images only), got "
                             f"depth_root={self.depth_root!r}, depth_format={self.depth_format!r}")


    def _check_source_fields(self) -> None:
        """The fields of one kind only (rosbag's topics and window, vkitti2's variation, carla's fov)."""
        if self.stride < 1:
            raise ValueError(f"stride must be >= 1, got {self.stride}")
        for name in ("start", "end", "sync_tolerance"):
            value = getattr(self, name)
            if not (np.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number of seconds >= 0, got {value}")
        if self.end and self.end <= self.start:
            raise ValueError(f"end ({self.end} s) must be after start ({self.start} s); end 0 = to the end of the bag")
        if not (np.isfinite(self.fov) and 0 < self.fov < 180):
            raise ValueError(f"fov must be a horizontal field of view in degrees in (0, 180), got {self.fov}")
        defaults = DataSpec.__dataclass_fields__
        for kind, names in (("rosbag", _ROSBAG_FIELDS), ("vkitti2", ("variation",)), ("carla", ("fov",)),
                            ("procedural", ("renderer",))):
            changed = [name for name in names if getattr(self, name) != defaults[name].default]
            if changed and self.kind != kind:
                raise ValueError(f"{', '.join(changed)} {'is' if len(changed) == 1 else 'are'} only read by kind "
                                 f"{kind!r}, not {self.kind!r}")
        if self.kind == "rosbag" and not self.topic:
            raise ValueError("kind 'rosbag' needs topic (the image topic, e.g. /camera/image_raw) and root (the bag)")
        if self.variation and ("/" in self.variation or self.variation in (".", "..")):
            raise ValueError(f"variation must be one Virtual KITTI 2 variation folder name (e.g. clone), "
                             f"got {self.variation!r}")


_ROSBAG_FIELDS = ("topic", "depth_topic", "camera_info_topic", "stride", "start", "end", "sync_tolerance")
DATASETS: Registry[Callable[..., TrainingDataset]] = Registry("dataset kind")


def build_dataset(spec: DataSpec, height: int, width: int, augment: bool, seed: int,
                  photometric: bool = False) -> TrainingDataset:
    """The dataset ``spec`` describes, yielding (height, width) samples; ``augment`` adds a random flip,
    ``photometric`` the camera-like image augmentation of ``PhotometricAugment``."""
    if height < 1 or width < 1:
        raise ValueError(f"output size must be positive, got {height}x{width}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    dataset = DATASETS.get(spec.kind)(spec, height, width, augment, seed)
    if photometric:
        dataset.photometric = PhotometricAugment()
    LOG.info("dataset %s: %d samples, %s, %dx%d%s%s", spec.kind, len(dataset), dataset.source.describe(), height,
             width, ", random flip" if augment else "", ", photometric augmentation" if photometric else "")
    return dataset


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """The seed of sample ``index``'s random draw in ``epoch`` (a pure function; all arguments >= 0)."""
    return int(np.random.SeedSequence([seed, epoch, index]).generate_state(1)[0])


class FrameSource(Protocol):
    """Raw frames: RGB uint8 (H, W, 3) and depth float32 metres (H, W) or None."""

    has_depth: bool

    def __len__(self) -> int: ...

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray | None]: ...

    def describe(self) -> str: ...


class PhotometricAugment:
    """Camera-like photometric augmentation of one image; geometry (and so depth) is untouched.

    In the order a camera applies them: colour jitter (brightness, contrast, saturation 0.6-1.4,
    hue +-0.05), then each with probability 0.5: Gaussian blur (5x5, sigma 0.1-1.5 px), Gaussian
    noise (sigma 0-0.03 of full scale), JPEG compression (quality 30-95). Jitter and blur from
    ``torchvision.transforms.v2``, JPEG by OpenCV; the random draws come from torch's default CPU generator
    (``TrainingDataset`` seeds it per sample). The cheap alternative to a style adapter: it
    teaches the depth network to ignore colour, sharpness, noise and compression.
    """

    def __init__(self) -> None:
        self.jitter = v2.ColorJitter(brightness=0.4, contrast=0.4, saturation=0.4, hue=0.05)
        self.blur = v2.RandomApply([v2.GaussianBlur(kernel_size=5, sigma=(0.1, 1.5))], p=0.5)
        self.noise_p, self.noise_sigma = 0.5, 0.03
        self.jpeg_p, self.jpeg_quality = 0.5, (30, 95)

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        """float32 (3, H, W) in [0, 255] -> float32 (3, H, W) in [0, 255]."""
        x = self.blur(self.jitter(image / 255.0))
        if torch.rand(()) < self.noise_p:
            x = x + torch.randn_like(x) * (torch.rand(()) * self.noise_sigma)
        x = (x.clamp(0, 1) * 255).round()
        if torch.rand(()) < self.jpeg_p:  # OpenCV's codec (torchvision's JPEG I/O is deprecated)
            quality = int(torch.randint(self.jpeg_quality[0], self.jpeg_quality[1] + 1, ()))
            hwc = np.ascontiguousarray(x.permute(1, 2, 0).to(torch.uint8).numpy())
            ok, encoded = cv2.imencode(".jpg", hwc, [cv2.IMWRITE_JPEG_QUALITY, quality])
            if not ok:
                raise RuntimeError("OpenCV could not JPEG-encode an augmented image")
            x = torch.from_numpy(cv2.imdecode(encoded, cv2.IMREAD_UNCHANGED)).permute(2, 0, 1).float()
        return x


class TrainingDataset(Dataset):
    """Resizes a source's frames to (height, width) and, with ``augment``, flips image and depth together;
    with ``photometric`` set (a ``PhotometricAugment``), also augments the image's look."""

    def __init__(self, source: FrameSource, height: int, width: int, augment: bool, seed: int) -> None:
        self.source = source
        self.has_depth = source.has_depth
        self.size = [height, width]
        self.augment = augment
        self.seed = seed
        # Shared memory, so set_epoch reaches DataLoader workers' copies (see the module docstring).
        self._epoch = torch.zeros((), dtype=torch.int64).share_memory_()
        self._flip = v2.RandomHorizontalFlip(p=0.5)
        self.photometric: PhotometricAugment | None = None

    def __len__(self) -> int:
        return len(self.source)

    @property
    def epoch(self) -> int:
        return int(self._epoch)

    def set_epoch(self, epoch: int) -> None:
        if epoch < 0:
            raise ValueError(f"epoch must be >= 0, got {epoch}")
        self._epoch.fill_(epoch)

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not 0 <= index < len(self):
            raise IndexError(f"sample {index} out of range 0..{len(self) - 1}")
        rgb, depth = self.source.load(index)
        image = tv_tensors.Image(torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1))).float())
        image = TF.resize(image, self.size, interpolation=v2.InterpolationMode.BILINEAR, antialias=True)
        inputs = [image.clamp_(0, 255)]  # antialias weights sum to 1 only up to rounding; keep within [-1, 1]
        if depth is not None:
            # NEAREST_EXACT samples pixel centres, like the image's bilinear resize (plain NEAREST shifts by up
            # to half a source pixel), so depth edges stay on image edges. resize_image, because resize of a Mask
            # ignores NEAREST_EXACT before torchvision PR 9497; Mask then marks depth for the flip (and any later
            # geometric transform) as nearest-only data.
            depth_t = TF.resize_image(torch.from_numpy(depth)[None], self.size,
                                      interpolation=v2.InterpolationMode.NEAREST_EXACT)
            inputs.append(tv_tensors.Mask(depth_t))
        if self.augment or self.photometric is not None:
            with torch.random.fork_rng(devices=[]):
                # CPU generator only: torch.manual_seed would also reseed (and not restore) CUDA generators.
                torch.random.default_generator.manual_seed(sample_seed(self.seed, self.epoch, index))
                if self.augment:
                    inputs = self._flip(inputs)  # one draw for the whole list: image and depth flip together
                if self.photometric is not None:
                    inputs[0] = tv_tensors.wrap(self.photometric(inputs[0].as_subclass(torch.Tensor)), like=inputs[0])
        sample = {"image": image_to_network(inputs[0].as_subclass(torch.Tensor)), "index": index}
        if depth is not None:
            sample["depth"] = inputs[1].as_subclass(torch.Tensor)
        return sample


@dataclass
class ProceduralSource:
    frames: ProceduralDataset
    has_depth: bool = True
    cache: FrameCache | None = None  # rendered frames on disk, reused across epochs and runs

    def __len__(self) -> int:
        return len(self.frames)

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray | None]:
        if self.cache is not None:
            return self.cache.load(index)
        frame = self.frames[index]
        return frame.rgb, frame.depth

    def describe(self) -> str:
        c = self.frames.config
        where = f", cached in {self.cache.folder}" if self.cache is not None else ""
        return (f"procedural {c.domain} frames (renderer {c.renderer}, seed {c.seed}, sequences of "
                f"{c.sequence_length}{where})")


@dataclass
class FileSource:
    items: list[tuple[Path, Path | None]]  # (image, depth or None)
    read_depth: Callable[[Path], np.ndarray] | None
    where: str

    @property
    def has_depth(self) -> bool:
        return self.read_depth is not None

    def __len__(self) -> int:
        return len(self.items)

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray | None]:
        image_path, depth_path = self.items[index]
        try:  # stored pixel order, EXIF orientation ignored: the rule of every depth reader and of check_files
            rgb = read_rgb(image_path)
        except OSError as exc:
            raise DatasetError(str(exc)) from None
        if self.read_depth is None:
            return rgb, None
        depth = self.read_depth(depth_path)
        if depth.shape != rgb.shape[:2]:
            raise DatasetError(_size_mismatch(image_path, rgb.shape[:2], depth_path, depth.shape))
        return rgb, depth

    def describe(self) -> str:
        return f"{'image + depth' if self.has_depth else 'image'} files from {self.where}"


# -- builders ---------------------------------------------------------------------------------


@DATASETS.register("procedural")
def _build_procedural(spec: DataSpec, height: int, width: int, augment: bool, seed: int) -> TrainingDataset:
    # Rendered at the output size, so the resize is a no-op and depth stays exact.
    config = ProceduralConfig(domain=spec.domain, seed=spec.seed, height=height, width=width,
                              sequence_length=spec.sequence_length, renderer=spec.renderer)
    length = min(spec.length, spec.limit) if spec.limit else spec.length
    frames = ProceduralDataset(config, length)
    cache = FrameCache(frames, spec.cache) if spec.cache else None
    return TrainingDataset(ProceduralSource(frames, cache=cache), height, width, augment, seed)


@DATASETS.register("synthia")
def _build_synthia(spec: DataSpec, height: int, width: int, augment: bool, seed: int) -> TrainingDataset:
    root = _existing_dir(spec.root)
    rgb_dir, depth_dir = root / "RGB", root / "Depth" / "Depth"
    for folder in (rgb_dir, depth_dir):
        if not folder.is_dir():
            raise DatasetError(f"{folder} does not exist: kind 'synthia' expects the SYNTHIA-RAND-CITYSCAPES layout "
                               f"{rgb_dir}/*.png and {depth_dir}/*.png")
    images = _list_files(rgb_dir, (".png",))
    if not images:
        raise DatasetError(f"no images found in {rgb_dir} (looked for **/*.png)")
    items = _pair(images, _list_files(depth_dir, (".png",)), rgb_dir, depth_dir, ".png")
    return _file_dataset(spec, items, "synthia", str(root), height, width, augment, seed)


@DATASETS.register("kitti_raw")
def _build_kitti_raw(spec: DataSpec, height: int, width: int, augment: bool, seed: int) -> TrainingDataset:
    root = _existing_dir(spec.root)
    if spec.split_file:
        images, where = read_kitti_split(spec.split_file, root), f"{spec.split_file} (root {root})"
    else:
        images, where = find_kitti_images(root), str(root)
    return _file_dataset(spec, [(path, None) for path in images], "none", where, height, width, augment, seed)


@DATASETS.register("image_folder")
def _build_image_folder(spec: DataSpec, height: int, width: int, augment: bool, seed: int) -> TrainingDataset:
    root = _existing_dir(spec.root)
    images = _list_files(root, IMAGE_SUFFIXES)
    if not images:
        raise DatasetError(f"no images found under {root} (looked for **/*{{{','.join(IMAGE_SUFFIXES)}}})")
    if spec.depth_format == "none":
        return _file_dataset(spec, [(path, None) for path in images.values()], "none", str(root), height, width,
                             augment, seed)
    depth_root = _existing_dir(spec.depth_root)
    if depth_root.resolve().is_relative_to(root.resolve()):
        raise DatasetError(f"depth_root {depth_root} lies inside root {root}: its files would be read as images")
    suffix = ".npy" if spec.depth_format == "npy" else ".png"
    items = _pair(images, _list_files(depth_root, (suffix,)), root, depth_root, suffix)
    return _file_dataset(spec, items, spec.depth_format, f"{root} + {depth_root}", height, width, augment, seed)


# KITTI's colour-camera frames of every raw date (1242x375, 1241x376, 1238x374, 1226x370, 1224x370) have
# their principal point about 46% down the image (2011_09_26 P_rect_02: cy 172.85 of 375 rows).
KITTI_SIZES = ((1224, 1242), (370, 376))
KITTI_CY_FRACTION = KITTI_CY / KITTI_HEIGHT


def road_frame_cy(width: int, height: int) -> float:
    """The principal point's row as a fraction of the height, estimated from the frame size:
    KITTI's for KITTI's sizes, the image centre (a dash camera's default) for any other."""
    (w0, w1), (h0, h1) = KITTI_SIZES
    return KITTI_CY_FRACTION if w0 <= width <= w1 and h0 <= height <= h1 else 0.5


class RoadFrameSource:
    """Real road frames of any size and aspect, cropped by ``geometry.horizon_window`` to the
    network's aspect with the principal point where the KITTI-like training camera has it, then
    shrunk to the network size (kept in memory: ``len x H x W x 3`` bytes, 19 MB for 207 frames
    at 96x320). Images only (no depth): the unlabelled real domain of the style and distillation
    stages. The focal length is not normalised: frames keep their own field of view."""

    has_depth = False

    def __init__(self, images: list[Path], height: int, width: int, where: str) -> None:
        self.images = images
        self.size = (height, width)
        self.where = where
        self._frames: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.images)

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray | None]:
        frame = self._frames.get(index)
        if frame is None:
            path = self.images[index]
            try:
                rgb = read_rgb(path)
            except OSError as exc:
                raise DatasetError(str(exc)) from None
            height, width = rgb.shape[:2]
            window = horizon_window((height, width), self.size, road_frame_cy(width, height), KITTI_CY_FRACTION)
            crop = rgb[window.y:window.y + window.height, window.x:window.x + window.width]
            frame = cv2.resize(crop, self.size[::-1], interpolation=cv2.INTER_AREA)
            self._frames[index] = frame
        return frame, None

    def describe(self) -> str:
        return (f"road frames from {self.where}, cropped to the network's aspect around the horizon "
                "(principal point: KITTI's for KITTI sizes, else the image centre)")


@DATASETS.register("road_frames")
def _build_road_frames(spec: DataSpec, height: int, width: int, augment: bool, seed: int) -> TrainingDataset:
    root = _existing_dir(spec.root)
    images = list(_list_files(root, IMAGE_SUFFIXES).values())
    if not images:
        raise DatasetError(f"no images found under {root} (looked for **/*{{{','.join(IMAGE_SUFFIXES)}}})")
    if spec.limit and spec.limit < len(images):
        LOG.info("using the first %d of %d files of %s (limit)", spec.limit, len(images), root)
        images = images[: spec.limit]
    if spec.verify:
        check_files([(path, None) for path in images], "none", str(root))
    return TrainingDataset(RoadFrameSource(images, height, width, str(root)), height, width, augment, seed)


@DATASETS.register("vkitti2")
def _build_vkitti2(spec: DataSpec, height: int, width: int, augment: bool, seed: int) -> TrainingDataset:
    root = _existing_dir(spec.root)
    items = find_vkitti2_frames(root, spec.variation)
    where = f"{root} (Virtual KITTI 2{', variation ' + spec.variation if spec.variation else ''})"
    return _file_dataset(spec, items, "vkitti2", where, height, width, augment, seed)


@DATASETS.register("carla")
def _build_carla(spec: DataSpec, height: int, width: int, augment: bool, seed: int) -> TrainingDataset:
    root = _existing_dir(spec.root)
    rgb_dir, depth_dir = root / CARLA_RGB_DIR, root / CARLA_DEPTH_DIR
    for folder in (rgb_dir, depth_dir):
        if not folder.is_dir():
            raise DatasetError(f"{folder} does not exist: kind 'carla' expects {rgb_dir}/**/*.png|jpg and the raw "
                               f"depth camera's images at the same paths under {depth_dir}/ (.png)")
    images = _list_files(rgb_dir, IMAGE_SUFFIXES)
    if not images:
        raise DatasetError(f"no images found under {rgb_dir} (looked for **/*{{{','.join(IMAGE_SUFFIXES)}}})")
    items = _pair(images, _list_files(depth_dir, (".png",)), rgb_dir, depth_dir, ".png")
    return _file_dataset(spec, items, "carla", f"{root} (CARLA)", height, width, augment, seed)


@DATASETS.register("rosbag")
def _build_rosbag(spec: DataSpec, height: int, width: int, augment: bool, seed: int) -> TrainingDataset:
    from depth_da_ros.bags.frames import BagFrames, BagFramesError

    try:
        frames = BagFrames(spec.root, spec.topic, depth_topic=spec.depth_topic,
                           camera_info_topic=spec.camera_info_topic, stride=spec.stride, start=spec.start,
                           end=spec.end, limit=spec.limit, sync_tolerance=spec.sync_tolerance, verify=spec.verify)
    except BagFramesError as exc:
        raise DatasetError(str(exc)) from None
    return TrainingDataset(BagSource(frames), height, width, augment, seed)


@dataclass
class BagSource:
    """Frames of a ROS 2 bag (``depth_da_ros.bags.frames.BagFrames``); ``camera`` from its camera_info."""

    frames: Any  # BagFrames (imported lazily: reading bags needs the ROS message packages)

    @property
    def has_depth(self) -> bool:
        return bool(self.frames.depth_topic)

    @property
    def camera(self) -> PinholeCamera | None:
        return self.frames.camera  # a geometry.Intrinsics: the PinholeCamera of P, with P's translation

    def __len__(self) -> int:
        return len(self.frames)

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray | None]:
        try:
            return self.frames.load(index)
        except ValueError as exc:  # BagFramesError: names the bag, topic and frame
            raise DatasetError(str(exc)) from None

    def describe(self) -> str:
        return self.frames.describe()


def _file_dataset(spec: DataSpec, items: list[tuple[Path, Path | None]], depth_format: str, where: str,
                  height: int, width: int, augment: bool, seed: int) -> TrainingDataset:
    if spec.limit and spec.limit < len(items):
        LOG.info("using the first %d of %d files of %s (limit)", spec.limit, len(items), where)
        items = items[: spec.limit]
    if spec.verify:
        check_files(items, depth_format, where)
    source = FileSource(items, depth_reader(depth_format, spec.depth_scale), where)
    return TrainingDataset(source, height, width, augment, seed)


# -- file discovery ---------------------------------------------------------------------------


def find_kitti_images(root: str | Path) -> list[Path]:
    """image_02 frames of a KITTI raw drive folder, date folder or root of date folders."""
    root = Path(root)
    for pattern in KITTI_IMAGE_DIRS:
        found = sorted(path for suffix in KITTI_IMAGE_SUFFIXES for path in root.glob(f"{pattern}/*{suffix}"))
        if found:
            return found
    looked = ", ".join(f"{root}/{pattern}/*{{png,jpg}}" for pattern in KITTI_IMAGE_DIRS)
    raise DatasetError(f"no KITTI raw images found; looked for {looked}")


def read_kitti_split(split_file: str | Path, root: str | Path) -> list[Path]:
    """Images named by a split file of ``<date>/<drive> <frame> l|r`` lines (monodepth2 format) under ``root``."""
    split_file, root = Path(split_file), Path(root)
    if not split_file.is_file():
        raise DatasetError(f"split file {split_file} does not exist")
    images, missing = [], []
    for number, line in enumerate(split_file.read_text().splitlines(), 1):
        if not line.strip():
            continue
        words = line.split()
        if len(words) != 3 or not words[1].isdigit() or words[2] not in KITTI_CAMERAS:
            raise DatasetError(f"{split_file}:{number}: expected '<date>/<drive> <frame> l|r', got {line!r}")
        folder = root / words[0] / KITTI_CAMERAS[words[2]] / "data"
        name = f"{int(words[1]):010d}"
        path = next((folder / (name + s) for s in KITTI_IMAGE_SUFFIXES if (folder / (name + s)).is_file()), None)
        if path is None:
            missing.append(f"{folder / name}.png ({split_file}:{number})")
        else:
            images.append(path)
    if missing:
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        raise DatasetError(f"split file names frames that do not exist: {missing[0]}{more}")
    if not images:
        raise DatasetError(f"split file {split_file} lists no frames")
    return images


def find_vkitti2_frames(root: str | Path, variation: str = "") -> list[tuple[Path, Path]]:
    """(rgb, depth) pairs of Camera_0 under a Virtual KITTI 2 root (the folder of Scene01, Scene02, ...;
    the rgb and depth archives unpacked into the same root), optionally of one ``variation``."""
    root = Path(root)
    pattern = f"Scene*/{variation or '*'}/frames/rgb/{VKITTI2_CAMERA}/rgb_*.jpg"
    images = sorted(root.glob(pattern))
    if not images:
        found = sorted({p.name for p in root.glob("Scene*/*") if p.is_dir()})
        hint = f"; variations found: {', '.join(found)}" if found else ""
        raise DatasetError(f"no Virtual KITTI 2 images found; looked for {root}/{pattern}{hint}")
    items, missing = [], []
    for image in images:
        frames_dir = image.parents[2]  # .../<variation>/frames
        depth = frames_dir / "depth" / VKITTI2_CAMERA / f"depth_{image.stem[len('rgb_'):]}.png"
        (items if depth.is_file() else missing).append((image, depth))
    if missing:
        more = f" ({len(missing) - 1} more images lack depth)" if len(missing) > 1 else ""
        raise DatasetError(f"image {missing[0][0]} has no depth file {missing[0][1]}{more} (unpack "
                           "vkitti_2.0.3_depth.tar into the same root as the rgb archive)")
    return items


def read_vkitti2_intrinsics(path: str | Path, camera: int = 0) -> dict[int, tuple[float, float, float, float]]:
    """frame -> (fx, fy, cx, cy) of ``camera`` from a Virtual KITTI 2 ``intrinsic.txt``
    (header ``frame cameraID K[0,0] K[1,1] K[0,2] K[1,2]``, one row per frame and camera)."""
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise DatasetError(f"cannot read Virtual KITTI 2 intrinsics {path}: {exc}") from None
    out = {}
    for number, line in enumerate(lines[1:], 2):
        words = line.split()
        if not words:
            continue
        try:
            frame, cam, fx, fy, cx, cy = int(words[0]), int(words[1]), *map(float, words[2:6])
        except (ValueError, TypeError):
            raise DatasetError(f"{path}:{number}: expected 'frame cameraID fx fy cx cy', got {line!r}") from None
        if len(words) != 6:
            raise DatasetError(f"{path}:{number}: expected 'frame cameraID fx fy cx cy', got {line!r}")
        if cam == camera:
            out[frame] = (fx, fy, cx, cy)
    if not out:
        raise DatasetError(f"{path} has no intrinsics of camera {camera}")
    return out


@functools.lru_cache(maxsize=16)  # checkpoints ask at every save; a DataSpec is frozen (hashable)
def source_camera(spec: DataSpec) -> PinholeCamera | None:
    """Native-resolution intrinsics of a file dataset whose files fix them (vkitti2: its
    ``intrinsic.txt`` files, which must agree; carla: ``fov`` and the first image's size), else None.
    Reads only headers and text files."""
    if spec.kind == "vkitti2":
        items = find_vkitti2_frames(spec.root, spec.variation)
        cameras = set()
        for frames_dir in sorted({image.parents[2] for image, _ in items}):
            path = frames_dir.parent / VKITTI2_INTRINSICS
            if not path.is_file():
                LOG.warning("%s is missing (it comes in vkitti_2.0.3_textgt.tar); no training camera is recorded", path)
                return None
            cameras.update(read_vkitti2_intrinsics(path).values())
        if len(cameras) != 1:
            LOG.warning("%s: Virtual KITTI 2 intrinsics differ between frames (%d sets); no training camera is "
                        "recorded", spec.root, len(cameras))
            return None
        with Image.open(items[0][0]) as first:
            width, height = first.size
        return PinholeCamera(width, height, *cameras.pop())
    if spec.kind == "carla":
        images = _list_files(Path(spec.root) / CARLA_RGB_DIR, IMAGE_SUFFIXES)
        if not images:
            return None
        with Image.open(next(iter(images.values()))) as first:
            width, height = first.size
        # CARLA's pinhole: square pixels, principal point at the image centre, f = W / (2 tan(fov / 2)).
        focal = float(width / (2.0 * np.tan(np.radians(spec.fov) / 2.0)))
        return PinholeCamera(width, height, focal, focal, width / 2.0, height / 2.0)
    return None


def _existing_dir(path: str) -> Path:
    folder = Path(path)
    if not folder.is_dir():
        raise DatasetError(f"dataset folder {folder} does not exist")
    return folder


def _list_files(root: Path, suffixes: Sequence[str]) -> dict[str, Path]:
    """Files under ``root`` by relative path without suffix (the key that pairs images and depth)."""
    files: dict[str, Path] = {}
    for path in sorted(root.rglob("*")):
        if path.suffix.lower() in suffixes and path.is_file():
            key = path.relative_to(root).with_suffix("").as_posix()
            if key in files:
                raise DatasetError(f"{files[key]} and {path} differ only in their suffix; keep one of them")
            files[key] = path
    return files


def _pair(images: dict[str, Path], depths: dict[str, Path], image_dir: Path, depth_dir: Path,
          depth_suffix: str) -> list[tuple[Path, Path | None]]:
    missing = [key for key in images if key not in depths]
    if missing:
        more = f" ({len(missing) - 1} more images lack depth)" if len(missing) > 1 else ""
        raise DatasetError(f"image {images[missing[0]]} has no depth file {depth_dir / missing[0]}{depth_suffix}{more}")
    orphans = [key for key in depths if key not in images]
    if orphans:
        more = f" ({len(orphans) - 1} more depth files lack an image)" if len(orphans) > 1 else ""
        raise DatasetError(f"depth file {depths[orphans[0]]} has no image {image_dir / orphans[0]}.*{more}")
    return [(images[key], depths[key]) for key in images]


# -- depth decoding and file checks -----------------------------------------------------------


def depth_reader(depth_format: str, depth_scale: float = 256.0) -> Callable[[Path], np.ndarray] | None:
    """The function that decodes a ``depth_format`` file to float32 metres (None for "none")."""
    readers: dict[str, Callable[[Path], np.ndarray] | None] = {
        "none": None, "synthia": read_synthia_depth, "kitti": read_kitti_depth,
        "png16": functools.partial(read_png16_depth, depth_scale=depth_scale), "npy": read_npy_depth,
        "vkitti2": read_vkitti2_depth, "carla": read_carla_depth}
    return readers[depth_format]


def read_png16_depth(path: str | Path, depth_scale: float) -> np.ndarray:
    """Single-channel 16-bit PNG of ``depth_scale`` codes per metre; 0 = no measurement (NaN)."""
    # read_kitti_depth checks 16-bit / one channel and maps 0 to NaN; rescale its value / 256 (exact in float32).
    return read_kitti_depth(path) * np.float32(KITTI_SCALE / depth_scale)


def read_npy_depth(path: str | Path) -> np.ndarray:
    """(H, W) float array of metres, stored as is (inf = beyond range, NaN = no measurement)."""
    depth = np.load(path)
    if depth.ndim != 2 or not np.issubdtype(depth.dtype, np.floating):
        raise DatasetError(f"depth file {path} holds {depth.dtype} {depth.shape}, expected a float (H, W) array")
    return depth.astype(np.float32, copy=False)


def check_files(items: Sequence[tuple[Path, Path | None]], depth_format: str, where: str) -> None:
    """Read every file once: decodable, not truncated, 16-bit depth PNG, image and depth of one size.
    Sizes are the stored ones (EXIF orientation ignored), as the loaders read the pixels."""
    sizes: set[tuple[int, int]] = set()
    rotated: list[Path] = []
    for image, depth in tqdm(items, desc=f"checking {where}", unit="file", leave=False,
                             disable=len(items) <= PROGRESS_MIN_FILES):
        size = _check_image(image, rotated)
        sizes.add(size)
        if depth is not None:
            depth_size = _check_depth(depth, depth_format)
            if depth_size != size:
                raise DatasetError(_size_mismatch(image, size, depth, depth_size))
    if rotated:
        LOG.warning("%s: %d image(s) carry an EXIF orientation tag (e.g. %s); their pixels are used as stored, "
                    "unrotated, like their depth", where, len(rotated), rotated[0])
    if len(sizes) > 1:
        shown = ", ".join(f"{w}x{h}" for h, w in sorted(sizes)[:5])
        LOG.info("%s: images come in %d sizes (%s%s); every sample is resized", where, len(sizes), shown,
                 ", ..." if len(sizes) > 5 else "")


def _check_image(path: Path, rotated: list[Path] | None = None) -> tuple[int, int]:
    """(height, width) of a decodable image as stored (EXIF orientation ignored); DatasetError naming
    the file otherwise. ``rotated`` collects the files whose EXIF orientation is not 1 (upright)."""
    try:
        with Image.open(path) as image:
            width, height = image.size
            is_png = image.format == "PNG"
            exif = image.info.get("exif")  # read with the header (a PNG's eXIf chunk only if before the pixels)
            image.verify()  # PNG: reads every chunk and checks its CRC, so truncation shows
        if not is_png:
            # verify() checks little in other formats: decode at reduced scale (JPEG DCT scaling), which still
            # reads the whole entropy-coded stream, so a truncated file raises.
            with Image.open(path) as image:
                image.draft("RGB", (max(width // 8, 1), max(height // 8, 1)))
                image.load()
        if rotated is not None and exif:
            tags = Image.Exif()
            tags.load(exif)
            if tags.get(0x0112, 1) != 1:  # 0x0112: Orientation
                rotated.append(path)
    except Image.DecompressionBombError as exc:  # not an OSError: PIL's guard against huge images
        raise DatasetError(f"image {path} is too large to decode safely ({exc}); downscale it, or raise "
                           "PIL.Image.MAX_IMAGE_PIXELS if the size is intended") from None
    except (OSError, SyntaxError, ValueError, struct.error) as exc:
        raise DatasetError(f"unreadable or truncated image {path}: {exc}") from exc
    return height, width


def _check_depth(path: Path, depth_format: str) -> tuple[int, int]:
    if depth_format == "npy":
        try:
            depth = np.load(path, mmap_mode="r")  # header and file length only
        except (OSError, ValueError) as exc:
            raise DatasetError(f"unreadable or truncated depth file {path}: {exc}") from exc
        if depth.ndim != 2 or not np.issubdtype(depth.dtype, np.floating):
            raise DatasetError(f"depth file {path} holds {depth.dtype} {depth.shape}, expected a float (H, W) array")
        return depth.shape
    with open(path, "rb") as file:
        head = file.read(26)  # signature + IHDR: every PNG starts with them
    if len(head) < 26 or head[:8] != _PNG_SIGNATURE or head[12:16] != b"IHDR":
        raise DatasetError(f"depth file {path} is not a PNG")
    bits, channels = head[24], _PNG_CHANNELS.get(head[25], 0)
    if depth_format == "carla":  # 24-bit depth in the R, G, B bytes of an 8-bit colour PNG
        if bits != 8 or channels not in (3, 4):
            raise DatasetError(f"depth image {path} is a {bits}-bit PNG of {channels} channel(s), expected the raw "
                               "CARLA depth camera: 8-bit RGB(A) with depth encoded in R, G, B")
        return _check_image(path)
    if bits != 16:
        raise DatasetError(f"depth image {path} is {bits}-bit, expected a 16-bit PNG ({depth_format} depth)")
    if depth_format in ("kitti", "png16", "vkitti2") and channels != 1:
        raise DatasetError(f"depth image {path} has {channels} channels, expected 1 ({depth_format} depth)")
    return _check_image(path)


def _size_mismatch(image: Path, image_size: tuple[int, int], depth: Path, depth_size: tuple[int, ...]) -> str:
    return (f"image {image} is {image_size[1]}x{image_size[0]} but its depth {depth} is "
            f"{depth_size[1]}x{depth_size[0]}; image and depth must have the same size")
