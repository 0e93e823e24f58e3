"""Stage 3 (optional): distil adapter + depth network into one student that reads camera frames.

The teacher is the pipeline the paper deploys: the style adapter ``G_AB`` (real -> synthetic,
a stage-2 checkpoint) followed by the frozen stage-1 depth network. The student is a depth
network of the preset (the U-Net) and learns, on the unlabelled real-domain frames the adapter
was trained on, to reproduce the teacher's encoded depth directly:

    L = teacher * L1(student(x), depth(G_AB(x)))  +  synthetic * L1_valid(student(y), encode(d_y))

with x a real frame, y a synthetic frame with ground truth d_y (``loss.synthetic`` 0 = off),
both in the depth codec's [-1, 1] space (Hinton et al. 2015's distillation with the
teacher's output as a regression target). At inference only the student runs: one network
instead of two, no adapter. The student starts from the teacher's depth weights when the
architectures match (``init_from_teacher``), so it only has to learn what the adapter did.

The checkpoint deploys network ``depth`` like a stage-1 checkpoint (``training/export.py
--depth`` takes it), with the teacher's depth codec and training camera (the metric scale
is the teacher's), the real domain's camera as ``deployment_camera``, and the two teacher
checkpoints with their SHA-256.
"""
from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from depth_da_ros.checkpoint import (CheckpointError, depth_codec, file_sha256, load_checkpoint, load_network,
                                     resolve_checkpoint)
from depth_da_ros.losses import masked_l1_loss
from training.common import (deployment_camera, depth_display, depth_validation_set, evaluate_depth, grid_rows,
                             to_display)
from training.config import DistillStageConfig
from training.datasets import build_dataset
from training.engine import DistContext, Stage, set_requires_grad, unwrap
from training.style_stage import UnpairedDataset

LOG = logging.getLogger("training.distill")


def _load_teacher(key: str, path: str | Path) -> tuple[Path, dict]:
    """(file, payload) of a teacher checkpoint or run folder (its best.pt, else last.pt); a
    ValueError names ``key`` when it cannot be read."""
    try:
        resolved = resolve_checkpoint(path)
        return resolved, load_checkpoint(resolved, map_location="cpu")
    except CheckpointError as exc:
        raise ValueError(f"{key}: {exc}") from None


class RealFrames(Dataset):
    """The real-domain frames alone, as ``{"real": image}`` samples (no synthetic half to read)."""

    def __init__(self, real: Dataset) -> None:
        self.real = real

    def __len__(self) -> int:
        return len(self.real)

    def set_epoch(self, epoch: int) -> None:
        if hasattr(self.real, "set_epoch"):
            self.real.set_epoch(epoch)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {"real": self.real[index]["image"]}


class DistillStage(Stage):
    name = "distill"

    def __init__(self, cfg: DistillStageConfig, ctx: DistContext) -> None:
        super().__init__(cfg, ctx)
        self.height, self.width = cfg.model.input_size
        style_ckpt, depth_ckpt, self.teacher_paths = self._teacher_checkpoints()
        teacher = self._describe(depth_ckpt)
        self.codec = depth_codec(depth_ckpt)  # the student predicts in the teacher's encoding
        if self.codec != cfg.model.codec:
            raise ValueError(f"model.depth_encoding / preset range give {cfg.model.codec}, but the teacher's depth "
                             f"network uses {self.codec} ({teacher}): set them equal")
        for name, ckpt in (("style", style_ckpt), ("depth", depth_ckpt)):
            # The teachers run at the student's size: the size they were trained at (and a stride they take).
            if [int(v) for v in ckpt.get("input_size", ())] != [self.height, self.width]:
                raise ValueError(f"model.height / model.width (or model.preset): the student runs at {self.height}x"
                                 f"{self.width}, but the teacher's {name} network was trained at "
                                 f"{'x'.join(map(str, ckpt.get('input_size', ['?'])))} ({teacher}): set them equal")
        self._teacher_camera = depth_ckpt.get("training_camera")
        device = ctx.device
        self.teacher_style = load_network(style_ckpt, "style").to(device).eval()
        self.teacher_depth = load_network(depth_ckpt, "depth").to(device).eval()
        for net in (self.teacher_style, self.teacher_depth):
            set_requires_grad(net, False)
        spec = cfg.model.spec("depth")
        student = spec.build()
        teacher_prior = depth_ckpt["networks"]["depth"]["spec"]["kwargs"].get("ground_prior")
        if cfg.init_from_teacher and spec.kwargs.get("ground_prior") != teacher_prior:
            # Same parameters either way (the prior is a constant bias), so load_state_dict would not notice.
            raise ValueError(f"init_from_teacher: the student's ground prior ({spec.kwargs.get('ground_prior')}) is "
                             f"not the teacher's ({teacher_prior}, {teacher}): set model.ground_prior to the "
                             "teacher's camera height (0 = none)")
        if cfg.init_from_teacher:
            try:
                student.load_state_dict(self.teacher_depth.state_dict())
            except RuntimeError as exc:
                raise ValueError(f"init_from_teacher: the student ({spec.name} {spec.kwargs}) does not have the "
                                 f"architecture of the teacher's depth network ({teacher}): set model.preset and "
                                 "model.depth_kwargs to the teacher's, or init_from_teacher=false") from exc
        self.specs = {"depth": spec}
        self.student = self.wrap(student)
        self.networks = {"depth": self.student}
        self.add_optimizer("depth", self.student.parameters(), cfg.optim_g)
        self._teacher_metrics: dict[str, float] | None = None

    def _describe(self, depth_ckpt: dict) -> str:
        """'file, preset P, unet {...}, at HxW': what to match the student's config to."""
        spec = depth_ckpt["networks"]["depth"]["spec"]
        size = "x".join(map(str, depth_ckpt.get("input_size", ["?"])))
        return (f"{self.teacher_paths['depth']['file']}: preset {depth_ckpt.get('preset')!r}, {spec['name']} "
                f"{spec['kwargs']}, at {size}")

    def _teacher_checkpoints(self) -> tuple[dict, dict, dict[str, dict[str, str]]]:
        """The style and depth checkpoints of the teacher and their {file, sha256}; ValueError naming
        the key when one is missing, unreadable or of the wrong stage."""
        cfg = self.cfg
        if not cfg.teacher_style:
            raise ValueError("teacher_style is required: the stage-2 (style) checkpoint of the adapter to distil")
        style_path, style = _load_teacher("teacher_style", cfg.teacher_style)
        if style.get("stage") != "style":
            raise ValueError(f"teacher_style {style_path} is a {style.get('stage')!r} checkpoint, not a style one")
        recorded = style.get("depth_checkpoint") or ""
        if not (cfg.teacher_depth or recorded):
            raise ValueError(f"teacher_depth is empty and {style_path} records no depth_checkpoint: "
                             "set teacher_depth to the stage-1 checkpoint the adapter feeds")
        key = "teacher_depth" if cfg.teacher_depth else f"the depth_checkpoint recorded in {style_path}"
        depth_path, depth = _load_teacher(key, cfg.teacher_depth or recorded)
        if depth.get("stage") != "depth":
            raise ValueError(f"teacher_depth {depth_path} is a {depth.get('stage')!r} checkpoint, not a depth one")
        return style, depth, {name: {"file": str(path), "sha256": file_sha256(path)}
                              for name, path in (("style", style_path), ("depth", depth_path))}

    def train_dataset(self) -> Dataset:
        data, seed = self.cfg.data, self.cfg.run.seed
        real = build_dataset(data.real, self.height, self.width, augment=data.flip, seed=seed)
        self._deployment_camera()
        if self.cfg.loss.synthetic <= 0:
            return RealFrames(real)
        synthetic = build_dataset(data.synthetic, self.height, self.width, augment=data.flip, seed=seed + 1)
        if "depth" not in synthetic[0]:
            raise ValueError(f"loss.synthetic > 0 needs synthetic images with depth; data.synthetic "
                             f"({data.synthetic.kind}) has none")
        return UnpairedDataset(real, synthetic, seed)

    @torch.no_grad()
    def teacher(self, image: torch.Tensor) -> torch.Tensor:
        """Encoded depth [N, 1, H, W] in [-1, 1] of the teacher pipeline on real images [N, 3, H, W]."""
        with self.autocast():
            return self.teacher_depth(self.teacher_style(image)).float()

    def train_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, torch.Tensor]:
        cfg = self.cfg.loss
        real = batch["real"]
        target = self.teacher(real)
        with self.autocast():
            student_real = self.student(real)
        losses = {"teacher": masked_l1_loss(student_real.float(), target)}
        loss = cfg.teacher * losses["teacher"]
        if cfg.synthetic > 0:
            depth = batch["synthetic_depth"]
            with self.autocast():
                student_synthetic = self.student(batch["synthetic"])
            losses["synthetic"] = masked_l1_loss(student_synthetic.float(),
                                                 torch.nan_to_num(self.codec.encode(depth), nan=1.0),
                                                 ~torch.isnan(depth))
            loss = loss + cfg.synthetic * losses["synthetic"]
        losses["g"] = loss
        self.guard(losses, step)
        opt = self.optimizers["depth"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return {k: v.detach() for k, v in losses.items()}

    def _metres(self, network: torch.nn.Module, image: torch.Tensor) -> torch.Tensor:
        with self.autocast():
            return self.codec.decode(network(image).float())

    @functools.cached_property
    def _val_set(self) -> Dataset | None:
        """Real-domain frames with depth, built once; None when they have none."""
        return depth_validation_set(self.cfg.data.val, self.height, self.width, self.cfg.run.seed, "the student")

    def validation_samples(self) -> int:
        val = self._val_set
        return 0 if val is None else len(val) * (2 if self._teacher_metrics is None else 1)

    def validate(self) -> dict[str, float] | None:
        if self._val_set is None:
            return None
        student = unwrap(self.student)
        student.eval()
        try:
            if self._teacher_metrics is None:  # once: what the student is distilled from
                self._teacher_metrics = evaluate_depth(
                    lambda x: self._metres(self.teacher_depth, self.teacher_style(x)), self._val_set,
                    self.cfg.val, self.ctx.device)
                LOG.info("teacher (adapter + depth): %s",
                         " ".join(f"{k}={v:.4f}" for k, v in self._teacher_metrics.items()))
            metrics = evaluate_depth(lambda x: self._metres(student, x), self._val_set, self.cfg.val,
                                     self.ctx.device)
        finally:
            student.train()
        return {**metrics, **{f"teacher_{k}": v for k, v in self._teacher_metrics.items()}}

    @torch.no_grad()
    def image_grids(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        student = unwrap(self.student)
        student.eval()
        try:
            real = batch["real"]
            max_depth = self.codec.max_depth
            grid = grid_rows(to_display(real), depth_display(self._metres(student, real), max_depth),
                             depth_display(self.codec.decode(self.teacher(real)), max_depth),
                             count=self.cfg.val.image_count)
        finally:
            student.train()
        return {"distill/real|student|teacher": grid}

    def deploy(self) -> list[str]:
        return ["depth"]

    def checkpoint_extras(self) -> dict[str, Any]:
        return {"input_size": [self.height, self.width], "depth_codec": self.codec.to_dict(),
                "training_camera": self._teacher_camera, "deployment_camera": self._deployment_camera(),
                "teacher": self.teacher_paths}

    def extra_state(self) -> dict[str, Any]:
        return {"teacher": self.teacher_paths, "synthetic_data": self.cfg.loss.synthetic > 0}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        """On resume: the teachers must be the files the run started with, and the training data
        the same (loss.synthetic switched on or off changes the samples and their order)."""
        for name, record in state.get("teacher", {}).items():
            now = self.teacher_paths[name]
            if record["sha256"] != now["sha256"]:
                raise ValueError(f"--resume: the teacher's {name} checkpoint {now['file']} is not the file this run "
                                 f"started with (sha256 {record['sha256'][:12]}..., now {now['sha256'][:12]}...); "
                                 "start a new run for another teacher")
        if "synthetic_data" in state and state["synthetic_data"] != (self.cfg.loss.synthetic > 0):
            raise ValueError("--resume cannot switch loss.synthetic between 0 and > 0: it changes the training data "
                             "and its order; start a new run for that")

    def _deployment_camera(self) -> dict | None:
        if not hasattr(self, "_deployment"):
            self._deployment = deployment_camera(self.cfg.data.real)
        return self._deployment
