"""Training that never loses work: config checks before anything is written, resume with
overrides, validation frames without ground truth, the time budget, progress and LR logs,
GAN details (masked missing depth, a fresh batch per critic update)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

import training.engine as engine_mod
from depth_da_ros.checkpoint import load_checkpoint
from depth_da_ros.config import load_config
from training.config import DepthStageConfig, check_resume_changes, config_changes
from training.depth_stage import DepthStage, mask_missing
from training.engine import BudgetClock, DistContext
from training.train import main as train_main

ROOT = Path(__file__).resolve().parents[1]
TINY = ["model.height=64", "model.width=192", "model.depth_kwargs={ngf: 8}", "model.discriminator_kwargs={ndf: 8}",
        "run.num_workers=0", "run.batch_size=2", "run.log_every=1"]
DATA = ["data.train.length=16", "data.val.length=4"]


def args(*overrides: str) -> list[str]:
    return [a for o in overrides for a in ("--set", o)]


def entries(run_dir: Path) -> dict[int, dict]:
    out = {}
    for line in (run_dir / "losses.jsonl").read_text().splitlines():
        entry = json.loads(line)
        out[entry["step"]] = entry
    return out


# -- item 6: config errors before work starts ---------------------------------------------------------


@pytest.mark.parametrize("overrides, key", [
    (["model.height=72"], "model.height / model.width: height 72 not a multiple of 64"),
    (["model.depth_kwargs={ngf: 8, num_downs: 7}"], "not a multiple of 128, the depth network's stride"),
    (["data.train.length=3", "run.batch_size=4"], "data.train.length=3"),
    (["model.depth_kwargs={output_nc: 3}"], "model.depth_kwargs.output_nc=3"),
])
def test_depth_config_errors_exit_2_with_one_line_before_the_run_folder(tmp_path, capsys, overrides, key):
    run_dir = tmp_path / "run"
    with pytest.raises(SystemExit) as exc:
        train_main(["depth", *args(*TINY, *overrides, f"run.run_dir={run_dir}")])
    err = capsys.readouterr().err.strip()
    assert exc.value.code == 2 and key in err and len(err.splitlines()) == 1, err
    assert not run_dir.exists()


def test_style_generator_must_output_rgb(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        train_main(["style", *args("model.style_kwargs={output_nc: 1}", f"run.run_dir={tmp_path / 'run'}")])
    err = capsys.readouterr().err.strip()
    assert exc.value.code == 2 and "model.style_kwargs.output_nc=1" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "run").exists()


def test_file_training_set_smaller_than_a_batch_stops_before_the_run_folder(tmp_path, caplog):
    images, depths = tmp_path / "images", tmp_path / "depth"
    images.mkdir()
    depths.mkdir()
    cv2.imwrite(str(images / "a.png"), np.zeros((64, 192, 3), np.uint8))
    np.save(depths / "a.npy", np.ones((64, 192), np.float32))
    run_dir = tmp_path / "run"
    code = train_main(["depth", *args(*TINY, "data.train.kind=image_folder", f"data.train.root={images}",
                                      f"data.train.depth_root={depths}", "data.train.depth_format=npy",
                                      f"run.run_dir={run_dir}")])
    assert code == 2 and "the training set has 1 samples" in caplog.text
    assert not run_dir.exists()


def test_help_is_fast_and_stage_help_lists_config_keys():
    code = ("import sys\nfrom training.train import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "print('torch loaded:', 'torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert "torch loaded: False" in done.stdout, done.stderr
    done = subprocess.run([sys.executable, "training/train.py", "depth", "--help"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0
    assert "optim_g.lr: float = 0.0002" in done.stdout and "loss.gan: vanilla|lsgan|wgan-gp = 'vanilla'" in done.stdout


# -- item 2: resume with overrides ----------------------------------------------------------------------


def test_resume_applies_a_new_learning_rate(tmp_path):
    run_dir = tmp_path / "run"
    assert train_main(["depth", *args(*TINY, *DATA, "run.steps=2", f"run.run_dir={run_dir}")]) == 0
    assert train_main(["depth", "--resume", str(run_dir), *args("run.steps=4", "optim_g.lr=1e-5")]) == 0
    log = entries(run_dir)
    assert [log[s]["lr"]["depth"] for s in (1, 2, 3, 4)] == pytest.approx([2e-4, 2e-4, 1e-5, 1e-5])
    assert log[4]["lr"]["depth_discriminator"] == pytest.approx(2e-4)
    ckpt = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    assert ckpt["step"] == 4 and ckpt["optimizers"]["depth"]["param_groups"][0]["lr"] == pytest.approx(1e-5)
    assert load_config(DepthStageConfig, run_dir / "config.yaml").optim_g.lr == 1e-5
    meta = json.loads((run_dir / "meta.json").read_text())
    assert meta["resumes"][0]["from_step"] == 2
    assert meta["resumes"][0]["changes"]["optim_g.lr"] == [2e-4, 1e-5]


def test_refused_resume_leaves_the_run_untouched(tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert train_main(["depth", *args(*TINY, *DATA, "run.steps=2", f"run.run_dir={run_dir}")]) == 0
    before = {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()}
    for override in ("model.depth_kwargs={ngf: 16}", "run.batch_size=4", "data.train.length=32", "loss.gan=wgan-gp"):
        with pytest.raises(SystemExit) as exc:
            train_main(["depth", "--resume", str(run_dir), "--set", override])
        err = capsys.readouterr().err
        assert exc.value.code == 2 and f"--resume cannot change {override.split('=')[0]}" in err, err
    assert {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()} == before
    # A config.yaml edited by hand: refused by the checkpoint's own config, still nothing written.
    (run_dir / "config.yaml").write_text(before["config.yaml"].decode().replace("ngf: 8", "ngf: 16"))
    assert train_main(["depth", "--resume", str(run_dir)]) == 2
    assert (run_dir / "meta.json").read_bytes() == before["meta.json"]
    (run_dir / "config.yaml").write_bytes(before["config.yaml"])
    assert train_main(["depth", "--resume", str(run_dir), "--set", "run.steps=3"]) == 0


def test_resume_policy_classifies_keys():
    old = {"model": {"depth_kwargs": {}}, "optim_g": {"lr": 2e-4}, "val": {"image_count": 4}, "run": {"steps": 2}}
    new = {"model": {"depth_kwargs": {}}, "optim_g": {"lr": 1e-5}, "val": {"image_count": 8}, "run": {"steps": 9}}
    assert check_resume_changes(old, new) == {"optim_g.lr": (2e-4, 1e-5), "run.steps": (2, 9),
                                              "val.image_count": (4, 8)}
    assert config_changes({"model": {"depth_kwargs": {}}}, {"model": {"depth_kwargs": {"ngf": 16}}}) == {
        "model.depth_kwargs": ({}, None), "model.depth_kwargs.ngf": (None, 16)}


# -- item 3: validation frames without ground truth --------------------------------------------------------


def test_validation_skips_frames_without_ground_truth(tmp_path, caplog):
    images, depths = tmp_path / "images", tmp_path / "depth"
    images.mkdir()
    depths.mkdir()
    rng = np.random.default_rng(0)
    for name, depth in (("a", np.full((64, 192), np.nan, np.float32)), ("b", np.full((64, 192), 10.0, np.float32))):
        cv2.imwrite(str(images / f"{name}.png"), rng.integers(0, 255, (64, 192, 3), dtype=np.uint8))
        np.save(depths / f"{name}.npy", depth)
    run_dir = tmp_path / "run"
    code = train_main(["depth", *args(*TINY, "data.train.length=4", "run.steps=2", "data.val.kind=image_folder",
                                      f"data.val.root={images}", f"data.val.depth_root={depths}",
                                      "data.val.depth_format=npy", f"run.run_dir={run_dir}")])
    assert code == 0
    assert "1 of 2 frame(s) not evaluated" in caplog.text
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["metrics"]["abs_rel"] >= 0 and (run_dir / "checkpoints" / "best.pt").is_file()


# -- item 7: budget, progress bar, learning-rate log ------------------------------------------------------


def test_budget_counts_the_final_validation(tmp_path, monkeypatch, capsys):
    """Fake clock: a step costs 10 s, a validation 15 s, budget 60 s. The estimate before the first
    validation is one step per validation batch (2 x 10 s): after step 4 it says stop, so the
    engine validates (measuring 15 s), which confirms it; the run ends, validation included, at
    55 s (the old rule ran 7 steps and validated after the budget: 85 s)."""
    now = {"t": 0.0}
    monkeypatch.setattr(engine_mod, "_clock", lambda: now["t"])
    real_step, real_validate = DepthStage.train_step, DepthStage.validate

    def step(self, batch, n):
        now["t"] += 10.0
        return real_step(self, batch, n)

    def validate(self):
        now["t"] += 15.0
        return real_validate(self)

    monkeypatch.setattr(DepthStage, "train_step", step)
    monkeypatch.setattr(DepthStage, "validate", validate)
    run_dir = tmp_path / "run"
    assert train_main(["depth", *args(*TINY, *DATA, "run.steps=100", "run.max_minutes=1",
                                      f"run.run_dir={run_dir}")]) == 0
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["steps"] == 4 and summary["stopped_by"] == "time budget of 1 min"
    assert summary["minutes"] == round(55 / 60, 2)
    bar = [line for line in capsys.readouterr().err.split("\r") if "budget" in line]
    assert "4/4" in bar[-1] and "/100" not in bar[-1]  # the bar's total (and ETA) follow the budget


@pytest.mark.parametrize("path", sorted((ROOT / "config").glob("train_*.yaml")), ids=lambda p: p.stem)
def test_committed_configs_pass_the_config_checks(path):
    from training.config import STAGE_CONFIGS, check_config

    stage = path.stem.split("_")[1]
    check_config(stage, load_config(STAGE_CONFIGS[stage], path))


def test_budget_clock_rule():
    now = {"t": 0.0}
    clock = BudgetClock(60.0, 0.0, clock=lambda: now["t"])
    for seconds in (25.0, 10.0, 10.0, 10.0):  # the first (warm-up) step does not count once others exist
        clock.add_step(seconds)
    now["t"] = 30.0
    assert clock.allows_step(20.0) and not clock.allows_step(20.1)
    assert clock.steps_left(10.0) == 2
    assert clock.estimate_validation(samples=5, batch=2) == 30.0
    assert BudgetClock(0.0, 0.0).allows_step(1e9)


def test_progress_bar_and_lr_log_follow_the_step(tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert train_main(["depth", *args(*TINY, *DATA, "run.steps=5", "run.log_every=4", "optim_g.decay_steps=2",
                                      f"run.run_dir={run_dir}")]) == 0
    log = entries(run_dir)
    # Decay over the last 2 of 5 steps: step k trains at factor(k - 1) = 1, 1, 1, 2/3, 1/3.
    lrs = [2e-4, 2e-4, 2e-4, 2e-4 * 2 / 3, 2e-4 / 3]
    assert [log[s]["lr"]["depth"] for s in range(1, 6)] == pytest.approx(lrs)
    bar = capsys.readouterr().err.split("\r")
    last = [line for line in bar if "5/5" in line][-1]
    assert f"g={log[5]['g']:.3g}" in last  # the bar shows step 5's losses, not those of the last logged step
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir / "tensorboard"))
    events.Reload()
    logged = {e.step: e.value for e in events.Scalars("lr/depth")}
    assert sorted(logged) == [1, 4] and logged[4] == pytest.approx(lrs[3])  # step 4's own lr, not step 5's


# -- item 8: GAN details --------------------------------------------------------------------------------


def _stage(*overrides: str) -> DepthStage:
    from depth_da_ros.config import apply_overrides

    cfg = apply_overrides(DepthStageConfig(), [*TINY, *overrides])
    return DepthStage(cfg, DistContext())


def _record_inputs(module: torch.nn.Module) -> list[torch.Tensor]:
    seen: list[torch.Tensor] = []
    module.register_forward_pre_hook(lambda _m, inputs: seen.append(inputs[0].detach().clone()))
    return seen


def _batch(seed: int, missing: bool = True) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    depth = torch.rand(2, 1, 64, 192, generator=g) * 70 + 1
    if missing:
        depth[:, :, :, :100] = float("nan")  # no measurement on the left
    return {"image": torch.rand(2, 3, 64, 192, generator=g) * 2 - 1, "depth": depth, "index": torch.arange(2)}


def test_discriminator_pairs_hide_missing_ground_truth():
    torch.manual_seed(0)
    stage = _stage()
    seen = _record_inputs(stage.discriminator)
    batch = _batch(0)
    stage.train_step(batch, 1)
    real, fake, generated = seen  # D(real pair), D(fake pair), then D for the generator's loss
    missing = torch.isnan(batch["depth"])[:, 0]
    for pair in (real, fake, generated):
        assert torch.equal(pair[:, 3][missing], torch.zeros(int(missing.sum())))
    measured = ~missing
    expected = stage.codec.encode(batch["depth"])[:, 0][measured]
    assert torch.allclose(real[:, 3][measured], expected)
    dense = torch.rand(1, 1, 4, 4)
    assert torch.equal(mask_missing(dense, ~torch.isnan(dense)), dense)


def test_each_critic_update_draws_a_fresh_batch():
    torch.manual_seed(0)
    stage = _stage("loss.gan=wgan-gp", "loss.n_critic=3")
    assert stage.batches_per_step == 3
    seen = _record_inputs(stage.discriminator)
    extra = iter([_batch(1), _batch(2)])
    stage._batch_source = lambda: next(extra)
    first = _batch(0)
    stage.train_step(first, 1)
    # Per critic update: D(real), D(fake), D(interpolates) for the penalty; then D for the generator.
    reals = [seen[0], seen[3], seen[6]]
    images = [b["image"] for b in (first, _batch(1), _batch(2))]
    for real, image in zip(reals, images):
        assert torch.equal(real[:, :3], image)
    assert torch.equal(seen[9][:, :3], images[2])  # the generator steps on the last critic batch


def test_wgan_gp_run_consumes_n_critic_batches_per_step(tmp_path):
    run_dir = tmp_path / "run"
    # 16 samples / batch 2 = 8 batches an epoch = 4 steps with n_critic 2: step 4 ends epoch 0.
    assert train_main(["depth", *args(*TINY, *DATA, "run.steps=5", "loss.gan=wgan-gp", "loss.n_critic=2",
                                      f"run.run_dir={run_dir}")]) == 0
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["steps"] == 5 and summary["epochs"] == 1
    assert load_checkpoint(run_dir / "checkpoints" / "last.pt")["epoch_step"] == 2


def test_resume_of_a_checkpoint_from_an_older_schema(tmp_path):
    """Keys the config gained after a checkpoint was written take their defaults: not a refused change."""
    run_dir = tmp_path / "run"
    assert train_main(["depth", *args(*TINY, *DATA, "run.steps=1", f"run.run_dir={run_dir}")]) == 0
    path = run_dir / "checkpoints" / "last.pt"
    ckpt = torch.load(path, weights_only=True)
    del ckpt["config"]["data"]["flip"], ckpt["config"]["val"]["crop"]  # as if written before these keys existed
    from depth_da_ros.checkpoint import save_checkpoint

    save_checkpoint(path, {k: v for k, v in ckpt.items() if k != "format"})
    assert train_main(["depth", "--resume", str(run_dir), "--set", "run.steps=2"]) == 0


# -- issue 25 item 2: checkpoint content verified on every load ---------------------------------------


def flip_tensor_byte(path: Path) -> None:
    """Flip one bit inside the first tensor's bytes, leaving the zip archive itself intact."""
    import struct
    import zipfile

    with zipfile.ZipFile(path) as archive:
        info = next(i for i in archive.infolist() if "/data/" in i.filename and i.file_size > 64)
    data = bytearray(path.read_bytes())
    name_len, extra_len = struct.unpack("<HH", data[info.header_offset + 26:info.header_offset + 30])
    data[info.header_offset + 30 + name_len + extra_len + info.file_size // 2] ^= 0x10
    path.write_bytes(bytes(data))


def test_bit_flipped_checkpoint_is_one_plain_error_naming_the_file(tmp_path, caplog, capsys):
    from depth_da_ros.checkpoint import CheckpointError, save_checkpoint

    path = tmp_path / "x.pt"
    save_checkpoint(path, {"w": torch.arange(1000, dtype=torch.float32)})
    flip_tensor_byte(path)
    assert torch.load(path, weights_only=True)["w"].shape == (1000,)  # torch alone loads it silently
    with pytest.raises(CheckpointError, match=rf"{path}: corrupt file \(CRC-32 mismatch"):
        load_checkpoint(path)
    # resume refuses it with exit 2, one line naming the file
    run_dir = tmp_path / "run"
    assert train_main(["depth", *args(*TINY, *DATA, "run.steps=1", f"run.run_dir={run_dir}")]) == 0
    last = run_dir / "checkpoints" / "last.pt"
    flip_tensor_byte(last)
    caplog.clear()
    assert train_main(["depth", "--resume", str(run_dir), *args("run.steps=2")]) == 2
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and str(last) in errors[0] and "CRC-32" in errors[0], errors


# -- issue 25 item 16: SIGINT / SIGTERM checkpoint the current step ------------------------------------


@pytest.mark.parametrize("signum, code", [(2, 130), (15, 143)])
def test_signal_checkpoints_the_current_step_and_resumes_exactly(tmp_path, monkeypatch, caplog, signum, code):
    import os
    import signal as signal_mod

    common = [*TINY, *DATA, "run.deterministic=true", "run.checkpoint_every=1000", "run.val_every=0"]
    reference = tmp_path / "reference"
    assert train_main(["depth", *args(*common, "run.steps=4", f"run.run_dir={reference}")]) == 0

    original = DepthStage.train_step

    def step_then_signal(self, batch, step):
        out = original(self, batch, step)
        if step == 2:
            os.kill(os.getpid(), signum)  # arrives mid-run; the engine finishes the step first
        return out

    run_dir = tmp_path / "run"
    monkeypatch.setattr(DepthStage, "train_step", step_then_signal)
    caplog.clear()
    try:
        assert train_main(["depth", *args(*common, "run.steps=4", f"run.run_dir={run_dir}")]) == code
    finally:
        assert signal_mod.getsignal(signal_mod.SIGINT) is signal_mod.default_int_handler  # handlers restored
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    name = signal_mod.Signals(signum).name
    assert len(errors) == 1 and f"stopped by {name} at step 2" in errors[0], errors
    assert f"stopped by {name} at step 2" in (run_dir / "train.log").read_text()  # logged before the log closes
    assert load_checkpoint(run_dir / "checkpoints" / "last.pt")["step"] == 2
    monkeypatch.setattr(DepthStage, "train_step", original)
    assert train_main(["depth", "--resume", str(run_dir)]) == 0
    expected, actual = entries(reference), entries(run_dir)
    assert sorted(actual) == [1, 2, 3, 4]
    for step in (1, 2, 3, 4):
        for key, value in expected[step].items():
            if key not in ("step_seconds", "step"):
                assert actual[step][key] == value, (step, key)


@pytest.mark.parametrize("signum, code", [(2, 130), (15, 143)])
def test_a_second_signal_stops_at_once_without_a_checkpoint(tmp_path, monkeypatch, caplog, signum, code):
    import os
    import signal as signal_mod

    original = DepthStage.train_step

    def signal_twice_in_step(self, batch, step):
        if step == 3:
            os.kill(os.getpid(), signum)  # the first: stop after this step, with a checkpoint
            os.kill(os.getpid(), signum)  # the second: the user does not want to wait
        return original(self, batch, step)

    run_dir = tmp_path / "run"
    monkeypatch.setattr(DepthStage, "train_step", signal_twice_in_step)
    try:
        assert train_main(["depth", *args(*TINY, *DATA, "run.steps=6", "run.checkpoint_every=1", "run.val_every=0",
                                          f"run.run_dir={run_dir}")]) == code
    finally:
        assert signal_mod.getsignal(signal_mod.SIGINT) is signal_mod.default_int_handler  # handlers restored
    name = signal_mod.Signals(signum).name
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and f"at once by a second {name} after step 2, without a checkpoint" in errors[0], errors
    last = run_dir / "checkpoints" / "last.pt"
    assert f"last good checkpoint {last} is intact" in errors[0] and f"--resume {run_dir}" in errors[0], errors
    assert "second" in (run_dir / "train.log").read_text()  # logged before the log closes
    assert load_checkpoint(last)["step"] == 2  # step 3 was cut short: not saved
    monkeypatch.setattr(DepthStage, "train_step", original)
    assert train_main(["depth", "--resume", str(run_dir), *args("run.steps=3")]) == 0


def test_a_second_signal_after_the_stop_checkpoint_changes_nothing(tmp_path, monkeypatch, caplog):
    import os
    import signal as signal_mod

    original, interrupted = DepthStage.train_step, engine_mod.TrainingInterrupted

    def signal_at_step_2(self, batch, step):
        if step == 2:
            os.kill(os.getpid(), signal_mod.SIGINT)
        return original(self, batch, step)

    class SignalAgain(interrupted):  # the second Ctrl-C lands after the stop checkpoint was written
        def __init__(self, *a):
            os.kill(os.getpid(), signal_mod.SIGINT)
            super().__init__(*a)

    monkeypatch.setattr(DepthStage, "train_step", signal_at_step_2)
    monkeypatch.setattr(engine_mod, "TrainingInterrupted", SignalAgain)
    run_dir = tmp_path / "run"
    assert train_main(["depth", *args(*TINY, *DATA, "run.steps=4", "run.checkpoint_every=1000", "run.val_every=0",
                                      f"run.run_dir={run_dir}")]) == 130
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and "stopped by SIGINT at step 2" in errors[0], errors
    assert load_checkpoint(run_dir / "checkpoints" / "last.pt")["step"] == 2


# -- issue 25 items 7 and 12: the stop reason names only real checkpoints and is in train.log -----------


def test_divergence_before_any_checkpoint_does_not_point_at_one(tmp_path, monkeypatch, caplog):
    import training.depth_stage as depth_stage

    monkeypatch.setattr(depth_stage, "masked_l1_loss", lambda *a, **k: torch.tensor(float("nan")))
    run_dir = tmp_path / "run"
    assert train_main(["depth", *args(*TINY, *DATA, "run.steps=4", f"run.run_dir={run_dir}")]) == 3
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and "--resume" not in errors[0] and "does not exist" in errors[0], errors
    assert not (run_dir / "checkpoints" / "last.pt").exists()
    assert "non-finite loss" in (run_dir / "train.log").read_text()  # item 12: logged before the log closes


# -- issue 25 item 1: a full disk while checkpointing is one line, exit 2, logged ------------------------


def test_full_disk_while_checkpointing_is_one_line_exit_2_and_logged(tmp_path):
    import resource
    import signal as signal_mod

    run_dir = tmp_path / "run"
    first = subprocess.run([sys.executable, "training/train.py", "depth",
                            *args(*TINY, *DATA, "run.steps=1", "run.image_every=1000", f"run.run_dir={run_dir}")],
                           cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr[-2000:]
    last = run_dir / "checkpoints" / "last.pt"
    before = last.read_bytes()
    limit = len(before) // 2  # the logs stay far below it, a checkpoint cannot fit

    def limited():
        signal_mod.signal(signal_mod.SIGXFSZ, signal_mod.SIG_IGN)  # EFBIG instead of a kill, as with a full disk
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    done = subprocess.run([sys.executable, "training/train.py", "depth", "--resume", str(run_dir),
                           *args("run.steps=2")], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          preexec_fn=limited)
    errors = [line for line in done.stderr.splitlines() if " ERROR " in line or "Traceback" in line]
    assert done.returncode == 2, done.stderr[-3000:]
    assert len(errors) == 1 and f"cannot write checkpoint {last}" in errors[0] and "file too large" in errors[0], \
        done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    assert f"cannot write checkpoint {last}" in (run_dir / "train.log").read_text()
    assert last.read_bytes() == before  # the earlier checkpoint survives
    assert not [p for p in last.parent.iterdir() if p.name.endswith(".tmp")]


def test_unwritable_train_log_is_one_line_not_a_traceback_per_record(tmp_path):
    # /dev/full refuses every write with ENOSPC, as a full disk does
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "train.log").symlink_to("/dev/full")
    done = subprocess.run([sys.executable, "training/train.py", "depth",
                           *args(*TINY, *DATA, "run.steps=2", "run.image_every=1000", f"run.run_dir={run_dir}")],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    err = done.stderr
    assert done.returncode == 0, err[-3000:]
    assert "Logging error" not in err and "Traceback" not in err, err[-3000:]
    assert err.count(f"cannot write {run_dir / 'train.log'}: no space left on the device") == 1, err[-3000:]
    assert load_checkpoint(run_dir / "checkpoints" / "last.pt")["step"] == 2


def test_full_disk_for_the_loss_log_names_the_file_exit_2_and_logged(tmp_path, caplog, capsys):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "losses.jsonl").symlink_to("/dev/full")
    code = train_main(["depth", *args(*TINY, *DATA, "run.steps=2", f"run.run_dir={run_dir}")])
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert code == 2 and len(errors) == 1, errors
    assert f"cannot write {run_dir / 'losses.jsonl'}: no space left on the device" in errors[0], errors
    assert "Traceback" not in capsys.readouterr().err
    assert f"cannot write {run_dir / 'losses.jsonl'}" in (run_dir / "train.log").read_text()  # logged
    engine_mod.RunLock(run_dir).release()  # the stopped run released its folder (a held lock raises)


def test_undefined_validation_metrics_are_null_and_never_best(tmp_path, monkeypatch):
    # issue 25 item 8's strict JSON for the training run's own files; best.pt is not pinned by a NaN
    values = iter([float("nan"), 0.5, 0.7])

    def validate(self):
        return {"abs_rel": next(values), "rmse_log": float("inf"), "a1": 0.25}

    monkeypatch.setattr(DepthStage, "validate", validate)
    run_dir = tmp_path / "run"
    assert train_main(["depth", *args(*TINY, *DATA, "run.steps=3", "run.val_every=1", f"run.run_dir={run_dir}")]) == 0

    def refuse(constant):
        raise AssertionError(f"not strict JSON: {constant}")

    summary = json.loads((run_dir / "summary.json").read_text(), parse_constant=refuse)
    assert summary["metrics"] == {"abs_rel": 0.7, "rmse_log": None, "a1": 0.25}
    assert summary["best"] == {"metric": "abs_rel", "value": 0.5, "step": 2}  # NaN at step 1 did not stay best
    assert load_checkpoint(run_dir / "checkpoints" / "best.pt")["step"] == 2
    for line in (run_dir / "losses.jsonl").read_text().splitlines():
        json.loads(line, parse_constant=refuse)


def test_home_folder_in_resume_and_run_dir(tmp_path, monkeypatch):
    # issue 25 item 10: '~' is the home folder in run.run_dir and in --resume (also as --resume=~/...)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    assert train_main(["depth", *args(*TINY, *DATA, "run.steps=1", "run.val_every=0", "run.run_dir=~/run")]) == 0
    assert (tmp_path / "run" / "checkpoints" / "last.pt").is_file() and not (tmp_path / "~").exists()
    assert train_main(["depth", "--resume=~/run", *args("run.steps=2")]) == 0
    assert load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")["step"] == 2


def test_resume_on_a_full_disk_leaves_config_and_meta_whole(tmp_path, monkeypatch, caplog):
    import errno
    import os

    import depth_da_ros.atomic as atomic_mod

    run_dir = tmp_path / "run"
    assert train_main(["depth", *args(*TINY, *DATA, "run.steps=1", "run.val_every=0", f"run.run_dir={run_dir}")]) == 0
    before = {name: (run_dir / name).read_bytes() for name in ("config.yaml", "meta.json")}

    def full(fd):  # a full disk refuses the data when it is flushed to the device
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(atomic_mod.os, "fsync", full)
    caplog.clear()
    assert train_main(["depth", "--resume", str(run_dir), *args("run.steps=2")]) == 2
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and f"cannot write {run_dir / 'config.yaml'}: no space left" in errors[0], errors
    assert {name: (run_dir / name).read_bytes() for name in before} == before  # not torn by the rewrite
    assert not [p for p in run_dir.iterdir() if p.name.endswith(".tmp")]
    import logging

    assert not [h for h in logging.getLogger().handlers  # the half-opened run let go of its train.log
                if str(getattr(h, "baseFilename", "")).startswith(str(run_dir))]
    monkeypatch.undo()
    assert train_main(["depth", "--resume", str(run_dir), *args("run.steps=2")]) == 0  # still resumable


# -- issue 25 item 3: one writer per run folder, unique default names -----------------------------------


def test_default_run_names_are_unique_within_a_second(tmp_path, monkeypatch):
    monkeypatch.setattr(engine_mod, "REPO_ROOT", tmp_path)
    names = [engine_mod.default_run_dir("depth", "lite") for _ in range(3)]
    assert len(set(names)) == 3 and all(p.is_dir() and p.parent == tmp_path / "runs" for p in names)


def _share_run_dir_worker(rank: int, init_file: str, out_dir: str) -> None:
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    try:  # rank 0 created "...-2"; rank 1's clock had moved on a second
        mine = Path(out_dir) / ("depth-lite-20261204-120000-2" if rank == 0 else "depth-lite-20261204-120001")
        got = engine_mod.shared_run_dir(DistContext(rank=rank, world_size=2), mine)
        (Path(out_dir) / f"rank{rank}.txt").write_text(str(got))
    finally:
        dist.destroy_process_group()


def test_every_rank_uses_rank_0s_default_run_folder(tmp_path):
    import torch.multiprocessing as mp

    mp.spawn(_share_run_dir_worker, args=(str(tmp_path / "init"), str(tmp_path)), nprocs=2, join=True)
    expected = str(tmp_path / "depth-lite-20261204-120000-2")
    assert [(tmp_path / f"rank{r}.txt").read_text() for r in (0, 1)] == [expected, expected]
    assert engine_mod.shared_run_dir(DistContext(), tmp_path / "alone") == tmp_path / "alone"  # one process


def test_a_second_writer_of_a_live_run_folder_is_refused(tmp_path, caplog):
    run_dir = tmp_path / "run"
    live = engine_mod.RunLock(run_dir)  # as a run still training holds it
    try:
        assert train_main(["depth", *args(*TINY, *DATA, "run.steps=1", f"run.run_dir={run_dir}")]) == 2
        errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
        assert len(errors) == 1 and f"{run_dir} is in use by another training process" in errors[0], errors
        assert sorted(p.name for p in run_dir.iterdir()) == [".lock"]  # nothing written
    finally:
        live.release()
    assert train_main(["depth", *args(*TINY, *DATA, "run.steps=1", f"run.run_dir={run_dir}")]) == 0


# -- issue 25 item 11: a decompression bomb names its file -------------------------------------------------


def test_too_large_image_is_one_error_naming_the_file(tmp_path, caplog, monkeypatch):
    from PIL import Image

    images, depths = tmp_path / "images", tmp_path / "depth"
    images.mkdir()
    depths.mkdir()
    for name in "ab":
        cv2.imwrite(str(images / f"{name}.png"), np.zeros((64, 192, 3), np.uint8))
        np.save(depths / f"{name}.npy", np.ones((64, 192), np.float32))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 12,288 pixels count as a bomb (> 2x the limit)
    run_dir = tmp_path / "run"
    code = train_main(["depth", *args(*TINY, "data.train.kind=image_folder", f"data.train.root={images}",
                                      f"data.train.depth_root={depths}", "data.train.depth_format=npy",
                                      f"run.run_dir={run_dir}")])
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert code == 2 and len(errors) == 1 and f"image {images / 'a.png'} is too large" in errors[0], errors
    assert not run_dir.exists()


# -- issue 25 item 13: the style stage refuses a depth network of another input size -----------------------


def test_style_stage_refuses_a_depth_checkpoint_of_another_size(tmp_path, caplog):
    from depth_da_ros.checkpoint import save_checkpoint

    depth = tmp_path / "depth.pt"
    save_checkpoint(depth, {"stage": "depth", "input_size": [128, 384], "networks": {}})
    run_dir = tmp_path / "style"
    code = train_main(["style", *args(*TINY, "data.real.length=4", "data.synthetic.length=4", "data.val.length=2",
                                      f"depth_checkpoint={depth}", f"run.run_dir={run_dir}")])
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert code == 2 and len(errors) == 1, errors
    assert f"{depth} was trained at 128x384 but this style stage runs at 64x192" in errors[0]
    assert not run_dir.exists()


# -- issue 25 items 14 and 15: TensorBoard missing; events after the checkpoint purged on resume ----------


def test_training_without_tensorboard_warns_and_writes_no_events(tmp_path, monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import raises ImportError
    run_dir = tmp_path / "run"
    assert train_main(["depth", *args(*TINY, *DATA, "run.steps=2", f"run.run_dir={run_dir}")]) == 0
    assert "TensorBoard is not installed" in caplog.text
    assert not (run_dir / "tensorboard").exists() and sorted(entries(run_dir)) == [1, 2]
    assert (run_dir / "checkpoints" / "last.pt").is_file()


def test_resume_purges_the_events_logged_after_the_checkpoint(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from torch.utils.tensorboard import SummaryWriter

    run_dir = tmp_path / "run"
    assert train_main(["depth", *args(*TINY, *DATA, "run.steps=2", "run.val_every=0", f"run.run_dir={run_dir}")]) == 0
    crashed = SummaryWriter(str(run_dir / "tensorboard"))  # steps 3-4 logged, then a crash before their checkpoint
    for step in (3, 4):
        crashed.add_scalar("loss/g", 99.0, step)
    crashed.close()
    assert train_main(["depth", "--resume", str(run_dir), *args("run.steps=4")]) == 0
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
    from tensorboard.compat.proto.event_pb2 import SessionLog

    starts = [e.step for f in sorted((run_dir / "tensorboard").glob("events.*"))
              for e in EventFileLoader(str(f)).Load() if e.HasField("session_log")
              and e.session_log.status == SessionLog.START]
    assert starts == [3]  # TensorBoard's purge marker: events from step 3 on before it are dropped
    events = EventAccumulator(str(run_dir / "tensorboard"))
    events.Reload()
    scalars = events.Scalars("loss/g")
    assert [e.step for e in scalars] == [1, 2, 3, 4] and 99.0 not in [e.value for e in scalars]


# -- issue 25 item 4: a mid-epoch resume with another process count is refused with the numbers ----------


def test_mid_epoch_resume_with_another_process_count_is_refused(tmp_path, caplog):
    from depth_da_ros.checkpoint import save_checkpoint

    run_dir = tmp_path / "run"
    assert train_main(["depth", *args(*TINY, *DATA, "run.steps=3", f"run.run_dir={run_dir}")]) == 0
    last = run_dir / "checkpoints" / "last.pt"
    ckpt = load_checkpoint(last)
    assert ckpt["world_size"] == 1 and ckpt["epoch_step"] == 3
    ckpt.pop("format")
    save_checkpoint(last, {**ckpt, "world_size": 2})  # as written by a 2-process run
    caplog.clear()
    assert train_main(["depth", "--resume", str(run_dir), *args("run.steps=4")]) == 2
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and "with 1 process(es): it was written by 2 at batch 3 of epoch 0" in errors[0], errors
    assert "global batch 4, here 2" in errors[0]


# -- issue 25 item 6: a deterministic resume reproduces the losses for every GAN loss ----------------------


@pytest.mark.parametrize("gan", ["vanilla", "lsgan", "wgan-gp"])
def test_mid_epoch_resume_is_exact_for_every_gan_loss(tmp_path, monkeypatch, gan):
    import os
    import signal as signal_mod

    common = [*TINY, *DATA, "run.deterministic=true", "run.checkpoint_every=1000", "run.val_every=0",
              f"loss.gan={gan}", *(["loss.n_critic=2"] if gan == "wgan-gp" else [])]
    reference = tmp_path / "reference"
    assert train_main(["depth", *args(*common, "run.steps=3", f"run.run_dir={reference}")]) == 0
    original = DepthStage.train_step

    def step_then_signal(self, batch, step):
        out = original(self, batch, step)
        if step == 1:
            os.kill(os.getpid(), signal_mod.SIGTERM)
        return out

    run_dir = tmp_path / "run"
    monkeypatch.setattr(DepthStage, "train_step", step_then_signal)
    assert train_main(["depth", *args(*common, "run.steps=3", f"run.run_dir={run_dir}")]) == 143
    monkeypatch.setattr(DepthStage, "train_step", original)
    assert load_checkpoint(run_dir / "checkpoints" / "last.pt")["epoch_step"] > 0  # mid-epoch
    assert train_main(["depth", "--resume", str(run_dir)]) == 0
    expected, actual = entries(reference), entries(run_dir)
    assert sorted(actual) == [1, 2, 3]
    for step in (2, 3):
        for key, value in expected[step].items():
            if key not in ("step_seconds", "step"):
                assert actual[step][key] == value, (gan, step, key, actual[step][key], value)


# -- issue 25 item 5: a killed DataLoader worker: checkpoint, one line, exit 2 -----------------------------


def test_killed_dataloader_worker_checkpoints_and_stops_in_one_line(tmp_path, monkeypatch, caplog):
    import multiprocessing
    import os
    import signal as signal_mod

    original = DepthStage.train_step

    def step_then_kill_worker(self, batch, step):
        out = original(self, batch, step)
        if step == 2:
            for child in multiprocessing.active_children():
                os.kill(child.pid, signal_mod.SIGKILL)  # as the out-of-memory killer does
        return out

    monkeypatch.setattr(DepthStage, "train_step", step_then_kill_worker)
    run_dir = tmp_path / "run"
    code = train_main(["depth", *args(*TINY, *DATA, "run.num_workers=1", "run.steps=8", "run.checkpoint_every=1000",
                                      f"run.run_dir={run_dir}")])
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert code == 2 and len(errors) == 1 and "DataLoader worker" in errors[0], errors
    step = load_checkpoint(run_dir / "checkpoints" / "last.pt")["step"]
    assert 2 <= step < 8 and f"checkpoint at step {step}" in errors[0] and f"--resume {run_dir}" in errors[0]
    assert "training stopped" in (run_dir / "train.log").read_text()


def test_lock_is_free_as_soon_as_a_killed_run_is_gone_even_with_orphaned_workers(tmp_path):
    import os
    import signal as signal_mod
    import time

    run_dir = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "training/train.py", "depth",
                             *args(*TINY, *DATA, "run.num_workers=1", "run.steps=50", f"run.run_dir={run_dir}")],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if (run_dir / "losses.jsonl").exists() and len((run_dir / "losses.jsonl").read_text().splitlines()) >= 2:
            break
        time.sleep(0.05)
    assert proc.poll() is None
    os.kill(proc.pid, signal_mod.SIGKILL)  # its DataLoader worker lives on for a few seconds
    proc.wait()
    engine_mod.RunLock(run_dir).release()  # not refused: the worker closed its copy of the lock
