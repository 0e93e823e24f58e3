"""Files the tools write: re-rendering replaces an earlier render (no stale frames), checkpoints
and exports get normal permissions, export takes a run folder, a corrupt checkpoint reads as
one plain error."""
from __future__ import annotations

import json
import logging
import os
import stat
from pathlib import Path

import pytest
import torch

from depth_da_ros.atomic import atomic_write_bytes, current_umask
from depth_da_ros.checkpoint import CheckpointError, load_checkpoint, resolve_checkpoint, save_checkpoint
from depth_da_ros.procedural.dataset import ProceduralConfig
from depth_da_ros.procedural.writer import KITTI_DATE, drive_name, main as render_main, write_domain
from training import export as export_cli

SIZE = dict(height=64, width=192)


def _files(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


@pytest.mark.parametrize("domain", ["synthetic", "real"])
def test_rerender_replaces_the_earlier_render(tmp_path, domain):
    write_domain(tmp_path, ProceduralConfig(domain=domain, **SIZE), 5, progress=False)
    write_domain(tmp_path, ProceduralConfig(domain=domain, seed=1, **SIZE), 3, progress=False)
    expected = tmp_path / "expected"
    write_domain(expected, ProceduralConfig(domain=domain, seed=1, **SIZE), 3, progress=False)
    assert _files(tmp_path / domain) == _files(expected / domain)
    manifest = json.loads((tmp_path / domain / "dataset.json").read_text())
    assert manifest["frames"] == 3 and manifest["complete"] is True
    if domain == "real":
        drive = tmp_path / "real" / KITTI_DATE / drive_name(0)
        assert len(list((drive / "image_02" / "data").glob("*.png"))) == 3
        assert len((drive / "image_02" / "timestamps.txt").read_text().splitlines()) == 3
        gt = tmp_path / "real_depth_gt" / drive_name(0) / "proj_depth" / "groundtruth" / "image_02"
        assert len(list(gt.glob("*.png"))) == 3


def test_render_refuses_a_folder_that_is_not_a_render(tmp_path, capsys):
    (tmp_path / "synthetic").mkdir()
    keep = tmp_path / "synthetic" / "notes.txt"
    keep.write_text("mine")
    with pytest.raises(SystemExit) as exc:
        render_main(["--out", str(tmp_path), "--domains", "synthetic", "--frames", "2", "--workers", "1",
                     "--height", "64", "--width", "192"])
    assert exc.value.code == 2 and "is not a synthetic render of depth_da_render" in capsys.readouterr().err
    assert keep.read_text() == "mine" and _files(tmp_path) == ["synthetic/notes.txt"]


def test_an_interrupted_render_says_so_and_is_marked_incomplete(tmp_path, monkeypatch, caplog):
    """Ctrl-C (here: a KeyboardInterrupt while the third frame is written): exit code 130 and a
    warning instead of a traceback; the folder's dataset.json says the render is incomplete.
    (With a worker pool the workers ignore Ctrl-C and the parent stops them: checked by hand.)"""
    from depth_da_ros.procedural import writer
    from interrupts import interrupted_on_call

    with interrupted_on_call(monkeypatch, writer, "_write_frame"), \
            caplog.at_level(logging.WARNING, logger="depth_da_ros.procedural.writer"):
        assert render_main(["--out", str(tmp_path), "--domains", "real", "--frames", "5", "--workers", "1",
                            "--height", "64", "--width", "192"]) == 130
    assert "interrupted" in caplog.text and "incomplete" in caplog.text
    assert json.loads((tmp_path / "real" / "dataset.json").read_text())["complete"] is False


def test_atomic_writes_get_normal_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        assert current_umask() == 0o022
        path = tmp_path / "model.onnx"
        atomic_write_bytes(path, b"x")
        assert stat.S_IMODE(path.stat().st_mode) == 0o644
        save_checkpoint(tmp_path / "last.pt", {"step": 1})
        assert stat.S_IMODE((tmp_path / "last.pt").stat().st_mode) == 0o644
        os.chmod(path, 0o600)  # replacing a file keeps the mode its owner chose
        atomic_write_bytes(path, b"y")
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        os.umask(0o077)
        atomic_write_bytes(tmp_path / "private.bin", b"z")
        assert stat.S_IMODE((tmp_path / "private.bin").stat().st_mode) == 0o600
    finally:
        os.umask(old)


def test_run_folder_resolves_to_best_then_last(tmp_path):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    with pytest.raises(CheckpointError, match="without checkpoints/best.pt or checkpoints/last.pt"):
        resolve_checkpoint(run)
    save_checkpoint(run / "checkpoints" / "last.pt", {"step": 1})
    assert resolve_checkpoint(run) == run / "checkpoints" / "last.pt"
    save_checkpoint(run / "checkpoints" / "best.pt", {"step": 1})
    assert resolve_checkpoint(run) == run / "checkpoints" / "best.pt"
    assert resolve_checkpoint(run / "checkpoints") == run / "checkpoints" / "best.pt"
    assert resolve_checkpoint(run / "x.pt") == run / "x.pt"


def test_export_cli_takes_a_run_folder(tmp_path, caplog):
    from tests.test_export import write_checkpoints

    depth, _ = write_checkpoints(tmp_path, "lite")
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    depth.rename(run / "checkpoints" / "last.pt")
    out = tmp_path / "model.onnx"
    with caplog.at_level(logging.INFO, logger="training.export"):
        assert export_cli.main(["--depth", str(run), "--out", str(out), "--no-verify"]) == 0
    assert f"using {run / 'checkpoints' / 'last.pt'}" in caplog.text
    assert stat.S_IMODE(out.stat().st_mode) == 0o666 & ~current_umask()
    caplog.clear()
    empty = tmp_path / "empty"
    empty.mkdir()
    with caplog.at_level(logging.ERROR, logger="training.export"):
        assert export_cli.main(["--depth", str(empty), "--out", str(out)]) == 1
    assert "expected a checkpoint file (.pt) or a training run folder" in caplog.text


@pytest.mark.parametrize("content, reason", [
    (b"", "not a PyTorch checkpoint archive (0 bytes"),
    (b"garbage" * 50, "not a PyTorch checkpoint archive"),
    ("truncated", "not a PyTorch checkpoint archive"),
    ("object", "it holds more than tensors and plain values (Unsupported global"),
])
def test_corrupt_checkpoint_gives_one_plain_error(tmp_path, content, reason):
    import datetime

    path = tmp_path / "bad.pt"
    if content == "truncated":
        save_checkpoint(path, {"w": torch.zeros(1000)})
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif content == "object":
        torch.save({"when": datetime.date(2026, 1, 1)}, path)
    else:
        path.write_bytes(content)
    with pytest.raises(CheckpointError) as exc:
        load_checkpoint(path)
    message = str(exc.value)
    assert reason in message and str(path) in message
    assert "weights_only" not in message and "file an issue" not in message.lower() and "\n" not in message
