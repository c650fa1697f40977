"""The shape of the code: package imports form a DAG; no private name is imported from another module
(nor by tests and benchmarks from the packages).

Read from the source with ``ast`` (nothing is imported), every import counted — also those inside
functions, which are circles all the same. Nodes are subpackages (``attiqa.scorers``) and top-level
modules (``attiqa.scoring``); the ``attiqa`` facade (``attiqa/__init__.py``) is left out, it only
re-exports lazily.
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from contextlib import suppress
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("attiqa", "genbench", "isp_env")

# Known violations (none left): a violation may only be pinned here while it is being removed, and the test
# fails when a pinned one is fixed but still listed, so the lists only shrink.
KNOWN_PRIVATE_IMPORTS: set[tuple[str, str, str]] = set()
KNOWN_CYCLES: set[frozenset[str]] = set()


def _modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = path
    return out


def _imports(
    name: str, path: Path, modules: dict[str, Path], tree: ast.Module | None = None
) -> list[tuple[str, str | None, int]]:
    """(imported module, imported name or None, line) for every import statement of a module (of ``tree``,
    parsed from it, when given)."""
    tree = tree or ast.parse(path.read_text(encoding="utf-8"))
    is_pkg = path.name == "__init__.py"
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(a.name, None, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_pkg else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            for a in node.names:
                sub = f"{mod}.{a.name}"
                found.append((sub, None, node.lineno) if sub in modules else (mod, a.name, node.lineno))
    return [f for f in found if f[0].split(".")[0] in PACKAGES]


def _node(module: str) -> str | None:
    parts = module.split(".")
    if len(parts) == 1:
        return None if parts[0] == "attiqa" else parts[0]  # genbench / isp_env are one node each
    return ".".join(parts[:2]) if parts[0] == "attiqa" else parts[0]


def test_no_private_name_is_imported_from_another_module():
    modules = _modules()
    bad = set()
    for name, path in modules.items():
        for mod, imported, _ in _imports(name, path, modules):
            if imported and imported.startswith("_") and not imported.startswith("__") and mod != name:
                bad.add((name, mod, imported))
    assert bad - KNOWN_PRIVATE_IMPORTS == set(), "private names imported across modules"
    assert KNOWN_PRIVATE_IMPORTS - bad == set(), "fixed: remove these from KNOWN_PRIVATE_IMPORTS"


def test_tests_and_benchmarks_use_only_public_names_of_the_packages():
    """What a test or a benchmark needs from a package is part of its interface: public."""
    modules = _modules()
    bad = []
    for folder in ("tests", "benchmarks"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            for mod, imported, line in _imports(path.stem, path, modules):
                if imported and imported.startswith("_") and not imported.startswith("__"):
                    bad.append(f"{path.relative_to(ROOT)}:{line} imports {mod}.{imported}")
    assert bad == [], "private names imported from the packages:\n" + "\n".join(bad)


def test_no_module_but_a_package_face_re_exports_a_name():
    """A name has one home. A module that imports a name only to hand it on (``from m import x as x``, the
    form ruff and mypy read as a re-export, or an import kept with ``noqa: F401``) gives callers two
    spellings of one thing and leaves a move half done; session 57 pointed their users at the real homes.
    A package's ``__init__.py`` (its face, often lazy: ``attiqa/lazy.py``) may re-export."""
    bad = []
    for path in _modules().values():
        if path.name == "__init__.py":
            continue
        text = path.read_text(encoding="utf-8")
        lines = text.splitlines()
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.Import):
                bad += [f"{path.relative_to(ROOT)}:{node.lineno} import {a.name} as {a.asname}"
                        for a in node.names if a.asname == a.name]  # fmt: skip
            elif isinstance(node, ast.ImportFrom):
                where = f"{path.relative_to(ROOT)}:{node.lineno} from {node.module}"
                bad += [f"{where} import {a.name} as {a.asname}" for a in node.names if a.asname == a.name]
                span = lines[node.lineno - 1 : node.end_lineno or node.lineno]
                if any("noqa: F401" in line for line in span):
                    bad.append(f"{where} import ... (kept unused: noqa: F401)")
    assert bad == [], (
        "names re-exported outside a package __init__ (import them from their home):\n" + "\n".join(bad)
    )


# Modules (not package faces) whose ``__all__`` hands on names defined elsewhere, and why.
NAMESPACE_FACES = {
    "attiqa.training.distributed": "training code's `D.` namespace (D.rank(), D.barrier()): the "
    "process-group helpers of attiqa.sharding beside training's own; a `from` import takes them from "
    "attiqa.sharding",
}


def _defined(tree: ast.Module) -> tuple[set[str], set[str]]:
    """(names a module binds at its top level by def, class or assignment — also inside if / try / with;
    the names its ``__all__`` lists)."""
    defined: set[str] = set()
    listed: set[str] = set()

    def walk(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                defined.add(node.name)
            elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                defined.update(n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name))
                if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets) and node.value:
                    listed.update(n.value for n in ast.walk(node.value) if isinstance(n, ast.Constant))
            elif isinstance(node, (ast.If, ast.Try, ast.With, ast.For, ast.While)):
                for field in ("body", "orelse", "finalbody"):
                    walk(getattr(node, field, []))
                for handler in getattr(node, "handlers", []):
                    walk(handler.body)

    walk(tree.body)
    return defined, listed


def _sources() -> list[tuple[str, Path, ast.Module]]:
    """Every first-party module, test, benchmark and experiment script, and the Python scripts the tests hold
    in strings (run under torchrun or in a subprocess), parsed."""
    modules = _modules()
    out = [(name, path, ast.parse(path.read_text(encoding="utf-8"))) for name, path in modules.items()]
    for folder in ("tests", "benchmarks", "experiments"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            out.append((path.stem, path, tree))
            for node in ast.walk(tree):
                if isinstance(node, ast.Constant) and isinstance(node.value, str) and "import " in node.value:
                    with suppress(SyntaxError):  # prose, or a template filled in later
                        script = ast.parse(node.value)
                        out.append((path.stem, path, ast.increment_lineno(script, node.lineno - 1)))
    return out


def test_names_are_imported_from_the_module_that_defines_them():
    """``from m import x`` names the module that defines ``x``, not one that only imports it to use: a name
    with two spellings (``attiqa.interface.ScorerInfo``, ``training.data.split_indices`` in 17 experiment
    scripts, ``genbench.prefs.VOTES_DB``) keeps a dependency nobody sees and breaks when the user stops
    importing it. A package's ``__init__.py`` may hand on what its ``__all__`` lists (its face: ``attiqa``,
    ``attiqa.cli``, ``attiqa.scorers``, ...)."""
    modules = _modules()
    homes = {name: _defined(ast.parse(path.read_text(encoding="utf-8"))) for name, path in modules.items()}
    bad = set()
    for name, path, tree in _sources():
        for mod, imported, line in _imports(name, path, modules, tree):
            if imported is None or imported == "*" or mod not in homes:
                continue
            defined, listed = homes[mod]
            face = modules[mod].name == "__init__.py"
            if imported not in defined and not (face and imported in listed):
                bad.add(f"{path.relative_to(ROOT)}:{line} from {mod} import {imported}")
    assert not bad, "names imported from a module that does not define them:\n" + "\n".join(sorted(bad))


def test_only_a_package_face_lists_names_of_other_modules_in_all():
    """A module's ``__all__`` is what it offers; listing a name it only imports (``pretrain.py``'s
    ``weights_hash``, ``finetune.py``'s ``lr_factor``) invites the imports the test above refuses.
    :data:`NAMESPACE_FACES` are the exceptions, each with its reason."""
    bad = []
    for name, path in _modules().items():
        if path.name == "__init__.py" or name in NAMESPACE_FACES:
            continue
        defined, listed = _defined(ast.parse(path.read_text(encoding="utf-8")))
        bad += [f"{path.relative_to(ROOT)}: __all__ lists {n}" for n in sorted(listed - defined)]
    assert bad == [], "names handed on through __all__ (import them from their home):\n" + "\n".join(bad)


def _cycles(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """Strongly connected components with more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[frozenset[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                on.discard(w)
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(frozenset(comp))

    for v in list(graph):
        if v not in index:
            visit(v)
    return out


def package_graph() -> tuple[dict[str, set[str]], dict[tuple[str, str], str]]:
    modules = _modules()
    graph: dict[str, set[str]] = defaultdict(set)
    why: dict[tuple[str, str], str] = {}
    for name, path in modules.items():
        src = _node(name)
        for mod, _, line in _imports(name, path, modules):
            dst = _node(mod)
            if src and dst and src != dst:
                graph[src].add(dst)
                why.setdefault((src, dst), f"{path.relative_to(ROOT)}:{line} imports {mod}")
    return graph, why


def test_package_imports_form_a_dag():
    graph, why = package_graph()
    cycles = set(_cycles(graph))
    explain = []
    for comp in cycles - KNOWN_CYCLES:
        explain += [why[(a, b)] for a in comp for b in graph[a] if b in comp]
    assert cycles - KNOWN_CYCLES == set(), "import circle between packages:\n" + "\n".join(sorted(explain))
    assert KNOWN_CYCLES - cycles == set(), "fixed: remove these from KNOWN_CYCLES"


def test_libraries_never_import_the_command_line():
    """genbench / isp_env use only ``attiqa.cli``'s common runner; nothing outside ``attiqa.cli`` imports
    a subcommand module, and subcommand modules never import the CLI root."""
    modules = _modules()
    for name, path in modules.items():
        for mod, _, line in _imports(name, path, modules):
            where = f"{path.relative_to(ROOT)}:{line} imports {mod}"
            if not name.startswith("attiqa.cli"):
                assert mod in ("attiqa.cli", "attiqa.cli._common") or not mod.startswith("attiqa.cli"), where
            elif name not in ("attiqa.cli", "attiqa.cli.app", "attiqa.cli.__main__"):
                assert mod not in ("attiqa.cli", "attiqa.cli.app"), where


def test_inference_does_not_import_training():
    modules = _modules()
    for name in ("attiqa.scorers", "attiqa.scoring", "attiqa.models", "attiqa.evaluation.evaluate"):
        for sub, path in modules.items():
            if sub == name or sub.startswith(name + "."):
                for mod, _, line in _imports(sub, path, modules):
                    assert not mod.startswith("attiqa.training"), f"{path.relative_to(ROOT)}:{line} {mod}"


def test_every_data_loader_comes_from_the_one_factory():
    """``attiqa.io.batching.data_loader`` sets every loader's ``worker_init`` (a SIGTERM to the process
    group ends decode workers quietly); a module calling ``DataLoader(...)`` itself would forget it."""
    modules = _modules()
    calls = []
    for name, path in modules.items():
        if name == "attiqa.io.batching":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call):
                f = node.func
                called = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ""
                if called == "DataLoader":
                    calls.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert calls == [], "build loaders with attiqa.io.batching.data_loader:\n" + "\n".join(calls)
    factory = ast.parse(modules["attiqa.io.batching"].read_text(encoding="utf-8"))
    assert any(
        kw.arg == "worker_init_fn"
        for node in ast.walk(factory)
        if isinstance(node, ast.Call)
        for kw in node.keywords
    )


def test_the_package_map_names_every_module_of_attiqa():
    """docs/architecture.md's map is where a newcomer looks a module up: every top-level module and
    subpackage of `attiqa` is in one of its rows (the package root, which is in none, is named below it).
    Session 49 found `attiqa/__init__.py` in no row; a module added without a row fails here."""
    doc = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    rows = "\n".join(line for line in doc.splitlines() if line.startswith("|"))
    named = set(re.findall(r"`(?:attiqa/)?([\w.]+/?)`", rows))
    pkg = ROOT / "attiqa"
    modules = [p.name for p in pkg.glob("*.py") if p.name != "__init__.py"]
    packages = [p.parent.name + "/" for p in pkg.glob("*/__init__.py")]
    missing = sorted(set(modules + packages) - named)
    assert not missing, f"docs/architecture.md's package map does not name: {', '.join(missing)}"
    assert "`attiqa/__init__.py`" in doc


# The only words with a digit a test file's name may hold: real names (datasets) that are spelled with one.
NAMES_WITH_DIGITS = {"agiqa3k", "biq2021"}


def test_test_files_are_named_by_what_they_test_not_by_a_session():
    """Half the test files were once named after the session that wrote them (test_audit48.py,
    test_mend256_launch.py): nobody looking for "the tests of isp-tune's resume" could find them. A name's
    words hold no digit but in a real name listed above; say what is checked (test_<area>_<concern>.py)."""
    numbered = sorted(
        path.name
        for path in (ROOT / "tests").glob("test_*.py")
        if any(re.search(r"\d", word) and word not in NAMES_WITH_DIGITS for word in path.stem.split("_"))
    )
    assert not numbered, (
        f"tests named by a number, not by what they test: {', '.join(numbered)} — rename them "
        "test_<area>_<concern>.py (git mv; docs/robustness.md rows cite them)"
    )
