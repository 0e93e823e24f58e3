"""Typed configuration: dataclasses are the single source of truth.

YAML files and ``--set key=value`` overrides are checked against the dataclass fields:
unknown keys and wrongly typed values are errors that name the offending key, so a
typo never silently falls back to a default. Every run saves its final config with
``save_config`` and can be reproduced from that file.
"""
from __future__ import annotations

import dataclasses
import os
import re
import types
import typing
from pathlib import Path
from typing import Any, Iterable, Literal, Type, TypeVar, Union

import yaml

C = TypeVar("C")
# Exponent notation without a dot, e.g. ``--set optim_g.lr=1e-5``, which PyYAML (YAML 1.1) leaves a string.
_YAML11_MISSED_FLOAT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")


class ConfigError(ValueError):
    """A config file or override does not match the typed schema."""


class _ConfigLoader(yaml.SafeLoader):
    """PyYAML's safe loader with two YAML 1.1 traps removed: duplicate mapping keys are an error
    (PyYAML keeps the last one without a word), and numbers are read as written (YAML 1.2 core
    style): ``010`` is 10, not octal 8; ``1:30`` (sexagesimal 90), ``0x10`` and ``1_000`` stay
    strings, so an integer field refuses them instead of silently taking another value."""


_ConfigLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers
            if tag not in ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float")]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
_ConfigLoader.add_implicit_resolver("tag:yaml.org,2002:int", re.compile(r"^[-+]?[0-9]+$"), list("-+0123456789"))
_ConfigLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"),
    list("-+.0123456789"))
_ConfigLoader.add_constructor("tag:yaml.org,2002:int", lambda loader, node: int(loader.construct_scalar(node), 10))


def _construct_unique_mapping(loader: _ConfigLoader, node: yaml.MappingNode) -> dict:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        if key in seen:
            raise ConfigError(f"duplicate key {key!r} at line {line} (first at line {seen[key]}): YAML keeps only "
                              "one of them; merge the two into one")
        seen[key] = line
    return loader.construct_mapping(node, deep=True)


_ConfigLoader.add_constructor("tag:yaml.org,2002:map", _construct_unique_mapping)


def parse_yaml(text: str, source: str) -> Any:
    """YAML text -> Python, with ``_ConfigLoader``'s rules; every error is a one-line ConfigError
    naming ``source`` (a file, or an override) and the line and column."""
    try:
        return yaml.load(text, Loader=_ConfigLoader)  # noqa: S506 (a SafeLoader subclass)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        where = f", line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = " ".join(str(getattr(exc, "problem", None) or exc).split())
        context = getattr(exc, "context", None)
        raise ConfigError(f"{source}{where}: {problem}{' ' + context if context else ''}") from None


def config_from_dict(cls: Type[C], data: dict | None, *, where: str = "") -> C:
    """Build dataclass ``cls`` from a (possibly partial) dict; missing keys keep defaults.

    Partial nested sections are merged into the *parent's* default (e.g. a default
    validation split with its own seed keeps that seed when YAML only sets its length).
    """
    data = {} if data is None else data
    if not isinstance(data, dict):
        raise ConfigError(f"{where or 'config'}: expected a mapping, got {type(data).__name__}")
    if not where:
        data = _deep_merge(config_to_dict(cls()), data)
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(
            f"unknown key(s) {', '.join(_join(where, k) for k in unknown)}; "
            f"known keys{' of ' + where if where else ''}: {', '.join(fields)}"
        )
    kwargs = {name: _coerce(hints[name], value, _join(where, name)) for name, value in data.items()}
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:  # __post_init__ validation
        raise ConfigError(f"{where or cls.__name__}: {exc}") from exc


def config_to_dict(cfg: Any) -> dict:
    return dataclasses.asdict(cfg)


def apply_overrides(cfg: C, overrides: Iterable[str]) -> C:
    """Apply ``a.b.c=value`` strings; values are parsed as YAML scalars/lists, then type-checked."""
    data = config_to_dict(cfg)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not of the form key=value")
        key, raw = item.split("=", 1)
        node = data
        parts = key.strip().split(".")
        for depth, part in enumerate(parts):
            if not isinstance(node, dict) or part not in node:
                prefix = ".".join(parts[:depth])
                known = ", ".join(node) if isinstance(node, dict) else "(not a section)"
                raise ConfigError(f"unknown key {key!r} in override; known keys{' of ' + prefix if prefix else ''}: {known}")
            if depth == len(parts) - 1:
                value = parse_yaml(raw, f"override {item!r}")
                default = _section_default(type(cfg), parts)
                if default is not None and isinstance(value, dict):
                    # A section set as a whole (``optim_g={lr: 1e-5}``) is partial, as in a YAML file: it keeps
                    # the defaults of the keys it leaves out, so a later ``optim_g.betas=...`` finds its key.
                    value = _deep_merge(default, value)
                node[part] = value
            else:
                node = node[part]
    return config_from_dict(type(cfg), data)


def _section_default(cls: Any, parts: list[str]) -> dict | None:
    """The default dict of the config section (a dataclass) at ``parts``, as the root's default
    holds it (a parent may give a section its own defaults, e.g. the validation split's seed);
    None when that key is not a section (a plain value, or a dict-typed field, replaced whole)."""
    root, section = cls, cls
    for part in parts:
        if not dataclasses.is_dataclass(section):
            return None
        hint = typing.get_type_hints(section).get(part)
        if typing.get_origin(hint) in (Union, types.UnionType):
            hint = next((a for a in typing.get_args(hint) if dataclasses.is_dataclass(a)), hint)
        section = hint
    if not (dataclasses.is_dataclass(section) and isinstance(section, type)):
        return None
    try:
        default: Any = config_to_dict(root())
    except TypeError:  # a schema without defaults for every field
        return None
    for part in parts:
        default = default.get(part) if isinstance(default, dict) else None
    return default if isinstance(default, dict) else None


def load_config(cls: Type[C], path: str | Path | None = None, overrides: Iterable[str] = ()) -> C:
    data: dict = {}
    if path is not None:
        path = Path(path)
        if not path.expanduser().is_file():
            raise ConfigError(f"config file {path} does not exist")
        path = path.expanduser()
        text = path.read_text()
        data = parse_yaml(text, f"config file {path}") or {}
        try:
            cfg = config_from_dict(cls, data, where="")
        except ConfigError as exc:  # an unknown key or a wrong type: name the file and the key's line
            line = _line_of_key(text, str(exc))
            raise ConfigError(f"config file {path}{f', line {line}' if line else ''}: {exc}") from None
        return apply_overrides(cfg, overrides)
    return apply_overrides(config_from_dict(cls, data, where=""), overrides)


def _line_of_key(text: str, message: str) -> int | None:
    """The line (1-based) of the most specific dotted key of YAML ``text`` that ``message`` names."""
    try:
        root = yaml.compose(text, Loader=_ConfigLoader)
    except yaml.YAMLError:
        return None
    lines: dict[str, int] = {}

    def walk(node: Any, prefix: str) -> None:
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                key = _join(prefix, str(key_node.value))
                lines.setdefault(key, key_node.start_mark.line + 1)
                walk(value_node, key)

    walk(root, "")
    message = message.split("; known keys")[0]  # the keys the message is about, not the list of valid ones
    for key in sorted(lines, key=len, reverse=True):
        if re.search(rf"(?<![\w.]){re.escape(key)}(?![\w.])", message):
            return lines[key]
    return None


def save_config(cfg: Any, path: str | Path) -> None:
    """Write ``cfg`` as YAML atomically (a resumed run rewrites its config.yaml: a full disk must not
    leave it torn); a refused write is an OSError naming the file."""
    from .atomic import atomic_write_bytes

    try:
        atomic_write_bytes(path, yaml.safe_dump(config_to_dict(cfg), sort_keys=False).encode())
    except OSError as exc:
        if exc.filename is not None:
            raise
        raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from exc


def _deep_merge(base: dict, update: dict) -> dict:
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def _coerce(hint: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if dataclasses.is_dataclass(hint):
        if dataclasses.is_dataclass(value):
            return value
        return config_from_dict(hint, value, where=where)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(arg, value, where)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError("; ".join(errors))
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{where}: {value!r} is not one of {', '.join(map(repr, args))}")
        return value
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise ConfigError(f"{where}: expected {len(args)} values, got {len(value)}")
            return tuple(_coerce(a, v, f"{where}[{i}]") for i, (a, v) in enumerate(zip(args, value)))
        item = args[0] if args else Any
        items = [_coerce(item, v, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict or hint is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return dict(value)
    if hint is Any:
        return value
    if hint is float:
        if isinstance(value, str) and _YAML11_MISSED_FLOAT.fullmatch(value.strip()):
            return float(value)  # YAML 1.1 reads 1e-5 (no dot) as a string; it is a number
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        # A user's path (run.run_dir, data roots, checkpoints): ``~`` is the home folder, as in a shell.
        return os.path.expanduser(value) if value.startswith("~") else value
    raise ConfigError(f"{where}: unsupported config type {hint!r}")
