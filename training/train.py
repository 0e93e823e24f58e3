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
Exit status: 0 done, 2 config / data / checkpoint error, a full disk or a killed DataLoader worker, 3 training diverged, 130 / 143
SIGINT / SIGTERM (the current step is checkpointed first; --resume continues exactly; a second signal stops at
once, without a checkpoint).
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


def user_path(text: str) -> Path:
    """A path argument with ``~`` expanded (the shell leaves ``--resume=~/run`` and quoted paths as typed)."""
    return Path(text).expanduser()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="train.py", description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("stage", choices=STAGES, help="depth (stage 1), style (stage 2) or distill (optional: one "
                                                      "student network from adapter + depth); "
                                                      "'train.py STAGE --help' lists its config keys")
    parser.add_argument("--config", type=user_path, help="YAML config (see config/train_<stage>_<preset>.yaml)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="type-checked override, e.g. run.steps=500 or loss.gan=wgan-gp (repeatable)")
    parser.add_argument("--resume", type=user_path, metavar="RUN_DIR", help="continue a run from its last checkpoint")
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
    from training.engine import (Engine, check_training_set, default_run_dir, seed_everything,
                                 setup_distributed, shared_run_dir)

    created = None  # a default-named folder this run created (removed again if set-up fails)
    if run_dir is None:
        run_dir = created = default_run_dir(args.stage, cfg.model.preset, create=os.environ.get("RANK", "0") == "0")
    if not args.resume and (run_dir / "checkpoints" / "last.pt").exists():
        parser.error(f"{run_dir} already holds a run; use --resume {run_dir} or another run.run_dir")
    try:
        cfg = apply_overrides(cfg, [f"run.run_dir={run_dir}"])
    except ConfigError as exc:
        config_error(str(exc))

    reported: list[int] = []  # exit status of a stop already logged (in train.log, before it closes)

    def on_stop(exc: BaseException) -> None:
        report = stop_report(exc, run_dir)
        if report is not None:
            LOG.error("%s", report[1])
            reported.append(report[0])

    try:
        ctx = setup_distributed(cfg.run.device)
        if created is not None and ctx.enabled:  # rank 0 made the default name unique: every rank takes it
            run_dir = shared_run_dir(ctx, run_dir)
            created = run_dir if ctx.is_main else None
            cfg = apply_overrides(cfg, [f"run.run_dir={run_dir}"])
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
                if created is not None and created.is_dir() and not any(created.iterdir()):
                    created.rmdir()
                if stop_report(exc, run_dir) is not None:
                    raise
                LOG.error("%s: %s", type(exc).__name__, exc)
                return 2
            engine.fit(dataset, on_stop=on_stop)
        finally:
            if dist.is_initialized():
                dist.destroy_process_group()
    except (Exception, KeyboardInterrupt) as exc:
        if reported:
            return reported[0]
        report = stop_report(exc, run_dir)
        if report is None:
            raise
        LOG.error("%s", report[1])
        return report[0]
    return 0


def stop_report(exc: BaseException, run_dir: Path) -> tuple[int, str] | None:
    """(exit status, one line) for the ways training stops on purpose or for a known cause; None
    for an unexpected error (its traceback is the report)."""
    import errno
    import signal

    from depth_da_ros.checkpoint import CheckpointWriteError, write_error_reason
    from training.engine import (TrainingAborted, TrainingDataError, TrainingDiverged, TrainingInterrupted,
                                 TrainingWorkerDied)

    if isinstance(exc, TrainingInterrupted):
        return exc.exit_code, (f"training stopped by {signal.Signals(exc.signum).name} at step {exc.step}; "
                               f"checkpoint {exc.checkpoint}. Continue with --resume {run_dir}")
    if isinstance(exc, TrainingAborted):  # a second signal while the first one's step was still running
        return exc.exit_code, (f"training stopped at once by a second {signal.Signals(exc.signum).name} after "
                               f"step {exc.step}, without a checkpoint. {last_checkpoint_note(run_dir)}")
    if isinstance(exc, KeyboardInterrupt):  # Ctrl-C before training started (nothing to checkpoint yet)
        return 128 + signal.SIGINT, "interrupted before training started; nothing was trained"
    if isinstance(exc, TrainingDiverged):
        return 3, (f"training stopped: {exc}. {last_checkpoint_note(run_dir)}; lower the learning rate or "
                   f"check the data")
    if isinstance(exc, TrainingDataError):
        return 2, (f"training stopped: {exc} in {run_dir / 'checkpoints'}. Fix or remove the file, then continue "
                   f"with --resume {run_dir}")
    if isinstance(exc, TrainingWorkerDied):
        return 2, f"training stopped: {exc}. {last_checkpoint_note(run_dir)}"
    if isinstance(exc, CheckpointWriteError):
        return 2, f"training stopped: {exc}"
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
        reason, _ = write_error_reason(exc)
        where = f" {exc.filename}" if exc.filename else f" in {run_dir}"
        return 2, f"training stopped: cannot write{where}: {reason}"
    return None


def last_checkpoint_note(run_dir: Path) -> str:
    """Where training can continue from, only naming a checkpoint that exists."""
    last = run_dir / "checkpoints" / "last.pt"
    if last.is_file():
        return f"The last good checkpoint {last} is intact; continue with --resume {run_dir}"
    return f"No checkpoint was written before it ({last} does not exist): start a new run"


if __name__ == "__main__":
    sys.exit(main())
