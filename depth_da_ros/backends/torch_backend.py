"""PyTorch backend: runs checkpoints directly, through the same fused module export traces.

``model_path`` is a depth checkpoint (``.pt``); ``options.style_checkpoint`` adds the style
adapter (the module computes its adapted frame only when asked for it). CPU runs fp32. On
CUDA there is a fast path: ``precision="fp16"`` converts the weights to half precision
exactly as the fp16 export does (``to_half``), activations are channels_last (the NHWC input
is already laid out that way after the permute), cuDNN autotuning is on, and
``cuda_graphs=True`` captures the forward pass once per batch shape (and styled request) and
replays it, removing per-kernel launch overhead. None of it runs on CPU.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from ..checkpoint import CheckpointError
from ..export import InferenceModule, load_inference_module, to_half
from .base import BACKENDS, Backend, BackendOptions, ModelLoadError

LOG = logging.getLogger(__name__)
CUDA_GRAPH_WARMUP = 3  # eager runs on a side stream before capture, as torch.cuda.graphs asks
Outputs = torch.Tensor | tuple[torch.Tensor, torch.Tensor]  # the module's: depth, or (depth, styled)


def _resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


@BACKENDS.register("torch")
class TorchBackend(Backend):
    name = "torch"

    @classmethod
    def unavailable_reason(cls, model_path: Path, options: BackendOptions) -> str | None:
        if model_path.suffix == ".onnx":
            return "the torch backend runs checkpoints (.pt), not ONNX files; use onnxruntime or tensorrt"
        device = _resolve_device(options.device)
        if device.type == "cuda" and not torch.cuda.is_available():
            return f"device {options.device!r} requested but torch {torch.__version__} sees no CUDA device"
        if device.type == "cpu" and (options.precision == "fp16" or options.cuda_graphs):
            return "fp16 and CUDA graphs are CUDA-only fast paths; the torch backend runs fp32 on CPU"
        return None

    def __init__(self, model_path: Path, options: BackendOptions) -> None:
        try:
            module, metadata = load_inference_module(model_path, options.style_checkpoint)
        except (CheckpointError, ValueError, KeyError, RuntimeError) as exc:
            # Unreadable file, unknown network or spec, or weights that do not fit the spec.
            raise ModelLoadError(f"cannot load checkpoint {model_path}: {exc}") from None
        super().__init__(metadata)
        self.device = _resolve_device(options.device)
        self.precision = options.precision or "fp32"
        self.module: InferenceModule = module.to(self.device)
        self._graphs: dict[tuple[tuple[int, ...], bool], tuple[torch.cuda.CUDAGraph, torch.Tensor, Outputs]] = {}
        self._use_graphs = options.cuda_graphs
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # fixed input size: autotuned kernels pay off
            if self.precision == "fp16":
                to_half(self.module)
            self.module.to(memory_format=torch.channels_last)
        elif options.threads:
            torch.set_num_threads(options.threads)
        LOG.info("torch backend: %s", self.description)

    @property
    def description(self) -> str:
        where = str(self.device)
        if self.device.type == "cuda":
            where += f" ({torch.cuda.get_device_name(self.device)})"
        else:
            where += f", {torch.get_num_threads()} threads"
        graphs = ", CUDA graphs" if self._use_graphs else ""
        return f"torch {torch.__version__} on {where}, {self.precision}{graphs}"

    def _run(self, batch: np.ndarray, styled: bool) -> tuple[np.ndarray, np.ndarray | None]:
        image = torch.from_numpy(batch)
        with torch.no_grad():
            if self.device.type == "cpu":
                outputs = self.module(image, styled)
            elif not self._use_graphs:
                outputs = self.module(image.to(self.device, non_blocking=True), styled)
            else:
                graph, static_in, outputs = self._graph_for(tuple(batch.shape), styled)
                static_in.copy_(image, non_blocking=True)
                graph.replay()
        if not styled:
            return outputs.cpu().numpy(), None
        depth, frames = outputs
        # The module's uint8 frames are an NHWC view of NCHW memory; callers get plain arrays.
        return depth.cpu().numpy(), np.ascontiguousarray(frames.cpu().numpy())

    def _graph_for(self, shape: tuple[int, ...], styled: bool) -> tuple[torch.cuda.CUDAGraph, torch.Tensor, Outputs]:
        key = (shape, styled)
        if key not in self._graphs:
            static_in = torch.zeros(shape, dtype=torch.uint8, device=self.device)
            side = torch.cuda.Stream(self.device)
            side.wait_stream(torch.cuda.current_stream(self.device))
            with torch.cuda.stream(side):
                for _ in range(CUDA_GRAPH_WARMUP):
                    self.module(static_in, styled)
            torch.cuda.current_stream(self.device).wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                static_out = self.module(static_in, styled)
            self._graphs[key] = (graph, static_in, static_out)
            LOG.info("captured a CUDA graph for input shape %s%s", shape, " with the styled output" if styled else "")
        return self._graphs[key]
