"""Two looks over the same geometry: ``synthetic`` (flat, SYNTHIA-like) and ``real`` (a camera).

``synthetic``: a flat palette per surface class, per-instance colours, Lambert shading
from one sun, flat window panes; no texture, no noise.
``real``: textured surfaces (periodic noise sampled in world coordinates, so texture sticks
to surfaces across frames), another palette and white balance, exposure changes, cast
shadows on the ground, vignetting, optical blur, shot and read noise, JPEG artefacts.

The appearance seed is independent of the scene seed: each domain can be drawn over
its own scenes (unpaired training data) or over the same scene (illustration, tests).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from .render import Face, Geometry
from .scene import Scene, Surface

DOMAINS = ("synthetic", "real")
_DOMAIN_CODE = {"synthetic": 1, "real": 2}
_N_SURFACES = len(Surface)
_V1_SURFACES = 10  # renderer v1's surface classes (its random draws are sized by them, and must stay so)


@dataclass(frozen=True)
class AppearanceConfig:
    """Ranges (low, high) of the real-camera effects, drawn per frame."""

    exposure: tuple[float, float] = (0.55, 1.5)
    white_balance: float = 0.15  # +- relative gain of red and blue
    sun_elevation_deg: tuple[float, float] = (15.0, 65.0)
    shadow_probability: float = 0.8  # overcast frames have no cast shadows
    vignetting: tuple[float, float] = (0.1, 0.5)
    blur_sigma: tuple[float, float] = (0.3, 1.3)  # pixels at 375 rows; scaled with image height
    read_noise: tuple[float, float] = (0.5, 4.0)  # 8-bit units
    shot_noise: tuple[float, float] = (0.2, 1.0)  # gain of sqrt(signal) noise
    jpeg_quality: tuple[int, int] = (35, 90)


# Display-space RGB per Surface, shape (len(Surface), 3).
_SYNTHETIC_BASE = np.array([
    [0.55, 0.70, 0.95],  # sky (a vertical gradient is added)
    [0.50, 0.45, 0.55],  # road
    [0.95, 0.95, 0.92],  # lane marking
    [0.78, 0.72, 0.64],  # sidewalk
    [0.50, 0.62, 0.36],  # terrain
    [0.80, 0.66, 0.52],  # building (per-instance palette below)
    [0.85, 0.15, 0.15],  # car (per-instance palette below)
    [0.62, 0.62, 0.66],  # pole
    [0.48, 0.33, 0.20],  # trunk
    [0.30, 0.62, 0.24],  # foliage
    [0.80, 0.78, 0.70],  # wall / fence (renderer v2)
    [0.95, 0.55, 0.20],  # person / cyclist
    [0.20, 0.40, 0.90],  # sign
], np.float32)
_REAL_BASE = np.array([
    [0.70, 0.78, 0.86],
    [0.25, 0.25, 0.26],
    [0.80, 0.80, 0.76],
    [0.55, 0.54, 0.52],
    [0.36, 0.40, 0.22],
    [0.55, 0.45, 0.38],
    [0.45, 0.45, 0.48],
    [0.35, 0.36, 0.38],
    [0.30, 0.24, 0.18],
    [0.16, 0.30, 0.12],
    [0.50, 0.47, 0.43],
    [0.30, 0.26, 0.24],
    [0.55, 0.58, 0.62],
], np.float32)
_SYNTHETIC_BUILDINGS = np.array([[0.85, 0.72, 0.55], [0.70, 0.75, 0.82], [0.88, 0.82, 0.70],
                                 [0.75, 0.60, 0.60], [0.65, 0.70, 0.60], [0.90, 0.88, 0.85]], np.float32)
_REAL_BUILDINGS = np.array([[0.52, 0.30, 0.24], [0.60, 0.58, 0.55], [0.45, 0.42, 0.38],
                            [0.70, 0.66, 0.58], [0.38, 0.36, 0.36], [0.62, 0.52, 0.40]], np.float32)
_SYNTHETIC_CARS = np.array([[0.90, 0.10, 0.10], [0.10, 0.30, 0.90], [0.95, 0.85, 0.10],
                            [0.10, 0.70, 0.30], [0.95, 0.95, 0.95], [0.15, 0.15, 0.15]], np.float32)
_REAL_CARS = np.array([[0.55, 0.56, 0.58], [0.08, 0.08, 0.09], [0.80, 0.80, 0.80],
                       [0.40, 0.08, 0.08], [0.12, 0.18, 0.32], [0.42, 0.40, 0.36]], np.float32)
_TEXTURE_STRENGTH = np.array([0.05, 0.30, 0.10, 0.25, 0.45, 0.30, 0.08, 0.10, 0.40, 0.60, 0.35, 0.30, 0.05],
                             np.float32)
_TEXTURE_SCALE = np.array([1.0, 14.0, 14.0, 10.0, 6.0, 5.0, 8.0, 8.0, 16.0, 3.0, 6.0, 10.0, 4.0],
                          np.float32)  # texels per metre


def render_appearance(geometry: Geometry, scene: Scene, domain: str, seed: int, frame: int = 0,
                      config: AppearanceConfig = AppearanceConfig(), randomise: bool = False) -> np.ndarray:
    """RGB uint8 (height, width, 3) image of ``geometry`` in ``domain``'s look.

    ``seed`` fixes the look (palette, light, camera settings); ``frame`` only varies the
    sensor noise, so the frames of one driving sequence share a look but not their noise.
    ``randomise`` (renderer v2): domain randomisation on top of either look, from a random
    stream of its own (the v1 draws are unchanged): a colour cast per surface class, a wider
    sun elevation, cast shadows and surface texture in the synthetic look too, and haze
    (visibility 150-2000 m) towards a jittered horizon colour.
    """
    if domain not in DOMAINS:
        raise ValueError(f"unknown domain {domain!r}; known: {', '.join(DOMAINS)}")
    rng = np.random.default_rng(np.random.SeedSequence([seed, _DOMAIN_CODE[domain]]))
    extra = np.random.default_rng(np.random.SeedSequence([seed, _DOMAIN_CODE[domain], 2])) if randomise else None
    real = domain == "real"
    sun = _sun_direction(rng, config.sun_elevation_deg)
    if extra is not None:
        sun = _sun_direction(extra, (8.0, 75.0))
    albedo = _albedo(geometry, scene, rng, real)
    if extra is not None:
        albedo *= extra.uniform(0.8, 1.2, size=(_N_SURFACES, 3)).astype(np.float32)[geometry.surface]
        if not real:
            albedo *= 1.0 + 0.5 * _TEXTURE_STRENGTH[geometry.surface][..., None] * _surface_texture(geometry)[..., None]
    shade = _shading(geometry, sun, ambient=0.45 if real else 0.55)
    if (real and rng.random() < config.shadow_probability) or (extra is not None and not real
                                                                and extra.random() < 0.6):
        in_shadow = (_ground_shadows_per_pixel if extra is not None else _ground_shadows)(geometry, scene, sun)
        shade[in_shadow] = 0.45
    elif real:  # overcast: softer light, no hard shadows
        shade = 0.75 + 0.25 * shade
    image = albedo * shade[..., None]
    sky = geometry.surface == Surface.SKY
    image[sky] = _sky(geometry, rng, real)[sky]
    if extra is not None:
        visibility = extra.uniform(150.0, 2000.0)
        haze = np.array([0.80, 0.82, 0.86], np.float32) * extra.uniform(0.85, 1.1, size=3).astype(np.float32)
        with np.errstate(invalid="ignore", over="ignore"):
            amount = (1.0 - np.exp(-geometry.depth / visibility)).astype(np.float32)[..., None]
        image = np.where(sky[..., None], image, image * (1.0 - amount) + haze * amount)
    if real:
        noise_rng = np.random.default_rng(np.random.SeedSequence([seed, _DOMAIN_CODE[domain], frame]))
        return _camera_effects(image, rng, noise_rng, config)
    return np.clip(image * np.float32(255.0) + np.float32(0.5), 0, 255).astype(np.uint8)


def _sun_direction(rng: np.random.Generator, elevation_deg: tuple[float, float]) -> np.ndarray:
    """Unit vector towards the sun in world (X, H, Z)."""
    elevation = np.deg2rad(rng.uniform(*elevation_deg))
    azimuth = rng.uniform(0, 2 * np.pi)
    return np.array([np.cos(elevation) * np.sin(azimuth), np.sin(elevation), np.cos(elevation) * np.cos(azimuth)])


def _albedo(geometry: Geometry, scene: Scene, rng: np.random.Generator, real: bool) -> np.ndarray:
    surface = geometry.surface
    base = (_REAL_BASE if real else _SYNTHETIC_BASE).copy()
    if real:  # per-frame palette jitter: weathering, different asphalt, seasons
        base[:_V1_SURFACES] *= rng.uniform(0.85, 1.15, size=(_V1_SURFACES, 1)).astype(np.float32)
    albedo = base[surface]
    n_instances = int(scene.boxes.instance.max()) + 1 if len(scene.boxes) else 0
    pick = rng.integers(0, 6, size=max(n_instances, 1))
    inst = np.maximum(geometry.instance, 0)
    for cls, palette in ((Surface.BUILDING, _REAL_BUILDINGS if real else _SYNTHETIC_BUILDINGS),
                         (Surface.CAR, _REAL_CARS if real else _SYNTHETIC_CARS)):
        mask = surface == cls
        albedo[mask] = palette[pick[inst[mask]]]
    _windows(geometry, albedo, rng, real)
    if real:
        albedo *= 1.0 + _TEXTURE_STRENGTH[surface][..., None] * _surface_texture(geometry)[..., None]
    return albedo


def _face_coordinates(geometry: Geometry) -> tuple[np.ndarray, np.ndarray]:
    """2-D coordinates on each pixel's surface plane (metres), for textures and windows."""
    face = geometry.face
    horizontal = (face == Face.UP) | (face == Face.DOWN)
    x_facing = (face == Face.NEG_X) | (face == Face.POS_X)
    a = np.where(x_facing, geometry.world_z, geometry.world_x)
    b = np.where(horizontal, geometry.world_z, geometry.world_h)
    return a, b


def _windows(geometry: Geometry, albedo: np.ndarray, rng: np.random.Generator, real: bool) -> None:
    a, b = _face_coordinates(geometry)
    facade = (geometry.surface == Surface.BUILDING) & (geometry.face != Face.UP) & (geometry.world_h > 2.5)
    spacing = rng.uniform(2.2, 3.2)
    with np.errstate(invalid="ignore"):
        fa = np.mod(a / spacing, 1.0)
        fb = np.mod(b / 3.2, 1.0)
    window = facade & (fa > 0.25) & (fa < 0.75) & (fb > 0.3) & (fb < 0.8)
    glass = np.array([0.18, 0.22, 0.28] if real else [0.35, 0.45, 0.60], np.float32)
    albedo[window] = glass


def _shading(geometry: Geometry, sun: np.ndarray, ambient: float) -> np.ndarray:
    """Lambert term per face orientation (sun in world X, H, Z)."""
    normals = np.array([[0, 0, 0], [-1, 0, 0], [1, 0, 0], [0, 0, -1], [0, 0, 1], [0, 1, 0], [0, -1, 0]], float)
    lambert = np.clip(normals @ sun, 0.0, 1.0)
    lambert[Face.NONE] = 1.0
    table = ambient + (1.0 - ambient) * lambert
    return table[geometry.face].astype(np.float32)


def _ground_shadows(geometry: Geometry, scene: Scene, sun: np.ndarray, cell: float = 0.2,
                    max_distance: float = 120.0) -> np.ndarray:
    """Which ground-level pixels lie in a box's cast shadow, via a top-down shadow map."""
    ground = (geometry.face == Face.UP) & (geometry.world_h < 0.3) & (geometry.depth < max_distance)
    if not ground.any():
        return ground
    gx, gz = geometry.world_x[ground], geometry.world_z[ground]
    x_lo, z_lo = float(gx.min()), float(gz.min())
    nx = int((gx.max() - x_lo) / cell) + 2
    nz = int((gz.max() - z_lo) / cell) + 2
    shadow_map = np.zeros((nz, nx), bool)
    # Horizontal displacement of the shadow per metre of caster height.
    sx, sz = -sun[0] / sun[1], -sun[2] / sun[1]
    b = scene.boxes
    for m in np.flatnonzero(b.surface != Surface.SIDEWALK):
        x0, x1, z0, z1, h0, h1 = b.x0[m], b.x1[m], b.z0[m], b.z1[m], b.h0[m], b.h1[m]
        i0 = max(int((min(x0 + h0 * sx, x0 + h1 * sx) - x_lo) / cell), 0)
        i1 = min(int((max(x1 + h0 * sx, x1 + h1 * sx) - x_lo) / cell) + 1, nx)
        j0 = max(int((min(z0 + h0 * sz, z0 + h1 * sz) - z_lo) / cell), 0)
        j1 = min(int((max(z1 + h0 * sz, z1 + h1 * sz) - z_lo) / cell) + 1, nz)
        if i0 >= i1 or j0 >= j1:
            continue
        px = x_lo + (np.arange(i0, i1) + 0.5) * cell
        pz = z_lo + (np.arange(j0, j1) + 0.5) * cell
        # p is shadowed iff p - k * s lies in the footprint for some caster height k in [h0, h1].
        kx_lo, kx_hi = _height_interval(px, x0, x1, sx)
        kz_lo, kz_hi = _height_interval(pz, z0, z1, sz)
        lo = np.maximum(np.maximum(kx_lo[None, :], kz_lo[:, None]), h0)
        hi = np.minimum(np.minimum(kx_hi[None, :], kz_hi[:, None]), h1)
        shadow_map[j0:j1, i0:i1] |= lo <= hi
    jj = ((gz - z_lo) / cell).astype(int)
    ii = ((gx - x_lo) / cell).astype(int)
    shadowed = np.zeros_like(ground)
    shadowed[ground] = shadow_map[jj, ii]
    return shadowed


def _ground_shadows_per_pixel(geometry: Geometry, scene: Scene, sun: np.ndarray,
                              max_distance: float = 120.0) -> np.ndarray:
    """``_ground_shadows`` tested at each ground-level pixel's own point instead of on a 0.2 m map
    (renderer v2): the pixels sorted by Z, each caster's shadow looked up by its Z range. The cost
    follows the ground pixels a shadow covers, not the map cells (many at a low sun: a 25 m
    building at 8 degrees casts 180 m)."""
    ground = (geometry.face == Face.UP) & (geometry.world_h < 0.3) & (geometry.depth < max_distance)
    if not ground.any():
        return ground
    gx, gz = geometry.world_x[ground].astype(np.float64), geometry.world_z[ground].astype(np.float64)
    order = np.argsort(gz, kind="stable")
    gx, gz = gx[order], gz[order]
    hit = np.zeros(len(gx), bool)
    sx, sz = -sun[0] / sun[1], -sun[2] / sun[1]
    b = scene.boxes
    for m in np.flatnonzero(b.surface != Surface.SIDEWALK):
        x0, x1, z0, z1, h0, h1 = b.x0[m], b.x1[m], b.z0[m], b.z1[m], b.h0[m], b.h1[m]
        lo = np.searchsorted(gz, min(z0 + h0 * sz, z0 + h1 * sz), "left")
        hi = np.searchsorted(gz, max(z1 + h0 * sz, z1 + h1 * sz), "right")
        if lo >= hi:
            continue
        px = gx[lo:hi]
        near = (px >= min(x0 + h0 * sx, x0 + h1 * sx)) & (px <= max(x1 + h0 * sx, x1 + h1 * sx))
        if not near.any():
            continue
        idx = lo + np.flatnonzero(near)
        kx_lo, kx_hi = _height_interval(gx[idx], x0, x1, sx)
        kz_lo, kz_hi = _height_interval(gz[idx], z0, z1, sz)
        hit[idx] |= np.maximum(np.maximum(kx_lo, kz_lo), h0) <= np.minimum(np.minimum(kx_hi, kz_hi), h1)
    shadowed = np.zeros_like(ground)
    values = np.empty(len(hit), bool)
    values[order] = hit
    shadowed[ground] = values
    return shadowed


def _height_interval(p: np.ndarray, lo: float, hi: float, s: float) -> tuple[np.ndarray, np.ndarray]:
    """Heights k with lo <= p - k s <= hi, as (k_min, k_max) arrays (empty when k_min > k_max)."""
    if abs(s) < 1e-9:
        inside = (p >= lo) & (p <= hi)
        return np.where(inside, -np.inf, np.inf), np.where(inside, np.inf, -np.inf)
    a, b = (p - hi) / s, (p - lo) / s
    return np.minimum(a, b), np.maximum(a, b)


@lru_cache(maxsize=1)
def _noise_tile(size: int = 256) -> np.ndarray:
    """Periodic 1/f noise in [-1, 1] (FFT-filtered, so it tiles without seams); fixed, shared by all frames."""
    white = np.random.default_rng(20181).standard_normal((size, size))
    f = np.fft.fftfreq(size)
    radius = np.sqrt(f[:, None] ** 2 + f[None, :] ** 2)
    radius[0, 0] = 1.0
    tile = np.real(np.fft.ifft2(np.fft.fft2(white) / radius ** 1.2))
    tile -= tile.mean()
    return (tile / np.abs(tile).max()).astype(np.float32)


def _sample_tile(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    tile = _noise_tile()
    n = tile.shape[0]
    ia = np.nan_to_num(a, nan=0.0).astype(np.int64) % n
    ib = np.nan_to_num(b, nan=0.0).astype(np.int64) % n
    return tile[ib, ia]


def _surface_texture(geometry: Geometry) -> np.ndarray:
    a, b = _face_coordinates(geometry)
    scale = _TEXTURE_SCALE[geometry.surface]
    return _sample_tile(a * scale, b * scale)


def _sky(geometry: Geometry, rng: np.random.Generator, real: bool) -> np.ndarray:
    height, width = geometry.depth.shape
    camera = geometry.camera
    elevation = np.clip((camera.cy - np.arange(height)) / camera.fy, 0.0, 1.0)[:, None, None]
    if real:
        horizon = np.array([0.85, 0.86, 0.88]) * rng.uniform(0.9, 1.1)
        zenith = np.array([0.45, 0.60, 0.85]) * rng.uniform(0.8, 1.1)
    else:
        horizon, zenith = np.array([0.78, 0.87, 0.98]), _SYNTHETIC_BASE[Surface.SKY]
    sky = horizon + (zenith - horizon) * np.sqrt(elevation)
    sky = np.broadcast_to(sky, (height, width, 3)).astype(np.float32)
    if real:  # clouds: screen-space noise, brighter and greyer
        v, u = np.mgrid[0:height, 0:width]
        clouds = np.clip(_sample_tile(u * 300.0 / width + rng.uniform(0, 256), v * 150.0 / width), 0, 1)
        sky = sky + (0.95 - sky) * (clouds * rng.uniform(0.0, 1.0))[..., None]
    return sky


def _camera_effects(linear: np.ndarray, rng: np.random.Generator, noise_rng: np.random.Generator,
                    config: AppearanceConfig) -> np.ndarray:
    """Exposure, white balance, vignetting, blur, sensor noise, tone curve, JPEG."""
    height, width = linear.shape[:2]
    gains = np.array([1.0 + rng.uniform(-1, 1) * config.white_balance, 1.0,
                      1.0 + rng.uniform(-1, 1) * config.white_balance])
    image = linear * (rng.uniform(*config.exposure) * gains)
    v, u = np.ogrid[0:height, 0:width]
    r2 = ((u - width / 2) / (width / 2)) ** 2 + ((v - height / 2) / (width / 2)) ** 2
    image *= (1.0 - rng.uniform(*config.vignetting) * r2)[..., None]
    sigma = rng.uniform(*config.blur_sigma) * height / 375.0
    image = cv2.GaussianBlur(image.astype(np.float32), (0, 0), sigma)
    signal = np.clip(image, 0, None) * 255.0
    noise = noise_rng.standard_normal(image.shape, dtype=np.float32)
    signal += noise * (rng.uniform(*config.read_noise) + rng.uniform(*config.shot_noise) * np.sqrt(signal))
    toned = 255.0 * (np.clip(signal / 255.0, 0.0, 1.0) ** (1 / 1.15))  # a mild camera tone curve
    image8 = toned.astype(np.uint8)
    quality = int(rng.integers(config.jpeg_quality[0], config.jpeg_quality[1] + 1))
    ok, encoded = cv2.imencode(".jpg", cv2.cvtColor(image8, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return cv2.cvtColor(cv2.imdecode(encoded, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
