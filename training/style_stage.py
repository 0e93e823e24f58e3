"""Stage 2: the style adapter. CycleGAN between unpaired real (A) and synthetic (B) images:
``L = L_adv(A->B) + L_adv(B->A) + cycle * L_cyc + identity * L_idt`` (10 and 5), image pools
of 50 fakes, linear learning-rate decay. Loop order as the reference: identity, GAN and
cycle terms for the generators, then each discriminator on pooled, detached fakes.

Optional depth-aware cycle (ours): with the stage-1 depth network frozen, the cycled
synthetic image must keep its depth: ``depth_aware * L1(depth(G_AB(G_BA(y))), depth(y))``.
"""
from __future__ import annotations

import functools
import itertools
import logging
import random
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from depth_da_ros.checkpoint import depth_codec, load_checkpoint, load_network
from depth_da_ros.losses import cycle_loss, gradient_penalty, identity_loss, masked_l1_loss
from training.common import (deployment_camera, depth_validation_set, evaluate_depth, grid_rows, to_display,
                             training_camera)
from training.config import StyleStageConfig
from training.datasets import build_dataset
from training.engine import DistContext, Stage, set_requires_grad, unwrap

LOG = logging.getLogger("training.style")


class ImagePool:
    """CycleGAN's history of generated images: the discriminator sees a mix of current and
    past fakes, which damps oscillation. Uses ``random`` (its state is checkpointed)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.images: list[torch.Tensor] = []

    def query(self, images: torch.Tensor) -> torch.Tensor:
        if self.size == 0:
            return images
        out = []
        for image in images.detach():
            image = image.unsqueeze(0)
            if len(self.images) < self.size:
                self.images.append(image.cpu())
                out.append(image)
            elif random.uniform(0, 1) > 0.5:
                k = random.randint(0, self.size - 1)
                out.append(self.images[k].to(image.device))
                self.images[k] = image.cpu()
            else:
                out.append(image)
        return torch.cat(out, 0)


class UnpairedDataset(Dataset):
    """Sample i: real image i (cycling) with a synthetic image drawn from (seed, epoch, i), as
    CycleGAN's unaligned dataset but reproducible across workers and resumes."""

    def __init__(self, real: Dataset, synthetic: Dataset, seed: int) -> None:
        self.real, self.synthetic, self.seed, self.epoch = real, synthetic, seed, 0

    def __len__(self) -> int:
        return max(len(self.real), len(self.synthetic))

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        for d in (self.real, self.synthetic):
            if hasattr(d, "set_epoch"):
                d.set_epoch(epoch)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        rng = np.random.default_rng([self.seed, self.epoch, index])
        real = self.real[index % len(self.real)]
        synthetic = self.synthetic[int(rng.integers(len(self.synthetic)))]
        sample = {"real": real["image"], "synthetic": synthetic["image"]}
        if "depth" in synthetic:
            sample["synthetic_depth"] = synthetic["depth"]
        return sample


class StyleStage(Stage):
    name = "style"

    def __init__(self, cfg: StyleStageConfig, ctx: DistContext) -> None:
        super().__init__(cfg, ctx)
        self.height, self.width = cfg.model.input_size
        self.codec = cfg.model.codec
        d_spec = cfg.model.spec("style_discriminator", cfg.loss.gan)
        g_spec = cfg.model.spec("style")
        self.specs = {"style": g_spec, "style_inverse": g_spec,
                      "discriminator_real": d_spec, "discriminator_synthetic": d_spec}
        self.networks = {name: self.wrap(spec.build()) for name, spec in self.specs.items()}
        n = self.networks
        self.g_ab, self.g_ba = n["style"], n["style_inverse"]
        self.d_real, self.d_synthetic = n["discriminator_real"], n["discriminator_synthetic"]
        self.add_optimizer("generators", itertools.chain(self.g_ab.parameters(), self.g_ba.parameters()), cfg.optim_g)
        self.add_optimizer("discriminators", itertools.chain(self.d_real.parameters(), self.d_synthetic.parameters()),
                           cfg.optim_d)
        self.pool_real, self.pool_synthetic = ImagePool(cfg.loss.pool_size), ImagePool(cfg.loss.pool_size)
        self.depth_net = self._load_depth_network()
        self._baseline: dict[str, float] | None = None

    def _load_depth_network(self) -> torch.nn.Module | None:
        path = self.cfg.depth_checkpoint
        if not path:
            if self.cfg.loss.depth_aware > 0:
                raise ValueError("loss.depth_aware > 0 needs depth_checkpoint (a stage-1 checkpoint)")
            return None
        ckpt = load_checkpoint(path, map_location=self.ctx.device)
        if ckpt.get("stage") != "depth":
            raise ValueError(f"depth_checkpoint {path} is a {ckpt.get('stage')!r} checkpoint, not a depth one")
        trained = [int(v) for v in ckpt.get("input_size", ())]
        if trained and trained != [self.height, self.width]:  # the adapter's output feeds that network as is
            raise ValueError(f"depth_checkpoint {path} was trained at {'x'.join(map(str, trained))} but this style "
                             f"stage runs at {self.height}x{self.width} (model.height x model.width): set them equal")
        self.codec = depth_codec(ckpt)  # the frozen network's own depth range
        net = load_network(ckpt, "depth").to(self.ctx.device)
        set_requires_grad(net, False)
        LOG.info("frozen depth network from %s (step %s)", path, ckpt.get("step"))
        return net

    def train_dataset(self) -> Dataset:
        data, seed = self.cfg.data, self.cfg.run.seed
        real = build_dataset(data.real, self.height, self.width, augment=data.flip, seed=seed)
        self._deployment_camera()  # read with the data (a bad camera_info fails now, not at the first checkpoint)
        synthetic = build_dataset(data.synthetic, self.height, self.width, augment=data.flip, seed=seed + 1)
        if self.cfg.loss.depth_aware > 0 and "depth" not in synthetic[0]:
            raise ValueError("loss.depth_aware needs synthetic images with depth (data.synthetic has none)")
        return UnpairedDataset(real, synthetic, seed)

    def train_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, torch.Tensor]:
        cfg = self.cfg.loss
        real, synthetic = batch["real"], batch["synthetic"]
        discriminators = (self.d_real, self.d_synthetic)
        for d in discriminators:
            set_requires_grad(d, False)
        with self.autocast():
            fake_synthetic = self.g_ab(real)
            reconstructed_real = self.g_ba(fake_synthetic)
            fake_real = self.g_ba(synthetic)
            reconstructed_synthetic = self.g_ab(fake_real)
            losses = {}
            if cfg.identity > 0:  # a generator fed its own output domain should change nothing
                losses["g_identity"] = cfg.identity * (identity_loss(self.g_ab(synthetic), synthetic)
                                                       + identity_loss(self.g_ba(real), real))
            losses.update({
                "g_gan_real_to_synthetic": self.gan_loss(unwrap(self.d_synthetic)(fake_synthetic), True),
                "g_gan_synthetic_to_real": self.gan_loss(unwrap(self.d_real)(fake_real), True),
                "g_cycle": cfg.cycle * (cycle_loss(reconstructed_real, real)
                                        + cycle_loss(reconstructed_synthetic, synthetic)),
            })
            if self.depth_net is not None and cfg.depth_aware > 0:
                depth = batch["synthetic_depth"]
                target = torch.nan_to_num(self.codec.encode(depth), nan=1.0)
                losses["g_depth_cycle"] = cfg.depth_aware * masked_l1_loss(
                    self.depth_net(reconstructed_synthetic).float(), target, ~torch.isnan(depth))
        loss_g = sum(losses.values())
        losses["g"] = loss_g
        self.guard(losses, step)
        opt_g = self.optimizers["generators"]
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        for d in discriminators:
            set_requires_grad(d, True)

        pooled_synthetic = self.pool_synthetic.query(fake_synthetic.detach().float())
        pooled_real = self.pool_real.query(fake_real.detach().float())
        loss_d = {}
        for name, d, genuine, fake in (("d_synthetic", self.d_synthetic, synthetic, pooled_synthetic),
                                       ("d_real", self.d_real, real, pooled_real)):
            with self.autocast():
                value = self.gan_loss(d(genuine), True) + self.gan_loss(d(fake), False)
            if cfg.gan == "wgan-gp":
                value = value + gradient_penalty(unwrap(d), genuine, fake, cfg.gp_weight)
            else:
                value = 0.5 * value
            loss_d[name] = value
        losses.update(loss_d)
        self.guard(losses, step)
        opt_d = self.optimizers["discriminators"]
        opt_d.zero_grad(set_to_none=True)
        (loss_d["d_synthetic"] + loss_d["d_real"]).backward()
        opt_d.step()
        return {k: v.detach() for k, v in losses.items()}

    @functools.cached_property
    def _val_set(self) -> Dataset | None:
        """Real frames with depth, built once; None when there is nothing to measure."""
        if self.depth_net is None:
            return None
        return depth_validation_set(self.cfg.data.val, self.height, self.width, self.cfg.run.seed, "the adapter")

    def validation_samples(self) -> int:
        # Adapted and (once) unadapted: two passes over the set at the first validation.
        return 0 if self._val_set is None else 2 * len(self._val_set)

    def validate(self) -> dict[str, float] | None:
        if self._val_set is None:
            return None
        g_ab = unwrap(self.g_ab)
        g_ab.eval()
        try:
            if self._baseline is None:  # once: the same depth network without adaptation
                self._baseline = evaluate_depth(self._depth_metres, self._val_set, self.cfg.val, self.ctx.device)
                LOG.info("without adaptation: %s", " ".join(f"{k}={v:.4f}" for k, v in self._baseline.items()))
            adapted = evaluate_depth(lambda x: self._depth_metres(g_ab(x)), self._val_set, self.cfg.val,
                                     self.ctx.device)
        finally:
            g_ab.train()
        if not adapted:  # no frame had ground truth (evaluate_depth warned)
            return None
        return {**adapted, **{f"no_adaptation_{k}": v for k, v in self._baseline.items()}}

    def _depth_metres(self, image: torch.Tensor) -> torch.Tensor:
        return self.codec.decode(self.depth_net(image).float())

    @torch.no_grad()
    def image_grids(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        g_ab, g_ba = unwrap(self.g_ab), unwrap(self.g_ba)
        count = self.cfg.val.image_count
        adapted = g_ab(batch["real"])
        to_real = g_ba(batch["synthetic"])
        return {
            "style/real|adapted|reconstructed": grid_rows(to_display(batch["real"]), to_display(adapted),
                                                          to_display(g_ba(adapted)), count=count),
            "style/synthetic|to_real|reconstructed": grid_rows(to_display(batch["synthetic"]), to_display(to_real),
                                                               to_display(g_ab(to_real)), count=count),
        }

    def deploy(self) -> list[str]:
        return ["style"]

    def checkpoint_extras(self) -> dict[str, Any]:
        return {"input_size": [self.height, self.width], "depth_codec": self.codec.to_dict(),
                "training_camera": training_camera(self.cfg.data.synthetic, self.height, self.width),
                "deployment_camera": self._deployment_camera(),
                "depth_checkpoint": self.cfg.depth_checkpoint}

    def _deployment_camera(self) -> dict | None:
        """data.real's camera (a rosbag's camera_info), read once: checkpoints are written many times."""
        if not hasattr(self, "_deployment"):
            self._deployment = deployment_camera(self.cfg.data.real)
        return self._deployment

    def extra_state(self) -> dict[str, Any]:
        return {"pool_real": self.pool_real.images, "pool_synthetic": self.pool_synthetic.images}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.pool_real.images = list(state.get("pool_real", []))
        self.pool_synthetic.images = list(state.get("pool_synthetic", []))
