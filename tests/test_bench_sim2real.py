"""The sim-to-real benchmark's quick mode: every stage of the real benchmark at tiny budgets."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import cv2
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import bench_sim2real  # noqa: E402


def test_gap_recovered_is_the_share_of_the_no_adaptation_gap():
    assert bench_sim2real.gap_recovered(0.1, 0.5, 0.3) == pytest.approx(0.5)
    assert bench_sim2real.gap_recovered(0.1, 0.5, 0.1) == pytest.approx(1.0)
    assert bench_sim2real.gap_recovered(0.1, 0.5, 0.6) == pytest.approx(-0.25)  # adaptation made it worse
    assert bench_sim2real.mean_spread([0.1, 0.2, 0.3]) == "0.200 ± 0.100"


def test_argument_errors_are_refused():
    with pytest.raises(SystemExit):
        bench_sim2real.parse_args(["--seeds", "0", "0"])
    with pytest.raises(SystemExit):
        bench_sim2real.parse_args(["--train-frames", "4", "--batch", "8"])
    args = bench_sim2real.parse_args([])
    assert args.seeds == [0, 1, 2] and args.encoding == "log"


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    """One quick benchmark run (4 tiny train.py runs): (work folder, cache folder, results path)."""
    root = tmp_path_factory.mktemp("sim2real")
    work, cache = root / "work", root / "cache"
    path = bench_sim2real.main(["--quick", "--work", str(work), "--cache", str(cache), "--strip-frames", "1"])
    return work, cache, path


def test_quick_mode_trains_evaluates_and_reports_every_row(quick_run):
    work, cache, path = quick_run
    assert path == work / "results" / "sim2real.md"  # the quick run never writes into the repository
    text = path.read_text()
    for row, name in bench_sim2real.ROWS.items():
        assert f"({row}) {name}" in text
    assert "Gap recovered" in text and "Targets:" in text and "Quick smoke run" in text
    for run in ("depth", "depth_aug", "style_cyclegan", "style_depth_aware", "distill"):
        assert (work / "seed0" / run / "checkpoints" / "best.pt").is_file()
    config = (work / "seed0" / "depth_aug" / "config.yaml").read_text()
    assert "photometric: true" in config and "preset: bench" in config
    results = json.loads((work / "results.json").read_text())
    assert set(results["per_seed"]["0"]) == set(bench_sim2real.ROWS)
    strip = cv2.imread(str(work / "results" / "sim2real" / "f.png"))
    assert strip is not None and strip.shape[1] > 4 * bench_sim2real.SIZE[1]
    # Resuming keeps the finished runs: nothing is trained again.
    mtime = (work / "seed0" / "depth" / "summary.json").stat().st_mtime
    bench_sim2real.main(["--quick", "--work", str(work), "--cache", str(cache), "--strip-frames", "1"])
    assert (work / "seed0" / "depth" / "summary.json").stat().st_mtime == mtime


def test_bundle_model_exports_the_validation_choice_with_its_card(quick_run, tmp_path):
    import bundle_model

    work, _, _ = quick_run
    models = tmp_path / "models"
    assert bundle_model.main([str(work), "--models", str(models), "--val-frames", "2", "--eval-frames", "2"]) == 0
    card = (models / "MODEL_CARD.md").read_text()
    assert "chosen among the rows b-g" in card and "`bench` preset at 96x320" in card
    from depth_da_ros.model_metadata import read_model_metadata

    assert read_model_metadata(models / "depth.onnx").input_size == bench_sim2real.SIZE
    # The depth network ships as a stage-1 checkpoint too, without optimiser or discriminator state.
    from depth_da_ros.checkpoint import load_checkpoint

    network = load_checkpoint(models / bundle_model.DEPTH_NETWORK)
    assert network["stage"] == "depth" and list(network["networks"]) == ["depth"] and "optimizers" not in network
    # A second candidate that is no better leaves the bundled model alone (exit 1), unless forced.
    before = (models / "depth.onnx").read_bytes()
    assert bundle_model.main([str(work), "--models", str(models), "--val-frames", "2", "--eval-frames", "2"]) == 1
    assert (models / "depth.onnx").read_bytes() == before
