"""``make demo`` (depth_da_demo): the PLY writer, the model lookup, and the whole chain on a tiny
model over real DDS (render -> bag -> node -> record -> demo_out/), after which no child process
of the demo is left.

The model is untrained, so its metric values mean nothing: the chain test checks that every output
is there, consistent with what was recorded, and finite.
"""
from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from depth_da_ros.demo import (
    ADAPTED,
    COLORIZED,
    DEPTH,
    POINTS,
    STRIP_FRAMES,
    DemoError,
    choose_shown,
    find_model,
    main,
)
from depth_da_ros.pointcloud_io import cloud_arrays, write_ply
from depth_da_ros.geometry import Intrinsics, build_point_cloud
from depth_da_ros.metrics import METRIC_NAMES
from depth_da_ros.node_parameters import BUNDLED_MODEL
from test_bags import ROOT, ROS_MISSING, next_domain_id, read_bag  # the bag tests' DDS helpers

PLY_TYPES = {"float": "<f4", "uchar": "u1"}


def read_ply(path: Path) -> tuple[list[str], np.ndarray]:
    """(header lines, vertex records) of a binary little-endian PLY with one vertex element."""
    data = path.read_bytes()
    end = data.index(b"end_header\n") + len(b"end_header\n")
    header = data[:end].decode("ascii").splitlines()
    assert header[:2] == ["ply", "format binary_little_endian 1.0"]
    count = next(int(line.split()[2]) for line in header if line.startswith("element vertex"))
    fields = [(line.split()[2], PLY_TYPES[line.split()[1]]) for line in header if line.startswith("property")]
    vertices = np.frombuffer(data[end:], dtype=fields)
    assert len(vertices) == count
    return header, vertices


def test_ply_round_trip_with_and_without_colour(tmp_path):
    rng = np.random.default_rng(0)
    xyz = rng.normal(size=(50, 3)).astype(np.float32)
    rgb = rng.integers(0, 256, (50, 3), dtype=np.uint8)
    write_ply(tmp_path / "c.ply", xyz, rgb, comment="test cloud")
    header, vertices = read_ply(tmp_path / "c.ply")
    assert "comment test cloud" in header
    assert vertices.dtype.names == ("x", "y", "z", "red", "green", "blue")
    assert np.array_equal(np.stack([vertices[n] for n in "xyz"], 1), xyz)
    assert np.array_equal(np.stack([vertices[n] for n in ("red", "green", "blue")], 1), rgb)

    write_ply(tmp_path / "p.ply", xyz[:0])
    _, vertices = read_ply(tmp_path / "p.ply")
    assert vertices.dtype.names == ("x", "y", "z") and len(vertices) == 0


def test_ply_rejects_bad_input(tmp_path):
    with pytest.raises(ValueError, match=r"\(N, 3\) points"):
        write_ply(tmp_path / "x.ply", np.zeros((4, 2)))
    with pytest.raises(ValueError, match="uint8 colours"):
        write_ply(tmp_path / "x.ply", np.zeros((4, 3)), np.zeros((4, 3), np.float32))


def test_cloud_arrays_keep_the_finite_points_and_their_colours():
    depth = np.full((6, 8), 5.0, np.float32)
    depth[2, 3] = np.nan
    depth[0, :] = 100.0  # beyond max_depth: NaN in the organised cloud
    rgb = np.random.default_rng(1).integers(0, 256, (6, 8, 3), dtype=np.uint8)
    buffer = build_point_cloud(depth, Intrinsics(8, 6, 4.0, 4.0, 4.0, 3.0), rgb=rgb, max_depth=60.0)
    msg = SimpleNamespace(fields=buffer.fields, data=buffer.data, height=buffer.height, width=buffer.width,
                          point_step=buffer.point_step, row_step=buffer.row_step, is_bigendian=False)
    xyz, colours = cloud_arrays(msg)
    valid = np.isfinite(buffer.points).all(axis=2)
    assert valid.sum() == 6 * 8 - 8 - 1 == len(xyz)
    assert np.array_equal(xyz, buffer.points[valid]) and np.array_equal(colours, rgb[valid])


def test_model_lookup(tmp_path):
    with pytest.raises(DemoError, match="does not exist"):
        find_model(tmp_path / "missing.onnx")
    checkout, share = tmp_path / "checkout", tmp_path / "share"
    with pytest.raises(DemoError, match="bench_sim2real.py") as error:
        find_model(None, [checkout, share])
    assert str(checkout / BUNDLED_MODEL) in str(error.value) and str(share / BUNDLED_MODEL) in str(error.value)
    (share / BUNDLED_MODEL).parent.mkdir(parents=True)
    (share / BUNDLED_MODEL).write_bytes(b"model")
    assert find_model(None, [checkout, share]) == share / BUNDLED_MODEL
    (checkout / BUNDLED_MODEL).parent.mkdir(parents=True)
    (checkout / BUNDLED_MODEL).write_bytes(b"model")
    assert find_model(None, [checkout, share]) == checkout / BUNDLED_MODEL  # the checkout's is the freshest


def test_missing_model_is_a_clear_error(tmp_path, caplog):
    assert main(["--out", str(tmp_path / "out"), "--model", str(tmp_path / "none.onnx")]) == 2
    assert "none.onnx does not exist" in caplog.text


def test_strips_and_cloud_come_from_frames_the_node_published():
    stamps = list(range(100, 112))
    everything = {DEPTH: set(stamps), COLORIZED: set(stamps), ADAPTED: set(stamps), POINTS: set(stamps)}
    pictures, cloud = choose_shown(stamps, everything, [COLORIZED, ADAPTED])
    assert pictures == [100, 104, 107, 111] and cloud == 106  # spread over the drive; the middle frame
    # A loaded machine: the middle frame's cloud and some pictures were never published.
    dropped = {DEPTH: set(stamps) - {103}, COLORIZED: set(stamps) - {100, 111}, ADAPTED: set(stamps) - {105},
               POINTS: {101, 108, 109}}
    pictures, cloud = choose_shown(stamps, dropped, [COLORIZED, ADAPTED])
    assert len(pictures) == STRIP_FRAMES and not {100, 103, 105, 111} & set(pictures)
    assert cloud == 108  # the published cloud nearest the middle
    assert choose_shown(stamps, {DEPTH: set(stamps)}, [COLORIZED]) == ([], None)  # nothing to show: no file


# --- the chain ------------------------------------------------------------------------------------

CHAIN_TIMEOUT = 180.0  # s: the node imports torch and loads its model on a busy 2-core machine
FRAMES, HEIGHT, WIDTH = 4, 96, 320


def processes_mentioning(text: str) -> list[str]:
    """Command lines of live processes whose arguments contain ``text``."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().split(b"\0")
        except OSError:  # ended meanwhile
            continue
        if any(text.encode() in a for a in args):
            found.append(" ".join(a.decode(errors="replace") for a in args))
    return found


@pytest.fixture(scope="module")
def tiny_fused_onnx(tmp_path_factory) -> Path:
    from model_fixtures import write_depth_checkpoint, write_style_checkpoint

    from depth_da_ros.export import export_onnx

    root = tmp_path_factory.mktemp("demo_model")
    out = root / "tiny.onnx"
    export_onnx(out, write_depth_checkpoint(root / "depth.pt"), write_style_checkpoint(root / "style.pt"))
    return out


@pytest.mark.slow
@pytest.mark.skipif(bool(ROS_MISSING), reason=ROS_MISSING or "ROS 2 Python is installed")
def test_demo_chain_writes_every_output_and_leaves_no_process(tiny_fused_onnx, tmp_path):
    out = tmp_path / "demo_out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "depth_da_ros.demo", "--out", str(out), "--model", str(tiny_fused_onnx),
         "--frames", str(FRAMES), "--height", str(HEIGHT), "--width", str(WIDTH), "--rate", "1.0", "--scenes", "1",
         "--domain-id", str(next_domain_id()), "--keep-work"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        stdout, stderr = proc.communicate(timeout=CHAIN_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGINT)  # the demo stops its children before it exits
        try:
            stdout, stderr = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            stdout, stderr = proc.communicate()
    logs = "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')}" for p in sorted((out / "logs").glob("*.log")))
    assert proc.returncode == 0, f"{stdout}\n{stderr}\n{logs}"
    assert processes_mentioning(str(tmp_path)) == [], "child processes of the demo are still running"

    summary = json.loads((out / "summary.json").read_text())
    assert summary["frames"] == FRAMES and summary["depth_images"] == FRAMES, summary
    assert set(summary["processes"]) == {"node", "record", "replay"}
    assert all(p["returncode"] is not None for p in summary["processes"].values())
    assert summary["latency_ms"]["p50"] > 0 and summary["output_fps"] > 0
    assert "latency" in stdout and "depth images" in stdout  # the printed summary

    # Strips: a header with the column labels, one row per frame of input | adapted | predicted |
    # ground truth at half size, and a colour bar in metres.
    strips = cv2.imread(str(out / "strips.png"))
    assert strips.shape[1] == 4 * WIDTH // 2 and strips.shape[0] - 4 * HEIGHT // 2 == 44 + 34
    assert cv2.imread(str(out / "sample_sheet.png")) is not None
    # Every frame was processed (the node's every-frame mode) and the summary names what it wrote.
    assert summary["frames_without_depth"] == [] and len(summary["strip_frames"]) == FRAMES
    assert any(w.startswith("point_cloud.ply (frame 2,") for w in summary["written"]), summary["written"]
    assert "point_cloud.ply (frame 2," in stdout

    # The PLY holds the middle frame's recorded cloud: its finite points, with their colours.
    recorded = read_bag(out / "work" / "recorded")
    stamps = sorted(m.header.stamp.sec * 10**9 + m.header.stamp.nanosec for _, m in recorded["/depth/image"])
    cloud = next(m for _, m in recorded["/points"]
                 if m.header.stamp.sec * 10**9 + m.header.stamp.nanosec == stamps[FRAMES // 2])
    points = np.frombuffer(bytes(cloud.data), "<f4").reshape(-1, cloud.point_step // 4)[:, :3]
    header, vertices = read_ply(out / "point_cloud.ply")
    assert vertices.dtype.names == ("x", "y", "z", "red", "green", "blue")
    assert len(vertices) == np.isfinite(points).all(1).sum() == summary["point_cloud_points"]
    assert (cloud.height, cloud.width) == (HEIGHT // 2, WIDTH // 2)  # the demo's cloud decimation of 2

    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["frames"] == FRAMES
    for row in ("metric", "median-scaled"):
        assert all(np.isfinite(metrics[row][name]) for name in METRIC_NAMES), metrics
    assert "| metric |" in (out / "metrics.md").read_text()
