"""A new user's audit of the `isp-tune` command line: what a user types, on real DNGs read by rawpy, refused
in one line before any work starts."""

from __future__ import annotations

from typer.testing import CliRunner

from isp_env.cli import app


def test_a_huge_preview_or_observation_size_is_refused_before_any_raw_is_read(tmp_path, isp_raws):
    """**Was** `--preview 100000000` an upscale of the first raw to a 10**8-px side: a torch traceback
    ("can't allocate memory: you tried to allocate 68360655600000000 bytes") after the reward model loaded;
    now the option parser refuses it (and `--obs-size` alike) in one line naming the option."""
    raws = isp_raws[0].parent
    for option in ("--preview", "--obs-size"):
        out = tmp_path / option.strip("-")
        r = CliRunner().invoke(app, ["--raw-dir", str(raws), "--out", str(out), option, "100000000"])
        assert r.exit_code == 2, (option, r.output, repr(r.exception))
        assert f"Invalid value for '{option}'" in r.output
        assert not out.exists()


def test_check_prints_each_raw_s_whole_name_in_an_80_column_log(tmp_path, isp_raws):
    """**Was** the table's raw column cut with an ellipsis when the output is not a wide terminal (a log, a
    pipe: 80 columns): the real raws' rows all read "a2tools…", one raw not told from another; then the name
    folded over lines; now (session 48) plain fixed-width lines, the name whole on its row."""
    import shutil

    raws = tmp_path / "raws"
    raws.mkdir()
    name = "a2tools__quicktake_IMAGE01"  # the length of ../shared/data/raw/real's names
    shutil.copy(isp_raws[0], raws / f"{name}.dng")
    out = tmp_path / "check"
    r = CliRunner(env={"COLUMNS": "80"}).invoke(app, ["check", str(raws), "--out", str(out)])
    assert r.exit_code == 0, r.output + repr(r.exception)
    rows = [line.split() for line in r.output.splitlines() if line.startswith(name)]
    assert len(rows) == 1 and rows[0][0] == name and len(rows[0]) == 7, r.output


def test_check_and_render_check_refuse_a_misspelt_model_without_a_warning_about_it_first(tmp_path, isp_raws):
    """**Was** "warning default: fitted against the reward model attiqa-default …, not this run's clasical: it
    was tuned for another scorer" printed above "unknown scorer 'clasical' (did you mean 'classical' …)": the
    policy's reward model compared with a name that is no scorer; now the one line alone."""
    runner = CliRunner()
    for args in (
        ["check", str(isp_raws[0].parent), "-m", "clasical", "--out", str(tmp_path / "c")],
        [
            "render",
            str(isp_raws[0]),
            "-o",
            str(tmp_path / "r.png"),
            "--policy",
            "default",
            "--check",
            "-m",
            "clasical",
        ],
    ):
        r = runner.invoke(app, args)
        assert r.exit_code != 0 and "unknown scorer 'clasical'" in str(r.exception), (args, r.output)
        assert "warning" not in r.output, r.output
    assert not (tmp_path / "c").exists() and not (tmp_path / "r.png").exists()


def test_check_names_what_is_wrong_with_a_folder_of_jpegs_or_of_unreadable_raws(tmp_path, isp_raws):
    """**Was** "no raw LibRaw can read" for a folder of JPEGs (LibRaw was given no file: none has a raw
    suffix), and "none of the 2 test raws could be read" (no fix; `check` holds nothing out) for a folder of
    a JPEG renamed `.dng` and a raw cut short; now "found no raw file" with the suffixes searched, and the
    unreadable raws listed with the fix."""
    from PIL import Image

    photos, bad = tmp_path / "photos", tmp_path / "bad"
    photos.mkdir()
    bad.mkdir()
    Image.new("RGB", (64, 48), (90, 120, 150)).save(photos / "IMG_0001.jpg")
    Image.new("RGB", (64, 48), (90, 120, 150)).save(bad / "renamed.dng", "JPEG")
    data = isp_raws[0].read_bytes()
    (bad / "cut.dng").write_bytes(data[: len(data) // 3])
    runner = CliRunner()
    r = runner.invoke(app, ["check", str(photos), "--out", str(tmp_path / "o1")])
    said = str(r.exception)
    assert r.exit_code != 0 and "found no raw file" in said and ".dng" in said and "LibRaw" not in said, said
    r = runner.invoke(app, ["check", str(bad), "--out", str(tmp_path / "o2")])
    said = str(r.exception)
    assert r.exit_code != 0 and "none of the 2 raws to evaluate could be read" in said, said
    assert "test raws" not in said and "complete camera raws or DNGs" in said
    assert "renamed.dng" in r.output and "cut.dng" in r.output
    assert not (tmp_path / "o1").exists() and not (tmp_path / "o2").exists()


def test_a_run_folder_made_read_only_says_how_to_resume_it(tmp_path, isp_raws):
    """**Was** "RUN: not writable (permission denied) — choose another --out" for a run folder copied back
    read-only (`cp -r` from an archive keeps the modes): a fix that throws the finished searches away; now
    "make it writable (chmod -R u+w RUN) to resume the run in it, or choose another --out". A real run, the
    rerun without root's override of permissions."""
    import os
    import stat
    import subprocess

    from helpers import attiqa_env, isp_tune_cmd, tiny_teacher_run, unprivileged_cmd

    raw_dir, run = tiny_teacher_run(tmp_path, isp_raws)
    folders = [run, *(p for p in run.rglob("*") if p.is_dir())]
    for p in folders:
        p.chmod(stat.S_IRUSR | stat.S_IXUSR | stat.S_IRGRP | stat.S_IXGRP)
    try:
        cmd = isp_tune_cmd("--raw-dir", raw_dir, "--out", run, "--model", "classical")
        res = subprocess.run(
            unprivileged_cmd(cmd), env=attiqa_env(), capture_output=True, text=True, timeout=600
        )
    finally:
        for p in folders:
            p.chmod(stat.S_IRWXU)
    assert res.returncode == 2, res.stderr[-2000:]
    line = res.stderr.strip()
    assert "\n" not in line and "Traceback" not in line, line
    assert f"(chmod -R u+w {run}) to resume the run in it, or choose another --out" in line
    assert os.access(run / "run.json", os.R_OK)


def test_a_batch_larger_than_the_replay_buffer_is_refused_before_any_work(tmp_path, isp_raws):
    """**Was** `--algo sac --batch-size 99999999999999999999` a replay buffer grown to the batch: after the
    raws were split and the run folder written, numpy's "ValueError: Maximum allowed dimension exceeded"
    traceback from SB3; now one line naming the option and the largest batch, nothing written."""
    out = tmp_path / "run"
    args = ["--raw-dir", str(isp_raws[0].parent), "--out", str(out), "--algo", "sac", "--timesteps", "8"]
    args += [
        "--model",
        "classical",
        "--base",
        "neutral",
        "--no-baselines",
        "--batch-size",
        "99999999999999999999",
    ]
    r = CliRunner().invoke(app, args)
    said = str(r.exception)
    assert r.exit_code != 0 and "--batch-size 99999999999999999999: larger than the" in said, r.output + said
    assert "pass at most 20000" in said
    assert not out.exists()


def test_a_huge_number_of_environments_is_refused_before_any_raw_is_read(tmp_path, isp_raws):
    """`--n-envs` starts one process per environment, each with its own reward model: a typo's 100000 was
    accepted (the brief of the session-45 audit left it open); now bounded as `--workers` are
    (:data:`attiqa.io.cores.MAX_WORKERS`), refused by the option parser in one line, nothing written."""
    out = tmp_path / "run"
    r = CliRunner().invoke(
        app, ["--raw-dir", str(isp_raws[0].parent), "--out", str(out), "--algo", "sac", "--n-envs", "100000"]
    )
    assert r.exit_code == 2, r.output + repr(r.exception)
    assert "Invalid value for '--n-envs'" in r.output
    assert not out.exists()


def test_a_misspelt_model_is_refused_before_the_raws_are_probed_and_a_checkpoint_still_passes(
    tmp_path, isp_raws
):
    """**Was** `isp-tune --raw-dir RAWS -m attiqa-defualt` (and `isp-tune check`) refused only by the reward
    model's load: after every raw was probed (a damaged one said "skipped …", minutes for a FiveK-sized
    folder) and torch loaded; `render --check` after the raw was read and tuned with the policy. Now the
    registry's names (torch-free) refuse it first, in the line the load says; a checkpoint path given as -m
    is not a name and goes on to the run's next check."""
    import shutil

    from early_checks import ISP_HEAVY, check
    from helpers import tiny_attiqa_checkpoint

    raws = tmp_path / "raws"
    raws.mkdir()
    for p in isp_raws:  # 4 raws: the default split leaves the teacher 3
        shutil.copy(p, raws / p.name)
    (raws / "cut.dng").write_bytes(isp_raws[0].read_bytes()[:300])  # the probe would say "skipped" first
    ckpt = tiny_attiqa_checkpoint(tmp_path)
    typo = "unknown scorer 'attiqa-defualt' (did you mean 'attiqa-default'"
    tune = ["--raw-dir", str(raws), "--out", str(tmp_path / "run")]
    cases = [
        (tune + ["-m", "attiqa-defualt"], typo),
        (["check", str(raws), "-m", "attiqa-defualt", "--out", str(tmp_path / "c")], typo),
        # render --check read and tuned the raw with the policy first
        (
            ["render", str(isp_raws[0]), "-o", str(tmp_path / "r.png"), "--policy", "default", "--check"]
            + ["-m", "attiqa-defualt"],
            typo,
        ),
        # a checkpoint passes the name check: refused by the split, a later check (3 of the 4 raws held out)
        (tune + ["-m", str(ckpt), "--test-fraction", "0.9"], "the split leaves 1 training raw(s), 2 needed"),
    ]
    check([("isp_env.cli", args, words) for args, words in cases[:3]], ISP_HEAVY)
    from early_checks import run_cases

    [(_, _, code, err, loaded)] = run_cases([("isp_env.cli", *cases[3])], ISP_HEAVY)
    assert code == 2 and loaded == [] and cases[3][1] in " ".join(err.split()), err
    assert (
        not (tmp_path / "run").exists()
        and not (tmp_path / "c").exists()
        and not (tmp_path / "r.png").exists()
    )


def test_options_a_run_ignores_are_said_before_any_work(tmp_path, isp_cli):
    """**Was** each dropped without a word: `--algo sac --teacher-budget 5` trained SAC as if it was not
    typed, `--timesteps` / `--n-envs` on the default teacher trained nothing longer, `--residual-scale` with
    `--action-mode absolute` became None, `--test-raws` with `--test-fraction 0` tested nothing. Now a
    warning naming each option and why, before the raws are listed (here a folder of no raw then ends it)."""
    (tmp_path / "no_raws").mkdir()
    raws = str(tmp_path / "no_raws")
    cases = [
        (["--algo", "sac", "--teacher-budget", "5"], "--teacher-budget: --algo teacher only, not --algo sac"),
        (["--timesteps", "10", "--n-envs", "2"], "--timesteps, --n-envs: RL agents only"),
        (["--algo", "td3", "--action-mode", "absolute", "--residual-scale", "0.3"], "--action-mode residual"),
        (["--test-fraction", "0", "--test-raws", "5"], "--test-raws: nothing is held out"),
        (["--no-baselines", "--cma-image-budget", "7"], "baseline is off (--no-baselines)"),
        (
            ["--base", "neutral", "--no-baselines", "--cma-global-budget", "50"],
            "--cma-global-budget: no global CMA-ES runs (no base search with --base neutral, no baseline "
            "with --no-baselines)",
        ),
    ]
    for args, said in cases:
        res = isp_cli("--raw-dir", raws, "--out", tmp_path / "run", *args)
        told = " ".join(res.stderr.split())
        assert res.returncode == 2 and "warning options this run ignores — " in told and said in told, told
        assert told.count("this run ignores") == 1, told  # said once (run_inputs says it, the command not)
        assert "drop them, or change the run (Ctrl-C now)" in told, told  # before the raws: a Ctrl-C is free
    res = isp_cli("--raw-dir", raws, "--out", tmp_path / "run", "--algo", "sac", "--timesteps", "10")
    assert res.returncode == 2 and "this run ignores" not in res.stderr, res.stderr  # options that fit
    res = isp_cli("--raw-dir", raws, "--out", tmp_path / "run", "--no-baselines", "--cma-global-budget", "50")
    assert res.returncode == 2 and "this run ignores" not in res.stderr, res.stderr  # --base global searches
    assert not (tmp_path / "run").exists()


def test_a_library_run_is_warned_of_the_settings_it_ignores_as_the_command_is(tmp_path, isp_raws, capsys):
    """**Was** (session 60's notes): the warning of the options a run ignores was `isp-tune`'s alone
    (``isp_env.cli``): a library run with ``TrainConfig(algo="sac")`` and ``TeacherSettings(budget=5)``
    trained SAC without a word of the teacher's budget. The rule lives beside ``check_config``
    (:func:`isp_env.train_config.ignored_settings`): a library run's settings not at their defaults count as
    given. **Was** (session 61's notes) told by the command's option names ("--teacher-budget: --algo teacher
    only"), options a library caller never typed: now by the settings it set ("TeacherSettings.budget"),
    said by ``run`` (which alone sees its own keywords: the next test). The run stops at its read-only
    folder's reason."""
    import pytest

    from isp_env.run import run
    from isp_env.run_inputs import InputSettings, run_inputs
    from isp_env.train_config import TeacherSettings, TrainConfig

    settings = InputSettings(
        raw_dir=isp_raws[0].parent, out=tmp_path / "run", test_fraction=0, test_raws_cap=5, base="neutral"
    )
    cases = [
        (
            TrainConfig(algo="sac", scorer="classical"),
            TeacherSettings(budget=5),
            "TeacherSettings.budget: algo 'teacher' only, not algo 'sac'",
        ),
        (
            TrainConfig(timesteps=10, scorer="classical"),
            None,
            "TrainConfig.timesteps: RL agents only (algo 'sac', 'ppo' or 'td3'), not the teacher",
        ),
        (
            TrainConfig(algo="td3", action_mode="absolute", delta_scale=0.3, scorer="classical"),
            None,
            "TrainConfig.delta_scale: action_mode 'residual' or 'delta' only, not absolute",
        ),
    ]
    for cfg, teacher, said in cases:
        inputs = run_inputs(settings, cfg, teacher)
        with pytest.raises(PermissionError, match="read-only"):
            run(inputs, cfg, teacher=teacher, unwritable=PermissionError("read-only"))
        printed = capsys.readouterr()
        told = " ".join((printed.out + printed.err).split())
        assert told.count("warning settings this run ignores — ") == 1 and said in told, told
        assert "InputSettings.test_raws_cap: nothing is held out with test_fraction 0" in told, told
        warning = told.split("this run ignores — ", 1)[1].split(": drop them", 1)[0]
        assert "--" not in warning, told  # the library's settings, not options its caller never typed
    cfg = TrainConfig(algo="sac", scorer="classical")
    inputs = run_inputs(InputSettings(raw_dir=isp_raws[0].parent, out=tmp_path / "run", base="neutral"), cfg)
    with pytest.raises(PermissionError):  # settings that fit: no word
        run(inputs, cfg, unwritable=PermissionError("read-only"))
    assert "this run ignores" not in " ".join(capsys.readouterr().err.split())
    assert not (tmp_path / "run").exists()


def test_a_library_run_says_the_settings_it_ignores_in_one_line_without_ctrl_c(tmp_path, isp_raws, capsys):
    """**Was** (session 62's notes) two warning lines for one library run, ``run_inputs``'s of its settings
    and ``run``'s of its own ``cma_image_budget``, each ending "(Ctrl-C now)" — a caller at no prompt — and
    the first saying "options", which a library caller never typed; a ``teacher`` handed to ``run`` (not to
    ``run_inputs``) of an SAC run was dropped without a word. Now ``run`` says one line with all of them
    (:func:`isp_env.run_inputs.say_run_ignores`), "settings this run ignores", no Ctrl-C; the command's line
    is unchanged (:func:`test_options_a_run_ignores_are_said_before_any_work`)."""
    import pytest

    from isp_env.run import run
    from isp_env.run_inputs import InputSettings, run_inputs
    from isp_env.train_config import TeacherSettings, TrainConfig

    cfg = TrainConfig(algo="sac", timesteps=300, scorer="classical")
    settings = InputSettings(raw_dir=isp_raws[0].parent, out=tmp_path / "run", base="neutral")
    five = TeacherSettings(budget=5)
    for of_inputs, of_run in ((five, five), (None, five), (five, None)):  # either way, said once
        inputs = run_inputs(settings, cfg, of_inputs, baselines=False)
        with pytest.raises(PermissionError, match="read-only"):
            run(
                inputs,
                cfg,
                teacher=of_run,
                baselines=False,
                cma_image_budget=7,
                cma_global_budget=50,
                unwritable=PermissionError("read-only"),
            )
        printed = capsys.readouterr()
        told = " ".join((printed.out + printed.err).split())
        assert told.count("this run ignores") == 1, told
        line = told.split("warning settings this run ignores — ", 1)[1].split(": drop them, or change", 1)[0]
        assert "TeacherSettings.budget: algo 'teacher' only, not algo 'sac'" in line, told
        assert "run(cma_image_budget=…): the per-image CMA-ES baseline is off (baselines=False)" in line, told
        global_off = "no base search with InputSettings.base 'neutral', no baseline with baselines=False"
        assert f"run(cma_global_budget=…): no global CMA-ES runs ({global_off})" in line, told
        assert "drop them, or change the run" in told and "Ctrl-C" not in told, told
    assert not (tmp_path / "run").exists()


def test_a_library_run_is_told_its_per_image_budget_is_ignored_once(tmp_path, isp_raws, capsys):
    """**Was** (session 61's notes) ``--no-baselines`` beside ``--cma-image-budget`` told by ``isp-tune``
    alone: the library's ``run(inputs, cfg, baselines=False, cma_image_budget=7)`` — a setting
    ``run_inputs`` never sees — said nothing. Now ``run`` says it by the same rule
    (:func:`isp_env.train_config.ignored_settings`) before any work; a budget the command's ``run_inputs``
    already named (its typed options) is not said twice. The run stops at its read-only folder's reason."""
    import pytest

    from isp_env.run import run
    from isp_env.run_inputs import InputSettings, run_inputs
    from isp_env.train_config import TrainConfig

    cfg = TrainConfig(scorer="classical")
    said = "run(cma_image_budget=…): the per-image CMA-ES baseline is off (baselines=False)"
    for given, fraction in ((None, 0.3), ({"cma_image_budget"}, 0.3), (None, 0)):
        settings = InputSettings(
            raw_dir=isp_raws[0].parent, out=tmp_path / "run", base="neutral", test_fraction=fraction
        )
        inputs = run_inputs(settings, cfg, given=given, baselines=False)
        with pytest.raises(PermissionError, match="read-only"):
            run(inputs, cfg, baselines=False, cma_image_budget=7, unwritable=PermissionError("read-only"))
        printed = capsys.readouterr()
        told = " ".join((printed.out + printed.err).split())
        if given is not None:  # the command's: said once, by run_inputs, as its option
            assert told.count("this run ignores") == 1 and "--cma-image-budget: the per-image" in told, told
        elif fraction == 0:
            assert "run(cma_image_budget=…): nothing is held out with test_fraction 0" in told, told
        else:
            assert told.count("this run ignores") == 1 and said in told, told
    capsys.readouterr()
    inputs = run_inputs(InputSettings(raw_dir=isp_raws[0].parent, out=tmp_path / "run", base="neutral"), cfg)
    with pytest.raises(PermissionError):  # baselines on: the budget is used, no word
        run(inputs, cfg, cma_image_budget=7, unwritable=PermissionError("read-only"))
    assert "this run ignores" not in " ".join(capsys.readouterr().err.split())
    assert not (tmp_path / "run").exists()


def test_a_library_agent_that_would_never_learn_is_told_by_its_settings_names(tmp_path, isp_raws, capsys):
    """**Was** (review of session 63) a library SAC run of ``TrainConfig(timesteps=4)`` told "--timesteps 4
    is not above --learning-starts 200 … raise --timesteps": options a library caller never typed. Now its
    ``TrainConfig`` fields; `isp-tune`'s line is unchanged
    (``test_isp_agents_and_policies.py::test_an_agent_that_would_never_learn_is_warned_about_before_it_trains``)."""
    import pytest

    from isp_env.run import run
    from isp_env.run_inputs import InputSettings, run_inputs
    from isp_env.train_config import TrainConfig

    cfg = TrainConfig(algo="sac", timesteps=4, scorer="classical")
    settings = InputSettings(raw_dir=isp_raws[0].parent, out=tmp_path / "run", base="neutral")
    inputs = run_inputs(settings, cfg, None, baselines=False)
    with pytest.raises(PermissionError, match="read-only"):
        run(inputs, cfg, baselines=False, unwritable=PermissionError("read-only"))
    printed = capsys.readouterr()
    told = " ".join((printed.out + printed.err).split())
    said = "TrainConfig.timesteps 4 is not above TrainConfig.learning_starts 200: SAC takes only"
    assert said in told and "--" not in told, told
    assert "raise TrainConfig.timesteps or lower TrainConfig.learning_starts" in told, told
