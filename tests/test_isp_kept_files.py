"""isp-tune: a run's kept JSON files parsed once (the steps use what the check read), one table of their
shapes, what is wrong with each damaged file, a raw unreadable since its tuning (docs/robustness.md rows)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from attiqa.errors import ConfigError


def _evaluate_run(raw_dir: Path, run: Path, **kw: object):
    """``isp_env.run.evaluate`` of a finished run's teacher on its held-out raws, as its last step did."""
    from isp_env.mos_function import load_mos_function
    from isp_env.policy_io import load_policy
    from isp_env.run import evaluate, split_names
    from isp_env.train_config import TrainConfig

    plan = json.loads((run / "run.json").read_text())
    train_names, test_names = split_names(plan)
    mos = load_mos_function("classical")
    cfg = TrainConfig(algo="teacher", scorer="classical", preview=64)
    return evaluate(
        raw_dir,
        run,
        cfg,
        mos,
        [raw_dir / n for n in test_names],
        [raw_dir / n for n in train_names],
        {"teacher": load_policy(run / "policy.safetensors")},
        {"teacher": {"train": 0, "test": 0}},
        {},
        baselines=False,
        **kw,
    )


@pytest.mark.slow  # a tiny run in its own process and one evaluation: ~15 s
def test_the_steps_use_the_kept_files_as_checked_not_a_second_read(tmp_path, isp_raws):
    """**Was**: every kept JSON file of a run was read and parsed by the check before any work, then again
    by its step, so a file edited between the two was read as two things (checked whole, then a damaged
    or other file used). Now the steps take the checked objects: settings damaged on disk after the check
    are neither read nor tuned again; read afresh, the same evaluation stops on them."""
    from helpers import tiny_teacher_run

    from isp_env.params import RunFiles

    raw_dir, run = tiny_teacher_run(tmp_path, isp_raws, "--no-baselines")
    files = RunFiles.checked(run)
    settings = sorted(run.glob("test/teacher*/params/*.json"))
    assert settings
    checked = {p: files.read(p) for p in settings}
    for p in settings:  # edited after the check (an edit, a bad disk)
        p.write_text('{"params": {"tone_gamma": 0.4')
    assert {p: files.read(p) for p in settings} == checked
    report = _evaluate_run(raw_dir, run, files=files)
    assert {r["method"] for r in report.rows} == {"neutral", "teacher", "teacher_checked"}
    assert all(p.read_text() == '{"params": {"tone_gamma": 0.4' for p in settings)  # used, not redone
    with pytest.raises(ConfigError, match="damaged \\(not JSON"):  # a second read sees the edit
        _evaluate_run(raw_dir, run)


def test_every_kept_file_shape_is_in_one_table(tmp_path):
    """**Was**: the teacher's searches (``teacher/targets_*.json``: each raw's entry an object) were a case
    written into the check, beside a table of exact file names, and an agent's resume state swapped in by a
    kill (``checkpoint.tmp/state.json``) was not checked at all. Now :data:`KEPT_JSON` holds every kept
    file's pattern and shape, and the check and each step read by it."""
    from isp_env.params import KEPT_JSON, RunFiles

    assert KEPT_JSON["teacher/targets_*.json"] == ("*",)
    run = tmp_path / "run"
    (run / "teacher").mkdir(parents=True)
    (run / "teacher" / "targets_neutral.json").write_text('{"a.dng": [1, 2]}')
    with pytest.raises(ConfigError, match="'a.dng' holds a JSON array, not the object the run wrote"):
        RunFiles.checked(run)
    (run / "teacher" / "targets_neutral.json").write_text('{"a.dng": {"params": {}}}')
    (run / "teacher" / "cv_scores_neutral.json").write_text('{"ridge 1.0": [0.5]}')  # a list: its shape
    (run / "checkpoint.tmp").mkdir()
    (run / "checkpoint.tmp" / "state.json").write_text('{"config": []}')
    with pytest.raises(ConfigError, match="tmp/state.json: damaged \\('config' holds a JSON array"):
        RunFiles.checked(run)
    (run / "checkpoint.tmp" / "state.json").write_text('{"config": {}}')
    files = RunFiles.checked(run)
    assert files.read(run / "teacher" / "cv_scores_neutral.json") == {"ridge 1.0": [0.5]}


def test_several_damaged_files_say_what_is_wrong_with_each(tmp_path):
    """**Was**: with several damaged files the line said "(not JSON)" of them all, also of a file that was
    JSON of the wrong shape (a user looked for a syntax error in a valid file). Now each file is named with
    what is wrong with it: not JSON, or which JSON it is instead of the object the run wrote."""
    from isp_env.params import RunFiles

    run = tmp_path / "run"
    (run / "baselines").mkdir(parents=True)
    (run / "run.json").write_text("[]")
    (run / "baselines" / "cma_global.json").write_text('{"params": {"tone_gamma"')
    with pytest.raises(ConfigError) as info:
        RunFiles.checked(run)
    line = str(info.value)
    assert "\n" not in line and line.startswith(f"{run}: 2 files of the run damaged: ")
    assert "baselines/cma_global.json (not JSON)" in line
    assert "run.json (it is a JSON array, not the object the run wrote)" in line
    (run / "baselines" / "cma_global.json").write_text('{"params": {}}')
    with pytest.raises(ConfigError, match="run.json: damaged \\(it is a JSON array, not the object"):
        RunFiles.checked(run)  # one file: its own line


@pytest.mark.slow  # two raws, the shipped policy, the classical scorer
@pytest.mark.parametrize("front_ends", [100, 0], ids=["kept", "made-again"])
def test_a_raw_unreadable_since_its_tuning_is_skipped_and_the_rest_scored(
    tmp_path, capsys, front_ends, isp_raws
):
    """**Was**: the scoring pass read each held-out raw again after the policy's tuning and checks, without
    catching a raw that had become unreadable since (deleted, cut short): LibRaw's error ended the whole
    evaluation and no report was written; so did the checked step and the per-image search when they made
    a front end again (more held-out raws than are kept, :data:`FRONT_ENDS_KEPT`: ``--test-raws`` above
    100). Now that raw is skipped in one line, listed in summary.json's ``skipped``, and every other raw is
    scored and reported. Two demo DNGs read by rawpy (real QuickTake raws of ../shared until session 62: it
    skipped without them), one cut short by the reward model's first call (the checked step: between the
    tuning and the scoring; ``made-again``: before its own check)."""
    from isp_env.mos_function import MOSFunction, load_mos_function
    from isp_env.policy_files import resolve_policy
    from isp_env.policy_io import load_policy
    from isp_env.run import evaluate
    from isp_env.train_config import TrainConfig

    names = [p.name for p in sorted(isp_raws)[:2]]
    raw_dir = tmp_path / "raws"
    raw_dir.mkdir()
    for n in names:
        shutil.copyfile(isp_raws[0].parent / n, raw_dir / n)
    victim, whole = raw_dir / names[1], (isp_raws[0].parent / names[1]).stat().st_size

    class CutsARawShort(MOSFunction):
        """The classical reward model that cuts ``victim`` to half its bytes on its first call."""

        def __call__(self, images):  # type: ignore[no-untyped-def]
            if victim.stat().st_size == whole:
                victim.write_bytes(victim.read_bytes()[: victim.stat().st_size // 2])
            return super().__call__(images)

    inner = load_mos_function("classical")
    mos = CutsARawShort(inner.fn, inner.score_range, inner.name, inner.batched, inner.view_shorter)
    cfg = TrainConfig(algo="teacher", scorer="classical", view_shorter=inner.view_shorter or 384)
    out = tmp_path / "check"
    report = evaluate(
        raw_dir,
        out,
        cfg,
        mos,
        sorted(raw_dir.glob("*.dng")),
        [],
        {"policy": load_policy(resolve_policy("default"))},
        {},
        {},
        baselines=False,
        front_ends=front_ends,
    )
    assert {r["image"] for r in report.rows} == {Path(names[0]).stem}
    printed = capsys.readouterr()
    said = " ".join((printed.out + printed.err).split())  # (folded at the console's width)
    assert said.count("skipped (unreadable since it was tuned)") == 1, said
    assert f"{names[1]}: LibRaw can't read it" in said, said
    summary = json.loads((out / "summary.json").read_text())
    assert list(summary["skipped"]) == [str(victim)] and "LibRaw" in summary["skipped"][str(victim)]
    assert summary["n_test"] == 1 and summary["test_raws"] == [Path(names[0]).stem]
    assert (out / "test" / "policy" / "params" / f"{Path(names[1]).stem}.json").is_file()  # its tuning kept


def test_a_raw_folder_of_one_raw_says_how_to_render_it(tmp_path, isp_raws):
    """**Was**: ``isp-tune --raw-dir DIR`` with one raw in DIR said "found 1 raw file(s), need at least 2
    (one to train, one to test) — extensions searched: .3fr, .arw, …", the list of extensions as if the raw
    had not been found, and nothing for the user who has one raw to render. Now the line names the raw and
    gives the command that renders it; that command, run as given, renders it."""
    import shlex

    from typer.testing import CliRunner

    from isp_env.cli import app

    one = tmp_path / "one"
    one.mkdir()
    shutil.copy(isp_raws[0], one)
    (one / "notes.txt").write_text("not a raw")
    r = CliRunner().invoke(app, ["--raw-dir", str(one), "--out", str(tmp_path / "run"), "-m", "classical"])
    said = str(r.exception)
    assert (
        isinstance(r.exception, ConfigError)
        and "\n" not in said
        and f"one raw LibRaw can read ({isp_raws[0].name})" in said
    )
    assert "extensions searched" not in said and not (tmp_path / "run").exists()
    cmd = shlex.split(said.split("with the shipped policy, ", 1)[1])
    assert cmd[:2] == ["isp-tune", "render"]
    rendered = CliRunner().invoke(app, [*cmd[1:-1], str(tmp_path / cmd[-1]), "-m", "classical"])
    assert rendered.exit_code == 0, rendered.output
    assert (tmp_path / cmd[-1]).stat().st_size > 0
