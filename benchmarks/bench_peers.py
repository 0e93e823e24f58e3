#!/usr/bin/env python3
"""Our pipelines against peer depth networks on this CPU, side by side in one run (issue 16).

    python benchmarks/bench_peers.py                 # ~3 min on 2 cores; records results/peers.md
    python benchmarks/bench_peers.py --rounds 2 --runs 10 --eval-frames 0 --no-record   # a smoke run
    python benchmarks/bench_peers.py --models former_lite.onnx student.onnx   # candidates beside the bundled model

Contestants, all in ONNX Runtime (CPUExecutionProvider, graph optimisation ALL, fp32, batch 1,
``--threads`` intra-op threads):

- ours, end to end: ``DepthPipeline.predict`` on a 1242x375 uint8 RGB frame (resize to the
  network size, style adapter, depth U-Net, metres, resize back): the bundled
  ``models/depth.onnx`` and a fused export of each preset in ``--presets`` (fresh weights).
- peers, the network alone: ``session.run`` on a float32 tensor already at the network size,
  no pre- or post-processing (which favours them): monodepth2 ResNet-18 at 640x192 (the
  reference of the issue's goal), the same network at our bundled size, FastDepth at 224x224
  (``benchmarks/peers.py``; random weights: speed only).

Timing (``bench_pipeline.interleaved_blocks``): every contestant in blocks of ``--warmup``
untimed then ``--runs`` timed frames, the blocks of all contestants in rotating order over
``--rounds`` rounds with a pause before each block (spinning runtime threads would otherwise
slow the next block).
Reported: median ms per frame, its ratio to the reference, GFLOP per frame
(``torch.utils.flop_counter``, 2 per multiply-add, of the torch networks at the size they run
at) and achieved GFLOP/s as a fraction of the CPU's measured fp32 peak (the best of a 1024^3
MatMul in ONNX Runtime, same threads). The goal check: the bundled pipeline end to end in at
most 0.5x the reference's time. The model files (bundled and ``--models``) are also evaluated
on the sim-to-real benchmark's evaluation frames and the holdout (``--eval-frames``), the
accuracy half of the goal.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnx import TensorProto, helper
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # runs from a plain checkout

from bench_pipeline import interleaved_blocks, write_models  # noqa: E402
from peers import PEERS  # noqa: E402
from recording import machine_summary, record  # noqa: E402

from depth_da_ros.camera import KITTI_HEIGHT, KITTI_WIDTH  # noqa: E402
from depth_da_ros.model_metadata import ModelMetadata  # noqa: E402
from depth_da_ros.models import count_parameters, get_preset  # noqa: E402
from depth_da_ros.pipeline import DepthPipeline  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BUNDLED = ROOT / "models" / "depth.onnx"
REFERENCE = "monodepth2_resnet18 192x640"
GOAL_RATIO = 0.5
def session(path: Path, threads: int) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def gflop(module: torch.nn.Module, size: tuple[int, int]) -> float:
    """Forward GFLOP of ``module`` on one [1, 3, H, W] input (2 FLOP per multiply-add)."""
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        module(torch.rand(1, 3, *size))
    return counter.get_total_flops() / 1e9


def measured_peak_gflops(threads: int, n: int = 1024, runs: int = 30) -> float:
    """Practical fp32 peak of this CPU: the best GFLOP/s of an n^3 MatMul in ONNX Runtime."""
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["a", "b"], ["c"])], "peak",
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, [n, n]) for name in ("a", "b")],
        [helper.make_tensor_value_info("c", TensorProto.FLOAT, [n, n])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    sess = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    feeds = {name: np.random.default_rng(0).random((n, n), dtype=np.float32) for name in ("a", "b")}
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        sess.run(None, feeds)
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e9


def export_peer(module: torch.nn.Module, size: tuple[int, int], path: Path) -> None:
    with contextlib.redirect_stdout(io.StringIO()):  # the exporter prints its progress
        torch.onnx.export(module, (torch.rand(1, 3, *size),), str(path), input_names=["x"], output_names=["y"],
                          opset_version=18, dynamo=True, external_data=False, verbose=False)
    onnx.checker.check_model(str(path))


def peer_timer(peer: str, size: tuple[int, int], folder: Path, threads: int
               ) -> tuple[Callable[[], object], float]:
    """A callable running peer network ``peer`` (benchmarks/peers.py) once in ONNX Runtime on a
    float32 [1, 3, H, W] input, and its forward GFLOP; the ONNX file is written into ``folder``."""
    module, _ = PEERS[peer]()
    path = folder / f"{peer}_{size[0]}x{size[1]}.onnx"
    export_peer(module, size, path)
    sess = session(path, threads)
    x = np.random.default_rng(0).random((1, 3, *size), dtype=np.float32)
    return (lambda: sess.run(None, {"x": x})), gflop(module, size)


def reference_timer(folder: Path, threads: int) -> tuple[str, Callable[[], object]]:
    """The goal's reference, monodepth2's ResNet-18 network at 640x192: (its row name, a timer)."""
    fn, _ = peer_timer("monodepth2_resnet18", (192, 640), folder, threads)
    return REFERENCE, fn


def preset_gflop(preset_name: str, networks: tuple[str, ...] = ("style", "depth"),
                 size: tuple[int, int] | None = None) -> float:
    """Forward GFLOP of a preset's ``networks`` at ``size`` (default: the preset's input size)."""
    preset = get_preset(preset_name)
    size = size or (preset.input_height, preset.input_width)
    return sum(gflop(getattr(preset, name).build().eval(), size) for name in networks)


def model_gflop(path: Path, meta: ModelMetadata) -> float | None:
    """Forward GFLOP of an exported model, from its metadata (preset, networks, input size); None
    when the model's weights do not count as the preset's networks (within 2%: batch-norm
    statistics and the like), i.e. the model was trained with other widths than its preset's."""
    preset = get_preset(meta.preset)
    expected = sum(count_parameters(getattr(preset, name).build()) for name in meta.networks)
    stored = sum(int(np.prod(t.dims)) for t in onnx.load(str(path)).graph.initializer)
    if abs(stored - expected) > 0.02 * expected:
        return None
    return preset_gflop(meta.preset, meta.networks, (meta.input_height, meta.input_width))


def describe_model(meta: ModelMetadata) -> str:
    """'bench 96x320, distilled student' and the like, for a row label."""
    if meta.networks == ("depth",):
        kind = "distilled student" if meta.sources.get("depth", {}).get("stage") == "distill" else "depth network"
    else:
        kind = "adapter + depth"
    return f"{meta.preset} {meta.input_height}x{meta.input_width}, {kind}"


def accuracy_table(models: dict[str, DepthPipeline], eval_frames: int) -> str:
    """abs_rel and a1 of each model on the sim-to-real benchmark's evaluation frames (real look,
    seed 1000, rendered at the model's own input size) and on the holdout's real KITTI frames
    (metric, focal rescaling as the node; see bench_sim2real)."""
    import bench_sim2real as bench

    holdout = bench.holdout_frames() if bench.HOLDOUT.is_dir() else None
    lines = ["Accuracy of the model files (weights as shipped): procedural real-look evaluation frames of the "
             f"sim-to-real benchmark (seed {bench.EVAL_SEED}, {eval_frames} frames at each model's input size, crop "
             "none, (1e-3, 80] m, metric) and the real KITTI frames of ../shared/data/holdout (evaluation only; Garg "
             "crop, metric, focal rescaling)" + ("" if holdout else " - holdout absent, skipped") + ".", "",
             "| model | abs_rel | a1 | holdout depth-benchmark abs_rel | holdout velodyne abs_rel |",
             "|---|---:|---:|---:|---:|"]
    for name, pipeline in models.items():
        frames = bench.procedural_frames("real", eval_frames, bench.EVAL_SEED, pipeline.metadata.input_size)
        m, _ = bench.evaluate_procedural(pipeline, frames, f"evaluating {name}", 0)
        cells = [f"{m['abs_rel']:.3f}", f"{m['a1']:.3f}"]
        if holdout:
            h = bench.evaluate_holdout(pipeline, holdout)
            cells += [f"{h[('depth benchmark', False)]['abs_rel']:.3f}", f"{h[('velodyne', False)]['abs_rel']:.3f}"]
        else:
            cells += ["-", "-"]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="*", default=["lite"],
                        help="presets also timed end to end with fresh weights (default: lite)")
    parser.add_argument("--models", nargs="*", type=Path, default=[],
                        help="exported .onnx models also timed end to end (e.g. a candidate for the bundle)")
    parser.add_argument("--threads", type=int, default=2, help="intra-op threads of every session (default: 2)")
    parser.add_argument("--runs", type=int, default=20, help="timed frames per block (default: 20)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed frames at the start of each block (default: 5)")
    parser.add_argument("--rounds", type=int, default=4, help="blocks per contestant, in rotating order (default: 4)")
    parser.add_argument("--eval-frames", type=int, default=64,
                        help="real-look evaluation frames of the sim-to-real benchmark per model file (0 = no "
                             "accuracy table; default: %(default)s)")
    parser.add_argument("--no-record", action="store_true", help="print only; do not write results/peers.md")
    args = parser.parse_args(argv)
    missing = [str(p) for p in args.models if not p.is_file()]
    if missing:
        parser.error(f"--models: no such file: {', '.join(missing)}")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (KITTI_HEIGHT, KITTI_WIDTH, 3), dtype=np.uint8)
    notes = [f"load average at start: {os.getloadavg()[0]:.2f}"]

    fns: dict[str, Callable[[], object]] = {}
    models: dict[str, DepthPipeline] = {}  # model files: their accuracy is measured too
    flops: dict[str, float] = {}
    kinds: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        for i, path in enumerate([BUNDLED, *args.models]):
            pipeline = DepthPipeline(path, "onnxruntime", threads=args.threads)
            meta = pipeline.metadata
            size = (meta.input_height, meta.input_width)
            name = f"ours: {'bundled' if i == 0 else path.name} ({describe_model(meta)})"
            fns[name] = lambda p=pipeline: p.predict(frame)
            models[name] = pipeline
            flops[name] = model_gflop(path, meta)
            kinds[name] = "end to end, 1242x375 uint8 in, metres out"
            if i == 0:
                ours, b_size = name, size
        for preset_name in args.presets:
            preset = get_preset(preset_name)
            paths = write_models(preset, tmp_path)
            pipeline = DepthPipeline(paths["onnx"], "onnxruntime", threads=args.threads)
            name = f"ours: {preset_name} {preset.input_height}x{preset.input_width} (fresh weights)"
            fns[name] = lambda p=pipeline: p.predict(frame)
            flops[name] = preset_gflop(preset_name)
            kinds[name] = "end to end, 1242x375 uint8 in, metres out"

        for peer, size in (("monodepth2_resnet18", (192, 640)), ("monodepth2_resnet18", b_size),
                           ("fastdepth", (224, 224))):
            name = f"{peer} {size[0]}x{size[1]}"
            fns[name], flops[name] = peer_timer(peer, size, tmp_path, args.threads)
            kinds[name] = "network only, float input at its size"

        peak = measured_peak_gflops(args.threads)
        times = {name: [ms for ms, _ in calls]
                 for name, calls in interleaved_blocks(fns, args.runs, args.warmup, args.rounds).items()}
        peak_after = measured_peak_gflops(args.threads)

    med = {name: statistics.median(t) for name, t in times.items()}
    ref = med[REFERENCE]
    peak_used = max(peak, peak_after)
    rows = []
    for name in fns:
        p10, p90 = np.percentile(times[name], [10, 90])
        if flops[name] is None:
            cost = "n/a | n/a | n/a"  # widths other than its preset's: not counted
        else:
            achieved = flops[name] / (med[name] / 1e3)
            cost = f"{flops[name]:.2f} | {achieved:.0f} | {achieved / peak_used:.0%}"
        rows.append(f"| {name} | {kinds[name]} | {med[name]:.1f} ({p10:.1f}-{p90:.1f}) | {med[name] / ref:.2f} | "
                    f"{med[name] / med[ours]:.2f} | {cost} |")
    ratio = med[ours] / ref
    verdict = "meets" if ratio <= GOAL_RATIO else "MISSES"
    notes += [f"measured fp32 peak (1024^3 MatMul, {args.threads} threads, best of 30): {peak:.0f} GFLOP/s before, "
              f"{peak_after:.0f} after the rounds; the larger is used",
              f"load average at end: {os.getloadavg()[0]:.2f}",
              f"goal: bundled pipeline end to end / {REFERENCE} network = {ratio:.2f} "
              f"({verdict} <= {GOAL_RATIO})"]
    body = "\n".join([
        f"ONNX Runtime {ort.__version__}, CPUExecutionProvider, {args.threads} intra-op threads, fp32, batch 1; "
        f"{args.rounds} rounds of one block per contestant in rotating order, each block {args.warmup} warm-up "
        f"and {args.runs} timed frames. Peers have random weights (speed only). "
        "Cells: median ms (p10-p90); GFLOP/s and the share of the measured peak count the networks' FLOPs "
        "over the whole time, pre- and post-processing included for ours. Our sessions keep idle threads "
        "from spinning (as the node needs), the peers' use ONNX Runtime's default: if anything, that "
        f"favours the peers. Machine: {machine_summary()}.",
        "",
        "| contestant | what is timed | ms | x reference | x ours | GFLOP | GFLOP/s | of peak |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
        *rows,
        "",
        *(f"- {note}" for note in notes),
    ])
    if args.eval_frames:
        body += "\n\n" + accuracy_table(models, args.eval_frames)
    print(body)
    if not args.no_record:
        print(f"\nrecorded {record('peers', body)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
