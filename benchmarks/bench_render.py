#!/usr/bin/env python3
"""Renderer v1 vs v2: frames per second in one run (interleaved rounds), and a picture sheet.

Each round renders ``--frames`` frames of each (renderer, look) at each size, in rotating
order, in this one process (one core's work: NumPy and OpenCV here are single-threaded for
these sizes); the median over rounds is reported with v2's speed as a share of v1's. The
picture sheet puts v1 and v2 frames of both looks beside real KITTI road frames read at run
time from ``../shared/data/real_unlabeled/kitti_road`` (never copied into the repository;
the column is left out with a message when the folder is absent).

    python benchmarks/bench_render.py [--rounds 5] [--frames 8]

Records benchmarks/results/render.md and benchmarks/results/render/v1_v2_real.png.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from recording import RESULTS, record  # noqa: E402

from depth_da_ros.depth_io import read_rgb  # noqa: E402
from depth_da_ros.procedural.dataset import ProceduralConfig, ProceduralDataset  # noqa: E402
from depth_da_ros.visualization import colorize_depth, picture_strip, write_png  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
REAL_ROAD = ROOT.parent / "shared" / "data" / "real_unlabeled" / "kitti_road"
SIZES = ((96, 320), (192, 640), (375, 1242))
GOAL = 0.5  # v2 at least half of v1's frames/s at the benchmark size (96x320)


def time_rounds(rounds: int, frames: int, sizes) -> dict[tuple, list[float]]:
    """(renderer, domain, size) -> seconds per frame of each round."""
    keys = [(r, d, s) for s in sizes for r in (1, 2) for d in ("synthetic", "real")]
    datasets = {k: ProceduralDataset(ProceduralConfig(domain=k[1], seed=7, height=k[2][0], width=k[2][1],
                                                      renderer=k[0]), 10_000) for k in keys}
    for k in keys:  # warm-up: imports, caches, first allocations
        datasets[k][0]
    out: dict[tuple, list[float]] = {k: [] for k in keys}
    for r in range(rounds):
        order = keys[r % len(keys):] + keys[:r % len(keys)]
        for k in order:
            start = time.perf_counter()
            for i in range(frames):
                datasets[k][1 + r * frames + i]
            out[k].append((time.perf_counter() - start) / frames)
    return out


def sheet(columns: int = 4) -> np.ndarray:
    size = (192, 640)
    rows = []
    for renderer in (1, 2):
        for domain in ("synthetic", "real"):
            data = ProceduralDataset(ProceduralConfig(domain=domain, seed=11, height=size[0], width=size[1],
                                                      renderer=renderer), columns)
            frames = [data[i] for i in range(columns)]
            rows.append([np.vstack([f.rgb, colorize_depth(f.depth)]) for f in frames])
    labels = [f"v{r} {d}" for r in (1, 2) for d in ("synthetic", "real")]
    tiles = [list(t) for t in zip(*rows)]  # columns: the four looks; rows: frames
    if REAL_ROAD.is_dir():
        real = sorted(REAL_ROAD.glob("*.png"))[::max(1, len(sorted(REAL_ROAD.glob('*.png'))) // columns)][:columns]
        for row, path in zip(tiles, real):
            rgb = cv2.resize(read_rgb(path), (size[1], size[0]), interpolation=cv2.INTER_AREA)
            row.append(np.vstack([rgb, np.zeros_like(rgb)]))
        labels.append("real KITTI (no depth)")
    else:
        print(f"{REAL_ROAD} is absent: the sheet has no real column")
    return picture_strip(tiles, labels, "renderer v1 vs v2 (frame over depth) beside real KITTI road frames",
                         scale=0.5)


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--frames", type=int, default=8, help="frames per (renderer, look, size) and round")
    args = parser.parse_args(argv)
    load_before = os.getloadavg()
    timings = time_rounds(args.rounds, args.frames, SIZES)
    load_after = os.getloadavg()
    lines = ["| size | look | v1 frames/s | v2 frames/s | v2 / v1 |", "|---|---|---:|---:|---:|"]
    ratios = {}
    for size in SIZES:
        for domain in ("synthetic", "real"):
            v1, v2 = (1.0 / float(np.median(timings[(r, domain, size)])) for r in (1, 2))
            ratios[(size, domain)] = v2 / v1
            lines.append(f"| {size[0]}x{size[1]} | {domain} | {v1:.1f} | {v2:.1f} | {v2 / v1:.2f} |")
    bench = min(ratios[(SIZES[0], d)] for d in ("synthetic", "real"))
    path = RESULTS / "render" / "v1_v2_real.png"
    write_png(path, sheet())
    body = "\n".join([
        f"Median of {args.rounds} interleaved rounds of {args.frames} frames per renderer, look and size, one "
        f"process; load average {load_before[0]:.2f} before and {load_after[0]:.2f} after (the machine was "
        "shared: read the ratios, not the absolute rates).", "", *lines, "",
        f"Goal: v2 at least {GOAL:.0%} of v1's frames/s at 96x320: {bench:.2f} of v1 (the slower look), "
        f"**{'met' if bench >= GOAL else 'NOT met'}**.", "",
        "Picture sheet (renderer v1 and v2, both looks, frame over depth, beside real KITTI road frames): "
        "[render/v1_v2_real.png](render/v1_v2_real.png)", ""])
    print(body)
    return record("render", body)


if __name__ == "__main__":
    main()
