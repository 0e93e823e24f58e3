"""Renderer v2's ray casting (procedural/raycast.py): any camera rotation, a non-flat ground, boxes."""
from __future__ import annotations

import numpy as np
import pytest

from depth_da_ros.camera import PinholeCamera
from depth_da_ros.procedural.dataset import ProceduralConfig, ProceduralDataset
from depth_da_ros.procedural.raycast import Ground, Rays, camera_rotation, cast
from depth_da_ros.procedural.render import Face
from depth_da_ros.procedural.render_v2 import camera_pose
from depth_da_ros.procedural.scene_v2 import sample_scene_v2

CAMERA = PinholeCamera.kitti_like(48, 160)
WIDE = 1e4


def flat_ground(**kwargs) -> Ground:
    return Ground(0.0, 0.0, np.array([[-WIDE, WIDE, -WIDE, WIDE, 0.0, 0.0, 0.0]]), np.zeros(1, np.uint8),
                  np.zeros((1, 4), bool), **kwargs)


@pytest.mark.parametrize("yaw, pitch, roll", [(0.0, 0.0, 0.0), (0.06, 0.03, -0.02), (-0.08, -0.025, 0.03)])
def test_boxes_and_plane_match_a_brute_force_slab_test(yaw, pitch, roll):
    rng = np.random.default_rng(1)
    centre = np.stack([rng.uniform(-15, 15, 40), rng.uniform(0, 4, 40), rng.uniform(-5, 80, 40)], -1)
    size = rng.uniform(0.2, 6.0, (40, 3))
    lo, hi = centre - size / 2, centre + size / 2
    lo[:, 1] = np.maximum(lo[:, 1], -1.0)
    rays = Rays.build(CAMERA, (0.3, 1.65, 0.0), camera_rotation(yaw, pitch, roll))
    hits = cast(rays, flat_ground(), lo, hi)
    # Reference: every pixel against every box (3-D slab test) and the plane H = 0, no culling.
    d = np.stack([rays.dx, rays.dh, rays.dz], -1)[..., None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        t0, t1 = (lo - rays.origin) / d, (hi - rays.origin) / d
    enter = np.nanmax(np.minimum(t0, t1), -1)
    leave = np.nanmin(np.maximum(t0, t1), -1)
    t_box = np.where((enter <= leave) & (enter > 0.05), enter, np.inf).min(-1)
    with np.errstate(divide="ignore"):
        t_plane = np.where(rays.dh < 0, -1.65 / rays.dh, np.inf)
    far = (np.abs(0.3 + t_plane * rays.dx) > WIDE) | (np.abs(t_plane * rays.dz) > WIDE)  # beyond the plane's edge
    t_plane[far] = np.inf
    expected = np.minimum(t_box, t_plane)
    assert (np.isfinite(hits.depth) == np.isfinite(expected)).all()
    finite = np.isfinite(expected)
    np.testing.assert_allclose(hits.depth[finite], expected[finite], rtol=1e-9)
    assert ((hits.box >= 0) == (t_box < t_plane)).mean() > 0.999  # exact ties may go either way
    assert (hits.box >= 0).sum() > 200 and (hits.piece >= 0).sum() > 200


def test_pitch_and_roll_move_the_horizon_the_right_way():
    def horizon_rows(pitch, roll):  # first ground row of the left and right image columns
        hits = cast(Rays.build(CAMERA, (0.0, 1.65, 0.0), camera_rotation(0.0, pitch, roll)), flat_ground(),
                    np.zeros((0, 3)), np.zeros((0, 3)))
        ground = np.isfinite(hits.depth)
        return ground[:, 0].argmax(), ground[:, -1].argmax()

    level = horizon_rows(0.0, 0.0)
    assert abs(level[0] - level[1]) <= 1
    down = horizon_rows(np.deg2rad(3.0), 0.0)  # looking down: the horizon climbs up the image
    assert down[0] < level[0] and down[1] < level[1]
    rolled = horizon_rows(0.0, np.deg2rad(3.0))  # x axis dips: the right side sees more ground
    assert rolled[1] < rolled[0]


def test_a_constant_grade_under_a_camera_pitched_with_it_looks_flat():
    # On a plane rising at grade g, a camera h above it (vertically) and pitched up by atan(g) sees
    # the plane as a level camera sees flat ground from h cos(atan g): depth = fy h cos / (v - cy).
    grade, h = 0.05, 1.65
    ground = Ground(grade, 0.0, np.array([[-WIDE, WIDE, -WIDE, WIDE, 0.0, 0.0, 0.0]]), np.zeros(1, np.uint8),
                    np.zeros((1, 4), bool))
    z0 = 7.0
    rays = Rays.build(CAMERA, (0.0, grade * z0 + h, z0), camera_rotation(0.0, -np.arctan(grade), 0.0))
    depth = cast(rays, ground, np.zeros((0, 3)), np.zeros((0, 3))).depth
    v = np.arange(CAMERA.height)
    below = v > CAMERA.cy
    expected = CAMERA.fy * h * np.cos(np.arctan(grade)) / (v[below] - CAMERA.cy)
    np.testing.assert_allclose(depth[below], np.repeat(expected[:, None], CAMERA.width, 1), rtol=1e-9)
    assert np.isinf(depth[~below]).all()


def test_crowned_road_and_kerb_faces_are_analytic():
    # A road 8 m wide crowned 0.1 m, a 0.15 m kerb on the right: top pixels lie on the crown's
    # parabola, kerb-face pixels on the plane x = 4 between the gutter and the kerb top.
    crown, half, kerb = 0.1, 4.0, 0.15
    pieces = np.array([[-WIDE, -half, -WIDE, WIDE, 0.0, 0.0, 0.0],
                       [-half, half, -WIDE, WIDE, crown, 0.0, -crown / half ** 2],
                       [half, WIDE, -WIDE, WIDE, kerb, 0.0, 0.0]])
    sides = np.array([[False] * 4, [False] * 4, [True, False, False, False]])
    ground = Ground(0.0, 0.0, pieces, np.zeros(3, np.uint8), sides, thickness=1.0)
    rays = Rays.build(CAMERA, (1.5, 1.65 + ground.height(1.5, 0.0), 0.0), camera_rotation(0.1, 0.0, 0.0))
    hits = cast(rays, ground, np.zeros((0, 3)), np.zeros((0, 3)))
    x, h, z = (o + hits.depth * d for o, d in zip(rays.origin, (rays.dx, rays.dh, rays.dz)))
    road = (hits.piece == 1) & (hits.face == Face.UP)
    assert road.sum() > 1000
    np.testing.assert_allclose(h[road], crown * (1 - (x[road] / half) ** 2), atol=1e-9)
    face = hits.face == Face.NEG_X
    assert face.sum() > 10 and (hits.piece[face] == 2).all()
    np.testing.assert_allclose(x[face], half, atol=1e-9)
    assert (h[face] >= -1e-9).all() and (h[face] <= kerb + 1e-9).all()


def test_v2_frames_have_no_object_against_the_camera_in_sequences():
    # The ego clearance on the non-flat ground: no box pixel inside the clearance box over the
    # camera's whole path, and nothing nearer than 1 m, in independent frames and sequences.
    for sequence_length in (1, 20):
        config = ProceduralConfig(seed=5, height=48, width=160, sequence_length=sequence_length, renderer=2)
        dataset = ProceduralDataset(config, 40)
        for i in range(0, 40, 1 if sequence_length == 1 else 4):
            frame = dataset[i]
            scene = sample_scene_v2(frame.scene_seed, travel=config.step * (sequence_length - 1))
            g = frame.geometry
            x0, x1, z0, z1, h0, h1 = scene.clearance
            boxes = g.instance >= 0
            inside = boxes & (g.world_x > x0 + 1e-3) & (g.world_x < x1 - 1e-3) & (g.world_z > z0 + 1e-3) & \
                (g.world_z < z1 - 1e-3) & (g.world_h > h0 + 1e-3) & (g.world_h < h1 - 1e-3)
            assert not inside.any(), f"frame {i}"
            assert frame.depth.min() > 1.0, f"frame {i}: {frame.depth.min():.2f} m"


def test_objects_stand_on_the_ground_and_the_camera_rides_it():
    for seed in range(8):
        scene = sample_scene_v2(seed, travel=30.0)
        b = scene.boxes
        base = b.h0 == np.array([b.h0[b.instance == i].min() for i in b.instance])
        for x, z, h in zip(((b.x0 + b.x1) / 2)[base], ((b.z0 + b.z1) / 2)[base], b.h0[base]):
            if abs(x) < 900 and -9 < z < 900:
                assert h <= scene.ground.height(x, z) + 0.6  # sills of vehicles stand up to ~0.4 m clear
        for forward in (0.0, 15.0, 30.0):
            origin, _ = camera_pose(scene, forward)
            assert origin[1] - scene.ground.height(origin[0], forward) == pytest.approx(scene.camera_height)


def test_rural_roads_have_verges_ditches_and_banks_on_the_ground():
    rural = [s for s in (sample_scene_v2(seed) for seed in range(40)) if s.sidewalks == (0.0, 0.0)]
    assert len(rural) >= 3
    grades = []
    for scene in rural:
        ground = scene.ground
        banks = ground.pieces[ground.pieces[:, 5] != 0]  # lateral slope: ditch sides and embankments
        assert len(banks) >= 2
        grades += list(banks[:, 5])
        # The ground is continuous across the verge / bank / field boundaries (only the road's edge steps).
        for x0, x1, *_ in banks:
            for x in (x0, x1):
                z = np.linspace(-5, 200, 7)
                left, right = ground.height(np.full(7, x - 1e-7), z), ground.height(np.full(7, x + 1e-7), z)
                np.testing.assert_allclose(left, right, atol=1e-5)
    assert min(grades) < 0 < max(grades)
    # Rendered: the banks are seen, and every ground pixel lies on the analytic ground.
    from depth_da_ros.procedural.render_v2 import render_geometry_v2

    on_banks = 0
    for scene in rural[:3]:
        g = render_geometry_v2(scene, CAMERA)
        ground = (g.face == Face.UP) & (g.instance < 0)
        origin, rotation = camera_pose(scene)
        rays = Rays.build(CAMERA, origin, rotation)
        t = g.depth[ground].astype(np.float64)
        x, h, z = (o + t * d[ground] for o, d in zip(origin, (rays.dx, rays.dh, rays.dz)))
        assert (np.abs(h - scene.ground.height(x, z)) < 1e-6 + 2e-7 * t).all()
        banks = scene.ground.pieces[scene.ground.pieces[:, 5] != 0]
        on_banks += sum(((x >= b[0]) & (x <= b[1]) & (z >= b[2]) & (z <= b[3])).sum() for b in banks)
    assert on_banks > 100


def test_dataset_json_records_each_frames_camera_pose(tmp_path):
    import json

    from depth_da_ros.procedural.cache import RENDER_VERSIONS
    from depth_da_ros.procedural.writer import write_domain

    config = ProceduralConfig(domain="synthetic", seed=2, height=24, width=80, renderer=2)
    folder = write_domain(tmp_path, config, 3, workers=1, progress=False)
    manifest = json.loads((folder / "dataset.json").read_text())
    assert manifest["render_version"] == RENDER_VERSIONS[2] and manifest["camera"]["fx"] == config.camera.fx
    poses = manifest["frame_camera_pose_values"]
    dataset = ProceduralDataset(config, 3)
    assert poses == [list(dataset[i].pose) for i in range(3)]
    for i, (height, pitch, roll) in enumerate(poses):
        scene = sample_scene_v2(dataset[i].scene_seed)
        assert height == pytest.approx(scene.camera_height, abs=1e-4) and 1.2 <= height <= 2.0
        grade = (scene.ground.height(scene.camera_x, 0.05) - scene.ground.height(scene.camera_x, -0.05)) / 0.1
        assert pitch == pytest.approx(np.rad2deg(scene.camera_pitch - np.arctan(grade)), abs=1e-3)
        assert abs(roll) < 6.0


def test_v2_shadows_per_pixel_agree_with_the_shadow_map():
    # v2 tests each ground pixel's own point; v1's 0.2 m map quantises it: they differ on cell edges only.
    from depth_da_ros.procedural.appearance import _ground_shadows, _ground_shadows_per_pixel
    from depth_da_ros.procedural.render_v2 import appearance_view, render_geometry_v2

    camera = PinholeCamera.kitti_like(96, 320)
    shadowed = 0
    for seed in range(4):
        scene = sample_scene_v2(seed)
        geometry, flat = appearance_view(render_geometry_v2(scene, camera), scene)
        sun = np.array([0.5, 0.4, -0.3]) / np.linalg.norm([0.5, 0.4, -0.3])
        exact, mapped = _ground_shadows_per_pixel(geometry, flat, sun), _ground_shadows(geometry, flat, sun)
        ground = (geometry.face == Face.UP) & (geometry.world_h < 0.3)
        assert (exact != mapped).sum() <= 0.03 * ground.sum()
        shadowed += exact.sum()
    assert shadowed > 500


def test_lane_markings_continue_past_the_vertical_curve():
    # The road is cut into pieces at the curve's end; every road piece carries the markings.
    from depth_da_ros.procedural.render_v2 import render_geometry_v2
    from depth_da_ros.procedural.scene import Surface

    camera = PinholeCamera.kitti_like(192, 640)
    beyond = 0
    for seed in range(6):
        scene = sample_scene_v2(seed)
        g = render_geometry_v2(scene, camera)
        marking = g.surface == Surface.LANE_MARKING
        beyond += (marking & (g.world_z > scene.ground.curve_end + 1.0)).sum()
    assert beyond > 5
