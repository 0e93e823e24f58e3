"""Indexable procedural datasets: frame i of a domain is a pure function of (seed, domain, i).

Scene and appearance seeds come from separate streams. By default each domain draws its
own scenes (unpaired, as CycleGAN training needs); ``paired=True`` renders the synthetic
domain's scenes in the requested look (for illustration and paired evaluation).
Frames come in driving sequences of ``sequence_length`` (the camera moves forward
``step`` metres per frame through one scene); the default of 1 gives independent scenes.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..camera import PinholeCamera
from .appearance import DOMAINS, AppearanceConfig, render_appearance
from .render import Geometry, render_geometry
from .scene import SceneConfig, sample_scene

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

    def __post_init__(self) -> None:
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
        scene = sample_scene(scene_seed, c.scene, travel=c.step * (c.sequence_length - 1))
        geometry = render_geometry(scene, self.camera, forward=c.step * step)
        rgb = render_appearance(geometry, scene, c.domain, look_seed, frame=step, config=c.appearance)
        return ProceduralFrame(rgb, geometry.depth, geometry, scene_seed, index)
