"""KITTI metrics: monodepth2 formulas, crops, masking, median scaling, per-image averaging."""
from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from depth_da_ros.metrics import (
    LOWER_IS_BETTER,
    METRIC_NAMES,
    compute_errors,
    crop_mask,
    eigen_crop_mask,
    evaluate_frame,
    evaluate_frames,
    format_metrics_table,
    garg_crop_mask,
)

KITTI_H, KITTI_W = 375, 1242


def monodepth2_compute_errors(gt: np.ndarray, pred: np.ndarray) -> tuple[float, ...]:
    """Literal copy of monodepth2's evaluate_depth.compute_errors."""
    thresh = np.maximum((gt / pred), (pred / gt))
    a1 = (thresh < 1.25).mean()
    a2 = (thresh < 1.25**2).mean()
    a3 = (thresh < 1.25**3).mean()
    rmse = (gt - pred) ** 2
    rmse = np.sqrt(rmse.mean())
    rmse_log = (np.log(gt) - np.log(pred)) ** 2
    rmse_log = np.sqrt(rmse_log.mean())
    abs_rel = np.mean(np.abs(gt - pred) / gt)
    sq_rel = np.mean(((gt - pred) ** 2) / gt)
    return abs_rel, sq_rel, rmse, rmse_log, a1, a2, a3


def test_metric_names_in_paper_order() -> None:
    assert METRIC_NAMES == ("abs_rel", "sq_rel", "rmse", "rmse_log", "a1", "a2", "a3")
    assert [LOWER_IS_BETTER[name] for name in METRIC_NAMES] == [True] * 4 + [False] * 3


def test_perfect_prediction() -> None:
    gt = np.random.default_rng(0).uniform(1.0, 80.0, 1000)
    errors = compute_errors(gt, gt.copy())
    for name in ("abs_rel", "sq_rel", "rmse", "rmse_log"):
        assert errors[name] == 0.0
    for name in ("a1", "a2", "a3"):
        assert errors[name] == 1.0


def test_ten_percent_over_prediction() -> None:
    gt = np.random.default_rng(1).uniform(1.0, 80.0, 1000)
    errors = compute_errors(gt, 1.1 * gt)
    assert errors["abs_rel"] == pytest.approx(0.1, abs=1e-6)
    assert errors["sq_rel"] == pytest.approx(0.01 * gt.mean(), rel=1e-9)
    assert errors["rmse_log"] == pytest.approx(math.log(1.1), rel=1e-9)
    assert errors["a1"] == 1.0


def test_matches_monodepth2_formulas_on_random_data() -> None:
    rng = np.random.default_rng(2)
    gt = rng.uniform(1e-3, 80.0, 5000)
    pred = np.clip(gt * rng.lognormal(0.0, 0.4, gt.size), 1e-3, 80.0)
    ours = compute_errors(gt, pred)
    reference = monodepth2_compute_errors(gt, pred)
    assert [ours[name] for name in METRIC_NAMES] == pytest.approx(reference, rel=1e-12)


def test_threshold_half_of_pixels() -> None:
    gt = np.full(10, 4.0)
    pred = np.array([4.0] * 5 + [5.2] * 5)  # ratio 1.3: fails 1.25, passes 1.25**2
    errors = compute_errors(gt, pred)
    assert errors["a1"] == 0.5
    assert errors["a2"] == 1.0


def test_threshold_is_strict() -> None:
    # 5 / 4 == 1.25 exactly in binary floating point: not "< 1.25", so not counted.
    errors = compute_errors(np.array([4.0, 4.0]), np.array([5.0, 4.0]))
    assert errors["a1"] == 0.5


def test_compute_errors_rejects_bad_shapes() -> None:
    with pytest.raises(ValueError, match="1-D"):
        compute_errors(np.ones((2, 2)), np.ones((2, 2)))
    with pytest.raises(ValueError, match="equal length"):
        compute_errors(np.ones(3), np.ones(4))
    with pytest.raises(ValueError, match="no depth values"):
        compute_errors(np.ones(0), np.ones(0))


def _bounds(mask: np.ndarray) -> tuple[int, int, int, int]:
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def test_garg_crop_bounds_kitti() -> None:
    mask = garg_crop_mask(KITTI_H, KITTI_W)
    assert mask.shape == (KITTI_H, KITTI_W) and mask.dtype == bool
    # int32(0.40810811 * 375) = 153, int32(0.99189189 * 375) = 371, 44, 1197
    assert _bounds(mask) == (153, 371, 44, 1197)
    assert mask.sum() == (371 - 153) * (1197 - 44)


def test_eigen_crop_bounds_kitti() -> None:
    mask = eigen_crop_mask(KITTI_H, KITTI_W)
    assert _bounds(mask) == (124, 342, 44, 1197)
    assert mask.sum() == (342 - 124) * (1197 - 44)


def test_crop_mask_kinds() -> None:
    assert np.array_equal(crop_mask("garg", KITTI_H, KITTI_W), garg_crop_mask(KITTI_H, KITTI_W))
    assert np.array_equal(crop_mask("eigen", KITTI_H, KITTI_W), eigen_crop_mask(KITTI_H, KITTI_W))
    assert crop_mask("none", 4, 5).all()
    with pytest.raises(ValueError, match="known: garg, eigen, none"):
        crop_mask("kitti", 4, 5)


def _ramp(height: int = 20, width: int = 30) -> np.ndarray:
    return np.linspace(2.0, 60.0, height * width).reshape(height, width)


def test_evaluate_frame_perfect_with_garg_crop() -> None:
    gt = np.zeros((KITTI_H, KITTI_W))
    gt[200:300, 100:1100] = 20.0
    pred = np.full_like(gt, 20.0)
    pred[:150] = 1.0  # wrong everywhere above the crop: must not count
    errors, ratio = evaluate_frame(gt, pred)
    assert errors["abs_rel"] == 0.0 and errors["a1"] == 1.0
    assert ratio is None


def test_invalid_pixels_are_excluded() -> None:
    gt = _ramp()
    pred = gt.copy()
    gt[0, :5] = 0.0
    gt[1, :5] = np.nan
    gt[2, :5] = 80.5
    gt[3, :5] = np.inf
    gt[4, :5] = 1e-3  # the lower bound is open
    pred[:5, :5] = 1000.0  # grossly wrong, but only where gt is invalid
    errors, _ = evaluate_frame(gt, pred, crop="none")
    assert errors["abs_rel"] == 0.0 and errors["a1"] == 1.0


def test_max_depth_is_inclusive() -> None:
    gt = np.array([[80.0, 10.0]])
    pred = np.array([[40.0, 10.0]])
    errors, _ = evaluate_frame(gt, pred, crop="none")
    assert errors["abs_rel"] == pytest.approx(0.25)  # (0.5 + 0) / 2: the 80 m pixel counts


def test_prediction_is_clamped_including_nan_and_inf() -> None:
    gt = np.full((1, 4), 80.0)
    pred = np.array([[np.nan, np.inf, 500.0, 80.0]])
    errors, _ = evaluate_frame(gt, pred, crop="none")
    assert errors["abs_rel"] == 0.0
    gt = np.full((1, 3), 1.0)
    pred = np.array([[-np.inf, -3.0, 0.0]])  # all clamped to min_depth = 1e-3
    errors, _ = evaluate_frame(gt, pred, crop="none")
    assert errors["abs_rel"] == pytest.approx(1.0 - 1e-3)


def test_median_scaling_recovers_scaled_prediction() -> None:
    gt = _ramp()
    errors, ratio = evaluate_frame(gt, 0.37 * gt, crop="none", median_scaling=True)
    assert ratio == pytest.approx(1 / 0.37, rel=1e-12)
    assert errors["abs_rel"] == pytest.approx(0.0, abs=1e-12)
    assert errors["rmse"] == pytest.approx(0.0, abs=1e-10)
    assert errors["a1"] == 1.0


def test_median_scaling_is_applied_before_clamping() -> None:
    gt = np.full((1, 3), 50.0)
    pred = np.array([[100.0, 100.0, 200.0]])  # ratio 0.5 -> 50, 50, 100 -> clamped to 80
    errors, ratio = evaluate_frame(gt, pred, crop="none", median_scaling=True)
    assert ratio == 0.5
    assert errors["abs_rel"] == pytest.approx((30.0 / 50.0) / 3)


def test_median_scaling_rejects_non_positive_median() -> None:
    with pytest.raises(ValueError, match="positive median"):
        evaluate_frame(_ramp(), np.zeros((20, 30)), crop="none", median_scaling=True)


def test_half_size_prediction_is_resized() -> None:
    gt = np.full((KITTI_H, KITTI_W), 12.5)
    errors, _ = evaluate_frame(gt, np.full((KITTI_H // 2, KITTI_W // 2), 12.5))
    assert errors["abs_rel"] == pytest.approx(0.0, abs=1e-12)

    gt = _ramp(40, 60)
    pred = _ramp(20, 30)
    expected = cv2.resize(pred, (60, 40), interpolation=cv2.INTER_LINEAR)
    errors, _ = evaluate_frame(gt, pred, crop="none")
    reference = compute_errors(gt.ravel(), expected.ravel())
    assert errors["abs_rel"] == pytest.approx(reference["abs_rel"])
    assert errors["abs_rel"] < 0.05


def test_no_valid_pixel_raises() -> None:
    with pytest.raises(ValueError, match="no valid ground-truth pixel"):
        evaluate_frame(np.zeros((KITTI_H, KITTI_W)), np.ones((KITTI_H, KITTI_W)))
    gt = np.zeros((KITTI_H, KITTI_W))
    gt[:100] = 10.0  # valid, but entirely above the Garg crop
    with pytest.raises(ValueError, match="'garg' crop"):
        evaluate_frame(gt, gt)


def test_evaluate_frame_rejects_non_2d() -> None:
    with pytest.raises(ValueError, match="2-D"):
        evaluate_frame(np.ones(5), np.ones(5), crop="none")


def test_evaluate_frames_averages_per_image_not_pooled() -> None:
    # Frame A: one valid pixel, 100 % over. Frame B: 99 valid pixels, exact.
    gt_a = np.zeros((10, 10))
    gt_a[0, 0] = 10.0
    pred_a = np.full((10, 10), 20.0)
    gt_b = np.full((10, 10), 10.0)
    gt_b[0, 0] = 0.0
    pred_b = gt_b.copy()
    pred_b[0, 0] = 5.0

    result = evaluate_frames([(gt_a, pred_a), (gt_b, pred_b)], crop="none")
    assert result["abs_rel"] == pytest.approx((1.0 + 0.0) / 2)  # per image, then mean
    assert result["a1"] == pytest.approx((0.0 + 1.0) / 2)
    valid_a, valid_b = gt_a > 0, gt_b > 0
    pooled = compute_errors(
        np.r_[gt_a[valid_a], gt_b[valid_b]], np.r_[pred_a[valid_a], pred_b[valid_b]]
    )
    assert pooled["abs_rel"] == pytest.approx(1.0 / 100)
    assert result["frames"] == 2
    assert "ratio_median" not in result

    two_lists = evaluate_frames([gt_a, gt_b], [pred_a, pred_b], crop="none")
    assert two_lists == result


def test_evaluate_frames_ratio_statistics() -> None:
    gt = _ramp()
    ratios = [1 / 2, 1 / 4, 1 / 5]
    result = evaluate_frames([gt] * 3, [gt / r for r in ratios], crop="none", median_scaling=True)
    assert result["frames"] == 3
    assert result["ratio_median"] == pytest.approx(1 / 4)
    assert result["ratio_std"] == pytest.approx(np.std(np.array(ratios) / 0.25))
    assert result["abs_rel"] == pytest.approx(0.0, abs=1e-12)


def test_evaluate_frames_errors() -> None:
    with pytest.raises(ValueError, match="no frames"):
        evaluate_frames([])
    with pytest.raises(ValueError, match="2 ground-truth maps but 1 predictions"):
        evaluate_frames([_ramp(), _ramp()], [_ramp()])
    with pytest.raises(ValueError, match="frame 1: no valid"):
        evaluate_frames([(_ramp(), _ramp()), (np.zeros((20, 30)), _ramp())], crop="none")


def test_format_metrics_table() -> None:
    paper = dict(zip(METRIC_NAMES, (0.110, 0.929, 4.726, 0.194, 0.923, 0.967, 0.984)))
    ours = {name: 0.12345 for name in METRIC_NAMES} | {"frames": 697}
    table = format_metrics_table({"paper": paper, "ours": ours}).splitlines()
    assert table[0] == (
        "| method | abs_rel ↓ | sq_rel ↓ | rmse ↓ | rmse_log ↓ | a1 ↑ | a2 ↑ | a3 ↑ |"
    )
    assert table[2] == "| paper | 0.110 | 0.929 | 4.726 | 0.194 | 0.923 | 0.967 | 0.984 |"
    assert table[3] == "| ours | " + " | ".join(["0.123"] * 7) + " |"
