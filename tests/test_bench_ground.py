"""benchmarks/bench_ground.py and bench_size.py end to end on tiny networks (plumbing, not quality)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from model_fixtures import write_depth_checkpoint

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import bench_real  # noqa: E402
import recording  # noqa: E402

pytestmark = pytest.mark.skipif(not bench_real.VALIDATION_DRIVE.is_dir(),
                                reason=f"{bench_real.VALIDATION_DRIVE} is absent (../shared/data beside the clone)")


@pytest.fixture()
def result_file(tmp_path: Path, monkeypatch) -> Path:
    """A bench_real result file of two row-(c) networks (seeds 0, 1), as bench_real writes it."""
    monkeypatch.setattr(recording, "RESULTS", tmp_path / "results")
    for seed in (0, 1):
        write_depth_checkpoint(tmp_path / f"seed{seed}" / "depth_aug" / "checkpoints" / "best.pt", seed=seed)
    metrics = [dict.fromkeys(bench_real.METRIC_NAMES, 0.5) | {"abs_rel": 0.4 + seed / 10} for seed in (0, 1)]
    path = tmp_path / "real-depth-c-v2.json"
    path.write_text(json.dumps({"validation": {"prior": metrics, "c": metrics}, "args": {
        "renderer": 2, "ground_prior": 0.0, "only_depth": True, "no_augmented": False, "no_plain": True,
        "size": [64, 192], "seeds": [0, 1]}}))
    return path


def test_bench_ground_chooses_a_tolerance_on_validation_and_reports_wrong_heights(result_file):
    import bench_ground

    text = bench_ground.main([str(result_file)]).read_text()
    assert "- command: `python" in text and "- machine:" in text
    assert "Chosen: **tolerance " in text and "(2 networks)" in text
    assert "Road ratios (`ground.road_ratio`" in text and "takes 0.70 .. 1.15 as plausible" in text
    if bench_real.HOLDOUT.is_dir():
        assert "| -50% | -30% | -20% | -10% | +10% | +20% | +30% | +50% |" in text
        assert "| every network | 2 |" in text and "| every network, no height check | 2 |" in text
        assert "| frames the check skips | | | " in text


@pytest.mark.slow
def test_bench_size_times_each_network_against_the_reference(result_file):
    import bench_size

    text = bench_size.main([str(result_file), "--rounds", "1", "--runs", "1"]).read_text()
    assert text.count("| 64x192 |") == 2 and "x reference" in text
    assert "Rule: the lowest validation abs_rel" in text and "seed 0" in text  # 0.4 < 0.5
