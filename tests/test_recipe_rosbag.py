"""The README's "adapt to your own robot" recipe: its whole bash block, as written, on the small
drive it renders (bag -> train.py style with the bundled depth network frozen -> export -> the node
on the same bag over DDS -> record -> evaluate.py); and its steps 2-3 in-process on a bag the test
writes (bgr8 images, a camera_info with distinct fx/fy/cx/cy -> deployment camera)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from depth_da_ros.camera import PinholeCamera
from depth_da_ros.metrics import METRIC_NAMES
from depth_da_ros.checkpoint import load_checkpoint
from depth_da_ros.procedural.dataset import ProceduralConfig, ProceduralDataset
from training.train import main as train_main

pytest.importorskip("sensor_msgs.msg", reason="bag images are decoded by the node's conversions (ROS message packages)")

from test_datasets_rosbag import BagBuilder  # noqa: E402  (tests/ is on sys.path under pytest)

H, W = 64, 192
TINY = ["model.height=64", "model.width=192", "model.depth_kwargs={ngf: 8}", "model.discriminator_kwargs={ndf: 8}",
        "model.style_kwargs={ngf: 8, n_blocks: 2}", "run.num_workers=0", "run.log_every=1"]
IMAGE, DEPTH, INFO = "/camera/image_raw", "/camera/depth/image", "/camera/camera_info"
FX = 150.0


def args(*overrides: str) -> list[str]:
    return [a for o in overrides for a in ("--set", o)]


def procedural_rgbd_bag(path: Path, frames: int) -> Path:
    """Real-look procedural frames as a robot's RGB-D recording: bgr8 images, 32FC1 depth (+inf sky), camera_info."""
    b = BagBuilder()
    data = ProceduralDataset(ProceduralConfig(domain="real", seed=7, height=H, width=W), frames)
    messages = []
    for i in range(frames):
        stamp = 1_700_000_000_000_000_000 + i * 100_000_000
        frame = data[i]
        messages.append((IMAGE, "sensor_msgs/msg/Image", stamp, b.image(stamp, frame.rgb[..., ::-1], "bgr8")))
        depth = b.image(stamp, frame.depth.astype(np.float32), "32FC1")
        messages.append((DEPTH, "sensor_msgs/msg/Image", stamp, depth))
        messages.append((INFO, "sensor_msgs/msg/CameraInfo", stamp, b.camera_info(stamp, width=W, height=H, fx=FX)))
    return b.write(path, messages)


def stage1_checkpoint(path: Path) -> Path:
    """A stage-1 checkpoint of the TINY depth network with fresh weights (what stage 2 freezes;
    training it is test_training's job)."""
    from depth_da_ros.checkpoint import network_entry, save_checkpoint
    from training.config import ModelConfig

    model = ModelConfig(height=H, width=W, depth_kwargs={"ngf": 8})
    spec = model.spec("depth")
    camera = PinholeCamera.kitti_like(H, W)
    path.parent.mkdir(parents=True)
    save_checkpoint(path, {"stage": "depth", "deploy": ["depth"], "step": 1, "preset": model.preset,
                           "input_size": [H, W], "depth_codec": model.codec.to_dict(),
                           "training_camera": camera.__dict__, "config": {}, "metrics": {},
                           "networks": {"depth": network_entry(spec.build().eval(), spec)}})
    return path


def test_style_stage_trains_from_a_bag_records_its_camera_and_exports_it(tmp_path):
    bag = procedural_rgbd_bag(tmp_path / "robot_run", frames=4)
    depth_ckpt = stage1_checkpoint(tmp_path / "depth" / "best.pt")
    style_dir = tmp_path / "style"
    from_bag = [f"root={bag}", f"topic={IMAGE}"]
    assert train_main(["style", *args(
        *TINY, "run.batch_size=1", "run.steps=1", "loss.pool_size=1", "data.synthetic.length=2",
        "data.real.kind=rosbag", *(f"data.real.{kv}" for kv in from_bag), f"data.real.camera_info_topic={INFO}",
        "data.val.kind=rosbag", *(f"data.val.{kv}" for kv in from_bag), f"data.val.depth_topic={DEPTH}",
        "data.val.stride=2", f"depth_checkpoint={depth_ckpt}",
        f"run.run_dir={style_dir}")]) == 0
    summary = json.loads((style_dir / "summary.json").read_text())
    assert "abs_rel" in summary["metrics"] and "no_adaptation_abs_rel" in summary["metrics"]  # the bag's depth
    ckpt = load_checkpoint(style_dir / "checkpoints" / "last.pt")
    camera = PinholeCamera(W, H, FX, 21.0, 7.5, 5.5)  # BagBuilder.camera_info's fy, cx, cy
    assert ckpt["deployment_camera"] == {"width": W, "height": H, "fx": FX, "fy": 21.0, "cx": 7.5, "cy": 5.5}

    from depth_da_ros.export import export_onnx
    from depth_da_ros.model_metadata import read_model_metadata

    out = tmp_path / "adapted.onnx"
    export_onnx(out, depth_ckpt, style_dir / "checkpoints" / "last.pt", verify=False)
    metadata = read_model_metadata(out)
    assert metadata.deployment_camera == camera and metadata.training_camera.width == W
    # A depth network alone has no adapter, so no deployment camera (metadata read from the checkpoint).
    assert read_model_metadata(depth_ckpt).deployment_camera is None


def test_deployment_camera_round_trips_through_onnx_metadata_and_older_exports_lack_it():
    from depth_da_ros.model_metadata import ModelMetadata

    camera = PinholeCamera(640, 480, 500.0, 501.0, 320.5, 240.5)
    meta = ModelMetadata(networks=("style",), input_height=64, input_width=192, deployment_camera=camera)
    props = meta.to_onnx_props()
    assert ModelMetadata.from_onnx_props(props).deployment_camera == camera
    older = {key: value for key, value in props.items() if key != "deployment_camera"}
    assert ModelMetadata.from_onnx_props(older).deployment_camera is None


def test_evaluate_node_depth_against_a_bags_depth_topic(tmp_path):
    """evaluate.py --bag NODE_OUT --gt-bag RGBD --gt-depth-topic T: the recipe's last step."""
    from test_evaluate import write_depth_bag

    from training import evaluate

    stamps = [1_700_000_000_000_000_000 + i * 100_000_000 for i in range(3)]
    truth = [np.full((6, 8), 5.0 + i, np.float32) for i in range(3)]
    truth[0][0, 0], truth[1][0, 1] = np.nan, np.inf  # no measurement / beyond range: not ground truth
    write_depth_bag(tmp_path / "rgbd", list(zip(stamps, truth)), topic="/camera/depth/image_rect_raw")
    # the node's output: 10 % too far, in another order, one frame without ground truth
    write_depth_bag(tmp_path / "node", [(stamps[2], truth[2] * 1.1), (stamps[0], truth[0] * 1.1),
                                        (stamps[1], truth[1] * 1.1), (stamps[2] + 10**9, truth[2])])
    out = tmp_path / "report.json"
    assert evaluate.main(["--bag", str(tmp_path / "node"), "--gt-bag", str(tmp_path / "rgbd"), "--gt-depth-topic",
                          "/camera/depth/image_rect_raw", "--crop", "none", "--out-json", str(out),
                          "--no-progress"]) == 0
    report = json.loads(out.read_text())
    row = report["rows"]["node"]
    assert len(row["per_frame"]) == 3 and row["metrics"]["abs_rel"] == pytest.approx(0.1, rel=1e-5)
    assert report["protocol"]["gt_depth"] is None
    assert "/camera/depth/image_rect_raw" in report["protocol"]["ground_truth"]
    assert evaluate.main(["--bag", str(tmp_path / "node"), "--gt-bag", str(tmp_path / "rgbd"), "--gt-depth-topic",
                          "/nope", "--no-progress"]) == 1  # a clear error, naming the topic (logged)
    with pytest.raises(SystemExit):
        evaluate.main(["--gt-depth-topic", "/camera/depth", "--model", "m.onnx"])


# --- the README's recipe block, run as written ----------------------------------------------------

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
RECIPE_HEADING = "## Adapt to your own robot (train from a ROS 2 bag)"
RECIPE_FRAMES = 12  # what the block renders (--frames 12) and records (--max-messages 12)
RECIPE_TIMEOUT_S = 900  # generous: a 2-core machine shared with other jobs; about 1 min when idle
# Test-only edits of the block, each of which must find its text (so a README change is noticed):
# two training steps instead of the config's 300, no DataLoader worker process, and a ROS domain of
# this test's own.
FAST_TRAINING = "--set run.steps=2 --set run.num_workers=0"


def readme_recipe() -> str:
    """The first ```bash block after the recipe's heading in README.md."""
    text = README.read_text()
    start = text.index(RECIPE_HEADING)
    begin = text.index("```bash\n", start) + len("```bash\n")
    return text[begin:text.index("```\n", begin)]


def recipe_script(domain: int) -> str:
    script = readme_recipe()
    for old, new in (("training/train.py style", f"training/train.py style {FAST_TRAINING}"),
                     ("ROS_DOMAIN_ID=173", f"ROS_DOMAIN_ID={domain}")):
        assert script.count(old) == 1, f"the README recipe no longer has {old!r} once; update this test"
        script = script.replace(old, new)
    # bash -x prints each command; with the time (bash >= 5) the log says which step took how long.
    return "PS4='+ [${EPOCHREALTIME:-}] '\n" + script


def constant_median_baseline(gt_root: Path) -> dict[str, float]:
    """The metrics of the best constant guess per frame (the ground truth's own median): depth that
    carries no scene structure cannot beat it."""
    from depth_da_ros.depth_io import read_kitti_depth
    from depth_da_ros.metrics import evaluate_frames

    pairs = []
    for path in sorted(gt_root.rglob("*.png")):
        gt = read_kitti_depth(path)
        valid = gt[(gt > 1e-3) & (gt <= 80.0)]
        pairs.append((gt, np.full_like(gt, float(np.median(valid)))))
    return evaluate_frames(pairs, crop="none")


@pytest.mark.slow
def test_readme_recipe_runs_end_to_end(tmp_path):
    """The block from README.md in a scratch folder (the checkout's training/, config/ and models/
    and this venv linked in): every step must succeed, the node must publish depth for every frame
    of the full-size (1242x375) bag over real DDS with no Fast DDS variable set by anyone but our
    tools, and what it published must equal the exported model's offline depth and beat a constant
    guess."""
    from test_bags import ROS_MISSING, next_domain_id

    if ROS_MISSING:
        pytest.skip(ROS_MISSING)
    venv = Path(sys.prefix)
    if not (venv / "bin" / "depth_da_node").exists():
        pytest.skip(f"the console scripts are not installed in {venv}/bin (pip install -e .)")
    for name, target in ((".venv", venv), ("training", ROOT / "training"), ("config", ROOT / "config"),
                         ("models", ROOT / "models")):
        (tmp_path / name).symlink_to(target)
    env = {k: v for k, v in os.environ.items()
           if k not in ("FASTDDS_DEFAULT_PROFILES_FILE", "FASTRTPS_DEFAULT_PROFILES_FILE", "ROS_DOMAIN_ID")}
    env["PYTHONUNBUFFERED"] = "1"
    log = tmp_path / "recipe.log"
    with log.open("wb") as out:
        # A session of its own: the block's background jobs (node, recorder) are in its process group.
        bash = subprocess.Popen(["bash", "-x", "-euo", "pipefail", "-c", recipe_script(next_domain_id())],
                                cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        bash.wait(timeout=RECIPE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        pass
    finally:  # whatever is left of the block (a failed step leaves the node running)
        for signum in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(bash.pid, signum)
            except ProcessLookupError:
                break
            try:
                bash.wait(timeout=15)
            except subprocess.TimeoutExpired:
                continue
    output = log.read_text(errors="replace")
    tail = "\n".join(output.splitlines()[-60:])
    assert bash.returncode == 0, f"the README recipe failed (code {bash.returncode}):\n{tail}"
    assert "Traceback" not in output, tail

    # Our three ROS tools applied the package's Fast DDS profile by themselves (unless this machine
    # configures Fast DDS otherwise, e.g. another RMW_IMPLEMENTATION).
    from depth_da_ros.console import fastdds_profile_choice

    applied = fastdds_profile_choice(env, tmp_path) is None
    assert output.count("Fast DDS profile") == (3 if applied else 0), tail

    # Step 3: the bag's camera is the model's deployment camera.
    from depth_da_ros.model_metadata import read_model_metadata

    deployment = read_model_metadata(tmp_path / "my_robot.onnx").deployment_camera
    assert (deployment.width, deployment.height, deployment.fx) == (1242, 375, pytest.approx(721.5377))

    # Step 5: depth for every frame reached the bag, matched to its camera frame by stamp ...
    node = json.loads((tmp_path / "node_eval.json").read_text())["rows"]["node_out"]
    assert node["metrics"]["frames"] == RECIPE_FRAMES and len(node["per_frame"]) == RECIPE_FRAMES
    assert not node["skipped"]
    assert all(np.isfinite(node["metrics"][name]) for name in METRIC_NAMES), node["metrics"]
    # ... and is what the exported model gives offline on the same frames (decoding, resizing, focal
    # scaling and stamps all right over DDS) ...
    (offline,) = json.loads((tmp_path / "model_eval.json").read_text())["rows"].values()
    assert offline["metrics"]["frames"] == RECIPE_FRAMES
    for name in METRIC_NAMES:
        assert node["metrics"][name] == pytest.approx(offline["metrics"][name], rel=1e-3, abs=1e-4), name
    # ... and carries the scenes' structure at metric scale: better than the best constant guess
    # (wrong units, a blank adapter output or frames paired with the wrong ground truth are not).
    baseline = constant_median_baseline(tmp_path / "data" / "recipe" / "real_depth_gt")
    assert node["metrics"]["abs_rel"] < baseline["abs_rel"], (node["metrics"], baseline)
    assert node["metrics"]["a1"] > baseline["a1"], (node["metrics"], baseline)
