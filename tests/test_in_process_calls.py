"""``conftest.in_process``, which most CLI tests run commands through (no interpreter start-up a call), must
leave the pytest process as a fresh process would find it and capture what a pipe would get."""

from __future__ import annotations

import pytest
from conftest import in_process


def test_a_call_that_sets_torch_threads_leaves_them_as_they_were():
    """isp-tune's environments and training set torch's thread count for their process: in a subprocess
    that ended with it; in pytest's process it leaked into every later test of the worker."""
    import torch

    before = torch.get_num_threads()
    target = 1 if before != 1 else 2
    res = in_process("x", lambda: torch.set_num_threads(target))()
    assert res.returncode == 0 and torch.get_num_threads() == before


def test_a_console_that_chose_colours_at_a_terminal_writes_plain_text(monkeypatch: pytest.MonkeyPatch):
    """A CLI's rich console chooses its colours when its module is imported: under `pytest -s` at a terminal
    the captured "error:" line carried colour codes (the tests compare lines exactly), which a subprocess's
    pipe never gets."""
    from rich.color import ColorSystem

    from attiqa.progress import console

    monkeypatch.setattr(console, "_color_system", ColorSystem.STANDARD)
    assert console.color_system is not None  # as at a terminal

    def main() -> None:
        console.print("[bold red]error:[/] x")

    res = in_process("x", main)()
    assert res.stderr == "error: x\n" and console.color_system is not None  # restored after the call
