"""Strict YAML -> typed dataclass loading, `base:` inheritance, `--set a.b=value` overrides,
the recipes packaged in avdiff/configs/, and commented dumps.

Unknown keys and wrong types are errors that name the key, the file it came from and what
is allowed, so a typo in a 40-key recipe never silently falls back to a default.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import os
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
    data, hints = _section_keys(cls, data, source, prefix)
    kwargs = {}
    for name, value in data.items():
        kwargs[name] = _coerce(value, hints[name], source, prefix + name)
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{source}: section '{prefix.rstrip('.') or '<top>'}': {error}") from error


def check_keys(cls: type, data: Mapping[str, Any] | None, source: str, prefix: str = "") -> None:
    """Check the keys and value types of a partial config (one file of a `base:` chain).

    Unlike `from_dict` nothing is built, so the checks between keys (which may come from
    different files) wait for the merged config; a bad key is still blamed on its own file.
    """
    data, hints = _section_keys(cls, data, source, prefix)
    for name, value in data.items():
        if dataclasses.is_dataclass(hints[name]):
            check_keys(hints[name], value, source, prefix + name + ".")
        else:
            _coerce(value, hints[name], source, prefix + name)


def _section_keys(
    cls: type, data: Mapping[str, Any] | None, source: str, prefix: str
) -> tuple[Mapping[str, Any], dict[str, Any]]:
    """`data` (None read as empty) checked to be a mapping of `cls`'s keys, and `cls`'s type hints."""
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        where = f"section '{prefix.rstrip('.')}'" if prefix else "the top level"
        raise ConfigError(f"{source}: {where} must be a mapping of keys, got {type(data).__name__}")
    upgrade = getattr(cls, "upgrade_legacy_keys", None)  # a section that reads an older layout of itself
    if upgrade is not None:
        data = upgrade(dict(data))
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    for key in data:
        if key not in fields:
            raise ConfigError(_unknown_key_message(source, prefix + str(key), key, fields))
    return data, typing.get_type_hints(cls)


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
    if dataclasses.is_dataclass(annotation):
        return from_dict(annotation, value, source, dotted + ".")
    if annotation is Any:
        return value
    origin = typing.get_origin(annotation)
    if origin is None:
        coerce = _SCALARS.get(annotation)
    else:
        coerce = _GENERICS.get(Union if origin is types.UnionType else origin)
    if coerce is None:
        raise ConfigError(f"{source}: key '{dotted}' has an unsupported type {_type_name(annotation)}")
    return coerce(value, annotation, source, dotted)


def _mismatch(value: Any, annotation: Any, source: str, dotted: str) -> ConfigError:
    return ConfigError(
        f"{source}: key '{dotted}' expects {_type_name(annotation)}, got {type(value).__name__} {value!r}"
    )


def _coerce_literal(value: Any, annotation: Any, source: str, dotted: str) -> Any:
    if value in typing.get_args(annotation):
        return value
    raise _mismatch(value, annotation, source, dotted)


def _coerce_union(value: Any, annotation: Any, source: str, dotted: str) -> Any:
    members = typing.get_args(annotation)
    if value is None:
        if type(None) in members:
            return None
        raise _mismatch(value, annotation, source, dotted)
    for member in members:
        if member is type(None):
            continue
        try:
            return _coerce(value, member, source, dotted)
        except ConfigError:
            continue
    raise _mismatch(value, annotation, source, dotted)


def _coerce_bool(value: Any, annotation: Any, source: str, dotted: str) -> Any:
    if isinstance(value, bool):
        return value
    raise _mismatch(value, annotation, source, dotted)


def _coerce_int(value: Any, annotation: Any, source: str, dotted: str) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise _mismatch(value, annotation, source, dotted)


def _coerce_float(value: Any, annotation: Any, source: str, dotted: str) -> Any:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str) and _FLOAT_LITERAL.match(value.strip()):
        return float(value)  # YAML 1.1 reads `1e-4` (no dot, no sign) as a string
    raise _mismatch(value, annotation, source, dotted)


def _coerce_str(value: Any, annotation: Any, source: str, dotted: str) -> Any:
    if isinstance(value, str):
        return value
    raise _mismatch(value, annotation, source, dotted)


def _coerce_sequence(value: Any, annotation: Any, source: str, dotted: str) -> Any:
    if not isinstance(value, (list, tuple)):
        raise _mismatch(value, annotation, source, dotted)
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        return tuple(_coerce(v, args[0], source, f"{dotted}[{i}]") for i, v in enumerate(value))
    if origin is tuple:
        if len(args) != len(value):
            raise _mismatch(value, annotation, source, dotted)
        return tuple(_coerce(v, a, source, f"{dotted}[{i}]") for i, (v, a) in enumerate(zip(args, value)))
    (item_type,) = args or (Any,)
    return [_coerce(v, item_type, source, f"{dotted}[{i}]") for i, v in enumerate(value)]


def _coerce_dict(value: Any, annotation: Any, source: str, dotted: str) -> Any:
    if not isinstance(value, Mapping):
        raise _mismatch(value, annotation, source, dotted)
    _, value_type = typing.get_args(annotation) or (str, Any)
    return {str(k): _coerce(v, value_type, source, f"{dotted}.{k}") for k, v in value.items()}


# How each kind of annotation is checked: plain types by the type, generic ones by their origin.
_SCALARS: dict[Any, Any] = {bool: _coerce_bool, int: _coerce_int, float: _coerce_float, str: _coerce_str}
_GENERICS: dict[Any, Any] = {
    Literal: _coerce_literal, Union: _coerce_union, tuple: _coerce_sequence, list: _coerce_sequence,
    dict: _coerce_dict,
}


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
    """Load `path` (YAML, or a packaged config's name) into `schema`, apply `--set` overrides, validate.

    A top-level `base:` key names the config this one changes (see `read_config_chain`); the
    overrides apply to the merged result. Errors name the offending key and its source: the
    file it came from, or `--set` for an override.
    """
    data: dict[str, Any] = {}
    source = "<defaults>"
    if path is not None:
        chain = read_config_chain(schema, path)
        for _, layer in reversed(chain):
            data = merge_config_data(schema, data, layer)
        source = describe_chain([file for file, _ in chain])
    # Validate the files on their own first so a file error is blamed on the files, not on --set.
    from_dict(schema, data, source)
    if overrides:
        data = apply_overrides(data, overrides)
        label = f"{source} with --set {' '.join(overrides)}"
        return from_dict(schema, data, label)
    return from_dict(schema, data, source)


# --------------------------------------------------------------------------- inheritance and packaged configs

PACKAGED_CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"
_CONFIG_SUFFIXES = (".yaml", ".yml")


def packaged_configs() -> list[str]:
    """Names of the recipes shipped inside the package (`tiny`, `synth-cpu`, ...)."""
    return sorted(p.stem for p in PACKAGED_CONFIG_DIR.glob("*.yaml"))


def packaged_config(name: str) -> Path:
    """The file of the packaged recipe `name` (e.g. `tiny` -> .../avdiff/configs/tiny.yaml)."""
    path = PACKAGED_CONFIG_DIR / f"{name}.yaml"
    if not _is_config_name(name) or not path.is_file():
        raise ConfigError(
            f"no packaged config named {name!r}; packaged configs: {', '.join(packaged_configs())} "
            "(a file's path needs a '/' or a .yaml suffix, e.g. ./my.yaml)"
        )
    return path


def resolve_config_path(reference: str | Path, relative_to: Path | None = None) -> Path:
    """A config reference as a file: a bare name (no '/', no .yaml/.yml suffix) is a packaged
    config, anything else a path, relative to `relative_to` (default: the working directory)."""
    text = str(reference)
    if _is_config_name(text):
        return packaged_config(text)
    path = Path(text).expanduser()
    if relative_to is not None and not path.is_absolute():
        path = relative_to / path
    return path


def _is_config_name(text: str) -> bool:
    return bool(text) and text not in (".", "..") and "/" not in text and "\\" not in text and (
        not text.lower().endswith(_CONFIG_SUFFIXES))


def read_config_chain(schema: type, path: str | Path) -> list[tuple[Path, dict[str, Any]]]:
    """[(file, its keys without `base`)] from `path` down to the config with no `base:`.

    Each file's keys and types are checked against `schema` on their own, so a bad key is
    blamed on the file that has it; a cycle of bases is an error naming the whole chain.
    """
    chain: list[tuple[Path, dict[str, Any]]] = []
    seen: list[Path] = []
    current: Path | None = resolve_config_path(path)
    while current is not None:
        if current.resolve() in seen:
            names = " -> ".join(str(file) for file, _ in chain)
            raise ConfigError(f"config base cycle: {names} -> {current} (a config cannot be its own base)")
        seen.append(current.resolve())
        data = _read_yaml_mapping(current)
        base = data.pop("base", None)
        check_keys(schema, data, str(current))
        chain.append((current, data))
        current = None if base is None else _base_path(base, named_by=current)
    return chain


def _base_path(base: Any, named_by: Path) -> Path:
    if not isinstance(base, str) or not base.strip():
        raise ConfigError(f"{named_by}: 'base' must be a packaged config name or a path, got {base!r}")
    try:
        path = resolve_config_path(base.strip(), relative_to=named_by.parent)
    except ConfigError as error:
        raise ConfigError(f"{named_by}: base: {error}") from error
    if not path.is_file():
        raise ConfigError(f"{named_by}: base config {base!r} not found (looked for {path})")
    return path


def describe_chain(files: Sequence[Path]) -> str:
    """`a.yaml (base b.yaml, its base c.yaml)`: how error messages and headers name a chain."""
    if len(files) <= 1:
        return "".join(str(f) for f in files)
    return f"{files[0]} (base {files[1]}" + "".join(f", its base {f}" for f in files[2:]) + ")"


def merge_config_data(schema: type, base: Mapping[str, Any], child: Mapping[str, Any]) -> dict[str, Any]:
    """`child` over `base`: sections (dataclasses of `schema`) merge key by key, the child's keys
    win; every value (number, string, list, and the free-form `options` mappings) is replaced whole."""
    merged = copy.deepcopy(dict(base))
    hints = typing.get_type_hints(schema)
    for key, value in child.items():
        hint = hints.get(key)
        if dataclasses.is_dataclass(hint) and (value is None or isinstance(value, Mapping)):
            below = merged.get(key)
            merged[key] = merge_config_data(hint, below if isinstance(below, Mapping) else {}, value or {})
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _read_yaml_mapping(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        loaded = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from error
    if loaded is not None and not isinstance(loaded, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections")
    return loaded or {}


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
    """Write the resolved config next to an output so every result says how it was made; atomically
    (a temporary file renamed), so a kill never leaves a truncated config that `export` would read."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(dump_yaml(config, header=header))
    os.replace(tmp, path)
    return path
