"""One orientation rule for images and depth (stored pixel order, EXIF orientation ignored),
checked when the dataset is built; a file that fails mid-run stops training with the steps so
far checkpointed."""
from __future__ import annotations

import logging

import numpy as np
import pytest
from PIL import Image

from depth_da_ros.depth_io import read_rgb
from training.datasets import DataSpec, DatasetError, FileSource, build_dataset
from training.train import main as train_main

ROTATE_90_CW = 6  # EXIF Orientation: a viewer rotates the stored pixels 90 degrees clockwise


def _jpeg_with_orientation(path, rgb: np.ndarray, orientation: int) -> None:
    image = Image.fromarray(rgb)
    exif = image.getexif()
    exif[0x0112] = orientation
    image.save(path, quality=95, exif=exif.tobytes())


def _png16(path, depth_codes: np.ndarray) -> None:
    Image.fromarray(depth_codes.astype(np.uint16)).save(path)


def _folder(tmp_path, depth_shape):
    images, depths = tmp_path / "images", tmp_path / "depth"
    images.mkdir()
    depths.mkdir()
    rgb = np.zeros((80, 256, 3), np.uint8)
    rgb[:, :32] = 255  # a bright band on the left of the stored pixels
    _jpeg_with_orientation(images / "a.jpg", rgb, ROTATE_90_CW)
    _png16(depths / "a.png", np.full(depth_shape, 2560))
    return DataSpec(kind="image_folder", root=str(images), depth_root=str(depths), depth_format="png16")


def test_exif_rotated_jpeg_loads_in_stored_order_like_its_depth(tmp_path, caplog):
    spec = _folder(tmp_path, (80, 256))
    with caplog.at_level(logging.WARNING):
        dataset = build_dataset(spec, 80, 256, augment=False, seed=0)
    assert "1 image(s) carry an EXIF orientation tag" in caplog.text
    sample = dataset[0]
    assert sample["image"].shape == (3, 80, 256) and sample["depth"].shape == (1, 80, 256)
    assert sample["image"][:, :, :32].mean() > 0.9 and sample["image"][:, :, 64:].mean() < -0.9  # not rotated
    assert read_rgb(tmp_path / "images" / "a.jpg").shape == (80, 256, 3)


def test_depth_that_only_matches_the_rotated_image_is_refused_at_build(tmp_path):
    spec = _folder(tmp_path, (256, 80))  # the size a viewer would show, not the stored one
    with pytest.raises(DatasetError, match=r"a\.jpg is 256x80 but its depth .*a\.png is 80x256"):
        build_dataset(spec, 80, 256, augment=False, seed=0)


def test_a_file_failing_mid_run_keeps_the_steps_so_far(tmp_path, monkeypatch, caplog):
    images, depths = tmp_path / "images", tmp_path / "depth"
    images.mkdir()
    depths.mkdir()
    rng = np.random.default_rng(0)
    for i in range(8):
        Image.fromarray(rng.integers(0, 255, (64, 192, 3), dtype=np.uint8)).save(images / f"{i}.png")
        np.save(depths / f"{i}.npy", np.full((64, 192), 5.0, np.float32))
    real_load, calls = FileSource.load, {"n": 0}

    def load(self, index):
        calls["n"] += 1
        if calls["n"] == 6:  # after the build-time peek at sample 0: the first sample of step 3 (batch 2)
            raise DatasetError(f"cannot read image {self.items[index][0]} (missing, truncated or not an image)")
        return real_load(self, index)

    monkeypatch.setattr(FileSource, "load", load)
    run_dir = tmp_path / "run"
    data = [f"data.train.root={images}", f"data.train.depth_root={depths}", "data.train.kind=image_folder",
            "data.train.depth_format=npy", "data.train.verify=false"]
    overrides = ["model.height=64", "model.width=192", "model.depth_kwargs={ngf: 8}",
                 "model.discriminator_kwargs={ndf: 8}", "run.num_workers=0", "run.batch_size=2", "run.steps=6",
                 "data.val.length=2", f"run.run_dir={run_dir}", *data]
    code = train_main(["depth", *[a for o in overrides for a in ("--set", o)]])
    assert code == 2
    assert "reading training batch 3 of epoch 0 failed: cannot read image" in caplog.text
    assert f"--resume {run_dir}" in caplog.text
    from depth_da_ros.checkpoint import load_checkpoint

    ckpt = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    assert ckpt["step"] == 2 and ckpt["epoch_step"] == 2
    monkeypatch.setattr(FileSource, "load", real_load)
    assert train_main(["depth", "--resume", str(run_dir)]) == 0
    assert load_checkpoint(run_dir / "checkpoints" / "last.pt")["step"] == 6
