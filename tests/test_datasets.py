"""Training datasets: every kind loads what was written, augmentation is joint and seeded, broken data fails fast."""
from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from depth_da_ros.config import ConfigError, config_from_dict
from depth_da_ros.depth_io import write_kitti_depth, write_synthia_depth
from depth_da_ros.normalization import image_to_network
from depth_da_ros.procedural.dataset import ProceduralConfig, ProceduralDataset
from depth_da_ros.procedural.writer import KITTI_DATE, drive_name, write_domain
from training.datasets import DataSpec, DatasetError, build_dataset, read_kitti_split, sample_seed

H, W, FRAMES = 64, 192, 4
SHARED_KITTI = Path(__file__).resolve().parents[2] / "shared" / "data" / "kitti_raw_sample"


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> Path:
    """Both procedural domains written to disk by the renderer (SYNTHIA and KITTI layouts)."""
    root = tmp_path_factory.mktemp("procedural")
    for domain in ("synthetic", "real"):
        write_domain(root, ProceduralConfig(domain=domain, height=H, width=W), FRAMES, workers=1, progress=False)
    return root


def reference(domain: str) -> ProceduralDataset:
    return ProceduralDataset(ProceduralConfig(domain=domain, height=H, width=W), FRAMES)


def expected_image(rgb: np.ndarray) -> torch.Tensor:
    return image_to_network(torch.from_numpy(rgb).permute(2, 0, 1).float())


def write_rgb(path: Path, rgb: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return path


def write_npy(path: Path, depth: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, depth.astype(np.float32))
    return path


def check_sample(sample: dict, height: int, width: int, with_depth: bool) -> None:
    assert set(sample) == ({"image", "depth", "index"} if with_depth else {"image", "index"})
    image = sample["image"]
    assert image.dtype == torch.float32 and image.shape == (3, height, width)
    assert image.min() >= -1.0 and image.max() <= 1.0
    if with_depth:
        assert sample["depth"].dtype == torch.float32 and sample["depth"].shape == (1, height, width)


# -- each kind reads back what was rendered ---------------------------------------------------------


@pytest.mark.parametrize("domain", ["synthetic", "real"])
def test_procedural_kind_is_the_renderer_at_the_output_size(domain):
    dataset = build_dataset(DataSpec(kind="procedural", domain=domain, length=3, seed=0), H, W, False, 0)
    assert len(dataset) == 3 and dataset.has_depth
    for i in range(3):
        sample, frame = dataset[i], reference(domain)[i]
        check_sample(sample, H, W, with_depth=True)
        assert sample["index"] == i
        torch.testing.assert_close(sample["image"], expected_image(frame.rgb), rtol=0, atol=0)
        np.testing.assert_array_equal(sample["depth"][0].numpy(), frame.depth)  # exact, sky = inf
    assert len(build_dataset(DataSpec(kind="procedural", length=100, limit=5), H, W, False, 0)) == 5


def test_synthia_loader_reads_rendered_depth_in_metres(rendered):
    dataset = build_dataset(DataSpec(kind="synthia", root=str(rendered / "synthetic")), H, W, False, 0)
    assert len(dataset) == FRAMES and dataset.has_depth
    for i in range(FRAMES):
        sample, frame = dataset[i], reference("synthetic")[i]
        check_sample(sample, H, W, with_depth=True)
        torch.testing.assert_close(sample["image"], expected_image(frame.rgb), rtol=0, atol=0)  # PNG is lossless
        depth = sample["depth"][0].numpy()
        np.testing.assert_array_equal(np.isinf(depth), np.isinf(frame.depth))  # sky code 65535 -> inf
        finite = np.isfinite(frame.depth)
        np.testing.assert_allclose(depth[finite], frame.depth[finite], atol=0.005 + 1e-5)  # centimetre codes


@pytest.mark.parametrize("level", ["root", "date", "drive"])
def test_kitti_raw_accepts_a_root_a_date_folder_or_a_drive_folder(rendered, level):
    root = {"root": rendered / "real", "date": rendered / "real" / KITTI_DATE,
            "drive": rendered / "real" / KITTI_DATE / drive_name(0)}[level]
    dataset = build_dataset(DataSpec(kind="kitti_raw", root=str(root)), H, W, False, 0)
    assert len(dataset) == FRAMES and not dataset.has_depth
    for i in range(FRAMES):
        sample = dataset[i]
        check_sample(sample, H, W, with_depth=False)
        torch.testing.assert_close(sample["image"], expected_image(reference("real")[i].rgb), rtol=0, atol=0)


def test_image_folder_with_kitti_depth_reads_the_benchmark_ground_truth(rendered):
    images = rendered / "real" / KITTI_DATE / drive_name(0) / "image_02" / "data"
    depth = rendered / "real_depth_gt" / drive_name(0) / "proj_depth" / "groundtruth" / "image_02"
    spec = DataSpec(kind="image_folder", root=str(images), depth_root=str(depth), depth_format="kitti")
    dataset = build_dataset(spec, H, W, False, 0)
    assert len(dataset) == FRAMES
    for i in range(FRAMES):
        truth = reference("real")[i].depth
        depth = dataset[i]["depth"][0].numpy()
        codes = np.round(np.nan_to_num(truth, posinf=0.0) * 256)
        valid = (codes > 0) & (codes <= 65535)  # sky and beyond 256 m are "no measurement" on disk
        np.testing.assert_array_equal(np.isnan(depth), ~valid)
        np.testing.assert_allclose(depth[valid], truth[valid], atol=1 / 512 + 1e-4)


def test_image_folder_png16_npy_and_image_only(tmp_path):
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (10, 12, 3), dtype=np.uint8)
    metres = rng.uniform(0.5, 60.0, (10, 12)).astype(np.float32)
    metres[0, :3] = 0.0  # code 0 = no measurement
    write_rgb(tmp_path / "rgb" / "seq" / "a.jpg", rgb)  # pairing ignores the suffix, keeps the relative path
    codes = np.round(metres * 1000).astype(np.uint16)
    (tmp_path / "png16" / "seq").mkdir(parents=True)
    assert cv2.imwrite(str(tmp_path / "png16" / "seq" / "a.png"), codes)
    spec = DataSpec(kind="image_folder", root=str(tmp_path / "rgb"), depth_root=str(tmp_path / "png16"),
                    depth_format="png16", depth_scale=1000.0)
    depth = build_dataset(spec, 10, 12, False, 0)[0]["depth"][0].numpy()
    assert np.isnan(depth[0, :3]).all()
    np.testing.assert_allclose(depth[1:], metres[1:], atol=0.0005 + 1e-5)

    metres[0, :3] = [np.inf, np.nan, 3.0]
    write_npy(tmp_path / "npy" / "seq" / "a.npy", metres)
    spec = DataSpec(kind="image_folder", root=str(tmp_path / "rgb"), depth_root=str(tmp_path / "npy"),
                    depth_format="npy")
    np.testing.assert_array_equal(build_dataset(spec, 10, 12, False, 0)[0]["depth"][0].numpy(), metres)

    sample = build_dataset(DataSpec(kind="image_folder", root=str(tmp_path / "rgb")), 6, 8, False, 0)[0]
    check_sample(sample, 6, 8, with_depth=False)


@pytest.mark.skipif(not SHARED_KITTI.is_dir(), reason=f"real KITTI sample not found at {SHARED_KITTI}")
def test_kitti_raw_reads_the_real_sample():
    dataset = build_dataset(DataSpec(kind="kitti_raw", root=str(SHARED_KITTI)), 96, 320, True, 0)
    assert len(dataset) == 2
    check_sample(dataset[1], 96, 320, with_depth=False)


# -- resize and augmentation ------------------------------------------------------------------------


@pytest.mark.parametrize("size", [(16, 24), (80, 100)])
def test_nearest_depth_resize_keeps_only_input_values(tmp_path, size):
    rng = np.random.default_rng(1)
    values = np.array([1.5, 7.25, 30.0, np.inf, np.nan], np.float32)
    blocks = rng.integers(0, len(values), (37 // 3 + 1, 53 // 3 + 1))
    depth = values[np.kron(blocks, np.ones((3, 3), int))[:37, :53]]
    write_rgb(tmp_path / "rgb" / "x.png", rng.integers(0, 256, (37, 53, 3), dtype=np.uint8))
    write_npy(tmp_path / "depth" / "x.npy", depth)
    spec = DataSpec(kind="image_folder", root=str(tmp_path / "rgb"), depth_root=str(tmp_path / "depth"),
                    depth_format="npy")
    sample = build_dataset(spec, *size, False, 0)[0]
    check_sample(sample, *size, with_depth=True)
    out = sample["depth"].numpy()
    assert np.isin(out[~np.isnan(out)], values).all()  # no blend of two depths across an edge
    assert np.isnan(out).any() and np.isinf(out).any()


def test_depth_resize_samples_pixel_centres(tmp_path):
    # Plain NEAREST would take columns 0 and 4 (shifted half a source pixel left); centres are 1.5 and 5.5.
    write_rgb(tmp_path / "rgb" / "x.png", np.zeros((1, 8, 3), np.uint8))
    write_npy(tmp_path / "depth" / "x.npy", np.arange(8, dtype=np.float32)[None])
    spec = DataSpec(kind="image_folder", root=str(tmp_path / "rgb"), depth_root=str(tmp_path / "depth"),
                    depth_format="npy")
    assert build_dataset(spec, 1, 2, False, 0)[0]["depth"].flatten().tolist() == [2.0, 6.0]


@pytest.fixture
def halves(tmp_path) -> DataSpec:
    """16 copies of an image whose left half is black and near (2 m), right half white and far (50 m)."""
    rgb = np.zeros((8, 16, 3), np.uint8)
    rgb[:, 8:] = 255
    depth = np.full((8, 16), 2.0, np.float32)
    depth[:, 8:] = 50.0
    for i in range(16):
        write_rgb(tmp_path / "rgb" / f"{i:02d}.png", rgb)
        write_npy(tmp_path / "depth" / f"{i:02d}.npy", depth)
    return DataSpec(kind="image_folder", root=str(tmp_path / "rgb"), depth_root=str(tmp_path / "depth"),
                    depth_format="npy")


def flipped(sample: dict) -> bool:
    """Whether a ``halves`` sample was flipped; checks that image and depth moved together."""
    image, depth = sample["image"], sample["depth"]
    is_flipped = bool(image[0, 0, 0] > 0)
    near, far = (slice(8, 16), slice(0, 8)) if is_flipped else (slice(0, 8), slice(8, 16))
    assert (image[:, :, near] == -1).all() and (image[:, :, far] == 1).all()
    assert (depth[:, :, near] == 2).all() and (depth[:, :, far] == 50).all()
    return is_flipped


def flips(dataset, epoch: int, order=range(16)) -> dict[int, bool]:
    dataset.set_epoch(epoch)
    return {i: flipped(dataset[i]) for i in order}


def test_flip_moves_image_and_depth_together_and_is_seeded_per_epoch_and_index(halves):
    dataset = build_dataset(halves, 8, 16, True, seed=3)
    rng_state = torch.get_rng_state()
    epoch0 = flips(dataset, 0)
    assert 0 < sum(epoch0.values()) < 16  # about half flipped; each flip checked joint by flipped()
    assert torch.equal(torch.get_rng_state(), rng_state)  # the caller's RNG is untouched
    assert flips(dataset, 1) != epoch0  # a new epoch draws anew
    assert flips(dataset, 0, order=reversed(range(16))) == epoch0  # order of loading does not matter
    assert flips(build_dataset(halves, 8, 16, True, seed=3), 0) == epoch0  # a fresh dataset, e.g. after resuming
    assert flips(build_dataset(halves, 8, 16, True, seed=4), 0) != epoch0
    assert not any(flips(build_dataset(halves, 8, 16, False, seed=3), 0).values())
    assert sample_seed(3, 0, 5) == sample_seed(3, 0, 5) != sample_seed(3, 1, 5)


def test_set_epoch_reaches_persistent_dataloader_workers(halves):
    dataset = build_dataset(halves, 8, 16, True, seed=3)
    expected = {epoch: flips(build_dataset(halves, 8, 16, True, seed=3), epoch) for epoch in (0, 1)}
    loader = DataLoader(dataset, batch_size=4, num_workers=2, persistent_workers=True)
    for epoch in (0, 1):
        dataset.set_epoch(epoch)
        got = {}
        for batch in loader:
            for j, index in enumerate(batch["index"].tolist()):
                got[index] = flipped({"image": batch["image"][j], "depth": batch["depth"][j]})
        assert got == expected[epoch]


def test_default_collate_batches_samples(rendered):
    loader = DataLoader(build_dataset(DataSpec(kind="synthia", root=str(rendered / "synthetic")), 32, 96, True, 0),
                        batch_size=2, num_workers=0)
    batch = next(iter(loader))
    assert batch["image"].shape == (2, 3, 32, 96) and batch["depth"].shape == (2, 1, 32, 96)
    assert batch["index"].tolist() == [0, 1]
    batch = next(iter(DataLoader(build_dataset(DataSpec(kind="kitti_raw", root=str(rendered / "real")), 32, 96,
                                               False, 0), batch_size=3)))
    assert set(batch) == {"image", "index"} and batch["image"].shape == (3, 3, 32, 96)


def test_mixed_image_sizes_are_resized_and_logged(tmp_path, caplog):
    write_rgb(tmp_path / "a.png", np.zeros((10, 20, 3), np.uint8))
    write_rgb(tmp_path / "b.png", np.zeros((30, 40, 3), np.uint8))
    with caplog.at_level(logging.INFO, logger="training.datasets"):
        dataset = build_dataset(DataSpec(kind="image_folder", root=str(tmp_path)), 12, 16, False, 0)
    assert "2 sizes" in caplog.text
    assert dataset[0]["image"].shape == dataset[1]["image"].shape == (3, 12, 16)


# -- KITTI split files ------------------------------------------------------------------------------


def test_kitti_split_file_picks_cameras_and_names_missing_frames(tmp_path):
    drive = "2011_09_26/2011_09_26_drive_0001_sync"
    write_rgb(tmp_path / drive / "image_02" / "data" / "0000000000.png", np.full((6, 8, 3), 10, np.uint8))
    write_rgb(tmp_path / drive / "image_02" / "data" / "0000000001.png", np.full((6, 8, 3), 20, np.uint8))
    write_rgb(tmp_path / drive / "image_03" / "data" / "0000000001.png", np.full((6, 8, 3), 200, np.uint8))
    split = tmp_path / "split.txt"
    split.write_text(f"{drive} 0 l\n\n{drive} 0000000001 r\n")
    assert read_kitti_split(split, tmp_path) == [tmp_path / drive / "image_02" / "data" / "0000000000.png",
                                                 tmp_path / drive / "image_03" / "data" / "0000000001.png"]
    dataset = build_dataset(DataSpec(kind="kitti_raw", root=str(tmp_path), split_file=str(split)), 6, 8, False, 0)
    assert len(dataset) == 2
    assert dataset[1]["image"][0, 0, 0] == pytest.approx(200 / 127.5 - 1)  # "r" = image_03

    split.write_text(f"{drive} 0 l\n{drive} 5 l\n")
    with pytest.raises(DatasetError, match=r"image_02/data/0000000005\.png \(.*split\.txt:2\)"):
        build_dataset(DataSpec(kind="kitti_raw", root=str(tmp_path), split_file=str(split)), 6, 8, False, 0)
    split.write_text(f"{drive} 0 x\n")
    with pytest.raises(DatasetError, match=r"split\.txt:1: expected"):
        read_kitti_split(split, tmp_path)


# -- fail fast, naming the file ---------------------------------------------------------------------


def folder_spec(tmp_path: Path, **kwargs) -> DataSpec:
    return DataSpec(kind="image_folder", root=str(tmp_path / "rgb"), depth_root=str(tmp_path / "depth"),
                    depth_format="kitti", **kwargs)


def write_pair(tmp_path: Path, name: str, size=(6, 8), depth_size=None) -> None:
    write_rgb(tmp_path / "rgb" / f"{name}.png", np.full((*size, 3), 128, np.uint8))
    write_kitti_depth(tmp_path / "depth" / f"{name}.png", np.full(depth_size or size, 10.0, np.float32))


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_truncated_image_is_named_and_verify_can_be_turned_off(tmp_path, suffix):
    write_pair(tmp_path, "good")
    rng = np.random.default_rng(0)
    bad = write_rgb(tmp_path / "rgb" / f"bad{suffix}", rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))
    bad.write_bytes(bad.read_bytes()[: bad.stat().st_size // 2])
    write_kitti_depth(tmp_path / "depth" / "bad.png", np.full((64, 64), 10.0, np.float32))
    with pytest.raises(DatasetError, match=f"truncated image .*bad{suffix}"):
        build_dataset(folder_spec(tmp_path), 6, 8, False, 0)
    assert len(build_dataset(folder_spec(tmp_path, verify=False), 6, 8, False, 0)) == 2


def test_image_without_depth_and_depth_without_image_are_named(tmp_path, rendered):
    write_pair(tmp_path, "a")
    write_rgb(tmp_path / "rgb" / "lonely.png", np.zeros((6, 8, 3), np.uint8))
    with pytest.raises(DatasetError, match=r"lonely\.png has no depth file .*depth/lonely\.png"):
        build_dataset(folder_spec(tmp_path), 6, 8, False, 0)

    synthia = tmp_path / "synthia"
    write_synthia_depth(synthia / "Depth" / "Depth" / "0000001.png", np.ones((6, 8), np.float32))
    write_rgb(synthia / "RGB" / "0000000.png", np.zeros((6, 8, 3), np.uint8))
    write_synthia_depth(synthia / "Depth" / "Depth" / "0000000.png", np.ones((6, 8), np.float32))
    with pytest.raises(DatasetError, match=r"Depth/0000001\.png has no image"):
        build_dataset(DataSpec(kind="synthia", root=str(synthia)), 6, 8, False, 0)


def test_empty_and_missing_folders_say_where_they_looked(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match=r"no images found under .*empty \(looked for \*\*/\*\{\.png"):
        build_dataset(DataSpec(kind="image_folder", root=str(tmp_path / "empty")), 6, 8, False, 0)
    with pytest.raises(DatasetError, match=r"no KITTI raw images found; looked for .*empty/image_02/data/\*"):
        build_dataset(DataSpec(kind="kitti_raw", root=str(tmp_path / "empty")), 6, 8, False, 0)
    with pytest.raises(DatasetError, match=r"empty/RGB does not exist"):
        build_dataset(DataSpec(kind="synthia", root=str(tmp_path / "empty")), 6, 8, False, 0)
    with pytest.raises(DatasetError, match=r"folder .*nowhere does not exist"):
        build_dataset(DataSpec(kind="image_folder", root=str(tmp_path / "nowhere")), 6, 8, False, 0)


def test_8bit_depth_and_size_mismatch_are_named(tmp_path):
    write_pair(tmp_path, "a")
    write_rgb(tmp_path / "rgb" / "eight.png", np.zeros((6, 8, 3), np.uint8))
    cv2.imwrite(str(tmp_path / "depth" / "eight.png"), np.full((6, 8), 10, np.uint8))
    with pytest.raises(DatasetError, match=r"eight\.png is 8-bit, expected a 16-bit PNG"):
        build_dataset(folder_spec(tmp_path), 6, 8, False, 0)
    (tmp_path / "rgb" / "eight.png").unlink()
    (tmp_path / "depth" / "eight.png").unlink()

    write_pair(tmp_path, "odd", size=(6, 8), depth_size=(6, 9))
    with pytest.raises(DatasetError, match=r"odd\.png is 8x6 but its depth .*odd\.png is 9x6"):
        build_dataset(folder_spec(tmp_path), 6, 8, False, 0)
    dataset = build_dataset(folder_spec(tmp_path, verify=False), 6, 8, False, 0)  # caught at load time instead
    with pytest.raises(DatasetError, match=r"odd\.png is 8x6 but its depth"):
        dataset[1]


# -- the config section -----------------------------------------------------------------------------


def test_unknown_kind_lists_the_known_ones():
    with pytest.raises(ValueError, match="unknown dataset kind 'nope'; known: carla, image_folder, kitti_raw, "
                                         "procedural, road_frames, rosbag, synthia, vkitti2"):
        DataSpec(kind="nope")
    with pytest.raises(ConfigError, match="known: carla, image_folder, kitti_raw"):
        config_from_dict(DataSpec, {"kind": "nope"})
    spec = config_from_dict(DataSpec, {"kind": "image_folder", "root": "x", "depth_root": "d", "depth_format": "npy"})
    assert spec.depth_format == "npy" and spec.length == 1000


@pytest.mark.parametrize("fields, message", [
    ({"kind": "procedural", "root": "x"}, "reads no files, but root is set"),
    ({"kind": "synthia"}, "needs root"),
    ({"kind": "synthia", "root": "x", "split_file": "s.txt"}, "split_file is only read by kind 'kitti_raw'"),
    ({"kind": "kitti_raw", "root": "x", "depth_format": "kitti"}, "only read by kind 'image_folder'"),
    ({"kind": "image_folder", "root": "x", "depth_format": "kitti"}, "set depth_root and depth_format together"),
    ({"kind": "image_folder", "root": "x", "depth_root": "d", "depth_format": "png16", "depth_scale": 0.0},
     "depth_scale must be a positive"),
    ({"kind": "procedural", "length": 0}, "length and sequence_length must be >= 1"),
    ({"kind": "procedural", "domain": "cartoon"}, "'cartoon' is not one of"),
])
def test_data_spec_rejects_inconsistent_fields(fields, message):
    with pytest.raises(ConfigError, match=message):
        config_from_dict(DataSpec, fields)


# -- the rendered-frame cache and photometric augmentation (the sim-to-real recipe) --------------


def test_procedural_cache_returns_the_rendered_frames_and_is_keyed_by_the_config(tmp_path):
    from depth_da_ros.procedural.cache import FrameCache, cache_folder

    spec = DataSpec(kind="procedural", domain="real", length=3, seed=5, cache=str(tmp_path))
    cached, plain = build_dataset(spec, 16, 48, False, 0), build_dataset(DataSpec(**{**spec.__dict__, "cache": ""}),
                                                                        16, 48, False, 0)
    for i in range(3):
        first, second = cached[i], cached[i]  # rendered and stored, then read back
        assert torch.equal(first["image"], plain[i]["image"]) and torch.equal(second["image"], plain[i]["image"])
        assert torch.equal(first["depth"], plain[i]["depth"])  # inf (sky) survives the round trip
    folder = cached.source.cache.folder
    assert sorted(p.name for p in folder.glob("*.npz")) == ["000000.npz", "000001.npz", "000002.npz"]
    # Any change of what determines a frame is another folder, never a stale hit.
    config = cached.source.frames.config
    assert cache_folder(config, tmp_path) == folder
    assert cache_folder(ProceduralConfig(domain="real", seed=6, height=16, width=48), tmp_path) != folder
    assert cache_folder(ProceduralConfig(domain="real", seed=5, height=16, width=48, sequence_length=2),
                        tmp_path) != folder
    # A damaged file is rendered again.
    cached.source.cache.path(1).write_bytes(b"not a zip")
    assert torch.equal(cached[1]["image"], plain[1]["image"])
    assert isinstance(cached.source.cache, FrameCache)


def test_cache_is_only_for_rendered_frames(tmp_path):
    with pytest.raises(ValueError, match="cache is only used by kind 'procedural'"):
        DataSpec(kind="kitti_raw", root=str(tmp_path), cache=str(tmp_path))


def test_photometric_augmentation_changes_the_look_not_the_depth_and_is_seeded():
    spec = DataSpec(kind="procedural", length=4, seed=2)
    plain = build_dataset(spec, 32, 96, False, 0)
    augmented = build_dataset(spec, 32, 96, False, 0, photometric=True)
    rng_state = torch.get_rng_state()
    changed = 0
    for i in range(4):
        a, p = augmented[i], plain[i]
        assert a["image"].shape == p["image"].shape and a["image"].dtype == torch.float32
        assert a["image"].min() >= -1 and a["image"].max() <= 1
        assert torch.equal(a["depth"].nan_to_num(posinf=-1), p["depth"].nan_to_num(posinf=-1))
        assert torch.equal(a["image"], augmented[i]["image"])  # same (seed, epoch, index), same draw
        changed += float((a["image"] - p["image"]).abs().mean()) > 0.01
    assert changed >= 3  # colour jitter alone moves almost every frame
    assert torch.equal(torch.get_rng_state(), rng_state)
    augmented.set_epoch(1)
    assert not torch.equal(augmented[0]["image"], build_dataset(spec, 32, 96, False, 0, photometric=True)[0]["image"])
