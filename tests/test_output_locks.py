"""Two runs writing one output at once (docs/robustness.md, "Kill -9 and the same command again"): two `attiqa
score -o s.csv` each scored every image into it, every row twice; two `attiqa train` into one out_dir trained
over each other's files. The output is held by its writer (an advisory lock of its own open file, closed in
forked children) from before the first write to the last rename; a second writer is one line. A lock that
outlived its run in the decode workers refused the same process's next run: these run it again in-process."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import attiqa_cmd, attiqa_env, genbench_cmd, holding, one_line_error, paused_after

SCORE = ("-m", "classical", "--batch-size", "1", "-q")
BUSY = (
    "another process is writing it now (the same command still running?) — let it finish (rerunning it then"
)
BUSY += " resumes what it left)"


def images_of(out: Path) -> list[str]:
    """The image column of a CSV score file or the results of a JSON one."""
    if out.suffix == ".json":
        return [r["image"] for r in json.loads(out.read_text())["results"]]
    with out.open(newline="") as fh:
        return [row[0] for row in list(csv.reader(fh))[1:]]


@pytest.mark.parametrize(
    ("name", "seam"),
    [("s.csv", "attiqa.scoring:ScoreWriter.add"), ("s.json", "attiqa.scoring:ScoreWriter.close")],
    ids=["csv-while-rows-are-appended", "json-after-its-document-is-renamed-in"],
)
def test_a_second_score_into_an_out_being_written_is_one_line(photo_dir, tmp_path, cli, name, seam):
    """**Was**: the second run scored every image into the file as well (CSV: each row twice). Now it is one
    line and leaves the file as the first writes it; the first ends with each image once. The JSON run is
    caught after its document was renamed in (the lock of session 60 was gone by then: a second run
    resumed a file its first was still finishing); no lock file is left once the first is done."""
    out = tmp_path / name
    with paused_after(
        tmp_path, seam, attiqa_cmd("score", photo_dir, *SCORE, "-o", out, "--workers", "0")
    ) as first:
        before = out.read_bytes()
        second = cli("score", photo_dir, *SCORE, "-o", out, "--workers", "0")
        assert one_line_error(second) == f"error: {out}: {BUSY}, or choose another --out"
        assert out.read_bytes() == before
    assert first.done is not None and "resuming" not in first.done.stderr
    names = images_of(out)
    assert len(names) == 5 and sorted(names) == sorted(set(names))
    assert not (tmp_path / f".{name}.lock").exists() and not (tmp_path / f".{name}.partial.csv").exists()
    assert "resuming: 5 image(s) already" in cli("score", photo_dir, *SCORE, "-o", out).stderr


def test_the_same_process_scores_into_one_out_again_after_its_decode_workers_ran(photo_dir, tmp_path, cli):
    """The decode workers (`--workers 1`) are forked while the file is held and kept for the process's next
    call: the lock of session 60 lived on in them, and a second `score -o` of the same process (a library
    caller, a notebook) was refused as "another process". Now each forked child closes its copy."""
    out = tmp_path / "s.csv"
    first = [p for p in sorted(photo_dir.rglob("*")) if p.is_file()][:3]
    assert cli("score", *first, *SCORE, "-o", out, "--workers", "1").returncode == 0
    again = cli("score", photo_dir, *SCORE, "-o", out, "--workers", "1")
    assert again.returncode == 0, again.stderr
    assert "resuming: 3 image(s) already in" in again.stderr
    assert sorted(images_of(out)) == sorted(str(p) for p in photo_dir.rglob("*") if p.is_file())


def test_genbench_score_while_another_scores_the_metric_skips_it_without_its_delete_advice(
    tmp_path, photos, genbench_cli
):
    """`genbench score` writes ``scores/METRIC.csv`` through the same writer, and rewrites it in manifest
    order at the end: a second run while the first scores is one line for that metric, without genbench's own
    advice for a damaged file ("delete it to score classical again": deleting it under a live writer)."""
    from genbench_helpers import make_photo_run

    run = make_photo_run(tmp_path / "run", photos)
    scores = run / "scores" / "classical.csv"
    cmd = genbench_cmd("score", run, "-m", "classical", "--workers", "0", "--batch-size", "1")
    with paused_after(tmp_path, "attiqa.scoring:ScoreWriter.add", cmd):
        before = scores.read_bytes()
        second = genbench_cli("score", run, "-m", "classical", "--workers", "0")
        said = " ".join((second.stdout + second.stderr).split())
        assert f"skipped classical: {scores}: {BUSY}" in said, said
        assert "delete it" not in said and second.returncode == 2
        assert scores.read_bytes() == before
    names = images_of(scores)
    assert len(names) == 10 and sorted(names) == sorted(set(names))


def test_train_into_an_out_dir_another_run_trains_in_is_one_line_and_the_same_process_resumes(tmp_path, cli):
    """**Was**: a second `attiqa train` into the out_dir of a run still training (or its `--resume`) trained
    over its files. Now the folder is held by the run from its first check to its end; the second is one
    line, the run's files untouched — also without --resume / --no-resume where checkpoints are there (it
    said "holds checkpoints of an earlier run — add --resume", which then trained over the live run). The
    label stage's decode workers (`num_workers: 1`) are forked while the folder is held; the same process
    resumes the run afterwards (session 60's lock lived on in them: "another process"). The folder is held
    by a hidden lock file inside it, opened for writing, gone when the run ends."""
    from helpers import LABEL_AND_PRETRAIN, tiny_train_config

    cfg = tiny_train_config(tmp_path)
    stages = [*LABEL_AND_PRETRAIN[:4], "--set", "label={teacher: classical, num_workers: 1}"]
    stages += ["--set", f"label.images=[{tmp_path / 'set' / 'images'}]"]
    run = tmp_path / "run"
    assert cli("train", "--config", cfg, *stages).returncode == 0
    again = cli("train", "--config", cfg, *stages, "--resume", "--set", "pretrain.epochs=2")
    assert again.returncode == 0, again.stderr
    busy = f"error: {run}: another process is training in it now (the same command still running?) — let it "
    busy += "finish (a stopped run continues with --resume), or choose another --out-dir"
    labels = attiqa_cmd("train", "--config", cfg, *stages, "--resume", "--set", "pretrain=null")  # all kept
    with paused_after(tmp_path, "attiqa.runner:check_devices", labels):  # held: its first check is done
        assert (run / ".attiqa.lock").is_file()  # was the folder itself, opened read-only: NFS cannot lock it
        weights = (run / "pretrain" / "last.safetensors").read_bytes()
        for flag in ("--resume", "--no-resume", None):
            second = cli("train", "--config", cfg, *stages, *([flag] if flag else []))
            assert one_line_error(second) == busy, flag
        assert (run / "pretrain" / "last.safetensors").read_bytes() == weights
    assert not (run / ".attiqa.lock").exists()


def test_a_second_writer_in_the_same_process_and_a_platform_without_locks(tmp_path, monkeypatch):
    """A library caller holding the file twice (a writer not closed) is told so, not "another process"; on a
    platform without ``fcntl`` / ``O_DIRECTORY`` (Windows) the outputs are written unlocked (session 60's
    lock was an ImportError traceback there until its review), and no lock file is made."""
    import os
    import sys

    from attiqa.errors import AttiqaError
    from attiqa.io.atomic import folder_held
    from attiqa.scoring import score_output_held

    out = tmp_path / "s.csv"
    with score_output_held(out), pytest.raises(AttiqaError) as exc, score_output_held(out):
        pass
    mine = "this process is already writing it (an earlier writer of it is still open) — close that one first"
    assert str(exc.value) == f"{out}: {mine}"
    with score_output_held(out):  # let go: held again
        pass
    monkeypatch.setitem(sys.modules, "fcntl", None)  # `import fcntl` raises ImportError, as on Windows
    monkeypatch.delattr(os, "O_DIRECTORY")
    with score_output_held(out), score_output_held(out), folder_held(tmp_path, "training in", "wait"):
        assert not (tmp_path / ".s.csv.lock").exists()


def test_an_output_reached_through_a_link_is_held_as_the_file_it_reaches(tmp_path):
    """`attiqa score -o link.csv` while another run writes `-o d/s.csv` (link.csv -> d/s.csv): **was** two
    lock files, `.link.csv.lock` and `d/.s.csv.lock`, so both ran and wrote every row twice into d/s.csv
    (session 61 review, reproduced with two processes); the lock sits beside the file the path reaches. The
    lock file is opened for writing (NFS's flock needs it) and let go when the block ends."""
    import os

    from attiqa.errors import AttiqaError
    from attiqa.scoring import score_output_held

    (tmp_path / "d").mkdir()
    target = tmp_path / "d" / "s.csv"
    target.write_text("image,score\n")  # a run started: its first row follows
    link = tmp_path / "link.csv"
    link.symlink_to(target)
    with score_output_held(target), pytest.raises(AttiqaError) as exc, score_output_held(link):
        assert os.access(tmp_path / "d" / ".s.csv.lock", os.W_OK)
    assert str(exc.value).startswith(f"{link}: this process is already writing it")
    assert not list(tmp_path.glob(".*.lock")) and not list((tmp_path / "d").glob(".*.lock"))


def test_a_second_eval_into_an_out_being_written_is_one_line(tmp_path, cli):
    """**Was**: two `attiqa eval -o OUT` at once both scored the whole set and wrote predictions.csv,
    summary.json and scatter.png one after the other: two evals of other models left one's predictions
    beside the other's summary. Now OUT is held by a hidden lock file inside it from before the scoring to
    the command's end; the second is one line, the files as the first wrote them (caught after they were)."""
    from helpers import tiny_train_config

    tiny_train_config(tmp_path)
    out = tmp_path / "ev"
    cmd = ("eval", "folder", "--root", tmp_path / "set", "-m", "classical", "-o", out, "-w", "0", "-q")
    seam = "attiqa.evaluation.evaluate:write_outputs"
    with paused_after(tmp_path, seam, attiqa_cmd(*cmd, "--no-cache")):
        assert (out / ".attiqa.lock").is_file()  # a regular file, opened for writing: NFS can lock it
        before = {p.name: p.read_bytes() for p in out.iterdir()}
        second = cli(*cmd, "--no-cache")
        busy = "another process is evaluating into it now (the same command still running?) — let it finish"
        assert one_line_error(second) == f"error: {out}: {busy}, or choose another --out"
        assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in out.iterdir()) == ["predictions.csv", "scatter.png", "summary.json"]


def test_a_second_label_into_an_out_being_written_is_one_line(photo_dir, tmp_path, cli):
    """**Was**: two `attiqa label -o l.parquet` at once each labelled every image (session 60: the table
    right, the work twice). Now the second is one line, score's; the first ends with each image once."""
    import pyarrow.parquet as pq

    out = tmp_path / "l.parquet"
    cmd = ("label", photo_dir, "--out", out, "--batch-size", "2", "--workers", "0")
    with paused_after(tmp_path, "attiqa.labeling:_write_part", attiqa_cmd(*cmd)):
        second = cli(*cmd)
        assert one_line_error(second) == f"error: {out}: {BUSY}, or choose another --out"
        assert not out.exists()
    images = pq.read_table(out).column("image").to_pylist()
    assert len(images) == 5 and len(set(images)) == 5
    assert not (tmp_path / ".l.parquet.lock").exists()


def test_a_label_into_the_table_a_train_labels_is_one_line(tmp_path, cli):
    """**Was** (review of session 62): `attiqa label -o RUN/labels.parquet` while `attiqa train` labelled
    into that table ran to its end: the train held only its out_dir, so both labelled into one table and its
    journals. Now the train's label stage holds its table as `label -o` does: the second is one line."""
    from helpers import LABEL_AND_PRETRAIN, tiny_train_config

    cfg = tiny_train_config(tmp_path)
    images = tmp_path / "set" / "images"
    stages = [*LABEL_AND_PRETRAIN[:4], "--set", "label={teacher: classical, num_workers: 0}"]
    stages += ["--set", f"label.images=[{images}]", "--set", "pretrain=null"]
    table = tmp_path / "run" / "labels.parquet"
    with paused_after(tmp_path, "attiqa.labeling:_write_part", attiqa_cmd("train", "--config", cfg, *stages)):
        second = cli("label", images, "--out", table, "--batch-size", "2", "--workers", "0")
        busy = "another process is training from it now — let it finish (rerunning it then resumes what it "
        busy += "left), or choose another --out"  # the holder's verb (held to the run's end)
        assert one_line_error(second) == f"error: {table}: {busy}"
    assert not (tmp_path / "run" / ".labels.parquet.lock").exists()


def test_a_second_exiqa_training_into_its_out_is_one_line(exiqa_set, tiny_dir, tmp_path, cli):
    """**Was**: two `attiqa train exiqa -o RUN` at once (or a rerun to resume while the first trains) each
    saved their state and checkpoint into RUN every epoch, over the other's. Now the second is one line,
    RUN as the first leaves it."""
    data, _ = exiqa_set
    run = tmp_path / "run"
    cmd = ("train", "exiqa", data, "-o", run, "--clip", tiny_dir, "--epochs", "2", "--warmup-epochs", "0",
           "--batch-size", "8", "--prompts", "2")  # fmt: skip
    with paused_after(tmp_path, "attiqa.exiqa.train:save_checkpoint", attiqa_cmd(*cmd)):
        before = {p.name: p.read_bytes() for p in run.iterdir()}
        second = cli(*cmd)
        busy = "another process is training in it now (the same command still running?) — let it finish "
        busy += "(rerunning it then resumes what it left), or choose another --out"
        assert one_line_error(second) == f"error: {run}: {busy}"
        assert {p.name: p.read_bytes() for p in run.iterdir()} == before
    assert not (run / ".attiqa.lock").exists()


def test_a_second_isp_tune_into_its_out_is_one_line(isp_raws, tmp_path, isp_cli):
    """**Was**: two `isp-tune --out RUN` at once both searched and wrote run.json, the teacher's searches and
    the policy into RUN. Now the second passes the checks that only read RUN and is one line at its first
    write, RUN as the first leaves it."""
    from helpers import isp_tune_cmd, quick_isp_tune

    _, out, args = quick_isp_tune(tmp_path, isp_raws)
    with paused_after(tmp_path, "isp_env.run:run_record", isp_tune_cmd(*args)):
        before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
        second = isp_cli(*args)
        busy = BUSY.replace("writing", "tuning in")
        assert one_line_error(second) == f"error: {out}: {busy}, or choose another --out"
        assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert (out / "policy.safetensors").is_file() and not (out / ".attiqa.lock").exists()


def test_a_library_isp_run_into_an_out_being_tuned_in_is_one_line(isp_raws, tmp_path):
    """**Was** (review of session 62): ``isp_env.run.run()`` held its ``out`` only when handed the command's
    ``held`` stack: two library runs into one ``out`` searched and trained over each other's files. Now a
    run without one holds ``out`` to its own end; a second is one line at its first write."""
    from attiqa.errors import AttiqaError
    from isp_env.run import run
    from isp_env.run_inputs import InputSettings, run_inputs
    from isp_env.train_config import TrainConfig

    cfg = TrainConfig(scorer="classical")
    out = tmp_path / "run"
    inputs = run_inputs(InputSettings(raw_dir=isp_raws[0].parent, out=out, base="neutral"), cfg)
    out.mkdir()  # as the first run made it
    holder = "import sys\nfrom isp_env.run import out_held\n"
    holder += f"with out_held({str(out)!r}):\n    sys.stdin.read()"
    first = subprocess.Popen([sys.executable, "-c", holder], stdin=subprocess.PIPE, env=attiqa_env({}))
    try:
        deadline = time.monotonic() + 60
        while not (out / ".attiqa.lock").exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        with pytest.raises(AttiqaError, match="another process is tuning in it now") as refused:
            run(inputs, cfg, baselines=False)
    finally:
        first.communicate(b"", timeout=60)
    assert str(refused.value).startswith(f"{out}: ") and "\n" not in str(refused.value)
    assert list(out.iterdir()) == []  # nothing written; the holder's lock file gone with it


LIBRARY_RUN = """
from pathlib import Path

from isp_env.run import run
from isp_env.run_inputs import InputSettings, run_inputs
from isp_env.train_config import TeacherSettings, TrainConfig


def main():
    cfg = TrainConfig(scorer="classical", preview=64)
    teacher = TeacherSettings(budget=4, raws=2, restarts=1)
    settings = InputSettings(raw_dir=Path(RAWS), out=Path(OUT), base="neutral", test_fraction=0)
    run(run_inputs(settings, cfg, teacher), cfg, teacher=teacher, baselines=False)
"""


def test_a_library_isp_run_holds_its_out_to_its_end_and_lets_go_after(isp_raws, tmp_path):
    """``isp_env.run.run()`` without the command's ``held`` stack holds ``out`` to its own end (session 63:
    it called itself again with a stack of its own, re-passing every keyword — a keyword added later would
    have been dropped there; now one body under its own stack). A real library run, caught after its
    run.json: a second hold is one line; once it has returned, ``out`` is free and its lock file gone."""
    from attiqa.errors import AttiqaError
    from isp_env.run import out_held

    out = tmp_path / "run"
    script = f"RAWS, OUT = {str(isp_raws[0].parent)!r}, {str(out)!r}\n" + LIBRARY_RUN
    (tmp_path / "isp_library_run.py").write_text(script)  # beside paused_after's script: importable
    with paused_after(tmp_path, "isp_env.run:run_record", [sys.executable, "-m", "isp_library_run"]) as held:
        with (
            pytest.raises(AttiqaError, match="another process is tuning in it now") as refused,
            out_held(out),
        ):
            pass
        assert str(refused.value).startswith(f"{out}: ") and "\n" not in str(refused.value)
    assert held.done is not None and held.done.returncode == 0
    assert (out / "policy.safetensors").is_file() and not (out / ".attiqa.lock").exists()
    with out_held(out):  # let go as run() returned
        assert (out / ".attiqa.lock").exists()
    assert not (out / ".attiqa.lock").exists()


def test_a_second_command_is_told_what_the_holder_is_doing(tmp_path):
    """**Was** (review of session 62): the refusal used the refused command's own verb — an `eval -o RUN`
    met by a `train` training in RUN said "another process is evaluating into it now (the same command still
    running?)". Now the holder writes what it is doing into its lock file, and the second says that."""
    from attiqa.errors import AttiqaError
    from attiqa.io.atomic import folder_held

    run = tmp_path / "run"
    run.mkdir()
    holder = "import sys\nfrom attiqa.io.atomic import folder_held\n"
    holder += f"with folder_held({str(run)!r}, 'training in', 'wait'):\n    sys.stdin.read()"
    first = subprocess.Popen([sys.executable, "-c", holder], stdin=subprocess.PIPE, env=attiqa_env({}))
    try:
        deadline, lock = time.monotonic() + 60, run / ".attiqa.lock"
        while not (lock.exists() and lock.read_bytes() == b"training in"):
            assert time.monotonic() < deadline, "the holder never took the folder"
            time.sleep(0.02)
        with pytest.raises(AttiqaError) as refused, folder_held(run, "evaluating into", "choose another"):
            pass
    finally:
        first.communicate(b"", timeout=60)
    assert str(refused.value) == f"{run}: another process is training in it now — choose another"


def test_a_lock_file_that_is_a_hard_link_to_a_file_is_not_written_into(tmp_path):
    """Review of session 62: the holder's verb written into its lock file would wipe the file the lock file is
    a hard link of: written only into a file of one name."""
    from attiqa.io.atomic import folder_held

    run = tmp_path / "run"
    run.mkdir()
    precious = tmp_path / "v.csv"
    precious.write_text("precious\n")
    os.link(precious, run / ".attiqa.lock")
    with folder_held(run, "evaluating into", "x"):
        assert precious.read_text() == "precious\n"
    assert precious.read_text() == "precious\n"


@pytest.mark.parametrize("kind", ["folder", "fifo"])
def test_a_lock_file_that_cannot_be_one_is_refused_in_one_line(photo_dir, tmp_path, cli, kind):
    """**Was**: a folder or a FIFO named ``.s.csv.lock`` (or ``RUN/.attiqa.lock``) left the run unlocked
    without a word (a FIFO was even locked, on Linux only). Now one line naming it and the fix, as another
    unusable side file is refused (a label file that is not one); nothing is written."""
    import os

    from attiqa.errors import AttiqaError
    from attiqa.io.atomic import folder_held

    out, lock = tmp_path / "s.csv", tmp_path / ".s.csv.lock"
    run = tmp_path / "run"
    run.mkdir()
    for where in (lock, run / ".attiqa.lock"):
        where.mkdir() if kind == "folder" else os.mkfifo(where)
    what, rm = ("a folder", "rm -r") if kind == "folder" else ("a FIFO", "rm")
    res = cli("score", photo_dir, *SCORE, "-o", out)
    fix = f"remove it ({rm} {lock}), then run again"
    assert one_line_error(res) == f"error: {lock}: the lock file of {out} is {what}, not a lock file — {fix}"
    assert not out.exists()
    with pytest.raises(AttiqaError) as exc, folder_held(run, "training in", "wait"):
        pass
    assert str(exc.value).startswith(f"{run / '.attiqa.lock'}: the lock file of {run} is {what}")
    assert lock.exists() and (run / ".attiqa.lock").exists()  # refused, not removed


def test_another_users_lock_file_is_refused_in_one_line(photo_dir, tmp_path):
    """Another user's ``.s.csv.lock`` (umask 077: not ours to open; run without root's override) **was** a
    run unlocked without a word — while its run may be writing s.csv. Now one line. Our own lock file made
    read-only is told apart (review of session 62: it was called another user's)."""
    import subprocess

    from helpers import attiqa_env, unprivileged_cmd

    lock = tmp_path / ".s.csv.lock"
    lock.write_text("")
    lock.chmod(0)
    out = tmp_path / "s.csv"
    cmd = unprivileged_cmd(attiqa_cmd("score", photo_dir, *SCORE, "-o", out))
    fix = f"remove it (rm {lock}), then run again"
    res = subprocess.run(cmd, env=attiqa_env(), capture_output=True, text=True, timeout=300)
    what = "yours but not writable (permission denied: made read-only?)"
    assert one_line_error(res) == f"error: {lock}: the lock file of {out} is {what} — {fix}"
    if os.geteuid() != 0:  # giving a file to another user takes root
        return
    os.chown(lock, 65534, 65534)  # nobody's, mode 000
    res = subprocess.run(cmd, env=attiqa_env(), capture_output=True, text=True, timeout=300)
    what = "not yours to open (permission denied: another user's run?)"
    fix = f"once no run of its owner writes {out}, {fix}"
    assert one_line_error(res) == f"error: {lock}: the lock file of {out} is {what} — {fix}"
    assert not out.exists()


def test_a_label_meeting_a_live_score_is_not_told_it_is_the_same_command(photo_dir, tmp_path, cli):
    """**Was** (session 62's closing note): "the same command" was decided by the two commands' verbs, and
    `attiqa score -o x.csv` and `attiqa label -o x.csv` both write "writing": a label meeting a live score
    was asked "the same command still running?". Now the holder's command is in its lock file and decides."""
    out = tmp_path / "s.csv"
    cmd = attiqa_cmd("score", photo_dir, *SCORE, "-o", out, "--workers", "0")
    with paused_after(tmp_path, "attiqa.scoring:ScoreWriter.add", cmd):
        assert (tmp_path / ".s.csv.lock").read_bytes() == b"writing; attiqa score"
        before = out.read_bytes()
        second = cli("label", photo_dir, "--out", out, "--batch-size", "2", "--workers", "0")
        busy = "another process is writing it now — let it finish (rerunning it then resumes what it left)"
        assert one_line_error(second) == f"error: {out}: {busy}, or choose another --out"
        assert out.read_bytes() == before


def test_a_lock_file_of_the_older_kind_still_says_the_same_command_by_its_verb(tmp_path):
    """Lock files of session 62 hold a bare verb ("writing"): still read, and "the same command" then
    decided by the verbs as before."""
    from attiqa.errors import AttiqaError
    from attiqa.io.atomic import resumed_output_held
    from attiqa.io.commands import Command

    out = tmp_path / "l.parquet"
    first = holding(out, "output_held(T, 'writing', 'wait')")  # no command: the bare verb
    try:
        assert (tmp_path / ".l.parquet.lock").read_bytes() == b"writing"
        with pytest.raises(AttiqaError) as refused, resumed_output_held(out, Command.LABEL):
            pass
    finally:
        first.communicate(b"", timeout=60)
    assert "another process is writing it now (the same command still running?) — let it" in str(
        refused.value
    )


def test_a_label_into_a_held_out_is_refused_before_its_teacher_loads(tiny_dir, photo_dir, tmp_path, cli):
    """**Was**: `attiqa label -o` loaded its teacher (minutes for real CLIP weights) before it found its
    --out held by another run. Now the lock is probed first, making nothing: a teacher whose weights cannot
    be read is not reached while another label writes --out; a new --out's folder is still not made by it."""
    import shutil

    clip = tmp_path / "clip"
    shutil.copytree(tiny_dir, clip)
    for weights in clip.glob("*.safetensors"):
        weights.write_bytes(b"cut short")  # read only when the teacher loads
    out = tmp_path / "l.parquet"
    args = ("label", photo_dir, "--teacher", f"clip:{clip}", "--workers", "0", "--out")
    first = holding(out, "resumed_output_held(T, Command.LABEL)")
    try:
        second = cli(*args, out)
    finally:
        first.communicate(b"", timeout=60)
    busy = "another process is writing it now (the same command still running?) — let it finish"
    assert one_line_error(second).startswith(f"error: {out}: {busy}")
    unread = cli(*args, tmp_path / "new" / "l.parquet")  # nobody holds it: the teacher's own line, no folder
    assert "not a readable safetensors file" in one_line_error(unread) and not (tmp_path / "new").exists()


def test_a_folder_made_to_be_held_is_removed_again_when_left_empty(tmp_path):
    """`attiqa bench --out` / `isp-tune check --out` hold a new folder from before their first write: the
    folder (and parents) made for the hold are gone again when the run wrote nothing into them (a model that
    could not load), as before the hold; a folder written into stays."""
    from attiqa.io.atomic import folder_held
    from attiqa.io.commands import Command

    out = tmp_path / "a" / "b"
    with folder_held(out, "benchmarking in", "wait", command=Command.BENCH, make="--out"):
        assert (out / ".attiqa.lock").read_bytes() == b"benchmarking in; attiqa bench"
    assert not (tmp_path / "a").exists()
    with folder_held(out, "benchmarking in", "wait", make="--out"):
        (out / "single.md").write_text("table\n")
    assert [p.name for p in out.iterdir()] == ["single.md"]


SHARED_LOOP = """
import sys
from attiqa.errors import AttiqaError
from attiqa.io.atomic import folder_held
from attiqa.io.commands import Command
refused = 0
for _ in range(1500):
    try:
        with folder_held(sys.argv[1], "scoring", "FIX", command=Command.GENBENCH_SCORE, shared=True):
            pass
    except AttiqaError:
        refused += 1
print(refused)
"""


def test_shared_holders_taking_and_letting_go_at_once_are_never_refused(tmp_path):
    """Review of session 66: a shared holder (`genbench score`) lets go by making its lock exclusive for the
    instant it removes the lock file; a fellow shared holder taken in that instant was refused, "another
    process is scoring it now" (hundreds of 4500 holds). Three real processes, each holding and letting go
    in a loop: none refused."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", SHARED_LOOP, str(tmp_path)],
            env=attiqa_env(),
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    refused = [int(p.communicate(timeout=120)[0]) for p in procs]
    assert refused == [0, 0, 0]
    assert not (tmp_path / ".attiqa.lock").exists()  # removed by the last holder
