"""A Ctrl-C that lands right after a batch was handed on: that batch is in the run's rows too."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import numpy as np
from PIL import Image

import attiqa
from attiqa.scoring import score_paths


def test_a_batch_written_just_before_a_ctrl_c_is_in_the_runs_rows(tmp_path: Path) -> None:
    """**Was** (found by a flaky CI run of `genbench score`'s interruption test): the rows went to
    ``on_rows`` (the file) before ``run.rows``; a real SIGINT between the two left a batch on disk that
    genbench's final rewrite from ``run.rows`` then dropped — finished work lost, and "2 scored" said for
    4 rows seen on disk. Now every row handed on is also in ``run.rows``."""
    rng = np.random.default_rng(0)
    paths = []
    for i in range(6):
        p = tmp_path / f"i{i}.png"
        Image.fromarray(rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)).save(p)
        paths.append(p)
    handed: list[dict] = []

    def write_then_interrupted(rows: list[dict]) -> None:
        handed.extend(rows)
        os.kill(os.getpid(), signal.SIGINT)  # a real Ctrl-C, delivered as this call returns

    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        run = score_paths(paths, attiqa.load_scorer("classical"), 2, 0, on_rows=write_then_interrupted)
    finally:
        signal.signal(signal.SIGINT, old)
    assert run.interrupted and 2 <= len(handed) < len(paths)
    assert [r["image"] for r in run.rows] == [r["image"] for r in handed]
