"""What the guarded instance norm (``models.layers.GuardedInstanceNorm2d``) costs and buys.

    python benchmarks/bench_norm_guard.py              # writes results/norm_guard.md
    python benchmarks/bench_norm_guard.py --runs 5 --no-record

The lite architecture (ResNet adapter ngf 16 x 6 blocks + U-Net 6 downs ngf 32, 192x640) with
fresh weights is exported twice, with the guarded and with torch's plain InstanceNorm2d in
the adapter, as the bundled model is stored (fp32 arithmetic on fp16 weights). Cost: ONNX
Runtime latency per frame, the two models run alternately on one random frame. Benefit: the
adapter's largest difference, in grey levels of its [0, 255] output, between torch float32 /
ONNX Runtime and a float64 reference on constant frames, exact and with 1 LSB of noise.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from recording import machine_summary, record  # noqa: E402

from depth_da_ros.camera import PinholeCamera  # noqa: E402
from depth_da_ros.checkpoint import network_entry, save_checkpoint  # noqa: E402
from depth_da_ros.export import export_onnx, load_inference_module, quiet_exporter_logs  # noqa: E402
from depth_da_ros.models import NetworkSpec  # noqa: E402
from depth_da_ros.models.layers import GuardedInstanceNorm2d  # noqa: E402
from depth_da_ros.normalization import DepthCodec  # noqa: E402

SIZE = (192, 640)
DEPTH = NetworkSpec("unet", {"input_nc": 3, "output_nc": 1, "num_downs": 6, "ngf": 32, "norm": "batch"})
STYLE = NetworkSpec("resnet_generator", {"input_nc": 3, "output_nc": 3, "ngf": 16, "n_blocks": 6, "norm": "instance"})


def plain(module: nn.Module) -> nn.Module:
    """``module`` with torch's InstanceNorm2d in place of every guarded one."""
    for parent in list(module.modules()):
        for name, child in parent.named_children():
            if isinstance(child, GuardedInstanceNorm2d):
                setattr(parent, name, nn.InstanceNorm2d(child.num_features))
    return module


def write_checkpoints(root: Path) -> tuple[Path, Path]:
    torch.manual_seed(0)
    common = {"preset": "lite", "input_size": list(SIZE), "depth_codec": DepthCodec(80.0).to_dict(),
              "training_camera": PinholeCamera.kitti_like(*SIZE).__dict__, "config": {}, "metrics": {}}
    depth, style = root / "depth.pt", root / "style.pt"
    save_checkpoint(depth, {**common, "stage": "depth", "deploy": ["depth"], "step": 1,
                            "networks": {"depth": network_entry(DEPTH.build().eval(), DEPTH)}})
    save_checkpoint(style, {**common, "stage": "style", "deploy": ["style"], "step": 1,
                            "networks": {"style": network_entry(STYLE.build(), STYLE)}})
    return depth, style


def export_both(root: Path, prefix: str, depth: Path | None, style: Path, **options) -> dict[str, Path]:
    """The model exported with the guarded and with the plain norm (``export_onnx`` ``options``)."""
    import depth_da_ros.export as export_module

    paths = {"guarded": root / f"{prefix}_guarded.onnx", "plain": root / f"{prefix}_plain.onnx"}
    export_onnx(paths["guarded"], depth, style, verify=False, **options)
    original = export_module.load_inference_module

    def plain_module(*args, **kwargs):
        module, metadata = original(*args, **kwargs)
        return plain(module), metadata

    export_module.load_inference_module = plain_module
    try:
        export_onnx(paths["plain"], depth, style, verify=False, **options)
    finally:
        export_module.load_inference_module = original
    return paths


def latency(paths: dict[str, Path], runs: int, threads: int) -> dict[str, list[float]]:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    sessions = {k: ort.InferenceSession(str(p), options, providers=["CPUExecutionProvider"]) for k, p in paths.items()}
    frame = np.random.default_rng(0).integers(0, 256, (1, *SIZE, 3), dtype=np.uint8)
    for session in sessions.values():
        for _ in range(3):
            session.run(None, {"image": frame})
    times: dict[str, list[float]] = {k: [] for k in sessions}
    for _ in range(runs):
        for key, session in sessions.items():
            started = time.perf_counter()
            session.run(None, {"image": frame})
            times[key].append(1e3 * (time.perf_counter() - started))
    return times


def constant_frames(size: tuple[int, int] = SIZE) -> dict[str, np.ndarray]:
    """Black, grey and white frames, exact and with 1 LSB of noise, uint8 (1, H, W, 3) at ``size``."""
    rng = np.random.default_rng(0)
    frames = {}
    for value in (0, 128, 255):
        exact = np.full((1, *size, 3), value, np.int64)
        frames[f"{value}"] = exact.astype(np.uint8)
        frames[f"{value} + 1 LSB"] = np.clip(exact + rng.integers(-1, 2, exact.shape), 0, 255).astype(np.uint8)
    return frames


def agreement(root: Path, style: Path) -> dict[str, dict[str, tuple[float, float]]]:
    """Per norm and frame: (max |torch fp32 - fp64|, max |ONNX Runtime - fp64|) of the adapter."""
    out: dict[str, dict[str, tuple[float, float]]] = {}
    onnx_paths = export_both(root, "style", None, style, only="style")
    for norm in ("guarded", "plain"):
        convert = (lambda m: m) if norm == "guarded" else plain
        single = convert(load_inference_module(None, style, only="style")[0])
        double = convert(load_inference_module(None, style, only="style")[0]).double()
        session = ort.InferenceSession(str(onnx_paths[norm]), providers=["CPUExecutionProvider"])
        out[norm] = {}
        for name, frame in constant_frames().items():
            with torch.no_grad():
                reference = double(torch.from_numpy(frame)).numpy()
                fp32 = single(torch.from_numpy(frame)).double().numpy()
            onnx32 = session.run(None, {"image": frame})[0]
            out[norm][name] = (float(np.abs(fp32 - reference).max()), float(np.abs(onnx32 - reference).max()))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=30, help="timed runs per model")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args(argv)
    quiet_exporter_logs()
    torch.set_num_threads(args.threads)
    import os

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        depth, style = write_checkpoints(root)
        load_before = os.getloadavg()[0]
        times = latency(export_both(root, "fused", depth, style, fp16_weights=True), args.runs, args.threads)
        load_after = os.getloadavg()[0]
        agree = agreement(root, style)
    p50 = {k: float(np.median(v)) for k, v in times.items()}
    lines = [f"Lite architecture, fresh weights, {SIZE[1]}x{SIZE[0]}, ONNX Runtime CPU, {args.threads} threads, "
             f"{args.runs} alternating runs per model; load average {load_before:.1f} before and "
             f"{load_after:.1f} after the timed runs (above {os.cpu_count()}: other jobs shared the CPU, so the "
             "ratio is the figure to read).", "",
             "| instance norm in the adapter | p50 (ms) | p10 (ms) | p90 (ms) |", "|---|---:|---:|---:|"]
    for key in ("plain", "guarded"):
        v = times[key]
        lines.append(f"| {key} | {p50[key]:.1f} | {np.percentile(v, 10):.1f} | {np.percentile(v, 90):.1f} |")
    lines += ["", f"Guarded / plain p50: {p50['guarded'] / p50['plain']:.3f}.", "",
              "Adapter output, largest difference from a float64 reference (grey levels of 255):", "",
              "| frame | plain: torch fp32 | plain: ONNX Runtime | guarded: torch fp32 | guarded: ONNX Runtime |",
              "|---|---:|---:|---:|---:|"]
    for name in constant_frames():
        (pt, po), (gt, go) = agree["plain"][name], agree["guarded"][name]
        lines.append(f"| constant {name} | {pt:.3g} | {po:.3g} | {gt:.3g} | {go:.3g} |")
    body = "\n".join(lines)
    print(body)
    if args.no_record:
        print(machine_summary())
    else:
        print(f"wrote {record('norm_guard', body)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
