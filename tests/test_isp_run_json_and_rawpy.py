"""isp-tune: a raw rawpy cannot post-process, run files that are JSON but not the object a run wrote, bare
``isp-tune``'s exit code, run.json across resumes (docs/robustness.md rows)."""

from __future__ import annotations

import contextlib
import csv
import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from isp_env.cli import app


def test_bare_isp_tune_exits_2_as_attiqa_and_genbench_do(tmp_path):
    """**Was**: bare ``isp-tune`` printed its help and exited 0 (bare ``attiqa`` / ``genbench``: click's
    usage exit, 2), and ``isp-tune --out X`` without ``--raw-dir`` printed the whole help, exit 0 — read
    as a run that did nothing wrong. Now bare: the help, exit 2; options without ``--raw-dir``: one line
    naming it, exit 2. The real commands, in their own processes."""
    import subprocess

    from helpers import attiqa_env, isp_tune_cmd, run_attiqa

    bare = subprocess.run(isp_tune_cmd(), env=attiqa_env(), capture_output=True, text=True, timeout=120)
    attiqa = run_attiqa()
    genbench = subprocess.run(
        [*isp_tune_cmd()[:2], "genbench.cli"], env=attiqa_env(), capture_output=True, text=True, timeout=120
    )
    assert attiqa.returncode == genbench.returncode == bare.returncode == 2
    assert "--raw-dir" in bare.stderr and "Traceback" not in bare.stderr
    res = subprocess.run(
        isp_tune_cmd("--out", tmp_path / "run"), env=attiqa_env(), capture_output=True, text=True, timeout=120
    )
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert res.returncode == 2 and len(lines) == 1 and "--raw-dir is missing" in lines[0], res.stderr
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("name", "text", "said"),
    [
        ("run.json", "[]", "damaged (it is a JSON array, not the object the run wrote)"),
        ("run.json", '{"config": [], "train": []}', "damaged ('config' holds a JSON array"),
        ("teacher/targets_neutral.json", '{"x": []}', "damaged ('x' holds a JSON array"),
        ("training.json", "null", "damaged (it is a JSON null"),
    ],
)
def test_a_run_file_that_is_json_but_not_an_object_is_one_line_on_resume(
    tmp_path, isp_raws, name, text, said
):
    """**Was**: a kept run file holding valid JSON of another shape (``[]``, ``{"config": []}``: an edit,
    another tool's file) passed the damaged-file check and ended the resume on ``AttributeError: 'list'
    object has no attribute 'get'``. Now one line naming the file and the fix, before any work."""
    run = tmp_path / "run"
    (run / name).parent.mkdir(parents=True, exist_ok=True)
    (run / name).write_text(text)
    r = CliRunner().invoke(
        app, ["--raw-dir", str(isp_raws[0].parent), "--out", str(run), "--model", "classical"]
    )
    assert r.exit_code != 0 and not isinstance(r.exception, AttributeError), repr(r.exception)
    message = str(r.exception)
    assert str(run / name) in message and said in message and "delete it to redo its step" in message
    assert sorted(p.relative_to(run).as_posix() for p in run.rglob("*") if p.is_file()) == [name]


def test_check_refuses_a_parameter_file_that_is_json_but_not_an_object(tmp_path, isp_raws):
    """The same in ``isp-tune check``: a policy's parameter file of an earlier check holding ``[]`` was
    ``AttributeError`` once the raw's turn came; now one line naming it before any raw is tuned."""
    out = tmp_path / "check"
    pfile = out / "test" / "policy" / "params" / f"{isp_raws[0].stem}.json"
    pfile.parent.mkdir(parents=True)
    pfile.write_text("[1, 2]")
    r = CliRunner().invoke(app, ["check", str(isp_raws[0].parent), "--out", str(out), "-m", "classical"])
    assert r.exit_code != 0 and not isinstance(r.exception, AttributeError), repr(r.exception)
    assert str(pfile) in str(r.exception) and "a JSON array, not the object the run wrote" in str(r.exception)


@contextlib.contextmanager
def _postprocess_fails_for(monkeypatch, name: str):
    """rawpy reads every raw as it does; only LibRaw's post-processing of ``name`` raises LibRaw's own
    error. (No real raw that LibRaw 0.22 reads but cannot post-process was found: tiny Bayer and X-Trans
    frames, extreme DefaultScale, black over white, zero white level / neutral / matrix all render.)"""
    import rawpy

    import isp_env.reward as reward

    real = reward.open_raw

    class Failing:
        def __init__(self, raw):
            self.raw = raw

        def __getattr__(self, attr):
            return getattr(self.raw, attr)

        def postprocess(self, *args, **kwargs):
            raise rawpy.LibRawDataError(b"Input data error")

    @contextlib.contextmanager
    def opened(path):
        with real(path) as raw:
            yield Failing(raw) if Path(path).name == name else raw

    monkeypatch.setattr(reward, "open_raw", opened)
    yield


def _raw_folder(tmp_path: Path, raws: list[Path], name: str = "raws") -> Path:
    folder = tmp_path / name
    folder.mkdir()
    for p in raws:
        shutil.copy(p, folder / p.name)
    return folder


@pytest.mark.slow  # a tiny run with its baselines: ~30 s on a loaded machine
def test_a_raw_rawpy_cannot_post_process_loses_only_its_rawpy_row(tmp_path, isp_raws, monkeypatch):
    """**Was**: a raw rawpy reads but cannot post-process ended isp-tune's evaluation on LibRaw's traceback,
    after every search and tuning (the guard fell back to neutral; the report's rawpy row rendered it
    again, uncaught; only X-Trans had a fallback). Now a warning names the raw and LibRaw's reason, that
    raw has no rawpy row (summary.json's ``no_rawpy`` says why), every other row is there."""
    from helpers import TINY_TEACHER_OPTIONS

    from isp_env.raw import find_raws
    from isp_env.run_inputs import scene_groups, split

    raw_dir = _raw_folder(tmp_path, isp_raws)
    raws = find_raws(raw_dir)
    _, test = split(raws, 0.5, 0, scene_groups(raws, raw_dir))
    assert len(test) == 2
    bad = test[0]
    run = tmp_path / "run"
    opts = [o if o != "0.3" else "0.5" for o in TINY_TEACHER_OPTIONS]
    args = ["--raw-dir", str(raw_dir), "--out", str(run), *opts, "--cma-global-budget", "6"]
    with _postprocess_fails_for(monkeypatch, bad.name):
        r = CliRunner().invoke(app, [*args, "--cma-image-budget", "6"])
    assert r.exit_code == 0, r.output + repr(r.exception)
    flat = " ".join(r.output.split())
    assert f"{bad.name}: rawpy.postprocess() cannot render it (LibRawDataError: Input data error)" in flat
    assert "its rawpy row is left out of the report" in flat
    summary = json.loads((run / "summary.json").read_text())
    with open(run / "results.csv", newline="") as fh:
        rows = {(row["image"], row["method"]) for row in csv.DictReader(fh)}
    keys = summary["test_raws"]
    methods = {"neutral", "rawpy", "teacher", "teacher_checked", "cma_global", "cma_per_image"}
    assert len(keys) == 2 and rows == {(k, m) for k in keys for m in methods} - {(bad.stem, "rawpy")}
    assert summary["no_rawpy"] == {bad.stem: "LibRawDataError: Input data error"}
    rawpy_row = next(s for s in summary["methods"] if s["method"] == "rawpy")
    assert rawpy_row["n_images"] == 1


@pytest.mark.slow  # a tiny run and its resume from a moved folder: ~40 s on a loaded machine
def test_run_json_keeps_the_first_run_and_records_each_resume(tmp_path, isp_raws):
    """**Was**: run.json was rewritten with each rerun's plan and settings alone — a resume from a moved
    raw folder recorded only the new folder and paths, the run's first ones lost, and nothing said it had
    been resumed. Now it keeps ``started`` and appends each resume (its time, and what it changed as
    ``[before, after]``); the plan itself is the last run's, as the resume checks and the benchmarks read
    it."""
    from helpers import TINY_TEACHER_OPTIONS, tiny_teacher_run

    raw_dir, run = tiny_teacher_run(tmp_path, isp_raws)
    first = json.loads((run / "run.json").read_text())
    assert "started" in first and "resumes" not in first

    from isp_env.run import run_record

    plan = {k: v for k, v in first.items() if k != "started"}
    same = run_record(first, plan)  # the same command again: a resume, nothing changed
    assert same["started"] == first["started"] and [set(r) for r in same["resumes"]] == [{"at"}]
    moved = raw_dir.rename(tmp_path / "moved")
    r = CliRunner().invoke(app, ["--raw-dir", str(moved), "--out", str(run), *TINY_TEACHER_OPTIONS])
    assert r.exit_code == 0, r.output + repr(r.exception)
    now = json.loads((run / "run.json").read_text())
    assert now["started"] == first["started"] and len(now["resumes"]) == 1
    changed = now["resumes"][0]["changed"]
    assert changed == {
        "raw_dir": [str(raw_dir), str(moved)],
        "train": [first["train"], now["train"]],
        "test": [first["test"], now["test"]],
    }  # not "asked": the teacher's fit is of its raws' names and stamps, the same after a move
    assert now["asked"] == first["asked"]
    assert {k: v for k, v in now.items() if k not in ("started", "resumes")} == {
        **plan,
        "raw_dir": str(moved),
        "train": [str(moved / Path(p).name) for p in first["train"]],
        "test": [str(moved / Path(p).name) for p in first["test"]],
        "asked": now["asked"],
    }
