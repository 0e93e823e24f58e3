"""Degenerate (constant) frames: the guarded instance norm gives the same adapter output in torch
float32, ONNX Runtime and a float64 reference; the node's detector flags such frames."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from depth_da_ros.export import export_onnx, load_inference_module
from depth_da_ros.models.layers import GuardedInstanceNorm2d, make_norm
from depth_da_ros.pipeline import frame_contrast, is_low_contrast

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import bench_norm_guard  # noqa: E402  (its constant frames and plain(), shared with the benchmark)

SIZE = (64, 192)


@pytest.fixture(scope="module")
def adapter(tmp_path_factory) -> tuple[Path, Path]:
    """A lite-family style adapter (ngf 16, 6 blocks as the bundled model's) and its ONNX export."""
    from model_fixtures import write_style_checkpoint

    root = tmp_path_factory.mktemp("adapter")
    checkpoint = write_style_checkpoint(root / "style.pt", SIZE, ngf=16, n_blocks=6)
    out = root / "style.onnx"
    export_onnx(out, None, checkpoint, only="style")
    return checkpoint, out


def run_adapter(module: nn.Module, frame: np.ndarray, dtype: torch.dtype) -> np.ndarray:
    with torch.no_grad():
        return module.to(dtype)(torch.from_numpy(frame)).double().numpy()


def test_guarded_instance_norm_is_instance_norm_on_signal_and_zero_on_constants():
    norm, plain = make_norm("instance", 4), nn.InstanceNorm2d(4)
    assert isinstance(norm, GuardedInstanceNorm2d) and not list(norm.state_dict())  # old checkpoints load
    x = torch.randn(2, 4, 8, 8) * 3 + 5
    assert torch.equal(norm(x), plain(x))
    noise = 1e-6 * torch.randn(8, 8)
    x[1, 2] = 7.25 + noise  # constant up to float rounding
    out = norm(x)
    assert torch.equal(out[1, 2], torch.zeros(8, 8)) and torch.equal(out[0], plain(x)[0])
    # The unguarded layer amplifies the rounding noise ~1/sqrt(eps) = 316x; 17 layers compound it.
    assert plain(x)[1, 2].abs().max() > 100 * noise.abs().max()


def test_adapter_agrees_with_a_float64_reference_on_constant_frames(adapter):
    checkpoint, onnx_path = adapter
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    module, _ = load_inference_module(None, checkpoint, only="style")
    reference = load_inference_module(None, checkpoint, only="style")[0]
    for name, frame in bench_norm_guard.constant_frames(SIZE).items():
        expected = run_adapter(reference, frame, torch.float64)  # [0, 255] image units
        torch32 = run_adapter(module, frame, torch.float32)
        onnx32 = session.run(None, {"image": frame})[0]
        assert np.abs(torch32 - expected).max() < 0.5, name  # under half a grey level
        assert np.abs(onnx32 - expected).max() < 0.5, name


def test_without_the_guard_a_constant_frame_is_rounding_noise(adapter):
    """The control: the same network with the plain layer disagrees with float64 on an exactly
    constant frame (otherwise the test above would test nothing)."""
    checkpoint, _ = adapter
    module = bench_norm_guard.plain(load_inference_module(None, checkpoint, only="style")[0])
    reference = bench_norm_guard.plain(load_inference_module(None, checkpoint, only="style")[0])
    frame = bench_norm_guard.constant_frames(SIZE)["255"]
    assert np.abs(run_adapter(module, frame, torch.float32) - run_adapter(reference, frame, torch.float64)).max() > 5


def test_low_contrast_frames_are_detected():
    frames = bench_norm_guard.constant_frames(SIZE)
    for name, frame in frames.items():
        assert is_low_contrast(frame[0], 2.0), name
        assert frame_contrast(frame[0]) < 1.0
    scene = np.random.default_rng(1).integers(0, 256, (*SIZE, 3), dtype=np.uint8)
    assert not is_low_contrast(scene, 2.0) and frame_contrast(scene) > 50
    dark = np.clip(np.random.default_rng(2).normal(20, 6, (*SIZE, 3)), 0, 255).astype(np.uint8)
    assert not is_low_contrast(dark, 2.0)  # a dark but textured frame is a frame
    one_channel = np.zeros((*SIZE, 3), np.uint8)
    one_channel[..., 2] = scene[..., 2]  # signal in one channel only
    assert not is_low_contrast(one_channel, 2.0)
    assert not is_low_contrast(frames["0"][0], 0.0)  # 0 disables the check
    grey = frames["128 + 1 LSB"][0, :, :, 0]
    assert is_low_contrast(grey, 2.0)  # grayscale HxW too
    with pytest.raises(ValueError, match="threshold"):
        is_low_contrast(scene, -1.0)
