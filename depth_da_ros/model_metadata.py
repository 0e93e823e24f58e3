"""``ModelMetadata``: what a model needs to be used correctly, recorded by export and read by
every backend and the pipeline, and ``read_model_metadata``, the one reader.

This module imports neither torch nor the exporter, so an exported ``.onnx`` model is loaded
and run (ONNX Runtime backend, pipeline, node) without importing torch, which takes seconds;
only reading checkpoints (``.pt``, ``read_checkpoints``) imports it. ``read_checkpoints`` is
also the first half of ``depth_da_ros.export.load_inference_module`` (which builds the networks
from what it returns), so the dependency runs one way: export imports this module, never the
reverse. ``depth_da_ros.export`` re-exports these names.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import onnx

from .camera import PinholeCamera
from .normalization import DepthCodec

ONNX_FORMAT = "depth_da_ros/onnx-v1"
INPUT_NAME = "image"
DEPTH_OUTPUT = "depth"
STYLE_OUTPUT = "styled"
INPUT_LAYOUT = "NHWC"
INPUT_DTYPES = ("uint8", "float32")
PRECISIONS = ("fp32", "fp16")
NETWORK_NAMES = ("style", "depth")  # inference order

LOG = logging.getLogger(__name__)


class MetadataError(RuntimeError):
    """A model file is missing, unreadable, or lacks depth_da_ros metadata."""


class ExportError(ValueError):
    """Invalid export request (missing or contradictory inputs) or a failed export check."""


@dataclass(frozen=True)
class ModelMetadata:
    """What a model needs to be used correctly, recorded by export and read by every backend."""

    networks: tuple[str, ...]  # in inference order, a subset of NETWORK_NAMES
    input_height: int
    input_width: int
    preset: str | None = None
    input_dtype: str = "uint8"
    depth_codec: DepthCodec | None = None  # None when the model outputs a styled image
    training_camera: PinholeCamera | None = None  # intrinsics at the input size, when known
    # The camera the style adapter was trained for (a rosbag's camera_info, at its own resolution);
    # None when unknown and in older exports.
    deployment_camera: PinholeCamera | None = None
    sources: dict[str, dict[str, Any]] = field(default_factory=dict)  # network -> checkpoint record
    precision: str = "fp32"  # of the arithmetic
    weight_storage: str = "fp32"  # "fp16": fp32 arithmetic on weights stored in fp16 (half the file)
    export_date: str | None = None  # UTC ISO 8601; None for a model read from checkpoints
    opset: int | None = None
    # The adapted frame as a second output; only with both networks, None in older exports.
    styled_output_name: str | None = None

    def __post_init__(self) -> None:
        if not self.networks or any(n not in NETWORK_NAMES for n in self.networks):
            raise MetadataError(f"networks must be a non-empty subset of {NETWORK_NAMES}, got {self.networks}")
        if self.input_dtype not in INPUT_DTYPES:
            raise MetadataError(f"input dtype {self.input_dtype!r} is not one of {INPUT_DTYPES}")
        if self.precision not in PRECISIONS or self.weight_storage not in PRECISIONS:
            raise MetadataError(f"precision {self.precision!r} and weight storage {self.weight_storage!r} must be "
                                f"one of {PRECISIONS}")
        if self.precision == "fp16" and self.weight_storage != "fp16":
            raise MetadataError("fp16 arithmetic runs on fp16 weights (weight_storage 'fp16')")
        if ("depth" in self.networks) != (self.depth_codec is not None):
            raise MetadataError("a depth codec is required exactly when the model contains the depth network")
        if self.styled_output_name is not None and self.networks != NETWORK_NAMES:
            raise MetadataError("a styled second output needs both the style adapter and the depth network")

    @property
    def outputs_depth(self) -> bool:
        return "depth" in self.networks

    @property
    def with_style_adapter(self) -> bool:
        return "style" in self.networks

    @property
    def outputs_styled(self) -> bool:
        """Whether the model also outputs the adapted frame (``styled_output_name``)."""
        return self.styled_output_name is not None

    @property
    def input_name(self) -> str:
        return INPUT_NAME

    @property
    def output_name(self) -> str:
        return DEPTH_OUTPUT if self.outputs_depth else STYLE_OUTPUT

    @property
    def input_size(self) -> tuple[int, int]:
        return self.input_height, self.input_width

    @property
    def max_depth(self) -> float | None:
        return self.depth_codec.max_depth if self.depth_codec else None

    def to_onnx_props(self) -> dict[str, str]:
        """The ``metadata_props`` entries; every value is JSON so numbers and nulls round-trip."""
        codec = self.depth_codec
        training, deployment = self.training_camera, self.deployment_camera
        props = {
            "format": ONNX_FORMAT,
            "networks": list(self.networks),
            "with_style_adapter": self.with_style_adapter,
            "preset": self.preset,
            "input_name": INPUT_NAME,
            "input_height": self.input_height,
            "input_width": self.input_width,
            "input_dtype": self.input_dtype,
            "input_layout": INPUT_LAYOUT,
            "input_range": [0, 255],
            "output_name": self.output_name,
            "output_layout": "N1HW" if self.outputs_depth else INPUT_LAYOUT,
            "output_unit": "metres" if self.outputs_depth else "0-255",
            "styled_output_name": self.styled_output_name,
            "max_depth": codec.max_depth if codec else None,
            "depth_encoding": codec.encoding if codec else None,
            "min_depth": codec.min_depth if codec else None,
            "training_camera": training.to_dict() if training else None,
            "deployment_camera": deployment.to_dict() if deployment else None,
            "source_checkpoints": self.sources,
            "export_date": self.export_date,
            "precision": self.precision,
            "weight_storage": self.weight_storage,
            "opset": self.opset,
        }
        return {key: json.dumps(value) for key, value in props.items()}

    @classmethod
    def from_onnx_props(cls, props: dict[str, str], where: str = "model") -> ModelMetadata:
        if "format" not in props:
            raise MetadataError(
                f"{where} has no depth_da_ros metadata; export it with training/export.py "
                f"(found metadata keys: {', '.join(sorted(props)) or 'none'})"
            )
        try:
            values = {key: json.loads(value) for key, value in props.items()}
        except json.JSONDecodeError as exc:
            raise MetadataError(f"{where}: malformed metadata value ({exc})") from None
        if values["format"] != ONNX_FORMAT:
            raise MetadataError(f"{where}: metadata format {values['format']!r}, expected {ONNX_FORMAT!r}")
        try:
            codec = None
            if values.get("max_depth") is not None:
                codec = DepthCodec(values["max_depth"], values["depth_encoding"], values["min_depth"])
            camera = values.get("training_camera")
            return cls(
                networks=tuple(values["networks"]),
                input_height=int(values["input_height"]),
                input_width=int(values["input_width"]),
                preset=values.get("preset"),
                input_dtype=values["input_dtype"],
                depth_codec=codec,
                training_camera=PinholeCamera(**camera) if camera else None,
                deployment_camera=PinholeCamera(**values["deployment_camera"]) if values.get("deployment_camera")
                else None,
                sources=values.get("source_checkpoints") or {},
                precision=values["precision"],
                # Absent in older exports, whose weights were stored as they were computed.
                weight_storage=values.get("weight_storage") or values["precision"],
                export_date=values.get("export_date"),
                opset=values.get("opset"),
                styled_output_name=values.get("styled_output_name"),
            )
        except KeyError as exc:
            raise MetadataError(f"{where}: metadata lacks {exc}") from None
        except (TypeError, ValueError) as exc:  # wrong types or out-of-range values
            raise MetadataError(f"{where}: invalid metadata: {exc}") from None


def _source_record(path: str | Path, payload: dict[str, Any]) -> dict[str, Any]:
    from .checkpoint import file_sha256  # torch: only for checkpoints

    record = {"file": Path(path).name, "sha256": file_sha256(path),
              "stage": payload.get("stage"), "step": payload.get("step")}
    if "teacher" in payload:  # a distilled student: the checkpoints it learnt from
        record["teacher"] = {name: {"file": Path(t["file"]).name, "sha256": t["sha256"]}
                             for name, t in payload["teacher"].items()}
    return record


def read_checkpoints(
    depth_checkpoint: str | Path | None = None,
    style_checkpoint: str | Path | None = None,
    *,
    only: str | None = None,
    input_dtype: str = "uint8",
) -> tuple[ModelMetadata, dict[str, dict[str, Any]]]:
    """The metadata of the model that checkpoints make, and the loaded checkpoints by network name
    (imports torch). ``depth_da_ros.export.load_inference_module`` builds the networks from them.

    ``only=None``: the depth network, preceded by the style adapter when a style checkpoint
    is given. ``only="depth"`` / ``only="style"``: that network alone. Raises ExportError for a
    missing or contradictory request, CheckpointError for an unreadable checkpoint.
    """
    if only not in (None, *NETWORK_NAMES):
        raise ExportError(f"only must be one of {', '.join(NETWORK_NAMES)} (or None), got {only!r}")
    if input_dtype not in INPUT_DTYPES:
        raise ExportError(f"input dtype must be one of {', '.join(INPUT_DTYPES)}, got {input_dtype!r}")
    # Messages name the CLI flags; the keyword arguments have the same names.
    if only != "style" and depth_checkpoint is None:
        raise ExportError(
            "a depth checkpoint (--depth) is required, unless exporting the style network alone (--only style)"
        )
    if only == "style" and style_checkpoint is None:
        raise ExportError("--only style needs a style checkpoint (--style)")
    if only == "depth" and style_checkpoint is not None:
        raise ExportError("--only depth exports the depth network alone; drop the style checkpoint (--style)")
    if only == "style" and depth_checkpoint is not None:
        raise ExportError("--only style exports the style network alone; drop the depth checkpoint (--depth)")

    from .checkpoint import depth_codec, load_checkpoint  # torch: only for checkpoints

    paths = {"depth": depth_checkpoint, "style": style_checkpoint}
    networks = tuple(name for name in NETWORK_NAMES if paths[name] is not None)
    payloads = {name: load_checkpoint(paths[name]) for name in networks}
    if "style" in networks and payloads.get("depth", {}).get("stage") == "distill":
        raise ExportError(f"{paths['depth']} is a distilled student: it reads camera frames itself, so it takes no "
                          "style adapter in front; drop the style checkpoint (--style)")
    primary = payloads["depth" if "depth" in networks else "style"]

    height, width = (int(v) for v in primary["input_size"])
    if "style" in networks and "depth" in networks:
        style_size = [int(v) for v in payloads["style"]["input_size"]]
        if style_size != [height, width]:
            # The adapter is fully convolutional; the depth network's size is the one that matters.
            LOG.warning("style checkpoint was trained at %s, depth at %s; the model runs at %dx%d",
                        style_size, [height, width], height, width)
        if payloads["style"].get("preset") != primary.get("preset"):
            LOG.warning("style checkpoint preset %r differs from depth preset %r",
                        payloads["style"].get("preset"), primary.get("preset"))
    camera = primary.get("training_camera")
    # The real domain's camera: the adapter's, or a distilled student's (it reads camera frames itself).
    deployment = payloads["style" if "style" in networks else "depth"].get("deployment_camera")
    metadata = ModelMetadata(
        networks=networks,
        input_height=height,
        input_width=width,
        preset=primary.get("preset"),
        input_dtype=input_dtype,
        depth_codec=depth_codec(payloads["depth"]) if "depth" in networks else None,
        training_camera=PinholeCamera(**camera) if camera else None,
        deployment_camera=PinholeCamera(**deployment) if deployment else None,
        sources={name: _source_record(paths[name], payloads[name]) for name in networks},
        styled_output_name=STYLE_OUTPUT if networks == NETWORK_NAMES else None,
    )
    return metadata, payloads


def read_model_metadata(path: str | Path, style_checkpoint: str | Path | None = None) -> ModelMetadata:
    """Metadata of an exported ``.onnx`` file, or of a depth checkpoint (+ optional style checkpoint)."""
    path = Path(path)
    if path.suffix != ".onnx":
        return read_checkpoints(path, style_checkpoint)[0]
    if not path.is_file():
        raise MetadataError(f"model {path} does not exist")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf decode errors have no common base class
        raise MetadataError(f"cannot read ONNX model {path}: {exc.__class__.__name__}: {exc}") from None
    return ModelMetadata.from_onnx_props({p.key: p.value for p in model.metadata_props}, str(path))


def describe_precision(metadata: ModelMetadata) -> str:
    """'fp32', 'fp16', or 'fp32 on fp16 weights'."""
    if metadata.weight_storage == metadata.precision:
        return metadata.precision
    return f"{metadata.precision} on {metadata.weight_storage} weights"
