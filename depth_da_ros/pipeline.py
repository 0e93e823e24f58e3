"""``DepthPipeline``: a camera frame of any size in, float32 metres at that size out.

    pipeline = DepthPipeline("model.onnx")            # backend="auto"
    depth = pipeline.predict(rgb)                      # (H, W) float32 metres, NaN = invalid
    depth, styled = pipeline.predict(rgb, return_styled=True)  # + the adapted frame (h, w, 3) uint8 RGB
    pipeline.last_timing                               # pre / infer / post / total, ms
    depth = pipeline.predict(rgb, aspect="pad", beyond_range=0.98)  # see below

Pre-processing (to the network size) and post-processing (back to the frame size) happen
here and nowhere else; normalisation and de-normalisation are inside the model. The frame is
RGB (convert a ROS ``bgr8`` image before calling). The model's metadata (input size, max
depth, training camera, ...) comes from ``depth_da_ros.model_metadata.ModelMetadata``, read from the
ONNX file or the checkpoints: ``read_model_metadata`` is the one reader.

The styled (adapted) frame is what the depth network saw after the style adapter, for
debugging; it stays at the network size (``input_size``), not resized back: a viewer scales
it for free, and a resize would add cost and interpolation to a debugging image. It exists
when ``metadata.outputs_styled``: a model with the style adapter (``with_style_adapter``),
from checkpoints or from an export that has the ``styled`` output.

Interpolation: a frame is shrunk with ``INTER_AREA`` (it averages the pixels each output
pixel covers, so no aliasing) and enlarged with ``INTER_LINEAR``. Depth is enlarged back with
``INTER_LINEAR``: the network's output is smooth, and nearest-neighbour would add blocky
steps at every upscaled pixel. Linear interpolation would also smear an invalid (NaN) pixel
into its neighbours, so when the depth has non-finite values, valid pixels are interpolated
from valid neighbours only, and where the nearest source pixel is not finite its value (NaN
or +Inf) is kept.

Aspect ratio (``aspect``, ``geometry.ASPECT_POLICIES``): the network runs at one size (e.g.
192x640, KITTI's aspect). ``stretch`` resizes the whole frame to it; ``crop`` feeds a centred
window of the network's aspect and gives NaN outside it; ``pad`` mirrors the frame out to the
network's aspect, so every pixel gets depth. ``geometry.network_window`` says which rectangle
of the frame the network saw; ``geometry.focal_scale`` needs it for metric rescaling.

REP 118 (``beyond_range``): the network's depth saturates at the model's max depth on the sky
and on anything farther than it learnt; with ``beyond_range`` = f, a prediction >= f x
max_depth is +Inf and a prediction <= 0 NaN, decided at the network's resolution (a frame
pixel whose nearest network pixel is beyond range is +Inf) and on the resized depth.
Without it (the default, for metrics) saturated values stay as predicted.

Degenerate frames: ``frame_contrast`` / ``is_low_contrast`` tell a frame without content (lens
cap, white-out); instance norm in the adapter would normalise its sensor noise into a scene.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .backends import AUTO, Backend, BackendOptions, load_backend
from .camera import PinholeCamera
from .confidence import DEFAULT_K, flip_batch, flip_consistency
from .geometry import NetworkWindow, mark_beyond_range, network_window
from .model_metadata import ModelMetadata, read_model_metadata

__all__ = ["DepthPipeline", "ModelMetadata", "StageTiming", "as_rgb", "frame_contrast", "is_low_contrast",
           "postprocess", "preprocess", "read_model_metadata"]

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class StageTiming:
    """Wall-clock milliseconds of the last ``predict``: each stage and the whole call."""

    pre_ms: float
    infer_ms: float
    post_ms: float
    total_ms: float


def as_rgb(image: np.ndarray) -> np.ndarray:
    """uint8 HxWx3 RGB from RGB, grayscale (HxW or HxWx1) or RGBA (HxWx4, alpha dropped)."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        kind = image.dtype if isinstance(image, np.ndarray) else type(image).__name__
        raise ValueError(f"expected a uint8 image, got {kind}")
    if image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 1):
        return cv2.cvtColor(image.reshape(image.shape[:2]), cv2.COLOR_GRAY2RGB)
    if image.ndim == 3 and image.shape[2] == 3:
        return image
    if image.ndim == 3 and image.shape[2] == 4:
        return image[:, :, :3]
    raise ValueError(
        f"expected an RGB image HxWx3 (or grayscale HxW / HxWx1, or RGBA HxWx4), got shape {image.shape}"
    )


# Every CONTRAST_STRIDE-th row and column is enough to tell a frame without content.
CONTRAST_STRIDE = 4


def frame_contrast(image: np.ndarray) -> float:
    """The largest per-channel standard deviation of a uint8 image (H, W) or (H, W, C), in grey
    levels, over every ``CONTRAST_STRIDE``-th row and column (a 1242x375 frame: about 1 ms). A
    black or white frame with sensor noise: about 1; a camera image of a scene: tens."""
    sample = np.asarray(image)[::CONTRAST_STRIDE, ::CONTRAST_STRIDE]
    if not sample.size:
        return 0.0
    # OpenCV's statistics take up to 4 channels at a time; population standard deviation, as NumPy's std.
    channels = sample.reshape(*sample.shape[:2], -1)
    return max(float(cv2.meanStdDev(np.ascontiguousarray(channels[..., c:c + 4]))[1].max())
               for c in range(0, channels.shape[2], 4))


def is_low_contrast(image: np.ndarray, threshold: float) -> bool:
    """True when ``frame_contrast(image) < threshold`` (grey levels): a degenerate frame (lens
    cap, white-out, blank) that holds no depth cue. ``threshold`` 0 turns the check off."""
    if threshold < 0:
        raise ValueError(f"contrast threshold must be >= 0, got {threshold}")
    return threshold > 0 and frame_contrast(image) < threshold


def preprocess(rgb: np.ndarray, size: tuple[int, int], window: NetworkWindow | None = None) -> np.ndarray:
    """uint8 HxWx3 RGB -> uint8 [1, h, w, 3] at the network ``size`` (h, w).

    ``window`` (``geometry.network_window``; default the whole frame): the rectangle of the
    frame that becomes the network input; outside the frame it is filled by mirroring the frame.
    """
    if window is not None and (window.x, window.y, window.width, window.height) != (0, 0, rgb.shape[1], rgb.shape[0]):
        rgb = _window_pixels(rgb, window)
    height, width = size
    if rgb.shape[:2] != (height, width):
        shrink = height <= rgb.shape[0] and width <= rgb.shape[1]
        rgb = cv2.resize(rgb, (width, height), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    return np.ascontiguousarray(rgb)[None]


def _window_pixels(rgb: np.ndarray, window: NetworkWindow) -> np.ndarray:
    """The frame's pixels under ``window``: a crop, mirrored (BORDER_REFLECT_101) past the frame's edges."""
    height, width = rgb.shape[:2]
    top, left = max(window.y, 0), max(window.x, 0)
    bottom, right = min(window.y + window.height, height), min(window.x + window.width, width)
    inside = rgb[top:bottom, left:right]
    pad = (top - window.y, window.y + window.height - bottom, left - window.x, window.x + window.width - right)
    if not any(pad):
        return inside
    if max(pad[0], pad[1]) >= inside.shape[0] or max(pad[2], pad[3]) >= inside.shape[1]:
        return cv2.copyMakeBorder(inside, *pad, cv2.BORDER_REPLICATE)  # too wide a margin to mirror
    return cv2.copyMakeBorder(inside, *pad, cv2.BORDER_REFLECT_101)


def postprocess(depth: np.ndarray, size: tuple[int, int], window: NetworkWindow | None = None) -> np.ndarray:
    """float32 (h, w) metres -> (H, W) at the frame ``size``, keeping NaN and +Inf local (see
    the module doc). ``window``: where the network input lay in the frame (default the whole
    frame); frame pixels outside it are NaN (no estimate), depth outside the frame is dropped."""
    height, width = size
    if window is None or (window.x, window.y, window.width, window.height) == (0, 0, width, height):
        return _resize_depth(depth, (height, width))
    resized = _resize_depth(depth, (window.height, window.width))
    out = np.full((height, width), np.nan, np.float32)
    top, left = max(window.y, 0), max(window.x, 0)
    bottom, right = min(window.y + window.height, height), min(window.x + window.width, width)
    out[top:bottom, left:right] = resized[top - window.y:bottom - window.y, left - window.x:right - window.x]
    return out


def _resize_mask(mask: np.ndarray, size: tuple[int, int], window: NetworkWindow) -> np.ndarray:
    """Boolean (h, w) at the network size -> (H, W) at the frame ``size`` by nearest neighbour,
    placed like ``postprocess`` places depth (False outside the window)."""
    height, width = size
    resized = cv2.resize(mask.astype(np.uint8), (window.width, window.height), interpolation=cv2.INTER_NEAREST) > 0
    if (window.x, window.y, window.width, window.height) == (0, 0, width, height):
        return resized
    out = np.zeros((height, width), bool)
    top, left = max(window.y, 0), max(window.x, 0)
    bottom, right = min(window.y + window.height, height), min(window.x + window.width, width)
    out[top:bottom, left:right] = resized[top - window.y:bottom - window.y, left - window.x:right - window.x]
    return out


def _resize_depth(depth: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    height, width = size
    if depth.shape == (height, width):
        return depth.astype(np.float32, copy=False)
    valid = np.isfinite(depth)
    if valid.all():
        return cv2.resize(depth, (width, height), interpolation=cv2.INTER_LINEAR)
    # Normalised interpolation: average valid neighbours only, weights from the valid mask.
    weights = valid.astype(np.float32)
    summed = cv2.resize(np.where(valid, depth, 0.0).astype(np.float32), (width, height),
                        interpolation=cv2.INTER_LINEAR)
    weight = cv2.resize(weights, (width, height), interpolation=cv2.INTER_LINEAR)
    nearest = cv2.resize(depth.astype(np.float32, copy=False), (width, height), interpolation=cv2.INTER_NEAREST)
    keep = np.isfinite(nearest) & (weight > 0)
    # Divide only where kept, into the nearest-neighbour values (no temporary, no 0/0).
    return np.divide(summed, weight, out=nearest, where=keep)


class DepthPipeline:
    """Load a model with a backend, then ``predict(rgb)`` -> metres at the frame's resolution.

    ``model_path``: an exported ``.onnx`` (onnxruntime, tensorrt) or a depth checkpoint
    ``.pt`` (torch; ``style_checkpoint`` adds the adapter). ``backend``: "auto", "onnxruntime",
    "tensorrt" or "torch". The remaining keywords are ``BackendOptions``. Raises
    ``ModelLoadError`` when the model or the backend cannot be loaded.
    """

    def __init__(
        self,
        model_path: str | Path,
        backend: str = AUTO,
        *,
        device: str = "auto",
        precision: str | None = None,
        threads: int | None = None,
        style_checkpoint: str | Path | None = None,
        cache_dir: str | Path | None = None,
        cuda_graphs: bool = False,
    ) -> None:
        options = BackendOptions(device=device, precision=precision, threads=threads,
                                 style_checkpoint=style_checkpoint, cache_dir=cache_dir, cuda_graphs=cuda_graphs)
        self.backend: Backend = load_backend(model_path, backend, options)
        self.last_timing: StageTiming | None = None

    @property
    def metadata(self) -> ModelMetadata:
        return self.backend.metadata

    @property
    def input_size(self) -> tuple[int, int]:
        """(height, width) the network runs at."""
        return self.backend.input_size

    @property
    def max_depth(self) -> float:
        return self.metadata.max_depth

    @property
    def training_camera(self) -> PinholeCamera | None:
        """Intrinsics of the training images at ``input_size``, when the checkpoint recorded them."""
        return self.metadata.training_camera

    @property
    def description(self) -> str:
        return self.backend.description

    def window(self, frame_size: tuple[int, int], aspect: str = "stretch") -> NetworkWindow:
        """The rectangle of a (height, width) frame that the network sees under ``aspect``."""
        return network_window(frame_size, self.input_size, aspect)

    def predict(self, image: np.ndarray, return_styled: bool = False, *, aspect: str = "stretch",
                beyond_range: float | None = None) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """uint8 RGB (or grayscale / RGBA) HxW[xC] -> float32 (H, W) depth in metres.

        ``return_styled``: ``(depth, styled)``, styled the adapted frame as uint8 (h, w, 3) RGB
        at ``input_size`` (see the module doc); ValueError when the model does not output it
        (``metadata.outputs_styled`` is false). Its fetch counts in ``infer_ms``.
        ``aspect``: "stretch", "crop" or "pad" (module doc; NaN where the frame got no
        estimate). ``beyond_range``: None, or the fraction of max depth from which a prediction
        is +Inf (REP 118; predictions <= 0 become NaN).
        """
        out, _, styled = self._predict(image, return_styled, aspect, beyond_range, None)
        return (out, styled) if return_styled else out

    def predict_with_confidence(self, image: np.ndarray, k: float = DEFAULT_K, return_styled: bool = False, *,
                                aspect: str = "stretch", beyond_range: float | None = None
                                ) -> tuple[np.ndarray, np.ndarray] | tuple[np.ndarray, np.ndarray, np.ndarray]:
        """As ``predict``, plus a float32 (H, W) confidence in [0, 1] by flip consistency
        (``depth_da_ros.confidence``): the frame and its mirror run as one batch of 2. Returns
        ``(depth, confidence)`` or ``(depth, confidence, styled)``; confidence is 0 where depth
        is NaN. The depth is the frame's own prediction, as ``predict`` gives it."""
        out, confidence, styled = self._predict(image, return_styled, aspect, beyond_range, k)
        return (out, confidence, styled) if return_styled else (out, confidence)

    def _predict(self, image: np.ndarray, return_styled: bool, aspect: str, beyond_range: float | None,
                 confidence_k: float | None) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        t0 = time.perf_counter()
        rgb = as_rgb(image)
        window = self.window(rgb.shape[:2], aspect)
        batch = preprocess(rgb, self.input_size, window)
        if confidence_k is not None:
            batch = flip_batch(batch)
        t1 = time.perf_counter()
        outputs = self.backend.infer(batch, return_styled)
        depth, styled = outputs if return_styled else (outputs, None)
        t2 = time.perf_counter()
        net_depth = depth[0, 0]
        # Before beyond-range marking (which may write into net_depth through out at the network size).
        net_confidence = None if confidence_k is None else flip_consistency(net_depth, depth[1, 0], confidence_k)
        out = postprocess(net_depth, rgb.shape[:2], window)
        if beyond_range is not None:
            # Marked after resizing the (finite) prediction, which keeps postprocess on its fast
            # path: a frame pixel is +Inf where its nearest network pixel is beyond range (a mask
            # resized nearest-neighbour) or where it is itself; NaN likewise for <= 0.
            marked = mark_beyond_range(np.array(net_depth, np.float32), self.max_depth, beyond_range)
            for value in (np.inf, np.nan):
                source = np.isposinf(marked) if value == np.inf else np.isnan(marked) & ~np.isnan(net_depth)
                if source.any():
                    np.copyto(out, np.float32(value), where=_resize_mask(source, rgb.shape[:2], window))
            mark_beyond_range(out, self.max_depth, beyond_range)
        confidence = None
        if net_confidence is not None:
            confidence = np.nan_to_num(postprocess(net_confidence, rgb.shape[:2], window), nan=0.0)
            confidence[np.isnan(out)] = 0.0
        t3 = time.perf_counter()
        self.last_timing = StageTiming(pre_ms=(t1 - t0) * 1e3, infer_ms=(t2 - t1) * 1e3,
                                       post_ms=(t3 - t2) * 1e3, total_ms=(t3 - t0) * 1e3)
        return out, confidence, (styled[0] if return_styled else None)
