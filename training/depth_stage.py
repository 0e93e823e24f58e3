"""Stage 1: synthetic RGB -> depth. U-Net generator, conditional PatchGAN critic,
``L = lambda * L1 + (1 - lambda) * L_adv`` with a vanilla, LSGAN or WGAN-GP adversary."""
from __future__ import annotations

import logging
from typing import Any

import torch
from torch.utils.data import Dataset

from depth_da_ros.losses import gradient_penalty, masked_l1_loss
from training.common import depth_display, evaluate_depth, grid_rows, to_display, training_camera
from training.config import DepthStageConfig
from training.datasets import build_dataset
from training.engine import DistContext, Stage, set_requires_grad, unwrap

LOG = logging.getLogger("training.depth")


def mask_missing(depth: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Encoded depth (N, 1, H, W) with the pixels that have no ground truth (``valid`` False) set
    to 0, the middle of the codec's [-1, 1] range. The discriminator's real and generated pairs
    are both masked with the ground truth's ``valid``, so a missing measurement carries no
    information; dense ground truth (all valid) passes unchanged."""
    return torch.where(valid, depth, torch.zeros((), dtype=depth.dtype, device=depth.device))


class DepthStage(Stage):
    name = "depth"

    def __init__(self, cfg: DepthStageConfig, ctx: DistContext) -> None:
        super().__init__(cfg, ctx)
        self.height, self.width = cfg.model.input_size
        self.codec = cfg.model.codec
        d_spec = cfg.model.spec("depth_discriminator", cfg.loss.gan)
        self.specs = {"depth": cfg.model.spec("depth"), "depth_discriminator": d_spec}
        self.generator = self.wrap(self.specs["depth"].build())
        self.discriminator = self.wrap(d_spec.build())
        self.networks = {"depth": self.generator, "depth_discriminator": self.discriminator}
        self.add_optimizer("depth", self.generator.parameters(), cfg.optim_g)
        self.add_optimizer("depth_discriminator", self.discriminator.parameters(), cfg.optim_d)
        self._val_set: Dataset | None = None

    def train_dataset(self) -> Dataset:
        dataset = build_dataset(self.cfg.data.train, self.height, self.width, augment=self.cfg.data.flip,
                                seed=self.cfg.run.seed, photometric=self.cfg.data.photometric)
        if "depth" not in dataset[0]:
            raise ValueError(f"the depth stage needs images with depth; data.train ({self.cfg.data.train.kind}) has none")
        return dataset

    @property
    def batches_per_step(self) -> int:
        # WGAN-GP (Gulrajani et al. 2017, Algorithm 1) samples fresh data for every critic update.
        return self.cfg.loss.n_critic

    def train_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, torch.Tensor]:
        cfg = self.cfg.loss
        G, D, opt_g, opt_d = self.generator, self.discriminator, self.optimizers["depth"], self.optimizers[
            "depth_discriminator"]
        losses: dict[str, torch.Tensor] = {}
        for i in range(cfg.n_critic):
            if i > 0:
                batch = self.next_batch()  # a fresh batch for each critic update
            image, depth = batch["image"], batch["depth"]
            valid = ~torch.isnan(depth)  # NaN = no measurement; inf (sky) is a valid "far" target
            target = torch.nan_to_num(self.codec.encode(depth), nan=1.0)
            last = i == cfg.n_critic - 1  # the generator then steps on this batch: keep its graph
            with torch.set_grad_enabled(last), self.autocast():
                fake = G(image)
            # Critic / discriminator: real pairs (image, depth) against generated pairs. Pixels without
            # ground truth hold the same value in both, so the critic judges measured pixels only (sparse
            # lidar depth would otherwise show up as 80 m speckles in every "real" pair).
            real_pair = torch.cat([image, mask_missing(target, valid)], 1)
            fake_pair = torch.cat([image, mask_missing(fake.detach().float(), valid)], 1)
            with self.autocast():
                loss_d = self.gan_loss(D(real_pair), True) + self.gan_loss(D(fake_pair), False)
            if cfg.gan == "wgan-gp":
                # Through the bare module: DDP does not support double backward; the penalty's
                # gradients still land in the same .grad and are all-reduced with the rest.
                losses["d_gp"] = gradient_penalty(unwrap(D), real_pair, fake_pair, cfg.gp_weight)
                loss_d = loss_d + losses["d_gp"]
            else:
                loss_d = 0.5 * loss_d  # pix2pix: slows D relative to G
            losses["d"] = loss_d
            self.guard(losses, step)
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            opt_d.step()

        # Generator, on the last critic batch: the critic is frozen (no gradients, no update) while G steps.
        set_requires_grad(D, False)
        with self.autocast():
            adv = self.gan_loss(unwrap(D)(torch.cat([image, mask_missing(fake, valid)], 1)), True)
        l1 = masked_l1_loss(fake.float(), target, valid)
        loss_g = cfg.lambda_l1 * l1 + (1.0 - cfg.lambda_l1) * adv
        losses.update(g=loss_g, g_l1=l1, g_adv=adv)
        self.guard(losses, step)
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        set_requires_grad(D, True)
        return {k: v.detach() for k, v in losses.items()}

    def predict_metres(self, image: torch.Tensor) -> torch.Tensor:
        with self.autocast():
            return self.codec.decode(unwrap(self.generator)(image).float())

    def validation_set(self) -> Dataset:
        if self._val_set is None:
            self._val_set = build_dataset(self.cfg.data.val, self.height, self.width, augment=False,
                                          seed=self.cfg.run.seed)
            if not getattr(self._val_set, "has_depth", True):
                raise ValueError(f"data.val ({self.cfg.data.val.kind}) has no depth: the depth stage validates "
                                 "against ground truth")
        return self._val_set

    def validation_samples(self) -> int:
        return len(self.validation_set())

    def validate(self) -> dict[str, float] | None:
        generator = unwrap(self.generator)
        generator.eval()  # the inference contract: batch norm on running statistics
        try:
            return evaluate_depth(self.predict_metres, self.validation_set(), self.cfg.val, self.ctx.device)
        finally:
            generator.train()

    @torch.no_grad()
    def image_grids(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        generator = unwrap(self.generator)
        generator.eval()
        try:
            pred = self.predict_metres(batch["image"])
        finally:
            generator.train()
        max_depth = self.codec.max_depth
        grid = grid_rows(to_display(batch["image"]), depth_display(pred, max_depth),
                         depth_display(batch["depth"], max_depth), count=self.cfg.val.image_count)
        return {"depth/input|prediction|ground_truth": grid}

    def deploy(self) -> list[str]:
        return ["depth"]

    def checkpoint_extras(self) -> dict[str, Any]:
        return {"input_size": [self.height, self.width], "depth_codec": self.codec.to_dict(),
                "training_camera": training_camera(self.cfg.data.train, self.height, self.width)}
