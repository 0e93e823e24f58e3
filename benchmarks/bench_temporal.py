"""How much does the depth flicker between frames? TAE on procedural driving sequences.

    python benchmarks/bench_temporal.py                   # bundled model, 20 sequences x 10 frames per look
    python benchmarks/bench_temporal.py --sequences 2 --length 4 --no-record

Procedural driving sequences (``ProceduralConfig(sequence_length=N, step=1.0)``: the camera
moves 1 m forward along the road per frame, 10 m/s at 10 Hz; renderer 1, static scenes, a look
re-drawn per frame as a camera's noise would be) at the model's input size with the training
camera, exact depth per frame. Each frame runs through ``DepthPipeline.predict`` on its own (the
node has no memory either). ``depth_da_ros.temporal``: pixel pairs between consecutive frames
from the exact depth and the known motion (visible in both), TAE = |d_i moved into frame i+1 -
d_{i+1}| / d_{i+1}, averaged with the reverse direction; "scale-aligned" divides each
sequence's predictions by its median scale ratio first (a steady wrong scale also scores,
since the motion is in metres). Scale ratio = median(pred / gt) of a frame; its standard
deviation within a sequence is the global-scale flicker. Exact depth through the same pairs
gives the measurement's floor (pixel rounding). Means over pairs / frames / sequences ±
standard error over sequences.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from line_chart import line_chart  # noqa: E402
from recording import machine_summary, record  # noqa: E402

from depth_da_ros.confidence import abs_rel_errors  # noqa: E402
from depth_da_ros.pipeline import DepthPipeline  # noqa: E402
from depth_da_ros.procedural.dataset import ProceduralConfig, ProceduralDataset  # noqa: E402
from depth_da_ros.procedural.scene import sample_scene  # noqa: E402
from depth_da_ros.temporal import (  # noqa: E402
    correspondences, driving_translation, scale_ratio, smooth_with_motion, tae)

ROOT = Path(__file__).resolve().parents[1]
# Per-pixel filters tried (temporal.smooth_with_motion, reset 0.15): name -> (alpha, knows the ego-motion).
FILTERS = {"none": None, "EMA 0.5 with ego-motion": (0.5, True), "EMA 0.7 with ego-motion": (0.7, True),
           "EMA 0.5 without motion": (0.5, False)}


def mean_se(values) -> str:
    a = np.asarray(values, np.float64)
    a = a[np.isfinite(a)]
    return f"{a.mean():.4f} ± {a.std(ddof=1) / np.sqrt(len(a)) if len(a) > 1 else 0.0:.4f}"


def evaluate(pipeline: DepthPipeline, look: str, sequences: int, length: int, step: float, seed: int) -> dict:
    height, width = pipeline.input_size
    config = ProceduralConfig(domain=look, seed=seed, height=height, width=width, sequence_length=length, step=step)
    data = ProceduralDataset(config, sequences * length)
    per_sequence = {k: [] for k in ("tae", "tae_aligned", "tae_floor", "abs_rel", "ratio_mean", "ratio_std",
                                    "ratio_step", "pairs")}
    ratios_by_sequence = []
    filtered_rows = {name: {"tae": [], "abs_rel": []} for name in FILTERS}
    for s in range(sequences):
        frames = [data[s * length + f] for f in range(length)]
        scene_seed, _, _ = data.seeds(s * length)
        yaw = sample_scene(scene_seed, config.scene, travel=step * (length - 1)).camera_yaw
        t = driving_translation(step, yaw)
        preds = [pipeline.predict(frame.rgb) for frame in frames]
        ratios = np.array([scale_ratio(p, f.depth) for p, f in zip(preds, frames)])
        scale = float(np.median(ratios))
        taes, aligned, floor, counts = [], [], [], []
        for a, b, pa, pb in zip(frames, frames[1:], preds, preds[1:]):
            pairs = correspondences(a.depth, b.depth, data.camera, t)
            taes.append(tae(pa, pb, pairs))
            aligned.append(tae(pa / scale, pb / scale, pairs))
            floor.append(tae(a.depth, b.depth, pairs))
            counts.append(len(pairs) / a.depth.size)
        per_sequence["tae"].append(np.nanmean(taes))
        per_sequence["tae_aligned"].append(np.nanmean(aligned))
        per_sequence["tae_floor"].append(np.nanmean(floor))
        per_sequence["pairs"].append(np.mean(counts))
        per_sequence["abs_rel"].append(np.mean([abs_rel_errors(p, f.depth)[0].mean() for p, f in zip(preds, frames)]))
        per_sequence["ratio_mean"].append(ratios.mean())
        per_sequence["ratio_std"].append(ratios.std(ddof=1))
        per_sequence["ratio_step"].append(np.mean(np.abs(np.diff(ratios)) / ratios[:-1]))
        ratios_by_sequence.append(ratios)
        pairs_list = [correspondences(a.depth, b.depth, data.camera, t) for a, b in zip(frames, frames[1:])]
        for name, spec in FILTERS.items():
            outputs, previous = [], None
            for pred in preds:
                previous = pred if spec is None else smooth_with_motion(
                    previous, pred, data.camera, t if spec[1] else np.zeros(3), alpha=spec[0])
                outputs.append(previous)
            filtered_rows[name]["tae"].append(np.nanmean([tae(a, b, pairs) for a, b, pairs
                                                          in zip(outputs, outputs[1:], pairs_list)]))
            filtered_rows[name]["abs_rel"].append(np.mean([abs_rel_errors(o, f.depth)[0].mean()
                                                           for o, f in zip(outputs, frames)]))
    return {"rows": per_sequence, "ratios": ratios_by_sequence, "filters": filtered_rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(ROOT / "models" / "depth.onnx"))
    parser.add_argument("--sequences", type=int, default=20)
    parser.add_argument("--length", type=int, default=10)
    parser.add_argument("--step", type=float, default=1.0)
    parser.add_argument("--looks", nargs="+", default=["real", "synthetic"])
    parser.add_argument("--seed", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()

    pipeline = DepthPipeline(args.model, "onnxruntime", threads=args.threads)
    height, width = pipeline.input_size
    model = Path(args.model)
    model_name = model.relative_to(ROOT) if model.is_relative_to(ROOT) else model
    lines = [f"Model `{model_name}` ({height}x{width}), {args.sequences} sequences x {args.length} frames per look "
             f"(seed {args.seed}, step {args.step} m/frame, training camera, exact depth); mean ± standard error "
             "over sequences.", "",
             "| look | TAE | TAE scale-aligned | TAE of exact depth (floor) | abs_rel | scale ratio median(pred/gt) | "
             "its std within a sequence | its mean frame-to-frame change | pixels paired |",
             "|---|---|---|---|---|---|---|---|---|"]
    results = {}
    for look in args.looks:
        result = evaluate(pipeline, look, args.sequences, args.length, args.step, args.seed)
        results[look] = result
        r = result["rows"]
        lines.append(f"| {look} | {mean_se(r['tae'])} | {mean_se(r['tae_aligned'])} | {mean_se(r['tae_floor'])} | "
                     f"{mean_se(r['abs_rel'])} | {mean_se(r['ratio_mean'])} | {mean_se(r['ratio_std'])} | "
                     f"{100 * np.mean(r['ratio_step']):.1f}% | {100 * np.mean(r['pairs']):.0f}% |")
        print(lines[-1], flush=True)

    lines += ["", "Per-frame scale ratio of the first sequences (each row one sequence, frames in order):", "",
              "| look | sequence | median(pred/gt) per frame |", "|---|---|---|"]
    for look, result in results.items():
        for s, ratios in enumerate(result["ratios"][:6]):
            lines.append(f"| {look} | {s} | {' '.join(f'{x:.3f}' for x in ratios)} |")
    lines += ["", "Per-pixel temporal filters (`depth_da_ros.temporal.smooth_with_motion`: the previous output "
              "warped into the frame, blended alpha x previous + (1 - alpha) x new where they agree within 15%, "
              "else reset to the new frame). 'with ego-motion' is given the true motion (what odometry/tf would "
              "give a node); TAE here uses the same motion, so abs_rel is the check that matters. Paired "
              "difference to no filter, mean ± s.e. over sequences:", "",
              "| look | filter | TAE | abs_rel | abs_rel change vs none |", "|---|---|---|---|---|"]
    for look, result in results.items():
        base = np.asarray(result["filters"]["none"]["abs_rel"])
        for name, values in result["filters"].items():
            lines.append(f"| {look} | {name} | {mean_se(values['tae'])} | {mean_se(values['abs_rel'])} | "
                         f"{mean_se(np.asarray(values['abs_rel']) - base)} |")
    lines += ["", "The node offers no temporal filter: the one that helps needs the ego-motion between frames "
              "(odometry through tf2), which this package does not subscribe to yet.",
              "", "The machine was shared with training runs (2 cores, this run at nice 19); these are accuracy "
              "numbers, not timings."]
    body = "\n".join(lines) + "\n"
    print(body)
    print(machine_summary())
    if not args.no_record:
        frames = np.arange(args.length)
        line_chart([(f"{look} look: median(pred/gt) per frame",
                     {f"sequence {s}": (frames, ratios) for s, ratios in enumerate(result["ratios"][:6])})
                    for look, result in results.items()],
                   ROOT / "benchmarks" / "results" / "temporal.png", f"frame ({args.step} m per frame)", "ratio",
                   y_from_zero=False)
        body += "\n![scale ratio over frames](temporal.png)\n"
        print(f"recorded in {record('temporal', body)}")


if __name__ == "__main__":
    main()
