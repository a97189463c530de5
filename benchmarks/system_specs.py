"""Systems named on the command line as `name:key=value,key=value` (benchmark scripts of this folder)."""

from __future__ import annotations


def parse_value(text: str) -> float | int | str | None:
    """'1' -> 1, '0.5' -> 0.5, 'none' -> None, anything else stays text."""
    if text.lower() in ("none", "null"):
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def parse_system(spec: str) -> tuple[str, dict]:
    """'name:key=value,key=value' -> (name, {key: value})."""
    name, _, rest = spec.partition(":")
    pairs = [pair.split("=", 1) for pair in rest.split(",") if pair]
    if any(len(pair) != 2 for pair in pairs):
        raise SystemExit(f"{spec!r}: expected name:key=value,key=value")
    return name, {key: parse_value(value) for key, value in pairs}
