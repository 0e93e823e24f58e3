"""Procedural scenes: geometry checked analytically and against a brute-force ray caster."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from depth_da_ros.camera import PinholeCamera
from depth_da_ros.procedural import Boxes, Face, Scene, SceneConfig, Surface, render_geometry, sample_scene
from depth_da_ros.procedural.appearance import render_appearance
from depth_da_ros.procedural.dataset import ProceduralConfig, ProceduralDataset

CAMERA = PinholeCamera.kitti_like(96, 320)


def boxes(*rows) -> Boxes:
    a = np.array(rows, dtype=np.float64).reshape(-1, 6)
    n = len(a)
    return Boxes(*(a[:, i] for i in range(6)), np.full(n, Surface.BUILDING, np.uint8), np.arange(n, dtype=np.int32))


def scene_with(box_rows=(), yaw=0.0, camera_x=0.0, camera_height=1.65) -> Scene:
    return Scene(seed=0, road_left=-5.0, road_right=5.0, lane_width=3.5, lanes=2, camera_x=camera_x,
                 camera_height=camera_height, camera_yaw=yaw, boxes=boxes(*box_rows))


@pytest.mark.parametrize("yaw_deg", [0.0, 3.0, -4.0])
def test_ground_depth_is_fy_h_over_v_minus_cy(yaw_deg):
    h = 1.65
    geometry = render_geometry(scene_with(yaw=np.deg2rad(yaw_deg), camera_height=h), CAMERA)
    v = np.arange(CAMERA.height)
    below = v > CAMERA.cy
    expected = CAMERA.fy * h / (v[below] - CAMERA.cy)
    np.testing.assert_allclose(geometry.depth[below], np.repeat(expected[:, None], CAMERA.width, 1), rtol=1e-6)
    assert np.isinf(geometry.depth[~below]).all()
    assert (geometry.surface[~below] == Surface.SKY).all()
    assert (geometry.face[below] == Face.UP).all()
    np.testing.assert_allclose(geometry.world_h[below], 0.0, atol=1e-4)


def test_road_pixels_of_random_scenes_follow_the_ground_formula():
    for seed in range(5):
        scene = sample_scene(seed)
        geometry = render_geometry(scene, CAMERA)
        v, _ = np.nonzero(geometry.surface == Surface.ROAD)
        assert len(v) > 100
        expected = CAMERA.fy * scene.camera_height / (v - CAMERA.cy)
        np.testing.assert_allclose(geometry.depth[geometry.surface == Surface.ROAD], expected, rtol=1e-5)


def test_front_face_of_a_box_is_at_its_distance():
    # A wall across the view 20 m ahead, 3 m high: every pixel it covers is at exactly 20 m.
    geometry = render_geometry(scene_with([(-50, 50, 20, 30, 0, 3)]), CAMERA)
    wall = geometry.instance == 0
    assert (geometry.depth[wall] == np.float32(20.0)).all()
    assert (geometry.face[wall] == Face.NEG_Z).all()
    rows = np.nonzero(wall.any(axis=1))[0]
    top_row = CAMERA.cy + CAMERA.fy * (1.65 - 3.0) / 20.0  # v = cy + fy (h_cam - H) / Z
    bottom_row = CAMERA.cy + CAMERA.fy * 1.65 / 20.0
    assert rows.min() == int(np.ceil(top_row)) and rows.max() == int(np.floor(bottom_row))


def test_side_face_depth_is_lateral_offset_over_ray_slope():
    # A facade parallel to the road at x = 4 m: depth = 4 / ((u - cx) / fx) for columns that see it.
    geometry = render_geometry(scene_with([(4, 20, 2, 200, 0, 15)]), CAMERA)
    side = geometry.face == Face.NEG_X
    _, u = np.nonzero(side)
    assert len(u) > 100
    np.testing.assert_allclose(geometry.depth[side], 4.0 / ((u - CAMERA.cx) / CAMERA.fx), rtol=1e-5)
    np.testing.assert_allclose(geometry.world_x[side], 4.0, atol=1e-3)


def test_box_top_seen_from_above():
    # A kerb-like slab 0.5 m high: its top is a plane at H = 0.5, depth = fy (h - 0.5) / (v - cy).
    geometry = render_geometry(scene_with([(-3, 3, 5, 40, 0, 0.5)]), CAMERA)
    top = (geometry.instance == 0) & (geometry.face == Face.UP)
    v, _ = np.nonzero(top)
    assert len(v) > 50
    np.testing.assert_allclose(geometry.depth[top], CAMERA.fy * (1.65 - 0.5) / (v - CAMERA.cy), rtol=1e-5)


def brute_force_depth(scene: Scene, camera: PinholeCamera, forward: float = 0.0) -> np.ndarray:
    """Reference: every pixel's ray against the ground and every box (3-D slab test), no shortcuts."""
    v, u = np.mgrid[0:camera.height, 0:camera.width]
    xn, yn = (u - camera.cx) / camera.fx, (v - camera.cy) / camera.fy
    c, s = np.cos(scene.camera_yaw), np.sin(scene.camera_yaw)
    d = np.stack([c * xn + s, -yn, c - s * xn], -1).reshape(-1, 1, 3)  # world (X, H, Z) per metre of depth
    origin = np.array([scene.camera_x, scene.camera_height, forward])
    b = scene.boxes
    lo = np.stack([b.x0, b.h0, b.z0], -1)[None]
    hi = np.stack([b.x1, b.h1, b.z1], -1)[None]
    with np.errstate(divide="ignore", invalid="ignore"):
        t0, t1 = (lo - origin) / d, (hi - origin) / d
    t_enter = np.nanmax(np.minimum(t0, t1), -1)
    t_exit = np.nanmin(np.maximum(t0, t1), -1)
    t = np.where((t_enter <= t_exit) & (t_enter > 0.05), t_enter, np.inf).min(-1)
    ground = np.where(yn.reshape(-1) > 0, scene.camera_height / np.where(yn > 0, yn, 1).reshape(-1), np.inf)
    return np.minimum(t, ground).reshape(camera.height, camera.width)


@pytest.mark.parametrize("seed", range(6))
def test_matches_brute_force_ray_casting(seed):
    camera = PinholeCamera.kitti_like(48, 160)
    scene = sample_scene(seed, SceneConfig(), travel=10.0)
    for forward in (0.0, 7.5):
        fast = render_geometry(scene, camera, forward).depth
        slow = brute_force_depth(scene, camera, forward)
        finite = np.isfinite(slow)
        assert (np.isfinite(fast) == finite).all()
        np.testing.assert_allclose(fast[finite], slow[finite], rtol=1e-5)


def test_world_points_lie_on_their_box():
    scene = sample_scene(3)
    geometry = render_geometry(scene, CAMERA)
    b = scene.boxes
    ys, xs = np.nonzero(geometry.instance >= 0)
    for y, x in zip(ys[::37], xs[::37]):
        p = np.array([geometry.world_x[y, x], geometry.world_h[y, x], geometry.world_z[y, x]])
        mine = b.instance == geometry.instance[y, x]
        inside = ((p >= np.stack([b.x0, b.h0, b.z0], -1)[mine] - 1e-3) &
                  (p <= np.stack([b.x1, b.h1, b.z1], -1)[mine] + 1e-3)).all(-1)
        assert inside.any()


def test_scenes_contain_the_promised_street_elements():
    seen = set()
    for seed in range(10):
        seen |= set(np.unique(render_geometry(sample_scene(seed), CAMERA).surface).tolist())
    assert {Surface.SKY, Surface.ROAD, Surface.LANE_MARKING, Surface.SIDEWALK, Surface.BUILDING, Surface.CAR,
            Surface.POLE, Surface.TRUNK, Surface.FOLIAGE} <= seen


def test_frames_are_deterministic_per_seed():
    config = ProceduralConfig(domain="real", seed=7, height=64, width=192)
    a, b = ProceduralDataset(config, 3)[2], ProceduralDataset(config, 3)[2]
    np.testing.assert_array_equal(a.rgb, b.rgb)
    np.testing.assert_array_equal(a.depth, b.depth)
    c = ProceduralDataset(dataclasses.replace(config, seed=8), 3)[2]
    assert not np.array_equal(a.depth, c.depth)


def test_domains_are_unpaired_by_default_and_paired_on_request():
    synthetic = ProceduralDataset(ProceduralConfig(seed=1, height=64, width=192), 4)
    real = ProceduralDataset(ProceduralConfig(domain="real", seed=1, height=64, width=192), 4)
    paired = ProceduralDataset(ProceduralConfig(domain="real", seed=1, height=64, width=192, paired=True), 4)
    for i in range(4):
        assert not np.array_equal(synthetic[i].depth, real[i].depth)
        np.testing.assert_array_equal(synthetic[i].depth, paired[i].depth)
        assert not np.array_equal(synthetic[i].rgb, paired[i].rgb)


def test_scene_and_appearance_seeds_are_independent():
    scene = sample_scene(5)
    geometry = render_geometry(scene, CAMERA)
    looks = [render_appearance(geometry, scene, "synthetic", seed) for seed in (1, 2)]
    assert not np.array_equal(*looks)
    # Same look seed over another scene: the palette choice does not depend on the scene.
    other = sample_scene(6)
    assert render_appearance(render_geometry(other, CAMERA), other, "synthetic", 1).shape == looks[0].shape


def test_sequence_moves_the_camera_forward():
    config = ProceduralConfig(seed=2, height=96, width=320, sequence_length=5, step=2.0)
    data = ProceduralDataset(config, 5)
    first, second = data[0], data[1]
    assert data.seeds(0)[0] == data.seeds(4)[0]  # one scene per sequence
    road = (first.geometry.surface == Surface.ROAD) & (second.geometry.surface == Surface.ROAD)
    np.testing.assert_allclose(first.depth[road], second.depth[road], rtol=1e-6)  # the road looks the same
    np.testing.assert_allclose(second.geometry.world_z[road] - first.geometry.world_z[road], 2.0, atol=1e-3)


def test_real_look_is_noisier_than_synthetic():
    def roughness(image):  # mean absolute horizontal gradient over road pixels
        grad = np.abs(np.diff(image.astype(np.float32).mean(-1), axis=1))
        return grad[road[:, 1:]].mean()

    scene = sample_scene(4)
    geometry = render_geometry(scene, CAMERA)
    road = geometry.surface == Surface.ROAD
    synthetic = render_appearance(geometry, scene, "synthetic", 0)
    real = render_appearance(geometry, scene, "real", 0)
    assert roughness(real) > 2 * roughness(synthetic)


def test_unknown_domain_is_rejected():
    with pytest.raises(ValueError, match="known: synthetic, real"):
        ProceduralConfig(domain="sim")


# -- the ego vehicle's clearance ------------------------------------------------------------------
# Any lane layout, independent frames or driving sequences: no object may stand in the space the
# ego vehicle sweeps. A camera inside a car body put walls at 0.2-0.9 m in up to 30% of frames.
CLEARANCE_MODES = [
    pytest.param({}, 1, id="defaults-independent"),
    pytest.param({}, 50, id="defaults-sequences"),
    pytest.param({"lanes": (1, 1)}, 1, id="one-lane"),
    pytest.param({"lanes": (2, 2)}, 50, id="two-lanes-sequences"),
    pytest.param({"lanes": (4, 4), "moving_cars": (6, 6), "parked_car_probability": 1.0}, 20,
                 id="dense-traffic-sequences"),
    pytest.param({"lateral_jitter": 3.0, "tree_probability": 1.0}, 10, id="wild-jitter-trees"),
]


@pytest.mark.parametrize("overrides, sequence_length", CLEARANCE_MODES)
def test_no_object_enters_the_ego_clearance(overrides, sequence_length):
    from depth_da_ros.procedural.scene import intruding

    config = SceneConfig(**overrides)
    travel = 1.0 * (sequence_length - 1)
    for seed in range(200):
        scene = sample_scene(seed, config, travel=travel)
        x0, x1, z0, z1, h0, h1 = scene.clearance
        assert x1 - x0 == pytest.approx(2 * config.ego_half_width) and z1 == pytest.approx(travel + 5.0)
        assert scene.road_left <= x0 and x1 <= scene.road_right
        assert not intruding(scene.boxes, scene.clearance).any(), f"seed {seed}"


@pytest.mark.parametrize("overrides, sequence_length", CLEARANCE_MODES)
def test_rendered_frames_have_no_object_against_the_camera(overrides, sequence_length):
    # No rendered surface point lies inside the clearance box (the road under it is its floor), and
    # nothing is nearer than 1 m: beside or above the box, a KITTI-like camera sees it from >= ~1.2 m.
    config = ProceduralConfig(domain="synthetic", seed=7, height=48, width=160, sequence_length=sequence_length,
                              scene=SceneConfig(**overrides))
    dataset = ProceduralDataset(config, 60 if sequence_length == 1 else 3 * sequence_length)
    stride = 1 if sequence_length == 1 else 3
    for i in range(0, len(dataset), stride):
        frame = dataset[i]
        g = frame.geometry
        scene = sample_scene(frame.scene_seed, config.scene, travel=config.step * (sequence_length - 1))
        x0, x1, z0, z1, h0, h1 = scene.clearance
        eps = 1e-3
        inside = ((g.world_x > x0 + eps) & (g.world_x < x1 - eps) & (g.world_z > z0 + eps) & (g.world_z < z1 - eps)
                  & (g.world_h > h0 + eps) & (g.world_h < h1 - eps))
        assert not inside.any(), f"frame {i}: {inside.sum()} pixels inside the ego clearance"
        assert frame.depth.min() > 1.0, f"frame {i}: {frame.depth.min():.2f} m"


def test_clearance_removes_the_whole_object():
    from depth_da_ros.procedural.scene import remove_intruders

    rows = [(-0.5, 0.5, 2.0, 6.0, 0.2, 1.0), (-0.4, 0.4, 3.0, 5.0, 1.0, 1.5), (4.0, 5.0, 2.0, 6.0, 0.2, 1.0)]
    a = np.array(rows)
    b = Boxes(*(a[:, i] for i in range(6)), np.full(3, Surface.CAR, np.uint8), np.array([0, 0, 1], np.int32))
    kept = remove_intruders(b, (-1.0, 1.0, -3.0, 5.0, 0.0, 1.95))
    assert len(kept) == 1 and kept.instance.tolist() == [1]
    # A box that only touches the clearance's face stays.
    assert len(remove_intruders(b, (-4.0, -0.5, -3.0, 5.0, 0.0, 1.95))) == 3
