"""The tests and the APIs the READMEs and docs/*.md name exist.

docs/robustness.md cites the tests that hold each row and the APIs involved; reviews kept finding rows that
named renamed tests and removed functions. Read from the source with ``ast`` (nothing imported, no torch):
- `file.py::name` (a bare `test_*.py` is in tests/, `pkg/mod.py` from the root; `Class::method`, `[param]`)
  names a file that defines it; a name shortened with `…` is a prefix of one it defines; `…::name` and
  `` `::name` `` are of the file named last before them on the line.
- a backticked `attiqa.`, `isp_env.` or `genbench.` dotted name (a call's arguments dropped) is a module, a
  name its module binds (def, class, assignment, import: followed to its source), or an attribute of a class
  defined there.
History is no exception: a removed or renamed API is written unqualified (`advance(kept=True)`) or as removed,
so every qualified name in the docs reads as a current one."""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [
    ROOT / "README.md",
    *sorted((ROOT / "docs").glob("*.md")),
    *sorted(ROOT.glob("configs/**/README.md")),
    *sorted(ROOT.glob("experiments/**/README.md")),
]
PACKAGES = ("attiqa", "isp_env", "genbench")
CITED = re.compile(r"(?:\b((?:[\w.]+/)*\w+\.py)|…|(?<=`))::(\w+(?:::\w+)?)(…|\.\.\.)?")
INLINE = re.compile(r"(`+)(.+?)\1")
PY_FILE = re.compile(r"\b(?:[\w.]+/)*\w+\.py\b")
QUALIFIED = re.compile(r"(?<![\w./-])(?:" + "|".join(PACKAGES) + r")(?:\.\w+)+")


@cache
def module_tree(path: Path) -> ast.Module:
    """Parsed once: a module is looked up for every row that names it."""
    return ast.parse(path.read_text(encoding="utf-8"))


def top_level(body: list[ast.stmt]) -> dict[str, ast.stmt]:
    """Names a module or class body binds (defs, classes, assignments, imports), also under if/try/with."""
    names: dict[str, ast.stmt] = {}
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names[node.name] = node
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                for sub in ast.walk(target):
                    if isinstance(sub, ast.Name):
                        names[sub.id] = node
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                names[alias.asname or alias.name.split(".")[0]] = node
        elif isinstance(node, (ast.If, ast.Try, ast.With)):
            blocks = [node.body, getattr(node, "orelse", []), getattr(node, "finalbody", [])]
            blocks += [h.body for h in getattr(node, "handlers", [])]
            for block in blocks:
                names.update(top_level(block))
    return names


def class_attributes(cls: ast.ClassDef) -> set[str]:
    """A class's own names plus the `self.x` its methods assign."""
    names = set(top_level(cls.body))
    for node in ast.walk(cls):
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
                value = target.value if isinstance(target, ast.Attribute) else None
                if isinstance(value, ast.Name) and value.id == "self":
                    names.add(target.attr)
    return names


def module_file(dotted: str, root: Path = ROOT) -> Path | None:
    base = root.joinpath(*dotted.split("."))
    for candidate in (base / "__init__.py", base.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def resolves(name: str, root: Path = ROOT, depth: int = 0) -> bool:
    """Whether `pkg.mod.Name.attr` is a module, a name its module binds, or an attribute of a class there;
    a name the module imports from the project is followed to its source."""
    parts = name.split(".")
    for cut in range(len(parts), 0, -1):
        path = module_file(".".join(parts[:cut]), root)
        if path is not None:
            break
    else:
        return False
    rest = parts[cut:]
    if not rest:
        return True
    bound = top_level(module_tree(path).body).get(rest[0])
    if bound is None or len(rest) == 1:
        return bound is not None
    if isinstance(bound, ast.ClassDef):
        return len(rest) == 2 and rest[1] in class_attributes(bound)
    if isinstance(bound, ast.ImportFrom) and depth < 5:
        package = ".".join(parts[:cut]) if path.name == "__init__.py" else ".".join(parts[: cut - 1])
        for alias in bound.names:
            if (alias.asname or alias.name) == rest[0]:
                source = bound.module or ""
                if bound.level:
                    up = package.split(".")[: len(package.split(".")) - bound.level + 1]
                    source = ".".join([*up, source] if source else up)
                return resolves(".".join([source, alias.name, *rest[1:]]), root, depth + 1)
    return False


def cited_name_exists(file: str, name: str, prefix: bool = False, root: Path = ROOT) -> bool:
    """Whether `file` (tests/`file` when bare, else from the repository root) binds `name` (`Class::method`
    too); with ``prefix`` (a name the doc shortens with `…`), a name that starts with it."""
    path = root / file if "/" in file else root / "tests" / file
    if not path.is_file():
        return False
    scope: list[ast.stmt] = module_tree(path).body
    *outer, last = name.split("::")
    for part in outer:
        node = top_level(scope).get(part)
        if not isinstance(node, ast.ClassDef):
            return False
        scope = node.body
    return any(n == last or (prefix and n.startswith(last)) for n in top_level(scope))


def inline_code(text: str) -> list[tuple[int, str]]:
    """(line number, content) of every inline code span outside fenced blocks."""
    spans: list[tuple[int, str]] = []
    offset = 0
    for chunk in re.split(r"(^```.*?^```[^\n]*$)", text, flags=re.S | re.M):
        if not chunk.startswith("```"):
            for match in INLINE.finditer(chunk):
                spans.append((text.count("\n", 0, offset + match.start()) + 1, match.group(2).strip()))
        offset += len(chunk)
    return spans


def reference_faults(text: str, root: Path = ROOT) -> list[str]:
    """(line number: what is wrong) for every cited test that is not defined and every qualified name that
    does not resolve."""
    faults: list[str] = []
    for i, line in enumerate(text.split("\n"), start=1):
        for match in CITED.finditer(line):
            cited, name, shortened = match.groups()
            if cited is None and not name.lower().startswith("test"):
                continue  # `::1` is an address, not a citation
            named = PY_FILE.findall(line[: match.start()])
            file = cited or (named[-1] if named else None)  # `…::test_x`: the file named last before it
            if file is None:
                faults.append(f"{i}: ::{name} follows no file.py::name citation on its line")
            elif not cited_name_exists(file, name, bool(shortened), root):
                faults.append(f"{i}: {file} defines no {name}{shortened or ''}")
    for i, span in inline_code(text):
        for found in QUALIFIED.finditer(span):
            if not resolves(found.group(0), root):
                faults.append(f"{i}: {found.group(0)} is neither a module nor a name defined in one")
    return faults


def test_the_checker_finds_stale_tests_and_names() -> None:
    good = (
        "| row | `attiqa.progress.progress_task(kept=…)`, `attiqa.scoring.ScoreWriter`, `isp_env.run` "
        "| `test_doc_references.py::test_the_checker_finds_stale_tests_and_names`, `…::test_every_cited…` |\n"
        '`attiqa.create_scorer("attiqa-default").info.score_range`, `torchrun -m attiqa.cli` and'
        " test_doc_tables.py::test_every_table_renders[README.md], `attiqa/cli/_common.py::run_app`\n"
        "served on `http://[::1]:8000/`\n"
        "```\nattiqa.not_here.x\n```\n"
    )
    assert reference_faults(good) == []
    bad = (
        "a row citing test_doc_tables.py::test_gone and test_nowhere.py::test_x, `…::test_gone_too`\n"
        "renamed `attiqa.progress.no_such_function(kept=True)`, `python -m isp_env.nomodule`,\n"
        "`attiqa.scoring.ScoreWriter.no_method` (`attiqa/protocols.py::no_such_helper`)\n"
        "`::test_orphan`, `test_doc_tables.py::test_no_test_starts_so…`\n"
    )
    assert reference_faults(bad) == [
        "1: test_doc_tables.py defines no test_gone",
        "1: test_nowhere.py defines no test_x",
        "1: test_nowhere.py defines no test_gone_too",
        "3: attiqa/protocols.py defines no no_such_helper",
        "4: ::test_orphan follows no file.py::name citation on its line",
        "4: test_doc_tables.py defines no test_no_test_starts_so…",
        "2: attiqa.progress.no_such_function is neither a module nor a name defined in one",
        "2: isp_env.nomodule is neither a module nor a name defined in one",
        "3: attiqa.scoring.ScoreWriter.no_method is neither a module nor a name defined in one",
    ]


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_cited_test_and_api_exists(doc: Path) -> None:
    assert reference_faults(doc.read_text(encoding="utf-8")) == [], doc.name
