"""Typed training configs, one dataclass tree per stage (YAML files in config/ mirror them).

``python training/train.py depth --config config/train_depth_lite.yaml --set run.steps=500``:
the YAML and every ``--set`` are checked against these classes (unknown keys and wrong
types are errors), and the final config is saved in the run directory.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from depth_da_ros.models import NetworkSpec, get_preset
from depth_da_ros.normalization import DEPTH_ENCODINGS, DepthCodec
from training.datasets import DataSpec


@dataclass(frozen=True)
class ModelConfig:
    """A preset plus optional per-network keyword overrides (e.g. smaller widths for tests)."""

    preset: Literal["lite", "paper"] = "lite"
    height: int = 0  # 0 = the preset's input size
    width: int = 0
    depth_kwargs: dict[str, Any] = field(default_factory=dict)
    style_kwargs: dict[str, Any] = field(default_factory=dict)
    discriminator_kwargs: dict[str, Any] = field(default_factory=dict)
    depth_encoding: str = "linear"

    def __post_init__(self) -> None:
        if self.depth_encoding not in DEPTH_ENCODINGS:
            raise ValueError(f"depth_encoding must be one of {', '.join(DEPTH_ENCODINGS)}")
        if (self.height == 0) != (self.width == 0) or self.height < 0 or self.width < 0:
            raise ValueError("set both model.height and model.width (or neither, for the preset size)")

    @property
    def input_size(self) -> tuple[int, int]:
        preset = get_preset(self.preset)
        return (self.height or preset.input_height, self.width or preset.input_width)

    @property
    def codec(self) -> DepthCodec:
        return DepthCodec(get_preset(self.preset).max_depth, self.depth_encoding)

    def spec(self, role: str, gan: str = "") -> NetworkSpec:
        """The NetworkSpec of ``role`` (depth, style, depth_discriminator, style_discriminator) after
        overrides; a discriminator for ``gan="wgan-gp"`` becomes the critic variant, which refuses
        batch norm (the gradient penalty is per sample)."""
        base: NetworkSpec = getattr(get_preset(self.preset), role)
        extra = {"depth": self.depth_kwargs, "style": self.style_kwargs}.get(role, self.discriminator_kwargs)
        name = "patchgan_critic" if gan == "wgan-gp" and role.endswith("discriminator") else base.name
        return NetworkSpec(name, {**base.kwargs, **extra})


@dataclass(frozen=True)
class OptimConfig:
    lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    decay_steps: int = 0  # linear decay to zero over the last N steps (0 = constant)


@dataclass(frozen=True)
class RunConfig:
    steps: int = 2000  # generator updates
    batch_size: int = 4
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    num_workers: int = 1
    amp: bool = False  # bf16 autocast on CUDA (ignored with a warning on CPU)
    deterministic: bool = False  # torch.use_deterministic_algorithms; needed for bit-exact resume
    max_minutes: float = 0.0  # stop cleanly after this wall time (0 = no limit)
    log_every: int = 10
    image_every: int = 250
    checkpoint_every: int = 250
    val_every: int = 0  # 0 = at the end of every epoch
    run_dir: str = ""  # default: runs/<stage>-<preset>-<UTC time>

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "log_every", "image_every", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"run.{name} must be >= 1")
        if self.num_workers < 0 or self.val_every < 0 or self.max_minutes < 0:
            raise ValueError("run.num_workers, run.val_every and run.max_minutes must be >= 0")


@dataclass(frozen=True)
class ValidationConfig:
    crop: Literal["none", "garg", "eigen"] = "none"  # procedural frames are not KITTI-shaped
    min_depth: float = 1e-3
    max_depth: float = 80.0
    best_metric: Literal["abs_rel", "sq_rel", "rmse", "rmse_log", "a1", "a2", "a3"] = "abs_rel"
    image_count: int = 4  # samples shown in TensorBoard grids


@dataclass(frozen=True)
class DepthLossConfig:
    gan: Literal["vanilla", "lsgan", "wgan-gp"] = "vanilla"  # the paper; the slides use wgan-gp
    lambda_l1: float = 0.99  # L = lambda * L1 + (1 - lambda) * L_adv (paper 0.99, slides 0.9)
    gp_weight: float = 10.0
    n_critic: int = 1  # critic updates per generator update (wgan-gp: 5)

    def __post_init__(self) -> None:
        if not 0.0 <= self.lambda_l1 <= 1.0:
            raise ValueError("loss.lambda_l1 must be in [0, 1]")
        if self.n_critic < 1:
            raise ValueError("loss.n_critic must be >= 1")


@dataclass(frozen=True)
class DepthDataConfig:
    train: DataSpec = field(default_factory=lambda: DataSpec(kind="procedural", domain="synthetic", length=4000, seed=0))
    val: DataSpec = field(default_factory=lambda: DataSpec(kind="procedural", domain="synthetic", length=64, seed=1))
    flip: bool = True


@dataclass(frozen=True)
class DepthStageConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    run: RunConfig = field(default_factory=RunConfig)
    data: DepthDataConfig = field(default_factory=DepthDataConfig)
    loss: DepthLossConfig = field(default_factory=DepthLossConfig)
    optim_g: OptimConfig = field(default_factory=OptimConfig)
    optim_d: OptimConfig = field(default_factory=OptimConfig)
    val: ValidationConfig = field(default_factory=ValidationConfig)


@dataclass(frozen=True)
class StyleLossConfig:
    gan: Literal["vanilla", "lsgan", "wgan-gp"] = "lsgan"  # CycleGAN's default
    cycle: float = 10.0
    identity: float = 5.0
    pool_size: int = 50
    gp_weight: float = 10.0
    # Depth-aware cycle (ours): with a frozen stage-1 depth network, penalise the depth error of
    # the cycled synthetic image, depth(G_AB(G_BA(y))) vs y's ground truth. 0 = off.
    depth_aware: float = 0.0


@dataclass(frozen=True)
class StyleDataConfig:
    real: DataSpec = field(default_factory=lambda: DataSpec(kind="procedural", domain="real", length=4000, seed=0))
    synthetic: DataSpec = field(default_factory=lambda: DataSpec(kind="procedural", domain="synthetic", length=4000, seed=0))
    # Real frames with ground-truth depth, for validating adapter + depth network together
    # (needs depth_checkpoint); without depth or without a checkpoint only images are logged.
    val: DataSpec = field(default_factory=lambda: DataSpec(kind="procedural", domain="real", length=32, seed=1))
    flip: bool = True


@dataclass(frozen=True)
class StyleStageConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    run: RunConfig = field(default_factory=lambda: RunConfig(batch_size=1))  # CycleGAN trains at batch 1
    data: StyleDataConfig = field(default_factory=StyleDataConfig)
    loss: StyleLossConfig = field(default_factory=StyleLossConfig)
    optim_g: OptimConfig = field(default_factory=lambda: OptimConfig(decay_steps=1000))
    optim_d: OptimConfig = field(default_factory=lambda: OptimConfig(decay_steps=1000))
    val: ValidationConfig = field(default_factory=ValidationConfig)
    depth_checkpoint: str = ""  # stage-1 checkpoint: validation metrics and the depth-aware loss


# The defaults of each class are its stage's lite config (config/train_<stage>_lite.yaml; a test
# keeps them equal), so `python training/train.py <stage>` with no arguments runs the lite preset.
STAGE_CONFIGS = {"depth": DepthStageConfig, "style": StyleStageConfig}
