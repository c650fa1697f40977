"""isp-tune: a resume's render check, a mixed raw folder, a kill mid-run, help at 80 columns, parameter files
of earlier versions (docs/robustness.md rows). Real runs on DNGs read by rawpy, the classical scorer, seconds
each."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from helpers import TINY_TEACHER_OPTIONS
from PIL import Image
from typer.testing import CliRunner

import isp_env.run
from isp_env.cli import app


def teacher_run(raw_dir: Path, run: Path, *extra: object) -> str:
    """The tiny teacher run of ``helpers.TINY_TEACHER_OPTIONS`` with baselines off, in this process."""
    args = ["--raw-dir", raw_dir, "--out", run, *TINY_TEACHER_OPTIONS, "--no-baselines", *extra]
    r = CliRunner().invoke(app, list(map(str, args)))
    assert r.exit_code == 0, r.output + repr(r.exception)
    return r.output


def copied(raws: list[Path], folder: Path) -> Path:
    folder.mkdir()
    for p in raws:
        (folder / p.name).write_bytes(p.read_bytes())
    return folder


@pytest.mark.slow  # four tiny runs: ~20 s
def test_a_resume_checks_its_renders_without_decoding_them(tmp_path, isp_raws, monkeypatch):
    """**Was** every render of a resumed run decoded to compare its pixels (``save_render``): 0.7 s a 24 MP
    PNG, minutes at FiveK scale. Now each render has ``RAW.png.json`` beside it (its raw and setting, the
    pixels' SHA-256, the file's size and a hash of its ends) and a resume decodes none; a run of an earlier
    version (no record) is decoded once and recorded; a render cut short or replaced is written again."""
    raw_dir = copied(isp_raws, tmp_path / "raws")
    run = tmp_path / "run"
    teacher_run(raw_dir, run)
    pngs = sorted((run / "test" / "teacher").glob("renders/*.png")) + sorted(
        (run / "test" / "teacher_checked").glob("renders/*.png")
    )
    assert pngs
    for png in pngs:
        rec = json.loads(Path(f"{png}.json").read_text())
        assert rec["pixels_sha256"] and rec["file"][0] == png.stat().st_size and rec["params"]
    decoded: list[Path] = []
    real_load = isp_env.run.load_image

    def counted(path, *a, **kw):
        decoded.append(Path(path))
        return real_load(path, *a, **kw)

    monkeypatch.setattr(isp_env.run, "load_image", counted)
    stamps = {p: p.stat().st_mtime_ns for p in pngs}
    teacher_run(raw_dir, run)
    assert decoded == [] and {p: p.stat().st_mtime_ns for p in pngs} == stamps

    for png in pngs:  # a run of an earlier version: its renders have no record
        Path(f"{png}.json").unlink()
    teacher_run(raw_dir, run)
    assert sorted(decoded) == sorted(pngs) and {p: p.stat().st_mtime_ns for p in pngs} == stamps
    assert all(Path(f"{p}.json").is_file() for p in pngs)  # recorded: the next resume decodes none
    want = {p: np.asarray(Image.open(p).convert("RGB")) for p in pngs}

    decoded.clear()
    cut, replaced = pngs[0], pngs[-1]
    cut.write_bytes(cut.read_bytes()[:200])  # damaged
    Image.new("RGB", (8, 8), "red").save(replaced)  # another picture
    teacher_run(raw_dir, run)
    for png in (cut, replaced):
        assert np.array_equal(np.asarray(Image.open(png).convert("RGB")), want[png])
        assert json.loads(Path(f"{png}.json").read_text())["file"][0] == png.stat().st_size
    assert sorted(decoded) == sorted({cut, replaced})  # the others were not decoded
    again = tmp_path / "again.png"  # the record is a setting `isp-tune render --params` reads
    rec = json.loads(Path(f"{cut}.json").read_text())
    r = CliRunner().invoke(app, ["render", rec["raw"], "--params", f"{cut}.json", "-o", str(again)])
    assert r.exit_code == 0, r.output
    assert np.array_equal(np.asarray(Image.open(again).convert("RGB")), want[cut])


KILL_MID_WRITE = """
import importlib, os, signal, sys

real = os.fsync


def synced(fd):
    real(fd)
    name = os.readlink(f"/proc/self/fd/{fd}")
    if os.environ["WHERE"] in name and name.endswith(".tmp"):
        os.kill(os.getpid(), signal.SIGKILL)  # a real kill -9, with the temp written and not yet renamed


os.fsync = synced
importlib.import_module("isp_env.cli").main()
"""


@pytest.mark.slow  # four processes: ~30 s
def test_a_kill_while_a_render_is_written_leaves_no_temp_after_the_rerun(tmp_path, isp_raws):
    """**Was** a `kill -9` of `isp-tune` (or `isp-tune check`) while a render was written leaving its temp
    (``.RAW.png.HOST.PID.RANDOM.tmp``, as large as the render) in ``test/METHOD/renders`` for good: the
    rerun cleared the temps of ``test/params`` and ``test/renders``, folders nothing writes. Now every
    folder of the run is cleared. A real SIGKILL of the real command, as the render's temp is synced."""
    import subprocess
    import sys

    from helpers import attiqa_env

    raw_dir = copied(isp_raws, tmp_path / "raws")
    script = tmp_path / "kill_mid_write.py"
    script.write_text(KILL_MID_WRITE)
    for args, run in (
        (["--raw-dir", raw_dir, *TINY_TEACHER_OPTIONS, "--no-baselines"], tmp_path / "run"),
        (["check", raw_dir, "-m", "classical", "--test-raws", "2"], tmp_path / "check"),
    ):
        cmd = [sys.executable, str(script), *map(str, args), "--out", str(run)]
        env = attiqa_env({"WHERE": "/renders/.", "OMP_NUM_THREADS": "1"})
        killed = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
        assert killed.returncode == -9, killed.stderr[-2000:]
        assert list(run.glob("test/*/renders/.*.tmp"))  # what the kill left
        again = subprocess.run(cmd[:1] + ["-m", "isp_env.cli"] + cmd[2:], env=env, capture_output=True,
                               text=True, timeout=300)  # fmt: skip
        assert again.returncode == 0, again.stderr[-2000:]
        assert list(run.rglob("*.tmp")) == []


@pytest.mark.slow  # three tiny runs: ~20 s
def test_settings_of_an_earlier_version_are_tuned_again_and_it_is_said(tmp_path, isp_raws):
    """**Was** silent: a run resumed over parameter files written before ``policy_digest`` existed tuned
    (and checked) every held-out raw again without a word — rightly, the policy that wrote them is unknown
    — so a resume took as long as a first run and read as a bug. Now one line a folder says so; the files
    get their digest, and the next resume keeps them without the line."""
    raw_dir = copied(isp_raws, tmp_path / "raws")
    run = tmp_path / "run"
    teacher_run(raw_dir, run)
    files = sorted(run.glob("test/*/params/*.json"))
    assert {f.parent.parent.name for f in files} == {"teacher", "teacher_checked"}
    for f in files:
        doc = json.loads(f.read_text())
        del doc["policy_digest"]
        f.write_text(json.dumps(doc))
    said = teacher_run(raw_dir, run)
    for method, done in (("teacher", "tuned again"), ("teacher_checked", "checked again")):
        n = len(list((run / "test" / method / "params").glob("*.json")))
        line = next(x for x in said.splitlines() if f"/{method}/params were" in x)
        assert line.startswith(f"{n} parameter file(s) in {run / 'test' / method / 'params'} were written by")
        assert "earlier version" in line and done in line
    assert all("policy_digest" in json.loads(f.read_text()) for f in files)
    assert "earlier version" not in teacher_run(raw_dir, run)


def test_help_at_80_columns_shows_every_option_whole():
    """**Was** `isp-tune --help` at 80 columns (a narrow terminal, a pipe, a log) cutting long option names
    in rich's panel — "--checkpoint-eve…", "--cma-global-bud…", "--cma-image-budg…", "--teacher-restar…",
    "--model,--reward…" — and squeezing each option's help into a column of 17 characters. Now below 100
    columns the help is click's plain layout: every option's names whole, no line over 80. The real command
    of each subcommand, in a subprocess."""
    import subprocess

    import typer.main
    from helpers import attiqa_env, isp_tune_cmd

    group = typer.main.get_command(app)
    for name in ("", "check", "render"):
        cmd = group if not name else group.commands[name]  # type: ignore[attr-defined]
        res = subprocess.run(
            isp_tune_cmd(*filter(None, [name]), "--help"), env={**attiqa_env(), "COLUMNS": "80"},
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert res.returncode == 0, res.stderr
        lines = res.stdout.splitlines()
        assert max(map(len, lines)) <= 80 and "…" not in res.stdout, name
        words = res.stdout.replace(",", " ").split()
        for param in cmd.params:
            for opt in (o for o in [*param.opts, *param.secondary_opts] if o.startswith("--")):
                assert opt in words, (name, opt)
        if not name:  # bare `isp-tune` prints the same help ("[default: …]" was eaten as rich markup)
            bare = subprocess.run(isp_tune_cmd(), env={**attiqa_env(), "COLUMNS": "80"}, capture_output=True,
                                  text=True, timeout=120)  # fmt: skip
            # exit 2, as bare `attiqa` / `genbench` (click's usage exit; it was 0):
            # test_isp_run_json_and_rawpy.py
            assert bare.returncode == 2 and bare.stderr == res.stdout
            assert "[default: teacher]" in res.stdout


def test_raws_whose_output_names_meet_keep_their_own_outputs(tmp_path, isp_raws):
    """**Was** ``sub/x.dng`` and ``sub__x.dng`` in one folder both named ``sub__x`` in a run's outputs: one
    raw dropped from the evaluation without a word, the other's parameters and render written over its
    files; and ``IMG_1.dng`` beside ``img_1.DNG`` (another raw) one file where the file system ignores case
    (macOS, Windows). Now a later raw whose name is taken, ignoring case, gets a hash of its path added.
    The real `isp-tune check` on four DNGs so named."""
    raw_dir = tmp_path / "raws"
    (raw_dir / "sub").mkdir(parents=True)
    names = ["sub/x.dng", "sub__x.dng", "IMG_1.dng", "img_1.DNG"]
    for name, p in zip(names, isp_raws, strict=True):
        (raw_dir / name).write_bytes(p.read_bytes())
    out = tmp_path / "check"
    r = CliRunner().invoke(app, ["check", str(raw_dir), "-m", "classical", "--out", str(out)])
    assert r.exit_code == 0, r.output + repr(r.exception)
    summary = json.loads((out / "summary.json").read_text())
    assert len(summary["test_raws"]) == 4 and summary["skipped"] == {}
    for files in ("renders/*.png", "params/*.json"):
        found = sorted((out / "test" / "policy").glob(files))
        assert len({f.name.casefold() for f in found}) == 4, (files, [f.name for f in found])
    for name in names:  # each raw's parameter file names it
        raw = raw_dir / name
        assert [f for f in (out / "test" / "policy" / "params").glob("*.json")
                if json.loads(f.read_text())["raw"] == str(raw)], name  # fmt: skip


@pytest.mark.slow  # a run and a check: ~25 s
def test_a_mixed_folder_says_what_it_left_out_and_why(tmp_path, isp_raws):
    """`isp-tune --raw-dir` on a folder mixing good DNGs with a JPEG, a zero-byte `.dng`, text named `.dng`
    and a DNG cut short. **Was**: the JPEG passed over without a word (a user who put photos there took them
    to be used), and the empty file said to be "LibRaw can't read it (LibRawIOError: Input/output error):
    the file ends early or is not a raw" (`isp-tune render` the same). Now the photos are named as left out,
    with where photos go (`--synth-photos`; `isp-tune check` alike), and the empty file is "empty file (0
    bytes)". The rest trains and is evaluated as before."""
    from helpers import quick_isp_tune

    raw_dir, out, args = quick_isp_tune(tmp_path, isp_raws)
    Image.new("RGB", (32, 32), "red").save(raw_dir / "photo.jpg")
    (raw_dir / "zero.dng").write_bytes(b"")
    (raw_dir / "notes.dng").write_text("not a raw")
    (raw_dir / "cut.dng").write_bytes(isp_raws[0].read_bytes()[:4000])
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output + repr(r.exception)
    lines = r.output.splitlines()
    left = [x for x in lines if x.startswith("left out")]
    assert left == [
        f"left out 1 photo(s) in {raw_dir} that are not camera raws (photo.jpg) — isp-tune reads raws and "
        "DNGs; photos train only as --synth-photos (unprocessed into raws)"
    ]
    skipped = json.loads((out / "summary.json").read_text())["skipped"]
    empty = f"{raw_dir / 'zero.dng'}: empty file (0 bytes): a copy cut short — copy the raw again"
    assert skipped[str(raw_dir / "zero.dng")] == empty
    assert "LibRaw can't read it" in skipped[str(raw_dir / "notes.dng")]
    said = CliRunner().invoke(app, ["render", str(raw_dir / "zero.dng"), "-o", str(tmp_path / "z.png")])
    assert said.exit_code != 0 and "empty file (0 bytes)" in str(said.exception)
    check = CliRunner().invoke(app, ["check", str(raw_dir), "-m", "classical", "--out", str(tmp_path / "c")])
    assert check.exit_code == 0, check.output
    assert "(photo.jpg) — isp-tune reads raws and DNGs; check the policy on the photos' raws" in check.output


def env_raws(source: str, isp_raws: list[Path]) -> list[Path]:
    """Demo DNGs (the fixture), or four real raws of three cameras from ../shared (skipped when absent)."""
    from conftest import SHARED_DATA

    if source == "demo":
        return isp_raws
    real = SHARED_DATA / "raw" / "real"
    names = [
        "a2tools__IMAGE4.QTK",
        "qtkndecoder__QT150_7.QTK",
        "a2tools__DC0010S.KDC",
        "a2tools__Image__1.qtk",
    ]
    if not all((real / n).is_file() for n in names):
        pytest.skip("the real raws of ../shared are not present")
    return [real / n for n in names]


@pytest.mark.parametrize("source", ["demo", pytest.param("real", marks=pytest.mark.shared_data)])
def test_the_environment_passes_both_checkers_and_replays_a_seed(source, isp_raws):
    """Session 51's check of the Gymnasium environment, nothing to fix: gymnasium's and Stable-Baselines3's
    ``check_env`` pass without a warning for both observations and the three action modes; an episode ends
    ``terminated`` (not truncated) at ``max_steps`` — the limit is part of the task and the time is in the
    observation; the spaces are :func:`isp_env.env.spaces_for`'s; two environments given one seed play the
    same episodes, step for step, and so does one environment seeded again."""
    import warnings

    from gymnasium.utils.env_checker import check_env as gym_check
    from stable_baselines3.common.env_checker import check_env as sb3_check

    import attiqa
    from isp_env.env import ISPTuningEnv, spaces_for
    from isp_env.mos_function import from_scorer

    raws = env_raws(source, isp_raws)
    scorer = from_scorer(attiqa.create_scorer("classical"))

    def episodes(env: ISPTuningEnv, seed: int, n: int = 3) -> list:
        """``n`` episodes, the first reset with ``seed``; each step's (terminated, truncated) checked."""
        played, rng = [], np.random.default_rng(seed)
        for i in range(n):
            obs, info = env.reset(seed=seed if i == 0 else None)
            played += [obs, info["raw"]]
            for t in range(1, env.max_steps + 1):
                obs, reward, terminated, truncated, _ = env.step(rng.uniform(-1, 1, 16).astype(np.float32))
                assert (terminated, truncated) == (t == env.max_steps, False)
                played += [obs, reward]
        return played

    def same(a: list, b: list) -> bool:
        return all(
            all(np.array_equal(x[k], y[k]) for k in x) if isinstance(x, dict) else np.array_equal(x, y)
            for x, y in zip(a, b, strict=True)
        )

    for obs_mode in ("stats", "image"):
        for action_mode, steps in (("residual", 1), ("absolute", 1), ("delta", 3)):
            kw = {"obs_mode": obs_mode, "action_mode": action_mode, "max_steps": steps, "preview": 64}
            env = ISPTuningEnv(raws, scorer=scorer, **kw)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                gym_check(env, skip_render_check=True)
                sb3_check(env, warn=True)
            assert [str(w.message) for w in caught] == [], (obs_mode, action_mode)
            assert env.observation_space == spaces_for(64, obs_mode)[0]
            assert env.action_space == spaces_for(64, obs_mode)[1]
            first = episodes(env, 5)
            episodes(env, 7)
            assert same(first, episodes(env, 5)) and same(
                first, episodes(ISPTuningEnv(raws, scorer=scorer, **kw), 5)
            ), (obs_mode, action_mode)


def test_photos_used_as_synth_photos_or_written_by_the_run_are_not_said_to_be_left_out(tmp_path, capsys):
    """The left-out line names only photos nothing reads: not those of ``--synth-photos`` or of ``--out``
    when either folder sits inside the raw folder."""
    from isp_env.run_inputs import say_photos_left_out

    for name in ("photo.jpg", "synth/a.png", "run/test/teacher/renders/x.png"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (8, 8)).save(tmp_path / name)
    say_photos_left_out(tmp_path, tmp_path / "run", "FIX", tmp_path / "synth")
    said = capsys.readouterr().err
    assert said.startswith("left out 1 photo(s)") and "(photo.jpg)" in said and said.count("\n") == 1
