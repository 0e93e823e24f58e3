"""Native TensorRT backend (TensorRT 10+ tensor-name API); engines are built from the export.

Engines are specific to the TensorRT version and the GPU, so each built engine is cached
under a key of ONNX sha256 + TensorRT version + GPU name + compute capability + precision +
input shapes (``<cache_dir>/tensorrt/<model>-<key digest>.engine`` with a ``.json`` sidecar
holding the key and the engine's sha256). An entry whose sidecar is missing, does not match
the key, whose bytes fail the checksum, or that TensorRT cannot deserialize is rebuilt, never
trusted. The builder's timing cache persists next to the engines and speeds up rebuilds.

Precision: an fp16 export (``training/export.py --fp16``) is built *strongly typed*, so
TensorRT runs exactly the graph's types (the form TensorRT 11 requires). An fp32 export is
built strongly typed in fp32 with TF32 off (so it matches ONNX Runtime's fp32), or, with
``precision="fp16"``, weakly typed with the FP16 builder flag; TensorRT 11 removed that flag,
and there the fp16 export is the way to half precision.

Execution: one execution context, device buffers are torch CUDA tensors (no pycuda), input
shapes are set per call (the batch dimension is dynamic up to ``max_batch``), and inference
is enqueued with ``execute_async_v3`` on a dedicated CUDA stream. An engine always computes
every output, so a model's ``styled`` output has its own bound buffer; it is copied to the host
only when asked for.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch

from ..atomic import atomic_write_bytes
from ..model_metadata import MetadataError, ModelMetadata
from .base import BACKENDS, Backend, BackendOptions, ModelLoadError, default_cache_dir

LOG = logging.getLogger(__name__)

ENGINE_CACHE_FORMAT = 1  # bump when the cache layout or the build recipe changes
WORKSPACE_BYTES = 1 << 30

_LOGGER: Any = None  # TensorRT wants one logger per process, alive as long as its objects


def _trt_logger(trt: Any) -> Any:
    global _LOGGER
    if _LOGGER is None:
        levels = {
            trt.ILogger.Severity.INTERNAL_ERROR: logging.CRITICAL,
            trt.ILogger.Severity.ERROR: logging.ERROR,
            trt.ILogger.Severity.WARNING: logging.WARNING,
            trt.ILogger.Severity.INFO: logging.DEBUG,  # build progress; too chatty for INFO
            trt.ILogger.Severity.VERBOSE: logging.DEBUG,
        }

        class _Logger(trt.ILogger):
            def __init__(self) -> None:
                trt.ILogger.__init__(self)

            def log(self, severity: Any, msg: str) -> None:
                LOG.log(levels.get(severity, logging.DEBUG), "TensorRT: %s", msg)

        _LOGGER = _Logger()
    return _LOGGER



def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@BACKENDS.register("tensorrt")
class TensorRTBackend(Backend):
    name = "tensorrt"

    @classmethod
    def unavailable_reason(cls, model_path: Path, options: BackendOptions) -> str | None:
        if model_path.suffix != ".onnx":
            return "the tensorrt backend builds engines from exported .onnx files; export the checkpoint first"
        if options.device == "cpu":
            return "TensorRT needs a CUDA GPU and device 'cpu' was requested"
        if importlib.util.find_spec("tensorrt") is None:
            return "the tensorrt Python package is not installed (pip install tensorrt-cu12 or tensorrt-cu13)"
        if not torch.cuda.is_available():
            return "no CUDA device is visible to torch, which provides the TensorRT buffers and stream"
        return None

    def __init__(self, model_path: Path, options: BackendOptions) -> None:
        try:
            import tensorrt as trt
        except (ImportError, OSError) as exc:  # OSError: the wheel is there, its libraries are not
            raise ModelLoadError(f"cannot import tensorrt: {exc}") from None
        self._trt = trt
        if not model_path.is_file():
            raise ModelLoadError(f"model {model_path} does not exist")
        onnx_bytes = model_path.read_bytes()
        try:
            props = {p.key: p.value for p in onnx.load_from_string(onnx_bytes).metadata_props}
            metadata = ModelMetadata.from_onnx_props(props, str(model_path))
        except MetadataError as exc:
            raise ModelLoadError(str(exc)) from None
        except Exception as exc:  # protobuf decode errors have no common base class
            raise ModelLoadError(f"cannot read ONNX model {model_path}: {exc.__class__.__name__}: {exc}") from None
        super().__init__(metadata)

        self.device = torch.device("cuda" if options.device == "auto" else options.device)
        self.precision = options.precision or metadata.precision
        if metadata.precision == "fp16" and self.precision == "fp32":
            raise ModelLoadError(f"{model_path} is an fp16 export; export without --fp16 for an fp32 engine")
        # Weak typing only where the FP16 builder flag must choose the precision.
        self.strongly_typed = not (self.precision == "fp16" and metadata.precision == "fp32")
        if not self.strongly_typed and not hasattr(trt.BuilderFlag, "FP16"):
            raise ModelLoadError(
                f"TensorRT {trt.__version__} builds strongly typed networks only (no FP16 builder flag); "
                "export a half-precision model with training/export.py --fp16"
            )
        self.max_batch = options.max_batch
        height, width = metadata.input_size
        sample = (height, width, 3)
        self._shapes = {"min": (1, *sample), "opt": (1, *sample), "max": (self.max_batch, *sample)}
        cache_dir = Path(options.cache_dir or default_cache_dir()) / "tensorrt"
        cache_dir.mkdir(parents=True, exist_ok=True)
        with torch.cuda.device(self.device):
            major, minor = torch.cuda.get_device_capability(self.device)
            self.gpu = torch.cuda.get_device_name(self.device)
            key = {
                "format": ENGINE_CACHE_FORMAT,
                "onnx_sha256": _sha256(onnx_bytes),
                "tensorrt": trt.__version__,
                "gpu": self.gpu,
                "compute_capability": f"{major}.{minor}",
                "precision": self.precision,
                "strongly_typed": self.strongly_typed,
                "input_shapes": {k: list(v) for k, v in self._shapes.items()},
            }
            digest = _sha256(json.dumps(key, sort_keys=True).encode())[:16]
            self.engine_path = cache_dir / f"{model_path.stem}-{digest}.engine"
            timing_path = cache_dir / f"timing-trt{trt.__version__}-sm{major}{minor}.cache"
            self._runtime = trt.Runtime(_trt_logger(trt))
            self._engine = self._load_cached(key)
            if self._engine is None:
                engine_bytes = self._build(onnx_bytes, model_path, timing_path)
                self._engine = self._runtime.deserialize_cuda_engine(engine_bytes)
                if self._engine is None:
                    raise ModelLoadError(f"TensorRT built an engine for {model_path} but cannot deserialize it")
                atomic_write_bytes(self.engine_path, engine_bytes)
                sidecar = {"key": key, "engine_sha256": _sha256(engine_bytes)}
                atomic_write_bytes(self.engine_path.with_suffix(".json"), json.dumps(sidecar, indent=2).encode())
                LOG.info("cached TensorRT engine %s", self.engine_path)
            self._setup_execution(model_path)
        LOG.info("tensorrt backend: %s", self.description)

    def _load_cached(self, key: dict[str, Any]) -> Any:
        sidecar_path = self.engine_path.with_suffix(".json")
        if not self.engine_path.is_file():
            return None
        try:
            sidecar = json.loads(sidecar_path.read_text())
            engine_bytes = self.engine_path.read_bytes()
            valid = sidecar["key"] == key and sidecar["engine_sha256"] == _sha256(engine_bytes)
        except (OSError, ValueError, KeyError, TypeError):
            valid = False
        engine = self._runtime.deserialize_cuda_engine(engine_bytes) if valid else None
        if engine is None:
            LOG.warning("TensorRT engine cache entry %s is stale or corrupt; rebuilding it", self.engine_path)
            return None
        LOG.info("loaded cached TensorRT engine %s", self.engine_path)
        return engine

    def _build(self, onnx_bytes: bytes, model_path: Path, timing_path: Path) -> bytes:
        trt = self._trt
        logger = _trt_logger(trt)
        LOG.info("building a TensorRT %s engine for %s (minutes on first use; cached afterwards)",
                 self.precision, model_path.name)
        builder = trt.Builder(logger)
        flags = 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED) if self.strongly_typed else 0
        network = builder.create_network(flags)
        parser = trt.OnnxParser(network, logger)
        if not parser.parse(onnx_bytes):
            errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
            raise ModelLoadError(f"TensorRT cannot parse {model_path}: {errors}")
        config = builder.create_builder_config()
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, WORKSPACE_BYTES)
        if not self.strongly_typed:
            config.set_flag(trt.BuilderFlag.FP16)
        if self.precision == "fp32" and hasattr(trt.BuilderFlag, "TF32"):
            config.clear_flag(trt.BuilderFlag.TF32)  # fp32 means fp32: match ONNX Runtime
        timing_cache = self._timing_cache(config, timing_path)
        profile = builder.create_optimization_profile()
        profile.set_shape(self.metadata.input_name, *self._shapes.values())
        config.add_optimization_profile(profile)
        serialized = builder.build_serialized_network(network, config)
        if serialized is None:
            raise ModelLoadError(f"TensorRT failed to build an engine for {model_path} (see the TensorRT log)")
        atomic_write_bytes(timing_path, bytes(timing_cache.serialize()))
        return bytes(serialized)

    def _timing_cache(self, config: Any, path: Path) -> Any:
        """Attach the persisted timing cache, or a fresh one when it is absent or unusable."""
        try:
            cache = config.create_timing_cache(path.read_bytes()) if path.is_file() else None
            if cache is not None and config.set_timing_cache(cache, ignore_mismatch=False):
                return cache
        except (OSError, RuntimeError, TypeError) as exc:
            LOG.warning("ignoring TensorRT timing cache %s: %s", path, exc)
        cache = config.create_timing_cache(b"")
        config.set_timing_cache(cache, ignore_mismatch=False)
        return cache

    def _setup_execution(self, model_path: Path) -> None:
        trt = self._trt
        engine = self._engine
        metadata = self.metadata
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        outputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
        expected = [metadata.output_name, *([metadata.styled_output_name] if metadata.outputs_styled else [])]
        if inputs != [metadata.input_name] or sorted(outputs) != sorted(expected):  # bound by name: any order
            raise ModelLoadError(
                f"engine for {model_path} has inputs {inputs} and outputs {outputs}; "
                f"expected [{metadata.input_name!r}] and {expected}"
            )
        dtypes = {trt.float32: torch.float32, trt.float16: torch.float16, trt.uint8: torch.uint8}
        height, width = metadata.input_size
        shapes = {metadata.input_name: self._shapes["max"], metadata.output_name: (self.max_batch, 1, height, width)}
        if metadata.outputs_styled:
            shapes[metadata.styled_output_name] = (self.max_batch, height, width, 3)
        self._context = engine.create_execution_context()
        # The buffers never move, so their addresses are bound once.
        self._buffers: dict[str, torch.Tensor] = {}
        for name in inputs + outputs:
            self._buffers[name] = torch.empty(shapes[name], dtype=dtypes[engine.get_tensor_dtype(name)],
                                              device=self.device)
            self._context.set_tensor_address(name, self._buffers[name].data_ptr())
        self._stream = torch.cuda.Stream(self.device)

    @property
    def description(self) -> str:
        typing = "strongly typed" if self.strongly_typed else "FP16 builder flag"
        return (f"TensorRT {self._trt.__version__} on {self.device} ({self.gpu}), {self.precision} "
                f"({typing}), batch <= {self.max_batch}, engine {self.engine_path.name}")

    def _run(self, batch: np.ndarray, styled: bool) -> tuple[np.ndarray, np.ndarray | None]:
        metadata = self.metadata
        height, width = metadata.input_size
        depth = np.empty((len(batch), 1, height, width), dtype=np.float32)
        frames = np.empty((len(batch), height, width, 3), dtype=np.uint8) if styled else None
        with torch.cuda.device(self.device), torch.cuda.stream(self._stream):
            for start in range(0, len(batch), self.max_batch):
                chunk = torch.from_numpy(batch[start:start + self.max_batch])
                n = len(chunk)
                self._buffers[metadata.input_name][:n].copy_(chunk)  # casts to the engine's input dtype if float
                if not self._context.set_input_shape(metadata.input_name, tuple(chunk.shape)):
                    raise RuntimeError(f"TensorRT rejected input shape {tuple(chunk.shape)}")
                if not self._context.execute_async_v3(self._stream.cuda_stream):
                    raise RuntimeError("TensorRT execute_async_v3 failed (see the TensorRT log)")
                # Enqueued on the same stream after the engine; .cpu() waits for it.
                depth[start:start + n] = self._buffers[metadata.output_name][:n].float().cpu().numpy()
                if frames is not None:
                    frames[start:start + n] = self._buffers[metadata.styled_output_name][:n].cpu().numpy()
        return depth, frames
