"""Score files as users hand them to `attiqa eval`: an absurd MOS, a header naming a column twice or in two
cases, a spreadsheet's ``Image,MOS`` header, and errors that name the line an editor shows (blank lines, the
header and cells quoted over several lines count). The real command, in a fresh process."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from helpers import run_attiqa

from attiqa.datasets.readers import read_csv


@pytest.fixture()
def folder(tmp_path: Path, photos) -> Path:
    """Six real photos (small) in a folder; the tests write its score CSV."""
    d = tmp_path / "imgs"
    d.mkdir()
    for name, img in list(photos.items())[:3]:
        for k in (1, 2):
            img.resize((40 * k, 40 * k)).save(d / f"{name}{k}.png")
    return d


def names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob("*.png"))


def eval_csv(folder: Path, text: str, *extra: str) -> subprocess.CompletedProcess:
    (folder / "mos.csv").write_text(text)
    return run_attiqa(
        "eval", "folder", "--root", folder, "-m", "classical", "-o", folder.parent / "out", "-w", "0", "-q",
        "--no-cache", *extra, env={"COLUMNS": "250"},
    )  # fmt: skip


def one_line_error(res: subprocess.CompletedProcess) -> str:
    assert res.returncode == 2, res.stdout + res.stderr
    assert "Traceback" not in res.stderr
    return " ".join(res.stderr.split())


def test_an_absurd_mos_is_refused_naming_its_line(folder):
    # was: read as a number, and the metrics overflowed (RuntimeWarnings, PLCC (logistic) "–")
    rows = [f"{n},{v}" for n, v in zip(names(folder), ("40", "55", "1e308", "70", "20", "65"), strict=True)]
    err = one_line_error(eval_csv(folder, "image,mos\n" + "\n".join(rows) + "\n"))
    assert f"{folder / 'mos.csv'}:4: '1e308' is not a plausible score" in err and "fix the cell" in err


def test_a_header_naming_a_column_twice_is_refused(folder):
    # was: the last 'mos' column silently won (a constant column here: every correlation undefined)
    rows = [f"{n},{v},1" for n, v in zip(names(folder), (40, 55, 60, 70, 20, 65), strict=True)]
    err = one_line_error(eval_csv(folder, "image,mos,mos\n" + "\n".join(rows) + "\n"))
    assert f"{folder / 'mos.csv'}: column 'mos' appears twice in the header" in err


def test_column_names_match_in_any_case_and_case_twins_are_refused(folder):
    rows = [f"{n},{v}" for n, v in zip(names(folder), (40, 55, 60, 70, 20, 65), strict=True)]
    res = eval_csv(folder, "Image,MOS\n" + "\n".join(rows) + "\n", "--target", "MOS")
    # was: "column 'mos' is empty in every row — fill in the scores"
    assert res.returncode == 0, res.stderr
    summary = json.loads((folder.parent / "out" / "summary.json").read_text())
    assert summary["n"] == 6 and summary["target"] == "mos"
    rows = [f"{n},{v},1" for n, v in zip(names(folder), (40, 55, 60, 70, 20, 65), strict=True)]
    err = one_line_error(eval_csv(folder, "image,mos,MOS\n" + "\n".join(rows) + "\n"))
    assert "columns 'mos' and 'MOS' differ only in case" in err  # was: 'mos' used, 'MOS' a silent target


def test_an_error_names_the_line_an_editor_shows(folder):
    n = names(folder)
    text = (
        "image,mos,comment\n"
        "\n"
        f'{n[0]},40,"two\nlines"\n'
        f"{n[1]},55,\n"
        "\n"
        f"{n[2]},abc,\n"  # line 7: blank lines, the header and the quoted line break count
        + "".join(f"{x},50,\n" for x in n[3:])
    )
    err = one_line_error(eval_csv(folder, text))
    assert f"{folder / 'mos.csv'}:7: mos 'abc' is not a number" in err  # was :4
    table = read_csv(folder / "mos.csv")
    assert [line for line, _ in table.numbered()] == [3, 5, 7, 8, 9, 10]


def test_csv_option_naming_a_folder_or_a_link_loop(folder, tmp_path, cli):
    rows = [f"{n},{v}" for n, v in zip(names(folder), (40, 55, 60, 70, 20, 65), strict=True)]
    (folder / "mos.csv").write_text("image,mos\n" + "\n".join(rows) + "\n")
    base = ("eval", "folder", "--root", folder, "-m", "classical", "--csv")
    err = one_line_error(cli(*base, folder))
    # was: "score CSV not found" for a folder that is there
    assert f"{folder}: a folder, not a CSV — pass the score file itself, e.g. {folder / 'mos.csv'}" in err
    os.symlink(tmp_path / "b.csv", tmp_path / "a.csv")
    os.symlink(tmp_path / "a.csv", tmp_path / "b.csv")
    err = one_line_error(cli(*base, tmp_path / "a.csv"))
    # session 41: the words of -o and of images (was "a symbolic-link loop", "a link to X, which does not
    # exist"): attiqa.io.atomic.link_fault_words
    loop = "a symlink loop (the link points back to itself) — point it at the score CSV itself"
    assert f"{tmp_path / 'a.csv'}: {loop}" in err
    os.symlink(tmp_path / "gone.csv", tmp_path / "c.csv")
    err = one_line_error(cli(*base, tmp_path / "c.csv"))
    assert f"{tmp_path / 'c.csv'}: a broken link (to {tmp_path / 'gone.csv'}, which is not there)" in err
