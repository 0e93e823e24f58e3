#!/usr/bin/env python3
"""The deployed input size, chosen by measurement: accuracy on real frames against speed (issue 22, item 4).

Each ``benchmarks/bench_real.py`` result file given holds networks of one input size (the
default 96x320, ``--size 128x416``, ...). For every learnt row and seed in them this script

1. reads its validation abs_rel / a1 (the two ``kitti_raw_sample`` frames, as bench_real
   measured them: never holdout);
2. exports it to one ONNX graph and times ``DepthPipeline.predict`` end to end on a 1242x375
   frame (resize, network, metres, resize back; ONNX Runtime, 2 threads) against monodepth2's
   ResNet-18 network at 640x192 (the network alone), in interleaved blocks in one run;
3. evaluates it on the six 2011_09_26 holdout frames (reported, never used to choose), without
   and with the node's ground constraint at KITTI's camera height (``bench_ground.py``'s
   tolerance, the node's default).

Rule: among the networks at most ``--max-ratio`` (0.25) of the reference's time, the lowest
validation abs_rel; its input size is the one to deploy. Writes benchmarks/results/input-size.md.
Time it on a quiet machine (nothing else running): the ratios are what it reports.

    python benchmarks/bench_size.py runs/bench_real/v2/real-depth-v2.json \\
        runs/bench_real/v2-128x416/real-depth-c-v2-128x416.json runs/bench_real/v2-192x640/real-depth-c-v2-192x640.json
"""
from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from pathlib import Path

import numpy as np
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import bench_real as bench  # noqa: E402
from bench_peers import reference_timer  # noqa: E402
from bench_pipeline import interleaved_blocks  # noqa: E402
from bundle_real import candidates  # noqa: E402
from recording import record  # noqa: E402

from depth_da_ros.camera import KITTI_HEIGHT, KITTI_WIDTH  # noqa: E402
from depth_da_ros.export import export_onnx, quiet_exporter_logs  # noqa: E402
from depth_da_ros.pipeline import DepthPipeline  # noqa: E402



def main(argv: list[str] | None = None) -> Path | None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, nargs="+", help="bench_real.py result files, one per input size")
    parser.add_argument("--max-ratio", type=float, default=0.25,
                        help="largest end-to-end time as a fraction of monodepth2 RN18's (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved timing rounds (default: %(default)s)")
    parser.add_argument("--runs", type=int, default=20, help="timed frames per block (default: %(default)s)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    quiet_exporter_logs()
    for path in args.results:
        if not path.is_file():
            parser.error(f"{path} does not exist: run benchmarks/bench_real.py --size ... first")
    pool = candidates(args.results)
    holdout = bench.holdout_frames() if bench.HOLDOUT.is_dir() else []
    headline = bench.headline_frames(holdout)
    frame = np.random.default_rng(0).integers(0, 256, (KITTI_HEIGHT, KITTI_WIDTH, 3), dtype=np.uint8)

    with tempfile.TemporaryDirectory() as tmp:
        pipelines = {}
        for i, candidate in enumerate(tqdm(pool, desc="exporting", unit="network")):
            path = Path(tmp) / f"{i}.onnx"
            export_onnx(path, candidate["depth"], candidate["style"])
            pipelines[i] = DepthPipeline(path, backend="onnxruntime", threads=2)
        _, reference = reference_timer(Path(tmp), threads=2)
        fns = {"reference": reference, **{i: (lambda p=p: p.predict(frame)) for i, p in pipelines.items()}}
        calls = interleaved_blocks(fns, args.runs, 5, args.rounds)
        ms = {name: float(np.median([t for t, _ in series])) for name, series in calls.items()}
        rows = []
        for i, candidate in enumerate(pool):
            pipeline = pipelines[i]
            real = {}
            if headline:
                depths = [bench.metric_depth(pipeline, f) for f in headline]
                real = {"plain": bench.mean_constrained(depths, headline, None),
                        "ground": bench.mean_constrained(depths, headline, bench.CAMERA_HEIGHT)}
            rows.append((candidate, pipeline.input_size, ms[i] / ms["reference"], real))

    allowed = [r for r in rows if r[2] <= args.max_ratio]
    chosen = min(allowed, key=lambda r: r[0]["abs_rel"]) if allowed else None
    lines = [
        f"End to end on a {KITTI_WIDTH}x{KITTI_HEIGHT} frame (ONNX Runtime, 2 threads, fp32), median of "
        f"{args.rounds} interleaved rounds of {args.runs} frames; the reference: monodepth2 ResNet-18 at 640x192, "
        f"network alone, {ms['reference']:.1f} ms. Validation: kitti_raw_sample 0000000000-1 (choices). Holdout: the "
        f"six {bench.HEADLINE_DATE} frames (reported only), without / with the ground constraint (1.65 m, tolerance "
        f"{bench.NODE_TOLERANCE:g}).",
        "",
        "| network | input | seed | ms | x reference | validation abs_rel / a1 | holdout abs_rel / a1 | "
        "holdout with ground |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for candidate, size, ratio, real in rows:
        cells = [f"{real[k]['abs_rel']:.3f} / {real[k]['a1']:.3f}" if real else "-" for k in ("plain", "ground")]
        lines.append(f"| {bench.shown(candidate['folder'])} ({candidate['row']}) | {size[0]}x{size[1]} | "
                     f"{candidate['seed']} | {ratio * ms['reference']:.1f} | {ratio:.3f} | "
                     f"{candidate['abs_rel']:.3f} / {candidate['a1']:.3f} | " + " | ".join(cells) + " |")
    lines += ["", f"Rule: the lowest validation abs_rel among networks at most {args.max_ratio:g}x the reference's "
              "time: " + (f"**{chosen[1][0]}x{chosen[1][1]}** ({bench.shown(chosen[0]['folder'])}, row "
                          f"({chosen[0]['row']}), seed {chosen[0]['seed']}, {chosen[2]:.3f}x)." if chosen
                          else "**none is fast enough**."), ""]
    body = "\n".join(lines)
    print(body)
    path = record("input-size", body)
    print(f"recorded in {path}")
    return path


if __name__ == "__main__":
    main()
