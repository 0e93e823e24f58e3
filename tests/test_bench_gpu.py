"""benchmarks/bench_gpu.py is run on a GPU machine that a session gets for minutes at most: its
rehearsal (the same code at tiny sizes, CUDA if present, else the CPU) must work everywhere."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_benchmark_rehearsal_runs_every_part():
    result = subprocess.run([sys.executable, "benchmarks/bench_gpu.py", "--rehearse"], cwd=ROOT, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    for heading in ("## Machine", "## CUDA tests", "## Pipeline", "## Training"):
        assert heading in out
    assert "| lite 192x640 | eager fp32 |" in out  # a timed pipeline row
    assert "| depth | lite | 1 | fp32 |" in out and "| style | lite | 1 | fp32 |" in out
    assert "skipped" in out or "passed" in out  # pytest's summary of the CUDA tests
