"""Distillation (train.py distill): adapter + depth network -> one student network on camera frames."""
from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from depth_da_ros.checkpoint import file_sha256, load_checkpoint, load_network
from depth_da_ros.export import ExportError, export_onnx
from depth_da_ros.pipeline import DepthPipeline
from test_training import DEPTH_DATA, STYLE_DATA, TINY, args, losses
from training.train import main as train_main

DISTILL_DATA = ["data.real.length=4", "data.synthetic.length=4", "data.val.length=2", "run.batch_size=2"]


@pytest.fixture(scope="module")
def teacher(tmp_path_factory) -> dict[str, Path]:
    """A tiny stage-1 depth network and a stage-2 adapter trained against it (2 steps each)."""
    root = tmp_path_factory.mktemp("teacher")
    depth_dir, style_dir = root / "depth", root / "style"
    assert train_main(["depth", *args(*TINY, *DEPTH_DATA, "run.steps=2", "model.depth_encoding=log",
                                      f"run.run_dir={depth_dir}")]) == 0
    depth = depth_dir / "checkpoints" / "best.pt"
    assert train_main(["style", *args(*TINY, *STYLE_DATA, "run.steps=2", "loss.pool_size=1",
                                      "model.depth_encoding=log", f"depth_checkpoint={depth}",
                                      f"run.run_dir={style_dir}")]) == 0
    return {"depth": depth, "style": style_dir / "checkpoints" / "best.pt"}


def distill(teacher: dict[str, Path], run_dir: Path, *overrides: str) -> int:
    return train_main(["distill", *args(*TINY, *DISTILL_DATA, "model.depth_encoding=log",
                                        f"teacher_style={teacher['style']}", f"run.run_dir={run_dir}", *overrides)])


def test_student_run_is_a_deployable_depth_checkpoint(teacher, tmp_path):
    run_dir = tmp_path / "student"
    assert distill(teacher, run_dir, "run.steps=3") == 0
    ckpt = load_checkpoint(run_dir / "checkpoints" / "best.pt")
    teacher_depth = load_checkpoint(teacher["depth"])
    assert ckpt["stage"] == "distill" and ckpt["deploy"] == ["depth"] and list(ckpt["networks"]) == ["depth"]
    # The metric scale is the teacher's: its codec and training camera travel with the student.
    assert ckpt["depth_codec"] == teacher_depth["depth_codec"] and ckpt["depth_codec"]["encoding"] == "log"
    assert ckpt["training_camera"] == teacher_depth["training_camera"]
    assert ckpt["teacher"]["style"]["sha256"] == file_sha256(teacher["style"])
    assert ckpt["teacher"]["depth"]["sha256"] == file_sha256(teacher["depth"])  # found via the style checkpoint
    summary = json.loads((run_dir / "summary.json").read_text())
    assert {"abs_rel", "teacher_abs_rel"} <= set(summary["metrics"])
    assert set(losses(run_dir)[3]) >= {"teacher", "g"} and "synthetic" not in losses(run_dir)[3]
    # Exported, it is one network that reads camera frames: no adapter, no styled output.
    metadata = export_onnx(tmp_path / "student.onnx", run_dir / "checkpoints" / "best.pt")
    assert metadata.networks == ("depth",) and metadata.styled_output_name is None
    depth = DepthPipeline(tmp_path / "student.onnx", "onnxruntime").predict(
        np.random.default_rng(0).integers(0, 256, (100, 300, 3), dtype=np.uint8))
    assert depth.shape == (100, 300) and np.isfinite(depth).any()
    assert metadata.sources["depth"]["teacher"]["style"]["sha256"] == file_sha256(teacher["style"])
    # An adapter in front of a student that already reads camera frames would be a wrong pipeline.
    with pytest.raises(ExportError, match="distilled student"):
        export_onnx(tmp_path / "bad.onnx", run_dir / "checkpoints" / "best.pt", teacher["style"])


@pytest.mark.parametrize("init", [True, False])
def test_student_starts_from_the_teachers_depth_weights(teacher, tmp_path, init):
    run_dir = tmp_path / "student"
    # lr 0: the one step changes no weight (batch norm's running statistics still move), so the
    # checkpoint holds the initial weights.
    assert distill(teacher, run_dir, "run.steps=1", "optim_g.lr=0.0", f"init_from_teacher={str(init).lower()}") == 0
    student = load_network(load_checkpoint(run_dir / "checkpoints" / "last.pt"), "depth").named_parameters()
    depth = dict(load_network(load_checkpoint(teacher["depth"]), "depth").named_parameters())
    same = [torch.equal(value, depth[name]) for name, value in student]
    assert len(same) == len(depth) and all(same) == init and any(same) == init


def test_student_learns_the_teachers_depth(teacher, tmp_path):
    # One fixed batch (2 frames, no flips), a student from scratch: the L1 to the teacher must fall.
    run_dir = tmp_path / "student"
    assert distill(teacher, run_dir, "run.steps=30", "data.real.length=2", "data.flip=false", "optim_g.lr=2e-3",
                   "optim_g.decay_steps=0", "init_from_teacher=false", "run.val_every=1000") == 0
    entries = losses(run_dir)
    first, last = entries[1]["teacher"], np.mean([entries[s]["teacher"] for s in (28, 29, 30)])
    assert last < 0.5 * first, (first, last)


def test_synthetic_ground_truth_term(teacher, tmp_path):
    run_dir = tmp_path / "student"
    assert distill(teacher, run_dir, "run.steps=2", "loss.synthetic=0.5") == 0
    entry = losses(run_dir)[2]
    assert entry["g"] == pytest.approx(entry["teacher"] + 0.5 * entry["synthetic"], rel=1e-4)


def test_bad_teachers_are_refused_with_the_key(teacher, tmp_path, caplog):
    caplog.set_level(logging.ERROR)
    cases = [
        (["teacher_style=''"], "teacher_style is required"),
        ([f"teacher_style={teacher['depth']}"], "is a 'depth' checkpoint, not a style one"),
        ([f"teacher_depth={teacher['style']}"], "is a 'style' checkpoint, not a depth one"),
        ([f"teacher_depth={tmp_path / 'missing.pt'}"], "does not exist"),
        (["model.depth_encoding=linear"], "model.depth_encoding"),
        ([f"teacher_style={tmp_path / 'missing.pt'}"], "teacher_style: checkpoint"),
        (["model.height=128", "model.width=384"], "the student runs at 128x384, but the teacher's style network was "
                                                  "trained at 64x192"),
        (["model.preset=bench", "model.height=64", "model.width=192"], "preset 'lite'"),  # names the teacher's
    ]
    for i, (overrides, message) in enumerate(cases):
        caplog.clear()
        assert distill(teacher, tmp_path / f"run{i}", "run.steps=1", *overrides) == 2, message
        assert message in caplog.text, (message, caplog.text)
        assert not (tmp_path / f"run{i}").exists()  # refused before the run folder is made


def test_teacher_given_as_a_run_folder(teacher, tmp_path):
    assert distill(teacher, tmp_path / "student", "run.steps=1", f"teacher_style={teacher['style'].parents[1]}") == 0


def test_resume_refuses_another_teacher_file_or_data(teacher, tmp_path, caplog):
    import shutil

    style = tmp_path / "style.pt"
    shutil.copyfile(teacher["style"], style)
    run_dir = tmp_path / "student"
    assert distill(teacher, run_dir, "run.steps=2", f"teacher_style={style}") == 0
    caplog.set_level(logging.ERROR)
    # The same key, but loss.synthetic switched on: other training samples and order.
    assert train_main(["distill", "--resume", str(run_dir), *args("run.steps=3", "loss.synthetic=0.5")]) == 2
    assert "cannot switch loss.synthetic" in caplog.text
    # The same path with another file behind it: the student would have had two teachers.
    payload = torch.load(style, weights_only=True)
    payload["step"] = payload["step"] + 1
    torch.save(payload, style)
    assert train_main(["distill", "--resume", str(run_dir), *args("run.steps=3")]) == 2
    assert "is not the file this run started with" in caplog.text
    assert load_checkpoint(run_dir / "checkpoints" / "last.pt")["step"] == 2


def test_validation_frames_without_depth_train_unvalidated(teacher, tmp_path, caplog):
    # A robot's bag often has no depth camera: the student then trains without validation.
    import cv2

    images = tmp_path / "camera"
    images.mkdir()
    for i in range(2):
        cv2.imwrite(str(images / f"{i}.png"), np.random.default_rng(i).integers(0, 256, (64, 192, 3), np.uint8))
    caplog.set_level(logging.WARNING)
    run_dir = tmp_path / "student"
    assert distill(teacher, run_dir, "run.steps=2", "data.val.kind=image_folder", f"data.val.root={images}") == 0
    assert "has no depth: the student is not validated by depth metrics" in caplog.text
    best = load_checkpoint(run_dir / "checkpoints" / "best.pt")
    assert best["step"] == 2 and best["metrics"] == {}
