"""Every Markdown table in the README and docs/*.md renders as a table.

The model cards and robustness.md are long tables edited by many hands. A row with one cell too many (an
unescaped `|x|` in a formula, a pipe inside inline code: GitHub splits cells on those too) shifts its cells
under the wrong headings, and a paragraph pasted between two rows turns the rest of a table into loose text
(both were found). A pipe meant as text is written `\\|`."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
DELIMITER = re.compile(r"^\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$")


def cell_count(line: str) -> int:
    """Cells of a table line: split on pipes not escaped with a backslash, outer pipes dropped."""
    body = line.strip()
    body = body[1:] if body.startswith("|") else body
    body = body[:-1] if body.endswith("|") and not body.endswith("\\|") else body
    return len(re.split(r"(?<!\\)\|", body))


def table_faults(text: str) -> list[str]:
    """(line number: what is wrong) for every table line whose cell count is not its header's, and every
    row-like line that is not in a table (no header and delimiter line above it)."""
    faults: list[str] = []
    lines = text.split("\n")
    fenced = False
    header: int | None = None
    for i, line in enumerate(lines, start=1):
        if line.lstrip().startswith("```"):
            fenced = not fenced
            header = None
            continue
        if fenced or not line.startswith("|"):
            header = None
            continue
        if header is None:
            following = lines[i] if i < len(lines) else ""
            if not DELIMITER.match(following):
                faults.append(f"{i}: a table row with no header above it (loose text in the rendered page)")
                header = -1  # report a loose block once
                continue
            header = cell_count(line)
            continue
        cells = cell_count(line)
        if header >= 0 and cells != header:
            faults.append(f"{i}: {cells} cells under a {header}-column header (escape text pipes as \\|)")
    return faults


def test_the_checker_finds_both_faults_it_is_for() -> None:
    good = "| a | b |\n| --- | --- |\n| `x\\|y` | 1 |\n"
    assert table_faults(good) == []
    assert table_faults("| a | b |\n| --- | --- |\n| \\|d\\| = 0 | 1 |\n| |d| = 0 | 1 |\n") == [
        "4: 4 cells under a 2-column header (escape text pipes as \\|)"
    ]
    loose = "| a | b |\n| --- | --- |\n| 1 | 2 |\n\nA paragraph.\n| 3 | 4 |\n| 5 | 6 |\n"
    assert table_faults(loose) == ["6: a table row with no header above it (loose text in the rendered page)"]
    assert table_faults("```\n| not | a table |\n```\n") == []


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_table_renders(doc: Path) -> None:
    assert table_faults(doc.read_text(encoding="utf-8")) == [], doc.name
