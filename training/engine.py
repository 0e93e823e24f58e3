"""The training loop both stages share: run directory, distributed set-up, data order,
checkpoint/resume, NaN guard, logging. A stage supplies networks, optimisers and a step.

Reproducibility: the data order comes from a seeded sampler (epoch-dependent, sharded per
rank), per-sample augmentation from (seed, epoch, index), and the RNG states of torch,
NumPy and ``random`` are saved in every checkpoint; with ``run.deterministic`` a resumed
run reproduces the losses of an uninterrupted one.

Distributed: ``torchrun --nproc_per_node N training/train.py ...`` runs one process per
device (gloo on CPU, NCCL on CUDA); each network that trains is wrapped in
DistributedDataParallel; only rank 0 writes logs and checkpoints.
"""
from __future__ import annotations

import datetime as _dt
import json
import logging
import math
import os
import random
import signal
import subprocess
import sys
import threading
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler
from tqdm import tqdm

from depth_da_ros.atomic import atomic_write_bytes
from depth_da_ros.checkpoint import (CheckpointError, load_checkpoint, network_entry, save_checkpoint,
                                    write_error_reason)
from depth_da_ros.config import ConfigError, config_from_dict, config_to_dict, save_config
from depth_da_ros.losses import get_gan_loss
from depth_da_ros.metrics import strict_json
from depth_da_ros.models import NetworkSpec
from training.config import OptimConfig, RunConfig, check_resume_changes
from training.datasets import DatasetError

LOG = logging.getLogger("training")
REPO_ROOT = Path(__file__).resolve().parents[1]


def _clock() -> float:
    """Seconds of a monotonic clock: step times, validation times, the run.max_minutes budget."""
    return time.monotonic()


class TrainingDiverged(RuntimeError):
    """A loss became NaN or infinite; nothing was written after the last good checkpoint."""


class TrainingDataError(RuntimeError):
    """Reading a training batch failed mid-run; the steps before it were checkpointed."""


class TrainingInterrupted(RuntimeError):
    """SIGINT / SIGTERM: the engine finished the current step, checkpointed it, and stopped."""

    def __init__(self, signum: int, step: int, checkpoint: Path) -> None:
        self.signum, self.step, self.checkpoint = signum, step, checkpoint
        super().__init__(f"{signal.Signals(signum).name} at step {step}; checkpoint {checkpoint}")

    @property
    def exit_code(self) -> int:
        return 128 + self.signum  # the shell's convention: 130 for SIGINT, 143 for SIGTERM


class TrainingAborted(KeyboardInterrupt):
    """A second SIGINT / SIGTERM while the engine was finishing a step for the first: stop at once,
    without a checkpoint (the last one written is intact)."""

    def __init__(self, signum: int, step: int) -> None:
        self.signum, self.step = signum, step
        super().__init__(f"second {signal.Signals(signum).name} after step {step}")

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


class TrainingWorkerDied(RuntimeError):
    """A DataLoader worker process died (e.g. the out-of-memory killer); the steps so far were checkpointed."""


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


_HELD_LOCK_FDS: set[int] = set()  # descriptors of the RunLocks this process holds (see RunLock)


def _ignore_stop_signals(worker_id: int) -> None:
    """DataLoader workers leave SIGINT / SIGTERM to the main process (a Ctrl-C reaches the whole
    process group): it finishes the step and checkpoints, then shuts the workers down itself.
    They also close their inherited copies of the run folder's lock, so a worker that outlives a
    killed main process does not keep the folder locked."""
    for signum in STOP_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)
    for fd in list(_HELD_LOCK_FDS):
        try:
            os.close(fd)
        except OSError:
            pass
    _HELD_LOCK_FDS.clear()


@dataclass
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def setup_distributed(device: str) -> DistContext:
    """Read torchrun's environment; single-process runs need no set-up at all."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device == "auto":
        device = f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu"
    elif device == "cuda":
        device = f"cuda:{local_rank}"
    dev = torch.device(device)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError(f"run.device={device} but CUDA is not available")
        torch.cuda.set_device(dev)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    return DistContext(rank, world, local_rank, dev)


def unwrap(module: nn.Module) -> nn.Module:
    return module.module if isinstance(module, nn.parallel.DistributedDataParallel) else module


def set_requires_grad(module: nn.Module, flag: bool) -> None:
    for p in module.parameters():
        p.requires_grad_(flag)


def make_optimizer(params, cfg: OptimConfig) -> torch.optim.Adam:
    return torch.optim.Adam(params, lr=cfg.lr, betas=tuple(cfg.betas))


def rebase_optimizer(optimizer: torch.optim.Optimizer, scheduler: torch.optim.lr_scheduler.LambdaLR,
                     cfg: OptimConfig) -> None:
    """Make a restored optimiser and schedule follow ``cfg``: loading their state dicts brings back
    the lr and betas the run started with, so a resume with ``--set optim_g.lr=...`` would
    otherwise log the new value and train at the old one. The lr becomes ``cfg.lr`` times the
    schedule's factor at the restored step; Adam's moment estimates are kept."""
    scheduler.base_lrs = [cfg.lr for _ in optimizer.param_groups]
    for group, factor in zip(optimizer.param_groups, scheduler.lr_lambdas):
        group["initial_lr"] = cfg.lr
        group["lr"] = cfg.lr * factor(scheduler.last_epoch)
        group["betas"] = tuple(cfg.betas)
    scheduler._last_lr = [group["lr"] for group in optimizer.param_groups]  # what get_last_lr() reports


def make_scheduler(optimizer: torch.optim.Optimizer, cfg: OptimConfig, total_steps: int):
    """Constant, then linear decay to zero over the last ``decay_steps`` (CycleGAN's schedule).

    The factor is a function of the step alone, so a resumed run (``rebase_optimizer``) can
    re-derive the learning rate from a changed ``lr``, ``decay_steps`` or ``run.steps``."""
    start = max(total_steps - cfg.decay_steps, 0)

    def factor(step: int) -> float:
        if cfg.decay_steps <= 0 or step < start:
            return 1.0
        return max(0.0, 1.0 - (step - start + 1) / (cfg.decay_steps + 1))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


class ResumableSampler(DistributedSampler):
    """DistributedSampler (seeded, epoch-dependent, sharded) that can skip the part of an
    epoch a resumed run has already trained on."""

    def __init__(self, dataset: Dataset, ctx: DistContext, seed: int) -> None:
        super().__init__(dataset, num_replicas=ctx.world_size, rank=ctx.rank, shuffle=True, seed=seed,
                         drop_last=True)
        self.skip = 0

    def set_position(self, epoch: int, skip_samples: int) -> None:
        self.set_epoch(epoch)
        self.skip = skip_samples

    def __iter__(self) -> Iterator[int]:
        indices = list(super().__iter__())
        return iter(indices[self.skip:])

    def __len__(self) -> int:
        return super().__len__() - self.skip


def git_revision() -> str:
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True,
                             timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO_ROOT,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return (rev + ("-dirty" if dirty else "")) if rev else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def rng_state() -> dict[str, Any]:
    """RNG states as tensors / plain lists, so ``torch.load(weights_only=True)`` reads them."""
    np_state = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *map(float, np_state[2:])],
        "python": _to_lists(random.getstate()),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), int(pos), int(has_gauss), float(cached)))
    random.setstate(_to_tuples(state["python"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _to_lists(x):
    return [_to_lists(v) for v in x] if isinstance(x, (tuple, list)) else x


def _to_tuples(x):
    return tuple(_to_tuples(v) for v in x) if isinstance(x, list) else x


def seed_everything(seed: int, deterministic: bool) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False


class Stage:
    """What a training stage provides to the engine. Subclasses fill ``networks`` (name ->
    module, DDP-wrapped where trained), ``specs``, ``optimizers`` and ``schedulers``."""

    name = "stage"

    def __init__(self, cfg: Any, ctx: DistContext) -> None:
        self.cfg = cfg
        self.ctx = ctx
        self.networks: dict[str, nn.Module] = {}
        self.specs: dict[str, NetworkSpec] = {}
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.schedulers: dict[str, torch.optim.lr_scheduler.LRScheduler] = {}
        self.optim_configs: dict[str, OptimConfig] = {}
        self._batch_source = None  # set by Engine.fit: draws the next training batch (see next_batch)
        # The GAN stages name their adversarial objective (WGAN-GP is the wgan loss + penalty);
        # distillation has none.
        gan = getattr(cfg.loss, "gan", None)
        self.gan_loss = get_gan_loss("wgan" if gan == "wgan-gp" else gan) if gan else None
        self.amp = cfg.run.amp and ctx.device.type == "cuda"
        if cfg.run.amp and not self.amp:
            LOG.warning("run.amp is only used on CUDA; training in fp32 on %s", ctx.device)

    # --- to implement -------------------------------------------------------------------
    def train_dataset(self) -> Dataset:
        """Built once by the caller and passed to ``Engine.fit`` (bad data fails before training)."""
        raise NotImplementedError

    def train_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def validate(self) -> dict[str, float] | None:
        """Validation metrics (rank 0 only), or None when this stage has nothing to measure."""
        raise NotImplementedError

    @property
    def batches_per_step(self) -> int:
        """Training batches one ``train_step`` consumes: the one it is called with, plus
        ``batches_per_step - 1`` it draws with ``next_batch`` (e.g. a fresh batch per critic update)."""
        return 1

    def next_batch(self) -> dict[str, torch.Tensor]:
        """The next batch of the data order, on the device; only inside ``train_step``, at most
        ``batches_per_step - 1`` times per step (the engine keeps them within the epoch)."""
        if self._batch_source is None:
            raise RuntimeError("next_batch is only available inside train_step during Engine.fit")
        return self._batch_source()

    def validation_samples(self) -> int:
        """Samples one validation reads (builds the validation set, so its errors show before
        training); 0 when validation measures nothing. The time budget reserves time for it."""
        return 0

    def image_grids(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def deploy(self) -> list[str]:
        raise NotImplementedError

    def checkpoint_extras(self) -> dict[str, Any]:
        """Metadata that inference needs (depth codec, input size, training camera)."""
        return {}

    def extra_state(self) -> dict[str, Any]:
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        pass

    # --- shared helpers -------------------------------------------------------------------
    def autocast(self):
        return torch.autocast("cuda", dtype=torch.bfloat16) if self.amp else nullcontext()

    def wrap(self, module: nn.Module) -> nn.Module:
        """Move to the device and, in a distributed run, wrap in DDP (SyncBatchNorm on CUDA)."""
        module = module.to(self.ctx.device)
        if not self.ctx.enabled:
            return module
        if self.ctx.device.type == "cuda":
            module = nn.SyncBatchNorm.convert_sync_batchnorm(module)
        device_ids = [self.ctx.device.index] if self.ctx.device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(module, device_ids=device_ids)

    def add_optimizer(self, name: str, params, cfg: OptimConfig) -> None:
        """Adam for ``params`` and its learning-rate schedule over the run, both checkpointed as ``name``."""
        self.optimizers[name] = make_optimizer(params, cfg)
        self.schedulers[name] = make_scheduler(self.optimizers[name], cfg, self.cfg.run.steps)
        self.optim_configs[name] = cfg

    def guard(self, losses: dict[str, torch.Tensor], step: int) -> None:
        """Raise before the backward pass if any loss is NaN or infinite."""
        bad = [f"{name}={value.item()}" for name, value in losses.items() if not torch.isfinite(value.detach()).all()]
        if bad:
            raise TrainingDiverged(f"non-finite loss {', '.join(bad)} at step {step}")


class _RunLogHandler(logging.FileHandler):
    """train.log. When the disk refuses a write (full disk, file-size limit, quota) it says so once,
    in one line on stderr naming the file and the cause, and the run logs to the console only:
    no "--- Logging error ---" traceback for every record that follows."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.failed = False

    def emit(self, record: logging.LogRecord) -> None:
        if not self.failed:
            super().emit(record)

    def handleError(self, record: logging.LogRecord) -> None:
        exc = sys.exc_info()[1]
        if not isinstance(exc, OSError):
            super().handleError(record)
            return
        if not self.failed:
            self.failed = True
            reason, _ = write_error_reason(exc)
            sys.stderr.write(f"cannot write {self.baseFilename}: {reason}; logging to the console only\n")
            sys.stderr.flush()

    def flush(self) -> None:
        try:
            super().flush()
        except OSError:
            if not self.failed:
                raise

    def close(self) -> None:
        try:
            super().close()
        except OSError:  # the buffered lines the disk refused: already reported
            if not self.failed:
                raise


def _write_file(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (a full disk leaves the previous file whole); a refused
    write is an OSError that names the file (a failed flush reports neither file nor call otherwise)."""
    try:
        atomic_write_bytes(path, text.encode())
    except OSError as exc:
        if exc.filename is not None:
            raise
        raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from exc


class _NoEventWriter:
    """Stands in for TensorBoard's SummaryWriter when TensorBoard is not installed."""

    def add_scalar(self, *args: Any, **kwargs: Any) -> None:
        pass

    def add_image(self, *args: Any, **kwargs: Any) -> None:
        pass

    def close(self) -> None:
        pass


class Engine:
    """Runs a Stage: data order, steps, validation, checkpoints, logs.

    A resumed run loads its checkpoint before it writes anything: a resume that fails (a
    refused override, a checkpoint that does not fit) leaves the run folder as it was.
    """

    def __init__(self, stage: Stage, run_dir: Path, resume: bool) -> None:
        self.stage = stage
        self.cfg = stage.cfg
        self.run: RunConfig = stage.cfg.run
        self.ctx = stage.ctx
        self.run_dir = run_dir
        self.ckpt_dir = run_dir / "checkpoints"
        self.step = 0
        self.epoch = 0
        self.epoch_step = 0  # training batches of the current epoch already consumed
        self.best: dict[str, Any] = {}
        self.writer = None
        self.loss_log = None
        self.log_handler: logging.Handler | None = None
        self.lock: RunLock | None = None
        self.val_seconds: float | None = None  # duration of the last validation (the budget reserves it)
        self.saved_step = -1  # step of the last checkpoint written by this session
        self._drawn = 0  # batches drawn in the current step
        self._stop_signal: int | None = None  # SIGINT / SIGTERM received; acted on at the end of the step
        self._stop_saved = False  # that step is checkpointed: a further signal changes nothing
        self._previous_sigchld: dict[int, Any] = {}
        resumed = self._resume() if resume else None
        if self.ctx.is_main:
            try:
                self._open_logs(resumed)
            except BaseException:  # e.g. a full disk: release the log handler and the run folder's lock
                try:
                    self.close()
                except OSError:
                    pass  # the first failure is the one reported
                raise

    # --- set-up -------------------------------------------------------------------------
    def _open_logs(self, resumed: dict[str, Any] | None) -> None:
        try:  # imported here: slow, and rank 0 only; checked before anything is written
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as exc:
            LOG.warning("TensorBoard is not installed (%s): training without event files (losses.jsonl and "
                        "train.log are still written); pip install tensorboard for them", exc)
            SummaryWriter = None
        self.lock = RunLock(self.run_dir)  # before anything is written: one writer per run folder
        self.log_handler = _RunLogHandler(self.run_dir / "train.log")
        self.log_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        logging.getLogger().addHandler(self.log_handler)
        save_config(self.cfg, self.run_dir / "config.yaml")
        now = _dt.datetime.now(_dt.timezone.utc).isoformat()
        session = {"command": " ".join(sys.argv), "git_revision": git_revision(), "torch": torch.__version__,
                   "world_size": self.ctx.world_size, "device": str(self.ctx.device), "started": now}
        meta_path = self.run_dir / "meta.json"
        if resumed is None:
            meta = {"stage": self.stage.name, "seed": self.run.seed, **session}
        else:  # keep how the run started; add this session
            try:
                meta = json.loads(meta_path.read_text())
            except (OSError, ValueError):
                meta = {"stage": self.stage.name, "seed": self.run.seed}
            meta.setdefault("resumes", []).append({**session, "from_step": resumed["step"],
                                                   "changes": resumed["changes"]})
        _write_file(meta_path, json.dumps(meta, indent=2) + "\n")
        if SummaryWriter is None:
            self.writer = _NoEventWriter()
        else:  # a resumed run purges the events it logged after its checkpoint: they are logged again
            self.writer = SummaryWriter(str(self.run_dir / "tensorboard"),
                                        purge_step=self.step + 1 if resumed is not None else None)
        self.loss_log = open(self.run_dir / "losses.jsonl", "a")
        LOG.info("run directory %s (seed %d, revision %s)", self.run_dir, self.run.seed, session["git_revision"])
        if resumed is not None:
            LOG.info("resumed from %s at step %d (epoch %d, batch %d of the epoch)", resumed["path"], self.step,
                     self.epoch, self.epoch_step)
            for key, (old, new) in resumed["changes"].items():
                LOG.info("resume applies %s: %r -> %r", key, old, new)

    def _resume(self) -> dict[str, Any]:
        """Restore networks, optimisers, schedules, RNG and position; nothing is written here."""
        path = self.ckpt_dir / "last.pt"
        if not path.is_file():
            raise CheckpointError(f"cannot resume: {path} does not exist (no checkpoint was written yet)")
        ckpt = load_checkpoint(path, map_location=self.ctx.device)
        if ckpt.get("stage") != self.stage.name:
            raise CheckpointError(f"cannot resume a {ckpt.get('stage')!r} run as stage {self.stage.name!r}")
        new_config = config_to_dict(self.cfg)
        try:  # through today's schema: keys added since the checkpoint take their defaults, not "changes"
            saved = config_to_dict(config_from_dict(type(self.cfg), ckpt.get("config", new_config)))
        except ConfigError as exc:  # a key since removed: the networks' state dicts still have to fit
            LOG.warning("cannot compare the checkpoint's config with this one (%s)", exc)
            saved = new_config
        try:  # also catches a config.yaml edited by hand after the checkpoint was written
            changes = check_resume_changes(saved, new_config)
        except ConfigError as exc:
            raise CheckpointError(f"{path}: {exc}") from None
        changes.pop("run.run_dir", None)
        saved_world = ckpt.get("world_size")
        if saved_world is not None and saved_world != self.ctx.world_size:
            batch = self.run.batch_size
            if ckpt["epoch_step"]:  # mid-epoch: the shards of the rest of the epoch depend on the process count
                raise CheckpointError(
                    f"cannot resume {path} with {self.ctx.world_size} process(es): it was written by {saved_world} at "
                    f"batch {ckpt['epoch_step']} of epoch {ckpt['epoch']}, and the rest of that epoch is sharded "
                    f"over {saved_world} processes (global batch {saved_world * batch}, here "
                    f"{self.ctx.world_size * batch}); resume with torchrun --nproc_per_node {saved_world}")
            LOG.warning("resuming a %d-process run with %d process(es) at an epoch boundary: the global batch "
                        "changes from %d to %d samples", saved_world, self.ctx.world_size, saved_world * batch,
                        self.ctx.world_size * batch)
        for name, module in self.stage.networks.items():
            try:
                unwrap(module).load_state_dict(ckpt["networks"][name]["state_dict"])
            except (KeyError, RuntimeError) as exc:
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise CheckpointError(f"cannot resume: network {name!r} of {path} does not fit the config ({first})"
                                      ) from None
        for name, opt in self.stage.optimizers.items():
            opt.load_state_dict(ckpt["optimizers"][name])
        for name, sched in self.stage.schedulers.items():
            sched.load_state_dict(ckpt["schedulers"][name])
            rebase_optimizer(self.stage.optimizers[name], sched, self.stage.optim_configs[name])
        self.stage.load_extra_state(ckpt.get("extra", {}))
        set_rng_state(ckpt["rng"])
        self.step, self.epoch, self.epoch_step = ckpt["step"], ckpt["epoch"], ckpt["epoch_step"]
        self.best = ckpt.get("best", {})
        return {"path": path, "step": self.step, "changes": changes}

    # --- checkpoints ----------------------------------------------------------------------
    def _payload(self, metrics: dict[str, float] | None) -> dict[str, Any]:
        stage = self.stage
        return {
            "stage": stage.name,
            "preset": self.cfg.model.preset,
            "networks": {n: network_entry(m, stage.specs[n]) for n, m in stage.networks.items()},
            "deploy": stage.deploy(),
            **stage.checkpoint_extras(),
            "optimizers": {n: o.state_dict() for n, o in stage.optimizers.items()},
            "schedulers": {n: s.state_dict() for n, s in stage.schedulers.items()},
            "extra": stage.extra_state(),
            "rng": rng_state(),
            "step": self.step,
            "epoch": self.epoch,
            "epoch_step": self.epoch_step,
            "world_size": self.ctx.world_size,  # the data order is sharded per process: see _resume
            "best": dict(self.best),
            "metrics": dict(metrics or {}),
            "config": config_to_dict(self.cfg),
            "git_revision": git_revision(),
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(),
        }

    def save(self, metrics: dict[str, float] | None = None, best: bool = False) -> None:
        if not self.ctx.is_main:
            return
        payload = self._payload(metrics)
        save_checkpoint(self.ckpt_dir / "last.pt", payload)
        self.saved_step = self.step
        if best:
            save_checkpoint(self.ckpt_dir / "best.pt", payload)

    # --- the loop -------------------------------------------------------------------------
    def fit(self, dataset: Dataset, on_stop=None) -> dict[str, Any]:
        """Train; ``on_stop(exc)`` is called with an exception that ends training while the run's
        train.log is still open (so the reason the run stopped is in it), then it propagates."""
        previous = self._install_signal_handlers()
        try:
            return self._fit(dataset)
        except BaseException as exc:
            if on_stop is not None:
                on_stop(exc)
            raise
        finally:
            for signum, handler in {**previous, **self._previous_sigchld}.items():
                signal.signal(signum, handler)
            self._previous_sigchld = {}
            self.stage._batch_source = None
            self.close()

    def _install_signal_handlers(self) -> dict[int, Any]:
        """SIGINT / SIGTERM set a flag that the loop acts on after the current step (checkpoint,
        then TrainingInterrupted); the previous handlers, to restore. Main thread only."""
        if threading.current_thread() is not threading.main_thread():
            return {}

        def handler(signum, frame):
            if self._stop_signal is not None:  # asked twice: the user does not want to wait for the step
                if self._stop_saved:  # already checkpointed and on the way out
                    return
                raise TrainingAborted(signum, self.step)
            LOG.warning("%s received: stopping after step %d with a checkpoint (send it again to stop at once, "
                        "without one)", signal.Signals(signum).name, self.step + 1)
            self._stop_signal = signum

        previous = {}
        for signum in STOP_SIGNALS:
            previous[signum] = signal.getsignal(signum)
            signal.signal(signum, handler)
        return previous

    def _defer_worker_death(self, num_workers: int) -> None:
        """PyTorch's SIGCHLD handler raises the moment a DataLoader worker dies, wherever the main thread
        is (mid-step, mid-checkpoint). Replace it (once per fit) with a no-op: the iterator itself reports
        the dead worker at the next batch it cannot deliver, a step boundary where the state can be saved."""
        if (num_workers and not self._previous_sigchld and hasattr(signal, "SIGCHLD")
                and threading.current_thread() is threading.main_thread()):
            self._previous_sigchld = {signal.SIGCHLD: signal.signal(signal.SIGCHLD, lambda signum, frame: None)}

    def _check_stop_signal(self, metrics: dict[str, float] | None) -> None:
        """At a step boundary: when any process got SIGINT / SIGTERM, checkpoint this step and stop."""
        flag = self._stop_signal or 0
        if self.ctx.enabled:  # every rank stops at the same step (torchrun forwards signals to all)
            value = torch.tensor([flag], device=self.ctx.device if self.ctx.device.type == "cuda" else "cpu")
            dist.all_reduce(value, op=dist.ReduceOp.MAX)
            flag = int(value.item())
        if not flag:
            return
        if self.step > self.saved_step:
            self.save(metrics)
        self._stop_saved = True
        raise TrainingInterrupted(flag, self.step, self.ckpt_dir / "last.pt")

    def close(self) -> None:
        """Flush and release the logs and the run folder (also when training stops on an error)."""
        failed: list[OSError] = []  # e.g. a full disk refusing buffered events: release everything first
        for closing in (self.writer, self.loss_log):
            try:
                if closing is not None:
                    closing.close()
            except OSError as exc:
                failed.append(exc)
        self.writer = self.loss_log = None
        if self.log_handler is not None:  # also when set-up stopped half-way (see __init__)
            logging.getLogger().removeHandler(self.log_handler)
            self.log_handler.close()
            self.log_handler = None
        if self.lock is not None:
            self.lock.release()
        if failed:
            raise failed[0]

    def _fit(self, dataset: Dataset) -> dict[str, Any]:
        run, ctx, stage = self.run, self.ctx, self.stage
        sampler = ResumableSampler(dataset, ctx, run.seed)
        per_step = stage.batches_per_step
        batches_per_epoch = len(sampler) // run.batch_size  # the whole epoch (no skip yet)
        check_training_set(len(dataset), run.batch_size * per_step, ctx.world_size)
        val_samples = stage.validation_samples() if ctx.is_main else 0
        started = _clock()
        budget = BudgetClock(run.max_minutes * 60, started)
        self.saved_step = self.step
        bar = tqdm(total=run.steps, initial=self.step, unit="step", disable=not ctx.is_main, dynamic_ncols=True,
                   desc=f"{stage.name} stage" + (f" ({run.max_minutes:g} min budget)" if run.max_minutes else ""))
        metrics: dict[str, float] | None = None
        validated_at = -1
        stop_reason = "steps"
        while self.step < run.steps and stop_reason == "steps":
            sampler.set_position(self.epoch, self.epoch_step * run.batch_size)
            if hasattr(dataset, "set_epoch"):
                dataset.set_epoch(self.epoch)
            # Workers are re-created each epoch (not persistent) so they see set_epoch.
            loader = DataLoader(dataset, batch_size=run.batch_size, sampler=sampler, num_workers=run.num_workers,
                                drop_last=True, pin_memory=ctx.device.type == "cuda",
                                worker_init_fn=_ignore_stop_signals if run.num_workers else None)
            if self.epoch_step:
                # Only a resumed run starts mid-epoch. Creating the iterator draws its base seed from the global
                # torch stream, which the uninterrupted run did at the epoch's start (before the checkpoint's RNG
                # state): draw it aside, so the stream (e.g. WGAN-GP's penalty samples) continues exactly.
                with torch.random.fork_rng(devices=[]):
                    batches = iter(loader)
            else:
                batches = iter(loader)
            self._defer_worker_death(run.num_workers)
            stage._batch_source = lambda: self._draw(batches)
            # A step needs `per_step` batches of this epoch; the rest of an epoch too short for one is skipped.
            while self.epoch_step + per_step <= batches_per_epoch:
                tick = _clock()
                self._drawn = 0
                batch = self._draw(batches)
                lrs = {name: opt.param_groups[0]["lr"] for name, opt in stage.optimizers.items()}  # this step's
                losses = stage.train_step(batch, self.step + 1)  # steps count from 1, as logged
                for sched in stage.schedulers.values():
                    sched.step()
                self.step += 1
                step_seconds = _clock() - tick  # data loading + the step itself
                budget.add_step(step_seconds)
                self._log_step(losses, lrs, step_seconds, batch, bar)
                if self.step % run.checkpoint_every == 0:
                    self.save(metrics)
                if run.val_every and self.step % run.val_every == 0:
                    metrics = self._validate()
                    validated_at = self.step
                self._check_stop_signal(metrics)
                if self.step >= run.steps:
                    break
                if budget.enabled:  # stop while the next step and the final validation still fit
                    val_reserve = self.val_seconds if self.val_seconds is not None else budget.estimate_validation(
                        val_samples, run.batch_size * ctx.world_size)
                    stop = not self._agree(budget.allows_step(val_reserve))
                    if stop and self.val_seconds is None and validated_at != self.step:
                        # Only an upper-bound estimate so far: validate now (it writes best.pt too) and decide
                        # on its measured duration, rather than end a run early on a guess.
                        metrics = self._validate()
                        validated_at = self.step
                        val_reserve = self.val_seconds
                        stop = not self._agree(budget.allows_step(val_reserve))
                    bar.total = min(run.steps, self.step + budget.steps_left(val_reserve))
                    bar.refresh()
                    if stop:
                        stop_reason = f"time budget of {run.max_minutes:g} min"
                        break
            if stop_reason == "steps" and self.epoch_step + per_step > batches_per_epoch:
                # A full epoch: validate, start the next.
                self.epoch += 1
                self.epoch_step = 0
                if not run.val_every:
                    metrics = self._validate()
                    validated_at = self.step
        stage._batch_source = None
        bar.close()
        if validated_at != self.step:
            metrics = self._validate()  # also writes the final checkpoint
        summary = {"stage": stage.name, "steps": self.step, "epochs": self.epoch, "stopped_by": stop_reason,
                   "metrics": metrics or {}, "best": self.best, "ranks_in_sync": self._ranks_in_sync(),
                   "minutes": round((_clock() - started) / 60, 2)}
        if ctx.is_main:
            # strict JSON: an undefined validation metric (NaN, inf) is null, as in evaluate.py's --out-json
            text = json.dumps(strict_json(summary), indent=2, allow_nan=False)
            _write_file(self.run_dir / "summary.json", text + "\n")
            LOG.info("finished %s stage after %d steps (%s): %s", stage.name, self.step, stop_reason,
                     json.dumps(strict_json(summary["metrics"])))
        return summary

    def _draw(self, batches: Iterator[dict[str, Any]]) -> dict[str, Any]:
        """The next batch, on the device; counts it in the epoch position. A file that fails to load
        mid-run stops training with the steps so far checkpointed and the file named."""
        try:
            batch = next(batches)
        except StopIteration:
            raise RuntimeError("the data loader ended inside a step (the engine reserves whole steps)") from None
        except (RuntimeError, OSError) as exc:
            # A dead worker shows as PyTorch's RuntimeError, or as a connection reset while receiving its batch.
            workers = getattr(batches, "_workers", [])
            if isinstance(exc, ConnectionError):  # the sender vanished: give a dying worker a moment to exit
                for worker in workers:
                    worker.join(timeout=2)
            dead = [w for w in workers if w.exitcode is not None and w.exitcode != 0]
            if not dead and not (isinstance(exc, RuntimeError) and "DataLoader worker" in str(exc)):
                if isinstance(exc, RuntimeError):
                    raise
                return self._data_error(exc)
            if self._drawn == 0 and self.step > self.saved_step:  # between steps: the state is consistent
                self.save()
            cause = (f"DataLoader worker (pid {dead[0].pid}) exited with code {dead[0].exitcode}" if dead else
                     str(exc).strip().splitlines()[0].rstrip(". "))
            raise TrainingWorkerDied(f"{cause} (a worker killed by signal 9 is usually the out-of-memory killer: "
                                     f"lower run.num_workers or run.batch_size); checkpoint at step "
                                     f"{self.saved_step}") from None
        except (DatasetError, ValueError) as exc:
            return self._data_error(exc)
        self.epoch_step += 1
        self._drawn += 1
        return {k: v.to(self.ctx.device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}

    def _data_error(self, exc: Exception):
        """Stop on a training batch that failed to load, with the steps so far checkpointed."""
        # A DataLoader worker re-raises the error type with its traceback in the message: keep the cause.
        cause = [line for line in str(exc).strip().splitlines() if line.strip()]
        if self._drawn == 0 and self.step > self.saved_step:  # between steps: the state is consistent
            self.save()
        raise TrainingDataError(f"reading training batch {self.epoch_step + 1} of epoch {self.epoch} failed: "
                                f"{cause[-1] if cause else type(exc).__name__}; checkpoint at step "
                                f"{self.saved_step}") from exc

    def _agree(self, flag: bool) -> bool:
        """Rank 0's decision, so that every process stops at the same step (clocks differ)."""
        if not self.ctx.enabled:
            return flag
        value = torch.tensor([int(flag)], device=self.ctx.device if self.ctx.device.type == "cuda" else "cpu")
        dist.broadcast(value, 0)
        return bool(value.item())

    def _log_step(self, losses: dict[str, torch.Tensor], lrs: dict[str, float], step_seconds: float,
                  batch: dict[str, torch.Tensor], bar: tqdm) -> None:
        """Losses of the step just taken and the learning rates it was taken with."""
        if not self.ctx.is_main:
            return
        values = {k: float(v) for k, v in losses.items()}
        # step_seconds includes data loading: the figure users compare across machines.
        try:
            self.loss_log.write(json.dumps(strict_json({"step": self.step, **values,
                                                        "step_seconds": round(step_seconds, 4), "lr": lrs}),
                                           allow_nan=False) + "\n")
            self.loss_log.flush()
        except OSError as exc:  # e.g. a full disk: name the file (a failed flush does not)
            raise OSError(exc.errno, exc.strerror or str(exc), self.loss_log.name) from exc
        bar.set_postfix({k: f"{v:.3g}" for k, v in values.items()}, refresh=False)  # this step's, every step
        bar.update(1)
        if self.step % self.run.log_every == 0 or self.step == 1:
            for k, v in values.items():
                self.writer.add_scalar(f"loss/{k}", v, self.step)
            self.writer.add_scalar("time/step_seconds", step_seconds, self.step)
            for name, lr in lrs.items():
                self.writer.add_scalar(f"lr/{name}", lr, self.step)
        if self.step % self.run.image_every == 0 or self.step == 1:
            for tag, grid in self.stage.image_grids(batch).items():
                self.writer.add_image(tag, grid, self.step)

    def _validate(self) -> dict[str, float] | None:
        started = _clock()
        metrics = self.stage.validate() if self.ctx.is_main else None
        if self.ctx.enabled:
            dist.barrier()
        self.val_seconds = _clock() - started
        if not self.ctx.is_main:
            return None
        is_best = False
        if metrics:
            key = self.cfg.val.best_metric
            lower_is_better = key not in ("a1", "a2", "a3")
            value = metrics[key]
            old = self.best.get("value")
            # An undefined value (NaN, inf) never beats a defined one, and any defined value beats it: a NaN
            # first validation would otherwise stay "best" for good (every comparison with NaN is false).
            defined, old_defined = math.isfinite(value), old is not None and math.isfinite(old)
            if old is None or not old_defined:
                is_best = old is None or defined
            else:
                is_best = defined and (value < old if lower_is_better else value > old)
            if is_best:
                self.best = {"metric": key, "value": value, "step": self.step}
            for k, v in metrics.items():
                self.writer.add_scalar(f"val/{k}", v, self.step)
            LOG.info("step %d validation: %s%s", self.step, " ".join(f"{k}={v:.4f}" for k, v in metrics.items()),
                     " (best so far)" if is_best else "")
        self.save(metrics, best=is_best or not metrics)
        return metrics

    def _ranks_in_sync(self) -> bool | None:
        """Do all ranks hold identical parameters? (DDP's promise; checked at the end.)"""
        if not self.ctx.enabled:
            return None
        flat = torch.cat([p.detach().double().flatten().cpu() for m in self.stage.networks.values()
                          for p in unwrap(m).parameters()])
        checksum = torch.tensor([flat.sum().item(), (flat * flat).sum().item()], dtype=torch.float64)
        gathered = [torch.zeros_like(checksum) for _ in range(self.ctx.world_size)]
        dist.all_gather(gathered, checksum.to(self.ctx.device) if self.ctx.device.type == "cuda" else checksum)
        return all(torch.equal(g.cpu(), gathered[0].cpu()) for g in gathered)


def check_training_set(samples: int, batch_samples: int, world_size: int) -> None:
    """DatasetError unless the training set gives every process at least one step's batches."""
    if samples // world_size < batch_samples:
        procs = f" on each of {world_size} processes" if world_size > 1 else ""
        raise DatasetError(f"the training set has {samples} samples: too few for one step of {batch_samples} "
                           f"samples{procs} (run.batch_size, times loss.n_critic where each critic update draws "
                           "a fresh batch); add data or lower run.batch_size")


class BudgetClock:
    """``run.max_minutes`` as a rule: take another step only while that step (at the recent mean
    step time) and the validation that ends the run (its last measured duration; before the
    first, an upper-bound estimate, and when that says stop the engine validates to measure)
    still fit, so the whole run stays inside the budget."""

    def __init__(self, seconds: float, started: float, clock=None) -> None:
        self.seconds, self.started, self.clock = seconds, started, clock or _clock
        self.step_times: list[float] = []

    @property
    def enabled(self) -> bool:
        return self.seconds > 0

    def add_step(self, seconds: float) -> None:
        self.step_times.append(seconds)

    @property
    def mean_step(self) -> float:
        """Mean of the last (up to) 50 step times, without the first (warm-up) step once there are others."""
        times = self.step_times[1:] if len(self.step_times) > 1 else self.step_times
        times = times[-50:]
        return sum(times) / len(times) if times else 0.0

    def estimate_validation(self, samples: int, batch: int) -> float:
        """Before the first validation: one training step per validation batch (a training step
        runs the generator forward and backward and the discriminator, validation only the
        generator forward, so this over-estimates)."""
        return -(-samples // max(batch, 1)) * self.mean_step

    def allows_step(self, reserve: float) -> bool:
        if not self.enabled:
            return True
        return self.clock() - self.started + self.mean_step + reserve <= self.seconds

    def steps_left(self, reserve: float) -> int:
        """Steps that still fit (for the progress bar's total and ETA)."""
        left = self.seconds - (self.clock() - self.started) - reserve
        return max(int(left // self.mean_step), 0) if self.mean_step > 0 else 0


def shared_run_dir(ctx: DistContext, run_dir: Path) -> Path:
    """Rank 0's run folder, on every rank. Rank 0 alone creates a default-named folder (and may get
    a ``-2`` suffix, or a later second than another rank's clock): the others take its name, so that
    every rank's messages (e.g. "--resume RUN") name the folder that holds the run."""
    if not ctx.enabled:
        return run_dir
    shared = [str(run_dir)]
    dist.broadcast_object_list(shared, src=0)
    return Path(shared[0])


def default_run_dir(stage: str, preset: str, create: bool = True) -> Path:
    """``runs/<stage>-<preset>-<UTC second>``, made unique: with ``create`` the folder is created
    (atomically: the first of two runs started in the same second gets the name, the second
    ``...-2``), so that two default-named runs never share a folder."""
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
    base = REPO_ROOT / "runs" / f"{stage}-{preset}-{stamp}"
    if not create:
        return base
    base.parent.mkdir(parents=True, exist_ok=True)
    for n in range(1, 1000):
        candidate = base if n == 1 else base.with_name(f"{base.name}-{n}")
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            continue
    raise FileExistsError(f"no free run folder name after {base} (999 taken)")


class RunFolderInUse(OSError):
    """Another live training process holds the run folder's lock."""


class RunLock:
    """An exclusive ``flock`` on ``<run>/.lock`` for as long as a run writes its folder: a second
    writer (another run with the same run.run_dir, or a --resume of a run still training) is
    refused before it writes anything. The kernel drops the lock when the process ends, so a
    killed run leaves no stale lock."""

    def __init__(self, run_dir: Path) -> None:
        import fcntl

        run_dir.mkdir(parents=True, exist_ok=True)
        self.path = run_dir / ".lock"
        self._file = open(self.path, "a+")
        try:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._file.seek(0)
            holder = self._file.read().strip() or "unknown"
            self._file.close()
            raise RunFolderInUse(f"{run_dir} is in use by another training process ({holder}; lock {self.path}): "
                                 "wait for it to finish, or use another run.run_dir") from None
        self._file.seek(0)
        self._file.truncate()
        self._file.write(f"pid {os.getpid()} on {os.uname().nodename}\n")
        self._file.flush()
        _HELD_LOCK_FDS.add(self._file.fileno())  # forked DataLoader workers close their copy

    def release(self) -> None:
        if not self._file.closed:
            _HELD_LOCK_FDS.discard(self._file.fileno())
            self._file.close()  # closing the descriptor releases the flock
