"""Flip-consistency confidence and sparsification curves (depth_da_ros.confidence), and the
pipeline's batch-of-2 confidence against two separate runs of the bundled model."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from depth_da_ros.confidence import (
    FRACTIONS,
    abs_rel_errors,
    flip_batch,
    flip_consistency,
    mask_unconfident,
    sparsification,
    sparsification_curve,
)

BUNDLED = Path(__file__).resolve().parents[1] / "models" / "depth.onnx"


def test_flip_batch_holds_the_frame_and_its_mirror():
    batch = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(1, 2, 3, 3)
    pair = flip_batch(batch)
    assert pair.shape == (2, 2, 3, 3) and pair.flags.c_contiguous
    np.testing.assert_array_equal(pair[0], batch[0])
    np.testing.assert_array_equal(pair[1], batch[0, :, ::-1])
    with pytest.raises(ValueError):
        flip_batch(pair)


def test_confidence_is_one_for_an_equivariant_prediction_and_exp_of_the_relative_gap_otherwise():
    rng = np.random.default_rng(1)
    depth = rng.uniform(2, 50, (6, 10)).astype(np.float32)
    np.testing.assert_allclose(flip_consistency(depth, depth[:, ::-1]), 1.0)  # the mirror's depth is the mirror
    mirror = (depth * 1.2)[:, ::-1]  # 20% farther everywhere
    np.testing.assert_allclose(flip_consistency(depth, mirror, k=0.1), math.exp(-2.0), rtol=1e-5)
    np.testing.assert_allclose(flip_consistency(depth, mirror, k=0.2), math.exp(-1.0), rtol=1e-5)
    conf = flip_consistency(depth, mirror)
    assert conf.dtype == np.float32 and conf.shape == depth.shape and ((conf >= 0) & (conf <= 1)).all()


def test_missing_and_beyond_range_pixels():
    depth = np.full((2, 3), 10.0, np.float32)
    mirror = depth.copy()
    depth[0, 0] = np.nan  # no estimate: 0
    depth[0, 1] = np.inf
    mirror[0, 1] = np.inf  # both beyond range (mirror column 1 is column 1 flipped back: width 3): 1
    depth[1, 0] = np.inf  # only one beyond range: 0 (mirror's column 2 flips back onto column 0)
    conf = flip_consistency(depth, mirror)
    assert conf[0, 0] == 0.0 and conf[0, 1] == 1.0 and conf[1, 0] == 0.0 and conf[1, 1] == 1.0
    with pytest.raises(ValueError):
        flip_consistency(depth, mirror, k=0.0)


def test_sparsification_oracle_random_and_a_perfect_ranking():
    rng = np.random.default_rng(0)
    errors = rng.exponential(0.2, 5000)
    perfect = sparsification(errors, -errors)
    assert perfect["ause"] == pytest.approx(0.0, abs=1e-12)
    assert perfect["aurg"] == pytest.approx(perfect["random_gap"])
    curves = sparsification(errors, rng.random(errors.size), seed=3)
    assert curves["ause"] == pytest.approx(curves["random_gap"], rel=0.1)  # a random ranking is as bad as random
    worst = sparsification(errors, errors)  # confident where wrong
    assert worst["ause"] > curves["ause"] and worst["aurg"] < 0
    oracle = curves["oracle"]
    assert oracle[0] == pytest.approx(errors.mean()) and np.all(np.diff(oracle) <= 1e-12)
    np.testing.assert_allclose(curves["random"], errors.mean(), rtol=0.2)


def test_curve_keeps_at_least_one_pixel_and_removes_the_least_confident():
    errors = np.array([0.5, 0.1, 0.3, 0.2])
    curve = sparsification_curve(errors, np.array([0.1, 0.9, 0.2, 0.8]), np.array([0.0, 0.25, 0.5, 0.99]))
    np.testing.assert_allclose(curve, [0.275, (0.1 + 0.2 + 0.3) / 3, 0.15, 0.1])
    assert len(sparsification(errors, -errors)["confidence"]) == len(FRACTIONS)


def test_abs_rel_errors_mask():
    gt = np.array([10.0, np.inf, 0.0, 100.0, 20.0])
    pred = np.array([11.0, 5.0, 1.0, 90.0, np.nan])
    errors, mask = abs_rel_errors(pred, gt)
    np.testing.assert_array_equal(mask, [True, False, False, False, False])
    np.testing.assert_allclose(errors, [0.1])


def test_mask_unconfident():
    depth = np.array([[1.0, 2.0, np.inf]], np.float32)
    conf = np.array([[0.2, 0.8, 0.1]], np.float32)
    np.testing.assert_array_equal(mask_unconfident(depth, conf, 0.0), depth)
    out = mask_unconfident(depth, conf, 0.5)
    assert np.isnan(out[0, 0]) and out[0, 1] == 2.0 and np.isnan(out[0, 2]) and out.dtype == np.float32


@pytest.mark.skipif(not BUNDLED.exists(), reason="no bundled model")
def test_pipeline_batch_of_two_equals_two_runs_and_leaves_depth_unchanged():
    pytest.importorskip("onnxruntime")
    from depth_da_ros.pipeline import DepthPipeline
    from depth_da_ros.procedural.dataset import ProceduralConfig, ProceduralDataset

    pipeline = DepthPipeline(BUNDLED, "onnxruntime", threads=1)
    height, width = pipeline.input_size
    rgb = ProceduralDataset(ProceduralConfig(domain="real", height=height, width=width, seed=5), 1)[0].rgb
    depth = pipeline.predict(rgb, beyond_range=0.98)
    mirrored = pipeline.predict(np.ascontiguousarray(rgb[:, ::-1]))
    out, conf = pipeline.predict_with_confidence(rgb, 0.1, beyond_range=0.98)
    np.testing.assert_allclose(out, depth, rtol=1e-5)
    plain = pipeline.predict(rgb)
    expected = flip_consistency(plain, mirrored, 0.1)
    expected[np.isnan(depth)] = 0.0
    np.testing.assert_allclose(conf, expected, atol=1e-4)
    assert conf.dtype == np.float32 and conf.shape == rgb.shape[:2] and 0 < conf.mean() <= 1
    # At another frame size, confidence comes back at the frame's size like depth.
    big = np.ascontiguousarray(np.repeat(np.repeat(rgb, 2, axis=0), 2, axis=1))
    depth_big, conf_big = pipeline.predict_with_confidence(big, aspect="crop")
    assert conf_big.shape == big.shape[:2] and np.all(conf_big[np.isnan(depth_big)] == 0.0)
    assert np.all((conf_big >= 0) & (conf_big <= 1))
