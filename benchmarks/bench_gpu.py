"""GPU verification and real-time figures: one run of a few minutes on a CUDA machine.

    python benchmarks/bench_gpu.py                # on the GPU: tests, pipeline, training -> results/gpu.md
    python benchmarks/bench_gpu.py --rehearse     # anywhere: the same code at tiny sizes, prints only

1. Tests: the CUDA tests of the suite (``pytest -m cuda``: torch CUDA fp32 vs ONNX Runtime on
   the CPU, fp16 and CUDA graphs within 1% of max depth of fp32, training steps on CUDA with and
   without bf16 autocast). Without CUDA they skip, and this part says so.
2. Pipeline: ``DepthPipeline`` (style adapter + depth network, torch backend) on a 1242x375
   frame for the ``lite`` (192x640) and ``paper`` (256x1024) presets: eager fp32, eager fp16
   and fp16 replayed as a CUDA graph. Pre-processing (resize to the network size), inference
   (upload, network, download) and post-processing (resize back), p50 / p90 ms each and end to
   end, frames/s (frames over summed end-to-end time) and peak GPU memory.
3. Training: steps/s of each stage (depth GAN, CycleGAN) at the ``paper`` preset and batch
   size of config/train_*_paper.yaml, fp32 and bf16 autocast (``run.amp``), on one fixed batch of
   procedural data (the step itself: data loading is the loader's business and scales with
   ``run.num_workers``).

Targets (issue #8): ``paper`` end to end >= 200 frames/s on an H100-class GPU; fp16 >= 2x
the fp32 speed. A GPU session is short: a part that fails is listed under "Failures" (exit
status 1) and the others still run, and each figure is logged as soon as it is measured. Weights are fresh: speed does not depend on them. Records
benchmarks/results/gpu.md (GPU, driver, versions, date) unless --no-record or --rehearse.
"""
from __future__ import annotations

import argparse
import logging
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import onnxruntime
import torch
from torch.utils.data import DataLoader

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # runs from a plain checkout

from depth_da_ros.backends import BACKENDS, BackendOptions  # noqa: E402
from depth_da_ros.camera import KITTI_HEIGHT, KITTI_WIDTH  # noqa: E402
from depth_da_ros.config import load_config  # noqa: E402
from depth_da_ros.models import get_preset  # noqa: E402
from depth_da_ros.node_diagnostics import percentile  # noqa: E402
from depth_da_ros.pipeline import DepthPipeline, StageTiming  # noqa: E402
from training.config import STAGE_CONFIGS  # noqa: E402
from training.engine import setup_distributed  # noqa: E402
from training.train import build_stage  # noqa: E402

from bench_pipeline import STAGES, write_models  # noqa: E402
from recording import record  # noqa: E402

LOG = logging.getLogger("bench_gpu")
# --rehearse trains narrow networks at 64x192: the code path, not the figures.
REHEARSAL_TRAINING = ["model.height=64", "model.width=192", "model.depth_kwargs={ngf: 8}",
                      "model.discriminator_kwargs={ndf: 8}", "model.style_kwargs={ngf: 8, n_blocks: 2}"]
PAPER_FPS_TARGET = 200.0
TESTS_TIMEOUT_S = 300  # a hanging test must not eat the whole GPU session
FP16_SPEEDUP_TARGET = 2.0


@dataclass(frozen=True)
class Variant:
    name: str
    precision: str
    cuda_graphs: bool


VARIANTS = (Variant("eager fp32", "fp32", False), Variant("eager fp16", "fp16", False),
            Variant("fp16 + CUDA graph", "fp16", True))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", nargs="+", default=["lite", "paper"])
    parser.add_argument("--runs", type=int, default=200, help="timed frames per preset and variant")
    parser.add_argument("--warmup", type=int, default=20, help="untimed frames first (cuDNN autotuning, capture)")
    parser.add_argument("--train-steps", type=int, default=30, help="timed training steps per stage and precision")
    parser.add_argument("--train-warmup", type=int, default=5)
    parser.add_argument("--device", default="cuda", help="cuda[:N]; cpu only with --rehearse")
    parser.add_argument("--skip-tests", action="store_true")
    parser.add_argument("--rehearse", action="store_true",
                        help="check the script without a GPU: lite only, a few frames and steps, CPU if no CUDA; "
                             "prints, records nothing")
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args(argv)
    if args.rehearse:
        args.presets, args.runs, args.warmup, args.train_steps, args.train_warmup = ["lite"], 3, 1, 2, 1
        args.no_record = True
        if not torch.cuda.is_available():
            args.device = "cpu"
    elif not torch.cuda.is_available():
        parser.error(f"torch {torch.__version__} sees no CUDA device; use --rehearse to check the script on a CPU")
    return args


def environment(device: torch.device) -> list[str]:
    lines = [f"python {platform.python_version()}, torch {torch.__version__} (CUDA {torch.version.cuda}, "
             f"cuDNN {torch.backends.cudnn.version()}), onnxruntime {onnxruntime.__version__}, "
             f"OpenCV {cv2.__version__}, numpy {np.__version__}",
             f"CPU: {platform.processor() or platform.machine()}, {os.cpu_count()} logical cores"]
    if device.type == "cuda":
        try:
            smi = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
                                 capture_output=True, text=True, timeout=30).stdout.strip()
        except (OSError, subprocess.TimeoutExpired) as exc:
            smi = f"nvidia-smi unavailable ({exc})"
        lines.insert(0, f"GPU: {torch.cuda.get_device_name(device)}; nvidia-smi: {smi}")
    return lines


def run_tests() -> tuple[bool, str]:
    """The suite's CUDA tests in a child process; (passed, pytest's summary line)."""
    command = [sys.executable, "-m", "pytest", "-q", "-m", "cuda", "-p", "no:cacheprovider",
               "tests/test_pipeline.py", "tests/test_training.py"]
    LOG.info("$ %s", " ".join(command[1:]))
    try:
        result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=TESTS_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return False, f"pytest did not finish within {TESTS_TIMEOUT_S} s"
    print(result.stdout[-4000:], result.stderr[-2000:], sep="\n", flush=True)
    lines = [line for line in result.stdout.strip().splitlines() if line.strip()]
    return result.returncode == 0, (lines[-1].strip("= ") if lines else f"pytest exited with {result.returncode}")


def peak_gpu_mib(cuda: bool) -> str:
    return f"{torch.cuda.max_memory_allocated() / 2**20:.0f}" if cuda else "n/a"


def bench_pipeline(paths: dict[str, Path], variant: Variant, device: str, frame: np.ndarray, runs: int,
                   warmup: int) -> tuple[list[StageTiming], str, str] | str:
    """(timings, peak GPU MiB, backend description), or why the variant cannot run here."""
    options = BackendOptions(device=device, precision=variant.precision, cuda_graphs=variant.cuda_graphs)
    reason = BACKENDS.get("torch").unavailable_reason(paths["depth"], options)
    if reason:
        return reason
    cuda = device.startswith("cuda")
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    pipeline = DepthPipeline(paths["depth"], "torch", device=device, precision=variant.precision,
                             cuda_graphs=variant.cuda_graphs, style_checkpoint=paths["style"])
    for _ in range(warmup):
        pipeline.predict(frame)
    timings = []
    for _ in range(runs):
        pipeline.predict(frame)  # returns host arrays: every frame is synchronised
        timings.append(pipeline.last_timing)
    peak = peak_gpu_mib(cuda)
    description = pipeline.description
    del pipeline
    return timings, peak, description


def bench_training(stage_name: str, preset: str, amp: bool, device: str, steps: int, warmup: int,
                   overrides: list[str]) -> tuple[float, int, str]:
    """(median step seconds, batch size, peak GPU MiB) of ``stage_name`` on one fixed batch."""
    paper_yaml = ROOT / "config" / f"train_{stage_name}_paper.yaml"
    batch_size = load_config(STAGE_CONFIGS[stage_name], paper_yaml).run.batch_size
    # The defaults train on procedural data (no dataset on a GPU check machine); the networks,
    # losses and optimisers are the preset's, as in the paper config.
    cfg = load_config(STAGE_CONFIGS[stage_name], None, [
        f"model.preset={preset}", f"run.batch_size={batch_size}", f"run.amp={str(amp).lower()}",
        f"run.device={device}", f"run.steps={warmup + steps}", *overrides])
    ctx = setup_distributed(cfg.run.device)
    stage = build_stage(stage_name, cfg, ctx)
    batch = next(iter(DataLoader(stage.train_dataset(), batch_size=batch_size)))
    batch = {k: v.to(ctx.device) if torch.is_tensor(v) else v for k, v in batch.items()}
    cuda = ctx.device.type == "cuda"
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    seconds = []
    for step in range(1, warmup + steps + 1):
        start = time.perf_counter()
        stage.train_step(batch, step)  # its NaN guard reads every loss: each step is synchronised
        if cuda:
            torch.cuda.synchronize()
        if step > warmup:
            seconds.append(time.perf_counter() - start)
    peak = peak_gpu_mib(cuda)
    del stage
    return float(np.median(seconds)), batch_size, peak


def pipeline_section(args: argparse.Namespace, root: Path, failures: list[str]) -> tuple[list[str], list[str]]:
    frame = np.random.default_rng(0).integers(0, 256, (KITTI_HEIGHT, KITTI_WIDTH, 3), dtype=np.uint8)
    rows, notes = [], []
    fps: dict[tuple[str, str], float] = {}
    infer_p50: dict[tuple[str, str], float] = {}
    for preset_name in args.presets:
        preset = get_preset(preset_name)
        torch.manual_seed(0)
        paths = write_models(preset, root, onnx=False)
        for variant in VARIANTS:
            LOG.info("pipeline %s, %s", preset_name, variant.name)
            try:
                result = bench_pipeline(paths, variant, args.device, frame, args.runs, args.warmup)
            except Exception as exc:  # noqa: BLE001  one failing variant must not cost the others' figures
                LOG.exception("pipeline %s %s failed", preset_name, variant.name)
                failures.append(f"pipeline {preset_name} {variant.name}: {type(exc).__name__}: {exc}")
                continue
            if isinstance(result, str):
                notes.append(f"{preset_name} {variant.name}: not run ({result})")
                continue
            timings, peak, description = result
            cells = []
            for stage in STAGES:
                values = [getattr(t, stage) for t in timings]
                cells.append(f"{percentile(values, 50):.2f} / {percentile(values, 90):.2f}")
            key = (preset_name, variant.name)
            fps[key] = len(timings) / (sum(t.total_ms for t in timings) / 1e3)
            infer_p50[key] = percentile([t.infer_ms for t in timings], 50)
            rows.append(f"| {preset_name} {preset.input_height}x{preset.input_width} | {variant.name} | "
                        + " | ".join(cells) + f" | {fps[key]:.1f} | {peak} |")
            LOG.info("%s", rows[-1])  # in the log as soon as measured, should the run be cut off
            notes.append(f"{preset_name} {variant.name}: {description}")
    for preset_name in args.presets:
        fp32, fp16 = (preset_name, "eager fp32"), (preset_name, "eager fp16")
        if fp32 in fps and fp16 in fps:
            notes.append(f"{preset_name}: eager fp16 / fp32 speed-up {infer_p50[fp32] / infer_p50[fp16]:.2f}x in "
                         f"inference, {fps[fp16] / fps[fp32]:.2f}x end to end (target >= {FP16_SPEEDUP_TARGET:g}x)")
    paper = [value for (name, _), value in fps.items() if name == "paper"]
    if paper:
        best = max(paper)
        notes.append(f"paper, fastest variant: {best:.1f} frames/s end to end "
                     f"({'meets' if best >= PAPER_FPS_TARGET else 'MISSES'} >= {PAPER_FPS_TARGET:g})")
    table = ["| preset | variant | pre-process | inference | post-process | end to end | frames/s | peak GPU MiB |",
             "|---|---|---|---|---|---|---|---|", *rows]
    return table, notes


def training_section(args: argparse.Namespace, failures: list[str]) -> list[str]:
    preset = "lite" if args.rehearse else "paper"
    rows = ["| stage | preset | batch | precision | step ms (median) | steps/s | peak GPU MiB |",
            "|---|---|---|---|---|---|---|"]
    for stage_name in ("depth", "style"):
        for amp in (False, True):
            if amp and not args.device.startswith("cuda"):
                continue  # run.amp is CUDA-only (the stage says so and trains fp32)
            precision = "bf16 autocast" if amp else "fp32"
            LOG.info("training %s, %s", stage_name, precision)
            try:
                seconds, batch, peak = bench_training(stage_name, preset, amp, args.device, args.train_steps,
                                                      args.train_warmup, REHEARSAL_TRAINING if args.rehearse else [])
            except Exception as exc:  # noqa: BLE001  as in the pipeline section
                LOG.exception("training %s %s failed", stage_name, precision)
                failures.append(f"training {stage_name} {precision}: {type(exc).__name__}: {exc}")
                continue
            rows.append(f"| {stage_name} | {preset} | {batch} | {precision} | {seconds * 1e3:.1f} | "
                        f"{1 / seconds:.2f} | {peak} |")
            LOG.info("%s", rows[-1])
    return rows


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    started = time.monotonic()
    sections = ["## Machine", "", *(f"- {line}" for line in environment(torch.device(args.device))), ""]
    failures: list[str] = []
    if not args.skip_tests:
        passed, summary = run_tests()
        if not passed:
            failures.append(f"CUDA tests: {summary}")
        sections += ["## CUDA tests", "", f"`python -m pytest -m cuda tests/test_pipeline.py tests/test_training.py`: "
                     f"{summary}", ""]
    with tempfile.TemporaryDirectory(prefix="bench_gpu_") as tmp:
        table, notes = pipeline_section(args, Path(tmp), failures)
    sections += ["## Pipeline", "",
                 f"Frame {KITTI_WIDTH}x{KITTI_HEIGHT} uint8 RGB -> depth at the same size; style adapter + depth "
                 f"network, torch backend on {args.device}, batch 1; {args.warmup} warm-up + {args.runs} timed "
                 "frames per row. Cells: p50 / p90 ms. Inference includes the upload of the uint8 frame and the "
                 "download of the depth.", "", *table, "", *(f"- {note}" for note in notes), ""]
    sections += ["## Training", "", f"{args.train_warmup} warm-up + {args.train_steps} timed steps on one fixed "
                 "batch of procedural data; a step is every update of the stage (generator(s) and "
                 "discriminator(s)).", "", *training_section(args, failures), ""]
    if failures:
        sections += ["## Failures", "", *(f"- {failure}" for failure in failures), ""]
    sections.append(f"Wall time of this run: {(time.monotonic() - started) / 60:.1f} min.")
    body = "\n".join(sections)
    print(body)
    if not args.no_record:
        LOG.info("recorded %s", record("gpu", body))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
