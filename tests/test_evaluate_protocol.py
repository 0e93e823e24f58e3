"""Comparable evaluation numbers: velodyne ground truth as the published tables define it (lidar x,
monodepth2's export_gt_depth) by default for split files, camera z on request, stated in every
results file; predictions never stretched onto ground truth of another size."""
from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from depth_da_ros.depth_io import read_kitti_depth, write_kitti_depth
from depth_da_ros.kitti import generate_depth_map
from depth_da_ros.metrics import evaluate_frame
from depth_da_ros.procedural.dataset import ProceduralConfig
from depth_da_ros.procedural.writer import write_domain
from training import evaluate

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SAMPLE_ROOT = SHARED_DATA / "kitti_raw_sample"
SAMPLE_DRIVE = SAMPLE_ROOT / "2011_09_26" / "2011_09_26_drive_9001_sync"
needs_sample = pytest.mark.skipif(not SAMPLE_DRIVE.is_dir(), reason=f"real KITTI sample not found at {SAMPLE_DRIVE}")
CROP = (56, 176)  # a depth-benchmark-like crop of the 64x192 frames: bottom rows, centred columns


def test_align_prediction_crops_like_the_depth_benchmark():
    pred = np.arange(375 * 1242, dtype=np.float32).reshape(375, 1242)
    cropped = evaluate.align_prediction(pred, (352, 1216), "kb-crop", "frame")
    assert cropped.shape == (352, 1216) and np.array_equal(cropped, pred[23:, 13:1229])  # BTS / AdaBins margins
    assert evaluate.align_prediction(pred, pred.shape, "same", "frame") is pred
    with pytest.raises(evaluate.EvaluationError, match="1242x375 but the ground truth 1216x352.*--gt-align kb-crop"):
        evaluate.align_prediction(pred, (352, 1216), "same", "frame")
    assert evaluate.align_prediction(pred, (352, 1216), "resize", "frame").shape == (352, 1216)


def test_metrics_refuse_to_stretch_another_aspect_ratio():
    gt = np.full((352, 1216), 10.0)
    with pytest.raises(ValueError, match="differ in aspect ratio"):
        evaluate_frame(gt, np.full((375, 1242), 10.0))
    evaluate_frame(np.full((375, 1242), 10.0), np.full((192, 640), 10.0))  # same view, network size: resized


class Echo:
    """Predicts the full frame's ground truth at the image size (what a model at the camera size does)."""

    def __init__(self, full: dict[str, np.ndarray]) -> None:
        self.full, self.current = full, None

    def predict(self, rgb: np.ndarray) -> np.ndarray:
        assert rgb.shape[:2] == self.current.shape
        return np.nan_to_num(self.current, nan=0.0)


@pytest.fixture(scope="module")
def cropped_gt(tmp_path_factory) -> tuple[Path, Path]:
    """Procedural KITTI-layout frames (64x192) with ground truth cropped to 176x56."""
    root = tmp_path_factory.mktemp("crop")
    write_domain(root, ProceduralConfig(domain="real", height=64, width=192), 2, workers=1, progress=False)
    top, left = 64 - CROP[0], (192 - CROP[1]) // 2
    for path in (root / "real_depth_gt").rglob("*.png"):
        depth = read_kitti_depth(path)
        (path.parent.parent.parent / "full").mkdir(exist_ok=True)
        np.save(path.parent.parent.parent / "full" / f"{path.stem}.npy", depth)
        write_kitti_depth(path, depth[top:top + CROP[0], left:left + CROP[1]])
    return root / "real_depth_gt", root / "real"


def _run(monkeypatch, gt_root: Path, kitti_root: Path, out: Path, *extra: str) -> int:
    pipeline = Echo({})
    loader = evaluate.read_kitti_depth

    def load(path):
        pipeline.current = np.load(path.parent.parent.parent / "full" / f"{path.stem}.npy")
        return loader(path)

    monkeypatch.setattr(evaluate, "read_kitti_depth", load)
    monkeypatch.setattr(evaluate, "load_models", lambda args: [("echo", pipeline)])
    return evaluate.main(["--gt-root", str(gt_root), "--kitti-root", str(kitti_root), "--model", "m.onnx",
                          "--crop", "none", "--out-json", str(out), "--no-progress", *extra])


def test_ground_truth_of_another_size_is_refused_or_aligned(cropped_gt, tmp_path, monkeypatch, caplog):
    gt_root, kitti_root = cropped_gt
    out = tmp_path / "report.json"
    with caplog.at_level(logging.ERROR):
        assert _run(monkeypatch, gt_root, kitti_root, out) == 1
    assert "the prediction is 192x64 but the ground truth 176x56" in caplog.text and not out.exists()
    assert _run(monkeypatch, gt_root, kitti_root, out, "--gt-align", "kb-crop") == 0
    report = json.loads(out.read_text())
    assert report["rows"]["echo"]["metrics"]["abs_rel"] == pytest.approx(0.0, abs=1e-6)  # aligned: exact
    assert report["protocol"]["gt_align"] == "kb-crop" and "kb-crop" in report["protocol"]["ground_truth"]
    assert _run(monkeypatch, gt_root, kitti_root, out, "--gt-align", "resize") == 0
    assert json.loads(out.read_text())["rows"]["echo"]["metrics"]["abs_rel"] > 0.01  # stretched: wrong


@needs_sample
@pytest.mark.parametrize("gt_depth, vel_depth", [(None, True), ("lidar-x", True), ("camera-z", False)])
def test_split_ground_truth_depth_is_chosen_and_stated(tmp_path, monkeypatch, gt_depth, vel_depth):
    split = tmp_path / "split.txt"
    split.write_text("2011_09_26/2011_09_26_drive_9001_sync 0 l\n")
    seen = {}

    class Pipeline:
        def predict(self, rgb):
            return np.full(rgb.shape[:2], 20.0, np.float32)

    loader = evaluate.velodyne_gt

    def load(*args, **kwargs):
        seen["gt"] = loader(*args, **kwargs)
        return seen["gt"]

    monkeypatch.setattr(evaluate, "velodyne_gt", load)
    monkeypatch.setattr(evaluate, "load_models", lambda args: [("flat", Pipeline())])
    out, md = tmp_path / "report.json", tmp_path / "table.md"
    extra = ["--gt-depth", gt_depth] if gt_depth else []
    assert evaluate.main(["--kitti-root", str(SAMPLE_ROOT), "--split", str(split), "--model", "m.onnx", "--cache-dir",
                          str(tmp_path / "cache"), "--out-json", str(out), "--out-md", str(md), "--no-progress",
                          *extra]) == 0
    expected = generate_depth_map(SAMPLE_ROOT / "2011_09_26", SAMPLE_DRIVE / "velodyne_points" / "data" /
                                  "0000000000.bin", vel_depth=vel_depth)
    assert np.array_equal(seen["gt"], expected)
    name = "lidar-x" if vel_depth else "camera-z"
    assert json.loads(out.read_text())["protocol"]["gt_depth"] == name
    stated = "vel_depth=True" if vel_depth else "vel_depth=False"
    assert stated in md.read_text() and stated in json.loads(out.read_text())["protocol"]["ground_truth"]


def test_gt_depth_is_refused_for_benchmark_pngs(cropped_gt):
    gt_root, kitti_root = cropped_gt
    with pytest.raises(SystemExit):
        evaluate.main(["--gt-root", str(gt_root), "--kitti-root", str(kitti_root), "--model", "m.onnx",
                       "--gt-depth", "camera-z"])
