"""Training figures on this machine, each from a real `training/train.py` run:

1. stage 1 (depth GAN), lite preset, procedural synthetic data: the seven validation
   metrics after a fixed wall-clock budget (default 20 min), with the loss curves;
2. stage 2 (CycleGAN) step time at 256x256, batch 1, ngf 64, 9 blocks (the reference
   CycleGAN configuration): steps/s;
3. peak resident memory of each stage at its default (lite) config.

    python benchmarks/bench_training.py                 # about 25 minutes on 2 cores
    python benchmarks/bench_training.py --minutes 2     # a quick look

Records benchmarks/results/training.md and training_depth_losses.png.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from recording import RESULTS, record

ROOT = Path(__file__).resolve().parents[1]
METRICS = ("abs_rel", "sq_rel", "rmse", "rmse_log", "a1", "a2", "a3")


def train(stage: str, run_dir: Path, *overrides: str) -> tuple[dict, float, float]:
    """Run train.py in a child process; (summary, wall seconds, peak RSS of the child in MiB)."""
    cmd = [sys.executable, "training/train.py", stage, "--set", f"run.run_dir={run_dir}"]
    for o in overrides:
        cmd += ["--set", o]
    print("$", " ".join(cmd[1:]), flush=True)
    # A wrapper process per run, so ru_maxrss of its children is this run's alone (the
    # largest process of the run, data-loader workers included).
    wrapper = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True); "
               "print('PEAK_KIB', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", wrapper, *cmd], cwd=ROOT, check=True, stdout=subprocess.PIPE,
                         text=True).stdout
    wall = time.perf_counter() - started
    peak_kib = int(out.rsplit("PEAK_KIB", 1)[1])
    return json.loads((run_dir / "summary.json").read_text()), wall, peak_kib / 1024


def loss_log(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "losses.jsonl").read_text().splitlines()]


def plot_losses(entries: list[dict], keys: tuple[str, ...], path: Path, width: int = 900, height: int = 420) -> None:
    """A small loss-curve chart (moving average over 25 steps), drawn with OpenCV."""
    colours = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40)]
    canvas = np.full((height, width, 3), 255, np.uint8)
    left, right, top, bottom = 60, width - 20, 20, height - 40
    steps = np.array([e["step"] for e in entries], float)
    series = {}
    for key in keys:
        values = np.array([e[key] for e in entries], float)
        kernel = min(25, len(values))
        series[key] = np.convolve(values, np.ones(kernel) / kernel, mode="valid")
    lo = min(v.min() for v in series.values())
    hi = max(v.max() for v in series.values())
    cv2.rectangle(canvas, (left, top), (right, bottom), (0, 0, 0), 1)
    for i, (key, values) in enumerate(series.items()):
        x = left + (steps[len(steps) - len(values):] - steps[0]) / max(steps[-1] - steps[0], 1) * (right - left)
        y = bottom - (values - lo) / max(hi - lo, 1e-9) * (bottom - top)
        cv2.polylines(canvas, [np.stack([x, y], 1).astype(np.int32)], False, colours[i % 4][::-1], 2, cv2.LINE_AA)
        cv2.putText(canvas, key, (right - 150, top + 20 + 18 * i), cv2.FONT_HERSHEY_SIMPLEX, 0.5,
                    colours[i % 4][::-1], 1, cv2.LINE_AA)
    for value, yy in ((hi, top), (lo, bottom)):
        cv2.putText(canvas, f"{value:.3g}", (5, yy + 5), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(canvas, f"step {int(steps[0])} .. {int(steps[-1])}", (left, height - 12), cv2.FONT_HERSHEY_SIMPLEX,
                0.5, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.imwrite(str(path), canvas)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=20.0, help="stage 1 wall-clock budget")
    parser.add_argument("--style-steps", type=int, default=15, help="steps timed for the 256x256 CycleGAN")
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "bench_training")
    args = parser.parse_args()
    work = args.work / time.strftime("%Y%m%d-%H%M%S")
    lines = []

    depth_dir = work / "depth_lite"
    summary, wall, depth_peak = train("depth", depth_dir, f"run.max_minutes={args.minutes}", "run.steps=1000000")
    entries = loss_log(depth_dir)
    plot = RESULTS / "training_depth_losses.png"
    plot_losses(entries, ("g_l1", "g_adv", "d"), plot)
    m = summary["metrics"]
    lines += [f"## Stage 1: depth GAN, lite preset (192x640, batch 4), procedural synthetic data, "
              f"{args.minutes:g} min budget", "",
              f"{summary['steps']} steps ({summary['epochs']} full epochs) in {wall / 60:.1f} min wall; "
              f"mean step {np.mean([e['step_seconds'] for e in entries]):.2f} s. Validation on 64 held-out "
              "procedural frames (seed 1), no crop, depth in (1e-3, 80] m:", "",
              "| " + " | ".join(METRICS) + " |", "|" + "---|" * len(METRICS),
              "| " + " | ".join(f"{m[k]:.3f}" for k in METRICS) + " |", "",
              f"Loss curves (moving average of 25 steps): ![losses]({plot.name})", ""]

    style_dir = work / "style_256"
    summary, wall, _ = train("style", style_dir, "model.height=256", "model.width=256",
                             "model.style_kwargs={ngf: 64, n_blocks: 9}", f"run.steps={args.style_steps}",
                             "run.batch_size=1")
    times = [e["step_seconds"] for e in loss_log(style_dir)][2:]  # skip warm-up steps
    lines += ["## Stage 2: CycleGAN step time, 256x256, batch 1, ngf 64, 9 residual blocks", "",
              f"{1 / np.median(times):.3f} steps/s (median step {np.median(times):.2f} s over {len(times)} steps "
              "after 2 warm-up steps; data loading included)", ""]

    style_default = work / "style_lite"
    _, _, style_peak = train("style", style_default, "run.steps=20")
    lines += ["## Peak memory at the default (lite) configs", "",
              "| stage | config | peak RSS |", "|---|---|---|",
              f"| depth | config defaults (192x640, batch 4, 1 data worker) | {depth_peak:.0f} MiB |",
              f"| style | config defaults (192x640, batch 1, 1 data worker), 20 steps | {style_peak:.0f} MiB |", "",
              "Peak RSS is the largest single process (ru_maxrss of the children), on the CPU.", ""]
    body = "\n".join(lines)
    print(body)
    print(f"recorded in {record('training', body)}")


if __name__ == "__main__":
    main()
