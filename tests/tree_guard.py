"""A pytest plugin that fails the run when its tests create or change files inside the source tree.

A test run once wrote ``config.json`` and ``finetune/`` into the repository's root and they were committed
(removed in 3e3043a): a test's output belongs under ``tmp_path``. The plugin takes a picture of the checkout
when the session starts — ``git status --porcelain --untracked-files=all`` with each listed file's size and
mtime, and the names at the repository's root (``runs/`` and other ignored names too) — and again when it
ends, and lists what differs. Under pytest-xdist only the controller looks (before the workers start, after
they end). Outside a git checkout, or without git, it does nothing. ``tests/conftest.py`` registers it; a
pytest run elsewhere loads it with ``-p tree_guard`` (``tests/`` on ``PYTHONPATH``).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

# what pytest itself writes at the root of the tree it runs in
OWN_NAMES = frozenset({".pytest_cache", "__pycache__"})

_KEY = pytest.StashKey["Snapshot"]()
_FOUND = pytest.StashKey[list]()


class Snapshot:
    """The checkout's state a run must leave as it found: git's status lines with each listed path's size and
    mtime (a file already modified before the run and written again keeps its status line), and the root's
    names (what git ignores there, e.g. ``runs/``, is listed by no status)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.status = _status(root)
        self.stamps = {path: _stamp(root / path) for path in self.status}
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
        listed = {path.split("/")[0] for path in now.status}
        lines += [f"new at the root: {name}" for name in now.names - self.names - listed]
        return sorted(set(lines))


def _status(root: Path) -> dict[str, str]:
    out = subprocess.run(
        ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=all", "-z"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return {entry[3:]: entry[:2] for entry in out.split("\0") if len(entry) > 3}


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
