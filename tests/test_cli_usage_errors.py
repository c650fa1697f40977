"""The command lines' surface: usage errors in one line, help readable at 80 / 100 / 120 columns."""

from __future__ import annotations

import re

import pytest
from helpers import all_helps, run_attiqa, run_genbench, run_isp_tune

MODULES = {"attiqa": "attiqa.cli", "genbench": "genbench.cli", "isp-tune": "isp_env.cli"}  # python -m …
RUN = {"attiqa": run_attiqa, "genbench": run_genbench, "isp-tune": run_isp_tune}

# (program, arguments, the command named, what the line says)
USAGE_ERRORS = [
    ("attiqa", ["score", "--foo"], "score", "no such option '--foo'"),
    ("attiqa", ["score", "--modle", "x.jpg"], "score", "no such option '--modle' (did you mean '--model'?)"),
    ("attiqa", ["score"], "score", "missing argument 'paths'"),
    ("attiqa", ["score", "x.jpg", "-b", "many"], "score", "invalid value for '--batch-size' / '-b': "),
    ("attiqa", ["score", "x.jpg", "--device"], "score", "option '--device' requires an argument"),
    ("attiqa", ["scroe"], "", "no such command 'scroe' (did you mean 'score'?)"),
    ("attiqa", ["models", "extra"], "models", "got unexpected extra argument(s) (extra)"),
    ("genbench", ["agree", "run", "--ties"], "agree", "option '--ties' requires an argument"),
    ("genbench", ["bogus"], "", "no such command 'bogus'"),
    ("isp-tune", ["--timesteps", "0"], "", "invalid value for '--timesteps': "),
    ("isp-tune", ["render", "x.dng", "--outptu", "y.png"], "render", "no such option '--outptu'"),
]  # fmt: skip


@pytest.mark.parametrize(("program", "args", "command", "said"), USAGE_ERRORS)
def test_a_usage_error_is_one_line_naming_the_command_and_its_help(program, args, command, said):
    """**Was**: click's three lines — "Usage: attiqa score [OPTIONS] {paths}...", "Try 'attiqa score
    --help' for help.", "Error: No such option: --foo (Possible options: --out)" — and, at 120 columns,
    the error in a rich box. Now one line on stderr, exit code 2 as before, at any width:
    "error: attiqa score: no such option '--foo' (did you mean '--out'?) — see 'attiqa score --help'"."""
    for columns in ("80", "120"):
        res = RUN[program](*args, env={"COLUMNS": columns})
        assert res.returncode == 2 and res.stdout == "", res.stdout + res.stderr
        lines = res.stderr.splitlines()
        assert len(lines) == 1, res.stderr
        where = re.escape(" ".join(["python -m", MODULES[program], *([command] if command else [])]))
        line = lines[0]
        assert re.fullmatch(rf"error: {where}: {re.escape(said)}.* — see '{where} --help'", line), line


def test_a_command_s_own_bad_value_keeps_its_fix_and_no_help_hint():
    """A parameter check that says its own fix (`--lr nan`) is that one line, without "see --help"."""
    res = run_attiqa("train", "exiqa", "--lr", "nan", env={"COLUMNS": "120"})
    assert res.returncode == 2 and len(res.stderr.splitlines()) == 1, res.stderr
    assert res.stderr.rstrip().endswith(
        "train exiqa: invalid value for '--lr': nan is not a learning rate — give a number > 0, e.g. 1e-3"
    ), res.stderr


@pytest.mark.parametrize("program", list(RUN))
def test_help_keeps_option_names_whole_and_room_for_descriptions(program):
    """**Was**: at 100–119 columns rich's option panel gave the descriptions what the option names, the
    `--no-` names and the types ("<int range> [0<=x<=4294967295]") left: 25 columns in `isp-tune --help`
    at 100, one or two words a line and "isp_env.tuning.default_…" / "raw_photos/HQa*/photos/…" cut;
    `attiqa select-prompts` split "[default:" from its value. Now a command whose panel would leave fewer
    than 40 columns (or less than its longest word) gets click's plain layout: at 80, 100 and 120 columns
    every option name of every command is whole, no line is cut ("…") or too long, and the descriptions
    start at most 40 columns from the right edge."""
    for columns in (80, 100, 120):
        for path, _, names, text in all_helps(program, columns):
            where = f"{program} {' '.join(path)} at {columns}"
            lines = text.splitlines()
            assert max(map(len, lines)) <= columns and "…" not in text, where + "\n" + text
            for name in names:
                assert re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", text), f"{where}: {name}\n{text}"
            (row,) = [line for line in lines if "Show this message and exit" in line]
            room = columns - row.index("Show this message and exit") - row.endswith("│") * 2
            assert room >= 40, f"{where}: {room} columns for the descriptions\n{text}"


def test_options_left_unset_say_what_they_default_to():
    """**Was**: `attiqa check-attributes --help`: "--model Checkpoint path or named model." (it checks the
    bundled default model when not given), `bench --repeats` "(paper: 10; cross: 1)" (a default or the
    paper's?), `bench --target`, `degrade` / `make-distorted --max-side`, `select-prompts --max-images` /
    `--spaq-limit` without a word on what they do unset. Now each help says its default."""
    import typer

    from attiqa.cli.app import app
    from attiqa.scorers import DEFAULT_MODEL

    root = typer.main.get_command(app)
    helps = {
        (name, o): str(p.help)
        for name, cmd in root.commands.items()
        for p in cmd.params
        for o in p.opts
        if o.startswith("--")
    }
    for option in [
        ("check-attributes", "--model"),
        ("bench", "--repeats"),
        ("bench", "--target"),
        ("degrade", "--max-side"),
        ("make-distorted", "--max-side"),
        ("select-prompts", "--max-images"),
        ("select-prompts", "--spaq-limit"),
    ]:
        assert "default: " in helps[option], (option, helps[option])
    assert f"default: {DEFAULT_MODEL}" in helps[("check-attributes", "--model")]
