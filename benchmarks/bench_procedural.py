"""Procedural renderer throughput on ONE core: geometry only, synthetic look, real look.

Target (issue: foundation): at least 50 frames/s at 192x640 for the synthetic domain
(scene sampling + exact depth + appearance). Prints a table and records it in
benchmarks/results/procedural.md unless --no-record.
"""
from __future__ import annotations

import argparse
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one core: no BLAS / OpenMP threads

import time  # noqa: E402

import cv2  # noqa: E402

from depth_da_ros.camera import PinholeCamera  # noqa: E402
from depth_da_ros.procedural import render_geometry, sample_scene  # noqa: E402
from depth_da_ros.procedural.appearance import render_appearance  # noqa: E402

from recording import machine_summary, record  # noqa: E402


def frames_per_second(height: int, width: int, look: str | None, frames: int) -> float:
    camera = PinholeCamera.kitti_like(height, width)
    for seed in range(3):  # warm-up (imports, caches)
        render_geometry(sample_scene(seed), camera)
    started = time.perf_counter()
    for seed in range(frames):
        scene = sample_scene(1000 + seed)
        geometry = render_geometry(scene, camera)
        if look is not None:
            render_appearance(geometry, scene, look, seed)
    return frames / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--sizes", nargs="+", default=["192x640", "256x1024", "375x1242"])
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # pin to one core
    rows = ["| size | geometry only | synthetic look | real look |", "|---|---|---|---|"]
    for size in args.sizes:
        height, width = map(int, size.split("x"))
        fps = [frames_per_second(height, width, look, args.frames) for look in (None, "synthetic", "real")]
        rows.append(f"| {height}x{width} | " + " | ".join(f"{f:.1f} fps" for f in fps) + " |")
        print(rows[-1], flush=True)
    body = "\n".join(rows) + f"\n\nFrames/s on one pinned core, {args.frames} frames per cell, random scenes.\n"
    print(body)
    print(machine_summary())
    if not args.no_record:
        print(f"recorded in {record('procedural', body)}")


if __name__ == "__main__":
    main()
