#!/usr/bin/env python3
"""Sim-to-real: does the style adapter close the synthetic -> real gap? Also builds the bundled model.

Lite preset at one fixed size (192x640) on the procedural data; every stage is a real
``training/train.py`` run in a child process on a wall-clock budget (``run.max_minutes``),
with fixed seeds. Rows:

(a) the depth stage, trained on synthetic frames, on held-out synthetic frames (in-domain);
(b) the same network on real-look frames without adaptation (the domain gap);
(c) with the CycleGAN style adapter (real -> synthetic) in front of it;
(d) with an adapter trained with the depth-aware cycle (``loss.depth_aware`` > 0, which uses
    the stage-1 network).

Data: training seed 0 (the configs' default); validation seed 1 (the configs' default: picks
each run's best checkpoint and the bundled pipeline); evaluation seed 1000, never seen by
training or validation, with the real look rendered over the synthetic frames' scenes
(paired), so rows a and b differ in the look alone. Metrics (``depth_da_ros.metrics``) in
metres: crop none, depth in (1e-3, 80] m, per image then averaged, no scaling.
Gap recovered = (abs_rel_b - abs_rel_c) / (abs_rel_b - abs_rel_a); the target is >= 0.5.

The same networks are also evaluated on the real KITTI frames in ``../shared/data/holdout``
(evaluation only: nothing is fitted or chosen on them) with the monodepth2 protocol: Garg crop,
(1e-3, 80] m, with and without per-image median scaling, depth rescaled by focal length as the
node does by default (``scale_mode: focal``).

The pipeline that is best on the validation split (adapter + depth, or the depth network alone
when no adapter beats it there) is exported to ``models/depth.onnx`` with
``models/MODEL_CARD.md``: the node's default model.

    python benchmarks/bench_sim2real.py                  # about 45-50 minutes on 2 cores
    python benchmarks/bench_sim2real.py --quick          # a ~2-minute smoke run, written under --work only
    python benchmarks/bench_sim2real.py --depth-minutes 18 --style-minutes 10 --reuse runs/bench_sim2real/<time>
                                                         # evaluate and export earlier runs again (minutes)

Records benchmarks/results/sim2real.md and its picture strips in benchmarks/results/sim2real/.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

# Runs from a plain checkout too, without installing the package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_training import train  # noqa: E402
from recording import RESULTS, machine_summary, record  # noqa: E402

from depth_da_ros.camera import KITTI_CX, KITTI_CY, KITTI_FX, KITTI_FY, KITTI_HEIGHT, KITTI_WIDTH  # noqa: E402
from depth_da_ros.demo import picture_strip, write_png  # noqa: E402
from depth_da_ros.depth_io import read_kitti_depth  # noqa: E402
from depth_da_ros.export import ModelMetadata, describe_precision, export_onnx, quiet_exporter_logs  # noqa: E402
from depth_da_ros.geometry import Intrinsics, scale_depth  # noqa: E402
from depth_da_ros.kitti import KittiCalibration, load_velodyne_points, project_velodyne, read_calib_file  # noqa: E402
from depth_da_ros.metrics import evaluate_frames, format_metrics_table  # noqa: E402
from depth_da_ros.pipeline import DepthPipeline  # noqa: E402
from depth_da_ros.procedural.dataset import ProceduralConfig, ProceduralDataset  # noqa: E402
from depth_da_ros.visualization import colorize_depth  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
HOLDOUT = SHARED / "holdout"
RAW_CALIB_DIR = SHARED / "kitti_raw_sample" / "2011_09_26"  # for the mmdetection3d frame, whose .txt has P2 only
NAME = "sim2real"

SIZE = (192, 640)  # the lite preset's network size, the one resolution of every row
TRAIN_SEED = 0  # run.seed and the training data (the configs' defaults)
VAL_SEED = 1  # the configs' validation split
EVAL_SEED = 1000  # evaluation frames: disjoint from training and validation
MAX_DEPTH = 80.0  # metric cap, as KITTI's
# Equal to the cycle weight: depth kept through the cycle counts as much as the pixels.
DEPTH_AWARE_WEIGHT = 10.0
TARGET_GAP_RECOVERED = 0.5
MODEL_LIMIT_BYTES = 20_000_000  # model + card committed to the repository
RUN_STEPS = 1_000_000  # a ceiling the budgets never reach: run.max_minutes ends every run
DEPTH_VAL_EVERY = 200  # steps (~5 min at ~1.5 s per step): best.pt from a few validations per run
STYLE_VAL_EVERY = 100
STRIP_COLUMNS = ("input", "adapted (what the depth net sees)", "predicted depth", "ground truth")
ROWS = {
    "a": "in-domain: synthetic frames",
    "b": "real, no adaptation",
    "c": "real, CycleGAN adapter",
    "d": f"real, depth-aware cycle adapter (loss.depth_aware={DEPTH_AWARE_WEIGHT:g})",
}
STYLE_RUNS = {"c": ("style_cyclegan", 0.0), "d": ("style_depth_aware", DEPTH_AWARE_WEIGHT)}  # row -> run, weight
STRIP_FILES = {"a": "a_in_domain.png", "b": "b_no_adaptation.png", "c": "c_cyclegan.png", "d": "d_depth_aware.png"}
BUNDLED_LABEL = "bundled model (ONNX, fp16 weights)"


# -- procedural evaluation --------------------------------------------------------------------


def procedural_frames(domain: str, count: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(RGB, depth metres) of the evaluation frames; inf depth = sky (invalid for the metrics)."""
    config = ProceduralConfig(domain=domain, seed=EVAL_SEED, height=SIZE[0], width=SIZE[1], paired=True)
    dataset = ProceduralDataset(config, count)
    return [(frame.rgb, frame.depth) for frame in
            (dataset[i] for i in tqdm(range(count), desc=f"rendering {domain} evaluation frames", unit="frame"))]


def predict(pipeline: DepthPipeline, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Depth and the frame the depth network saw (the adapted frame, or the input itself)."""
    if pipeline.metadata.outputs_styled:
        return pipeline.predict(rgb, return_styled=True)
    return pipeline.predict(rgb), rgb


def evaluate_procedural(pipeline: DepthPipeline, frames: list[tuple[np.ndarray, np.ndarray]], label: str,
                        strip_frames: int) -> tuple[dict[str, float], list[tuple[np.ndarray, ...]]]:
    """The seven metrics over ``frames`` and the strip tiles of the first ``strip_frames``."""
    pairs, tiles = [], []
    for rgb, gt in tqdm(frames, desc=f"evaluating {label}", unit="frame"):
        depth, seen = predict(pipeline, rgb)
        pairs.append((gt, depth))
        if len(tiles) < strip_frames:
            tiles.append((rgb, seen, depth, gt))
    return evaluate_frames(pairs, crop="none", max_depth=MAX_DEPTH), tiles


def kitti_frame_latency(pipeline: DepthPipeline, rgb: np.ndarray, warmup: int = 5, runs: int = 20) -> float:
    """Median end-to-end ``predict`` time (ms) of a KITTI-size (1242x375) frame."""
    frame = cv2.resize(rgb, (KITTI_WIDTH, KITTI_HEIGHT), interpolation=cv2.INTER_LINEAR)
    times = []
    for i in range(warmup + runs):
        pipeline.predict(frame)
        if i >= warmup:
            times.append(pipeline.last_timing.total_ms)
    return float(np.median(times))


def write_strip(path: Path, title: str, tiles: list[tuple[np.ndarray, ...]]) -> None:
    """Rows of input | adapted | predicted depth | ground truth, under a title and column labels."""
    rows = [(rgb, seen, colorize_depth(depth), colorize_depth(gt)) for rgb, seen, depth, gt in tiles]
    write_png(path, picture_strip(rows, STRIP_COLUMNS, title))


# -- holdout: real KITTI frames -----------------------------------------------------------------


@dataclass(frozen=True)
class HoldoutFrame:
    name: str
    ground_truth: str  # "depth benchmark" or "velodyne"
    rgb: np.ndarray
    gt: np.ndarray  # metres, 0 / NaN = no measurement
    camera: Intrinsics  # of the image as it is, for the node's focal rescaling


def _read_rgb(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise FileNotFoundError(f"cannot read image {path}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _homogeneous(matrix: np.ndarray) -> np.ndarray:
    out = np.eye(4)
    out[: matrix.shape[0], : matrix.shape[1]] = matrix
    return out


def object_calibration(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(velodyne -> image 3x4, P2) from a KITTI object-benchmark calib file (P2, R0_rect, Tr_velo_to_cam)."""
    calib = read_calib_file(path)
    p2 = calib["P2"].reshape(3, 4)
    rect = _homogeneous(calib["R0_rect"].reshape(3, 3))
    velo_to_cam = _homogeneous(calib["Tr_velo_to_cam"].reshape(3, 4))
    return (p2 @ rect) @ velo_to_cam, p2  # monodepth2's multiplication order


def _velodyne_frame(name: str, image: Path, scan: Path, velo_to_image: np.ndarray, p2: np.ndarray) -> HoldoutFrame:
    rgb = _read_rgb(image)
    height, width = rgb.shape[:2]
    gt = project_velodyne(load_velodyne_points(scan), velo_to_image, width, height)
    camera = Intrinsics(width, height, p2[0, 0], p2[1, 1], p2[0, 2], p2[1, 2])
    return HoldoutFrame(name, "velodyne", rgb, gt, camera)


def holdout_frames(root: Path = HOLDOUT) -> list[HoldoutFrame]:
    """The holdout's KITTI frames with ground truth (see ../shared/data/README.md)."""
    frames = []
    metric3d = root / "kitti_depth_gt__YvanYin_Metric3D"
    for depth_path in sorted((metric3d / "depth").glob("*.png")):
        rgb = _read_rgb(metric3d / "rgb" / depth_path.name)
        # The JSON's intrinsics do not fit a 1242x375 frame; 2011_09_26 P_rect_02 does (data README).
        camera = Intrinsics(rgb.shape[1], rgb.shape[0], KITTI_FX, KITTI_FY, KITTI_CX, KITTI_CY)
        frames.append(HoldoutFrame(f"Metric3D {depth_path.stem}", "depth benchmark", rgb,
                                   read_kitti_depth(depth_path), camera))
    daryl = root / "kitti_object__darylclimb_cvml_project"
    frames.append(_velodyne_frame("darylclimb 000114", daryl / "000114_image.png", daryl / "000114.bin",
                                  *object_calibration(daryl / "000114_calib.txt")))
    mmdet = root / "kitti_object__open-mmlab_mmdetection3d"
    # Its .txt holds P2 alone (as a 4x4); R_rect_00 and [R|T] come from the 2011_09_26 raw calibration.
    p2 = np.loadtxt(mmdet / "000008.txt").reshape(4, 4)[:3]
    raw = KittiCalibration.from_dir(RAW_CALIB_DIR)
    frames.append(_velodyne_frame("mmdetection3d 000008", mmdet / "000008.png", mmdet / "000008.bin",
                                  (p2 @ raw.cam_to_rect) @ raw.velo_to_cam, p2))
    pillars = root / "kitti_object__zhulf0804_PointPillars"
    for split, frame in (("test", "000002"), ("val", "000134")):  # val/000134: another date, its own calib
        folder = pillars / split
        frames.append(_velodyne_frame(f"PointPillars {split}/{frame}", folder / f"{frame}.png", folder / f"{frame}.bin",
                                      *object_calibration(folder / f"{frame}.txt")))
    return frames


def evaluate_holdout(pipeline: DepthPipeline, frames: list[HoldoutFrame]) -> dict[tuple[str, bool], dict[str, float]]:
    """(ground-truth kind, median scaling) -> metrics: Garg crop, (1e-3, 80] m, focal rescaling as the node."""
    pairs: dict[str, list] = {}
    for frame in frames:
        depth, _ = scale_depth(pipeline.predict(frame.rgb), "focal", frame.camera, pipeline.training_camera)
        pairs.setdefault(frame.ground_truth, []).append((frame.gt, depth))
    return {(kind, scaled): evaluate_frames(kind_pairs, crop="garg", max_depth=MAX_DEPTH, median_scaling=scaled)
            for kind, kind_pairs in pairs.items() for scaled in (False, True)}


# -- report -------------------------------------------------------------------------------------


def shown(path: Path) -> str:
    """``path`` relative to the checkout when inside it (the commands run there), else as it is."""
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def shown_override(override: str) -> str:
    key, _, value = override.partition("=")
    return f"{key}={shown(Path(value))}" if key == "depth_checkpoint" else override


def label(row: str) -> str:
    return f"({row}) {ROWS[row]}"


def gap_recovered(a: float, b: float, c: float) -> float:
    """(b - c) / (b - a): the share of the no-adaptation gap that adaptation closes."""
    return (b - c) / (b - a)


def gap_sentence(metrics: dict[str, dict[str, float]], row: str) -> tuple[str, bool]:
    """The gap-recovered figure of ``row`` against the target, and whether it meets it."""
    a, b, c = (metrics[key]["abs_rel"] for key in ("a", "b", row))
    if b <= a:
        return (f"{label(row)}: no gap to recover (abs_rel without adaptation {b:.3f} <= in-domain {a:.3f}); "
                f"with the adapter {c:.3f}.", True)
    share = gap_recovered(a, b, c)
    met = share >= TARGET_GAP_RECOVERED
    return (f"{label(row)}: gap recovered = ({b:.3f} - {c:.3f}) / ({b:.3f} - {a:.3f}) = **{share:.0%}**, which "
            f"{'meets' if met else 'does NOT meet'} the target of {TARGET_GAP_RECOVERED:.0%}.", met)


def holdout_tables(results: dict[str, dict[tuple[str, bool], dict[str, float]]],
                   frames: list[HoldoutFrame]) -> list[str]:
    lines = []
    for kind in dict.fromkeys(f.ground_truth for f in frames):
        names = ", ".join(f.name for f in frames if f.ground_truth == kind)
        rows = {}
        for name, metrics in results.items():
            rows[f"{name}, metric"] = metrics[(kind, False)]
            scaled = metrics[(kind, True)]
            rows[f"{name}, median-scaled (ratio {scaled['ratio_median']:.2f}, spread {scaled['ratio_std']:.2f})"] = \
                scaled
        lines += [f"### Ground truth: {kind} ({names})", "", format_metrics_table(rows), ""]
    return lines


@dataclass
class Trained:
    depth_checkpoint: Path
    style_checkpoints: dict[str, Path]  # row -> best.pt
    summaries: dict[str, dict]  # "depth" and the style rows -> the run's summary.json
    walls: dict[str, float]  # the same keys -> wall seconds of the child process
    commands: dict[str, str]  # the same keys -> the train.py command line


def train_all(args: argparse.Namespace, work: Path) -> Trained:
    # Smaller validation splits keep the quick run quick; the full run uses the configs' splits.
    common = [f"run.seed={TRAIN_SEED}", f"run.steps={RUN_STEPS}", *(["data.val.length=8"] if args.quick else [])]
    summaries, walls, commands = {}, {}, {}

    def run(key: str, stage: str, run_dir: Path, *overrides: str) -> None:
        if args.reuse:  # a finished run: its summary, and its own training time as the wall time
            summary = run_dir / "summary.json"
            if not summary.is_file():
                sys.exit(f"--reuse {shown(work)}: {shown(run_dir)} has no summary.json (not a finished run)")
            summaries[key] = json.loads(summary.read_text())
            walls[key] = summaries[key]["minutes"] * 60
        else:
            summaries[key], walls[key], _ = train(stage, run_dir, *overrides)
        commands[key] = " ".join(["python training/train.py", stage, f"--set run.run_dir={shown(run_dir)}",
                                  *(f"--set {shlex.quote(shown_override(o))}" for o in overrides)])

    depth_dir = work / "depth"
    run("depth", "depth", depth_dir, *common, f"run.max_minutes={args.depth_minutes}",
        f"run.val_every={DEPTH_VAL_EVERY}")
    depth_checkpoint = depth_dir / "checkpoints" / "best.pt"
    for row, (folder, weight) in STYLE_RUNS.items():
        run(row, "style", work / folder, *common, f"run.max_minutes={args.style_minutes}",
            f"run.val_every={STYLE_VAL_EVERY}", f"depth_checkpoint={depth_checkpoint}", f"loss.depth_aware={weight}")
    style_checkpoints = {row: work / folder / "checkpoints" / "best.pt" for row, (folder, _) in STYLE_RUNS.items()}
    return Trained(depth_checkpoint, style_checkpoints, summaries, walls, commands)


def model_card(*, chosen: str, metadata: ModelMetadata, size: int, sha256: str, latency_ms: float, trained: Trained,
               style_row: str | None, eval_frames: int, bundled: dict[str, float], unadapted: dict[str, float],
               holdout: dict[tuple[str, bool], dict[str, float]] | None, args: argparse.Namespace) -> str:
    """models/MODEL_CARD.md: what the bundled model is, its data, commands, metrics and limits."""
    steps = f"stage 1: {trained.summaries['depth']['steps']} steps of batch 4"
    if style_row is not None:
        steps += f"; stage 2: {trained.summaries[style_row]['steps']} steps of batch 1"
    camera = metadata.training_camera
    lines = [
        "# Bundled model: `models/depth.onnx`",
        "",
        "The default model of `depth_da_node` (no `model_path` needed) and of `make demo`. Written by "
        "`benchmarks/bench_sim2real.py`; do not edit by hand.",
        "",
        "## What it is",
        "",
        f"- Pipeline: {chosen}; {metadata.preset} preset at {metadata.input_height}x{metadata.input_width}. One "
        f"fused ONNX graph (opset {metadata.opset}): uint8 RGB `image` [N, H, W, 3] in, float32 metres `depth` "
        f"[N, 1, H, W] out, up to {metadata.max_depth:g} m"
        + (", and the adapted frame `styled`." if metadata.outputs_styled else "."),
        f"- Precision: {describe_precision(metadata)}. The weights are stored in fp16 (in fp32 the file would be "
        f"about {2 * size / 1e6:.0f} MB, over the repository's {MODEL_LIMIT_BYTES / 1e6:g} MB limit) and cast to "
        "fp32 once when the model loads, so the arithmetic is fp32 (CPUs run fp16 arithmetic slowly). Latency on "
        f"the benchmark machine: {latency_ms:.0f} ms p50 per 1242x375 frame, end to end (ONNX Runtime on the CPU).",
        f"- File: {size / 1e6:.1f} MB, sha256 `{sha256}`, exported {metadata.export_date}.",
        f"- Training camera: KITTI-like, fx {camera.fx:.1f} px at {camera.height}x{camera.width}; the node rescales "
        "depth by focal length for other cameras (`scale_mode: focal`).",
        "",
        "## Data",
        "",
        "Procedural street scenes only (`depth_da_ros.procedural`), rendered on the fly; no KITTI or SYNTHIA image "
        f"was used for training or for any choice. Training seed {TRAIN_SEED} ({steps}); validation (best "
        f"checkpoints, pipeline choice) seed {VAL_SEED}; evaluation seed {EVAL_SEED}. The real KITTI frames of "
        "`../shared/data/holdout` were used for evaluation only.",
        "",
        "## Regenerate from scratch",
        "",
        "```bash",
        f"python benchmarks/bench_sim2real.py --depth-minutes {args.depth_minutes:g} "
        f"--style-minutes {args.style_minutes:g}   # trains, evaluates, writes this file and the model",
        "```",
        "",
        "Every row, the training commands and the picture strips: "
        "[benchmarks/results/sim2real.md](../benchmarks/results/sim2real.md).",
        "",
        "## Metrics",
        "",
        f"Procedural real-look evaluation frames (seed {EVAL_SEED}, {eval_frames} frames; crop none, "
        "(1e-3, 80] m, metric):",
        "",
        format_metrics_table({BUNDLED_LABEL: bundled, "depth network alone (no adaptation)": unadapted}),
        "",
    ]
    if holdout is not None:
        lines += ["Real KITTI frames (holdout; Garg crop, (1e-3, 80] m):", "",
                  format_metrics_table({f"{kind}, {'median-scaled' if scaled else 'metric'}": m
                                        for (kind, scaled), m in holdout.items()}), ""]
    lines += [
        "## Limits",
        "",
        "- Trained on procedural scenes only: a demonstration model, **not for real vehicles**, robots or any "
        "safety-related use.",
        "- On real camera images its depth is poor (see the KITTI rows): the procedural scenes are far simpler "
        "than real streets.",
        f"- Metric scale comes from one KITTI-like camera; other cameras rely on focal rescaling. Depth beyond "
        f"{metadata.max_depth:g} m, and the sky, saturates.",
        "",
    ]
    return "\n".join(lines)


def write_quick_results(path: Path, body: str) -> None:
    """The quick run's report, next to its runs (``record`` writes into the repository)."""
    command = "python " + " ".join(shlex.quote(a) for a in [os.path.relpath(sys.argv[0])] + sys.argv[1:])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"# {NAME} (quick smoke run)\n\n- command: `{command}`\n"
                    f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n"
                    f"- machine: {machine_summary()}\n\n{body}\n")


# -- main ---------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depth-minutes", type=float, help="stage-1 wall-clock budget (default 20; --quick 0.3)")
    parser.add_argument("--style-minutes", type=float,
                        help="budget of each of the two style runs (default 11; --quick 0.2)")
    parser.add_argument("--eval-frames", type=int,
                        help="procedural evaluation frames per domain (default 64; --quick 8)")
    parser.add_argument("--strip-frames", type=int, default=3, help="frames per picture strip (default: %(default)s)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: tiny budgets; results, strips and model go under --work, not the repository")
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "bench_sim2real",
                        help="training runs go to WORK/<time>/ (default: %(default)s)")
    parser.add_argument("--reuse", type=Path, metavar="WORK/TIME",
                        help="evaluate and export the finished runs of an earlier invocation instead of training "
                             "(give its budgets too: they are reported, not checked)")
    args = parser.parse_args()
    defaults = dict(depth_minutes=0.3, style_minutes=0.2, eval_frames=8) if args.quick else \
        dict(depth_minutes=20.0, style_minutes=11.0, eval_frames=64)
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if min(args.depth_minutes, args.style_minutes) <= 0 or args.eval_frames < 1 or args.strip_frames < 1:
        parser.error("budgets, --eval-frames and --strip-frames must be positive")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    quiet_exporter_logs()

    started = time.perf_counter()
    # The runs' folder (train.py runs in the checkout): a new WORK/<time>/, or the one to reuse.
    work = args.reuse.resolve() if args.reuse else args.work.resolve() / time.strftime("%Y%m%d-%H%M%S")
    results_dir = work / "results" if args.quick else RESULTS
    model_dir = work / "models" if args.quick else ROOT / "models"
    trained = train_all(args, work)

    eval_started = time.perf_counter()
    synthetic, real = procedural_frames("synthetic", args.eval_frames), procedural_frames("real", args.eval_frames)
    pipelines = {"b": DepthPipeline(trained.depth_checkpoint, backend="torch")}
    pipelines.update({row: DepthPipeline(trained.depth_checkpoint, backend="torch", style_checkpoint=path)
                      for row, path in trained.style_checkpoints.items()})
    metrics, strips = {}, {}
    for row in ROWS:
        metrics[row], tiles = evaluate_procedural(pipelines["b" if row == "a" else row],
                                                  synthetic if row == "a" else real, label(row), args.strip_frames)
        strips[row] = results_dir / NAME / STRIP_FILES[row]
        write_strip(strips[row], label(row), tiles)

    # The bundled pipeline: the lowest validation abs_rel on the real-look frames of seed 1 (each style run's
    # validation split, which also holds the depth network's no-adaptation figure); never the evaluation
    # frames or the holdout.
    val_abs_rel = {"b": trained.summaries["c"]["metrics"]["no_adaptation_abs_rel"],
                   **{row: trained.summaries[row]["best"]["value"] for row in STYLE_RUNS}}
    chosen = min(val_abs_rel, key=val_abs_rel.get)
    style_row = None if chosen == "b" else chosen
    model_dir.mkdir(parents=True, exist_ok=True)
    model_path = model_dir / "depth.onnx"
    # fp16 weights: the lite pipeline's fp32 graph (~31 MB) is over the repository's 20 MB limit; the
    # arithmetic stays fp32, which CPUs run faster than fp16.
    metadata = export_onnx(model_path, trained.depth_checkpoint, trained.style_checkpoints.get(chosen),
                           fp16_weights=True)
    model_path.chmod(0o644)  # atomic writes create 0600 files; every user of an install reads this one
    size = model_path.stat().st_size
    if size > MODEL_LIMIT_BYTES:
        model_path.unlink()
        sys.exit(f"the exported model is {size / 1e6:.1f} MB, over the {MODEL_LIMIT_BYTES / 1e6:g} MB limit; "
                 "removed it")
    sha256 = hashlib.sha256(model_path.read_bytes()).hexdigest()
    bundled = DepthPipeline(model_path, backend="onnxruntime")
    metrics["bundled"], _ = evaluate_procedural(bundled, real, BUNDLED_LABEL, 0)
    latency_ms = kitti_frame_latency(bundled, real[0][0])

    holdout = frames = None
    if HOLDOUT.is_dir():
        frames = holdout_frames()
        models = {"depth network alone (rows a, b)": pipelines["b"], label("c"): pipelines["c"],
                  label("d"): pipelines["d"], BUNDLED_LABEL: bundled}
        holdout = {name: evaluate_holdout(p, frames)
                   for name, p in tqdm(models.items(), desc="evaluating the holdout", unit="model")}
    walls = {**trained.walls, "evaluation": time.perf_counter() - eval_started, "total": time.perf_counter() - started}

    chosen_label = "the depth network alone (no adapter)" if style_row is None else \
        f"style adapter ({ROWS[style_row].removeprefix('real, ')}) + depth network"
    stage_rows = {"depth": ("stage 1: depth GAN on synthetic frames", args.depth_minutes),
                  "c": ("stage 2: CycleGAN adapter", args.style_minutes),
                  "d": ("stage 2: depth-aware cycle adapter", args.style_minutes)}
    gaps = {row: gap_sentence(metrics, row) for row in STYLE_RUNS}
    lines = [
        f"Lite preset at {SIZE[0]}x{SIZE[1]}, procedural data, `training/train.py` runs on wall-clock budgets "
        f"(`run.max_minutes`), training seed {TRAIN_SEED}; validation seed {VAL_SEED} (best checkpoints and the "
        f"bundled pipeline); evaluation: {args.eval_frames} frames of seed {EVAL_SEED} per domain, the real look "
        "rendered over the synthetic frames' scenes (rows a and b differ in the look alone). Metrics in metres "
        "(`depth_da_ros.metrics`): crop none, depth in (1e-3, 80] m (the sky is excluded), per image then averaged, "
        f"no scaling. Runs in `{shown(work)}`." + (" **Quick smoke run: the numbers mean nothing.**" if args.quick else ""),
        "",
        "## Wall time",
        "",
        "| stage | budget | steps | wall |", "|---|---:|---:|---:|",
        *(f"| {name} | {minutes:g} min | {trained.summaries[key]['steps']} | {walls[key] / 60:.1f} min |"
          for key, (name, minutes) in stage_rows.items()),
        f"| evaluation, holdout, export | | | {walls['evaluation'] / 60:.1f} min |",
        f"| total | | | {walls['total'] / 60:.1f} min |",
        *(["", f"Training was not rerun (`--reuse`): the stage rows are the runs' own minutes from their "
               "summary.json, the total is this invocation's."] if args.reuse else []),
        "",
        "Training commands (each run's `config.yaml` in its folder reproduces it too):",
        "",
        *(f"- {stage_rows[key][0]}: `{trained.commands[key]}`" for key in stage_rows),
        "",
        "## Procedural: synthetic -> real",
        "",
        format_metrics_table({**{label(row): metrics[row] for row in ROWS},
                              f"{BUNDLED_LABEL}, real frames": metrics["bundled"]}),
        "",
        *(f"- {sentence}" for sentence, _ in gaps.values()),
    ]
    if not any(met for _, met in gaps.values()):
        lines.append(
            f"- Not reached. Tried: the CycleGAN adapter ({trained.summaries['c']['steps']} steps) and the "
            f"depth-aware cycle with weight {DEPTH_AWARE_WEIGHT:g} ({trained.summaries['d']['steps']} steps), "
            f"{args.style_minutes:g} min each at batch 1 on this machine, best checkpoints by validation abs_rel; "
            "nothing was tuned on the evaluation frames.")
    lines += [
        "",
        "Picture strips (input | adapted | predicted depth | ground truth; turbo map by inverse depth over 1-80 m, "
        "black = sky):",
        "",
        *(f"- [{label(row)}]({NAME}/{strips[row].name})" for row in ROWS),
        "",
        "## Bundled model (chosen on the validation split)",
        "",
        f"| pipeline | validation abs_rel (real look, seed {VAL_SEED}) |", "|---|---:|",
        *(f"| {label(row)} | {value:.3f} |" for row, value in val_abs_rel.items()),
        "",
        f"Chosen: {chosen_label}, exported to `{shown(model_path)}` "
        f"({describe_precision(metadata)}, {size / 1e6:.1f} MB, sha256 `{sha256[:16]}...`) with its model card; its row "
        f"above evaluates that ONNX file (ONNX Runtime): {latency_ms:.0f} ms p50 per 1242x375 frame end to end on "
        "this machine.",
        "",
        "## Holdout: real KITTI frames (evaluation only)",
        "",
        "The same networks on the real frames of `../shared/data/holdout`, which nothing was trained, tuned or "
        "chosen on: Garg crop, depth in (1e-3, 80] m, per image then averaged, depth rescaled by focal length as "
        "the node does; median scaling per image where stated. Trained on procedural scenes only, the models are "
        "expected to do poorly here.",
        "",
        *(holdout_tables(holdout, frames) if holdout is not None
          else [f"Skipped: {HOLDOUT} is absent (a fresh clone has no ../shared).", ""]),
    ]
    body = "\n".join(lines)
    print(body)

    card = model_card(chosen=chosen_label, metadata=metadata, size=size, sha256=sha256, latency_ms=latency_ms,
                      trained=trained,
                      style_row=style_row, eval_frames=args.eval_frames, bundled=metrics["bundled"],
                      unadapted=metrics["b"], holdout=holdout[BUNDLED_LABEL] if holdout is not None else None,
                      args=args)
    (model_dir / "MODEL_CARD.md").write_text(card)
    if args.quick:
        path = results_dir / f"{NAME}.md"
        write_quick_results(path, body)
    else:
        path = record(NAME, body)
    print(f"recorded in {path}; model {model_path} ({size / 1e6:.1f} MB) and {model_dir / 'MODEL_CARD.md'}")


if __name__ == "__main__":
    main()
