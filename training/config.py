"""Typed training configs, one dataclass tree per stage (YAML files in config/ mirror them).

``python training/train.py depth --config config/train_depth_lite.yaml --set run.steps=500``:
the YAML and every ``--set`` are checked against these classes (unknown keys and wrong
types are errors), and the final config is saved in the run directory.
"""
from __future__ import annotations

import math
import typing
from dataclasses import dataclass, field
from typing import Any, Literal

from depth_da_ros.camera import PinholeCamera
from depth_da_ros.models import NetworkSpec, get_preset
from depth_da_ros.normalization import DEPTH_ENCODINGS, DepthCodec
from training.datasets import DataSpec


@dataclass(frozen=True)
class ModelConfig:
    """A preset plus optional per-network keyword overrides (e.g. smaller widths for tests)."""

    preset: Literal["lite", "paper", "bench"] = "lite"
    height: int = 0  # 0 = the preset's input size
    width: int = 0
    depth_kwargs: dict[str, Any] = field(default_factory=dict)
    style_kwargs: dict[str, Any] = field(default_factory=dict)
    discriminator_kwargs: dict[str, Any] = field(default_factory=dict)
    depth_encoding: str = "linear"
    # > 0: the depth network predicts a residual over a flat road this many metres under a level
    # camera with the procedural world's KITTI-like intrinsics (models/unet.py, ground_prior_logit).
    ground_prior: float = 0.0

    def __post_init__(self) -> None:
        if self.depth_encoding not in DEPTH_ENCODINGS:
            raise ValueError(f"depth_encoding must be one of {', '.join(DEPTH_ENCODINGS)}")
        if not (self.ground_prior >= 0 and math.isfinite(self.ground_prior)):
            raise ValueError(f"model.ground_prior must be a camera height in metres >= 0 (0 = off), "
                             f"got {self.ground_prior}")
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
        if role == "depth" and self.ground_prior:
            codec, camera = self.codec, PinholeCamera.kitti_like()
            extra = {"ground_prior": {"height": self.ground_prior, "fy": camera.fy / camera.height,
                                      "cy": camera.cy / camera.height, "min_depth": codec.min_depth,
                                      "max_depth": codec.max_depth, "encoding": codec.encoding}, **extra}
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
    n_critic: int = 1  # critic updates per generator update, each on a fresh batch (wgan-gp: 5)

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
    # Camera-like augmentation of the training images (colour jitter, blur, noise, JPEG;
    # training.datasets.PhotometricAugment): the cheap alternative to a style adapter.
    photometric: bool = False


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
    # (needs depth_checkpoint) or a distilled student; without depth only images are logged.
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


@dataclass(frozen=True)
class DistillLossConfig:
    teacher: float = 1.0  # L1 to the teacher's (adapter + depth) encoded depth on real frames
    synthetic: float = 0.0  # L1 to ground truth on synthetic frames (0 = off: no synthetic data is read)

    def __post_init__(self) -> None:
        if self.teacher < 0 or self.synthetic < 0 or self.teacher + self.synthetic == 0:
            raise ValueError("loss.teacher and loss.synthetic must be >= 0, not both 0")


@dataclass(frozen=True)
class DistillStageConfig:
    model: ModelConfig = field(default_factory=ModelConfig)  # the student: the preset's depth network
    run: RunConfig = field(default_factory=lambda: RunConfig(batch_size=8, steps=600))
    # The style stage's data: the student learns on data.real (data.synthetic only with
    # loss.synthetic > 0) and is validated on data.val (real-domain frames with depth).
    data: StyleDataConfig = field(default_factory=StyleDataConfig)
    loss: DistillLossConfig = field(default_factory=DistillLossConfig)
    optim_g: OptimConfig = field(default_factory=lambda: OptimConfig(lr=1e-4, decay_steps=300))
    val: ValidationConfig = field(default_factory=ValidationConfig)
    teacher_style: str = ""  # stage-2 checkpoint: the adapter G_AB of the teacher (required)
    teacher_depth: str = ""  # stage-1 checkpoint after the adapter ("" = the one teacher_style records)
    init_from_teacher: bool = True  # start the student from the teacher's depth weights (same architecture)


# The defaults of the depth and style classes are their stage's lite config
# (config/train_<stage>_lite.yaml; a test keeps them equal), so `python training/train.py <stage>`
# with no arguments runs the lite preset. Distillation needs a teacher, so it has no such default
# run; its model config must match the teacher's (preset, widths, size: checked at start).
STAGE_CONFIGS = {"depth": DepthStageConfig, "style": StyleStageConfig, "distill": DistillStageConfig}


# -- checks made before any work starts (train.py calls them before the run folder exists) -------


def _input_channels(spec: NetworkSpec) -> tuple[int | None, int | None]:
    return spec.kwargs.get("input_nc"), spec.kwargs.get("output_nc")


def _size_multiple(spec: NetworkSpec) -> int:
    """The factor both input sides must be multiples of, read from the network itself (built on
    the meta device: no memory, no weights, milliseconds even for the paper preset)."""
    import torch

    with torch.device("meta"):
        module = spec.build()
    return int(getattr(module, "size_multiple", 1))


def _train_length(spec: DataSpec) -> int | None:
    """Samples a training DataSpec yields, when the config alone tells (procedural data)."""
    if spec.kind != "procedural":
        return None  # known once the files are listed: checked when the dataset is built
    return min(spec.length, spec.limit) if spec.limit else spec.length


def check_config(stage: str, cfg: DepthStageConfig | StyleStageConfig, world_size: int = 1) -> None:
    """Raise ConfigError (one line, naming the key) for a config that cannot train: an input
    size the generator cannot take, channel counts that do not fit the stage, a training set
    smaller than one batch. Cheap: nothing is built but a meta-device network."""
    from depth_da_ros.config import ConfigError

    model = cfg.model
    height, width = model.input_size
    size_keys = "model.height / model.width" if model.height else f"model.preset={model.preset} (its input size)"
    gan = getattr(cfg.loss, "gan", "")
    if stage == "depth":
        generator, channels = ("depth", "model.depth_kwargs"), {"depth": (3, 1), "depth_discriminator": (4, None)}
    elif stage == "distill":
        generator, channels = ("depth", "model.depth_kwargs"), {"depth": (3, 1)}
    else:
        generator, channels = ("style", "model.style_kwargs"), {"style": (3, 3), "style_discriminator": (3, None)}
    for role, (want_in, want_out) in channels.items():
        key = "model.discriminator_kwargs" if role.endswith("discriminator") else f"model.{role}_kwargs"
        got_in, got_out = _input_channels(model.spec(role, gan))
        why = {"depth": "RGB in, one depth channel out", "style": "RGB in, RGB out (the depth network reads its output)",
               "depth_discriminator": "RGB + depth", "style_discriminator": "RGB"}[role]
        if got_in is not None and got_in != want_in:
            raise ConfigError(f"{key}.input_nc={got_in}: the {role} network takes {want_in} channels ({why})")
        if want_out is not None and got_out is not None and got_out != want_out:
            raise ConfigError(f"{key}.output_nc={got_out}: the {role} network must output {want_out} channels ({why})")
    role, key = generator
    multiple = _size_multiple(model.spec(role))
    bad = [f"{side} {size}" for side, size in (("height", height), ("width", width)) if size % multiple]
    if bad:
        nearest = ", ".join(f"{side.split()[0]} {max(multiple, round(int(side.split()[1]) / multiple) * multiple)}"
                            for side in bad)
        raise ConfigError(f"{size_keys}: {' and '.join(bad)} not a multiple of {multiple}, the {role} network's "
                          f"stride ({key}); nearest valid: {nearest}")
    needed = cfg.run.batch_size * world_size
    if stage == "depth":
        sets = {"data.train": _train_length(cfg.data.train)}
    elif stage == "distill":
        sets = {"data.real": _train_length(cfg.data.real)}
    else:  # the unpaired set is as long as the longer domain
        sets = {"data.real": _train_length(cfg.data.real), "data.synthetic": _train_length(cfg.data.synthetic)}
    if all(n is not None for n in sets.values()) and max(sets.values()) < needed:
        key = max(sets, key=lambda k: sets[k] or 0)
        procs = f" x {world_size} processes" if world_size > 1 else ""
        raise ConfigError(f"{key}.length={sets[key]} (or .limit) gives fewer samples than one batch: run.batch_size="
                          f"{cfg.run.batch_size}{procs} needs at least {needed}")


# -- resume: which overrides a resumed run may take ---------------------------------------------------

# Keys (prefixes) a resumed run refuses to change, and why. Everything else is applied: loss weights
# and run settings are read at every step, and the optimisers' lr / betas are re-based on resume.
RESUME_REFUSED: dict[str, str] = {
    "model.": "the networks in the checkpoint were built from it",
    "loss.gan": "it selects the discriminator's architecture (critic for wgan-gp)",
    "loss.pool_size": "the image pools are restored from the checkpoint",
    "run.seed": "it fixes the data order and augmentation",
    "run.batch_size": "it fixes the data order (the resume position counts batches)",
    "run.run_dir": "the run folder is the one being resumed",
    "data.val": "the best checkpoint was chosen on this validation set",
    "data.": "it changes the training data or its order",
    "val.": "the best checkpoint was chosen with these validation settings",
    "depth_checkpoint": "the frozen depth network shapes the losses of this run",
    "teacher_style": "the teacher defines the student's targets",
    "teacher_depth": "the teacher defines the student's targets",
    "init_from_teacher": "it set the student's starting weights",
}
# Exceptions to the prefixes above (fnmatch patterns): they change no sample, order or network.
RESUME_ALLOWED = ("val.image_count", "data.*.verify", "data.*.cache")


def _flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, dict):
        flat: dict[str, Any] = {}
        for key, value in data.items():
            flat.update(_flatten(value, f"{prefix}{key}."))
        return flat or {prefix.rstrip("."): {}}
    return {prefix.rstrip("."): list(data) if isinstance(data, tuple) else data}


def config_changes(old: dict, new: dict) -> dict[str, tuple[Any, Any]]:
    """Leaf keys (``a.b.c``) whose values differ between two config dicts: key -> (old, new)."""
    a, b = _flatten(old), _flatten(new)
    missing = object()
    return {key: (a.get(key), b.get(key)) for key in sorted(set(a) | set(b))
            if a.get(key, missing) != b.get(key, missing)}


def resume_refusal(key: str) -> str | None:
    """Why a resumed run cannot change ``key``, or None when the change is applied."""
    import fnmatch

    if any(fnmatch.fnmatchcase(key, pattern) for pattern in RESUME_ALLOWED):
        return None
    for prefix, reason in RESUME_REFUSED.items():
        if key == prefix.rstrip(".") or key.startswith(prefix if prefix.endswith(".") else prefix + "."):
            return reason
    return None


def check_resume_changes(old: dict, new: dict) -> dict[str, tuple[Any, Any]]:
    """The changes of ``new`` over the run's saved ``old`` config; ConfigError for any that a
    resume cannot apply (the model, the data order, the validation behind best.pt)."""
    from depth_da_ros.config import ConfigError

    changes = config_changes(old, new)
    refused = [(key, resume_refusal(key)) for key in changes if key != "run.run_dir"]
    refused = [(key, why) for key, why in refused if why]
    if refused:
        key, why = refused[0]
        more = f" (also: {', '.join(k for k, _ in refused[1:])})" if len(refused) > 1 else ""
        raise ConfigError(f"--resume cannot change {key} ({changes[key][0]!r} -> {changes[key][1]!r}): {why}{more}; "
                          "start a new run for that")
    return changes


# -- `train.py <stage> --help`: every key with its type, default and comment ---------------------------


def _type_name(hint: Any) -> str:
    origin = typing.get_origin(hint)
    if origin is Literal:
        return "|".join(str(a) for a in typing.get_args(hint))
    if origin is not None:
        args = ", ".join(_type_name(a) for a in typing.get_args(hint) if a is not Ellipsis)
        return f"{getattr(origin, '__name__', str(origin))}[{args}]"
    return getattr(hint, "__name__", str(hint))


def _field_comments(cls: type) -> dict[str, str]:
    """The ``# comment`` after each field in the class source (shown in --help)."""
    import inspect
    import re

    try:
        source = inspect.getsource(cls)
    except (OSError, TypeError):
        return {}
    return {m.group(1): m.group(2).strip() for m in re.finditer(r"^\s+(\w+):[^#\n]*#\s*(.*)$", source, re.M)}


def config_keys_help(cls: type, prefix: str = "", default: Any = None) -> list[str]:
    """One line per leaf key of the dataclass ``cls``: ``key: type = default  # comment``."""
    import dataclasses

    default = cls() if default is None else default
    hints = typing.get_type_hints(cls)
    comments = _field_comments(cls)
    lines = []
    for f in dataclasses.fields(cls):
        value = getattr(default, f.name)
        if dataclasses.is_dataclass(value):
            lines += config_keys_help(type(value), f"{prefix}{f.name}.", value)
            continue
        shown = list(value) if isinstance(value, tuple) else value
        comment = f"  # {comments[f.name]}" if f.name in comments else ""
        lines.append(f"  {prefix}{f.name}: {_type_name(hints[f.name])} = {shown!r}{comment}")
    return lines
