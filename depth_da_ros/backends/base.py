"""The backend interface: a loaded model that maps uint8 RGB batches to depth in metres.

Every backend takes what a camera delivers at the network size, ``uint8`` [N, H, W, 3] RGB,
and returns ``float32`` metres [N, 1, H, W]; the model (export or checkpoint) does the
normalisation and de-normalisation itself, so no backend has its own copy of that contract.
A model with the style adapter (``metadata.outputs_styled``) also gives, on request, the
adapted frame the depth network saw: ``uint8`` RGB [N, H, W, 3].
"""
from __future__ import annotations

import logging
import os
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from ..model_metadata import PRECISIONS, ModelMetadata
from ..registry import Registry

LOG = logging.getLogger(__name__)


def default_cache_dir() -> Path:
    """Where built engines live between runs: $XDG_CACHE_HOME/depth_da_ros or ~/.cache/depth_da_ros."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "depth_da_ros"


class ModelLoadError(RuntimeError):
    """A model cannot be loaded: missing or corrupt file, no depth_da_ros metadata, or the
    requested backend/device/precision is unavailable here. The message says which and why."""


@dataclass(frozen=True)
class BackendOptions:
    """Options shared by the backends; each ignores what does not apply to it (documented there)."""

    device: str = "auto"  # "auto" | "cpu" | "cuda" | "cuda:N"
    precision: str | None = None  # "fp32" | "fp16"; None: as the model file (fp32 for checkpoints)
    threads: int | None = None  # CPU intra-op threads; None: the cores this process may use
    style_checkpoint: str | Path | None = None  # torch backend: style adapter next to a depth checkpoint
    cache_dir: str | Path | None = None  # TensorRT engines and timing cache; None: ~/.cache/depth_da_ros
    max_batch: int = 1  # TensorRT optimisation profile: largest batch the engine accepts
    cuda_graphs: bool = False  # torch backend on CUDA: replay the forward pass as a CUDA graph

    def __post_init__(self) -> None:
        if self.precision is not None and self.precision not in PRECISIONS:
            raise ModelLoadError(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if self.threads is not None and self.threads < 1:
            raise ModelLoadError(f"threads must be >= 1, got {self.threads}")
        if self.max_batch < 1:
            raise ModelLoadError(f"max_batch must be >= 1, got {self.max_batch}")
        if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", self.device):
            raise ModelLoadError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {self.device!r}")


class Backend(ABC):
    """A model ready to run. Construct through ``depth_da_ros.backends.load_backend``."""

    name: ClassVar[str]

    def __init__(self, metadata: ModelMetadata) -> None:
        if not metadata.outputs_depth:
            raise ModelLoadError(
                f"the model contains only the {'+'.join(metadata.networks)} network and outputs images, "
                "not depth; export it with a depth checkpoint"
            )
        self.metadata = metadata

    @classmethod
    @abstractmethod
    def unavailable_reason(cls, model_path: Path, options: BackendOptions) -> str | None:
        """Why this backend cannot run ``model_path`` here, or None when it can (cheap: no model load)."""

    @property
    @abstractmethod
    def description(self) -> str:
        """Backend, version, device / providers and precision, for logs and diagnostics."""

    @abstractmethod
    def _run(self, batch: np.ndarray, styled: bool) -> tuple[np.ndarray, np.ndarray | None]:
        """Inference on a validated, C-contiguous uint8 batch: depth, and the styled frames
        when ``styled`` (only asked of a model that outputs them), else None."""

    @property
    def input_size(self) -> tuple[int, int]:
        return self.metadata.input_size

    def infer(self, batch: np.ndarray, return_styled: bool = False) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """uint8 RGB [N, H, W, 3] at ``input_size`` -> float32 metres [N, 1, H, W].

        ``return_styled``: ``(depth, styled)``, styled the adapted frames, uint8 RGB
        [N, H, W, 3] (C-contiguous); ValueError when the model does not output them.
        """
        height, width = self.input_size
        if batch.dtype != np.uint8 or batch.ndim != 4 or batch.shape[1:] != (height, width, 3):
            raise ValueError(
                f"expected a uint8 batch of shape [N, {height}, {width}, 3], got {batch.dtype} {tuple(batch.shape)}"
            )
        if return_styled and not self.metadata.outputs_styled:
            why = ("its export predates the styled output; re-export it with training/export.py"
                   if self.metadata.with_style_adapter else "it has no style adapter")
            raise ValueError(f"the model does not output the adapted frame: {why}")
        depth, styled = self._run(np.ascontiguousarray(batch), return_styled)
        return (depth, styled) if return_styled else depth


BACKENDS: Registry[type[Backend]] = Registry("backend")
