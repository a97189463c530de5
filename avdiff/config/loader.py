"""Strict YAML -> typed dataclass loading, `--set a.b=value` overrides, and commented dumps.

Unknown keys and wrong types are errors that name the key, where it came from and what
is allowed, so a typo in a 40-key recipe never silently falls back to a default.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import re
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar, Union

import yaml

from avdiff.errors import ConfigError

T = TypeVar("T")
_FLOAT_LITERAL = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def option(default: Any, help: str) -> Any:
    """A dataclass field with a default and the one-line help written as its YAML comment."""
    if isinstance(default, (list, dict)):
        return dataclasses.field(default_factory=lambda: copy.deepcopy(default), metadata={"help": help})
    return dataclasses.field(default=default, metadata={"help": help})


def section(cls: type, help: str) -> Any:
    """A nested dataclass field (a config section) built from its own defaults."""
    return dataclasses.field(default_factory=cls, metadata={"help": help})


# --------------------------------------------------------------------------- building


def from_dict(cls: type[T], data: Mapping[str, Any] | None, source: str, prefix: str = "") -> T:
    """Build dataclass `cls` from `data`, checking every key and type; `source` names the file."""
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        where = f"section '{prefix.rstrip('.')}'" if prefix else "the top level"
        raise ConfigError(f"{source}: {where} must be a mapping of keys, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    for key in data:
        if key not in fields:
            raise ConfigError(_unknown_key_message(source, prefix + str(key), key, fields))
    kwargs = {}
    for name, value in data.items():
        kwargs[name] = _coerce(value, hints[name], source, prefix + name)
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{source}: section '{prefix.rstrip('.') or '<top>'}': {error}") from error


def _unknown_key_message(source: str, dotted: str, key: Any, fields: Mapping[str, Any]) -> str:
    allowed = sorted(fields)
    close = difflib.get_close_matches(str(key), allowed, n=1)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    return f"{source}: unknown key '{dotted}'.{hint} Allowed keys here: {', '.join(allowed)}"


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    if origin is Literal:
        return " | ".join(repr(a) for a in typing.get_args(annotation))
    if origin in (Union, types.UnionType):
        return " | ".join(_type_name(a) for a in typing.get_args(annotation))
    if annotation is type(None):
        return "null"
    if origin is not None:
        args = ", ".join("..." if a is Ellipsis else _type_name(a) for a in typing.get_args(annotation))
        return f"{origin.__name__}[{args}]"
    return getattr(annotation, "__name__", str(annotation))


def _coerce(value: Any, annotation: Any, source: str, dotted: str) -> Any:
    """Check `value` against `annotation`, converting only where lossless (int -> float, list -> tuple)."""
    origin = typing.get_origin(annotation)

    def fail() -> ConfigError:
        return ConfigError(
            f"{source}: key '{dotted}' expects {_type_name(annotation)}, got "
            f"{type(value).__name__} {value!r}"
        )

    if dataclasses.is_dataclass(annotation):
        return from_dict(annotation, value, source, dotted + ".")
    if annotation is Any:
        return value
    if origin is Literal:
        if value in typing.get_args(annotation):
            return value
        raise fail()
    if origin in (Union, types.UnionType):
        members = typing.get_args(annotation)
        if value is None:
            if type(None) in members:
                return None
            raise fail()
        for member in members:
            if member is type(None):
                continue
            try:
                return _coerce(value, member, source, dotted)
            except ConfigError:
                continue
        raise fail()
    if annotation is bool:
        if isinstance(value, bool):
            return value
        raise fail()
    if annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise fail()
    if annotation is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str) and _FLOAT_LITERAL.match(value.strip()):
            return float(value)  # YAML 1.1 reads `1e-4` (no dot, no sign) as a string
        raise fail()
    if annotation is str:
        if isinstance(value, str):
            return value
        raise fail()
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise fail()
        args = typing.get_args(annotation)
        if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, args[0], source, f"{dotted}[{i}]") for i, v in enumerate(value))
        if origin is tuple:
            if len(args) != len(value):
                raise fail()
            return tuple(_coerce(v, a, source, f"{dotted}[{i}]") for i, (v, a) in enumerate(zip(args, value)))
        (item_type,) = args or (Any,)
        return [_coerce(v, item_type, source, f"{dotted}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, Mapping):
            raise fail()
        _, value_type = typing.get_args(annotation) or (str, Any)
        return {str(k): _coerce(v, value_type, source, f"{dotted}.{k}") for k, v in value.items()}
    raise ConfigError(f"{source}: key '{dotted}' has an unsupported type {_type_name(annotation)}")


# --------------------------------------------------------------------------- overrides


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split `a.b=value` into (['a', 'b'], value), the value parsed as YAML (`3`, `true`, `[1, 2]`)."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key or any(not part for part in key.split(".")):
        raise ConfigError(f"--set {text!r}: expected KEY=VALUE with a dotted key, e.g. sampler.steps=30")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as error:
        raise ConfigError(f"--set {text!r}: the value is not valid YAML ({error})") from error
    return key.split("."), value


def apply_overrides(data: dict[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """Write each `a.b=value` into the nested dict `data` (checked later against the schema)."""
    for text in overrides:
        keys, value = parse_override(text)
        node = data
        for depth, key in enumerate(keys[:-1]):
            child = node.get(key)
            if child is None:
                child = node[key] = {}
            if not isinstance(child, dict):
                dotted = ".".join(keys[: depth + 1])
                raise ConfigError(f"--set {text!r}: '{dotted}' is a value, not a section")
            node = child
        node[keys[-1]] = value
    return data


def load_config(
    schema: type[T],
    path: str | Path | None = None,
    overrides: Sequence[str] = (),
) -> T:
    """Load `path` (YAML) into `schema`, apply `--set` overrides, and validate everything.

    Errors name the offending key and its source: the file, or `--set` for an override.
    """
    data: dict[str, Any] = {}
    source = "<defaults>"
    if path is not None:
        path = Path(path)
        source = str(path)
        if not path.is_file():
            raise ConfigError(f"{source}: config file not found")
        try:
            loaded = yaml.safe_load(path.read_text())
        except yaml.YAMLError as error:
            raise ConfigError(f"{source}: not valid YAML: {error}") from error
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"{source}: the top level must be a mapping of sections")
        data = loaded or {}
    # Validate the file on its own first so a file error is blamed on the file, not on --set.
    from_dict(schema, data, source)
    if overrides:
        data = apply_overrides(data, overrides)
        label = f"{source} with --set {' '.join(overrides)}"
        return from_dict(schema, data, label)
    return from_dict(schema, data, source)


# --------------------------------------------------------------------------- dumping


def to_dict(config: Any) -> Any:
    """Plain nested dicts and lists (tuples as lists) of a config dataclass, for YAML or JSON."""

    def plain(value: Any) -> Any:
        if dataclasses.is_dataclass(value):
            return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value

    return plain(config)


def dump_yaml(config: Any, header: str | None = None) -> str:
    """YAML text of `config` with every key's help as a comment above it."""
    lines: list[str] = []
    if header:
        lines.extend(f"# {line}" if line else "#" for line in header.splitlines())
    _dump_section(config, lines, indent=0)
    return "\n".join(lines) + "\n"


def _dump_section(config: Any, lines: list[str], indent: int) -> None:
    pad = " " * indent
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        help_text = f.metadata.get("help")
        if help_text:
            lines.append(f"{pad}# {help_text}")
        if dataclasses.is_dataclass(value):
            lines.append(f"{pad}{f.name}:")
            _dump_section(value, lines, indent + 2)
        else:
            rendered = yaml.safe_dump(to_dict(value), default_flow_style=True, width=1000)
            lines.append(f"{pad}{f.name}: {rendered.strip().removesuffix('...').strip()}")


def save_config(config: Any, path: str | Path, header: str | None = None) -> Path:
    """Write the resolved config next to an output so every result says how it was made."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dump_yaml(config, header=header))
    return path
