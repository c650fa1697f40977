"""genbench's commands on agiqa3k-dev as a new user runs them (docs/robustness.md). Small fixtures: real
photos from scikit-image, a tiny random Stable Diffusion where `genbench run` has to make images."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from genbench_helpers import build_tiny_sd, make_photo_run

from genbench.manifest import load_pairs
from genbench.metric_scoring import open_metric


@pytest.fixture(scope="module")
def sd(tmp_path_factory) -> Path:
    """A tiny random-weight Stable Diffusion saved as a local diffusers folder."""
    pytest.importorskip("diffusers")
    return build_tiny_sd(tmp_path_factory.mktemp("tiny") / "sd")


def _open_files(path: Path) -> list[str]:
    """This process's file descriptors open on ``path``."""
    fds = Path("/proc/self/fd")
    found = []
    for fd in os.listdir(fds):
        try:
            if os.readlink(fds / fd) == str(path.resolve()):
                found.append(fd)
        except OSError:
            continue
    return found


def test_a_metric_opened_and_not_scored_leaves_its_score_file_closed(tmp_path, photos):
    """**Was** (session 49's leftover): ``open_metric`` opened ``scores/<metric>.csv`` to append and only
    ``MetricJob.score`` closed it: a job opened and never scored (an interruption between the two, a caller
    that only wanted ``report.kept``) left it open. Now the job is a context manager: the block's end
    closes the file, scored or not, and a second rerun sees what the first kept."""
    run = make_photo_run(tmp_path / "run", photos)
    pairs = load_pairs(run)
    out = run / "scores" / "classical.csv"
    with open_metric(run, pairs, "classical") as job:
        assert job.ready is not None and job.report.kept == 0 and len(job.ready.todo) == 10
        assert _open_files(out)  # open to append while the block runs
    assert not _open_files(out)
    with open_metric(run, pairs, "classical") as job:
        assert job.score(num_workers=0).scored == 10
    assert not _open_files(out)
    with open_metric(run, pairs, "classical") as job:
        assert (job.report.kept, job.ready) == (10, None)  # scored whole: nothing loaded or opened
    assert not _open_files(out)


def test_run_into_a_folder_an_import_left_unfinished_is_refused(tmp_path, sd):
    """**Was**: `genbench run --out RUN` where RUN holds only ``.import-unfinished`` (an import killed before
    any other file) made images there, and its manifest write removed the marker; `score` / `agree` / `vote`
    refuse such a folder. Now `run` does too, in one line, before the model loads: nothing written."""
    from helpers import run_genbench

    from genbench.manifest import IMPORT_UNFINISHED

    run = tmp_path / "run"
    run.mkdir()
    (run / IMPORT_UNFINISHED).write_text("an import into this folder did not finish\n")
    args = ["run", "--model", sd, "--pairs", "1", "--steps", "1", "--width", "32", "--height", "32"]
    res = run_genbench(*args, "--out", run, "--device", "cpu")
    assert res.returncode == 2, res.stderr
    assert res.stderr.splitlines() == [
        f"error: {run}: an import into this folder did not finish — rerun that import command, or pass "
        "another --out to generate images"
    ]
    assert sorted(p.name for p in run.iterdir()) == [IMPORT_UNFINISHED]


def test_a_preferences_csv_with_a_short_line_or_no_pair_id_names_the_line_and_the_fix(
    tmp_path, photos, genbench_cli
):
    """**Was**: `genbench agree RUN` with a line of the study's prefs.csv cut short (a note typed into it, an
    editor's half line) said "prefs.csv:128: choice must be a or b, got None", and a row without its pair id
    "1 voted pair id(s) are not in the run's manifest (e.g. ) — are the preferences for this run?" (the
    whole file doubted for one line). Now the line, what is wrong with it and the fix."""

    run = make_photo_run(tmp_path / "run", photos)
    assert genbench_cli("score", run, "-m", "classical", "-w", "0").returncode == 0
    good = "pair_id,rater,choice\n" + "".join(f"{p.pair_id},r1,a\n" for p in load_pairs(run))
    for extra, said in [
        (
            "a note\n",
            "no choice cell — the line has fewer cells than the header's 3 (pair_id,rater,choice); ",
        ),
        (",r1,a\n", "no pair_id — "),
        ("astronaut,r1,c\n", "choice must be a or b, got 'c' — "),
    ]:
        (run / "prefs.csv").write_text(good + extra)
        res = genbench_cli("agree", run)
        assert res.returncode == 2, res.stderr
        assert res.stderr.splitlines() == [f"error: {run / 'prefs.csv'}:7: {said}fix or delete the line"]
    (run / "prefs.csv").write_text(good)
    assert genbench_cli("agree", run).returncode == 0


def test_a_preferences_csv_a_spreadsheet_saved_with_semicolons_is_read(tmp_path, photos, genbench_cli):
    """**Was**: a prefs.csv saved by a spreadsheet of a decimal-comma locale (`pair_id;rater;choice`) was
    "expected CSV columns pair_id,choice[,rater] (… found: pair_id;rater;choice)", though `attiqa eval
    folder` reads such a score file. Now the separator is taken from the header, as there."""
    run = make_photo_run(tmp_path / "run", photos)
    assert genbench_cli("score", run, "-m", "classical", "-w", "0").returncode == 0
    rows = [(p.pair_id, "r1", "ab"[i % 2]) for i, p in enumerate(load_pairs(run))]
    reports = []
    for sep in (",", ";"):
        prefs = tmp_path / f"prefs{len(reports)}.csv"
        prefs.write_text("".join(sep.join(r) + "\n" for r in [("pair_id", "rater", "choice"), *rows]))
        out = tmp_path / f"agree{len(reports)}"
        res = genbench_cli("agree", run, "-p", prefs, "-o", out)
        assert res.returncode == 0, res.stderr
        reports.append((out / "agreement.csv").read_text())
    assert reports[0] == reports[1]


def test_agree_piped_prints_each_metric_on_one_line_whole(tmp_path, photos, genbench_cli):
    """**Was**: `genbench agree RUN > log` (or piped) printed rich's table squeezed into 80 columns: a
    checkpoint's stem cut to "koniq-finetune…" (two checkpoints of one prefix looked the same), the
    "attiqa-agiqa3k *" of a metric trained on the images folded over two lines, the title too. Now plain
    fixed-width lines (`attiqa.cli.plain_table`, as `attiqa score` and `isp-tune` print piped): each
    metric's name whole, its figures on its line, a legend under them."""
    import re

    from helpers import run_genbench, tiny_attiqa_checkpoint

    run = make_photo_run(tmp_path / "run", photos)
    ckpt = tiny_attiqa_checkpoint(tmp_path).rename(tmp_path / "koniq-finetune-lite1-seed3-v2.safetensors")
    assert genbench_cli("score", run, "-m", f"classical,{ckpt}", "-w", "0").returncode == 0
    (run / "prefs.csv").write_text(
        "pair_id,choice\n" + "".join(f"{p.pair_id},{p.record['sharp']}\n" for p in load_pairs(run))
    )
    res = run_genbench("agree", run, env={"COLUMNS": ""})  # stdout a pipe
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0] == "agreement with human preference — 5 pairs with votes, 0 tied (skipped)", res.stdout
    figures = r"\s+5(\s+\S+%){3}\s+\d+\s+0$"
    for name in ("classical", "koniq-finetune-lite1-seed3-v2"):
        assert [ln for ln in lines if re.match(re.escape(name) + figures, ln)], res.stdout
    assert all(len(ln) <= 80 for ln in lines), res.stdout


@pytest.mark.slow
def test_run_again_remakes_damaged_images_and_counts_found_ones_outside_the_rate(tmp_path, sd, genbench_cli):
    """**Was**: `genbench run` again on a run whose image was cut short or emptied (a copy stopped midway, a
    bad disk) kept it as "already there" for good: `score` skipped it as unreadable ("re-export or
    re-download it") and `vote` hid its pair, and no rerun made it again. And a rerun's bar counted the
    images found on disk in its rate: "generating: 4/4 (107.2 img/s)" with none made. Now a damaged image
    is made again from its seed (the same bytes as the first time) and said; found images are "kept"."""
    import hashlib

    from helpers import run_genbench

    run = tmp_path / "run"
    args = ["run", "--model", sd, "--pairs", "2", "--steps", "1", "--width", "32", "--height", "32"]
    args += ["--out", run, "--device", "cpu"]
    assert run_genbench(*args).returncode == 0
    images = sorted((run / "images").glob("*.png"))
    first = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in images}
    data = images[0].read_bytes()
    images[0].write_bytes(data[: len(data) // 2])
    images[3].write_bytes(b"")
    res = run_genbench(*args)
    assert res.returncode == 0, res.stderr
    assert f"{run}: 2 images made, 2 already there, 0 failed" in res.stderr, res.stderr
    assert (
        "2 damaged images on disk made again (e.g. images/p0000_a.png: cannot decode image (image file is "
        "truncated))" in res.stderr
    ), res.stderr
    assert {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in images} == first
    assert "generating: 2/4 (none done now, 2 kept from an earlier run)" in res.stderr, res.stderr
    # session 57: on a terminal the found images are in the bar's first frame (it was drawn at 0/4 first)
    from helpers import terminal_bar

    with terminal_bar("generating") as frames:
        assert genbench_cli(*args).returncode == 0
    assert frames and all(" 4/4 " in f for f in frames), frames


def test_score_tells_how_to_make_a_generated_runs_missing_or_damaged_image_again(tmp_path, sd):
    """**Was**: `genbench score RUN` on a generated run with an image deleted or cut short listed it with
    `attiqa score`'s fix for a user's photo: "file not found — check the path", "… re-export or re-download
    it, or leave it out". Now the fix is the run's own: `genbench run` makes it again (from its seed)."""
    from helpers import run_genbench

    from genbench.generate import GenSettings, generate_run, load_pipeline
    from genbench.prompts import load_prompt_spec

    run = tmp_path / "run"
    settings = GenSettings(model=str(sd), steps=1, width=32, height=32)
    generate_run(run, load_prompt_spec(), settings, 2, pipeline=load_pipeline(str(sd), "fp32", "cpu"))
    (run / "images" / "p0000_a.png").unlink()
    (run / "images" / "p0001_b.png").write_bytes(b"")
    res = run_genbench("score", run, "-m", "classical", "-w", "0")
    assert res.returncode == 0, res.stderr
    fix = "rerun `genbench run` with this run's options (run.json) to make it again"
    said = [ln.strip() for ln in res.stderr.splitlines() if ln.strip().startswith("skipped")]
    assert said == [
        f"skipped {run}/images/p0000_a.png: file not found — {fix}",
        f"skipped {run}/images/p0001_b.png: empty file (0 bytes) — {fix}",
    ], res.stderr


def test_a_damaged_checkpoints_skip_line_names_it_once(tmp_path, photos, genbench_cli, monkeypatch):
    """**Was**: `genbench score RUN -m ./m.safetensors,classical` with ``m.safetensors`` cut short said
    "skipped ./m.safetensors: m.safetensors: not a readable safetensors checkpoint …": the loader names the
    path as ``Path`` prints it, the skip line took off only the name as typed. Now it is named once."""
    from helpers import tiny_attiqa_checkpoint

    make_photo_run(tmp_path / "run", photos)
    whole = tiny_attiqa_checkpoint(tmp_path).read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(whole[: len(whole) // 2])  # a copy cut short
    monkeypatch.chdir(tmp_path)
    for typed in ("./cut.safetensors", "cut.safetensors"):
        res = genbench_cli("score", "run", "-m", f"{typed},classical", "--workers", "0")
        said = " ".join(res.stdout.split() + res.stderr.split())
        assert res.returncode == 0, said
        assert f"skipped {typed}: not a readable safetensors checkpoint" in said
        assert said.count("cut.safetensors") == 1, said


def test_each_prefs_refusal_names_the_file_the_line_or_pair_and_the_fix(tmp_path, photos, genbench_cli):
    """`genbench agree RUN --prefs FILE` refused, rightly, but **was** vague: another run's file "2 voted pair
    id(s) are not in the run's manifest (e.g. bar, foo) — …" (not which line, nor what the run's ids look
    like); columns misnamed "expected CSV columns … (found: pid, vote)" and an empty file "(found: none)"
    with no fix; a header alone "no votes for this run's pairs yet — collect some with `genbench vote`"
    (the file was the wrong one). Now each names the file, the line or pair, and what to do."""
    run = make_photo_run(tmp_path / "run", photos)
    assert genbench_cli("score", run, "-m", "classical", "-w", "0").returncode == 0
    ours = min(p.pair_id for p in load_pairs(run))
    given = {
        "other.csv": (
            "pair_id,choice\nfoo,a\nbar,b\n",
            "2 voted pair id(s) are not in the run's manifest (e.g. line 2: foo; the run's are e.g. "
            f"{ours}) — are the preferences for this run? Pass its own with --prefs FILE (its votes.sqlite, "
            "or a CSV pair_id,choice of its pair ids)",
        ),
        "cols.csv": (
            "pid,vote\nx,a\n",
            "expected CSV columns pair_id,choice[,rater] (choice = a or b), its header is pid, vote — name "
            "its columns so in a first line, or pass the preferences file the votes were saved in",
        ),
        "empty.csv": ("", "expected CSV columns pair_id,choice[,rater] (choice = a or b), it is empty — "),
        "header.csv": (
            "pair_id,choice\n",
            "no vote in it (a header, no line after it) — pass the preferences file the votes were saved "
            f"in, or collect some with `genbench vote {run}`",
        ),
    }
    for name, (text, said) in given.items():
        prefs = tmp_path / name
        prefs.write_text(text, encoding="utf-8")
        res = genbench_cli("agree", run, "--prefs", prefs)
        lines = res.stderr.splitlines()
        assert res.returncode == 2 and len(lines) == 1, res.stderr
        assert lines[0].startswith(f"error: {prefs}: {said}"), (name, lines[0])


def test_a_header_alone_is_said_so_whatever_the_csvs_name(tmp_path, photos, genbench_cli):
    """`genbench agree RUN --prefs FILE` with a CSV of a header alone named `prefs.txt` or without a suffix
    (read as a CSV all the same): **was** "no votes for this run's pairs yet — collect some with `genbench
    vote`" — the words of an empty vote database, since `.csv` alone was taken for a CSV there. Now one
    place decides what is a database (`genbench.prefs.is_vote_database`): the header-alone line."""
    run = make_photo_run(tmp_path / "run", photos)
    assert genbench_cli("score", run, "-m", "classical", "-w", "0").returncode == 0
    for name in ("prefs.txt", "prefs", "PREFS.CSV"):
        prefs = tmp_path / name
        prefs.write_text("pair_id,choice\n", encoding="utf-8")
        res = genbench_cli("agree", run, "--prefs", prefs)
        assert res.returncode == 2, res.stderr
        said = res.stderr
        assert said.startswith(f"error: {prefs}: no vote in it (a header, no line after it)"), said
