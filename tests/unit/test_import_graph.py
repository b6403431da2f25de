"""No import circles in src/qtts: every import (at module level or inside a function, where
qtts imports heavy modules lazily) is an arrow from one module to another, and no arrow path
leads back to where it started."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).parents[2] / "src"


def _modules() -> dict[str, Path]:
    found = {}
    for path in (SRC / "qtts").rglob("*.py"):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _imports(path: Path, module: str, known: dict[str, Path]) -> set[str]:
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    targets = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                whole = f"{base}.{alias.name}"
                targets.add(whole if whole in known else base)
    return {t for t in targets if t in known and t != module}


def test_src_has_no_import_circles():
    known = _modules()
    graph = {module: _imports(path, module, known) for module, path in known.items()}
    assert len(graph) > 50 and sum(map(len, graph.values())) > 100  # the walk sees the house
    circles, state = [], {}

    def visit(module: str, trail: list[str]) -> None:
        state[module] = "open"
        for target in sorted(graph[module]):
            if state.get(target) == "open":
                circles.append(" -> ".join(trail[trail.index(target):] + [target]))
            elif target not in state:
                visit(target, trail + [target])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    # A package's __init__ importing its own submodules is not a circle of the house.
    circles = [c for c in circles if not _package_self_import(c)]
    assert not circles, "import circles:\n" + "\n".join(circles)


def _package_self_import(circle: str) -> bool:
    names = circle.split(" -> ")
    return all(n.startswith(names[0] + ".") or n == names[0] for n in names) or \
        all(names[0].startswith(n + ".") or n == names[0] for n in names)


def test_every_package_says_what_it_is_for():
    """A newcomer reads the tree: each package of src/qtts opens with a docstring."""
    missing = []
    for folder in sorted({path.parent for path in (SRC / "qtts").rglob("*.py")}):
        init = folder / "__init__.py"
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8"))) if init.exists() else None
        if not doc or len(doc.split()) < 8:
            missing.append(str(init.relative_to(SRC)))
    assert not missing, f"packages without a docstring: {missing}"
