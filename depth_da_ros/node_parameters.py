"""The parameters of ``depth_da_node``: declared once (``PARAMETERS``: type, default, range,
description), validated into ``NodeSettings`` without ROS, and where the bundled model is found."""
from __future__ import annotations

import difflib
import math
import re
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from .geometry import ASPECT_POLICIES, BEYOND_RANGE_FRACTION, SCALE_MODES
from .ground import ROAD_BAND_M, ROAD_RATIO_RANGE
from .node_topics import INPUT_RELIABILITY_CHOICES, OUTPUT_RELIABILITY_CHOICES, RELIABLE
from .visualization import COLORMAP_SCALES, DEFAULT_MAX_DEPTH, DEFAULT_MIN_DEPTH, DEFAULT_SCALE

# Where a bundled model is looked for, relative to the package's share directory.
PACKAGE = "depth_da_ros"
BUNDLED_MODEL = Path("models") / "depth.onnx"

# The backend registry's names (tests/test_node_logic.py keeps them in step); listed here so
# that validating parameters does not import torch and every backend.
BACKEND_CHOICES = ("auto", "onnxruntime", "tensorrt", "torch")
PRECISION_CHOICES = ("", "fp32", "fp16")
AUTO_DECIMATION = 0  # cloud_decimation: match the network's resolution


class ParameterError(ValueError):
    """Invalid node parameters; the message names each offending parameter and why."""


@dataclass(frozen=True)
class ParameterSpec:
    """One node parameter, declared once from this table (type, default, range, description)."""

    name: str
    default: Any  # its Python type is the parameter's type; a tuple means a double array
    description: str
    read_only: bool = False  # start-up only: changing it needs a restart
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()

    @property
    def constraints(self) -> str:
        if self.choices:
            return "one of: " + ", ".join(repr(c) for c in self.choices)
        if self.minimum is not None:
            return f"in [{self.minimum}, {self.maximum}]"
        return ""


PARAMETERS: tuple[ParameterSpec, ...] = (
    ParameterSpec("model_path", "", "Exported .onnx model or depth checkpoint .pt; default: the bundled "
                  f"model <share>/depth_da_ros/{BUNDLED_MODEL} when installed", read_only=True),
    ParameterSpec("style_checkpoint", "", "Style adapter checkpoint (.pt) run before a depth checkpoint "
                  "(torch backend only; an exported .onnx already contains its adapter)", read_only=True),
    ParameterSpec("backend", "auto", "Inference backend", read_only=True, choices=BACKEND_CHOICES),
    ParameterSpec("device", "auto", "'auto', 'cpu', 'cuda' or 'cuda:N'", read_only=True),
    ParameterSpec("precision", "", "'fp32' or 'fp16'; empty: as the model file", read_only=True,
                  choices=PRECISION_CHOICES),
    ParameterSpec("threads", 0, "CPU inference threads; 0: every core this process may use", read_only=True,
                  minimum=0, maximum=1024),
    ParameterSpec("inference_nice", 5, "Niceness added to the inference threads (Linux): when the cores are "
                  "busy, the executor and DDS threads that receive frames run first, so frames are received "
                  "(and counted as dropped if inference cannot keep up) instead of lost in transport; 0: same "
                  "priority as the rest of the node", read_only=True, minimum=0, maximum=19),
    ParameterSpec("queue_size", 1, "Frames waiting for inference. 1: only the newest (live cameras: least "
                  "latency, older frames are dropped and counted); N > 1: every frame is processed in order "
                  "while at most N wait, the oldest dropped beyond that (bags, evaluation; N camera frames "
                  "of memory)", read_only=True, minimum=1, maximum=1000),
    ParameterSpec("use_compressed", False, "Subscribe to <image>/compressed (sensor_msgs/CompressedImage) "
                  "instead of the raw image", read_only=True),
    ParameterSpec("input_reliability", "auto", "QoS reliability of the image and camera_info subscriptions; "
                  "'auto' matches what the publishers offer (reliable when none is known yet)", read_only=True,
                  choices=INPUT_RELIABILITY_CHOICES),
    ParameterSpec("output_reliability", RELIABLE, "QoS reliability of the published topics (RViz and "
                  "recorders subscribe reliable)", read_only=True, choices=OUTPUT_RELIABILITY_CHOICES),
    ParameterSpec("camera_info_tolerance", 0.2, "Largest difference in seconds between an image stamp and "
                  "the camera_info matched to it (the nearest); 0.2 s bridges a late or lost camera_info of a "
                  "fixed calibration, 0 demands the same stamp (e.g. a zoom camera)", minimum=0.0, maximum=10.0),
    ParameterSpec("intrinsics", (), "[fx, fy, cx, cy] in pixels of the image, used for frames without a "
                  "valid camera_info (uncalibrated cameras); empty: none"),
    ParameterSpec("rectify", True, "Undistort and rectify frames whose camera_info has a non-zero D (a driver's "
                  "image_raw) before inference, with maps built once per calibration (K, D, R, P; plumb_bob, "
                  "rational_polynomial, equidistant); depth, points and depth/camera_info are then in the rectified "
                  "geometry (D zero, K from P). false: frames are used as if rectified (image_rect streams)"),
    ParameterSpec("scale_mode", "focal", "'focal': depth x f_camera / f_training when the camera's focal "
                  "length (at the network size) differs from the training camera's; 'none': as predicted",
                  choices=SCALE_MODES),
    ParameterSpec("frame_id", "", "Frame id of every output (and of the calibration kept per camera), replacing "
                  "the input's header.frame_id; empty: the input's (an input without one gets a warning: RViz and "
                  "tf2 drop messages whose frame_id is empty)"),
    ParameterSpec("aspect_policy", "pad", "How a frame whose aspect ratio differs from the network's is fitted "
                  "to it: 'pad' mirrors the frame out to the network's aspect (every pixel, at lower resolution; "
                  "the most accurate on 4:3 cameras, benchmarks/results/aspect.md), 'crop' feeds a centred window "
                  "of the network's aspect (outside it: NaN), 'stretch' resizes the whole frame (distorts). Frames "
                  "within 2% of the network's aspect are never cropped or padded", choices=ASPECT_POLICIES),
    ParameterSpec("beyond_range_fraction", BEYOND_RANGE_FRACTION, "REP 118: a prediction at or above this "
                  "fraction of the model's max depth is published as +Inf (beyond range: the network saturates on "
                  "the sky and anything farther); 1.0: only predictions of exactly max depth",
                  minimum=0.5, maximum=1.0),
    ParameterSpec("min_contrast", 3.0, "Frames whose largest per-channel standard deviation (in 8-bit grey "
                  "levels) is below this are degenerate (lens cap, white-out, blank frame): their depth is "
                  "published as NaN without running the network, and /diagnostics warns; 0: off",
                  minimum=0.0, maximum=255.0),
    ParameterSpec("colormap_min_depth", DEFAULT_MIN_DEPTH, "Depth in metres drawn with the near end (red) of "
                  "depth/colorized's colour map", minimum=0.01, maximum=1000.0),
    ParameterSpec("colormap_max_depth", DEFAULT_MAX_DEPTH, "Depth in metres drawn with the far end (blue) of the "
                  "colour map", minimum=0.01, maximum=1000.0),
    ParameterSpec("colormap_scale", DEFAULT_SCALE, "How colours spread over the range: 'log' (street scenes: "
                  "5-40 m span half the map), 'inverse' (1/depth: resolves near objects), 'linear'",
                  choices=COLORMAP_SCALES),
    ParameterSpec("colormap_legend", True, "Draw a colour bar in metres into depth/colorized's bottom-right "
                  "corner (images of at least 160x60)"),
    ParameterSpec("cloud_enabled", True, "Publish the point cloud (needs camera_info or intrinsics)"),
    ParameterSpec("cloud_rgb", True, "Colour each point with the camera image (xyz + rgb)"),
    ParameterSpec("cloud_organized", True, "Keep the image grid (invalid points are NaN); false: valid "
                  "points only, in one row"),
    ParameterSpec("cloud_decimation", AUTO_DECIMATION, "Use every N-th row and column of the depth image; "
                  "0: about one point per network pixel (the network's resolution: a denser cloud only adds "
                  "interpolated points)", minimum=0, maximum=64),
    ParameterSpec("cloud_min_depth", 0.1, "Points nearer than this depth (metres along the optical axis) are "
                  "dropped", minimum=0.0, maximum=1000.0),
    ParameterSpec("cloud_max_depth", 60.0, "Points farther than this depth (metres along the optical axis) are "
                  "dropped; +Inf (beyond range: the sky) is never a point",
                  minimum=0.01, maximum=1000.0),
    ParameterSpec("scan_band_height", 1, "scan: rows of the depth image around the optical centre row (cy) "
                  "whose nearest valid range per column makes the LaserScan (depthimage_to_laserscan's scan_height); "
                  "more rows see obstacles above and below the scan plane", minimum=1, maximum=4096),
    ParameterSpec("scan_range_min", 0.1, "scan: nearer ranges (metres, in the scan plane) are -Inf (REP 117 "
                  "too close) unless another row of the column is in range", minimum=0.0, maximum=1000.0),
    ParameterSpec("scan_range_max", 30.0, "scan: farther ranges and +Inf depth are +Inf (nothing in range: "
                  "costmaps with inf_is_valid clear along the ray); keep it below the model's max depth",
                  minimum=0.01, maximum=1000.0),
    ParameterSpec("scan_frame_id", "", "scan: frame id of the LaserScan, a frame with x forward, y left, z up "
                  "at the camera (a scan's angles turn about +z from +x); empty: the depth's optical frame's "
                  "body frame by the drivers' naming ('<name>_optical_frame' -> '<name>_frame'), else the "
                  "depth's frame"),
    ParameterSpec("confidence_k", 0.1, "depth/confidence = exp(-|d - d_mirror| / (k d)), d_mirror the depth of "
                  "the mirrored frame flipped back: k is the relative disagreement that gives exp(-1) = 0.37 "
                  "(benchmarks/results/confidence.md)", minimum=0.001, maximum=10.0),
    ParameterSpec("confidence_threshold", 0.0, "Depth whose confidence is below this is published as NaN (and so "
                  "leaves the cloud and scan); > 0 runs the flip-consistency batch of 2 on every frame (about "
                  "twice the inference time), as does a depth/confidence subscriber; 0: off",
                  minimum=0.0, maximum=1.0),
    ParameterSpec("temporal_smoothing", 0.0, "Per-pixel smoothing of depth over frames without ego-motion: "
                  "alpha x previous output + (1 - alpha) x new depth where the two agree within temporal_reset, "
                  "else the new depth; restarted on another camera or a stamp gap over 1 s. On procedural "
                  "driving (1 m per frame) 0.5 lowered TAE from 0.063 to 0.055 and abs_rel by 0.001 "
                  "(benchmarks/results/temporal.md); not measured on turning or moving objects; 0: off",
                  minimum=0.0, maximum=0.95),
    ParameterSpec("temporal_reset", 0.15, "temporal_smoothing: relative disagreement above which a pixel takes "
                  "the new depth as is (disocclusion, motion)", minimum=0.0, maximum=1.0),
    ParameterSpec("ground_camera_height", 0.0, "Height of the camera's optical centre above flat ground, metres "
                  "(tf base_footprint -> optical frame): depth below the horizon is kept no farther than the ground "
                  "and snapped to it where within ground_tolerance (depth_da_ros/ground.py). On six real KITTI frames "
                  "a1 0.52 -> 0.61 over 28 networks with the right height; it must be right to about 10% (20% off: "
                  "worse than without, also with ground_height_check; benchmarks/results/ground.md); 0: off", minimum=0.0, maximum=100.0),
    ParameterSpec("ground_camera_pitch", 0.0, "ground_camera_height: the camera's pitch, radians, positive looking "
                  "down (no roll)", minimum=-1.5, maximum=1.5),
    ParameterSpec("ground_tolerance", 0.5, "ground_camera_height: a prediction whose depth * (1 + this) reaches "
                  "the ground's depth is taken as ground (0.5: down to 2/3 of it; chosen on the kitti_raw_sample "
                  "frames); nearer ones are obstacles and kept; 0: only the bound", minimum=0.0, maximum=10.0),
    ParameterSpec("ground_height_check", True, "ground_camera_height: skip the constraint on a frame whose road "
                  f"{ROAD_BAND_M[0]:g}-{ROAD_BAND_M[1]:g} m ahead is predicted outside {ROAD_RATIO_RANGE[0]:.2f}-"
                  f"{ROAD_RATIO_RANGE[1]:.2f} of the ground's depth (a height far off: on real KITTI frames 99% of "
                  "the frames skipped at 50% too low, 89% at 30% too low, 88% at 50% too high, 2% at the right "
                  "height), with a warning and a /diagnostics count; false: always apply (a network whose road "
                  "is biased beyond that range)"),
    ParameterSpec("diagnostics_period", 1.0, "Seconds between /diagnostics messages", read_only=True,
                  minimum=0.1, maximum=60.0),
    ParameterSpec("warning_period", 5.0, "Seconds between two warnings about the same problem", read_only=True,
                  minimum=0.1, maximum=3600.0),
)
PARAMETER_NAMES = tuple(spec.name for spec in PARAMETERS)


@dataclass(frozen=True)
class NodeSettings:
    """The validated parameters, one field per ``PARAMETERS`` entry."""

    model_path: str
    style_checkpoint: str
    backend: str
    device: str
    precision: str
    threads: int
    inference_nice: int
    queue_size: int
    use_compressed: bool
    input_reliability: str
    output_reliability: str
    camera_info_tolerance: float
    intrinsics: tuple[float, ...]
    rectify: bool
    scale_mode: str
    frame_id: str
    aspect_policy: str
    beyond_range_fraction: float
    min_contrast: float
    colormap_min_depth: float
    colormap_max_depth: float
    colormap_scale: str
    colormap_legend: bool
    cloud_enabled: bool
    cloud_rgb: bool
    cloud_organized: bool
    cloud_decimation: int
    cloud_min_depth: float
    cloud_max_depth: float
    scan_band_height: int
    scan_range_min: float
    scan_range_max: float
    scan_frame_id: str
    confidence_k: float
    confidence_threshold: float
    temporal_smoothing: float
    temporal_reset: float
    ground_camera_height: float
    ground_camera_pitch: float
    ground_tolerance: float
    ground_height_check: bool
    diagnostics_period: float
    warning_period: float


def settings_from_parameters(values: Mapping[str, Any], *, model_search: Sequence[Path] = ()) -> NodeSettings:
    """Check parameter ``values`` (missing names take their defaults) and build the settings.

    Raises ParameterError listing every problem. ``model_search``: the bundled model paths that
    were looked for, named in the error when ``model_path`` is empty.
    """
    unknown = sorted(set(values) - set(PARAMETER_NAMES))
    problems = [f"unknown parameter(s) {', '.join(unknown)}"] if unknown else []
    merged: dict[str, Any] = {}
    for spec in PARAMETERS:
        value = values.get(spec.name, spec.default)
        value = spec.default if value is None else value  # an unset array parameter reads as None
        problem = _check_value(spec, value)
        if problem:
            problems.append(f"{spec.name}: {problem}")
        elif isinstance(spec.default, tuple):
            value = tuple(float(v) for v in value)
        merged[spec.name] = value

    if not merged["model_path"]:
        looked = ", ".join(str(p) for p in model_search) or "no package share directory found"
        problems.append(f"model_path: required (no bundled model; looked for {looked}); "
                        "pass -p model_path:=/path/to/model.onnx")
    elif not Path(merged["model_path"]).is_file():
        problems.append(f"model_path: {merged['model_path']} does not exist")
    if merged["style_checkpoint"] and not Path(merged["style_checkpoint"]).is_file():
        problems.append(f"style_checkpoint: {merged['style_checkpoint']} does not exist")
    device = merged["device"]
    if isinstance(device, str) and not (device in ("auto", "cpu", "cuda")
                                        or (device.startswith("cuda:") and device[5:].isdigit())):
        problems.append(f"device: {device!r} is not 'auto', 'cpu', 'cuda' or 'cuda:N'")
    intrinsics = merged["intrinsics"]
    if isinstance(intrinsics, tuple) and intrinsics:
        if len(intrinsics) != 4:
            problems.append(f"intrinsics: expected [fx, fy, cx, cy], got {len(intrinsics)} values")
        elif not all(math.isfinite(v) for v in intrinsics) or min(intrinsics[:2]) <= 0:
            problems.append(f"intrinsics: need finite values and fx, fy > 0, got {list(intrinsics)}")
    for low, high in (("colormap_min_depth", "colormap_max_depth"), ("cloud_min_depth", "cloud_max_depth"),
                      ("scan_range_min", "scan_range_max")):
        if _is_number(merged[low]) and _is_number(merged[high]) and not merged[low] < merged[high]:
            problems.append(f"{low} ({merged[low]}) must be less than {high} ({merged[high]})")
    if problems:
        raise ParameterError("invalid parameters:\n  " + "\n  ".join(problems))
    return NodeSettings(**merged)


# Parameters rclpy declares itself on every node, and the prefix of its QoS-override parameters.
ROS_PARAMETERS = ("use_sim_time", "start_type_description_service")
QOS_OVERRIDES_PREFIX = "qos_overrides."
# Parameters of earlier versions -> what replaced them (named in the unknown-parameter error).
RENAMED_PARAMETERS = {"colormap_inverse": "colormap_scale ('inverse' for true, 'linear' for false)"}


def unknown_parameters(names: Iterable[str]) -> str | None:
    """The problem with parameter ``names`` given to the node (``-p``, ``--params-file``) that
    it does not declare, each with the nearest known name; None when all are known. rclpy
    ignores such overrides silently, so a misspelt name would leave the default in force."""
    known = (*PARAMETER_NAMES, *ROS_PARAMETERS)
    unknown = sorted(n for n in set(names) if n not in known and not n.startswith(QOS_OVERRIDES_PREFIX))
    if not unknown:
        return None
    hints = []
    for name in unknown:
        close = difflib.get_close_matches(name, PARAMETER_NAMES, n=1, cutoff=0.6)
        if name in RENAMED_PARAMETERS:
            hints.append(f"{name} (replaced by {RENAMED_PARAMETERS[name]})")
        else:
            hints.append(f"{name} (did you mean {close[0]}?)" if close else name)
    return (f"unknown parameter(s) {', '.join(hints)}; depth_da_node --help lists the parameters")


def section_applies(key: str, node_fqn: str) -> bool:
    """Whether a params file's section ``key`` applies to the node ``node_fqn`` ('/front/depth_da_node'),
    as rcl matches them: a key without a leading '/' is in the root namespace, '/**' matches any
    number of namespace levels (none too), '/*' one."""
    key = key if key.startswith("/") else "/" + key
    pattern = "".join("(/[^/]+)*" if part == "**" else "/[^/]+" if part == "*" else "/" + re.escape(part)
                      for part in key.strip("/").split("/"))
    return re.fullmatch(pattern or "/", node_fqn) is not None


def params_file_sections_problem(ros_args: Sequence[str], node_fqn: str) -> str | None:
    """A ``--params-file`` among ``ros_args`` with ``ros__parameters`` sections none of which
    applies to ``node_fqn`` (rcl ignores them silently: e.g. a 'depth_da_node:' section for a node
    in a namespace), or None. Files that cannot be read or parsed are left to rcl."""
    import yaml

    problems = []
    for flag, path in zip(ros_args, ros_args[1:]):
        if flag != "--params-file":
            continue
        try:
            data = yaml.safe_load(Path(path).read_text())
        except (OSError, yaml.YAMLError):
            continue
        keys = [key for key, value in (data or {}).items() if isinstance(key, str) and isinstance(value, dict)] \
            if isinstance(data, dict) else []
        if not any(section_applies(key, node_fqn) for key in keys):
            problems.append(f"--params-file {path}: none of its sections ({', '.join(map(repr, keys)) or 'none'}) "
                            f"applies to this node ({node_fqn}), so none of its parameters is used; name the "
                            "section '/**/depth_da_node:' (any namespace), '/**:' or the node's full name")
    return "; ".join(problems) or None


def parameter_help() -> str:
    """Every parameter with its type, default, range or choices and description, for
    ``depth_da_node --help`` (no ROS needed)."""
    lines = ["Parameters (-p NAME:=VALUE, or a --params-file with a '/**/depth_da_node: ros__parameters:' section;",
             "'start-up only' ones cannot change while the node runs):", ""]
    for spec in PARAMETERS:
        kind = "double[]" if isinstance(spec.default, tuple) else {bool: "bool", int: "int", float: "double",
                                                                   str: "string"}[type(spec.default)]
        default = "[]" if spec.default == () else ("''" if spec.default == "" else str(spec.default).lower()
                                                     if isinstance(spec.default, bool) else str(spec.default))
        facts = [kind, f"default {default}", *([spec.constraints] if spec.constraints else []),
                 *(["start-up only"] if spec.read_only else [])]
        lines.append(f"  {spec.name} ({', '.join(facts)})")
        lines.extend(textwrap.wrap(spec.description, 96, initial_indent="      ", subsequent_indent="      "))
    return "\n".join(lines)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_value(spec: ParameterSpec, value: Any) -> str | None:
    """Why ``value`` does not fit ``spec`` (type, range, choices), or None."""
    default = spec.default
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(default, float):
        ok = _is_number(value)
    elif isinstance(default, tuple):
        ok = isinstance(value, Sequence) and not isinstance(value, str) and all(_is_number(v) for v in value)
    else:
        ok = isinstance(value, str)
    if not ok:
        kind = "a list of numbers" if isinstance(default, tuple) else type(default).__name__
        return f"expected {kind}, got {value!r}"
    if spec.choices and value not in spec.choices:
        return f"{value!r} is not {spec.constraints}"
    if spec.minimum is not None and not spec.minimum <= value <= spec.maximum:
        return f"{value} is not {spec.constraints}"
    if isinstance(value, float) and not math.isfinite(value):
        return f"{value} is not finite"
    return None


def package_directories() -> list[Path]:
    """Where the package's data may be: this source checkout (its models/ and config/ are the
    freshest), the ament index (a colcon install), then the prefix a pip install puts setup.py's
    data_files in."""
    candidates = []
    checkout = Path(__file__).resolve().parents[1]
    if (checkout / "package.xml").is_file() and (checkout / "setup.py").is_file():
        candidates.append(checkout)
    try:
        from ament_index_python.packages import get_package_share_directory

        candidates.append(Path(get_package_share_directory(PACKAGE)))
    except (ImportError, LookupError, OSError):  # no ament_index_python, not in the index, no AMENT_PREFIX_PATH
        pass
    candidates.append(Path(sys.prefix) / "share" / PACKAGE)
    return list(dict.fromkeys(candidates))


def find_bundled_model(share_dirs: Iterable[Path]) -> tuple[Path | None, list[Path]]:
    """The first existing ``<share>/BUNDLED_MODEL`` and every path looked at."""
    looked = [Path(share) / BUNDLED_MODEL for share in share_dirs]
    return next((p for p in looked if p.is_file()), None), looked


def cloud_stride(decimation: int, image_size: tuple[int, int], network_size: tuple[int, int]) -> int:
    """The row and column stride of the point cloud: ``decimation``, or for ``AUTO_DECIMATION``
    about one point per network pixel, (height, width) sizes. The depth is upsampled from the
    network's output, so a denser cloud only adds interpolated points to build, send and draw
    (a 1242x375 KITTI frame from a 640x192 network: stride 2, 4x fewer points)."""
    if decimation != AUTO_DECIMATION:
        return decimation
    ratio = min(image / network for image, network in zip(image_size, network_size))
    return max(1, round(ratio))
