"""A pytest plugin: the test files that took the most seconds at the last run that ran them come first, from
a record each run keeps in pytest's cache (``.pytest_cache/``, key :data:`FILE_SECONDS`). `make test` passes
``--no-loadscope-reorder``, so pytest-xdist hands whole files to its two workers in this order: a long file
with few tests (which xdist's own order, by number of tests, puts last) no longer runs alone at the end with
the other worker idle. Files without a record (all of them in a fresh clone) keep xdist's order, most tests
first. It replaced a hand list of file names that went stale (session 65). ``tests/conftest.py`` registers
it; elsewhere ``-p file_order`` with ``tests/`` on ``PYTHONPATH``.
"""

from __future__ import annotations

import pytest

# the cache key of the record: test file name -> seconds (set-up, call and teardown of its tests)
FILE_SECONDS = "attiqa/file_seconds"


class FileOrder:
    """One run's order from the record, and the seconds it adds to it."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.seconds: dict[str, float] = {}

    def record(self) -> dict[str, float]:
        cache = getattr(self.config, "cache", None)  # None under -p no:cacheprovider
        return dict(cache.get(FILE_SECONDS, {})) if cache is not None else {}

    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        """The files by recorded seconds, most first, then by number of tests; a stable sort, so each file's
        tests stay together and in their order."""
        seconds = self.record()
        count: dict[str, int] = {}
        for item in items:
            count[item.path.name] = count.get(item.path.name, 0) + 1
        items.sort(key=lambda item: (-float(seconds.get(item.path.name, 0.0)), -count[item.path.name]))

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Each phase's seconds added to its file's (under xdist the controller gets the workers' reports)."""
        name = report.nodeid.split("::")[0].rpartition("/")[2]
        self.seconds[name] = self.seconds.get(name, 0.0) + report.duration

    def pytest_sessionfinish(self) -> None:
        """This run's files' seconds over their record (a run of a few files keeps the others')."""
        cache = getattr(self.config, "cache", None)
        if cache is None or not self.seconds or hasattr(self.config, "workerinput"):
            return
        cache.set(FILE_SECONDS, self.record() | {n: round(s, 2) for n, s in self.seconds.items()})


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(FileOrder(config), "file_order_run")
