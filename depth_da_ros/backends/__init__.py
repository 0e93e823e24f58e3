"""Inference backends: ``BACKENDS`` registry, ``load_backend`` and the ``auto`` choice.

``auto`` tries, in order, TensorRT (an ``.onnx`` model, the tensorrt package importable and a
CUDA device present), ONNX Runtime (an ``.onnx`` model, best execution provider), then torch
(a ``.pt`` checkpoint), and logs what it picked and why it skipped the others. A backend that
is available but fails to load the model (e.g. a TensorRT build failure) hands over to the
next; when none is left, the last ``ModelLoadError`` is raised.

The torch and TensorRT backends import torch (seconds to start): they are registered lazily
and imported only when ``auto`` cannot rule them out cheaply (``_quick_reason``: a checkpoint
is not for TensorRT, an ONNX file not for torch, no tensorrt package installed), so an ONNX
model runs with ONNX Runtime without importing torch.
"""
from __future__ import annotations

import importlib
import importlib.util
import logging
from pathlib import Path

from . import onnxruntime_backend  # noqa: F401  (registration; imports no torch)
from .base import BACKENDS, Backend, BackendOptions, ModelLoadError, default_cache_dir

__all__ = ["AUTO", "AUTO_ORDER", "BACKENDS", "Backend", "BackendOptions", "ModelLoadError",
           "default_cache_dir", "load_backend"]

LOG = logging.getLogger(__name__)

AUTO = "auto"
AUTO_ORDER = ("tensorrt", "onnxruntime", "torch")

BACKENDS.register_lazy("tensorrt", lambda: importlib.import_module(f"{__name__}.tensorrt_backend").TensorRTBackend)
BACKENDS.register_lazy("torch", lambda: importlib.import_module(f"{__name__}.torch_backend").TorchBackend)


def _quick_reason(name: str, model_path: Path) -> str | None:
    """Why ``auto`` skips backend ``name`` for ``model_path``, known without importing its module
    (the backend's own ``unavailable_reason`` gives the full answer); None: ask the backend."""
    onnx_file = model_path.suffix == ".onnx"
    if name == "torch" and onnx_file:
        return "the torch backend runs checkpoints (.pt), not ONNX files"
    if name == "tensorrt" and not onnx_file:
        return "the tensorrt backend builds engines from exported .onnx files"
    if name == "tensorrt" and importlib.util.find_spec("tensorrt") is None:
        return "the tensorrt Python package is not installed (pip install tensorrt-cu12 or tensorrt-cu13)"
    return None


def load_backend(model_path: str | Path, backend: str = AUTO, options: BackendOptions | None = None) -> Backend:
    """Load ``model_path`` (an exported ``.onnx`` or a depth checkpoint) with ``backend``.

    Raises ModelLoadError, with one message that says what is wrong, for a missing or
    corrupt file, a model without depth_da_ros metadata, an unknown backend name, or a
    backend that cannot run here.
    """
    model_path = Path(model_path)
    options = options or BackendOptions()
    if backend != AUTO and backend not in BACKENDS:
        raise ModelLoadError(f"unknown backend {backend!r}; known: {', '.join([AUTO, *BACKENDS.names()])}")
    if not model_path.is_file():
        raise ModelLoadError(f"model {model_path} does not exist")
    if backend != AUTO:
        cls = BACKENDS.get(backend)
        reason = cls.unavailable_reason(model_path, options)
        if reason:
            raise ModelLoadError(f"backend {backend!r} is not available: {reason}")
        return cls(model_path, options)

    candidates, skipped = [], []
    for name in AUTO_ORDER:
        reason = _quick_reason(name, model_path) or BACKENDS.get(name).unavailable_reason(model_path, options)
        if reason:
            skipped.append(f"{name}: {reason}")
        else:
            candidates.append(BACKENDS.get(name))
    if not candidates:
        raise ModelLoadError(f"no backend can run {model_path}:\n  " + "\n  ".join(skipped))
    for cls in candidates[:-1]:
        try:
            return _picked(cls(model_path, options), skipped)
        except ModelLoadError as exc:
            LOG.warning("auto: %s could not load %s (%s); trying the next backend", cls.name, model_path, exc)
            skipped.append(f"{cls.name}: {exc}")
    return _picked(candidates[-1](model_path, options), skipped)


def _picked(backend: Backend, skipped: list[str]) -> Backend:
    LOG.info("auto backend: picked %s (%s)%s", backend.name, backend.description,
             "".join(f"\n  skipped {s}" for s in skipped))
    return backend
