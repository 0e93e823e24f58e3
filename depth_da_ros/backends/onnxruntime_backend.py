"""ONNX Runtime backend for exported models: CPU, and the CUDA / TensorRT execution providers
when this onnxruntime build lists them.

Provider choice: ``device="cpu"`` uses the CPU provider only; ``"auto"``, ``"cuda"`` and
``"cuda:N"`` use the best of TensorRT EP > CUDA EP > CPU that
``onnxruntime.get_available_providers()`` lists (``"cuda..."`` fails if CUDA EP is not listed).
ONNX Runtime falls back to the next provider when one cannot start (e.g. the TensorRT
libraries are missing), so the providers a session really uses are logged and described.
The precision is the model file's (export with ``--fp16`` for half precision); only the
TensorRT EP can also build fp16 kernels from an fp32 file (``precision="fp16"``).
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import onnxruntime as ort

from ..model_metadata import MetadataError, ModelMetadata, describe_precision
from .base import BACKENDS, Backend, BackendOptions, ModelLoadError, default_cache_dir

LOG = logging.getLogger(__name__)

TENSORRT_EP = "TensorrtExecutionProvider"
CUDA_EP = "CUDAExecutionProvider"
CPU_EP = "CPUExecutionProvider"


def default_threads() -> int:
    """The cores this process may run on (affinity-aware, unlike os.cpu_count)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@BACKENDS.register("onnxruntime")
class OnnxRuntimeBackend(Backend):
    name = "onnxruntime"

    @classmethod
    def unavailable_reason(cls, model_path: Path, options: BackendOptions) -> str | None:
        if model_path.suffix != ".onnx":
            return "the onnxruntime backend runs exported .onnx files; export the checkpoint with training/export.py"
        if options.device.startswith("cuda") and CUDA_EP not in ort.get_available_providers():
            return (f"device {options.device!r} requested but onnxruntime {ort.__version__} has no CUDA provider "
                    f"(available: {', '.join(ort.get_available_providers())}); install onnxruntime-gpu")
        return None

    def __init__(self, model_path: Path, options: BackendOptions) -> None:
        if not model_path.is_file():
            raise ModelLoadError(f"model {model_path} does not exist")
        providers = self._providers(options)
        session_options = ort.SessionOptions()
        session_options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        session_options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        # One chain of convolutions: parallelism is inside the ops, not between them.
        self.threads = options.threads or default_threads()
        session_options.intra_op_num_threads = self.threads
        session_options.inter_op_num_threads = 1
        # Idle worker threads sleep instead of spinning: in the node they share the cores with the
        # ROS executor and the camera driver, and spinning threads starve them (no cost alone:
        # 63 vs 62 ms for the lite pipeline on our 2-core CPU).
        session_options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        session_options.log_severity_level = 3  # errors only; we log what matters ourselves
        try:
            self.session = ort.InferenceSession(str(model_path), session_options, providers=providers)
        except Exception as exc:  # onnxruntime raises its own exception types, no common base
            raise ModelLoadError(f"onnxruntime cannot load {model_path}: {exc}") from None
        props = self.session.get_modelmeta().custom_metadata_map
        try:
            metadata = ModelMetadata.from_onnx_props(props, str(model_path))
        except MetadataError as exc:
            raise ModelLoadError(str(exc)) from None
        super().__init__(metadata)
        trt_fp16 = options.precision == "fp16" and TENSORRT_EP in self.session.get_providers()
        if options.precision not in (None, metadata.precision) and not trt_fp16:
            LOG.warning("precision %s requested, but onnxruntime runs the %s model as exported; "
                        "export with%s --fp16 instead", options.precision, metadata.precision,
                        "" if options.precision == "fp16" else "out")
        requested = [p if isinstance(p, str) else p[0] for p in providers]
        if self.session.get_providers()[0] != requested[0]:
            LOG.warning("onnxruntime could not start %s; running on %s", requested[0], self.session.get_providers())
        self._input_float = metadata.input_dtype == "float32"
        LOG.info("onnxruntime backend: %s", self.description)

    @staticmethod
    def _providers(options: BackendOptions) -> list[str | tuple[str, dict]]:
        if options.device == "cpu":
            return [CPU_EP]
        available = ort.get_available_providers()
        device_id = int(options.device.split(":")[1]) if ":" in options.device else 0
        providers: list[str | tuple[str, dict]] = []
        if TENSORRT_EP in available:
            cache = Path(options.cache_dir or default_cache_dir()) / "onnxruntime-trt"
            cache.mkdir(parents=True, exist_ok=True)
            providers.append((TENSORRT_EP, {
                "device_id": device_id,
                "trt_fp16_enable": options.precision == "fp16",
                "trt_engine_cache_enable": True,
                "trt_engine_cache_path": str(cache),
                "trt_timing_cache_enable": True,
                "trt_timing_cache_path": str(cache),
            }))
        if CUDA_EP in available:
            providers.append((CUDA_EP, {"device_id": device_id}))
        providers.append(CPU_EP)
        return providers

    @property
    def description(self) -> str:
        return (f"onnxruntime {ort.__version__} ({', '.join(self.session.get_providers())}), "
                f"{self.threads} intra-op threads, {describe_precision(self.metadata)} model")

    def _run(self, batch: np.ndarray, styled: bool) -> tuple[np.ndarray, np.ndarray | None]:
        image = batch.astype(np.float32) if self._input_float else batch
        # ONNX Runtime runs every node whatever is fetched (the styled branch, six elementwise ops,
        # took 0.5 ms at 192x640 on 2 CPU threads); a depth-only call saves the frame's copy out.
        names = [self.metadata.output_name, *([self.metadata.styled_output_name] if styled else [])]
        outputs = self.session.run(names, {self.metadata.input_name: image})
        return outputs[0], outputs[1] if styled else None
