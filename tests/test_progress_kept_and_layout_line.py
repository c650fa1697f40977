"""A terminal bar that counts kept items but leaves them out of its rate and time left, and PIPAL / KonIQ
without their score files said in the one layout line."""

from __future__ import annotations

import io
import re
import time

from rich.console import Console


def test_a_terminal_bar_counts_kept_items_but_not_in_its_rate_or_time_left(monkeypatch):
    """**Was**: on a terminal (rich's bar) kept items were rich's advance: a resumed loop's cached items
    (`isp-tune`'s teacher, the held-out evaluation) were in the rate as done in no time — 10 real items in
    0.4 s and 10,000 cached ones read ~25,000 img/s and "0:00:00" left of 10,000 more. Plain piped lines
    already left them out; now the bar does too: the rate and the time left are of the work done now. The
    kept items are given as the bar starts (:class:`attiqa.progress.LateBar`: a resumed job learns them)."""
    import attiqa.progress

    out = io.StringIO()
    monkeypatch.setattr(attiqa.progress, "console", Console(file=out, force_terminal=True, width=200))
    with attiqa.progress.progress_later("labelling", total=20_010) as bar:
        bar.start(10_000)
        bar(1)
        time.sleep(0.4)
        bar(9)
    last = re.sub(r"\x1b\[[\d;?]*[A-Za-z]", "", out.getvalue()).split("\r")[-1]  # its last frame
    found = re.search(r"10010/20010\s+([\d.]+) img/s\s+\d:\d\d:\d\d\s+(\d):(\d\d):(\d\d)", last)
    assert found, repr(last)
    rate, left = float(found.group(1)), int(found.group(2)) * 3600 + int(found.group(3)) * 60 + int(found[4])
    assert 0 < rate <= 25, last  # 10 items in 0.4 s or more
    assert left >= 10_000 / 25 - 1, last  # 10,000 to go at that rate


def test_pipal_and_koniq_without_their_score_files_are_the_one_layout_line(tmp_path):
    """Their "no score file" branches raise :func:`attiqa.datasets.readers.no_score_file` (PIPAL's ended in a
    dead ``return []`` after ``need_file``, which raised): one line naming what was looked for, the layout
    below it; a label folder one level up is named."""
    import pytest

    from attiqa.datasets import get_dataset
    from attiqa.errors import AttiqaError

    (tmp_path / "pipal").mkdir()
    with pytest.raises(AttiqaError, match=r"^pipal: score file not found .*Train_Label/A0001\.txt") as exc:
        len(get_dataset("pipal", tmp_path / "pipal"))
    assert "expected layout:" in str(exc.value)
    with pytest.raises(AttiqaError, match=r"^koniq10k: score file not found .*koniq10k_distributions_sets"):
        len(get_dataset("koniq10k", tmp_path / "pipal"))
    (tmp_path / "Train_Label").mkdir()
    (tmp_path / "Train_Label" / "A0001.txt").write_text("A0001_00_00.bmp,1500\n")
    with pytest.raises(AttiqaError, match=f"one folder up: pass {tmp_path} as the root"):
        len(get_dataset("pipal", tmp_path / "pipal"))
