"""benchmarks/bench_peers.py: the peer networks are the published ones, and the benchmark runs."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import bench_peers  # noqa: E402
from peers import PEERS  # noqa: E402


@pytest.mark.parametrize("peer, size, gmacs, params_m", [
    # monodepth2 (Godard et al. 2019), ResNet-18 at 640x192: ~8 GMACs, 14.3 M parameters (3.2 M decoder);
    ("monodepth2_resnet18", (192, 640), 8.0, 14.3),
    # FastDepth (Wofk et al. 2019, Table I), MobileNet-NNConv5 at 224x224: 0.74 GMACs, 3.9 M parameters.
    ("fastdepth", (224, 224), 0.74, 3.9),
])
def test_peer_networks_have_their_published_cost(peer, size, gmacs, params_m):
    module, default_size = PEERS[peer]()
    assert default_size == size
    assert bench_peers.gflop(module, size) / 2 == pytest.approx(gmacs, rel=0.05)
    # The classification head of torchvision's ResNet-18 (fc, 0.5 M) is built but never run.
    params = sum(p.numel() for name, p in module.named_parameters() if not name.startswith("encoder.fc"))
    assert params / 1e6 == pytest.approx(params_m, rel=0.05)
    with torch.no_grad():
        assert module(torch.rand(1, 3, *size)).shape == (1, 1, *size)


def test_smoke_run_reports_ratios_and_accuracy(capsys):
    assert bench_peers.main(["--presets", "--rounds", "1", "--runs", "1", "--warmup", "1", "--eval-frames", "1",
                             "--no-record"]) == 0
    out = capsys.readouterr().out
    assert "| monodepth2_resnet18 192x640 | network only" in out and "| 1.00 |" in out
    assert "goal: bundled pipeline end to end / monodepth2_resnet18 192x640 network = " in out
    assert "| model | abs_rel | a1 |" in out and "ours: bundled" in out
