"""Write procedural datasets to disk in the real formats, so the real loaders read them.

    <out>/synthetic/RGB/0000000.png              SYNTHIA-RAND-CITYSCAPES layout
    <out>/synthetic/Depth/Depth/0000000.png      16-bit centimetres, sky = 65535
    <out>/real/<date>/calib_cam_to_cam.txt       KITTI raw layout
    <out>/real/<date>/<date>_drive_0000_sync/image_02/data/0000000000.png (+ timestamps.txt)
    <out>/real_depth_gt/<date>_drive_0000_sync/proj_depth/groundtruth/image_02/0000000000.png
                                                 KITTI depth-benchmark PNG (m * 256, 0 = none);
                                                 for evaluation only, never for training
    <out>/<domain>/dataset.json                  the generating config, camera, encodings

Usage: ``depth_da_render --out data/procedural --frames 2000`` (see ``--help``).

Rendering into a folder that holds an earlier render of the same domain replaces it: the
earlier frames, drives and ground truth are removed first, so the folder never mixes two
renders (stale frames beyond the new count would otherwise pass for part of the dataset, and
disagree with dataset.json and timestamps.txt). A non-empty domain folder that is not a
render of ours (no dataset.json of this generator) is refused, and nothing is deleted.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import multiprocessing
import os
import shutil
import signal
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from .. import __version__
from ..camera import PinholeCamera
from ..config import ConfigError, apply_overrides, config_to_dict
from ..depth_io import write_kitti_depth, write_synthia_depth
from .appearance import DOMAINS
from .cache import RENDER_VERSIONS
from .dataset import RENDERERS, ProceduralConfig, ProceduralDataset

LOG = logging.getLogger(__name__)
GENERATOR = "depth_da_ros.procedural"
KITTI_DATE = "2000_01_01"  # a made-up date: the folder name KITTI tooling expects
FRAMES_PER_DRIVE = 1000
KITTI_RATE_HZ = 10.0
# Velodyne (x forward, y left, z up) to camera (x right, y down, z forward), KITTI-like mount.
VELO_TO_CAM_R = np.array([[0.0, -1.0, 0.0], [0.0, 0.0, -1.0], [1.0, 0.0, 0.0]])
VELO_TO_CAM_T = np.array([0.0, -0.08, -0.27])


def drive_name(drive: int) -> str:
    return f"{KITTI_DATE}_drive_{drive:04d}_sync"


def frame_paths(root: Path, domain: str, index: int) -> dict[str, Path]:
    """Where frame ``index`` of ``domain`` lives under the output root ``root``."""
    if domain == "synthetic":
        name = f"{index:07d}.png"
        return {"rgb": root / "synthetic" / "RGB" / name, "depth": root / "synthetic" / "Depth" / "Depth" / name}
    drive, frame = divmod(index, FRAMES_PER_DRIVE)
    name = f"{frame:010d}.png"
    return {
        "rgb": root / "real" / KITTI_DATE / drive_name(drive) / "image_02" / "data" / name,
        "depth": root / "real_depth_gt" / drive_name(drive) / "proj_depth" / "groundtruth" / "image_02" / name,
    }


def write_kitti_calibration(date_dir: Path, camera: PinholeCamera) -> None:
    """KITTI raw calib files for a rectified camera 02 that is also the reference camera."""
    date_dir.mkdir(parents=True, exist_ok=True)
    fmt = lambda a: " ".join(f"{v:.6e}" for v in np.ravel(a))  # noqa: E731
    lines = ["calib_time: 01-Jan-2000 00:00:00", "corner_dist: 0.000000e+00"]
    for cam in ("00", "02"):
        lines += [f"S_{cam}: {fmt([camera.width, camera.height])}", f"K_{cam}: {fmt(camera.K)}",
                  f"D_{cam}: {fmt(np.zeros(5))}", f"R_{cam}: {fmt(np.eye(3))}", f"T_{cam}: {fmt(np.zeros(3))}",
                  f"S_rect_{cam}: {fmt([camera.width, camera.height])}", f"R_rect_{cam}: {fmt(np.eye(3))}",
                  f"P_rect_{cam}: {fmt(camera.P)}"]
    (date_dir / "calib_cam_to_cam.txt").write_text("\n".join(lines) + "\n")
    (date_dir / "calib_velo_to_cam.txt").write_text(
        f"calib_time: 01-Jan-2000 00:00:00\nR: {fmt(VELO_TO_CAM_R)}\nT: {fmt(VELO_TO_CAM_T)}\n"
        "delta_f: 0.000000e+00 0.000000e+00\ndelta_c: 0.000000e+00 0.000000e+00\n")


def _timestamps(frames: int) -> str:
    start = datetime(2000, 1, 1)
    stamps = []
    for i in range(frames):
        t = start + timedelta(seconds=i / KITTI_RATE_HZ)
        stamps.append(t.strftime("%Y-%m-%d %H:%M:%S.%f") + "000")  # KITTI writes nanoseconds
    return "\n".join(stamps) + "\n"


_WORKER: dict = {}


def _init_worker(config: ProceduralConfig, frames: int, root: Path) -> None:
    cv2.setNumThreads(1)  # the pool already uses every core
    _WORKER.update(dataset=ProceduralDataset(config, frames), root=root)


def _write_frame(index: int) -> tuple[int, tuple[float, float, float] | None]:
    dataset: ProceduralDataset = _WORKER["dataset"]
    frame = dataset[index]
    paths = frame_paths(_WORKER["root"], dataset.config.domain, index)
    paths["rgb"].parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(paths["rgb"]), cv2.cvtColor(frame.rgb, cv2.COLOR_RGB2BGR)):
        raise OSError(f"cannot write {paths['rgb']}")
    if dataset.config.domain == "synthetic":
        write_synthia_depth(paths["depth"], frame.depth)
    else:
        write_kitti_depth(paths["depth"], frame.depth)
    return index, frame.pose


def _render_outputs(root: Path, domain: str) -> list[Path]:
    """Every folder / file a render of ``domain`` writes under ``root`` (what a new render replaces)."""
    domain_dir = root / domain
    if domain == "synthetic":
        return [domain_dir / "RGB", domain_dir / "Depth", domain_dir / "dataset.json"]
    gt_drives = sorted((root / "real_depth_gt").glob(f"{KITTI_DATE}_drive_*_sync"))
    return [domain_dir / KITTI_DATE, *gt_drives, domain_dir / "dataset.json"]


def clear_previous_render(root: Path, domain: str) -> int:
    """Remove an earlier render of ``domain`` under ``root`` (see the module docstring); returns the
    frame count its manifest recorded (0 when there was none). FileExistsError, deleting nothing,
    when the domain folder holds files that are not a render of ours."""
    domain_dir = Path(root) / domain
    if not domain_dir.is_dir() or not any(domain_dir.iterdir()):
        return 0
    manifest_path = domain_dir / "dataset.json"
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, ValueError):
        manifest = {}
    if not isinstance(manifest, dict) or manifest.get("generator") != GENERATOR or manifest.get("domain") != domain:
        raise FileExistsError(f"{domain_dir} is not empty and is not a {domain} render of depth_da_render (no "
                              f"{manifest_path} written by it); render into an empty or new folder instead")
    for path in _render_outputs(Path(root), domain):
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    previous = int(manifest.get("frames", 0))
    LOG.info("replacing the earlier %s render in %s (%d frames)", domain, domain_dir, previous)
    return previous


def write_domain(root: Path, config: ProceduralConfig, frames: int, workers: int = 1, progress: bool = True) -> Path:
    """Render ``frames`` frames of ``config.domain`` under ``root``; returns the domain folder.

    An earlier render of the domain there is removed first (``clear_previous_render``); a
    non-empty folder that is not one raises FileExistsError."""
    root = Path(root)
    domain_dir = root / config.domain
    clear_previous_render(root, config.domain)
    domain_dir.mkdir(parents=True, exist_ok=True)
    # Marks the folder as ours from the start: an interrupted render is still replaced by the next one.
    (domain_dir / "dataset.json").write_text(json.dumps(
        {"generator": GENERATOR, "domain": config.domain, "frames": frames, "complete": False}, indent=2) + "\n")
    camera = config.camera
    if config.domain == "real":
        write_kitti_calibration(domain_dir / KITTI_DATE, camera)
        for drive in range((frames + FRAMES_PER_DRIVE - 1) // FRAMES_PER_DRIVE):
            image_dir = domain_dir / KITTI_DATE / drive_name(drive) / "image_02"
            image_dir.mkdir(parents=True, exist_ok=True)
            count = min(FRAMES_PER_DRIVE, frames - drive * FRAMES_PER_DRIVE)
            (image_dir / "timestamps.txt").write_text(_timestamps(count))
    started = time.perf_counter()
    indices = range(frames)
    poses: list[tuple[float, float, float] | None] = [None] * frames
    bar = tqdm(total=frames, desc=f"rendering {config.domain}", unit="frame", disable=not progress)
    if workers > 1:
        with multiprocessing.get_context("fork").Pool(workers, _init_pool_worker, (config, frames, root)) as pool:
            for index, pose in pool.imap_unordered(_write_frame, indices, chunksize=8):
                poses[index] = pose
                bar.update()
    else:
        _init_worker(config, frames, root)
        for index in indices:
            poses[index] = _write_frame(index)[1]
            bar.update()
    bar.close()
    elapsed = time.perf_counter() - started
    manifest = {
        "generator": GENERATOR, "version": __version__, "domain": config.domain, "frames": frames, "complete": True,
        "layout": "SYNTHIA-RAND-CITYSCAPES" if config.domain == "synthetic" else "KITTI raw (+ depth-benchmark GT)",
        "camera": dataclasses.asdict(camera),
        "render_version": RENDER_VERSIONS[config.renderer],
        **({"frame_cameras": "renderer 2 jitters the camera per scene around 'camera'; [fx, fy, cx, cy] per frame "
                             "in 'frame_camera_values' (the KITTI calibration files hold 'camera')",
            "frame_camera_values": [[round(v, 4) for v in (c.fx, c.fy, c.cx, c.cy)]
                                    for c in map(ProceduralDataset(config, frames).frame_camera, range(frames))],
            "frame_camera_poses": "per frame [camera height over the ground under it (m), pitch, roll (degrees, "
                                  "relative to level; pitch > 0 looks down, roll > 0 turns the image clockwise)] in "
                                  "'frame_camera_pose_values': the road's grade and camber plus the mount's",
            "frame_camera_pose_values": [list(p) if p is not None else None for p in poses]}
           if config.renderer != 1 else {}),
        "depth": ("centimetres in 16-bit PNG channel 0; 65535 = sky / beyond 655 m" if config.domain == "synthetic"
                  else "real_depth_gt/: metres * 256 in 16-bit PNG; 0 = sky / no depth; evaluation only"),
        "config": config_to_dict(config),
        "render_seconds": round(elapsed, 2),
    }
    (domain_dir / "dataset.json").write_text(json.dumps(manifest, indent=2) + "\n")
    LOG.info("wrote %d %s frames to %s in %.1f s (%.1f frames/s)", frames, config.domain, domain_dir, elapsed,
             frames / elapsed)
    return domain_dir


def _init_pool_worker(config: ProceduralConfig, frames: int, root: Path) -> None:
    """A pool worker ignores Ctrl-C (a terminal sends it to the whole process group) and dies
    quietly on SIGTERM (how the pool is stopped), whatever handlers it inherited from ``main``: the
    parent stops the pool, and the workers print no tracebacks of their own."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _init_worker(config, frames, root)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="depth_da_render", description="Render procedural two-domain road scenes in SYNTHIA / KITTI formats.")
    parser.add_argument("--out", type=Path, default=Path("data/procedural"), help="output root (default: %(default)s)")
    parser.add_argument("--domains", nargs="+", choices=DOMAINS, default=list(DOMAINS))
    parser.add_argument("--frames", type=int, default=1000, help="frames per domain (default: %(default)s)")
    parser.add_argument("--height", type=int, default=192)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sequence-length", type=int, default=1, help="frames per driving sequence (1 = independent)")
    parser.add_argument("--paired", action="store_true", help="render the synthetic domain's scenes in every look")
    parser.add_argument("--renderer", type=int, choices=RENDERERS, default=1,
                        help="1: boxes on a plane (default); 2: the v2 street world (procedural/scene_v2.py)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a ProceduralConfig field, e.g. scene.lanes=[1,2] (repeatable)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.frames < 1:
        parser.error("--frames must be positive")
    try:
        base = apply_overrides(ProceduralConfig(seed=args.seed, height=args.height, width=args.width,
                                                sequence_length=args.sequence_length, paired=args.paired,
                                                renderer=args.renderer),
                               args.overrides)
    except ConfigError as exc:
        parser.error(str(exc))
    signal.signal(signal.SIGTERM, _interrupt)  # as Ctrl-C
    for domain in args.domains:
        try:
            write_domain(args.out, dataclasses.replace(base, domain=domain), args.frames, max(args.workers, 1))
        except FileExistsError as exc:
            parser.exit(2, f"{parser.prog}: error: {exc}\n")
        except KeyboardInterrupt:
            for signum in (signal.SIGINT, signal.SIGTERM):
                signal.signal(signum, signal.SIG_IGN)
            LOG.warning("interrupted: %s is incomplete (its dataset.json says so; the next render into %s "
                        "replaces it)", args.out / domain, args.out)
            return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
