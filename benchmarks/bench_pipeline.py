"""DepthPipeline latency per backend and preset on a KITTI-size (1242x375) frame.

    python benchmarks/bench_pipeline.py --presets lite --threads 2
    python benchmarks/bench_pipeline.py --presets lite paper --backends onnxruntime --runs 20

Per backend (torch on the checkpoints; onnxruntime and tensorrt on the fused ONNX export)
and preset: p50 / p90 of pre-processing (resize to the network size), inference,
post-processing (resize back) and end to end, and frames/s (frames over the summed
end-to-end time). Weights are freshly initialised: latency does not depend on them. Each
backend runs in warmed-up blocks, in alternating order over a few rounds (see ``bench``).
Issue target on the 2-core CPU: ``lite`` end to end <= 100 ms p50 via ONNX Runtime, and
ONNX Runtime no slower than torch. Records benchmarks/results/pipeline-<presets>.md unless
--no-record. Run it on an otherwise idle machine: with one core busy elsewhere, torch's
OpenMP team slowed down ~20x here (lite 1.9 s), ONNX Runtime ~2.5x.

Findings for lite (2-core AMD EPYC, onnxruntime 1.32, session.run only, median ms):
graph optimisation ALL 61-62 (its NCHWc conv layouts pay off), EXTENDED 73, BASIC 72;
1 intra-op thread 91; spinning off 63; denormals-as-zero 62. Per-op profile of one frame
(62 ms): Conv 28, ConvTranspose 18, InstanceNormalization 5, NCHWc reorders 5, Pad 4, rest
2; the uint8 NHWC input's cast + transpose cost 0.2 and the resizes 1.5 (pre) / 0.3 (post).
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Callable, TypeVar

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # runs from a plain checkout

from depth_da_ros.backends import BACKENDS, BackendOptions  # noqa: E402
from depth_da_ros.camera import KITTI_HEIGHT, KITTI_WIDTH, PinholeCamera  # noqa: E402
from depth_da_ros.checkpoint import network_entry, save_checkpoint  # noqa: E402
from depth_da_ros.export import export_onnx  # noqa: E402
from depth_da_ros.models import ModelPreset, get_preset  # noqa: E402
from depth_da_ros.node_diagnostics import percentile  # noqa: E402
from depth_da_ros.normalization import DepthCodec  # noqa: E402
from depth_da_ros.pipeline import DepthPipeline, StageTiming  # noqa: E402

from recording import record  # noqa: E402

LOG = logging.getLogger("bench_pipeline")
STAGES = ("pre_ms", "infer_ms", "post_ms", "total_ms")
TARGET_MS = 100.0
BLOCK_PAUSE_S = 1.0
T = TypeVar("T")


def write_models(preset: ModelPreset, root: Path, onnx: bool = True) -> dict[str, Path]:
    """Fresh depth + style checkpoints of ``preset`` and (``onnx``) their fused fp32 ONNX export."""
    common = {"preset": preset.name, "input_size": [preset.input_height, preset.input_width],
              "depth_codec": DepthCodec(preset.max_depth).to_dict(), "config": {}, "metrics": {}, "step": 0,
              "training_camera": PinholeCamera.kitti_like(preset.input_height, preset.input_width).__dict__}
    paths = {name: root / f"{preset.name}_{name}.pt" for name in ("depth", "style")}
    for name, path in paths.items():
        spec = getattr(preset, name)
        save_checkpoint(path, {**common, "stage": name, "deploy": [name],
                               "networks": {name: network_entry(spec.build(), spec)}})
    if onnx:
        paths["onnx"] = root / f"{preset.name}.onnx"
        export_onnx(paths["onnx"], paths["depth"], paths["style"], verify=False)
    return paths


def interleaved_blocks(fns: dict[str, Callable[[], T]], per_block: int, warmup: int,
                       rounds: int) -> dict[str, list[tuple[float, T]]]:
    """Each callable in its own blocks (``warmup`` untimed calls, then ``per_block`` timed ones),
    the blocks of all callables in rotating order over ``rounds``, with a pause before each block.
    Returns, per callable, (wall ms, result) of every timed call. Not call-by-call interleaving:
    on 2 cores the worker threads one runtime leaves spinning (ONNX Runtime's pool, torch's OpenMP
    team) slow down the next one's call; measured for lite, torch took 98 ms interleaved with ONNX
    Runtime and 66 ms alone."""
    names = list(fns)
    calls: dict[str, list[tuple[float, T]]] = {name: [] for name in names}
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            time.sleep(BLOCK_PAUSE_S)  # lets the previous block's spinning threads go to sleep
            for _ in range(warmup):
                fns[name]()
            for _ in range(per_block):
                start = time.perf_counter()
                result = fns[name]()
                calls[name].append(((time.perf_counter() - start) * 1e3, result))
    return calls


def bench(pipelines: dict[str, DepthPipeline], frame: np.ndarray, runs: int, warmup: int,
          rounds: int) -> dict[str, list[StageTiming]]:
    """The StageTiming of each timed ``predict`` per backend, ``runs`` frames in all spread over
    ``rounds`` blocks (``interleaved_blocks``)."""
    def timed(pipeline: DepthPipeline) -> StageTiming:
        pipeline.predict(frame)
        return pipeline.last_timing

    calls = interleaved_blocks({name: partial(timed, p) for name, p in pipelines.items()}, max(1, runs // rounds),
                               warmup, rounds)
    return {name: [timing for _, timing in series] for name, series in calls.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["lite"], help="model presets (paper is slow on CPU)")
    parser.add_argument("--backends", nargs="+", default=["torch", "onnxruntime", "tensorrt"],
                        help="backends to time; unavailable ones are reported and skipped")
    parser.add_argument("--threads", type=int, default=2, help="intra-op threads for torch, ONNX Runtime and OpenCV")
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=5, help="untimed frames at the start of each block")
    parser.add_argument("--rounds", type=int, default=3, help="blocks per backend, in alternating order")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda[:N]")
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    cv2.setNumThreads(args.threads)
    torch.manual_seed(0)
    frame = np.random.default_rng(0).integers(0, 256, (KITTI_HEIGHT, KITTI_WIDTH, 3), dtype=np.uint8)

    # Other processes on the cores invalidate the figures (torch's OpenMP degrades by 10x+).
    rows, notes = [], [f"load average at start: {os.getloadavg()[0]:.2f}"]
    with tempfile.TemporaryDirectory() as tmp:
        for preset_name in args.presets:
            preset = get_preset(preset_name)
            paths = write_models(preset, Path(tmp))
            pipelines: dict[str, DepthPipeline] = {}
            for backend in args.backends:
                model = paths["onnx"] if backend in ("onnxruntime", "tensorrt") else paths["depth"]
                options = BackendOptions(device=args.device, threads=args.threads)
                reason = BACKENDS.get(backend).unavailable_reason(model, options)
                if reason:
                    notes.append(f"{preset_name}/{backend} skipped: {reason}")
                    continue
                pipelines[backend] = DepthPipeline(model, backend, device=args.device, threads=args.threads,
                                                   style_checkpoint=paths["style"] if backend == "torch" else None,
                                                   cache_dir=Path(tmp) / "cache")
            timings = bench(pipelines, frame, args.runs, args.warmup, args.rounds)
            for backend, series in timings.items():
                cells = []
                for stage in STAGES:
                    values = [getattr(t, stage) for t in series]
                    cells.append(f"{percentile(values, 50):.1f} / {percentile(values, 90):.1f}")
                fps = len(series) / (sum(t.total_ms for t in series) / 1e3)
                rows.append(f"| {preset_name} {preset.input_height}x{preset.input_width} | {backend} | "
                            + " | ".join(cells) + f" | {fps:.1f} |")
                notes.append(f"{preset_name}/{backend}: {pipelines[backend].description}")
            if preset_name == "lite" and {"torch", "onnxruntime"} <= timings.keys():
                ort_p50 = percentile([t.total_ms for t in timings["onnxruntime"]], 50)
                torch_p50 = percentile([t.total_ms for t in timings["torch"]], 50)
                notes.append(f"lite target: ONNX Runtime end to end p50 {ort_p50:.1f} ms "
                             f"({'meets' if ort_p50 <= TARGET_MS else 'MISSES'} <= {TARGET_MS:.0f} ms); "
                             f"torch {torch_p50:.1f} ms = {torch_p50 / ort_p50:.2f}x ONNX Runtime's "
                             f"({'meets' if ort_p50 <= torch_p50 else 'MISSES'} ONNX Runtime <= torch)")

    table = "\n".join([
        f"Frame {KITTI_WIDTH}x{KITTI_HEIGHT} uint8 RGB -> depth at the same size; style adapter + depth U-Net; "
        f"fp32, batch 1, {args.threads} threads; per backend {args.rounds} blocks of {args.warmup} warm-up + "
        f"{max(1, args.runs // args.rounds)} timed frames, blocks in alternating order. "
        "Cells: p50 / p90 ms.",
        "",
        "| preset | backend | pre-process | inference | post-process | end to end | frames/s |",
        "|---|---|---|---|---|---|---|",
        *rows,
        "",
        *(f"- {note}" for note in notes),
    ])
    print(table)
    if not args.no_record:
        path = record(f"pipeline-{'-'.join(args.presets)}", table)
        print(f"\nrecorded {path}")


if __name__ == "__main__":
    main()
