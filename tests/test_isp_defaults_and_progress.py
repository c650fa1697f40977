"""``isp-tune``: what it rendered with, its tables at 80 columns, one ``obs_mode`` default, and what a new
user met training and checking on real raws (docs/robustness.md rows)."""

from __future__ import annotations

import json
from importlib.resources import files

from isp_env.cli import app


def test_one_obs_mode_default_for_the_library_the_command_and_the_shipped_policy():
    """**Was** ``TrainConfig().obs_mode`` "image" (a CNN on the render) while ``isp-tune --obs-mode`` was
    "stats": ``TrainConfig(algo="teacher", action_mode="residual")`` was refused ("--algo teacher needs …
    --obs-mode stats", an option the library's user never gave). Now one default,
    :data:`isp_env.registration.OBS_MODE`, the shipped policy's observation."""
    from typer.main import get_command

    from isp_env.train_config import TrainConfig, check_config

    option = next(p for p in get_command(app).params if p.name == "obs_mode")
    card = json.loads((files("isp_env") / "data" / "policy-default.json").read_text())
    assert TrainConfig().obs_mode == option.default == card["env"]["obs_mode"] == "stats"
    check_config(TrainConfig(algo="teacher", action_mode="residual"))  # refused on main


def test_render_says_and_records_what_it_rendered_with(tmp_path, isp_raws):
    """**Was** silent on the setting: `isp-tune render` printed "RAW -> OUT (WxH)" and the values, and wrote
    the image only — a folder of renders could not tell a policy's from a parameter file's or neutral. Now
    one line says it and OUT.json beside the image records it (the policy's file and sha256, the checked
    candidate kept, the parameters: `--params OUT.png.json` renders it again). A run's per-image search file
    (baselines/cma_per_image.json, listed by report.md) was "unknown ISP parameter(s) ['RAW1', …]"; now its
    raw's setting. The real command, the classical scorer."""
    from typer.testing import CliRunner

    from attiqa.io.hashes import sha256_of
    from isp_env.params import neutral
    from isp_env.policy_files import resolve_policy

    raw = isp_raws[0]

    def render(*args: str) -> tuple[str, dict]:
        out = tmp_path / "out.png"
        r = CliRunner().invoke(app, ["render", str(raw), "-o", str(out), *args])
        assert r.exit_code == 0, r.output + repr(r.exception)
        return " ".join(r.output.split()), json.loads((tmp_path / "out.png.json").read_text())

    said, rec = render()
    assert "rendered with the neutral defaults (no --policy or --params)" in said
    assert rec["setting"] == "neutral" and rec["params"] == neutral() and rec["raw"] == str(raw)

    said, rec = render("--policy", "default", "--check", "-m", "classical")
    what = "rendered with the policy default (teacher policy (ridge)), checked by classical"
    assert f"{what}: the {rec['kept']}'s setting" in said
    assert f"setting: {tmp_path / 'out.png.json'}" in said
    assert rec["setting"] == "policy, checked" and rec["reward_model"] == "classical"
    assert rec["kept"] in rec["scores"] and rec["policy_sha256"] == sha256_of(resolve_policy("default"))

    again = tmp_path / "again.json"
    again.write_text(json.dumps(rec))
    said, rec2 = render("--params", str(again))
    assert rec2["setting"] == "parameter file" and rec2["params"] == rec["params"]

    per_image = tmp_path / "cma_per_image.json"  # as isp_env.run writes it: raw key -> its search
    per_image.write_text(json.dumps({raw.stem: {"params": rec["params"], "budget": 10}, "x": {"params": {}}}))
    said, rec3 = render("--params", str(per_image))
    assert f"for the raw {raw.stem}" in said and rec3["params"] == rec["params"]


def test_check_s_table_is_readable_at_80_columns_piped(tmp_path, isp_raws):
    """**Was** a rich table squeezed into 80 columns when piped or logged: every raw's name folded over two
    or three lines ("a2tools_" / "_DC0008L", "qtkndeco" / "der__QT1" / "50_18"), a tune run's methods too
    ("rawpy.pos" / "tprocess(" / ")", "saturati…"). Now plain fixed-width lines (`attiqa score`'s piped
    layout, :func:`attiqa.cli.plain_table`): a name whole on its row, or on a line of its own when it is
    longer than the column, its figures under it; a legend for the short headers. The real command, piped."""
    import re
    import shutil

    from typer.testing import CliRunner

    raws = tmp_path / "raws"
    raws.mkdir()
    long_name = "a_raw_whose_name_is_longer_than_the_name_column_0001"
    shutil.copy(isp_raws[0], raws / f"{long_name}.dng")
    shutil.copy(isp_raws[1], raws / "short.dng")
    r = CliRunner().invoke(app, ["check", str(raws), "-m", "classical", "--out", str(tmp_path / "c")])
    assert r.exit_code == 0, r.output + repr(r.exception)
    lines = r.output.splitlines()
    head = next(i for i, x in enumerate(lines) if x.strip().startswith("isp-tune check: default against"))
    table = lines[head : head + 8]
    assert table[1].split() == [
        "raw",
        "MOS",
        "neu",
        "MOS",
        "pol",
        "grd",
        "neu",
        "grd",
        "pol",
        "grd",
        "chk",
        "kept",
    ]
    figures = r"(\s+-?\d+\.\d\d){5}\s+(policy|base|neutral)$"
    assert table[2] == long_name and re.fullmatch(figures, table[3])
    assert re.fullmatch(r"short" + figures, table[4])
    assert table[5].startswith("MOS neu / pol: MOS of the neutral render")
    assert all(len(x) <= 80 for x in table)


def _short_run(tmp_path, isp_raws, teacher_budget: str, *more: str) -> list[str]:
    """A whole `isp-tune` run on the four demo raws in seconds: two trained on, two held out."""
    cmd = ["--raw-dir", str(isp_raws[0].parent), "--out", str(tmp_path / "run"), "-m", "classical"]
    cmd += ["--teacher-budget", teacher_budget, "--teacher-raws", "2", "--teacher-restarts", "1"]
    return [*cmd, "--test-fraction", "0.5", "--cma-global-budget", "8", *more]


def _ran(cmd: list[str]):
    from typer.testing import CliRunner

    r = CliRunner().invoke(app, cmd)
    assert r.exit_code == 0, r.output + repr(r.exception)
    return r


def test_a_resumed_run_s_progress_lines_count_kept_work_apart_from_the_rate(tmp_path, isp_raws):
    """**Was** the work a resumed run found finished counted in its progress rate: "per-image CMA-ES: 2/13
    (629920.8 img/s)", "teacher_checked: policy / base / neutral: 12/13 (8653.7 img/s)" in a log. Now kept
    items are said apart ("2/2 (none done now, 2 kept from an earlier run)"; ``kept=`` of
    :func:`attiqa.progress.progress_task`). The real command run twice, piped, the classical scorer."""
    import re

    cmd = _short_run(tmp_path, isp_raws, "4", "--cma-image-budget", "4")
    _ran(cmd)
    # finished, the same command has nothing to do (test_isp_cmaes_budget_and_rerun)
    (tmp_path / "run" / "finished.json").unlink()
    again = _ran(cmd)
    for what in ("per-image CMA-ES", "teacher_checked: policy / base / neutral"):
        last = [x for x in again.output.splitlines() if x.startswith(f"{what}: ")][-1]
        assert re.fullmatch(rf"{re.escape(what)}: 2/2 \(none done now, 2 kept from an earlier run\)", last)


def test_the_global_search_says_it_runs_on_a_sample_of_the_training_raws(tmp_path, isp_raws):
    """**Was** "global CMA-ES on 1 training raws, budget 20 scorer calls" as a run's first line (the README's
    quick recipe on 30 training raws): read as a bug — one raw of thirty, "1 … raws". Now "on 1 of the 2
    training raws", and why: one raw per 48 calls of --cma-global-budget. The real command."""
    r = _ran(_short_run(tmp_path, isp_raws, "2", "--no-baselines"))
    said = " ".join(r.output.split())
    assert (
        "global CMA-ES on 1 of the 2 training raws, budget 8 scorer calls (--cma-global-budget: one raw "
        in said
    )
    assert "per 48 calls; a larger budget searches more raws) — the start and 1 generation of 7 " in said


def test_the_library_and_the_command_share_every_default():
    """**Was** ``TrainConfig()`` SAC on absolute actions, 20,000 steps in 2 environments (and
    :func:`isp_env.run.run` around a neutral base), while ``isp-tune`` by default fits the teacher on residual
    actions around the global CMA-ES setting, as the shipped policy was made (session 49). Now each setting
    the two share has one default (:mod:`isp_env.registration`); the command's are read from its own
    option objects, every name the command shares with ``TrainConfig`` or ``run``."""
    import dataclasses
    import inspect

    from typer.main import get_command

    from isp_env.run import check_policy, run
    from isp_env.run_inputs import InputSettings
    from isp_env.train_config import TrainConfig

    def defaults(cls: type) -> dict[str, object]:
        return {f.name: f.default for f in dataclasses.fields(cls) if f.default is not dataclasses.MISSING}

    command = {p.name: p.default for p in get_command(app).params}
    assert command.pop("test_raws") is None  # the command leaves --test-raws to InputSettings' default
    split = defaults(InputSettings)
    library = defaults(TrainConfig)
    ran = {n: p.default for n, p in inspect.signature(run).parameters.items() if p.default is not p.empty}
    assert not ran.keys() & split.keys()  # run's split settings are its inputs' (InputSettings'), once
    library |= split | ran
    checked = {p.name: p.default for p in get_command(app).commands["check"].params}
    assert checked["test_raws"] is None  # `check` too leaves --test-raws to the library: check_policy's
    assert inspect.signature(check_policy).parameters["test_raws_cap"].default == split["test_raws_cap"]
    shared = command.keys() & library.keys()
    assert {"algo", "action_mode", "obs_mode", "base", "timesteps", "n_envs", "checkpoint_every"} <= shared
    assert {"test_fraction", "group_by", "synth_photos"} <= shared
    assert {k: library[k] for k in shared} == {k: command[k] for k in shared}
    card = json.loads((files("isp_env") / "data" / "policy-default.json").read_text())
    cfg = TrainConfig()
    assert (cfg.algo, cfg.action_mode, cfg.obs_mode) == (card["algo"], card["env"]["action_mode"], "stats")
    assert cfg.scale == card["env"]["delta_scale"]  # the teacher's residual scale, 2: the whole range


def test_a_library_run_searches_with_the_teacher_settings_its_inputs_were_made_with(tmp_path, isp_raws):
    """**Was** (session 63): ``run(run_inputs(settings, cfg, teacher), cfg)`` — as docs/isp.md writes the
    library's run — checked ``teacher`` and dropped it: ``run`` searched with the defaults (150 scorer
    calls, 3 restarts, up to 60 raws) without a word. Now ``run`` takes the inputs' teacher when given none
    (:meth:`isp_env.run_inputs.RunInputs.teacher_for`), and refuses another one in one line."""
    import pytest

    from attiqa.errors import ConfigError
    from isp_env.run import run
    from isp_env.run_inputs import InputSettings, run_inputs
    from isp_env.train_config import TeacherSettings, TrainConfig

    cfg = TrainConfig(scorer="classical", preview=64)
    teacher = TeacherSettings(budget=4, raws=2, restarts=1)
    out = tmp_path / "run"
    settings = InputSettings(raw_dir=isp_raws[0].parent, out=out, base="neutral", test_fraction=0)
    inputs = run_inputs(settings, cfg, teacher)
    with pytest.raises(
        ConfigError, match=r"the inputs were made with another TeacherSettings\(budget=4"
    ) as no:
        run(inputs, cfg, teacher=TeacherSettings(budget=5), baselines=False)
    assert "\n" not in str(no.value) and not out.exists()
    run(inputs, cfg, baselines=False)
    training = json.loads((out / "training.json").read_text())
    assert training["search_calls_asked"] == 4 * 1 * 2, training  # budget x restarts x raws searched
