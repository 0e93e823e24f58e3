#!/usr/bin/env python3
"""Train the depth GAN (stage 1), the CycleGAN style adapter (stage 2), or a student (distill).

    python training/train.py depth                                 # lite preset, procedural data
    python training/train.py style --config config/train_style_lite.yaml --set run.steps=500
    python training/train.py depth --resume runs/depth-lite-20261126-120000
    python training/train.py depth --resume RUN --set run.steps=4000 --set optim_g.lr=1e-5
    torchrun --nproc_per_node 2 training/train.py depth ...        # DistributedDataParallel
    python training/train.py depth --help                          # every config key, type, default
    python training/train.py distill --config config/train_distill_bench.yaml --set teacher_style=runs/STYLE_RUN
                                                                   # adapter + depth -> one student network

Without --config each stage runs its lite defaults on procedural data generated on the fly.
Every run gets a directory with config.yaml, meta.json (seed, git revision, resumes), train.log,
losses.jsonl (losses and learning rates per step), TensorBoard logs, checkpoints/{last,best}.pt
and summary.json.

The config is checked before anything is built or written (input size vs the network's stride,
channel counts, training set vs batch size): an error names the key and exits with status 2.
--resume takes overrides that change how training continues (run.steps, run.max_minutes, logging,
optim_*.lr / betas / decay_steps, loss weights, run.device) and refuses those that change the
networks, the data or its order, or the validation behind best.pt; a refused or failed resume
leaves the run folder untouched. run.max_minutes bounds the whole run, final validation included.
Exit status: 0 done, 2 config / data / checkpoint error, 3 training diverged.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

# Only the standard library at import time: `train.py --help` answers without loading torch.
LOG = logging.getLogger("training")
STAGES = ("depth", "style", "distill")


def build_stage(name: str, cfg, ctx):
    if name == "depth":
        from training.depth_stage import DepthStage

        return DepthStage(cfg, ctx)
    if name == "distill":
        from training.distill_stage import DistillStage

        return DistillStage(cfg, ctx)
    from training.style_stage import StyleStage

    return StyleStage(cfg, ctx)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="train.py", description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("stage", choices=STAGES, help="depth (stage 1), style (stage 2) or distill (optional: one "
                                                      "student network from adapter + depth); "
                                                      "'train.py STAGE --help' lists its config keys")
    parser.add_argument("--config", type=Path, help="YAML config (see config/train_<stage>_<preset>.yaml)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="type-checked override, e.g. run.steps=500 or loss.gan=wgan-gp (repeatable)")
    parser.add_argument("--resume", type=Path, metavar="RUN_DIR", help="continue a run from its last checkpoint")
    return parser


def _import_checkout() -> None:
    if __package__ in (None, ""):  # run as a script: make `training` and the checkout importable
        root = str(Path(__file__).resolve().parents[1])
        if root not in sys.path:
            sys.path.insert(0, root)


def stage_help(parser: argparse.ArgumentParser, stage: str) -> str:
    """The usual help plus every config key of ``stage`` with its type, default and comment."""
    _import_checkout()
    from training.config import STAGE_CONFIGS, config_keys_help

    keys = "\n".join(config_keys_help(STAGE_CONFIGS[stage]))
    return (f"{parser.format_help()}\nconfig keys of the {stage} stage (YAML sections or --set KEY=VALUE; "
            f"defaults are the lite preset):\n{keys}\n")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    stages = [a for a in argv if a in STAGES]
    if stages and ({"-h", "--help"} & set(argv)):
        sys.stdout.write(stage_help(parser, stages[0]))
        return 0
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.resume and args.config:
        parser.error("--resume uses the run's saved config.yaml; do not pass --config")
    if args.resume and not (args.resume / "config.yaml").is_file():
        parser.error(f"{args.resume} is not a run directory (no config.yaml)")

    _import_checkout()
    from depth_da_ros.config import ConfigError, apply_overrides, config_to_dict, load_config
    from training.config import STAGE_CONFIGS, check_config, check_resume_changes

    def config_error(message: str) -> None:  # one line naming the key, status 2, nothing written
        parser.exit(2, f"{parser.prog}: error: {message}\n")

    cls = STAGE_CONFIGS[args.stage]
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    try:
        if args.resume:
            saved = load_config(cls, args.resume / "config.yaml")
            cfg = apply_overrides(saved, args.overrides)
            check_resume_changes(config_to_dict(saved), config_to_dict(cfg))
            run_dir = args.resume
        else:
            cfg = load_config(cls, args.config, args.overrides)
            run_dir = Path(cfg.run.run_dir) if cfg.run.run_dir else None
        check_config(args.stage, cfg, world_size)
    except ConfigError as exc:
        config_error(str(exc))

    import torch.distributed as dist

    from depth_da_ros.checkpoint import CheckpointError
    from training.engine import (Engine, TrainingDataError, TrainingDiverged, check_training_set, default_run_dir,
                                 seed_everything, setup_distributed)

    if run_dir is None:
        run_dir = default_run_dir(args.stage, cfg.model.preset)
    if not args.resume and (run_dir / "checkpoints" / "last.pt").exists():
        parser.error(f"{run_dir} already holds a run; use --resume {run_dir} or another run.run_dir")
    try:
        cfg = apply_overrides(cfg, [f"run.run_dir={run_dir}"])
    except ConfigError as exc:
        config_error(str(exc))

    ctx = setup_distributed(cfg.run.device)
    if not ctx.is_main:
        logging.getLogger().setLevel(logging.WARNING)
    seed_everything(cfg.run.seed, cfg.run.deterministic)
    try:
        try:  # set-up problems (data, checkpoints, config values) are reported without a traceback
            stage = build_stage(args.stage, cfg, ctx)
            dataset = stage.train_dataset()
            check_training_set(len(dataset), cfg.run.batch_size * stage.batches_per_step, ctx.world_size)
            if ctx.is_main:
                stage.validation_samples()  # builds the validation set: its errors show before training
            engine = Engine(stage, run_dir, resume=args.resume is not None)
        except (CheckpointError, ValueError, OSError) as exc:
            LOG.error("%s: %s", type(exc).__name__, exc)
            return 2
        engine.fit(dataset)
    except TrainingDiverged as exc:
        LOG.error("training stopped: %s. The last good checkpoint in %s is intact; lower the learning rate or "
                  "check the data, then continue with --resume %s", exc, run_dir / "checkpoints", run_dir)
        return 3
    except TrainingDataError as exc:
        LOG.error("training stopped: %s in %s. Fix or remove the file, then continue with --resume %s", exc,
                  run_dir / "checkpoints", run_dir)
        return 2
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
