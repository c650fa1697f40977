"""The one wrapper of terminal text (:func:`attiqa.cli.wrap_words`): help, ``attiqa datasets``, ``models``,
``distortions``, ``genbench agree`` and ``isp-tune``'s legends (it replaced three near-copies in
``cli/eval.py``, the help formatter's held-hyphen trick and four ``textwrap.fill`` calls); and the one rule of
a table's columns (:func:`attiqa.cli.table_widths`): every word whole at every width, or plain lines."""

from __future__ import annotations

import re
import textwrap

from rich.cells import cell_len

from attiqa.cli import wrap_words
from attiqa.cli._common import HELP_GROUP, help_lines
from attiqa.cli.eval import records_text


def test_words_stay_whole_a_hyphen_is_no_break_and_a_long_word_has_its_own_line():
    text = "fine-tune the state-of-the-art model supercalifragilisticexpialidocious then stop"
    lines = wrap_words(text, 20)
    assert lines == [
        "fine-tune the",
        "state-of-the-art",
        "model",
        "supercalifragilisticexpialidocious",
        "then stop",
    ]
    assert "state-\nof-" in textwrap.fill(text, 20)  # textwrap's default: a break after a hyphen
    # a word longer than the room beside a blank indent begins left of it, inside the width
    assert wrap_words("aa bbbbbbbbbbbbbbbbbb cc", 20, "", " " * 6) == [
        "aa",
        "  bbbbbbbbbbbbbbbbbb",
        "      cc",
    ]


def test_a_path_longer_than_the_line_breaks_after_a_slash_and_a_shorter_one_stays_whole():
    lines = wrap_words("read ../shared/data/clive-dev/images/photo_0001.jpg and a/b.png", 20)
    assert lines == ["read ../shared/data/", "clive-dev/images/", "photo_0001.jpg and", "a/b.png"]
    assert all(cell_len(line) <= 20 for line in lines)


def test_width_is_counted_in_terminal_cells_a_wide_character_as_two():
    assert wrap_words("日本語 日本語", 7) == ["日本語", "日本語"]  # 13 cells: two lines, though 7 characters
    assert textwrap.fill("日本語 日本語", 7) == "日本語 日本語"  # textwrap counted characters
    assert wrap_words("写真/データ/画像.png", 8) == ["写真/", "データ/", "画像.png"]


def test_the_first_and_the_other_lines_prefixes_count_and_runs_of_spaces_stay():
    assert wrap_words("one two three", 9, "> ", "  ") == ["> one two", "  three"]
    assert wrap_words("a  b\nc", 80) == ["a  b c"]  # as textwrap: a run kept, a newline a space
    assert wrap_words("", 10, "> ") == [] == wrap_words("   ", 10)


def test_the_helps_default_stays_on_one_line_where_it_fits_and_paragraphs_stay_apart():
    text = "Model to use. [default: stabilityai/stable-diffusion-2-1]"
    assert wrap_words(text, 45, keep=HELP_GROUP) == [
        "Model to use.",
        "[default: stabilityai/stable-diffusion-2-1]",
    ]
    assert wrap_words(text, 30, keep=HELP_GROUP) == [
        "Model to use. [default:",
        "stabilityai/",
        "stable-diffusion-2-1]",
    ]
    doc = "First paragraph\nwraps here.\n\n  An indented one.\n\n\b\nkept  as\n  it is"
    paragraphs = ["> First", "> paragraph", "> wraps here.", "", ">   An indented", ">   one.", ""]
    assert help_lines(doc, 16, "> ") == [*paragraphs, "> kept  as", ">   it is"]  # the "\b" one as it is


def test_records_text_breaks_a_long_path_after_a_slash():
    """``attiqa datasets`` piped at 30 columns: a file name in a path longer than the line **was** left whole
    on one line past the width (textwrap); now it breaks after a "/"."""
    out = records_text(
        "t", ["name", "dataset", "files"], [["x", "X", "AGIQA-3K/subfolder/scores_final.csv"]], 30
    )
    assert "  files: AGIQA-3K/subfolder/\n      scores_final.csv" in out
    assert all(cell_len(line) <= 30 for line in out.splitlines())


def test_help_at_52_and_60_columns_breaks_no_word_of_an_option_help_or_default():
    """**Was**: click's wrapper cut a word longer than its room mid-way — ``isp-tune check --help`` at 52
    columns "policy.safetenso" / "rs", "[default: runs/p" / "olicy_check]"; ``genbench run --help`` at 60
    "stabilityai/stable-d" / "iffusion-2-1]". Now every word is whole, a path broken after a "/" at most."""
    import typer
    from helpers import all_helps

    from genbench.cli import app as genbench_app
    from isp_env.cli import app as isp_app

    for program, app, columns in (("isp-tune", isp_app, 52), ("genbench", genbench_app, 60)):
        root = typer.main.get_command(app)
        for path, defaults, _, text in all_helps(program, columns):
            joined = " ".join(re.sub(r"/\n\s+", "/", text).split())  # a path's lines put back together
            cmd = root
            for name in path:
                cmd = cmd.commands[name]
            words = [w for p in cmd.params for w in (getattr(p, "help", None) or "").split()]
            assert set(words) <= set(joined.split()), (program, path, set(words) - set(joined.split()))
            assert all(f"[default: {d}" in joined for d in defaults.values()), (program, path, defaults)


def test_every_table_keeps_its_words_whole_at_every_width_or_is_plain_lines():
    """The one rule of the tables (``models``, ``datasets``, genbench's ``agree``, isp-tune's): at each width
    from 60 to 240 columns a terminal gets either None (plain lines) or a table whose lines fit and whose
    words are whole, a path broken after a "/" only; a pipe gets plain lines at any width."""
    import io

    from rich.console import Console

    from attiqa.cli import table_widths, whole_word_table

    headers = ("metric", "pairs", "accuracy", "95% CI", "description")
    rows = [
        ("classical", "120", "0.617", "0.53 – 0.70", "mean of five hand-crafted attribute measures"),
        ("runs/exp_long_folder/finetune/last_checkpoint.safetensors", "4660", "0.512", "0.49 – 0.53", "x"),
        ("clipiqa:/data/models/open_clip_ViT-B-32", "3", "1.000", "0.29 – 1.00", "CLIP-IQA (Wang et al.)"),
    ]
    parts = {p for row in rows for cell in row for w in cell.split() for p in w.replace("/", "/\n").split()}
    tables = 0
    for width in range(60, 241):
        out = io.StringIO()
        terminal = Console(file=out, force_terminal=True, width=width, color_system=None)
        widths = table_widths(terminal, headers, rows)
        if widths is None:
            continue
        terminal.print(whole_word_table(headers, rows, widths, figures=True, title="t"))
        lines = out.getvalue().splitlines()
        assert all(cell_len(line) <= width for line in lines), (width, out.getvalue())
        assert all(any(p in line for line in lines) for p in parts), (width, out.getvalue())
        tables += 1
    assert 0 < tables < 181  # narrow terminals get the plain lines, wide ones the table
    piped = Console(file=io.StringIO(), width=240)
    assert table_widths(piped, headers, rows) is None
