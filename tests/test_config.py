from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Optional

import pytest

from depth_da_ros.config import ConfigError, apply_overrides, load_config, save_config
from depth_da_ros.procedural.dataset import ProceduralConfig
from depth_da_ros.registry import Registry, UnknownNameError


@dataclass(frozen=True)
class Optim:
    lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)


@dataclass(frozen=True)
class Run:
    name: str = "run"
    steps: int = 10
    amp: bool = False
    mode: Literal["vanilla", "lsgan", "wgan-gp"] = "lsgan"
    resume: Optional[str] = None
    optim: Optim = field(default_factory=Optim)


def test_yaml_and_overrides_are_typed(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("steps: 20\noptim:\n  lr: 1.0e-3\n")
    cfg = load_config(Run, path, ["optim.betas=[0.9, 0.99]", "mode=wgan-gp", "optim.lr=1"])
    assert cfg.steps == 20 and cfg.optim.lr == 1.0 and isinstance(cfg.optim.lr, float)
    assert cfg.optim.betas == (0.9, 0.99) and cfg.mode == "wgan-gp"


@pytest.mark.parametrize("override, message", [
    ("optim.lrr=1", "unknown key 'optim.lrr'"),
    ("stepz=3", "unknown key 'stepz'"),
    ("steps=ten", "steps: expected an integer"),
    ("amp=1", "amp: expected true or false"),
    ("mode=gan", "mode: 'gan' is not one of"),
    ("optim.betas=[1]", "expected 2 values"),
    ("steps", "key=value"),
])
def test_bad_overrides_name_the_key(override, message):
    with pytest.raises(ConfigError, match=message):
        apply_overrides(Run(), [override])


def test_unknown_yaml_key_lists_known_ones(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("optim:\n  learning_rate: 1\n")
    with pytest.raises(ConfigError, match="unknown key.*optim.learning_rate.*known keys of optim: lr, betas"):
        load_config(Run, path)


def test_saved_config_reloads_identically(tmp_path):
    cfg = apply_overrides(ProceduralConfig(), ["scene.lanes=[1, 2]", "domain=real", "appearance.jpeg_quality=[50, 60]"])
    save_config(cfg, tmp_path / "config.yaml")
    assert load_config(ProceduralConfig, tmp_path / "config.yaml") == cfg


def test_validation_errors_become_config_errors():
    with pytest.raises(ConfigError, match="low 5 > high 2"):
        apply_overrides(ProceduralConfig(), ["scene.lanes=[5, 2]"])


def test_registry_lists_known_names():
    reg: Registry[int] = Registry("widget")
    reg.register("a")(1)
    reg.register("b")(2)
    assert reg.get("b") == 2 and reg.names() == ["a", "b"] and "a" in reg
    with pytest.raises(UnknownNameError, match="unknown widget 'c'; known: a, b"):
        reg.get("c")
    with pytest.raises(ValueError, match="already registered"):
        reg.register("a")(3)


@dataclass(frozen=True)
class Split:
    length: int = 100
    seed: int = 0


@dataclass(frozen=True)
class Data:
    train: Split = field(default_factory=Split)
    val: Split = field(default_factory=lambda: Split(length=10, seed=1))


def test_partial_yaml_section_keeps_the_parents_defaults(tmp_path):
    path = tmp_path / "data.yaml"
    path.write_text("val:\n  length: 5\n")
    cfg = load_config(Data, path)
    assert cfg.val == Split(length=5, seed=1) and cfg.train == Split()
