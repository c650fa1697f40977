"""The suite's own guards, each run as pytest runs it (a subprocess on tiny test files in a folder of its
own): ``tree_guard`` fails a run whose tests write into the checkout, ``serial_files`` keeps `pytest -m
serial` to the files of the serial tests and fails a run holding a serial test outside them, ``file_order``
hands out first the files that took longest at the last run."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from serial_files import SERIAL_FILES

TESTS = Path(__file__).resolve().parent

STRAY = """
from pathlib import Path

HERE = Path(__file__).parent


def test_writes_a_config_and_a_run_beside_the_sources():
    (HERE / "config.json").write_text("{}")
    (HERE / "finetune").mkdir()
    (HERE / "finetune" / "last.safetensors").write_bytes(b"")


def test_changes_a_tracked_file():
    (HERE / "kept.txt").write_text("changed")


def test_makes_an_ignored_folder_at_the_root():
    (HERE / "runs" / "demo").mkdir(parents=True)


def test_makes_empty_folders():
    (HERE / "empty").mkdir()
    (HERE / "models" / "empty" / "deeper").mkdir(parents=True)


def test_writes_ignored_weights_beside_the_sources():
    (HERE / "models" / "w.safetensors").write_bytes(b"w")


def test_writes_an_ignored_file_again():
    (HERE / "models" / "old.safetensors").write_bytes(b"new")


def test_adds_to_an_ignored_folder_there_before():
    (HERE / "build" / "out.txt").write_text("x")


def test_writes_deeper_inside_an_ignored_folder():  # runs/demo/x.csv into a runs/demo/ there before
    (HERE / "build" / "demo" / "x.csv").write_text("x")


def test_writes_under_tmp_path(tmp_path):
    (tmp_path / "fine.txt").write_text("fine")
"""

CLEAN = """
from pathlib import Path

import kept_module

HERE = Path(__file__).parent


def test_writes_under_tmp_path(tmp_path):
    (tmp_path / "fine.txt").write_text(kept_module.WORD)


def test_meanwhile_make_lint_runs_in_the_checkout():  # ruff's and mypy's caches made as they make them
    for cache in (".ruff_cache", ".mypy_cache"):
        (HERE / cache / "0.1").mkdir(parents=True)
        (HERE / cache / ".gitignore").write_text("*")
"""


def pytest_run(folder: Path, plugin: str, *args: str, bytecode: str = "1") -> subprocess.CompletedProcess:
    """``pytest -p plugin ARGS`` in ``folder`` (the plugin from ``tests/``), as a user runs it;
    ``bytecode=""`` lets Python write its ``__pycache__/`` folders (as `make test` does)."""
    env = {**os.environ, "PYTHONPATH": str(TESTS), "PYTHONDONTWRITEBYTECODE": bytecode}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", plugin, "-p", "no:cacheprovider", *args],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
    )


def git_checkout(folder: Path, test_source: str) -> Path:
    """``folder``: a git checkout with a committed ``kept.txt``, ``kept_module.py``, ``models/keep.txt`` and
    ``test_it.py``; ``runs/``, ``build/`` and ``*.safetensors`` ignored, ``build/demo/`` and
    ``models/old.safetensors`` there."""
    (folder / "models").mkdir(parents=True)
    (folder / "build" / "demo").mkdir(parents=True)
    (folder / "build" / "old.txt").write_text("old")
    (folder / "models" / "keep.txt").write_text("kept")
    (folder / "models" / "old.safetensors").write_bytes(b"old")
    (folder / "kept.txt").write_text("kept")
    (folder / "kept_module.py").write_text("WORD = 'fine'\n")
    (folder / ".gitignore").write_text("__pycache__/\nruns/\nbuild/\n*.safetensors\n")
    (folder / "test_it.py").write_text(test_source)
    tracked = ["kept.txt", "kept_module.py", "models/keep.txt", ".gitignore", "test_it.py"]
    for cmd in (["init", "-q"], ["add", *tracked], ["commit", "-q", "-m", "a"]):
        subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@t", *cmd],
            cwd=folder,
            check=True,
            capture_output=True,
        )
    return folder


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["one process", "xdist"])
def test_a_run_that_writes_into_the_checkout_fails_and_lists_what_it_wrote(tmp_path, workers):
    repo = git_checkout(tmp_path / "repo", STRAY)
    (repo / "mine.txt").write_text("an untracked file of the user's, there before the run")
    (repo / "models" / "mine").mkdir()  # an empty folder of the user's, there before the run
    done = pytest_run(repo, "tree_guard", *workers)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "9 passed" in done.stdout  # the tests themselves pass: the run fails
    section = done.stdout.split("files written into the source tree", 1)[1]
    assert section.count("files written into the source tree") == 0  # said once, by the controller
    assert "created or changed 10 path(s)" in section
    lines = (
        "?? config.json",
        "!! finetune/last.safetensors",
        " M kept.txt",
        "!! runs/",
        "?? empty/",
        "?? models/empty/deeper/",  # git lists no folder: empty ones were missed
        "!! models/w.safetensors",
        "!! models/old.safetensors (written again)",  # ignored: missed
        "!! build/out.txt",
        "!! build/demo/x.csv",
    )  # inside an ignored folder, named: the deeper one was missed
    for line in lines:
        assert f"  {line}\n" in section
    assert "mine" not in section and "fine.txt" not in section and "old.txt" not in section


def test_a_clean_run_passes_and_a_folder_outside_git_is_not_checked(tmp_path):
    repo = git_checkout(tmp_path / "repo", CLEAN)
    done = pytest_run(repo, "tree_guard", bytecode="")  # Python's own __pycache__/ folders are not the tests'
    assert done.returncode == 0 and "source tree" not in done.stdout, done.stdout + done.stderr
    assert (repo / "__pycache__").is_dir()
    plain = tmp_path / "plain"
    (plain / "models").mkdir(parents=True)
    (plain / "build" / "demo").mkdir(parents=True)
    (plain / "test_it.py").write_text(STRAY.replace('(HERE / "kept.txt")', '(HERE / "other.txt")'))
    done = pytest_run(plain, "tree_guard")
    assert done.returncode == 0 and "source tree" not in done.stdout, done.stdout + done.stderr


def test_a_serial_test_outside_the_listed_files_fails_the_first_pass(tmp_path):
    (tmp_path / "test_unlisted.py").write_text(
        "import pytest\n\n\n@pytest.mark.serial(reason='x')\ndef test_races():\n    pass\n\n\n"
        "def test_plain():\n    pass\n"
    )
    for workers in ([], ["-n", "2"]):
        done = pytest_run(tmp_path, "serial_files", "-m", "not serial", *workers)
        assert done.returncode == 1, done.stdout + done.stderr
        assert "1 failed, 1 passed" in done.stdout
        assert "marked serial but not in a file of tests/serial_files.py's SERIAL_FILES" in done.stdout
        assert "test_unlisted.py::test_races" in done.stdout


def test_the_serial_pass_collects_only_the_listed_files(tmp_path):
    listed = sorted(SERIAL_FILES)[0]
    (tmp_path / listed).write_text(
        "import pytest\n\n\n@pytest.mark.serial(reason='x')\ndef test_races():\n    pass\n\n\n"
        "def test_plain():\n    pass\n"
    )
    (tmp_path / "test_other.py").write_text("raise SystemExit('test_other.py was imported')\n")
    done = pytest_run(tmp_path, "serial_files", "-m", "serial")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed, 1 deselected" in done.stdout


def test_every_listed_file_holds_a_serial_test():
    """The other half (every serial test in a listed file) is checked at each run's collection."""
    for name in sorted(SERIAL_FILES):
        tree = ast.parse((TESTS / name).read_text())
        marks = [n for n in ast.walk(tree) if isinstance(n, ast.Attribute) and n.attr == "serial"]
        assert marks, f"{name} holds no serial test: drop it from tests/serial_files.py's SERIAL_FILES"


RECORD = Path(".pytest_cache", "v", "attiqa", "test_seconds")


def file_order_pytest(folder: Path) -> Callable[..., subprocess.CompletedProcess]:
    """``pytest -p file_order ARGS`` in ``folder``, as a user runs it (``serial`` a known mark there)."""
    (folder / "pytest.ini").write_text("[pytest]\nmarkers =\n    serial: alone\n")
    env = {**os.environ, "PYTHONPATH": str(TESTS), "PYTHONDONTWRITEBYTECODE": "1"}

    def pytest(*args: str) -> subprocess.CompletedProcess:
        run = [sys.executable, "-m", "pytest", "-q", "-p", "file_order", *args]
        return subprocess.run(run, cwd=folder, env=env, capture_output=True, text=True)

    return pytest


def collected_files(done: subprocess.CompletedProcess) -> list[str]:
    """The files of a ``--collect-only -q`` run, in its order."""
    assert done.returncode == 0, done.stdout + done.stderr
    return list(dict.fromkeys(ln.split("::")[0] for ln in done.stdout.splitlines() if "::" in ln))


def test_the_files_with_the_most_recorded_seconds_come_first_and_each_run_adds_to_the_record(tmp_path):
    """``file_order``: a run records its tests' seconds in pytest's cache, the next collection puts the files
    in the order of their tests' seconds (files without a record after, most tests first), a run of one file
    keeps the others' and the tests of a file no longer there are dropped."""
    for name, tests in (("test_a.py", 3), ("test_b.py", 1), ("test_c.py", 2), ("test_d.py", 1)):
        (tmp_path / name).write_text("".join(f"def test_{i}():\n    pass\n\n\n" for i in range(tests)))
    pytest = file_order_pytest(tmp_path)

    def files() -> list[str]:
        return collected_files(pytest("--collect-only"))

    assert files() == ["test_a.py", "test_c.py", "test_b.py", "test_d.py"]  # no record: by number of tests
    for workers in ([], ["-n", "2"]):
        done = pytest(*workers)
        assert done.returncode == 0 and "7 passed" in done.stdout, done.stdout + done.stderr
        record = json.loads((tmp_path / RECORD).read_text())
        files_recorded = sorted({n.split("::")[0] for n in record})
        assert files_recorded == ["test_a.py", "test_b.py", "test_c.py", "test_d.py"], record
        assert len(record) == 7 and all(isinstance(s, float) and s >= 0 for s in record.values()), record
    record = {"test_d.py::test_0": 9.0, "test_b.py::test_0": 5.0, "test_a.py::test_0": 1.0,
              "test_a.py::test_1": 0.5, "test_gone.py::test_0": 7.0}  # fmt: skip
    (tmp_path / RECORD).write_text(json.dumps(record))
    assert files() == ["test_d.py", "test_b.py", "test_a.py", "test_c.py"]  # test_c.py: no record
    assert pytest("test_c.py").returncode == 0
    after = json.loads((tmp_path / RECORD).read_text())
    del record["test_gone.py::test_0"]  # its file is gone
    assert after.keys() == {*record, "test_c.py::test_0", "test_c.py::test_1"}
    assert {n: after[n] for n in record} == record
    for bad in ("[1, 2]", '{"test_a.py::test_0": "slow", "test_b.py::test_0": 2}', "{"):  # not a record
        (tmp_path / RECORD).write_text(bad)
        assert files()[0] == ("test_b.py" if "test_b" in bad else "test_a.py")


def test_a_file_split_over_the_two_passes_is_ordered_by_the_tests_the_pass_runs(tmp_path):
    """**Was** (session 65 review): the record was one number a file, the last run's — `make test`'s serial
    pass, which runs only a file's ``serial`` tests, left its seconds as the whole file's for the next first
    pass (and ``-k`` or a test named did the same). Here ``test_a.py``'s serial test is the slow one: the
    first pass hands out ``test_b.py`` first."""
    (tmp_path / "test_a.py").write_text(
        "import time\n\nimport pytest\n\n\n@pytest.mark.serial\ndef test_races():\n    time.sleep(1)\n\n\n"
        "def test_plain():\n    pass\n"
    )
    (tmp_path / "test_b.py").write_text("import time\n\n\ndef test_slow():\n    time.sleep(0.3)\n")
    pytest = file_order_pytest(tmp_path)
    for marks in ("not serial", "serial"):  # as `make test` runs them
        assert pytest("-m", marks).returncode == 0
    assert collected_files(pytest("--collect-only", "-m", "not serial")) == ["test_b.py", "test_a.py"]
    assert collected_files(pytest("--collect-only", "-m", "serial")) == ["test_a.py"]
    assert collected_files(pytest("--collect-only", "-k", "plain or slow")) == ["test_b.py", "test_a.py"]


WORKER_READS_ANOTHER_RECORD = """
import json
import os
from pathlib import Path

import pytest


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items):
    # another run of this checkout ends while this one's workers collect: gw1 alone sees its record
    if os.environ.get("PYTEST_XDIST_WORKER") == "gw1":
        Path(".pytest_cache/v/attiqa/test_seconds").write_text(json.dumps({"test_b.py::test_0": 99.0}))
"""


def test_the_workers_order_their_collections_by_the_record_the_controller_read(tmp_path):
    """**Was** (session 65 review): each xdist worker read the record itself, so a record written between the
    two workers' collections (another pytest run of the checkout ending) gave them two orders, and xdist
    aborted the run ("Different tests were collected"). Now the controller reads it and hands it out."""
    for name, tests in (("test_a.py", 2), ("test_b.py", 1)):
        (tmp_path / name).write_text("".join(f"def test_{i}():\n    pass\n\n\n" for i in range(tests)))
    (tmp_path / "conftest.py").write_text(WORKER_READS_ANOTHER_RECORD)
    (tmp_path / RECORD).parent.mkdir(parents=True)
    (tmp_path / RECORD).write_text(json.dumps({"test_a.py::test_0": 5.0}))
    make_test = ("-n", "2", "--dist", "loadfile", "--no-loadscope-reorder")
    done = file_order_pytest(tmp_path)(*make_test)
    assert done.returncode == 0 and "3 passed" in done.stdout, done.stdout + done.stderr
