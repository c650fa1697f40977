"""Session 51's bench / export / make-distorted leftovers: every command's --help whole at 80 columns (one
mechanism in attiqa.cli.run_app for attiqa, genbench and isp-tune)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.helpers import attiqa_env

_EVERY_HELP = """
import contextlib, io, json, sys
import click, typer.main
from attiqa.cli import run_app
from {module} import app

def paths(cmd, prefix):
    yield prefix
    for name, sub in getattr(cmd, "commands", {{}}).items():
        yield from paths(sub, [*prefix, name])

out = []
for path in list(paths(typer.main.get_command(app), [])):
    cmd = typer.main.get_command(app)
    for name in path:
        cmd = cmd.commands[name]
    opts = [o for p in cmd.params for o in [*p.opts, *p.secondary_opts] if o.startswith("--")]
    buf = io.StringIO()
    sys.argv = ["{name}", *path, "--help"]
    with contextlib.redirect_stdout(buf), contextlib.suppress(SystemExit):
        run_app(app)
    out.append([" ".join(path), opts, buf.getvalue()])
print(json.dumps(out))
"""


@pytest.mark.parametrize(
    ("name", "module"),
    [("attiqa", "attiqa.cli.app"), ("genbench", "genbench.cli"), ("isp-tune", "isp_env.cli")],
)
def test_every_commands_help_at_80_columns_keeps_option_names_whole(name, module):
    """**Was** `attiqa bench --help` at 80 columns (a narrow terminal, a pipe, a log) cutting
    "--keep-checkpoin…" in rich's option panel (isp-tune alone had click's plain layout); now every command of
    the three command lines, through the real run_app at COLUMNS=80: every long option name whole, no line
    over 80, no "…", and no rich markup left in the plain text ("[bold]mos[/]" of `attiqa score`)."""
    res = subprocess.run(
        [sys.executable, "-c", _EVERY_HELP.format(module=module, name=name)],
        env=attiqa_env({"COLUMNS": "80"}), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    helps = json.loads(res.stdout)
    assert len(helps) > 1
    for path, opts, text in helps:
        assert text.startswith("Usage:"), (path, text[:200])
        assert max(map(len, text.splitlines())) <= 80 and "…" not in text, path
        assert "[/" not in text and "[bold" not in text, path
        words = text.replace(",", " ").split()
        for opt in opts:
            assert opt in words, (path, opt)
