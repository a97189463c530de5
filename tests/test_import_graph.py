"""The shape of avdiff's imports, read from the source (imports inside functions included, those
under `if TYPE_CHECKING:` not): no module imports itself back through others, and the floors
stay in order (the web app and the library below the CLI never import the CLI's commands; the
posterior methods never import the pipeline that runs them)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "avdiff"


def module_files(root: Path = PACKAGE) -> dict[str, Path]:
    """Dotted module name -> file, for every module and package of avdiff."""
    found = {}
    for path in root.rglob("*.py"):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def imports_of(path: Path, modules: dict[str, Path]) -> set[str]:
    """The avdiff modules `path` imports anywhere (`from a.b import c` counts as a.b.c when c is a module)."""
    found: set[str] = set()
    pending = [ast.parse(path.read_text())]
    while pending:
        for node in ast.iter_child_nodes(pending.pop()):
            if _type_checking(node):
                continue
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.update(f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module
                             for a in node.names)
            elif isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            pending.append(node)
    return {name for name in found if name in modules}


def import_graph() -> dict[str, set[str]]:
    modules = module_files()
    return {name: imports_of(path, modules) - {name} for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of `graph`, or None (depth-first, each module finished once)."""
    finished: set[str] = set()

    def visit(name: str, path: list[str]) -> list[str] | None:
        if name in path:
            return path[path.index(name):] + [name]
        if name in finished:
            return None
        for child in sorted(graph.get(name, ())):
            cycle = visit(child, path + [name])
            if cycle:
                return cycle
        finished.add(name)
        return None

    for start in sorted(graph):
        cycle = visit(start, [])
        if cycle:
            return cycle
    return None


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_avdiff_imports_no_circle():
    graph = import_graph()
    assert "avdiff.prepare.rejects" in graph["avdiff.prepare.audio_item"]  # the graph is read
    assert "avdiff.pipeline.channels" in graph["avdiff.commands.enhance"]  # function-level imports count
    cycle = find_cycle(graph)
    assert cycle is None, " -> ".join(cycle)


def test_no_floor_imports_the_one_above_it():
    graph = import_graph()
    below_the_cli = [name for name in graph if not name.startswith(("avdiff.commands", "avdiff.cli", "avdiff.__main__"))]
    upward = {name: sorted(m for m in graph[name] if m.startswith("avdiff.commands")) for name in below_the_cli}
    assert not {name: found for name, found in upward.items() if found}  # avdiff.serve included
    posterior = {name: sorted(m for m in graph[name] if m.startswith("avdiff.pipeline"))
                 for name in graph if name.startswith("avdiff.posterior")}
    assert not {name: found for name, found in posterior.items() if found}
