"""KITTI depth metrics with the monodepth2 evaluation protocol, on float metres only.

Per frame: resize the prediction to the ground truth, keep valid ground truth inside the
crop, optionally median-scale, clamp the prediction, compute the seven metrics. Over a
set: average the per-frame metrics (per image, then mean), as monodepth2 does.
"""
from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

import cv2
import numpy as np

logger = logging.getLogger(__name__)

# The paper's column order.
METRIC_NAMES: tuple[str, ...] = ("abs_rel", "sq_rel", "rmse", "rmse_log", "a1", "a2", "a3")
LOWER_IS_BETTER: dict[str, bool] = {
    "abs_rel": True,
    "sq_rel": True,
    "rmse": True,
    "rmse_log": True,
    "a1": False,
    "a2": False,
    "a3": False,
}

MIN_DEPTH = 1e-3
MAX_DEPTH = 80.0
# A prediction of another size is resized to the ground truth only when both show the same view, i.e.
# their aspect ratios agree to within this fraction (KITTI frames of 1224x370 .. 1242x375 against a
# 640x192 network output differ by under 1%); a crop such as the depth benchmark's 1216x352 of a
# 1242x375 frame (4%) is refused instead of stretched.
ASPECT_TOLERANCE = 0.02

# (top, bottom, left, right) as fractions of (height, height, width, width).
_CROPS: dict[str, tuple[float, float, float, float]] = {
    "garg": (0.40810811, 0.99189189, 0.03594771, 0.96405229),
    "eigen": (0.3324324, 0.91351351, 0.0359477, 0.96405229),
}
CROP_KINDS: tuple[str, ...] = ("garg", "eigen", "none")


def compute_errors(gt: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """The seven KITTI metrics on 1-D arrays of valid depths in metres (monodepth2 formulas)."""
    gt = np.asarray(gt, dtype=np.float64)
    pred = np.asarray(pred, dtype=np.float64)
    if gt.ndim != 1 or gt.shape != pred.shape:
        raise ValueError(
            f"expected two 1-D arrays of equal length, got {gt.shape} and {pred.shape}"
        )
    if gt.size == 0:
        raise ValueError("no depth values to evaluate")
    thresh = np.maximum(gt / pred, pred / gt)
    return {
        "abs_rel": float(np.mean(np.abs(gt - pred) / gt)),
        "sq_rel": float(np.mean((gt - pred) ** 2 / gt)),
        "rmse": float(np.sqrt(np.mean((gt - pred) ** 2))),
        "rmse_log": float(np.sqrt(np.mean((np.log(gt) - np.log(pred)) ** 2))),
        "a1": float(np.mean(thresh < 1.25)),
        "a2": float(np.mean(thresh < 1.25**2)),
        "a3": float(np.mean(thresh < 1.25**3)),
    }


def _fraction_mask(
    height: int, width: int, fractions: tuple[float, float, float, float]
) -> np.ndarray:
    scale = np.array([height, height, width, width])
    # int32 truncation, exactly as monodepth2 computes the bounds.
    top, bottom, left, right = (np.array(fractions) * scale).astype(np.int32).tolist()
    mask = np.zeros((height, width), dtype=bool)
    mask[top:bottom, left:right] = True
    return mask


def garg_crop_mask(height: int, width: int) -> np.ndarray:
    """Garg et al. crop (monodepth2's Eigen-split default): 218 x 1153 of a 375 x 1242 frame."""
    return _fraction_mask(height, width, _CROPS["garg"])


def eigen_crop_mask(height: int, width: int) -> np.ndarray:
    """Eigen et al. crop (monodepth v1 ``evaluation_utils``)."""
    return _fraction_mask(height, width, _CROPS["eigen"])


def crop_mask(kind: str, height: int, width: int) -> np.ndarray:
    """Boolean (height, width) mask for ``"garg"``, ``"eigen"`` or ``"none"`` (all True)."""
    if kind == "none":
        return np.ones((height, width), dtype=bool)
    if kind not in _CROPS:
        raise ValueError(f"unknown crop {kind!r}; known: {', '.join(CROP_KINDS)}")
    return _fraction_mask(height, width, _CROPS[kind])


def evaluate_frame(
    gt: np.ndarray,
    pred: np.ndarray,
    crop: str = "garg",
    min_depth: float = MIN_DEPTH,
    max_depth: float = MAX_DEPTH,
    median_scaling: bool = False,
) -> tuple[dict[str, float], float | None]:
    """Metrics for one frame, and the median-scaling ratio (None when scaling is off).

    ``gt``: (H, W) float metres, 0 / NaN / inf = invalid. ``pred``: float metres (or any
    positive scale when ``median_scaling``), bilinearly resized to (H, W) if it has another
    size but the same aspect ratio (within ``ASPECT_TOLERANCE``); another aspect ratio means
    another view (a crop) and raises ValueError rather than stretching. NaN and +inf
    predictions count as ``max_depth`` (the project's "no estimate" value), -inf as ``min_depth``.
    """
    gt = np.asarray(gt, dtype=np.float64)
    pred = np.asarray(pred, dtype=np.float64)
    if gt.ndim != 2 or pred.ndim != 2:
        raise ValueError(f"expected 2-D depth maps, got gt {gt.shape} and pred {pred.shape}")
    height, width = gt.shape
    if pred.shape != gt.shape:
        aspect = (pred.shape[1] / pred.shape[0]) / (width / height)
        if abs(aspect - 1.0) > ASPECT_TOLERANCE:
            raise ValueError(
                f"prediction {pred.shape[1]}x{pred.shape[0]} and ground truth {width}x{height} differ in "
                "aspect ratio: resizing would stretch one onto the other; crop or align the prediction first"
            )
        # monodepth2 resizes the disparity and inverts it; we resize metric depth directly.
        pred = cv2.resize(pred, (width, height), interpolation=cv2.INTER_LINEAR)

    # monodepth2 keeps gt < MAX_DEPTH; our spec is (min_depth, max_depth], so a return at
    # exactly 80 m counts. NaN compares False and drops out here.
    valid = (gt > min_depth) & (gt <= max_depth) & crop_mask(crop, height, width)
    if not valid.any():
        raise ValueError(
            f"no valid ground-truth pixel in ({min_depth}, {max_depth}] m inside the {crop!r} crop"
        )
    gt_valid, pred_valid = gt[valid], pred[valid]

    ratio = None
    if median_scaling:
        finite = np.isfinite(pred_valid)
        if not finite.any():
            raise ValueError("median scaling needs at least one finite prediction on valid pixels")
        pred_median = float(np.median(pred_valid[finite]))
        if pred_median <= 0:
            raise ValueError(
                f"median scaling needs a positive median prediction, got {pred_median}"
            )
        ratio = float(np.median(gt_valid)) / pred_median
        pred_valid = pred_valid * ratio

    bad = ~np.isfinite(pred_valid)
    if bad.any():
        logger.warning(
            "%d of %d predictions are NaN or inf; counted as clamped", bad.sum(), bad.size
        )
        pred_valid = np.nan_to_num(pred_valid, nan=max_depth, posinf=max_depth, neginf=min_depth)
    pred_valid = np.clip(pred_valid, min_depth, max_depth)
    return compute_errors(gt_valid, pred_valid), ratio


def evaluate_frames(
    gts: Iterable[tuple[np.ndarray, np.ndarray]] | Sequence[np.ndarray],
    preds: Sequence[np.ndarray] | None = None,
    crop: str = "garg",
    min_depth: float = MIN_DEPTH,
    max_depth: float = MAX_DEPTH,
    median_scaling: bool = False,
) -> dict[str, float]:
    """Mean of the per-frame metrics over a set of frames.

    Call as ``evaluate_frames(pairs)`` with ``(gt, pred)`` pairs or as
    ``evaluate_frames(gts, preds)``. Returns the seven metrics, ``frames`` (the count) and,
    with median scaling, ``ratio_median`` and ``ratio_std`` (std of ratio / median ratio,
    monodepth2's scale-consistency number).
    """
    if preds is None:
        pairs = list(gts)
    else:
        gts = list(gts)
        preds = list(preds)
        if len(gts) != len(preds):
            raise ValueError(f"{len(gts)} ground-truth maps but {len(preds)} predictions")
        pairs = list(zip(gts, preds))
    if not pairs:
        raise ValueError("no frames to evaluate")

    per_frame: list[dict[str, float]] = []
    ratios: list[float] = []
    for index, (gt, pred) in enumerate(pairs):
        try:
            errors, ratio = evaluate_frame(gt, pred, crop, min_depth, max_depth, median_scaling)
        except ValueError as error:
            raise ValueError(f"frame {index}: {error}") from error
        per_frame.append(errors)
        if ratio is not None:
            ratios.append(ratio)

    result = {name: float(np.mean([errors[name] for errors in per_frame])) for name in METRIC_NAMES}
    result["frames"] = len(per_frame)
    if median_scaling:
        ratio_median = float(np.median(ratios))
        result["ratio_median"] = ratio_median
        result["ratio_std"] = float(np.std(np.array(ratios) / ratio_median))
        logger.info(
            "median scaling ratios: median %.3f, std %.3f", ratio_median, result["ratio_std"]
        )
    return result


def format_metrics_table(rows: dict[str, dict[str, float]]) -> str:
    """Markdown table, one row per method, columns in paper order, 3 decimals."""
    arrows = {name: "↓" if LOWER_IS_BETTER[name] else "↑" for name in METRIC_NAMES}
    header = "| method | " + " | ".join(f"{name} {arrows[name]}" for name in METRIC_NAMES) + " |"
    rule = "|---|" + "---:|" * len(METRIC_NAMES)
    lines = [header, rule]
    for method, metrics in rows.items():
        cells = " | ".join(f"{metrics[name]:.3f}" for name in METRIC_NAMES)
        lines.append(f"| {method} | {cells} |")
    return "\n".join(lines)


def strict_json(value):
    """``value`` with every non-finite float (NaN, +-inf: an undefined metric) as None and NumPy
    scalars as plain numbers, so ``json.dumps(..., allow_nan=False)`` writes strict JSON (plain
    ``json.dumps`` writes NaN / Infinity, which strict parsers reject)."""
    if isinstance(value, dict):
        return {k: strict_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict_json(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if np.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value
