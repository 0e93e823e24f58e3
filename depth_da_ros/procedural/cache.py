"""A disk cache of rendered procedural frames, shared by epochs, runs, seeds and processes.

Rendering a frame costs about as much CPU as a training step of a small network on it, and
on a 2-core machine the renderer and the trainer compete for the same cores. The cache
renders each frame once and stores (RGB, depth) under a folder keyed by everything that
determines the frame: the full ``ProceduralConfig`` (domain, seed, size, sequences, scene and
look distributions) and ``RENDER_VERSION``. A change to any of them is a new folder, never a
stale hit. Writes go to a temporary file and are renamed into place, so concurrent readers
(DataLoader workers, several runs) never see a torn frame and two writers of one frame agree.
"""
from __future__ import annotations

import hashlib
import logging
import zipfile
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..atomic import atomic_writer
from .dataset import ProceduralConfig, ProceduralDataset

LOG = logging.getLogger(__name__)

# The render version of each renderer; bump a renderer's whenever it changes what a frame of a
# given config looks like. Renderer 1 -- 2: objects no longer enter the ego vehicle's clearance
# (scene.remove_intruders). Renderer 2 -- 3: the first v2 world (scene_v2, render_v2); 4: the
# non-flat ground (grade, vertical curve, crown, kerb faces) and camera pitch/roll (raycast); 5: rural
# verges, ditches and embankments; batched small boxes; 6: the ground goes on past its outer
# pieces' far edges (no sky below the horizon beyond 1 km); 7: v2's cast shadows tested per ground pixel;
# 8: lane markings and rails also beyond the vertical curve's end (they stopped there); 9: mount pitch and
# roll +-0.5 deg (was +-1; the road's grade and camber still pitch and roll the car).
RENDER_VERSIONS = {1: 2, 2: 9}
RENDER_VERSION = RENDER_VERSIONS[1]


def cache_folder(config: ProceduralConfig, root: str | Path) -> Path:
    """``root/<domain>-seed<seed>-<H>x<W>-seq<L>-v<render version>-<digest of the whole config>``.

    Renderer 1's folders are named and digested as before the renderer field existed (its
    frames are the same), so earlier caches stay valid; renderer 2's carry its own version."""
    version = RENDER_VERSIONS[config.renderer]
    described = repr(config).removesuffix(", renderer=1)") + ")" if config.renderer == 1 else repr(config)
    digest = hashlib.sha256(f"{version}:{described}".encode()).hexdigest()[:12]
    name = (f"{config.domain}-seed{config.seed}-{config.height}x{config.width}-seq{config.sequence_length}"
            f"-v{version}-{digest}")
    return Path(root) / name


class FrameCache:
    """``cache.load(i)`` = ``(dataset[i].rgb, dataset[i].depth)``, rendered once and then read from disk.

    ``rgb``: uint8 (H, W, 3); ``depth``: float32 (H, W) metres along the optical axis, inf = sky.
    Raises ``OSError`` when ``root`` cannot be created or written.
    """

    def __init__(self, dataset: ProceduralDataset, root: str | Path) -> None:
        self.dataset = dataset
        self.folder = cache_folder(dataset.config, root)
        self.folder.mkdir(parents=True, exist_ok=True)
        description = self.folder / "config.txt"
        if not description.exists():
            with atomic_writer(description) as f:
                f.write(f"{dataset.config!r}\n".encode())

    def path(self, index: int) -> Path:
        return self.folder / f"{index:06d}.npz"

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        path = self.path(index)
        try:
            with np.load(path) as data:
                return data["rgb"], data["depth"]
        except FileNotFoundError:
            pass
        except (zipfile.BadZipFile, KeyError, ValueError, OSError) as error:  # a damaged file: render it again
            LOG.warning("re-rendering damaged cache file %s (%s)", path, error)
        frame = self.dataset[index]
        with atomic_writer(path) as f:
            np.savez(f, rgb=frame.rgb, depth=frame.depth)
        return frame.rgb, frame.depth

    def fill(self, desc: str = "") -> None:
        """Render every frame not yet on disk, with a progress bar."""
        missing = [i for i in range(len(self.dataset)) if not self.path(i).exists()]
        for i in tqdm(missing, desc=desc or f"rendering {self.folder.name}", unit="frame", disable=not missing):
            self.load(i)
