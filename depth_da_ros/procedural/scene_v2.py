"""Renderer v2's scenes: the road world of ``scene.py`` with the variety of real streets.

Still axis-aligned boxes (exact, vectorised ray casting: ``render.py``), but composed into the
shapes a car camera meets: cars of three stacked boxes (a rounded profile), vans, trucks with a
cab, buses, cyclists and pedestrians; trees whose canopy is a cluster of jittered boxes (an
irregular silhouette), bushes and hedges; walls and fences along the sidewalk; signs; parked
rows; facades with balconies (depth relief); junctions with side streets (gaps in the frontage,
road surface across the sidewalk); rural stretches (open fields, no buildings, verges); roads of
one to four lanes of varying width, kerbs and sidewalks of varying height and width (none on
rural roads); occasional tram rails. Camera height 1.2-2.0 m.

The ground is not flat (``on_ground``): a grade and a vertical curve along the road (a crest
or a sag, straight on after it), a crowned road, sidewalks as raised ground with kerb faces,
side streets at road level; objects stand on it, and the camera pitches and rolls with the road
under the car plus its mount's pitch and roll. Every pixel's depth is exact for the geometry that
is rendered (``raycast.py``). World frame as ``scene.py``: X right, H up, Z forward.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from .raycast import Ground
from .scene import Boxes, Scene, Surface, _BoxBuilder, check_scene_config, ego_clearance, remove_intruders


@dataclass(frozen=True)
class SceneConfigV2:
    """The v2 scene distribution; ranges are (low, high), drawn uniformly."""

    lanes: tuple[int, int] = (1, 4)
    lane_width: tuple[float, float] = (2.8, 3.8)
    sidewalk_width: tuple[float, float] = (1.0, 5.0)
    kerb_height: tuple[float, float] = (0.05, 0.22)
    camera_height: tuple[float, float] = (1.2, 2.0)
    camera_yaw_deg: tuple[float, float] = (-5.0, 5.0)
    lateral_jitter: float = 0.4
    rural_probability: float = 0.2  # open fields, hedges and trees, no buildings or sidewalks
    building_height: tuple[float, float] = (3.5, 28.0)
    building_length: tuple[float, float] = (5.0, 30.0)
    building_setback: tuple[float, float] = (0.0, 5.0)
    building_gap_probability: float = 0.3
    balcony_probability: float = 0.4  # per building: balconies on its road-facing facade
    wall_probability: float = 0.5  # a wall or fence along a gap in the frontage
    parked_probability: tuple[float, float] = (0.2, 0.85)  # per 6 m slot, drawn per kerb (rows or sparse)
    moving_vehicles: tuple[int, int] = (0, 7)
    pedestrians: tuple[int, int] = (0, 8)
    cyclists: tuple[int, int] = (0, 2)
    furniture_spacing: tuple[float, float] = (8.0, 25.0)  # poles, trees, signs, bushes along each kerb
    junctions: tuple[int, int] = (0, 2)
    junction_width: tuple[float, float] = (8.0, 16.0)
    tram_probability: float = 0.1
    end_wall_probability: float = 0.25
    extent: float = 140.0
    ego_half_width: float = 1.0
    ego_clearance_behind: float = 3.0
    ego_clearance_ahead: float = 5.0
    ego_clearance_above: float = 0.3
    # The ground (raycast.Ground): a longitudinal grade and vertical curve shared by the whole
    # scene, a road crown, sidewalks as raised ground with kerb faces; objects stand on it.
    grade: tuple[float, float] = (-0.04, 0.04)  # rise per metre along the road at the start
    vertical_curve: tuple[float, float] = (-1.5e-4, 1.5e-4)  # 1/m: d(grade)/dz / 2 (sag > 0, crest < 0)
    vertical_curve_end: tuple[float, float] = (40.0, 160.0)  # metres ahead where the curve ends (straight on)
    max_grade: float = 0.06  # the grade after the curve is kept within +- this
    crown: tuple[float, float] = (0.0, 0.12)  # metres the road's centre line stands above its gutters
    verge_width: tuple[float, float] = (0.5, 3.0)  # rural: grass from the road's edge to the ditch / bank
    verge_drop: tuple[float, float] = (-0.15, 0.05)  # rural: verge height relative to the road's edge
    bank_width: tuple[float, float] = (2.0, 8.0)  # rural: width of the ditch side or embankment
    bank_grade: tuple[float, float] = (-0.25, 0.35)  # rural: its slope away from the road (< 0: a ditch)
    camera_pitch_deg: tuple[float, float] = (-0.5, 0.5)  # mount pitch relative to the road (> 0: down): load, braking
    camera_roll_deg: tuple[float, float] = (-0.5, 0.5)  # mount roll (plus the road's camber under the car)

    def __post_init__(self) -> None:
        check_scene_config(self, ("lanes", "lane_width", "sidewalk_width", "kerb_height", "camera_height",
                                  "camera_yaw_deg", "building_height", "building_length", "building_setback",
                                  "parked_probability", "moving_vehicles", "pedestrians", "cyclists",
                                  "furniture_spacing", "junctions", "junction_width"))


@dataclass
class SceneV2(Scene):
    """A v2 scene: ``Scene`` plus where side streets cross (Z intervals, road surface at every X)
    and the X of tram rails (empty when none)."""

    side_streets: tuple[tuple[float, float], ...] = ()
    rails: tuple[float, ...] = ()
    ground: Ground | None = None  # None: the flat plane H = 0 (raycast not needed)
    camera_pitch: float = 0.0  # radians, mount pitch relative to the road (> 0 looks down)
    camera_roll: float = 0.0  # radians, mount roll relative to the road
    lift: np.ndarray | None = None  # per box: metres it was raised to stand on ``ground``
    sidewalks: tuple[float, float] = (0.0, 0.0)  # widths (m) left and right; 0 = none (rural)


def sample_scene_v2(seed: int, config: SceneConfigV2 = SceneConfigV2(), travel: float = 0.0) -> SceneV2:
    """Draw one v2 scene (a pure function of ``seed``); ``travel`` extends it for a driving camera."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x5CE7E, 2]))
    u = rng.uniform
    lanes = int(rng.integers(config.lanes[0], config.lanes[1] + 1))
    lane_width = u(*config.lane_width)
    road_left, road_right = -lanes * lane_width / 2, lanes * lane_width / 2
    ego_lane = int(rng.integers(lanes // 2, lanes))
    camera_x = road_left + (ego_lane + 0.5) * lane_width + u(-config.lateral_jitter, config.lateral_jitter)
    camera_x = float(np.clip(camera_x, road_left + config.ego_half_width, road_right - config.ego_half_width))
    z_far = config.extent + travel
    rural = rng.random() < config.rural_probability
    kerb = 0.0 if rural else u(*config.kerb_height)
    streets = _junctions(rng, config, z_far) if not rural else []
    b = _BoxBuilder()

    for side in (-1, 1):
        edge = road_left if side < 0 else road_right
        walk = 0.0 if rural else u(*config.sidewalk_width)
        outer = edge + side * walk
        if walk > 0:
            for z0, z1 in _pieces(-30.0, z_far + 60.0, streets):
                b.add(*sorted((edge, outer)), z0, z1, 0.0, kerb, Surface.SIDEWALK)
        if rural:
            _add_rural_side(b, rng, side, edge, z_far)
        else:
            _add_frontage(b, rng, config, side, outer, z_far)
        _add_furniture(b, rng, config, side, edge, kerb, z_far, rural)
        parked = u(*config.parked_probability) * (0.3 if rural else 1.0)
        for slot in np.arange(3.0, z_far, 6.0):
            if rng.random() < parked:
                _add_vehicle(b, rng, edge - side * u(1.0, 1.4), slot + u(-0.8, 0.8), parked=True)
        for _ in range(int(rng.integers(config.pedestrians[0], config.pedestrians[1] + 1)) if walk > 0 else 0):
            x = edge + side * u(0.3, max(walk - 0.3, 0.31))
            _add_person(b, rng, x, u(4.0, z_far), kerb)

    for _ in range(int(rng.integers(config.moving_vehicles[0], config.moving_vehicles[1] + 1))):
        lane = int(rng.integers(0, lanes))
        _add_vehicle(b, rng, road_left + (lane + 0.5) * lane_width + u(-0.4, 0.4), u(6.0, z_far), parked=False)
    for _ in range(int(rng.integers(config.cyclists[0], config.cyclists[1] + 1))):
        side = rng.choice((-1, 1))
        edge = road_left if side < 0 else road_right
        _add_cyclist(b, rng, edge - side * u(0.6, 1.0), u(6.0, z_far))
    if not rural and rng.random() < config.end_wall_probability:
        z = u(0.45, 0.9) * config.extent + travel
        b.add(road_left - 60.0, road_right + 60.0, z, z + u(10.0, 25.0), 0.0, u(*config.building_height),
              Surface.BUILDING)

    boxes = b.build()
    if streets:  # side streets are open: nothing stands across them beyond the kerbs
        across = np.zeros(len(boxes), bool)
        for z0, z1 in streets:
            across |= (boxes.z0 < z1) & (boxes.z1 > z0) & ((boxes.x1 < road_left) | (boxes.x0 > road_right)) \
                & (boxes.surface != Surface.SIDEWALK)
        boxes = _drop(boxes, across)
    rails = ()
    if rng.random() < config.tram_probability:
        centre = u(road_left + 1.0, road_right - 1.0)
        rails = (centre - 0.7175, centre + 0.7175)  # standard gauge 1.435 m
    camera_height = u(*config.camera_height)
    camera_yaw = np.deg2rad(u(*config.camera_yaw_deg))
    clearance = ego_clearance(config, camera_x, camera_height, travel)  # type: ignore[arg-type]
    flat = SceneV2(seed, road_left, road_right, lane_width, lanes, camera_x, camera_height, camera_yaw,
                  remove_intruders(boxes, clearance), travel_limit=travel, clearance=clearance,
                  side_streets=tuple(streets), rails=rails)
    return on_ground(flat, config, streets)


def _drop(boxes, mask: np.ndarray):
    """``boxes`` without every instance that has a box in ``mask``."""
    keep = ~np.isin(boxes.instance, boxes.instance[mask])
    return type(boxes)(boxes.x0[keep], boxes.x1[keep], boxes.z0[keep], boxes.z1[keep], boxes.h0[keep],
                       boxes.h1[keep], boxes.surface[keep], boxes.instance[keep])


def _junctions(rng: np.random.Generator, config: SceneConfigV2, z_far: float) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    for _ in range(int(rng.integers(config.junctions[0], config.junctions[1] + 1))):
        z0 = rng.uniform(12.0, z_far - 20.0)
        z1 = z0 + rng.uniform(*config.junction_width)
        if all(z1 < a or z0 > b for a, b in out):
            out.append((z0, z1))
    return sorted(out)


def _pieces(z0: float, z1: float, gaps: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """[z0, z1] minus the ``gaps``."""
    out, start = [], z0
    for a, b in gaps:
        if a > start:
            out.append((start, a))
        start = max(start, b)
    if start < z1:
        out.append((start, z1))
    return out


def _add_frontage(b: _BoxBuilder, rng: np.random.Generator, config: SceneConfigV2, side: int, outer: float,
                  z_far: float) -> None:
    """Buildings (some with balconies) and, in the gaps between them, walls or fences."""
    z = -25.0 + rng.uniform(0.0, 10.0)
    while z < z_far:
        length = rng.uniform(*config.building_length)
        if rng.random() >= config.building_gap_probability:
            front = outer + side * rng.uniform(*config.building_setback)
            back = front + side * rng.uniform(8.0, 25.0)
            height = rng.uniform(*config.building_height)
            house = b.add(*sorted((front, back)), z, z + length, 0.0, height, Surface.BUILDING)
            if rng.random() < config.balcony_probability and height > 6.0 and z < 80.0:
                depth, width = rng.uniform(0.8, 1.4), rng.uniform(2.0, 4.0)
                for floor in np.arange(3.2, height - 2.0, 3.2):
                    for bz in np.arange(z + 1.0, z + length - width, width + rng.uniform(1.5, 3.0)):
                        b.add(*sorted((front, front - side * depth)), bz, bz + width, floor, floor + 1.0,
                              Surface.BUILDING, instance=house)
        elif rng.random() < config.wall_probability:
            fence = rng.random() < 0.5
            x = outer + side * rng.uniform(0.0, 0.5)
            b.add(*sorted((x, x + side * (0.05 if fence else 0.25))), z, z + length, 0.0,
                  rng.uniform(1.0, 1.8) if fence else rng.uniform(1.2, 2.6), Surface.WALL)
        z += length + rng.uniform(0.0, 3.0)


def _add_rural_side(b: _BoxBuilder, rng: np.random.Generator, side: int, edge: float, z_far: float) -> None:
    """Open fields: hedges, tree lines and a farm building now and then, set back from the verge."""
    z = rng.uniform(-10.0, 20.0)
    while z < z_far:
        length = rng.uniform(10.0, 60.0)
        kind = rng.random()
        x = edge + side * rng.uniform(2.0, 8.0)
        if kind < 0.4:
            b.add(*sorted((x, x + side * rng.uniform(0.8, 2.0))), z, z + length, 0.0, rng.uniform(0.8, 2.2),
                  Surface.FOLIAGE)
        elif kind < 0.7:
            for tz in np.arange(z, z + length, rng.uniform(6.0, 12.0)):
                _add_tree(b, rng, x + side * rng.uniform(0.0, 3.0), tz, 0.0)
        elif kind < 0.8:
            front = edge + side * rng.uniform(10.0, 30.0)
            b.add(*sorted((front, front + side * rng.uniform(8.0, 20.0))), z, z + min(length, 25.0), 0.0,
                  rng.uniform(4.0, 9.0), Surface.BUILDING)
        z += length + rng.uniform(5.0, 40.0)


def _add_furniture(b: _BoxBuilder, rng: np.random.Generator, config: SceneConfigV2, side: int, edge: float,
                   kerb: float, z_far: float, rural: bool) -> None:
    """Poles, signs, trees and bushes along the kerb."""
    z = rng.uniform(0.0, config.furniture_spacing[1])
    while z < z_far:
        x = edge + side * rng.uniform(0.4, 1.2)
        kind = rng.random()
        if kind < 0.35:
            _add_tree(b, rng, x, z, kerb)
        elif kind < 0.55:
            b.add(x - 0.07, x + 0.07, z - 0.07, z + 0.07, kerb, rng.uniform(4.0, 9.0), Surface.POLE)
        elif kind < 0.75:
            post = b.add(x - 0.04, x + 0.04, z - 0.04, z + 0.04, kerb, 2.6, Surface.POLE)
            half = rng.uniform(0.3, 0.5)
            b.add(x - half, x + half, z - 0.03, z + 0.03, 1.9, 1.9 + 2 * half, Surface.SIGN, instance=post)
        elif not rural or kind < 0.9:
            bush = b.add(x - 0.6, x + 0.6, z - 0.6, z + 0.6, kerb, kerb + rng.uniform(0.5, 1.4), Surface.FOLIAGE)
            for _ in range(int(rng.integers(0, 3))):
                dx, dz, r = rng.uniform(-0.8, 0.8), rng.uniform(-0.8, 0.8), rng.uniform(0.3, 0.6)
                b.add(x + dx - r, x + dx + r, z + dz - r, z + dz + r, kerb, kerb + rng.uniform(0.4, 1.2),
                      Surface.FOLIAGE, instance=bush)
        z += rng.uniform(*config.furniture_spacing)


def _add_tree(b: _BoxBuilder, rng: np.random.Generator, x: float, z: float, base: float) -> None:
    """A trunk and a canopy of 3-6 jittered boxes: an irregular silhouette, not one ball."""
    top = rng.uniform(1.8, 4.0)
    trunk = b.add(x - 0.15, x + 0.15, z - 0.15, z + 0.15, base, base + top + 0.8, Surface.TRUNK)
    radius, height = rng.uniform(1.0, 3.0), rng.uniform(2.0, 6.0)
    for _ in range(int(rng.integers(3, 7))):
        cx, cz = x + rng.uniform(-0.6, 0.6) * radius, z + rng.uniform(-0.6, 0.6) * radius
        rx, rz = rng.uniform(0.4, 0.9) * radius, rng.uniform(0.4, 0.9) * radius
        h0 = base + top + rng.uniform(-0.3, 0.4) * height
        b.add(cx - rx, cx + rx, cz - rz, cz + rz, h0, h0 + rng.uniform(0.4, 0.9) * height, Surface.FOLIAGE,
              instance=trunk)


def _add_vehicle(b: _BoxBuilder, rng: np.random.Generator, x: float, z: float, parked: bool) -> None:
    """A car (most), van, truck or bus along the road, as boxes sharing one instance id."""
    kind = rng.random()
    if kind < (0.75 if parked else 0.6):  # car: sill, body and a narrower cabin, a rounded profile
        width, length = rng.uniform(1.65, 1.95), rng.uniform(3.7, 4.9)
        sill, top = rng.uniform(0.15, 0.25), rng.uniform(0.75, 0.95)
        car = b.add(x - width / 2 + 0.05, x + width / 2 - 0.05, z - length / 2 + 0.1, z + length / 2 - 0.1,
                    sill, sill + 0.35, Surface.CAR)
        b.add(x - width / 2, x + width / 2, z - length / 2, z + length / 2, sill + 0.35, top, Surface.CAR,
              instance=car)
        cabin, offset = rng.uniform(0.45, 0.6) * length, rng.uniform(-0.1, 0.2) * length
        b.add(x - width / 2 + 0.12, x + width / 2 - 0.12, z - cabin / 2 - offset, z + cabin / 2 - offset, top,
              top + rng.uniform(0.4, 0.6), Surface.CAR, instance=car)
    elif kind < (0.9 if parked else 0.8):  # van
        width, length = rng.uniform(1.9, 2.1), rng.uniform(4.8, 6.0)
        car = b.add(x - width / 2, x + width / 2, z - length / 2 + 1.0, z + length / 2, 0.25, rng.uniform(1.9, 2.6),
                    Surface.CAR)
        b.add(x - width / 2, x + width / 2, z - length / 2, z - length / 2 + 1.0, 0.25, 1.1, Surface.CAR,
              instance=car)
    elif kind < 0.95 or parked:  # truck: cab and cargo box
        width, length = rng.uniform(2.3, 2.55), rng.uniform(6.0, 11.0)
        cab = b.add(x - width / 2, x + width / 2, z - length / 2, z - length / 2 + 2.2, 0.4, rng.uniform(2.6, 3.2),
                    Surface.CAR)
        b.add(x - width / 2, x + width / 2, z - length / 2 + 2.4, z + length / 2, 0.8, rng.uniform(3.0, 4.0),
              Surface.CAR, instance=cab)
    else:  # bus
        width, length = 2.55, rng.uniform(10.0, 12.5)
        b.add(x - width / 2, x + width / 2, z - length / 2, z + length / 2, 0.3, rng.uniform(2.9, 3.3), Surface.CAR)


def _add_person(b: _BoxBuilder, rng: np.random.Generator, x: float, z: float, base: float) -> None:
    height = rng.uniform(1.5, 1.95)
    person = b.add(x - 0.2, x + 0.2, z - 0.15, z + 0.15, base, base + height * 0.5, Surface.PERSON)
    b.add(x - 0.25, x + 0.25, z - 0.17, z + 0.17, base + height * 0.5, base + height * 0.87, Surface.PERSON,
          instance=person)
    b.add(x - 0.1, x + 0.1, z - 0.1, z + 0.1, base + height * 0.87, base + height, Surface.PERSON, instance=person)


def _add_cyclist(b: _BoxBuilder, rng: np.random.Generator, x: float, z: float) -> None:
    bike = b.add(x - 0.1, x + 0.1, z - 0.85, z + 0.85, 0.0, 0.95, Surface.PERSON)
    b.add(x - 0.22, x + 0.22, z - 0.25, z + 0.25, 0.95, rng.uniform(1.65, 1.85), Surface.PERSON, instance=bike)


# -- the ground: slopes, crown, kerbs ------------------------------------------------------------------
GROUND_BEHIND, GROUND_AHEAD, GROUND_SIDE = 10.0, 1000.0, 1000.0  # metres the ground pieces reach (a camera
# looking forward sees no ground behind it; a far-reaching piece behind it would widen its screen rectangle)
MAX_SEGMENT = 10.0  # metres: longer single-box objects (walls, hedges) are cut so each piece stands on the slope


def on_ground(flat: SceneV2, config: SceneConfigV2, streets: list[tuple[float, float]]) -> SceneV2:
    """``flat`` (boxes on the plane H = 0, sidewalks as boxes) on a non-flat ground.

    The ground (``raycast.Ground``): a grade and vertical curve along the road, a crowned road,
    the sidewalks of ``flat`` as raised ground (kerb faces where they meet the road and the side
    streets, the same height out to the frontage and beyond), side streets at road level. Every
    object is raised by the least rise of the ground under its footprint (so it never floats;
    long walls and hedges are first cut into pieces of at most ``MAX_SEGMENT`` m), and the ego
    clearance is redrawn around the camera's path over the new ground. Draws from its own random
    stream, so the flat scene's draws are those of ``flat``.
    """
    rng = np.random.default_rng(np.random.SeedSequence([flat.seed, 0x5CE7E, 2, 0x6D]))
    u = rng.uniform
    grade, curve, crown = u(*config.grade), u(*config.vertical_curve), u(*config.crown)
    curve_end = u(*config.vertical_curve_end) + flat.travel_limit
    final = np.clip(grade + 2 * curve * curve_end, -config.max_grade, config.max_grade)
    curve = (final - grade) / (2 * curve_end)
    pitch, roll = np.deg2rad(u(*config.camera_pitch_deg)), np.deg2rad(u(*config.camera_roll_deg))
    boxes = flat.boxes
    walk = boxes.surface == Surface.SIDEWALK
    left, right = flat.road_left, flat.road_right
    kerbs = {}
    for side, at in ((-1, left), (1, right)):
        mine = walk & np.isclose(boxes.x1 if side < 0 else boxes.x0, at)
        if mine.any():
            width = float((boxes.x1[mine] - boxes.x0[mine]).max())
            kerbs[side] = (float(boxes.h1[mine].max()), width)
    z_lo, z_hi = -GROUND_BEHIND, GROUND_AHEAD + flat.travel_limit
    half, centre = (right - left) / 2, (right + left) / 2
    # Crown: crown * (1 - ((x - centre) / half)^2), zero at both gutters.
    rows = [(left, right, z_lo, z_hi, crown * (1 - centre ** 2 / half ** 2), 2 * crown * centre / half ** 2,
             -crown / half ** 2)]
    surfaces, sides = [Surface.ROAD], [(False, False, False, False)]
    for side in (-1, 1):
        x0, x1 = (-GROUND_SIDE, left) if side < 0 else (right, GROUND_SIDE)
        kerb = kerbs.get(side, (0.0, 0.0))[0]
        if kerb <= 0:  # no sidewalk (rural): a verge, then a ditch or an embankment, then the fields
            drop = u(*config.verge_drop)
            rows_side, bank_top = _rural_side(side, left if side < 0 else right, u(*config.verge_width), drop,
                                              u(*config.bank_width), u(*config.bank_grade), z_lo, z_hi)
            rows += rows_side
            surfaces += [Surface.TERRAIN] * len(rows_side)
            sides += [(drop > 0 and side > 0, drop > 0 and side < 0, False, False), (False,) * 4, (False,) * 4]
            if drop < 0:  # the road's edge stands above the verge: its side is a face
                sides[0] = (sides[0][0] or side < 0, sides[0][1] or side > 0, False, False)
        for za, zb in _pieces(z_lo, z_hi, streets) if kerb > 0 else ():
            rows.append((x0, x1, za, zb, kerb, 0.0, 0.0))
            surfaces.append(Surface.SIDEWALK)
            sides.append((side > 0, side < 0, za > z_lo, zb < z_hi))
        for za, zb in streets:
            rows.append((x0, x1, za, zb, 0.0, 0.0, 0.0))
            surfaces.append(Surface.ROAD)
            sides.append((False, False, False, False))
    rows, surfaces, sides = _split_at(rows, surfaces, sides, curve_end)
    ground = Ground(grade, curve, np.array(rows, float), np.array(surfaces, np.uint8), np.array(sides, bool),
                    thickness=1.0, curve_end=curve_end, open=GROUND_SIDE)
    inner = np.abs(ground.pieces[:, :4])
    if (inner[inner < GROUND_SIDE] >= GROUND_SIDE - 1).any() or curve_end >= GROUND_SIDE - 1:
        raise ValueError(f"a drive of {flat.travel_limit:g} m reaches the ground's edge ({GROUND_SIDE:g} m)")

    boxes = _cut_long(_drop(boxes, walk), MAX_SEGMENT)
    lift = _lift(boxes, ground, kerbs, left, right, streets)
    lifted = Boxes(boxes.x0, boxes.x1, boxes.z0, boxes.z1, boxes.h0 + lift, boxes.h1 + lift, boxes.surface,
                   boxes.instance)
    # The ego clearance over the new ground: from the lowest ground under the path to the camera's
    # highest point plus the margin above it.
    x0, x1, z0, z1, _, _ = flat.clearance
    zs = np.linspace(z0, z1, 64)
    under = ground.height(np.repeat([[x0], [flat.camera_x], [x1]], len(zs), 1), zs[None, :])
    path = under[1]
    clearance = (x0, x1, z0, z1, float(np.nanmin(under)),
                 float(np.nanmax(path)) + flat.camera_height + config.ego_clearance_above)
    keep = ~np.isin(lifted.instance, lifted.instance[_intruding(lifted, clearance)])
    return replace(flat, boxes=_subset(lifted, keep), clearance=clearance, ground=ground, camera_pitch=float(pitch),
                   camera_roll=float(roll), lift=lift[keep],
                   sidewalks=(kerbs.get(-1, (0.0, 0.0))[1], kerbs.get(1, (0.0, 0.0))[1]))


def _rural_side(side: int, edge: float, verge: float, drop: float, bank: float, grade: float, z_lo: float,
                z_hi: float) -> tuple[list, float]:
    """Ground rows beside a road without sidewalks: a flat verge ``drop`` m above the road's edge,
    ``verge`` m wide, a bank rising (``grade`` > 0) or falling (a ditch side) over ``bank`` m away
    from the road, then flat fields at the bank's top; and that top's height."""
    top = drop + grade * bank
    a, b = edge + side * verge, edge + side * (verge + bank)
    # The bank: h = drop + grade * (side * (x - a)), linear in x.
    bank_row = (min(a, b), max(a, b), z_lo, z_hi, drop - grade * side * a, grade * side, 0.0)
    far = (-GROUND_SIDE, b) if side < 0 else (b, GROUND_SIDE)
    return [(*sorted((edge, a)), z_lo, z_hi, drop, 0.0, 0.0), bank_row, (*far, z_lo, z_hi, top, 0.0, 0.0)], top


def _split_at(rows: list, surfaces: list, sides: list, z: float) -> tuple[list, list, list]:
    """Ground pieces cut in two where they straddle ``z`` (the new sides are not exposed)."""
    out_rows, out_surfaces, out_sides = [], [], []
    for row, surface, side in zip(rows, surfaces, sides):
        x0, x1, z0, z1, *profile = row
        if z0 < z < z1:
            out_rows += [(x0, x1, z0, z, *profile), (x0, x1, z, z1, *profile)]
            out_surfaces += [surface, surface]
            out_sides += [(side[0], side[1], side[2], False), (side[0], side[1], False, side[3])]
        else:
            out_rows.append(row)
            out_surfaces.append(surface)
            out_sides.append(side)
    return out_rows, out_surfaces, out_sides


def _intruding(boxes: Boxes, clearance) -> np.ndarray:
    from .scene import intruding
    return intruding(boxes, clearance)


def _subset(boxes: Boxes, keep: np.ndarray) -> Boxes:
    return Boxes(boxes.x0[keep], boxes.x1[keep], boxes.z0[keep], boxes.z1[keep], boxes.h0[keep], boxes.h1[keep],
                 boxes.surface[keep], boxes.instance[keep])


def _cut_long(boxes: Boxes, longest: float) -> Boxes:
    """Boxes that are an object of their own (one box per instance) and longer than ``longest``
    along Z, cut into equal pieces, each a new instance (a wall stepping down a slope)."""
    ids, counts = np.unique(boxes.instance, return_counts=True)
    single = np.isin(boxes.instance, ids[counts == 1])
    length = boxes.z1 - boxes.z0
    cut = single & (length > longest) & (boxes.x1 - boxes.x0 < 30.0)
    if not cut.any():
        return boxes
    rows = [np.stack([boxes.x0, boxes.x1, boxes.z0, boxes.z1, boxes.h0, boxes.h1], -1)[~cut]]
    surface, instance = [boxes.surface[~cut]], [boxes.instance[~cut]]
    next_id = int(boxes.instance.max()) + 1
    for m in np.flatnonzero(cut):
        n = int(np.ceil(length[m] / longest))
        edges = np.linspace(boxes.z0[m], boxes.z1[m], n + 1)
        piece = np.tile([boxes.x0[m], boxes.x1[m], 0.0, 0.0, boxes.h0[m], boxes.h1[m]], (n, 1))
        piece[:, 2], piece[:, 3] = edges[:-1], edges[1:]
        rows.append(piece)
        surface.append(np.full(n, boxes.surface[m], np.uint8))
        instance.append(np.arange(next_id, next_id + n, dtype=np.int32))
        next_id += n
    a = np.concatenate(rows)
    return Boxes(*(a[:, i].copy() for i in range(6)), np.concatenate(surface), np.concatenate(instance))


def _lift(boxes: Boxes, ground: Ground, kerbs: dict, left: float, right: float,
          streets: list[tuple[float, float]]) -> np.ndarray:
    """Per box: the least rise (new ground - flat world's ground) under its instance's footprints.

    The flat world's ground is H = 0 except on its sidewalk boxes (the kerb height); every
    object of the flat world stood on it, so raising it by the least rise keeps it standing on
    (or sunk into) the new ground everywhere under its corners."""
    if len(boxes) == 0:
        return np.zeros(0)
    fx = np.stack([boxes.x0, boxes.x1, boxes.x0, boxes.x1, (boxes.x0 + boxes.x1) / 2], -1)
    fz = np.stack([boxes.z0, boxes.z0, boxes.z1, boxes.z1, (boxes.z0 + boxes.z1) / 2], -1)
    fx = np.clip(fx, -GROUND_SIDE, GROUND_SIDE)
    fz = np.clip(fz, -GROUND_BEHIND, GROUND_AHEAD)
    old = np.zeros(fx.shape)
    in_street = np.zeros(fz.shape, bool)
    for za, zb in streets:
        in_street |= (fz > za) & (fz < zb)
    for side, (kerb, width) in kerbs.items():
        on_walk = ((fx <= left) & (fx >= left - width)) if side < 0 else ((fx >= right) & (fx <= right + width))
        old = np.where(on_walk & ~in_street, kerb, old)
    rise = (ground.height(fx, fz) - old).min(-1)
    per_instance = np.full(int(boxes.instance.max()) + 1, np.inf)
    np.minimum.at(per_instance, boxes.instance, rise)
    return per_instance[boxes.instance]
