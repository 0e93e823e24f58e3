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
    networks          {name: {"spec": NetworkSpec.to_dict(), "state_dict": ...}}
    deploy            the network(s) inference runs, in order (e.g. ["depth"] or ["style"])
    step, epoch, config, metrics, git_revision, created
    + training state (optimizers, schedulers, image pools, RNG states) for --resume

Network names: ``depth`` (synthetic RGB -> depth), ``depth_discriminator``; ``style``
(real -> synthetic, the adapter used at inference), ``style_inverse`` (synthetic -> real),
``discriminator_real``, ``discriminator_synthetic``.
"""
from __future__ import annotations

import hashlib
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


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> None:
    """Write ``payload`` to ``path`` atomically: a killed writer never leaves a torn file."""
    with atomic_writer(path) as f:
        torch.save({"format": CHECKPOINT_FORMAT, **payload}, f)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # truncated, corrupt, or pickles non-tensor objects
        raise CheckpointError(f"cannot read checkpoint {path}: {exc.__class__.__name__}: {exc}") from exc
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise CheckpointError(f"{path} is not a depth_da_ros checkpoint (format {found!r}, expected {CHECKPOINT_FORMAT!r})")
    return payload


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
