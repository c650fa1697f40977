"""What `attiqa datasets NAME` prints of an adapter's notes."""

from __future__ import annotations

import inspect
import re

import pytest
from helpers import run_attiqa

from attiqa.datasets import DATASETS


@pytest.mark.parametrize("name", ["koniq10k", "folder"])
def test_dataset_notes_are_rewrapped_to_the_terminal_without_rest_quotes(name: str) -> None:
    res = run_attiqa("datasets", name, env={"COLUMNS": "60"})
    assert res.returncode == 0, res.stderr
    notes = res.stdout.split("format notes:", 1)[1].split("\nsource:", 1)[0]
    # was the docstring as written for the source file: ``code`` quotes and its own line breaks, a line cut
    # mid-sentence by the terminal's wrap after every source line longer than the terminal
    assert "``" not in notes
    assert all(len(line) <= 60 for line in notes.splitlines()), notes
    doc = (inspect.getdoc(DATASETS[name]) or "").replace("``", "")
    assert notes.split() == doc.split()  # every word, in order: rewrapped, nothing lost or added
    if name == "koniq10k":  # a list item is one item, its continuation lines indented under it
        items = [line for line in notes.splitlines() if line.startswith("- ")]
        assert len(items) == doc.count("\n- ") and all(
            re.match(r"(- |  \S|\S)", ln) for ln in notes.splitlines() if ln
        )
