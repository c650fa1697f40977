"""Issue 17: the training package is one loop with no import circles and no private names shared
between its modules (imports anywhere in a module count, including those inside functions)."""

from __future__ import annotations

import ast
from pathlib import Path

import attiqa

TRAINING = Path(attiqa.__file__).parent / "training"


def _imports(path: Path) -> list[tuple[str, list[str]]]:
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("attiqa"):
            out.append((node.module, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            out += [(a.name, []) for a in node.names if a.name.startswith("attiqa")]
    return out


def test_training_modules_import_each_other_without_circles_or_private_names():
    graph: dict[str, set[str]] = {}
    for f in TRAINING.glob("*.py"):
        mod = f"attiqa.training.{f.stem}"
        graph[mod] = set()
        for target, names in _imports(f):
            private = [n for n in names if n.startswith("_") and not n.startswith("__")]
            assert not private, f"{f.name} imports private {private} from {target}"
            if target.startswith("attiqa.training."):
                graph[mod].add(target)
            elif target == "attiqa.training":
                graph[mod] |= {f"attiqa.training.{n}" for n in names}
    seen: dict[str, int] = {}  # 1 = on the current path, 2 = done

    def visit(m: str, path: list[str]) -> None:
        if seen.get(m) == 1:
            raise AssertionError("import circle: " + " -> ".join(path[path.index(m) :] + [m]))
        if seen.get(m) == 2:
            return
        seen[m] = 1
        for n in sorted(graph.get(m, ())):
            visit(n, path + [m])
        seen[m] = 2

    for m in sorted(graph):
        visit(m, [])
    assert "attiqa.training.trainer" in graph and "attiqa.training.sources" in graph
