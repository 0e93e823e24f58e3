#!/usr/bin/env python3
"""Train the depth GAN (stage 1) or the CycleGAN style adapter (stage 2).

    python training/train.py depth                                 # lite preset, procedural data
    python training/train.py style --config config/train_style_lite.yaml --set run.steps=500
    python training/train.py depth --resume runs/depth-lite-20261126-120000
    torchrun --nproc_per_node 2 training/train.py depth ...        # DistributedDataParallel

Without --config each stage runs its lite defaults on procedural data generated on the fly.
Every run gets a directory with config.yaml, meta.json (seed, git revision), train.log,
losses.jsonl, TensorBoard logs, checkpoints/{last,best}.pt and summary.json.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `training` and the checkout importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch.distributed as dist  # noqa: E402

from depth_da_ros.checkpoint import CheckpointError  # noqa: E402
from depth_da_ros.config import ConfigError, apply_overrides, load_config  # noqa: E402
from training.config import STAGE_CONFIGS  # noqa: E402
from training.engine import Engine, TrainingDiverged, default_run_dir, seed_everything, setup_distributed  # noqa: E402

LOG = logging.getLogger("training")


def build_stage(name: str, cfg, ctx):
    if name == "depth":
        from training.depth_stage import DepthStage

        return DepthStage(cfg, ctx)
    from training.style_stage import StyleStage

    return StyleStage(cfg, ctx)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="train.py", description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("stage", choices=sorted(STAGE_CONFIGS), help="depth (stage 1) or style (stage 2)")
    parser.add_argument("--config", type=Path, help="YAML config (see config/train_<stage>_<preset>.yaml)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="type-checked override, e.g. run.steps=500 or loss.gan=wgan-gp (repeatable)")
    parser.add_argument("--resume", type=Path, metavar="RUN_DIR", help="continue a run from its last checkpoint")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    cls = STAGE_CONFIGS[args.stage]
    if args.resume and args.config:
        parser.error("--resume uses the run's saved config.yaml; do not pass --config")
    if args.resume and not (args.resume / "config.yaml").is_file():
        parser.error(f"{args.resume} is not a run directory (no config.yaml)")
    try:
        if args.resume:
            cfg = load_config(cls, args.resume / "config.yaml", args.overrides)
            run_dir = args.resume
        else:
            cfg = load_config(cls, args.config, args.overrides)
            run_dir = Path(cfg.run.run_dir) if cfg.run.run_dir else default_run_dir(args.stage, cfg.model.preset)
            if (run_dir / "checkpoints" / "last.pt").exists():
                parser.error(f"{run_dir} already holds a run; use --resume {run_dir} or another run.run_dir")
        cfg = apply_overrides(cfg, [f"run.run_dir={run_dir}"])
    except ConfigError as exc:
        parser.error(str(exc))

    ctx = setup_distributed(cfg.run.device)
    if not ctx.is_main:
        logging.getLogger().setLevel(logging.WARNING)
    seed_everything(cfg.run.seed, cfg.run.deterministic)
    try:
        try:  # set-up problems (data, checkpoints, config values) are reported without a traceback
            stage = build_stage(args.stage, cfg, ctx)
            dataset = stage.train_dataset()
            engine = Engine(stage, run_dir, resume=args.resume is not None)
        except (CheckpointError, ValueError, OSError) as exc:
            LOG.error("%s: %s", type(exc).__name__, exc)
            return 2
        engine.fit(dataset)
    except TrainingDiverged as exc:
        LOG.error("training stopped: %s. The last good checkpoint in %s is intact; lower the learning rate or "
                  "check the data, then continue with --resume %s", exc, run_dir / "checkpoints", run_dir)
        return 3
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
