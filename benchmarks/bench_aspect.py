"""Which aspect policy (stretch / crop / pad) gives the best metres for a 4:3 camera?

    python benchmarks/bench_aspect.py                      # bundled model, 48 frames, writes results/aspect.md
    python benchmarks/bench_aspect.py --frames 8 --no-record

Procedural evaluation scenes (real look, seed 1000, as the model card's) are rendered with
square-pixel 4:3 cameras at 640x480 -- not with ``ProceduralConfig.camera``, which scales
KITTI's intrinsics per axis and so renders a *stretched* KITTI view (fy = 2.5 fx at 640x480),
not a 4:3 camera. Each frame goes through ``DepthPipeline.predict`` under each policy and is
rescaled by focal length through the policy's window (``geometry.focal_scale``), as the node
does with ``scale_mode: focal``. Metrics per frame, then averaged: the seven KITTI metrics
over the pixels with ground truth in (1e-3, 80] m that got an estimate, the coverage (the
share of those pixels that got one; ``crop`` leaves the rest NaN), and abs_rel on the centre
band that every policy covers (a like-for-like comparison); "± s.e." is the standard error of
the mean abs_rel over frames. Reference row: the same scenes
rendered with the training camera at 192x640 (no aspect problem).

``--native HxW`` adds a row that is no node policy: the network run at another input size of
the camera's aspect (a fully convolutional network accepts any multiple of its stride; the ONNX
model's fixed input dims are freed in memory), as "a model exported for the camera's size"
would; the depth is rescaled by focal length at that size. ``--policies`` picks the rows and
``--name`` the results file (default: all policies, results/aspect.md).
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from recording import machine_summary, record  # noqa: E402

from depth_da_ros.camera import KITTI_FX, KITTI_WIDTH, PinholeCamera  # noqa: E402
from depth_da_ros.geometry import ASPECT_POLICIES, network_window, scale_depth  # noqa: E402
from depth_da_ros.metrics import METRIC_NAMES, compute_errors  # noqa: E402
from depth_da_ros.pipeline import DepthPipeline  # noqa: E402
from depth_da_ros.procedural.appearance import render_appearance  # noqa: E402
from depth_da_ros.procedural.dataset import ProceduralConfig, ProceduralDataset  # noqa: E402
from depth_da_ros.procedural.render import render_geometry  # noqa: E402
from depth_da_ros.procedural.scene import sample_scene  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
NOTE = ("\"predict p50\" is wall time on the machine as it was during the run (other jobs may share its "
        "CPU); compare latencies within one run only. The node's default `aspect_policy` is the policy "
        "with the lowest abs_rel that covers the whole frame, unless another is clearly (beyond its "
        "standard errors) more accurate.")
EVAL_SEED = 1000
MIN_DEPTH, MAX_DEPTH = 1e-3, 80.0


@dataclass(frozen=True)
class Camera:
    label: str
    camera: PinholeCamera


def cameras() -> list[Camera]:
    """Square-pixel 640x480 cameras, principal point at the centre."""
    kitti_fov = KITTI_FX * 640 / KITTI_WIDTH  # KITTI's horizontal field of view (81 deg) at 640 wide
    webcam = 320 / np.tan(np.radians(30))  # a 60 deg webcam
    return [Camera(f"4:3, KITTI's horizontal FOV (fx = fy = {kitti_fov:.1f} px)",
                   PinholeCamera(640, 480, kitti_fov, kitti_fov, 320.0, 240.0)),
            Camera(f"4:3, 60 deg webcam (fx = fy = {webcam:.1f} px)",
                   PinholeCamera(640, 480, webcam, webcam, 320.0, 240.0))]


def render(camera: PinholeCamera, count: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(RGB, depth metres with inf = sky) of evaluation frames 0..count-1 seen by ``camera``."""
    config = ProceduralConfig(domain="real", seed=EVAL_SEED, height=camera.height, width=camera.width, paired=True)
    dataset = ProceduralDataset(config, count)
    frames = []
    for index in range(count):
        scene_seed, look_seed, step = dataset.seeds(index)
        scene = sample_scene(scene_seed, config.scene, travel=config.step * (config.sequence_length - 1))
        geometry = render_geometry(scene, camera, forward=config.step * step)
        rgb = render_appearance(geometry, scene, config.domain, look_seed, frame=step, config=config.appearance)
        frames.append((rgb, geometry.depth))
    return frames


def frame_errors(gt: np.ndarray, pred: np.ndarray, band: np.ndarray) -> dict[str, float]:
    valid = (gt > MIN_DEPTH) & (gt <= MAX_DEPTH)
    estimated = valid & np.isfinite(pred)
    errors = compute_errors(gt[estimated], np.clip(pred[estimated], MIN_DEPTH, MAX_DEPTH))
    errors["coverage"] = float(estimated.sum() / valid.sum())
    in_band = estimated & band
    errors["band_abs_rel"] = float(np.mean(np.abs(gt[in_band] - np.clip(pred[in_band], MIN_DEPTH, MAX_DEPTH))
                                           / gt[in_band]))
    return errors


def evaluate(pipeline: DepthPipeline, camera: PinholeCamera, frames: list[tuple[np.ndarray, np.ndarray]],
             policy: str) -> dict[str, float]:
    size = (camera.height, camera.width)
    window = network_window(size, pipeline.input_size, policy)
    crop = network_window(size, pipeline.input_size, "crop")
    band = np.zeros(size, bool)
    band[max(crop.y, 0):crop.y + crop.height, max(crop.x, 0):crop.x + crop.width] = True
    rows, times = [], []
    for rgb, gt in frames:
        started = time.perf_counter()
        depth = pipeline.predict(rgb, aspect=policy)
        times.append(time.perf_counter() - started)
        depth, factor = scale_depth(depth, "focal", camera, pipeline.training_camera, window)
        rows.append(frame_errors(gt, depth, band))
    result = {name: float(np.mean([r[name] for r in rows])) for name in rows[0]}
    result["abs_rel_se"] = float(np.std([r["abs_rel"] for r in rows], ddof=1) / np.sqrt(len(rows))) if len(rows) > 1 \
        else float("nan")
    result["factor"] = factor
    result["ms"] = 1e3 * float(np.median(times))
    return result


def free_input_session(model: Path, threads: int):
    """An ONNX Runtime session of ``model`` with its input height and width left free."""
    import onnx
    import onnxruntime as ort

    graph = onnx.load(str(model))
    for dim, name in zip(graph.graph.input[0].type.tensor_type.shape.dim[1:3], ("height", "width")):
        dim.ClearField("dim_value")
        dim.dim_param = name
    for output in graph.graph.output:
        for index, dim in enumerate(output.type.tensor_type.shape.dim[1:]):
            dim.ClearField("dim_value")
            dim.dim_param = f"{output.name}_{index}"
    del graph.graph.value_info[:]
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    return ort.InferenceSession(graph.SerializeToString(), options, providers=["CPUExecutionProvider"])


def evaluate_native(session, size: tuple[int, int], training: PinholeCamera, camera: PinholeCamera,
                    frames: list[tuple[np.ndarray, np.ndarray]], band: np.ndarray) -> dict[str, float]:
    """The network at input ``size`` (height, width), frames resized to it whole; metres rescaled
    by focal length at that size (the training camera's focal length is per pixel of its input)."""
    import cv2

    from depth_da_ros.pipeline import postprocess

    height, width = size
    factor = float(np.sqrt(camera.fx * width / camera.width * camera.fy * height / camera.height)
                   / np.sqrt(training.fx * training.fy))
    rows, times = [], []
    for rgb, gt in frames:
        started = time.perf_counter()
        net_input = cv2.resize(rgb, (width, height), interpolation=cv2.INTER_AREA)[None]
        depth = session.run(["depth"], {"image": np.ascontiguousarray(net_input)})[0][0, 0]
        depth = postprocess(depth, gt.shape) * np.float32(factor)
        times.append(time.perf_counter() - started)
        rows.append(frame_errors(gt, depth, band))
    result = {name: float(np.mean([r[name] for r in rows])) for name in rows[0]}
    result["abs_rel_se"] = float(np.std([r["abs_rel"] for r in rows], ddof=1) / np.sqrt(len(rows))) \
        if len(rows) > 1 else float("nan")
    result["factor"] = factor
    result["ms"] = 1e3 * float(np.median(times))
    return result


def table(rows: dict[str, dict[str, float]]) -> str:
    names = ["abs_rel", "abs_rel_se", *METRIC_NAMES[1:], "coverage", "band_abs_rel", "factor", "ms"]
    heads = {"abs_rel": "abs_rel ↓", "abs_rel_se": "± s.e.", "coverage": "coverage ↑",
             "band_abs_rel": "abs_rel on the centre band ↓", "factor": "focal factor", "ms": "predict p50 (ms)"}
    lines = ["| policy | " + " | ".join(heads.get(n, n) for n in names) + " |",
             "|---|" + "---:|" * len(names)]
    for label, row in rows.items():
        lines.append(f"| {label} | " + " | ".join(f"{row[n]:.1f}" if n == "ms" else f"{row[n]:.3f}" for n in names)
                     + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "depth.onnx")
    parser.add_argument("--frames", type=int, default=48)
    parser.add_argument("--threads", type=int, default=0, help="inference threads; 0: all cores")
    parser.add_argument("--no-record", action="store_true", help="print only; do not write results/aspect.md")
    parser.add_argument("--policies", nargs="*", default=list(ASPECT_POLICIES), choices=ASPECT_POLICIES)
    parser.add_argument("--native", default="", help="also run the network at this HxW input, e.g. 384x512")
    parser.add_argument("--name", default="aspect", help="results file name (results/NAME.md)")
    args = parser.parse_args(argv)

    pipeline = DepthPipeline(args.model, threads=args.threads or None)
    height, width = pipeline.input_size
    training = pipeline.training_camera
    sections = [f"Model `{args.model.relative_to(ROOT) if args.model.is_relative_to(ROOT) else args.model}` "
                f"({pipeline.description}), network input {width}x{height}; {args.frames} procedural evaluation "
                f"frames (real look, seed {EVAL_SEED}) per camera; depth rescaled by focal length through each "
                f"policy's window; metrics over ground truth in ({MIN_DEPTH}, {MAX_DEPTH}] m where the policy gave "
                "an estimate."]
    if args.policies:
        reference = render(PinholeCamera(width, height, training.fx, training.fy, training.cx, training.cy),
                           args.frames)
        ref = evaluate(pipeline, PinholeCamera(width, height, training.fx, training.fy, training.cx, training.cy),
                       reference, "stretch")
        sections.append(f"## Reference: the training camera at {width}x{height}\n\n"
                        + table({"(no aspect change)": ref}))
    native = tuple(int(v) for v in args.native.lower().split("x")) if args.native else None
    session = free_input_session(args.model, args.threads) if native else None
    best: dict[str, str] = {}
    for cam in cameras():
        frames = render(cam.camera, args.frames)
        rows = {policy: evaluate(pipeline, cam.camera, frames, policy) for policy in args.policies}
        if native:
            crop = network_window((cam.camera.height, cam.camera.width), pipeline.input_size, "crop")
            band = np.zeros((cam.camera.height, cam.camera.width), bool)
            band[max(crop.y, 0):crop.y + crop.height, max(crop.x, 0):crop.x + crop.width] = True
            rows[f"native {native[1]}x{native[0]} (no node policy)"] = evaluate_native(
                session, native, training, cam.camera, frames, band)
        best[cam.label] = min(rows, key=lambda p: rows[p]["abs_rel"])
        sections.append(f"## {cam.label}, 640x480\n\n" + table(rows))
        print(sections[-1], flush=True)
    sections.append("Lowest abs_rel per camera: " + "; ".join(f"{label}: **{p}**" for label, p in best.items()))
    sections.append(NOTE)
    body = "\n\n".join(sections)
    print(body)
    if not args.no_record:
        print(f"wrote {record(args.name, body)}")
    else:
        print(machine_summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
