"""Self-describing checkpoints, written atomically and loaded with ``weights_only=True``.

A checkpoint is a plain dict of tensors and Python primitives (so the safe unpickler
reads it) that carries everything needed to rebuild and use its networks without the
config that produced it:

    format            CHECKPOINT_FORMAT
    stage             "depth" | "style"
    preset            preset name the run started from
    input_size        [height, width] the networks were trained at
    depth_codec       DepthCodec.to_dict() (max depth, encoding)
    training_camera   {"fx", "fy", "cx", "cy", "width", "height"} at input_size, when known
    deployment_camera style checkpoints: the real domain's camera (a rosbag's camera_info) at its own
                      resolution, same keys; absent (older checkpoints) or None when unknown
    networks          {name: {"spec": NetworkSpec.to_dict(), "state_dict": ...}}
    deploy            the network(s) inference runs, in order (e.g. ["depth"] or ["style"])
    step, epoch, config, metrics, git_revision, created
    + training state (optimizers, schedulers, image pools, RNG states) for --resume

Network names: ``depth`` (synthetic RGB -> depth), ``depth_discriminator``; ``style``
(real -> synthetic, the adapter used at inference), ``style_inverse`` (synthetic -> real),
``discriminator_real``, ``discriminator_synthetic``.
"""
from __future__ import annotations

import errno as _errno
import hashlib
import pickle
import re
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .atomic import atomic_writer
from .models.registry import NetworkSpec
from .normalization import DepthCodec

CHECKPOINT_FORMAT = "depth_da_ros/checkpoint-v1"


class CheckpointError(RuntimeError):
    """A checkpoint file is missing, unreadable, or not one of ours."""


class CheckpointWriteError(CheckpointError):
    """Writing a checkpoint failed (full disk, file-size limit, quota, permissions); the file it
    would have replaced is intact. ``errno`` is the operating system's error number, if known."""

    def __init__(self, message: str, errno: int | None = None) -> None:
        super().__init__(message)
        self.errno = errno


_WRITE_HINTS = {_errno.ENOSPC: "no space left on the device: free space or write elsewhere "
                               "(another run.run_dir, --out)",
                _errno.EFBIG: "file too large: the process's file-size limit (ulimit -f)",
                _errno.EDQUOT: "disk quota exceeded"}


def write_error_reason(exc: BaseException) -> tuple[str, int | None]:
    """The operating-system cause of a failed write, in words, and its errno: torch.save reports a
    failed write as RuntimeError('unexpected pos ...') with the OSError only as its context."""
    seen = exc
    while seen is not None and not isinstance(seen, OSError):
        seen = seen.__cause__ or seen.__context__
    if isinstance(seen, OSError) and seen.errno is not None:
        return _WRITE_HINTS.get(seen.errno, seen.strerror or str(seen)), seen.errno
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return first, None


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> None:
    """Write ``payload`` to ``path`` atomically: a killed writer never leaves a torn file. A failed
    write raises CheckpointWriteError naming the file and the cause."""
    path = Path(path)
    try:
        with atomic_writer(path) as f:
            torch.save({"format": CHECKPOINT_FORMAT, **payload}, f)
    except (OSError, RuntimeError) as exc:
        reason, number = write_error_reason(exc)
        kept = f"; the previous {path.name} is intact" if path.is_file() else ""
        raise CheckpointWriteError(f"cannot write checkpoint {path}: {reason}{kept}", number) from None


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint with ``weights_only=True``. A missing, truncated, corrupt or foreign file
    raises CheckpointError with one plain reason (never PyTorch's advice to load unsafely)."""
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"checkpoint {path} is a folder; pass a .pt file (a run folder's checkpoints are "
                              f"{path}/checkpoints/best.pt and last.pt; see resolve_checkpoint)")
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    if not zipfile.is_zipfile(path):  # torch.save has written zip archives since PyTorch 1.6
        raise CheckpointError(f"cannot read checkpoint {path}: not a PyTorch checkpoint archive "
                              f"({path.stat().st_size} bytes; truncated, corrupt, or another kind of file)")
    damaged = _damaged_member(path)
    if damaged:
        raise CheckpointError(f"cannot read checkpoint {path}: corrupt file ({damaged}); restore it from a copy "
                              "or use another checkpoint")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:  # weights_only refused an object: name it, give no unsafe advice
        found = re.search(r"WeightsUnpickler error:\s*(.+?)(?:\n\s*\n|\s*Check the documentation|$)", str(exc), re.S)
        reason = " ".join(found.group(1).split()).split(" Please ")[0] if found else "unsupported content"
        raise CheckpointError(f"cannot read checkpoint {path}: it holds more than tensors and plain values "
                              f"({reason}); depth_da_ros checkpoints are written by training/train.py and read "
                              "without running code from the file") from None
    except Exception as exc:  # truncated or corrupt archive
        first = str(exc).strip().split(". ")[0].splitlines()[0] if str(exc).strip() else ""
        raise CheckpointError(f"cannot read checkpoint {path}: corrupt or truncated file ({type(exc).__name__}"
                              f"{': ' + first if first else ''})") from None
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise CheckpointError(f"{path} is not a depth_da_ros checkpoint (format {found!r}, expected {CHECKPOINT_FORMAT!r})")
    return payload


def _damaged_member(path: Path) -> str | None:
    """Why the archive's content is damaged, or None when every member matches its CRC-32.

    ``torch.load`` does not check the CRC-32 that ``torch.save`` writes for each member, so
    bit-flipped tensor bytes in an intact archive would load as garbage weights; this reads
    every member once and compares (``zipfile.ZipFile.testzip``)."""
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return f"unreadable archive: {first}"
    return f"CRC-32 mismatch in member {bad}" if bad else None


def resolve_checkpoint(path: str | Path) -> Path:
    """A checkpoint file from a path that may name a run folder: ``<run>/checkpoints/best.pt``,
    else ``last.pt`` (also for the ``checkpoints`` folder itself); a file is returned as is.
    CheckpointError says what was expected when neither exists."""
    path = Path(path)
    if not path.is_dir():
        return path
    folders = [path / "checkpoints", path] if path.name != "checkpoints" else [path]
    for folder in folders:
        for name in ("best.pt", "last.pt"):
            if (folder / name).is_file():
                return folder / name
    raise CheckpointError(f"{path} is a folder without checkpoints/best.pt or checkpoints/last.pt; expected a "
                          "checkpoint file (.pt) or a training run folder (training/train.py writes "
                          "<run>/checkpoints/best.pt and last.pt)")


def network_entry(module: nn.Module, spec: NetworkSpec) -> dict[str, Any]:
    """The ``networks[name]`` record for ``module`` (unwrapping DDP / compiled wrappers)."""
    module = getattr(module, "module", module)
    module = getattr(module, "_orig_mod", module)
    return {"spec": spec.to_dict(), "state_dict": module.state_dict()}


def load_network(checkpoint: dict[str, Any], name: str) -> nn.Module:
    """Rebuild network ``name`` with its weights, in eval mode (the inference contract)."""
    networks = checkpoint.get("networks", {})
    if name not in networks:
        raise CheckpointError(f"checkpoint has no network {name!r}; it has: {', '.join(sorted(networks)) or 'none'}")
    entry = networks[name]
    module = NetworkSpec.from_dict(entry["spec"]).build()
    module.load_state_dict(entry["state_dict"])
    return module.eval()


def depth_codec(checkpoint: dict[str, Any]) -> DepthCodec:
    return DepthCodec(**checkpoint["depth_codec"])


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
