"""The ``attiqa`` command line (typer + rich). Thin: parses, calls the library, prints.

Light to import: :func:`run_app`, :func:`device`, :class:`InterruptedExit`, the shared option types and
:func:`wrap_words` (the one wrapper of terminal text) come from :mod:`attiqa.cli._common` (genbench and
isp_env use them); the commands are assembled in :mod:`attiqa.cli.app` only when :func:`main` runs.
Every :class:`attiqa.errors.AttiqaError` ends as one red line and exit code 2 — never a traceback.
"""

from __future__ import annotations

from attiqa.cli._common import (
    NARROW,
    BatchSizeOption,
    DeviceOption,
    InterruptedExit,
    ScoringBatchSizeOption,
    WorkersOption,
    app_command,
    device,
    plain_table,
    run_app,
    seed_option,
    table_widths,
    whole_word_table,
    wrap_words,
)


def main() -> None:
    from attiqa.cli.app import SYNONYMS, app

    run_app(app, SYNONYMS)


__all__ = [
    "BatchSizeOption",
    "DeviceOption",
    "NARROW",
    "InterruptedExit",
    "ScoringBatchSizeOption",
    "WorkersOption",
    "app_command",
    "device",
    "main",
    "plain_table",
    "run_app",
    "seed_option",
    "table_widths",
    "whole_word_table",
    "wrap_words",
]
