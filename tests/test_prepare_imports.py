"""`avdiff/prepare/` imports no circle: each module's imports (function-level ones included),
read from the source, form a graph without cycles."""

from __future__ import annotations

import ast
from pathlib import Path

PREPARE = Path(__file__).resolve().parents[1] / "avdiff" / "prepare"


def _imports(path: Path) -> set[str]:
    """The avdiff.prepare modules `path` imports anywhere in its source."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name.startswith("avdiff.prepare.")}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of `graph`, or None."""
    def visit(name: str, path: list[str]) -> list[str] | None:
        if name in path:
            return path[path.index(name):] + [name]
        for child in sorted(graph.get(name, ())):
            cycle = visit(child, path + [name])
            if cycle:
                return cycle
        return None

    for start in sorted(graph):
        cycle = visit(start, [])
        if cycle:
            return cycle
    return None


def test_the_cycle_finder_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"a"}}) == ["a", "b", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_prepare_modules_import_no_circle():
    graph = {f"avdiff.prepare.{path.stem}": _imports(path) for path in PREPARE.glob("*.py")
             if path.stem != "__init__"}
    assert "avdiff.prepare.settings" in graph["avdiff.prepare.audio_item"]  # the graph is read
    assert _cycle(graph) is None, " -> ".join(_cycle(graph))
