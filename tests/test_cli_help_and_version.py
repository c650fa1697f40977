"""The command lines' own surface: `run_app` renders the help the same every time, plain help keeps names and
defaults whole, `--version`, usage errors."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
import typer
from helpers import all_helps, attiqa_env, run_attiqa, run_genbench, run_isp_tune

from attiqa.cli import run_app
from attiqa.cli._common import stdout

APPS = {"attiqa": "attiqa.cli.app", "genbench": "genbench.cli", "isp-tune": "isp_env.cli"}


def _escaped_app() -> typer.Typer:
    app = typer.Typer(rich_markup_mode="rich", add_completion=False, pretty_exceptions_enable=False)

    @app.command()
    def go(n: int = 1) -> None:
        """Writes [bold]one[/] file named \\[run].csv."""

    @app.command()
    def other() -> None:
        """Another command (so `go` stays a subcommand)."""

    return app


def _help(app: typer.Typer, width: int, capsys, monkeypatch) -> str:
    monkeypatch.setattr(stdout, "width", width)
    monkeypatch.setattr(sys, "argv", ["prog", "go", "--help"])
    with pytest.raises(SystemExit) as exc:
        run_app(app)
    assert exc.value.code == 0
    return capsys.readouterr().out


def test_run_app_renders_the_same_help_when_called_twice(capsys, monkeypatch):
    """**Was**: below 100 columns `run_app` rewrote the app's help in place (markup rendered to text) and
    switched the app to click's plain layout for good: a second call read the rendered text as markup
    again — "\\[run].csv" lost "[run]" — and a later wide call still drew the plain layout. Now each call
    builds the command afresh from the app as written."""
    app = _escaped_app()
    first = _help(app, 80, capsys, monkeypatch)
    assert "Writes one file named [run].csv." in first and "[bold]" not in first, first
    assert _help(app, 80, capsys, monkeypatch) == first
    wide = _help(app, 120, capsys, monkeypatch)
    assert "╭─ Options" in wide and "[run].csv" in wide, wide
    assert _help(app, 80, capsys, monkeypatch) == first


@pytest.mark.parametrize("program", list(APPS))
def test_help_keeps_every_default_and_name_whole_at_80_and_120_columns(program):
    """**Was**: click's plain layout (below 100 columns) broke lines after hyphens and between "[default:"
    and its value: `genbench run --help` at 80 showed "[default: stabilityai/stable-" / "diffusion-2-1]"
    once --model's help said "or PATH to a local diffusers folder" (it had been cut short to dodge that).
    Now every shown default is whole on one line and no word is split at a hyphen, at 80 (plain) and 120
    (rich) columns, in every command's help of all three command lines."""
    seen = 0
    for columns in (80, 120):
        for path, shown, _, text in all_helps(program, columns):
            where = f"{program} {' '.join(path)} at {columns}"
            lines = text.splitlines()
            assert max(map(len, lines)) <= columns and "…" not in text, where + "\n" + text
            for opt, default in shown.items():
                assert any(f"default: {default}" in line for line in lines), f"{where}: {opt}\n{text}"
                seen += 1
            if columns == 80:  # click's plain layout: no line ends inside a hyphenated word
                pairs = zip(lines, lines[1:], strict=False)
                broken = [a for a, b in pairs if re.search(r"\w-$", a) and b.strip()[:1].isalnum()]
                assert not broken, f"{where}: {broken}\n{text}"
    assert seen > 10
    if program == "genbench":
        helps = {" ".join(p): t for p, _, _, t in all_helps(program, 80)}
        assert "or PATH to a local diffusers folder" in " ".join(helps["run"].split())


@pytest.mark.parametrize("program", list(APPS))
def test_version_of_every_command_line(program, tmp_path):
    """**Was**: `attiqa --version` (and genbench's, isp-tune's) was "No such option: --version", exit 2.
    Now each prints its name and the installed attiqa's version, exit 0."""
    run = {"attiqa": run_attiqa, "genbench": run_genbench, "isp-tune": run_isp_tune}[program]
    r = run("--version")
    assert r.returncode == 0, r.stderr
    assert re.fullmatch(rf"{program} \S+\n", r.stdout), r.stdout
    assert "Traceback" not in r.stderr
    # the option is the root's alone: the commands' own callbacks still run (typer checks their parameters)
    missing = tmp_path / "missing"
    args = {
        "attiqa": ["models"],
        "genbench": ["agree", missing],
        "isp-tune": ["--raw-dir", missing, "-o", missing],
    }
    r = run(*args[program])
    said = {"attiqa": "attiqa-default", "genbench": "no manifest.jsonl", "isp-tune": "not a folder"}[program]
    assert said in r.stdout + r.stderr and "Traceback" not in r.stderr, r.stdout + r.stderr


def test_usage_errors_exit_2_without_a_traceback_and_suggest_the_option():
    """Checked, already right: no command, an unknown or misspelt command, a misspelt option (click's and
    typer's suggestions) — exit 2, no traceback, no colour codes when piped or under NO_COLOR (session 53:
    the error one line, `test_cli_usage_errors.py`)."""
    cases = [
        ((), "Usage:"),
        (("bogus",), "no such command 'bogus'"),
        (("scroe",), "no such command 'scroe' (did you mean 'score'?)"),
        (("score", "--modle", "classical", "x.jpg"), "no such option '--modle' (did you mean '--model'?)"),
    ]
    for args, said in cases:
        for env in ({}, {"NO_COLOR": "1", "COLUMNS": "200"}):
            r = run_attiqa(*args, env=env)
            text = r.stdout + r.stderr
            assert r.returncode == 2 and said in text and "Traceback" not in text, (args, text)
            assert "\x1b[" not in text, (args, text)
    for run in (run_genbench, run_isp_tune):
        r = run("bogus")
        assert r.returncode == 2 and "no such command 'bogus'" in r.stderr and "Traceback" not in r.stderr


def test_version_stays_light():
    """`--version` loads no model library (torch): it answers before the commands are assembled."""
    import subprocess

    code = "import sys; sys.argv = ['attiqa', '--version']\nfrom attiqa.cli import main\ntry:\n    main()\n"
    code += "except SystemExit as exc:\n    print(exc.code, 'torch' in sys.modules)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=attiqa_env())
    assert r.returncode == 0 and r.stdout.splitlines()[-1] == "0 False", r.stdout + r.stderr


def test_the_driver_sees_genbench_run(tmp_path: Path):
    """Guard for the guard: the 80-column check reads `genbench run`'s --model default."""
    helps = {" ".join(p): (s, t) for p, s, _, t in all_helps("genbench", 80)}
    shown, text = helps["run"]
    assert shown["--model"] == "stabilityai/stable-diffusion-2-1"
    assert "[default: stabilityai/stable-diffusion-2-1]" in text
