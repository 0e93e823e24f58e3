"""Exact, vectorised ray casting of a procedural road scene.

The camera has no pitch or roll (a forward car camera; yaw is allowed), so every ray of
one image column shares one horizontal direction. That turns box casting into two cheap
steps: a 2-D slab test of all boxes against all columns (boxes x width), then, per box,
a height-slab test over just the rows and columns the box can cover on screen. The cost
follows the boxes' screen area instead of pixels x boxes.

Depth is the distance along the optical axis (the z of REP 103 / REP 118), in metres,
float32; sky is ``inf`` (no surface). A ground pixel at row v below the horizon has
depth exactly ``fy * camera_height / (v - cy)``.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from ..camera import PinholeCamera
from .scene import Scene, Surface

NEAR_PLANE = 0.05  # metres; surfaces closer than this are not rendered
LINE_HALF_WIDTH = 0.075  # lane markings are 15 cm wide
DASH_PERIOD, DASH_LENGTH = 9.0, 3.0  # metres along the road


class Face(IntEnum):
    """Which side of a surface a pixel sees (its outward normal), for shading."""

    NONE = 0  # sky
    NEG_X = 1
    POS_X = 2
    NEG_Z = 3  # facing the camera when driving forward
    POS_Z = 4
    UP = 5  # ground and box tops
    DOWN = 6  # undersides (e.g. of a tree canopy above the camera)


@dataclass
class Geometry:
    """Per-pixel render buffers, all (height, width)."""

    depth: np.ndarray  # float32 metres along the optical axis; inf = sky
    surface: np.ndarray  # uint8 Surface
    instance: np.ndarray  # int32 box instance id; -1 for ground and sky
    face: np.ndarray  # uint8 Face
    world_x: np.ndarray  # float32 world coordinates of the hit (NaN for sky)
    world_z: np.ndarray
    world_h: np.ndarray
    camera: PinholeCamera


def render_geometry(scene: Scene, camera: PinholeCamera, forward: float = 0.0) -> Geometry:
    """Cast one ray per pixel through ``scene`` from the camera moved ``forward`` metres along the road."""
    height, width = camera.height, camera.width
    cam_x, cam_z, cam_h = scene.camera_x, forward, scene.camera_height
    xn = (np.arange(width) - camera.cx) / camera.fx
    yn = (np.arange(height) - camera.cy) / camera.fy
    cos_y, sin_y = np.cos(scene.camera_yaw), np.sin(scene.camera_yaw)
    # World horizontal displacement per metre of optical-axis depth, per column.
    dx = cos_y * xn + sin_y
    dz = cos_y - sin_y * xn

    depth = np.full((height, width), np.inf)
    below = yn > 0
    depth[below] = (cam_h / yn[below])[:, None]
    surface = np.zeros((height, width), np.uint8)
    face = np.zeros((height, width), np.uint8)
    instance = np.full((height, width), -1, np.int32)
    _label_ground(scene, cam_x, cam_z, depth, dx, dz, below, surface, face)
    _cast_boxes(scene, camera, cam_x, cam_z, cam_h, dx, dz, yn, depth, surface, face, instance)

    with np.errstate(invalid="ignore"):  # inf * 0 on the horizon row of the sky
        world_x = (cam_x + depth * dx).astype(np.float32)
        world_z = (cam_z + depth * dz).astype(np.float32)
        world_h = (cam_h - depth * yn[:, None]).astype(np.float32)
    sky = ~np.isfinite(depth)
    for a in (world_x, world_z, world_h):
        a[sky] = np.nan
    return Geometry(depth.astype(np.float32), surface, instance, face, world_x, world_z, world_h, camera)


def _label_ground(scene: Scene, cam_x: float, cam_z: float, depth: np.ndarray, dx: np.ndarray, dz: np.ndarray,
                  below: np.ndarray, surface: np.ndarray, face: np.ndarray) -> None:
    t = depth[below]
    gx = cam_x + t * dx
    gz = cam_z + t * dz
    on_road = (gx >= scene.road_left) & (gx <= scene.road_right)
    labels = np.where(on_road, Surface.ROAD, Surface.TERRAIN).astype(np.uint8)
    marking = (np.abs(gx - (scene.road_left + 0.3)) < LINE_HALF_WIDTH) | (np.abs(gx - (scene.road_right - 0.3)) < LINE_HALF_WIDTH)
    if scene.lanes > 1:
        dashed = np.zeros_like(marking)
        for line in scene.lane_lines:
            dashed |= np.abs(gx - line) < LINE_HALF_WIDTH
        marking |= dashed & (np.mod(gz, DASH_PERIOD) < DASH_LENGTH)
    labels[marking & on_road] = Surface.LANE_MARKING
    surface[below] = labels
    face[below] = Face.UP


def _cast_boxes(scene: Scene, camera: PinholeCamera, cam_x: float, cam_z: float, cam_h: float, dx: np.ndarray, dz: np.ndarray,
                yn: np.ndarray, depth: np.ndarray, surface: np.ndarray, face: np.ndarray,
                instance: np.ndarray) -> None:
    boxes = scene.boxes
    if len(boxes) == 0:
        return
    inv_yn = 1.0 / np.where(np.abs(yn) < 1e-12, 1e-12, yn)  # 1 / yn, safe on the horizon row
    inv_dx = 1.0 / np.where(np.abs(dx) < 1e-12, 1e-12, dx)
    inv_dz = 1.0 / np.where(np.abs(dz) < 1e-12, 1e-12, dz)
    # 2-D slab test, all boxes x all columns: where each column's ray enters/leaves each footprint.
    tx0 = (boxes.x0[:, None] - cam_x) * inv_dx
    tx1 = (boxes.x1[:, None] - cam_x) * inv_dx
    tz0 = (boxes.z0[:, None] - cam_z) * inv_dz
    tz1 = (boxes.z1[:, None] - cam_z) * inv_dz
    enter_x, enter_z = np.minimum(tx0, tx1), np.minimum(tz0, tz1)
    t_in = np.maximum(enter_x, enter_z)
    t_out = np.minimum(np.maximum(tx0, tx1), np.maximum(tz0, tz1))
    side_face = np.where(enter_x >= enter_z,
                         np.where(dx > 0, Face.NEG_X, Face.POS_X),
                         np.where(dz > 0, Face.NEG_Z, Face.POS_Z)).astype(np.uint8)
    column_hit = t_out > np.maximum(t_in, NEAR_PLANE)
    cy, fy, height = camera.cy, camera.fy, camera.height

    for m in np.flatnonzero(column_hit.any(axis=1)):
        cols = np.flatnonzero(column_hit[m])
        u0, u1 = cols[0], cols[-1] + 1
        tin, tout, hit_cols = t_in[m, u0:u1], t_out[m, u0:u1], column_hit[m, u0:u1]
        t_near = np.maximum(tin[hit_cols], NEAR_PLANE).min()
        t_far = tout[hit_cols].max()
        h0, h1 = boxes.h0[m], boxes.h1[m]
        # Screen rows the box can cover: v = cy + fy (cam_h - h) / t is monotonic in h and t.
        v = [cy + fy * (cam_h - h) / t for h in (h0, h1) for t in (t_near, t_far)]
        r0 = max(int(np.floor(min(v))), 0)
        r1 = min(int(np.ceil(max(v))) + 1, height)
        if r0 >= r1:
            continue
        inv = inv_yn[r0:r1]
        ta, tb = (cam_h - h1) * inv, (cam_h - h0) * inv
        t_h_in, t_h_out = np.minimum(ta, tb), np.maximum(ta, tb)
        horizon = np.abs(yn[r0:r1]) < 1e-12
        if horizon.any():  # a level ray is inside the height slab for all t, or never
            inside = h0 <= cam_h <= h1
            t_h_in[horizon] = -np.inf if inside else np.inf
            t_h_out[horizon] = np.inf if inside else -np.inf
        entry = np.maximum(tin[None, :], t_h_in[:, None])
        leave = np.minimum(tout[None, :], t_h_out[:, None])
        block = depth[r0:r1, u0:u1]
        closer = (entry <= leave) & (entry > NEAR_PLANE) & hit_cols[None, :] & (entry < block)
        if not closer.any():
            continue
        block[closer] = entry[closer]
        surface[r0:r1, u0:u1][closer] = boxes.surface[m]
        instance[r0:r1, u0:u1][closer] = boxes.instance[m]
        via_height = t_h_in[:, None] > tin[None, :]
        cap = np.where(yn[r0:r1] > 0, Face.UP, Face.DOWN).astype(np.uint8)[:, None]
        face[r0:r1, u0:u1][closer] = np.where(via_height, cap, side_face[m, u0:u1][None, :])[closer]
