"""Rules of the code base that a reviewer would otherwise have to re-check by hand."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "avdiff"
MAX_FUNCTION_LINES = 60


def long_functions(limit: int) -> list[str]:
    """`path:line name (N lines)` for every function or method in avdiff/ longer than `limit`."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > limit:
                    found.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {node.name} ({lines} lines)")
    return found


def test_no_function_is_longer_than_60_lines():
    assert long_functions(MAX_FUNCTION_LINES) == []


def test_the_length_check_sees_long_functions():
    assert long_functions(5), "the scan found no function over 5 lines: it is not reading the package"


def test_the_time_grid_is_declared_once():
    """16 kHz / 25 fps / 640 samples / hop 128: only avdiff/timegrid.py says so."""
    declared = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.Assign, ast.AnnAssign)) and isinstance(getattr(node, "value", None), ast.Constant):
                if node.value.value in (16000, 25, 640, 128) and path.name != "timegrid.py":
                    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                    names = [t.id for t in targets if isinstance(t, ast.Name) and t.id.isupper()]
                    declared += [f"{path.relative_to(PACKAGE.parent)}: {name}" for name in names]
    assert declared == []
