"""DepthPipeline and backends: input resolution out, KITTI-size frames, timings, input kinds,
the adapted frame on request, ``auto`` fallback, and one clear ModelLoadError per failure."""
from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper

from depth_da_ros.backends import BackendOptions, ModelLoadError, load_backend
from depth_da_ros.backends.tensorrt_backend import TensorRTBackend
from depth_da_ros.camera import KITTI_HEIGHT, KITTI_WIDTH, PinholeCamera
from depth_da_ros.checkpoint import network_entry, save_checkpoint
from depth_da_ros.export import ModelMetadata, export_onnx
from depth_da_ros.models import NetworkSpec
from depth_da_ros.normalization import DepthCodec
from depth_da_ros.pipeline import DepthPipeline, as_rgb, postprocess, preprocess

MAX_DEPTH = 80.0
SIZE = (192, 640)  # the lite preset's network size, narrow layers to stay fast
TENSORRT_MISSING = TensorRTBackend.unavailable_reason(Path("model.onnx"), BackendOptions())


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    """Depth + style checkpoints (batch-norm statistics moved off their initial values) and
    their fused ONNX export."""
    root = tmp_path_factory.mktemp("pipeline")
    torch.manual_seed(0)
    depth_spec = NetworkSpec("unet", {"input_nc": 3, "output_nc": 1, "num_downs": 6, "ngf": 8, "norm": "batch"})
    style_spec = NetworkSpec("resnet_generator", {"ngf": 8, "n_blocks": 2, "norm": "instance"})
    depth, style = depth_spec.build().train(), style_spec.build()
    with torch.no_grad():
        for _ in range(3):
            depth(torch.randn(2, 3, *SIZE))
    common = {"preset": "lite", "input_size": list(SIZE), "depth_codec": DepthCodec(MAX_DEPTH).to_dict(),
              "training_camera": PinholeCamera.kitti_like(*SIZE).__dict__, "config": {}, "metrics": {}}
    paths = {"depth": root / "depth.pt", "style": root / "style.pt", "onnx": root / "model.onnx"}
    save_checkpoint(paths["depth"], {**common, "stage": "depth", "deploy": ["depth"], "step": 1,
                                     "networks": {"depth": network_entry(depth, depth_spec)}})
    save_checkpoint(paths["style"], {**common, "stage": "style", "deploy": ["style"], "step": 1,
                                     "networks": {"style": network_entry(style, style_spec)}})
    export_onnx(paths["onnx"], paths["depth"], paths["style"])
    return paths


@pytest.fixture(scope="module")
def kitti_frame() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (KITTI_HEIGHT, KITTI_WIDTH, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def onnx_pipeline(models) -> DepthPipeline:
    return DepthPipeline(models["onnx"], backend="onnxruntime", device="cpu")


def test_kitti_frame_gives_metres_at_input_resolution_with_timings(onnx_pipeline, kitti_frame):
    depth = onnx_pipeline.predict(kitti_frame)
    assert depth.shape == (KITTI_HEIGHT, KITTI_WIDTH) and depth.dtype == np.float32
    assert np.isfinite(depth).all() and depth.min() >= 0 and depth.max() <= MAX_DEPTH
    timing = onnx_pipeline.last_timing
    assert min(timing.pre_ms, timing.infer_ms, timing.post_ms) > 0
    assert timing.total_ms >= timing.pre_ms + timing.infer_ms + timing.post_ms


def test_metadata_is_exposed(onnx_pipeline):
    assert onnx_pipeline.input_size == SIZE and onnx_pipeline.max_depth == MAX_DEPTH
    assert onnx_pipeline.training_camera == PinholeCamera.kitti_like(*SIZE)
    assert onnx_pipeline.metadata.with_style_adapter
    assert "onnxruntime" in onnx_pipeline.description and "CPUExecutionProvider" in onnx_pipeline.description


def test_torch_checkpoints_and_onnx_export_agree_through_the_pipeline(models, onnx_pipeline, kitti_frame):
    torch_pipeline = DepthPipeline(models["depth"], backend="torch", device="cpu", style_checkpoint=models["style"])
    assert torch_pipeline.metadata.sources == onnx_pipeline.metadata.sources
    difference = np.abs(torch_pipeline.predict(kitti_frame) - onnx_pipeline.predict(kitti_frame))
    assert difference.max() <= 1e-3 * MAX_DEPTH
    (torch_depth, torch_styled), (onnx_depth, onnx_styled) = (
        p.predict(kitti_frame, return_styled=True) for p in (torch_pipeline, onnx_pipeline))
    assert np.abs(torch_depth - onnx_depth).max() <= 1e-3 * MAX_DEPTH
    assert torch_styled.dtype == onnx_styled.dtype == np.uint8 and torch_styled.shape == onnx_styled.shape
    assert np.abs(torch_styled.astype(np.int16) - onnx_styled.astype(np.int16)).max() <= 1  # rounding ties


def test_the_adapted_frame_comes_on_request_at_the_network_size(onnx_pipeline, kitti_frame):
    assert onnx_pipeline.metadata.outputs_styled
    depth, styled = onnx_pipeline.predict(kitti_frame, return_styled=True)
    assert styled.shape == (*SIZE, 3) and styled.dtype == np.uint8 and styled.flags.c_contiguous
    assert onnx_pipeline.last_timing.infer_ms > 0
    np.testing.assert_array_equal(depth, onnx_pipeline.predict(kitti_frame))  # the same depth either way


def test_a_model_without_the_styled_output_says_why(models, onnx_pipeline, kitti_frame, tmp_path):
    depth_only = DepthPipeline(models["depth"], backend="torch", device="cpu")
    assert not depth_only.metadata.with_style_adapter and not depth_only.metadata.outputs_styled
    with pytest.raises(ValueError, match="does not output the adapted frame: it has no style adapter"):
        depth_only.predict(kitti_frame, return_styled=True)
    # An export from before the styled output existed: the adapter is in it, its frame is not.
    props = replace(onnx_pipeline.metadata, styled_output_name=None).to_onnx_props()
    older = DepthPipeline(_plain_onnx(tmp_path / "older.onnx", props), backend="onnxruntime", device="cpu")
    assert older.metadata.with_style_adapter and not older.metadata.outputs_styled
    with pytest.raises(ValueError, match="export predates the styled output; re-export it"):
        older.predict(kitti_frame, return_styled=True)


def test_auto_picks_the_best_available_backend(models, caplog):
    with caplog.at_level(logging.INFO, logger="depth_da_ros.backends"):
        from_onnx = DepthPipeline(models["onnx"])
        from_checkpoint = DepthPipeline(models["depth"], style_checkpoint=models["style"])
    expected = "onnxruntime" if TENSORRT_MISSING else "tensorrt"
    assert from_onnx.backend.name == expected
    assert from_checkpoint.backend.name == "torch"
    assert f"auto backend: picked {expected}" in caplog.text and "auto backend: picked torch" in caplog.text
    if TENSORRT_MISSING:
        assert f"skipped tensorrt: {TENSORRT_MISSING}" in caplog.text


def test_grayscale_and_rgba_frames_are_accepted(onnx_pipeline):
    gray = np.random.default_rng(1).integers(0, 256, (100, 300), dtype=np.uint8)
    rgb = np.repeat(gray[:, :, None], 3, axis=2)
    expected = onnx_pipeline.predict(rgb)
    assert np.array_equal(onnx_pipeline.predict(gray), expected)
    assert np.array_equal(onnx_pipeline.predict(gray[:, :, None]), expected)
    rgba = np.concatenate([rgb, np.full_like(gray[:, :, None], 7)], axis=2)
    assert np.array_equal(onnx_pipeline.predict(rgba), expected)


@pytest.mark.parametrize(
    "image, message",
    [
        (np.zeros((10, 10, 3), np.float32), "expected a uint8 image, got float32"),
        (np.zeros((10, 10, 2), np.uint8), "got shape (10, 10, 2)"),
        (np.zeros((1, 10, 10, 3), np.uint8), "got shape (1, 10, 10, 3)"),
    ],
)
def test_other_inputs_raise_a_clear_error(image, message):
    with pytest.raises(ValueError) as exc:
        as_rgb(image)
    assert message in str(exc.value)


def test_preprocess_resizes_to_the_network_size():
    frame = np.zeros((KITTI_HEIGHT, KITTI_WIDTH, 3), np.uint8)
    assert preprocess(frame, SIZE).shape == (1, *SIZE, 3)
    assert preprocess(np.zeros((96, 320, 3), np.uint8), SIZE).shape == (1, *SIZE, 3)


def test_postprocess_keeps_invalid_depth_local():
    depth = np.full((4, 4), 10.0, np.float32)
    depth[:, 2:] = 20.0
    depth[1, 1] = np.nan
    out = postprocess(depth, (8, 8))
    assert np.isnan(out[2:4, 2:4]).all() and np.isnan(out).sum() == 4  # the pixel's own footprint
    assert np.nanmin(out) == 10.0 and np.nanmax(out) == 20.0  # no NaN smeared, no overshoot
    assert np.allclose(out[6, 0], 10.0) and np.allclose(out[6, 7], 20.0)


# --- one clear error per failure --------------------------------------------------------------


def _plain_onnx(path: Path, props: dict[str, str] | None = None) -> Path:
    """A valid ONNX graph (cast uint8 -> float) with optional metadata, but no networks."""
    graph = helper.make_graph(
        [helper.make_node("Cast", ["image"], ["depth"], to=TensorProto.FLOAT)],
        "plain",
        [helper.make_tensor_value_info("image", TensorProto.UINT8, [1, *SIZE, 3])],
        [helper.make_tensor_value_info("depth", TensorProto.FLOAT, [1, *SIZE, 3])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    for key, value in (props or {}).items():
        model.metadata_props.add(key=key, value=value)
    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize("backend", ["auto", "onnxruntime", "torch"])
def test_missing_model(tmp_path, backend):
    suffix = ".pt" if backend == "torch" else ".onnx"
    with pytest.raises(ModelLoadError, match="does not exist"):
        DepthPipeline(tmp_path / f"missing{suffix}", backend=backend)


def test_corrupt_onnx(tmp_path):
    path = tmp_path / "corrupt.onnx"
    path.write_bytes(b"\x08\x07not a protobuf" * 50)
    with pytest.raises(ModelLoadError, match="cannot load"):
        DepthPipeline(path, device="cpu")


def test_corrupt_checkpoint(models, tmp_path):
    path = tmp_path / "truncated.pt"
    path.write_bytes(models["depth"].read_bytes()[:1000])
    with pytest.raises(ModelLoadError, match="cannot read checkpoint"):
        DepthPipeline(path)


def test_checkpoint_without_a_depth_network(models):
    with pytest.raises(ModelLoadError, match="checkpoint has no network 'depth'; it has: style"):
        DepthPipeline(models["style"])


def test_onnx_without_our_metadata(tmp_path):
    with pytest.raises(ModelLoadError, match="has no depth_da_ros metadata"):
        DepthPipeline(_plain_onnx(tmp_path / "plain.onnx"), device="cpu")


def test_style_only_model_is_not_a_depth_model(tmp_path):
    props = ModelMetadata(networks=("style",), input_height=SIZE[0], input_width=SIZE[1]).to_onnx_props()
    with pytest.raises(ModelLoadError, match="outputs images, not depth"):
        DepthPipeline(_plain_onnx(tmp_path / "style.onnx", props), device="cpu")


def test_unknown_backend_lists_the_known_ones(models):
    with pytest.raises(ModelLoadError, match="unknown backend 'openvino'; known: auto, onnxruntime, tensorrt, torch"):
        DepthPipeline(models["onnx"], backend="openvino")


def test_unavailable_backend(models):
    with pytest.raises(ModelLoadError, match="backend 'torch' is not available: .* not ONNX files"):
        load_backend(models["onnx"], "torch")
    with pytest.raises(ModelLoadError, match="backend 'onnxruntime' is not available: .* exported .onnx files"):
        load_backend(models["depth"], "onnxruntime")
    if TENSORRT_MISSING:
        with pytest.raises(ModelLoadError, match="backend 'tensorrt' is not available"):
            load_backend(models["onnx"], "tensorrt")
    if not torch.cuda.is_available():
        with pytest.raises(ModelLoadError, match="fp16 and CUDA graphs are CUDA-only"):
            load_backend(models["depth"], "torch", BackendOptions(device="cpu", precision="fp16"))
        with pytest.raises(ModelLoadError, match="sees no CUDA device"):
            load_backend(models["depth"], "torch", BackendOptions(device="cuda"))


# The CUDA tests (benchmarks/bench_gpu.py runs them on a GPU machine: `pytest -m cuda`).
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="the torch CUDA paths need a CUDA device")


@pytest.mark.cuda
@needs_cuda
def test_torch_cuda_fp32_matches_onnxruntime_on_the_cpu(models, kitti_frame, onnx_pipeline):
    """The hand-over from torch on CUDA to the ONNX export: the same metres and adapted frame
    (cuDNN's TF32 convolutions, torch's default, stay within 0.2% of max depth)."""
    cuda = DepthPipeline(models["depth"], backend="torch", device="cuda", style_checkpoint=models["style"])
    depth, styled = cuda.predict(kitti_frame, return_styled=True)
    expected, expected_styled = onnx_pipeline.predict(kitti_frame, return_styled=True)
    assert np.abs(depth - expected).max() <= 2e-3 * MAX_DEPTH
    assert np.abs(styled.astype(np.int16) - expected_styled.astype(np.int16)).max() <= 2


@pytest.mark.cuda
@needs_cuda
@pytest.mark.parametrize("cuda_graphs", [False, True], ids=["eager", "graph"])
def test_torch_cuda_fp16_within_one_percent_of_max_depth_of_fp32(models, kitti_frame, cuda_graphs):
    fp32 = DepthPipeline(models["depth"], backend="torch", device="cuda", style_checkpoint=models["style"])
    fp16 = DepthPipeline(models["depth"], backend="torch", device="cuda", precision="fp16", cuda_graphs=cuda_graphs,
                         style_checkpoint=models["style"])
    other = np.ascontiguousarray(kitti_frame[::-1])
    for frame in (kitti_frame, kitti_frame, other):  # a graph is captured, replayed, then fed a new frame
        assert np.abs(fp16.predict(frame) - fp32.predict(frame)).max() <= 1e-2 * MAX_DEPTH
    depth, styled = fp16.predict(other, return_styled=True)
    expected, expected_styled = fp32.predict(other, return_styled=True)
    assert np.abs(depth - expected).max() <= 1e-2 * MAX_DEPTH
    assert np.abs(styled.astype(np.int16) - expected_styled.astype(np.int16)).max() <= 0.02 * 255
