"""genbench: an unknown command answered by meaning, the vote page's count of the pairs it can show, two
raters' votes from the page to ``agree``."""

from __future__ import annotations

import pytest
from helpers import run_attiqa, run_genbench, run_isp_tune

RUN = {"attiqa": run_attiqa, "genbench": run_genbench, "isp-tune": run_isp_tune}
MODULES = {"attiqa": "attiqa.cli", "genbench": "genbench.cli", "isp-tune": "isp_env.cli"}

# (program, the word typed, what the line says after "no such command 'WORD'")
MEANT = [
    ("genbench", "serve", " (did you mean 'vote'?)"),
    ("genbench", "rate", " (did you mean 'vote'?)"),
    ("genbench", "Study", " (did you mean 'vote'?)"),
    ("genbench", "web", " (did you mean 'vote'?)"),
    ("genbench", "compare", " (did you mean 'agree'?)"),
    ("genbench", "correlate", " (did you mean 'agree'?)"),
    ("genbench", "generate", " (did you mean 'run'?)"),
    ("genbench", "gen", " (did you mean 'run'?)"),
    ("genbench", "scroe", " (did you mean 'score'?)"),  # spelling, as before
    ("attiqa", "predict", " (did you mean 'score'?)"),
    ("attiqa", "infer", " (did you mean 'score'?)"),
    ("attiqa", "evaluate", " (did you mean 'eval'?)"),
    ("attiqa", "evalute", " (did you mean 'eval'?)"),  # a misspelt synonym
    ("attiqa", "test", " (did you mean 'eval'?)"),
    ("attiqa", "fit", " (did you mean 'train'?)"),
    ("isp-tune", "tune", " (did you mean 'python -m isp_env.cli' itself, without 'tune'?)"),
    ("isp-tune", "bogus", ""),
]  # fmt: skip


@pytest.mark.parametrize(("program", "word", "said"), MEANT)
def test_an_unknown_command_is_answered_by_meaning_as_well_as_by_spelling(program, word, said):
    """**Was**: typer's guess by spelling alone — `genbench serve` "(did you mean 'score'?)", `genbench
    rate`, `attiqa predict`, `isp-tune tune --raw-dir …` no hint at all. Now each command line keeps a small
    table of the words people type for its commands (beside the commands), and the one-line usage error
    suggests the command meant: 'vote' for serve / rate, 'eval' for test, and for `isp-tune tune` the bare
    command, which tunes. The real console entry points, in a subprocess."""
    res = RUN[program](word, "--flag", "x")
    where = f"python -m {MODULES[program]}"
    assert res.returncode == 2 and res.stdout == "", res.stdout + res.stderr
    line = f"error: {where}: no such command {word!r}{said} — see '{where} --help'"
    assert res.stderr.splitlines() == [line]
