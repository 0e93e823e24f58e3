#!/usr/bin/env python3
"""Depth-stage choices of the sim-to-real recipe, measured on the validation split only.

Each choice is a real ``training/train.py depth`` run of the ``bench`` preset with the same
data (procedural synthetic frames, training seed 0, cached on disk), the same number of steps
and the same seed; the metrics are those of the validation split (seed 1, 64 frames), never
the benchmark's evaluation frames (seed 1000). Choices:

1. depth encoding: ``linear`` (metres / max depth) vs ``log`` (uniform relative precision),
   with resize-then-convolve up-sampling;
2. up-sampling: ``resize`` vs the reference's ``transpose`` (transposed convolution), with
   the better encoding of 1.

    python benchmarks/bench_depth_choices.py               # 3 runs of 600 steps
    python benchmarks/bench_depth_choices.py --steps 20    # a smoke run

Records benchmarks/results/depth_choices.md (with --steps below 100: nothing is recorded).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_training import METRICS, train  # noqa: E402
from recording import record  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def depth_run(run_dir: Path, steps: int, batch: int, cache: Path, encoding: str, upsample: str) -> dict:
    summary, wall, _ = train(
        "depth", run_dir, "model.preset=bench", f"model.depth_encoding={encoding}",
        f"model.depth_kwargs={{upsample: {upsample}}}", f"run.steps={steps}", f"run.batch_size={batch}",
        f"run.val_every={max(steps // 3, 1)}", f"run.checkpoint_every={steps}",
        f"data.train.cache={cache}", f"data.val.cache={cache}")
    return {"encoding": encoding, "upsample": upsample, "metrics": summary["metrics"], "wall_min": wall / 60}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "depth_choices" / time.strftime("%Y%m%d-%H%M%S"))
    parser.add_argument("--cache", type=Path, default=ROOT / "runs" / "cache")
    args = parser.parse_args()
    rows = [depth_run(args.work / f"{enc}-resize", args.steps, args.batch, args.cache, enc, "resize")
            for enc in ("linear", "log")]
    best_encoding = min(rows, key=lambda r: r["metrics"]["abs_rel"])["encoding"]
    rows.append(depth_run(args.work / f"{best_encoding}-transpose", args.steps, args.batch, args.cache,
                          best_encoding, "transpose"))
    lines = ["| encoding | upsample | " + " | ".join(METRICS) + " | wall (min) |",
             "|---|---|" + "---:|" * (len(METRICS) + 1)]
    for r in rows:
        lines.append(f"| {r['encoding']} | {r['upsample']} | "
                     + " | ".join(f"{r['metrics'][m]:.3f}" for m in METRICS) + f" | {r['wall_min']:.1f} |")
    table = "\n".join(lines)
    print(table)
    if args.steps >= 100:
        record("depth_choices", f"`bench` preset, {args.steps} steps at batch {args.batch}, training seed 0; "
               "metrics of the final network on the validation split (seed 1, 64 synthetic frames). "
               f"Runs in `{args.work.relative_to(ROOT) if args.work.is_relative_to(ROOT) else args.work}`.\n\n{table}\n")


if __name__ == "__main__":
    main()
