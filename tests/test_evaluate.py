"""training/evaluate.py: the seven metrics per image and averaged, through each input path (split
file with velodyne ground truth and its cache, depth-benchmark PNGs, recorded bags), the table's
column order, and errors that name the missing file."""
from __future__ import annotations

import json
import logging
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from rosbags.rosbag2 import StoragePlugin, Writer

from depth_da_ros.bags import typestore
from depth_da_ros.bags.kitti2bag import convert
from depth_da_ros.kitti import generate_depth_map
from depth_da_ros.metrics import METRIC_NAMES, evaluate_frame
from depth_da_ros.procedural.dataset import ProceduralConfig
from depth_da_ros.procedural.writer import write_domain
from training import evaluate

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SAMPLE_ROOT = SHARED_DATA / "kitti_raw_sample"
SAMPLE_DRIVE = SAMPLE_ROOT / "2011_09_26" / "2011_09_26_drive_9001_sync"
needs_sample = pytest.mark.skipif(
    not SAMPLE_DRIVE.is_dir(), reason=f"real KITTI sample not found at {SAMPLE_DRIVE} (../shared/data is absent "
    "in a fresh clone)")
SAMPLE_SPLIT = "2011_09_26/2011_09_26_drive_9001_sync 0 l\n2011_09_26/2011_09_26_drive_9001_sync 1 l\n"
FAR = 70.0  # ground truth kept below 80 / 1.1, so a 1.1x prediction is never clamped at --max-depth


class EchoPipeline:
    """A stand-in for DepthPipeline that predicts ``scale`` x the frame's ground truth (fed by
    the ground-truth loader the test wraps), so the evaluation code path runs unchanged."""

    def __init__(self, scale: float) -> None:
        self.scale = scale
        self.gt: np.ndarray | None = None

    def predict(self, rgb: np.ndarray) -> np.ndarray:
        assert self.gt is not None and rgb.shape[:2] == self.gt.shape
        return np.nan_to_num(self.gt * self.scale, nan=0.0)  # invalid pixels are not evaluated


def echo_models(monkeypatch, loader_name: str) -> None:
    """Rows 'perfect' (1.0 x gt) and 'x1.1' fed by ``training.evaluate.<loader_name>``; ground truth
    beyond FAR is dropped (as if the scan had no return there)."""
    pipelines = {"perfect": EchoPipeline(1.0), "x1.1": EchoPipeline(1.1)}
    loader = getattr(evaluate, loader_name)

    def load(*args, **kwargs):
        gt = loader(*args, **kwargs).copy()
        gt[gt > FAR] = 0.0
        for pipeline in pipelines.values():
            pipeline.gt = gt
        return gt

    monkeypatch.setattr(evaluate, loader_name, load)
    monkeypatch.setattr(evaluate, "load_models", lambda args: list(pipelines.items()))


def assert_perfect_and_scaled(report: dict, frames: int) -> None:
    perfect = report["rows"]["perfect"]["metrics"]
    assert perfect["frames"] == frames
    for name in ("abs_rel", "sq_rel", "rmse", "rmse_log"):
        assert perfect[name] == pytest.approx(0.0, abs=1e-6), name
    assert (perfect["a1"], perfect["a2"], perfect["a3"]) == (1.0, 1.0, 1.0)
    scaled = report["rows"]["x1.1"]["metrics"]
    assert scaled["abs_rel"] == pytest.approx(0.1, abs=1e-6)
    assert scaled["rmse_log"] == pytest.approx(np.log(1.1), abs=1e-6)
    assert scaled["a1"] == 1.0
    for row in report["rows"].values():
        assert len(row["per_frame"]) == frames and not row["skipped"]


@needs_sample
def test_split_file_with_velodyne_ground_truth_and_cache(tmp_path, monkeypatch):
    split = tmp_path / "split.txt"
    split.write_text(SAMPLE_SPLIT)
    cache, out_json = tmp_path / "cache", tmp_path / "report.json"
    echo_models(monkeypatch, "velodyne_gt")
    args = ["--kitti-root", str(SAMPLE_ROOT), "--split", str(split), "--model", "unused.onnx", "--cache-dir",
            str(cache), "--out-json", str(out_json), "--out-md", str(tmp_path / "table.md"), "--no-progress"]
    assert evaluate.main(args) == 0
    report = json.loads(out_json.read_text())
    assert_perfect_and_scaled(report, 2)
    assert [f["id"] for f in report["rows"]["perfect"]["per_frame"]] == SAMPLE_SPLIT.strip().split("\n")
    assert "velodyne" in report["protocol"]["ground_truth"]

    cached = sorted(cache.glob("*.npz"))
    assert len(cached) == 2
    assert report["protocol"]["gt_depth"] == "lidar-x"  # the published protocol is the split default
    expected = [generate_depth_map(SAMPLE_DRIVE.parent, SAMPLE_DRIVE / "velodyne_points" / "data" / f"{i:010d}.bin",
                                   vel_depth=True) for i in range(2)]
    stored = [np.load(path)["depth"] for path in cached]
    assert sorted(s.tobytes() for s in stored) == sorted(e.tobytes() for e in expected)

    # A second run reads the cache: projecting a scan again would fail.
    def fail(*args, **kwargs):
        raise AssertionError("ground truth was projected again instead of read from the cache")

    monkeypatch.setattr(evaluate, "generate_depth_map", fail)
    assert evaluate.main(args) == 0
    assert json.loads(out_json.read_text())["rows"] == report["rows"]


@pytest.fixture(scope="module")
def procedural(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("procedural")
    write_domain(root, ProceduralConfig(domain="real", height=64, width=192), 3, workers=1, progress=False)
    return root


def test_gt_root_pairs_depth_benchmark_pngs_with_raw_images(procedural, tmp_path, monkeypatch):
    out_json, out_md = tmp_path / "report.json", tmp_path / "table.md"
    echo_models(monkeypatch, "read_kitti_depth")
    assert evaluate.main(["--gt-root", str(procedural / "real_depth_gt"), "--kitti-root", str(procedural / "real"),
                          "--model", "unused.onnx", "--crop", "none", "--out-json", str(out_json),
                          "--out-md", str(out_md), "--no-progress"]) == 0
    report = json.loads(out_json.read_text())
    assert_perfect_and_scaled(report, 3)
    assert report["rows"]["perfect"]["per_frame"][0]["id"] == "2000_01_01/2000_01_01_drive_0000_sync 0 l"

    header = out_md.read_text().splitlines()[0]
    columns = [cell.strip().split()[0] for cell in header.strip("|").split("|")]
    assert columns == ["method", *METRIC_NAMES]
    assert METRIC_NAMES == ("abs_rel", "sq_rel", "rmse", "rmse_log", "a1", "a2", "a3")  # the paper's order


def test_median_scaling_undoes_a_global_scale(procedural, tmp_path, monkeypatch):
    out_json = tmp_path / "report.json"
    echo_models(monkeypatch, "read_kitti_depth")
    assert evaluate.main(["--gt-root", str(procedural / "real_depth_gt"), "--kitti-root", str(procedural / "real"),
                          "--model", "unused.onnx", "--median-scaling", "--out-json", str(out_json),
                          "--no-progress"]) == 0
    scaled = json.loads(out_json.read_text())["rows"]["x1.1"]["metrics"]
    assert scaled["abs_rel"] == pytest.approx(0.0, abs=1e-6)
    assert scaled["ratio_median"] == pytest.approx(1 / 1.1, rel=1e-6)  # float32 depth
    assert scaled["ratio_std"] == pytest.approx(0.0, abs=1e-6)


def test_real_model_rows_and_adapter_labels(procedural, tmp_path):
    from model_fixtures import write_depth_checkpoint

    checkpoint = write_depth_checkpoint(tmp_path / "depth.pt")
    out_json = tmp_path / "report.json"
    assert evaluate.main(["--gt-root", str(procedural / "real_depth_gt"), "--kitti-root", str(procedural / "real"),
                          "--model", str(checkpoint), "--model", f"named={checkpoint}", "--backend", "torch",
                          "--out-json", str(out_json), "--no-progress"]) == 0
    rows = json.loads(out_json.read_text())["rows"]
    assert list(rows) == ["depth.pt (no adapter)", "named"]
    for row in rows.values():
        assert row["metrics"]["frames"] == 3
        assert all(np.isfinite(row["metrics"][name]) for name in METRIC_NAMES)


@needs_sample
def test_missing_files_are_named(tmp_path, procedural, caplog):
    split = tmp_path / "split.txt"
    split.write_text("2011_09_26/2011_09_26_drive_9001_sync 7 l\n")
    with caplog.at_level(logging.ERROR):
        assert evaluate.main(["--kitti-root", str(SAMPLE_ROOT), "--split", str(split), "--model", "m.onnx",
                              "--no-progress"]) == 1
    assert "0000000007" in caplog.text
    caplog.clear()
    # The procedural drive has images but no velodyne scans.
    split.write_text("2000_01_01/2000_01_01_drive_0000_sync 1 l\n")
    with caplog.at_level(logging.ERROR):
        assert evaluate.main(["--kitti-root", str(procedural / "real"), "--split", str(split), "--model", "m.onnx",
                              "--no-progress"]) == 1
    assert "velodyne_points/data/0000000001.bin" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.ERROR):
        assert evaluate.main(["--kitti-root", str(SAMPLE_ROOT), "--split", str(tmp_path / "absent.txt"),
                              "--model", "m.onnx", "--no-progress"]) == 1
    assert "absent.txt" in caplog.text
    with pytest.raises(SystemExit):
        evaluate.main(["--split", str(split), "--model", "m.onnx"])  # no --kitti-root


def test_decode_depth_image_handles_padding_and_byte_order():
    depth = np.array([[1.5, np.nan, 3.0], [4.0, 5.0, 80.0]], dtype=np.float32)
    padded = np.zeros((2, 16), dtype=np.uint8)
    padded[:, :12] = depth.astype(">f4").view(np.uint8).reshape(2, 12)
    msg = SimpleNamespace(encoding="32FC1", is_bigendian=1, height=2, width=3, step=16, data=padded.reshape(-1))
    assert np.array_equal(evaluate.decode_depth_image(msg), depth, equal_nan=True)
    millimetres = np.array([[1500, 0]], dtype="<u2")
    msg = SimpleNamespace(encoding="16UC1", is_bigendian=0, height=1, width=2, step=4,
                          data=millimetres.view(np.uint8).reshape(-1))
    assert np.array_equal(evaluate.decode_depth_image(msg), np.array([[1.5, np.nan]], np.float32), equal_nan=True)


def write_depth_bag(path: Path, frames: list[tuple[int, np.ndarray]], topic: str = "/depth/image") -> None:
    """A bag like one recorded from the node: 32FC1 depth images stamped like their input frames, with
    receive times (bag times) of their own, in the order given."""
    store = typestore()
    types = store.types
    with Writer(path, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        connection = writer.add_connection(topic, "sensor_msgs/msg/Image", typestore=store)
        for index, (stamp, depth) in enumerate(frames):
            header = types["std_msgs/msg/Header"](
                stamp=types["builtin_interfaces/msg/Time"](sec=stamp // 10**9, nanosec=stamp % 10**9),
                frame_id="camera_color_left")
            data = np.ascontiguousarray(depth, dtype="<f4").view(np.uint8).reshape(-1)
            msg = types["sensor_msgs/msg/Image"](header=header, height=depth.shape[0], width=depth.shape[1],
                                                  encoding="32FC1", is_bigendian=0, step=depth.shape[1] * 4, data=data)
            receive_time = 1_800_000_000_000_000_000 + index * 40_000_000
            writer.write(connection, receive_time, store.serialize_cdr(msg, "sensor_msgs/msg/Image"))


@needs_sample
def test_bag_path_matches_depth_images_to_scans_by_stamp(tmp_path, caplog):
    converted = tmp_path / "converted"
    summary = convert(SAMPLE_DRIVE, converted, progress=False)
    scans = [SAMPLE_DRIVE / "velodyne_points" / "data" / f"{i:010d}.bin" for i in range(2)]
    truth = [generate_depth_map(SAMPLE_DRIVE.parent, scan) for scan in scans]
    truth = [np.where(gt > 0, gt, np.nan).astype(np.float32) for gt in truth]  # REP 118: NaN = no estimate
    stamps = [summary.start_ns, summary.start_ns + 100_000_000]
    # Frames in reverse order, plus one whose stamp has no scan: matching is by stamp, not by order.
    recorded = tmp_path / "recorded"
    write_depth_bag(recorded, [(stamps[1], truth[1] * 1.1), (stamps[0], truth[0] * 1.1),
                               (stamps[1] + 10**9, truth[1])])
    per_frame = [evaluate_frame(np.nan_to_num(gt), gt * 1.1)[0] for gt in truth]
    expected = {name: np.mean([errors[name] for errors in per_frame]) for name in METRIC_NAMES}
    assert expected["abs_rel"] == pytest.approx(0.1, abs=1e-3)  # not exactly: far returns clamp at 80 m
    for calibration in ([], ["--calib-dir", str(SAMPLE_DRIVE.parent)]):
        out_json = tmp_path / "report.json"
        with caplog.at_level(logging.WARNING):
            assert evaluate.main(["--bag", str(recorded), "--gt-bag", str(converted), "--label", "node",
                                  "--out-json", str(out_json), "--no-progress", *calibration]) == 0
        assert "no scan within" in caplog.text
        row = json.loads(out_json.read_text())["rows"]["node"]
        assert [f["id"] for f in row["per_frame"]] == [f"{s // 10**9}.{s % 10**9:09d}" for s in reversed(stamps)]
        # Ground truth from the bag (camera_info + tf, or the calibration files) equals the files'
        # to float32 rounding, so the metrics are those of the files' ground truth.
        for name in METRIC_NAMES:
            assert row["metrics"][name] == pytest.approx(expected[name], rel=1e-5, abs=1e-7), name


def test_bag_errors_are_clear(tmp_path, caplog):
    write_depth_bag(tmp_path / "recorded", [(10**9, np.ones((4, 4), np.float32))], topic="/other/image")
    with caplog.at_level(logging.ERROR):
        assert evaluate.main(["--bag", str(tmp_path / "recorded"), "--no-progress"]) == 1
    assert "/kitti/velo/pointcloud" in caplog.text  # the ground-truth topic it looked for
    with pytest.raises(SystemExit):
        evaluate.main(["--bag", str(tmp_path / "recorded"), "--model", "m.onnx"])


# -- issue 25 item 8: no zero minimum depth, strict JSON --------------------------------------------------


def test_min_depth_zero_is_refused(capsys):
    with pytest.raises(SystemExit) as exc:
        evaluate.main(["--kitti-root", "k", "--split", "s", "--model", "m.onnx", "--min-depth", "0"])
    assert exc.value.code == 2 and "need 0 < --min-depth" in capsys.readouterr().err


def test_undefined_metrics_are_null_in_strict_json():
    report = {"rows": {"a": {"metrics": {"rmse_log": float("inf"), "abs_rel": np.float32(0.5), "nan": float("nan")},
                             "per_frame": [{"a1": np.float64(-np.inf)}], "frames": np.int64(3)}}}
    text = json.dumps(evaluate.strict_json(report), allow_nan=False)
    assert json.loads(text) == {"rows": {"a": {"metrics": {"rmse_log": None, "abs_rel": 0.5, "nan": None},
                                               "per_frame": [{"a1": None}], "frames": 3}}}


def test_full_disk_while_writing_the_report_is_one_line(procedural, tmp_path, monkeypatch, caplog, capsys):
    import errno
    import os

    echo_models(monkeypatch, "read_kitti_depth")
    out_json, out_md = tmp_path / "report.json", tmp_path / "table.md"

    def refused(path, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(evaluate, "atomic_write_bytes", refused)
    with caplog.at_level(logging.ERROR, logger="training.evaluate"):
        assert evaluate.main(["--gt-root", str(procedural / "real_depth_gt"), "--kitti-root",
                              str(procedural / "real"), "--model", "unused.onnx", "--out-json", str(out_json),
                              "--out-md", str(out_md), "--no-progress"]) == 1
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and errors[0].startswith(f"cannot write {out_md}: no space left on the device"), errors
    assert "Traceback" not in capsys.readouterr().err and not out_json.exists() and not out_md.exists()

