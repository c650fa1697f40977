"""A pytest plugin: `pytest -m serial` (`make test`'s second pass) collects only the files that hold tests
marked ``serial`` — not every module's imports again (~13 s of a collection of the whole suite) — and a
``serial`` test anywhere else fails every other run instead of being run by neither pass.
``tests/conftest.py`` registers it; elsewhere ``-p serial_files`` with ``tests/`` on ``PYTHONPATH``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

# the files that hold the tests marked ``serial`` (a new one's file is added here)
SERIAL_FILES = frozenset(
    {
        "test_bench_biq2021_split_fallback.py",
        "test_distributed.py",
        "test_distributed_degrade_only_graded.py",
        "test_distributed_label_resume.py",
        "test_distributed_rank_errors.py",
        "test_distributed_start_mismatch.py",
        "test_distributed_start_mismatch_cached.py",
        "test_distributed_start_mismatch_labels.py",
        "test_eval_torchrun.py",
        "test_isp_scale.py",
        "test_isp_tune.py",
        "test_labeling.py",
        "test_protocols.py",
        "test_score_eval_notes.py",
        "test_score_eval_resume_and_inputs.py",
        "test_score_torchrun.py",
        "test_train_bad_input.py",
        "test_train_interrupts_and_disk.py",
        "test_train_set_overrides_and_resume.py",
        "test_train_stage_config_checks.py",
    }
)


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """`pytest -m serial` skips the test files of :data:`SERIAL_FILES`' complement unread."""
    if config.getoption("markexpr", "").strip() != "serial" or not collection_path.name.startswith("test_"):
        return None
    return True if collection_path.suffix == ".py" and collection_path.name not in SERIAL_FILES else None


class SerialOutsideList(pytest.Item):
    """A test that fails with ``message``: a ``serial`` test outside :data:`SERIAL_FILES`."""

    def __init__(self, *, message: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.message = message

    def runtest(self) -> None:
        pytest.fail(self.message, pytrace=False)

    def reportinfo(self):
        return self.path, None, self.name


@pytest.hookimpl(tryfirst=True)  # before `-m "not serial"` deselects them
def pytest_collection_modifyitems(session: pytest.Session, items: list[pytest.Item]) -> None:
    """Every test marked ``serial`` is in a file of :data:`SERIAL_FILES`; else a failing test says which."""
    outside = [
        item.nodeid
        for item in items
        if item.get_closest_marker("serial") and item.path.name not in SERIAL_FILES
    ]
    if outside:
        message = (
            "marked serial but not in a file of tests/serial_files.py's SERIAL_FILES, so `pytest -m serial` "
            f"(make test's second pass) would not collect them: {', '.join(outside)} — add their file to "
            "SERIAL_FILES"
        )
        items.insert(0, SerialOutsideList.from_parent(session, name="serial_files_listed", message=message))
