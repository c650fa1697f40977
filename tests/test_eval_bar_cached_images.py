"""`attiqa eval` resumed from its score cache counts the cached images in its bar from the first frame, the
same with a decode worker as without (docs/robustness.md)."""

from __future__ import annotations

import pytest
from helpers import eval_resumed_from_the_cache


@pytest.fixture()
def one_torch_thread():
    """One torch thread, as `OMP_NUM_THREADS=1` runs it: a decode worker then has a core of its own."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("workers", ["1", "0"])
def test_eval_resumed_from_the_cache_counts_the_cached_images_from_its_first_frame(
    tmp_path, cli, monkeypatch, one_torch_thread, workers
):
    """**Was**: with 3 of 8 images in the score cache and `-b 2`, the bar counted the 5 left only and its
    first line was the first batch's: "scoring: 1/5" with a decode worker (its first batch is one photo:
    `io.batching.batch_plan`), "scoring: 2/5" decoding in-process. Now both start at "3/8", the cached
    images said as kept, and end at 8/8."""
    monkeypatch.setenv("ATTIQA_CACHE", str(tmp_path / "cache"))
    lines = eval_resumed_from_the_cache(tmp_path, cli, workers)
    bar = [ln for ln in lines if ln.startswith("scoring")]
    assert lines[lines.index(bar[0]) - 1] == "resuming: 3 image(s) already in the score cache, 5 to score"
    assert bar[0] == "scoring: 3/8 (none done now, 3 kept from an earlier run)", bar
    assert bar[-1].startswith("scoring: 8/8 (") and bar[-1].endswith(" img/s, 3 kept from an earlier run)")
    assert "5 scored, 3 from cache" in " ".join(lines), lines


def test_the_live_bar_shows_the_kept_items_in_its_first_frame(monkeypatch):
    """On a terminal the bar's first frame already counts ``kept`` (advanced after the start, it was drawn
    at 0/8 first)."""
    import io
    import re

    from rich.console import Console

    import attiqa.progress

    out = io.StringIO()
    monkeypatch.setattr(attiqa.progress, "console", Console(file=out, force_terminal=True, width=200))
    with attiqa.progress.progress_task("scoring", total=8, kept=3) as advance:
        frames = re.sub(r"\x1b\[[\d;?]*[A-Za-z]", "", out.getvalue())
        advance(5)
    counts = re.findall(r"(\d+)/8", frames)
    assert counts and set(counts) == {"3"}, repr(frames)
