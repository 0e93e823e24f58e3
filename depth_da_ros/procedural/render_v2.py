"""Renderer v2's geometry pass: v1's exact ray casting, the v2 ground labels, a jittered camera.

``render_geometry_v2`` casts the rays with ``render.render_geometry`` (exact depth for boxes on
a flat ground) and then labels the ground of v2 scenes: side streets are road surface across
the verges, and tram rails are metal strips in the road. ``frame_camera`` is the camera of one
frame: the training camera with its focal length scaled by up to ±4% and its principal-point
row moved by a small pitch (±1.5°: a level horizon moves by fy * tan(pitch) rows). Moving the
principal point renders an exact pinhole camera whose horizon sits where a pitched one's does;
roll is not modelled.
"""
from __future__ import annotations

import numpy as np

from ..camera import PinholeCamera
from .render import Face, Geometry, render_geometry
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
    """``render.render_geometry`` plus the v2 ground labels (side streets, tram rails)."""
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
