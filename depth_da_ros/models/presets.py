"""Model presets: the four networks of the two stages and the size they run at.

``paper``: the official atapour/monocularDepth-Inference networks, a ResNet-9 style
adapter (ngf 64, instance norm, 11.4 M parameters) and pix2pix ``unet_256`` (8
down-samplings, ngf 64, batch norm, 54.4 M parameters), at 256x1024 because unet_256
needs sides that are multiples of 256.

``lite``: sized for real time on a 2-core CPU at 192x640 (both sides multiples of 64 =
2**6, the U-Net's 6 down-samplings). Budget: the ONNX Runtime pipeline must do <= 100 ms
p50 end to end including pre/post-processing, so the two networks get ~70 ms in torch.
The starting point, a ResNet adapter with ngf 16, 6 blocks, instance norm (494,083
parameters) and a U-Net with 6 down-samplings, ngf 32, batch norm (7,312,705
parameters), meets that budget, so it was kept. Measured on this workplace's 2-core
AMD EPYC CPU, 2026-11-26, torch 2.14.1 (CPU), eval mode, no_grad, batch 1,
``torch.set_num_threads(2)``, median of 10 interleaved rounds after 3 warm-up rounds::

    python benchmarks/bench_networks.py --threads 2 --runs 10

    style adapter 38.3-39.1 ms, depth U-Net 21.0-21.2 ms, chained 59.3-60.5 ms
    (4 runs; the paper preset: 1461 + 219 = 1620 ms at 256x1024)

Alternatives (timed in interleaved rounds, 25 each): adapter with 4 blocks 32 ms,
adapter with ngf 12 28 ms, U-Net with ngf 24 14 ms; they would buy margin at a cost in
capacity that the budget does not require.

Both presets use the 70x70 PatchGAN (ndf 64, 3 layers) for both discriminators: they
never run at inference, so the lite preset has no reason to weaken them. They use
instance norm, which is per sample and therefore valid under every GAN loss, the WGAN-GP
gradient penalty included; the depth discriminator is conditional (RGB + depth = 4
channels).

``bench``: the sim-to-real benchmark's preset (``benchmarks/bench_sim2real.py``), small enough
for both stages to converge within minutes on a 2-core CPU: 96x320 (KITTI's aspect, sides
multiples of 32 = 2**5), a U-Net with 5 down-samplings and ngf 16, a ResNet adapter with ngf
16 and 6 blocks, both up-sampling by resize-then-convolve (no checkerboard artefacts), a depth
PatchGAN with ndf 16 and a style PatchGAN with ndf 32. With ndf 64 the discriminator took ~90%
of a depth step's time (DESIGN.md, "Facts learned"). Training FLOPs per depth step at batch 8
(``torch.utils.flop_counter``, forward + backward): U-Net 14.3 G, three discriminator passes
13.5 G (205 G with ndf 64). The bundled model (``benchmarks/bundle_model.py``) is of this
preset since 2026-11-29: a student U-Net distilled from the adapter + depth network
(``training/distill_stage.py``), 0.60 GFLOP per frame, ~0.1x the time of monodepth2's ResNet-18
network at 640x192 on the same CPU and more accurate on the benchmark than the lite pipeline it
replaced (``benchmarks/results/peers.md``). ``lite`` (192x640) has not been retrained with the
benchmark's recipe; on the AVX-512 EPYC of 2026-11-29 its pipeline took 1.07-1.32x the time of
that monodepth2 network, not the ~60 ms measured above on 2026-11-26.

Batch norm in the depth U-Net: the official code never calls ``.eval()``, so at inference
its batch norm normalises with the statistics of the single input frame. Our contract is
different and fixed: train in train mode; validate, export and infer in eval mode (running
statistics), so torch, ONNX and TensorRT compute the same function.
"""
from __future__ import annotations

from dataclasses import dataclass

# Imported for their side effect: they register the networks the presets name.
from depth_da_ros.models import patchgan, resnet_generator, unet  # noqa: F401
from depth_da_ros.models.registry import NetworkSpec
from depth_da_ros.registry import Registry


@dataclass(frozen=True)
class ModelPreset:
    name: str
    style: NetworkSpec  # real -> synthetic adapter, ResNet generator 3 -> 3
    depth: NetworkSpec  # synthetic RGB -> depth in [-1, 1], U-Net 3 -> 1
    depth_discriminator: NetworkSpec  # conditional PatchGAN on RGB + depth (4 channels)
    style_discriminator: NetworkSpec  # PatchGAN on RGB (3 channels)
    input_height: int
    input_width: int
    max_depth: float = 80.0  # metres, the DepthCodec range

    def __post_init__(self) -> None:
        if self.input_height <= 0 or self.input_width <= 0:
            raise ValueError(
                f"preset {self.name!r}: input size must be positive, got "
                f"{self.input_height}x{self.input_width}"
            )
        if self.max_depth <= 0:
            raise ValueError(f"preset {self.name!r}: max_depth must be > 0, got {self.max_depth}")


PRESETS: Registry[ModelPreset] = Registry("model preset")


def _register(preset: ModelPreset) -> None:
    PRESETS.register(preset.name)(preset)


def get_preset(name: str) -> ModelPreset:
    """The preset ``name``; an unknown name raises an error listing the known presets."""
    return PRESETS.get(name)


_DISCRIMINATOR = {"ndf": 64, "n_layers": 3, "norm": "instance"}

_register(
    ModelPreset(
        name="paper",
        style=NetworkSpec(
            "resnet_generator",
            {"input_nc": 3, "output_nc": 3, "ngf": 64, "n_blocks": 9, "norm": "instance"},
        ),
        # Batch norm as the official code, but eval mode outside training (see above).
        depth=NetworkSpec(
            "unet", {"input_nc": 3, "output_nc": 1, "num_downs": 8, "ngf": 64, "norm": "batch"}
        ),
        depth_discriminator=NetworkSpec("patchgan", {"input_nc": 4, **_DISCRIMINATOR}),
        style_discriminator=NetworkSpec("patchgan", {"input_nc": 3, **_DISCRIMINATOR}),
        input_height=256,
        input_width=1024,
    )
)

_register(
    ModelPreset(
        name="lite",
        style=NetworkSpec(
            "resnet_generator",
            {"input_nc": 3, "output_nc": 3, "ngf": 16, "n_blocks": 6, "norm": "instance"},
        ),
        depth=NetworkSpec(
            "unet", {"input_nc": 3, "output_nc": 1, "num_downs": 6, "ngf": 32, "norm": "batch"}
        ),
        depth_discriminator=NetworkSpec("patchgan", {"input_nc": 4, **_DISCRIMINATOR}),
        style_discriminator=NetworkSpec("patchgan", {"input_nc": 3, **_DISCRIMINATOR}),
        input_height=192,
        input_width=640,
    )
)

_register(
    ModelPreset(
        name="bench",
        style=NetworkSpec(
            "resnet_generator",
            {"input_nc": 3, "output_nc": 3, "ngf": 16, "n_blocks": 6, "norm": "instance", "upsample": "resize"},
        ),
        depth=NetworkSpec(
            "unet",
            {"input_nc": 3, "output_nc": 1, "num_downs": 5, "ngf": 16, "norm": "batch", "upsample": "resize"},
        ),
        depth_discriminator=NetworkSpec("patchgan", {"input_nc": 4, **_DISCRIMINATOR, "ndf": 16}),
        style_discriminator=NetworkSpec("patchgan", {"input_nc": 3, **_DISCRIMINATOR, "ndf": 32}),
        input_height=96,
        input_width=320,
    )
)
