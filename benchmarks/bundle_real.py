#!/usr/bin/env python3
"""Make the bundled model (models/depth.onnx + models/MODEL_CARD.md) from real-camera benchmark runs.

The candidates are every learnt row (b, c, d, e, g) and training seed of one or more
``benchmarks/bench_real.py`` folders (e.g. renderer v1 and v2, with and without the ground
prior). The declared rule: the candidate with the lowest abs_rel on the validation frames (the
two real KITTI frames of ``../shared/data/kitti_raw_sample``, velodyne ground truth, metric,
Garg crop; never a holdout frame) is exported as one fused ONNX graph, and it replaces the
bundled model only if its validation abs_rel is lower than the bundled model's (``--force``
replaces it anyway). The card records the choice, the real holdout rows as measured (the six
2011_09_26 frames and the flat-ground prior beside them), the latency against monodepth2 in the
same run, and the licences of the real frames used in training.

    python benchmarks/bundle_real.py runs/bench_real/v1/real-v1.json runs/bench_real/v2/real-depth-v2.json [--force]
"""
from __future__ import annotations

import argparse
import hashlib
import json
import logging
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import bench_real as bench  # noqa: E402
from bundle_model import (DEPTH_NETWORK, MODEL_LIMIT_BYTES, bench_latency, limits, model_facts,  # noqa: E402
                          write_depth_network)
from bench_peers import describe_model  # noqa: E402

from depth_da_ros.export import export_onnx, quiet_exporter_logs  # noqa: E402
from depth_da_ros.metrics import format_metrics_table  # noqa: E402
from depth_da_ros.pipeline import DepthPipeline  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
LEARNT_ROWS = ("b", "c", "d", "e", "g")
LICENCES = ("KITTI (CC BY-NC-SA 3.0), nuScenes (CC BY-NC-SA 4.0), BDD100K (educational, research and not-for-profit "
            "use), TuSimple (no licence stated: treat as research-only), Udacity CarND (MIT repositories, Udacity's "
            "own footage)")


def candidates(result_files: list[Path]) -> list[dict]:
    """One entry per (runs folder, learnt row, seed) of the ``bench_real.py`` result files, with its
    validation abs_rel and its model files."""
    out = []
    for path in result_files:
        folder = path.parent
        results = json.loads(path.read_text())
        args = results["args"]
        command = (f"python benchmarks/bench_real.py --renderer {args['renderer']}"
                   + (f" --ground-prior {args['ground_prior']:g}" if args.get("ground_prior") else "")
                   + (" --only-depth" if args["only_depth"] else "")
                   + (" --no-augmented" if args.get("no_augmented") else "")
                   + (" --no-plain" if args.get("no_plain") else "")
                   + (f" --size {args['size'][0]}x{args['size'][1]}" if args.get("size", [96, 320]) != [96, 320] else "")
                   + " --seeds " + " ".join(map(str, args["seeds"])))
        for row, per_seed in results["validation"].items():
            if row not in LEARNT_ROWS:
                continue
            for seed, metrics in zip(args["seeds"], per_seed):
                runs = folder / f"seed{seed}"
                best = {key: runs / key / "checkpoints" / "best.pt"
                        for key in ("depth", "depth_aug", "style_cyclegan", "style_depth_aware", "distill")}
                depth = {"c": best["depth_aug"], "g": best["distill"]}.get(row, best["depth"])
                style = {"d": best["style_cyclegan"], "e": best["style_depth_aware"]}.get(row)
                out.append({"folder": folder, "row": row, "seed": seed, "abs_rel": metrics["abs_rel"],
                            "a1": metrics["a1"], "depth": depth, "style": style, "renderer": args["renderer"],
                            "ground_prior": args.get("ground_prior", 0.0), "command": command,
                            # The stage-1 network users adapt against: the teacher's for a student.
                            "stage1": best["depth_aug"] if row == "c" else best["depth"]})
    return out


def holdout_rows(pipeline: DepthPipeline, frames: list) -> tuple[dict, dict, dict, list]:
    """(this model's mean over the six headline frames, the same with the node's ground constraint at
    KITTI's camera height, the prior's, per-frame (frame, model, with ground, prior, in the means)
    rows)."""
    headline = bench.headline_frames(frames)
    depths = [bench.metric_depth(pipeline, f) for f in frames]
    mine = bench.per_frame(depths, frames)
    ground = bench.per_frame([bench.ground_constrained(d, f, bench.CAMERA_HEIGHT, bench.NODE_TOLERANCE)
                              for d, f in zip(depths, frames)], frames)
    prior = bench.per_frame([bench.flat_ground_prior(f.camera) for f in frames], frames)
    pick = [i for i, f in enumerate(frames) if f in headline]
    return (*(bench.mean_metrics([rows[i] for i in pick]) for rows in (mine, ground, prior)),
            [(*row, i in pick) for i, row in enumerate(zip(frames, mine, ground, prior))])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, nargs="+",
                        help="bench_real.py result files (runs/bench_real/v1/real-v1.json ...)")
    parser.add_argument("--force", action="store_true", help="replace the bundled model even if it is not better")
    parser.add_argument("--models", type=Path, default=ROOT / "models",
                        help="folder of depth.onnx and MODEL_CARD.md (default: %(default)s)")
    args = parser.parse_args(argv)
    model, card_path = args.models / "depth.onnx", args.models / "MODEL_CARD.md"
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    quiet_exporter_logs()
    for path in args.results:
        if not path.is_file():
            parser.error(f"{path} does not exist: run benchmarks/bench_real.py first (it writes it beside its runs)")
    pool = candidates(args.results)
    if not pool:
        parser.error("no learnt row in these folders (an --only-depth run has row b; was it finished?)")
    chosen = min(pool, key=lambda c: c["abs_rel"])
    validation = bench.validation_frames()

    with tempfile.TemporaryDirectory() as tmp:
        candidate = Path(tmp) / "depth.onnx"
        metadata = export_onnx(candidate, chosen["depth"], chosen["style"])
        fp16_weights = candidate.stat().st_size > MODEL_LIMIT_BYTES
        if fp16_weights:  # fp32 arithmetic on fp16 weights: half the file at fp32 speed on a CPU
            metadata = export_onnx(candidate, chosen["depth"], chosen["style"], fp16_weights=True)
        new = DepthPipeline(candidate, backend="onnxruntime")
        new_val = bench.mean_metrics(bench.per_frame([bench.metric_depth(new, f) for f in validation], validation))
        old = DepthPipeline(model, backend="onnxruntime") if model.is_file() else None
        old_val = (bench.mean_metrics(bench.per_frame([bench.metric_depth(old, f) for f in validation], validation))
                   if old else None)
        better = old_val is None or new_val["abs_rel"] < old_val["abs_rel"]
        print(f"chosen: ({chosen['row']}) seed {chosen['seed']} of {bench.shown(chosen['folder'])}, validation "
              f"abs_rel {chosen['abs_rel']:.3f} (exported: {new_val['abs_rel']:.3f})")
        print(format_metrics_table({"candidate": new_val, **({"bundled model": old_val} if old_val else {})}))
        if old_val == new_val:  # the same network again: the file stays (no binary churn), its card is rewritten
            print("the candidate is the bundled network (identical validation metrics): file kept, card rewritten")
            candidate, new, metadata = model, old, old.metadata
            old = old_val = None
        elif not (better or args.force):
            print("the candidate is not better on the validation frames: the bundled model stays")
            return 1
        with tempfile.TemporaryDirectory() as peers_tmp:
            latency = bench_latency(new, old, Path(peers_tmp))
        old_name = describe_model(old.metadata) if old else None
        frames = bench.holdout_frames() if bench.HOLDOUT.is_dir() else None  # read and projected once
        holdout = holdout_rows(new, frames) if frames else None
        old_holdout = holdout_rows(old, frames) if frames and old else None
        args.models.mkdir(parents=True, exist_ok=True)
        if candidate != model:
            shutil.copyfile(candidate, model)
    model.chmod(0o644)
    write_depth_network(chosen["stage1"], args.models / DEPTH_NETWORK)
    sha256 = hashlib.sha256(model.read_bytes()).hexdigest()
    card_path.write_text(card(args, pool, chosen, metadata, sha256, model.stat().st_size, (new_val, old_val),
                              old_name, holdout, old_holdout, latency, fp16_weights))
    print(f"wrote {model} ({model.stat().st_size / 1e6:.1f} MB), {args.models / DEPTH_NETWORK} and {card_path}")
    return 0


def card(args, pool, chosen, metadata, sha256, size, validation, old_name, holdout, old_holdout, latency,
         fp16_weights) -> str:
    """MODEL_CARD.md: what the bundled model is, how it was chosen and made, its metrics, licences and limits."""
    new_val, old_val = validation
    variant = f"renderer v{chosen['renderer']}" + (f", ground prior {chosen['ground_prior']:g} m"
                                                   if chosen["ground_prior"] else "")
    real_rows = chosen["row"] in ("d", "e", "g")
    lines = [
        "# Bundled model: `models/depth.onnx`",
        "",
        "The default model of `depth_da_node` (no `model_path` needed) and of `make demo`. Written by "
        "`benchmarks/bundle_real.py` from `benchmarks/bench_real.py` runs; do not edit by hand.",
        "",
        "## What it is",
        "",
        f"- Pipeline: ({chosen['row']}) {bench.ROWS[chosen['row']]}; training seed {chosen['seed']}, {variant}; "
        f"`{metadata.preset}` preset at {metadata.input_height}x{metadata.input_width}.",
        f"- Chosen by the declared rule: the lowest abs_rel on the validation frames (the two real KITTI frames of "
        f"`../shared/data/kitti_raw_sample`, velodyne, metric, Garg crop; never a holdout frame) among "
        f"{len(pool)} candidates: ({chosen['row']}) seed {chosen['seed']} with {chosen['abs_rel']:.3f}"
        + (f", against {old_val['abs_rel']:.3f} for the model it replaced ({old_name})" if old_val else "") + ".",
        *model_facts(metadata, fp16_weights, latency, size, sha256),
        "- Input size: chosen by measurement with `benchmarks/bench_size.py` (the lowest validation abs_rel among "
        "networks at most 0.25x monodepth2 ResNet-18's time; `benchmarks/results/input-size.md`).",
        *([f"- Ground prior: the network predicts a residual over a flat road {chosen['ground_prior']:g} m under a "
            "level camera (`model.ground_prior`): mounted much higher or lower, or pitched, its depth is biased."]
          if chosen["ground_prior"] else []),
        f"- `models/{DEPTH_NETWORK}`: its stage-1 depth network (for a student, the teacher's) as a checkpoint "
        f"without optimiser state, to train an adapter for your own camera: `train.py style --set "
        f"depth_checkpoint=models/{DEPTH_NETWORK}`" + (", then `train.py distill`." if chosen["row"] == "g" else "."),
        "",
        "## Data, recipe and licences",
        "",
        f"Synthetic: the procedural street world (`depth_da_ros.procedural`, renderer v{chosen['renderer']}), exact "
        "depth. "
        + ("Real: the 207 unlabelled road frames of `../shared/data/real_unlabeled` (kind `road_frames`), which "
           "reached training through the style adapter" + (" and the distillation" if chosen["row"] == "g" else "")
           + ". No real depth label was used for training; the choice used the two kitti_raw_sample frames. "
           f"**Licences of those frames: {LICENCES}. A model trained on them is for non-commercial research "
           "only.**" if real_rows else
           "No real image reached this network's training; its choice used the two real kitti_raw_sample frames.")
        + " Every row, command and picture strip: `benchmarks/results/real-*.md`.",
        "",
        "## Regenerate",
        "",
        "```bash",
        *dict.fromkeys(c["command"] for c in pool),
        "python benchmarks/bundle_real.py " + " ".join(bench.shown(f) for f in args.results),
        "```",
        "",
        "## Metrics",
        "",
        "Validation frames (kitti_raw_sample, 2 frames, metric, Garg crop, (1e-3, 80] m):",
        "",
        format_metrics_table({"this model": new_val, **({f"the model it replaced ({old_name})": old_val}
                                                        if old_val else {})}),
        "",
    ]
    if holdout is not None:
        mine, ground, prior, frames = holdout
        with_ground = (f"this model, node's ground constraint (ground_camera_height {bench.CAMERA_HEIGHT}, "
                       f"ground_tolerance {bench.NODE_TOLERANCE:g}, ground_height_check on)")
        lines += ["Real KITTI holdout frames of `../shared/data/holdout` (evaluation only; nothing was trained, "
                  "tuned or chosen on them), the six 2011_09_26 frames, metric, Garg crop, (1e-3, 80] m, focal "
                  "rescaling as the node, per frame then averaged. The ground constraint is the node's "
                  "`ground_camera_height` (off unless set; `kitti:=true` sets KITTI's 1.65 m): with heights wrong "
                  "by -50% .. +50%, with and without its height check, in `benchmarks/results/ground.md`.", "",
                  format_metrics_table({"this model": mine, with_ground: ground,
                                        "flat-ground prior (no learning)": prior,
                                        **({f"the model it replaced ({old_name})": old_holdout[0]}
                                           if old_holdout else {})}),
                  "", "Per frame (abs_rel / a1):", "", "| frame | this model | with the ground constraint | "
                  "flat-ground prior |", "|---|---:|---:|---:|",
                  *(f"| {f.name}{'' if in_means else ' (another date: not in the means above)'} | "
                    f"{m['abs_rel']:.3f} / {m['a1']:.3f} | {g['abs_rel']:.3f} / {g['a1']:.3f} | "
                    f"{p['abs_rel']:.3f} / {p['a1']:.3f} |" for f, m, g, p, in_means in frames), ""]
    lines += [
        *limits("- Trained on procedural scenes" + (" and a few hundred unlabelled real frames" if real_rows else "")
                + ": a research model, **not for real vehicles**, robots or any safety-related use. Compare it with "
                "the flat-ground prior above before trusting its depth on a real road.", metadata),
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
