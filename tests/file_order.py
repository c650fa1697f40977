"""A pytest plugin: the test files whose tests took the most seconds at the last runs that ran them come
first, from a record the runs keep in pytest's cache (``.pytest_cache/``, key :data:`TEST_SECONDS`). `make
test` passes ``--no-loadscope-reorder``, so pytest-xdist hands whole files to its two workers in this
order: a long file with few tests (which xdist's own order, by number of tests, puts last) no longer runs
alone at the end with the other worker idle. Files without a record (all of them in a fresh clone) keep
xdist's order, most tests first. It replaced a hand list of file names that went stale (session 65).
``tests/conftest.py`` registers it; elsewhere ``-p file_order`` with ``tests/`` on ``PYTHONPATH``.

The record is per test, and a file's seconds are those of its tests this run holds: a file whose tests are
split over `make test`'s two passes (``-m "not serial"`` / ``-m serial``), or a run of a few of its tests
(``-k``, a test named), sorts by the tests it runs — a record per file took each run's part for the whole
(session 65 review). Under pytest-xdist the controller reads the record once and hands it to its workers: each
worker reading the file itself could get another record (a run of the same checkout ending in between) and the
two workers' collections would differ, which xdist refuses.
"""

from __future__ import annotations

import pytest

# the cache key of the record: test id -> seconds (set-up, call and teardown)
TEST_SECONDS = "attiqa/test_seconds"


class FileOrder:
    """One run's order from the record, and the seconds its tests add to it."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.cache = getattr(config, "cache", None)  # None under -p no:cacheprovider
        worker = getattr(config, "workerinput", None)
        self.record = worker.get(TEST_SECONDS, {}) if worker is not None else self.read()
        self.seconds: dict[str, float] = {}

    def read(self) -> dict[str, float]:
        """The record; one that is not a table of seconds (edited, another version's) is none."""
        record = self.cache.get(TEST_SECONDS, {}) if self.cache is not None else {}
        if not isinstance(record, dict):
            return {}
        return {k: v for k, v in record.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node) -> None:
        """pytest-xdist's controller: the record it read, for each worker (``workerinput``)."""
        node.workerinput[TEST_SECONDS] = self.record

    @pytest.hookimpl(trylast=True)  # after `-m` / `-k` deselected what this run leaves out
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        """The files by their tests' recorded seconds, most first, then by number of tests; a stable sort, so
        each file's tests stay together and in their order."""
        seconds: dict[str, float] = {}
        count: dict[str, int] = {}
        for item in items:
            name = item.path.name
            count[name] = count.get(name, 0) + 1
            seconds[name] = seconds.get(name, 0.0) + float(self.record.get(item.nodeid, 0.0))
        items.sort(key=lambda item: (-seconds[item.path.name], -count[item.path.name]))

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Each phase's seconds added to its test's (under xdist the controller gets the workers' reports)."""
        self.seconds[report.nodeid] = self.seconds.get(report.nodeid, 0.0) + report.duration

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        """This run's tests' seconds over their record (a run of a few tests keeps the others'); the tests of
        files no longer there (renamed, removed) are dropped."""
        if self.cache is None or not self.seconds or hasattr(self.config, "workerinput"):
            return
        merged = self.read() | {n: round(s, 2) for n, s in self.seconds.items()}
        root = session.config.rootpath
        self.cache.set(TEST_SECONDS, {n: s for n, s in merged.items() if (root / n.split("::")[0]).is_file()})


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(FileOrder(config), "file_order_run")
