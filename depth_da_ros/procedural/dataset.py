"""Indexable procedural datasets: frame i of a domain is a pure function of (seed, domain, i).

Scene and appearance seeds come from separate streams. By default each domain draws its
own scenes (unpaired, as CycleGAN training needs); ``paired=True`` renders the synthetic
domain's scenes in the requested look (for illustration and paired evaluation).
Frames come in driving sequences of ``sequence_length`` (the camera moves forward
``step`` metres per frame through one scene); the default of 1 gives independent scenes.

``renderer`` selects the world: 1 (the default; boxes on a flat plane, ``scene.py``, so older
configs and results reproduce exactly) or 2 (``scene_v2.py``: the variety of real streets,
camera height 1.2-2.0 m, a per-scene focal/pitch jitter of the camera, domain randomisation of
both looks). A v2 frame's camera is ``frame.camera``; ``config.camera`` stays the nominal
(training) camera.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..camera import PinholeCamera
from .appearance import DOMAINS, AppearanceConfig, render_appearance
from .render import Geometry, render_geometry
from .render_v2 import appearance_view, camera_attitude, frame_camera, render_geometry_v2
from .scene import SceneConfig, sample_scene
from .scene_v2 import SceneConfigV2, sample_scene_v2

RENDERERS = (1, 2)
_SCENE_STREAM = {"synthetic": 11, "real": 12}
_LOOK_STREAM = {"synthetic": 21, "real": 22}


@dataclass(frozen=True)
class ProceduralConfig:
    """Everything that determines a procedural dataset (saved next to the data it produced)."""

    domain: str = "synthetic"
    seed: int = 0
    height: int = 192
    width: int = 640
    sequence_length: int = 1
    step: float = 1.0  # metres per frame within a sequence (10 m/s at KITTI's 10 Hz)
    paired: bool = False
    scene: SceneConfig = field(default_factory=SceneConfig)
    appearance: AppearanceConfig = field(default_factory=AppearanceConfig)
    renderer: int = 1  # 1 or 2 (RENDERERS); last, so a renderer-1 config's repr is that of earlier versions

    def __post_init__(self) -> None:
        if self.renderer not in RENDERERS:
            raise ValueError(f"unknown renderer {self.renderer!r}; known: {', '.join(map(str, RENDERERS))}")
        if self.renderer != 1 and self.scene != SceneConfig():
            raise ValueError("scene settings apply to renderer 1 only (renderer 2 draws from scene_v2.SceneConfigV2)")
        if self.domain not in DOMAINS:
            raise ValueError(f"unknown domain {self.domain!r}; known: {', '.join(DOMAINS)}")
        if self.height < 8 or self.width < 8:
            raise ValueError(f"image size {self.height}x{self.width} is too small")
        if self.sequence_length < 1 or self.step < 0:
            raise ValueError("sequence_length must be >= 1 and step >= 0")

    @property
    def camera(self) -> PinholeCamera:
        return PinholeCamera.kitti_like(self.height, self.width)


@dataclass
class ProceduralFrame:
    rgb: np.ndarray  # uint8 (H, W, 3)
    depth: np.ndarray  # float32 metres along the optical axis, inf = sky
    geometry: Geometry
    scene_seed: int
    index: int
    camera: PinholeCamera | None = None  # the frame's camera (renderer 2 jitters it; v1: the nominal one)
    # renderer 2: (camera height over the ground under it in m, pitch, roll in degrees relative to level,
    # pitch > 0 looking down, roll > 0 the image turned clockwise); renderer 1: None (level, camera_height)
    pose: tuple[float, float, float] | None = None


def _derive(*words: int) -> int:
    return int(np.random.SeedSequence(list(words)).generate_state(1)[0])


class ProceduralDataset:
    """``dataset[i]`` renders frame i; any length (frames are generated, not stored)."""

    def __init__(self, config: ProceduralConfig = ProceduralConfig(), length: int = 1000) -> None:
        if length < 1:
            raise ValueError(f"dataset length must be positive, got {length}")
        self.config = config
        self.length = length
        self.camera = config.camera

    def __len__(self) -> int:
        return self.length

    def seeds(self, index: int) -> tuple[int, int, int]:
        """(scene seed, look seed, step within the sequence) of frame ``index``."""
        c = self.config
        scene_index, step = divmod(index, c.sequence_length)
        scene_domain = "synthetic" if c.paired else c.domain
        scene_seed = _derive(c.seed, _SCENE_STREAM[scene_domain], scene_index)
        look_seed = _derive(c.seed, _LOOK_STREAM[c.domain], scene_index)
        return scene_seed, look_seed, step

    def __getitem__(self, index: int) -> ProceduralFrame:
        if not 0 <= index < self.length:
            raise IndexError(f"frame {index} out of range 0..{self.length - 1}")
        c = self.config
        scene_seed, look_seed, step = self.seeds(index)
        travel = c.step * (c.sequence_length - 1)
        if c.renderer == 1:
            scene = sample_scene(scene_seed, c.scene, travel=travel)
            geometry = render_geometry(scene, self.camera, forward=c.step * step)
        else:
            scene = sample_scene_v2(scene_seed, SceneConfigV2(), travel=travel)
            geometry = render_geometry_v2(scene, self.frame_camera(index), forward=c.step * step)
        looked_at, scene = (geometry, scene) if c.renderer == 1 else appearance_view(geometry, scene)
        rgb = render_appearance(looked_at, scene, c.domain, look_seed, frame=step, config=c.appearance,
                                randomise=c.renderer == 2)
        pose = None
        if c.renderer == 2 and scene.ground is not None:
            _, pitch, roll = camera_attitude(scene, c.step * step)
            pose = (round(scene.camera_height, 4), round(float(np.rad2deg(pitch)), 4),
                    round(float(np.rad2deg(roll)), 4))
        return ProceduralFrame(rgb, geometry.depth, geometry, scene_seed, index, geometry.camera, pose)

    def frame_camera(self, index: int) -> PinholeCamera:
        """The camera of frame ``index``: the nominal one (renderer 1), or its per-scene jitter
        (renderer 2: ``render_v2.frame_camera``, shared by the frames of one sequence)."""
        if self.config.renderer == 1:
            return self.camera
        scene_seed, _, _ = self.seeds(index)
        return frame_camera(self.camera, np.random.default_rng(np.random.SeedSequence([scene_seed, 0xCA3])))
