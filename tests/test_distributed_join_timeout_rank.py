"""A bad ATTIQA_JOIN_TIMEOUT is said by the process whose LOCAL_RANK, read as
`attiqa.launch.launched_local_rank` reads it, is 0 (docs/robustness.md)."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("local_rank", [" 0", "00"])
def test_a_bad_join_timeout_is_said_by_local_rank_0_however_its_number_is_written(
    tmp_path, cli, monkeypatch, photo_dir, local_rank
):
    """**Was**: `ATTIQA_JOIN_TIMEOUT=nan attiqa score DIR -o s.csv` in a job's first process whose launcher
    wrote LOCAL_RANK as " 0" or "00" (read as 0 by the device and the process group) ended with exit 2 and
    no word: the line was left to local rank 0, and " 0" was not "0" to the timeout's own reading. Now that
    process says it; local rank 1 still leaves it said."""
    env = {"WORLD_SIZE": "2", "RANK": "0", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29500"}
    for name, value in {**env, "LOCAL_RANK": local_rank, "ATTIQA_JOIN_TIMEOUT": "nan"}.items():
        monkeypatch.setenv(name, value)
    out = tmp_path / "s.csv"
    res = cli("score", photo_dir, "-m", "classical", "-w", "0", "-o", out)
    assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
    assert [ln for ln in res.stderr.splitlines() if ln.startswith("error:")] == [
        "error: ATTIQA_JOIN_TIMEOUT='nan': not a number of seconds above 0 and at most 31536000 (a year) — "
        "e.g. 600, or unset it for 600, torchrun's own"
    ], res.stderr
    monkeypatch.setenv("LOCAL_RANK", "1")  # the node's other process: said by the first
    res = cli("score", photo_dir, "-m", "classical", "-w", "0", "-o", out)
    assert res.returncode == 2 and "error:" not in res.stderr, res.stderr
    assert not out.exists()
