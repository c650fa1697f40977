"""genbench, session 52: the agreement interval on a handful of pairs, the rater id of a second tab, and
the AGIQA-3k pair sheet's labels (docs/robustness.md rows of session 52)."""

from __future__ import annotations

import csv
from pathlib import Path

from genbench_helpers import make_photo_run
from helpers import run_genbench


def _prefs(path: Path, votes: list[tuple[str, str]]) -> Path:
    with open(path, "w", newline="") as fh:
        csv.writer(fh).writerows([("pair_id", "rater", "choice"), *((p, "r1", c) for p, c in votes)])
    return path


def test_agree_on_three_pairs_all_right_gives_no_certain_interval(tmp_path, photos):
    """**Was**: three votes the metric got right gave "100.0% (100.0% – 100.0%)" — the percentile bootstrap of
    three equal credits has nothing to resample, a certainty three votes do not give. Now the interval is at
    least the pairs' Wilson score interval: 43.9 – 100 % for 3 of 3."""
    run = make_photo_run(tmp_path / "run", photos)
    assert run_genbench("score", run, "-m", "classical").returncode == 0
    from genbench.manifest import read_records

    sharp = {r["pair_id"]: r["sharp"] for r in read_records(run)}  # people pick the sharp photo
    prefs = _prefs(tmp_path / "prefs.csv", list(sharp.items())[:3])
    r = run_genbench("agree", run, "--prefs", prefs, "-m", "classical")
    assert r.returncode == 0, r.stderr
    with open(run / "agreement" / "agreement.csv", newline="") as fh:
        (row,) = csv.DictReader(fh)
    assert row["pairs"] == "3" and float(row["accuracy"]) == 1.0  # classical prefers the sharp photo
    assert abs(float(row["ci_low"]) - 0.4385) < 0.001 and float(row["ci_high"]) == 1.0
    assert "43.9%" in r.stdout and "100.0%" in r.stdout
