"""Renderer v2: the invariants of renderer v1 (exact depth, ego clearance, purity, cache keys) and v1 unchanged."""
from __future__ import annotations

import hashlib

import numpy as np
import pytest

from depth_da_ros.procedural.cache import FrameCache, cache_folder
from depth_da_ros.procedural.dataset import ProceduralConfig, ProceduralDataset
from depth_da_ros.procedural.render import Face
from depth_da_ros.procedural.scene import Surface, intruding
from depth_da_ros.procedural.scene_v2 import SceneConfigV2, sample_scene_v2
from training.datasets import DataSpec, build_dataset

SIZE = dict(height=48, width=160)


def v2(domain: str = "synthetic", seed: int = 0, **kwargs) -> ProceduralDataset:
    return ProceduralDataset(ProceduralConfig(domain=domain, seed=seed, renderer=2, **SIZE, **kwargs), 12)


def test_v1_frames_are_bit_identical_to_before_v2():
    """Golden hashes of renderer-1 frames computed with the code before renderer 2 existed (f580d62)."""
    for domain, expected in (("synthetic", "aca8323bd9b41c21"), ("real", "4d32ade7f4792160")):
        dataset = ProceduralDataset(ProceduralConfig(domain=domain, seed=3, height=48, width=160), 4)
        digest = hashlib.sha256()
        for i in range(4):
            frame = dataset[i]
            digest.update(frame.rgb.tobytes())
            digest.update(frame.depth.tobytes())
        assert digest.hexdigest()[:16] == expected, domain


@pytest.mark.parametrize("domain", ["synthetic", "real"])
def test_v2_frame_is_a_pure_function_of_seed_domain_index(domain):
    a, b = v2(domain)[5], v2(domain)[5]
    assert np.array_equal(a.rgb, b.rgb) and np.array_equal(a.depth, b.depth, equal_nan=True)
    assert not np.array_equal(v2(domain)[6].rgb, a.rgb)
    assert not np.array_equal(v2(domain, seed=1)[5].rgb, a.rgb)
    assert a.rgb.shape == (48, 160, 3) and a.rgb.dtype == np.uint8 and a.depth.dtype == np.float32


def test_v2_ground_depth_is_exact_for_the_frames_own_camera():
    # Each ground pixel's world point lies on the ground surface (analytic height field), and the
    # ray from the frame's camera pose stays above the ground all the way there (the first hit).
    from depth_da_ros.procedural.raycast import Rays
    from depth_da_ros.procedural.render_v2 import camera_pose

    dataset = v2()
    for index in range(6):
        frame = dataset[index]
        scene = sample_scene_v2(frame.scene_seed)
        g = frame.geometry
        ground = (g.face == Face.UP) & (g.instance < 0)
        assert ground.sum() > 500
        origin, rotation = camera_pose(scene)
        rays = Rays.build(frame.camera, origin, rotation)
        t = frame.depth[ground].astype(np.float64)
        x, h, z = (o + t * d[ground] for o, d in zip(origin, (rays.dx, rays.dh, rays.dz)))
        # float32 depth: 6e-8 relative along the ray
        assert (np.abs(h - scene.ground.height(x, z)) < 1e-6 + 2e-7 * t).all(), index
        for fraction in np.linspace(0.05, 0.98, 12):
            px = origin[0] + fraction * (x - origin[0])
            pz = origin[2] + fraction * (z - origin[2])
            ph = origin[1] + fraction * (h - origin[1])
            assert (ph > scene.ground.height(px, pz) - 1e-6).all(), index
        assert not np.allclose(h, 0.0, atol=1e-3)  # the ground is not the plane H = 0


def test_v2_cameras_are_jittered_around_the_training_camera_and_recorded():
    dataset = v2()
    nominal = dataset.camera
    cameras = [dataset.frame_camera(i) for i in range(12)]
    assert all(abs(c.fx / nominal.fx - 1) <= 0.04 + 1e-9 for c in cameras)
    assert all(c.fy / c.fx == pytest.approx(nominal.fy / nominal.fx) and c.cx == nominal.cx for c in cameras)
    assert len({round(c.cy, 6) for c in cameras}) > 1 and len({round(c.fx, 6) for c in cameras}) > 1
    assert dataset[3].camera == cameras[3]
    heights = [sample_scene_v2(s).camera_height for s in range(40)]
    assert 1.2 <= min(heights) and max(heights) <= 2.0 and max(heights) - min(heights) > 0.4


def test_v2_scenes_keep_the_ego_clearance_and_have_the_new_objects():
    surfaces, rural, streets = set(), 0, 0
    for seed in range(60):
        scene = sample_scene_v2(seed, SceneConfigV2(), travel=20.0)
        assert not intruding(scene.boxes, scene.clearance).any(), seed
        surfaces |= set(np.unique(scene.boxes.surface).tolist())
        rural += not (scene.boxes.surface == Surface.BUILDING).sum() > 3
        streets += bool(scene.side_streets)
    assert {Surface.WALL, Surface.PERSON, Surface.SIGN, Surface.CAR, Surface.FOLIAGE} <= surfaces
    assert rural > 0 and streets > 0


def test_v2_cache_folder_has_its_own_version_and_v1_names_do_not_change(tmp_path):
    v1_config = ProceduralConfig(domain="synthetic", seed=0, height=96, width=320)
    # The name renderer 1's frames had before the renderer field existed (runs' caches stay valid).
    assert cache_folder(v1_config, tmp_path).name == "synthetic-seed0-96x320-seq1-v2-eefb0dfeb747"
    v2_folder = cache_folder(ProceduralConfig(domain="synthetic", seed=0, height=96, width=320, renderer=2), tmp_path)
    assert "-v9-" in v2_folder.name
    cache = FrameCache(v2(), tmp_path)
    rgb, depth = cache.load(2)
    assert np.array_equal(rgb, v2()[2].rgb) and cache.path(2).is_file()


def test_renderer_is_validated_and_reaches_training_datasets(tmp_path):
    with pytest.raises(ValueError, match="unknown renderer 3"):
        ProceduralConfig(renderer=3)
    with pytest.raises(ValueError, match="renderer 3 is not one of 1, 2"):
        DataSpec(renderer=3)
    with pytest.raises(ValueError, match="renderer is only read by kind 'procedural'"):
        DataSpec(kind="image_folder", root=str(tmp_path), renderer=2)
    dataset = build_dataset(DataSpec(renderer=2, length=2), 48, 160, augment=False, seed=0)
    assert "renderer 2" in dataset.source.describe()
    assert np.array_equal(dataset.source.load(1)[0], v2()[1].rgb)
