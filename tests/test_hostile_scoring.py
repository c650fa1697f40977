"""The scoring path under hostile but fair use (issue 16): outputs checked before any work, nothing lost on
a kill, names that are not UTF-8 or look like spreadsheet formulas, tampered model cards, eval data that
would silently skew the metrics, and tables that stay readable when piped."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import (
    attiqa_cmd,
    attiqa_env,
    genbench_cmd,
    interrupt_when,
    kill_when,
    one_line_error,
    run_attiqa,
    tiny_attiqa_checkpoint,
)
from PIL import Image
from safetensors import safe_open
from safetensors.torch import save_file

from attiqa.attributes import ATTRIBUTES
from attiqa.errors import AttiqaError, ModelLoadError
from attiqa.evaluation.cache import ScoreCache
from attiqa.io.checkpoints import load_checkpoint, read_card, save_checkpoint
from attiqa.io.hashes import CARD_KEY
from attiqa.io.tables import ENCODING, ERRORS, read_cell, safe_cell
from attiqa.scorers import load_scorer
from attiqa.scorers.zoo import named_models, resolve_weights
from attiqa.training.trainer import one_thread  # a killed run's OMP_NUM_THREADS=1, for a rerun here

DEFAULT = Path(__file__).resolve().parents[1] / "attiqa" / "data" / "models" / "attiqa-default.safetensors"


# -- attiqa score: the output ---------------------------------------------------------------------------


def test_output_is_checked_before_scoring(photo_dir, tmp_path, cli):
    msg = one_line_error(cli("score", photo_dir, "-m", "classical", "-o", tmp_path / "s.txt"))
    assert "unsupported output type .txt" in msg and not (tmp_path / "s.txt").exists()
    blocker = tmp_path / "file"
    blocker.write_text("x")  # a file where the output folder should be
    msg = one_line_error(cli("score", photo_dir, "-m", "classical", "-o", blocker / "s.csv"))
    assert "cannot create the output folder" in msg


def test_read_only_folder_is_refused_up_front(photo_dir, tmp_path):
    """**Was** (session 36): skipped as root ("root writes to read-only folders"), so CI, which runs as root,
    never ran it; the command now runs without root's permission override (``unprivileged``)."""
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        res = run_attiqa("score", photo_dir, "-m", "classical", "-o", ro / "s.csv", unprivileged=True)
        assert one_line_error(res) == f"error: {ro}: not writable (permission denied) — choose another --out"
        assert not any(ro.iterdir())  # refused before any work: nothing written
    finally:
        ro.chmod(0o755)


def test_a_folder_made_read_only_after_some_work_says_how_to_resume(photo_dir, tmp_path, cli):
    """**Was** (session 45: "not tried" since session 32): `attiqa score -o RO/s.csv` run again after RO (or
    s.csv) was made read-only said "choose another --out" — which leaves the finished rows behind and scores
    everything again. Now, with a file to resume, the line says how to resume it (chmod) first; nothing is
    written and the finished rows stay; once writable, the same command resumes."""
    ro = tmp_path / "ro"
    ro.mkdir()
    args = ("score", photo_dir, "-m", "classical", "-o", ro / "s.csv", "-q", "--workers", "0")
    assert cli(*args).returncode == 0  # in this process; the refused runs are unprivileged real ones
    before = (ro / "s.csv").read_bytes()
    for locked, said in (
        (
            ro,
            f"{ro}: not writable (permission denied) — make it writable (chmod u+w {ro}) to resume s.csv, or",
        ),
        (
            ro / "s.csv",
            f"{ro / 's.csv'}: not writable (permission denied) — chmod u+w {ro / 's.csv'} to resume it, or",
        ),
    ):
        locked.chmod(0o555 if locked.is_dir() else 0o444)
        try:
            res = run_attiqa(*args, unprivileged=True)
        finally:
            locked.chmod(0o755 if locked.is_dir() else 0o644)
        assert one_line_error(res) == f"error: {said} choose another --out"
        assert (ro / "s.csv").read_bytes() == before
    res = cli(*args)
    assert res.returncode == 0 and "resuming:" in res.stderr, res.stderr


def test_non_utf8_and_formula_names_round_trip(tmp_path, photos, cli, monkeypatch):
    folder = tmp_path / "imgs"
    folder.mkdir()
    raw_name = b"caf\xe9 latin-1.png"  # not UTF-8: Linux allows any bytes in a name
    img = photos["coffee"].resize((96, 64))
    img.save(os.fsdecode(os.fsencode(str(folder)) + b"/" + raw_name))
    img.save(folder / "=cmd|calc.png")
    img.save(folder / 'a, "b"\nc.png')  # a comma, quotes and a newline: quoted CSV cells, read back whole
    monkeypatch.chdir(folder)
    for out in (tmp_path / "s.csv", tmp_path / "s.json"):  # relative names, as `attiqa score .` writes them
        res = cli("score", ".", "-m", "classical", "-o", out, "-q", "--workers", "0")
        assert res.returncode == 0, res.stderr
        if out.suffix == ".csv":
            with open(out, encoding=ENCODING, errors=ERRORS, newline="") as fh:
                cells = [row[0] for row in csv.reader(fh)][1:]
            assert any(c.startswith("'=") for c in cells)  # a spreadsheet shows it as text
            names = {read_cell(c) for c in cells}
        else:
            names = {r["image"] for r in json.loads(out.read_text())["results"]}
        assert {os.fsencode(Path(n).name) for n in names} == {raw_name, b"=cmd|calc.png", b'a, "b"\nc.png'}


def test_names_that_look_like_markup_are_shown_as_they_are(tmp_path, photos):
    """**Was**: `[draft] bad.jpg` listed as `/ bad.jpg` (rich took `[draft]` for a style), a `[/x]` across a
    folder name a MarkupError traceback — in the skipped list, the terminal table and the error line."""
    folder = tmp_path / "imgs"
    (folder / "a[").mkdir(parents=True)
    photos["coffee"].resize((96, 64)).save(folder / "[draft] ok.png")
    (folder / "[draft] bad.jpg").write_bytes(b"")
    (folder / "a[" / "x].jpg").write_bytes(b"")
    # rich draws its terminal table
    res = run_attiqa("score", folder, "-m", "classical", "--workers", "0", env={"FORCE_COLOR": "1"})
    assert res.returncode == 0 and "Traceback" not in res.stderr, res.stderr
    err, out = (re.sub(r"\x1b\[[0-9;]*m", "", text) for text in (res.stderr, res.stdout))  # no colours
    assert f"{folder}/[draft] bad.jpg: empty file" in err and f"{folder}/a[/x].jpg: empty file" in err
    assert "[draft] ok.png" in out
    assert f"{folder}/[old]/x.png: no such file" in one_line_error(
        run_attiqa("score", folder / "[old]" / "x.png")
    )


def test_a_resume_left_with_only_unreadable_files_ends_with_0(tmp_path, photos, cli):
    """**Was**: exit 2 "no image could be scored" when every readable image was already in the file."""
    _many_images(tmp_path / "imgs", photos, 2)
    (tmp_path / "imgs" / "empty.png").write_bytes(b"")
    args = ("score", tmp_path / "imgs", "-m", "classical", "-o", tmp_path / "s.csv", "-q", "--workers", "0")
    first = cli(*args)
    assert first.returncode == 0 and "empty.png: empty file" in first.stderr, first.stderr
    again = cli(*args)
    assert again.returncode == 0, again.stderr
    assert "2 image(s) already in" in again.stderr and "empty.png: empty file" in again.stderr
    assert len(_rows(tmp_path / "s.csv")) == 2


def test_safe_cell_rule():
    for text in ("=1+2", "+x", "-x", "@SUM(A1)", "'=x", "''", "plain", "'quote", "\ttab"):
        assert read_cell(safe_cell(text)) == text
    assert safe_cell("=HYPERLINK()").startswith("'") and safe_cell("-0.25") == "-0.25"


def _many_images(folder: Path, photos, n: int) -> list[Path]:
    folder.mkdir()
    base = photos["astronaut"].resize((256, 256))
    paths = []
    for i in range(n):
        p = folder / f"img{i:04d}.png"
        base.rotate(i % 360).save(p)
        paths.append(p)
    return paths


def _pair_run(run_dir: Path, photos, n: int) -> list[Path]:
    """A genbench run of ``n`` images in pairs (its manifest), for `genbench score`; the images in order."""
    from genbench.manifest import write_manifest

    run_dir.mkdir()
    paths = _many_images(run_dir / "images", photos, n)
    write_manifest(run_dir, [
        {"pair_id": f"p{i}", "image_a": f"images/{a.name}", "image_b": f"images/{b.name}"}
        for i, (a, b) in enumerate(zip(paths[::2], paths[1::2], strict=True))
    ])  # fmt: skip
    return paths


def _n_rows(out: Path) -> int:
    return len(_rows(out)) if out.exists() else 0


def _rows(out: Path) -> list[dict]:
    with open(out, newline="", encoding=ENCODING, errors=ERRORS) as fh:
        return list(csv.DictReader(fh))


def test_kill_keeps_finished_rows_and_a_rerun_resumes(tmp_path, photos, cli):
    paths = _many_images(tmp_path / "imgs", photos, 100)
    out = tmp_path / "s.csv"
    cmd = attiqa_cmd("score", tmp_path / "imgs", "-m", "classical", "-o", out, "-q")
    cmd += ["--batch-size", "2", "--workers", "0"]
    for sig, code in ((signal.SIGTERM, 143), (signal.SIGINT, 130)):
        before = len(_rows(out)) if out.exists() else 0
        # A shell's background job (`pytest ... &`, some CI runners) starts with SIGINT ignored, and the child
        # would inherit that (Python then installs no Ctrl-C handler): give it what a terminal gives.
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # fmt: skip
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and (not out.exists() or len(_rows(out)) < before + 4):
            time.sleep(0.05)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == code, err
        assert "Traceback" not in err and "rerun the same command to resume" in err
        kept = _rows(out)
        assert before + 4 <= len(kept) < len(paths)
        assert all(0 <= float(r[a]) <= 1 for r in kept for a in ATTRIBUTES)
    res = cli(*cmd[3:])  # the rerun in this process
    assert res.returncode == 0 and f"{len(kept)} image(s) already in" in res.stderr, res.stderr
    final = _rows(out)
    assert sorted(r["image"] for r in final) == sorted(str(p) for p in paths)  # each image exactly once


def test_sigterm_to_the_process_group_with_decode_workers_ends_cleanly(tmp_path, photos):
    """Slurm's scancel, torchrun or `kill -- -PGID` signal the decode workers too: a worker killed by it made
    torch print "DataLoader worker ... is killed by signal" with a traceback (2 of 3 tries, session 32)."""
    _many_images(tmp_path / "imgs", photos, 200)
    out = tmp_path / "s.csv"
    cmd = attiqa_cmd("score", tmp_path / "imgs", "-m", "attiqa-default", "-o", out)
    cmd += ["--batch-size", "2", "--workers", "1", "-q"]
    for attempt in range(3):
        before = len(_rows(out)) if out.exists() else 0
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                start_new_session=True)  # fmt: skip
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and (not out.exists() or len(_rows(out)) < before + 2 + attempt):
            time.sleep(0.02)
        os.killpg(proc.pid, signal.SIGTERM)  # the command and its decode worker alike
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 143, err
        assert "rerun the same command to resume" in err, err
        assert "Traceback" not in err and "Exception ignored" not in err and "DataLoader" not in err, err
        assert len(_rows(out)) >= before + 2 + attempt


SHARER_HANGUP = """
import os, socket, struct, sys, time
from multiprocessing import resource_sharer
from attiqa.io.batching import worker_init
worker_init(0)
r, _ = os.pipe()
fd = resource_sharer.DupFd(r)  # as a worker shares a batch's memory: the thread that serves the fd starts
peer = socket.socket(socket.AF_UNIX)
peer.connect(resource_sharer._resource_sharer._address)
peer.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
time.sleep(0.2)
peer.close()  # a reset mid-handshake: what the thread sees when the main process ends mid-handover
time.sleep(0.5)
sys.excepthook(ValueError, ValueError("other errors still print"), None)
"""


def test_decode_worker_is_quiet_when_the_main_process_hangs_up_mid_handover():
    """A group SIGTERM ended the main process while a worker's fd server thread (multiprocessing's resource
    sharer) was handing it a batch: the thread printed a ConnectionResetError traceback (the suite, session
    33). Real resource sharer, real reset; the test fails without the hook that `worker_init` installs."""
    run = subprocess.run([sys.executable, "-c", SHARER_HANGUP], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert "ConnectionResetError" not in run.stderr and "resource_sharer" not in run.stderr, run.stderr
    assert "ValueError: other errors still print" in run.stderr


HALF_BUILT_REF = """
import torch
from torch.multiprocessing.reductions import StorageWeakRef
from attiqa.io.batching import data_loader

data_loader(list(range(4)), 2, num_workers=1)  # the main process of a loader with workers
ref = StorageWeakRef.__new__(StorageWeakRef)  # what an interruption inside __init__ leaves:
ref.cdata = torch.zeros(1).untyped_storage()._weak_ref()  # the first assignment done, not the second
del ref


class Other:
    def __del__(self):
        raise ValueError("other errors still print")


Other()
"""


def test_an_interrupted_storage_handover_ends_quietly_in_the_main_process():
    """A group SIGTERM reached the main process inside torch's ``StorageWeakRef.__init__`` (receiving a
    decoded batch): the half-built object's ``__del__`` printed "Exception ignored ... AttributeError:
    _free_weak_ref" with a traceback (the fresh-clone CI, session 34). Real torch class, the state the
    interruption leaves; fails without the hook ``data_loader`` installs."""
    run = subprocess.run([sys.executable, "-c", HALF_BUILT_REF], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert "_free_weak_ref" not in run.stderr and "StorageWeakRef" not in run.stderr, run.stderr
    assert "ValueError: other errors still print" in run.stderr


def _cached_scores(cache: Path) -> int:
    """Rows in the eval score cache now (another process may be writing it)."""
    if not cache.exists():
        return 0
    with ScoreCache(cache) as store:
        return store.count()


def test_eval_interrupted_says_where_the_finished_scores_are(tmp_path, photos):
    """**Was**: a bare "interrupted" line — nothing said the finished batches were in the score cache."""
    paths = _many_images(tmp_path / "ds", photos, 100)
    (tmp_path / "ds" / "mos.csv").write_text(
        "image,mos\n" + "".join(f"{p.name},{1 + (i * 7 % 9) / 2}\n" for i, p in enumerate(paths))
    )
    cache = tmp_path / "cache" / "eval_scores.sqlite"
    env = {"ATTIQA_CACHE": str(cache.parent), "OMP_NUM_THREADS": "1"}
    cmd = attiqa_cmd("eval", "folder", "--root", tmp_path / "ds", "-m", "classical", "-q")
    cmd += ["--batch-size", "2", "--workers", "0", "-o", str(tmp_path / "out")]
    for sig, code in ((signal.SIGTERM, 143), (signal.SIGINT, 130)):
        before = _cached_scores(cache)
        res = interrupt_when(cmd, sig, lambda n=before: _cached_scores(cache) >= n + 4, env)
        err = res.stderr
        assert res.returncode == code, err
        lines = [ln for ln in err.splitlines() if ln.startswith("interrupted")]
        hint = (
            f"interrupted: the finished batches are kept in the score cache {cache}; rerun the same command"
        )
        assert lines == [f"{hint} to resume"], err
        assert "Traceback" not in err and before + 4 <= _cached_scores(cache) < len(paths)


@pytest.mark.slow
def test_eval_killed_keeps_finished_batches_and_a_rerun_scores_only_the_rest(
    tmp_path, photos, cli, monkeypatch
):
    paths = _many_images(tmp_path / "ds", photos, 120)
    (tmp_path / "ds" / "mos.csv").write_text(
        "image,mos\n" + "".join(f"{p.name},{1 + (i * 7 % 9) / 2}\n" for i, p in enumerate(paths))
    )
    ckpt = tiny_attiqa_checkpoint(tmp_path)
    env = attiqa_env({"ATTIQA_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"})
    cmd = attiqa_cmd("eval", "folder", "--root", tmp_path / "ds", "-m", ckpt, "-q")
    cmd += ["--batch-size", "2", "--workers", "0", "--device", "cpu"]
    killed = [*cmd, "-o", str(tmp_path / "killed")]
    proc = subprocess.Popen(killed, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    kill_when(proc, lambda: _cached_scores(tmp_path / "cache" / "eval_scores.sqlite") >= 6)
    kept = _cached_scores(tmp_path / "cache" / "eval_scores.sqlite")
    assert 6 <= kept < len(paths) and not (tmp_path / "killed" / "predictions.csv").exists()

    monkeypatch.setenv("ATTIQA_CACHE", env["ATTIQA_CACHE"])
    with one_thread():  # the rerun and the fresh run in this process, on one thread as the killed one
        res = cli(*killed[3:])
        assert res.returncode == 0, res.stderr
        assert f"{len(paths) - kept} scored, {kept} from cache" in " ".join(res.stderr.split())
        fresh = cli(*cmd[3:], "--no-cache", "-o", tmp_path / "fresh")
    assert fresh.returncode == 0, fresh.stderr
    preds = [(tmp_path / d / "predictions.csv").read_bytes() for d in ("killed", "fresh")]
    assert preds[0] == preds[1] and len(preds[0].splitlines()) == len(paths) + 1
    summaries = [json.loads((tmp_path / d / "summary.json").read_text()) for d in ("killed", "fresh")]
    assert summaries[0]["srocc"] == summaries[1]["srocc"] and summaries[0]["n_cached"] == kept


@pytest.mark.slow
def test_genbench_score_killed_keeps_finished_batches_and_a_rerun_scores_only_the_rest(
    tmp_path, photos, genbench_cli
):
    """**Was**: the metric's CSV was written only when every image was scored — a kill lost all of it."""
    run_dir = tmp_path / "run"
    paths = _pair_run(run_dir, photos, 160)
    shutil.copytree(run_dir, tmp_path / "fresh")
    ckpt = tiny_attiqa_checkpoint(tmp_path)
    env = {"OMP_NUM_THREADS": "1"}
    args = ["score", "-m", ckpt, "--batch-size", "2", "--workers", "0", "--device", "cpu"]
    scores = run_dir / "scores" / "tiny.csv"
    proc = subprocess.Popen(
        genbench_cmd(*args, run_dir), env=attiqa_env(env), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    kill_when(proc, lambda: scores.exists() and len(_rows(scores)) >= 6)
    kept = len(_rows(scores))
    assert 6 <= kept < len(paths)

    with one_thread():  # the rerun and the fresh run in this process, on one thread as the killed one
        res = genbench_cli(*args, run_dir)
        assert res.returncode == 0, res.stderr
        assert f"{len(paths) - kept} scored, {kept} already scored, 0 unreadable" in res.stdout + res.stderr
        fresh = genbench_cli(*args, tmp_path / "fresh")
    assert fresh.returncode == 0, fresh.stderr
    assert scores.read_bytes() == (tmp_path / "fresh" / "scores" / "tiny.csv").read_bytes()
    assert [r["image"] for r in _rows(scores)] == [f"images/{p.name}" for p in paths]  # manifest order


def test_genbench_score_interrupted_says_what_it_kept_in_one_line(tmp_path, photos, genbench_cli):
    """**Was** (session 36): a bare "interrupted", and exit 130 for SIGTERM too (the metric's interruption
    was raised again as a new KeyboardInterrupt, SIGTERM's kind lost); now the command's own line — what
    was kept where — and 143 / 130, with no second "interrupted" from the app runner."""
    run_dir = tmp_path / "run"
    paths = _pair_run(run_dir, photos, 80)
    ckpt = tiny_attiqa_checkpoint(tmp_path)
    cmd = genbench_cmd("score", run_dir, "-m", ckpt, "--batch-size", "2", "--workers", "0", "--device", "cpu")
    scores = run_dir / "scores" / "tiny.csv"
    for sig, code in ((signal.SIGTERM, 143), (signal.SIGINT, 130)):
        before = _n_rows(scores)
        res = interrupt_when(cmd, sig, lambda n=before: _n_rows(scores) >= n + 4, {"OMP_NUM_THREADS": "1"})
        err = res.stderr
        assert res.returncode == code, err
        lines = [ln for ln in (res.stdout + err).splitlines() if ln.startswith("interrupted")]
        assert len(lines) == 1 and "Traceback" not in err, err
        said = rf"interrupted: {re.escape(str(ckpt))}: (\d+) scored, (\d+) already scored, kept in "
        m = re.fullmatch(
            said + rf"{re.escape(str(scores))}; rerun the same command to score the rest", lines[0]
        )
        assert m is not None, lines
        scored, kept = int(m[1]), int(m[2])
        assert kept == before and scored >= 4 and _n_rows(scores) == kept + scored < len(paths)
    kept = _n_rows(scores)
    res = genbench_cli(*cmd[3:])  # the rerun in this process
    assert res.returncode == 0, res.stderr
    assert f"{len(paths) - kept} scored, {kept} already scored, 0 unreadable" in res.stderr, res.stderr
    assert [r["image"] for r in _rows(scores)] == [f"images/{p.name}" for p in paths]


def test_a_command_that_does_not_catch_interruptions_still_ends_with_their_exit_code(tmp_path, photos, cli):
    """`label` leaves Ctrl-C / SIGTERM to the app runner (typer would turn both into 130, silently)."""
    _many_images(tmp_path / "imgs", photos, 60)
    out = tmp_path / "l.parquet"
    cmd = attiqa_cmd("label", tmp_path / "imgs", "-o", out, "--teacher", "classical")
    cmd += ["--batch-size", "2", "--workers", "0"]
    for sig, code in ((signal.SIGTERM, 143), (signal.SIGINT, 130)):
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # fmt: skip
        assert proc.stderr is not None
        seen = [proc.stderr.readline() for _ in range(2)]  # the teacher line, then the first progress line
        assert "labelling" in seen[-1], seen
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == code, err
        assert "interrupted" in err and "Traceback" not in err, err
    res = cli(*cmd[3:])  # the rerun in this process
    assert res.returncode == 0 and "(60 images)" in res.stderr, res.stderr


def test_rerun_with_another_scorer_is_refused(photo_dir, tmp_path, cli):
    out = tmp_path / "s.csv"
    out.write_text("image,mos,sharpness\nx.png,50,0.5\n")
    msg = one_line_error(cli("score", photo_dir, "-m", "classical", "-o", out))
    assert "exists with columns" in msg and out.read_text().startswith("image,mos,")


def test_piped_table_is_readable_at_80_columns(photo_dir):
    res = run_attiqa("score", photo_dir, env={"COLUMNS": ""})  # the default model; stdout is a pipe; no width
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert all(len(ln) <= 80 for ln in lines), lines
    header = next(ln for ln in lines if ln.startswith("image"))
    assert "clean" in header and "nois" not in header  # what the column shows, for a person
    rows = [ln.split() for ln in lines if ln.endswith(tuple("0123456789")) and not ln.startswith("image")]
    assert len(rows) >= 5 + 3  # five photos, mean / min / max
    for cells in rows:
        values = [float(c) for c in cells[-6:]]  # mos + five attributes, never cut to "67.…"
        assert 0 <= values[0] <= 100 and all(0 <= v <= 1 for v in values[1:])


# -- model cards ------------------------------------------------------------------------------------------


def _tampered(tmp_path: Path, edit_model=None, edit_tensors=None, name="bad") -> Path:
    tensors, card = load_checkpoint(DEFAULT)
    if edit_model:
        edit_model(card["model"])
    if edit_tensors:
        edit_tensors(tensors)
    return save_checkpoint(tmp_path / f"{name}.safetensors", tensors, card)


@pytest.mark.parametrize(
    ("edit", "words"),
    [
        (lambda m: m.update(head_hidden=100_000_000), "head_hidden"),
        (lambda m: m.update(head_hidden=64), "does not match tensor"),
        (lambda m: m.update(test_resize_shorter=60000), "test_resize_shorter"),
        (
            lambda m: m.update(test_crop=600),  # the run configs' rule and words (limits.crop_misfit)
            "test_crop: 600 is larger than test_resize_shorter 500 (every image would be shrunk to 500 px",
        ),
        (lambda m: m.update(mos_hidden="512"), "mos_hidden"),
        (lambda m: m.pop("head_names"), "head_names"),
        (lambda m: m.update(std=[0.5, 0.0, 0.5]), "std"),
    ],
)
def test_card_values_are_checked_before_allocation(tmp_path, edit, words):
    path = _tampered(tmp_path, edit_model=edit)
    started = time.monotonic()
    with pytest.raises(ModelLoadError) as exc:
        load_scorer(path)
    msg = str(exc.value)
    assert str(path) in msg and words in msg and "\n" not in msg
    assert time.monotonic() - started < 20  # refused, not allocated and then failed


def test_wrong_tensor_shape_and_non_json_card_are_one_line(tmp_path, cli):
    path = _tampered(tmp_path, edit_tensors=lambda t: t.update({"mos_head.2.weight": torch.zeros(1, 7)}))
    with pytest.raises(ModelLoadError, match="weights do not match the card"):
        load_scorer(path)
    with safe_open(str(DEFAULT), "pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    broken = tmp_path / "nojson.safetensors"
    save_file(tensors, str(broken), metadata={CARD_KEY: "{not json"})
    with pytest.raises(ModelLoadError, match="not valid JSON"):
        read_card(broken)
    Image.new("RGB", (64, 64), "grey").save(tmp_path / "x.png")
    assert "not valid JSON" in one_line_error(cli("score", tmp_path / "x.png", "-m", broken))


def test_bundled_model_with_a_bad_hash_says_reinstall(monkeypatch):
    rows = {k: dict(v) for k, v in named_models().items()}
    rows["attiqa-default"]["sha256"] = "0" * 64
    monkeypatch.setattr("attiqa.scorers.zoo.named_models", lambda: rows)
    with pytest.raises(ModelLoadError, match="reinstall attiqa"):
        resolve_weights("attiqa-default")


def test_cards_carry_no_absolute_path(tmp_path, cli):
    def strings(x):
        if isinstance(x, dict):
            return [s for v in x.values() for s in strings(v)]
        if isinstance(x, list):
            return [s for v in x for s in strings(v)]
        return [x] if isinstance(x, str) else []

    assert not [s for s in strings(read_card(DEFAULT)) if s.startswith("/")]
    assert not [s for s in strings(json.loads(DEFAULT.with_suffix(".json").read_text())) if s.startswith("/")]
    tensors, card = load_checkpoint(DEFAULT)
    card["dataset"]["image_root"] = "/home/someone/data/clive/images"
    src = save_checkpoint(tmp_path / "src.safetensors", tensors, card)
    res = cli("export", src, tmp_path / "out.safetensors")
    assert res.returncode == 0, res.stderr
    exported = read_card(tmp_path / "out.safetensors")
    assert exported["dataset"]["image_root"] == "clive/images"
    assert not [s for s in strings(exported) if s.startswith("/")]


# -- attiqa eval: the data ---------------------------------------------------------------------------------


def _folder_dataset(tmp_path: Path, photos, mos_rows: list[tuple[str, str]]):
    from attiqa.datasets import get_dataset

    root = tmp_path / "ds"
    root.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(sorted({r[0] for r in mos_rows})):
        list(photos.values())[i % len(photos)].resize((128, 96)).save(root / name)
    (root / "mos.csv").write_text("image,mos\n" + "".join(f"{a},{b}\n" for a, b in mos_rows))
    return get_dataset("folder", root)


def _evaluate(ds, tmp_path, scorer=None):
    from attiqa.evaluation.evaluate import evaluate

    scorer = scorer or load_scorer("classical")
    return evaluate(ds, scorer, tmp_path / "ev", cache=False, num_workers=0, progress=False, plot=False)


def test_eval_counts_repeats_once_and_reports_rows_without_mos(tmp_path, photos):
    rows = [("a.png", "1"), ("b.png", "2"), ("c.png", "3"), ("d.png", "4"), ("a.png", "1"), ("a.png", "1")]
    rows += [("e.png", ""), ("f.png", "nan"), ("g.png", "inf")]
    res = _evaluate(_folder_dataset(tmp_path, photos, rows), tmp_path)
    assert res.n == 4
    assert any("2 repeated row(s)" in w for w in res.warnings)
    assert any("3 row(s) without a finite mos" in w for w in res.warnings)
    summary = json.loads(res.files["summary"].read_text())
    assert (
        summary["n"] == 4 and len(summary["warnings"]) == 3
    )  # and "4 images in the metrics: …" (session 54)


def test_eval_refuses_conflicting_mos_and_warns_on_constant_mos(tmp_path, photos):
    ds = _folder_dataset(tmp_path, photos, [("a.png", "1"), ("b.png", "2"), ("a.png", "3")])
    with pytest.raises(AttiqaError, match="1 image.*two different scores.*a.png"):
        _evaluate(ds, tmp_path)
    ds = _folder_dataset(tmp_path / "c", photos, [("a.png", "3"), ("b.png", "3"), ("c.png", "3")])
    res = _evaluate(ds, tmp_path / "c")
    assert any("the same (3) for every image" in w for w in res.warnings)


def test_eval_and_score_agree_on_a_big_jpeg(tmp_path, photos):
    """The same 1600-px JPEG through `eval` and `score`: one scoring path, one number (the reduced-scale
    JPEG decoding used to apply to `score` only: 75.77 vs 75.01)."""
    from attiqa.datasets import get_dataset
    from attiqa.scoring import score_paths

    root = tmp_path / "big"
    root.mkdir()
    big = photos["astronaut"].resize((1600, 1600), Image.LANCZOS)
    for i in range(3):
        big.rotate(90 * i).save(root / f"b{i}.jpg", quality=92)
    (root / "mos.csv").write_text("image,mos\nb0.jpg,10\nb1.jpg,20\nb2.jpg,30\n")
    scorer = load_scorer(None, crops="center")
    res = _evaluate(get_dataset("folder", root), tmp_path, scorer)
    via_score = score_paths(sorted(root.glob("*.jpg")), scorer, num_workers=0)
    np.testing.assert_allclose(
        [r["prediction"] for r in sorted(res.rows, key=lambda r: r["image"])],
        [r["mos"] for r in sorted(via_score.rows, key=lambda r: r["image"])],
        rtol=0,
        atol=1e-5,
    )
