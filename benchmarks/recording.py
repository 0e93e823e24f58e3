"""Shared by the benchmark scripts: describe the machine and record results with their command."""
from __future__ import annotations

import datetime as _dt
import os
import platform
import shlex
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


SIMD_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "amx_tile")


def cpu_flags() -> str:
    """The SIMD flags that decide CPU inference and training speed (from /proc/cpuinfo), e.g. 'avx2 fma'."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                present = set(line.split(":", 1)[1].split())
                return " ".join(f for f in SIMD_FLAGS if f in present) or "none of " + "/".join(SIMD_FLAGS)
    except OSError:
        pass
    return "unknown"


def machine_summary() -> str:
    versions = [f"Python {platform.python_version()}"]
    for module in ("numpy", "cv2", "torch", "onnxruntime"):
        if module in sys.modules:
            versions.append(f"{module} {sys.modules[module].__version__}")
    return (f"{cpu_model()} (flags: {cpu_flags()}), {os.cpu_count()} logical cores, {platform.system()} "
            f"{platform.machine()}; " + ", ".join(versions))


def record(name: str, body: str) -> Path:
    """Write ``benchmarks/results/<name>.md``: the table plus the command, date and machine that produced it."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    command = "python " + " ".join(shlex.quote(a) for a in [os.path.relpath(sys.argv[0])] + sys.argv[1:])
    text = (f"# {name}\n\n"
            f"- command: `{command}`\n"
            f"- date: {_dt.datetime.now(_dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}\n"
            f"- machine: {machine_summary()}\n\n{body.rstrip()}\n")
    path = RESULTS / f"{name}.md"
    path.write_text(text)
    return path
