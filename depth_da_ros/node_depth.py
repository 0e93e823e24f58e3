"""One frame's depth as ``depth_da_node`` publishes it, without ROS: from the (rectified) RGB
frame and its calibration to REP 118 metres at the camera's resolution.

1. A degenerate frame (contrast below ``min_contrast``: lens cap, white-out, blank frame) is
   all NaN ("no estimate") without running the network: there is nothing to estimate depth
   from, and the style adapter's instance norm would turn its sensor noise into a scene.
2. Otherwise the pipeline predicts (saturated predictions +Inf, none <= 0 survives), with a
   flip-consistency confidence (depth_da_ros.confidence; about twice the inference) when
   ``confidence_threshold`` > 0 or someone subscribes to it, and the adapted frame when someone
   subscribes to that.
3. Depth below ``confidence_threshold`` is masked (NaN); a degenerate frame's confidence is 0.
4. Metric scale for this camera (``scale_mode``, depth_da_ros.geometry.scale_depth).
5. With ``ground_camera_height`` > 0 and a calibration, the ground-plane constraint
   (depth_da_ros.ground), skipped on a frame whose predicted road disagrees with the height
   (``ground_height_check``).
6. Temporal smoothing per camera (``temporal_smoothing``, depth_da_ros.temporal).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .confidence import mask_unconfident
from .geometry import Intrinsics, scale_depth
from .ground import constrain_if_plausible, ground_plane_depth
from .node_parameters import NodeSettings
from .pipeline import DepthPipeline, frame_contrast
from .temporal import TemporalSmoother


@dataclass(frozen=True)
class FrameDepth:
    """A frame's outputs before publishing: depth (float32 metres, REP 118), confidence (float32
    in [0, 1], None when not wanted), the adapted frame (None when not wanted or degenerate),
    the inference time (s; 0 when the network did not run), ``degenerate_contrast`` (the
    frame's contrast in grey levels when it was degenerate, else None) and ``implausible_road``
    (the frame's ``road_ratio`` when it made the ground constraint skip the frame, else None)."""

    depth: np.ndarray
    confidence: np.ndarray | None
    styled: np.ndarray | None
    inference_s: float
    degenerate_contrast: float | None
    implausible_road: float | None = None


class DepthEstimator:
    """The steps of the module docstring for one stream (the temporal filter keeps its state)."""

    def __init__(self, pipeline: DepthPipeline) -> None:
        self._pipeline = pipeline
        self._smoother = TemporalSmoother()

    def estimate(self, rgb: np.ndarray, camera: Intrinsics | None, frame_id: str, stamp_ns: int,
                 settings: NodeSettings, *, wants_confidence: Callable[[], bool],
                 wants_styled: Callable[[], bool]) -> FrameDepth:
        """``wants_confidence`` / ``wants_styled``: someone subscribes to the confidence / the
        adapted frame (asked when needed)."""
        pipeline = self._pipeline
        height, width = rgb.shape[:2]
        confidence = degenerate = None
        contrast = frame_contrast(rgb) if settings.min_contrast > 0 else math.inf
        if contrast < settings.min_contrast:  # is_low_contrast, computed once for the message too
            degenerate = contrast
            depth, styled, inference_s = np.full((height, width), np.nan, np.float32), None, 0.0
        else:
            want_styled = wants_styled()
            if settings.confidence_threshold > 0 or wants_confidence():
                result = pipeline.predict_with_confidence(
                    rgb, settings.confidence_k, want_styled, aspect=settings.aspect_policy,
                    beyond_range=settings.beyond_range_fraction)
                depth, confidence, styled = result if want_styled else (*result, None)
            elif want_styled:
                depth, styled = pipeline.predict(rgb, return_styled=True, aspect=settings.aspect_policy,
                                                 beyond_range=settings.beyond_range_fraction)
            else:
                depth, styled = pipeline.predict(rgb, aspect=settings.aspect_policy,
                                                 beyond_range=settings.beyond_range_fraction), None
            inference_s = pipeline.last_timing.total_ms * 1e-3
        if confidence is None and wants_confidence():
            confidence = np.zeros(depth.shape, np.float32)  # a degenerate frame: no estimate anywhere
        if confidence is not None:
            depth = mask_unconfident(depth, confidence, settings.confidence_threshold)
        window = pipeline.window((height, width), settings.aspect_policy)
        depth, factor = scale_depth(depth, settings.scale_mode, camera, pipeline.training_camera, window)
        implausible = None
        if settings.ground_camera_height > 0 and camera is not None:
            ground = ground_plane_depth(camera, settings.ground_camera_height, settings.ground_camera_pitch)
            depth, implausible = constrain_if_plausible(depth, ground, settings.ground_tolerance,
                                                        pipeline.max_depth * factor, settings.ground_height_check)
        depth = self._smoother.apply(depth, (frame_id, depth.shape), stamp_ns, settings.temporal_smoothing,
                                     settings.temporal_reset)
        return FrameDepth(depth, confidence, styled, inference_s, degenerate, implausible)
