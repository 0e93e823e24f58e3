"""Per-pixel depth confidence by flip consistency, and sparsification curves to judge it (pure NumPy).

The network runs on the frame and its mirror image as one batch of 2 (no retraining; exported
models unchanged: every backend takes a batch). A network that has learnt the scene's
geometry predicts the same depth for a pixel in both; where the two disagree, one of them is
wrong. With d the frame's prediction and d' the mirror's prediction flipped back,

    confidence = exp(-|d - d'| / (k * d))        in [0, 1]

1 where both agree; exp(-1) = 0.37 where they differ by k x d (k = ``DEFAULT_K`` = 0.1: 10%);
0 where either is missing. Where both are +Inf (beyond range: both see sky) the confidence is
1; where only one is, 0. The depth itself stays the frame's own prediction d.

Judging (``sparsification``): remove pixels in order of increasing confidence and watch the
mean error of the rest fall; the oracle removes them in order of decreasing true error. AUSE,
the area between the two curves, is 0 for a perfect ranking; a random ranking keeps the error
flat (its area above the oracle is AURG's reference, ``random_gap``).
"""
from __future__ import annotations

import numpy as np

DEFAULT_K = 0.1
FRACTIONS = np.linspace(0.0, 0.99, 100)  # removed fractions on the curves


def flip_batch(batch: np.ndarray) -> np.ndarray:
    """A [1, h, w, 3] network batch -> [2, h, w, 3]: the frame and its left-right mirror."""
    if batch.ndim != 4 or batch.shape[0] != 1:
        raise ValueError(f"expected a batch of one frame [1, h, w, C], got shape {batch.shape}")
    return np.ascontiguousarray(np.concatenate([batch, batch[:, :, ::-1]], axis=0))


def flip_consistency(depth: np.ndarray, depth_of_mirror: np.ndarray, k: float = DEFAULT_K) -> np.ndarray:
    """float32 confidence in [0, 1] of ``depth`` (h, w) from ``depth_of_mirror``, the network's
    depth for the mirrored frame (in the mirror's own pixel order: it is flipped back here)."""
    if k <= 0:
        raise ValueError(f"k must be positive, got {k}")
    if depth.shape != depth_of_mirror.shape:
        raise ValueError(f"shapes differ: {depth.shape} vs {depth_of_mirror.shape}")
    d = np.asarray(depth, np.float64)
    back = np.asarray(depth_of_mirror, np.float64)[:, ::-1]
    both = np.isfinite(d) & np.isfinite(back) & (d > 0) & (back > 0)
    out = np.zeros(d.shape, np.float32)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        out[both] = np.exp(-np.abs(d[both] - back[both]) / (k * d[both]))
    out[np.isposinf(d) & np.isposinf(back)] = 1.0
    return out


def abs_rel_errors(pred: np.ndarray, gt: np.ndarray, min_depth: float = 1e-3,
                   max_depth: float = 80.0) -> tuple[np.ndarray, np.ndarray]:
    """(per-pixel |pred - gt| / gt, mask of the pixels it covers): gt in (min_depth, max_depth],
    pred finite and positive."""
    mask = np.isfinite(gt) & (gt > min_depth) & (gt <= max_depth) & np.isfinite(pred) & (pred > 0)
    return np.abs(pred[mask] - gt[mask]) / gt[mask], mask


def sparsification_curve(errors: np.ndarray, score: np.ndarray, fractions: np.ndarray = FRACTIONS) -> np.ndarray:
    """Mean of ``errors`` left after removing the ``fractions`` of pixels with the lowest ``score``
    (confidence; for the oracle pass -errors). Ties are broken by position (stable sort)."""
    errors = np.asarray(errors, np.float64).ravel()
    if errors.size == 0:
        raise ValueError("no pixels to rank")
    order = np.argsort(-np.asarray(score, np.float64).ravel(), kind="stable")  # most confident first
    kept_sums = np.cumsum(errors[order])
    kept = np.maximum(np.rint((1.0 - fractions) * errors.size).astype(np.int64), 1)
    return kept_sums[kept - 1] / kept


def area(curve: np.ndarray, fractions: np.ndarray = FRACTIONS) -> float:
    return float(np.trapezoid(curve, fractions) if hasattr(np, "trapezoid") else np.trapz(curve, fractions))


def sparsification(errors: np.ndarray, confidence: np.ndarray, *, seed: int = 0,
                   fractions: np.ndarray = FRACTIONS) -> dict[str, float | np.ndarray]:
    """Curves (``confidence``, ``oracle``, ``random``) and areas of one frame's errors:
    ``ause`` = area(confidence - oracle), ``random_gap`` = area(random - oracle), ``aurg`` =
    area(random - confidence) (> 0: better than random)."""
    errors = np.asarray(errors, np.float64).ravel()
    curves = {
        "confidence": sparsification_curve(errors, confidence, fractions),
        "oracle": sparsification_curve(errors, -errors, fractions),
        "random": sparsification_curve(errors, np.random.default_rng(seed).random(errors.size), fractions),
    }
    return {**curves, "ause": area(curves["confidence"] - curves["oracle"], fractions),
            "random_gap": area(curves["random"] - curves["oracle"], fractions),
            "aurg": area(curves["random"] - curves["confidence"], fractions)}


def mask_unconfident(depth: np.ndarray, confidence: np.ndarray, threshold: float) -> np.ndarray:
    """``depth`` with NaN (REP 118: no estimate) where ``confidence < threshold``; 0: unchanged."""
    if threshold <= 0:
        return depth
    return np.where(confidence < threshold, np.float32(np.nan), depth).astype(depth.dtype, copy=False)
