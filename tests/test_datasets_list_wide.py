"""`attiqa datasets` at 100–160 columns keeps file names whole (docs/robustness.md)."""

from __future__ import annotations

import pytest
from helpers import attiqa_cmd, on_a_terminal
from rich.cells import cell_len

from attiqa.datasets import list_datasets


def whole_parts(text: str) -> list[str]:
    """The words of ``text`` and, in a path, its file and folder names (a path may break after a "/")."""
    return [part for word in text.split() for part in word.replace("/", "/\n").split("\n") if part]


@pytest.mark.parametrize("columns", [100, 120, 140, 160])
def test_the_datasets_list_keeps_every_file_name_whole(columns: int) -> None:
    """**Was**: at 100–160 columns rich's table narrowed its widest columns and folded the words in them:
    "AIGC_MOS_Zscore.xls x" (120), "koniq10k_scores_and_distrib utions.csv" (160), "labels=640_padded.
    csv". Now the table's columns are as wide as their longest word (a path breaks after a "/" only), or,
    where the terminal cannot hold them, a block per dataset: every line fits, every name whole."""
    text = on_a_terminal(attiqa_cmd("datasets"), columns)
    lines = text.splitlines()
    assert all(cell_len(line) <= columns for line in lines), text
    for info in list_datasets():
        texts = [info.full_name, *info.targets, *info.score_files, info.official_split or ""]
        for part in (p for text in texts for p in whole_parts(text)):
            assert any(part in line for line in lines), (columns, info.name, part, text)
    if columns == 160:  # a terminal that holds the columns keeps the table
        assert "┃ name" in text, text[:500]
