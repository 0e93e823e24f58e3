#!/usr/bin/env python3
"""Real camera: depth on real KITTI frames, after training with real unlabelled road frames.

The headline benchmark of the method on a real camera. Every network is a real
``training/train.py`` run in a child process, of the ``bench`` preset (96x320), trained on the
procedural world (``--renderer``, 1 or 2) and, for the adapted rows, on the real unlabelled road
frames of ``../shared/data/real_unlabeled`` (dataset kind ``road_frames``: 207 frames of KITTI,
Udacity, BDD100K, TuSimple and nuScenes cameras, cropped to the network's aspect around the
horizon). As in the paper (synthetic GTA V + unlabelled real KITTI), no real depth label
reaches training. Rows:

(prior) the flat-ground prior, no learning: a pixel below the horizon gets the depth of a flat
        road ``CAMERA_HEIGHT`` m under the camera, z = fy * h / (v - cy) (the frame's own P2),
        everything else 80 m: the floor a learnt model must beat;
(b) the depth network trained on synthetic frames, no adaptation;
(c) a depth network trained with photometric augmentation (``data.photometric``), no adapter;
(d) the CycleGAN adapter trained between the real road frames (domain A) and the synthetic
    frames (domain B), in front of network (b);
(e) the depth-aware cycle adapter (``loss.depth_aware``, network (b) frozen in the loss), in
    front of network (b);
(g) a student U-Net distilled on the real road frames from the better adapter of (d) and (e)
    (chosen per seed on the validation frames below) + network (b): one network at inference.

Choices (the teacher of g; the model to bundle) are made on a validation that holds no
holdout frame: the two ``../shared/data/kitti_raw_sample`` frames (real KITTI, velodyne ground
truth; not holdout) and, for each depth run's best checkpoint, its procedural validation split.
Style and distillation runs keep their final checkpoint (no real depth labels to choose with).

Holdout (``../shared/data/holdout``, evaluation only: nothing is fitted, tuned or chosen on it):
the six 2011_09_26 frames with metric ground truth (three depth-benchmark frames, three
velodyne scans) are the headline; PointPillars val/000134 (another date) is listed per frame.
Metric (no scaling), Garg crop, depth in (1e-3, 80] m, per frame then averaged, depth rescaled
by focal length as the node does. Without the holdout folder the real rows are skipped with a
message.

    python benchmarks/bench_real.py                          # renderer 1, 3 seeds, ~80 min on 2 cores
    python benchmarks/bench_real.py --renderer 2 --only-depth  # rows prior, b, c only (renderer comparison)
    python benchmarks/bench_real.py --ground-prior 1.65      # every network a residual over the flat road
    python benchmarks/bench_real.py --renderer 2 --only-depth --no-plain --size 128x416  # row c at another size
    python benchmarks/bench_real.py --quick                  # smoke run (~3 min), written under --work only

Resumable: a finished run (its summary.json) is kept; runs live in ``runs/bench_real/<variant>``
(v<renderer>[-<H>x<W>][-prior<metres>]). Records benchmarks/results/<name>.md (real[-depth[-b|-c]]-<variant>)
and its picture strips in the folder of the same name, and <name>.json (every metric) beside
the runs, which ``benchmarks/bundle_real.py`` reads.
"""
from __future__ import annotations

import argparse
import json
import os
import logging
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_sim2real import (HOLDOUT, MAX_DEPTH, SHARED, HoldoutFrame, Run, velodyne_frame,  # noqa: E402
                            holdout_frames, mean_spread, shown, train_runs, write_quick_results)
from recording import RESULTS, record  # noqa: E402

from depth_da_ros.geometry import Intrinsics, scale_depth  # noqa: E402
from depth_da_ros.ground import constrain_if_plausible, ground_plane_depth  # noqa: E402
from depth_da_ros.kitti import KittiCalibration  # noqa: E402
from depth_da_ros.metrics import METRIC_NAMES, evaluate_frames  # noqa: E402
from depth_da_ros.node_parameters import PARAMETERS  # noqa: E402
from depth_da_ros.pipeline import DepthPipeline  # noqa: E402
from depth_da_ros.procedural.cache import FrameCache  # noqa: E402
from depth_da_ros.procedural.dataset import ProceduralConfig, ProceduralDataset  # noqa: E402
from depth_da_ros.visualization import colorize_depth, picture_strip, write_png  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
REAL_FRAMES = SHARED / "real_unlabeled"
VALIDATION_DRIVE = SHARED / "kitti_raw_sample" / "2011_09_26"
# As the training commands name them (train.py runs in the checkout, beside ../shared).
REAL_ARG, VALIDATION_ARG = (os.path.relpath(path, ROOT) for path in (REAL_FRAMES, VALIDATION_DRIVE))
PRESET, SIZE = "bench", (96, 320)
CAMERA_HEIGHT = 1.65  # metres: KITTI's colour camera above the road
DEPTH_AWARE_WEIGHT = 10.0
HEADLINE_DATE = "2011_09_26"  # the six holdout frames of KITTI's P_rect_02 camera
ROWS = {
    "prior": f"flat-ground prior, no learning (z = fy * {CAMERA_HEIGHT} m / (v - cy), 80 m above the horizon)",
    "b": "depth network, no adaptation",
    "c": "photometric augmentation in stage 1, no adapter",
    "d": "CycleGAN adapter trained on real frames + network (b)",
    "e": f"depth-aware cycle adapter (loss.depth_aware={DEPTH_AWARE_WEIGHT:g}) trained on real frames + network (b)",
    "g": "student distilled on real frames from the better adapter (d or e, by validation)",
}
DEPTH_ROWS = ("prior", "b", "c")
TARGET_ABS_REL, TARGET_A1 = 0.20, 0.75
# The node's default ground_tolerance (chosen by benchmarks/bench_ground.py on the validation frames).
NODE_TOLERANCE = next(spec.default for spec in PARAMETERS if spec.name == "ground_tolerance")


def label(row: str) -> str:
    return f"({row}) {ROWS[row]}"


# -- data ---------------------------------------------------------------------------------------


def flat_ground_prior(camera: Intrinsics, height: float = CAMERA_HEIGHT, max_depth: float = MAX_DEPTH) -> np.ndarray:
    """float32 (H, W) metres: the depth of a flat road ``height`` m below a level camera,
    z = fy * height / (v - cy) for rows below the principal point (``ground.ground_plane_depth``),
    ``max_depth`` elsewhere (and where the road is farther than it)."""
    return np.minimum(ground_plane_depth(camera, height), np.float32(max_depth))


def ground_constrained(depth: np.ndarray, frame: HoldoutFrame, height: float, tolerance: float,
                       check: bool = True) -> np.ndarray:
    """``depth`` (metres, +Inf already as 80 m) under the node's ground constraint
    (``ground_camera_height`` = ``height``, ``ground_tolerance`` = ``tolerance``,
    ``ground_height_check`` = ``check``) for ``frame``'s camera."""
    return constrain_if_plausible(depth, ground_plane_depth(frame.camera, height), tolerance, MAX_DEPTH, check)[0]


def headline_frames(frames: list[HoldoutFrame]) -> list[HoldoutFrame]:
    """The headline holdout frames: the six of 2011_09_26 (KITTI's P_rect_02 camera); PointPillars
    val/000134, of another date, is only listed per frame."""
    return [f for f in frames if "val/000134" not in f.name]


def mean_constrained(depths: list[np.ndarray], frames: list[HoldoutFrame], height: float | None,
                     tolerance: float = NODE_TOLERANCE, check: bool = True) -> dict[str, float]:
    """Mean metrics of ``depths`` over ``frames``, under the node's ground constraint at ``height``
    metres (None: the predictions as they are), with its height check unless ``check`` is False."""
    if height is not None:
        depths = [ground_constrained(d, f, height, tolerance, check) for d, f in zip(depths, frames)]
    return mean_metrics(per_frame(depths, frames))


def validation_frames(drive_root: Path = VALIDATION_DRIVE) -> list[HoldoutFrame]:
    """The kitti_raw_sample frames with velodyne ground truth: real KITTI, not holdout (choices only)."""
    calib = KittiCalibration.from_dir(drive_root)
    velo_to_image = (calib.P_rect @ calib.cam_to_rect) @ calib.velo_to_cam
    return [velodyne_frame(f"kitti_raw_sample {image.stem}", image,
                            image.parents[2] / "velodyne_points" / "data" / f"{image.stem}.bin", velo_to_image,
                            calib.P_rect)
            for image in sorted(drive_root.glob("*_sync/image_02/data/*.png"))]


def render_caches(args: argparse.Namespace, cache: Path) -> None:
    """Render the synthetic training and validation frames once into the cache."""
    for seed, length in ((0, args.train_frames), (1, 4 if args.quick else 64)):
        config = ProceduralConfig(domain="synthetic", seed=seed, height=args.size[0], width=args.size[1],
                                  **renderer_field(args.renderer))
        FrameCache(ProceduralDataset(config, length), cache).fill(f"rendering synthetic frames of seed {seed}")


def renderer_field(renderer: int) -> dict[str, int]:
    """ProceduralConfig / DataSpec keyword for a renderer (version 1 is the default: no keyword,
    so its configs and cache folders are those of every earlier run)."""
    return {} if renderer == 1 else {"renderer": renderer}


# -- training -----------------------------------------------------------------------------------


def model_overrides(args: argparse.Namespace) -> list[str]:
    """Every run's model settings besides the preset: the input size when it is not the preset's
    (96x320), ``model.ground_prior`` when the networks learn a residual over the flat road."""
    size = [] if args.size == SIZE else [f"model.height={args.size[0]}", f"model.width={args.size[1]}"]
    return size + ([f"model.ground_prior={args.ground_prior}"] if args.ground_prior else [])


def variant(args: argparse.Namespace) -> str:
    """The runs' and results' name: renderer, input size when not 96x320, and the ground prior when
    used (v1, v2, v2-128x416, v2-prior1.65)."""
    return (f"v{args.renderer}" + ("" if args.size == SIZE else f"-{args.size[0]}x{args.size[1]}")
            + (f"-prior{args.ground_prior:g}" if args.ground_prior else ""))


@dataclass
class SeedRuns:
    seed: int
    runs: dict[str, Run] = field(default_factory=dict)
    teacher: str = ""  # style run key distilled into g


def plan_seed(args: argparse.Namespace, work: Path, seed: int, cache: Path) -> dict[str, Run]:
    """The depth-stage and style-stage runs of one seed (distillation is planned after the choice)."""
    folder = work / f"seed{seed}"
    quick_val = ["data.val.length=4"] if args.quick else []
    renderer = [f"data.train.renderer={args.renderer}", f"data.val.renderer={args.renderer}"] \
        if args.renderer != 1 else []
    base = [f"model.preset={PRESET}", f"run.seed={seed}", "run.log_every=25", "run.image_every=1000000",
            *model_overrides(args)]
    depth = [*base, f"run.steps={args.depth_steps}", f"run.batch_size={args.batch}",
             f"run.val_every={max(args.depth_steps // 3, 1)}", f"run.checkpoint_every={args.depth_steps}",
             "model.depth_encoding=log", f"data.train.cache={cache}", f"data.val.cache={cache}",
             f"data.train.length={args.train_frames}", *renderer, *quick_val]
    runs = {} if args.no_plain else {"depth": Run("depth", seed, folder / "depth", "depth", tuple(depth))}
    if not args.no_augmented:
        runs["depth_aug"] = Run("depth_aug", seed, folder / "depth_aug", "depth", (*depth, "data.photometric=true"))
    if args.only_depth:
        return runs
    real = (f"data.real={{kind: road_frames, root: {REAL_ARG}}}", f"data.val={{kind: road_frames, root: "
            f"{VALIDATION_ARG}}}")
    decay = max(args.style_steps // 2, 1)
    style = [*base, f"run.steps={args.style_steps}", f"run.batch_size={args.style_batch}",
             f"run.val_every={args.style_steps}", f"run.checkpoint_every={args.style_steps}",
             "model.depth_encoding=log", f"optim_g.decay_steps={decay}", f"optim_d.decay_steps={decay}",
             f"data.synthetic.cache={cache}", f"data.synthetic.length={args.train_frames}",
             *([f"data.synthetic.renderer={args.renderer}"] if args.renderer != 1 else []), *real,
             f"depth_checkpoint={runs['depth'].best}"]
    runs["style_cyclegan"] = Run("style_cyclegan", seed, folder / "style_cyclegan", "style",
                                 (*style, "loss.depth_aware=0.0"))
    runs["style_depth_aware"] = Run("style_depth_aware", seed, folder / "style_depth_aware", "style",
                                    (*style, f"loss.depth_aware={DEPTH_AWARE_WEIGHT}"))
    return runs


def plan_distill(args: argparse.Namespace, work: Path, seed: int, teacher: Run) -> Run:
    decay = max(args.distill_steps // 2, 1)
    base = [f"model.preset={PRESET}", f"run.seed={seed}", "run.log_every=25", "run.image_every=1000000",
            *model_overrides(args)]
    distill = [*base, f"run.steps={args.distill_steps}", f"run.batch_size={args.batch}",
               f"run.val_every={args.distill_steps}", f"run.checkpoint_every={args.distill_steps}",
               "model.depth_encoding=log", f"optim_g.decay_steps={decay}",
               f"data.real={{kind: road_frames, root: {REAL_ARG}}}",
               f"data.val={{kind: road_frames, root: {VALIDATION_ARG}}}", f"teacher_style={teacher.best}"]
    return Run("distill", seed, work / f"seed{seed}" / "distill", "distill", tuple(distill))


# -- evaluation ---------------------------------------------------------------------------------


def metric_depth(pipeline: DepthPipeline, frame: HoldoutFrame) -> np.ndarray:
    """Metres for ``frame``: rescaled by focal length as the node does; +Inf (beyond range) as 80 m."""
    depth, _ = scale_depth(pipeline.predict(frame.rgb), "focal", frame.camera, pipeline.training_camera)
    return np.where(np.isposinf(depth), MAX_DEPTH, depth)


def per_frame(predictions: list[np.ndarray], frames: list[HoldoutFrame]) -> list[dict[str, float]]:
    """The seven metrics per frame: metric, Garg crop, (1e-3, 80] m."""
    return [evaluate_frames([(frame.gt, depth)], crop="garg", max_depth=MAX_DEPTH)
            for frame, depth in zip(frames, predictions)]


def mean_metrics(rows: list[dict[str, float]]) -> dict[str, float]:
    return {name: float(np.mean([r[name] for r in rows])) for name in METRIC_NAMES}


def row_pipelines(seed_runs: SeedRuns, rows: list[str]) -> dict[str, DepthPipeline]:
    runs = seed_runs.runs
    make = {
        "b": lambda: DepthPipeline(runs["depth"].best, backend="torch"),
        "c": lambda: DepthPipeline(runs["depth_aug"].best, backend="torch"),
        "d": lambda: DepthPipeline(runs["depth"].best, backend="torch", style_checkpoint=runs["style_cyclegan"].best),
        "e": lambda: DepthPipeline(runs["depth"].best, backend="torch",
                                   style_checkpoint=runs["style_depth_aware"].best),
        "g": lambda: DepthPipeline(runs["distill"].best, backend="torch"),
    }
    return {row: make[row]() for row in rows if row != "prior"}


def predictions(row: str, pipeline: DepthPipeline | None, frames: list[HoldoutFrame]) -> list[np.ndarray]:
    if row == "prior":
        return [flat_ground_prior(frame.camera) for frame in frames]
    return [metric_depth(pipeline, frame) for frame in frames]


def choose_teacher(seed_runs: SeedRuns, validation: list[HoldoutFrame]) -> tuple[str, dict[str, float]]:
    """The adapter (d or e) with the lower abs_rel on the validation frames, and both values."""
    scores = {}
    for row, key in (("d", "style_cyclegan"), ("e", "style_depth_aware")):
        pipeline = row_pipelines(seed_runs, [row])[row]
        scores[key] = mean_metrics(per_frame(predictions(row, pipeline, validation), validation))["abs_rel"]
    return min(scores, key=scores.get), scores


def sparse_to_picture(gt: np.ndarray) -> np.ndarray:
    """Lidar ground truth made visible: each return grown to 3x3 pixels (the nearest wins)."""
    valid = np.isfinite(gt) & (gt > 0)
    inverted = np.where(valid, 1.0 / np.where(valid, gt, 1.0), 0.0).astype(np.float32)
    grown = cv2.dilate(inverted, np.ones((3, 3), np.uint8))
    return np.where(grown > 0, 1.0 / np.where(grown > 0, grown, 1.0), np.nan).astype(np.float32)


def strip(row: str, preds: list[np.ndarray], frames: list[HoldoutFrame], metrics: list[dict[str, float]],
          title: str) -> np.ndarray:
    tiles = []
    width = 310  # a quarter of KITTI's width per tile: the strips stay small in the repository
    for frame, depth, m in zip(frames, preds, metrics):
        h = round(frame.rgb.shape[0] * width / frame.rgb.shape[1])
        rgb = cv2.resize(frame.rgb, (width, h), interpolation=cv2.INTER_AREA).copy()
        cv2.putText(rgb, f"{frame.name}: abs_rel {m['abs_rel']:.3f} a1 {m['a1']:.3f}", (4, 14),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1, cv2.LINE_AA)
        pred = cv2.resize(colorize_depth(depth), (width, h), interpolation=cv2.INTER_AREA)
        gt = cv2.resize(colorize_depth(sparse_to_picture(frame.gt)), (width, h), interpolation=cv2.INTER_NEAREST)
        tiles.append([rgb, pred, gt])
    return picture_strip(tiles, ("input", "prediction", "ground truth (lidar / depth benchmark)"), title)


# -- report -------------------------------------------------------------------------------------


def table(results: dict[str, list[dict[str, float]]], rows: list[str]) -> str:
    """Rows x metrics, mean ± spread over seeds of the per-seed means."""
    lines = ["| row | seeds | " + " | ".join(METRIC_NAMES) + " |", "|---|---:|" + "---:|" * len(METRIC_NAMES)]
    for row in rows:
        per_seed = results[row][:1] if row == "prior" else results[row]  # the prior has no seed
        cells = [mean_spread([m[name] for m in per_seed]) for name in METRIC_NAMES]
        lines.append(f"| {label(row)} | {'-' if row == 'prior' else len(per_seed)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def frame_table(frame_results: dict[str, list[list[dict[str, float]]]], frames: list[HoldoutFrame],
                rows: list[str]) -> str:
    """Frames x rows: abs_rel / a1 per frame, averaged over seeds."""
    lines = ["| frame | ground truth | " + " | ".join(f"({r}) abs_rel / a1" for r in rows) + " |",
             "|---|---|" + "---:|" * len(rows)]
    for i, frame in enumerate(frames):
        cells = []
        for row in rows:
            values = [seed_frames[i] for seed_frames in frame_results[row]]
            cells.append(f"{np.mean([v['abs_rel'] for v in values]):.3f} / {np.mean([v['a1'] for v in values]):.3f}")
        lines.append(f"| {frame.name} | {frame.ground_truth} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def size_arg(text: str) -> tuple[int, int]:
    """'128x416' -> (128, 416); both multiples of 32 (the U-Net's five halvings)."""
    try:
        height, width = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must be HxW, e.g. 128x416, got {text!r}") from None
    if height < 32 or width < 32 or height % 32 or width % 32:
        raise argparse.ArgumentTypeError(f"size must be positive multiples of 32 (the U-Net halves five times), "
                                         f"got {text!r}")
    return height, width


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--renderer", type=int, choices=(1, 2), default=1,
                        help="procedural renderer of the synthetic frames (default: %(default)s)")
    parser.add_argument("--ground-prior", type=float, default=0.0, metavar="METRES",
                        help="model.ground_prior of every network: a residual over a flat road this far under the "
                             "camera (default: 0 = off)")
    parser.add_argument("--size", type=size_arg, default=SIZE, metavar="HxW",
                        help="network input size of every run (default: the bench preset's %(default)s); "
                             "another size gets its own runs folder and results name")
    parser.add_argument("--only-depth", action="store_true", help="rows prior, b and c only (the depth stage: a renderer comparison)")
    parser.add_argument("--no-augmented", action="store_true",
                        help="with --only-depth: row c (photometric augmentation) left out, rows prior and b only")
    parser.add_argument("--no-plain", action="store_true",
                        help="with --only-depth: row b (no augmentation) left out, rows prior and c only")
    parser.add_argument("--seeds", type=int, nargs="+", help="training seeds (default 0 1 2; --quick 0)")
    parser.add_argument("--depth-steps", type=int, help="steps of each depth run (default 600; --quick 3)")
    parser.add_argument("--style-steps", type=int, help="steps of each style run (default 300; --quick 2)")
    parser.add_argument("--distill-steps", type=int, help="steps of each distillation run (default 400; --quick 2)")
    parser.add_argument("--batch", type=int, default=8, help="depth and distillation batch (default: %(default)s)")
    parser.add_argument("--style-batch", type=int, default=1, help="style-stage batch (default: %(default)s)")
    parser.add_argument("--train-frames", type=int, help="synthetic training frames (default 4000; --quick 16)")
    parser.add_argument("--quick", action="store_true", help="smoke run: tiny budgets, results under --work")
    parser.add_argument("--work", type=Path, help="the runs' folder, resumed if it exists "
                        "(default runs/bench_real/v<renderer>, or .../quick with --quick)")
    parser.add_argument("--cache", type=Path, default=ROOT / "runs" / "cache",
                        help="rendered-frame cache (default: %(default)s)")
    args = parser.parse_args(argv)
    defaults = dict(seeds=[0], depth_steps=3, style_steps=2, distill_steps=2, train_frames=16) if args.quick else \
        dict(seeds=[0, 1, 2], depth_steps=600, style_steps=300, distill_steps=400, train_frames=4000)
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if min(args.depth_steps, args.style_steps, args.distill_steps, args.batch, args.style_batch,
           args.train_frames) < 1:
        parser.error("steps, batches and frame counts must be positive")
    if args.no_augmented and not args.only_depth:
        parser.error("--no-augmented needs --only-depth (rows d-g need no row c, but it is part of the full set)")
    if args.no_plain and (args.no_augmented or not args.only_depth):
        parser.error("--no-plain needs --only-depth and row c (rows d-g are built on row b's network)")
    if len(set(args.seeds)) != len(args.seeds):
        parser.error(f"--seeds repeats a seed: {args.seeds}")
    return args


def main(argv: list[str] | None = None) -> Path | None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if not REAL_FRAMES.is_dir() and not args.only_depth:
        print(f"{REAL_FRAMES} is absent: the real target domain of rows c-g is missing; run with --only-depth "
              "or put the real_unlabeled folder there", file=sys.stderr)
        return None
    started = time.perf_counter()
    name = f"real{'-depth' if args.only_depth else ''}{'-b' if args.no_augmented else ''}{'-c' if args.no_plain else ''}-{variant(args)}"
    work = (args.work or ROOT / "runs" / "bench_real" / (variant(args) + ("-quick" if args.quick else ""))).resolve()
    results_dir = work / "results" if args.quick else RESULTS
    cache = args.cache.resolve()
    render_caches(args, cache)

    validation = validation_frames() if VALIDATION_DRIVE.is_dir() else []
    if not validation and not args.only_depth:
        print(f"{VALIDATION_DRIVE} is absent: no validation frames to choose the teacher of row g with",
              file=sys.stderr)
        return None
    seeds = []
    for seed in args.seeds:
        seed_runs = SeedRuns(seed, plan_seed(args, work, seed, cache))
        train_runs(list(seed_runs.runs.values()))
        if not args.only_depth:
            seed_runs.teacher, scores = choose_teacher(seed_runs, validation)
            print(f"seed {seed}: validation abs_rel of the adapters {scores}; teacher of g: {seed_runs.teacher}")
            distill = plan_distill(args, work, seed, seed_runs.runs[seed_runs.teacher])
            train_runs([distill])
            seed_runs.runs["distill"] = distill
        seeds.append(seed_runs)
    rows = [r for r in (DEPTH_ROWS if args.only_depth else ROWS) if not (args.no_augmented and r == "c")
            and not (args.no_plain and r == "b")]

    holdout = holdout_frames() if HOLDOUT.is_dir() else []
    if not holdout:
        print(f"{HOLDOUT} is absent (a fresh clone has no ../shared): the real holdout rows are skipped")
    headline = headline_frames(holdout)
    # row -> per seed -> per frame metrics (holdout: every frame; validation frames likewise)
    frame_results: dict[str, list[list[dict[str, float]]]] = {row: [] for row in rows}
    val_results: dict[str, list[dict[str, float]]] = {row: [] for row in rows}
    strips: dict[str, Path] = {}
    for seed_runs in seeds:
        pipelines = row_pipelines(seed_runs, rows)
        for row in tqdm(rows, desc=f"evaluating seed {seed_runs.seed}", unit="row"):
            if row == "prior" and seed_runs is not seeds[0]:
                frame_results[row].append(frame_results[row][0])
                val_results[row].append(val_results[row][0])
                continue
            if validation:
                val_results[row].append(mean_metrics(per_frame(predictions(row, pipelines.get(row), validation),
                                                               validation)))
            if holdout:
                preds = predictions(row, pipelines.get(row), holdout)
                metrics = per_frame(preds, holdout)
                frame_results[row].append(metrics)
                if seed_runs is seeds[0]:
                    strips[row] = results_dir / name / f"{row}.png"
                    write_png(strips[row], strip(row, [preds[i] for i, f in enumerate(holdout) if f in headline],
                                                 headline, [metrics[i] for i, f in enumerate(holdout)
                                                            if f in headline],
                                                 f"{label(row)}, seed {seed_runs.seed}"))
    # Procedural in-domain validation of the depth runs (their own best-checkpoint choice).
    procedural = {(key, s.seed): float(s.runs[key].summary["best"]["value"])
                  for s in seeds for key in ("depth", "depth_aug") if key in s.runs}

    bundle_candidates = [(row, s.seed) for row in rows if row != "prior" for s in seeds]
    if validation:
        def val_abs_rel(candidate: tuple[str, int]) -> float:
            row, seed = candidate
            return val_results[row][[s.seed for s in seeds].index(seed)]["abs_rel"]
        best_row, best_seed = min(bundle_candidates, key=val_abs_rel)
    total_s = time.perf_counter() - started

    lines = [
        f"`{PRESET}` preset at {args.size[0]}x{args.size[1]}, log depth encoding, procedural renderer v{args.renderer}"
        + (f", ground prior {args.ground_prior:g} m (residual over a flat road)" if args.ground_prior else "") + "; "
        f"depth stage {args.depth_steps} steps at batch {args.batch}"
        + ("" if args.only_depth else f", style stage {args.style_steps} steps at batch {args.style_batch}, "
           f"distillation {args.distill_steps} steps at batch {args.batch}; real domain: the "
           f"{len(list(REAL_FRAMES.rglob('*.*'))) - 2} files of `../shared/data/real_unlabeled` (kind road_frames)")
        + f"; training seeds {', '.join(map(str, args.seeds))}; runs in `{shown(work)}`. Mean ± sample standard "
        "deviation over seeds." + (" **Quick smoke run: the numbers mean nothing.**" if args.quick else ""),
        "",
    ]
    if holdout:
        by_row = {row: [mean_metrics([frames[i] for i, f in enumerate(holdout) if f in headline])
                        for frames in frame_results[row]] for row in rows}
        lines += [
            f"## Holdout: the six {HEADLINE_DATE} real KITTI frames (headline)",
            "",
            "Metric (no scaling), Garg crop, depth in (1e-3, 80] m, per frame then averaged over the six frames "
            f"({', '.join(f.name for f in headline)}).",
            "",
            table(by_row, rows),
            "",
            "Targets (issue 22): beat the prior on abs_rel and a1, abs_rel <= "
            f"{TARGET_ABS_REL}, a1 >= {TARGET_A1}:",
            "",
            *(f"- {label(row)}: abs_rel {np.mean([m['abs_rel'] for m in by_row[row]]):.3f} "
              f"(prior {by_row['prior'][0]['abs_rel']:.3f}), a1 {np.mean([m['a1'] for m in by_row[row]]):.3f} "
              f"(prior {by_row['prior'][0]['a1']:.3f}): "
              + ("**beats the prior on both**" if np.mean([m['abs_rel'] for m in by_row[row]])
                 < by_row['prior'][0]['abs_rel'] and np.mean([m['a1'] for m in by_row[row]]) > by_row['prior'][0]['a1']
                 else "does **not** beat the prior on both")
              + ("; absolute targets **met**" if np.mean([m['abs_rel'] for m in by_row[row]]) <= TARGET_ABS_REL
                 and np.mean([m['a1'] for m in by_row[row]]) >= TARGET_A1 else "; absolute targets **not met**")
              for row in rows if row != "prior"),
            "",
            "### Per frame (abs_rel / a1, mean over seeds)",
            "",
            frame_table(frame_results, holdout, rows),
            "",
            f"Picture strips (seed {seeds[0].seed}, the six headline frames: input | prediction | ground truth, "
            "colour bar in metres, black = no value):",
            "",
            *(f"- [{label(row)}]({name}/{strips[row].name})" for row in rows),
            "",
        ]
    else:
        lines += [f"Holdout skipped: {HOLDOUT} is absent.", ""]
    if validation:
        lines += [
            "## Validation (choices only): kitti_raw_sample frames 0000000000-1 (real KITTI, velodyne; not holdout)",
            "",
            table(val_results, rows),
            "",
            f"Bundling rule: the lowest validation abs_rel of every learnt row and seed: **({best_row}), seed "
            f"{best_seed}** ({val_abs_rel((best_row, best_seed)):.3f}).",
            "",
        ]
        if not args.only_depth:
            lines += ["Teacher of g per seed (lower validation abs_rel of d and e): "
                      + ", ".join(f"seed {s.seed}: {s.teacher}" for s in seeds), ""]
    lines += [
        "## Procedural validation (the depth runs' own best checkpoint, synthetic frames of seed 1)",
        "",
        "| run | seed | abs_rel |", "|---|---:|---:|",
        *(f"| {key} | {seed} | {value:.3f} |" for (key, seed), value in procedural.items()),
        "",
        "## Runs",
        "",
        "| run | seed | steps | wall (min) |", "|---|---:|---:|---:|",
        *(f"| {run.key} | {run.seed} | {run.summary['steps']} | {run.wall_s / 60:.1f} |"
          for s in seeds for run in s.runs.values()),
        f"| this invocation, total | | | {total_s / 60:.1f} |",
        "",
        "Training commands (each run's `config.yaml` reproduces it too):",
        "",
        *(f"- {run.key}, seed {run.seed}: `{run.command}`" for s in seeds for run in s.runs.values()),
        "",
    ]
    body = "\n".join(lines)
    print(body)
    (work / f"{name}.json").write_text(json.dumps(
        {"holdout": {row: [[m for m in frames] for frames in frame_results[row]] for row in rows},
         "holdout_frames": [f.name for f in holdout], "validation": val_results,
         "bundle": [best_row, best_seed] if validation else None,
         "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}}, indent=1))
    if args.quick:
        path = results_dir / f"{name}.md"
        write_quick_results(path, body)
    else:
        path = record(name, body)
    print(f"recorded in {path}")
    return path


if __name__ == "__main__":
    main()
