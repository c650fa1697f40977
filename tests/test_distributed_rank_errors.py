"""Torchrun jobs whose processes meet different errors before the work, and the one line a failed command ends
with. Real torchrun, 2 processes, gloo."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
from dist_helpers import fill, per_rank_run
from helpers import attiqa_cmd, attiqa_env


def two_machines(tmp_path, photo_dir):
    """``rank0/`` with the photos and a run config, ``rank1/`` empty."""
    from helpers import tiny_train_config

    for r in (0, 1):
        (tmp_path / f"rank{r}").mkdir()
    shutil.copytree(photo_dir, tmp_path / "rank0" / "photos")
    shutil.copy(tiny_train_config(tmp_path), tmp_path / "rank0" / "run.yaml")


SCORE = ("score", "photos", "-o", "s.csv", "-m", "classical", "-w", "0")


@pytest.mark.slow
@pytest.mark.parametrize(
    "runs",
    [
        {"photos": SCORE, "photos ": ("label", "photos", "-o", "l.parquet", "-w", "0")},
        {"run.yaml": ("train", "-c", "run.yaml")},
    ],
    ids=["score-label", "train"],
)
@pytest.mark.serial(reason="two torchrun ranks need both cores")
def test_an_error_met_by_rank_1_alone_is_said_by_rank_1(tmp_path, photo_dir, runs):
    """`torchrun --nproc_per_node 2 -m attiqa.cli score photos -o s.csv` (`label`, `train -c run.yaml`)
    where `photos` (the config) is on rank 0's machine only. **Was**: rank 1's "photos: no such file" was an
    error "every process meets alike", printed by rank 0 alone — which never met it, went on to wait for
    rank 1 and was stopped by torchrun's agent: exit 1 and no line at all. Now each process that met an
    error says its own ("rank 1 of 2: …"), and every process ends with an error."""
    two_machines(tmp_path, photo_dir)
    for what, args in runs.items():
        res, ours, errors = per_rank_run(tmp_path, *args)
        assert res.returncode != 0, (what, res.stderr[-3000:])
        assert len(errors) == 1, (what, res.stderr[-3000:])
        assert errors[0].startswith(f"error: rank 1 of 2: {what.strip()}: "), (what, errors)
        assert "Traceback" not in ours, (what, ours)
    assert sorted(p.name for p in (tmp_path / "rank0").iterdir()) == ["photos", "run.yaml"]


@pytest.mark.slow
@pytest.mark.serial(reason="two torchrun ranks need both cores")
def test_an_error_met_by_every_rank_is_said_once_without_a_rank(tmp_path, photo_dir):
    """The same error met by both processes (`photos` on neither machine): once, by rank 0, as before."""
    two_machines(tmp_path, photo_dir)
    shutil.rmtree(tmp_path / "rank0" / "photos")
    res, ours, errors = per_rank_run(tmp_path, *SCORE)
    assert res.returncode != 0 and len(errors) == 1, res.stderr[-3000:]
    assert errors[0].startswith("error: photos: "), errors
    assert "Traceback" not in ours, ours


def test_a_check_only_rank_0_makes_is_said_as_the_jobs_line():
    """**Was**: `torchrun --nproc_per_node 2 -m attiqa.cli train` into an out_dir holding an earlier run, or
    one where another run is training now, ended "error: rank 0 of 2: …": the probe is rank 0's alone (the
    writer holds out_dir), so the other process met nothing and the texts differed. Now those checks run in
    `alike_on_every_process(main_only=True)` and rank 0 says its line as it is. The line each process says is
    decided by `line_to_say`, tested here directly (a new torchrun launch is the suite's slow part; the
    command was run by hand under torchrun, docs/robustness.md)."""
    from attiqa.sharding import line_to_say

    held = "run: another process is training in it now — let it finish"
    assert [line_to_say([held, None], me, main_only=True) for me in (0, 1)] == [held, None]
    assert [line_to_say([held, None], me) for me in (0, 1)] == [f"rank 0 of 2: {held}", None]
    assert [line_to_say([None, "x: missing"], me, main_only=True) for me in (0, 1)] == [
        None,
        "rank 1 of 2: x: missing",
    ]
    assert [line_to_say([held, held, held], me) for me in (0, 1, 2)] == [held, None, None]


def test_the_error_line_is_written_whole_when_sigterm_comes_during_it(tmp_path):
    """`attiqa score missing.jpg` whose stderr is a full pipe (a log reader behind, torchrun's agent
    forwarding a rank's output), SIGTERM sent while its one line waits to be written — as torchrun's agent
    stops rank 0 once rank 1 has ended. **Was**: the SIGTERM handler's exception raised inside the write:
    "Terminated" and a traceback in place of the line. Now the line is written whole, then the signal ends
    the process."""
    missing = tmp_path / "missing.jpg"
    read_end, write_end = os.pipe()
    try:
        filled = fill(write_end)
        os.set_blocking(write_end, True)
        cmd = attiqa_cmd("score", missing)
        proc = subprocess.Popen(
            cmd, stdout=subprocess.DEVNULL, stderr=write_end, env=attiqa_env(), cwd=tmp_path
        )
    finally:
        os.close(write_end)
    try:
        deadline = time.monotonic() + 120
        wchan = ""
        while "pipe" not in wchan:  # blocked writing its line into the full pipe
            assert proc.poll() is None and time.monotonic() < deadline, wchan
            time.sleep(0.05)
            wchan = Path(f"/proc/{proc.pid}/wchan").read_text()
        proc.send_signal(signal.SIGTERM)
        seen = bytearray()
        while chunk := os.read(read_end, 65536):
            seen += chunk
        rc = proc.wait(timeout=120)
    finally:
        proc.kill()
        os.close(read_end)
    said = seen[filled:].decode(errors="replace")
    assert said.splitlines() == [f"error: {missing}: no such file or folder — check the path"], said
    assert rc != 0
