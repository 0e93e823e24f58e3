"""Parameter counts and torch CPU forward latency of the preset networks.

    python benchmarks/bench_networks.py --threads 2 --runs 10

For each preset: parameters of the four networks, and the median forward latency (eval
mode, no_grad, batch 1, at the preset size) of the style adapter, the depth network and
the two chained, after warm-up runs, in interleaved rounds. Prints a markdown table with
the date, CPU model, torch version and the command line, ready to paste into the presets
docstring.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import torch
from torch import Tensor, nn

# Runs from a plain checkout too, without installing the package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from depth_da_ros.models import PRESETS, ModelPreset, count_parameters, get_preset  # noqa: E402
from recording import record  # noqa: E402


def median_ms(
    fns: dict[str, Callable[[Tensor], Tensor]], x: Tensor, runs: int, warmup: int
) -> dict[str, float]:
    """Median wall time of each callable, measured in interleaved rounds.

    All callables are warmed up before any is timed, and the rounds interleave them: a
    network timed alone in a fresh process measured ~50% slower than the same network
    inside the style -> depth chain: glibc malloc returns its large freed buffers to the
    OS, so each run page-faults them back in, until other work has raised malloc's
    thresholds (setting MALLOC_MMAP_THRESHOLD_ and MALLOC_TRIM_THRESHOLD_ high removes
    the gap).
    """
    times: dict[str, list[float]] = {name: [] for name in fns}
    with torch.no_grad():
        for _ in range(warmup):
            for fn in fns.values():
                fn(x)
        for _ in range(runs):
            for name, fn in fns.items():
                start = time.perf_counter()
                fn(x)
                times[name].append((time.perf_counter() - start) * 1e3)
    return {name: statistics.median(t) for name, t in times.items()}


def bench_preset(preset: ModelPreset, runs: int, warmup: int) -> list[str]:
    nets: dict[str, nn.Module] = {
        "style": preset.style.build().eval(),
        "depth": preset.depth.build().eval(),
        "depth_discriminator": preset.depth_discriminator.build(),
        "style_discriminator": preset.style_discriminator.build(),
    }
    x = torch.rand(1, 3, preset.input_height, preset.input_width) * 2 - 1
    ms = median_ms(
        {
            "style": nets["style"],
            "depth": nets["depth"],
            "chain": lambda t: nets["depth"](nets["style"](t)),
        },
        x,
        runs,
        warmup,
    )
    params = " / ".join(f"{count_parameters(nets[k]):,}" for k in nets)
    size = f"{preset.input_height}x{preset.input_width}"
    return [preset.name, size, params, *(f"{ms[k]:.1f}" for k in ("style", "depth", "chain"))]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    parser.add_argument("--runs", type=int, default=10, help="timed runs per measurement")
    parser.add_argument("--warmup", type=int, default=3, help="untimed runs first")
    parser.add_argument(
        "--presets", nargs="+", default=PRESETS.names(), choices=PRESETS.names(),
        help="presets to measure (default: all)",
    )
    parser.add_argument("--no-record", action="store_true", help="print only")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    rows = [bench_preset(get_preset(name), args.runs, args.warmup) for name in args.presets]
    header = [
        "preset", "size (HxW)", "params style / depth / depth D / style D",
        "style ms", "depth ms", "style+depth ms",
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    lines += ["", f"torch {torch.__version__}, {args.threads} threads; median of {args.runs} interleaved rounds "
              f"after {args.warmup} warm-up rounds, eval, no_grad, batch 1."]
    body = "\n".join(lines)
    print(body)
    if not args.no_record:
        print(f"recorded in {record('networks', body)}")


if __name__ == "__main__":
    main()
