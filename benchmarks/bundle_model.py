#!/usr/bin/env python3
"""Make the bundled model (models/depth.onnx + models/MODEL_CARD.md) from a sim-to-real benchmark run.

The candidates are the pipelines of one training seed of ``benchmarks/bench_sim2real.py``:
the depth network alone (b), the augmented depth network alone (c), the adapters in front
of them (d, e, f) and the student distilled from (d) (g). The one with the lowest abs_rel on
the validation split (real-look frames of seed 1, never the evaluation frames) is exported as
one fused ONNX graph. It replaces the
current bundled model only if it is better on the benchmark's evaluation frames (real look,
seed 1000, each model at its own input size over the same scenes); either way the comparison
is printed, and the card records both, with the holdout KITTI frames (evaluation only).

    python benchmarks/bundle_model.py runs/bench_sim2real/<time> [--seed 0]
"""
from __future__ import annotations

import argparse
import hashlib
import json
import logging
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import bench_sim2real as bench  # noqa: E402
from bench_peers import describe_model, reference_timer  # noqa: E402
from bench_pipeline import interleaved_blocks  # noqa: E402
from recording import cpu_flags, cpu_model  # noqa: E402

from depth_da_ros.camera import KITTI_HEIGHT, KITTI_WIDTH  # noqa: E402
from depth_da_ros.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from depth_da_ros.export import describe_precision, export_onnx, quiet_exporter_logs  # noqa: E402
from depth_da_ros.metrics import format_metrics_table  # noqa: E402
from depth_da_ros.pipeline import DepthPipeline  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
MODEL_LIMIT_BYTES = 20_000_000  # model + card committed to the repository
DEPTH_NETWORK = "depth_network.pt"  # the bundled depth network as a stage-1 checkpoint, for stage 2
# What a frozen depth network needs of a stage-1 checkpoint; optimiser, RNG and discriminator state are left out.
DEPTH_NETWORK_KEYS = ("format", "stage", "preset", "deploy", "input_size", "depth_codec", "training_camera", "step",
                      "epoch", "best", "metrics", "config", "git_revision", "created")


def write_depth_network(source: Path, out: Path) -> None:
    """``source``'s depth network alone as a stage-1 checkpoint (``train.py style --set depth_checkpoint=``)."""
    ckpt = load_checkpoint(source)
    save_checkpoint(out, {**{k: ckpt[k] for k in DEPTH_NETWORK_KEYS if k in ckpt},
                          "networks": {"depth": ckpt["networks"]["depth"]}})
CANDIDATES = ("b", "c", "d", "e", "f", "g")


def evaluate(pipeline: DepthPipeline, seed: int, count: int, desc: str) -> dict[str, float]:
    """abs_rel & co. of ``pipeline`` on real-look frames of ``seed`` rendered at its own input size."""
    metrics, _ = bench.evaluate_procedural(
        pipeline, bench.procedural_frames("real", count, seed, pipeline.metadata.input_size), desc, 0)
    return metrics


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("work", type=Path, help="a finished benchmark folder (runs/bench_sim2real/<time>)")
    parser.add_argument("--seed", type=int, default=0, help="the training seed whose networks are candidates")
    parser.add_argument("--val-frames", type=int, default=32)
    parser.add_argument("--eval-frames", type=int, default=64)
    parser.add_argument("--force", action="store_true", help="replace the bundled model even if it is not better")
    parser.add_argument("--models", type=Path, default=ROOT / "models",
                        help="folder of depth.onnx and MODEL_CARD.md (default: %(default)s)")
    args = parser.parse_args(argv)
    model, card_path = args.models / "depth.onnx", args.models / "MODEL_CARD.md"
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    quiet_exporter_logs()
    results = json.loads((args.work / "results.json").read_text())
    choice = results["choices"][str(args.seed)]
    seed_dir = args.work / f"seed{args.seed}"
    runs = {key: bench.Run(key, args.seed, seed_dir / key, "", ()) for key in
            ("depth", "depth_aug", "style_cyclegan", "style_depth_aware", "distill")}
    pipelines = bench.row_pipelines(runs, choice)
    validation = {row: evaluate(pipelines[row], bench.VAL_SEED, args.val_frames, f"validating ({row})")["abs_rel"]
                  for row in CANDIDATES}
    chosen = min(validation, key=validation.get)
    # The stage-1 network of the chosen pipeline (for a student, its teacher's): models/depth_network.pt.
    stage1 = runs["depth_aug" if chosen in ("c", "f") else "depth"].best
    depth = runs["distill"].best if chosen == "g" else stage1
    style = {"d": runs["style_cyclegan"].best, "e": runs["style_depth_aware"].best,
             "f": runs[choice].best}.get(chosen)

    with tempfile.TemporaryDirectory() as tmp:
        candidate = Path(tmp) / "depth.onnx"
        metadata = export_onnx(candidate, depth, style)
        fp16_weights = candidate.stat().st_size > MODEL_LIMIT_BYTES
        if fp16_weights:  # fp32 arithmetic on fp16 weights: half the file at fp32 speed on a CPU
            metadata = export_onnx(candidate, depth, style, fp16_weights=True)
        new = DepthPipeline(candidate, backend="onnxruntime")
        new_eval = evaluate(new, bench.EVAL_SEED, args.eval_frames, "evaluating the candidate")
        old = DepthPipeline(model, backend="onnxruntime") if model.is_file() else None
        old_eval = evaluate(old, bench.EVAL_SEED, args.eval_frames, "evaluating the bundled model") if old else None
        better = old_eval is None or new_eval["abs_rel"] < old_eval["abs_rel"]
        print(f"validation abs_rel (real look, seed {bench.VAL_SEED}): "
              + ", ".join(f"({r}) {v:.3f}" for r, v in validation.items()) + f"; chosen: ({chosen})")
        print(format_metrics_table({"candidate": new_eval, **({"bundled model": old_eval} if old_eval else {})}))
        if not (better or args.force):
            print("the candidate is not better on the evaluation frames: the bundled model stays")
            return 1
        with tempfile.TemporaryDirectory() as peers_tmp:
            latency = bench_latency(new, old, Path(peers_tmp))
        old_name = describe_model(old.metadata) if old else None
        holdout = bench.evaluate_holdout(new, bench.holdout_frames()) if bench.HOLDOUT.is_dir() else None
        args.models.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(candidate, model)
    model.chmod(0o644)
    write_depth_network(stage1, args.models / DEPTH_NETWORK)
    sha256 = hashlib.sha256(model.read_bytes()).hexdigest()
    card_path.write_text(card(args, chosen, validation, metadata, sha256, model.stat().st_size, new_eval,
                              (old_name, old_eval), holdout, latency, fp16_weights))
    print(f"wrote {model} ({model.stat().st_size / 1e6:.1f} MB), {args.models / DEPTH_NETWORK} and {card_path}")
    return 0


def bench_latency(new: DepthPipeline, old: DepthPipeline | None, folder: Path, warmup: int = 5, runs: int = 20,
                  rounds: int = 3) -> dict[str, float]:
    """Median end-to-end ``predict`` ms of a KITTI-size (1242x375) random frame for the candidate and
    the model it replaces, and of the monodepth2 ResNet-18 reference network (``bench_peers``), timed
    in interleaved blocks in one run: ``{"candidate": ms, "replaced": ms, "reference": ms}``."""
    frame = np.random.default_rng(0).integers(0, 256, (KITTI_HEIGHT, KITTI_WIDTH, 3), dtype=np.uint8)
    _, reference = reference_timer(folder, threads=2)
    fns = {"candidate": lambda: new.predict(frame), "reference": reference}
    if old is not None:
        fns["replaced"] = lambda: old.predict(frame)
    calls = interleaved_blocks(fns, runs, warmup, rounds)
    return {name: float(np.median([ms for ms, _ in series])) for name, series in calls.items()}


def card(args, chosen, validation, metadata, sha256, size, new_eval, replaced, holdout, latency,
         fp16_weights) -> str:
    """MODEL_CARD.md: what the bundled model is, how it was chosen and made, its metrics and limits."""
    old_name, old_eval = replaced
    lines = [
        "# Bundled model: `models/depth.onnx`",
        "",
        "The default model of `depth_da_node` (no `model_path` needed) and of `make demo`. Written by "
        "`benchmarks/bundle_model.py` from a `benchmarks/bench_sim2real.py` run; do not edit by hand.",
        "",
        "## What it is",
        "",
        f"- Pipeline: ({chosen}) {bench.ROWS[chosen].removeprefix('real, ')}; `{metadata.preset}` preset at "
        f"{metadata.input_height}x{metadata.input_width}, chosen among the rows {CANDIDATES[0]}-{CANDIDATES[-1]} "
        f"of training seed {args.seed} by "
        f"abs_rel on the validation split (real look, seed {bench.VAL_SEED}): "
        + ", ".join(f"({r}) {v:.3f}" for r, v in validation.items()) + ".",
        *model_facts(metadata, fp16_weights, latency, size, sha256),
        (f"- `models/{DEPTH_NETWORK}`: the student's teacher depth network (stage 1, which reads adapted frames) as "
         "a checkpoint without optimiser state, to train an adapter for your own camera against it and distil "
         f"again: `train.py style --set depth_checkpoint=models/{DEPTH_NETWORK}`, then `train.py distill`."
         if chosen == "g" else
         f"- `models/{DEPTH_NETWORK}`: its depth network as a stage-1 checkpoint (no optimiser state), to train an "
         f"adapter for your own camera against it: `train.py style --set depth_checkpoint=models/{DEPTH_NETWORK}`."),
        "",
        "## Data and recipe",
        "",
        "Procedural street scenes only (`depth_da_ros.procedural`, render version with the ego-clearance fix), "
        "no KITTI or SYNTHIA image used for training or any choice. The recipe, its commands and every row: "
        "[benchmarks/results/sim2real.md](../benchmarks/results/sim2real.md); the depth-stage choices (log "
        "encoding, resize-then-convolve up-sampling): "
        "[benchmarks/results/depth_choices.md](../benchmarks/results/depth_choices.md).",
        "",
        "## Regenerate",
        "",
        "```bash",
        "python benchmarks/bench_sim2real.py --work runs/bench_sim2real/main",
        f"python benchmarks/bundle_model.py runs/bench_sim2real/main --seed {args.seed}",
        "```",
        "",
        "## Metrics",
        "",
        f"Procedural real-look evaluation frames (seed {bench.EVAL_SEED}, {args.eval_frames} frames at each model's "
        "own input size; crop none, (1e-3, 80] m, metric):",
        "",
        format_metrics_table({"this model": new_eval, **({f"the model it replaced ({old_name})": old_eval}
                                                        if old_eval else {})}),
        "",
    ]
    if holdout is not None:
        lines += ["Real KITTI frames of `../shared/data/holdout` (evaluation only; Garg crop, (1e-3, 80] m, focal "
                  "rescaling as the node):", "",
                  format_metrics_table({f"{kind}, {'median-scaled' if scaled else 'metric'}": m
                                        for (kind, scaled), m in holdout.items()}), ""]
    lines += [
        *limits("- Trained on procedural scenes only: a demonstration model, **not for real vehicles**, robots "
                "or any safety-related use. On real camera images its depth is poor (see the KITTI rows).", metadata),
    ]
    return "\n".join(lines)


def model_facts(metadata, fp16_weights: bool, latency: dict[str, float], size: int, sha256: str) -> list[str]:
    """The card's lines on the exported file that every bundled model shares: graph, precision,
    latency against monodepth2 measured in the same run (``bench_latency``), file and training camera."""
    camera = metadata.training_camera
    ratio_old = (f", {latency['candidate'] / latency['replaced']:.2f}x the model it replaced"
                 if "replaced" in latency else "")
    return [
        f"- One fused ONNX graph (opset {metadata.opset}): uint8 RGB `image` [N, H, W, 3] in, float32 metres `depth` "
        f"[N, 1, H, W] out, up to {metadata.max_depth:g} m" + (", and the adapted frame `styled`." if
                                                                 metadata.outputs_styled else "."),
        f"- Precision: {describe_precision(metadata)}" + (" (fp16 storage keeps the file under the repository's "
                                                          f"{MODEL_LIMIT_BYTES / 1e6:g} MB limit)" if fp16_weights
                                                          else "") + ".",
        f"- Latency: {latency['candidate']:.0f} ms median per 1242x375 frame end to end (ONNX Runtime, 2 threads) on "
        f"{cpu_model()} (flags: {cpu_flags()}), {time.strftime('%Y-%m-%d', time.gmtime())}; in the same run, "
        f"{latency['candidate'] / latency['reference']:.2f}x the time of monodepth2's ResNet-18 network at 640x192 "
        f"({latency['reference']:.0f} ms){ratio_old}. Absolute times hold for this CPU only; the ratios travel "
        "better (`benchmarks/bench_peers.py`).",
        f"- File: {size / 1e6:.1f} MB, sha256 `{sha256}`, exported {metadata.export_date}.",
        f"- Training camera: KITTI-like, fx {camera.fx:.1f} px at {camera.height}x{camera.width}; the node rescales "
        "depth by focal length for other cameras (`scale_mode: focal`).",
    ]


def limits(first: str, metadata) -> list[str]:
    """The card's Limits section: ``first`` (what the model was trained on and is for), then the
    resolution and metric-scale limits every bundled model shares (``metadata``: its ModelMetadata)."""
    return [
        "## Limits",
        "",
        first,
        f"- It predicts at {metadata.input_height}x{metadata.input_width}: depth and clouds are coarse on a "
        "full-resolution camera.",
        f"- Metric scale comes from one KITTI-like camera; other cameras rely on focal rescaling. Depth beyond "
        f"{metadata.max_depth:g} m saturates.",
        "",
    ]


if __name__ == "__main__":
    sys.exit(main())
