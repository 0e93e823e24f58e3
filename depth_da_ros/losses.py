"""GAN objectives, the WGAN-GP gradient penalty and the reconstruction losses.

Every GAN loss has the pix2pix ``GANLoss`` interface, ``loss(prediction, target_is_real)``
on raw discriminator outputs (logits/scores, any shape, e.g. a PatchGAN map), so the
training stages switch objective by name:

* discriminator step: ``loss(D(real), True) + loss(D(fake.detach()), False)``
* generator step: ``loss(D(fake), True)``

For ``wgan`` this gives the critic loss ``-mean D(real) + mean D(fake)`` and the generator
loss ``-mean D(fake)``; add ``gradient_penalty`` to the critic loss.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from depth_da_ros.registry import Registry

GAN_LOSSES: Registry[type[nn.Module]] = Registry("GAN loss")


@GAN_LOSSES.register("vanilla")
class VanillaGANLoss(nn.Module):
    """Binary cross-entropy on logits (the original GAN and pix2pix objective)."""

    def forward(self, prediction: Tensor, target_is_real: bool) -> Tensor:
        target = torch.full_like(prediction, 1.0 if target_is_real else 0.0)
        return F.binary_cross_entropy_with_logits(prediction, target)


@GAN_LOSSES.register("lsgan")
class LSGANLoss(nn.Module):
    """Least squares to 1 (real) / 0 (fake), CycleGAN's default (Mao et al. 2017)."""

    def forward(self, prediction: Tensor, target_is_real: bool) -> Tensor:
        target = torch.full_like(prediction, 1.0 if target_is_real else 0.0)
        return F.mse_loss(prediction, target)


@GAN_LOSSES.register("wgan")
class WGANLoss(nn.Module):
    """Wasserstein objective: -mean score for "real" targets, +mean for "fake" ones."""

    def forward(self, prediction: Tensor, target_is_real: bool) -> Tensor:
        return -prediction.mean() if target_is_real else prediction.mean()


def get_gan_loss(name: str) -> nn.Module:
    """A fresh GAN loss by name; unknown names list the known ones."""
    return GAN_LOSSES.get(name)()


def gradient_penalty(
    critic: nn.Module, real: Tensor, fake: Tensor, weight: float = 10.0
) -> Tensor:
    """WGAN-GP penalty ``weight * mean((||grad_x D(x)||_2 - 1)^2)`` (Gulrajani et al. 2017).

    ``x`` are per-sample random interpolates between ``real`` and ``fake``; for a
    conditional critic pass the concatenated (condition, target) tensors, so the condition
    (equal in both) stays fixed and only the target is interpolated. The gradient is
    taken with ``create_graph=True`` so the penalty back-propagates into the critic's
    parameters. For a PatchGAN the score map is summed, as pix2pix does: the gradient
    of the sum is the sum of the patch gradients.
    """
    if real.shape != fake.shape:
        raise ValueError(
            "real and fake must have the same shape, got "
            f"{tuple(real.shape)} and {tuple(fake.shape)}"
        )
    # One mixing factor per sample, broadcast over all other dimensions.
    alpha_shape = (real.shape[0],) + (1,) * (real.dim() - 1)
    alpha = torch.rand(alpha_shape, device=real.device, dtype=real.dtype)
    interpolates = (alpha * real.detach() + (1 - alpha) * fake.detach()).requires_grad_(True)
    scores = critic(interpolates)
    (grad,) = torch.autograd.grad(
        outputs=scores,
        inputs=interpolates,
        grad_outputs=torch.ones_like(scores),
        create_graph=True,
    )
    grad_norm = torch.linalg.vector_norm(grad.flatten(1), ord=2, dim=1)
    return weight * ((grad_norm - 1.0) ** 2).mean()


def l1_loss(prediction: Tensor, target: Tensor) -> Tensor:
    return F.l1_loss(prediction, target)


def cycle_loss(reconstructed: Tensor, original: Tensor) -> Tensor:
    """CycleGAN cycle consistency, L1 between F(G(x)) and x (weighted 10 by the stage)."""
    return F.l1_loss(reconstructed, original)


def identity_loss(same: Tensor, original: Tensor) -> Tensor:
    """CycleGAN identity term, L1 between G(y) and y for y already in G's output domain."""
    return F.l1_loss(same, original)


def masked_l1_loss(prediction: Tensor, target: Tensor, mask: Tensor | None = None) -> Tensor:
    """Mean absolute error over the pixels where ``mask`` is true (all pixels without one).

    ``mask`` (bool) broadcasts against ``prediction``, e.g. B x 1 x H x W valid-depth
    pixels; ``target`` may hold NaN or inf where the mask is false. With no valid pixel
    the loss is a zero that still belongs to the graph, so a batch of all-invalid crops
    neither divides by zero nor breaks ``backward()``.
    """
    if mask is None:
        return F.l1_loss(prediction, target)
    mask = mask.to(torch.bool).expand_as(prediction)
    # Substitute the prediction itself for invalid targets rather than multiplying by the
    # mask: 0 * NaN is NaN, in the value and in the gradient.
    safe_target = torch.where(mask, target, prediction.detach())
    total = (prediction - safe_target).abs().sum()
    return total / mask.sum().clamp(min=1)
