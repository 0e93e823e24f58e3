"""Colour maps for depth images (RViz ``depth/colorized``, picture strips, sample sheets)."""
from __future__ import annotations

import cv2
import numpy as np


def colorize_depth(depth: np.ndarray, min_depth: float = 1.0, max_depth: float = 80.0,
                   inverse: bool = True) -> np.ndarray:
    """float metres (H, W) -> RGB uint8 with the turbo map over a fixed metre range.

    A fixed range (not per-frame normalisation) keeps colours comparable across frames.
    ``inverse`` spreads the colours by 1/depth, which resolves near objects, as is usual for
    driving scenes. Invalid depth (NaN, inf, <= 0) is black.
    """
    if not 0 < min_depth < max_depth:
        raise ValueError(f"need 0 < min_depth < max_depth, got {min_depth}, {max_depth}")
    d = np.clip(np.nan_to_num(depth, nan=0.0, posinf=0.0), min_depth, max_depth)
    if inverse:
        unit = (1.0 / d - 1.0 / max_depth) / (1.0 / min_depth - 1.0 / max_depth)
    else:
        unit = (max_depth - d) / (max_depth - min_depth)
    bgr = cv2.applyColorMap((unit * 255.0).astype(np.uint8), cv2.COLORMAP_TURBO)
    bgr[~(np.isfinite(depth) & (depth > 0))] = 0
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
