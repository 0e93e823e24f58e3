#!/usr/bin/env python3
"""Sim-to-real: does the style adapter close the synthetic -> real gap, and does it beat augmentation?

Every network is a real ``training/train.py`` run in a child process, of the ``bench`` preset
(96x320, ``depth_da_ros.models.presets``), on the same procedural data (training frames of
data seed 0, rendered once into a disk cache), with the same step budget per stage. Each row
is trained with several training seeds (``run.seed``: initialisation, sample order and
augmentation draws), and reported as mean and spread over the seeds. Rows:

(a) depth network trained on synthetic frames, on synthetic evaluation frames (in-domain);
(b) the same network on real-look frames, no adaptation (the domain gap);
(c) a depth network trained with photometric augmentation of its synthetic images (colour
    jitter, blur, noise, JPEG: ``data.photometric``), on real-look frames, no adapter;
(d) the CycleGAN adapter (real -> synthetic) in front of network (a, b);
(e) the depth-aware cycle adapter (``loss.depth_aware``, with network (a, b) frozen in the loss)
    in front of network (a, b);
(f) the better adapter of (d) and (e), chosen per seed on the validation split, in front of
    the augmented network (c). The adapter is the one trained for (d) or (e): its depth-aware
    loss saw network (a, b), not (c);
(g) a student U-Net (``training/train.py distill``) trained on the real-look training frames to
    reproduce pipeline (d), starting from network (a, b)'s weights: at inference it runs alone
    on camera frames, 0.60 of (d)'s 3.30 GFLOP (benchmarks/results/peers.md).

Data: training frames of data seed 0 (both domains, unpaired); validation seed 1 (best
checkpoints, the choice of row f; the depth stage validates on synthetic frames, the style
stage on real-look frames through network (a, b)); evaluation seed 1000, never used for
training or any choice, the real look rendered over the synthetic frames' scenes (paired), so
rows a and b differ in the look alone. Metrics (``depth_da_ros.metrics``) in metres: crop none,
depth in (1e-3, 80] m, per image then averaged, no scaling. Gap recovered by a row x:
(abs_rel_b - abs_rel_x) / (abs_rel_b - abs_rel_a), per seed, then mean and spread.

The networks of the first seed are also evaluated on the real KITTI frames in
``../shared/data/holdout`` (evaluation only; nothing is fitted or chosen on them).

    python benchmarks/bench_sim2real.py                    # 3 seeds; about 100 minutes on 2 cores
    python benchmarks/bench_sim2real.py --quick            # a smoke run (~2 min), written under --work only
    python benchmarks/bench_sim2real.py --work runs/bench_sim2real/<time>   # resume: finished runs are kept

Records benchmarks/results/sim2real.md and its picture strips in benchmarks/results/sim2real/.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

# Runs from a plain checkout too, without installing the package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_training import train  # noqa: E402
from recording import RESULTS, machine_summary, record  # noqa: E402

from depth_da_ros.camera import KITTI_CX, KITTI_CY, KITTI_FX, KITTI_FY  # noqa: E402
from depth_da_ros.depth_io import read_kitti_depth, read_rgb  # noqa: E402
from depth_da_ros.geometry import Intrinsics, scale_depth  # noqa: E402
from depth_da_ros.kitti import KittiCalibration, load_velodyne_points, project_velodyne, read_calib_file  # noqa: E402
from depth_da_ros.metrics import METRIC_NAMES, evaluate_frames  # noqa: E402
from depth_da_ros.models import get_preset  # noqa: E402
from depth_da_ros.pipeline import DepthPipeline  # noqa: E402
from depth_da_ros.procedural.cache import FrameCache  # noqa: E402
from depth_da_ros.procedural.dataset import ProceduralConfig, ProceduralDataset  # noqa: E402
from depth_da_ros.visualization import colorize_depth, picture_strip, write_png  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
HOLDOUT = SHARED / "holdout"
RAW_CALIB_DIR = SHARED / "kitti_raw_sample" / "2011_09_26"  # for the mmdetection3d frame, whose .txt has P2 only
NAME = "sim2real"

PRESET = "bench"
SIZE = (get_preset(PRESET).input_height, get_preset(PRESET).input_width)
DATA_SEED = 0  # the training frames of every run (the configs' default)
VAL_SEED = 1  # the configs' validation split
EVAL_SEED = 1000  # evaluation frames: disjoint from training and validation
MAX_DEPTH = 80.0  # metric cap, as KITTI's
DEPTH_AWARE_WEIGHT = 10.0  # equal to the cycle weight: depth kept through the cycle counts as much as the pixels
TARGET_GAP_RECOVERED = 0.5
TARGET_IN_DOMAIN_ABS_REL = 0.10
TRAIN_FRAMES = 4000  # per domain, the configs' default
STRIP_COLUMNS = ("input", "what the depth network sees", "predicted depth", "ground truth")
ROWS = {
    "a": "in-domain: synthetic frames",
    "b": "real, no adaptation",
    "c": "real, photometric augmentation in stage 1",
    "d": "real, CycleGAN adapter",
    "e": f"real, depth-aware cycle adapter (loss.depth_aware={DEPTH_AWARE_WEIGHT:g})",
    "f": "real, best adapter (d or e, by validation) + augmented network (c)",
    "g": "real, student distilled from (d): one network on camera frames, no adapter",
}
ADAPTED_ROWS = ("c", "d", "e", "f", "g")


def label(row: str) -> str:
    return f"({row}) {ROWS[row]}"


def shown(path: Path) -> str:
    """``path`` relative to the checkout when inside it (the commands run there), else as it is."""
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


# -- training -----------------------------------------------------------------------------------


@dataclass
class Run:
    key: str  # depth | depth_aug | style_cyclegan | style_depth_aware | distill
    seed: int
    folder: Path
    stage: str
    overrides: tuple[str, ...]
    summary: dict | None = None
    wall_s: float = 0.0

    @property
    def best(self) -> Path:
        return self.folder / "checkpoints" / "best.pt"

    @property
    def command(self) -> str:
        return " ".join(["python training/train.py", self.stage, f"--set run.run_dir={shown(self.folder)}",
                         *(f"--set {shlex.quote(o.replace(str(ROOT) + '/', ''))}" for o in self.overrides)])


def plan_runs(args: argparse.Namespace, work: Path) -> list[Run]:
    """The five runs of every seed, in training order (style needs depth, distill needs style)."""
    cache = args.cache.resolve()
    data = [f"data.train.length={args.train_frames}"]
    small_val = ["data.val.length=4"] if args.quick else []
    runs = []
    for seed in args.seeds:
        base = [f"model.preset={PRESET}", f"run.seed={seed}", "run.log_every=25", "run.image_every=1000000"]
        depth = [*base, f"run.steps={args.depth_steps}", f"run.batch_size={args.batch}",
                 f"run.val_every={max(args.depth_steps // 3, 1)}", f"run.checkpoint_every={args.depth_steps}",
                 f"model.depth_encoding={args.encoding}", f"data.train.cache={cache}", f"data.val.cache={cache}",
                 *data, *small_val]
        runs.append(Run("depth", seed, work / f"seed{seed}" / "depth", "depth", tuple(depth)))
        runs.append(Run("depth_aug", seed, work / f"seed{seed}" / "depth_aug", "depth",
                        (*depth, "data.photometric=true")))
        decay = max(args.style_steps // 2, 1)  # CycleGAN: constant, then linear decay over the second half
        style = [*base, f"run.steps={args.style_steps}", f"run.batch_size={args.style_batch}",
                 f"run.val_every={max(args.style_steps // 3, 1)}", f"run.checkpoint_every={args.style_steps}",
                 f"model.depth_encoding={args.encoding}", f"optim_g.decay_steps={decay}",
                 f"optim_d.decay_steps={decay}", f"data.real.cache={cache}", f"data.synthetic.cache={cache}",
                 f"data.val.cache={cache}", f"data.real.length={args.train_frames}",
                 f"data.synthetic.length={args.train_frames}", *small_val,
                 f"depth_checkpoint={work / f'seed{seed}' / 'depth' / 'checkpoints' / 'best.pt'}"]
        runs.append(Run("style_cyclegan", seed, work / f"seed{seed}" / "style_cyclegan", "style",
                        (*style, "loss.depth_aware=0.0")))
        runs.append(Run("style_depth_aware", seed, work / f"seed{seed}" / "style_depth_aware", "style",
                        (*style, f"loss.depth_aware={DEPTH_AWARE_WEIGHT}")))
        distill_decay = max(args.distill_steps // 2, 1)
        distill = [*base, f"run.steps={args.distill_steps}", f"run.batch_size={args.batch}",
                   f"run.val_every={max(args.distill_steps // 3, 1)}", f"run.checkpoint_every={args.distill_steps}",
                   f"model.depth_encoding={args.encoding}", f"optim_g.decay_steps={distill_decay}",
                   f"data.real.cache={cache}", f"data.val.cache={cache}", f"data.real.length={args.train_frames}",
                   *small_val, f"teacher_style={work / f'seed{seed}' / 'style_cyclegan' / 'checkpoints' / 'best.pt'}"]
        runs.append(Run("distill", seed, work / f"seed{seed}" / "distill", "distill", tuple(distill)))
    return runs


def train_runs(runs: list[Run]) -> None:
    """Train every run that has no summary.json yet (a finished run is kept: the benchmark resumes)."""
    for run in runs:
        summary = run.folder / "summary.json"
        if summary.is_file():
            run.summary = json.loads(summary.read_text())
            run.wall_s = run.summary.get("minutes", 0.0) * 60
            print(f"kept finished run {shown(run.folder)}", flush=True)
            continue
        if run.folder.exists():  # an interrupted run starts again: every row keeps the same budget rule
            print(f"removing the unfinished run {shown(run.folder)}", flush=True)
            shutil.rmtree(run.folder)
        run.summary, run.wall_s, _ = train(run.stage, run.folder, *run.overrides)


def render_caches(args: argparse.Namespace) -> None:
    """Render the training and validation frames once (every run then reads them from disk)."""
    height, width = SIZE
    sets = [("synthetic", DATA_SEED, args.train_frames), ("real", DATA_SEED, args.train_frames),
            ("synthetic", VAL_SEED, 4 if args.quick else 64), ("real", VAL_SEED, 4 if args.quick else 32)]
    for domain, seed, length in sets:
        config = ProceduralConfig(domain=domain, seed=seed, height=height, width=width)
        FrameCache(ProceduralDataset(config, length), args.cache).fill(f"rendering {domain} frames of seed {seed}")


# -- evaluation ---------------------------------------------------------------------------------


def procedural_frames(domain: str, count: int, seed: int = EVAL_SEED,
                      size: tuple[int, int] = SIZE) -> list[tuple[np.ndarray, np.ndarray]]:
    """(RGB uint8 (H, W, 3), depth float32 metres (H, W); inf = sky, invalid for the metrics) of
    ``count`` frames of ``seed`` at ``size``; the evaluation seed renders the synthetic frames'
    scenes in either look (paired)."""
    config = ProceduralConfig(domain=domain, seed=seed, height=size[0], width=size[1], paired=seed == EVAL_SEED)
    dataset = ProceduralDataset(config, count)
    return [(frame.rgb, frame.depth) for frame in
            (dataset[i] for i in tqdm(range(count), desc=f"rendering {domain} frames of seed {seed}", unit="frame"))]


def predict(pipeline: DepthPipeline, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Depth and the frame the depth network saw (the adapted frame, or the input itself)."""
    if pipeline.metadata.outputs_styled:
        return pipeline.predict(rgb, return_styled=True)
    return pipeline.predict(rgb), rgb


def evaluate_procedural(pipeline: DepthPipeline, frames: list[tuple[np.ndarray, np.ndarray]], desc: str,
                        strip_frames: int) -> tuple[dict[str, float], list[tuple[np.ndarray, ...]]]:
    """The seven metrics over ``frames`` and the strip tiles of the first ``strip_frames``."""
    pairs, tiles = [], []
    for rgb, gt in tqdm(frames, desc=desc, unit="frame", leave=False):
        depth, seen = predict(pipeline, rgb)
        # REP 118: the pipeline may mark saturated far depth +Inf; the metrics cap it at 80 m as KITTI's.
        pairs.append((gt, np.where(np.isposinf(depth), MAX_DEPTH, depth)))
        if len(tiles) < strip_frames:
            tiles.append((rgb, seen, depth, gt))
    return evaluate_frames(pairs, crop="none", max_depth=MAX_DEPTH), tiles


def row_pipelines(runs: dict[str, Run], choice: str) -> dict[str, DepthPipeline]:
    """Row -> pipeline of one seed; ``choice`` is the adapter run of row f."""
    depth, depth_aug = runs["depth"].best, runs["depth_aug"].best
    plain = DepthPipeline(depth, backend="torch")
    return {"a": plain, "b": plain, "c": DepthPipeline(depth_aug, backend="torch"),
            "d": DepthPipeline(depth, backend="torch", style_checkpoint=runs["style_cyclegan"].best),
            "e": DepthPipeline(depth, backend="torch", style_checkpoint=runs["style_depth_aware"].best),
            "f": DepthPipeline(depth_aug, backend="torch", style_checkpoint=runs[choice].best),
            "g": DepthPipeline(runs["distill"].best, backend="torch")}


def validation_abs_rel(run: Run) -> float:
    """The style run's best validation abs_rel (adapter + network (a, b) on real-look frames of seed 1)."""
    return float(run.summary["best"]["value"])


# -- holdout: real KITTI frames -----------------------------------------------------------------


@dataclass(frozen=True)
class HoldoutFrame:
    name: str
    ground_truth: str  # "depth benchmark" or "velodyne"
    rgb: np.ndarray
    gt: np.ndarray  # metres, 0 / NaN = no measurement
    camera: Intrinsics  # of the image as it is, for the node's focal rescaling


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


def velodyne_frame(name: str, image: Path, scan: Path, velo_to_image: np.ndarray, p2: np.ndarray) -> HoldoutFrame:
    rgb = read_rgb(image)
    height, width = rgb.shape[:2]
    gt = project_velodyne(load_velodyne_points(scan), velo_to_image, width, height)
    camera = Intrinsics(width, height, p2[0, 0], p2[1, 1], p2[0, 2], p2[1, 2])
    return HoldoutFrame(name, "velodyne", rgb, gt, camera)


def holdout_frames(root: Path = HOLDOUT) -> list[HoldoutFrame]:
    """The holdout's KITTI frames with ground truth (see ../shared/data/README.md)."""
    frames = []
    metric3d = root / "kitti_depth_gt__YvanYin_Metric3D"
    for depth_path in sorted((metric3d / "depth").glob("*.png")):
        rgb = read_rgb(metric3d / "rgb" / depth_path.name)
        # The JSON's intrinsics do not fit a 1242x375 frame; 2011_09_26 P_rect_02 does (data README).
        camera = Intrinsics(rgb.shape[1], rgb.shape[0], KITTI_FX, KITTI_FY, KITTI_CX, KITTI_CY)
        frames.append(HoldoutFrame(f"Metric3D {depth_path.stem}", "depth benchmark", rgb,
                                   read_kitti_depth(depth_path), camera))
    daryl = root / "kitti_object__darylclimb_cvml_project"
    frames.append(velodyne_frame("darylclimb 000114", daryl / "000114_image.png", daryl / "000114.bin",
                                  *object_calibration(daryl / "000114_calib.txt")))
    mmdet = root / "kitti_object__open-mmlab_mmdetection3d"
    # Its .txt holds P2 alone (as a 4x4); R_rect_00 and [R|T] come from the 2011_09_26 raw calibration.
    p2 = np.loadtxt(mmdet / "000008.txt").reshape(4, 4)[:3]
    raw = KittiCalibration.from_dir(RAW_CALIB_DIR)
    frames.append(velodyne_frame("mmdetection3d 000008", mmdet / "000008.png", mmdet / "000008.bin",
                                  (p2 @ raw.cam_to_rect) @ raw.velo_to_cam, p2))
    pillars = root / "kitti_object__zhulf0804_PointPillars"
    for split, frame in (("test", "000002"), ("val", "000134")):  # val/000134: another date, its own calib
        folder = pillars / split
        frames.append(velodyne_frame(f"PointPillars {split}/{frame}", folder / f"{frame}.png", folder / f"{frame}.bin",
                                      *object_calibration(folder / f"{frame}.txt")))
    return frames


def evaluate_holdout(pipeline: DepthPipeline, frames: list[HoldoutFrame]) -> dict[tuple[str, bool], dict[str, float]]:
    """(ground-truth kind, median scaling) -> metrics: Garg crop, (1e-3, 80] m, focal rescaling as the node."""
    pairs: dict[str, list] = {}
    for frame in frames:
        depth, _ = scale_depth(pipeline.predict(frame.rgb), "focal", frame.camera, pipeline.training_camera)
        depth = np.where(np.isposinf(depth), MAX_DEPTH, depth)
        pairs.setdefault(frame.ground_truth, []).append((frame.gt, depth))
    return {(kind, scaled): evaluate_frames(kind_pairs, crop="garg", max_depth=MAX_DEPTH, median_scaling=scaled)
            for kind, kind_pairs in pairs.items() for scaled in (False, True)}


# -- report -------------------------------------------------------------------------------------


def mean_spread(values: list[float]) -> str:
    """'mean ± sample standard deviation' (just the value for one seed)."""
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{np.mean(values):.3f} ± {np.std(values, ddof=1):.3f}"


def gap_recovered(a: float, b: float, x: float) -> float:
    """(b - x) / (b - a): the share of the no-adaptation gap that row x closes (1 = all, 0 = none)."""
    return (b - x) / (b - a)


def metrics_table(per_seed: dict[int, dict[str, dict[str, float]]], rows: list[str]) -> str:
    lines = ["| row | " + " | ".join(METRIC_NAMES) + " |", "|---|" + "---:|" * len(METRIC_NAMES)]
    for row in rows:
        cells = [mean_spread([per_seed[s][row][m] for s in per_seed]) for m in METRIC_NAMES]
        lines.append(f"| {label(row)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def holdout_table(results: dict[str, dict[tuple[str, bool], dict[str, float]]], kind: str) -> str:
    lines = ["| pipeline | scaling | " + " | ".join(METRIC_NAMES) + " |", "|---|---|" + "---:|" * len(METRIC_NAMES)]
    for name, metrics in results.items():
        for scaled in (False, True):
            m = metrics[(kind, scaled)]
            scaling = (f"median (ratio {m['ratio_median']:.2f}, spread {m['ratio_std']:.2f})" if scaled else "metric")
            lines.append(f"| {name} | {scaling} | " + " | ".join(f"{m[k]:.3f}" for k in METRIC_NAMES) + " |")
    return "\n".join(lines)


def write_quick_results(path: Path, body: str) -> None:
    """The quick run's report, next to its runs (``record`` writes into the repository)."""
    command = "python " + " ".join(shlex.quote(a) for a in [os.path.relpath(sys.argv[0])] + sys.argv[1:])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"# {NAME} (quick smoke run)\n\n- command: `{command}`\n"
                    f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n"
                    f"- machine: {machine_summary()}\n\n{body}\n")


# -- main ---------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", help="training seeds (default 0 1 2; --quick 0)")
    parser.add_argument("--depth-steps", type=int, help="steps of each depth run (default 900; --quick 3)")
    parser.add_argument("--style-steps", type=int, help="steps of each style run (default 300; --quick 2)")
    parser.add_argument("--distill-steps", type=int, help="steps of each distillation run (default 600; --quick 2)")
    parser.add_argument("--batch", type=int, default=8, help="depth-stage and distillation batch (default: %(default)s)")
    parser.add_argument("--style-batch", type=int, default=1, help="style-stage batch, CycleGAN's (default: %(default)s)")
    parser.add_argument("--encoding", choices=("linear", "log"), default="log",
                        help="depth encoding (default: %(default)s, chosen by benchmarks/bench_depth_choices.py)")
    parser.add_argument("--train-frames", type=int, help=f"training frames per domain (default {TRAIN_FRAMES}; "
                        "--quick 16)")
    parser.add_argument("--eval-frames", type=int, help="evaluation frames per domain (default 64; --quick 4)")
    parser.add_argument("--strip-frames", type=int, default=3, help="frames per picture strip (default: %(default)s)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: tiny budgets; results and strips go under --work, not the repository")
    parser.add_argument("--work", type=Path, help="the runs' folder; an existing one is resumed "
                        "(default: runs/bench_sim2real/<UTC time>)")
    parser.add_argument("--cache", type=Path, default=ROOT / "runs" / "cache",
                        help="rendered-frame cache shared by all runs (default: %(default)s)")
    args = parser.parse_args(argv)
    defaults = dict(seeds=[0], depth_steps=3, style_steps=2, distill_steps=2, train_frames=16, eval_frames=4) \
        if args.quick else dict(seeds=[0, 1, 2], depth_steps=900, style_steps=300, distill_steps=600,
                                train_frames=TRAIN_FRAMES, eval_frames=64)
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if min(args.depth_steps, args.style_steps, args.distill_steps, args.batch, args.style_batch, args.train_frames,
           args.eval_frames,
           args.strip_frames) < 1:
        parser.error("steps, batches and frame counts must be positive")
    if args.train_frames < args.batch:
        parser.error(f"--train-frames {args.train_frames} is smaller than --batch {args.batch}")
    if len(set(args.seeds)) != len(args.seeds):
        parser.error(f"--seeds repeats a seed: {args.seeds}")
    return args


def main(argv: list[str] | None = None) -> Path:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    started = time.perf_counter()
    work = (args.work or ROOT / "runs" / "bench_sim2real" / time.strftime("%Y%m%d-%H%M%S", time.gmtime())).resolve()
    results_dir = work / "results" if args.quick else RESULTS

    render_started = time.perf_counter()
    render_caches(args)
    render_s = time.perf_counter() - render_started
    runs = plan_runs(args, work)
    train_runs(runs)
    by_seed = {seed: {run.key: run for run in runs if run.seed == seed} for seed in args.seeds}

    eval_started = time.perf_counter()
    synthetic, real = procedural_frames("synthetic", args.eval_frames), procedural_frames("real", args.eval_frames)
    per_seed: dict[int, dict[str, dict[str, float]]] = {}
    choices: dict[int, str] = {}
    validation: dict[int, dict[str, float]] = {}
    strips: dict[str, Path] = {}
    first_pipelines: dict[str, DepthPipeline] = {}
    for seed, seed_runs in by_seed.items():
        validation[seed] = {key: validation_abs_rel(seed_runs[key]) for key in ("style_cyclegan", "style_depth_aware")}
        choices[seed] = min(validation[seed], key=validation[seed].get)
        pipelines = row_pipelines(seed_runs, choices[seed])
        per_seed[seed] = {}
        for row in ROWS:
            frames = synthetic if row == "a" else real
            per_seed[seed][row], tiles = evaluate_procedural(pipelines[row], frames, f"seed {seed}: {label(row)}",
                                                             args.strip_frames)
            if seed == args.seeds[0]:
                strips[row] = results_dir / NAME / f"{row}.png"
                rows = [(rgb, seen, colorize_depth(depth), colorize_depth(gt)) for rgb, seen, depth, gt in tiles]
                write_png(strips[row], picture_strip(rows, STRIP_COLUMNS, f"{label(row)}, seed {seed}", scale=2.0))
        if seed == args.seeds[0]:
            first_pipelines = pipelines
    gaps = {row: [gap_recovered(per_seed[s]["a"]["abs_rel"], per_seed[s]["b"]["abs_rel"], per_seed[s][row]["abs_rel"])
                  for s in args.seeds] for row in ADAPTED_ROWS}

    holdout = frames = None
    if HOLDOUT.is_dir():
        frames = holdout_frames()
        names = {"a": "depth network (rows a, b)", **{row: label(row) for row in ADAPTED_ROWS}}
        holdout = {name: evaluate_holdout(first_pipelines[row], frames)
                   for row, name in tqdm(names.items(), desc="evaluating the holdout", unit="pipeline")}
    eval_s = time.perf_counter() - eval_started
    total_s = time.perf_counter() - started

    in_domain = [per_seed[s]["a"]["abs_rel"] for s in args.seeds]
    student_gain = [per_seed[s]["g"]["abs_rel"] - per_seed[s]["d"]["abs_rel"] for s in args.seeds]
    best_adapter = max(("d", "e", "f"), key=lambda r: np.mean(gaps[r]))
    lines = [
        f"`{PRESET}` preset at {SIZE[0]}x{SIZE[1]} ({args.encoding} depth encoding), procedural data, one "
        f"`training/train.py` run per network and seed: depth stage {args.depth_steps} steps at batch {args.batch}, "
        f"style stage {args.style_steps} steps at batch {args.style_batch} (the same budget for every row), "
        f"distillation {args.distill_steps} steps at batch {args.batch}; training "
        f"seeds {', '.join(map(str, args.seeds))}; training frames: {args.train_frames} per domain of data seed "
        f"{DATA_SEED}; validation seed {VAL_SEED}; evaluation: {args.eval_frames} frames of seed {EVAL_SEED} per "
        "domain (the real look over the synthetic frames' scenes). Metrics in metres: crop none, (1e-3, 80] m, per "
        "image then averaged, no scaling; mean ± sample standard deviation over the seeds. "
        f"Runs in `{shown(work)}`." + (" **Quick smoke run: the numbers mean nothing.**" if args.quick else ""),
        "",
        "## Procedural: synthetic -> real",
        "",
        metrics_table(per_seed, list(ROWS)),
        "",
        "Gap recovered, (abs_rel_b - abs_rel_x) / (abs_rel_b - abs_rel_a) per seed:",
        "",
        "| row | gap recovered | per seed |", "|---|---:|---|",
        *(f"| {label(row)} | {np.mean(gaps[row]):.0%} ± {np.std(gaps[row], ddof=1) if len(gaps[row]) > 1 else 0:.0%} "
          f"| {', '.join(f'{g:.0%}' for g in gaps[row])} |" for row in ADAPTED_ROWS),
        "",
        "Targets:",
        f"- in-domain abs_rel <= {TARGET_IN_DOMAIN_ABS_REL}: {np.mean(in_domain):.3f} (mean), "
        f"**{'met' if np.mean(in_domain) <= TARGET_IN_DOMAIN_ABS_REL else 'NOT met'}**.",
        f"- the best adapter row, {label(best_adapter)}, recovers {np.mean(gaps[best_adapter]):.0%} of the gap "
        f"(target {TARGET_GAP_RECOVERED:.0%}: **{'met' if np.mean(gaps[best_adapter]) >= TARGET_GAP_RECOVERED else 'NOT met'}**) "
        f"against {np.mean(gaps['c']):.0%} for photometric augmentation alone (row c: **"
        f"{'beaten' if np.mean(gaps[best_adapter]) > np.mean(gaps['c']) else 'NOT beaten'}**).",
        "- the student (g) against its teacher (d), abs_rel per seed: "
        + ", ".join(f"{per_seed[s]['g']['abs_rel']:.3f} vs {per_seed[s]['d']['abs_rel']:.3f}" for s in args.seeds)
        + f"; mean difference {np.mean(student_gain):+.3f}.",
        "",
        "Row f's adapter, chosen per seed by validation abs_rel (real-look frames of seed 1, adapter + network (a, b)):",
        "",
        "| seed | CycleGAN (d) | depth-aware (e) | chosen |", "|---:|---:|---:|---|",
        *(f"| {s} | {validation[s]['style_cyclegan']:.3f} | {validation[s]['style_depth_aware']:.3f} | "
          f"{'d' if choices[s] == 'style_cyclegan' else 'e'} |" for s in args.seeds),
        "",
        f"Picture strips (seed {args.seeds[0]}: input | what the depth network sees | predicted depth | ground truth; "
        "colour bar in metres, black = sky):",
        "",
        *(f"- [{label(row)}]({NAME}/{strips[row].name})" for row in ROWS),
        "",
        "## Wall time",
        "",
        "| stage | seed | steps | wall (min) |", "|---|---:|---:|---:|",
        f"| rendering the training and validation frames into the cache | | | {render_s / 60:.1f} |",
        *(f"| {run.key} | {run.seed} | {run.summary['steps']} | {run.wall_s / 60:.1f} |" for run in runs),
        f"| evaluation (procedural and holdout) | | | {eval_s / 60:.1f} |",
        f"| total (this invocation) | | | {total_s / 60:.1f} |",
        "",
        "A resumed invocation keeps finished runs; their rows give the runs' own training minutes.",
        "",
        "Training commands (each run's `config.yaml` in its folder reproduces it too):",
        "",
        *(f"- {run.key}, seed {run.seed}: `{run.command}`" for run in runs),
        "",
        "## Holdout: real KITTI frames (evaluation only)",
        "",
        f"The networks of seed {args.seeds[0]} on the real frames of `../shared/data/holdout`, which nothing was "
        "trained, tuned or chosen on: Garg crop, (1e-3, 80] m, per image then averaged, depth rescaled by focal "
        "length as the node does; median scaling per image where stated. Trained on procedural scenes only.",
        "",
    ]
    if holdout is not None:
        for kind in dict.fromkeys(f.ground_truth for f in frames):
            names = ", ".join(f.name for f in frames if f.ground_truth == kind)
            lines += [f"### Ground truth: {kind} ({names})", "", holdout_table(holdout, kind), ""]
    else:
        lines += [f"Skipped: {HOLDOUT} is absent (a fresh clone has no ../shared).", ""]
    body = "\n".join(lines)
    print(body)
    (work / "results.json").write_text(json.dumps(
        {"per_seed": per_seed, "gaps": gaps, "choices": choices, "validation": validation,
         "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}}, indent=1))
    if args.quick:
        path = results_dir / f"{NAME}.md"
        write_quick_results(path, body)
    else:
        path = record(NAME, body)
    print(f"recorded in {path}")
    return path


if __name__ == "__main__":
    main()
