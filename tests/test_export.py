"""Export: fused ONNX graph == eval-mode torch (both presets' architectures, depth and the
styled frame), metadata round trip, each network alone, fp16, CLI errors; ONNX Runtime vs
TensorRT where a GPU exists."""
from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from depth_da_ros.backends import BackendOptions, load_backend
from depth_da_ros.backends.tensorrt_backend import TensorRTBackend
from depth_da_ros.camera import PinholeCamera
from depth_da_ros.checkpoint import file_sha256, network_entry, save_checkpoint
from depth_da_ros.export import (
    DEPTH_OUTPUT,
    INPUT_NAME,
    ONNX_FORMAT,
    STYLE_OUTPUT,
    ExportError,
    MetadataError,
    ModelMetadata,
    describe_precision,
    export_onnx,
    load_inference_module,
    read_model_metadata,
)
from depth_da_ros.models import NetworkSpec
from depth_da_ros.normalization import DepthCodec
from training import export as export_cli

MAX_DEPTH = 80.0
# Both presets' architecture families at small widths: lite (U-Net 6 downs, ResNet 6 blocks)
# and paper (U-Net 8 downs, whose 256x256 bottleneck is 1x1, ResNet 9 blocks).
ARCHS = {
    "lite": dict(size=(64, 192), depth={"num_downs": 6, "ngf": 8}, style={"ngf": 8, "n_blocks": 2}),
    "paper": dict(size=(256, 256), depth={"num_downs": 8, "ngf": 4}, style={"ngf": 4, "n_blocks": 9}),
    # bench: resize-then-convolve up-sampling in both networks (ONNX Resize instead of ConvTranspose)
    "bench": dict(size=(32, 96), depth={"num_downs": 5, "ngf": 8, "upsample": "resize"},
                  style={"ngf": 8, "n_blocks": 2, "upsample": "resize"}),
}


def write_checkpoints(root: Path, arch: str) -> tuple[Path, Path]:
    """Depth and style checkpoints with fresh weights; batch-norm statistics moved off their
    initial values by train-mode passes, so that eval-mode parity is a real test."""
    torch.manual_seed(0)
    cfg = ARCHS[arch]
    height, width = cfg["size"]
    depth_spec = NetworkSpec("unet", {"input_nc": 3, "output_nc": 1, "norm": "batch", **cfg["depth"]})
    style_spec = NetworkSpec("resnet_generator", {"input_nc": 3, "output_nc": 3, "norm": "instance", **cfg["style"]})
    depth, style = depth_spec.build().train(), style_spec.build()
    with torch.no_grad():
        for _ in range(3):
            depth(torch.randn(2, 3, height, width) * 0.5 + 0.3)
    camera = PinholeCamera.kitti_like(height, width)
    common = {"preset": arch, "input_size": [height, width], "depth_codec": DepthCodec(MAX_DEPTH).to_dict(),
              "training_camera": camera.__dict__, "config": {}, "metrics": {}}
    depth_path, style_path = root / f"{arch}_depth.pt", root / f"{arch}_style.pt"
    save_checkpoint(depth_path, {**common, "stage": "depth", "deploy": ["depth"], "step": 7,
                                 "networks": {"depth": network_entry(depth, depth_spec)}})
    save_checkpoint(style_path, {**common, "stage": "style", "deploy": ["style"], "step": 3,
                                 "networks": {"style": network_entry(style, style_spec)}})
    return depth_path, style_path


def random_frames(size: tuple[int, int], batch: int = 2, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (batch, *size, 3), dtype=np.uint8)


def run_onnx(path: Path, image: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {INPUT_NAME: image})[0]


@pytest.fixture(scope="module", params=sorted(ARCHS))
def fused(request, tmp_path_factory):
    """Checkpoints of one architecture and their fused export, written through the CLI."""
    root = tmp_path_factory.mktemp(request.param)
    depth, style = write_checkpoints(root, request.param)
    out = root / "model.onnx"
    assert export_cli.main(["--depth", str(depth), "--style", str(style), "--out", str(out)]) == 0
    return request.param, depth, style, out


def test_fused_export_matches_eval_mode_torch(fused):
    _, depth, style, out = fused
    module, metadata = load_inference_module(depth, style)
    frames = random_frames(metadata.input_size)  # batch 2: the batch dimension is dynamic
    with torch.no_grad():
        expected = module(torch.from_numpy(frames)).numpy()
    got = run_onnx(out, frames)
    assert got.shape == (2, 1, *metadata.input_size) and got.dtype == np.float32
    assert np.abs(got - expected).max() <= 1e-3 * MAX_DEPTH
    # The check means something: with batch statistics (train mode) the output moves.
    module.depth.train()
    with torch.no_grad():
        train_mode = module(torch.from_numpy(frames)).numpy()
    assert np.abs(train_mode - expected).max() > 10 * 1e-3 * MAX_DEPTH


def test_fused_export_outputs_the_adapted_frame_as_torch_does(fused):
    _, depth, style, out = fused
    module, metadata = load_inference_module(depth, style)
    frames = random_frames(metadata.input_size)
    with torch.no_grad():
        expected = module(torch.from_numpy(frames), styled=True)[1].numpy()
        adapter_alone = load_inference_module(None, style, only="style")[0](torch.from_numpy(frames)).numpy()
    # The styled output is the adapter's frame, rounded (not the input passed through).
    np.testing.assert_array_equal(expected, np.round(adapter_alone).astype(np.uint8))
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    depth_alone, = session.run([DEPTH_OUTPUT], {INPUT_NAME: frames})
    both_depth, styled = session.run([DEPTH_OUTPUT, STYLE_OUTPUT], {INPUT_NAME: frames})
    assert styled.shape == frames.shape and styled.dtype == np.uint8
    difference = np.abs(styled.astype(np.int16) - expected.astype(np.int16))
    assert difference.max() <= 1 and (difference > 0).mean() < 1e-2  # ties rounded apart, nothing more
    np.testing.assert_array_equal(both_depth, depth_alone)


def test_graph_io_reflection_padding_and_transposed_convs(fused):
    arch, _, _, out = fused
    model = onnx.load(str(out))
    onnx.checker.check_model(model, full_check=True)
    (inp,), (outp, styled) = model.graph.input, model.graph.output
    height, width = read_model_metadata(out).input_size
    dims = lambda v: [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]  # noqa: E731
    assert (inp.name, inp.type.tensor_type.elem_type, dims(inp)) == (INPUT_NAME, onnx.TensorProto.UINT8,
                                                                     ["batch", height, width, 3])
    assert (outp.name, outp.type.tensor_type.elem_type, dims(outp)) == (DEPTH_OUTPUT, onnx.TensorProto.FLOAT,
                                                                        ["batch", 1, height, width])
    assert (styled.name, styled.type.tensor_type.elem_type, dims(styled)) == (STYLE_OUTPUT, onnx.TensorProto.UINT8,
                                                                              ["batch", height, width, 3])
    ops = {node.op_type for node in model.graph.node}
    upsampling = "Resize" if ARCHS[arch]["depth"].get("upsample") == "resize" else "ConvTranspose"
    assert {upsampling, "InstanceNormalization", "Pad"} <= ops
    assert upsampling != "Resize" or "ConvTranspose" not in ops
    pad_modes = {a.s for n in model.graph.node if n.op_type == "Pad" for a in n.attribute if a.name == "mode"}
    assert pad_modes == {b"reflect"}
    assert max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) >= 17


def test_metadata_round_trip(fused):
    arch, depth, style, out = fused
    meta = read_model_metadata(out)
    height, width = ARCHS[arch]["size"]
    assert meta.networks == ("style", "depth") and meta.with_style_adapter and meta.outputs_depth
    assert meta.outputs_styled and meta.styled_output_name == STYLE_OUTPUT
    assert (meta.preset, meta.input_size, meta.input_dtype, meta.precision) == (arch, (height, width), "uint8", "fp32")
    assert meta.depth_codec == DepthCodec(MAX_DEPTH) and meta.max_depth == MAX_DEPTH
    assert meta.training_camera == PinholeCamera.kitti_like(height, width)
    assert meta.sources["depth"]["sha256"] == file_sha256(depth)
    assert meta.sources["style"]["sha256"] == file_sha256(style)
    assert (meta.sources["depth"]["step"], meta.sources["style"]["stage"]) == (7, "style")
    exported = dt.datetime.fromisoformat(meta.export_date)
    assert exported.tzinfo is not None and abs(dt.datetime.now(dt.timezone.utc) - exported) < dt.timedelta(hours=1)
    props = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert props["format"] == f'"{ONNX_FORMAT}"' and props["with_style_adapter"] == "true"
    assert props["styled_output_name"] == f'"{STYLE_OUTPUT}"'
    # An export from before the styled output (no such key) still reads: adapter, no styled frame.
    older = ModelMetadata.from_onnx_props({k: v for k, v in props.items() if k != "styled_output_name"})
    assert older.with_style_adapter and not older.outputs_styled and older.styled_output_name is None
    # The same contract read from the checkpoints: only the export fields differ.
    from_checkpoints = read_model_metadata(depth, style)
    assert from_checkpoints.__dict__ | {"export_date": meta.export_date, "opset": meta.opset} == meta.__dict__


def test_each_network_exports_alone(tmp_path):
    depth, style = write_checkpoints(tmp_path, "lite")
    frames = random_frames(ARCHS["lite"]["size"])

    depth_meta = export_onnx(tmp_path / "depth.onnx", depth, only="depth", input_dtype="float32")
    assert depth_meta.networks == ("depth",) and not depth_meta.with_style_adapter
    assert not depth_meta.outputs_styled
    assert [o.name for o in onnx.load(str(tmp_path / "depth.onnx")).graph.output] == [DEPTH_OUTPUT]
    module, _ = load_inference_module(depth, only="depth", input_dtype="float32")
    float_frames = frames.astype(np.float32)
    with torch.no_grad():
        expected = module(torch.from_numpy(float_frames)).numpy()
    assert np.abs(run_onnx(tmp_path / "depth.onnx", float_frames) - expected).max() <= 1e-3 * MAX_DEPTH

    style_meta = export_onnx(tmp_path / "style.onnx", None, style, only="style")
    assert style_meta.networks == ("style",) and style_meta.depth_codec is None
    assert style_meta.output_name == STYLE_OUTPUT and not style_meta.outputs_styled
    module, _ = load_inference_module(None, style, only="style")
    with torch.no_grad():
        expected = module(torch.from_numpy(frames)).numpy()
    styled = run_onnx(tmp_path / "style.onnx", frames)
    assert styled.shape == frames.shape and styled.dtype == np.float32
    assert np.abs(styled - expected).max() <= 1e-3 * 255
    assert read_model_metadata(tmp_path / "style.onnx") == style_meta


def test_fp16_export_keeps_io_types_and_stays_close(tmp_path):
    depth, style = write_checkpoints(tmp_path, "lite")
    out = tmp_path / "model16.onnx"
    meta = export_onnx(out, depth, style, fp16=True, verify=False)
    assert meta.precision == "fp16"
    model = onnx.load(str(out))
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.UINT8
    assert [o.type.tensor_type.elem_type for o in model.graph.output] == [onnx.TensorProto.FLOAT,
                                                                           onnx.TensorProto.UINT8]
    assert {t.data_type for t in model.graph.initializer if len(t.dims) == 4} == {onnx.TensorProto.FLOAT16}
    # Instance norm runs in float32 (cast in), as autocast would: fp16 statistics overflow.
    producers = {output: node for node in model.graph.node for output in node.output}
    for node in model.graph.node:
        if node.op_type == "InstanceNormalization":
            cast = producers[node.input[0]]
            assert cast.op_type == "Cast" and cast.attribute[0].i == onnx.TensorProto.FLOAT
    frames = random_frames(meta.input_size)
    try:
        got = run_onnx(out, frames)
    except Exception as exc:  # CPU builds of onnxruntime lack some fp16 kernels
        pytest.skip(f"onnxruntime {ort.__version__} (CPU) cannot run the fp16 model: {exc}")
    module, _ = load_inference_module(depth, style)
    with torch.no_grad():
        expected = module(torch.from_numpy(frames)).numpy()
    assert np.abs(got - expected).max() <= 1e-2 * MAX_DEPTH


@pytest.mark.parametrize(
    "args, message",
    [
        (["--style", "{style}"], "a depth checkpoint (--depth) is required"),
        (["--depth", "{depth}", "--style", "{style}", "--only", "depth"], "drop the style checkpoint"),
        (["--style", "{style}", "--depth", "{depth}", "--only", "style"], "drop the depth checkpoint"),
        (["--depth", "{root}/missing.pt"], "does not exist"),
        (["--depth", "{style}"], "checkpoint has no network 'depth'; it has: style"),
    ],
)
def test_cli_reports_bad_requests_in_one_line(tmp_path, caplog, args, message):
    depth, style = write_checkpoints(tmp_path, "lite")
    argv = [a.format(depth=depth, style=style, root=tmp_path) for a in args]
    with caplog.at_level(logging.ERROR, logger="training.export"):
        assert export_cli.main([*argv, "--out", str(tmp_path / "x.onnx")]) == 1
    assert message in caplog.text
    assert not (tmp_path / "x.onnx").exists()


@pytest.mark.parametrize("number, cause", [(28, "no space left on the device"), (27, "file too large")])
def test_full_disk_while_writing_the_model_is_one_line(tmp_path, caplog, capsys, monkeypatch, number, cause):
    import os

    import depth_da_ros.export as export_lib

    depth, _ = write_checkpoints(tmp_path, "lite")

    def refused(path, data):
        raise OSError(number, os.strerror(number))

    monkeypatch.setattr(export_lib, "atomic_write_bytes", refused)
    out = tmp_path / "m.onnx"
    with caplog.at_level(logging.ERROR, logger="training.export"):
        assert export_cli.main(["--depth", str(depth), "--out", str(out), "--no-verify"]) == 1
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    hint = "free space or write elsewhere (another run.run_dir, --out)" if number == 28 else \
        "the process's file-size limit (ulimit -f)"
    assert errors == [f"cannot write {out}: {cause}: {hint}"], errors
    assert "Traceback" not in capsys.readouterr().err and not out.exists()


def test_cli_rejects_an_output_that_is_not_onnx(tmp_path):
    with pytest.raises(SystemExit) as exc:
        export_cli.main(["--depth", "d.pt", "--out", str(tmp_path / "model.pt")])
    assert exc.value.code == 2


def test_fp16_weights_export_halves_the_file_and_computes_in_fp32(tmp_path):
    depth, style = write_checkpoints(tmp_path, "lite")
    full, half = tmp_path / "fp32.onnx", tmp_path / "fp16w.onnx"
    export_onnx(full, depth, style, verify=False)
    meta = export_onnx(half, depth, style, fp16_weights=True)  # verify: ONNX Runtime vs torch within 1%
    assert (meta.precision, meta.weight_storage) == ("fp32", "fp16")
    assert read_model_metadata(half) == meta and describe_precision(meta) == "fp32 on fp16 weights"
    # The weights halve; the graph itself (nodes and their metadata) does not, and in these tiny
    # test models it is a third of the file.
    def weight_bytes(path: Path) -> int:
        return sum(len(t.raw_data) for t in onnx.load(str(path)).graph.initializer)

    assert weight_bytes(half) < 0.55 * weight_bytes(full) and half.stat().st_size < full.stat().st_size
    model = onnx.load(str(half))
    stored = {t.name: t.data_type for t in model.graph.initializer}
    weights = [name for name, dtype in stored.items() if dtype == onnx.TensorProto.FLOAT16]
    assert weights and all(name.endswith("__fp16") for name in weights)
    casts = {node.input[0] for node in model.graph.node if node.op_type == "Cast"}
    assert set(weights) <= casts  # each stored weight is cast back to fp32 before use
    frames = random_frames(meta.input_size)
    module, _ = load_inference_module(depth, style)
    with torch.no_grad():
        expected = module(torch.from_numpy(frames)).numpy()
    assert np.abs(run_onnx(half, frames) - expected).max() <= 2e-3 * MAX_DEPTH
    with pytest.raises(ExportError, match="fp16 already stores the weights in fp16"):
        export_onnx(tmp_path / "both.onnx", depth, style, fp16=True, fp16_weights=True)
    # Exports from before weight_storage existed stored the weights as they computed.
    props = {key: value for key, value in meta.to_onnx_props().items() if key != "weight_storage"}
    assert ModelMetadata.from_onnx_props({**props, "precision": '"fp16"'}).weight_storage == "fp16"
    assert ModelMetadata.from_onnx_props(props).weight_storage == "fp32"
    with pytest.raises(MetadataError, match="fp16 arithmetic runs on fp16 weights"):
        ModelMetadata.from_onnx_props({**props, "precision": '"fp16"', "weight_storage": '"fp32"'})


# --- ONNX Runtime vs TensorRT (GPU machines only) -----------------------------------------

TENSORRT_MISSING = TensorRTBackend.unavailable_reason(Path("model.onnx"), BackendOptions())


@pytest.mark.skipif(TENSORRT_MISSING is not None, reason=f"TensorRT parity needs TensorRT and CUDA: {TENSORRT_MISSING}")
@pytest.mark.parametrize("case", ["fp32", "fp16-export", "fp16-builder-flag", "fp16-weights"])
def test_tensorrt_matches_onnxruntime(fused, tmp_path, caplog, case):
    import tensorrt as trt

    _, depth, style, out = fused
    if case == "fp16-builder-flag" and not hasattr(trt.BuilderFlag, "FP16"):
        pytest.skip(f"TensorRT {trt.__version__} has no FP16 builder flag (strongly typed only)")
    if case in ("fp16-export", "fp16-weights"):
        out = tmp_path / f"{case}.onnx"
        export_onnx(out, depth, style, fp16=case == "fp16-export", fp16_weights=case == "fp16-weights", verify=False)
    precision, tolerance = {"fp32": ("fp32", 1e-3), "fp16-weights": ("fp32", 2e-3)}.get(case, ("fp16", 1e-2))
    reference = load_backend(fused[3], "onnxruntime", BackendOptions(device="cpu"))
    options = BackendOptions(precision=precision, cache_dir=tmp_path, max_batch=2)
    trt_backend = load_backend(out, "tensorrt", options)
    frames = random_frames(reference.input_size, batch=3)  # 3 > max_batch: runs in chunks
    expected, expected_styled = reference.infer(frames, return_styled=True)
    assert np.abs(trt_backend.infer(frames) - expected).max() <= tolerance * MAX_DEPTH
    depth_with, styled = trt_backend.infer(frames, return_styled=True)
    assert np.abs(depth_with - expected).max() <= tolerance * MAX_DEPTH
    assert styled.dtype == np.uint8 and styled.shape == frames.shape
    assert np.abs(styled.astype(np.int16) - expected_styled.astype(np.int16)).max() <= 1 + tolerance * 255
    # A second load reuses the cached engine; a corrupted entry is rebuilt, not trusted.
    with caplog.at_level(logging.INFO):
        load_backend(out, "tensorrt", options)
    assert "loaded cached TensorRT engine" in caplog.text
    trt_backend.engine_path.write_bytes(b"corrupt")
    caplog.clear()
    with caplog.at_level(logging.INFO):
        rebuilt = load_backend(out, "tensorrt", options)
    assert "stale or corrupt" in caplog.text
    assert np.abs(rebuilt.infer(frames) - expected).max() <= tolerance * MAX_DEPTH


# -- issue 25 item 9: unsupported opsets refused before export ---------------------------------------------


@pytest.mark.parametrize("opset", [16, 29, 99])
def test_unsupported_opsets_are_refused_before_export(tmp_path, capsys, opset):
    from depth_da_ros.export import ExportError, export_onnx, max_opset
    from training import export as export_tool

    assert max_opset() < 29
    with pytest.raises(SystemExit) as exc:
        export_tool.main(["--depth", str(tmp_path / "absent.pt"), "--out", str(tmp_path / "m.onnx"),
                          "--opset", str(opset)])
    assert exc.value.code == 2 and f"--opset {opset} is not supported" in capsys.readouterr().err
    with pytest.raises(ExportError, match=f"opset {opset} is not supported"):  # the library checks first too
        export_onnx(tmp_path / "m.onnx", tmp_path / "absent.pt", opset=opset)
    assert not (tmp_path / "m.onnx").exists()
