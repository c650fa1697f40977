"""The command lines' surface (session 54): help laid out only when shown, defaults said as they are, a
first-time user's mistakes answered in one line."""

from __future__ import annotations

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
