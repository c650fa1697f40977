"""A pytest plugin that fails the run when its tests create or change files inside the source tree.

A test run once wrote ``config.json`` and ``finetune/`` into the repository's root and they were committed
(removed in 3e3043a): a test's output belongs under ``tmp_path``. The plugin takes a picture of the checkout
when the session starts — ``git status --porcelain --untracked-files=all --ignored=matching`` with each listed
path's size and mtime (ignored files such as a ``*.safetensors`` beside the sources are listed; git lists an
ignored folder such as ``runs/`` whole, so the guard lists what is inside it too, at any depth: a file written
into a ``runs/demo/`` there before changes no mtime git's line shows — but for a virtual environment, whose
tens of thousands of files would cost a second a look, and whose own mtime tells an entry added right inside
it), the empty folders among the untracked ones (git lists no folder), and the names at the repository's
root — and again when it ends, and lists what differs. Under pytest-xdist only the controller looks (before
the workers start, after they end). Outside a git checkout, or without git, it does nothing.
``tests/conftest.py`` registers it; a pytest run elsewhere loads it with ``-p tree_guard`` (``tests/`` on
``PYTHONPATH``).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

# what pytest and Python write in the tree they run in, and the caches of the linters `make lint` runs
# (ruff's, mypy's): one run beside the tests — in a fresh clone, or after an upgrade — made its folder and
# failed a `make test` of half an hour that no test had written into (session 65 review)
OWN_NAMES = frozenset({".pytest_cache", "__pycache__", ".ruff_cache", ".mypy_cache"})

_KEY = pytest.StashKey["Snapshot"]()
_FOUND = pytest.StashKey[list]()


class Snapshot:
    """The checkout's state a run must leave as it found: git's status lines, the ignored paths' (``!!``)
    too, with each listed path's size and mtime (a file already modified before the run and written again
    keeps its status line), the untracked empty folders, and the root's names."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.status = _status(root)
        self.status.update(dict.fromkeys(_empty_folders(root), "??"))
        self.stamps = {path: _stamp(root / path) for path in self.status}
        self.inside = {
            path: _tree(root, path)
            for path, code in self.status.items()
            if code == "!!" and path.endswith("/") and not (root / path / "pyvenv.cfg").exists()
        }
        self.names = {p.name for p in root.iterdir()} - OWN_NAMES

    def changes(self) -> list[str]:
        """``git status``-style lines (``?? path``, `` M path``) of what differs from ``self`` now."""
        now = Snapshot(self.root)
        lines = [f"{code} {path}" for path, code in now.status.items() if self.status.get(path) != code]
        lines += [
            f"{code} {path} (written again)"
            for path, code in now.status.items()
            if self.status.get(path) == code and now.stamps[path] != self.stamps[path]
        ]
        lines += [
            f"{self.status[path]} {path} (no longer so)" for path in self.status if path not in now.status
        ]
        for folder, before in self.inside.items():  # a folder there before: what changed inside it, named
            after = now.inside.get(folder)
            if after is None:
                continue
            lines += [f"!! {path}" for path in after if path not in before]
            lines += [
                f"!! {path} (written again)"
                for path in after
                if path in before and after[path] != before[path]
            ]
            gone = [path for path in before if path not in after]  # an empty folder filled is not gone
            lines += [
                f"!! {path} (no longer so)"
                for path in gone
                if not (path.endswith("/") and any(p.startswith(path) for p in after))
            ]
            if after != before:  # the folder's own line says no more than the paths inside it
                lines = [line for line in lines if line != f"!! {folder} (written again)"]
        listed = {path.split("/")[0] for path in now.status}
        lines += [f"new at the root: {name}" for name in now.names - self.names - listed]
        return sorted(set(lines))


def _git(root: Path, *args: str) -> list[str]:
    """``git ARGS -z``'s entries, without the optional lock: the index is not rewritten under a user's git."""
    cmd = ["git", "--no-optional-locks", "-C", str(root), *args, "-z"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return [entry for entry in out.stdout.split("\0") if entry]


def _status(root: Path) -> dict[str, str]:
    """Path -> status code; the ignored paths matched by a pattern too (not what is inside an ignored folder),
    but none of :data:`OWN_NAMES` (what pytest and Python write themselves, the linters' caches)."""
    entries = _git(root, "status", "--porcelain", "--untracked-files=all", "--ignored=matching")
    return {
        entry[3:]: entry[:2]
        for entry in entries
        if len(entry) > 3 and OWN_NAMES.isdisjoint(entry[3:].rstrip("/").split("/"))
    }


def _empty_folders(root: Path) -> list[str]:
    """The empty folders (``dir/``) inside the untracked folders git names, which no status line lists."""
    found = []
    for entry in _git(root, "ls-files", "--others", "--directory", "--exclude-standard"):
        if not entry.endswith("/") or not OWN_NAMES.isdisjoint(entry.rstrip("/").split("/")):
            continue
        for folder, dirs, files in os.walk(root / entry):
            if not dirs and not files:
                found.append(Path(folder).relative_to(root).as_posix() + "/")
            dirs[:] = [d for d in dirs if d not in OWN_NAMES]
    return found


def _tree(root: Path, folder: str) -> dict[str, tuple[int, int] | None]:
    """The files (size, mtime) and empty folders (``dir/``, no stamp) inside ``folder``, at any depth: what a
    test writes there shows, however deep."""
    found: dict[str, tuple[int, int] | None] = {}
    pending = [folder.rstrip("/")]
    while pending:
        current = pending.pop()
        try:
            entries = list(os.scandir(root / current))
        except OSError:
            continue
        if not entries and current != folder.rstrip("/"):
            found[current + "/"] = None
        for entry in entries:
            path = f"{current}/{entry.name}"
            try:
                if entry.is_dir(follow_symlinks=False):
                    if entry.name not in OWN_NAMES:
                        pending.append(path)
                else:
                    st = entry.stat(follow_symlinks=False)
                    found[path] = (st.st_size, st.st_mtime_ns)
            except OSError:
                continue
    return found


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        st = path.lstat()
    except OSError:
        return None
    return (st.st_size, st.st_mtime_ns)


def _git_root(start: Path) -> Path | None:
    try:
        out = subprocess.run(
            ["git", "-C", str(start), "rev-parse", "--show-toplevel"], capture_output=True, text=True
        )
    except OSError:  # no git
        return None
    return Path(out.stdout.strip()) if out.returncode == 0 and out.stdout.strip() else None


def pytest_sessionstart(session: pytest.Session) -> None:
    """The picture before any test runs (controller only: a worker's session starts after others ran)."""
    if hasattr(session.config, "workerinput"):
        return
    root = _git_root(session.config.rootpath)
    if root is not None:
        session.config.stash[_KEY] = Snapshot(root)


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Fail the run when the tree differs from its picture (the list is printed by the terminal summary)."""
    snapshot = session.config.stash.get(_KEY, None)
    if snapshot is None:
        return
    found = snapshot.changes()
    if found:
        session.config.stash[_FOUND] = found
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:
    found = config.stash.get(_FOUND, None)
    if found:
        root = config.stash[_KEY].root
        terminalreporter.section("files written into the source tree", sep="=", red=True, bold=True)
        terminalreporter.write_line(
            f"the tests created or changed {len(found)} path(s) in {root} (or someone edited them during the "
            "run) — a test writes under tmp_path; delete these and fix the test that wrote them:"
        )
        for line in found:
            terminalreporter.write_line(f"  {line}")
