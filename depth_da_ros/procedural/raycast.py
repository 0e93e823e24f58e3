"""Exact ray casting for renderer v2: a camera with yaw, pitch and roll over a non-flat ground.

Renderer v1 (``render.py``) needs a level camera: every image column then shares one
horizontal direction. This module drops that assumption. Every pixel's ray is
``origin + t * d`` with ``d = R @ (xn, yn, 1)`` (``R``: camera to world, world X right, H up,
Z forward), so ``t`` is the depth along the optical axis (REP 118's z) of whatever it hits.

The scene is a union of solids, each intersected in closed form:

- ground pieces: prisms over a rectangle ``[x0, x1] x [z0, z1]`` whose top is the height field
  ``h(x, z) = L(z) + c0 + c1 * x + c2 * x**2``: a longitudinal profile shared by all pieces
  (``L(z) = slope * z + curvature * z**2`` up to ``curve_end``, straight on after it: a grade
  and a vertical curve) plus each piece's lateral profile (a road crown, a raised sidewalk, a
  ditch side or embankment). A ray meets a top in a quadratic in ``t``; the exposed sides (kerb
  faces) are vertical planes. Pieces tile the plane, so the ground is closed.
- axis-aligned boxes (buildings, vehicles, vegetation, furniture): the 3-D slab test.

Both are cast only over the screen rectangle that the solid can cover (its corners clipped to
the near plane and projected), the ground first and then the boxes nearest first, skipping a
solid when everything in its rectangle is already nearer than its nearest point; boxes with
small rectangles (far objects, parts) are cast in one batch of (box, pixel) pairs. The cost
follows screen area, not pixels times solids. Depth is float64 here (float32 in ``Geometry``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..camera import PinholeCamera
from .render import NEAR_PLANE, Face

_TINY = 1e-12
_CORNERS = np.array([[i, j, k] for i in (0, 1) for j in (0, 1) for k in (0, 1)])  # (8, 3) picks lo/hi per axis
_EDGES = np.array([(a, b) for a in range(8) for b in range(a + 1, 8)
                   if np.abs(_CORNERS[a] - _CORNERS[b]).sum() == 1])  # the 12 edges of a box


def camera_rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Camera-to-world rotation (columns: the camera's x right, y down, z forward in world X, H, Z).

    ``yaw`` > 0 turns the view to the right (+X), ``pitch`` > 0 tilts it down, ``roll`` > 0
    turns the image clockwise as seen by the camera (its x axis dips towards -H); radians."""
    cy_, sy_ = np.cos(yaw), np.sin(yaw)
    cp, sp = np.cos(pitch), np.sin(pitch)
    cr, sr = np.cos(roll), np.sin(roll)
    yaw_m = np.array([[cy_, 0.0, sy_], [0.0, 1.0, 0.0], [-sy_, 0.0, cy_]])
    level = np.diag([1.0, -1.0, 1.0])  # camera axes of a level camera: x = X, y = -H, z = Z
    pitch_m = np.array([[1.0, 0.0, 0.0], [0.0, cp, sp], [0.0, -sp, cp]])
    roll_m = np.array([[cr, -sr, 0.0], [sr, cr, 0.0], [0.0, 0.0, 1.0]])
    return yaw_m @ level @ pitch_m @ roll_m


@dataclass
class Rays:
    """Per-pixel world directions (H, W) per metre of optical-axis depth, and the origin."""

    origin: np.ndarray  # (3,) world X, H, Z
    rotation: np.ndarray  # (3, 3) camera to world
    camera: PinholeCamera
    dx: np.ndarray
    dh: np.ndarray
    dz: np.ndarray

    @classmethod
    def build(cls, camera: PinholeCamera, origin, rotation: np.ndarray) -> "Rays":
        xn = (np.arange(camera.width) - camera.cx) / camera.fx
        yn = (np.arange(camera.height) - camera.cy) / camera.fy
        r = rotation
        d = [r[i, 0] * xn[None, :] + r[i, 1] * yn[:, None] + r[i, 2] for i in range(3)]
        return cls(np.asarray(origin, float), r, camera, *d)

    def project(self, points: np.ndarray) -> np.ndarray:
        """World points (..., 3) to camera coordinates (..., 3) (x right, y down, z forward)."""
        return (points - self.origin) @ self.rotation


def screen_rects(rays: Rays, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, ...]:
    """Pixel rectangles (r0, r1, u0, u1; end-exclusive) that boxes ``lo``..``hi`` (N, 3: X, H, Z) can
    cover, and their nearest depth ``t_near`` (>= NEAR_PLANE). A box wholly behind the near plane
    or off screen gets an empty rectangle. Conservative: the hull of the box's corners and its
    edges' crossings of the near plane, projected."""
    cam = rays.camera
    corners = np.where(_CORNERS[None].astype(bool), hi[:, None, :], lo[:, None, :])  # (N, 8, 3)
    c = rays.project(corners)  # (N, 8, 3)
    a, b = c[:, _EDGES[:, 0]], c[:, _EDGES[:, 1]]  # (N, 12, 3)
    za, zb = a[..., 2], b[..., 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        f = (NEAR_PLANE - za) / (zb - za)
    crossing = (za < NEAR_PLANE) != (zb < NEAR_PLANE)
    cut = a + np.clip(np.nan_to_num(f), 0.0, 1.0)[..., None] * (b - a)
    points = np.concatenate([c, cut], axis=1)  # (N, 20, 3)
    valid = np.concatenate([c[..., 2] >= NEAR_PLANE, crossing], axis=1)
    z = np.where(valid, np.maximum(points[..., 2], NEAR_PLANE), np.nan)
    u = cam.cx + cam.fx * points[..., 0] / z
    v = cam.cy + cam.fy * points[..., 1] / z
    any_valid = valid.any(axis=1)
    with np.errstate(invalid="ignore"):
        u_lo, u_hi = np.nanmin(np.where(valid, u, np.inf), 1), np.nanmax(np.where(valid, u, -np.inf), 1)
        v_lo, v_hi = np.nanmin(np.where(valid, v, np.inf), 1), np.nanmax(np.where(valid, v, -np.inf), 1)
        t_near = np.nanmin(np.where(valid, z, np.inf), 1)
    u0 = np.clip(np.floor(u_lo), 0, cam.width).astype(np.int64)
    u1 = np.clip(np.ceil(u_hi) + 1, 0, cam.width).astype(np.int64)
    r0 = np.clip(np.floor(v_lo), 0, cam.height).astype(np.int64)
    r1 = np.clip(np.ceil(v_hi) + 1, 0, cam.height).astype(np.int64)
    empty = ~any_valid | (u0 >= u1) | (r0 >= r1)
    u1[empty], r1[empty] = u0[empty], r0[empty]
    return r0, r1, u0, u1, t_near


@dataclass
class Ground:
    """The ground as prisms over rectangles; see the module docstring.

    ``pieces``: (N, 7) rows ``x0, x1, z0, z1, c0, c1, c2`` (the lateral profile);
    ``surface``: (N,) uint8; ``sides``: (N, 4) bool, whether the side at x0, x1, z0, z1 is
    exposed (a kerb face: the piece is higher than its neighbour there); ``thickness``: how far
    each prism reaches below its top (metres; more than any step to a neighbour). The
    longitudinal profile, shared by all pieces: ``slope * z + curvature * z**2`` up to
    ``curve_end``, then straight on along its tangent (a vertical curve between two grades); a
    piece lies on one side of ``curve_end``.
    """

    slope: float
    curvature: float
    pieces: np.ndarray
    surface: np.ndarray
    sides: np.ndarray
    thickness: float = 2.0
    curve_end: float = np.inf
    open: float = np.inf  # piece bounds this far out (|x| or |z| >= open) are open: the piece goes on past them

    def __post_init__(self) -> None:
        p = self.pieces
        if ((p[:, 2] < self.curve_end) & (p[:, 3] > self.curve_end)).any():
            raise ValueError(f"a ground piece straddles curve_end = {self.curve_end}")
        # Per piece, the longitudinal profile as e0 + e1 z + e2 z^2.
        beyond = p[:, 2] >= self.curve_end
        end = self.curve_end if np.isfinite(self.curve_end) else 0.0
        at_end = self.slope * end + self.curvature * end ** 2
        tangent = self.slope + 2 * self.curvature * end
        self.long = np.where(beyond[:, None], [at_end - tangent * end, tangent, 0.0],
                             [0.0, self.slope, self.curvature])

    def longitudinal(self, z) -> np.ndarray:
        z = np.asarray(z, float)
        end = self.curve_end
        near = self.slope * z + self.curvature * z ** 2
        if not np.isfinite(end):
            return near
        far = self.slope * end + self.curvature * end ** 2 + (self.slope + 2 * self.curvature * end) * (z - end)
        return np.where(z <= end, near, far)

    def height(self, x, z) -> np.ndarray:
        """Ground height at world (x, z): the top of the piece containing the point (first match)."""
        x, z = np.broadcast_arrays(np.asarray(x, float), np.asarray(z, float))
        out = np.full(x.shape, np.nan)
        bounds = np.where(np.abs(self.pieces[:, :4]) < self.open, self.pieces[:, :4],
                          np.sign(self.pieces[:, :4]) * np.inf)  # open bounds: the piece goes on
        for (x0, x1, z0, z1), (c0, c1, c2) in zip(bounds[::-1].tolist(), self.pieces[::-1, 4:].tolist()):
            # the first piece wins on shared edges
            inside = (x >= x0) & (x <= x1) & (z >= z0) & (z <= z1)
            out[inside] = c0 + c1 * x[inside] + c2 * x[inside] ** 2
        return out + self.longitudinal(z)

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Axis-aligned bounds (N, 3) of every prism (X, H, Z), for screen rectangles."""
        p, e = self.pieces, self.long
        lat_lo, lat_hi = _quadratic_range(p[:, 4], p[:, 5], p[:, 6], p[:, 0], p[:, 1])
        long_lo, long_hi = _quadratic_range(e[:, 0], e[:, 1], e[:, 2], p[:, 2], p[:, 3])
        lo = np.stack([p[:, 0], lat_lo + long_lo - self.thickness, p[:, 2]], -1)
        hi = np.stack([p[:, 1], lat_hi + long_hi, p[:, 3]], -1)
        return lo, hi


def _quadratic_range(c0, c1, c2, a, b) -> tuple[np.ndarray, np.ndarray]:
    """min and max of c0 + c1 s + c2 s^2 over s in [a, b] (vectorised)."""
    c0, c1, c2, a, b = np.broadcast_arrays(*(np.asarray(v, float) for v in (c0, c1, c2, a, b)))
    f = lambda s: c0 + c1 * s + c2 * s * s  # noqa: E731
    values = [f(a), f(b)]
    with np.errstate(divide="ignore", invalid="ignore"):
        vertex = np.where(np.abs(c2) > 0, -c1 / (2 * np.where(c2 == 0, 1.0, c2)), a)
    vertex = np.clip(vertex, a, b)
    values.append(f(vertex))
    stack = np.stack(values)
    return stack.min(0), stack.max(0)


@dataclass
class Hits:
    """What every pixel's ray hit first: depth (inf = nothing), face, and which solid."""

    depth: np.ndarray  # float64 (H, W)
    face: np.ndarray  # uint8 Face
    piece: np.ndarray  # int32 ground piece, -1 where a box (or nothing) was hit
    box: np.ndarray  # int32 box row, -1 where the ground (or nothing) was hit


SMALL_AREA = 400  # pixels: boxes whose screen rectangle is at most this are cast together, in one batch
_UP, _DOWN, _NEG_X, _POS_X, _NEG_Z, _POS_Z = (int(f) for f in (Face.UP, Face.DOWN, Face.NEG_X, Face.POS_X,
                                                                 Face.NEG_Z, Face.POS_Z))


def cast(rays: Rays, ground: Ground, box_lo: np.ndarray, box_hi: np.ndarray) -> Hits:
    """First hit of every pixel's ray against ``ground`` and the boxes ``box_lo``..``box_hi`` (N, 3)."""
    shape = rays.dx.shape
    hits = Hits(np.full(shape, np.inf), np.zeros(shape, np.uint8), np.full(shape, -1, np.int32),
                np.full(shape, -1, np.int32))
    inv = [1.0 / d if (np.abs(d) >= _TINY).all() else 1.0 / np.where(np.abs(d) < _TINY, _TINY, d)
           for d in (rays.dx, rays.dh, rays.dz)]
    g_lo, g_hi = ground.bounds()
    n_pieces = len(ground.pieces)
    lo = np.concatenate([g_lo, box_lo.reshape(-1, 3)])
    hi = np.concatenate([g_hi, box_hi.reshape(-1, 3)])
    r0, r1, u0, u1, t_near = screen_rects(rays, lo, hi)
    area = (r1 - r0) * (u1 - u0)
    # Ground first (it covers most of the lower image, so boxes behind a hill or a kerb are culled),
    # then the large boxes nearest first, then the small ones (far objects, parts) in one batch.
    boxes = n_pieces + np.argsort(t_near[n_pieces:], kind="stable")
    large = boxes[area[boxes] > SMALL_AREA]
    for k in np.concatenate([np.arange(n_pieces), large]):
        if area[k] == 0:
            continue
        window = (slice(r0[k], r1[k]), slice(u0[k], u1[k]))
        block = hits.depth[window]
        if t_near[k] >= block.max():
            continue
        if k < n_pieces:
            _cast_piece(rays, ground, k, window, inv, hits)
        else:
            _cast_box(rays, lo[k], hi[k], k - n_pieces, window, inv, hits)
    small = boxes[(area[boxes] > 0) & (area[boxes] <= SMALL_AREA)]
    if len(small):
        _cast_small_boxes(rays, lo, hi, small, n_pieces, (r0, r1, u0, u1), inv, hits)
    return hits


def _slab(lo, hi, origin, d, i):
    """(t_enter, t_exit, enter per axis) of rays o + t d through boxes lo..hi (arrays broadcast)."""
    enter = leave = None
    per_axis = []
    for axis in range(3):
        ta, tb = (lo[axis] - origin[axis]) * i[axis], (hi[axis] - origin[axis]) * i[axis]
        near, far = np.minimum(ta, tb), np.maximum(ta, tb)
        per_axis.append(near)
        enter = near if enter is None else np.maximum(enter, near)
        leave = far if leave is None else np.minimum(leave, far)
    return enter, leave, per_axis


def _faces(t, per_axis, dx, dh, dz) -> np.ndarray:
    """The face a ray entered a box through: the slab it entered last (x, then h, then z on ties)."""
    face = np.where(dz > 0, _NEG_Z, _POS_Z)
    face = np.where(per_axis[1] >= t, np.where(dh < 0, _UP, _DOWN), face)
    return np.where(per_axis[0] >= t, np.where(dx > 0, _NEG_X, _POS_X), face).astype(np.uint8)


def _cast_box(rays: Rays, lo: np.ndarray, hi: np.ndarray, index: int, window, inv, hits: Hits) -> None:
    enter, leave, per_axis = _slab(lo, hi, rays.origin, None, [i[window] for i in inv])
    block = hits.depth[window]
    closer = (enter <= leave) & (enter > NEAR_PLANE) & (enter < block)
    if not closer.any():
        return
    t = enter[closer]
    block[closer] = t
    hits.box[window][closer] = index
    hits.piece[window][closer] = -1
    hits.face[window][closer] = _faces(t, [a[closer] for a in per_axis[:2]], rays.dx[window][closer],
                                       rays.dh[window][closer], rays.dz[window][closer])


def _cast_small_boxes(rays: Rays, lo, hi, ks: np.ndarray, n_pieces: int, rects, inv, hits: Hits) -> None:
    """Boxes ``ks`` (rows of lo/hi) against every pixel of their screen rectangles, all at once:
    one (box, pixel) pair per element, then the nearest hit per pixel wins."""
    r0, r1, u0, u1 = (a[ks] for a in rects)
    width = u1 - u0
    counts = (r1 - r0) * width
    owner = np.repeat(np.arange(len(ks)), counts)
    offset = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    rows = r0[owner] + offset // width[owner]
    cols = u0[owner] + offset % width[owner]
    k = ks[owner]
    enter, leave, per_axis = _slab(lo[k].T, hi[k].T, rays.origin, None, [i[rows, cols] for i in inv])
    pixel = rows * hits.depth.shape[1] + cols
    ok = (enter <= leave) & (enter > NEAR_PLANE) & (enter < hits.depth.ravel()[pixel])
    if not ok.any():
        return
    t, pixel, k = enter[ok], pixel[ok], k[ok]
    per_axis = [a[ok] for a in per_axis[:2]]
    order = np.lexsort((t, pixel))  # per pixel, nearest first
    first = np.ones(len(order), bool)
    first[1:] = pixel[order][1:] != pixel[order][:-1]
    win = order[first]
    t, pixel, k = t[win], pixel[win], k[win]
    rows, cols = np.divmod(pixel, hits.depth.shape[1])
    hits.depth[rows, cols] = t
    hits.box[rows, cols] = k - n_pieces
    hits.piece[rows, cols] = -1
    hits.face[rows, cols] = _faces(t, [a[win] for a in per_axis], rays.dx[rows, cols], rays.dh[rows, cols],
                                   rays.dz[rows, cols])


def _cast_piece(rays: Rays, ground: Ground, index: int, window, inv, hits: Hits) -> None:
    x0, x1, z0, z1, c0, c1, c2 = ground.pieces[index]
    e0, e1, e2 = ground.long[index]
    ox, oh, oz = rays.origin
    dx, dh, dz = rays.dx[window], rays.dh[window], rays.dz[window]
    # Top: ground(t) - ray height(t) = a t^2 + b t + c; the ray enters the solid where it rises
    # through zero, at t = (-b + sqrt(b^2 - 4ac)) / 2a = 2c / (-b - sqrt(b^2 - 4ac)) (stable, and
    # -c/b when a = 0). Its other root is where it would leave the solid again.
    k_dz, k_dx = e1 + 2 * e2 * oz, c1 + 2 * c2 * ox
    b = dz * k_dz - dh if k_dx == 0 else dz * k_dz + dx * k_dx - dh
    c = e0 + e1 * oz + e2 * oz * oz + c0 + c1 * ox + c2 * ox * ox - oh
    disc = b * b
    if e2 != 0 or c2 != 0:
        a = e2 * dz * dz if c2 == 0 else e2 * dz * dz + c2 * dx * dx
        a *= 4 * c
        disc -= a
    with np.errstate(divide="ignore", invalid="ignore"):
        np.sqrt(disc, out=disc)
        disc += b
        t = (-2 * c) / disc  # = 2c / (-b - sqrt(b^2 - 4ac))
    valid = t > NEAR_PLANE  # False for NaN (no real root)
    # Bounds at or beyond ground.open are not checked: the ground goes on past them.
    for lo, hi, coord, d in ((x0, x1, ox, dx), (z0, z1, oz, dz)):
        for bound, above in ((lo, True), (hi, False)):
            if abs(bound) < ground.open:
                along = coord + t * d
                valid &= (along >= bound) if above else (along <= bound)
    best = np.where(valid, t, np.inf)
    face = None
    # Exposed sides: vertical planes, hit where the ray's height lies between the top and the bottom.
    for side, (axis, at) in enumerate(((0, x0), (0, x1), (2, z0), (2, z1))):
        if not ground.sides[index, side]:
            continue
        t = (at - rays.origin[axis]) * inv[axis][window]
        x, z, h = ox + t * dx, oz + t * dz, oh + t * dh
        top = e0 + e1 * z + e2 * z * z + c0 + c1 * x + c2 * x * x
        if axis == 0:
            inside, outward = (z >= z0) & (z <= z1), (Face.NEG_X if side == 0 else Face.POS_X)
        else:
            inside, outward = (x >= x0) & (x <= x1), (Face.NEG_Z if side == 2 else Face.POS_Z)
        valid = inside & (t > NEAR_PLANE) & (h <= top) & (h >= top - ground.thickness) & (t < best)
        best = np.where(valid, t, best)
        if face is None:
            face = np.full(dx.shape, Face.UP, np.uint8)
        face[valid] = outward
    block = hits.depth[window]
    closer = best < block
    if not closer.any():
        return
    block[closer] = best[closer]
    hits.face[window][closer] = Face.UP if face is None else face[closer]
    hits.piece[window][closer] = index
    hits.box[window][closer] = -1
