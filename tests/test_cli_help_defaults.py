"""The command lines' surface: help laid out only when shown, defaults said as they are, a first-time user's
mistakes answered in one line."""

from __future__ import annotations

import re

import pytest
from helpers import run_attiqa, run_genbench, run_isp_tune

RUN = {"attiqa": run_attiqa, "genbench": run_genbench, "isp-tune": run_isp_tune}


@pytest.mark.parametrize("program", list(RUN))
def test_no_arguments_shows_the_help_at_any_width(program):
    """The help's layout is measured when a help screen is first rendered, not at every start; the screen
    ``no_args_is_help`` shows (through a usage error, displayed as the root's layout says) must still be
    the whole help, plain at 80 columns, rich at 120 — not an empty screen (what a layout decided only at
    render time gave at 80)."""
    for columns in ("80", "120"):
        res = RUN[program](env={"COLUMNS": columns})
        out = res.stdout + res.stderr
        assert "Usage: " in out and "--help" in out and "Commands" in out, (columns, out)
        assert "Traceback" not in out


# The real default of an option whose click default is None (the library fills it in), by command and option
def _real_defaults() -> dict[tuple[str, str], object]:
    from attiqa.bench_setup import DATA_EFFICIENT_FRACTIONS, PAPER_REPEATS
    from attiqa.cli.score import CHECK_CROPS
    from isp_env.registration import TEST_RAWS
    from isp_env.train_config import TeacherSettings

    teacher = TeacherSettings()
    return {
        ("attiqa bench", "repeats"): PAPER_REPEATS,
        ("attiqa bench", "fractions"): DATA_EFFICIENT_FRACTIONS,
        ("attiqa check-attributes", "crops"): CHECK_CROPS,
        ("isp-tune", "teacher_budget"): teacher.budget,
        ("isp-tune", "teacher_raws"): teacher.raws,
        ("isp-tune", "teacher_restarts"): teacher.restarts,
        ("isp-tune", "teacher_start"): teacher.start,
        ("isp-tune", "test_raws"): TEST_RAWS,
        ("isp-tune check", "test_raws"): TEST_RAWS,
    }


STATED = [
    re.compile(r"\bdefault:? (\d[\d.,]*\d|\d)\b"),  # "(default 150)", "default: 10, the paper's"
    re.compile(r"([\w.-]+) \(default[;)]"),  # "classical (default; …)", "… | x (default)"
    re.compile(r"\(([\w.-]+), default\)"),  # "(neutral, default)"
]


def _said(value: object) -> str:
    if isinstance(value, (tuple, list)):
        return ",".join(_said(v) for v in value)
    return f"{value:g}" if isinstance(value, float) else str(value)


def _walk(cmd, path):
    yield path, cmd
    for name, sub in getattr(cmd, "commands", {}).items():
        yield from _walk(sub, f"{path} {name}")


def test_every_default_a_help_states_is_the_real_default():
    """**Was**: help texts stating a default literally — `attiqa train --teacher`'s "classical (default;
    …)", `isp-tune --teacher-budget`'s "(default 150)", `attiqa bench --repeats`' "(default: 10 …)" — beside
    the constant that really decides it: changing the constant left the help lying. Now every default a
    help states, in every option of every command of the three command lines, equals the option's click
    default or, where that is None (the library decides), the library's constant."""
    from attiqa.cli import app_command
    from attiqa.cli.app import app as attiqa_app
    from genbench.cli import app as genbench_app
    from isp_env.cli import app as isp_app

    real = _real_defaults()
    checked, wrong = 0, []
    for prog, app in (("attiqa", attiqa_app), ("genbench", genbench_app), ("isp-tune", isp_app)):
        for path, cmd in _walk(app_command(app), prog):
            for p in cmd.params:
                text = " ".join(str(getattr(p, "help", None) or "").split())
                for pattern in STATED:
                    for stated in pattern.findall(text):
                        default = p.default if p.default is not None else real.get((path, p.name))
                        checked += 1
                        if default is None or stated != _said(default):
                            wrong.append(f"{path} {p.opts[0]}: help says {stated!r}, real {default!r}")
    assert checked >= 8 and not wrong, "\n".join(wrong)


@pytest.mark.parametrize(
    "args",
    [["train", "--config", "{dir}"], ["bench", "single", "-d", "clive={dir}", "-c", "{dir}"]],
    ids=["train", "bench"],
)
def test_a_folder_given_as_the_config_is_named_with_the_fix(tmp_path, args):
    """**Was**: `attiqa train --config FOLDER` ended in the last-resort OSError line "FOLDER: Is a directory —
    check the path (a file where a folder should be?), its permissions and the free disk space", and
    `attiqa bench … -c FOLDER` said "base config not found" of a folder that is there. Now one line: the
    folder, that it is not a config, and to give its YAML file."""
    res = run_attiqa(*[a.format(dir=tmp_path) for a in args], env={"COLUMNS": "80"})
    assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
    (line,) = res.stderr.splitlines()
    kind = "run config" if args[0] == "train" else "config"
    fix = "give its YAML file, e.g. configs/cpu_small.yaml"
    assert line == f"error: {tmp_path}: a folder, not a {kind} — {fix}", line


@pytest.mark.parametrize("program", list(RUN))
def test_help_fits_a_40_column_terminal(program):
    """**Was**: click's plain help never narrower than 50 columns, so on a 40-column terminal every line of
    41–50 characters was broken by the terminal mid-word, and the option column left descriptions 16
    columns. Now each command's help fits 40 columns: longer option names on a line of their own, their
    description below, wrapped at spaces."""
    from helpers import all_helps

    for path, _, _, text in all_helps(program, 40):
        # an option's names are kept whole on their own line ("--distortion-task / --no-distortion-task")
        lines = [line for line in text.splitlines() if not line.lstrip().startswith("-")]
        long = [line for line in lines if len(line.rstrip()) > 40]
        assert not long, (path, long[:3])
