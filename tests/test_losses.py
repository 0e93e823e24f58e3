"""GAN losses on known logits, and the gradient penalty against closed-form critics."""
from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor, nn

from depth_da_ros.losses import (
    GAN_LOSSES,
    cycle_loss,
    get_gan_loss,
    gradient_penalty,
    identity_loss,
    l1_loss,
    masked_l1_loss,
)
from depth_da_ros.models import build_network


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


class LinearCritic(nn.Module):
    """D(x) = sum(w * x) per sample: grad_x D = w everywhere."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.randn(shape, dtype=torch.float64))

    def forward(self, x: Tensor) -> Tensor:
        return (self.w * x).flatten(1).sum(1)


class QuadraticCritic(nn.Module):
    """D(x) = 0.5 * sum(x^2) per sample: grad_x D = x."""

    def forward(self, x: Tensor) -> Tensor:
        return 0.5 * (x**2).flatten(1).sum(1)


# --- gradient penalty -----------------------------------------------------------------


def test_penalty_of_linear_critic_is_exact_for_any_interpolation() -> None:
    critic = LinearCritic((3, 4, 5))
    real = torch.randn(6, 3, 4, 5, dtype=torch.float64)
    fake = torch.randn(6, 3, 4, 5, dtype=torch.float64)
    expected = 10.0 * (critic.w.detach().norm() - 1) ** 2
    for _ in range(3):  # new random interpolates each call, same penalty
        torch.testing.assert_close(gradient_penalty(critic, real, fake), expected)
    torch.testing.assert_close(gradient_penalty(critic, real, fake, weight=2.5), expected / 4)


def test_penalty_of_quadratic_critic_with_real_equal_fake() -> None:
    x = torch.randn(4, 2, 8, 8, dtype=torch.float64)
    norms = x.flatten(1).norm(dim=1)
    expected = 10.0 * ((norms - 1) ** 2).mean()
    torch.testing.assert_close(gradient_penalty(QuadraticCritic(), x, x.clone()), expected)


def test_penalty_is_differentiable_wrt_critic_parameters() -> None:
    critic = LinearCritic((2, 3, 3))
    real = torch.randn(5, 2, 3, 3, dtype=torch.float64)
    fake = torch.randn(5, 2, 3, 3, dtype=torch.float64)
    gradient_penalty(critic, real, fake, weight=10.0).backward()
    # d/dw of 10 (||w|| - 1)^2 = 20 (||w|| - 1) w / ||w||
    w = critic.w.detach()
    torch.testing.assert_close(critic.w.grad, 20.0 * (w.norm() - 1) * w / w.norm())


def test_penalty_does_not_backpropagate_into_real_or_fake() -> None:
    critic = LinearCritic((2, 3, 3))
    fake = torch.randn(5, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    real = torch.randn(5, 2, 3, 3, dtype=torch.float64)
    gradient_penalty(critic, real, fake).backward()
    assert fake.grad is None  # the generator is not updated by the critic's penalty


def test_penalty_on_conditional_patch_critic() -> None:
    critic = build_network("patchgan_critic", input_nc=4, ndf=8)
    image = torch.rand(2, 3, 64, 64) * 2 - 1
    real = torch.cat([image, torch.rand(2, 1, 64, 64) * 2 - 1], 1)
    fake = torch.cat([image, torch.rand(2, 1, 64, 64) * 2 - 1], 1)
    penalty = gradient_penalty(critic, real, fake)
    assert penalty.ndim == 0 and torch.isfinite(penalty) and penalty > 0
    penalty.backward()
    for name, p in critic.named_parameters():
        if p is critic.model[-1].bias:  # a constant shift of D leaves grad_x D unchanged
            assert p.grad is None
        else:
            assert p.grad is not None and torch.isfinite(p.grad).all(), name


def test_penalty_rejects_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match="same shape"):
        gradient_penalty(QuadraticCritic(), torch.zeros(2, 3), torch.zeros(2, 4))


# --- GAN losses -----------------------------------------------------------------------


def test_registered_gan_losses() -> None:
    assert GAN_LOSSES.names() == ["lsgan", "vanilla", "wgan"]


def test_vanilla_loss_values() -> None:
    loss = get_gan_loss("vanilla")
    zero = torch.zeros(2, 1, 4, 4)
    torch.testing.assert_close(loss(zero, True), torch.tensor(math.log(2)))
    torch.testing.assert_close(loss(zero, False), torch.tensor(math.log(2)))
    logit = torch.full((3,), 2.0)
    torch.testing.assert_close(loss(logit, True), torch.tensor(math.log1p(math.exp(-2.0))))
    torch.testing.assert_close(loss(logit, False), torch.tensor(math.log1p(math.exp(2.0))))


def test_lsgan_loss_values() -> None:
    loss = get_gan_loss("lsgan")
    pred = torch.tensor([0.0, 1.0, 0.5, 2.0])
    torch.testing.assert_close(loss(pred, True), torch.tensor((1 + 0 + 0.25 + 1) / 4))
    torch.testing.assert_close(loss(pred, False), torch.tensor((0 + 1 + 0.25 + 4) / 4))


def test_wgan_loss_signs() -> None:
    loss = get_gan_loss("wgan")
    real_scores, fake_scores = torch.tensor([1.0, 3.0]), torch.tensor([-1.0, 0.0])
    torch.testing.assert_close(loss(real_scores, True), torch.tensor(-2.0))
    torch.testing.assert_close(loss(fake_scores, False), torch.tensor(-0.5))
    # critic: -mean real + mean fake; generator: -mean fake
    critic_loss = loss(real_scores, True) + loss(fake_scores, False)
    torch.testing.assert_close(critic_loss, torch.tensor(-2.5))
    torch.testing.assert_close(loss(fake_scores, True), torch.tensor(0.5))


def test_unknown_gan_loss_lists_known_ones() -> None:
    with pytest.raises(KeyError, match="unknown GAN loss 'hinge'; known: lsgan, vanilla, wgan"):
        get_gan_loss("hinge")


# --- reconstruction losses ------------------------------------------------------------


def test_l1_cycle_identity() -> None:
    a, b = torch.tensor([0.0, 1.0, -1.0]), torch.tensor([1.0, 1.0, 1.0])
    for fn in (l1_loss, cycle_loss, identity_loss):
        torch.testing.assert_close(fn(a, b), torch.tensor(1.0))


def test_masked_l1_ignores_invalid_targets() -> None:
    prediction = torch.zeros(1, 1, 2, 2, requires_grad=True)
    target = torch.tensor([[[[1.0, float("nan")], [3.0, float("inf")]]]])
    loss = masked_l1_loss(prediction, target, torch.isfinite(target))
    torch.testing.assert_close(loss, torch.tensor(2.0))
    loss.backward()
    torch.testing.assert_close(prediction.grad, torch.tensor([[[[-0.5, 0.0], [-0.5, 0.0]]]]))


def test_masked_l1_broadcasts_mask_and_defaults_to_plain_l1() -> None:
    prediction = torch.zeros(2, 3, 2, 2)
    target = torch.ones(2, 3, 2, 2)
    target[:, :, 0, 0] = 5.0
    mask = torch.ones(2, 1, 2, 2, dtype=torch.bool)
    mask[:, :, 0, 0] = False
    torch.testing.assert_close(masked_l1_loss(prediction, target, mask), torch.tensor(1.0))
    torch.testing.assert_close(masked_l1_loss(prediction, target), torch.tensor(2.0))


def test_masked_l1_with_no_valid_pixel_is_zero_and_differentiable() -> None:
    prediction = torch.zeros(1, 1, 2, 2, requires_grad=True)
    target = torch.full((1, 1, 2, 2), float("nan"))
    loss = masked_l1_loss(prediction, target, torch.zeros(1, 1, 2, 2, dtype=torch.bool))
    assert loss.item() == 0.0
    loss.backward()
    assert torch.equal(prediction.grad, torch.zeros(1, 1, 2, 2))
