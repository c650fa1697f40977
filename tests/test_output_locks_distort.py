"""`attiqa degrade -o OUT` and `attiqa make-distorted -o OUT` make resumable folders of images and their
record: two runs into one OUT at once (a rerun to resume while the first still runs) each made the images
and wrote the record over the other's (docs/robustness.md, "Kill -9 and the same command again"). Each
race is a real first process paused inside its writes (:func:`helpers.paused_after`) and a second run."""

from __future__ import annotations

import re

import pytest
from helpers import attiqa_cmd, one_line_error, paused_after

BUSY = "(the same command still running?) — let it finish (rerunning it then resumes what it left), or "
BUSY += "choose another --out"


@pytest.mark.parametrize(
    ("command", "seam", "doing", "options"),
    [
        ("degrade", "attiqa.distortions.graded:save_image", "degrading into",
         ("--distortions", "contrast", "--levels", "1,3")),
        ("make-distorted", "attiqa.distortions.multi:atomic_path", "distorting into",
         ("--rounds", "2", "--max-side", "40", "--distortions", "contrast,gaussian_blur")),
    ],
    ids=["degrade", "make-distorted"],
)  # fmt: skip
def test_a_second_run_into_an_out_being_written_is_one_line(
    photo_dir, tmp_path, cli, command, seam, doing, options
):
    """**Was**: not held — the second made every image the first had not yet, and rewrote the record, to
    exit 0. Now one line naming OUT, the holder and the fix; OUT as the first leaves it, resumable."""
    out = tmp_path / "out"
    args = (command, photo_dir, "-o", out, *options)
    with paused_after(tmp_path, seam, attiqa_cmd(*args)):
        before = sorted(p.relative_to(out) for p in out.rglob("*"))
        second = cli(*args)
        assert one_line_error(second) == f"error: {out}: another process is {doing} it now {BUSY}"
        assert sorted(p.relative_to(out) for p in out.rglob("*")) == before
    assert not (out / ".attiqa.lock").exists()
    again = cli(*args)  # the first's work kept: nothing left to make
    assert again.returncode == 0, again.stderr
    assert re.search(r"^0 written, [1-9]\d* already there", again.stderr, re.M)  # the console's lines


def test_a_degrade_into_the_folder_a_trains_degrade_stage_writes_is_one_line(photo_dir, tmp_path, cli):
    """**Was**: `attiqa degrade -o RUN/graded` while `attiqa train`'s degrade stage wrote RUN/graded went
    ahead (train held RUN alone): both made images into it and wrote its record, each to exit 0. Now the
    stage holds its folder as `degrade -o` does: one line naming it, the holder's words and the fix."""
    run = tmp_path / "run"
    cfg = tmp_path / "run.yaml"
    cfg.write_text(f"degrade:\n  sources: [{photo_dir}]\n  distortions: [contrast]\n  levels: [1, 3]\n")
    train = attiqa_cmd("train", "-c", cfg, "--out-dir", run)
    with paused_after(tmp_path, "attiqa.distortions.graded:save_image", train):
        before = sorted(p.relative_to(run) for p in run.rglob("*"))
        second = cli(
            "degrade", photo_dir, "-o", run / "graded", "--distortions", "contrast", "--levels", "1,3"
        )
        busy = "another process is degrading into it now — let it finish (rerunning it then resumes what it "
        assert one_line_error(second) == f"error: {run / 'graded'}: {busy}left), or choose another --out"
        assert sorted(p.relative_to(run) for p in run.rglob("*")) == before
    assert not (run / "graded" / ".attiqa.lock").exists()
