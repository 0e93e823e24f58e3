"""Depth files and the procedural dataset writer: what is written reads back as metres."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from depth_da_ros.depth_io import read_kitti_depth, read_synthia_depth, write_kitti_depth, write_synthia_depth
from depth_da_ros.kitti import KittiCalibration, read_calib_file
from depth_da_ros.normalization import DepthCodec, image_to_network, network_to_image
from depth_da_ros.procedural import SceneConfig
from depth_da_ros.procedural.dataset import ProceduralConfig, ProceduralDataset
from depth_da_ros.procedural.writer import KITTI_DATE, drive_name, frame_paths, main as render_main


def test_synthia_depth_round_trip(tmp_path):
    metres = np.array([[0.0, 1.234, 80.0], [655.33, np.inf, np.nan]], np.float32)
    write_synthia_depth(tmp_path / "d.png", metres)
    raw = cv2.imread(str(tmp_path / "d.png"), cv2.IMREAD_UNCHANGED)
    assert raw.dtype == np.uint16 and raw.shape == (2, 3, 3)  # 16-bit, 3 channels, as SYNTHIA
    back = read_synthia_depth(tmp_path / "d.png")
    np.testing.assert_allclose(back[0], [0.0, 1.23, 80.0], atol=0.005)
    assert back[1, 0] == pytest.approx(655.33, abs=0.005) and np.isinf(back[1, 1:]).all()


def test_kitti_depth_round_trip(tmp_path):
    metres = np.array([[0.0, 5.5, 79.99, 300.0, np.nan, np.inf]], np.float32)
    write_kitti_depth(tmp_path / "d.png", metres)
    back = read_kitti_depth(tmp_path / "d.png")
    np.testing.assert_allclose(back[0, 1:3], [5.5, 79.99], atol=1 / 512)
    assert np.isnan(back[0, [0, 3, 4, 5]]).all()


def test_8bit_depth_is_refused(tmp_path):
    cv2.imwrite(str(tmp_path / "d8.png"), np.full((4, 4), 100, np.uint8))
    with pytest.raises(ValueError, match="expected 16-bit"):
        read_kitti_depth(tmp_path / "d8.png")
    with pytest.raises(OSError, match="cannot read"):
        read_synthia_depth(tmp_path / "missing.png")


def test_depth_codec_round_trips_metres():
    for codec in (DepthCodec(80.0), DepthCodec(80.0, "log", 0.5)):
        metres = np.array([0.5, 1.0, 10.0, 79.9], np.float32)
        encoded = codec.encode(metres)
        assert encoded.min() >= -1 and encoded.max() <= 1
        np.testing.assert_allclose(codec.decode(encoded), metres, rtol=1e-5)
        assert codec.encode(np.array([np.inf]))[0] == pytest.approx(1.0)  # sky saturates at max depth
    with pytest.raises(ValueError, match="unknown depth encoding"):
        DepthCodec(80.0, "inverse")


def test_image_contract_maps_uint8_to_unit_range_and_back():
    values = np.arange(256, dtype=np.float32)
    x = image_to_network(values)
    assert x[0] == -1.0 and x[-1] == 1.0
    np.testing.assert_array_equal(np.round(network_to_image(x)), values)


def test_writer_produces_the_real_formats(tmp_path):
    assert render_main(["--out", str(tmp_path), "--frames", "3", "--height", "64", "--width", "192",
                        "--workers", "2", "--set", "scene.lanes=[2, 2]"]) == 0
    for domain in ("synthetic", "real"):
        config = ProceduralConfig(domain=domain, height=64, width=192, scene=SceneConfig(lanes=(2, 2)))
        expected = ProceduralDataset(config, 3)
        for i in range(3):
            paths = frame_paths(tmp_path, domain, i)
            rgb = cv2.cvtColor(cv2.imread(str(paths["rgb"])), cv2.COLOR_BGR2RGB)
            np.testing.assert_array_equal(rgb, expected[i].rgb)
            depth = (read_synthia_depth if domain == "synthetic" else read_kitti_depth)(paths["depth"])
            truth = expected[i].depth
            near = np.isfinite(truth) & (truth < 200)
            np.testing.assert_allclose(depth[near], truth[near], atol=0.006)
        manifest = json.loads((tmp_path / domain / "dataset.json").read_text())
        assert manifest["frames"] == 3 and manifest["config"]["scene"]["lanes"] == [2, 2]
    assert (tmp_path / "synthetic" / "Depth" / "Depth" / "0000000.png").is_file()
    drive = tmp_path / "real" / KITTI_DATE / drive_name(0)
    assert len((drive / "image_02" / "timestamps.txt").read_text().splitlines()) == 3
    calib = KittiCalibration.from_dir(tmp_path / "real" / KITTI_DATE, cam=2)
    camera = ProceduralConfig(height=64, width=192).camera
    np.testing.assert_allclose(calib.P_rect, camera.P, rtol=1e-6)
    assert tuple(read_calib_file(tmp_path / "real" / KITTI_DATE / "calib_cam_to_cam.txt")["S_rect_02"]) == (192, 64)
