from __future__ import annotations

import re
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


# -- issue 25 item 10: YAML traps -----------------------------------------------------------------------


def test_duplicate_yaml_keys_are_refused_naming_key_file_and_line(tmp_path):
    path = tmp_path / "dup.yaml"
    path.write_text("optim:\n  lr: 1.0e-5\nsteps: 3\noptim:\n  betas: [0.9, 0.99]\n")
    with pytest.raises(ConfigError, match=rf"{path}: duplicate key 'optim' at line 4 \(first at line 1\)"):
        load_config(Run, path)
    with pytest.raises(ConfigError, match="duplicate key 'lr'"):
        apply_overrides(Run(), ["optim={lr: 1, lr: 2}"])


def test_parse_errors_name_the_file_and_line(tmp_path):
    path = tmp_path / "tab.yaml"
    path.write_text("steps: 3\noptim:\n\tlr: 1\n")
    with pytest.raises(ConfigError) as exc:
        load_config(Run, path)
    message = str(exc.value)
    assert message.startswith(f"config file {path}, line 3, column 1:") and "\n" not in message, message
    with pytest.raises(ConfigError, match=r"override 'optim.betas=\[1, 2', line 1"):
        apply_overrides(Run(), ["optim.betas=[1, 2"])


@pytest.mark.parametrize("raw, expected", [("010", 10), ("0777", 777), ("-12", -12)])
def test_integers_are_read_as_written(raw, expected, tmp_path):
    assert apply_overrides(Run(), [f"steps={raw}"]).steps == expected
    path = tmp_path / "run.yaml"
    path.write_text(f"steps: {raw}\n")
    assert load_config(Run, path).steps == expected


@pytest.mark.parametrize("raw", ["1:30", "0x10", "1_000", "0o17"])
def test_yaml11_number_forms_are_refused_not_converted(raw):
    with pytest.raises(ConfigError, match=f"steps: expected an integer, got '{raw}'"):
        apply_overrides(Run(), [f"steps={raw}"])


def test_floats_still_parse():
    cfg = apply_overrides(Run(), ["optim.lr=1e-5", "optim.betas=[.5, 9.99e-1]"])
    assert cfg.optim.lr == 1e-5 and cfg.optim.betas == (0.5, 0.999)


def test_section_then_one_of_its_keys():
    cfg = apply_overrides(Run(), ["optim={lr: 1.0e-5}", "optim.betas=[0.9, 0.99]"])
    assert cfg.optim == Optim(lr=1e-5, betas=(0.9, 0.99))


def test_home_folder_is_expanded_in_paths(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    assert apply_overrides(Run(), ["name=~/runs/a", "resume=~/x.pt"]) == Run(name=f"{tmp_path}/runs/a",
                                                                             resume=f"{tmp_path}/x.pt")
    (tmp_path / "c.yaml").write_text("steps: 4\n")
    assert load_config(Run, "~/c.yaml").steps == 4


def test_schema_errors_in_a_file_name_the_file_and_the_keys_line(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("steps: 5\nxy: 1\n")  # a valid, longer key precedes the unknown one (and is in the list)
    with pytest.raises(ConfigError, match=rf"^config file {re.escape(str(path))}, line 2: unknown key\(s\) xy;"):
        load_config(Run, path)
    path.write_text("name: a\noptim:\n  lr: 1\n  learning_rate: 1\n")
    with pytest.raises(ConfigError, match=r", line 4: unknown key\(s\) optim.learning_rate;"):
        load_config(Run, path)

