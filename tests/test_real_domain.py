"""The real target domain and the ground-prior network: road_frames crops, the flat-ground prior."""
from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from depth_da_ros.camera import KITTI_CY, KITTI_FY, KITTI_HEIGHT, PinholeCamera
from depth_da_ros.geometry import Intrinsics, horizon_window
from depth_da_ros.models.unet import ground_prior_logit
from depth_da_ros.normalization import DepthCodec
from training.config import ModelConfig
from training.datasets import KITTI_CY_FRACTION, DataSpec, build_dataset, road_frame_cy

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from bench_real import flat_ground_prior  # noqa: E402

SHARED_REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real_unlabeled"
NET = (96, 320)


@pytest.mark.parametrize("frame, source_cy, expected", [
    ((375, 1242), KITTI_CY_FRACTION, (0, 0, 1242, 375)),  # KITTI: the whole frame
    ((720, 1280), 0.5, (0, 183, 1280, 384)),  # 16:9: a band with the centre row at 46% of it
    ((720, 1280), 0.95, (0, 336, 1280, 384)),  # clamped to the frame's bottom
    ((100, 1000), 0.5, (333, 0, 333, 100)),  # wider than 10:3: centred, full height
])
def test_horizon_window_puts_the_principal_point_where_the_training_camera_has_it(frame, source_cy, expected):
    window = horizon_window(frame, NET, source_cy, KITTI_CY_FRACTION)
    assert (window.x, window.y, window.width, window.height) == expected
    if expected[1] not in (0, frame[0] - expected[3]):  # unclamped: the horizon row lands at the target
        assert (source_cy * frame[0] - window.y) / window.height == pytest.approx(KITTI_CY_FRACTION, abs=0.01)


def test_horizon_window_rejects_bad_inputs():
    with pytest.raises(ValueError, match="fractions"):
        horizon_window((720, 1280), NET, 1.5, 0.46)
    with pytest.raises(ValueError, match="positive"):
        horizon_window((0, 1280), NET, 0.5, 0.46)


def test_road_frame_cy_knows_kitti_sizes():
    assert road_frame_cy(1242, 375) == pytest.approx(KITTI_CY / KITTI_HEIGHT)
    assert road_frame_cy(1226, 370) == pytest.approx(KITTI_CY / KITTI_HEIGHT)
    assert road_frame_cy(1280, 720) == 0.5


def test_road_frames_crop_any_aspect_to_the_network_without_stretching(tmp_path):
    # A 16:9 frame with a horizontal line at its centre row and a circle: after the crop the line
    # is at the training camera's principal-point row and the circle stays round.
    image = np.full((720, 1280, 3), 90, np.uint8)
    image[358:362] = 255
    cv2.circle(image, (640, 500), 60, (0, 200, 0), -1)
    (tmp_path / "sub").mkdir()
    cv2.imwrite(str(tmp_path / "sub" / "dash.jpg"), image, [cv2.IMWRITE_JPEG_QUALITY, 98])
    cv2.imwrite(str(tmp_path / "kitti.png"), np.zeros((375, 1242, 3), np.uint8))
    dataset = build_dataset(DataSpec(kind="road_frames", root=str(tmp_path)), *NET, augment=False, seed=0)
    assert len(dataset) == 2 and not dataset.has_depth
    sample = dataset[0 if dataset.source.images[0].name == "dash.jpg" else 1]
    assert set(sample) == {"image", "index"} and sample["image"].shape == (3, *NET)
    rgb = ((sample["image"].numpy().transpose(1, 2, 0) + 1) * 127.5).astype(np.uint8)
    bright_row = int(np.argmax(rgb[:, :, 0].mean(axis=1)))
    assert bright_row == pytest.approx(KITTI_CY_FRACTION * NET[0], abs=1.5)
    green = (rgb[:, :, 1] > 150) & (rgb[:, :, 0] < 120)
    rows, cols = np.nonzero(green)
    assert np.ptp(cols) == pytest.approx(np.ptp(rows), rel=0.15)  # round, not squashed 2.5x


def test_road_frames_name_an_empty_folder(tmp_path):
    with pytest.raises(ValueError, match="no images found"):
        build_dataset(DataSpec(kind="road_frames", root=str(tmp_path)), *NET, augment=False, seed=0)


@pytest.mark.skipif(not SHARED_REAL.is_dir(), reason="../shared/data/real_unlabeled is absent (a fresh clone)")
def test_road_frames_read_the_shared_real_frames():
    dataset = build_dataset(DataSpec(kind="road_frames", root=str(SHARED_REAL), verify=False), *NET, augment=True,
                            seed=0)
    assert len(dataset) >= 200
    for index in (0, len(dataset) // 2, len(dataset) - 1):
        assert dataset[index]["image"].shape == (3, *NET)


def test_flat_ground_prior_is_the_road_depth():
    camera = Intrinsics(1242, 375, KITTI_FY, KITTI_FY, 609.5593, KITTI_CY)
    prior = flat_ground_prior(camera, height=1.65)
    v = 300
    assert prior[v, 0] == pytest.approx(KITTI_FY * 1.65 / (v - KITTI_CY), rel=1e-6)
    assert (prior[: int(KITTI_CY)] == 80.0).all() and prior.shape == (375, 1242)
    assert prior.max() == 80.0  # rows just below the horizon: farther than the cap


@pytest.mark.parametrize("encoding", ["log", "linear"])
def test_ground_prior_network_starts_at_the_flat_road(encoding):
    """An untrained residual network on a blank frame outputs about the flat-ground depth."""
    config = ModelConfig(preset="bench", depth_encoding=encoding, ground_prior=1.65)
    spec = config.spec("depth")
    torch.manual_seed(0)
    net = spec.build().eval()
    with torch.no_grad():
        depth = config.codec.decode(net(torch.zeros(1, 3, *NET)))[0, 0].numpy()
    camera = PinholeCamera.kitti_like(*NET)
    for v in (60, 75, 95):
        road = camera.fy * 1.65 / (v - camera.cy)
        assert np.median(depth[v]) == pytest.approx(road, rel=0.15)
    assert np.median(depth[10]) > 50  # sky rows: far
    # Without the prior the same network has no idea of the road.
    plain = ModelConfig(preset="bench", depth_encoding=encoding).spec("depth").build().eval()
    with torch.no_grad():
        assert "ground_prior" not in ModelConfig(preset="bench").spec("depth").kwargs
        plain(torch.zeros(1, 3, *NET))


def test_ground_prior_logit_matches_the_codec_and_refuses_bad_priors():
    prior = {"height": 1.65, "fy": 1.9241, "cy": 0.461, "min_depth": 0.5, "max_depth": 80.0, "encoding": "log"}
    logit = ground_prior_logit(prior, 96)
    depth = DepthCodec(80.0, "log", 0.5).decode(np.tanh(logit))[:, 0]
    v = 80
    assert depth[v] == pytest.approx(1.9241 * 96 * 1.65 / (v - 0.461 * 96), rel=1e-4)
    with pytest.raises(ValueError, match="keys"):
        ground_prior_logit({"height": 1.65}, 96)
    with pytest.raises(ValueError, match="must be > 0"):
        ground_prior_logit({**prior, "height": -1.0}, 96)
    with pytest.raises(ValueError, match="ground_prior"):
        ModelConfig(preset="bench", ground_prior=-1.0)
