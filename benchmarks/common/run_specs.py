"""Run specs named on the command line as `name:key=value,key=value` (a sampler, an enhancement
method or a pipeline job with changed settings), parsed for the benchmark scripts."""

from __future__ import annotations

from typing import Any

import yaml


def parse_value(text: str) -> Any:
    """A value as YAML reads it ('12' -> 12, '0.5' -> 0.5, 'true' -> True), with 'none' -> None too."""
    return None if text.lower() == "none" else yaml.safe_load(text)


def parse_run_spec(spec: str) -> tuple[str, dict]:
    """'name:key=value,key=value' -> (name, {key: value})."""
    name, _, rest = spec.partition(":")
    pairs = [pair.split("=", 1) for pair in rest.split(",") if pair]
    if any(len(pair) != 2 for pair in pairs):
        raise SystemExit(f"{spec!r}: expected name:key=value,key=value")
    return name, {key: parse_value(value) for key, value in pairs}


def parse_options(pairs: list[str]) -> dict:
    """['key=value', ...] (a harness's --options) -> {key: value}, values as `parse_value` reads them."""
    split = [pair.split("=", 1) for pair in pairs]
    if any(len(pair) != 2 for pair in split):
        raise SystemExit(f"{pairs!r}: expected key=value")
    return {key: parse_value(value) for key, value in split}
