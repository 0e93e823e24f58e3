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

Records benchmarks/results/sim2real.md and its picture strips in benchmarks/results/sim2real/.
"""
from __future__ import annotations

import argparse
import hashlib
import logging
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

from depth_da_ros.camera import KITTI_CX, KITTI_CY, KITTI_FX, KITTI_FY  # noqa: E402
from depth_da_ros.depth_io import read_kitti_depth  # noqa: E402
from depth_da_ros.export import export_onnx  # noqa: E402
from depth_da_ros.geometry import Intrinsics, scale_depth  # noqa: E402
from depth_da_ros.kitti import KittiCalibration, load_velodyne_points, project_velodyne, read_calib_file  # noqa: E402
from depth_da_ros.metrics import METRIC_NAMES, evaluate_frames, format_metrics_table  # noqa: E402
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
STRIP_FILES = {"a": "a_in_domain.png", "b": "b_no_adaptation.png", "c": "c_cyclegan.png", "d": "d_depth_aware.png"}
BUNDLED_LABEL = "bundled model (ONNX, fp16)"


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


def write_strip(path: Path, title: str, tiles: list[tuple[np.ndarray, ...]]) -> None:
    """Rows of input | adapted | predicted depth | ground truth, under a title and column labels."""
    rows = [np.hstack([rgb, seen, colorize_depth(depth), colorize_depth(gt)]) for rgb, seen, depth, gt in tiles]
    body = np.vstack(rows)
    tile_width = tiles[0][0].shape[1]
    header = np.full((44, body.shape[1], 3), 255, np.uint8)
    cv2.putText(header, title, (8, 17), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    for i, name in enumerate(STRIP_COLUMNS):
        cv2.putText(header, name, (i * tile_width + 8, 37), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (60, 60, 60), 1,
                    cv2.LINE_AA)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(np.vstack([header, body]), cv2.COLOR_RGB2BGR),
                [cv2.IMWRITE_PNG_COMPRESSION, 9])


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


def gap_recovered(a: float, b: float, c: float) -> float:
    """(b - c) / (b - a): the share of the no-adaptation gap that adaptation closes."""
    return (b - c) / (b - a)


def gap_sentence(metrics: dict[str, dict[str, float]], row: str) -> str:
    a, b, c = (metrics[key]["abs_rel"] for key in ("a", "b", row))
    if b <= a:
        return (f"{ROWS[row]}: no gap to recover (abs_rel without adaptation {b:.3f} <= in-domain {a:.3f}); "
                f"with the adapter {c:.3f}.")
    share = gap_recovered(a, b, c)
    verdict = "meets" if share >= TARGET_GAP_RECOVERED else "does NOT meet"
    return (f"{ROWS[row]}: gap recovered = ({b:.3f} - {c:.3f}) / ({b:.3f} - {a:.3f}) = **{share:.0%}**, "
            f"which {verdict} the target of {TARGET_GAP_RECOVERED:.0%}.")


def holdout_tables(results: dict[str, dict[tuple[str, bool], dict[str, float]]], frames: list[HoldoutFrame]) -> list[str]:
    lines = []
    for kind in dict.fromkeys(f.ground_truth for f in frames):
        names = ", ".join(f.name for f in frames if f.ground_truth == kind)
        rows = {}
        for label, metrics in results.items():
            rows[f"{label}, metric"] = metrics[(kind, False)]
            scaled = metrics[(kind, True)]
            rows[f"{label}, median-scaled (ratio {scaled['ratio_median']:.2f} ± {scaled['ratio_std']:.2f})"] = scaled
        lines += [f"### Ground truth: {kind} ({names})", "", format_metrics_table(rows), ""]
    return lines


def model_card(*, chosen: str, metadata, size: int, sha256: str, depth_summary: dict, style_summary: dict | None,
               eval_frames: int, procedural: dict[str, float], real_no_adaptation: dict[str, float],
               holdout: dict[tuple[str, bool], dict[str, float]] | None, args: argparse.Namespace) -> str:
    """models/MODEL_CARD.md: data, commands, metrics and limits of the bundled model."""
    steps = f"stage 1: {depth_summary['steps']} steps of batch 4 (depth GAN, {args.depth_minutes:g}-min budget)"
    if style_summary is not None:
        steps += f"; stage 2: {style_summary['steps']} steps of batch 1 (CycleGAN, {args.style_minutes:g}-min budget)"
    lines = [
        "# Bundled model: `models/depth.onnx`",
        "",
        "The default model of `depth_da_node` (no `model_path` needed) and of `make demo`. "
        "Written by `benchmarks/bench_sim2real.py`; do not edit by hand.",
        "",
        "## What it is",
        "",
        f"- Pipeline: {chosen}; the {metadata.preset} preset at {metadata.input_width}x{metadata.input_height}, "
        "one fused ONNX graph (opset " f"{metadata.opset}): uint8 RGB `image` [N, H, W, 3] in, float32 metres "
        f"`depth` [N, 1, H, W] out, depth range (0, {metadata.max_depth:g}] m"
        + (", plus the adapted frame `styled`" if metadata.outputs_styled else "") + ".",
        f"- Precision: {metadata.precision} weights and compute (the fp32 graph of the lite pipeline is about "
        "31 MB, over the repository's 20 MB limit; ONNX Runtime on a CPU runs the fp16 graph about 20% slower).",
        f"- File: {size / 1e6:.1f} MB, sha256 `{sha256}`, exported {metadata.export_date}.",
        f"- Training camera: KITTI-like, fx {metadata.training_camera.fx:.1f} px at the network size; the node "
        "rescales depth by focal length for other cameras (`scale_mode: focal`).",
        "",
        "## Data",
        "",
        "Procedural street scenes only (`depth_da_ros.procedural`), rendered on the fly; no KITTI or SYNTHIA "
        f"image was used for training or model selection. Training seed {TRAIN_SEED} ({steps}); validation "
        f"(checkpoint and pipeline choice) seed {VAL_SEED}; evaluation seed {EVAL_SEED}. "
        "The real KITTI frames of `../shared/data/holdout` were used for evaluation only.",
        "",
        "## Regenerate from scratch",
        "",
        "```bash",
        f"python benchmarks/bench_sim2real.py --depth-minutes {args.depth_minutes:g} --style-minutes "
        f"{args.style_minutes:g}   # trains, evaluates, exports this file and this card",
        "```",
        "",
        "Results, picture strips and the per-row commands: "
        "[benchmarks/results/sim2real.md](../benchmarks/results/sim2real.md).",
        "",
        "## Metrics",
        "",
        f"Procedural evaluation frames (seed {EVAL_SEED}, {eval_frames} frames, crop none, (1e-3, 80] m, metric):",
        "",
        format_metrics_table({f"{BUNDLED_LABEL}, real-look frames": procedural,
                              "depth network alone, real-look frames (no adaptation)": real_no_adaptation}),
        "",
    ]
    if holdout is not None:
        lines += ["Real KITTI frames (holdout, Garg crop, (1e-3, 80] m):", ""]
        lines += [format_metrics_table({f"{kind}, {'median-scaled' if scaled else 'metric'}": m
                                        for (kind, scaled), m in holdout.items()}), ""]
    lines += [
        "## Limits",
        "",
        "- Trained on procedural scenes only. It is a demonstration model: **not for real vehicles**, robots "
        "or any safety-related use.",
        "- On real camera images its depth is poor (see the KITTI rows above): the procedural scenes are far "
        "simpler than real streets.",
        "- Metric scale is learnt from one KITTI-like camera; other cameras rely on focal rescaling, and "
        f"depth beyond {metadata.max_depth:g} m (and the sky) saturates.",
        "",
    ]
    return "\n".join(lines)


# -- main ---------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depth-minutes", type=float, help="stage-1 wall-clock budget (default 20; --quick 0.3)")
    parser.add_argument("--style-minutes", type=float,
                        help="budget of each of the two style runs (default 11; --quick 0.2)")
    parser.add_argument("--eval-frames", type=int, help="procedural evaluation frames per domain (default 64; --quick 8)")
    parser.add_argument("--strip-frames", type=int, default=3, help="frames per picture strip (default: %(default)s)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: tiny budgets; results, strips and model go under --work, not the repository")
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "bench_sim2real")
    args = parser.parse_args()
    defaults = dict(depth_minutes=0.3, style_minutes=0.2, eval_frames=8) if args.quick else \
        dict(depth_minutes=20.0, style_minutes=11.0, eval_frames=64)
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if min(args.depth_minutes, args.style_minutes) <= 0 or args.eval_frames < 1 or args.strip_frames < 1:
        parser.error("budgets, --eval-frames and --strip-frames must be positive")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for name in ("onnxscript", "onnx_ir"):  # the exporter's optimisation passes log every rewrite at INFO
        logging.getLogger(name).setLevel(logging.WARNING)

    started = time.perf_counter()
    work = args.work / time.strftime("%Y%m%d-%H%M%S")
    results_dir = work / "results" if args.quick else RESULTS
    strips_dir = results_dir / NAME
    model_dir = work / "models" if args.quick else ROOT / "models"
    # Smaller validation splits keep the quick run quick; the full run uses the configs' splits.
    val = ["data.val.length=8"] if args.quick else []
    common = [f"run.seed={TRAIN_SEED}", f"run.steps={RUN_STEPS}", *val]
    walls: dict[str, float] = {}

    depth_dir = work / "depth"
    depth_summary, walls["depth"], _ = train("depth", depth_dir, *common, f"run.max_minutes={args.depth_minutes}",
                                             f"run.val_every={DEPTH_VAL_EVERY}")
    depth_ckpt = depth_dir / "checkpoints" / "best.pt"
    style_runs = {"c": ("style_cyclegan", 0.0), "d": ("style_depth_aware", DEPTH_AWARE_WEIGHT)}
    style_summaries, style_ckpts = {}, {}
    for row, (folder, weight) in style_runs.items():
        style_summaries[row], walls[row], _ = train(
            "style", work / folder, *common, f"run.max_minutes={args.style_minutes}", f"run.val_every={STYLE_VAL_EVERY}",
            f"depth_checkpoint={depth_ckpt}", f"loss.depth_aware={weight}")
        style_ckpts[row] = work / folder / "checkpoints" / "best.pt"

    eval_started = time.perf_counter()
    synthetic, real = procedural_frames("synthetic", args.eval_frames), procedural_frames("real", args.eval_frames)
    pipelines = {"b": DepthPipeline(depth_ckpt, backend="torch")}
    pipelines.update({row: DepthPipeline(depth_ckpt, backend="torch", style_checkpoint=path)
                      for row, path in style_ckpts.items()})
    metrics, strips = {}, {}
    for row in ROWS:
        pipeline = pipelines["b" if row == "a" else row]
        metrics[row], tiles = evaluate_procedural(pipeline, synthetic if row == "a" else real, ROWS[row],
                                                  args.strip_frames)
        strips[row] = strips_dir / STRIP_FILES[row]
        write_strip(strips[row], ROWS[row], tiles)

    # The bundled pipeline: the lowest validation abs_rel (real-look frames of seed 1, the frames each
    # style run validated on), never the evaluation frames or the holdout.
    val_abs_rel = {"b": style_summaries["c"]["metrics"]["no_adaptation_abs_rel"],
                   **{row: style_summaries[row]["best"]["value"] for row in style_runs}}
    chosen = min(val_abs_rel, key=val_abs_rel.get)
    model_dir.mkdir(parents=True, exist_ok=True)
    model_path = model_dir / "depth.onnx"
    # fp16: the lite pipeline's fp32 graph (~31 MB) exceeds the repository's 20 MB limit.
    metadata = export_onnx(model_path, depth_ckpt, style_ckpts.get(chosen), fp16=True)
    size = model_path.stat().st_size
    if size > MODEL_LIMIT_BYTES:
        model_path.unlink()
        sys.exit(f"the exported model is {size / 1e6:.1f} MB, over the {MODEL_LIMIT_BYTES / 1e6:g} MB limit; "
                 "removed it")
    sha256 = hashlib.sha256(model_path.read_bytes()).hexdigest()
    bundled = DepthPipeline(model_path, backend="onnxruntime")
    metrics["bundled"], _ = evaluate_procedural(bundled, real, BUNDLED_LABEL, 0)

    holdout = None
    holdout_note = (f"Skipped: {HOLDOUT} is absent (a fresh clone has no ../shared); rerun where it exists.")
    if HOLDOUT.is_dir():
        frames = holdout_frames()
        holdout = {"depth network alone (rows a, b)": pipelines["b"], ROWS["c"][4:]: pipelines["c"],
                   ROWS["d"][4:]: pipelines["d"], BUNDLED_LABEL: bundled}
        holdout = {label: evaluate_holdout(p, frames) for label, p in
                   tqdm(holdout.items(), desc="evaluating the holdout", unit="model")}
    walls["evaluation and export"] = time.perf_counter() - eval_started
    walls["total"] = time.perf_counter() - started

    chosen_label = "the depth network alone (no adapter)" if chosen == "b" else \
        f"style adapter {ROWS[chosen][4:]} + depth network"
    budgets = {"depth": f"{args.depth_minutes:g} min", "c": f"{args.style_minutes:g} min",
               "d": f"{args.style_minutes:g} min"}
    stage_names = {"depth": "stage 1: depth GAN (synthetic)", "c": "stage 2: CycleGAN adapter",
                   "d": "stage 2: depth-aware cycle adapter"}
    summaries = {"depth": depth_summary, **style_summaries}
    lines = [
        f"Lite preset at {SIZE[1]}x{SIZE[0]}, procedural data, `training/train.py` runs on wall-clock budgets "
        f"(`run.max_minutes`). Training seed {TRAIN_SEED}; validation seed {VAL_SEED} (best checkpoints and the "
        f"bundled pipeline); evaluation: {args.eval_frames} frames of seed {EVAL_SEED} per domain, the real look "
        "rendered over the synthetic frames' scenes (so rows a and b differ in the look alone). Metrics in metres "
        "(`depth_da_ros.metrics`): crop none, depth in (1e-3, 80] m (sky excluded), per image then averaged, no "
        "scaling. Runs in " f"`{work}`." + (" **Quick smoke run: the numbers mean nothing.**" if args.quick else ""),
        "",
        "## Wall time",
        "",
        "| stage | budget | steps | wall |", "|---|---|---:|---:|",
        *(f"| {stage_names[k]} | {budgets[k]} | {summaries[k]['steps']} | {walls[k] / 60:.1f} min |"
          for k in ("depth", "c", "d")),
        f"| evaluation, holdout, export | - | - | {walls['evaluation and export'] / 60:.1f} min |",
        f"| total | | | {walls['total'] / 60:.1f} min |",
        "",
        "## Procedural: synthetic -> real",
        "",
        format_metrics_table({**{ROWS[row]: metrics[row] for row in ROWS},
                              f"{BUNDLED_LABEL}, real frames": metrics["bundled"]}),
        "",
        *(f"- {gap_sentence(metrics, row)}" for row in style_runs),
        "",
        "Picture strips (input | adapted | predicted depth | ground truth; turbo map over 1-80 m by inverse "
        "depth, black = sky):",
        "",
        *(f"- [{ROWS[row]}]({NAME}/{strips[row].name})" for row in ROWS),
        "",
        "## Bundled model (chosen on the validation split)",
        "",
        "| pipeline | validation abs_rel (real look, seed 1) |", "|---|---:|",
        *(f"| {ROWS[row][4:]} | {val_abs_rel[row]:.3f} |" for row in val_abs_rel),
        "",
        f"Chosen: {chosen_label}. Exported to `{model_path.relative_to(work if args.quick else ROOT)}` "
        f"({metadata.precision}, {size / 1e6:.1f} MB, sha256 `{sha256[:16]}...`); "
        "its evaluation row above is the ONNX file itself (ONNX Runtime).",
        "",
        "## Holdout: real KITTI frames (evaluation only)",
        "",
        "The same networks on the real frames of `../shared/data/holdout`, which nothing was trained, tuned or "
        "chosen on: Garg crop, depth in (1e-3, 80] m, per image then averaged, depth rescaled by focal length as "
        "the node does. Trained on procedural scenes only, the models are expected to do poorly here.",
        "",
    ]
    lines += holdout_tables(holdout, frames) if holdout is not None else [holdout_note, ""]
    body = "\n".join(lines)
    print(body)

    card = model_card(chosen=chosen_label, metadata=metadata, size=size, sha256=sha256, depth_summary=depth_summary,
                      style_summary=None if chosen == "b" else style_summaries[chosen], eval_frames=args.eval_frames,
                      procedural=metrics["bundled"], real_no_adaptation=metrics["b"],
                      holdout=holdout[BUNDLED_LABEL] if holdout is not None else None, args=args)
    (model_dir / "MODEL_CARD.md").write_text(card)
    if args.quick:
        path = results_dir / f"{NAME}.md"
        path.write_text(f"# {NAME} (quick smoke run)\n\n- machine: {machine_summary()}\n\n{body}\n")
    else:
        path = record(NAME, body)
    print(f"recorded in {path}; model {model_path} ({size / 1e6:.1f} MB) and {model_dir / 'MODEL_CARD.md'}")


if __name__ == "__main__":
    main()
