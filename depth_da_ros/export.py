"""Export: checkpoints -> one fused ONNX graph (RGB in, metres out) that describes itself.

The exported graph holds every step between a camera frame at the network size and metric
depth, so no deployment re-implements (and gets wrong) the normalisation contract::

    image  [N, H, W, 3]  uint8 (or float32) RGB in [0, 255], NHWC as a camera delivers it
      -> cast, NHWC -> NCHW, image_to_network ([-1, 1])
      -> style adapter (optional, real -> synthetic look)
      -> depth U-Net (output in [-1, 1])
      -> DepthCodec.decode (clip, metres)
    depth  [N, 1, H, W]  float32 metres
    styled [N, H, W, 3]  uint8 RGB, the frame after the style adapter (models with the adapter)

``N`` is dynamic; ``H`` x ``W`` is fixed to the checkpoint's ``input_size``. ``depth`` is
always the first output. ``styled``, the frame as the depth network sees it, is for debugging
views; it is rounded and cast in the graph (cheap) and recorded in the metadata as
``styled_output_name`` (absent from exports made before it existed, which read as None).
Exporting the style network alone (``only="style"``) gives one output, ``styled`` [N, H, W, 3]
float32 in [0, 255] (unrounded, same layout as the input). Networks run in eval mode: batch
norm uses its running statistics, the contract training validates with, so torch, ONNX
Runtime and TensorRT compute the same function (the parity tests prove it).

Metadata: the ``metadata_props`` of the ONNX file carry a ``ModelMetadata`` (every value a
JSON string, see ``ModelMetadata.to_onnx_props``); ``read_model_metadata`` reads the same
dataclass from an ONNX file or from checkpoints, the one contract for backends and pipeline.
Both live in ``depth_da_ros.model_metadata`` (no torch import), as do ``read_checkpoints``
(the metadata half of ``load_inference_module``) and ``ExportError``; they are re-exported here,
and that module never imports this one.

Half precision (``fp16=True``): the module is converted to float16 before tracing (tracing
uses fake tensors, so it needs no fp16 kernels on the exporting machine); the input cast,
normalisation and networks run in float16 except instance norm (float32, see ``to_half``),
the depth decode in float32, so the graph's inputs and outputs keep their fp32/uint8 types. ONNX Runtime's CPU provider runs such a graph
(slowly: it is meant for GPUs); TensorRT builds it strongly typed. Weights stored in half
precision only (``fp16_weights=True``): the fp32 graph with its weight tensors stored as fp16
and cast back on load, half the file at fp32 speed (the bundled model, for CPUs).
"""
from __future__ import annotations

import copy
import datetime as _dt
import logging
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnx import numpy_helper
from torch import Tensor, nn

from .atomic import atomic_write_bytes
from .checkpoint import load_network
from .model_metadata import (  # noqa: F401  (re-exported: export's public names)
    DEPTH_OUTPUT,
    INPUT_DTYPES,
    INPUT_LAYOUT,
    INPUT_NAME,
    NETWORK_NAMES,
    ONNX_FORMAT,
    PRECISIONS,
    STYLE_OUTPUT,
    ExportError,
    MetadataError,
    ModelMetadata,
    describe_precision,
    read_checkpoints,
    read_model_metadata,
)
from .normalization import DepthCodec, image_to_network, network_to_image

LOG = logging.getLogger(__name__)

# fp16 weight storage (``export_onnx(fp16_weights=True)``): weight tensors of at least this many
# values are stored in fp16 and cast to fp32 when the model loads (ONNX Runtime folds the casts),
# so the file is half the size and the arithmetic fp32; biases and constants stay exact.
FP16_WEIGHTS_MIN_VALUES = 256
DEFAULT_OPSET = 18
# Export-time check of ONNX Runtime against the fp32 torch module, as a fraction of the
# output range (max depth, or 255 for a styled image).
VERIFY_TOLERANCE = {"fp32": 1e-3, "fp16": 1e-2}


def quiet_exporter_logs() -> None:
    """Keep only warnings from torch.onnx's optimisation passes, which log every rewrite at INFO."""
    for name in ("onnxscript", "onnx_ir"):
        logging.getLogger(name).setLevel(logging.WARNING)


class InferenceModule(nn.Module):
    """RGB [N, H, W, 3] in [0, 255] -> depth metres [N, 1, H, W] (or a styled image, see module doc).

    ``styled=True`` (a module with both networks) returns ``(depth, styled)``, styled the
    adapted frame as uint8 RGB [N, H, W, 3].
    """

    def __init__(self, style: nn.Module | None, depth: nn.Module | None, codec: DepthCodec | None) -> None:
        super().__init__()
        if style is None and depth is None:
            raise ExportError("an inference module needs the style network, the depth network or both")
        self.style = style
        self.depth = depth
        self.codec = codec

    def forward(self, image: Tensor, styled: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        if styled and (self.style is None or self.depth is None):
            raise ValueError("styled=True needs both the style adapter and the depth network")
        # Cast first so uint8 only ever feeds a Cast: TensorRT restricts what uint8 tensors may do.
        dtype = next(self.parameters()).dtype
        x = image_to_network(image.to(dtype).permute(0, 3, 1, 2))
        if self.style is not None:
            x = self.style(x)
        if self.depth is None:
            return network_to_image(x.float()).permute(0, 2, 3, 1)
        # Decode in float32: half precision would quantise 80 m to steps of 6 cm.
        depth = self.codec.decode(self.depth(x).float())
        if not styled:
            return depth
        # The uint8 cast comes last, for the same TensorRT reason as above.
        return depth, network_to_image(x.float()).permute(0, 2, 3, 1).round().to(torch.uint8)


class _WithStyled(nn.Module):
    """The graph that export traces for a model with the adapter: outputs depth and styled."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, image: Tensor) -> tuple[Tensor, Tensor]:
        return self.module(image, styled=True)


class _Float32(nn.Module):
    """Runs a normalisation layer in float32 inside a float16 network, as autocast does:
    instance-norm statistics over a whole feature map overflow or lose precision in float16."""

    def __init__(self, norm: nn.Module) -> None:
        super().__init__()
        self.norm = norm

    def forward(self, x: Tensor) -> Tensor:
        return self.norm(x.float()).to(x.dtype)


def to_half(module: nn.Module) -> nn.Module:
    """Convert ``module`` in place to float16 weights and compute, instance norm kept in float32."""
    module.half()
    for parent in list(module.modules()):
        for name, child in parent.named_children():
            if isinstance(child, nn.InstanceNorm2d):
                setattr(parent, name, _Float32(child))
    return module


def load_inference_module(
    depth_checkpoint: str | Path | None = None,
    style_checkpoint: str | Path | None = None,
    *,
    only: str | None = None,
    input_dtype: str = "uint8",
) -> tuple[InferenceModule, ModelMetadata]:
    """Build the fused module (eval mode, no gradients) and its metadata from checkpoints.

    ``only=None``: the depth network, preceded by the style adapter when a style checkpoint
    is given. ``only="depth"`` / ``only="style"``: that network alone. The request is checked
    and the metadata read by ``read_checkpoints``.
    """
    metadata, payloads = read_checkpoints(depth_checkpoint, style_checkpoint, only=only, input_dtype=input_dtype)
    modules = {name: load_network(payloads[name], name) for name in metadata.networks}
    module = InferenceModule(modules.get("style"), modules.get("depth"), metadata.depth_codec).eval()
    module.requires_grad_(False)
    return module, metadata


def export_onnx(
    out: str | Path,
    depth_checkpoint: str | Path | None = None,
    style_checkpoint: str | Path | None = None,
    *,
    only: str | None = None,
    fp16: bool = False,
    fp16_weights: bool = False,
    input_dtype: str = "uint8",
    opset: int = DEFAULT_OPSET,
    verify: bool = True,
) -> ModelMetadata:
    """Write the fused ONNX model to ``out`` (atomically) and return its metadata.

    ``fp16`` exports fp16 arithmetic (for GPUs); ``fp16_weights`` keeps fp32 arithmetic on
    weights stored in fp16: half the file at fp32 speed on CPUs, which run fp16 graphs slowly.
    ``verify`` runs the model in ONNX Runtime (CPU) on a random frame before writing it and
    compares with the fp32 torch module; a difference above ``VERIFY_TOLERANCE`` raises
    ExportError and writes nothing.
    """
    newest = max_opset()
    if not 17 <= opset <= newest:
        raise ExportError(f"opset {opset} is not supported: use 17 to {newest} (the newest opset of the installed "
                          f"onnx {onnx.__version__})")
    if fp16 and fp16_weights:
        raise ExportError("fp16 already stores the weights in fp16; fp16_weights is for fp32 arithmetic")
    module, metadata = load_inference_module(depth_checkpoint, style_checkpoint, only=only, input_dtype=input_dtype)
    metadata = replace(
        metadata, precision="fp16" if fp16 else "fp32", weight_storage="fp16" if fp16 or fp16_weights else "fp32",
        opset=opset,
        export_date=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    )
    traced = to_half(copy.deepcopy(module)) if fp16 else module
    if metadata.outputs_styled:
        traced = _WithStyled(traced).eval()
    # Batch 2: torch.export specialises a dynamic dimension whose example size is 1.
    example = _example_input(metadata, batch=2)
    batch = torch.export.Dim("batch", min=1)
    program = torch.onnx.export(
        traced,
        (example,),
        dynamo=True,
        input_names=[INPUT_NAME],
        output_names=_output_names(metadata),
        opset_version=opset,
        dynamic_shapes={"image": {0: batch}},
        verbose=False,
    )
    model = program.model_proto
    written = next((i.version for i in model.opset_import if i.domain in ("", "ai.onnx")), None)
    if written != opset:  # the exporter fell back to another opset: the metadata would not describe the file
        raise ExportError(f"opset {opset} was requested but the exporter wrote opset {written}; nothing was "
                          f"written (try the default, {DEFAULT_OPSET})")
    if fp16_weights:
        _store_weights_in_fp16(model.graph)
    model.producer_name = "depth_da_ros"
    model.doc_string = f"depth_da_ros {'+'.join(metadata.networks)} model, {describe_precision(metadata)}"
    for key, value in metadata.to_onnx_props().items():
        model.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(model, full_check=True)
    out = Path(out)
    data = model.SerializeToString()
    if verify:  # before writing: a model that fails the check never reaches disk
        _verify(data, out.name, module, metadata)
    atomic_write_bytes(out, data)
    LOG.info("wrote %s (%s, %s, %d nodes)", out, "+".join(metadata.networks), describe_precision(metadata),
             len(model.graph.node))
    return metadata


def max_opset() -> int:
    """The newest ONNX opset the installed onnx package defines (export refuses newer ones)."""
    return int(onnx.defs.onnx_opset_version())


def _store_weights_in_fp16(graph: onnx.GraphProto) -> None:
    """Each fp32 weight tensor of at least ``FP16_WEIGHTS_MIN_VALUES`` values (within fp16's
    range) becomes an fp16 initializer and a Cast back to fp32 under its old name, so every
    consumer is unchanged."""
    initializers, casts = [], []
    for tensor in graph.initializer:
        values = numpy_helper.to_array(tensor) if tensor.data_type == onnx.TensorProto.FLOAT else None
        if (values is not None and values.size >= FP16_WEIGHTS_MIN_VALUES
                and np.abs(values).max() <= np.finfo(np.float16).max):
            half = numpy_helper.from_array(values.astype(np.float16), f"{tensor.name}__fp16")
            casts.append(onnx.helper.make_node("Cast", [half.name], [tensor.name], to=onnx.TensorProto.FLOAT,
                                               name=f"{tensor.name}__to_fp32"))
            tensor = half
        initializers.append(tensor)
    nodes = [*casts, *graph.node]
    del graph.initializer[:], graph.node[:]
    graph.initializer.extend(initializers)
    graph.node.extend(nodes)


def _output_names(metadata: ModelMetadata) -> list[str]:
    return [metadata.output_name, *([metadata.styled_output_name] if metadata.outputs_styled else [])]


def _example_input(metadata: ModelMetadata, batch: int, seed: int = 0) -> Tensor:
    generator = torch.Generator().manual_seed(seed)
    shape = (batch, metadata.input_height, metadata.input_width, 3)
    image = torch.randint(0, 256, shape, dtype=torch.uint8, generator=generator)
    return image if metadata.input_dtype == "uint8" else image.float()


def _verify(model: bytes, name: str, module: InferenceModule, metadata: ModelMetadata) -> None:
    image = _example_input(metadata, batch=1, seed=1)
    with torch.no_grad():
        expected = module(image, styled=metadata.outputs_styled)
    expected = expected if isinstance(expected, tuple) else (expected,)
    try:
        session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    except Exception as exc:  # e.g. a kernel missing for fp16 in this CPU build
        if metadata.precision == "fp32":
            raise ExportError(f"ONNX Runtime cannot load the exported {name}: {exc}") from None
        LOG.warning("not verified: ONNX Runtime (CPU) cannot run the %s model: %s", metadata.precision, exc)
        return
    names = _output_names(metadata)
    for output, got, want in zip(names, session.run(names, {INPUT_NAME: image.numpy()}), expected):
        scale = metadata.max_depth if output == DEPTH_OUTPUT else 255.0
        # A uint8 output rounds: a value near .5 may land one step either side.
        tolerance = VERIFY_TOLERANCE[metadata.weight_storage] * scale + (1.0 if got.dtype == np.uint8 else 0.0)
        error = float(np.abs(got.astype(np.float32) - want.numpy().astype(np.float32)).max())
        LOG.info("verified %s %r: ONNX Runtime vs torch max abs difference %.3g (%.2e of %g)",
                 name, output, error, error / scale, scale)
        if not error <= tolerance:
            raise ExportError(
                f"exported {name} output {output!r} differs from the torch model by {error:.4g} "
                f"(tolerance {tolerance:.4g})"
            )

