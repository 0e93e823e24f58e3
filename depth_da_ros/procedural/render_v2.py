"""Renderer v2's geometry pass: v1's exact ray casting, the v2 ground labels, a jittered camera.

``render_geometry_v2`` casts the rays with ``render.render_geometry`` (exact depth for boxes on
a flat ground) and then labels the ground of v2 scenes: side streets are road surface across
the verges, and tram rails are metal strips in the road. ``frame_camera`` is the camera of one
frame: the training camera with its focal length scaled by up to ±4% and its principal-point
row moved by a small pitch (±1.5°: a level horizon moves by fy * tan(pitch) rows). Moving the
principal point renders an exact pinhole camera whose horizon sits where a pitched one's does;
the camera's pitch and roll relative to the road, and the road's grade and camber under the car,
are those of the scene (``SceneV2.camera_pitch``/``camera_roll``, ``SceneV2.ground``).

A scene on a non-flat ground (``SceneV2.ground``, the default of ``sample_scene_v2``) is cast by
``raycast.cast``: the camera stands ``camera_height`` above the ground under it, pitched with the
road's grade there and rolled with its camber, plus its mount pitch and roll; the depth of every
pixel is exact for the ground pieces (quadratic tops, kerb faces) and boxes that are rendered.
"""
from __future__ import annotations

import numpy as np

from ..camera import PinholeCamera
from .raycast import Rays, camera_rotation, cast
from .render import DASH_LENGTH, DASH_PERIOD, LINE_HALF_WIDTH, Face, Geometry, render_geometry
from .scene import Surface
from .scene_v2 import SceneV2

FOCAL_JITTER = 0.04  # relative
PITCH_DEG = 1.5
RAIL_HALF_WIDTH = 0.04  # metres


def frame_camera(nominal: PinholeCamera, rng: np.random.Generator) -> PinholeCamera:
    """``nominal`` with its focal length scaled by 1 ± ``FOCAL_JITTER`` and its principal point
    moved vertically by a pitch of up to ± ``PITCH_DEG`` degrees (drawn from ``rng``)."""
    scale = 1.0 + rng.uniform(-FOCAL_JITTER, FOCAL_JITTER)
    fx, fy = nominal.fx * scale, nominal.fy * scale
    cy = nominal.cy + fy * np.tan(np.deg2rad(rng.uniform(-PITCH_DEG, PITCH_DEG)))
    return PinholeCamera(nominal.width, nominal.height, fx, fy, nominal.cx, float(cy))


def render_geometry_v2(scene: SceneV2, camera: PinholeCamera, forward: float = 0.0) -> Geometry:
    """``render.render_geometry`` plus the v2 ground labels (side streets, tram rails); scenes on a
    non-flat ground go through ``raycast`` (``render_on_ground``)."""
    if scene.ground is not None:
        return render_on_ground(scene, camera, forward)
    geometry = render_geometry(scene, camera, forward)
    ground = (geometry.face == Face.UP) & (geometry.instance < 0)
    if scene.side_streets and ground.any():
        z = geometry.world_z
        crossing = np.zeros_like(ground)
        for z0, z1 in scene.side_streets:
            crossing |= (z >= z0) & (z <= z1)
        geometry.surface[ground & crossing & (geometry.surface == Surface.TERRAIN)] = Surface.ROAD
    for rail in scene.rails:
        on_rail = ground & (np.abs(geometry.world_x - rail) < RAIL_HALF_WIDTH)
        geometry.surface[on_rail & (geometry.surface != Surface.SIDEWALK)] = Surface.POLE
    return geometry


def camera_attitude(scene: SceneV2, forward: float = 0.0) -> tuple[float, float, float]:
    """(height of the camera over the world's H = 0, pitch, roll) in radians, relative to level
    (``camera_rotation``'s conventions: pitch > 0 looks down), ``forward`` metres along the road:
    ``camera_height`` above the ground under it, pitched with the road's grade there and rolled
    with its camber (a car sits on the road), plus the mount's pitch and roll."""
    ground = scene.ground
    x, z = scene.camera_x, forward
    eps = 0.05
    h, ahead, behind, right, left = ground.height([x, x, x, x + eps, x - eps], [z, z + eps, z - eps, z, z])
    pitch = scene.camera_pitch - np.arctan((ahead - behind) / (2 * eps))
    roll = scene.camera_roll - np.arctan((right - left) / (2 * eps))
    return float(h + scene.camera_height), float(pitch), float(roll)


def camera_pose(scene: SceneV2, forward: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """(origin (X, H, Z), camera-to-world rotation) of the camera ``forward`` metres along the road
    (``camera_attitude``)."""
    height, pitch, roll = camera_attitude(scene, forward)
    return np.array([scene.camera_x, height, forward]), camera_rotation(scene.camera_yaw, pitch, roll)


def render_on_ground(scene: SceneV2, camera: PinholeCamera, forward: float = 0.0) -> Geometry:
    """Exact ray casting of a v2 scene on its non-flat ground (``raycast.cast``), with labels."""
    origin, rotation = camera_pose(scene, forward)
    rays = Rays.build(camera, origin, rotation)
    b = scene.boxes
    hits = cast(rays, scene.ground, np.stack([b.x0, b.h0, b.z0], -1), np.stack([b.x1, b.h1, b.z1], -1))
    depth = hits.depth
    sky = ~np.isfinite(depth)
    with np.errstate(invalid="ignore"):
        world = [(origin[i] + depth * d).astype(np.float32) for i, d in enumerate((rays.dx, rays.dh, rays.dz))]
    for a in world:
        a[sky] = np.nan
    world_x, world_h, world_z = world
    on_box = hits.box >= 0
    on_ground = hits.piece >= 0
    surface = np.zeros(depth.shape, np.uint8)
    instance = np.full(depth.shape, -1, np.int32)
    surface[on_box] = b.surface[hits.box[on_box]]
    instance[on_box] = b.instance[hits.box[on_box]]
    surface[on_ground] = scene.ground.surface[hits.piece[on_ground]]
    _label_on_ground(scene, hits.piece, world_x, world_z, surface)
    return Geometry(depth.astype(np.float32), surface, instance, hits.face, world_x, world_z, world_h, camera)


def _label_on_ground(scene: SceneV2, piece: np.ndarray, world_x: np.ndarray, world_z: np.ndarray,
                     surface: np.ndarray) -> None:
    """Lane markings and rails on the road (the pieces between the kerbs), lawn / verge beyond the
    sidewalks."""
    p = scene.ground.pieces
    road = np.isin(piece, np.flatnonzero((p[:, 0] == scene.road_left) & (p[:, 1] == scene.road_right)))
    x, z = world_x[road], world_z[road]
    labels = surface[road]
    marking = (np.abs(x - (scene.road_left + 0.3)) < LINE_HALF_WIDTH) | \
        (np.abs(x - (scene.road_right - 0.3)) < LINE_HALF_WIDTH)
    if scene.lanes > 1:
        dashed = np.zeros_like(marking)
        for line in scene.lane_lines:
            dashed |= np.abs(x - line) < LINE_HALF_WIDTH
        marking |= dashed & (np.mod(z, DASH_PERIOD) < DASH_LENGTH)
    labels[marking] = Surface.LANE_MARKING
    for rail in scene.rails:
        labels[np.abs(x - rail) < RAIL_HALF_WIDTH] = Surface.POLE
    surface[road] = labels
    walk = surface == Surface.SIDEWALK
    left_w, right_w = scene.sidewalks
    beyond = walk & (((world_x < scene.road_left - left_w) & (world_x < 0))
                     | ((world_x > scene.road_right + right_w) & (world_x > 0)))
    surface[beyond] = Surface.TERRAIN


def appearance_view(geometry: Geometry, scene: SceneV2) -> tuple[Geometry, SceneV2]:
    """The geometry and scene as the looks expect them (heights over a flat world: H = 0 is the
    road's gutter line at that Z): world heights minus the ground's longitudinal profile, boxes
    minus their lift. Windows start above the ground floor and shadows fall on the ground-level
    pixels on a hill as on the flat; depth and every other buffer are unchanged."""
    if scene.ground is None:
        return geometry, scene
    from dataclasses import replace

    from .scene import Boxes
    with np.errstate(invalid="ignore"):
        h = (geometry.world_h - scene.ground.longitudinal(geometry.world_z)).astype(np.float32)
    b, lift = scene.boxes, scene.lift
    flat = Boxes(b.x0, b.x1, b.z0, b.z1, b.h0 - lift, b.h1 - lift, b.surface, b.instance)
    return replace(geometry, world_h=h), replace(scene, boxes=flat)
