"""PatchGAN discriminator (pix2pix ``NLayerDiscriminator``) and its WGAN-GP critic variant.

Each output value scores one overlapping input patch; with ``n_layers=3`` the receptive
field is 70x70. The output is raw logits/scores (no sigmoid): the GAN losses apply
BCE-with-logits, least squares or the Wasserstein objective themselves. With instance norm,
ndf 64 and 3 input channels it has 2,764,737 parameters. For the depth stage the
discriminator is conditional: its input is the RGB image concatenated with the depth map.
"""
from __future__ import annotations

from torch import Tensor, nn

from depth_da_ros.models.layers import conv_bias, make_norm
from depth_da_ros.models.registry import NETWORKS

KERNEL = 4
PADDING = 1


@NETWORKS.register("patchgan")
class PatchGAN(nn.Module):
    def __init__(
        self, input_nc: int = 3, ndf: int = 64, n_layers: int = 3, norm: str = "instance"
    ) -> None:
        super().__init__()
        if n_layers < 1:
            raise ValueError(f"n_layers must be >= 1, got {n_layers}")
        bias = conv_bias(norm)
        layers: list[nn.Module] = [
            nn.Conv2d(input_nc, ndf, kernel_size=KERNEL, stride=2, padding=PADDING),
            nn.LeakyReLU(0.2, True),
        ]
        mult = 1
        for n in range(1, n_layers + 1):
            prev, mult = mult, min(2**n, 8)
            # The last of these keeps the resolution (stride 1), which widens the
            # receptive field to 70x70 at n_layers=3 without shrinking the score map.
            stride = 2 if n < n_layers else 1
            layers += [
                nn.Conv2d(
                    ndf * prev,
                    ndf * mult,
                    kernel_size=KERNEL,
                    stride=stride,
                    padding=PADDING,
                    bias=bias,
                ),
                make_norm(norm, ndf * mult, guarded=False),  # never runs at inference
                nn.LeakyReLU(0.2, True),
            ]
        layers.append(nn.Conv2d(ndf * mult, 1, kernel_size=KERNEL, stride=1, padding=PADDING))
        self.model = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)


@NETWORKS.register("patchgan_critic")
class PatchGANCritic(PatchGAN):
    """PatchGAN for WGAN-GP: same layers, batch norm refused, layer norm by default.

    The gradient penalty constrains the gradient of each sample's score with respect to
    that sample's input. Batch norm makes each score depend on the other samples in the
    batch, so the per-sample gradient the penalty measures is not the critic's gradient
    (Gulrajani et al. 2017, section 4). Layer norm (GroupNorm(1, C)) is the paper's
    recommended drop-in: per sample, and it rescales by the statistics of all channels
    together, so a near-constant channel is not blown up by its own tiny variance as
    instance norm would; "instance", "group" and "none" are accepted too.
    """

    def __init__(
        self, input_nc: int = 3, ndf: int = 64, n_layers: int = 3, norm: str = "layer"
    ) -> None:
        if norm == "batch":
            raise ValueError(
                "a WGAN-GP critic cannot use batch norm: the gradient penalty is computed per "
                "sample, and batch norm couples the samples of a batch; use 'layer' (default), "
                "'instance', 'group' or 'none'"
            )
        super().__init__(input_nc=input_nc, ndf=ndf, n_layers=n_layers, norm=norm)
