"""Does flip-consistency confidence rank depth errors? Sparsification (AUSE of abs_rel) and cost.

    python benchmarks/bench_confidence.py                    # bundled model, 100 frames per look, results/confidence.md
    python benchmarks/bench_confidence.py --frames 8 --no-record

Procedural evaluation scenes (seed 1000, as the model card's; real and synthetic look) are
rendered at the model's input size with the training camera, so the network sees them
unresized, and carry exact depth. Each frame runs once through
``DepthPipeline.predict_with_confidence`` (the frame and its mirror as one batch of 2);
errors are per-pixel abs_rel |d - gt| / gt over gt in (1e-3, 80] m, metric (no scaling).

Rankings compared per frame (removing the least confident pixels first): flip consistency;
the predicted depth (nearer = more confident: errors grow with depth, a free baseline any
ranking must beat); a random ranking; the oracle (true error). AUSE = area between a curve and
the oracle's (0 = perfect); AURG = area between random and the curve (> 0: better than random).
Means over frames ± standard error. The ranking, hence AUSE, does not depend on k; k only sets
what a confidence threshold means (the calibration table). Cost: wall time per frame of
``predict`` vs ``predict_with_confidence`` (median over the frames, ``--threads`` ONNX Runtime
threads), at the network size and at KITTI's 375x1242 (resizing included).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from line_chart import line_chart  # noqa: E402
from recording import machine_summary, record  # noqa: E402

from depth_da_ros.confidence import DEFAULT_K, FRACTIONS, abs_rel_errors, sparsification  # noqa: E402
from depth_da_ros.pipeline import DepthPipeline  # noqa: E402
from depth_da_ros.procedural.dataset import ProceduralConfig, ProceduralDataset  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
THRESHOLDS = (0.2, 0.37, 0.5, 0.7)
BINS = (0.0, 0.2, 0.4, 0.6, 0.8, 0.9, 1.0001)


def mean_se(values: list[float]) -> str:
    a = np.asarray(values, np.float64)
    return f"{a.mean():.4f} ± {a.std(ddof=1) / np.sqrt(len(a)) if len(a) > 1 else 0.0:.4f}"


def evaluate(pipeline: DepthPipeline, look: str, frames: int, k: float, seed: int) -> dict:
    height, width = pipeline.input_size
    data = ProceduralDataset(ProceduralConfig(domain=look, seed=seed, height=height, width=width), frames)
    rows: dict[str, list[float]] = {name: [] for name in ("abs_rel", "averaged_abs_rel", "flip_ause", "flip_aurg", "depth_ause",
                                                          "depth_aurg", "random_ause", "oracle_area")}
    curves = {name: [] for name in ("flip", "depth", "random", "oracle")}
    all_err, all_conf = [], []
    for i in range(frames):
        frame = data[i]
        pred, conf = pipeline.predict_with_confidence(frame.rgb, k)
        errors, mask = abs_rel_errors(pred, frame.depth)
        # The batch of 2 also gives the mirror's depth: how good is the mean of the two (not published)?
        mirrored = pipeline.predict(np.ascontiguousarray(frame.rgb[:, ::-1]))[:, ::-1]
        rows["averaged_abs_rel"].append(float(abs_rel_errors(0.5 * (pred + mirrored), frame.depth)[0].mean()))
        flip = sparsification(errors, conf[mask], seed=i)
        by_depth = sparsification(errors, -pred[mask], seed=i)
        rows["abs_rel"].append(float(errors.mean()))
        rows["flip_ause"].append(flip["ause"])
        rows["flip_aurg"].append(flip["aurg"])
        rows["depth_ause"].append(by_depth["ause"])
        rows["depth_aurg"].append(by_depth["aurg"])
        rows["random_ause"].append(flip["random_gap"])
        rows["oracle_area"].append(float(np.trapezoid(flip["oracle"], FRACTIONS)))
        for name, source in (("flip", flip["confidence"]), ("depth", by_depth["confidence"]),
                             ("random", flip["random"]), ("oracle", flip["oracle"])):
            curves[name].append(source)
        all_err.append(errors)
        all_conf.append(conf[mask])
    return {"rows": rows, "curves": {n: np.mean(c, axis=0) for n, c in curves.items()},
            "errors": np.concatenate(all_err), "confidence": np.concatenate(all_conf)}


def cost(pipeline: DepthPipeline, frames: list[np.ndarray], k: float, repeats: int) -> tuple[float, float]:
    """Median ms per frame of predict and of predict_with_confidence (interleaved, after a warm-up)."""
    for rgb in frames[:2]:
        pipeline.predict(rgb)
        pipeline.predict_with_confidence(rgb, k)
    plain, with_conf = [], []
    for _ in range(repeats):
        for rgb in frames:
            t0 = time.perf_counter()
            pipeline.predict(rgb, beyond_range=0.98)
            t1 = time.perf_counter()
            pipeline.predict_with_confidence(rgb, k, beyond_range=0.98)
            t2 = time.perf_counter()
            plain.append(t1 - t0)
            with_conf.append(t2 - t1)
    return float(np.median(plain) * 1e3), float(np.median(with_conf) * 1e3)


def plot(curves_by_look: dict[str, dict[str, np.ndarray]], path: Path) -> None:
    names = {"oracle": "oracle", "flip": "flip consistency", "depth": "predicted depth", "random": "random"}
    line_chart([(f"{look} look: mean abs_rel of the rest", {names[n]: (FRACTIONS, curves[n]) for n in names})
                for look, curves in curves_by_look.items()], path, "fraction removed, least confident first",
               "abs_rel")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(ROOT / "models" / "depth.onnx"))
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--looks", nargs="+", default=["real", "synthetic"])
    parser.add_argument("--seed", type=int, default=1000)
    parser.add_argument("--k", type=float, default=DEFAULT_K)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--cost-frames", type=int, default=10)
    parser.add_argument("--cost-repeats", type=int, default=3)
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()

    pipeline = DepthPipeline(args.model, "onnxruntime", threads=args.threads)
    height, width = pipeline.input_size
    lines = [f"Model `{Path(args.model).relative_to(ROOT) if Path(args.model).is_relative_to(ROOT) else args.model}` "
             f"({height}x{width}), {args.frames} procedural frames per look (seed {args.seed}, training camera, "
             f"exact depth), k = {args.k}. Per-frame AUSE / AURG of abs_rel, mean ± standard error over frames.", "",
             "| look | abs_rel | AUSE flip consistency | AUSE predicted depth | AUSE random | AURG flip | "
             "AURG predicted depth | oracle area |", "|---|---|---|---|---|---|---|---|"]
    results = {}
    for look in args.looks:
        result = evaluate(pipeline, look, args.frames, args.k, args.seed)
        results[look] = result
        r = result["rows"]
        lines.append(f"| {look} | {mean_se(r['abs_rel'])} | {mean_se(r['flip_ause'])} | {mean_se(r['depth_ause'])} | "
                     f"{mean_se(r['random_ause'])} | {mean_se(r['flip_aurg'])} | {mean_se(r['depth_aurg'])} | "
                     f"{mean_se(r['oracle_area'])} |")
        print(lines[-1], flush=True)
        gap = (np.asarray(r["flip_ause"]) - np.asarray(r["depth_ause"])).tolist()
        wins = np.mean(np.asarray(gap) < 0)
        lines.append(f"|  | paired AUSE flip - predicted depth: {mean_se(gap)}; flip lower on {100 * wins:.0f}% "
                     "of frames | | | | | | |")

    lines += ["", "abs_rel of the published depth (the frame's own prediction) vs the mean of it and the mirror's "
              "prediction flipped back (both come out of the batch of 2; not published, for reference):", "",
              "| look | abs_rel own | abs_rel flip-averaged |", "|---|---|---|"]
    for look, result in results.items():
        lines.append(f"| {look} | {mean_se(result['rows']['abs_rel'])} | {mean_se(result['rows']['averaged_abs_rel'])} |")
    lines += ["", "Mean abs_rel left after removing a fraction of the pixels (averaged curves):", "",
              "| look | removed | flip consistency | predicted depth | random | oracle |", "|---|---|---|---|---|---|"]
    for look, result in results.items():
        c = result["curves"]
        for f in (0.0, 0.1, 0.25, 0.5, 0.75):
            i = int(np.argmin(np.abs(FRACTIONS - f)))
            lines.append(f"| {look} | {f:.2f} | {c['flip'][i]:.4f} | {c['depth'][i]:.4f} | {c['random'][i]:.4f} | "
                         f"{c['oracle'][i]:.4f} |")

    lines += ["", f"What a threshold means (k = {args.k}; all pixels with ground truth, pooled over the frames): "
              "share of pixels per confidence band and their mean abs_rel, and `confidence_threshold` t -> "
              "pixels kept (the rest NaN) and their mean abs_rel.", "",
              "| look | confidence band | pixels | mean abs_rel |", "|---|---|---|---|"]
    for look, result in results.items():
        err, conf = result["errors"], result["confidence"]
        for lo, hi in zip(BINS, BINS[1:]):
            sel = (conf >= lo) & (conf < hi)
            share = sel.mean()
            lines.append(f"| {look} | [{lo:.1f}, {min(hi, 1.0):.1f}{']' if hi > 1 else ')'} | {100 * share:.1f}% | "
                         f"{err[sel].mean() if sel.any() else float('nan'):.4f} |")
    lines += ["", "| look | threshold | pixels kept | abs_rel of kept | abs_rel of all |", "|---|---|---|---|---|"]
    for look, result in results.items():
        err, conf = result["errors"], result["confidence"]
        for t in THRESHOLDS:
            kept = conf >= t
            lines.append(f"| {look} | {t} | {100 * kept.mean():.1f}% | {err[kept].mean():.4f} | {err.mean():.4f} |")

    sample = ProceduralDataset(ProceduralConfig(domain="real", seed=args.seed, height=height, width=width),
                               args.cost_frames)
    small = [sample[i].rgb for i in range(args.cost_frames)]
    import cv2

    kitti = [cv2.resize(rgb, (1242, 375), interpolation=cv2.INTER_LINEAR) for rgb in small]
    lines += ["", f"Cost per frame (median over {args.cost_frames} frames x {args.cost_repeats}, ONNX Runtime CPU, "
              f"{args.threads} thread(s), `beyond_range` 0.98 as the node runs it):", "",
              "| frame size | predict | predict_with_confidence (batch of 2) | extra |", "|---|---|---|---|"]
    for label, frames in ((f"{height}x{width} (network size)", small), ("375x1242 (KITTI)", kitti)):
        plain, with_conf = cost(pipeline, frames, args.k, args.cost_repeats)
        lines.append(f"| {label} | {plain:.1f} ms | {with_conf:.1f} ms | +{with_conf - plain:.1f} ms "
                     f"(x{with_conf / plain:.2f}) |")
        print(lines[-1], flush=True)

    lines += ["", "The machine was shared with training runs (2 cores, this run at nice 19): times are "
              "indicative; compare the two columns of one row, measured interleaved in one run."]
    body = "\n".join(lines) + "\n"
    print(body)
    print(machine_summary())
    if not args.no_record:
        plot({look: r["curves"] for look, r in results.items()}, ROOT / "benchmarks" / "results" / "confidence.png")
        body += "\n![sparsification curves](confidence.png)\n"
        print(f"recorded in {record('confidence', body)}")


if __name__ == "__main__":
    main()
