"""Training: smoke runs of both stages, resume after SIGKILL, NaN guard, 2-process DDP."""
from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from depth_da_ros.checkpoint import load_checkpoint, load_network
from depth_da_ros.config import load_config
from training.config import DepthStageConfig, DistillStageConfig, OptimConfig, StyleStageConfig
from training.engine import make_scheduler
from training.style_stage import ImagePool
from training.train import main as train_main

ROOT = Path(__file__).resolve().parents[1]
TINY = ["model.height=64", "model.width=192", "model.depth_kwargs={ngf: 8}", "model.discriminator_kwargs={ndf: 8}",
        "model.style_kwargs={ngf: 8, n_blocks: 2}", "run.num_workers=0", "run.batch_size=2", "run.log_every=1"]
DEPTH_DATA = ["data.train.length=16", "data.val.length=4"]
STYLE_DATA = ["data.real.length=4", "data.synthetic.length=4", "data.val.length=2", "run.batch_size=1"]


def args(*overrides: str) -> list[str]:
    return [a for o in overrides for a in ("--set", o)]


def losses(run_dir: Path) -> dict[int, dict]:
    """Last logged entry per step (a resumed run re-logs the steps after its checkpoint)."""
    entries = {}
    for line in (run_dir / "losses.jsonl").read_text().splitlines():
        entry = json.loads(line)
        entries[entry["step"]] = entry
    return entries


def run_script(*cmd: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *cmd], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def test_depth_stage_trains_and_writes_a_self_describing_run(tmp_path):
    run_dir = tmp_path / "depth"
    assert train_main(["depth", *args(*TINY, *DEPTH_DATA, "run.steps=4", f"run.run_dir={run_dir}")]) == 0
    for name in ("config.yaml", "meta.json", "train.log", "losses.jsonl", "summary.json"):
        assert (run_dir / name).is_file(), name
    assert list((run_dir / "tensorboard").glob("events.out.tfevents.*"))
    assert sorted(losses(run_dir)) == [1, 2, 3, 4]
    assert {"g", "g_l1", "g_adv", "d"} <= set(losses(run_dir)[4])
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["steps"] == 4 and set(summary["metrics"]) == {"abs_rel", "sq_rel", "rmse", "rmse_log", "a1", "a2", "a3"}
    assert summary["best"]["metric"] == "abs_rel"
    ckpt = load_checkpoint(run_dir / "checkpoints" / "best.pt")  # weights_only=True inside
    assert ckpt["stage"] == "depth" and ckpt["deploy"] == ["depth"] and ckpt["input_size"] == [64, 192]
    assert ckpt["depth_codec"]["max_depth"] == 80.0 and ckpt["training_camera"]["width"] == 192
    net = load_network(ckpt, "depth")
    assert not net.training and net(torch.zeros(1, 3, 64, 192)).shape == (1, 1, 64, 192)
    # The saved config reproduces the run.
    assert load_config(DepthStageConfig, run_dir / "config.yaml").run.steps == 4
    meta = json.loads((run_dir / "meta.json").read_text())
    assert meta["seed"] == 0 and meta["git_revision"]


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="training on CUDA needs a CUDA device")
@pytest.mark.parametrize("amp", [False, True], ids=["fp32", "bf16-autocast"])
def test_both_stages_train_on_cuda(tmp_path, amp):
    for stage, data in (("depth", DEPTH_DATA), ("style", STYLE_DATA)):
        run_dir = tmp_path / stage
        assert train_main([stage, *args(*TINY, *data, "run.steps=3", "run.device=cuda", f"run.amp={str(amp).lower()}",
                                        f"run.run_dir={run_dir}")]) == 0
        entries = losses(run_dir)
        assert sorted(entries) == [1, 2, 3]
        assert all(math.isfinite(value) for entry in entries.values() for value in entry.values())
        ckpt = load_checkpoint(run_dir / "checkpoints" / "last.pt")  # a GPU run's checkpoint loads on the CPU
        assert load_network(ckpt, ckpt["deploy"][0]) is not None


def test_depth_stage_with_wgan_gp_critic(tmp_path):
    run_dir = tmp_path / "wgan"
    assert train_main(["depth", *args(*TINY, *DEPTH_DATA, "run.steps=2", "loss.gan=wgan-gp", "loss.n_critic=2",
                                      f"run.run_dir={run_dir}")]) == 0
    ckpt = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    assert ckpt["networks"]["depth_discriminator"]["spec"]["name"] == "patchgan_critic"
    assert "d_gp" in losses(run_dir)[2]


def test_style_stage_with_depth_aware_cycle(tmp_path):
    depth_dir, style_dir = tmp_path / "depth", tmp_path / "style"
    assert train_main(["depth", *args(*TINY, *DEPTH_DATA, "run.steps=2", f"run.run_dir={depth_dir}")]) == 0
    assert train_main(["style", *args(*TINY, *STYLE_DATA, "run.steps=3", "loss.depth_aware=1.0", "loss.pool_size=2",
                                      f"depth_checkpoint={depth_dir / 'checkpoints' / 'best.pt'}",
                                      f"run.run_dir={style_dir}")]) == 0
    entry = losses(style_dir)[3]
    for key in ("g_identity", "g_gan_real_to_synthetic", "g_gan_synthetic_to_real", "g_cycle", "g_depth_cycle",
                "d_real", "d_synthetic"):
        assert key in entry
    summary = json.loads((style_dir / "summary.json").read_text())
    assert "abs_rel" in summary["metrics"] and "no_adaptation_abs_rel" in summary["metrics"]
    ckpt = load_checkpoint(style_dir / "checkpoints" / "last.pt")
    assert ckpt["deploy"] == ["style"] and set(ckpt["networks"]) == {
        "style", "style_inverse", "discriminator_real", "discriminator_synthetic"}
    assert len(ckpt["extra"]["pool_real"]) == 2  # the image pools are checkpointed
    out = load_network(ckpt, "style")(torch.zeros(1, 3, 64, 192))
    assert out.shape == (1, 3, 64, 192) and out.abs().max() <= 1.0


def test_resume_after_sigkill_reproduces_the_uninterrupted_losses(tmp_path):
    common = args(*TINY, "data.train.length=16", "data.val.length=2", "run.deterministic=true", "run.steps=24",
                  "run.checkpoint_every=3", "run.num_workers=1")
    reference = tmp_path / "reference"
    done = run_script("training/train.py", "depth", *common, "--set", f"run.run_dir={reference}")
    assert done.returncode == 0, done.stderr[-3000:]

    killed = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "training/train.py", "depth", *common, "--set", f"run.run_dir={killed}"],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log = killed / "losses.jsonl"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if log.exists() and len(log.read_text().splitlines()) >= 5:  # past the step-3 checkpoint, mid-epoch
            break
        time.sleep(0.01)
    assert proc.poll() is None, "the run finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    checkpoint_step = load_checkpoint(killed / "checkpoints" / "last.pt")["step"]
    assert 3 <= checkpoint_step < 24 and checkpoint_step % 8 != 0  # mid-epoch (8 batches per epoch)

    resumed = run_script("training/train.py", "depth", "--resume", str(killed))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resumed from {killed / 'checkpoints' / 'last.pt'} at step {checkpoint_step}" in resumed.stderr
    expected, actual = losses(reference), losses(killed)
    assert sorted(actual) == list(range(1, 25))
    for step in range(checkpoint_step + 1, 25):
        for entry in (actual[step], expected[step]):
            entry.pop("step_seconds")
        assert actual[step] == expected[step], f"step {step} differs after resume"


def test_nan_loss_stops_with_a_clear_message_and_keeps_the_last_checkpoint(tmp_path, monkeypatch, caplog):
    import training.depth_stage as depth_stage

    real_l1 = depth_stage.masked_l1_loss
    calls = {"n": 0}

    def l1_that_diverges(*a, **k):
        calls["n"] += 1
        value = real_l1(*a, **k)
        return value * float("nan") if calls["n"] == 3 else value

    monkeypatch.setattr(depth_stage, "masked_l1_loss", l1_that_diverges)
    run_dir = tmp_path / "nan"
    code = train_main(["depth", *args(*TINY, *DEPTH_DATA, "run.steps=6", "run.checkpoint_every=2",
                                      f"run.run_dir={run_dir}")])
    assert code == 3
    assert "non-finite loss g=nan, g_l1=nan at step 3" in caplog.text and f"--resume {run_dir}" in caplog.text
    ckpt = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    assert ckpt["step"] == 2 and not (run_dir / "summary.json").exists()
    assert all(torch.isfinite(t).all() for t in ckpt["networks"]["depth"]["state_dict"].values() if t.is_floating_point())


def test_two_process_ddp_on_cpu_stays_in_sync(tmp_path):
    run_dir = tmp_path / "ddp"
    done = run_script("-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "training/train.py",
                      "depth", *args(*TINY, *DEPTH_DATA, "run.steps=3", f"run.run_dir={run_dir}"))
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["ranks_in_sync"] is True and summary["steps"] == 3
    assert sorted(losses(run_dir)) == [1, 2, 3]  # rank 0 alone writes the logs
    assert json.loads((run_dir / "meta.json").read_text())["world_size"] == 2


@pytest.mark.parametrize("name, cls", [("train_depth_lite", DepthStageConfig), ("train_depth_paper", DepthStageConfig),
                                       ("train_depth_bench", DepthStageConfig), ("train_style_lite", StyleStageConfig),
                                       ("train_style_paper", StyleStageConfig), ("train_style_bench", StyleStageConfig),
                                       ("train_distill_bench", DistillStageConfig)])
def test_committed_configs_load(name, cls):
    cfg = load_config(cls, ROOT / "config" / f"{name}.yaml")
    assert cfg.model.preset == name.rsplit("_", 1)[1]


@pytest.mark.parametrize("stage, cls", [("depth", DepthStageConfig), ("style", StyleStageConfig)])
def test_no_argument_defaults_are_the_lite_yaml(stage, cls):
    assert load_config(cls, ROOT / "config" / f"train_{stage}_lite.yaml") == cls()


def test_cli_rejects_unknown_keys_and_bad_data(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        train_main(["depth", "--set", "loss.lamda=0.5"])
    assert exc.value.code == 2 and "unknown key 'loss.lamda'" in capsys.readouterr().err
    code = train_main(["depth", *args(*TINY, "data.train.kind=synthia", f"data.train.root={tmp_path / 'nope'}",
                                      f"run.run_dir={tmp_path / 'run'}")])
    assert code == 2


def test_linear_decay_schedule():
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    sched = make_scheduler(opt, OptimConfig(lr=1.0, decay_steps=4), total_steps=10)
    lrs = []
    for _ in range(10):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[:6] == [1.0] * 6 and lrs[6:] == pytest.approx([0.8, 0.6, 0.4, 0.2])


def test_image_pool_mixes_history_and_current():
    import random

    random.seed(0)
    pool = ImagePool(2)
    first = pool.query(torch.zeros(2, 3, 4, 4))
    assert torch.equal(first, torch.zeros(2, 3, 4, 4)) and len(pool.images) == 2
    out = pool.query(torch.ones(8, 3, 4, 4))
    assert out.shape == (8, 3, 4, 4) and (out.flatten(1).mean(1) == 0).any() and (out.flatten(1).mean(1) == 1).any()
