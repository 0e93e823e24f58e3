"""Synthetic sources people train on: Virtual KITTI 2 (16-bit centimetre depth, its folder layout and
intrinsics file) and CARLA (depth encoded in RGB), on tiny folders the tests write."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from depth_da_ros.depth_io import decode_carla_depth, encode_carla_depth, read_carla_depth, read_vkitti2_depth
from training.common import training_camera
from training.datasets import DataSpec, DatasetError, build_dataset, read_vkitti2_intrinsics, source_camera

H, W = 10, 14
VK_FX, VK_CX, VK_CY = 725.0087, 620.5, 187.0


def test_carla_decoding_follows_the_documented_formula():
    # normalized = (R + G * 256 + B * 256^2) / (256^3 - 1); metres = 1000 * normalized
    rgb = np.array([[[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1], [255, 255, 255], [10, 20, 30]]], np.uint8)
    expected = 1000.0 * np.array([0, 1, 256, 65536, 16777215, 10 + 20 * 256 + 30 * 65536]) / 16777215
    metres = decode_carla_depth(rgb)
    assert metres.dtype == np.float32
    np.testing.assert_allclose(metres[0, [0, 1, 2, 3, 5]], expected[[0, 1, 2, 3, 5]], rtol=1e-6)
    assert np.isinf(metres[0, 4])  # the far plane (sky)
    back = decode_carla_depth(encode_carla_depth(np.array([[0.5, 12.345, 999.0, np.inf]])))
    np.testing.assert_allclose(back[0, :3], [0.5, 12.345, 999.0], atol=1000 / 16777215)
    assert np.isinf(back[0, 3])
    with pytest.raises(ValueError, match="uint8"):
        decode_carla_depth(np.zeros((2, 2, 3), np.uint16))


def test_vkitti2_depth_is_centimetres_with_far_clip_as_inf(tmp_path):
    codes = np.array([[0, 1, 150, 65534, 65535]], np.uint16)
    cv2.imwrite(str(tmp_path / "depth_00000.png"), codes)
    metres = read_vkitti2_depth(tmp_path / "depth_00000.png")
    np.testing.assert_allclose(metres[0, :4], [0.0, 0.01, 1.5, 655.34], rtol=1e-6)
    assert np.isinf(metres[0, 4])
    cv2.imwrite(str(tmp_path / "rgb16.png"), np.zeros((2, 2, 3), np.uint16))
    with pytest.raises(ValueError, match="3 channels, expected 1"):
        read_vkitti2_depth(tmp_path / "rgb16.png")


def make_vkitti2(root: Path, scenes=("Scene01", "Scene02"), variations=("clone", "fog"), frames=2) -> Path:
    for scene in scenes:
        for variation in variations:
            base = root / scene / variation
            (base / "intrinsic.txt").parent.mkdir(parents=True, exist_ok=True)
            rows = ["frame cameraID K[0,0] K[1,1] K[0,2] K[1,2]"]
            rows += [f"{i} {cam} {VK_FX} {VK_FX} {VK_CX} {VK_CY}" for i in range(frames) for cam in (0, 1)]
            (base / "intrinsic.txt").write_text("\n".join(rows) + "\n")
            for i in range(frames):
                for cam in ("Camera_0", "Camera_1"):
                    rgb_dir, depth_dir = base / "frames" / "rgb" / cam, base / "frames" / "depth" / cam
                    rgb_dir.mkdir(parents=True, exist_ok=True)
                    depth_dir.mkdir(parents=True, exist_ok=True)
                    cv2.imwrite(str(rgb_dir / f"rgb_{i:05d}.jpg"), np.full((H, W, 3), 40 * i, np.uint8))
                    depth = np.full((H, W), 100 * (i + 1), np.uint16)  # (i + 1) metres
                    depth[0, 0] = 65535
                    cv2.imwrite(str(depth_dir / f"depth_{i:05d}.png"), depth)
    return root


def test_vkitti2_dataset_layout_variation_and_camera(tmp_path):
    root = make_vkitti2(tmp_path / "vkitti2")
    dataset = build_dataset(DataSpec(kind="vkitti2", root=str(root)), H, W, False, 0)
    assert len(dataset) == 2 * 2 * 2 and dataset.has_depth  # scenes x variations x frames, Camera_0 only
    paths = [image for image, _ in dataset.source.items]
    assert all("Camera_0" in str(p) for p in paths)
    rgb, depth = dataset.source.load(1)
    assert depth[5, 5] == 2.0 and np.isinf(depth[0, 0])
    fog = build_dataset(DataSpec(kind="vkitti2", root=str(root), variation="fog"), H, W, False, 0)
    assert len(fog) == 4 and all("/fog/" in str(image) for image, _ in fog.source.items)
    assert read_vkitti2_intrinsics(root / "Scene01" / "clone" / "intrinsic.txt") == {
        0: (VK_FX, VK_FX, VK_CX, VK_CY), 1: (VK_FX, VK_FX, VK_CX, VK_CY)}
    spec = DataSpec(kind="vkitti2", root=str(root))
    camera = source_camera(spec)
    assert (camera.width, camera.height, camera.fx, camera.cx, camera.cy) == (W, H, VK_FX, VK_CX, VK_CY)
    assert training_camera(spec, 5, 7)["fx"] == pytest.approx(VK_FX / 2)


def test_vkitti2_errors_name_the_files(tmp_path):
    root = make_vkitti2(tmp_path / "vkitti2", scenes=("Scene01",), variations=("clone",))
    with pytest.raises(DatasetError, match=r"no Virtual KITTI 2 images found; looked for .*Scene\*/morning/.*; "
                                           "variations found: clone"):
        build_dataset(DataSpec(kind="vkitti2", root=str(root), variation="morning"), H, W, False, 0)
    (root / "Scene01/clone/frames/depth/Camera_0/depth_00001.png").unlink()
    with pytest.raises(DatasetError, match=r"rgb_00001\.jpg has no depth file .*depth_00001\.png"):
        build_dataset(DataSpec(kind="vkitti2", root=str(root)), H, W, False, 0)
    (root / "Scene01/clone/intrinsic.txt").write_text("frame cameraID K[0,0] K[1,1] K[0,2] K[1,2]\n0 0 abc\n")
    with pytest.raises(DatasetError, match=r"intrinsic\.txt:2: expected 'frame cameraID fx fy cx cy'"):
        read_vkitti2_intrinsics(root / "Scene01/clone/intrinsic.txt")
    with pytest.raises(ValueError, match="variation is only read by kind 'vkitti2'"):
        DataSpec(kind="synthia", root="x", variation="clone")


def make_carla(root: Path, frames=3) -> Path:
    (root / "rgb").mkdir(parents=True)
    (root / "depth").mkdir(parents=True)
    for i in range(frames):
        cv2.imwrite(str(root / "rgb" / f"{i:06d}.png"), np.full((H, W, 3), 30 * i, np.uint8))
        metres = np.full((H, W), 2.5 * (i + 1))
        metres[0, 0] = np.inf  # sky
        rgb = encode_carla_depth(metres)
        bgra = np.dstack([rgb[..., ::-1], np.full((H, W), 255, np.uint8)])  # as CARLA saves its BGRA buffer
        cv2.imwrite(str(root / "depth" / f"{i:06d}.png"), bgra)
    return root


def test_carla_dataset_depth_and_camera(tmp_path):
    root = make_carla(tmp_path / "carla")
    assert read_carla_depth(root / "depth" / "000001.png")[3, 3] == pytest.approx(5.0, abs=1e-4)
    dataset = build_dataset(DataSpec(kind="carla", root=str(root)), H, W, False, 0)
    assert len(dataset) == 3 and dataset.has_depth
    _, depth = dataset.source.load(2)
    assert depth[5, 5] == pytest.approx(7.5, abs=1e-4) and np.isinf(depth[0, 0])
    spec = DataSpec(kind="carla", root=str(root), fov=60.0)
    camera = source_camera(spec)
    assert camera.fx == pytest.approx(W / (2 * np.tan(np.radians(30)))) and camera.fy == camera.fx
    assert (camera.cx, camera.cy) == (W / 2, H / 2)
    # the same depth through image_folder (any other folder layout)
    other = build_dataset(DataSpec(kind="image_folder", root=str(root / "rgb"), depth_root=str(root / "depth"),
                                   depth_format="carla"), H, W, False, 0)
    assert other.source.load(2)[1][5, 5] == pytest.approx(7.5, abs=1e-4)


def test_carla_errors(tmp_path):
    root = make_carla(tmp_path / "carla")
    cv2.imwrite(str(root / "depth" / "000001.png"), np.zeros((H, W), np.uint16))  # a 16-bit gray image
    with pytest.raises(DatasetError, match=r"000001\.png is a 16-bit PNG of 1 channel\(s\), expected the raw CARLA"):
        build_dataset(DataSpec(kind="carla", root=str(root)), H, W, False, 0)
    (root / "depth" / "000002.png").unlink()
    with pytest.raises(DatasetError, match=r"000002\.png has no depth file"):
        build_dataset(DataSpec(kind="carla", root=str(root)), H, W, False, 0)
    with pytest.raises(DatasetError, match=r"carla/rgb/rgb does not exist: kind 'carla' expects "
                                           r".*rgb/rgb/\*\*/\*\.png\|jpg and the raw depth"):
        build_dataset(DataSpec(kind="carla", root=str(root / "rgb")), H, W, False, 0)
    with pytest.raises(ValueError, match=r"fov must be .* in \(0, 180\)"):
        DataSpec(kind="carla", root="x", fov=180.0)
    with pytest.raises(ValueError, match="fov is only read by kind 'carla'"):
        DataSpec(kind="image_folder", root="x", fov=70.0)
