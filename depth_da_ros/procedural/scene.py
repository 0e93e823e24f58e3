"""Random road scenes: a ground plane, a road with lanes, sidewalks, and axis-aligned boxes.

World frame (right-handed, metres): X to the right of the road axis, H up from the
ground (H = 0 is the road surface), Z forward along the road. Every object is an
axis-aligned box, which keeps ray casting exact and vectorisable while still giving
the cues a depth network learns from (ground contact, size, occlusion, perspective).

The scene is drawn from its own seed, independent of the appearance seed, so the two
domains can show different scenes (unpaired) or the same one (for illustration).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np


class Surface(IntEnum):
    """Per-pixel surface class written by the renderer (uint8)."""

    SKY = 0
    ROAD = 1
    LANE_MARKING = 2
    SIDEWALK = 3
    TERRAIN = 4
    BUILDING = 5
    CAR = 6
    POLE = 7
    TRUNK = 8
    FOLIAGE = 9
    WALL = 10  # renderer v2: walls and fences
    PERSON = 11  # renderer v2: pedestrians and cyclists
    SIGN = 12  # renderer v2: sign plates


def check_scene_config(config, ranges: tuple[str, ...]) -> None:
    """The checks every scene distribution (SceneConfig, scene_v2.SceneConfigV2) needs: each
    (low, high) field named in ``ranges`` in order, at least one lane, a camera above the ground,
    and the narrowest road no narrower than the ego vehicle. Raises ValueError naming the field."""
    for name in ranges:
        low, high = getattr(config, name)
        if low > high:
            raise ValueError(f"{name}: low {low} > high {high}")
    if config.lanes[0] < 1 or config.camera_height[0] <= 0:
        raise ValueError("need at least one lane and a camera above the ground")
    if config.lanes[0] * config.lane_width[0] < 2 * config.ego_half_width:
        raise ValueError(f"the narrowest road ({config.lanes[0]} x {config.lane_width[0]} m) is narrower than the ego "
                         f"vehicle (2 * ego_half_width = {2 * config.ego_half_width:g} m)")


@dataclass(frozen=True)
class SceneConfig:
    """The scene distribution. Ranges are (low, high), drawn uniformly."""

    lanes: tuple[int, int] = (2, 4)
    lane_width: tuple[float, float] = (3.0, 3.7)
    sidewalk_width: tuple[float, float] = (1.5, 4.0)
    kerb_height: tuple[float, float] = (0.10, 0.20)
    camera_height: tuple[float, float] = (1.55, 1.75)  # KITTI: 1.65 m
    camera_yaw_deg: tuple[float, float] = (-4.0, 4.0)
    lateral_jitter: float = 0.4  # metres around the lane centre
    building_height: tuple[float, float] = (4.0, 30.0)
    building_length: tuple[float, float] = (6.0, 30.0)  # along the road
    building_setback: tuple[float, float] = (0.0, 6.0)  # from the sidewalk's outer edge
    building_gap_probability: float = 0.35
    parked_car_probability: float = 0.5  # per 7 m slot along each kerb
    moving_cars: tuple[int, int] = (0, 6)
    pole_spacing: tuple[float, float] = (15.0, 35.0)
    tree_probability: float = 0.4
    end_wall_probability: float = 0.3  # a building across the road (a T junction ahead)
    extent: float = 140.0  # how far ahead (m) objects are placed, beyond the camera's travel
    # The ego vehicle's clearance, a box around the camera's whole path that no object may enter:
    # half its width (a car is 1.65-1.95 m wide), how far it reaches behind and ahead of the camera
    # (bonnet plus a safe following distance) and how far above the camera (roof, antenna).
    ego_half_width: float = 1.0
    ego_clearance_behind: float = 3.0
    ego_clearance_ahead: float = 5.0
    ego_clearance_above: float = 0.3

    def __post_init__(self) -> None:
        check_scene_config(self, ("lanes", "lane_width", "sidewalk_width", "kerb_height", "camera_height",
                                  "camera_yaw_deg", "building_height", "building_length", "building_setback",
                                  "moving_cars", "pole_spacing"))
        for name in ("ego_half_width", "ego_clearance_behind", "ego_clearance_ahead", "ego_clearance_above"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")


@dataclass
class Boxes:
    """Axis-aligned boxes as parallel arrays (vectorised ray casting wants columns, not objects)."""

    x0: np.ndarray
    x1: np.ndarray
    z0: np.ndarray
    z1: np.ndarray
    h0: np.ndarray
    h1: np.ndarray
    surface: np.ndarray  # Surface per box, uint8
    instance: np.ndarray  # object id; the two boxes of a car share one, int32

    def __len__(self) -> int:
        return len(self.x0)


@dataclass
class Scene:
    seed: int
    road_left: float  # X of the left kerb line
    road_right: float
    lane_width: float
    lanes: int
    camera_x: float
    camera_height: float
    camera_yaw: float  # radians, positive turns the view to the right (+X)
    boxes: Boxes
    travel_limit: float = field(default=0.0)  # metres the camera may move forward and still see placed objects
    clearance: tuple[float, float, float, float, float, float] = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    # The ego vehicle's clearance box (x0, x1, z0, z1, h0, h1) over the camera's whole path; no box enters it.

    @property
    def lane_lines(self) -> np.ndarray:
        """X of the lane separators between the kerbs (dashed markings)."""
        return self.road_left + self.lane_width * np.arange(1, self.lanes)


class _BoxBuilder:
    def __init__(self) -> None:
        self.rows: list[tuple[float, float, float, float, float, float, int, int]] = []
        self.next_instance = 0

    def add(self, x0, x1, z0, z1, h0, h1, surface: Surface, instance: int | None = None) -> int:
        if instance is None:
            instance = self.next_instance
            self.next_instance += 1
        self.rows.append((x0, x1, z0, z1, h0, h1, int(surface), instance))
        return instance

    def build(self) -> Boxes:
        a = np.array(self.rows, dtype=np.float64).reshape(-1, 8)
        return Boxes(*(a[:, i].copy() for i in range(6)), a[:, 6].astype(np.uint8), a[:, 7].astype(np.int32))


def sample_scene(seed: int, config: SceneConfig = SceneConfig(), travel: float = 0.0) -> Scene:
    """Draw one scene. ``travel`` extends the object placement for a camera driving forward."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x5CE7E]))
    u = rng.uniform
    lanes = int(rng.integers(config.lanes[0], config.lanes[1] + 1))
    lane_width = u(*config.lane_width)
    road_left = -lanes * lane_width / 2
    road_right = -road_left
    # Right-hand traffic: the ego car drives in one of the right half's lanes.
    ego_lane = int(rng.integers(lanes // 2, lanes))
    camera_x = road_left + (ego_lane + 0.5) * lane_width + u(-config.lateral_jitter, config.lateral_jitter)
    # The ego vehicle stays on the road whatever the jitter (the kerbs bound its clearance).
    camera_x = float(np.clip(camera_x, road_left + config.ego_half_width, road_right - config.ego_half_width))
    z_far = config.extent + travel
    kerb = u(*config.kerb_height)
    b = _BoxBuilder()

    for side in (-1, 1):
        edge = road_left if side < 0 else road_right
        walk = u(*config.sidewalk_width)
        outer = edge + side * walk
        b.add(*sorted((edge, outer)), -30.0, z_far + 60.0, 0.0, kerb, Surface.SIDEWALK)
        _add_buildings(b, rng, config, side, outer, z_far)
        _add_street_furniture(b, rng, config, side, edge, kerb, z_far)
        _add_parked_cars(b, rng, config, side, edge, z_far)

    for _ in range(int(rng.integers(config.moving_cars[0], config.moving_cars[1] + 1))):
        lane = int(rng.integers(0, lanes))
        x = road_left + (lane + 0.5) * lane_width + u(-0.4, 0.4)
        _add_car(b, rng, x, u(6.0, z_far))

    if rng.random() < config.end_wall_probability:
        z = u(0.45, 0.9) * config.extent + travel
        b.add(road_left - 60.0, road_right + 60.0, z, z + u(10.0, 25.0), 0.0, u(*config.building_height), Surface.BUILDING)

    camera_height = u(*config.camera_height)
    camera_yaw = np.deg2rad(u(*config.camera_yaw_deg))
    clearance = ego_clearance(config, camera_x, camera_height, travel)
    return Scene(seed, road_left, road_right, lane_width, lanes, camera_x, camera_height, camera_yaw,
                 remove_intruders(b.build(), clearance), travel_limit=travel, clearance=clearance)


def ego_clearance(config: SceneConfig, camera_x: float, camera_height: float,
                  travel: float) -> tuple[float, float, float, float, float, float]:
    """The box (x0, x1, z0, z1, h0, h1), metres in the world frame, swept by the ego vehicle.

    The camera drives from Z = 0 to Z = ``travel`` at X = ``camera_x``; the box spans the
    vehicle's width around it, from ``ego_clearance_behind`` behind the start to
    ``ego_clearance_ahead`` ahead of the end, and from the road up to
    ``ego_clearance_above`` over the camera.
    """
    return (camera_x - config.ego_half_width, camera_x + config.ego_half_width,
            -config.ego_clearance_behind, travel + config.ego_clearance_ahead,
            0.0, camera_height + config.ego_clearance_above)


def intruding(boxes: Boxes, clearance: tuple[float, float, float, float, float, float]) -> np.ndarray:
    """Bool per box: whether it overlaps the clearance box (a shared face or edge does not count)."""
    x0, x1, z0, z1, h0, h1 = clearance
    return ((boxes.x0 < x1) & (boxes.x1 > x0) & (boxes.z0 < z1) & (boxes.z1 > z0)
            & (boxes.h0 < h1) & (boxes.h1 > h0))


def remove_intruders(boxes: Boxes, clearance: tuple[float, float, float, float, float, float]) -> Boxes:
    """``boxes`` without every object (all boxes of an instance) that enters the ego clearance.

    Whatever placed it (a parked car by the ego lane, a moving car the camera would drive
    into during a sequence, a tree over a narrow road), an object inside the ego vehicle's
    space is impossible on a real recording and puts a wall of near depth in the frame.
    """
    bad = np.isin(boxes.instance, boxes.instance[intruding(boxes, clearance)])
    keep = ~bad
    return Boxes(boxes.x0[keep], boxes.x1[keep], boxes.z0[keep], boxes.z1[keep], boxes.h0[keep], boxes.h1[keep],
                 boxes.surface[keep], boxes.instance[keep])


def _add_buildings(b: _BoxBuilder, rng: np.random.Generator, config: SceneConfig, side: int, outer: float, z_far: float) -> None:
    z = -25.0 + rng.uniform(0.0, 10.0)
    while z < z_far:
        length = rng.uniform(*config.building_length)
        if rng.random() >= config.building_gap_probability:
            front = outer + side * rng.uniform(*config.building_setback)
            back = front + side * rng.uniform(8.0, 25.0)
            b.add(*sorted((front, back)), z, z + length, 0.0, rng.uniform(*config.building_height), Surface.BUILDING)
        z += length + rng.uniform(0.0, 3.0)


def _add_street_furniture(b: _BoxBuilder, rng: np.random.Generator, config: SceneConfig, side: int, edge: float,
                          kerb: float, z_far: float) -> None:
    z = rng.uniform(0.0, config.pole_spacing[1])
    while z < z_far:
        x = edge + side * rng.uniform(0.5, 1.0)
        if rng.random() < config.tree_probability:
            trunk_top = rng.uniform(2.0, 3.5)
            half = rng.uniform(1.0, 2.2)
            trunk = b.add(x - 0.15, x + 0.15, z - 0.15, z + 0.15, kerb, trunk_top + 0.5, Surface.TRUNK)
            b.add(x - half, x + half, z - half, z + half, trunk_top, trunk_top + rng.uniform(2.0, 4.5),
                  Surface.FOLIAGE, instance=trunk)
        else:
            b.add(x - 0.08, x + 0.08, z - 0.08, z + 0.08, kerb, rng.uniform(4.0, 8.0), Surface.POLE)
        z += rng.uniform(*config.pole_spacing)


def _add_parked_cars(b: _BoxBuilder, rng: np.random.Generator, config: SceneConfig, side: int, edge: float,
                     z_far: float) -> None:
    for slot in np.arange(3.0, z_far, 7.0):
        if rng.random() < config.parked_car_probability:
            _add_car(b, rng, edge - side * rng.uniform(1.0, 1.3), slot + rng.uniform(-1.0, 1.0))


def _add_car(b: _BoxBuilder, rng: np.random.Generator, x: float, z: float) -> None:
    """A car along the road as two boxes sharing one instance id: the body and a shorter, narrower cabin."""
    width, length = rng.uniform(1.65, 1.95), rng.uniform(3.8, 4.8)
    body_top = rng.uniform(0.85, 1.05)
    car = b.add(x - width / 2, x + width / 2, z - length / 2, z + length / 2, 0.2, body_top, Surface.CAR)
    cabin = rng.uniform(0.45, 0.6) * length
    offset = rng.uniform(-0.1, 0.25) * length
    b.add(x - width / 2 + 0.1, x + width / 2 - 0.1, z - cabin / 2 - offset, z + cabin / 2 - offset, body_top,
          body_top + rng.uniform(0.4, 0.6), Surface.CAR, instance=car)
