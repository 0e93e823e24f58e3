"""Networks: exact parameter counts, preset forward/backward, size checks, registry, contract."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from depth_da_ros.models import (
    NETWORKS,
    PRESETS,
    NetworkSpec,
    build_network,
    conv_bias,
    count_parameters,
    get_preset,
    make_norm,
)
from depth_da_ros.normalization import DepthCodec, image_to_network, network_to_image


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


# --- exact parameter counts of the published architectures ---------------------------


def test_resnet_9_blocks_parameter_count() -> None:
    net = build_network(
        "resnet_generator", input_nc=3, output_nc=3, ngf=64, n_blocks=9, norm="instance"
    )
    assert count_parameters(net) == 11_378_179


def test_unet_256_parameter_count() -> None:
    net = build_network("unet", input_nc=3, output_nc=1, num_downs=8, ngf=64, norm="batch")
    assert count_parameters(net) == 54_409_857


def test_patchgan_parameter_count() -> None:
    net = build_network("patchgan", input_nc=3, ndf=64, n_layers=3, norm="instance")
    assert count_parameters(net) == 2_764_737


def test_paper_preset_uses_the_published_networks() -> None:
    paper = get_preset("paper")
    assert count_parameters(paper.style.build()) == 11_378_179
    assert count_parameters(paper.depth.build()) == 54_409_857
    assert count_parameters(paper.style_discriminator.build()) == 2_764_737
    assert (paper.input_height, paper.input_width, paper.max_depth) == (256, 1024, 80.0)


# --- every preset network trains at its preset size ----------------------------------

# (preset, network field, input channels, output channels or None for a score map)
CASES = [
    (preset, field, in_nc, out_nc)
    for preset in ("lite", "paper")
    for field, in_nc, out_nc in (
        ("style", 3, 3),
        ("depth", 3, 1),
        ("depth_discriminator", 4, None),
        ("style_discriminator", 3, None),
    )
]


@pytest.mark.parametrize(("preset_name", "field", "in_nc", "out_nc"), CASES)
def test_preset_network_forward_backward(
    preset_name: str, field: str, in_nc: int, out_nc: int | None
) -> None:
    preset = get_preset(preset_name)
    net = getattr(preset, field).build().train()
    x = torch.rand(1, in_nc, preset.input_height, preset.input_width) * 2 - 1
    y = net(x)
    if out_nc is None:  # PatchGAN: 3 stride-2 convs, then two 4x4 stride-1 convs (-1 each)
        assert y.shape == (1, 1, preset.input_height // 8 - 2, preset.input_width // 8 - 2)
    else:
        assert y.shape == (1, out_nc, preset.input_height, preset.input_width)
    y.mean().backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


def test_lite_preset_is_smaller_than_paper() -> None:
    lite, paper = get_preset("lite"), get_preset("paper")
    assert count_parameters(lite.style.build()) < count_parameters(paper.style.build()) / 10
    assert count_parameters(lite.depth.build()) < count_parameters(paper.depth.build()) / 5


# --- invalid sizes --------------------------------------------------------------------


def test_resnet_rejects_size_not_multiple_of_4() -> None:
    net = build_network("resnet_generator", ngf=4, n_blocks=1)
    with pytest.raises(ValueError, match=r"multiples of 4.*height 30 \(nearest valid: 28 or 32\)"):
        net(torch.zeros(1, 3, 30, 64))
    assert net(torch.zeros(1, 3, 32, 64)).shape == (1, 3, 32, 64)


def test_unet_rejects_size_not_multiple_of_2_pow_num_downs() -> None:
    net = build_network("unet", num_downs=6, ngf=2)
    match = r"multiples of 64.*width 650 \(nearest valid: 640 or 704\)"
    with pytest.raises(ValueError, match=match):
        net(torch.zeros(1, 3, 192, 650))
    with pytest.raises(ValueError, match=r"height 50 \(nearest valid: 64\)"):
        net(torch.zeros(1, 3, 50, 640))


def test_unet_needs_at_least_5_downs() -> None:
    with pytest.raises(ValueError, match=">= 5"):
        build_network("unet", num_downs=4)


# --- norms and critic -----------------------------------------------------------------


def test_make_norm_kinds() -> None:
    inst = make_norm("instance", 8)
    assert isinstance(inst, nn.InstanceNorm2d) and not inst.affine and not inst.track_running_stats
    assert isinstance(make_norm("batch", 8), nn.BatchNorm2d)
    assert make_norm("group", 64).num_groups == 32
    assert make_norm("group", 48).num_groups == 24  # largest divisor of 48 that is <= 32
    assert make_norm("group", 16).num_groups == 16
    assert make_norm("layer", 16).num_groups == 1
    assert isinstance(make_norm("none", 8), nn.Identity)
    assert not conv_bias("batch")
    assert all(conv_bias(k) for k in ("instance", "group", "layer", "none"))
    with pytest.raises(ValueError, match="known: batch, instance, group, layer, none"):
        make_norm("weird", 8)


def test_critic_refuses_batch_norm() -> None:
    with pytest.raises(ValueError, match="per sample"):
        build_network("patchgan_critic", norm="batch")
    with pytest.raises(ValueError, match="per sample"):
        NetworkSpec("patchgan_critic", {"norm": "batch"}).build()


def test_critic_default_is_per_sample() -> None:
    critic = build_network("patchgan_critic", input_nc=4, ndf=8)
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in critic.modules())
    # Per-sample: a sample's score does not depend on the rest of the batch.
    x = torch.randn(3, 4, 64, 64)
    torch.testing.assert_close(critic(x)[:1], critic(x[:1]))


# --- registry and specs ---------------------------------------------------------------


def test_registered_networks() -> None:
    assert NETWORKS.names() == ["patchgan", "patchgan_critic", "resnet_generator", "unet"]


def test_unknown_network_lists_known_ones() -> None:
    with pytest.raises(KeyError, match="known: patchgan, patchgan_critic, resnet_generator, unet"):
        build_network("resnet")
    with pytest.raises(KeyError, match="known: patchgan"):
        NetworkSpec("unet_256", {})


def test_unknown_preset_lists_known_ones() -> None:
    assert PRESETS.names() == ["bench", "lite", "paper"]
    with pytest.raises(KeyError, match="known: bench, lite, paper"):
        get_preset("fast")


def test_spec_rejects_unknown_arguments_when_created() -> None:
    with pytest.raises(ValueError, match="invalid arguments for network 'unet'"):
        NetworkSpec("unet", {"num_down": 6})


def test_network_spec_round_trip_rebuilds_the_same_architecture() -> None:
    for field in ("style", "depth", "depth_discriminator", "style_discriminator"):
        spec = getattr(get_preset("lite"), field)
        stored = json.loads(json.dumps(spec.to_dict()))  # plain data, as in a checkpoint
        rebuilt = NetworkSpec.from_dict(stored)
        assert rebuilt == spec and hash(rebuilt) == hash(spec)
        original, copy = spec.build(), rebuilt.build()
        shapes = {k: v.shape for k, v in original.state_dict().items()}
        assert {k: v.shape for k, v in copy.state_dict().items()} == shapes
        copy.load_state_dict(original.state_dict(), strict=True)
    with pytest.raises(ValueError, match="'name'"):
        NetworkSpec.from_dict({"kwargs": {}})


def test_network_spec_is_immune_to_caller_mutation() -> None:
    kwargs = {"ngf": 8}
    spec = NetworkSpec("unet", kwargs)
    kwargs["ngf"] = 16
    assert spec.kwargs == {"ngf": 8}


# --- the normalisation contract between the two generators ----------------------------


def test_style_output_feeds_depth_input_without_rescale() -> None:
    lite = get_preset("lite")
    style, depth = lite.style.build().eval(), lite.depth.build().eval()
    frame = torch.randint(0, 256, (1, 3, lite.input_height, lite.input_width)).float()
    with torch.no_grad():
        adapted = style(image_to_network(frame))
        # tanh range == image_to_network's range: the adapter's output is a depth input.
        assert adapted.min() >= -1.0 and adapted.max() <= 1.0
        out = depth(adapted)
    assert out.min() >= -1.0 and out.max() <= 1.0
    metres = DepthCodec(max_depth=lite.max_depth).decode(out)
    assert metres.min() >= 0.0 and metres.max() <= lite.max_depth

    # image_to_network spans exactly [-1, 1] and round-trips every uint8 value.
    values = np.arange(256, dtype=np.uint8)
    x = image_to_network(values.astype(np.float32))
    assert x[0] == -1.0 and x[-1] == 1.0
    np.testing.assert_array_equal(np.rint(network_to_image(x)).astype(np.uint8), values)
    t = image_to_network(torch.arange(256, dtype=torch.float32))
    back = network_to_image(t).round().to(torch.uint8)
    assert torch.equal(back, torch.arange(256).to(torch.uint8))


@pytest.mark.parametrize("upsample, checkerboard", [("transpose", True), ("resize", False)])
def test_resize_upsampling_has_no_checkerboard(upsample, checkerboard) -> None:
    # Odena et al. 2016: a stride-2 transposed conv gives neighbouring output pixels different
    # numbers of (different) weights, so a constant input comes out as a 2x2-periodic pattern;
    # resize-then-convolve gives every interior pixel the same weights and stays constant.
    from depth_da_ros.models.layers import make_upsample

    torch.manual_seed(0)
    layer = make_upsample(upsample, 4, 4, kernel_size=4)
    with torch.no_grad():
        out = layer(torch.ones(1, 4, 8, 8))[..., 2:-2, 2:-2]  # away from the borders' padding
    assert out.shape[-2:] == (12, 12)
    spread = (out.amax(dim=(2, 3)) - out.amin(dim=(2, 3))).max().item()
    assert (spread > 1e-3) == checkerboard, spread


def test_upsample_option_keeps_sizes_and_reference_layout() -> None:
    x = torch.randn(1, 3, 64, 192)
    for upsample in ("transpose", "resize"):
        unet = NETWORKS.get("unet")(num_downs=6, ngf=8, upsample=upsample)
        resnet = NETWORKS.get("resnet_generator")(ngf=8, n_blocks=2, upsample=upsample)
        assert unet(x).shape == (1, 1, 64, 192) and resnet(x).shape == (1, 3, 64, 192)
        has_transpose = any(isinstance(m, nn.ConvTranspose2d) for m in [*unet.modules(), *resnet.modules()])
        assert has_transpose == (upsample == "transpose")
    # The default is the reference's transposed convolution, so existing checkpoints keep loading.
    assert NETWORKS.get("unet")(num_downs=5, ngf=8).state_dict().keys() == \
        NETWORKS.get("unet")(num_downs=5, ngf=8, upsample="transpose").state_dict().keys()
    with pytest.raises(ValueError, match="unknown upsample 'bilinear'; known: transpose, resize"):
        NETWORKS.get("unet")(num_downs=5, ngf=8, upsample="bilinear")


def test_bench_preset_is_small_and_upsamples_by_resize() -> None:
    bench, lite = get_preset("bench"), get_preset("lite")
    assert (bench.input_height, bench.input_width) == (96, 320)
    for role in ("depth", "style"):
        assert getattr(bench, role).kwargs["upsample"] == "resize"
    count = lambda spec: sum(p.numel() for p in spec.build().parameters())  # noqa: E731
    assert count(bench.depth) < count(lite.depth) / 4
    assert count(bench.depth_discriminator) < count(lite.depth_discriminator) / 10
